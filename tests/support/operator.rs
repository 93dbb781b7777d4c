//! A running operator for the scenario tests: `controller::run` on a task of its own, as
//! `cams-operator run` runs it, against the HTTP CAMS client; and polling for a condition.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cams_operator::cams::client::{HttpCams, HttpCamsConfig};
use cams_operator::controller::{self, Context, Scope, Settings};
use cams_operator::metrics::Metrics;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest wait for an operator to start or stop.
const START_STOP: Duration = Duration::from_secs(60);

/// A running operator.
pub struct Operator {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Its context: metrics, settings, memory.
    pub ctx: Arc<Context<HttpCams>>,
}

impl Operator {
    /// Starts an operator talking to the API server as `client` and returns once its first
    /// list is done (`settings.readiness` is ready).
    pub async fn launch(
        client: kube::Client,
        scope: Scope,
        settings: Settings,
        metrics: Metrics,
    ) -> Operator {
        let readiness = settings.readiness.clone();
        let cams = HttpCams::new(HttpCamsConfig::default()).expect("HTTP client");
        let ctx = Arc::new(Context::new(client, cams, metrics, settings));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(controller::run(ctx.clone(), scope, stop_rx));
        let ready = wait_until(START_STOP, || async { readiness.is_ready() }).await;
        assert!(ready, "the operator became ready after its first list");
        Operator { stop, task, ctx }
    }

    /// Graceful shutdown, as on SIGTERM: in-flight reconciles finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let stopped = tokio::time::timeout(START_STOP, self.task).await;
        assert!(
            stopped.is_ok(),
            "the operator stopped within {START_STOP:?} of the signal"
        );
    }

    /// Ends the operator at once, wherever it is, as when its process is killed: nothing in
    /// flight finishes and its memory is lost.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Polls `check` every 25 ms until it holds or `limit` passes.
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
