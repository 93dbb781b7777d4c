//! The controller: kube-rs wiring around the pure reconcile core.
//!
//! One kube-rs [`Controller`] per watched scope (all namespaces, or one per `--namespace`)
//! drives [`reconcile`]. ChatGroups are watched as untyped objects and parsed per reconcile, so
//! one malformed object gets an `InvalidSpec` status instead of stalling the watch of all the
//! others. Secrets in the watched scope are watched too: a change requeues exactly the
//! ChatGroups that use that Secret, so a rotation needs no restart.
//!
//! Every CAMS call goes through [`flow::Guarded`] (global token bucket and concurrency limit);
//! status is written with one server-side apply patch to `/status` under the `cams-operator`
//! field manager, and only when something other than timestamps changed.

pub mod events;
pub mod flow;
pub mod leader;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::admin::Readiness;
use crate::cams::{CamsApi, Credentials};
use crate::crd::{API_GROUP, API_VERSION, ChatGroup, ChatGroupStatus, FIELD_MANAGER, KIND, PLURAL};
use crate::metrics::{ErrorLabels, Metrics, ReconcileLabels, ReconcileResult};
use crate::reconcile::credentials;
use crate::reconcile::engine::{self, Input, Outcome, Requeue};
use crate::reconcile::observe::SharedLister;

use self::flow::Guarded;

/// Timeout of each Kubernetes API call the reconcile makes itself (Secret reads, status and
/// Event writes).
pub const KUBE_CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one ListChatGroup walk of a space is shared by all objects of that space.
pub const DEFAULT_LIST_SHARE_WINDOW: Duration = Duration::from_secs(10);
/// Requeue delay after a failure of the operator's own Kubernetes API calls.
pub const KUBE_ERROR_REQUEUE: Duration = Duration::from_secs(10);

/// Which ChatGroups this operator instance handles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Namespaces to watch; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// Label selector for sharding.
    pub selector: Option<String>,
}

/// Failures of the controller's own Kubernetes I/O. CAMS failures are not errors here: the
/// reconcile core turns them into status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a Secret failed (other than not found).
    #[error("reading Secret {namespace}/{name} failed: {source}")]
    ReadSecret {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("writing the status of ChatGroup {namespace}/{name} failed: {source}")]
    PatchStatus {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// A Kubernetes API call did not finish in time.
    #[error("{operation} timed out after {timeout:?}")]
    Timeout {
        /// What was attempted.
        operation: &'static str,
        /// The timeout.
        timeout: Duration,
    },
    /// The object has no namespace or name (cannot happen for namespaced objects).
    #[error("object has no namespace or name")]
    MissingKey,
}

impl Error {
    /// Bounded category for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::ReadSecret { .. } => "kube_read_secret",
            Error::PatchStatus { .. } => "kube_patch_status",
            Error::Timeout { .. } => "kube_timeout",
            Error::MissingKey => "kube_missing_key",
        }
    }
}

/// What identifies the inputs of a reconcile that ended in a terminal failure: the reconcile
/// is not repeated (no CAMS call) until one of them changes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct InputFingerprint {
    generation: Option<i64>,
    paused: bool,
    secret_versions: Vec<(String, Option<String>)>,
}

/// Shared state of every reconcile.
pub struct Context<C> {
    client: Client,
    cams: Guarded<C>,
    lister: SharedLister,
    metrics: Metrics,
    operator_credentials: Option<Credentials>,
    terminal: Mutex<HashMap<ObjectRef<DynamicObject>, InputFingerprint>>,
    instance: String,
}

impl<C: CamsApi> Context<C> {
    /// Context for `run`: `cams` is wrapped in the global budget (`qps`, `concurrency`).
    pub fn new(
        client: Client,
        cams: C,
        qps: f64,
        concurrency: usize,
        metrics: Metrics,
        operator_credentials: Option<Credentials>,
        list_share_window: Duration,
    ) -> Self {
        Context {
            client,
            cams: Guarded::new(cams, qps, concurrency, metrics.clone()),
            lister: SharedLister::new(list_share_window),
            metrics,
            operator_credentials,
            terminal: Mutex::new(HashMap::new()),
            instance: std::env::var("POD_NAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| FIELD_MANAGER.to_owned()),
        }
    }

    /// The metrics this context records.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The ApiResource of ChatGroup, for the untyped watch.
pub fn chatgroup_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(API_GROUP, API_VERSION, KIND), PLURAL)
}

/// Runs the controllers for `scope` until `shutdown` flips to `true`, then lets in-flight
/// reconciles finish (CAMS calls finish or time out; a status patch is one request, so none is
/// left half written). `readiness` is set once every watch has completed its first list.
pub async fn run<C: CamsApi + 'static>(
    ctx: Arc<Context<C>>,
    scope: Scope,
    readiness: Readiness,
    shutdown: watch::Receiver<bool>,
) {
    let namespaces: Vec<Option<String>> = if scope.namespaces.is_empty() {
        vec![None]
    } else {
        scope.namespaces.iter().cloned().map(Some).collect()
    };
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for namespace in namespaces {
        let (controller, store) = build_controller(&ctx, namespace.as_deref(), &scope, shutdown.clone());
        stores.push(store);
        let ctx = ctx.clone();
        controllers.push(
            controller
                .run(reconcile_entry::<C>, error_policy::<C>, ctx)
                .for_each(|result| async move {
                    if let Err(err) = result {
                        debug!(error = %err, "controller event");
                    }
                })
                .boxed(),
        );
    }
    tokio::spawn(async move {
        for store in stores {
            if store.wait_until_ready().await.is_err() {
                return;
            }
        }
        info!("first list of ChatGroups completed; ready");
        readiness.set_ready();
    });
    futures::future::join_all(controllers).await;
    info!("controllers stopped");
}

fn build_controller<C: CamsApi + 'static>(
    ctx: &Arc<Context<C>>,
    namespace: Option<&str>,
    scope: &Scope,
    shutdown: watch::Receiver<bool>,
) -> (Controller<DynamicObject>, Store<DynamicObject>) {
    let resource = chatgroup_resource();
    let client = ctx.client.clone();
    let (groups, secrets): (Api<DynamicObject>, Api<Secret>) = match namespace {
        Some(ns) => (
            Api::namespaced_with(client.clone(), ns, &resource),
            Api::namespaced(client, ns),
        ),
        None => (Api::all_with(client.clone(), &resource), Api::all(client)),
    };
    let mut config = watcher::Config::default();
    if let Some(selector) = &scope.selector {
        config = config.labels(selector);
    }
    let controller = Controller::new_with(groups, config, resource.clone());
    let store = controller.store();
    let mapper_store = store.clone();
    let controller = controller
        .watches_with(secrets, resource, watcher::Config::default(), move |secret: Secret| {
            dependents_of_secret(&mapper_store, &secret)
        })
        .graceful_shutdown_on(async move {
            let mut shutdown = shutdown;
            let _ = shutdown.wait_for(|stop| *stop).await;
        });
    (controller, store)
}

/// The ChatGroups in `store` that use `secret` (explicitly, or as the namespace default).
fn dependents_of_secret(store: &Store<DynamicObject>, secret: &Secret) -> Vec<ObjectRef<DynamicObject>> {
    let namespace = secret.namespace();
    let name = secret.name_any();
    store
        .state()
        .into_iter()
        .filter(|group| group.namespace() == namespace)
        .filter(|group| {
            parse_chatgroup(group)
                .map(|cg| credentials::secret_names(&cg.spec).contains(&name))
                .unwrap_or(false)
        })
        .map(|group| ObjectRef::from_obj_with(group.as_ref(), chatgroup_resource()))
        .collect()
}

/// Parses an untyped object as a ChatGroup; the error names the offending field path.
pub fn parse_chatgroup(object: &DynamicObject) -> Result<ChatGroup, String> {
    let value = match serde_json::to_value(object) {
        Ok(value) => value,
        Err(err) => return Err(err.to_string()),
    };
    serde_path_to_error::deserialize::<_, ChatGroup>(value).map_err(|err| {
        let path = err.path().to_string();
        format!("{path}: {}", err.inner())
    })
}

async fn reconcile_entry<C: CamsApi + 'static>(
    object: Arc<DynamicObject>,
    ctx: Arc<Context<C>>,
) -> Result<Action, Error> {
    let key = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    let span = info_span!("reconcile", object = %key);
    let started = tokio::time::Instant::now();
    let result = reconcile(object, &ctx).instrument(span).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile<C: CamsApi + 'static>(
    object: Arc<DynamicObject>,
    ctx: &Context<C>,
) -> Result<Action, Error> {
    let namespace = object.namespace().ok_or(Error::MissingKey)?;
    let name = object.meta().name.clone().ok_or(Error::MissingKey)?;
    let object_ref = ObjectRef::from_obj_with(object.as_ref(), chatgroup_resource());
    let now = jiff::Timestamp::now();

    let chatgroup = match parse_chatgroup(&object) {
        Ok(cg) => cg,
        Err(problem) => {
            let old = object
                .data
                .get("status")
                .and_then(|s| serde_json::from_value::<ChatGroupStatus>(s.clone()).ok());
            let outcome = engine::unparseable(object.meta().generation, old.as_ref(), &problem, now);
            finish(ctx, &object, &namespace, &name, old.as_ref(), &outcome).await?;
            return Ok(Action::await_change());
        }
    };

    // Credentials: read the Secrets this object depends on.
    let secret_names = credentials::secret_names(&chatgroup.spec);
    let mut secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut secret_versions = Vec::new();
    let secret_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    for secret_name in &secret_names {
        let secret = tokio::time::timeout(KUBE_CALL_TIMEOUT, secret_api.get_opt(secret_name))
            .await
            .map_err(|_| Error::Timeout {
                operation: "reading a Secret",
                timeout: KUBE_CALL_TIMEOUT,
            })?
            .map_err(|source| Error::ReadSecret {
                namespace: namespace.clone(),
                name: secret_name.clone(),
                source,
            })?;
        secret_versions.push((
            secret_name.clone(),
            secret.as_ref().and_then(|s| s.resource_version()),
        ));
        if let Some(secret) = secret {
            let data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            secrets.insert(secret_name.clone(), data);
        }
    }
    let fingerprint = InputFingerprint {
        generation: chatgroup.metadata.generation,
        paused: chatgroup.is_paused(),
        secret_versions,
    };

    // Terminal failures wait for a change of generation, pause state or Secret.
    if let Ok(terminal) = ctx.terminal.lock() {
        if terminal.get(&object_ref) == Some(&fingerprint) {
            debug!("inputs unchanged since a terminal failure; waiting for a change");
            return Ok(Action::await_change());
        }
    }
    // A recoverable failure is retried at `status.retry.nextAttemptTime`, not sooner, even when
    // a watch event (such as our own status patch) triggers a reconcile.
    if let Some(wait) = engine::backoff_remaining(&chatgroup, now) {
        debug!(?wait, "backing off after a recoverable failure");
        return Ok(Action::requeue(wait));
    }

    let resolved = credentials::resolve(
        &chatgroup.spec,
        &|name: &str| secrets.get(name).cloned(),
        ctx.operator_credentials.as_ref(),
    );
    let input = Input {
        object: &chatgroup,
        credentials: resolved,
        endpoint_override: None,
        now,
        jitter: rand::random::<f64>(),
    };
    let outcome = engine::reconcile(input, &ctx.cams, &ctx.lister).await;
    finish(ctx, &object, &namespace, &name, chatgroup.status.as_ref(), &outcome).await?;

    if let Ok(mut terminal) = ctx.terminal.lock() {
        match outcome.requeue {
            Requeue::AwaitChange => {
                terminal.insert(object_ref, fingerprint);
            }
            Requeue::After(_) => {
                terminal.remove(&object_ref);
            }
        }
    }
    Ok(match outcome.requeue {
        Requeue::After(delay) => Action::requeue(delay),
        Requeue::AwaitChange => Action::await_change(),
    })
}

/// Writes the status (when more than timestamps changed), publishes Events, records metrics.
async fn finish<C: CamsApi>(
    ctx: &Context<C>,
    object: &DynamicObject,
    namespace: &str,
    name: &str,
    old: Option<&ChatGroupStatus>,
    outcome: &Outcome,
) -> Result<(), Error> {
    let result = if outcome.failure.is_some() {
        ReconcileResult::Failure
    } else {
        ReconcileResult::Success
    };
    ctx.metrics
        .reconciles
        .get_or_create(&ReconcileLabels { result })
        .inc();
    if let Some(failure) = &outcome.failure {
        ctx.metrics
            .reconcile_errors
            .get_or_create(&ErrorLabels {
                category: failure.category,
            })
            .inc();
        warn!(reason = %failure.reason, message = %failure.message, "reconcile failed");
    }
    if outcome.drift_found {
        ctx.metrics.drift_detected.inc();
    }
    if engine::status_changed(old, &outcome.status) {
        patch_status(ctx, namespace, name, &outcome.status).await?;
    }
    for event in engine::events(old, outcome) {
        events::publish(&ctx.client, object, &ctx.instance, &event).await;
    }
    Ok(())
}

async fn patch_status<C>(
    ctx: &Context<C>,
    namespace: &str,
    name: &str,
    status: &ChatGroupStatus,
) -> Result<(), Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &chatgroup_resource());
    let body = serde_json::json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": KIND,
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    tokio::time::timeout(KUBE_CALL_TIMEOUT, api.patch_status(name, &params, &Patch::Apply(&body)))
        .await
        .map_err(|_| Error::Timeout {
            operation: "writing the status",
            timeout: KUBE_CALL_TIMEOUT,
        })?
        .map_err(|source| Error::PatchStatus {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        })?;
    ctx.metrics.status_patches.inc();
    debug!("status written");
    Ok(())
}

fn error_policy<C: CamsApi>(_object: Arc<DynamicObject>, error: &Error, ctx: Arc<Context<C>>) -> Action {
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            category: error.category(),
        })
        .inc();
    warn!(error = %error, "reconcile could not finish; retrying");
    let jitter = 1.0 + rand::random::<f64>() * 0.5;
    Action::requeue(KUBE_ERROR_REQUEUE.mul_f64(jitter))
}

/// Resolves when SIGTERM or Ctrl-C arrives.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Anything that must be driven to completion with the controller.
pub type BoxFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
