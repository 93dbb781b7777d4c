//! The controller: kube-rs wiring around the pure reconcile core.
//!
//! One kube-rs [`Controller`] per watched scope (all namespaces, or one per `--namespace`)
//! drives [`reconcile`]. ChatGroups are watched in the compact form of [`cached`]: only what
//! reconciling reads is kept, and the spec is parsed once as it arrives, so one malformed
//! object gets an `InvalidSpec` status instead of stalling the watch of all the others.
//! Secrets in the watched scope are watched too: a change requeues exactly the ChatGroups that
//! use that Secret, so a rotation needs no restart.
//!
//! Every CAMS call goes through [`flow::Guarded`] (global token bucket and concurrency limit);
//! status is written with one server-side apply patch to `/status` under the `cams-operator`
//! field manager, and only when something other than timestamps changed.
//! `cams-operator run` builds the Kubernetes client with [`kube_client::client`], so every
//! request to the API server is paced by one budget and by the server's `Retry-After`.

pub mod cached;
pub mod command;
pub mod events;
pub mod flow;
pub mod kube_client;
pub mod leader;
pub mod packed;
pub mod preflight;
pub mod secrets;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::admin::Readiness;
use crate::cams::{CamsApi, Credentials};
use crate::crd::{
    API_GROUP, API_VERSION, ChatGroup, ChatGroupStatus, DEFAULT_SECRET_NAME, FIELD_MANAGER, KIND,
    PLURAL, Time,
};
use crate::identity::OperatorIdentity;
use crate::metrics::{ErrorLabels, Metrics, RESULT_FAILURE, RESULT_SUCCESS, ReconcileLabels};
use crate::reconcile::credentials::{
    self, CredentialsError, Decision, IdentityNamespaces, OperatorFallback,
};
use crate::reconcile::engine::{self, Input, Outcome, Requeue};
use crate::reconcile::observe::{DEFAULT_LIST_WINDOW, SharedLister};

use self::cached::CachedChatGroup;
use self::flow::Guarded;
use self::packed::Packed;

/// Timeout of each Kubernetes API call the reconcile makes itself (Secret reads, status and
/// Event writes), waiting for the client's budget included. It is long because waiting is
/// what the API server asks for when it answers `Retry-After` (see [`kube_client`]); each HTTP
/// attempt has a shorter bound of its own ([`kube_client::ATTEMPT_TIMEOUT`]).
pub const KUBE_CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the per-object memory is pruned of objects no longer watched.
pub const MEMORY_PRUNE_INTERVAL: Duration = Duration::from_secs(600);
/// How often readiness (the first list having completed) is checked.
pub const READY_POLL: Duration = Duration::from_millis(100);
/// Requeue delay after a failure of the operator's own Kubernetes API calls.
pub const KUBE_ERROR_REQUEUE: Duration = Duration::from_secs(10);
/// Reconciles in flight per CAMS call slot (`--concurrency`). Reconciles beyond the bound wait
/// in the controller's queue instead of all starting at once: at a cold start of 10,000
/// objects, unbounded reconciles would each hold their object, Secret and pending request
/// while queueing for the CAMS budget.
pub const RECONCILES_PER_CAMS_SLOT: usize = 4;

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

/// The controller's clock. Real time in production; tests and benchmarks may compress time
/// (`scale` simulated seconds per real second) so that resync intervals of minutes pass in
/// seconds: the reconcile core (and the listing window) sees the simulated time, and requeue
/// delays are converted back to real time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin_real: std::time::Instant,
    origin: jiff::Timestamp,
    scale: f64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::real()
    }
}

impl Clock {
    /// Wall-clock time.
    pub fn real() -> Self {
        Clock::scaled(1.0)
    }

    /// Time running `scale` times faster than the wall clock, starting now.
    pub fn scaled(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale >= 1.0 {
            scale
        } else {
            1.0
        };
        Clock {
            origin_real: std::time::Instant::now(),
            origin: jiff::Timestamp::now(),
            scale,
        }
    }

    /// The current (possibly simulated) time.
    pub fn now(&self) -> jiff::Timestamp {
        if self.scale == 1.0 {
            return jiff::Timestamp::now();
        }
        let elapsed = self.origin_real.elapsed().mul_f64(self.scale);
        jiff::SignedDuration::try_from(elapsed)
            .ok()
            .and_then(|d| self.origin.checked_add(d).ok())
            .unwrap_or_else(jiff::Timestamp::now)
    }

    /// The real duration of a simulated `delay`.
    pub fn to_real(&self, delay: Duration) -> Duration {
        delay.div_f64(self.scale)
    }
}

/// Settings of a [`Context`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// Global CAMS request budget, requests per second.
    pub cams_qps: f64,
    /// Most CAMS calls in flight.
    pub concurrency: usize,
    /// How long one ListChatGroup walk of a space is shared.
    pub list_share_window: Duration,
    /// The operator's own identity, the last step of credential resolution.
    pub operator_identity: OperatorIdentity,
    /// The namespaces whose ChatGroups may use `operator_identity` when no Secret applies
    /// (`--identity-namespaces`). None by default: `cams-operator run` sets it from the flag.
    pub identity_namespaces: IdentityNamespaces,
    /// The clock.
    pub clock: Clock,
    /// What `/readyz` reports: the first list done, and no permission problem.
    pub readiness: Readiness,
    /// This replica's name, read once at start-up: the Lease holder identity, the Events'
    /// `reportingInstance` and the instance named in the CAMS `User-Agent`.
    pub instance: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cams_qps: 5.0,
            concurrency: 4,
            list_share_window: DEFAULT_LIST_WINDOW,
            operator_identity: OperatorIdentity::None,
            identity_namespaces: IdentityNamespaces::none(),
            clock: Clock::real(),
            readiness: Readiness::default(),
            instance: FIELD_MANAGER.to_owned(),
        }
    }
}

/// The operations whose refusal by the API server (403) makes `/readyz` fail with the reason
/// until they succeed again.
pub mod operations {
    /// Watching ChatGroups and Secrets.
    pub const WATCH: &str = "watch ChatGroups and Secrets";
    /// Reading the Secrets ChatGroups use.
    pub const READ_SECRETS: &str = "read Secrets";
    /// Writing ChatGroup status.
    pub const WRITE_STATUS: &str = "write ChatGroup status";
    /// Creating Events.
    pub const CREATE_EVENTS: &str = "create Events";
}

/// Shared state of every reconcile.
pub struct Context<C> {
    client: Client,
    cams: Guarded<C>,
    lister: SharedLister,
    metrics: Metrics,
    operator_identity: OperatorIdentity,
    identity_namespaces: IdentityNamespaces,
    clock: Clock,
    memory: Mutex<HashMap<MemoryKey, Memory>>,
    instance: String,
    max_reconciles: u16,
    readiness: Readiness,
    secrets: secrets::Secrets,
}

/// The status this operator's last reconcile of an object concluded (written, or still to be
/// written when its patch failed), and the resourceVersions older than that write: the one
/// read before writing, that of the `Reconciling` mark written first, if any, and — when the
/// reconcile itself started from a stale copy — every version its predecessor superseded and
/// wrote. The watch cache can still hold one of them when the next reconcile starts (a
/// trigger queued during the reconcile runs as soon as it ends, and a requeue fires whether
/// or not the watch has caught up): that reconcile uses the status concluded instead of the
/// stale one, which would otherwise repeat the CAMS write or write an older status back.
#[derive(Clone, Debug)]
struct OwnWrite {
    /// Oldest first; at most [`MAX_SUPERSEDED`].
    superseded: Vec<Option<String>>,
    /// The status as packed JSON: every object holds one between a write and the next quiet
    /// reconcile (a whole cold start), so it is kept as small as the watch cache keeps it.
    status: Packed,
    /// The status patch succeeded. Until it has, the next reconcile patches again.
    written: bool,
    /// The resourceVersion the status patch gave the object, once it succeeded.
    version: Option<String>,
}

/// Most superseded resourceVersions remembered per object: a watch lagging behind more of the
/// operator's own writes than this (each reconcile writes at most two) is not expected; the
/// oldest are forgotten first.
const MAX_SUPERSEDED: usize = 16;

impl OwnWrite {
    /// Whether the copy read at `version` is older than this write.
    fn supersedes(&self, version: &Option<String>) -> bool {
        self.superseded.contains(version)
    }

    /// The versions a write made by a reconcile that read at `version` supersedes, besides
    /// its own mark: `version` itself and, when `version` was already older than this write,
    /// everything this write superseded and the version it made.
    fn superseded_by_next(own: Option<&OwnWrite>, version: &Option<String>) -> Vec<Option<String>> {
        let mut superseded = Vec::new();
        if let Some(own) = own.filter(|own| own.supersedes(version)) {
            superseded.extend(own.superseded.iter().filter(|v| *v != version).cloned());
            if own.version.is_some() {
                superseded.push(own.version.clone());
            }
        }
        superseded.push(version.clone());
        superseded
    }

    /// `status` as it is kept: packed compact JSON.
    fn text(status: &ChatGroupStatus) -> Packed {
        Packed::pack(&serde_json::to_string(status).unwrap_or_default())
    }

    /// The status kept, read back.
    fn status(&self) -> Option<ChatGroupStatus> {
        serde_json::from_str(&self.status.unpack().ok()?).ok()
    }
}

/// What the controller remembers about one object between reconciles. Losing it (a restart)
/// costs at most one extra read per space, never a write.
///
/// It belongs to one object, identified by its `uid`: an object deleted and created again
/// under the same name is a new object (its generation starts at 1 again), and nothing
/// remembered about the old one applies to it.
#[derive(Clone, Debug, Default)]
struct Memory {
    /// The `metadata.uid` of the object this memory is about.
    uid: Option<String>,
    /// The inputs of the last reconcile, when it ended in a terminal failure (boxed, as this
    /// and `own_write` are: most objects have neither, and an empty box is one word in the
    /// hash table's slot instead of the whole value).
    terminal: Option<Box<InputFingerprint>>,
    /// The last read of the group; reads that found nothing new are not written to the status
    /// (only timestamps would change), but they still schedule the next read.
    last_read: Option<LastRead>,
    /// The resourceVersions of the Secrets used by the last reconcile.
    secret_versions: Option<Vec<(String, Option<String>)>>,
    /// The status last written, and the resourceVersion of the object read before writing it.
    own_write: Option<Box<OwnWrite>>,
}

/// When an object's group was last read.
#[derive(Clone, Copy, Debug)]
struct LastRead {
    observed: Time,
    synced: Option<Time>,
}

impl Memory {
    /// Brings the status the core plans from up to date with what only memory knows: the
    /// latest read, and whether the credentials changed since the last reconcile (then the
    /// group is read again at once, so a broken rotation shows up without waiting for the
    /// resync).
    fn apply_to(&self, status: &mut ChatGroupStatus, secret_versions: &[(String, Option<String>)]) {
        let Some(observed) = status.observed.as_mut() else {
            return;
        };
        let rotated = self
            .secret_versions
            .as_deref()
            .is_some_and(|before| before != secret_versions);
        if rotated {
            observed.time = None;
            return;
        }
        if let Some(read) = self.last_read
            && observed.time.is_none_or(|t| t < read.observed)
        {
            observed.time = Some(read.observed);
            status.last_sync_time = read.synced.or(status.last_sync_time);
        }
    }
}

impl<C: CamsApi> Context<C> {
    /// A context whose CAMS calls go through `cams`, behind the global budget of `settings`.
    pub fn new(client: Client, cams: C, metrics: Metrics, settings: Settings) -> Self {
        let Settings {
            cams_qps,
            concurrency,
            list_share_window,
            operator_identity,
            identity_namespaces,
            clock,
            readiness,
            instance,
        } = settings;
        Context {
            client,
            cams: Guarded::new(cams, cams_qps, concurrency, metrics.clone()),
            lister: SharedLister::new(list_share_window).with_clock(Arc::new(move || clock.now())),
            metrics,
            operator_identity,
            identity_namespaces,
            clock,
            memory: Mutex::new(HashMap::new()),
            instance,
            max_reconciles: u16::try_from(
                concurrency.max(1).saturating_mul(RECONCILES_PER_CAMS_SLOT),
            )
            .unwrap_or(u16::MAX),
            readiness,
            secrets: secrets::Secrets::default(),
        }
    }
}

impl<C> Context<C> {
    /// The metrics this context records.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// What `/readyz` reports for this context.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Records the outcome of a Kubernetes API call of `operation`: a 403 makes `/readyz` fail
    /// with the API server's message (and is logged), a success clears it.
    fn note_access<T>(&self, operation: &'static str, result: &Result<T, kube::Error>) {
        match result {
            Err(kube::Error::Api(status)) if status.code == 403 => {
                error!(operation, reason = %status.message, "the API server refuses a permission the operator needs; /readyz fails until it is granted");
                self.readiness
                    .report_problem(operation, status.message.clone());
            }
            Ok(_) => self.readiness.clear_problem(operation),
            Err(_) => {}
        }
    }
}

/// The ApiResource of ChatGroup, for untyped requests (start-up checks, status patches).
pub fn chatgroup_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(API_GROUP, API_VERSION, KIND), PLURAL)
}

/// Runs the controllers for `scope` until `shutdown` flips to `true`, then lets in-flight
/// reconciles finish (CAMS calls finish or time out; a status patch is one request, so none is
/// left half written). `readiness` is set once every watch has completed its first list.
pub async fn run<C: CamsApi + 'static>(
    ctx: Arc<Context<C>>,
    scope: Scope,
    shutdown: watch::Receiver<bool>,
) {
    let readiness = ctx.readiness.clone();
    let namespaces: Vec<Option<String>> = if scope.namespaces.is_empty() {
        vec![None]
    } else {
        scope.namespaces.iter().cloned().map(Some).collect()
    };
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for namespace in namespaces {
        let (controller, store) =
            build_controller(&ctx, namespace.as_deref(), &scope, shutdown.clone());
        stores.push(store);
        let readiness = ctx.readiness.clone();
        let ctx = ctx.clone();
        controllers.push(
            controller
                .run(reconcile_entry::<C>, error_policy::<C>, ctx)
                .for_each(move |result| {
                    note_watch(&readiness, &result);
                    async move {
                        if let Err(err) = result {
                            debug!(error = %err, "controller event");
                        }
                    }
                }),
        );
    }
    let pruner = tokio::spawn(prune_memory(ctx.clone(), stores.clone()));
    tokio::spawn(async move {
        for store in stores {
            if !listed(&store, None).await {
                return;
            }
        }
        info!("first list of ChatGroups completed; ready");
        readiness.set_ready();
    });
    futures::future::join_all(controllers).await;
    pruner.abort();
    info!("controllers stopped");
}

/// Waits until `store` has completed its first list (at most `limit`); false when it never
/// will (its writer is gone) or the limit passed. kube-runtime's readiness signal wakes only
/// its most recent waiter, so it is polled rather than awaited once.
pub async fn listed<K: kube::Resource + Clone>(store: &Store<K>, limit: Option<Duration>) -> bool
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    let deadline = limit.map(|limit| tokio::time::Instant::now() + limit);
    loop {
        match tokio::time::timeout(READY_POLL, store.wait_until_ready()).await {
            Ok(Ok(())) => return true,
            Ok(Err(_)) => return false,
            Err(_) if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) => return false,
            Err(_) => continue,
        }
    }
}

/// A watch (or its list) the API server refuses with 403 makes `/readyz` fail with the reason;
/// kube-runtime retries it with backoff, and the next reconcile shows it works again.
fn note_watch<T>(
    readiness: &Readiness,
    result: &Result<T, kube::runtime::controller::Error<Error, watcher::Error>>,
) {
    use kube::runtime::controller::Error as ControllerError;
    let refused = match result {
        Ok(_) => {
            readiness.clear_problem(operations::WATCH);
            return;
        }
        Err(ControllerError::QueueError(
            watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            | watcher::Error::WatchFailed(kube::Error::Api(status)),
        )) => Some(status.as_ref()),
        Err(ControllerError::QueueError(watcher::Error::WatchError(status))) => {
            Some(status.as_ref())
        }
        Err(_) => None,
    };
    if let Some(status) = refused.filter(|s| s.code == 403) {
        error!(reason = %status.message, "the API server refuses to let the operator watch; /readyz fails until it is allowed");
        readiness.report_problem(operations::WATCH, status.message.clone());
    }
}

/// Forgets, every [`MEMORY_PRUNE_INTERVAL`], what the controller remembers about objects that
/// are no longer watched (deleted, or moved out of the shard), so memory follows the fleet.
async fn prune_memory<C>(ctx: Arc<Context<C>>, stores: Vec<Store<CachedChatGroup>>) {
    loop {
        tokio::time::sleep(MEMORY_PRUNE_INTERVAL).await;
        let present: std::collections::HashSet<MemoryKey> = stores
            .iter()
            .flat_map(|store| store.state())
            .map(|object| memory_key(&object))
            .collect();
        if let Ok(mut memory) = ctx.memory.lock() {
            memory.retain(|key, _| present.contains(key));
        }
        ctx.secrets.retain_referenced(&referenced_secrets(&stores));
    }
}

/// Every Secret (namespace, name) some watched ChatGroup may use.
fn referenced_secrets(
    stores: &[Store<CachedChatGroup>],
) -> std::collections::HashSet<(String, String)> {
    stores
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|object| {
            let namespace = object.namespace()?;
            let spec = object.spec().ok()?;
            Some(
                credentials::secret_names(&spec)
                    .into_iter()
                    .map(move |name| (namespace.clone(), name)),
            )
        })
        .flatten()
        .collect()
}

fn build_controller<C: CamsApi + 'static>(
    ctx: &Arc<Context<C>>,
    namespace: Option<&str>,
    scope: &Scope,
    shutdown: watch::Receiver<bool>,
) -> (Controller<CachedChatGroup>, Store<CachedChatGroup>) {
    let client = ctx.client.clone();
    // An `Api` of `PartialObjectMeta` lists and watches metadata only.
    let (groups, secrets): (Api<CachedChatGroup>, Api<PartialObjectMeta<Secret>>) = match namespace
    {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    // Secrets as metadata only, stripped to what identifies a version: their data is read
    // when a ChatGroup needs it (see `secrets`).
    let (secret_store, secret_writer) = reflector::store();
    ctx.secrets.add_store(secret_store);
    let secret_changes = reflector(
        secret_writer,
        watcher(secrets, watcher::Config::default()).modify(secrets::strip),
    )
    .touched_objects();
    let mut config = watcher::Config::default();
    if let Some(selector) = &scope.selector {
        config = config.labels(selector);
    }
    // The watcher reads each object's resourceVersion (to resume from it) before the object is
    // stowed; the store and the scheduler then key objects by name and namespace alone.
    let (store, writer) = reflector::store();
    let objects = reflector(
        writer,
        watcher(groups, config).modify(CachedChatGroup::stow),
    )
    .applied_objects();
    let controller = Controller::for_stream(objects, store.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.max_reconciles));
    let mapper_store = store.clone();
    let controller = controller
        .watches_stream(secret_changes, move |secret: PartialObjectMeta<Secret>| {
            dependents_of_secret(&mapper_store, &secret)
        })
        .graceful_shutdown_on(async move {
            let mut shutdown = shutdown;
            let _ = shutdown.wait_for(|stop| *stop).await;
        });
    (controller, store)
}

/// The ChatGroups in `store` that use `secret` (explicitly, or as the namespace default).
fn dependents_of_secret(
    store: &Store<CachedChatGroup>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<CachedChatGroup>> {
    let namespace = secret.namespace();
    let name = secret.name_any();
    store
        .state()
        .into_iter()
        .filter(|group| group.namespace() == namespace)
        .filter(|group| {
            group
                .spec()
                .is_ok_and(|spec| credentials::secret_names(&spec).contains(&name))
        })
        .map(|group| ObjectRef::from_obj(group.as_ref()))
        .collect()
}

async fn reconcile_entry<C: CamsApi + 'static>(
    object: Arc<CachedChatGroup>,
    ctx: Arc<Context<C>>,
) -> Result<Action, Error> {
    let key = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    let span = info_span!("reconcile", object = %key);
    let started = tokio::time::Instant::now();
    let (result, waits) =
        crate::metrics::measure_waits(reconcile_object(object, &ctx).instrument(span)).await;
    let elapsed = started.elapsed();
    let overhead = elapsed.saturating_sub(waits.cams);
    ctx.metrics
        .reconcile_duration
        .observe(elapsed.as_secs_f64());
    ctx.metrics
        .reconcile_overhead
        .observe(overhead.as_secs_f64());
    ctx.metrics
        .reconcile_self
        .observe(overhead.saturating_sub(waits.kube).as_secs_f64());
    result.map(|requeue| match requeue {
        Requeue::After(delay) => Action::requeue(ctx.clock.to_real(delay)),
        Requeue::AwaitChange => Action::await_change(),
    })
}

/// One reconcile of one object: read its Secrets, run the reconcile core, write the status
/// (only when more than timestamps changed) and the Events. Returns when to reconcile again.
pub async fn reconcile_object<C: CamsApi>(
    object: Arc<CachedChatGroup>,
    ctx: &Context<C>,
) -> Result<Requeue, Error> {
    let namespace = object.namespace().ok_or(Error::MissingKey)?;
    let name = object.meta().name.clone().ok_or(Error::MissingKey)?;
    let key = memory_key(&object);
    let now = ctx.clock.now();

    let read_version = object.resource_version();
    let stored_status = object.status();
    if let Some(problem) = &stored_status.problem {
        warn!(%problem, "the status does not parse; reconciling as if there were none");
    }
    let mut chatgroup = match object.with_status(stored_status.status.clone()) {
        Ok(cg) => cg,
        Err(problem) => {
            let old = stored_status.status;
            let outcome =
                engine::unparseable(object.meta().generation, old.as_ref(), &problem, now);
            finish(
                ctx,
                &object,
                &namespace,
                &name,
                (old.as_ref(), old.as_ref()),
                &outcome,
            )
            .await?;
            return Ok(outcome.requeue);
        }
    };

    // A paused object makes no calls at all, not even Secret reads.
    let (secrets, secret_versions) = if chatgroup.is_paused() {
        (BTreeMap::new(), Vec::new())
    } else {
        let names = credentials::secret_names(&chatgroup.spec);
        crate::metrics::kube_call(read_secrets(ctx, &namespace, &names)).await?
    };
    let fingerprint = InputFingerprint {
        generation: chatgroup.metadata.generation,
        paused: chatgroup.is_paused(),
        secret_versions,
    };
    let uid = object.uid();
    let memory = ctx
        .memory
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned())
        .filter(|m| m.uid == uid)
        .unwrap_or_default();
    // After a terminal failure nothing is retried until the generation, the pause annotation
    // or a Secret changes: a watch event such as our own status patch does not count.
    if memory.terminal.as_deref() == Some(&fingerprint) {
        debug!("inputs unchanged since a terminal failure; waiting for a change");
        return Ok(Requeue::AwaitChange);
    }

    let resolved = resolve_credentials(ctx, &chatgroup, &namespace, &secrets).await;
    // `stored` is the status the API server holds as far as we know (the baseline of the
    // next patch); `previous` is what the last reconcile concluded (the baseline of the
    // reconcile and of its Events). They differ while our last status patch is pending.
    let mut stored = chatgroup.status.clone();
    if let Some(own) = &memory.own_write
        && own.supersedes(&read_version)
    {
        debug!("the watch cache has not caught up with our last reconcile; using its outcome");
        chatgroup.status = own.status();
        if own.written {
            stored = own.status();
        }
    }
    let previous = chatgroup.status.clone();
    let mut superseded = OwnWrite::superseded_by_next(memory.own_write.as_deref(), &read_version);
    let mut marked = false;
    if needs_reconciling_mark(&chatgroup, resolved.is_ok()) {
        let mark = engine::reconciling_mark(previous.as_ref(), chatgroup.metadata.generation, now);
        let version =
            crate::metrics::kube_call(patch_status(ctx, &namespace, &name, &mark)).await?;
        superseded.push(version);
        stored = Some(mark);
        marked = true;
    }
    if let Some(status) = chatgroup.status.as_mut() {
        memory.apply_to(status, &fingerprint.secret_versions);
    }
    let input = Input {
        object: &chatgroup,
        credentials: resolved,
        endpoint_override: None,
        now,
        jitter: rand::random::<f64>(),
    };
    let outcome = engine::reconcile(input, &ctx.cams, &ctx.lister).await;

    // Remembered before the status is written: when the patch fails (the reconcile is then
    // retried), the next reconcile still knows what this one did — a CAMS write and its
    // RequestId are never lost, and never repeated.
    let must_write = engine::status_changed(stored.as_ref(), &outcome.status);
    let excess = superseded.len().saturating_sub(MAX_SUPERSEDED);
    superseded.drain(..excess);
    remember(ctx, key.clone(), uid.clone(), |entry| {
        if must_write || marked {
            entry.own_write = Some(Box::new(OwnWrite {
                superseded,
                status: match (must_write, stored.as_ref()) {
                    (false, Some(stored)) => OwnWrite::text(stored),
                    (false, None) => OwnWrite::text(&ChatGroupStatus::default()),
                    (true, _) => OwnWrite::text(&outcome.status),
                },
                written: !must_write,
                version: None,
            }));
        } else if entry
            .own_write
            .as_ref()
            .is_some_and(|own| !own.supersedes(&read_version))
        {
            entry.own_write = None;
        }
        entry.terminal =
            (outcome.requeue == Requeue::AwaitChange).then(|| Box::new(fingerprint.clone()));
        entry.secret_versions = Some(fingerprint.secret_versions.clone());
        if let Some(observed) = outcome.status.observed.as_ref().and_then(|o| o.time) {
            entry.last_read = Some(LastRead {
                observed,
                synced: outcome.status.last_sync_time,
            });
        }
    });
    let version = finish(
        ctx,
        &object,
        &namespace,
        &name,
        (stored.as_ref(), previous.as_ref()),
        &outcome,
    )
    .await?;
    if must_write {
        remember(ctx, key, uid, |entry| {
            if let Some(own) = entry.own_write.as_mut() {
                own.written = true;
                own.version = version;
            }
        });
    }
    Ok(outcome.requeue)
}

/// The key of an object's [`Memory`]: its namespace and name, and nothing else (an `ObjectRef`
/// would also hold room for a `uid` and a `resourceVersion` in every slot of the table).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct MemoryKey {
    namespace: Box<str>,
    name: Box<str>,
}

fn memory_key(object: &CachedChatGroup) -> MemoryKey {
    MemoryKey {
        namespace: object.namespace().unwrap_or_default().into_boxed_str(),
        name: object.name_any().into_boxed_str(),
    }
}

/// Updates what the controller remembers about the object `key` with `uid` (a memory about
/// another object of the same name is dropped first).
fn remember<C>(
    ctx: &Context<C>,
    key: MemoryKey,
    uid: Option<String>,
    update: impl FnOnce(&mut Memory),
) {
    if let Ok(mut all) = ctx.memory.lock() {
        let entry = all.entry(key).or_default();
        if entry.uid != uid {
            *entry = Memory {
                uid,
                ..Memory::default()
            };
        }
        update(entry);
    }
}

/// Whether the operator is starting on a generation it has not reported on yet (a new object,
/// or a changed spec) and will call CAMS for it: then `Reconciling=True` is written first, so
/// kstatus readers see work in progress while the call waits for the CAMS budget. Objects that
/// end without a call (paused, an invalid spec, no credentials) get their final status at once
/// instead, with no extra patch.
fn needs_reconciling_mark(chatgroup: &ChatGroup, credentials_resolved: bool) -> bool {
    let observed = chatgroup
        .status
        .as_ref()
        .and_then(|s| s.observed_generation);
    observed != chatgroup.metadata.generation
        && !chatgroup.is_paused()
        && credentials_resolved
        && crate::reconcile::validate::validate(&chatgroup.spec).is_ok()
}

/// The object's credentials (Secret named in the spec, then `cams-credentials` in the
/// namespace, then the operator's own identity). The core decides; the operator's own identity is
/// consulted (and, with RRSA, refreshed) only when no Secret applies and the object's namespace
/// may use it.
async fn resolve_credentials<C>(
    ctx: &Context<C>,
    chatgroup: &ChatGroup,
    namespace: &str,
    secrets: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) -> Result<Credentials, CredentialsError> {
    let fallback = OperatorFallback {
        configured: ctx.operator_identity.is_configured(),
        namespaces: &ctx.identity_namespaces,
    };
    let lookup = |name: &str| secrets.get(name).cloned();
    match credentials::decide(&chatgroup.spec, namespace, lookup, fallback)? {
        Decision::Secret(resolved) => Ok(resolved.credentials),
        Decision::Operator => ctx
            .operator_identity
            .current()
            .await
            .map_err(|err| CredentialsError::OperatorIdentity {
                detail: err.to_string(),
                retryable: err.is_retryable(),
                reason: err.reason(),
            })?
            .ok_or(CredentialsError::NoneFound {
                default_secret: DEFAULT_SECRET_NAME,
            }),
    }
}

/// Secret data by name (absent Secrets are left out) and each Secret's resourceVersion.
type SecretReads = (
    BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    Vec<(String, Option<String>)>,
);

async fn read_secrets<C>(
    ctx: &Context<C>,
    namespace: &str,
    names: &[String],
) -> Result<SecretReads, Error> {
    let mut secrets = BTreeMap::new();
    let mut versions = Vec::new();
    for name in names {
        let read = read_secret(ctx, namespace, name).await?;
        versions.push((name.clone(), read.version));
        if let Some(data) = read.data {
            secrets.insert(name.clone(), data);
        }
    }
    Ok((secrets, versions))
}

/// One Secret as the reconcile sees it: absent, or its data at the version the metadata watch
/// reports — from memory when that version was read before, else with one GET.
async fn read_secret<C>(
    ctx: &Context<C>,
    namespace: &str,
    name: &str,
) -> Result<secrets::SecretRead, Error> {
    if ctx.secrets.known(namespace, name) == secrets::Known::Unknown {
        ctx.secrets.wait_listed(KUBE_CALL_TIMEOUT).await;
    }
    // One read per Secret at a time: reconciles needing it meanwhile then find it cached.
    let _reading = ctx.secrets.reading(namespace, name).await;
    let known = ctx.secrets.known(namespace, name);
    match &known {
        secrets::Known::Watched(None) => {
            return Ok(secrets::SecretRead {
                data: None,
                version: None,
            });
        }
        secrets::Known::Watched(Some(version)) => {
            if let Some(data) = ctx.secrets.cached(namespace, name, version) {
                return Ok(secrets::SecretRead {
                    data: Some(data),
                    version: Some(version.clone()),
                });
            }
        }
        secrets::Known::Unknown => {}
    }
    let read = tokio::time::timeout(
        KUBE_CALL_TIMEOUT,
        secrets::get(&ctx.client, namespace, name),
    )
    .await
    .map_err(|_| Error::Timeout {
        operation: "reading a Secret",
        timeout: KUBE_CALL_TIMEOUT,
    })?;
    ctx.note_access(operations::READ_SECRETS, &read);
    ctx.metrics.secret_reads.inc();
    let found = read.map_err(|source| Error::ReadSecret {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    })?;
    Ok(match found {
        Some((version, data)) => {
            ctx.secrets
                .remember(namespace, name, version.clone(), data.clone());
            secrets::SecretRead {
                data: Some(data),
                version: Some(version),
            }
        }
        None => secrets::SecretRead {
            data: None,
            version: None,
        },
    })
}

/// Writes the status (when more than timestamps changed), publishes Events, records metrics;
/// returns the resourceVersion the status patch gave the object, if one was made.
/// `old` is the status stored in the API (what a patch must change) and the status the
/// previous reconcile concluded (what Events compare with); usually the same.
async fn finish<C: CamsApi>(
    ctx: &Context<C>,
    object: &CachedChatGroup,
    namespace: &str,
    name: &str,
    old: (Option<&ChatGroupStatus>, Option<&ChatGroupStatus>),
    outcome: &Outcome,
) -> Result<Option<String>, Error> {
    let (stored, previous) = old;
    let result = if outcome.failure.is_some() {
        RESULT_FAILURE
    } else {
        RESULT_SUCCESS
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
        warn!(reason = %failure.reason, detail = %failure.message, "reconcile failed");
    }
    if outcome.drift_found {
        ctx.metrics.drift_detected.inc();
    }
    let patched = if engine::status_changed(stored, &outcome.status) {
        crate::metrics::kube_call(patch_status(ctx, namespace, name, &outcome.status)).await
    } else {
        Ok(None)
    };
    // Events are published even when the status patch failed: they report what happened
    // in CAMS, and the next reconcile will not report it again.
    for event in engine::events(previous, outcome) {
        crate::metrics::kube_call(events::publish(ctx, &object.metadata(), &event)).await;
    }
    patched
}

/// Writes `status` with one server-side apply patch to `/status`; returns the object's new
/// resourceVersion.
async fn patch_status<C>(
    ctx: &Context<C>,
    namespace: &str,
    name: &str,
    status: &ChatGroupStatus,
) -> Result<Option<String>, Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &chatgroup_resource());
    let body = serde_json::json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": KIND,
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let result = tokio::time::timeout(
        KUBE_CALL_TIMEOUT,
        api.patch_status(name, &params, &Patch::Apply(&body)),
    )
    .await
    .map_err(|_| Error::Timeout {
        operation: "writing the status",
        timeout: KUBE_CALL_TIMEOUT,
    })?;
    ctx.note_access(operations::WRITE_STATUS, &result);
    let patched = result.map_err(|source| Error::PatchStatus {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    })?;
    ctx.metrics.status_patches.inc();
    debug!("status written");
    Ok(patched.resource_version())
}

fn error_policy<C: CamsApi>(
    _object: Arc<CachedChatGroup>,
    error: &Error,
    ctx: Arc<Context<C>>,
) -> Action {
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
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
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
