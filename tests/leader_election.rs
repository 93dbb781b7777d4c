//! Leader election that cannot split: two replicas of `cams-operator run` (each `serve` with its
//! own ServiceAccount client, so faults can target one of them) against the Kubernetes API test
//! server and the CAMS simulator, their wall clocks 20 s apart.
//!
//! Replica A leads and calls CAMS continuously (ChatGroups in several spaces, a one-minute
//! `resyncInterval` on a clock running 120 times faster, and CAMS answering after 150 ms, so
//! calls are in flight most of the time). Then A's Lease calls are answered 429 with
//! `Retry-After` (which `kube::Client` retries by itself), or held unanswered for 30 s. The
//! proof comes from the simulator's request log, where each call carries the `User-Agent` of
//! the replica that made it and the instants it arrived and finished: no call of A overlaps in
//! time with any call of B, B does call CAMS once it took over, and A returned its leadership
//! error within the renew deadline.
//!
//! Run with `--no-capture` to see the call windows around the handover.

mod support;
use support::chatgroups;

use std::sync::Arc;
use std::time::Duration;

use cams_operator::cams::client::{HttpCams, HttpCamsConfig, user_agent_for};
use cams_operator::cams::{ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP};
use cams_operator::controller::command::{self, Error as RunError};
use cams_operator::controller::leader::{Error as LeaderError, LeaderConfig};
use cams_operator::controller::{Clock, Context, Scope, Settings};
use cams_operator::metrics::Metrics;
use cams_sim::{ActionFaults, Group, LoggedRequest, RunningSim, Simulator};
use k8s_openapi::api::coordination::v1::Lease;
use kube_test_server::{Fault, TestApiServer, User, kinds};
use serde_json::json;
use support::fixtures::{KEY_ID, KEY_SECRET, NUMBER, chatgroup_in_space, secret};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Where the ChatGroups live.
const NAMESPACE: &str = "e2e";
/// Where the Lease lives.
const LEASE_NAMESPACE: &str = support::RELEASE_NAMESPACE;
/// The Lease.
const LEASE_NAME: &str = support::RELEASE;
/// The two replicas (pod names, ServiceAccount names and CAMS instance ids).
const REPLICA_A: &str = "replica-a";
const REPLICA_B: &str = "replica-b";
/// How far B's wall clock is ahead of A's.
const SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(20);
/// CAMS spaces, one ChatGroup each: each space is listed on its own schedule.
const SPACES: usize = 8;
/// CAMS latency per call.
const CAMS_LATENCY_MS: u64 = 150;
/// The operator's clock runs this much faster: a one-minute resync every half second.
const TIME_SCALE: f64 = 120.0;
/// Test timings: the production ones (15 s, 10 s, 2 s, 1 s) divided by five, the lease
/// rounded to whole seconds.
const LEASE_DURATION: Duration = Duration::from_secs(3);
const RENEW_DEADLINE: Duration = Duration::from_secs(2);
const RETRY_PERIOD: Duration = Duration::from_millis(400);
const CUT_MARGIN: Duration = Duration::from_millis(200);
/// Scheduling slack allowed on top of the renew deadline for A to return its error.
const STOP_SLACK: Duration = Duration::from_millis(500);
/// Longest wait for any expected state.
const WAIT: Duration = Duration::from_secs(30);

fn leader_config(identity: &str, namespace: &str) -> LeaderConfig {
    LeaderConfig {
        lease_duration: LEASE_DURATION,
        renew_deadline: RENEW_DEADLINE,
        retry_period: RETRY_PERIOD,
        cut_margin: CUT_MARGIN,
        ..LeaderConfig::with_defaults(LEASE_NAME.into(), namespace.into(), identity.into())
    }
}

fn user(replica: &str) -> User {
    User::service_account(LEASE_NAMESPACE, replica)
}

/// The API test server with the suites' namespaces, a credentials Secret and one ChatGroup per
/// space; the simulator holding the groups, answering after [`CAMS_LATENCY_MS`].
async fn cluster() -> (TestApiServer, RunningSim) {
    let mut builder = Simulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .faults(
            ACTION_LIST_CHAT_GROUP,
            ActionFaults::none().latency_ms(CAMS_LATENCY_MS),
        )
        .faults(
            ACTION_UPDATE_CHAT_GROUP,
            ActionFaults::none().latency_ms(CAMS_LATENCY_MS),
        );
    for i in 0..SPACES {
        builder = builder.group(Group::new(space(i), NUMBER, group_id(i)).subject("Old subject"));
    }
    let sim = builder.start().await.expect("simulator starts");
    let (server, _admin) = support::start_api_server().await;
    server.put(
        &kinds::SECRETS,
        secret(NAMESPACE, "cams-credentials", KEY_SECRET),
    );
    for i in 0..SPACES {
        let mut manifest = chatgroup_in_space(
            NAMESPACE,
            &format!("group-{i}"),
            &space(i),
            &group_id(i),
            &sim.url(),
        );
        manifest["spec"]["resyncInterval"] = json!("1m");
        server
            .create(&chatgroups(), NAMESPACE, manifest)
            .expect("ChatGroup created");
    }
    (server, sim)
}

fn space(i: usize) -> String {
    format!("cams-le{i:03}")
}

fn group_id(i: usize) -> String {
    format!("EA303LE{i:03}")
}

/// A running replica: `serve` on its own task; the task returns `serve`'s result and the
/// instant it returned.
struct Replica {
    task: JoinHandle<(Result<(), RunError>, Instant)>,
}

impl Replica {
    fn start(server: &TestApiServer, name: &str, leader: LeaderConfig) -> Replica {
        let client = server.client_as(&user(name));
        let cams = HttpCams::new(HttpCamsConfig {
            user_agent: user_agent_for(name),
            ..HttpCamsConfig::default()
        })
        .expect("HTTP client");
        let settings = Settings {
            cams_qps: 1000.0,
            concurrency: 8,
            clock: Clock::scaled(TIME_SCALE),
            ..Settings::default()
        };
        let ctx = Arc::new(Context::new(client.clone(), cams, Metrics::new(), settings));
        let scope = Scope {
            namespaces: vec![NAMESPACE.into()],
            selector: None,
        };
        let task = tokio::spawn(async move {
            let result =
                command::serve(client, ctx, scope, Some(leader), std::future::pending()).await;
            (result, Instant::now())
        });
        Replica { task }
    }
}

fn holder(server: &TestApiServer) -> Option<String> {
    server
        .get_as::<Lease>(LEASE_NAMESPACE, LEASE_NAME)?
        .spec?
        .holder_identity
}

/// The simulator's log entries of `replica`'s calls.
fn calls_of(sim: &RunningSim, replica: &str) -> Vec<LoggedRequest> {
    let suffix = format!("({replica})");
    sim.request_log()
        .into_iter()
        .filter(|r| {
            r.user_agent
                .as_deref()
                .is_some_and(|ua| ua.ends_with(&suffix))
        })
        .collect()
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The handover scenario, with `fault` applied to replica A's Lease calls once A leads and
/// calls CAMS and B stands by; asserts on the simulator's log of both replicas' calls.
async fn handover(fault: Fault, what: &str) {
    let (server, sim) = cluster().await;
    let t0 = Instant::now();
    let a = Replica::start(
        &server,
        REPLICA_A,
        leader_config(REPLICA_A, LEASE_NAMESPACE),
    );
    wait_until("replica A leads", || {
        holder(&server).as_deref() == Some(REPLICA_A)
    })
    .await;
    wait_until("replica A calls CAMS", || {
        calls_of(&sim, REPLICA_A).len() >= 10
    })
    .await;

    // B's wall clock is 20 s ahead: judged from renewTime, A's Lease would look expired to it.
    let mut config_b = leader_config(REPLICA_B, LEASE_NAMESPACE);
    config_b.wall_clock_offset = SKEW;
    let b = Replica::start(&server, REPLICA_B, config_b);
    tokio::time::sleep(LEASE_DURATION + RETRY_PERIOD * 2).await;
    assert_eq!(
        holder(&server).as_deref(),
        Some(REPLICA_A),
        "a standby with a skewed clock leaves a renewed Lease alone"
    );
    assert!(
        calls_of(&sim, REPLICA_B).is_empty(),
        "a standby calls no CAMS"
    );

    let a_user = user(REPLICA_A).name;
    server.inject(fault.matching(move |r| r.user == a_user));
    let injected = Instant::now();

    let (result, stopped) = tokio::time::timeout(WAIT, a.task)
        .await
        .expect("replica A stops")
        .expect("replica A's task");
    let took = stopped - injected;
    match &result {
        Err(RunError::Leadership(LeaderError::RenewDeadline { .. })) => {}
        other => panic!("replica A must fail with its renew deadline, got {other:?}"),
    }
    println!(
        "{what}: replica A returned {} after {took:?}",
        result.err().map(|e| e.to_string()).unwrap_or_default()
    );
    assert!(
        took <= RENEW_DEADLINE + STOP_SLACK,
        "replica A stopped {took:?} after its Lease calls began to fail (renew deadline {RENEW_DEADLINE:?})"
    );
    assert!(
        server.count(|r| r.user == user(REPLICA_A).name && r.is_for(&kinds::LEASES)) > 0,
        "replica A's Lease calls reached the server"
    );

    wait_until("replica B leads", || {
        holder(&server).as_deref() == Some(REPLICA_B)
    })
    .await;
    wait_until("replica B calls CAMS", || {
        calls_of(&sim, REPLICA_B).len() >= 10
    })
    .await;
    b.task.abort();

    let mut calls_a = calls_of(&sim, REPLICA_A);
    calls_a.sort_by_key(|c| c.finished);
    let mut calls_b = calls_of(&sim, REPLICA_B);
    calls_b.sort_by_key(|c| c.received);
    print_windows(what, t0, injected, &calls_a, &calls_b);
    for call_a in &calls_a {
        for call_b in &calls_b {
            assert!(
                call_a.finished <= call_b.received || call_b.finished <= call_a.received,
                "{what}: calls overlap: A {} {:?}..{:?}, B {} {:?}..{:?}",
                call_a.request_id,
                call_a.received - t0,
                call_a.finished - t0,
                call_b.request_id,
                call_b.received - t0,
                call_b.finished - t0,
            );
        }
    }
    assert!(
        calls_b.len() >= 10,
        "replica B calls CAMS after taking over"
    );
}

fn print_windows(
    what: &str,
    t0: Instant,
    injected: Instant,
    calls_a: &[LoggedRequest],
    calls_b: &[LoggedRequest],
) {
    let ms = |at: Instant| (at - t0).as_millis();
    let row = |who: &str, call: &LoggedRequest| {
        println!(
            "  {who} {:>6} ms .. {:>6} ms  {:<16} {}{}",
            ms(call.received),
            ms(call.finished),
            call.action.as_deref().unwrap_or("-"),
            call.code.as_deref().unwrap_or("-"),
            if call.abandoned { " (abandoned)" } else { "" },
        );
    };
    println!(
        "{what}: {} calls by A, {} by B; A's Lease calls fail from {} ms",
        calls_a.len(),
        calls_b.len(),
        ms(injected)
    );
    let tail = calls_a.len().saturating_sub(6);
    for call in &calls_a[tail..] {
        row("A", call);
    }
    for call in calls_b.iter().take(6) {
        row("B", call);
    }
    let last_a = calls_a.iter().map(|c| c.finished).max();
    let first_b = calls_b.iter().map(|c| c.received).min();
    if let (Some(last_a), Some(first_b)) = (last_a, first_b) {
        println!(
            "{what}: A's last call ended at {} ms, B's first call started at {} ms: {} ms apart",
            ms(last_a),
            ms(first_b),
            ms(first_b).saturating_sub(ms(last_a))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_lease_calls_hand_over_without_overlapping_cams_calls() {
    handover(
        Fault::on(&kinds::LEASES).too_many_requests(1),
        "429 with Retry-After",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_lease_calls_hand_over_without_overlapping_cams_calls() {
    handover(
        Fault::on(&kinds::LEASES).hold(Duration::from_secs(30)),
        "held for 30 s",
    )
    .await;
}

#[tokio::test]
async fn a_lease_namespace_that_does_not_exist_fails_at_once() {
    let (server, _sim) = cluster().await;
    let started = Instant::now();
    let replica = Replica::start(&server, REPLICA_A, leader_config(REPLICA_A, "no-such-ns"));
    let (result, stopped) = tokio::time::timeout(WAIT, replica.task)
        .await
        .expect("serve returns")
        .expect("task");
    let err = result.expect_err("a missing Lease namespace is an error");
    let message = err.to_string();
    assert!(
        matches!(
            &err,
            RunError::Leadership(LeaderError::LeaseUnusable { code: 404, .. })
        ),
        "{err:?}"
    );
    assert!(
        message.contains(r#"namespaces "no-such-ns" not found"#)
            && message.contains("--lease-namespace"),
        "{message}"
    );
    assert!(
        stopped - started < Duration::from_secs(2),
        "took {:?}",
        stopped - started
    );
}

#[tokio::test]
async fn a_lease_permission_missing_fails_at_once() {
    let (server, _sim) = cluster().await;
    // RBAC granting the replica's ServiceAccount everything the controllers need (as the chart
    // does), but nothing on Leases.
    server.enforce_rbac(&format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: without-leases}}
rules:
- {{apiGroups: ["cams.chatapp.io"], resources: ["chatgroups"], verbs: ["list", "watch"]}}
- {{apiGroups: ["cams.chatapp.io"], resources: ["chatgroups/status"], verbs: ["patch"]}}
- {{apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"]}}
- {{apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create"]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: without-leases}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: without-leases}}
subjects:
- {{kind: ServiceAccount, name: {REPLICA_A}, namespace: {LEASE_NAMESPACE}}}
"#
    ));
    let started = Instant::now();
    let replica = Replica::start(
        &server,
        REPLICA_A,
        leader_config(REPLICA_A, LEASE_NAMESPACE),
    );
    let (result, stopped) = tokio::time::timeout(WAIT, replica.task)
        .await
        .expect("serve returns")
        .expect("task");
    let err = result.expect_err("a forbidden Lease is an error");
    assert!(
        matches!(
            &err,
            RunError::Leadership(LeaderError::LeaseUnusable { code: 403, .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("leases"), "{err}");
    assert!(
        stopped - started < Duration::from_secs(2),
        "took {:?}",
        stopped - started
    );
}

#[tokio::test]
async fn inconsistent_timings_are_refused() {
    let (server, _sim) = cluster().await;
    let mut config = leader_config(REPLICA_A, LEASE_NAMESPACE);
    config.renew_deadline = LEASE_DURATION;
    let replica = Replica::start(&server, REPLICA_A, config);
    let (result, _) = tokio::time::timeout(WAIT, replica.task)
        .await
        .expect("serve returns")
        .expect("task");
    assert!(
        matches!(
            result,
            Err(RunError::Leadership(LeaderError::InvalidConfig { .. }))
        ),
        "{result:?}"
    );
    assert_eq!(
        server.count(|r| r.is_for(&kinds::LEASES)),
        0,
        "nothing is attempted"
    );
}
