//! An in-memory Kubernetes API server for the controller tests.
//!
//! # Why it exists
//! No `kube-apiserver` can be installed on the machines that build this project (no registry
//! they reach ships one, and there is no container engine), yet the controller has to be
//! proven end to end against a real HTTP API with watches that break, objects that change
//! under it, and an API that fails (DESIGN 8, "controller" layer). This server speaks the
//! part of the Kubernetes REST protocol the operator uses, over real HTTP on 127.0.0.1, so an
//! unmodified `kube::Client`, `kube::runtime::watcher` and `Controller` run against it. The
//! real-cluster layer (`CAMS_E2E=1`) guards against its blind spots.
//!
//! # Use
//! ```ignore
//! mod support;
//! use support::kube_server::{TestApiServer, kinds};
//!
//! let (server, client) = TestApiServer::start().await;
//! let api: kube::Api<ChatGroup> = kube::Api::namespaced(client, "default");
//! // ... drive the code under test, then:
//! assert!(server.wait_for(|s| s.count(|r| r.is_status_patch()) == 1, Duration::from_secs(10)).await);
//! ```
//! The handle shuts the server down when dropped. It is `Send + Sync`: share it with
//! `Arc` when a spawned task needs it. For the built binary, write
//! [`TestApiServer::kubeconfig_yaml`] to a file and point `KUBECONFIG` at it.
//!
//! Test-side backdoors ([`TestApiServer::put`], [`TestApiServer::get`], ...) read and write
//! the store directly (not logged, no faults) and emit the same watch events as the API.
//!
//! # What is emulated
//! - Resources from a table of [`ResourceKind`]s ([`kinds::DEFAULT`]: ChatGroups with
//!   `/status`, Secrets, `events.k8s.io/v1` and core `v1` Events, Leases), namespaced paths
//!   (`/apis/G/V/namespaces/NS/PLURAL[/NAME[/status]]`, `/api/v1/...`) and the
//!   all-namespaces collection (`/apis/G/V/PLURAL`). Any namespace name is accepted; no
//!   Namespace objects exist. `/version` answers; every other path is a 404 `Status`.
//! - One global resourceVersion counter; list responses carry it, objects carry the version
//!   of their last change, and a write that changes nothing (managed-field timestamps aside)
//!   neither bumps it nor emits a watch event.
//! - list with `labelSelector` (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`),
//!   `fieldSelector` (`metadata.name`, `metadata.namespace`; others are a 400, as for custom
//!   resources), and `limit`/`continue` paging over a consistent snapshot.
//!   `resourceVersion`/`resourceVersionMatch` are accepted and the latest state is served.
//! - watch from a resourceVersion: chunked JSON lines of ADDED/MODIFIED/DELETED, replayed
//!   from a bounded history; selector transitions appear as ADDED/DELETED; BOOKMARKs every
//!   bookmark interval (1 s by default) when `allowWatchBookmarks=true`; an ERROR event with
//!   410 Expired when the version is older than the history; `timeoutSeconds` ends the
//!   stream; version `0` (or none) and `sendInitialEvents=true` start with ADDED events for
//!   the current objects (the latter ending with the `k8s.io/initial-events-end` bookmark).
//! - get, create (`generateName`, 409 AlreadyExists, uid, creationTimestamp,
//!   `generation: 1`), replace (409 Conflict on a stale `metadata.resourceVersion`; custom
//!   resources require one, 422 otherwise), merge patch, strategic merge patch (as a merge
//!   patch for built-in kinds, 415 for custom resources), server-side apply (JSON or YAML
//!   body, `fieldManager` required, `force`; creates a missing object), delete (409 on failed
//!   preconditions), deletecollection, and `dryRun=All`.
//! - The `/status` subresource: writes to it change only `.status`; writes to the object
//!   ignore `.status`; status is dropped on create. `metadata.generation` moves only when
//!   something outside `metadata` and `status` changes, and when deletion starts.
//! - Finalizers: delete sets `deletionTimestamp` and keeps the object while finalizers
//!   remain; the update that removes the last one is followed by its DELETED event.
//! - Field ownership, simplified: `metadata.managedFields` records one entry per manager,
//!   operation and subresource, with a `fieldsV1` set where lists are atomic. Apply removes
//!   fields its manager applied before and omits now (unless another manager owns them), and
//!   fails with 409 when it would change a field another manager owns, unless forced; updates
//!   take ownership of the fields they change. A request without `fieldManager` is
//!   recorded under its User-Agent's product name, or `unknown` (kube-rs sends none), so
//!   an apply that changes fields created by a plain `Api::create` conflicts, as on a real
//!   cluster: apply with `force()` or create with the same manager.
//! - Metadata-only requests (`Accept: ...;as=PartialObjectMetadata`), as `metadata_watcher`
//!   sends.
//! - Faults: [`TestApiServer::close_watches`], [`TestApiServer::fail_next`],
//!   [`TestApiServer::fail_for`], [`TestApiServer::slow_for`], [`TestApiServer::compact`],
//!   [`TestApiServer::set_history_limit`]. Note that `kube::Client` retries 429, 503 and 504
//!   itself (up to 15 times with backoff): inject 500 to make an error reach the caller.
//!
//! # What is not emulated
//! Authentication, authorization (RBAC is checked by the chart tests instead), admission,
//! OpenAPI/CEL validation and defaulting of the CRD schema (the controller must cope with
//! invalid specs anyway), discovery, JSON patch (415), protobuf, table output, per-element
//! ownership of list items (lists are atomic), graceful deletion periods, namespace
//! lifecycle, garbage collection of owned objects, event TTLs, expiry of `continue` tokens,
//! `resourceVersion` semantics on get and list (the latest state is served), and the shared
//! storage of core and `events.k8s.io` Events (they are separate collections here).

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

    /// True for a request that may change state (create, update, patch, delete).
    pub fn is_write(&self) -> bool {
        matches!(
            self.kind,
            RequestKind::Create
                | RequestKind::Update { .. }
                | RequestKind::Patch { .. }
                | RequestKind::Delete
                | RequestKind::DeleteCollection
        )
    }

    /// True for a `PATCH` of `/status` (any patch type).
    pub fn is_status_patch(&self) -> bool {
        matches!(&self.kind, RequestKind::Patch { subresource: Some(s), .. } if s == "status")
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
        self.shared
            .with_store(|s| s.put(k, object, true))
            .unwrap_or_else(|e| panic!("put refused: {}", e.message))
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
        self.shared.with_store(|s| {
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
        self.shared
            .with_store(|s| s.create(k, namespace, object, &opts))
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
