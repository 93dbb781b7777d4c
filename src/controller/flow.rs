//! Flow control for CAMS traffic shared by every object: a global token bucket (`--cams-qps`)
//! and a concurrency limit (`--concurrency`), plus the per-call metrics.
//!
//! [`Guarded`] wraps any [`CamsApi`] so the reconcile core stays unaware of both: waiting for a
//! token is not an error, it only delays the call.

use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::cams::{
    ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP, CamsApi, CamsError, Credentials, Endpoint,
    ListChatGroupRequest, ListChatGroupResponse, UpdateChatGroupRequest, UpdateChatGroupResponse,
};
use crate::metrics::{ActionLabels, CallLabels, Metrics, code_label};

/// A token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
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
        }
    }

    /// Takes one token, sleeping until one is available. Callers queue fairly: the lock is
    /// held while sleeping, so tokens are handed out in arrival order.
    pub async fn acquire(&self) {
        let mut state = self.state.lock().await;
        Self::refill(&mut state, self.rate, self.burst);
        if state.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - state.tokens) / self.rate);
            tokio::time::sleep(wait).await;
            // Timers wake up late (by up to a millisecond or so); the time overslept is
            // credited, or the rate would fall short of the budget (by about 12% at 200/s).
            Self::refill(&mut state, self.rate, self.burst);
            state.tokens = state.tokens.max(1.0);
        }
        state.tokens -= 1.0;
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
        }
    }

    async fn call<T, F>(&self, action: &'static str, call: F) -> Result<T, CamsError>
    where
        F: Future<Output = Result<(T, &'static str), CamsError>>,
    {
        let waiting = Instant::now();
        // The semaphore is never closed, so acquiring cannot fail; treat failure as no limit.
        let _permit = self.in_flight.acquire().await.ok();
        self.bucket.acquire().await;
        self.metrics
            .cams_budget_wait
            .observe(waiting.elapsed().as_secs_f64());
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .cams_request_duration
            .get_or_create(&ActionLabels { action })
            .observe(started.elapsed().as_secs_f64());
        let code = match &result {
            Ok((_, code)) => code,
            Err(err) => error_code_label(err),
        };
        self.metrics
            .cams_requests
            .get_or_create(&CallLabels { action, code })
            .inc();
        if code.starts_with("Throttling") {
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
        CamsError::InvalidBody { .. } => "InvalidBody",
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
