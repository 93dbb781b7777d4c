//! The state every reconcile shares ([`Context`]): the Kubernetes client, the CAMS client
//! behind its budget, the shared listings, metrics, the operator's identity, the clock, the
//! per-object memory and the Secrets cache. Also how the outcome of the operator's own
//! Kubernetes calls is reported on `/readyz` ([`operations`]).

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tracing::error;

use crate::admin::Readiness;
use crate::cams::CamsApi;
use crate::identity::OperatorIdentity;
use crate::metrics::Metrics;
use crate::reconcile::credentials::IdentityNamespaces;
use crate::reconcile::observe::SharedLister;

use super::flow::Guarded;
use super::memory::Memories;
use super::{Clock, Settings, secrets};

/// Timeout of each Kubernetes API call the reconcile makes itself (Secret reads, status and
/// Event writes), waiting for the client's budget included. It is long because waiting is
/// what the API server asks for when it answers `Retry-After` (see
/// [`kube_client`](super::kube_client)); each HTTP attempt has a shorter bound of its own
/// ([`ATTEMPT_TIMEOUT`](super::kube_client::ATTEMPT_TIMEOUT)).
pub const KUBE_CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Reconciles in flight per CAMS call slot (`--concurrency`). Reconciles beyond the bound wait
/// in the controller's queue instead of all starting at once: at a cold start of 10,000
/// objects, unbounded reconciles would each hold their object, Secret and pending request
/// while queueing for the CAMS budget.
pub const RECONCILES_PER_CAMS_SLOT: usize = 4;

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
    /// Adding or removing the operator's finalizer on ChatGroups.
    pub const WRITE_FINALIZER: &str = "patch ChatGroups (finalizer)";
}

/// Shared state of every reconcile.
pub struct Context<C> {
    pub(super) client: Client,
    pub(super) cams: Guarded<C>,
    pub(super) lister: SharedLister,
    pub(super) metrics: Metrics,
    pub(super) operator_identity: OperatorIdentity,
    pub(super) identity_namespaces: IdentityNamespaces,
    pub(super) clock: Clock,
    pub(super) memory: Memories,
    pub(super) instance: String,
    pub(super) max_reconciles: u16,
    pub(super) readiness: Readiness,
    pub(super) secrets: secrets::Secrets,
    /// The watch caches of every controller, for what other ChatGroups claim when a group is
    /// created (filled in when the controllers start).
    pub(super) peers: super::lifecycle::PeerStores,
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
            memory: Memories::default(),
            instance,
            max_reconciles: u16::try_from(
                concurrency.max(1).saturating_mul(RECONCILES_PER_CAMS_SLOT),
            )
            .unwrap_or(u16::MAX),
            readiness,
            secrets: secrets::Secrets::default(),
            peers: std::sync::RwLock::default(),
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
    pub(super) fn note_access<T>(&self, operation: &'static str, result: &Result<T, kube::Error>) {
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
