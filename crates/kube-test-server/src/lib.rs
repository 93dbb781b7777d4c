//! An in-memory Kubernetes API server for tests, strict where kube-apiserver is strict.
//!
//! # Why it exists
//! No `kube-apiserver` can be installed on the machines that build this project (no registry
//! they reach ships one, and there is no container engine), yet a controller has to be proven
//! end to end against a real HTTP API with watches that break, objects that change under it,
//! permissions that are missing and an API that pushes back. This server speaks the part of
//! the Kubernetes REST protocol a controller uses, over real HTTP on 127.0.0.1, so an
//! unmodified `kube::Client`, `kube::runtime::watcher` and `Controller` run against it.
//!
//! Its value is its fidelity: a lenient stand-in lets tests pass that a real cluster fails.
//! So wherever a controller's correctness can depend on it, it behaves as kube-apiserver
//! 1.33 does — the schema of the CRD, object identity, RBAC, back-pressure, watch history —
//! and each behaviour below names the Kubernetes source it follows. What it does not emulate
//! is listed too; a run against a real cluster covers those blind spots.
//!
//! # Use
//! ```no_run
//! # async fn example(crd_yaml: &str) {
//! use kube_test_server::{TestApiServer, User};
//!
//! let (server, admin) = TestApiServer::builder()
//!     .crd(crd_yaml)
//!     .namespace("team-a")
//!     .start()
//!     .await;
//! // The code under test authenticates as its ServiceAccount; RBAC from rendered manifests:
//! // server.enforce_rbac(&helm_template_output);
//! let operator = server.client_as(&User::service_account("cams-system", "cams-operator"));
//! // ... drive the code under test, then assert on the request log:
//! let patches = server.count(|r| r.is_status_patch());
//! # let _ = (admin, operator, patches);
//! # }
//! ```
//! The handle shuts the server down when dropped. It is `Send + Sync`: share it with `Arc`
//! when a spawned task needs it. For a built binary, write [`TestApiServer::kubeconfig_yaml`]
//! (or [`TestApiServer::kubeconfig_yaml_as`]) to a file and point `KUBECONFIG` at it.
//!
//! Test-side backdoors ([`TestApiServer::put`], [`TestApiServer::get`], [`TestApiServer::seed`],
//! ...) read and write the store directly (not logged, no faults, no RBAC) and emit the same
//! watch events as the API. [`TestApiServer::put`] validates like a write through the API;
//! [`TestApiServer::put_unchecked`] stores what a real server would refuse today (an object
//! stored under an older, laxer schema), and a test using it says why.
//!
//! # What is emulated, and the behaviour each part follows
//! - **Routing and kinds.** Built-in Namespaces, Secrets, `events.k8s.io/v1` and core `v1`
//!   Events, Leases ([`kinds`]), and custom resources from their CRD manifest
//!   ([`TestApiServerBuilder::crd`], with `/status` when the CRD declares it); namespaced and
//!   all-namespaces collection paths; `/version`; any other path is a 404 `Status`.
//! - **Errors** are `Status` objects worded as the API server words them ([`errors`]:
//!   `apimachinery/pkg/api/errors/errors.go`, `apimachinery/pkg/util/validation/field/errors.go`):
//!   422 with one cause per field, 409 Conflict and AlreadyExists, 404, 410 Expired, 403.
//! - **Schema, defaults, pruning, CEL** ([`schema`]): every create, update, merge patch,
//!   server-side apply and `/status` write of a custom resource is checked against the
//!   `openAPIV3Schema` of the CRD's storage version as given (never restated):
//!   types, required fields, enums, lengths, patterns, formats, list types and
//!   `x-kubernetes-validations` (CEL, transition rules with `oldSelf` on update), with
//!   ratcheting (`apiextensions-apiserver/pkg/apiserver/validation/validation.go`,
//!   `registry/customresource/strategy.go` and `status_strategy.go`). Defaults are applied;
//!   unknown fields are pruned with a `Warning: 299 - "unknown field \"spec.foo\""` header,
//!   or refused with 400 under `fieldValidation=Strict`
//!   (`apiserver/pkg/endpoints/handlers/rest.go`). `/status` writes validate the status schema
//!   and run CEL over the whole object. A violation is a 422 and changes nothing.
//! - **Metadata and built-in kinds** ([`validation`]): names are DNS subdomains of at most 253
//!   characters (namespaces: DNS labels), labels, annotations (256 KiB in all) and finalizers
//!   are checked (`apimachinery/pkg/api/validation/objectmeta.go`); Secrets merge
//!   `stringData` into `data` and are limited to 1 MiB; `events.k8s.io/v1` Events need
//!   `eventTime`, `reportingController`, `reportingInstance`, `action` and `reason` (at most
//!   128 characters each) and a note of at most 1 KiB (`pkg/apis/core/validation/events.go`);
//!   Leases need a positive duration (`pkg/apis/coordination/validation/validation.go`).
//! - **Identity of objects**: every create gets a fresh `uid`, `creationTimestamp` and
//!   `generation: 1`, so deleting and creating again gives a new object; `generation` moves
//!   when anything outside `metadata` and `status` changes, and once when deletion starts
//!   (`registry/generic/registry/store.go` `markAsDeleting`). A `PUT` of a custom resource or a
//!   Lease must carry `metadata.resourceVersion` (their strategies'
//!   `AllowUnconditionalUpdate` is false): 422 without, 409 when stale.
//! - **Deletion**: with finalizers, `deletionTimestamp` is set and the object stays until the
//!   last finalizer is removed; no finalizer can be added meanwhile (422). Deleting a namespace
//!   turns it `Terminating`, deletes its contents and removes it once empty; nothing can be
//!   created in a missing (404) or terminating (403) namespace (the `NamespaceLifecycle`
//!   admission plugin, `apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go`).
//! - **Server-side apply** (`managed` module, after kubernetes-sigs/structured-merge-diff
//!   `merge/update.go`): `metadata.managedFields` per manager, operation and subresource;
//!   `x-kubernetes-list-type: map` lists merge per item by key and `set` lists per value, as
//!   `k:{"type":"Ready"}` and `v:"a"` entries of `fieldsV1`; other lists are atomic. An apply
//!   conflicts (409) on fields another manager owns with another value unless forced, and
//!   forcing takes only those fields; fields and items the manager applied before and omits
//!   now are removed unless someone else owns them, so items owned by another manager
//!   survive a forced apply.
//! - **Lists** with label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`), field
//!   selectors (`metadata.name`, `metadata.namespace`), and `limit`/`continue` paging over a
//!   consistent snapshot; a continue token older than the last [`TestApiServer::compact`] is
//!   a 410 (`apiserver/pkg/storage/etcd3/errors.go`).
//! - **Watches**: chunked JSON lines of ADDED/MODIFIED/DELETED from a resourceVersion, with
//!   selector transitions as ADDED/DELETED. Each kind keeps its own history as the watch cache
//!   does (`apiserver/pkg/storage/cacher/watch_cache.go`): at least the latest 100 events, any
//!   event younger than 75 s, at most 102,400 ([`HistoryLimits`]); a watch from an older
//!   version gets an ERROR event with 410 Expired and the client relists. BOOKMARKs every
//!   minute ([`DEFAULT_BOOKMARK_INTERVAL`], `cacher.go` `defaultBookmarkFrequency`; tests may
//!   shorten it) and one right before `timeoutSeconds` ends the stream. resourceVersions are
//!   decimal strings from a random base: clients must treat them as opaque.
//! - **Authentication and RBAC** ([`rbac`]): a bearer token per [`User`]
//!   ([`TestApiServer::client_as`]); no token is `system:anonymous`, an unknown token a 401.
//!   [`TestApiServer::enforce_rbac`] enforces the Roles, ClusterRoles and bindings of rendered
//!   manifests on every request with kube-apiserver's 403 body
//!   (`plugin/pkg/auth/authorizer/rbac/rbac.go`, `endpoints/handlers/responsewriters/errors.go`);
//!   `system:masters` (the default client) is always allowed.
//! - **Faults** ([`Fault`], per resource, verb, subresource and namespace, for a number of
//!   requests, a duration or a share of them): 429 as API Priority and Fairness answers it —
//!   a plain-text body and `Retry-After` (`apiserver/pkg/server/filters/priority-and-fairness.go`);
//!   503 with `Retry-After`; 500; a request held without an answer. Faults act before
//!   authorization, as the filter chain orders them. Watches end on demand
//!   ([`TestApiServer::close_watches`]) or on a period
//!   ([`TestApiServerBuilder::close_watches_every`]). `kube::Client` retries 429, 503 and 504
//!   itself (up to 15 times, honouring `Retry-After`): inject 500 to make an error reach the
//!   caller at once.
//! - **Populations**: [`TestApiServer::seed`] and [`TestApiServer::seed_unrelated_secrets`]
//!   create objects at scale (for example 2,000 Helm release Secrets of 8 KiB in other
//!   namespaces), as real clusters hold them.
//! - Metadata-only requests (`Accept: ...;as=PartialObjectMetadata`), strategic merge patch of
//!   built-in kinds (as a merge patch; 415 for custom resources), `dryRun=All`, and
//!   deletecollection.
//!
//! # What is not emulated
//! Discovery and OpenAPI documents; JSON patch (415); protobuf; table output; graceful
//! deletion periods; garbage collection of owned objects; admission webhooks and admission
//! plugins other than namespace lifecycle; event TTLs and the shared storage of core and
//! `events.k8s.io` Events (separate collections here); `resourceVersion` semantics on get and
//! list (the latest state is served); CEL cost budgets and the Kubernetes CEL libraries (see
//! [`schema`]); RBAC escalation checks, impersonation and the built-in rules of `admin`,
//! `edit` and `view` (see [`rbac`]); the per-priority-level dynamics of API Priority and
//! Fairness (a 429 is injected, not earned by load); multiple versions of a CRD and
//! conversion.

mod cel;
pub mod errors;
mod faults;
mod fields;
mod json;
pub mod kinds;
mod managed;
pub mod rbac;
pub mod schema;
mod selector;
mod server;
mod store;
pub mod validation;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kube::Resource;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use errors::{ApiError, BadValue, FieldError, FieldErrorKind};
pub use faults::{Fault, FaultEffect, RequestFilter, Verb};
pub use kinds::ResourceKind;
pub use rbac::{Attributes, Authorizer, User};
use schema::Schema;
pub use store::{HistoryLimits, PatchType};

use server::{Shared, lock};
use store::Store;

/// What a request asked for, from its method and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `GET` on a collection.
    List,
    /// `GET` on a collection with `watch=true`.
    Watch,
    /// `GET` on an object (or its `/status`).
    Get,
    /// `POST` on a collection.
    Create,
    /// `PUT` on an object, or on a subresource (`Some("status")`).
    Update {
        /// `Some("status")` for `/status`.
        subresource: Option<String>,
    },
    /// `PATCH` on an object, or on a subresource.
    Patch {
        /// From the `Content-Type`.
        patch_type: PatchType,
        /// `Some("status")` for `/status`.
        subresource: Option<String>,
    },
    /// `DELETE` on an object.
    Delete,
    /// `DELETE` on a collection.
    DeleteCollection,
    /// Anything else (`/version`, unknown paths, unsupported methods).
    Other,
}

/// One request as the server received it, in the order of the log.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: Method,
    /// URL path.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// `Content-Type` without parameters, lower-case.
    pub content_type: Option<String>,
    /// The `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// What the request asked for.
    pub kind: RequestKind,
    /// The resource kind addressed, when the path names one.
    pub resource: Option<ResourceKind>,
    /// The namespace in the path.
    pub namespace: Option<String>,
    /// The object name in the path.
    pub name: Option<String>,
    /// HTTP status code of the answer (for a watch, of its start).
    pub status: u16,
    /// The answer was an injected fault.
    pub injected_fault: bool,
    /// The body, parsed as JSON or YAML.
    pub body: Option<Value>,
    /// The authenticated user's name (`system:anonymous` without credentials, empty when
    /// the token was unknown).
    pub user: String,
    /// The request asked for metadata only (`Accept: ...;as=PartialObjectMetadata`).
    pub metadata_only: bool,
}

impl RequestRecord {
    /// The value of a query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when the request addressed `kind`.
    pub fn is_for(&self, kind: &ResourceKind) -> bool {
        self.resource.as_ref() == Some(kind)
    }

    /// True for a request made with `dryRun=All`: checked like the real request, stores nothing.
    pub fn is_dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    /// True for a request that may change state (create, update, patch, delete); a dry run
    /// changes nothing and is not one.
    pub fn is_write(&self) -> bool {
        !self.is_dry_run()
            && matches!(
                self.kind,
                RequestKind::Create
                    | RequestKind::Update { .. }
                    | RequestKind::Patch { .. }
                    | RequestKind::Delete
                    | RequestKind::DeleteCollection
            )
    }

    /// True for a `PATCH` of `/status` (any patch type) that is not a dry run.
    pub fn is_status_patch(&self) -> bool {
        !self.is_dry_run()
            && matches!(&self.kind, RequestKind::Patch { subresource: Some(s), .. } if s == "status")
    }
}

/// A namespace as the API server stores a new one.
fn namespace_object(name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// How often a watch that asked for bookmarks gets one, by default (kube-apiserver's
/// `defaultBookmarkFrequency` in `apiserver/pkg/storage/cacher/cacher.go`).
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// Configures a server before it starts.
#[derive(Clone, Debug)]
pub struct TestApiServerBuilder {
    kinds: Vec<(ResourceKind, Option<Arc<Schema>>)>,
    history: HistoryLimits,
    namespaces: Vec<String>,
    bookmark_interval: Duration,
    close_watches_every: Option<Duration>,
}

impl Default for TestApiServerBuilder {
    fn default() -> Self {
        TestApiServerBuilder {
            kinds: kinds::BUILTIN.iter().map(|k| (k.clone(), None)).collect(),
            history: HistoryLimits::default(),
            namespaces: kinds::INITIAL_NAMESPACES.map(str::to_owned).to_vec(),
            bookmark_interval: DEFAULT_BOOKMARK_INTERVAL,
            close_watches_every: None,
        }
    }
}

impl TestApiServerBuilder {
    /// Creates a namespace at start (`default`, `kube-system`, `kube-public` and
    /// `kube-node-lease` always exist). Objects can be created only in namespaces that exist.
    pub fn namespace(mut self, name: &str) -> Self {
        self.namespaces.push(name.to_owned());
        self
    }

    /// Serves one more kind of resource, without a schema.
    pub fn kind(mut self, kind: ResourceKind) -> Self {
        self.kinds.push((kind, None));
        self
    }

    /// Serves the custom resource a `CustomResourceDefinition` manifest (YAML or JSON text)
    /// defines, checking every write against the `openAPIV3Schema` of its storage version
    /// (types, formats, defaults, pruning, list types, `x-kubernetes-validations`). Panics
    /// when the manifest is not a usable CRD.
    pub fn crd(mut self, manifest: &str) -> Self {
        let crd: Value = serde_yaml::from_str(manifest)
            .unwrap_or_else(|e| panic!("the CRD manifest does not parse: {e}"));
        let kind = ResourceKind::from_crd(&crd)
            .unwrap_or_else(|e| panic!("the CRD manifest is not usable: {e}"));
        let schema = kinds::storage_version(&crd)
            .and_then(Schema::from_crd_version)
            .unwrap_or_else(|e| panic!("the CRD's schema is not usable: {e}"));
        self.kinds.push((kind, Some(Arc::new(schema))));
        self
    }

    /// Keeps at most `limit` watch events per kind (default 102,400, the watch cache's upper
    /// bound); watches from older versions get 410 Expired.
    pub fn history_limit(mut self, limit: usize) -> Self {
        self.history.max_events = limit;
        self.history.min_events = self.history.min_events.min(limit);
        self
    }

    /// How much watch history is kept per kind: by default the latest 100 events, and any
    /// event younger than 75 s, up to 102,400 (kube-apiserver's watch cache).
    pub fn history_limits(mut self, limits: HistoryLimits) -> Self {
        self.history = limits;
        self
    }

    /// Time between two bookmarks on a watch that asked for them (default one minute, as
    /// kube-apiserver's `defaultBookmarkFrequency`).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Ends every open watch every `period`, as an API server behind a load balancer that
    /// drops long connections, or one restarting, does. Watchers resume from their last
    /// version.
    pub fn close_watches_every(mut self, period: Duration) -> Self {
        self.close_watches_every = Some(period);
        self
    }

    /// Binds 127.0.0.1 on a free port and starts serving. Panics when it cannot bind.
    pub async fn start(self) -> (TestApiServer, kube::Client) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test API server to 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("read the test API server's address");
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(self.kinds, self.history)),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(faults::Faults::default()),
            auth: Mutex::new(server::Auth::default()),
            changes: watch::Sender::new(0),
            close_watches: watch::Sender::new(0),
            bookmark_interval: self.bookmark_interval,
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let shared = serving.clone();
                        connections.spawn(async move {
                            let service = service_fn(move |req| server::handle(shared.clone(), req));
                            // A connection error only ends that connection.
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        if let Some(period) = self.close_watches_every {
            let closer = shared.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
                loop {
                    ticks.tick().await;
                    // Ends with the server: the sender is gone once every handle is dropped.
                    if Arc::strong_count(&closer) == 1 {
                        return;
                    }
                    closer.close_watches.send_modify(|n| *n += 1);
                }
            });
        }
        let server = TestApiServer { shared, addr, task };
        for namespace in &self.namespaces {
            server.create_namespace(namespace);
        }
        let client = server.client();
        (server, client)
    }
}

/// A running test API server. Dropping it (or [`TestApiServer::shutdown`]) stops the server
/// and ends every open connection.
pub struct TestApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApiServer {
    /// Starts a server with the default resource table, and a client for it.
    pub async fn start() -> (TestApiServer, kube::Client) {
        TestApiServerBuilder::default().start().await
    }

    /// A builder for other resource tables, history limits or bookmark intervals.
    pub fn builder() -> TestApiServerBuilder {
        TestApiServerBuilder::default()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `kube::Config` for the server, as a cluster administrator (`system:masters`,
    /// allowed everything also when RBAC is enforced); plain HTTP, namespace `default`.
    pub fn config(&self) -> kube::Config {
        self.config_as(&User::admin())
    }

    /// A `kube::Config` that authenticates as `user` with a bearer token of its own.
    pub fn config_as(&self, user: &User) -> kube::Config {
        let mut config =
            kube::Config::new(self.url().parse().expect("the server URL is a valid URI"));
        let auth: kube::config::AuthInfo =
            serde_json::from_value(serde_json::json!({"token": self.token_for(user)}))
                .expect("an AuthInfo with a token");
        config.auth_info = auth;
        config
    }

    /// A bearer token that authenticates as `user` (the same token every time).
    pub fn token_for(&self, user: &User) -> String {
        let mut auth = lock(&self.shared.auth);
        if let Some((token, _)) = auth.tokens.iter().find(|(_, u)| *u == user) {
            return token.clone();
        }
        let token = format!("token-{}-{:016x}", auth.tokens.len(), rand::random::<u64>());
        auth.tokens.insert(token.clone(), user.clone());
        token
    }

    /// A kubeconfig file's YAML for the server (context `test`, namespace `default`, a
    /// cluster administrator's token): for running the built binary against it with
    /// `KUBECONFIG`.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_as(&User::admin())
    }

    /// [`TestApiServer::kubeconfig_yaml`] authenticating as `user`.
    pub fn kubeconfig_yaml_as(&self, user: &User) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
             clusters:\n- name: test\n  cluster:\n    server: {}\n\
             users:\n- name: test\n  user:\n    token: {}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\n",
            self.url(),
            self.token_for(user)
        )
    }

    /// A new client for the server, as a cluster administrator.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("build a kube::Client for the test API server")
    }

    /// A new client authenticating as `user`.
    pub fn client_as(&self, user: &User) -> kube::Client {
        kube::Client::try_from(self.config_as(user))
            .expect("build a kube::Client for the test API server")
    }

    /// Enforces RBAC from now on, with the bootstrap roles of a new cluster and the Roles,
    /// ClusterRoles and their bindings in `manifests` (multi-document YAML, as `helm template`
    /// prints it; other kinds are ignored). Requests no rule allows are answered 403. Panics
    /// when the manifests hold an RBAC object the API server would refuse.
    pub fn enforce_rbac(&self, manifests: &str) {
        let mut authorizer = Authorizer::new();
        authorizer
            .add_manifests(manifests)
            .unwrap_or_else(|e| panic!("RBAC manifests refused: {e}"));
        lock(&self.shared.auth).authorizer = Some(authorizer);
    }

    /// Stops enforcing RBAC.
    pub fn allow_all(&self) {
        lock(&self.shared.auth).authorizer = None;
    }

    /// Stops the server now (the same as dropping the handle).
    pub fn shutdown(self) {}

    fn kind_of<K: Resource<DynamicType = ()>>(&self) -> ResourceKind {
        let store = lock(&self.shared.store);
        let index = store
            .kind_index(&K::group(&()), &K::version(&()), &K::plural(&()))
            .unwrap_or_else(|| panic!("the test API server does not serve {}", K::plural(&())));
        store.kinds[index].clone()
    }

    fn index(&self, kind: &ResourceKind) -> usize {
        lock(&self.shared.store)
            .kind_index(&kind.group, &kind.version, &kind.plural)
            .unwrap_or_else(|| panic!("the test API server does not serve {}", kind.qualified()))
    }

    // ---- objects ----

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).resource_version()
    }

    /// One object as stored (namespace ignored for cluster-scoped kinds).
    pub fn get(&self, kind: &ResourceKind, namespace: &str, name: &str) -> Option<Value> {
        let k = self.index(kind);
        lock(&self.shared.store).get(k, namespace, name).cloned()
    }

    /// One object, deserialized. Panics when it does not deserialize.
    pub fn get_as<K: Resource<DynamicType = ()> + DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<K> {
        self.get(&self.kind_of::<K>(), namespace, name).map(|v| {
            serde_json::from_value(v)
                .unwrap_or_else(|e| panic!("stored object does not deserialize: {e}"))
        })
    }

    /// All objects of a kind, in one namespace or (with `None`) all.
    pub fn list(&self, kind: &ResourceKind, namespace: Option<&str>) -> Vec<Value> {
        let k = self.index(kind);
        let filter = store::Filter {
            namespace: namespace.map(str::to_owned),
            ..Default::default()
        };
        lock(&self.shared.store).select(k, &filter)
    }

    /// All objects of a kind, deserialized.
    pub fn list_as<K: Resource<DynamicType = ()> + DeserializeOwned>(
        &self,
        namespace: Option<&str>,
    ) -> Vec<K> {
        self.list(&self.kind_of::<K>(), namespace)
            .into_iter()
            .map(|v| {
                serde_json::from_value(v)
                    .unwrap_or_else(|e| panic!("stored object does not deserialize: {e}"))
            })
            .collect()
    }

    /// Stores an object as given, status and all, creating or replacing it (no
    /// precondition, no status isolation); the namespace comes from `metadata.namespace`
    /// (default `default`). The object must pass the same validation as a write through the
    /// API (schema, defaults, metadata), and its namespace must exist. Emits the watch
    /// event. Panics when the object is refused.
    pub fn put(&self, kind: &ResourceKind, object: Value) -> Value {
        let k = self.index(kind);
        // Warnings (pruned fields) belong to no request: none is answered here.
        let (stored, _warnings) = self.shared.write(|s| s.put(k, object, true));
        stored.unwrap_or_else(|e| panic!("put refused: {}", e.message))
    }

    /// [`TestApiServer::put`] without any validation: stores an object a real API server
    /// would refuse today, as one stored under an older, laxer CRD schema can be. A test
    /// that uses it must say which rule the object breaks and why the scenario needs it.
    pub fn put_unchecked(&self, kind: &ResourceKind, object: Value) -> Value {
        let k = self.index(kind);
        self.shared
            .with_store(|s| s.put(k, object, false))
            .unwrap_or_else(|e| panic!("put_unchecked refused: {}", e.message))
    }

    /// Creates many objects at once (namespaces included, as needed), for realistic
    /// populations: a real cluster holds Helm release Secrets, tokens and the objects of
    /// other teams, which watches and lists see too. Each object is validated as a create.
    pub fn seed(&self, kind: &ResourceKind, objects: impl IntoIterator<Item = Value>) {
        let k = self.index(kind);
        let namespaces = self.index(&kinds::NAMESPACES);
        // Warnings (pruned fields) belong to no request: none is answered here.
        let ((), _warnings) = self.shared.write(|s| {
            for object in objects {
                if let Some(ns) = object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    && s.get(namespaces, "", ns).is_none()
                {
                    let namespace = namespace_object(ns);
                    s.put(namespaces, namespace, true)
                        .unwrap_or_else(|e| panic!("seed namespace refused: {}", e.message));
                }
                s.put(k, object, true)
                    .unwrap_or_else(|e| panic!("seed refused: {}", e.message));
            }
        });
    }

    /// Seeds `count` Secrets of `bytes` random bytes each, typed and named as Helm release
    /// Secrets (`sh.helm.release.v1.<release>.v<n>`), spread over `namespaces` namespaces
    /// named `tenant-<i>`: the unrelated Secrets every real cluster holds.
    pub fn seed_unrelated_secrets(&self, count: usize, bytes: usize, namespaces: usize) {
        use base64::Engine as _;
        let namespaces = namespaces.max(1);
        let secrets = (0..count).map(|i| {
            let payload: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "helm.sh/release.v1",
                "metadata": {
                    "name": format!("sh.helm.release.v1.app-{i}.v1"),
                    "namespace": format!("tenant-{}", i % namespaces),
                    "labels": {"owner": "helm", "name": format!("app-{i}"), "version": "1"},
                },
                "data": {"release": base64::engine::general_purpose::STANDARD.encode(payload)},
            })
        });
        self.seed(&kinds::SECRETS, secrets);
    }

    /// [`TestApiServer::put`] for a typed object.
    pub fn put_as<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(
        &self,
        object: &K,
    ) -> K {
        let value = serde_json::to_value(object).expect("serialize the object");
        let stored = self.put(&self.kind_of::<K>(), value);
        serde_json::from_value(stored).expect("stored object deserializes")
    }

    /// Creates an object as a `POST` would (status dropped for kinds with `/status`).
    pub fn create(
        &self,
        kind: &ResourceKind,
        namespace: &str,
        object: Value,
    ) -> Result<Value, ApiError> {
        let k = self.index(kind);
        let opts = store::WriteOptions {
            manager: "test".into(),
            manager_given: true,
            force: false,
            dry_run: false,
            field_validation: store::FieldValidation::Warn,
        };
        // Warnings (pruned fields) belong to no request: none is answered here.
        let (created, _warnings) = self.shared.write(|s| s.create(k, namespace, object, &opts));
        created
    }

    /// Creates a namespace (as a cluster administrator would); one that exists already is
    /// left as it is.
    pub fn create_namespace(&self, name: &str) {
        match self.create(&kinds::NAMESPACES, "", namespace_object(name)) {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => panic!("namespace {name} could not be created: {}", e.message),
        }
    }

    /// Deletes an object as a `DELETE` would (finalizers honoured).
    pub fn delete(
        &self,
        kind: &ResourceKind,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let k = self.index(kind);
        self.shared
            .with_store(|s| s.delete(k, namespace, name, &Value::Null, false))
    }

    // ---- faults ----

    /// Ends every open watch stream now (cleanly, as when the API server restarts or a
    /// load balancer drops idle connections). Watchers reconnect from their last version.
    pub fn close_watches(&self) {
        self.shared.close_watches.send_modify(|n| *n += 1);
    }

    /// Adds a fault rule (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).add(fault);
    }

    /// Answers the next `n` requests with `code` and a `Status` body.
    pub fn fail_next(&self, n: u32, code: u16) {
        self.inject(Fault::any().status(code).times(n));
    }

    /// Answers the next `n` requests that `filter` selects with `code`.
    pub fn fail_next_matching(
        &self,
        n: u32,
        code: u16,
        filter: impl Fn(&RequestRecord) -> bool + Send + Sync + 'static,
    ) {
        self.inject(Fault::any().matching(filter).status(code).times(n));
    }

    /// Answers every request with `code` for `duration`.
    pub fn fail_for(&self, duration: Duration, code: u16) {
        self.inject(Fault::any().status(code).for_duration(duration));
    }

    /// Holds every request for `delay` before serving it, for `duration`.
    pub fn slow_for(&self, duration: Duration, delay: Duration) {
        self.inject(Fault::any().hold(delay).for_duration(duration));
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Forgets the watch history: watches from any version issued so far get 410 Gone.
    pub fn compact(&self) {
        self.shared.with_store(Store::compact);
    }

    /// Keeps at most `limit` watch events from now on.
    pub fn set_history_limit(&self, limit: usize) {
        self.shared.with_store(|s| {
            let mut limits = s.history_limits();
            limits.max_events = limit;
            limits.min_events = limits.min_events.min(limit);
            s.set_history_limits(limits);
        });
    }

    // ---- request log ----

    /// Every request so far (since the last [`TestApiServer::clear_log`]).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// How many logged requests satisfy `predicate`.
    pub fn count(&self, predicate: impl Fn(&RequestRecord) -> bool) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| predicate(r))
            .count()
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        lock(&self.shared.log).clear();
    }

    // ---- waiting ----

    /// Waits until `predicate` holds, re-checking after every change to the store or the
    /// request log. Returns false when `timeout` passes first.
    pub async fn wait_for(
        &self,
        mut predicate: impl FnMut(&Self) -> bool,
        timeout: Duration,
    ) -> bool {
        self.wait_for_value(|s| predicate(s).then_some(()), timeout)
            .await
            .is_some()
    }

    /// Waits until `f` returns a value, re-checking after every change to the store or the
    /// request log. Returns `None` when `timeout` passes first.
    pub async fn wait_for_value<T>(
        &self,
        mut f: impl FnMut(&Self) -> Option<T>,
        timeout: Duration,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.shared.changes.subscribe();
        loop {
            changes.borrow_and_update();
            if let Some(value) = f(self) {
                return Some(value);
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return f(self);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return f(self),
            }
        }
    }
}
