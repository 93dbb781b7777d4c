//! The controller against the Kubernetes API test server (`tests/support/kube_server`) and the
//! CAMS simulator, both over real HTTP on loopback.
//!
//! `reconcile` drives one reconcile at a time (`controller::reconcile_object`) and checks the
//! exact Kubernetes requests it made against named expectations, controller-rs style: a
//! missing call and an extra call both fail, and every reconcile runs under a timeout.
//! `scenarios` runs the real kube-rs `Controller` end to end.

mod support;
use support::chatgroups;

use std::sync::Arc;
use std::time::Duration;

use cams_operator::cams::client::{HttpCams, HttpCamsConfig};
use cams_operator::cams::{ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP};
use cams_operator::controller::cached::CachedChatGroup;
use cams_operator::controller::{Clock, Context, Settings, reconcile_object};
use cams_operator::crd::{ChatGroupStatus, ConditionStatus, FIELD_MANAGER};
use cams_operator::metrics::Metrics;
use cams_operator::reconcile::engine::Requeue;
use cams_sim::{Group, RunningSim, Simulator};
use futures::StreamExt as _;
use kube::api::{Api, WatchEvent, WatchParams};
use kube::core::DynamicObject;
use kube_test_server::{PatchType, RequestKind, RequestRecord, TestApiServer, kinds};
use serde_json::json;
use support::fixtures::{KEY_ID, KEY_SECRET, NUMBER, SPACE, WRONG_SECRET};

const NS: &str = "support";
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(30);

/// A test server, a simulator with `groups` (subject "Old subject"), and a Kubernetes client.
struct Env {
    api: TestApiServer,
    client: kube::Client,
    sim: RunningSim,
}

async fn env(groups: &[&str]) -> Env {
    let mut builder = Simulator::builder().access_key(KEY_ID, KEY_SECRET);
    for id in groups {
        builder = builder.group(Group::new(SPACE, NUMBER, *id).subject("Old subject"));
    }
    let sim = builder.start().await.expect("simulator starts");
    let (api, client) = support::start_api_server().await;
    Env { api, client, sim }
}

fn context(env: &Env, clock: Clock) -> Context<HttpCams> {
    let cams = HttpCams::new(HttpCamsConfig::default()).expect("HTTP client");
    let settings = Settings {
        cams_qps: 1000.0,
        concurrency: 8,
        clock,
        ..Settings::default()
    };
    Context::new(env.client.clone(), cams, Metrics::new(), settings)
}

/// One reconcile of the stored object, as the controller would run it.
async fn reconcile(env: &Env, ctx: &Context<HttpCams>, name: &str) -> Requeue {
    let stored = env
        .api
        .get(&chatgroups(), NS, name)
        .expect("object is stored");
    let object = CachedChatGroup::from_value(stored).expect("a cached object");
    tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_object(Arc::new(object), ctx))
        .await
        .expect("reconcile finished in time")
        .expect("reconcile succeeded")
}

fn status_of(env: &Env, name: &str) -> ChatGroupStatus {
    let stored = env
        .api
        .get(&chatgroups(), NS, name)
        .expect("object is stored");
    serde_json::from_value(stored["status"].clone()).expect("a status")
}

/// The stored status of `name`, asserted `Ready=True`.
fn ready_status(env: &Env, name: &str) -> ChatGroupStatus {
    let status = status_of(env, name);
    assert_eq!(
        condition(&status, "Ready").map(|c| c.status.as_str()),
        Some("True"),
        "{name}: {status:#?}"
    );
    status
}

fn condition<'a>(
    status: &'a ChatGroupStatus,
    type_: &str,
) -> Option<&'a cams_operator::crd::Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// A named expectation about one Kubernetes request.
struct Expect {
    name: String,
    matches: Box<dyn Fn(&RequestRecord) -> bool>,
}

fn get_secret(name: &'static str) -> Expect {
    Expect {
        name: format!("GET Secret {name}"),
        matches: Box::new(move |r| {
            r.is_for(&kinds::SECRETS)
                && r.kind == RequestKind::Get
                && r.name.as_deref() == Some(name)
        }),
    }
}

fn apply_status() -> Expect {
    Expect {
        name: "server-side apply of /status by cams-operator".into(),
        matches: Box::new(|r| {
            r.is_for(&chatgroups())
                && r.is_status_patch()
                && matches!(
                    &r.kind,
                    RequestKind::Patch {
                        patch_type: PatchType::Apply,
                        ..
                    }
                )
                && r.field_manager.as_deref() == Some(FIELD_MANAGER)
        }),
    }
}

/// The status patch that marks a generation as being worked on (`Reconciling=True`), sent
/// before the first CAMS call of a new generation.
fn apply_reconciling_mark() -> Expect {
    Expect {
        name: "server-side apply of /status with Reconciling=True".into(),
        matches: Box::new(|r| {
            (apply_status().matches)(r)
                && r.body.as_ref().is_some_and(|b| {
                    b["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Reconciling" && c["status"] == "True")
                    })
                })
        }),
    }
}

fn create_event(reason: &'static str) -> Expect {
    Expect {
        name: format!("create Event {reason}"),
        matches: Box::new(move |r| {
            r.is_for(&kinds::EVENTS)
                && r.kind == RequestKind::Create
                && r.body.as_ref().and_then(|b| b["reason"].as_str()) == Some(reason)
        }),
    }
}

/// The requests logged since the last call equal `expected`, in order: a missing and an
/// extra request both fail, naming what differed.
fn assert_requests(env: &Env, expected: &[Expect]) {
    let log = env.api.requests();
    env.api.clear_log();
    let describe = |r: &RequestRecord| format!("{} {}?{:?}", r.method, r.path, r.query);
    for (i, want) in expected.iter().enumerate() {
        match log.get(i) {
            Some(got) if (want.matches)(got) => {}
            Some(got) => panic!(
                "request {i}: expected `{}`, got `{}`; all requests: {:#?}",
                want.name,
                describe(got),
                log.iter().map(describe).collect::<Vec<_>>()
            ),
            None => panic!(
                "missing request {i}: `{}`; all requests: {:#?}",
                want.name,
                log.iter().map(describe).collect::<Vec<_>>()
            ),
        }
    }
    if log.len() > expected.len() {
        panic!(
            "unexpected extra requests: {:#?}",
            log[expected.len()..]
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
        );
    }
}

fn cams_calls(env: &Env) -> (u64, u64) {
    (
        env.sim.call_count(ACTION_LIST_CHAT_GROUP),
        env.sim.call_count(ACTION_UPDATE_CHAT_GROUP),
    )
}

mod reconcile {
    use super::*;
    use support::fixtures::{chatgroup, secret};

    #[tokio::test]
    async fn first_reconcile_writes_once_and_records_the_request_id() {
        let env = env(&["EA303A"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, "team-a", "EA303A", &env.sim.url()),
            )
            .expect("chatgroup");
        env.api.clear_log();
        let ctx = context(&env, Clock::real());

        let requeue = reconcile(&env, &ctx, "team-a").await;

        assert_requests(
            &env,
            &[
                get_secret("cams-credentials"),
                apply_reconciling_mark(),
                apply_status(),
                create_event("UpdateSucceeded"),
            ],
        );
        assert_eq!(cams_calls(&env), (1, 1), "one listing and one write");
        let status = status_of(&env, "team-a");
        assert_eq!(status.observed_generation, Some(1));
        let ready = condition(&status, "Ready").expect("Ready");
        assert_eq!(ready.status, ConditionStatus::True, "{ready:?}");
        let written = env.sim.requests_for(ACTION_UPDATE_CHAT_GROUP);
        assert_eq!(
            status
                .last_request
                .as_ref()
                .and_then(|l| l.request_id.clone()),
            Some(written[0].request_id.clone()),
            "status carries the simulator's RequestId"
        );
        let group = env.sim.group(SPACE, NUMBER, "EA303A").expect("group");
        assert_eq!(group.subject.as_deref(), Some("Support team"));
        assert!(matches!(requeue, Requeue::After(_)), "{requeue:?}");
    }

    #[tokio::test]
    async fn an_unchanged_object_makes_no_cams_call_and_no_status_patch() {
        let env = env(&["EA303B"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        // Resynced every 12 hours: the space's next read slot falls anywhere in the 12 hours
        // (7 real minutes on the clock below), so the checks below, which take milliseconds,
        // cannot meet it in practice, however slow the machine.
        let mut object = chatgroup(NS, "team-b", "EA303B", &env.sim.url());
        object["spec"]["resyncInterval"] = json!("12h");
        env.api
            .create(&chatgroups(), NS, object)
            .expect("chatgroup");
        // A clock 100x faster than real time: the confirmation read after the write is due
        // after 0.1 s rather than 10 s.
        let ctx = context(&env, Clock::scaled(100.0));
        reconcile(&env, &ctx, "team-b").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        reconcile(&env, &ctx, "team-b").await; // confirms the write with one listing
        assert_eq!(cams_calls(&env), (2, 1));
        env.api.clear_log();

        for _ in 0..3 {
            reconcile(&env, &ctx, "team-b").await;
            assert_requests(&env, &[get_secret("cams-credentials")]);
        }
        assert_eq!(
            cams_calls(&env),
            (2, 1),
            "no CAMS call for an unchanged object"
        );
    }

    /// The CAMS write succeeded but writing its result to the status failed (the API server
    /// answered 500): the reconcile is retried, and the retry writes the RequestId of that
    /// write without calling CAMS again and without a second Event.
    #[tokio::test]
    async fn a_failed_status_patch_after_a_write_loses_nothing_and_repeats_nothing() {
        let env = env(&["EA303Y"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, "team-y", "EA303Y", &env.sim.url()),
            )
            .expect("chatgroup");
        env.api.inject(
            kube_test_server::Fault::on(&chatgroups())
                .subresource("status")
                .matching(|r| {
                    r.body
                        .as_ref()
                        .is_some_and(|b| b["status"].get("lastRequest").is_some())
                })
                .status(500)
                .times(1),
        );
        let ctx = context(&env, Clock::real());
        let stored = env.api.get(&chatgroups(), NS, "team-y").expect("stored");
        let object = CachedChatGroup::from_value(stored).expect("object");
        let failed = reconcile_object(Arc::new(object), &ctx).await;
        assert!(failed.is_err(), "the status patch failed: {failed:?}");
        assert_eq!(cams_calls(&env).1, 1, "the write was made");
        env.api.clear_log();

        let requeue = reconcile(&env, &ctx, "team-y").await;
        assert_requests(&env, &[get_secret("cams-credentials"), apply_status()]);
        assert!(matches!(requeue, Requeue::After(_)), "{requeue:?}");
        assert_eq!(cams_calls(&env).1, 1, "no second write");
        let status = status_of(&env, "team-y");
        let written = env.sim.requests_for(ACTION_UPDATE_CHAT_GROUP);
        assert_eq!(
            status.last_request.and_then(|l| l.request_id),
            Some(written[0].request_id.clone()),
            "the status carries the RequestId of the one write"
        );
    }

    /// kstatus readers (`kubectl wait`, Flux, kpt) see work in progress as soon as the
    /// operator starts on an object: a new object has no status (kstatus says Current) until
    /// then; from the first status patch on it is InProgress (`Reconciling=True`) while the
    /// CAMS call is under way, and Current once Ready. The mark costs one status patch.
    #[tokio::test]
    async fn kstatus_sees_work_in_progress_from_the_first_look() {
        let sim = Simulator::builder()
            .access_key(KEY_ID, KEY_SECRET)
            .group(Group::new(SPACE, NUMBER, "EA303X").subject("Old subject"))
            .faults(
                ACTION_UPDATE_CHAT_GROUP,
                cams_sim::ActionFaults::none().latency_ms(1500),
            )
            .start()
            .await
            .expect("simulator starts");
        let (api, client) = support::start_api_server().await;
        let env = Env { api, client, sim };
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, "team-x", "EA303X", &env.sim.url()),
            )
            .expect("chatgroup");
        let stored = || env.api.get(&chatgroups(), NS, "team-x").expect("stored");
        assert_eq!(
            support::kstatus(&stored()),
            "Current",
            "before the operator looks"
        );

        let ctx = Arc::new(context(&env, Clock::real()));
        let object = CachedChatGroup::from_value(stored()).expect("object");
        let running = tokio::spawn({
            let ctx = ctx.clone();
            async move { reconcile_object(Arc::new(object), &ctx).await }
        });
        let in_progress = env
            .api
            .wait_for(
                |s| {
                    s.get(&chatgroups(), NS, "team-x")
                        .is_some_and(|o| support::kstatus(&o) == "InProgress")
                },
                RECONCILE_TIMEOUT,
            )
            .await;
        assert!(in_progress, "InProgress while the write is under way");
        running
            .await
            .expect("the reconcile task")
            .expect("reconcile succeeded");
        let done = stored();
        assert_eq!(support::kstatus(&done), "Current", "{done:#}");
        let status: ChatGroupStatus =
            serde_json::from_value(done["status"].clone()).expect("status");
        assert!(condition(&status, "Reconciling").is_none(), "{status:#?}");
        assert_eq!(
            ctx.metrics().status_patches.get(),
            2,
            "the mark and the result"
        );
    }

    /// Object names may be 253 characters long; the Events about them must still be valid
    /// (the API server refuses Event names over 253 characters).
    #[tokio::test]
    async fn events_about_objects_with_the_longest_names_are_created() {
        let env = env(&["EA303V"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        let name = "v".repeat(253);
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, &name, "EA303V", &env.sim.url()),
            )
            .expect("chatgroup");
        env.api.clear_log();
        let ctx = context(&env, Clock::real());
        reconcile(&env, &ctx, &name).await;
        let events: Vec<RequestRecord> = env
            .api
            .requests()
            .into_iter()
            .filter(|r| r.is_for(&kinds::EVENTS))
            .collect();
        assert_eq!(events.len(), 1, "one Event for the write");
        assert_eq!(
            events[0].status, 201,
            "the Event was created: {:?}",
            events[0].body
        );
        assert_eq!(ctx.metrics().events_failed.get(), 0);
    }

    /// An Event the API server does not take is counted and logged; the reconcile goes on
    /// (the status carries the same facts).
    #[tokio::test]
    async fn a_failed_event_is_counted_and_the_reconcile_goes_on() {
        let env = env(&["EA303W"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, "team-w", "EA303W", &env.sim.url()),
            )
            .expect("chatgroup");
        env.api
            .inject(kube_test_server::Fault::on(&kinds::EVENTS).status(500));
        let ctx = context(&env, Clock::real());
        let requeue = reconcile(&env, &ctx, "team-w").await;
        assert!(matches!(requeue, Requeue::After(_)), "{requeue:?}");
        assert_eq!(ctx.metrics().events_failed.get(), 1);
        ready_status(&env, "team-w");
    }

    /// A policy tool adds a condition of its own to the status (server-side apply under its
    /// own field manager). The operator's reconciles neither patch the status because of it
    /// (nothing of its own changed) nor remove it when they do patch: the API server merges
    /// `status.conditions` per item (`x-kubernetes-list-type: map`).
    #[tokio::test]
    async fn conditions_of_another_manager_cause_no_patch_and_survive_ours() {
        let env = env(&["EA303U"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        // Resynced every minute of a clock 1000 times faster than real time: every
        // reconcile below reads the group again and recomputes the conditions.
        let mut object = chatgroup(NS, "team-u", "EA303U", &env.sim.url());
        object["spec"]["resyncInterval"] = json!("1m");
        env.api
            .create(&chatgroups(), NS, object.clone())
            .expect("chatgroup");
        let ctx = context(&env, Clock::scaled(1000.0));
        reconcile(&env, &ctx, "team-u").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        reconcile(&env, &ctx, "team-u").await; // the confirming read

        let groups: kube::Api<DynamicObject> = kube::Api::namespaced_with(
            env.client.clone(),
            NS,
            &cams_operator::controller::chatgroup_resource(),
        );
        let policy = json!({
            "apiVersion": "cams.chatapp.io/v1alpha1",
            "kind": "ChatGroup",
            "status": {"conditions": [{
                "type": "PolicyChecked",
                "status": "True",
                "reason": "Compliant",
                "message": "checked by the policy tool",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }]},
        });
        groups
            .patch_status(
                "team-u",
                &kube::api::PatchParams::apply("policy-tool"),
                &kube::api::Patch::Apply(&policy),
            )
            .await
            .expect("the policy tool applies its condition");
        env.api.clear_log();

        let listings = cams_calls(&env).0;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            reconcile(&env, &ctx, "team-u").await;
            assert_requests(&env, &[get_secret("cams-credentials")]);
        }
        assert_eq!(
            cams_calls(&env).0,
            listings + 3,
            "each reconcile read the group"
        );

        // A change of the operator's own fields is written, and the other condition stays.
        let mut changed = object;
        changed["spec"]["subject"] = json!("Renamed");
        groups
            .patch(
                "team-u",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&json!({"spec": changed["spec"]})),
            )
            .await
            .expect("spec change");
        reconcile(&env, &ctx, "team-u").await;
        let status = ready_status(&env, "team-u");
        assert_eq!(
            condition(&status, "PolicyChecked").map(|c| c.reason.as_str()),
            Some("Compliant"),
            "the policy tool's condition survives the operator's patch: {status:#?}"
        );
    }

    #[tokio::test]
    async fn a_stale_cached_copy_does_not_repeat_the_write() {
        let env = env(&["EA303S"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, "team-s", "EA303S", &env.sim.url()),
            )
            .expect("chatgroup");
        let ctx = context(&env, Clock::real());
        let cached =
            CachedChatGroup::from_value(env.api.get(&chatgroups(), NS, "team-s").expect("stored"))
                .expect("a cached object");
        reconcile_object(Arc::new(cached.clone()), &ctx)
            .await
            .expect("reconcile succeeded");
        assert_eq!(cams_calls(&env), (1, 1));
        env.api.clear_log();

        // Triggered again before the watch delivered the status patch: the cache still holds
        // the version without a status. The status just written is used, not the stale one.
        reconcile_object(Arc::new(cached), &ctx)
            .await
            .expect("reconcile succeeded");
        assert_eq!(cams_calls(&env), (1, 1), "no second write");
        assert_requests(&env, &[get_secret("cams-credentials")]);
    }

    /// The watch can lag behind several of the operator's own writes. Here the confirming
    /// read runs while the cache still holds the version from before the first write; the
    /// watch then delivers the `Reconciling` mark and the write's result, both older than the
    /// confirmation just written. Those versions are superseded too: no second read, no
    /// status patch (the mark has no `status.observed`, so taking it at face value would
    /// read the group again and write the status back without the write's RequestId).
    #[tokio::test]
    async fn a_cache_catching_up_through_older_own_writes_causes_no_patch() {
        let env = env(&["EA303L"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, "team-l", "EA303L", &env.sim.url()),
            )
            .expect("chatgroup");
        // 100× faster: the confirming read (10 s after the write) is due within 0.1 s.
        let ctx = context(&env, Clock::scaled(100.0));
        let before_write =
            CachedChatGroup::from_value(env.api.get(&chatgroups(), NS, "team-l").expect("stored"))
                .expect("a cached object");
        let api: Api<CachedChatGroup> = Api::namespaced(env.client.clone(), NS);
        let watch = api
            .watch(
                &WatchParams::default(),
                &before_write.resource_version().expect("a resourceVersion"),
            )
            .await
            .expect("a watch");
        reconcile_object(Arc::new(before_write.clone()), &ctx)
            .await
            .expect("the first reconcile");
        assert_eq!(cams_calls(&env), (1, 1));
        // What the watch will deliver late: the mark, then the write's result.
        let late: Vec<CachedChatGroup> = watch
            .take(2)
            .map(|event| match event.expect("a watch event") {
                WatchEvent::Modified(object) => object,
                other => panic!("expected a modification, got {other:?}"),
            })
            .collect()
            .await;

        // The requeue for the confirming read fires while the cache still holds the version
        // from before the write.
        tokio::time::sleep(Duration::from_millis(300)).await;
        reconcile_object(Arc::new(before_write), &ctx)
            .await
            .expect("the confirming reconcile");
        assert_eq!(
            cams_calls(&env),
            (2, 1),
            "the write was confirmed by a read"
        );
        let confirmed = status_of(&env, "team-l");
        assert_eq!(
            condition(&confirmed, "Synced")
                .expect("Synced")
                .reason
                .as_str(),
            "UpToDate"
        );
        env.api.clear_log();

        for object in late {
            reconcile_object(Arc::new(object), &ctx)
                .await
                .expect("a reconcile on a late watch event");
        }
        assert_eq!(cams_calls(&env), (2, 1), "no second read, no write");
        assert_requests(
            &env,
            &[
                get_secret("cams-credentials"),
                get_secret("cams-credentials"),
            ],
        );
        assert_eq!(status_of(&env, "team-l"), confirmed);
    }

    #[tokio::test]
    async fn a_terminal_error_stalls_emits_an_event_and_is_not_retried() {
        let env = env(&["EA303C"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", WRONG_SECRET),
            )
            .expect("secret");
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, "team-c", "EA303C", &env.sim.url()),
            )
            .expect("chatgroup");
        env.api.clear_log();
        let ctx = context(&env, Clock::real());

        let requeue = reconcile(&env, &ctx, "team-c").await;

        assert_eq!(requeue, Requeue::AwaitChange);
        assert_requests(
            &env,
            &[
                get_secret("cams-credentials"),
                apply_reconciling_mark(),
                apply_status(),
                create_event("CredentialsInvalid"),
            ],
        );
        let status = status_of(&env, "team-c");
        let stalled = condition(&status, "Stalled").expect("Stalled");
        assert_eq!(stalled.status, ConditionStatus::True);
        assert_eq!(stalled.reason.as_str(), "CredentialsInvalid");
        assert!(
            stalled.message.contains("SignatureDoesNotMatch"),
            "{}",
            stalled.message
        );
        assert!(
            !serde_json::to_string(&status)
                .unwrap_or_default()
                .contains(WRONG_SECRET)
        );
        let calls = cams_calls(&env);

        // Our own status patch triggers another reconcile: nothing is retried.
        assert_eq!(reconcile(&env, &ctx, "team-c").await, Requeue::AwaitChange);
        assert_requests(&env, &[get_secret("cams-credentials")]);
        assert_eq!(cams_calls(&env), calls, "a terminal failure is not retried");
    }

    #[tokio::test]
    async fn a_secret_change_retries_after_a_terminal_failure() {
        let env = env(&["EA303D"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", WRONG_SECRET),
            )
            .expect("secret");
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, "team-d", "EA303D", &env.sim.url()),
            )
            .expect("chatgroup");
        let ctx = context(&env, Clock::real());
        assert_eq!(reconcile(&env, &ctx, "team-d").await, Requeue::AwaitChange);

        // Rotation: the Secret's resourceVersion changes, so the reconcile tries again.
        env.api
            .put(&kinds::SECRETS, secret(NS, "cams-credentials", KEY_SECRET));
        env.api.clear_log();
        reconcile(&env, &ctx, "team-d").await;
        let status = ready_status(&env, "team-d");
        assert!(condition(&status, "Stalled").is_none_or(|c| c.status != ConditionStatus::True));
        assert_eq!(env.sim.call_count(ACTION_UPDATE_CHAT_GROUP), 1);
    }

    #[tokio::test]
    async fn a_paused_object_makes_no_calls() {
        let env = env(&["EA303E"]).await;
        let mut object = chatgroup(NS, "team-e", "EA303E", &env.sim.url());
        object["metadata"]["annotations"] = json!({"cams.chatapp.io/paused": "true"});
        env.api
            .create(&chatgroups(), NS, object)
            .expect("chatgroup");
        env.api.clear_log();
        let ctx = context(&env, Clock::real());

        assert_eq!(reconcile(&env, &ctx, "team-e").await, Requeue::AwaitChange);
        assert_requests(&env, &[apply_status()]);
        let status = status_of(&env, "team-e");
        let ready = condition(&status, "Ready").expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Paused")
        );

        reconcile(&env, &ctx, "team-e").await;
        assert_requests(&env, &[]);
        assert_eq!(
            cams_calls(&env),
            (0, 0),
            "a paused object makes no CAMS call"
        );
    }

    #[tokio::test]
    async fn a_recreated_object_is_reconciled_from_scratch() {
        let env = env(&["EA303T"]).await;
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        let mut invalid = chatgroup(NS, "team-t", "EA303T", &env.sim.url());
        invalid["spec"]["profilePictureFile"] = json!("https://");
        env.api
            .create(&chatgroups(), NS, invalid)
            .expect("chatgroup");
        let ctx = context(&env, Clock::real());
        assert_eq!(reconcile(&env, &ctx, "team-t").await, Requeue::AwaitChange);

        // Deleted and created again under the same name: generation 1 again, a new uid.
        env.api.delete(&chatgroups(), NS, "team-t").expect("delete");
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, "team-t", "EA303T", &env.sim.url()),
            )
            .expect("recreate");
        env.api.clear_log();
        let requeue = reconcile(&env, &ctx, "team-t").await;

        assert_requests(
            &env,
            &[
                get_secret("cams-credentials"),
                apply_reconciling_mark(),
                apply_status(),
                create_event("UpdateSucceeded"),
            ],
        );
        assert!(matches!(requeue, Requeue::After(_)), "{requeue:?}");
        ready_status(&env, "team-t");
        assert_eq!(cams_calls(&env), (1, 1), "one listing and one write");
    }

    /// The API server refuses a `businessNumber` that is not a string, so the object is
    /// stored directly: it stands for one created under an older CRD whose schema did not
    /// check the type (stored objects are not validated again when a schema tightens).
    #[tokio::test]
    async fn a_malformed_object_gets_invalid_spec_naming_the_field() {
        let env = env(&[]).await;
        let mut object = chatgroup(NS, "broken", "EA303F", &env.sim.url());
        object["spec"]["businessNumber"] = json!(8613800001234u64);
        env.api.put_unchecked(&chatgroups(), object);
        env.api.clear_log();
        let ctx = context(&env, Clock::real());

        assert_eq!(reconcile(&env, &ctx, "broken").await, Requeue::AwaitChange);
        assert_requests(&env, &[apply_status(), create_event("InvalidSpec")]);
        let status = status_of(&env, "broken");
        let stalled = condition(&status, "Stalled").expect("Stalled");
        assert_eq!(stalled.reason.as_str(), "InvalidSpec");
        assert!(
            stalled.message.contains("spec.businessNumber"),
            "{}",
            stalled.message
        );
        assert_eq!(cams_calls(&env), (0, 0));
    }
}

/// The operator's own identity (`Settings.operator_identity`) serves a ChatGroup without a
/// Secret only in the namespaces `Settings.identity_namespaces` allows
/// (`--identity-namespaces`); elsewhere the object reports `CredentialsMissing` and neither
/// CAMS nor STS is called. Secrets work in every namespace.
mod operator_identity {
    use super::*;
    use cams_operator::cams::{Credentials, SecretString};
    use cams_operator::identity::{
        ACTION_ASSUME_ROLE_WITH_OIDC, OperatorIdentity, RrsaConfig, RrsaProvider,
    };
    use cams_operator::reconcile::credentials::IdentityNamespaces;
    use cams_sim::AccessKeySeed;
    use support::fixtures::{chatgroup, secret};

    /// The operator's own AccessKey, which the simulator accepts besides the Secrets' key.
    const OPERATOR_KEY_ID: &str = "LTAI5tOperatorOwnKey";
    const OPERATOR_KEY_SECRET: &str = "operator-own-secret-0123456789";

    fn static_identity(env: &Env) -> OperatorIdentity {
        env.sim
            .add_access_key(AccessKeySeed::new(OPERATOR_KEY_ID, OPERATOR_KEY_SECRET));
        OperatorIdentity::Static(Credentials {
            access_key_id: OPERATOR_KEY_ID.to_owned(),
            access_key_secret: SecretString::new(OPERATOR_KEY_SECRET),
            security_token: None,
        })
    }

    /// RRSA against the simulator's STS (which trusts any token, role and provider by
    /// default); the token file lives as long as the returned directory.
    fn rrsa_identity(env: &Env) -> (OperatorIdentity, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.controller.token").expect("token");
        let mut config = RrsaConfig::new(
            "acs:ram::1234567890123456:role/cams-operator",
            "acs:ram::1234567890123456:oidc-provider/ack-rrsa-test",
            &token_file,
        );
        config.sts_endpoint = env.sim.url();
        let provider = RrsaProvider::new(config).expect("valid RRSA config");
        (OperatorIdentity::Rrsa(provider), dir)
    }

    fn context_with(
        env: &Env,
        identity: OperatorIdentity,
        namespaces: IdentityNamespaces,
    ) -> Context<HttpCams> {
        let cams = HttpCams::new(HttpCamsConfig::default()).expect("HTTP client");
        let settings = Settings {
            cams_qps: 1000.0,
            concurrency: 8,
            operator_identity: identity,
            identity_namespaces: namespaces,
            ..Settings::default()
        };
        Context::new(env.client.clone(), cams, Metrics::new(), settings)
    }

    fn create_chatgroup(env: &Env, name: &str, group: &str) {
        env.api
            .create(
                &chatgroups(),
                NS,
                chatgroup(NS, name, group, &env.sim.url()),
            )
            .expect("chatgroup");
        env.api.clear_log();
    }

    /// The AccessKey ID that signed the writes.
    fn write_keys(env: &Env) -> Vec<Option<String>> {
        env.sim
            .requests_for(ACTION_UPDATE_CHAT_GROUP)
            .into_iter()
            .map(|r| r.access_key_id)
            .collect()
    }

    #[tokio::test]
    async fn a_listed_namespace_falls_back_to_the_operators_identity() {
        let env = env(&["EA303OA"]).await;
        let identity = static_identity(&env);
        create_chatgroup(&env, "team-oa", "EA303OA");
        let ctx = context_with(
            &env,
            identity,
            IdentityNamespaces::only(["cams-system", NS]),
        );

        reconcile(&env, &ctx, "team-oa").await;

        assert_requests(
            &env,
            &[
                get_secret("cams-credentials"),
                apply_reconciling_mark(),
                apply_status(),
                create_event("UpdateSucceeded"),
            ],
        );
        assert_eq!(cams_calls(&env), (1, 1));
        assert_eq!(write_keys(&env), [Some(OPERATOR_KEY_ID.to_owned())]);
        ready_status(&env, "team-oa");
    }

    #[tokio::test]
    async fn a_namespace_not_allowed_gets_credentials_missing_and_no_call() {
        let env = env(&["EA303OB"]).await;
        let (identity, _token_dir) = rrsa_identity(&env);
        create_chatgroup(&env, "team-ob", "EA303OB");
        let ctx = context_with(&env, identity, IdentityNamespaces::only(["cams-system"]));

        assert_eq!(reconcile(&env, &ctx, "team-ob").await, Requeue::AwaitChange);

        assert_requests(
            &env,
            &[
                get_secret("cams-credentials"),
                apply_status(),
                create_event("CredentialsMissing"),
            ],
        );
        assert_eq!(cams_calls(&env), (0, 0), "no CAMS call");
        assert_eq!(
            env.sim.call_count(ACTION_ASSUME_ROLE_WITH_OIDC),
            0,
            "no STS call either"
        );
        let status = status_of(&env, "team-ob");
        let ready = condition(&status, "Ready").expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "CredentialsMissing")
        );
        let stalled = condition(&status, "Stalled").expect("Stalled");
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "CredentialsMissing")
        );
        for needle in [
            "namespace `support` is not allowed to use the operator's own identity",
            "create the Secret `cams-credentials` in the namespace",
            "spec.credentials.secretRef",
            "--identity-namespaces",
            "credentials.namespaces",
        ] {
            assert!(
                ready.message.contains(needle),
                "{needle:?}: {}",
                ready.message
            );
        }

        // Terminal: reconciling again asks nobody.
        assert_eq!(reconcile(&env, &ctx, "team-ob").await, Requeue::AwaitChange);
        assert_requests(&env, &[get_secret("cams-credentials")]);
        assert_eq!(env.sim.call_count(ACTION_ASSUME_ROLE_WITH_OIDC), 0);

        // A Secret works in a namespace the operator's identity does not serve.
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        reconcile(&env, &ctx, "team-ob").await;
        ready_status(&env, "team-ob");
        assert_eq!(write_keys(&env), [Some(KEY_ID.to_owned())]);
        assert_eq!(env.sim.call_count(ACTION_ASSUME_ROLE_WITH_OIDC), 0);
    }

    #[tokio::test]
    async fn star_lets_every_namespace_use_the_operators_identity() {
        let env = env(&["EA303OC"]).await;
        let (identity, _token_dir) = rrsa_identity(&env);
        create_chatgroup(&env, "team-oc", "EA303OC");
        let ctx = context_with(&env, identity, IdentityNamespaces::All);

        reconcile(&env, &ctx, "team-oc").await;

        assert_eq!(env.sim.call_count(ACTION_ASSUME_ROLE_WITH_OIDC), 1);
        assert_eq!(cams_calls(&env), (1, 1));
        let keys = write_keys(&env);
        assert!(
            keys[0].as_deref().is_some_and(|k| k.starts_with("STS.")),
            "signed with the role's temporary key: {keys:?}"
        );
        ready_status(&env, "team-oc");
    }

    #[tokio::test]
    async fn a_secret_wins_over_an_allowed_operator_identity() {
        let env = env(&["EA303OD"]).await;
        let identity = static_identity(&env);
        env.api
            .create(
                &kinds::SECRETS,
                NS,
                secret(NS, "cams-credentials", KEY_SECRET),
            )
            .expect("secret");
        create_chatgroup(&env, "team-od", "EA303OD");
        let ctx = context_with(&env, identity, IdentityNamespaces::All);

        reconcile(&env, &ctx, "team-od").await;

        assert_eq!(cams_calls(&env), (1, 1));
        assert_eq!(write_keys(&env), [Some(KEY_ID.to_owned())]);
    }
}
