//! Back-pressure towards the Kubernetes API server: the operator's paced client
//! (`controller::kube_client`) against the strict API test server, on its own and under the
//! whole controller.
//!
//! The test server answers as kube-apiserver does when API Priority and Fairness rejects a
//! request (429, plain-text body, `Retry-After`). What is asserted is what the server's
//! request log shows — which requests arrived, in which order, how many — never how long
//! something took: a slow machine can only make fewer requests arrive in a window.

mod support;
use support::chatgroups;
use support::fixtures::{KEY_ID, KEY_SECRET, NUMBER, chatgroup_in_space, secret};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cams_operator::cams::ACTION_UPDATE_CHAT_GROUP;
use cams_operator::cams::client::{HttpCams, HttpCamsConfig};
use cams_operator::cli::{Cli, Command};
use cams_operator::controller::command;
use cams_operator::controller::kube_client::{self, KubeLimits, MAX_RETRIES};
use cams_operator::controller::{self, Clock, Context, Scope, Settings};
use cams_operator::crd::ChatGroupStatus;
use cams_operator::metrics::Metrics;
use cams_sim::{Group, Simulator};
use clap::Parser as _;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use kube_test_server::kinds::SECRETS;
use kube_test_server::{Fault, RequestKind, TestApiServer, Verb};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Longest wait for any expected state.
const WAIT: Duration = Duration::from_secs(120);
/// The namespace of the test objects.
const NAMESPACE: &str = "fleet";

/// A paced client for `server` (as a cluster administrator), recording into `metrics`.
fn paced(server: &TestApiServer, limits: KubeLimits, metrics: &Metrics) -> kube::Client {
    kube_client::client(server.config(), limits, metrics.clone()).expect("a paced client")
}

/// A server with the test namespaces and one Secret, `fleet/cams-credentials`.
async fn server_with_secret() -> TestApiServer {
    let (server, _admin) = support::api_server().start().await;
    server.put(&SECRETS, secret(NAMESPACE, "cams-credentials", KEY_SECRET));
    server
}

fn secrets(client: &kube::Client) -> Api<Secret> {
    Api::namespaced(client.clone(), NAMESPACE)
}

/// Polls `check` every `every` until it holds; false after `limit`.
async fn eventually(limit: Duration, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
    true
}

/// A 429 with `Retry-After: 2` pauses the whole client: a request issued once the client has
/// seen the 429 (here a read of another kind) does not reach the server before the throttled
/// request is sent again, and nothing arrives in the second after the 429. Both succeed; the
/// caller of the throttled request never sees the 429.
#[tokio::test]
async fn retry_after_pauses_every_request_of_the_client() {
    let server = server_with_secret().await;
    server.inject(
        Fault::on(&SECRETS)
            .verb(Verb::Get)
            .too_many_requests(2)
            .times(1),
    );
    let metrics = Metrics::new();
    let client = paced(&server, KubeLimits::default(), &metrics);
    server.clear_log();

    let throttled = tokio::spawn({
        let api = secrets(&client);
        async move { api.get("cams-credentials").await }
    });
    assert!(
        eventually(WAIT, Duration::from_millis(5), || {
            metrics.kube_throttled.get() == 1
        })
        .await,
        "the client saw the 429"
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let other = tokio::spawn(async move { namespaces.get(NAMESPACE).await });
    // The pause lasts 2 s from when the client read the 429, which is after the server logged
    // it: nothing can arrive within 1 s of the log entry, however slow the machine.
    let early = server
        .wait_for(|s| s.requests().len() > 1, Duration::from_secs(1))
        .await;
    assert!(
        !early,
        "a request reached the server during the pause: {:?}",
        server.requests()
    );
    throttled
        .await
        .expect("task")
        .expect("the throttled read succeeds once retried");
    other
        .await
        .expect("task")
        .expect("the read issued during the pause succeeds");

    let log = server.requests();
    let summary: Vec<(String, u16, bool)> = log
        .iter()
        .map(|r| {
            (
                r.resource
                    .as_ref()
                    .map_or_else(String::new, |k| k.plural.to_string()),
                r.status,
                r.injected_fault,
            )
        })
        .collect();
    assert_eq!(log.len(), 3, "{summary:?}");
    assert_eq!(summary[0], ("secrets".to_owned(), 429, true));
    let rest: Vec<_> = summary[1..]
        .iter()
        .map(|(k, s, _)| (k.as_str(), *s))
        .collect();
    assert!(rest.contains(&("secrets", 200)), "the retry: {summary:?}");
    assert!(
        rest.contains(&("namespaces", 200)),
        "the other read: {summary:?}"
    );
    assert_eq!(metrics.kube_throttled.get(), 1);
}

/// 12 reads at once with a budget of 5 per second and bursts of 2: however many the client
/// has sent when the test looks, the server has seen no more than the bucket allows in the
/// time since they started (2 + 5 per second), and all 12 arrive in the end.
#[tokio::test]
async fn requests_are_paced_by_the_budget() {
    let server = server_with_secret().await;
    let metrics = Metrics::new();
    let limits = KubeLimits { qps: 5.0, burst: 2 };
    let client = paced(&server, limits, &metrics);
    server.clear_log();
    let start = tokio::time::Instant::now();
    let reads: Vec<_> = (0..12)
        .map(|_| {
            let api = secrets(&client);
            tokio::spawn(async move { api.get("cams-credentials").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = server.count(|r| r.is_for(&SECRETS));
    let elapsed = start.elapsed().as_secs_f64();
    let allowed = f64::from(limits.burst) + (limits.qps * elapsed).ceil();
    assert!(
        seen as f64 <= allowed,
        "{seen} reads reached the server within {elapsed:.2} s; the budget allows {allowed}"
    );
    for read in reads {
        read.await.expect("task").expect("the read succeeds");
    }
    assert_eq!(server.count(|r| r.is_for(&SECRETS)), 12);
}

/// A request the server keeps refusing is sent 1 + MAX_RETRIES times, by this client alone
/// (kube's own retry layer is off), and the caller gets the 429.
#[tokio::test]
async fn retries_are_bounded() {
    let server = server_with_secret().await;
    // `Retry-After: 0` keeps the test short; the pause is covered above.
    server.inject(Fault::on(&SECRETS).verb(Verb::Get).too_many_requests(0));
    let metrics = Metrics::new();
    let client = paced(&server, KubeLimits::default(), &metrics);
    server.clear_log();
    let result = secrets(&client).get("cams-credentials").await;
    assert!(result.is_err(), "the last 429 reaches the caller");
    let attempts = server.count(|r| r.is_for(&SECRETS));
    assert_eq!(attempts, 1 + MAX_RETRIES as usize);
    assert_eq!(metrics.kube_throttled.get(), u64::from(1 + MAX_RETRIES));
}

/// A 500 goes to the caller at once, unretried; a 503 with `Retry-After` is retried like a
/// 429.
#[tokio::test]
async fn a_500_is_not_retried_a_503_is() {
    let server = server_with_secret().await;
    let metrics = Metrics::new();
    let client = paced(&server, KubeLimits::default(), &metrics);

    server.inject(Fault::on(&SECRETS).verb(Verb::Get).status(500).times(1));
    server.clear_log();
    let failed = secrets(&client).get("cams-credentials").await;
    assert!(failed.is_err(), "the 500 reaches the caller");
    assert_eq!(server.count(|r| r.is_for(&SECRETS)), 1);
    assert_eq!(metrics.kube_throttled.get(), 0);

    server.inject(
        Fault::on(&SECRETS)
            .verb(Verb::Get)
            .unavailable(Some(0))
            .times(2),
    );
    server.clear_log();
    secrets(&client)
        .get("cams-credentials")
        .await
        .expect("the read succeeds after two 503s");
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
    assert_eq!(metrics.kube_throttled.get(), 2);
}

/// `--kube-qps` and `--kube-burst` default to 20 and 30, and `cams-operator run` refuses
/// values that are not above 0, naming the flag, before it binds or connects to anything.
#[tokio::test]
async fn kube_flags_default_and_are_validated() {
    let parse = |extra: &[&str]| {
        let argv = ["cams-operator", "run"].iter().chain(extra).copied();
        match Cli::try_parse_from(argv).expect("the flags parse").command {
            Command::Run(args) => args,
            other => panic!("not `run`: {other:?}"),
        }
    };
    let defaults = parse(&[]);
    assert_eq!(defaults.kube_qps, 20.0);
    assert_eq!(defaults.kube_burst, 30);
    assert_eq!(
        KubeLimits {
            qps: defaults.kube_qps,
            burst: defaults.kube_burst
        },
        KubeLimits::default()
    );
    for (flags, named) in [
        (&["--kube-qps", "0"][..], "--kube-qps"),
        (&["--kube-qps", "NaN"][..], "--kube-qps"),
        (&["--kube-burst", "0"][..], "--kube-burst"),
    ] {
        let err = command::run(parse(flags))
            .await
            .expect_err("refused before starting");
        assert!(
            matches!(err, command::Error::InvalidFlag(_)) && err.to_string().contains(named),
            "{flags:?}: {err}"
        );
    }
}

/// Spaces and groups per space of the fleet: 5 × 100 = 500 ChatGroups.
const SPACES: usize = 5;
const PER_SPACE: usize = 100;
/// Share of ChatGroup status patches the API server answers 429 (`Retry-After: 1`).
const REFUSED: f64 = 0.3;
/// Status patches a ChatGroup needs on its way to converged: the status after the write
/// (`Ready=True`, `Synced=True/UpdateSucceeded`, the RequestId), then the status after the read
/// that confirms it (`Synced=True/UpToDate`, the group as read). Any other reconcile finds
/// nothing new but timestamps, and writes nothing.
const STATUSES_PER_OBJECT: usize = 3;
/// Bound on status-patch requests per successful patch; see the test.
const ATTEMPTS_PER_PATCH_BOUND: f64 = 1.6;

/// 500 ChatGroups in 5 CAMS spaces, run by the controller on a paced client while the API
/// server refuses 30% of ChatGroup status patches with 429 and `Retry-After: 1`.
///
/// - **No CAMS write is repeated**: the client sends a refused patch again itself, so the
///   reconcile that made the write never fails for it; the simulator logs exactly one
///   `UpdateChatGroup` per group.
/// - **Every object converges**: `Ready=True` with the RequestId of its write, and the write
///   confirmed by a read.
/// - **Status patches stay bounded.** Each object needs one successful patch per distinct
///   status it reaches, [`STATUSES_PER_OBJECT`] = 3 (the `Reconciling` mark, the result of
///   the write, the confirming read), so S ≤ 1,500 successful patches; the server's log must
///   show that many per object, or one fewer: when the result's patch waited past the
///   operator's call timeout behind the pauses, the retried reconcile writes the result and
///   the confirming read together. Each attempt is refused independently with p = 0.3
///   and each refusal costs exactly one more attempt, so the attempts per success are
///   geometric with mean 1 / (1 - p) ≈ 1.43 and variance p / (1 - p)² ≈ 0.61: about
///   2,143 ± 30 attempts in all. The bound asserted is 1.6 × S = 2,400, about 8 standard
///   deviations above the mean, so it does not flake, while a client
///   that also made the reconcile fail and patch again (or kube's own retries stacked under
///   ours) would exceed it.
///
/// Each refusal pauses the whole client for a second, so the run is paced by those pauses,
/// not by the budget: the client gets a budget of 200 per second (bursts of 300) and the
/// controller 256 reconciles in flight, so that most of the fleet's requests go out between
/// two pauses, and the run takes well under a minute on 2 cores. The operator's clock runs 20×
/// faster, so the confirming read (10 s after the write) follows within half a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_converges_under_api_server_throttling_without_repeating_writes() {
    let mut sim = Simulator::builder().access_key(KEY_ID, KEY_SECRET).seed(11);
    let mut groups = Vec::new();
    for s in 0..SPACES {
        let space = format!("cams-space-{s}");
        for g in 0..PER_SPACE {
            let id = format!("G{s:02}{g:04}");
            sim = sim.group(Group::new(&space, NUMBER, &id).subject("Old subject"));
            groups.push((space.clone(), id));
        }
    }
    let sim = sim.start().await.expect("the simulator starts");

    let server = server_with_secret().await;
    server.seed(
        &chatgroups(),
        groups.iter().map(|(space, id)| {
            let mut manifest =
                chatgroup_in_space(NAMESPACE, &id.to_lowercase(), space, id, &sim.url());
            manifest["spec"]["resyncInterval"] = json!("1h");
            manifest
        }),
    );
    server.inject(
        Fault::on(&chatgroups())
            .subresource("status")
            .verb(Verb::Patch)
            .rate(REFUSED)
            .too_many_requests(1),
    );
    server.clear_log();

    let metrics = Metrics::new();
    let limits = KubeLimits {
        qps: 200.0,
        burst: 300,
    };
    let client = paced(&server, limits, &metrics);
    let cams = HttpCams::new(HttpCamsConfig::default()).expect("the CAMS HTTP client");
    let settings = Settings {
        cams_qps: 1000.0,
        concurrency: 64,
        clock: Clock::scaled(20.0),
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(client, cams, metrics.clone(), settings));
    let scope = Scope {
        namespaces: vec![NAMESPACE.to_owned()],
        selector: None,
    };
    let (stop, stop_rx) = watch::channel(false);
    let started = tokio::time::Instant::now();
    let operator = tokio::spawn(controller::run(ctx, scope, stop_rx));

    let mut states = BTreeMap::new();
    let converged = eventually(WAIT, Duration::from_millis(250), || {
        states = fleet_states(&server);
        states.get("converged") == Some(&groups.len())
    })
    .await;
    assert!(converged, "every ChatGroup converged; states: {states:?}");
    let took = started.elapsed();
    // A quiet second: nothing more is written once converged.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop.send(true);
    tokio::time::timeout(WAIT, operator)
        .await
        .expect("the operator stops")
        .expect("the controller task");

    // No CAMS write repeated.
    let mut writes: BTreeMap<String, usize> = BTreeMap::new();
    for call in sim.requests_for(ACTION_UPDATE_CHAT_GROUP) {
        *writes.entry(call.group_id.unwrap_or_default()).or_insert(0) += 1;
    }
    assert_eq!(writes.len(), groups.len(), "every group was written");
    let repeated: Vec<_> = writes.iter().filter(|(_, n)| **n != 1).collect();
    assert!(repeated.is_empty(), "writes repeated: {repeated:?}");

    // Status patches.
    let log = server.requests();
    let patches: Vec<_> = log.iter().filter(|r| r.is_status_patch()).collect();
    let refused = patches.iter().filter(|r| r.status == 429).count();
    let mut succeeded: BTreeMap<&str, usize> = BTreeMap::new();
    for patch in patches.iter().filter(|r| r.status == 200) {
        *succeeded
            .entry(patch.name.as_deref().unwrap_or_default())
            .or_insert(0) += 1;
    }
    let successes: usize = succeeded.values().sum();
    let other = patches.len() - refused - successes;
    let count_of = |kind: &RequestKind, plural: &str| {
        log.iter()
            .filter(|r| &r.kind == kind && r.resource.as_ref().is_some_and(|k| k.plural == plural))
            .count()
    };
    println!(
        "back-pressure: {} ChatGroups converged in {:.1} s with {} status-patch requests \
         ({successes} succeeded, {refused} refused with 429, {other} other; {:.3} attempts per \
         success); {} requests in all: {} Secret reads, {} Event creates, {} lists, {} watches; \
         {} UpdateChatGroup calls; the client counted {} throttled answers",
        groups.len(),
        took.as_secs_f64(),
        patches.len(),
        patches.len() as f64 / successes.max(1) as f64,
        log.len(),
        count_of(&RequestKind::Get, "secrets"),
        count_of(&RequestKind::Create, "events"),
        log.iter().filter(|r| r.kind == RequestKind::List).count(),
        log.iter().filter(|r| r.kind == RequestKind::Watch).count(),
        sim.call_count(ACTION_UPDATE_CHAT_GROUP),
        metrics.kube_throttled.get(),
    );
    assert!(refused > 0, "the server did refuse patches");
    assert_eq!(other, 0, "every patch either succeeded or was refused");
    let off: Vec<_> = succeeded
        .iter()
        .filter(|(_, n)| !(STATUSES_PER_OBJECT - 1..=STATUSES_PER_OBJECT).contains(*n))
        .collect();
    let history = |name: &str| -> Vec<String> {
        patches
            .iter()
            .filter(|r| r.name.as_deref() == Some(name))
            .map(|r| {
                let status = r.body.as_ref().map(|b| &b["status"]);
                let conditions = status
                    .and_then(|s| s["conditions"].as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .map(|c| format!("{}={}/{}", c["type"], c["status"], c["reason"]))
                    .collect::<Vec<_>>()
                    .join(",");
                format!(
                    "{} [{conditions}] lastRequest={} observed={}",
                    r.status,
                    status.map_or(Value::Null, |s| s["lastRequest"]["time"].clone()),
                    status.map_or(Value::Null, |s| s["observed"]["time"].clone()),
                )
            })
            .collect()
    };
    assert!(
        off.is_empty() && succeeded.len() == groups.len(),
        "each object is patched once per status it reaches ({STATUSES_PER_OBJECT}, or one \
         fewer when a pending result and the confirming read go out together): {off:?}; \
         their patches: {:#?}",
        off.iter()
            .map(|(name, _)| history(name))
            .collect::<Vec<_>>()
    );
    let bound = ATTEMPTS_PER_PATCH_BOUND * successes as f64;
    assert!(
        patches.len() as f64 <= bound,
        "{} status-patch requests for {successes} successful patches; bound {bound}",
        patches.len()
    );
    // Only status patches were refused, and the client counted each refusal it received.
    assert_eq!(metrics.kube_throttled.get(), refused as u64);
    // No refusal reached a reconcile: no Kubernetes error category was counted.
    let text = metrics.encode();
    assert!(
        !text.contains("category=\"kube_"),
        "a Kubernetes error reached a reconcile:\n{text}"
    );
}

/// How many ChatGroups of the fleet are converged (`Ready=True`, a RequestId, the write
/// confirmed by a read), read from the store (not through the API, so not logged).
fn fleet_states(server: &TestApiServer) -> BTreeMap<String, usize> {
    let mut states = BTreeMap::new();
    for object in server.list(&chatgroups(), Some(NAMESPACE)) {
        let status = object
            .get("status")
            .and_then(|s| serde_json::from_value::<ChatGroupStatus>(s.clone()).ok());
        let state = match &status {
            None => "no status".to_owned(),
            Some(status) => {
                let ready = status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .is_some_and(|c| c.status == cams_operator::crd::ConditionStatus::True);
                let request_id = status
                    .last_request
                    .as_ref()
                    .and_then(|l| l.request_id.as_deref())
                    .is_some();
                let confirmed = status.observed.as_ref().and_then(|o| o.subject.as_deref())
                    == Some("Support team");
                if ready && request_id && confirmed {
                    "converged".to_owned()
                } else {
                    format!("ready={ready} request_id={request_id} confirmed={confirmed}")
                }
            }
        };
        *states.entry(state).or_insert(0) += 1;
    }
    states
}
