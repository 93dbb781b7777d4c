//! Leader election on a `coordination.k8s.io/v1` Lease, so a standby replica can take over, with
//! client-go's semantics (`staging/src/k8s.io/client-go/tools/leaderelection/leaderelection.go`)
//! and a guarantee on top: two replicas never have CAMS calls in flight at the same time.
//!
//! # Timing
//! - The leader renews the Lease every [`LeaderConfig::retry_period`]. Each renewal is bounded
//!   by the time left until its renew deadline: `kube::Client` retries 429 and 503 answers with
//!   backoff and has no read timeout of its own, so without the bound a renewal could hang past
//!   the deadline while the replica went on calling CAMS.
//! - A leader that has not renewed within [`LeaderConfig::renew_deadline`] of the moment its
//!   last successful renewal was *sent* stops leading: the [`LeadershipGate`] refuses new CAMS
//!   calls from that instant, [`LeaderElector::hold`] returns [`Error::RenewDeadline`], and
//!   `serve` abandons every reconcile in flight and returns the error so the process restarts as
//!   a standby. A CAMS call still in flight is cut, at the latest, at `last renewal sent +
//!   lease duration - cut margin` ([`Term::cut_at`]), even if nothing else stops it.
//! - A standby never compares the holder's `renewTime` with its own wall clock. It remembers
//!   when, on its own monotonic clock, it last saw the Lease record change, and takes the
//!   Lease over only once the record has stayed unchanged for the `leaseDurationSeconds`
//!   written in it. The record changed no earlier than the holder sent the renewal that
//!   changed it, so the standby takes over after the leader's last call was cut: clock skew
//!   between nodes cannot hand the Lease over early (only a difference in clock *rate*
//!   larger than the cut margin could). `acquireTime` and `renewTime` are still written, from
//!   the wall clock, for people reading the Lease.
//! - A candidate's attempt (a read, then a create or an update) is bounded by the renew
//!   deadline: an acquisition answered later than that would start a term whose renew
//!   deadline had already passed.
//!
//! # Failures
//! A Lease that cannot be used at all — its namespace does not exist (404), the operator may
//! not read or write Leases there (403), or the API refuses the object (422) — makes
//! [`LeaderElector::acquire`] fail with [`Error::LeaseUnusable`] at once instead of retrying
//! forever. On a graceful shutdown the leader releases the Lease so the standby takes over at
//! its next try.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Default lease duration: how long a standby waits, after it last saw the Lease change,
/// before it takes the Lease over. The same as client-go's documented default for core clients
/// (`LeaderElectionConfig.LeaseDuration` in `tools/leaderelection/leaderelection.go`) and
/// controller-runtime's `defaultLeaseDuration` (`pkg/manager/internal.go`).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Default renew deadline: how long after its last successful renewal was sent the leader
/// stops starting CAMS calls and gives up. client-go's `RenewDeadline` default for core
/// clients and controller-runtime's `defaultRenewDeadline`.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Default retry period: how often the leader renews and a candidate tries to acquire.
/// client-go's `RetryPeriod` default for core clients and controller-runtime's
/// `defaultRetryPeriod`.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// Default cut margin: a CAMS call still in flight is cut this long before a standby could
/// take the Lease over (covers timer lateness and the time the cut takes to reach the
/// service).
pub const DEFAULT_CUT_MARGIN: Duration = Duration::from_secs(1);
/// client-go's `JitterFactor`: the renew deadline must exceed this many retry periods, and a
/// candidate waits between one and `1 + JITTER_FACTOR` retry periods between attempts.
pub const JITTER_FACTOR: f64 = 1.2;
/// Holder reported when a create or update lost a race with an unknown writer.
const UNKNOWN_HOLDER: &str = "another replica";

/// Leader-election settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub lease_name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease stays valid without a change, written to `leaseDurationSeconds`
    /// (whole seconds).
    pub lease_duration: Duration,
    /// How long after its last successful renewal was sent the leader stops calling CAMS and
    /// gives up leading. Less than `lease_duration`.
    pub renew_deadline: Duration,
    /// How often the leader renews, and how often (with jitter) a candidate tries.
    pub retry_period: Duration,
    /// How long before a standby could take over an in-flight CAMS call is cut. Less than
    /// `lease_duration - renew_deadline`.
    pub cut_margin: Duration,
    /// Added to the wall clock for the `acquireTime` and `renewTime` written to the Lease
    /// (zero in production; tests skew it to show it does not matter).
    pub wall_clock_offset: jiff::SignedDuration,
}

impl LeaderConfig {
    /// The default timings ([`DEFAULT_LEASE_DURATION`], [`DEFAULT_RENEW_DEADLINE`],
    /// [`DEFAULT_RETRY_PERIOD`], [`DEFAULT_CUT_MARGIN`]).
    pub fn with_defaults(lease_name: String, namespace: String, identity: String) -> Self {
        LeaderConfig {
            lease_name,
            namespace,
            identity,
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            cut_margin: DEFAULT_CUT_MARGIN,
            wall_clock_offset: jiff::SignedDuration::ZERO,
        }
    }

    /// The default timings scaled to `lease_duration`: renew deadline two thirds of it, retry
    /// period and cut margin two fifteenths and one fifteenth (10 s, 2 s and 1 s of 15 s).
    pub fn new(
        lease_name: String,
        namespace: String,
        identity: String,
        lease_duration: Duration,
    ) -> Self {
        LeaderConfig {
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            retry_period: lease_duration * 2 / 15,
            cut_margin: lease_duration / 15,
            ..LeaderConfig::with_defaults(lease_name, namespace, identity)
        }
    }

    /// Checks the settings as client-go's `NewLeaderElector` does (lease duration > renew
    /// deadline > [`JITTER_FACTOR`] × retry period > 0, an identity), and what the guarantee
    /// needs on top: a lease duration of whole seconds (as the Lease records it) and a cut
    /// margin shorter than the time between the renew deadline and the end of the lease.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |detail: String| Err(Error::InvalidConfig { detail });
        if self.identity.is_empty() {
            return invalid("the replica identity is empty".into());
        }
        if self.lease_name.is_empty() || self.namespace.is_empty() {
            return invalid("the Lease name and namespace must not be empty".into());
        }
        if self.retry_period.is_zero() {
            return invalid("the retry period must be greater than zero".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid(format!(
                "the lease duration ({:?}) must be greater than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= self.retry_period.as_secs_f64() * JITTER_FACTOR {
            return invalid(format!(
                "the renew deadline ({:?}) must be greater than {JITTER_FACTOR} × the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration.subsec_nanos() != 0 || lease_seconds(self.lease_duration).is_none() {
            return invalid(format!(
                "the lease duration ({:?}) must be a whole number of seconds",
                self.lease_duration
            ));
        }
        if self.cut_margin >= self.lease_duration - self.renew_deadline {
            return invalid(format!(
                "the cut margin ({:?}) must be less than the lease duration minus the renew deadline ({:?})",
                self.cut_margin,
                self.lease_duration - self.renew_deadline
            ));
        }
        Ok(())
    }

    /// The term a successful renewal sent at `renewal_sent` grants.
    pub fn term(&self, renewal_sent: Instant) -> Term {
        Term {
            renewal_sent,
            open_until: renewal_sent + self.renew_deadline,
            cut_at: renewal_sent + self.lease_duration.saturating_sub(self.cut_margin),
        }
    }
}

/// `leaseDurationSeconds` for a duration, when it fits.
fn lease_seconds(duration: Duration) -> Option<i32> {
    i32::try_from(duration.as_secs()).ok().filter(|s| *s > 0)
}

/// What one successful renewal (or acquisition) allows, on this replica's monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    /// When the renewal was sent: no standby can have seen it earlier.
    pub renewal_sent: Instant,
    /// The renew deadline: CAMS calls may start before this instant only.
    pub open_until: Instant,
    /// CAMS calls still in flight are cut at this instant, before any standby may take over.
    pub cut_at: Instant,
}

impl Term {
    /// How long a CAMS call starting at `now` may run: `None` when none may start.
    pub fn call_budget(&self, now: Instant) -> Option<Duration> {
        (now < self.open_until).then(|| self.cut_at.saturating_duration_since(now))
    }

    /// How long a Lease call starting at `now` may take: the time left until the renew
    /// deadline, `None` when it has passed.
    pub fn renewal_budget(&self, now: Instant) -> Option<Duration> {
        (now < self.open_until).then(|| self.open_until - now)
    }
}

/// Failures of leader election.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another replica holds the Lease now.
    #[error("leadership of Lease {namespace}/{name} was lost to {holder}")]
    Lost {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// Current holder.
        holder: String,
    },
    /// The Lease could not be renewed before the deadline.
    #[error("Lease {namespace}/{name} could not be renewed within {deadline:?}: {last_error}")]
    RenewDeadline {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        deadline: Duration,
        /// The last failure.
        last_error: String,
    },
    /// The Lease cannot be used at all; retrying would not help.
    #[error("cannot use Lease {namespace}/{name}: HTTP {code}: {message}; {hint}")]
    LeaseUnusable {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// HTTP status of the answer.
        code: u16,
        /// The API server's message.
        message: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The settings are inconsistent.
    #[error("invalid leader-election settings: {detail}")]
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
}

impl Error {
    /// Bounded category for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Lost { .. } => "leader_lost",
            Error::RenewDeadline { .. } => "leader_renew_deadline",
            Error::LeaseUnusable { .. } => "lease_unusable",
            Error::InvalidConfig { .. } => "leader_config_invalid",
        }
    }
}

/// What to tell the operator about a Lease call that can never succeed as configured, or
/// `None` when retrying may help.
fn unusable_hint(err: &kube::Error) -> Option<(u16, String, &'static str)> {
    let kube::Error::Api(status) = err else {
        return None;
    };
    let hint = match status.code {
        404 => {
            "the Lease namespace does not exist: create it or choose another with --lease-namespace"
        }
        403 => {
            "the operator may not use Leases there: grant create, get and update on leases.coordination.k8s.io in that namespace (the chart does with leaderElection.enabled)"
        }
        422 => "the API server refuses the Lease: check --lease-name",
        _ => return None,
    };
    Some((status.code, status.message.clone(), hint))
}

// ---- the gate ----

/// Whether this replica may start CAMS calls, and until when calls in flight may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateState {
    /// No leader election: always open, calls are never cut.
    Unconditional,
    /// Not leading: standing by, or the term ended. Calls started during the last term (if
    /// any) are cut at `cut_at`.
    Closed {
        /// The cut instant of the last term.
        cut_at: Option<Instant>,
    },
    /// Leading for the term of the last successful renewal.
    Leading(Term),
}

/// The gate's answer for a call about to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start it; it is never cut.
    Open,
    /// Start it; it is cut at this instant unless a renewal extends the term.
    Until(Instant),
    /// Do not start it.
    Closed,
}

impl GateState {
    /// Whether a call may start at `now`.
    pub fn admission(&self, now: Instant) -> Admission {
        match self {
            GateState::Unconditional => Admission::Open,
            GateState::Closed { .. } => Admission::Closed,
            GateState::Leading(term) => match term.call_budget(now) {
                Some(_) => Admission::Until(term.cut_at),
                None => Admission::Closed,
            },
        }
    }

    /// When calls in flight are cut, if ever.
    pub fn cut_at(&self) -> Option<Instant> {
        match self {
            GateState::Unconditional => None,
            GateState::Closed { cut_at } => *cut_at,
            GateState::Leading(term) => Some(term.cut_at),
        }
    }
}

/// The leadership gate every CAMS call passes ([`crate::controller::flow::Guarded`]): it
/// admits calls only while this replica leads within its renew deadline, and tells calls in
/// flight when they must end. Cheap to clone; clones share the state. Without leader election
/// it stays [`GateState::Unconditional`].
#[derive(Clone, Debug)]
pub struct LeadershipGate {
    state: Arc<watch::Sender<GateState>>,
}

impl Default for LeadershipGate {
    fn default() -> Self {
        LeadershipGate::new()
    }
}

impl LeadershipGate {
    /// An open gate ([`GateState::Unconditional`]).
    pub fn new() -> Self {
        LeadershipGate {
            state: Arc::new(watch::Sender::new(GateState::Unconditional)),
        }
    }

    /// The current state.
    pub fn state(&self) -> GateState {
        *self.state.borrow()
    }

    /// Opens the gate for good (no leader election).
    pub fn open_unconditionally(&self) {
        self.state.send_replace(GateState::Unconditional);
    }

    /// Admits calls during `term` (leadership acquired or renewed).
    pub fn lead(&self, term: Term) {
        self.state.send_replace(GateState::Leading(term));
    }

    /// Admits no more calls; calls in flight keep the cut instant of the last term.
    pub fn close(&self) {
        self.state.send_modify(|state| {
            *state = GateState::Closed {
                cut_at: state.cut_at(),
            };
        });
    }

    /// Waits until a call may start. A closed gate opens only with a new term.
    pub async fn admit(&self) {
        let mut changes = self.state.subscribe();
        loop {
            let state = *changes.borrow_and_update();
            if state.admission(Instant::now()) != Admission::Closed {
                return;
            }
            if changes.changed().await.is_err() {
                // The sender lives in `self`: cannot happen. Never admit.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves when calls in flight must be cut: at the cut instant of the current term,
    /// following renewals that move it. Never resolves without a cut instant.
    pub async fn cut(&self) {
        let mut changes = self.state.subscribe();
        loop {
            let cut_at = changes.borrow_and_update().cut_at();
            match cut_at {
                Some(at) => tokio::select! {
                    () = tokio::time::sleep_until(at) => return,
                    changed = changes.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep_until(at).await;
                            return;
                        }
                    }
                },
                None => {
                    if changes.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

// ---- observing the Lease ----

/// A Lease record as last seen, and when (on this replica's monotonic clock) it was first
/// seen in that form.
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    record: LeaseSpec,
    at: Instant,
}

/// What to do with the Lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    /// There is no Lease: create it.
    Create,
    /// This replica holds it: renew it.
    Renew,
    /// Nobody holds it, or it expired: take it over.
    TakeOver,
    /// Someone else holds it and it has not expired.
    Wait { holder: String },
}

/// Judges the Lease record read at `now`, updating what was observed (client-go's
/// `tryAcquireOrRenew` and `isLeaseValid`). Expiry is measured from when the record was last
/// seen to change, for the `leaseDurationSeconds` written in it (`fallback` when it has none):
/// the times written in the record are never compared with this replica's clock.
fn judge(
    identity: &str,
    record: Option<&LeaseSpec>,
    observed: &mut Option<Observed>,
    now: Instant,
    fallback: Duration,
) -> Verdict {
    let Some(record) = record else {
        *observed = None;
        return Verdict::Create;
    };
    let seen = match observed.take() {
        Some(seen) if seen.record == *record => seen,
        _ => Observed {
            record: record.clone(),
            at: now,
        },
    };
    let seen_at = seen.at;
    *observed = Some(seen);
    let holder = record.holder_identity.as_deref().unwrap_or_default();
    if holder == identity {
        return Verdict::Renew;
    }
    if holder.is_empty() {
        return Verdict::TakeOver;
    }
    let duration = record
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(fallback, Duration::from_secs);
    if now < seen_at + duration {
        Verdict::Wait {
            holder: holder.to_owned(),
        }
    } else {
        Verdict::TakeOver
    }
}

/// The record after this replica takes the Lease (`take`) or renews it, at wall time `wall`.
fn next_record(
    current: &LeaseSpec,
    identity: &str,
    duration_secs: i32,
    wall: jiff::Timestamp,
    take: bool,
) -> LeaseSpec {
    let mut next = current.clone();
    if take {
        next.holder_identity = Some(identity.to_owned());
        next.acquire_time = Some(MicroTime(wall));
        next.lease_transitions = Some(current.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    next.renew_time = Some(MicroTime(wall));
    next.lease_duration_seconds = Some(duration_secs);
    next
}

/// Result of one attempt to take or renew the Lease.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// This replica holds the Lease; the write that says so was sent at `sent`.
    Leading { sent: Instant },
    /// Someone else holds it.
    HeldBy(String),
    /// Someone else wrote the Lease between our read and our write.
    Conflict,
}

/// Takes and keeps a Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderConfig,
    observed: Option<Observed>,
}

impl LeaderElector {
    /// An elector for `config`.
    pub fn new(client: Client, config: LeaderConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &LeaderConfig {
        &self.config
    }

    /// Waits until this replica holds the Lease; returns the term the acquisition grants.
    /// Fails at once, without retrying, when the Lease cannot be used at all
    /// ([`Error::LeaseUnusable`]) or the settings are inconsistent.
    pub async fn acquire(&mut self) -> Result<Term, Error> {
        self.config.validate()?;
        loop {
            let bound = self.config.renew_deadline;
            match tokio::time::timeout(bound, self.attempt()).await {
                Ok(Ok(Attempt::Leading { sent })) => {
                    info!(
                        lease = %self.config.lease_name,
                        identity = %self.config.identity,
                        "became the leader"
                    );
                    return Ok(self.config.term(sent));
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    debug!(%holder, "standing by; the Lease is held");
                }
                Ok(Ok(Attempt::Conflict)) => debug!("another replica wrote the Lease first"),
                Ok(Err(err)) => {
                    if let Some((code, message, hint)) = unusable_hint(&err) {
                        return Err(Error::LeaseUnusable {
                            namespace: self.config.namespace.clone(),
                            name: self.config.lease_name.clone(),
                            code,
                            message,
                            hint,
                        });
                    }
                    warn!(error = %err, "leader election attempt failed");
                }
                Err(_) => warn!(
                    timeout = ?bound,
                    "leader election attempt did not finish in time"
                ),
            }
            let jitter = 1.0 + rand::random::<f64>() * JITTER_FACTOR;
            tokio::time::sleep(self.config.retry_period.mul_f64(jitter)).await;
        }
    }

    /// Renews the Lease every retry period, starting from `term`, updating `gate` with each
    /// new term, until leadership is lost; returns why. Returns [`Error::RenewDeadline`] at
    /// the renew deadline of the last successful renewal at the latest: each renewal is cut
    /// when that deadline passes.
    pub async fn hold(&mut self, gate: &LeadershipGate, term: Term) -> Error {
        let mut term = term;
        let mut last_error = String::from("no renewal was attempted");
        loop {
            let next = (Instant::now() + self.config.retry_period).min(term.open_until);
            tokio::time::sleep_until(next).await;
            if term.renewal_budget(Instant::now()).is_none() {
                return self.renew_deadline_passed(last_error);
            }
            match tokio::time::timeout_at(term.open_until, self.attempt()).await {
                Ok(Ok(Attempt::Leading { sent })) => {
                    term = self.config.term(sent);
                    gate.lead(term);
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    return Error::Lost {
                        namespace: self.config.namespace.clone(),
                        name: self.config.lease_name.clone(),
                        holder,
                    };
                }
                Ok(Ok(Attempt::Conflict)) => {
                    last_error = "another replica wrote the Lease first".into();
                    warn!("renewing the Lease conflicted with another write; retrying");
                }
                Ok(Err(err)) => {
                    warn!(error = %err, "renewing the Lease failed; retrying");
                    last_error = err.to_string();
                }
                Err(_) => {
                    last_error = "the Lease call did not finish before the renew deadline".into();
                }
            }
        }
    }

    fn renew_deadline_passed(&self, last_error: String) -> Error {
        Error::RenewDeadline {
            namespace: self.config.namespace.clone(),
            name: self.config.lease_name.clone(),
            deadline: self.config.renew_deadline,
            last_error,
        }
    }

    /// Gives the Lease up (on graceful shutdown, once no CAMS call is in flight any more) so a
    /// standby can take over at once. Bounded by the renew deadline.
    pub async fn release(&self) {
        let bound = self.config.renew_deadline;
        match tokio::time::timeout(bound, self.try_release()).await {
            Ok(Ok(true)) => info!("released the Lease"),
            Ok(Ok(false)) => debug!("the Lease is not ours; nothing to release"),
            Ok(Err(err)) => warn!(error = %err, "could not release the Lease"),
            Err(_) => warn!(timeout = ?bound, "releasing the Lease did not finish in time"),
        }
    }

    async fn try_release(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        // As client-go's `release`: no holder, and a one-second duration.
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(self.wall_now()));
        spec.lease_duration_seconds = Some(1);
        self.api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await?;
        Ok(true)
    }

    fn wall_now(&self) -> jiff::Timestamp {
        let now = jiff::Timestamp::now();
        now.checked_add(self.config.wall_clock_offset)
            .unwrap_or(now)
    }

    /// One read, then a create or an update when the verdict allows. The update carries the
    /// resourceVersion read, so a concurrent writer makes it a conflict.
    async fn attempt(&mut self) -> Result<Attempt, kube::Error> {
        let duration_secs = lease_seconds(self.config.lease_duration).unwrap_or(i32::MAX);
        let current = self.api.get_opt(&self.config.lease_name).await?;
        let verdict = judge(
            &self.config.identity,
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &mut self.observed,
            Instant::now(),
            self.config.lease_duration,
        );
        let wall = self.wall_now();
        let (lease, take) = match (verdict, current) {
            (Verdict::Wait { holder }, _) => return Ok(Attempt::HeldBy(holder)),
            (Verdict::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.lease_name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.config.identity.clone()),
                        lease_duration_seconds: Some(duration_secs),
                        acquire_time: Some(MicroTime(wall)),
                        renew_time: Some(MicroTime(wall)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                let sent = Instant::now();
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(created) => {
                        self.observe_own(created.spec, sent);
                        Ok(Attempt::Leading { sent })
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        Ok(Attempt::HeldBy(UNKNOWN_HOLDER.to_owned()))
                    }
                    Err(err) => Err(err),
                };
            }
            (Verdict::Renew, Some(lease)) => (lease, false),
            (Verdict::TakeOver, Some(lease)) => (lease, true),
        };
        let mut lease = lease;
        let record = lease.spec.take().unwrap_or_default();
        lease.spec = Some(next_record(
            &record,
            &self.config.identity,
            duration_secs,
            wall,
            take,
        ));
        let sent = Instant::now();
        match self
            .api
            .replace(&lease.name_any(), &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observe_own(written.spec, sent);
                Ok(Attempt::Leading { sent })
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
            Err(err) => Err(err),
        }
    }

    /// Remembers the record this replica wrote, as client-go does after a successful write.
    fn observe_own(&mut self, record: Option<LeaseSpec>, sent: Instant) {
        self.observed = Some(Observed {
            record: record.unwrap_or_default(),
            at: sent,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, renewed: jiff::Timestamp, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed)),
            acquire_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(duration),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_lease_expires_a_duration_after_it_was_last_seen_to_change() {
        let t0 = Instant::now();
        let wall = jiff::Timestamp::now();
        let mut observed = None;
        let record = held_by("a", wall, 15);
        let judge_at = |observed: &mut Option<Observed>, record: &LeaseSpec, at: Duration| {
            judge("b", Some(record), observed, t0 + at, secs(99))
        };
        let wait = Verdict::Wait { holder: "a".into() };
        assert_eq!(judge_at(&mut observed, &record, secs(0)), wait);
        assert_eq!(judge_at(&mut observed, &record, secs(14)), wait);
        // Renewed at 14 s: the clock starts again from when the change was seen.
        let renewed = held_by("a", wall + jiff::SignedDuration::from_secs(14), 15);
        assert_eq!(judge_at(&mut observed, &renewed, secs(14)), wait);
        assert_eq!(judge_at(&mut observed, &renewed, secs(28)), wait);
        assert_eq!(
            judge_at(&mut observed, &renewed, secs(29)),
            Verdict::TakeOver
        );
    }

    #[test]
    fn a_skewed_renew_time_changes_nothing() {
        let t0 = Instant::now();
        let now = jiff::Timestamp::now();
        // A renewTime an hour in the past (the holder's clock is behind, or ours is ahead):
        // still valid for the whole duration after it was first seen.
        let stale = held_by("a", now - jiff::SignedDuration::from_hours(1), 15);
        let mut observed = None;
        for at in [0, 5, 14] {
            assert_eq!(
                judge("b", Some(&stale), &mut observed, t0 + secs(at), secs(99)),
                Verdict::Wait { holder: "a".into() },
                "at {at} s"
            );
        }
        assert_eq!(
            judge("b", Some(&stale), &mut observed, t0 + secs(15), secs(99)),
            Verdict::TakeOver
        );
        // A renewTime an hour in the future does not make it last longer either.
        let future = held_by("a", now + jiff::SignedDuration::from_hours(1), 15);
        let mut observed = None;
        assert_eq!(
            judge("b", Some(&future), &mut observed, t0, secs(99)),
            Verdict::Wait { holder: "a".into() }
        );
        assert_eq!(
            judge("b", Some(&future), &mut observed, t0 + secs(15), secs(99)),
            Verdict::TakeOver
        );
    }

    #[test]
    fn the_duration_written_in_the_record_counts_not_our_own() {
        let t0 = Instant::now();
        let record = held_by("a", jiff::Timestamp::now(), 40);
        let mut observed = None;
        let _ = judge("b", Some(&record), &mut observed, t0, secs(15));
        assert_eq!(
            judge("b", Some(&record), &mut observed, t0 + secs(39), secs(15)),
            Verdict::Wait { holder: "a".into() }
        );
        let mut missing = record.clone();
        missing.lease_duration_seconds = None;
        let mut observed = None;
        let _ = judge("b", Some(&missing), &mut observed, t0, secs(15));
        assert_eq!(
            judge("b", Some(&missing), &mut observed, t0 + secs(15), secs(15)),
            Verdict::TakeOver,
            "without a duration in the record, our own applies"
        );
    }

    #[test]
    fn own_free_and_missing_leases() {
        let t0 = Instant::now();
        let mut observed = None;
        assert_eq!(
            judge("b", None, &mut observed, t0, secs(15)),
            Verdict::Create
        );
        let mine = held_by("b", jiff::Timestamp::now(), 15);
        assert_eq!(
            judge("b", Some(&mine), &mut observed, t0, secs(15)),
            Verdict::Renew
        );
        let mut released = mine.clone();
        released.holder_identity = None;
        assert_eq!(
            judge("a", Some(&released), &mut observed, t0, secs(15)),
            Verdict::TakeOver,
            "a released Lease is free at once"
        );
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_keeps_the_acquire_time() {
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let t1: jiff::Timestamp = "2026-01-01T00:00:09Z".parse().expect("time");
        let current = held_by("a", t0, 15);
        let taken = next_record(&current, "b", 15, t1, true);
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
        assert_eq!(taken.acquire_time, Some(MicroTime(t1)));
        assert_eq!(taken.lease_transitions, Some(1));
        let renewed = next_record(&current, "a", 15, t1, false);
        assert_eq!(renewed.acquire_time, Some(MicroTime(t0)));
        assert_eq!(renewed.renew_time, Some(MicroTime(t1)));
        assert_eq!(renewed.lease_transitions, Some(0));
    }

    #[test]
    fn the_term_closes_at_the_renew_deadline_and_cuts_before_the_lease_ends() {
        let config = LeaderConfig::with_defaults("l".into(), "ns".into(), "me".into());
        let sent = Instant::now();
        let term = config.term(sent);
        assert_eq!(term.open_until, sent + secs(10));
        assert_eq!(term.cut_at, sent + secs(14));
        assert_eq!(term.call_budget(sent), Some(secs(14)));
        assert_eq!(term.call_budget(sent + secs(9)), Some(secs(5)));
        assert_eq!(term.call_budget(sent + secs(10)), None, "the gate closed");
        assert_eq!(term.renewal_budget(sent + secs(3)), Some(secs(7)));
        assert_eq!(term.renewal_budget(sent + secs(10)), None);
        // Every call that may start ends before a standby that saw the renewal could take
        // over: no earlier than `sent + lease duration`.
        assert!(term.cut_at < sent + config.lease_duration);
    }

    #[test]
    fn gate_states_admit_as_documented() {
        let config = LeaderConfig::with_defaults("l".into(), "ns".into(), "me".into());
        let sent = Instant::now();
        let term = config.term(sent);
        assert_eq!(
            GateState::Unconditional.admission(sent + secs(3600)),
            Admission::Open
        );
        assert_eq!(
            GateState::Leading(term).admission(sent + secs(1)),
            Admission::Until(term.cut_at)
        );
        assert_eq!(
            GateState::Leading(term).admission(sent + secs(10)),
            Admission::Closed
        );
        assert_eq!(
            GateState::Closed { cut_at: None }.admission(sent),
            Admission::Closed
        );
        let gate = LeadershipGate::new();
        gate.lead(term);
        gate.close();
        assert_eq!(
            gate.state(),
            GateState::Closed {
                cut_at: Some(term.cut_at)
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_cuts_at_the_deadline_of_the_latest_term() {
        let config = LeaderConfig::with_defaults("l".into(), "ns".into(), "me".into());
        let gate = LeadershipGate::new();
        let start = Instant::now();
        gate.lead(config.term(start));
        let cut = tokio::spawn({
            let gate = gate.clone();
            async move {
                gate.cut().await;
                Instant::now()
            }
        });
        tokio::time::sleep(secs(2)).await;
        gate.lead(config.term(start + secs(2)));
        let cut_at = cut.await.expect("joined");
        assert_eq!(
            cut_at,
            start + secs(16),
            "cut 14 s after the latest renewal"
        );
        let admitted = tokio::time::timeout(secs(1), gate.admit()).await;
        assert!(admitted.is_err(), "past the renew deadline nothing starts");
    }

    #[test]
    fn defaults_are_client_go_s_and_valid() {
        let config = LeaderConfig::with_defaults("l".into(), "ns".into(), "me".into());
        assert_eq!(config.lease_duration, secs(15));
        assert_eq!(config.renew_deadline, secs(10));
        assert_eq!(config.retry_period, secs(2));
        config.validate().expect("valid");
        let scaled = LeaderConfig::new("l".into(), "ns".into(), "me".into(), secs(15));
        assert_eq!(scaled.renew_deadline, config.renew_deadline);
        assert_eq!(scaled.retry_period, config.retry_period);
        assert_eq!(scaled.cut_margin, config.cut_margin);
        LeaderConfig::new("l".into(), "ns".into(), "me".into(), secs(2))
            .validate()
            .expect("scaled down, still valid");
    }

    #[test]
    fn validation_follows_new_leader_elector() {
        let base = LeaderConfig::with_defaults("l".into(), "ns".into(), "me".into());
        let check = |edit: &dyn Fn(&mut LeaderConfig)| {
            let mut config = base.clone();
            edit(&mut config);
            config.validate().map_err(|e| e.to_string())
        };
        let err = check(&|c| c.renew_deadline = secs(15)).expect_err("lease <= renew");
        assert!(err.contains("greater than the renew deadline"), "{err}");
        let err = check(&|c| c.retry_period = Duration::from_millis(8400))
            .expect_err("renew <= 1.2 retry");
        assert!(err.contains("1.2 × the retry period"), "{err}");
        assert!(check(&|c| c.retry_period = Duration::from_millis(8300)).is_ok());
        check(&|c| c.retry_period = Duration::ZERO).expect_err("zero retry");
        check(&|c| c.identity.clear()).expect_err("no identity");
        check(&|c| c.lease_duration = Duration::from_millis(15500)).expect_err("fractional");
        let err = check(&|c| c.cut_margin = secs(5)).expect_err("margin too large");
        assert!(err.contains("cut margin"), "{err}");
        assert_eq!(
            check(&|c| c.cut_margin = secs(5))
                .err()
                .map(|_| "leader_config_invalid"),
            Some(
                Error::InvalidConfig {
                    detail: String::new()
                }
                .category()
            )
        );
    }
}
