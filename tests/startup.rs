//! Configuration errors fail loudly: a `--selector` the API server refuses, a missing CRD or a
//! permission the ServiceAccount lacks stops the operator at start with a message naming the
//! problem (and `cams-operator run` exits non-zero); a permission refused later makes `/readyz`
//! fail with the reason, until it is granted again. Never a silent loop while ready.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cams_operator::cams::client::{HttpCams, HttpCamsConfig};
use cams_operator::controller::command::{self, Error as RunError};
use cams_operator::controller::preflight::Error as PreflightError;
use cams_operator::controller::{self, Clock, Context, Scope, Settings, operations};
use cams_operator::metrics::Metrics;
use cams_sim::{Group, Simulator};
use kube_test_server::{TestApiServer, kinds};
use support::fixtures::{KEY_ID, KEY_SECRET, NUMBER, SPACE, chatgroup, secret};
use support::{RbacMode, chatgroups};
use tokio::sync::watch;

/// Longest wait for an expected state.
const WAIT: Duration = Duration::from_secs(30);

/// Polls `check` every 20 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn context(client: kube::Client) -> Arc<Context<HttpCams>> {
    let cams = HttpCams::new(HttpCamsConfig::default()).expect("HTTP client");
    let settings = Settings {
        cams_qps: 1000.0,
        clock: Clock::real(),
        ..Settings::default()
    };
    Arc::new(Context::new(client, cams, Metrics::new(), settings))
}

/// `serve` as `cams-operator run` calls it, without leader election; its error, within
/// [`WAIT`].
async fn serve_error(client: kube::Client, scope: Scope) -> RunError {
    let ctx = context(client.clone());
    let served = tokio::time::timeout(
        WAIT,
        command::serve(client, ctx, scope, None, std::future::pending()),
    )
    .await
    .expect("serve returns at once");
    served.expect_err("the configuration is refused")
}

#[tokio::test]
async fn a_selector_the_api_server_refuses_stops_the_operator_at_start() {
    let (_server, client) = support::start_api_server().await;
    let scope = Scope {
        namespaces: vec!["e2e".into()],
        selector: Some("shard in (a".into()),
    };
    let error = serve_error(client, scope).await;
    assert!(
        matches!(
            &error,
            RunError::Preflight(PreflightError::InvalidSelector { selector, .. }) if selector == "shard in (a"
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("--selector"), "{error}");
}

#[tokio::test]
async fn a_missing_crd_stops_the_operator_at_start() {
    let (_server, client) = TestApiServer::start().await;
    let error = serve_error(client, Scope::default()).await;
    assert!(
        matches!(&error, RunError::Preflight(PreflightError::CrdMissing)),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("kubectl apply -f crds/"),
        "{error}"
    );
}

/// The chart grants Roles in the watched namespaces only; an operator started to watch every
/// namespace is refused at the cluster scope, and every refusal is listed at once.
#[tokio::test]
async fn missing_permissions_are_listed_at_start() {
    let (server, _admin) = support::start_api_server().await;
    server.enforce_rbac(&support::chart_manifests(RbacMode::WatchedNamespaces));
    let client = server.client_as(&support::operator_user());
    let error = serve_error(client, Scope::default()).await;
    let RunError::Preflight(PreflightError::Forbidden(refused)) = &error else {
        panic!("expected the missing permissions: {error:?}");
    };
    assert!(
        refused.iter().any(|m| m.contains(
            "cannot list resource \"chatgroups\" in API group \"cams.chatapp.io\" at the cluster scope"
        )),
        "{refused:#?}"
    );
    assert!(
        refused
            .iter()
            .any(|m| m.contains("cannot list resource \"secrets\"")),
        "{refused:#?}"
    );
    assert!(error.to_string().contains("watchNamespaces"), "{error}");
}

/// The built binary, as a Deployment runs it: a refused selector is a non-zero exit with the
/// reason on stderr, not a pod that stays up and never reconciles.
#[tokio::test]
async fn the_binary_exits_non_zero_naming_the_problem() {
    let (server, _client) = support::start_api_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml()).expect("kubeconfig");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cams-operator"))
        .args([
            "run",
            "--namespace",
            "e2e",
            "--selector",
            "shard in (a",
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the binary did not exit within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!status.success(), "exit status {status}: {text}");
    assert!(text.contains("--selector"), "{text}");
}

/// A permission revoked while the operator runs: the status write it needs is refused, and
/// `/readyz` fails with the API server's reason until the permission is back.
#[tokio::test]
async fn a_permission_refused_later_makes_readyz_fail_with_the_reason() {
    let sim = Simulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .group(Group::new(SPACE, NUMBER, "EA303Z").subject("Old subject"))
        .start()
        .await
        .expect("simulator starts");
    let (server, _admin) = support::start_api_server().await;
    let chart = support::chart_manifests(RbacMode::ClusterWide);
    server.enforce_rbac(&chart);
    let ctx = context(server.client_as(&support::operator_user()));
    let readiness = ctx.readiness().clone();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(controller::run(ctx, Scope::default(), stop_rx));
    assert!(
        eventually(WAIT, || readiness.is_ready()).await,
        "ready after the first list"
    );

    // The ClusterRole loses `patch` on `chatgroups/status`.
    let revoked = chart.replace(
        "    resources: [\"chatgroups/status\"]\n    verbs: [\"patch\"]",
        "    resources: [\"chatgroups/status\"]\n    verbs: [\"get\"]",
    );
    assert_ne!(revoked, chart, "the chart's rule was found");
    server.enforce_rbac(&revoked);
    server
        .create(
            &kinds::SECRETS,
            "e2e",
            secret("e2e", "cams-credentials", KEY_SECRET),
        )
        .expect("secret");
    server
        .create(
            &chatgroups(),
            "e2e",
            chatgroup("e2e", "team-z", "EA303Z", &sim.url()),
        )
        .expect("chatgroup");
    let refused = eventually(WAIT, || !readiness.problems().is_empty()).await;
    assert!(refused, "/readyz fails once the status write is refused");
    assert!(!readiness.is_ready());
    let problems = readiness.problems();
    let reason = problems
        .get(operations::WRITE_STATUS)
        .expect("the status write is the problem");
    assert!(
        reason.contains("cannot patch resource \"chatgroups/status\""),
        "{reason}"
    );

    // Granted again: the retried reconcile writes the status and `/readyz` recovers.
    server.enforce_rbac(&chart);
    let recovered = eventually(Duration::from_secs(60), || readiness.is_ready()).await;
    assert!(recovered, "ready again: {:?}", readiness.problems());
    let _ = stop.send(true);
    let _ = tokio::time::timeout(WAIT, task).await;
}
