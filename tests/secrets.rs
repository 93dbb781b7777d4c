//! Secrets in a shared cluster: the operator watches Secrets as metadata only, reads a
//! Secret's data only when a ChatGroup references it and its version changed, and holds the
//! data of referenced Secrets only. Against the strict test server with the chart's RBAC
//! enforced, among 2,000 unrelated Secrets of 8 KiB (Helm release payloads, as real clusters
//! hold), and the simulator.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cams_operator::cams::client::{HttpCams, HttpCamsConfig};
use cams_operator::cams::{ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP};
use cams_operator::controller::{self, Clock, Context, Scope, Settings};
use cams_operator::crd::{ChatGroup, ChatGroupStatus};
use cams_operator::metrics::Metrics;
use cams_operator::reconcile::plan::applied_hash;
use cams_operator::reconcile::validate::validate;
use cams_sim::{Group, RunningSim, Simulator};
use kube_test_server::{RequestKind, TestApiServer, kinds};
use serde_json::json;
use support::fixtures::{KEY_ID, KEY_SECRET, NUMBER, chatgroup_in_space, secret};
use support::{RbacMode, chatgroups};
use tokio::sync::watch;

/// Namespaces of the ChatGroups, each with its own `cams-credentials` Secret.
const TEAMS: usize = 10;
/// ChatGroups per namespace.
const PER_TEAM: usize = 100;
/// Unrelated Secrets, and their size.
const UNRELATED: usize = 2_000;
const UNRELATED_BYTES: usize = 8 * 1024;
/// Longest wait for the operator's first reads.
const WAIT: Duration = Duration::from_secs(120);

fn team(t: usize) -> String {
    format!("team-{t}")
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

/// ChatGroups Ready with their write confirmed by a read.
fn converged(server: &TestApiServer) -> usize {
    server
        .list(&chatgroups(), None)
        .iter()
        .filter_map(|o| serde_json::from_value::<ChatGroupStatus>(o["status"].clone()).ok())
        .filter(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready" && c.status == cams_operator::crd::ConditionStatus::True
            }) && s.observed.as_ref().and_then(|o| o.subject.as_deref()) == Some("Support team")
        })
        .count()
}

fn secret_gets(server: &TestApiServer) -> usize {
    server.count(|r| r.is_for(&kinds::SECRETS) && r.kind == RequestKind::Get)
}

struct Fleet {
    server: TestApiServer,
    sim: RunningSim,
}

/// The status of a ChatGroup the operator brought in line before (Ready, its applied hash,
/// the group read back), as it stands after a restart of the operator.
fn converged_status(manifest: &serde_json::Value) -> serde_json::Value {
    let chatgroup: ChatGroup = serde_json::from_value(manifest.clone()).expect("a ChatGroup");
    let valid = validate(&chatgroup.spec).expect("a valid spec");
    let at = "2026-11-30T00:00:00Z";
    json!({
        "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Synced", "message": "the group matches the spec",
             "observedGeneration": 1, "lastTransitionTime": at},
            {"type": "Synced", "status": "True", "reason": "UpToDate", "message": "the group matches the spec",
             "observedGeneration": 1, "lastTransitionTime": at},
        ],
        "appliedHash": applied_hash(&valid),
        "lastSyncTime": at,
        "observed": {"subject": "Support team", "description": "Questions about orders",
                     "groupStatus": "ACTIVE", "time": at},
    })
}

/// The test server (chart RBAC, all namespaces) holding the unrelated Secrets, and
/// [`TEAMS`] × [`PER_TEAM`] ChatGroups with their Secrets, already in line with their groups
/// in the simulator (as after a restart of the operator).
async fn fleet() -> Fleet {
    let mut builder = Simulator::builder().access_key(KEY_ID, KEY_SECRET).seed(3);
    for t in 0..TEAMS {
        for g in 0..PER_TEAM {
            builder = builder.group(
                Group::new(format!("space-{t}"), NUMBER, format!("G{t:02}{g:03}"))
                    .subject("Support team")
                    .description("Questions about orders"),
            );
        }
    }
    let sim = builder.start().await.expect("simulator starts");
    let (server, _admin) = support::start_api_server().await;
    server.enforce_rbac(&support::chart_manifests(RbacMode::ClusterWide));
    server.seed_unrelated_secrets(UNRELATED, UNRELATED_BYTES, 40);
    server.seed(
        &kinds::SECRETS,
        (0..TEAMS).map(|t| secret(&team(t), "cams-credentials", KEY_SECRET)),
    );
    server.seed(
        &chatgroups(),
        (0..TEAMS).flat_map(|t| {
            let url = sim.url();
            (0..PER_TEAM).map(move |g| {
                let id = format!("G{t:02}{g:03}");
                let mut manifest = chatgroup_in_space(
                    &team(t),
                    &id.to_lowercase(),
                    &format!("space-{t}"),
                    &id,
                    &url,
                );
                manifest["spec"]["resyncInterval"] = json!("12h");
                manifest["metadata"]["generation"] = json!(1);
                manifest["status"] = converged_status(&manifest);
                manifest
            })
        }),
    );
    Fleet { server, sim }
}

/// The operator starts on 1,000 ChatGroups in line with their groups, among 2,000 unrelated
/// Secrets; then every watch breaks and the history is compacted, so the operator relists
/// everything. Neither the start nor the relist makes a CAMS write; only the 10 referenced
/// Secrets are ever read, once each; and the relist reads none: the bound the test holds the
/// operator to is one Secret read per referenced Secret whose version changed, zero here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_reads_no_secret_and_writes_nothing() {
    let Fleet { server, sim } = fleet().await;
    let metrics = Metrics::new();
    let cams = HttpCams::new(HttpCamsConfig::default()).expect("HTTP client");
    let settings = Settings {
        cams_qps: 1000.0,
        concurrency: 16,
        clock: Clock::scaled(50.0),
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(
        server.client_as(&support::operator_user()),
        cams,
        metrics.clone(),
        settings,
    ));
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(controller::run(ctx, Scope::default(), stop_rx));
    let total = TEAMS * PER_TEAM;
    // Each space is read once after the start (the operator does not remember the last read
    // across a restart), and every group is found in line.
    let read = eventually(WAIT, || {
        sim.call_count(ACTION_LIST_CHAT_GROUP) >= TEAMS as u64
    })
    .await;
    assert!(read, "every space was read after the start");
    // The start is over when the reads stop: objects picked up later than the listing window
    // of the first ones make their space's first read again.
    let mut last = sim.call_count(ACTION_LIST_CHAT_GROUP);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = sim.call_count(ACTION_LIST_CHAT_GROUP);
        if now == last {
            break;
        }
        last = now;
    }
    assert_eq!(converged(&server), total);
    assert_eq!(
        sim.call_count(ACTION_UPDATE_CHAT_GROUP),
        0,
        "nothing to write"
    );

    // Secrets were watched as metadata only, and only the referenced ones were read, each at
    // most once per version (one version each here).
    let secret_watches: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| {
            r.is_for(&kinds::SECRETS) && matches!(r.kind, RequestKind::List | RequestKind::Watch)
        })
        .collect();
    assert!(!secret_watches.is_empty());
    assert!(
        secret_watches.iter().all(|r| r.metadata_only),
        "every list and watch of Secrets asks for metadata only"
    );
    let read: BTreeSet<(String, String)> = server
        .requests()
        .into_iter()
        .filter(|r| r.is_for(&kinds::SECRETS) && r.kind == RequestKind::Get)
        .map(|r| (r.namespace.unwrap_or_default(), r.name.unwrap_or_default()))
        .collect();
    let referenced: BTreeSet<(String, String)> = (0..TEAMS)
        .map(|t| (team(t), "cams-credentials".to_owned()))
        .collect();
    assert_eq!(read, referenced, "only referenced Secrets are read");
    assert_eq!(
        metrics.secret_reads.get(),
        TEAMS as u64,
        "each referenced Secret read once"
    );

    // Every watch breaks and the history is compacted: the watchers get 410 and relist.
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.clear_log();
    let writes = sim.call_count(ACTION_UPDATE_CHAT_GROUP);
    let listings = sim.call_count(ACTION_LIST_CHAT_GROUP);
    let lists = |server: &TestApiServer| server.count(|r| r.kind == RequestKind::List);
    server.compact();
    server.close_watches();
    assert!(
        eventually(Duration::from_secs(60), || lists(&server) >= 2).await,
        "the ChatGroups and the Secrets are listed again"
    );
    // The relisted objects trigger reconciles; let them run.
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "relist of {total} ChatGroups and {} Secrets: {} lists, {} Secret reads, {} CAMS writes, {} CAMS listings",
        UNRELATED + TEAMS,
        lists(&server),
        secret_gets(&server),
        sim.call_count(ACTION_UPDATE_CHAT_GROUP) - writes,
        sim.call_count(ACTION_LIST_CHAT_GROUP) - listings,
    );
    assert_eq!(
        sim.call_count(ACTION_UPDATE_CHAT_GROUP),
        writes,
        "the relist makes no CAMS write"
    );
    assert_eq!(
        secret_gets(&server),
        0,
        "no referenced Secret changed, so none is read again"
    );
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(60), task).await;
}
