//! `cams-operator run`: admin endpoints, optional leader election, then the controllers until
//! SIGTERM.
//!
//! The configuration is read here, once, at start-up: the command line ([`RunArgs`]), the
//! environment (the pod's name and namespace, the operator's own identity, and the test and
//! benchmark hook [`TIME_SCALE_ENV`]) and the kubeconfig. What the controllers need of it is
//! passed in as [`Settings`] and [`Scope`]; nothing else reads the environment.

use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;
use tracing::{error, info};

use crate::admin::{self, AdminServer, Readiness};
use crate::cams::CamsApi;
use crate::cams::client::{HttpCams, HttpCamsConfig, user_agent_for};
use crate::cli::RunArgs;
use crate::identity::{IdentityError, OperatorIdentity};
use crate::metrics::Metrics;
use crate::reconcile::credentials::IdentityNamespaces;

use super::kube_client::{self, KubeLimits};
use super::leader::{LeaderConfig, LeaderElector};
use super::preflight;
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
    /// The paced Kubernetes client could not be built.
    #[error(transparent)]
    KubeClient(#[from] super::kube_client::Error),
    /// The operator cannot do its work with this configuration.
    #[error(transparent)]
    Preflight(#[from] preflight::Error),
}

/// Runs the operator until SIGTERM (graceful) or loss of leadership (error).
pub async fn run(args: RunArgs) -> Result<(), Error> {
    let RunArgs {
        namespaces,
        identity_namespaces,
        selector,
        cams_qps,
        concurrency,
        kube_qps,
        kube_burst,
        metrics_addr,
        health_addr,
        leader_election,
        lease_name,
        lease_namespace,
        log_format: _,
    } = args;
    let kube_limits = KubeLimits {
        qps: kube_qps,
        burst: kube_burst,
    };
    check_limits(cams_qps, concurrency, kube_limits)?;

    let metrics = Metrics::new();
    let readiness = Readiness::default();
    serve_admin(health_addr, metrics_addr, &readiness, &metrics).await?;

    let config = kube::Config::infer()
        .await
        .map_err(|e| Error::Kube(kube::Error::InferConfig(e)))?;
    let home = home_namespace(&config);
    let identity_namespaces = IdentityNamespaces::from_flag(&identity_namespaces, &home)
        .map_err(|e| Error::InvalidFlag(e.to_string()))?;
    // The Lease gets a budget of its own (controller-runtime's leader election likewise builds
    // its own clients): a pause asked for by a throttled status patch must not delay renewals.
    let client = kube_client::client(config.clone(), kube_limits, metrics.clone())?;
    let controller_client = kube_client::client(config, kube_limits, metrics.clone())?;
    let instance = instance_id();
    let cams = HttpCams::new(HttpCamsConfig {
        user_agent: user_agent_for(&instance),
        ..HttpCamsConfig::default()
    })
    .map_err(|e| Error::CamsClient(e.to_string()))?;
    let operator_identity = OperatorIdentity::from_env().map_err(Error::Identity)?;
    info!(
        kind = operator_identity.kind(),
        namespaces = %identity_namespaces,
        "operator identity"
    );
    let settings = Settings {
        cams_qps,
        concurrency,
        operator_identity,
        identity_namespaces,
        clock: time_scale_from_env().map_or_else(Clock::real, Clock::scaled),
        readiness,
        instance: instance.clone(),
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(
        controller_client,
        cams,
        metrics.clone(),
        settings,
    ));
    let scope = Scope {
        namespaces,
        selector,
    };

    let leader = leader_election.then(|| {
        let namespace = lease_namespace.unwrap_or(home);
        LeaderConfig::with_defaults(lease_name, namespace, instance)
    });
    serve(client, ctx, scope, leader, shutdown_signal()).await
}

/// The rate and concurrency flags, checked before anything starts.
fn check_limits(cams_qps: f64, concurrency: usize, kube_limits: KubeLimits) -> Result<(), Error> {
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
    kube_limits
        .validate()
        .map_err(|e| Error::InvalidFlag(e.to_string()))
}

/// Starts the probe endpoints, and `/metrics` on its own address when it has one.
async fn serve_admin(
    health_addr: std::net::SocketAddr,
    metrics_addr: std::net::SocketAddr,
    readiness: &Readiness,
    metrics: &Metrics,
) -> Result<(), Error> {
    let health = AdminServer::bind(health_addr, readiness.clone(), metrics.clone()).await?;
    info!(addr = ?health.local_addr(), "serving /livez and /readyz");
    tokio::spawn(health.serve());
    if metrics_addr != health_addr {
        let server = AdminServer::bind(metrics_addr, readiness.clone(), metrics.clone()).await?;
        info!(addr = ?server.local_addr(), "serving /metrics");
        tokio::spawn(server.serve());
    }
    Ok(())
}

/// Runs the controllers until `shutdown` resolves (graceful: in-flight reconciles finish) or
/// leadership is lost (an error: the process should exit and restart as a standby).
///
/// With a `leader` config, nothing is reconciled before the Lease is held; a standby reports
/// ready. While leading, the Lease is renewed and every CAMS call passes the context's
/// leadership gate ([`LeadershipGate`](super::leader::LeadershipGate)): none starts after the
/// renew deadline of the last successful renewal, and any still in flight is cut before a
/// standby could take over. On loss there is no grace: the gate closes, every reconcile in
/// flight is abandoned (a CAMS call in flight ends at once), and the [`Error::Leadership`]
/// error is returned, at the latest at the renew deadline. A Lease that cannot be used at all
/// (missing namespace, no permission) is an error at once. A graceful shutdown keeps renewing
/// while reconciles finish, then releases the Lease.
///
/// First of all, standby or not, the [`preflight`] checks run: a selector the API server
/// refuses, a missing CRD or a missing permission is an error before anything else starts.
pub async fn serve<C: CamsApi + 'static>(
    client: Client,
    ctx: Arc<Context<C>>,
    scope: Scope,
    leader: Option<LeaderConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let home = ctx.client.default_namespace().to_owned();
    preflight::check(&ctx.client, &scope, &home).await?;
    let readiness = ctx.readiness().clone();
    let metrics = ctx.metrics().clone();
    let gate = ctx.cams.gate().clone();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut elector = match leader {
        Some(config) => {
            config.validate()?;
            gate.close();
            let mut elector = LeaderElector::new(client, config);
            // A standby is healthy: it reports ready so rollouts of a 2-replica Deployment
            // proceed.
            readiness.set_ready();
            let term = tokio::select! {
                acquired = elector.acquire() => acquired?,
                () = &mut shutdown => return Ok(()),
            };
            gate.lead(term);
            Some((elector, term))
        }
        None => {
            gate.open_unconditionally();
            None
        }
    };
    metrics.leader.set(1);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut controllers = AbortOnDrop(tokio::spawn(super::run(ctx, scope, stop_rx)));
    let outcome = {
        let hold = async {
            match elector.as_mut() {
                Some((elector, term)) => elector.hold(&gate, *term).await,
                None => std::future::pending().await,
            }
        };
        let mut hold = std::pin::pin!(hold);
        let lost = tokio::select! {
            () = &mut shutdown => None,
            lost = &mut hold => Some(lost),
        };
        match lost {
            Some(lost) => Err(lost),
            None => {
                info!("shutting down: letting in-flight reconciles finish");
                let _ = stop_tx.send(true);
                // The Lease is still renewed meanwhile: a drain longer than the renew deadline
                // must not let a standby start while calls are in flight.
                tokio::select! {
                    joined = &mut controllers.0 => {
                        if let Err(err) = joined {
                            error!(error = %err, "controller task failed");
                        }
                        Ok(())
                    }
                    lost = &mut hold => Err(lost),
                }
            }
        }
    };
    gate.close();
    metrics.leader.set(0);
    match outcome {
        Err(lost) => {
            error!(
                error = %lost,
                category = lost.category(),
                "leadership lost: abandoning the reconciles in flight"
            );
            controllers.0.abort();
            let _ = (&mut controllers.0).await;
            Err(Error::Leadership(lost))
        }
        Ok(()) => {
            if let Some((elector, _)) = &elector {
                elector.release().await;
            }
            Ok(())
        }
    }
}

/// Aborts the controllers when `serve` itself is dropped (its task aborted), so they never
/// outlive the leadership they depend on.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A hook for tests and benchmarks only, never for production: the environment variable
/// that runs the built binary's clock this many times faster than real time (see [`Clock`]),
/// so that the fleet benchmark (`scripts/bench-fleet`) sees resync intervals of minutes pass
/// in seconds. Every interval the operator keeps would shrink by the same factor, so it is
/// not a flag, is not in the chart, and is logged at start-up when set (at `info`: the fleet
/// benchmark counts the warnings the operator logs).
pub const TIME_SCALE_ENV: &str = "CAMS_OPERATOR_TIME_SCALE";

/// The time compression of [`TIME_SCALE_ENV`], when set to a number of at least 1.
fn time_scale_from_env() -> Option<f64> {
    let scale = std::env::var(TIME_SCALE_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 1.0)?;
    info!(
        scale,
        "{TIME_SCALE_ENV} is set: the operator's clock runs faster than real time (a hook for tests and benchmarks only)"
    );
    Some(scale)
}

/// The environment variable holding the namespace the pod runs in (the chart sets it from the
/// downward API).
pub const ENV_POD_NAMESPACE: &str = "POD_NAMESPACE";

/// The namespace the operator runs in: [`ENV_POD_NAMESPACE`], else the namespace of the
/// kubeconfig context (in a pod: of its ServiceAccount). The default of the Lease namespace
/// and of `--identity-namespaces`.
fn home_namespace(config: &kube::Config) -> String {
    std::env::var(ENV_POD_NAMESPACE)
        .ok()
        .map(|ns| ns.trim().to_owned())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| config.default_namespace.clone())
}

/// The environment variable holding the pod's name (the chart sets it from the downward API).
pub const ENV_POD_NAME: &str = "POD_NAME";

/// The environment variable holding the host name, the pod's name when [`ENV_POD_NAME`] is
/// not set.
pub const ENV_HOSTNAME: &str = "HOSTNAME";

/// This replica's identity: the Lease holder identity and the instance named in the CAMS
/// `User-Agent`. The pod name ([`ENV_POD_NAME`], else [`ENV_HOSTNAME`]), else one made from the
/// process id.
fn instance_id() -> String {
    std::env::var(ENV_POD_NAME)
        .or_else(|_| std::env::var(ENV_HOSTNAME))
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("cams-operator-{}", std::process::id()))
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
