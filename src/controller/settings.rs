//! What an operator instance is configured with: which ChatGroups it handles ([`Scope`]) and
//! how it reconciles them ([`Settings`]). Both are built once at start-up by
//! [`command`](super::command), from the command line and the environment, and passed in:
//! nothing under the controller reads the environment itself.

use crate::admin::Readiness;
use crate::crd::FIELD_MANAGER;
use crate::identity::OperatorIdentity;
use crate::reconcile::credentials::IdentityNamespaces;
use crate::reconcile::observe::DEFAULT_LIST_WINDOW;

use std::time::Duration;

use super::Clock;

/// Which ChatGroups this operator instance handles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Namespaces to watch; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// Label selector for sharding.
    pub selector: Option<String>,
}

/// Settings of a [`Context`](super::Context).
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
    /// The clock: [`Clock::real`] in production; compressed ([`Clock::scaled`]) only in tests
    /// and benchmarks.
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
