//! Flow control for CAMS traffic shared by every object: a global token bucket (`--cams-qps`)
//! and a concurrency limit (`--concurrency`), plus the per-call metrics.
//!
//! [`Guarded`] wraps any [`CamsApi`] so the reconcile core stays unaware of both: waiting for a
//! token is not an error, it only delays the call.
//!
//! Every call also passes the [`LeadershipGate`]: with leader election, a call starts only
//! while this replica leads within its renew deadline. A call the gate refuses waits (the
//! reconcile does not see an error and writes nothing); a replica that has lost the Lease is
//! stopped by `serve`, which drops those waiting reconciles. A call in flight is cut at the
//! gate's cut instant, before a standby could take over; a cut call never completes either, so
//! nothing is written from a result that is not known.

use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::cams::{
    ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_DELETE_CHAT_GROUP,
    ACTION_DELETE_CHAT_GROUP_INVITE_LINK, ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP,
    AddChatGroupRequest, AddChatGroupResponse, CamsApi, CamsError, Credentials, DeleteResponse,
    Endpoint, ErrorKind, GroupRequest, InviteLinkResponse, ListChatGroupRequest,
    ListChatGroupResponse, UpdateChatGroupRequest, UpdateChatGroupResponse,
};
use crate::metrics::{ActionLabels, CallLabels, Metrics, code_label};

use super::leader::LeadershipGate;

/// A token bucket: `rate` tokens per second, holding at most `burst`. It can be held: no token
/// is handed out before a given instant (tokens accrue meanwhile, up to `burst`, so at most a
/// burst goes out when the hold ends), which the Kubernetes client uses to honour the API
/// server's `Retry-After`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<BucketState>,
    /// No token is handed out before this instant (a plain mutex: holding must not wait for
    /// the callers queued on `state`).
    held_until: std::sync::Mutex<Option<Instant>>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

impl TokenBucket {
    /// A bucket refilled at `rate` per second (at least 0.01), starting full with `burst`
    /// tokens (at least 1).
    pub fn new(rate: f64, burst: f64) -> Self {
        let rate = if rate.is_finite() {
            rate.max(0.01)
        } else {
            0.01
        };
        let burst = if burst.is_finite() {
            burst.max(1.0)
        } else {
            1.0
        };
        TokenBucket {
            rate,
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                updated: Instant::now(),
            }),
            held_until: std::sync::Mutex::new(None),
        }
    }

    /// Takes one token, sleeping until one is available. Callers queue fairly: the lock is
    /// held while sleeping, so tokens are handed out in arrival order.
    pub async fn acquire(&self) {
        let mut state = self.state.lock().await;
        loop {
            if let Some(until) = self.held_after(Instant::now()) {
                tokio::time::sleep_until(until).await;
                continue;
            }
            Self::refill(&mut state, self.rate, self.burst);
            if state.tokens >= 1.0 {
                state.tokens -= 1.0;
                return;
            }
            let wait = Duration::from_secs_f64((1.0 - state.tokens) / self.rate);
            tokio::time::sleep(wait).await;
            if self.held_after(Instant::now()).is_some() {
                continue;
            }
            // Timers wake up late (by up to a millisecond or so); the time overslept is
            // credited, or the rate would fall short of the budget (by about 12% at 200/s).
            Self::refill(&mut state, self.rate, self.burst);
            state.tokens = state.tokens.max(1.0) - 1.0;
            return;
        }
    }

    /// Holds the bucket: no token before `until` (a later hold already set is kept).
    pub fn hold_until(&self, until: Instant) {
        let mut held = self
            .held_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.is_none_or(|at| at < until) {
            *held = Some(until);
        }
    }

    /// The end of a hold still running at `now`.
    pub fn held_after(&self, now: Instant) -> Option<Instant> {
        let held = *self
            .held_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.filter(|until| *until > now)
    }

    fn refill(state: &mut BucketState, rate: f64, burst: f64) {
        let now = Instant::now();
        let refill = now.duration_since(state.updated).as_secs_f64() * rate;
        state.tokens = (state.tokens + refill).min(burst);
        state.updated = now;
    }
}

/// A [`CamsApi`] behind the global budget and concurrency limit, recording call metrics.
pub struct Guarded<C> {
    inner: C,
    bucket: TokenBucket,
    in_flight: Semaphore,
    metrics: Metrics,
    gate: LeadershipGate,
}

impl<C> Guarded<C> {
    /// Wraps `inner`: at most `qps` calls per second (bursts up to `max(qps, 1)`) and at most
    /// `concurrency` calls in flight.
    pub fn new(inner: C, qps: f64, concurrency: usize, metrics: Metrics) -> Self {
        Guarded {
            inner,
            bucket: TokenBucket::new(qps, qps),
            in_flight: Semaphore::new(concurrency.max(1)),
            metrics,
            gate: LeadershipGate::new(),
        }
    }

    /// The leadership gate every call passes (open until leader election closes it).
    pub fn gate(&self) -> &LeadershipGate {
        &self.gate
    }

    async fn call<T, F>(&self, action: &'static str, call: F) -> Result<T, CamsError>
    where
        F: Future<Output = Result<(T, &'static str), CamsError>>,
    {
        let waiting = Instant::now();
        // The semaphore is never closed, so acquiring cannot fail; treat failure as no limit.
        let _permit = self.in_flight.acquire().await.ok();
        self.bucket.acquire().await;
        // Checked last, right before sending: the budget wait can be long.
        self.gate.admit().await;
        self.metrics
            .cams_budget_wait
            .observe(waiting.elapsed().as_secs_f64());
        let started = Instant::now();
        let result = tokio::select! {
            biased;
            result = call => result,
            () = self.gate.cut() => {
                tracing::warn!(action, "leadership ended: CAMS call cut before a standby may take over");
                return std::future::pending().await;
            }
        };
        self.metrics
            .cams_request_duration
            .get_or_create(&ActionLabels { action })
            .observe(started.elapsed().as_secs_f64());
        let (code, throttled) = match &result {
            Ok((_, code)) => (*code, false),
            Err(err) => (error_code_label(err), err.kind() == ErrorKind::Throttled),
        };
        self.metrics
            .cams_requests
            .get_or_create(&CallLabels { action, code })
            .inc();
        if throttled {
            self.metrics
                .cams_throttled
                .get_or_create(&ActionLabels { action })
                .inc();
        }
        if action == ACTION_UPDATE_CHAT_GROUP {
            self.metrics.cams_writes.inc();
        }
        crate::metrics::record_cams_wait(waiting.elapsed());
        result.map(|(value, _)| value)
    }
}

/// The bounded `code` label of a failed call.
fn error_code_label(err: &CamsError) -> &'static str {
    match err {
        CamsError::Business { code, .. } => code_label(code),
        CamsError::Gateway { code, .. } => code.as_deref().map_or("Other", code_label),
        CamsError::InvalidBody { .. } | CamsError::BodyTooLarge { .. } => "InvalidBody",
        CamsError::Transport { .. } => "Transport",
        CamsError::Timeout { .. } => "Timeout",
        CamsError::InvalidRequest { .. } => "InvalidRequest",
    }
}

impl<C: CamsApi> CamsApi for Guarded<C> {
    async fn update_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &UpdateChatGroupRequest,
    ) -> Result<UpdateChatGroupResponse, CamsError> {
        self.call(ACTION_UPDATE_CHAT_GROUP, async {
            let response = self
                .inner
                .update_chat_group(endpoint, credentials, request)
                .await?;
            let code = code_label(&response.meta.code);
            Ok((response, code))
        })
        .await
    }

    async fn list_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &ListChatGroupRequest,
    ) -> Result<ListChatGroupResponse, CamsError> {
        self.call(ACTION_LIST_CHAT_GROUP, async {
            let response = self
                .inner
                .list_chat_group(endpoint, credentials, request)
                .await?;
            let code = code_label(&response.meta.code);
            Ok((response, code))
        })
        .await
    }
    async fn add_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &AddChatGroupRequest,
    ) -> Result<AddChatGroupResponse, CamsError> {
        self.call(ACTION_ADD_CHAT_GROUP, async {
            let response = self
                .inner
                .add_chat_group(endpoint, credentials, request)
                .await?;
            let code = code_label(&response.meta.code);
            Ok((response, code))
        })
        .await
    }

    async fn delete_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<DeleteResponse, CamsError> {
        self.call(ACTION_DELETE_CHAT_GROUP, async {
            let response = self
                .inner
                .delete_chat_group(endpoint, credentials, request)
                .await?;
            let code = code_label(&response.meta.code);
            Ok((response, code))
        })
        .await
    }

    async fn add_chat_group_invite_link(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<InviteLinkResponse, CamsError> {
        self.call(ACTION_ADD_CHAT_GROUP_INVITE_LINK, async {
            let response = self
                .inner
                .add_chat_group_invite_link(endpoint, credentials, request)
                .await?;
            let code = code_label(&response.meta.code);
            Ok((response, code))
        })
        .await
    }

    async fn delete_chat_group_invite_link(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<DeleteResponse, CamsError> {
        self.call(ACTION_DELETE_CHAT_GROUP_INVITE_LINK, async {
            let response = self
                .inner
                .delete_chat_group_invite_link(endpoint, credentials, request)
                .await?;
            let code = code_label(&response.meta.code);
            Ok((response, code))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cams::SecretString;
    use crate::controller::leader::LeaderConfig;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A CAMS whose listings take `latency`, counting calls started and finished.
    struct Slow {
        latency: Duration,
        started: Arc<AtomicUsize>,
        finished: Arc<AtomicUsize>,
    }

    impl CamsApi for Slow {
        crate::cams::no_op_writes!();

        async fn list_chat_group(
            &self,
            _: &Endpoint,
            _: &Credentials,
            _: &ListChatGroupRequest,
        ) -> Result<ListChatGroupResponse, CamsError> {
            self.started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.latency).await;
            self.finished.fetch_add(1, Ordering::SeqCst);
            Ok(ListChatGroupResponse::default())
        }
    }

    fn list_request() -> ListChatGroupRequest {
        ListChatGroupRequest {
            cust_space_id: "s".into(),
            business_number: "1".into(),
            channel_type: None,
            group_status: None,
            subject: None,
            page_index: 1,
            page_size: 10,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_start_only_within_the_term_and_are_cut_before_it_ends() {
        let started = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let guarded = Arc::new(Guarded::new(
            Slow {
                latency: Duration::from_secs(8),
                started: started.clone(),
                finished: finished.clone(),
            },
            100.0,
            4,
            Metrics::new(),
        ));
        let config = LeaderConfig::with_defaults("l".into(), "ns".into(), "me".into());
        let renewed = Instant::now();
        guarded.gate().lead(config.term(renewed));
        let call = |guarded: Arc<Guarded<Slow>>| {
            tokio::spawn(async move {
                let endpoint = Endpoint::from_url("http://127.0.0.1:1/");
                let credentials = Credentials {
                    access_key_id: "id".into(),
                    access_key_secret: SecretString::new("secret"),
                    security_token: None,
                };
                guarded
                    .list_chat_group(&endpoint, &credentials, &list_request())
                    .await
            })
        };
        // Started 9 s after the renewal (before the 10 s renew deadline): an 8 s call would
        // end at 17 s, after a standby could take over (15 s); it is cut at 14 s.
        tokio::time::sleep(Duration::from_secs(9)).await;
        let in_flight = call(guarded.clone());
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(started.load(Ordering::SeqCst), 1);
        // At 10 s the gate is closed: a new call does not start.
        tokio::time::sleep_until(renewed + Duration::from_secs(10)).await;
        let refused = call(guarded.clone());
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "no call starts after the deadline"
        );
        assert_eq!(
            finished.load(Ordering::SeqCst),
            0,
            "the call in flight was cut"
        );
        assert!(!in_flight.is_finished(), "a cut call never completes");
        assert!(!refused.is_finished(), "a refused call waits");
        // A new term (a renewal) lets the waiting call start.
        guarded.gate().lead(config.term(Instant::now()));
        let result = tokio::time::timeout(Duration::from_secs(9), refused).await;
        assert!(matches!(result, Ok(Ok(Ok(_)))), "{result:?}");
        in_flight.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn without_leader_election_calls_are_never_cut() {
        let started = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let guarded = Guarded::new(
            Slow {
                latency: Duration::from_secs(3600),
                started,
                finished: finished.clone(),
            },
            100.0,
            4,
            Metrics::new(),
        );
        let endpoint = Endpoint::from_url("http://127.0.0.1:1/");
        let credentials = Credentials {
            access_key_id: "id".into(),
            access_key_secret: SecretString::new("secret"),
            security_token: None,
        };
        guarded
            .list_chat_group(&endpoint, &credentials, &list_request())
            .await
            .expect("answered");
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_spaces_calls_at_the_configured_rate() {
        let bucket = TokenBucket::new(2.0, 2.0);
        let start = tokio::time::Instant::now();
        for _ in 0..6 {
            bucket.acquire().await;
        }
        // Two tokens up front, then four more at 2/s: the paused clock advanced by 2 s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_hands_out_nothing_until_it_ends_then_at_most_a_burst() {
        let bucket = TokenBucket::new(10.0, 10.0);
        let start = tokio::time::Instant::now();
        bucket.hold_until(start + Duration::from_secs(5));
        bucket.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(5),
            "a full bucket still waits for the hold"
        );
        // Tokens accrued during the hold, up to the burst: nine more go at once, then the
        // rate applies again.
        for _ in 0..9 {
            bucket.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(5010));
        bucket.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(5090));
        // A shorter hold than the one running changes nothing.
        let now = tokio::time::Instant::now();
        bucket.hold_until(now + Duration::from_secs(3));
        bucket.hold_until(now + Duration::from_secs(1));
        assert_eq!(bucket.held_after(now), Some(now + Duration::from_secs(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_never_exceeds_burst_after_idling() {
        let bucket = TokenBucket::new(1.0, 3.0);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = tokio::time::Instant::now();
        for _ in 0..4 {
            bucket.acquire().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(990));
    }
}
