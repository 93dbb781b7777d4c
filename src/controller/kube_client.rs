//! The operator's Kubernetes client, with back-pressure towards the API server.
//!
//! Every request of the client (reads, watches, status patches, Event creates, Lease updates)
//! goes through [`PacingLayer`]:
//!
//! - **A client-side budget.** Before each attempt the request takes a token from a
//!   [`TokenBucket`] of `--kube-qps` tokens per second holding at most `--kube-burst`, as
//!   client-go's rate limiter does for every request of a REST client.
//! - **The API server's word.** A `429 Too Many Requests` (API Priority and Fairness) or a
//!   `503 Service Unavailable` answer holds the budget for `Retry-After` seconds (1 s when the
//!   header is absent, at most [`MAX_RETRY_AFTER`]): no request of this client is sent before
//!   then, and the requests queued meanwhile resume in their order, at most a burst at once.
//!   The whole controller slows down, rather than the throttled request alone, because the
//!   server throttles the operator's flow, not one object.
//! - **Retries inside the client.** The throttled request is sent again by the layer itself,
//!   after the wait and with a new token, up to [`MAX_RETRIES`] times (client-go's REST client
//!   retries up to 10 times); the caller sees only the final answer. A watch is paced but never
//!   retried (the watcher starts it again itself), and neither is a request whose body cannot
//!   be copied. Any other answer, 500 included, goes back to the caller at once.
//!
//! Each HTTP attempt other than a watch is bounded by [`ATTEMPT_TIMEOUT`]; the waits for the
//! budget and for `Retry-After` are not, because they are what the API server asked for.
//!
//! kube's own retry layer is turned off (`Config::default_retry`): it would retry a 429 after
//! a few milliseconds, beneath the budget and without the shared pause.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode, Uri};
use kube::client::{Body, ClientBuilder};
use tokio::time::Instant;
use tower::buffer::Buffer;
use tower::{BoxError, Layer, Service, ServiceExt as _};
use tracing::{debug, warn};

use super::flow::TokenBucket;
use crate::metrics::Metrics;

/// Default of `--kube-qps`: requests per second to the Kubernetes API. 20 requests per second
/// with bursts of 30 is what controller-runtime's config getters (`pkg/client/config`,
/// `if cfg.QPS == 0.0 { cfg.QPS = 20.0; cfg.Burst = 30.0 }`) gave every Go operator's client
/// through v0.20, the same as kube-controller-manager's `--kube-api-qps`/`--kube-api-burst`
/// defaults. client-go on its own defaults to 5 and 10; controller-runtime's later releases
/// (kubernetes-sigs/controller-runtime#3119) leave the client unlimited and rely on API
/// Priority and Fairness, which still answers 429 when overloaded, and that is honoured here
/// however high the budget.
pub const DEFAULT_KUBE_QPS: f64 = 20.0;
/// Default of `--kube-burst`: requests sent at once after an idle period (see
/// [`DEFAULT_KUBE_QPS`]).
pub const DEFAULT_KUBE_BURST: u32 = 30;
/// How many times a request answered 429 or 503 is sent again before the answer is handed to
/// the caller: 10, as client-go's REST client (`rest/request.go`, `maxRetries: 10`).
pub const MAX_RETRIES: u32 = 10;
/// The pause after a 429 or 503 without a usable `Retry-After` header.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// The longest pause a `Retry-After` can impose; longer values are cut to it, so a wrong header
/// cannot stop the operator for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest one HTTP attempt (not a watch) may take to be answered; kube's client has no
/// read timeout of its own, so a request the API server holds without an answer would
/// otherwise hang its caller.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests queued towards the wrapped service (as kube's own client buffer).
const BUFFER_CAPACITY: usize = 1024;

/// The client-side budget of the Kubernetes client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KubeLimits {
    /// Requests per second (`--kube-qps`).
    pub qps: f64,
    /// Most requests sent at once (`--kube-burst`).
    pub burst: u32,
}

impl Default for KubeLimits {
    fn default() -> Self {
        KubeLimits {
            qps: DEFAULT_KUBE_QPS,
            burst: DEFAULT_KUBE_BURST,
        }
    }
}

impl KubeLimits {
    /// Checks both values: a rate above 0 and a burst of at least 1.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return Err(Error::InvalidQps(self.qps));
        }
        if self.burst == 0 {
            return Err(Error::InvalidBurst(self.burst));
        }
        Ok(())
    }
}

/// Why the Kubernetes client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--kube-qps` is not a number above 0.
    #[error("--kube-qps must be a number above 0, got {0}")]
    InvalidQps(f64),
    /// `--kube-burst` is 0.
    #[error("--kube-burst must be at least 1, got {0}")]
    InvalidBurst(u32),
    /// kube could not build its HTTP stack from the configuration (TLS, authentication).
    #[error("cannot build the Kubernetes client: {0}")]
    Build(#[source] kube::Error),
}

impl Error {
    /// Bounded category, for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::InvalidQps(_) | Error::InvalidBurst(_) => "invalid_flag",
            Error::Build(_) => "kube_client",
        }
    }
}

/// A Kubernetes client for `config` whose every request is paced by `limits` and by the API
/// server's `Retry-After` (see the module documentation), recording
/// `cams_operator_kube_throttled_total` and `cams_operator_kube_wait_seconds` in `metrics`.
/// Must be called within a Tokio runtime, as `kube::Client::new`.
pub fn client(
    mut config: kube::Config,
    limits: KubeLimits,
    metrics: Metrics,
) -> Result<kube::Client, Error> {
    limits.validate()?;
    config.default_retry = false;
    let layer = PacingLayer::new(limits, metrics);
    let builder = ClientBuilder::try_from(config).map_err(Error::Build)?;
    Ok(builder.with_layer(&layer).build())
}

/// What to do with an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the caller.
    Done,
    /// The server asks to slow down: pause every request for this long, then send this one
    /// again.
    Retry(Duration),
    /// The server asks to slow down, but this request is not sent again (a watch, a body that
    /// cannot be copied, or retries used up): pause every request, and hand the answer over.
    GiveUp(Duration),
}

/// The verdict on an answer with `status` and `headers`, for a request that may (`retryable`)
/// be sent again.
pub fn verdict(status: StatusCode, headers: &HeaderMap, retryable: bool) -> Verdict {
    if !slow_down(status) {
        return Verdict::Done;
    }
    let pause = retry_after(headers);
    if retryable {
        Verdict::Retry(pause)
    } else {
        Verdict::GiveUp(pause)
    }
}

/// True for the answers that ask the client to slow down: 429 (API Priority and Fairness,
/// max-in-flight) and 503.
pub fn slow_down(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
}

/// The pause a `Retry-After` header asks for: whole seconds (the API server never sends a
/// date), [`DEFAULT_RETRY_AFTER`] when absent or unreadable, at most [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, |secs| {
            Duration::from_secs(secs).min(MAX_RETRY_AFTER)
        })
}

/// True for a watch request (`watch=true` or `watch=1` in the query).
pub fn is_watch(uri: &Uri) -> bool {
    uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    })
}

/// A copy of `request` to send again, when its body can be copied.
fn copy_request(request: &Request<Body>) -> Option<Request<Body>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

/// An HTTP attempt that got no answer within [`ATTEMPT_TIMEOUT`].
#[derive(Debug, thiserror::Error)]
#[error("the Kubernetes API did not answer within {ATTEMPT_TIMEOUT:?}")]
pub struct AttemptTimedOut;

/// The state shared by every request of one client: the budget, which a `Retry-After` holds.
struct Pacing {
    bucket: TokenBucket,
    metrics: Metrics,
}

impl Pacing {
    /// Holds every request of the client for `pause` from now (a longer pause already set is
    /// kept); when it ends, the queued requests resume with at most a burst at once.
    fn hold_off(&self, pause: Duration) {
        self.bucket.hold_until(Instant::now() + pause);
    }

    /// Waits until an attempt may be sent: a token (in arrival order), then the end of any
    /// pause that began after the token was granted. A token is never given back, so a
    /// request that waited once does not queue again behind later ones.
    async fn pace(&self) {
        let started = Instant::now();
        self.bucket.acquire().await;
        while let Some(until) = self.bucket.held_after(Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
        self.metrics
            .kube_wait
            .observe(started.elapsed().as_secs_f64());
    }
}

/// A [`Layer`] pacing every request of a Kubernetes client (see the module documentation).
/// Clones share one budget and one pause.
#[derive(Clone)]
pub struct PacingLayer {
    pacing: Arc<Pacing>,
}

impl PacingLayer {
    /// A layer with the budget of `limits` (taken as they are: see [`KubeLimits::validate`]),
    /// recording its waits and the throttling answers in `metrics`.
    pub fn new(limits: KubeLimits, metrics: Metrics) -> Self {
        PacingLayer {
            pacing: Arc::new(Pacing {
                bucket: TokenBucket::new(limits.qps, f64::from(limits.burst)),
                metrics,
            }),
        }
    }
}

impl<S> Layer<S> for PacingLayer
where
    S: Service<Request<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + Sync,
{
    type Service = Paced<S::Future>;

    /// Wraps `inner` behind a buffer (so retries can call it from the response future); spawns
    /// the buffer's worker, so it must run within a Tokio runtime.
    fn layer(&self, inner: S) -> Self::Service {
        Paced {
            inner: Buffer::new(inner, BUFFER_CAPACITY),
            pacing: self.pacing.clone(),
        }
    }
}

/// The service of [`PacingLayer`]; `F` is the wrapped service's future.
pub struct Paced<F> {
    inner: Buffer<Request<Body>, F>,
    pacing: Arc<Pacing>,
}

impl<F> Clone for Paced<F>
where
    F: Send + 'static,
{
    fn clone(&self) -> Self {
        Paced {
            inner: self.inner.clone(),
            pacing: self.pacing.clone(),
        }
    }
}

pub type PacedFuture<B> = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

impl<F, B, E> Service<Request<Body>> for Paced<F>
where
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    E: Into<BoxError> + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = PacedFuture<B>;

    /// Always ready: the wait for the budget and for the wrapped service happens in the
    /// response future, so one paced request never holds up the caller's queue.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let pacing = self.pacing.clone();
        Box::pin(send(inner, pacing, request))
    }
}

/// Sends `request` through `inner`, paced, and again after each 429 or 503 while retries are
/// left.
async fn send<F, B, E>(
    mut inner: Buffer<Request<Body>, F>,
    pacing: Arc<Pacing>,
    mut request: Request<Body>,
) -> Result<Response<B>, BoxError>
where
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    E: Into<BoxError>,
{
    let watch = is_watch(request.uri());
    let mut retries = 0;
    loop {
        let again = if watch || retries >= MAX_RETRIES {
            None
        } else {
            copy_request(&request)
        };
        pacing.pace().await;
        let method = request.method().clone();
        let uri = request.uri().clone();
        let attempt = inner.ready().await?.call(request);
        let response = if watch {
            attempt.await?
        } else {
            tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
                .await
                .map_err(|_| AttemptTimedOut)??
        };
        let status = response.status();
        match verdict(status, response.headers(), again.is_some()) {
            Verdict::Done => return Ok(response),
            Verdict::GiveUp(pause) => {
                pacing.metrics.kube_throttled.inc();
                pacing.hold_off(pause);
                if !watch {
                    warn!(%method, %uri, %status, retries, ?pause,
                        "the Kubernetes API kept asking to slow down; giving up on the request");
                }
                return Ok(response);
            }
            Verdict::Retry(pause) => {
                pacing.metrics.kube_throttled.inc();
                pacing.hold_off(pause);
                debug!(%method, %uri, %status, ?pause,
                    "the Kubernetes API asked to slow down; pausing every request, then retrying");
                retries += 1;
                // `Retry` is given only when a copy was made.
                let Some(next) = again else {
                    return Ok(response);
                };
                request = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::HeaderValue;

    /// What the fake API server saw: when each request arrived (paused clock), and its path.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<(Instant, String)>>>);

    impl Seen {
        fn times(&self) -> Vec<Instant> {
            self.0.lock().unwrap().iter().map(|(t, _)| *t).collect()
        }
        fn paths(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|(_, p)| p.clone())
                .collect()
        }
    }

    /// The future of the fake API server.
    type FakeFuture = PacedFuture<()>;

    /// A fake API server answering each request with `answer(n, request)` (n counts from 0).
    fn fake(
        seen: Seen,
        answer: impl Fn(usize, &Request<Body>) -> Response<()> + Send + Sync + 'static,
    ) -> impl Service<Request<Body>, Response = Response<()>, Error = BoxError, Future = FakeFuture>
    + Send
    + 'static {
        let count = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(answer);
        tower::service_fn(move |request: Request<Body>| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            seen.0
                .lock()
                .unwrap()
                .push((Instant::now(), request.uri().to_string()));
            let response = answer(n, &request);
            Box::pin(async move { Ok::<_, BoxError>(response) }) as FakeFuture
        })
    }

    fn status(code: u16, retry_after: Option<&str>) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(code).unwrap();
        if let Some(value) = retry_after {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        response
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    async fn send_one<S>(service: &mut S, request: Request<Body>) -> Response<()>
    where
        S: Service<Request<Body>, Response = Response<()>, Error = BoxError>,
    {
        service.ready().await.unwrap().call(request).await.unwrap()
    }

    fn layer(qps: f64, burst: u32) -> (PacingLayer, Metrics) {
        let metrics = Metrics::new();
        (
            PacingLayer::new(KubeLimits { qps, burst }, metrics.clone()),
            metrics,
        )
    }

    #[test]
    fn retry_after_is_read_defaulted_and_capped() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), DEFAULT_RETRY_AFTER);
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Duration::from_secs(2));
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("0"));
        assert_eq!(retry_after(&headers), Duration::ZERO);
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(retry_after(&headers), MAX_RETRY_AFTER);
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn only_429_and_503_slow_down_and_only_retryable_requests_are_retried() {
        let headers = HeaderMap::new();
        for code in [200, 201, 404, 409, 422, 500, 504] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(verdict(status, &headers, true), Verdict::Done, "{code}");
        }
        for code in [429, 503] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(
                verdict(status, &headers, true),
                Verdict::Retry(DEFAULT_RETRY_AFTER)
            );
            assert_eq!(
                verdict(status, &headers, false),
                Verdict::GiveUp(DEFAULT_RETRY_AFTER)
            );
        }
    }

    #[test]
    fn watches_are_recognised_by_their_query() {
        let watch: Uri = "/api/v1/secrets?watch=true&resourceVersion=5"
            .parse()
            .unwrap();
        let list: Uri = "/api/v1/secrets?limit=500".parse().unwrap();
        let named: Uri = "/api/v1/namespaces/watch/secrets/watch".parse().unwrap();
        assert!(is_watch(&watch));
        assert!(!is_watch(&list));
        assert!(!is_watch(&named));
    }

    #[test]
    fn limits_are_validated_naming_the_flag() {
        assert!(KubeLimits::default().validate().is_ok());
        let err = KubeLimits {
            qps: 0.0,
            burst: 30,
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("--kube-qps"), "{err}");
        assert_eq!(err.category(), "invalid_flag");
        let err = KubeLimits {
            qps: f64::NAN,
            burst: 30,
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("--kube-qps"), "{err}");
        let err = KubeLimits {
            qps: 20.0,
            burst: 0,
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("--kube-burst"), "{err}");
    }

    /// 25 requests at once with 10 per second and bursts of 5: on the paused clock, the first
    /// 5 go at once and the rest one every 100 ms, so the last is sent (25 - 5) / 10 = 2 s
    /// after the first, and no second holds more than 5 + 10 of them.
    #[tokio::test(start_paused = true)]
    async fn requests_are_paced_by_the_budget() {
        let (layer, metrics) = layer(10.0, 5);
        let seen = Seen::default();
        let service = layer.layer(fake(seen.clone(), |_, _| status(200, None)));
        let start = Instant::now();
        let requests = (0..25).map(|i| {
            let mut service = service.clone();
            async move { send_one(&mut service, get(&format!("/r/{i}"))).await }
        });
        let answers = futures::future::join_all(requests).await;
        assert!(answers.iter().all(|a| a.status() == StatusCode::OK));
        let times = seen.times();
        assert_eq!(times.len(), 25);
        let last = times.iter().max().copied().unwrap();
        assert!(
            last - start >= Duration::from_millis(1999),
            "{:?}",
            last - start
        );
        for window_start in &times {
            let in_window = times
                .iter()
                .filter(|t| **t >= *window_start && **t < *window_start + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 5 + 10,
                "{in_window} requests within one second"
            );
        }
        assert!(
            metrics
                .encode()
                .contains("cams_operator_kube_wait_seconds_count 25")
        );
        assert!(
            metrics
                .encode()
                .contains("cams_operator_kube_throttled_total 0")
        );
    }

    /// After a 429 with `Retry-After: 2`, neither the throttled request nor another one sent
    /// meanwhile reaches the server before 2 s have passed; the throttled one is then retried
    /// and succeeds.
    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_every_request() {
        let (layer, metrics) = layer(100.0, 10);
        let seen = Seen::default();
        let service = layer.layer(fake(seen.clone(), |n, _| {
            if n == 0 {
                status(429, Some("2"))
            } else {
                status(200, None)
            }
        }));
        let mut first = service.clone();
        let mut second = service.clone();
        let throttled = send_one(&mut first, get("/first"));
        let other = async {
            // Let the first request reach the fake server and its 429 come back.
            while metrics.kube_throttled.get() == 0 {
                tokio::task::yield_now().await;
            }
            let answered_429 = Instant::now();
            (answered_429, send_one(&mut second, get("/second")).await)
        };
        let (throttled, (answered_429, other)) = tokio::join!(throttled, other);
        assert_eq!(throttled.status(), StatusCode::OK);
        assert_eq!(other.status(), StatusCode::OK);

        let times = seen.times();
        let paths = seen.paths();
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert_eq!(paths[0], "/first");
        assert!(paths[1..].contains(&"/first".to_owned()));
        assert!(paths[1..].contains(&"/second".to_owned()));
        for later in &times[1..] {
            assert!(*later - answered_429 >= Duration::from_secs(2));
        }
        assert_eq!(metrics.kube_throttled.get(), 1);
    }

    /// An attempt the API server holds without an answer ends after [`ATTEMPT_TIMEOUT`] with an
    /// error naming the wait; a watch has no such bound.
    #[tokio::test(start_paused = true)]
    async fn an_unanswered_attempt_ends_after_the_attempt_timeout() {
        let (layer, _) = layer(100.0, 10);
        let mut service = layer.layer(tower::service_fn(|_request: Request<Body>| {
            Box::pin(std::future::pending::<Result<Response<()>, BoxError>>()) as FakeFuture
        }));
        let start = Instant::now();
        let error = service
            .ready()
            .await
            .unwrap()
            .call(get("/held"))
            .await
            .expect_err("no answer");
        assert!(error.to_string().contains("did not answer"), "{error}");
        assert!(Instant::now() - start >= ATTEMPT_TIMEOUT);
        let watch = service
            .ready()
            .await
            .unwrap()
            .call(get("/api/v1/secrets?watch=true"));
        let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT * 4, watch).await;
        assert!(
            outcome.is_err(),
            "a watch is not cut by the attempt timeout"
        );
    }

    /// A request answered 429 every time is sent 1 + MAX_RETRIES times, then the 429 is the
    /// answer.
    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded() {
        let (layer, metrics) = layer(100.0, 10);
        let seen = Seen::default();
        let mut service = layer.layer(fake(seen.clone(), |_, _| status(429, Some("1"))));
        let start = Instant::now();
        let answer = send_one(&mut service, get("/always-throttled")).await;
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(seen.times().len(), 1 + MAX_RETRIES as usize);
        assert_eq!(metrics.kube_throttled.get(), u64::from(1 + MAX_RETRIES));
        // Each retry waited for the second asked.
        assert!(Instant::now() - start >= Duration::from_secs(u64::from(MAX_RETRIES)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_500_is_not_retried_and_does_not_pause() {
        let (layer, metrics) = layer(100.0, 10);
        let seen = Seen::default();
        let mut service = layer.layer(fake(seen.clone(), |n, _| {
            if n == 0 {
                status(500, Some("5"))
            } else {
                status(200, None)
            }
        }));
        let start = Instant::now();
        let answer = send_one(&mut service, get("/broken")).await;
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let next = send_one(&mut service, get("/next")).await;
        assert_eq!(next.status(), StatusCode::OK);
        assert_eq!(seen.times().len(), 2);
        assert!(Instant::now() - start < Duration::from_secs(1));
        assert_eq!(metrics.kube_throttled.get(), 0);
    }

    /// A watch answered 503 is handed back (the watcher retries it), but the pause applies.
    #[tokio::test(start_paused = true)]
    async fn a_watch_is_paced_but_not_retried() {
        let (layer, metrics) = layer(100.0, 10);
        let seen = Seen::default();
        let mut service = layer.layer(fake(seen.clone(), |n, _| {
            if n == 0 {
                status(503, None)
            } else {
                status(200, None)
            }
        }));
        let answer = send_one(&mut service, get("/api/v1/secrets?watch=true")).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(seen.times().len(), 1);
        let paused_from = Instant::now();
        let next = send_one(&mut service, get("/api/v1/secrets")).await;
        assert_eq!(next.status(), StatusCode::OK);
        assert!(seen.times()[1] - paused_from >= DEFAULT_RETRY_AFTER);
        assert_eq!(metrics.kube_throttled.get(), 1);
    }

    #[test]
    fn a_copy_keeps_method_uri_headers_and_body() {
        let request = Request::patch("/apis/x/v1/namespaces/a/things/b/status?fieldManager=m")
            .header("content-type", "application/apply-patch+yaml")
            .body(Body::from(b"{\"status\":{}}".to_vec()))
            .unwrap();
        let copy = copy_request(&request).unwrap();
        assert_eq!(copy.method(), request.method());
        assert_eq!(copy.uri(), request.uri());
        assert_eq!(copy.headers(), request.headers());
    }
}
