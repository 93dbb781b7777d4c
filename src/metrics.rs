//! Prometheus metrics, all prefixed `cams_operator_`.
//!
//! Every label value comes from a bounded set (actions, codes folded into a known list, error
//! categories, reasons); object names never appear in labels.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Metrics name prefix, shared by every metric the operator exports.
pub const PREFIX: &str = "cams_operator";

/// CAMS `Code` values reported as themselves in the `code` label; any other code becomes
/// `Other`, keeping the label bounded.
pub const KNOWN_CODES: &[&str] = &[
    "OK",
    "Throttling",
    "Throttling.User",
    "Throttling.Api",
    "ServiceUnavailable",
    "InternalError",
    "SignatureNonceUsed",
    "InvalidTimeStamp.Expired",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId.NotFound",
    "InvalidAccessKeyId.Inactive",
    "InvalidSecurityToken.Expired",
    "InvalidSecurityToken.Mismatch",
    "Forbidden.RAM",
    "Forbidden",
    "Authentication.NoAuth",
    "MissingParameter",
    "InvalidParameter",
    "InvalidApi.NotFound",
    crate::cams::CODE_GROUP_NOT_FOUND,
];

/// Labels of CAMS call metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// CAMS action.
    pub action: &'static str,
    /// CAMS `Code`, folded into [`KNOWN_CODES`], or `Transport`, `Timeout`, `InvalidBody`,
    /// `Other`.
    pub code: &'static str,
}

/// Labels carrying only the CAMS action.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// CAMS action.
    pub action: &'static str,
}

/// Labels of reconcile outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// `result` label of a reconcile that finished without error.
pub const RESULT_SUCCESS: &str = "success";
/// `result` label of a reconcile that failed (recoverable or terminal).
pub const RESULT_FAILURE: &str = "failure";

/// Labels of reconcile failures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Error category (bounded; see `docs/operations.md`).
    pub category: &'static str,
}

/// All metrics of the operator, registered in one [`Registry`].
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// CAMS calls by action and code.
    pub cams_requests: Family<CallLabels, Counter>,
    /// CAMS call latency by action.
    pub cams_request_duration: Family<ActionLabels, Histogram>,
    /// CAMS calls answered with throttling.
    pub cams_throttled: Family<ActionLabels, Counter>,
    /// `UpdateChatGroup` calls made (successful or not).
    pub cams_writes: Counter,
    /// Time spent waiting for the global CAMS request budget.
    pub cams_budget_wait: Histogram,
    /// Reconciles that found the remote group different from the spec without a spec change.
    pub drift_detected: Counter,
    /// Reconciles by result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile failures by category.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Reconcile duration, including CAMS latency.
    pub reconcile_duration: Histogram,
    /// Reconcile duration minus the time spent waiting for CAMS (see [`measure_waits`]):
    /// the operator's overhead per reconcile, its Kubernetes API calls included.
    pub reconcile_overhead: Histogram,
    /// Reconcile duration minus the time spent waiting for CAMS and for the Kubernetes API:
    /// the operator's own work per reconcile.
    pub reconcile_self: Histogram,
    /// Status patches written.
    pub status_patches: Counter,
    /// Answers of the Kubernetes API asking the operator to slow down (429, 503).
    pub kube_throttled: Counter,
    /// Per Kubernetes API request (and per retry), the time spent waiting for the client-side
    /// budget (`--kube-qps`, `--kube-burst`) and for the API server's `Retry-After`.
    pub kube_wait: Histogram,
    /// 1 while this replica is the leader (or leader election is off).
    pub leader: Gauge,
    /// Kubernetes Events that could not be created.
    pub events_failed: Counter,
    /// Secrets read from the Kubernetes API (each a GET with the Secret's data).
    pub secret_reads: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let cams_requests = Family::<CallLabels, Counter>::default();
        let cams_request_duration = Family::<ActionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        let cams_throttled = Family::<ActionLabels, Counter>::default();
        let cams_writes = Counter::default();
        let cams_budget_wait = Histogram::new(exponential_buckets(0.001, 4.0, 10));
        let drift_detected = Counter::default();
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.0005, 4.0, 10));
        let reconcile_overhead = Histogram::new(overhead_buckets());
        let reconcile_self = Histogram::new(overhead_buckets());
        let status_patches = Counter::default();
        let kube_throttled = Counter::default();
        let kube_wait = Histogram::new(exponential_buckets(0.001, 4.0, 10));
        let leader = Gauge::default();
        let events_failed = Counter::default();
        let secret_reads = Counter::default();
        registry.register(
            "cams_requests",
            "CAMS API calls by action and response code",
            cams_requests.clone(),
        );
        registry.register(
            "cams_request_duration_seconds",
            "CAMS API call latency by action",
            cams_request_duration.clone(),
        );
        registry.register(
            "cams_throttled",
            "CAMS API calls answered with a throttling code",
            cams_throttled.clone(),
        );
        registry.register(
            "cams_writes",
            "UpdateChatGroup calls made",
            cams_writes.clone(),
        );
        registry.register(
            "cams_budget_wait_seconds",
            "Time spent waiting for the global CAMS request budget (--cams-qps, --concurrency)",
            cams_budget_wait.clone(),
        );
        registry.register(
            "drift_detected",
            "Reconciles that found the remote group different from an unchanged spec",
            drift_detected.clone(),
        );
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconcile failures by category",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration including CAMS latency",
            reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_overhead_seconds",
            "Reconcile duration minus the time spent waiting for CAMS (budget, concurrency limit, calls, shared listings)",
            reconcile_overhead.clone(),
        );
        registry.register(
            "reconcile_self_seconds",
            "Reconcile duration minus the time spent waiting for CAMS and for the Kubernetes API",
            reconcile_self.clone(),
        );
        registry.register(
            "status_patches",
            "Status patches written to the Kubernetes API",
            status_patches.clone(),
        );
        registry.register(
            "kube_throttled",
            "Kubernetes API answers asking the operator to slow down (429 Too Many Requests, 503 Service Unavailable)",
            kube_throttled.clone(),
        );
        registry.register(
            "kube_wait_seconds",
            "Time a Kubernetes API request waited before being sent (--kube-qps, --kube-burst, the API server's Retry-After)",
            kube_wait.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease (or leader election is off)",
            leader.clone(),
        );
        registry.register(
            "secret_reads",
            "Secrets whose data was read from the Kubernetes API (once per referenced Secret and version)",
            secret_reads.clone(),
        );
        registry.register(
            "events_failed",
            "Kubernetes Events the operator could not create (each is logged)",
            events_failed.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            cams_requests,
            cams_request_duration,
            cams_throttled,
            cams_writes,
            cams_budget_wait,
            drift_detected,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            reconcile_overhead,
            reconcile_self,
            status_patches,
            kube_throttled,
            kube_wait,
            leader,
            events_failed,
            secret_reads,
        }
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Folds a CAMS code into the bounded label set.
pub fn code_label(code: &str) -> &'static str {
    KNOWN_CODES
        .iter()
        .find(|known| **known == code)
        .copied()
        .unwrap_or("Other")
}

/// Upper bounds of the `reconcile_overhead_seconds` buckets: 25 µs growing by a factor of √2
/// up to about 1.2 s, fine enough to read a median and a p99 from.
pub fn overhead_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(25e-6, std::f64::consts::SQRT_2, 32)
}

/// Time one reconcile spent waiting on others, collected by [`measure_waits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waits {
    /// Waiting for CAMS: calls, the request budget, the concurrency limit, another
    /// reconcile's shared listing ([`record_cams_wait`]).
    pub cams: Duration,
    /// Waiting for the Kubernetes API ([`kube_call`]).
    pub kube: Duration,
}

tokio::task_local! {
    static WAITS: Cell<Waits>;
}

/// Runs `future` and returns its output with the time it spent waiting for CAMS and for the
/// Kubernetes API, as reported from within it by [`record_cams_wait`] and [`kube_call`]. The
/// controller subtracts them from the reconcile duration to get the operator's overhead.
pub async fn measure_waits<F: Future>(future: F) -> (F::Output, Waits) {
    WAITS
        .scope(Cell::new(Waits::default()), async move {
            let output = future.await;
            let waits = WAITS.try_with(Cell::get).unwrap_or_default();
            (output, waits)
        })
        .await
}

/// Adds `waited` to the CAMS wait of the enclosing [`measure_waits`]; does nothing outside
/// one (the one-shot `reconcile` command, tests).
pub fn record_cams_wait(waited: Duration) {
    let _ = WAITS.try_with(|total| {
        let mut waits = total.get();
        waits.cams += waited;
        total.set(waits);
    });
}

/// Awaits a Kubernetes API call, adding its duration to the Kubernetes wait of the enclosing
/// [`measure_waits`].
pub async fn kube_call<F: Future>(call: F) -> F::Output {
    let started = std::time::Instant::now();
    let output = call.await;
    let waited = started.elapsed();
    let _ = WAITS.try_with(|total| {
        let mut waits = total.get();
        waits.kube += waited;
        total.set(waits);
    });
    output
}
