//! The group lifecycle end to end: the real controller (`controller::run`, as the operator's
//! ServiceAccount under the chart's RBAC) against the Kubernetes API test server and the CAMS
//! simulator, over HTTP with signed requests.
//!
//! - `creation`: a group created once however the operator is stopped, whatever CAMS answers
//!   (throttling, lost answers), and whatever the search after the call finds (one group,
//!   several, none);
//! - `deletion`: `deletionPolicy` `Orphan` and `Delete`, a failing deletion, and the switch
//!   back to `Orphan` while the object is being deleted;
//! - `invite_links`: `inviteLink` `Enabled` and `Disabled`, and a removed link under each drift
//!   policy.
//!
//! Nothing here asserts how long anything takes: every wait is for a state, with a generous
//! deadline. Compressed clocks ([`Clock::scaled`]) make the operator's own delays (the search's
//! backoff, its ten-minute deadline, the resync interval) pass in seconds.

mod support;
use support::chatgroups;
use support::operator::{Operator, wait_until};

use std::time::Duration;

use cams_operator::cams::{
    ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_DELETE_CHAT_GROUP,
    ACTION_DELETE_CHAT_GROUP_INVITE_LINK, ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP,
};
use cams_operator::controller::{Clock, Scope, Settings, chatgroup_resource};
use cams_operator::crd::{
    CREATE_AGAIN_ANNOTATION, ChatGroupStatus, Condition, ConditionStatus, DELETE_GROUP_FINALIZER,
};
use cams_operator::metrics::Metrics;
use cams_sim::{ActionFaults, Group, RunningSim, ServerError, Simulator, SimulatorBuilder, codes};
use kube::api::{Api, Patch, PatchParams};
use kube::core::DynamicObject;
use kube_test_server::{Fault, RequestKind, TestApiServer, kinds};
use serde_json::{Value, json};
use support::RbacMode;
use support::fixtures::{KEY_ID, KEY_SECRET, NUMBER, SPACE, chatgroup, secret};

const NS: &str = "lifecycle";
/// Longest wait for any expected state.
const WAIT: Duration = Duration::from_secs(90);
/// How long a quiet period is watched to show that nothing more happens.
const SETTLE: Duration = Duration::from_millis(1500);

/// The test server enforcing the chart's RBAC (cluster-wide), with the credentials Secret in
/// [`NS`], and a simulator accepting its key.
struct Env {
    api: TestApiServer,
    /// The test's own client, as a cluster administrator.
    admin: kube::Client,
    /// The operator's client: its ServiceAccount.
    operator_client: kube::Client,
    sim: RunningSim,
}

impl Env {
    async fn start(sim: SimulatorBuilder) -> Env {
        let sim = sim
            .access_key(KEY_ID, KEY_SECRET)
            .start()
            .await
            .expect("simulator starts");
        let (api, admin) = support::start_api_server().await;
        api.enforce_rbac(&support::chart_manifests(RbacMode::ClusterWide));
        let operator_client = api.client_as(&support::operator_user());
        api.create(
            &kinds::SECRETS,
            NS,
            secret(NS, "cams-credentials", KEY_SECRET),
        )
        .expect("secret");
        Env {
            api,
            admin,
            operator_client,
            sim,
        }
    }

    /// A fresh operator (fresh memory) on `clock`.
    async fn operator(&self, clock: Clock) -> Operator {
        let settings = Settings {
            cams_qps: 1000.0,
            concurrency: 8,
            clock,
            ..Settings::default()
        };
        Operator::launch(
            self.operator_client.clone(),
            Scope::default(),
            settings,
            Metrics::new(),
        )
        .await
    }

    /// An object managing the existing group `group_id`, read once a day.
    fn adopting(&self, name: &str, group_id: &str) -> Value {
        let mut object = chatgroup(NS, name, group_id, &self.sim.url());
        object["spec"]["resyncInterval"] = json!("24h");
        object
    }

    /// An object that has the operator create its group with `subject`, read once a day.
    fn creating(&self, name: &str, subject: &str) -> Value {
        let mut object = self.adopting(name, "unused");
        let spec = object["spec"].as_object_mut().expect("a spec");
        spec.remove("groupId");
        spec.insert("creationPolicy".into(), json!("Create"));
        spec.insert("subject".into(), json!(subject));
        object
    }

    fn create(&self, object: Value) {
        self.api
            .create(&chatgroups(), NS, object)
            .expect("the API server stores the ChatGroup");
    }

    fn object(&self, name: &str) -> Option<Value> {
        self.api.get(&chatgroups(), NS, name)
    }

    fn status(&self, name: &str) -> Option<ChatGroupStatus> {
        serde_json::from_value(self.object(name)?.get("status")?.clone()).ok()
    }

    fn finalizers(&self, name: &str) -> Vec<String> {
        self.object(name)
            .and_then(|o| serde_json::from_value(o["metadata"]["finalizers"].clone()).ok())
            .unwrap_or_default()
    }

    /// Waits until `name`'s status satisfies `check`.
    async fn wait_status(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&ChatGroupStatus) -> bool,
    ) -> ChatGroupStatus {
        let found = self
            .api
            .wait_for_value(|_| self.status(name).filter(|s| check(s)), WAIT)
            .await;
        found.unwrap_or_else(|| {
            panic!(
                "{name}: timed out waiting for {what}; last object: {:#}",
                self.object(name).unwrap_or_default()
            )
        })
    }

    /// Waits until `name`'s condition `type_` has `reason`.
    async fn wait_reason(&self, name: &str, type_: &str, reason: &str) -> ChatGroupStatus {
        self.wait_status(name, &format!("{type_} reason {reason}"), |s| {
            condition(s, type_).is_some_and(|c| c.reason.as_str() == reason)
        })
        .await
    }

    /// Waits until `name` is Ready for its current generation.
    async fn wait_ready(&self, name: &str) -> ChatGroupStatus {
        let generation = || {
            self.object(name)
                .and_then(|o| o["metadata"]["generation"].as_i64())
        };
        self.wait_status(name, "Ready=True", |s| {
            s.observed_generation == generation()
                && condition(s, "Ready").is_some_and(|c| c.status == ConditionStatus::True)
        })
        .await
    }

    /// Waits until the object `name` is gone from the API server.
    async fn wait_gone(&self, name: &str) {
        let gone = self
            .api
            .wait_for(|api| api.get(&chatgroups(), NS, name).is_none(), WAIT)
            .await;
        assert!(
            gone,
            "{name} is still there: {:#}",
            self.object(name).unwrap_or_default()
        );
    }

    /// Merge-patches the object as a user would (`kubectl patch --type merge`).
    async fn patch(&self, name: &str, patch: Value) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.admin.clone(), NS, &chatgroup_resource());
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("the patch is accepted");
    }

    /// Deletes the object as `kubectl delete` does (finalizers honoured).
    fn delete(&self, name: &str) {
        self.api
            .delete(&chatgroups(), NS, name)
            .expect("the object is deleted or marked");
    }

    fn calls(&self, action: &str) -> u64 {
        self.sim.call_count(action)
    }

    /// The simulator's groups with `subject`.
    fn groups_with(&self, subject: &str) -> Vec<Group> {
        self.sim
            .groups()
            .into_iter()
            .filter(|g| g.subject.as_deref() == Some(subject))
            .collect()
    }
}

fn condition<'a>(status: &'a ChatGroupStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// A simulator holding `groups` in [`SPACE`] (subject "Support team", as the fixtures want it).
fn simulator(groups: &[&str]) -> SimulatorBuilder {
    groups.iter().fold(Simulator::builder(), |b, id| {
        b.group(
            Group::new(SPACE, NUMBER, *id)
                .subject("Support team")
                .description("Questions about orders"),
        )
    })
}

mod creation {
    use super::*;

    /// The operator is stopped after `AddChatGroup` succeeded and before the status saying
    /// so was stored (every status patch after the creation's record fails, then the process
    /// is killed). A fresh operator, with no memory of the call, finds the record, looks for
    /// the group instead of creating another, and adopts it.
    #[tokio::test]
    async fn a_restart_after_the_call_adopts_the_group_and_never_creates_twice() {
        let env = Env::start(Simulator::builder()).await;
        env.create(env.creating("created", "Killed after the call"));
        // Every status patch that would tell of the call's answer fails: only the record
        // written before the call reaches the API server.
        env.api.inject(
            Fault::on(&chatgroups())
                .subresource("status")
                .matching(|r| {
                    r.body.as_ref().is_some_and(|b| {
                        let status = &b["status"];
                        status.get("lastRequest").is_some()
                            || status.get("groupId").is_some()
                            || status.pointer("/creation/requestId").is_some()
                    })
                })
                .status(500),
        );
        let first = env.operator(Clock::real()).await;
        let failed_after_the_call = env
            .api
            .wait_for(
                |api| {
                    env.calls(ACTION_ADD_CHAT_GROUP) == 1
                        && api.count(|r| {
                            r.is_for(&chatgroups()) && r.is_status_patch() && r.injected_fault
                        }) > 0
                },
                WAIT,
            )
            .await;
        assert!(
            failed_after_the_call,
            "AddChatGroup was called and the status patch after it failed"
        );
        first.kill().await;
        let recorded = env.status("created").expect("the record was stored");
        let record = recorded.creation.expect("status.creation is stored");
        assert_eq!(record.subject, "Killed after the call");
        assert_eq!(record.request_id, None, "the answer was never stored");
        assert_eq!(recorded.group_id, None);

        env.api.clear_faults();
        let second = env.operator(Clock::real()).await;
        let status = env.wait_ready("created").await;
        let made = env.groups_with("Killed after the call");
        assert_eq!(made.len(), 1, "one group with the subject: {made:#?}");
        assert_eq!(status.group_id.as_deref(), Some(made[0].group_id.as_str()));
        assert_eq!(status.creation, None, "the creation is over");
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            env.calls(ACTION_ADD_CHAT_GROUP),
            1,
            "exactly one AddChatGroup"
        );
        second.stop().await;
    }

    /// A hundred objects creating their groups while CAMS throttles 30% of all calls and
    /// loses the answer of 10% of the creations (the group is created, the operator cannot
    /// know it): each object ends with its own group, and no group is created twice.
    #[tokio::test]
    async fn a_hundred_creations_under_throttling_and_lost_answers_create_each_group_once() {
        const COUNT: usize = 100;
        let throttled = ActionFaults::none().throttle_rate(0.3);
        let sim = [
            ACTION_LIST_CHAT_GROUP,
            ACTION_UPDATE_CHAT_GROUP,
            ACTION_ADD_CHAT_GROUP_INVITE_LINK,
            ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
            ACTION_DELETE_CHAT_GROUP,
        ]
        .into_iter()
        .fold(Simulator::builder().seed(11), |b, action| {
            b.faults(action, throttled.clone())
        })
        .faults(ACTION_ADD_CHAT_GROUP, throttled.lost_answer_rate(0.1));
        let env = Env::start(sim).await;
        let subject = |i: usize| format!("Fleet group {i:03}");
        for i in 0..COUNT {
            env.create(env.creating(&format!("fleet-{i:03}"), &subject(i)));
        }
        // Searches back off from 10 s to a minute and retries wait for CAMS's TimeLeft:
        // 50 times faster, they take fractions of a second.
        let operator = env.operator(Clock::scaled(50.0)).await;

        let mut found = Vec::new();
        for i in 0..COUNT {
            let name = format!("fleet-{i:03}");
            let status = env.wait_ready(&name).await;
            let group_id = status.group_id.expect("status.groupId");
            let group = env
                .sim
                .group(SPACE, NUMBER, &group_id)
                .unwrap_or_else(|| panic!("{name}: group {group_id} exists"));
            assert_eq!(
                group.subject,
                Some(subject(i)),
                "{name}: the group's subject"
            );
            found.push(group_id);
        }
        tokio::time::sleep(SETTLE).await;
        let groups = env.sim.groups();
        assert_eq!(groups.len(), COUNT, "exactly {COUNT} groups exist");
        found.sort();
        found.dedup();
        assert_eq!(found.len(), COUNT, "each object names a group of its own");
        let stats = env.sim.stats();
        let adds = &stats.calls[ACTION_ADD_CHAT_GROUP];
        let refused = adds
            .by_code
            .get(codes::THROTTLING_USER)
            .copied()
            .unwrap_or(0);
        assert!(adds.lost_answers > 0, "answers were lost: {adds:?}");
        assert!(refused > 0, "creations were throttled: {adds:?}");
        assert_eq!(
            adds.total - refused,
            COUNT as u64,
            "every AddChatGroup not throttled created one group: {adds:?}"
        );
        operator.stop().await;
    }

    /// Between the call and the search a second group with the subject appears: the operator
    /// cannot tell which is its own, says so naming both, and creates nothing more. Setting
    /// `spec.groupId` to one of them ends the creation.
    #[tokio::test]
    async fn two_new_groups_with_the_subject_are_ambiguous() {
        // The call takes a second: the other group appears while it is under way, and at
        // the latest before the search (a second after the answer, on a clock 10 times
        // faster).
        let sim = Simulator::builder()
            .faults(ACTION_ADD_CHAT_GROUP, ActionFaults::none().latency_ms(1000));
        let env = Env::start(sim).await;
        env.create(env.creating("twins", "Twins"));
        let operator = env.operator(Clock::scaled(10.0)).await;
        env.wait_status("twins", "the creation's record", |s| s.creation.is_some())
            .await;
        env.sim
            .upsert_group(Group::new(SPACE, NUMBER, "EA303TWIN").subject("Twins"))
            .expect("a group of someone else's");

        let status = env
            .wait_reason("twins", "Stalled", "CreationAmbiguous")
            .await;
        let stalled = condition(&status, "Stalled").expect("Stalled");
        assert_eq!(stalled.status, ConditionStatus::True);
        let made: Vec<String> = env
            .groups_with("Twins")
            .into_iter()
            .map(|g| g.group_id)
            .collect();
        assert_eq!(made.len(), 2, "{made:?}");
        for id in &made {
            assert!(
                stalled.message.contains(id.as_str()),
                "{id} named: {}",
                stalled.message
            );
        }
        assert_eq!(status.group_id, None, "no group is taken");
        tokio::time::sleep(SETTLE).await;
        assert_eq!(env.calls(ACTION_ADD_CHAT_GROUP), 1, "one AddChatGroup");

        // `spec.groupId` says which: the object manages that group, and the creation is over.
        let own = made
            .iter()
            .find(|id| *id != "EA303TWIN")
            .expect("the group the call made");
        env.patch("twins", json!({"spec": {"groupId": own}})).await;
        let status = env.wait_ready("twins").await;
        assert_eq!(status.group_id.as_deref(), Some(own.as_str()));
        assert_eq!(status.creation, None, "no creation is pending: {status:#?}");
        assert!(
            condition(&status, "Stalled").is_none_or(|c| c.status != ConditionStatus::True),
            "{status:#?}"
        );
        assert_eq!(env.calls(ACTION_ADD_CHAT_GROUP), 1, "one AddChatGroup");
        operator.stop().await;
    }

    /// The call's connection drops and no group appears within the search's deadline:
    /// `CreationNotFound`, and no second call on the operator's own. A new value of the
    /// create-again annotation asks for exactly one more creation, whose group is adopted.
    #[tokio::test]
    async fn a_creation_not_found_is_created_again_only_when_asked() {
        let sim =
            Simulator::builder().faults(ACTION_ADD_CHAT_GROUP, ActionFaults::none().drop_rate(1.0));
        let env = Env::start(sim).await;
        env.create(env.creating("lost", "Never made"));
        // The ten-minute deadline passes in a few seconds.
        let operator = env.operator(Clock::scaled(200.0)).await;
        let status = env.wait_reason("lost", "Stalled", "CreationNotFound").await;
        assert_eq!(
            condition(&status, "Stalled").map(|c| c.status),
            Some(ConditionStatus::True)
        );
        assert!(status.creation.is_some(), "the record stays: {status:#?}");
        assert!(env.groups_with("Never made").is_empty());
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            env.calls(ACTION_ADD_CHAT_GROUP),
            1,
            "no second call on the operator's own"
        );

        env.sim.clear_faults(ACTION_ADD_CHAT_GROUP);
        env.patch(
            "lost",
            json!({"metadata": {"annotations": {CREATE_AGAIN_ANNOTATION: "1"}}}),
        )
        .await;
        let status = env
            .wait_status("lost", "the group created again", |s| s.group_id.is_some())
            .await;
        let made = env.groups_with("Never made");
        assert_eq!(made.len(), 1, "{made:#?}");
        assert_eq!(status.group_id.as_deref(), Some(made[0].group_id.as_str()));
        env.wait_ready("lost").await;
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            env.calls(ACTION_ADD_CHAT_GROUP),
            2,
            "exactly one more AddChatGroup"
        );
        operator.stop().await;
    }

    /// Two objects create a group with the same subject in the same space: the later one
    /// refuses (each would take the other's group for its own), and one group is created.
    #[tokio::test]
    async fn the_later_of_two_creations_of_one_subject_conflicts() {
        let env = Env::start(Simulator::builder()).await;
        env.create(env.creating("a-first", "Shared subject"));
        env.create(env.creating("b-second", "Shared subject"));
        let operator = env.operator(Clock::scaled(20.0)).await;

        let status = env
            .wait_reason("b-second", "Stalled", "CreationConflict")
            .await;
        let stalled = condition(&status, "Stalled").expect("Stalled");
        assert_eq!(stalled.status, ConditionStatus::True);
        assert!(
            stalled.message.contains(&format!("ChatGroup {NS}/a-first")),
            "{}",
            stalled.message
        );
        let first = env.wait_ready("a-first").await;
        let made = env.groups_with("Shared subject");
        assert_eq!(made.len(), 1, "{made:#?}");
        assert_eq!(first.group_id.as_deref(), Some(made[0].group_id.as_str()));
        tokio::time::sleep(SETTLE).await;
        assert_eq!(env.calls(ACTION_ADD_CHAT_GROUP), 1, "one AddChatGroup");
        assert_eq!(env.status("b-second").and_then(|s| s.group_id), None);
        operator.stop().await;
    }
}

mod deletion {
    use super::*;

    /// No request of the operator ever touched the object itself (only its status).
    fn object_never_patched(env: &Env, name: &str) -> bool {
        env.api.count(|r| {
            r.is_for(&chatgroups())
                && r.name.as_deref() == Some(name)
                && matches!(
                    r.kind,
                    RequestKind::Patch {
                        subresource: None,
                        ..
                    }
                )
        }) == 0
    }

    /// `Orphan`, the default: no finalizer, ever; the object goes at once and the group
    /// stays.
    #[tokio::test]
    async fn orphan_leaves_the_group_and_never_holds_the_object() {
        let env = Env::start(simulator(&["EA303ORP"])).await;
        env.create(env.adopting("orphaned", "EA303ORP"));
        let operator = env.operator(Clock::real()).await;
        env.wait_ready("orphaned").await;
        assert!(env.finalizers("orphaned").is_empty());

        env.delete("orphaned");
        env.wait_gone("orphaned").await;
        tokio::time::sleep(SETTLE).await;
        assert!(
            object_never_patched(&env, "orphaned"),
            "no finalizer written"
        );
        assert!(env.sim.group(SPACE, NUMBER, "EA303ORP").is_some());
        assert_eq!(env.calls(ACTION_DELETE_CHAT_GROUP), 0);
        operator.stop().await;
    }

    /// `Delete`: the object carries the finalizer; deleting it deletes the group it created,
    /// then lets it go.
    #[tokio::test]
    async fn delete_deletes_the_group_before_the_object_goes() {
        let env = Env::start(Simulator::builder()).await;
        let mut object = env.creating("deleted", "Short-lived");
        object["spec"]["deletionPolicy"] = json!("Delete");
        env.create(object);
        // The search for the created group starts 10 s after the call: 20 times faster.
        let operator = env.operator(Clock::scaled(20.0)).await;
        let status = env.wait_ready("deleted").await;
        let group_id = status.group_id.expect("the created group");
        assert_eq!(env.finalizers("deleted"), [DELETE_GROUP_FINALIZER]);

        env.delete("deleted");
        // The finalizer goes only after the group: when the object is gone, so is the group.
        let order_kept = env
            .api
            .wait_for(
                |api| {
                    let object_gone = api.get(&chatgroups(), NS, "deleted").is_none();
                    let group_gone = env.sim.group(SPACE, NUMBER, &group_id).is_none();
                    assert!(
                        !object_gone || group_gone,
                        "the object went before its group"
                    );
                    object_gone
                },
                WAIT,
            )
            .await;
        assert!(order_kept, "the object goes");
        assert_eq!(env.calls(ACTION_DELETE_CHAT_GROUP), 1);
        operator.stop().await;
    }

    /// The object is deleted while the operator still looks for the group it created (the
    /// call's answer was lost): the group is found first, then deleted, then the object goes.
    #[tokio::test]
    async fn deleting_during_the_search_finds_the_group_and_deletes_it() {
        let sim = Simulator::builder().faults(
            ACTION_ADD_CHAT_GROUP,
            ActionFaults::none().lost_answer_rate(1.0),
        );
        let env = Env::start(sim).await;
        let mut object = env.creating("searching", "Deleted while searched");
        object["spec"]["deletionPolicy"] = json!("Delete");
        env.create(object);
        let operator = env.operator(Clock::scaled(20.0)).await;
        let status = env
            .wait_status("searching", "the call made, its group not known", |s| {
                s.creation.is_some() && s.last_request.is_some()
            })
            .await;
        assert_eq!(status.group_id, None, "{status:#?}");
        let made = env.groups_with("Deleted while searched");
        assert_eq!(made.len(), 1, "the call created the group: {made:#?}");

        env.delete("searching");
        env.wait_gone("searching").await;
        assert!(
            env.sim.group(SPACE, NUMBER, &made[0].group_id).is_none(),
            "the created group is deleted"
        );
        assert_eq!(env.calls(ACTION_ADD_CHAT_GROUP), 1);
        assert_eq!(env.calls(ACTION_DELETE_CHAT_GROUP), 1);
        operator.stop().await;
    }

    /// A deletion CAMS refuses keeps the object, with the finalizer, the failure in status and
    /// `Reconciling` `Deleting`; once CAMS works again the group is deleted and the object
    /// goes.
    #[tokio::test]
    async fn a_failing_deletion_holds_the_object_until_it_succeeds() {
        let env = Env::start(simulator(&["EA303DEL"])).await;
        let mut object = env.adopting("held", "EA303DEL");
        object["spec"]["deletionPolicy"] = json!("Delete");
        env.create(object);
        // Retries back off from seconds to minutes: 20 times faster.
        let operator = env.operator(Clock::scaled(20.0)).await;
        env.wait_ready("held").await;
        env.sim
            .set_faults(
                ACTION_DELETE_CHAT_GROUP,
                ActionFaults::none().server_error_rate(1.0, ServerError::ServiceUnavailable),
            )
            .expect("faults");

        env.delete("held");
        let status = env.wait_reason("held", "Reconciling", "Deleting").await;
        assert_eq!(
            condition(&status, "Ready").map(|c| (c.status, c.reason.as_str())),
            Some((ConditionStatus::False, "CamsUnavailable")),
            "{status:#?}"
        );
        let ready = condition(&status, "Ready").expect("Ready");
        assert!(ready.message.contains("EA303DEL"), "{}", ready.message);
        let object = env.object("held").expect("the object stays");
        assert!(object["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(env.finalizers("held"), [DELETE_GROUP_FINALIZER]);
        assert!(env.sim.group(SPACE, NUMBER, "EA303DEL").is_some());
        let failed = env.calls(ACTION_DELETE_CHAT_GROUP);
        assert!(failed >= 1);

        env.sim.clear_faults(ACTION_DELETE_CHAT_GROUP);
        env.wait_gone("held").await;
        assert!(env.sim.group(SPACE, NUMBER, "EA303DEL").is_none());
        operator.stop().await;
    }

    /// While a deletion fails, switching to `Orphan` lets the object go without touching the
    /// group again.
    #[tokio::test]
    async fn switching_to_orphan_during_a_failing_deletion_lets_the_object_go() {
        let env = Env::start(simulator(&["EA303SWI"])).await;
        let mut object = env.adopting("switched", "EA303SWI");
        object["spec"]["deletionPolicy"] = json!("Delete");
        env.create(object);
        let operator = env.operator(Clock::scaled(20.0)).await;
        env.wait_ready("switched").await;
        env.sim
            .set_faults(
                ACTION_DELETE_CHAT_GROUP,
                ActionFaults::none().server_error_rate(1.0, ServerError::InternalError),
            )
            .expect("faults");
        env.delete("switched");
        env.wait_reason("switched", "Reconciling", "Deleting").await;

        env.patch("switched", json!({"spec": {"deletionPolicy": "Orphan"}}))
            .await;
        env.wait_gone("switched").await;
        let calls = env.calls(ACTION_DELETE_CHAT_GROUP);
        env.sim.clear_faults(ACTION_DELETE_CHAT_GROUP);
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            env.calls(ACTION_DELETE_CHAT_GROUP),
            calls,
            "no DeleteChatGroup after the switch"
        );
        assert!(env.sim.group(SPACE, NUMBER, "EA303SWI").is_some());
        operator.stop().await;
    }
}

mod invite_links {
    use super::*;

    const LINK: &str = "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv";

    /// The group's link in the simulator.
    fn link(env: &Env, group_id: &str) -> Option<String> {
        env.sim
            .group(SPACE, NUMBER, group_id)
            .and_then(|g| g.invite_link)
    }

    fn with_link(env: &Env, name: &str, group_id: &str, policy: &str) -> Value {
        let mut object = env.adopting(name, group_id);
        object["spec"]["inviteLink"] = json!(policy);
        object
    }

    #[tokio::test]
    async fn enabled_gives_a_group_without_a_link_one() {
        let env = Env::start(simulator(&["EA303LNA"])).await;
        env.create(with_link(&env, "linked", "EA303LNA", "Enabled"));
        let operator = env.operator(Clock::real()).await;
        let status = env.wait_ready("linked").await;
        let made = link(&env, "EA303LNA").expect("the group has a link");
        assert_eq!(status.invite_link.as_deref(), Some(made.as_str()));
        tokio::time::sleep(SETTLE).await;
        assert_eq!(env.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK), 1);
        operator.stop().await;
    }

    #[tokio::test]
    async fn disabled_removes_the_link() {
        let sim = Simulator::builder().group(
            Group::new(SPACE, NUMBER, "EA303LND")
                .subject("Support team")
                .description("Questions about orders")
                .invite_link(LINK),
        );
        let env = Env::start(sim).await;
        env.create(with_link(&env, "unlinked", "EA303LND", "Disabled"));
        let operator = env.operator(Clock::real()).await;
        let status = env
            .wait_status("unlinked", "Ready without a link", |s| {
                s.invite_link.is_none()
                    && condition(s, "Ready").is_some_and(|c| c.status == ConditionStatus::True)
            })
            .await;
        assert_eq!(status.invite_link, None);
        assert_eq!(link(&env, "EA303LND"), None);
        tokio::time::sleep(SETTLE).await;
        assert_eq!(env.calls(ACTION_DELETE_CHAT_GROUP_INVITE_LINK), 1);
        assert_eq!(env.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK), 0);
        operator.stop().await;
    }

    /// A link removed in WhatsApp (not through the spec) is drift: `Enforce` adds one back,
    /// `Report` lists it in `pendingChanges` with `Drifted` and makes no call, `Ignore` does
    /// neither. The routine re-read (resync every minute, 100 times faster) finds it.
    #[tokio::test]
    async fn a_removed_link_under_each_drift_policy() {
        let groups = [
            ("enforced", "EA303LDE", "Enforce"),
            ("reported", "EA303LDR", "Report"),
            ("ignored", "EA303LDI", "Ignore"),
        ];
        let ids: Vec<&str> = groups.iter().map(|(_, id, _)| *id).collect();
        let env = Env::start(simulator(&ids)).await;
        for (name, id, drift) in groups {
            let mut object = with_link(&env, name, id, "Enabled");
            object["spec"]["driftPolicy"] = json!(drift);
            object["spec"]["resyncInterval"] = json!("1m");
            env.create(object);
        }
        let operator = env.operator(Clock::scaled(100.0)).await;
        for (name, id, _) in groups {
            let status = env.wait_ready(name).await;
            assert_eq!(status.invite_link, link(&env, id), "{name}");
            assert!(status.invite_link.is_some(), "{name}");
        }
        assert_eq!(env.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK), 3);

        for id in ids {
            assert!(
                env.sim
                    .edit_group(SPACE, NUMBER, id, |g| g.invite_link = None)
            );
        }
        let restored = wait_until(WAIT, || async { link(&env, "EA303LDE").is_some() }).await;
        assert!(restored, "Enforce adds a link back");
        let enforced = env
            .wait_status("enforced", "the new link in status", |s| {
                s.invite_link.is_some() && s.invite_link == link(&env, "EA303LDE")
            })
            .await;
        assert_eq!(
            condition(&enforced, "Ready").map(|c| c.status),
            Some(ConditionStatus::True)
        );

        let reported = env.wait_reason("reported", "Ready", "Drifted").await;
        assert_eq!(
            condition(&reported, "Ready").map(|c| c.status),
            Some(ConditionStatus::False)
        );
        assert!(
            reported
                .pending_changes
                .iter()
                .any(|c| c.field == "inviteLink"),
            "{:#?}",
            reported.pending_changes
        );
        // Two more routine reads after the others acted: Ignore still leaves the group alone.
        let listings = env.calls(ACTION_LIST_CHAT_GROUP);
        let read_again = wait_until(WAIT, || async {
            env.calls(ACTION_LIST_CHAT_GROUP) >= listings + 2
        })
        .await;
        assert!(read_again, "the space is read again");
        assert_eq!(link(&env, "EA303LDR"), None, "Report makes no call");
        assert_eq!(link(&env, "EA303LDI"), None, "Ignore makes no call");
        assert_eq!(
            env.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK),
            4,
            "only Enforce added a link"
        );
        let ignored = env.status("ignored").expect("status");
        assert!(
            ignored.pending_changes.is_empty(),
            "{:#?}",
            ignored.pending_changes
        );
        operator.stop().await;
    }
}
