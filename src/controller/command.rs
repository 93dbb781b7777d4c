//! `cams-operator run`: admin endpoints, optional leader election, then the controllers until
//! SIGTERM.

use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;
use tracing::{error, info};

use crate::admin::{self, AdminServer, Readiness};
use crate::cams::client::{HttpCams, HttpCamsConfig};
use crate::cli::RunArgs;
use crate::identity::{IdentityError, OperatorIdentity};
use crate::metrics::Metrics;

use super::leader::{DEFAULT_LEASE_DURATION, LeaderConfig, LeaderElector};
use super::{Clock, Context, Scope, Settings};

/// Why `run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The admin endpoints could not start.
    #[error(transparent)]
    Admin(#[from] admin::Error),
    /// No Kubernetes configuration (kubeconfig or in-cluster) was usable.
    #[error("cannot connect to Kubernetes (kubeconfig or in-cluster configuration): {0}")]
    Kube(#[source] kube::Error),
    /// The CAMS HTTP client could not be built.
    #[error("cannot build the CAMS HTTP client: {0}")]
    CamsClient(String),
    /// A flag has a value outside what is allowed.
    #[error("invalid flag: {0}")]
    InvalidFlag(String),
    /// The operator's own identity is configured incompletely.
    #[error("the operator's Alibaba Cloud identity is not usable: {0}")]
    Identity(#[source] IdentityError),
    /// Leadership was lost; the process exits so it restarts as a standby.
    #[error(transparent)]
    Leadership(#[from] super::leader::Error),
}

/// Runs the operator until SIGTERM (graceful) or loss of leadership (error).
pub async fn run(args: RunArgs) -> Result<(), Error> {
    let RunArgs {
        namespaces,
        selector,
        cams_qps,
        concurrency,
        metrics_addr,
        health_addr,
        leader_election,
        lease_name,
        lease_namespace,
        log_format: _,
    } = args;
    if !(cams_qps.is_finite() && cams_qps > 0.0) {
        return Err(Error::InvalidFlag(format!(
            "--cams-qps must be a number above 0, got {cams_qps}"
        )));
    }
    if concurrency == 0 {
        return Err(Error::InvalidFlag(
            "--concurrency must be at least 1".into(),
        ));
    }

    let metrics = Metrics::new();
    let readiness = Readiness::default();
    let health = AdminServer::bind(health_addr, readiness.clone(), metrics.clone()).await?;
    info!(addr = ?health.local_addr(), "serving /livez and /readyz");
    tokio::spawn(health.serve());
    if metrics_addr != health_addr {
        let server = AdminServer::bind(metrics_addr, readiness.clone(), metrics.clone()).await?;
        info!(addr = ?server.local_addr(), "serving /metrics");
        tokio::spawn(server.serve());
    }

    let client = Client::try_default().await.map_err(Error::Kube)?;
    let cams =
        HttpCams::new(HttpCamsConfig::default()).map_err(|e| Error::CamsClient(e.to_string()))?;
    let operator_identity = OperatorIdentity::from_env().map_err(Error::Identity)?;
    info!(kind = operator_identity.kind(), "operator identity");
    let settings = Settings {
        cams_qps,
        concurrency,
        operator_identity,
        clock: time_scale_from_env().map_or_else(Clock::real, Clock::scaled),
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        cams,
        metrics.clone(),
        settings,
    ));
    let scope = Scope {
        namespaces,
        selector,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let elector = if leader_election {
        let namespace = lease_namespace
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("cams-operator-{}", std::process::id()));
        let elector = Arc::new(LeaderElector::new(
            client.clone(),
            LeaderConfig::new(lease_name, namespace, identity, DEFAULT_LEASE_DURATION),
        ));
        // A standby is healthy: it reports ready so rollouts of a 2-replica Deployment proceed.
        readiness.set_ready();
        tokio::select! {
            _ = elector.acquire() => {},
            _ = super::shutdown_signal() => return Ok(()),
        }
        Some(elector)
    } else {
        None
    };
    metrics.leader.set(1);

    let controllers = tokio::spawn(super::run(ctx, scope, readiness, stop_rx));
    let outcome = match &elector {
        Some(elector) => tokio::select! {
            _ = super::shutdown_signal() => Ok(()),
            lost = elector.hold() => Err(Error::Leadership(lost)),
        },
        None => {
            super::shutdown_signal().await;
            Ok(())
        }
    };
    info!("shutting down: letting in-flight reconciles finish");
    let _ = stop_tx.send(true);
    if let Err(err) = controllers.await {
        error!(error = %err, "controller task failed");
    }
    metrics.leader.set(0);
    if let (Some(elector), Ok(())) = (&elector, &outcome) {
        elector.release().await;
    }
    outcome
}

/// Hidden knob for benchmarks and end-to-end tests of the built binary: run the operator's
/// clock this many times faster than real time (see [`Clock`]). Never set it in production.
pub const TIME_SCALE_ENV: &str = "CAMS_OPERATOR_TIME_SCALE";

fn time_scale_from_env() -> Option<f64> {
    std::env::var(TIME_SCALE_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 1.0)
}
