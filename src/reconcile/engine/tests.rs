//! Unit tests of the engine against `cams::fake::FakeCams`.

use std::time::Duration;

use super::*;
use crate::cams::fake::FakeCams;
use crate::cams::{ChatGroupItem, GroupKey, SecretString};
use crate::crd::{DriftPolicy, ManagementPolicy};
use crate::reconcile::credentials::CredentialsError;
use crate::reconcile::validate::validate;

const T0: i64 = 1_800_000_000;

fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(T0 + seconds).expect("valid time")
}

fn creds() -> Credentials {
    Credentials {
        access_key_id: "LTAIfake".to_owned(),
        access_key_secret: SecretString::new("fake-secret-VALUE"),
        security_token: None,
    }
}

fn key_of(object: &ChatGroup) -> GroupKey {
    GroupKey {
        cust_space_id: object.spec.cust_space_id.clone(),
        business_number: object.spec.business_number.clone(),
        group_id: object.spec.group_id.clone().unwrap_or_default(),
    }
}

fn support() -> ChatGroup {
    ChatGroup::test("support")
        .with_subject("Support team")
        .with_description("Questions about orders")
}

/// A fake CAMS holding `object`'s group with an old subject.
fn cams_with(object: &ChatGroup) -> FakeCams {
    let cams = FakeCams::new();
    cams.add_group(&key_of(object), Some("Old subject"));
    cams
}

async fn run(cams: &FakeCams, object: &ChatGroup, now: jiff::Timestamp) -> Outcome {
    let lister = SharedLister::new(Duration::ZERO);
    reconcile(
        Input {
            object,
            credentials: Ok(creds()),
            endpoint_override: None,
            now,
            jitter: 0.0,
            peers: &crate::reconcile::lifecycle::NoPeers,
            marks: &crate::reconcile::lifecycle::NoMarks,
        },
        cams,
        &lister,
    )
    .await
}

/// Reconciles and stores the new status in `object`, like the controller does.
async fn step(cams: &FakeCams, object: &mut ChatGroup, now: jiff::Timestamp) -> Outcome {
    let outcome = run(cams, object, now).await;
    object.status = Some(outcome.status.clone());
    outcome
}

fn delay(outcome: &Outcome) -> Duration {
    match outcome.requeue {
        Requeue::After(d) => d,
        Requeue::AwaitChange => panic!("expected a timed requeue, got {outcome:?}"),
    }
}

fn condition<'a>(outcome: &'a Outcome, type_: &str) -> Option<&'a crate::crd::Condition> {
    find_condition(Some(&outcome.status), type_)
}

fn cond(outcome: &Outcome, type_: &str) -> (String, String) {
    condition(outcome, type_)
        .map(|c| (c.status.as_str().to_owned(), c.reason.to_string()))
        .unwrap_or_default()
}

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_owned(), reason.to_owned())
}

fn gateway(code: &str, http_status: u16, retry_after: Option<Duration>) -> CamsError {
    CamsError::Gateway {
        action: ACTION_UPDATE_CHAT_GROUP,
        http_status,
        code: Some(code.to_owned()),
        message: Some(format!("{code} from the fake")),
        request_id: Some("FAKE-GW-1".to_owned()),
        host_id: None,
        recommend: None,
        access_denied_detail: None,
        retry_after,
    }
}

fn list_gateway(code: &str, http_status: u16, retry_after: Option<Duration>) -> CamsError {
    match gateway(code, http_status, retry_after) {
        CamsError::Gateway {
            http_status,
            code,
            message,
            request_id,
            retry_after,
            ..
        } => CamsError::Gateway {
            action: ACTION_LIST_CHAT_GROUP,
            http_status,
            code,
            message,
            request_id,
            host_id: None,
            recommend: None,
            access_denied_detail: None,
            retry_after,
        },
        other => other,
    }
}

#[tokio::test]
async fn manage_writes_once_then_never_again() {
    let mut object = support();
    let cams = cams_with(&object);

    let first = step(&cams, &mut object, at(0)).await;
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 1);
    let write = first.write.as_ref().expect("a write");
    assert!(write.success);
    assert_eq!(write.fields, [Field::Subject, Field::Description]);
    assert_eq!(cond(&first, READY), pair("True", "Synced"));
    assert_eq!(cond(&first, SYNCED), pair("True", "UpdateSucceeded"));
    assert!(condition(&first, STALLED).is_none());
    let last = first.status.last_request.as_ref().expect("lastRequest");
    assert_eq!(last.code.as_deref(), Some("OK"));
    assert_eq!(last.request_id, write.request_id);
    assert_eq!(last.result, Some(1));
    assert_eq!(
        first.status.applied_hash,
        Some(applied_hash(&validate(&object.spec).expect("valid")))
    );
    assert_eq!(first.status.observed_generation, Some(1));
    assert!(first.observed_remote);
    assert_eq!(
        cams.group(&key_of(&object))
            .and_then(|g| g.subject)
            .as_deref(),
        Some("Support team")
    );
    let confirm_after = delay(&first);
    assert!(confirm_after >= CONFIRM_DELAY);

    // Triggered again at once (by the status update itself): no call before the confirmation
    // is due, and nothing to patch.
    let early = run(&cams, &object, at(1)).await;
    assert!(!early.observed_remote);
    assert_eq!(
        early.requeue,
        Requeue::After(CONFIRM_DELAY - Duration::from_secs(1))
    );
    assert!(!status_changed(object.status.as_ref(), &early.status));
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 1);

    // The confirmation read: no write.
    let second = step(&cams, &mut object, at(10)).await;
    assert!(second.observed_remote);
    assert!(second.write.is_none());
    assert_eq!(cond(&second, SYNCED), pair("True", "UpToDate"));
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 2);

    // Re-triggered before the resync (a status update, an operator restart): no call at all,
    // and nothing to patch.
    for seconds in [11, 60, 1800] {
        let again = run(&cams, &object, at(seconds)).await;
        assert!(!again.observed_remote);
        assert!(!status_changed(object.status.as_ref(), &again.status));
        assert!(events(object.status.as_ref(), &again).is_empty());
        let remaining = delay(&again);
        assert!(remaining <= Duration::from_secs(3600), "{remaining:?}");
    }
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 2);

    // The resync reads again and still writes nothing.
    let resync = step(&cams, &mut object, at(10 + 3600)).await;
    assert!(resync.observed_remote);
    assert!(resync.write.is_none());
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 3);
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 1);
}

#[tokio::test]
async fn a_new_generation_is_read_and_written() {
    let mut object = support();
    let cams = cams_with(&object);
    step(&cams, &mut object, at(0)).await;
    step(&cams, &mut object, at(10)).await;
    object = object.with_subject("Support, 24/7").with_generation(2);
    let outcome = step(&cams, &mut object, at(20)).await;
    assert!(outcome.observed_remote);
    let write = outcome.write.as_ref().expect("a write");
    assert_eq!(write.fields, [Field::Subject]);
    assert_eq!(write.cause, WriteCause::SpecChanged);
    assert_eq!(outcome.status.observed_generation, Some(2));
    assert!(
        outcome
            .status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(2))
    );
    assert_eq!(
        cams.updates()[1].description,
        None,
        "unchanged field not sent"
    );
}

#[tokio::test]
async fn matching_group_is_adopted_without_a_write() {
    let mut object = support();
    let cams = FakeCams::new();
    cams.put_group(
        &key_of(&object),
        ChatGroupItem {
            subject: Some("Support team".to_owned()),
            description: Some("Questions about orders".to_owned()),
            group_status: Some("ACTIVE".to_owned()),
            ..ChatGroupItem::default()
        },
    );
    let outcome = step(&cams, &mut object, at(0)).await;
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 0);
    assert_eq!(cond(&outcome, READY), pair("True", "Synced"));
    assert!(outcome.status.applied_hash.is_some());
    assert!(
        outcome.status.last_request.is_none(),
        "lastRequest is for writes only"
    );
    assert_eq!(
        outcome.status.last_sync_time,
        Some(Time::from_timestamp(at(0)))
    );
}

#[tokio::test]
async fn plan_never_writes_and_lists_pending_changes() {
    let mut object = support().with_management(ManagementPolicy::Plan);
    let cams = cams_with(&object);
    for seconds in [0, 3600, 7200] {
        let outcome = step(&cams, &mut object, at(seconds)).await;
        assert_eq!(cond(&outcome, READY), pair("False", "ChangesPending"));
        assert_eq!(cond(&outcome, SYNCED), pair("True", "ChangesPending"));
        assert!(outcome.write.is_none());
        let pending = &outcome.status.pending_changes;
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].field, "subject");
        assert_eq!(pending[0].observed.as_deref(), Some("Old subject"));
        assert_eq!(pending[0].desired.as_deref(), Some("Support team"));
        assert_eq!(pending[1].field, "description");
        assert_eq!(pending[1].observed, None);
        assert_eq!(outcome.status.applied_hash, None);
    }
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 0);
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 3, "one read per resync");

    // Switching to Manage applies exactly the pending changes.
    object = object
        .with_management(ManagementPolicy::Manage)
        .with_generation(2);
    let outcome = step(&cams, &mut object, at(7300)).await;
    assert_eq!(
        outcome.write.map(|w| w.fields),
        Some(vec![Field::Subject, Field::Description])
    );
    assert!(outcome.status.pending_changes.is_empty());
}

#[tokio::test]
async fn observe_never_writes() {
    let mut object = support().with_management(ManagementPolicy::Observe);
    let cams = cams_with(&object);
    for seconds in [0, 10, 3600] {
        let outcome = step(&cams, &mut object, at(seconds)).await;
        assert_eq!(cond(&outcome, READY), pair("True", "Observed"));
        assert!(outcome.status.pending_changes.is_empty());
        assert_eq!(
            outcome
                .status
                .observed
                .as_ref()
                .and_then(|o| o.subject.as_deref()),
            Some("Old subject")
        );
    }
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 0);
    assert_eq!(
        cams.calls(ACTION_LIST_CHAT_GROUP),
        2,
        "t=0 and the resync at t=3600"
    );
}

/// Converges `object` (write + confirmation), then edits the group's subject in the fake.
async fn converged_then_drifted(object: &mut ChatGroup, cams: &FakeCams) {
    step(cams, object, at(0)).await;
    step(cams, object, at(10)).await;
    cams.edit_group(&key_of(object), |g| {
        g.subject = Some("Renamed in WhatsApp".to_owned());
    });
}

#[tokio::test]
async fn drift_is_rewritten_once_under_enforce() {
    let mut object = support();
    let cams = cams_with(&object);
    converged_then_drifted(&mut object, &cams).await;
    let before = object.status.clone();
    let outcome = step(&cams, &mut object, at(3700)).await;
    assert!(outcome.drift_found);
    let write = outcome.write.as_ref().expect("drift corrected");
    assert_eq!(write.cause, WriteCause::Drift);
    assert_eq!(write.fields, [Field::Subject]);
    let events = events(before.as_ref(), &outcome);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].reason, Reason::UpdateSucceeded);
    assert!(
        events[0]
            .note
            .contains(write.request_id.as_deref().expect("request id"))
    );
    step(&cams, &mut object, at(3710)).await;
    step(&cams, &mut object, at(3710 + 3600)).await;
    assert_eq!(
        cams.calls(ACTION_UPDATE_CHAT_GROUP),
        2,
        "initial write + one correction"
    );
}

#[tokio::test]
async fn drift_is_reported_under_report() {
    let mut object = support().with_drift(DriftPolicy::Report);
    let cams = cams_with(&object);
    converged_then_drifted(&mut object, &cams).await;
    let before = object.status.clone();
    let outcome = step(&cams, &mut object, at(3700)).await;
    assert!(outcome.drift_found);
    assert!(outcome.write.is_none());
    assert_eq!(cond(&outcome, READY), pair("False", "Drifted"));
    assert_eq!(cond(&outcome, SYNCED), pair("True", "Drifted"));
    assert!(condition(&outcome, STALLED).is_none());
    let pending = &outcome.status.pending_changes;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].observed.as_deref(), Some("Renamed in WhatsApp"));
    let first_events = events(before.as_ref(), &outcome);
    assert_eq!(first_events.len(), 1);
    assert_eq!(first_events[0].reason, Reason::Drifted);
    assert_eq!(first_events[0].type_, EventType::Warning);

    // Still drifted at the next resync: same status, no new event, no write.
    let before = object.status.clone();
    let again = step(&cams, &mut object, at(3700 + 3600)).await;
    assert!(events(before.as_ref(), &again).is_empty());
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 1);

    // Fixing the group in WhatsApp makes it Ready again.
    cams.edit_group(&key_of(&object), |g| {
        g.subject = Some("Support team".to_owned())
    });
    let fixed = step(&cams, &mut object, at(3700 + 7200)).await;
    assert_eq!(cond(&fixed, READY), pair("True", "Synced"));
    assert!(fixed.status.pending_changes.is_empty());
}

#[tokio::test]
async fn drift_is_left_alone_under_ignore() {
    let mut object = support().with_drift(DriftPolicy::Ignore);
    let cams = cams_with(&object);
    converged_then_drifted(&mut object, &cams).await;
    let outcome = step(&cams, &mut object, at(3700)).await;
    assert!(!outcome.drift_found);
    assert!(outcome.write.is_none());
    assert_eq!(cond(&outcome, READY), pair("True", "Synced"));
    assert!(outcome.status.pending_changes.is_empty());
    assert_eq!(
        outcome
            .status
            .observed
            .as_ref()
            .and_then(|o| o.subject.as_deref()),
        Some("Renamed in WhatsApp"),
        "the observation is still recorded"
    );
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 1);
}

#[tokio::test]
async fn a_value_cams_stores_differently_is_not_rewritten_in_a_loop() {
    let mut object = support();
    let cams = cams_with(&object);
    step(&cams, &mut object, at(0)).await;
    // CAMS "normalises" what was just written.
    cams.edit_group(&key_of(&object), |g| {
        g.subject = Some("SUPPORT TEAM".to_owned())
    });
    let confirm = step(&cams, &mut object, at(10)).await;
    assert!(confirm.write.is_none());
    assert_eq!(cond(&confirm, READY), pair("False", "Drifted"));
    let message = &condition(&confirm, READY).expect("ready").message;
    assert!(
        message.contains("CAMS accepted UpdateChatGroup"),
        "{message}"
    );
    // Within the resync interval nothing is called again.
    let quiet = step(&cams, &mut object, at(600)).await;
    assert!(!quiet.observed_remote);
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 1);
    // At the resync it is enforced again, once.
    step(&cams, &mut object, at(10 + 3600)).await;
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 2);
}

#[tokio::test]
async fn terminal_error_is_not_retried() {
    let mut object = support();
    let cams = cams_with(&object);
    cams.fail_always(
        ACTION_UPDATE_CHAT_GROUP,
        gateway("Forbidden.RAM", 403, None),
    );
    let before = object.status.clone();
    let outcome = step(&cams, &mut object, at(0)).await;
    assert_eq!(outcome.requeue, Requeue::AwaitChange);
    let failure = outcome.failure.as_ref().expect("failure");
    assert_eq!(failure.reason, Reason::AccessDenied);
    assert_eq!(failure.class, ErrorClass::Terminal);
    assert_eq!(failure.category, "access_denied");
    assert_eq!(cond(&outcome, READY), pair("False", "AccessDenied"));
    assert_eq!(cond(&outcome, SYNCED), pair("False", "AccessDenied"));
    assert_eq!(cond(&outcome, STALLED), pair("True", "AccessDenied"));
    assert!(outcome.status.retry.is_none());
    let last = outcome.status.last_request.as_ref().expect("lastRequest");
    assert_eq!(last.code.as_deref(), Some("Forbidden.RAM"));
    assert_eq!(last.request_id.as_deref(), Some("FAKE-GW-1"));
    assert_eq!(last.success, Some(false));
    assert_eq!(last.http_status, Some(403));
    let message = &condition(&outcome, READY).expect("ready").message;
    for part in ["Forbidden.RAM", "from the fake", "FAKE-GW-1"] {
        assert!(message.contains(part), "{message}");
    }
    let first = events(before.as_ref(), &outcome);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].type_, first[0].reason),
        (EventType::Warning, Reason::AccessDenied)
    );
    assert_eq!(first[0].action, ACTION_UPDATE_CHAT_GROUP);
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 1);

    // The same failure again (after a Secret change, say) is not a new Event.
    let before = object.status.clone();
    let again = step(&cams, &mut object, at(30)).await;
    assert!(events(before.as_ref(), &again).is_empty());
}

#[tokio::test]
async fn throttling_is_recoverable_and_carries_the_retry_after() {
    let mut object = support();
    let cams = cams_with(&object);
    cams.fail_next(
        ACTION_LIST_CHAT_GROUP,
        list_gateway("Throttling.User", 503, Some(Duration::from_secs(7))),
    );
    let outcome = step(&cams, &mut object, at(0)).await;
    let failure = outcome.failure.as_ref().expect("failure");
    assert_eq!(failure.reason, Reason::Throttled);
    assert_eq!(failure.class, ErrorClass::Recoverable);
    assert_eq!(failure.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(
        delay(&outcome),
        Duration::from_secs(7),
        "retry-after beats the 1 s backoff"
    );
    assert!(condition(&outcome, STALLED).is_none());
    assert_eq!(cond(&outcome, SYNCED), pair("False", "Throttled"));
    let retry = outcome.status.retry.as_ref().expect("retry");
    assert_eq!(retry.attempts, 1);
    assert_eq!(retry.next_attempt_time, Some(Time::from_timestamp(at(7))));
    assert!(outcome.status.last_request.is_none(), "no write was made");
    // A retry is pending: work in progress for kstatus readers.
    assert_eq!(cond(&outcome, RECONCILING), pair("True", "Throttled"));

    // Triggered again before the next attempt is due: no call.
    let early = run(&cams, &object, at(3)).await;
    assert!(!early.observed_remote);
    assert_eq!(early.requeue, Requeue::After(Duration::from_secs(4)));
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 1);

    // Due: it succeeds and the retry state is cleared.
    let done = step(&cams, &mut object, at(7)).await;
    assert!(done.failure.is_none());
    assert!(done.status.retry.is_none());
    assert_eq!(cond(&done, READY), pair("True", "Synced"));
    assert!(
        condition(&done, RECONCILING).is_none(),
        "nothing left to do"
    );
}

#[test]
fn the_reconciling_mark_names_the_generation_and_keeps_the_other_conditions() {
    let mut object = support();
    object.metadata.generation = Some(3);
    let old = ChatGroupStatus {
        observed_generation: Some(2),
        conditions: vec![crate::crd::Condition {
            type_: READY.to_owned(),
            status: crate::crd::ConditionStatus::True,
            reason: Reason::Synced.into(),
            message: String::new(),
            observed_generation: Some(2),
            last_transition_time: Time::from_timestamp(at(0)),
        }],
        ..ChatGroupStatus::default()
    };
    let mark = reconciling_mark(Some(&old), Some(3), at(9));
    assert_eq!(mark.observed_generation, Some(3));
    let reconciling = mark
        .conditions
        .iter()
        .find(|c| c.type_ == RECONCILING)
        .expect("Reconciling");
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        ("True", "Reconciling")
    );
    assert_eq!(reconciling.observed_generation, Some(3));
    assert!(reconciling.message.contains("generation 3"));
    let ready = mark
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .expect("Ready");
    assert_eq!(
        ready.observed_generation,
        Some(2),
        "Ready still names its generation"
    );
    assert!(status_changed(Some(&old), &mark));
}

#[tokio::test]
async fn backoff_grows_from_status_attempts() {
    let mut object = support();
    let cams = cams_with(&object);
    cams.fail_always(
        ACTION_LIST_CHAT_GROUP,
        list_gateway("ServiceUnavailable", 503, None),
    );
    let mut now = 0;
    let mut delays = Vec::new();
    for _ in 0..5 {
        let outcome = step(&cams, &mut object, at(now)).await;
        assert_eq!(
            outcome.failure.as_ref().map(|f| f.reason),
            Some(Reason::CamsUnavailable)
        );
        let d = delay(&outcome);
        delays.push(d.as_secs());
        now += i64::try_from(d.as_secs()).expect("small");
    }
    assert_eq!(delays, [1, 2, 4, 8, 16]);
    assert_eq!(
        object
            .status
            .as_ref()
            .and_then(|s| s.retry.as_ref())
            .map(|r| r.attempts),
        Some(5)
    );
    // One Warning for the first failure only.
    cams.heal();
    let outcome = step(&cams, &mut object, at(now)).await;
    assert!(outcome.status.retry.is_none());
}

#[tokio::test]
async fn failed_routine_read_keeps_ready() {
    let mut object = support();
    let cams = cams_with(&object);
    step(&cams, &mut object, at(0)).await;
    let confirmed = step(&cams, &mut object, at(10)).await;
    let ready_since = condition(&confirmed, READY)
        .expect("ready")
        .last_transition_time;
    cams.fail_next(
        ACTION_LIST_CHAT_GROUP,
        list_gateway("InternalError", 500, None),
    );
    let outcome = step(&cams, &mut object, at(3700)).await;
    assert_eq!(cond(&outcome, READY), pair("True", "Synced"));
    assert_eq!(
        condition(&outcome, READY)
            .expect("ready")
            .last_transition_time,
        ready_since
    );
    assert_eq!(cond(&outcome, SYNCED), pair("False", "CamsUnavailable"));
}

#[tokio::test]
async fn write_timeout_is_recorded_and_retried_without_reading_again() {
    let mut object = support();
    let cams = cams_with(&object);
    cams.fail_next(
        ACTION_UPDATE_CHAT_GROUP,
        CamsError::Timeout {
            action: ACTION_UPDATE_CHAT_GROUP,
            endpoint: "https://cams.ap-southeast-1.aliyuncs.com/".to_owned(),
            timeout: Duration::from_secs(10),
        },
    );
    let outcome = step(&cams, &mut object, at(0)).await;
    let last = outcome.status.last_request.as_ref().expect("lastRequest");
    assert_eq!(last.code.as_deref(), Some("Timeout"));
    assert_eq!(last.success, Some(false));
    assert_eq!(cond(&outcome, READY), pair("False", "CamsUnavailable"));
    // The retry repeats the (idempotent) write on the read it already has.
    let retry = step(&cams, &mut object, at(1)).await;
    assert!(!retry.observed_remote);
    assert!(retry.write.as_ref().is_some_and(|w| w.success));
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 1);
    assert_eq!(cams.calls(ACTION_UPDATE_CHAT_GROUP), 2);
    // The write is then confirmed by a read, as after any write.
    let confirm = step(&cams, &mut object, at(60)).await;
    assert!(confirm.observed_remote);
    assert_eq!(cond(&confirm, READY), pair("True", "Synced"));
}

#[tokio::test]
async fn a_failed_read_is_retried_with_a_read() {
    let mut object = support();
    let cams = cams_with(&object);
    cams.fail_next(
        ACTION_LIST_CHAT_GROUP,
        CamsError::Timeout {
            action: ACTION_LIST_CHAT_GROUP,
            endpoint: "https://cams.ap-southeast-1.aliyuncs.com/".to_owned(),
            timeout: Duration::from_secs(10),
        },
    );
    step(&cams, &mut object, at(0)).await;
    let retry = step(&cams, &mut object, at(2)).await;
    assert!(retry.observed_remote);
    assert!(retry.write.as_ref().is_some_and(|w| w.success));
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 2);
}

#[tokio::test]
async fn paused_makes_no_calls() {
    let mut object = support().with_paused(true);
    let cams = cams_with(&object);
    let outcome = step(&cams, &mut object, at(0)).await;
    assert_eq!(
        cams.calls(ACTION_LIST_CHAT_GROUP) + cams.calls(ACTION_UPDATE_CHAT_GROUP),
        0
    );
    assert_eq!(cond(&outcome, READY), pair("False", "Paused"));
    assert_eq!(outcome.requeue, Requeue::AwaitChange);
    assert!(outcome.failure.is_none());
    assert!(events(None, &outcome).is_empty());
}

#[tokio::test]
async fn invalid_spec_is_terminal_and_makes_no_calls() {
    let mut object = support().with_business_number("+86 138");
    let cams = cams_with(&object);
    let outcome = step(&cams, &mut object, at(0)).await;
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 0);
    assert_eq!(cond(&outcome, STALLED), pair("True", "InvalidSpec"));
    assert_eq!(outcome.requeue, Requeue::AwaitChange);
    let message = &condition(&outcome, READY).expect("ready").message;
    assert!(message.contains("spec.businessNumber"), "{message}");
    assert_eq!(outcome.failure.map(|f| f.action), Some("ValidateSpec"));
}

#[tokio::test]
async fn missing_credentials_make_no_calls() {
    let object = support();
    let cams = cams_with(&object);
    let lister = SharedLister::new(Duration::ZERO);
    let outcome = reconcile(
        Input {
            object: &object,
            credentials: Err(CredentialsError::NoneFound {
                default_secret: crate::crd::DEFAULT_SECRET_NAME,
            }),
            endpoint_override: None,
            now: at(0),
            jitter: 0.0,
            peers: &crate::reconcile::lifecycle::NoPeers,
            marks: &crate::reconcile::lifecycle::NoMarks,
        },
        &cams,
        &lister,
    )
    .await;
    assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 0);
    assert_eq!(cond(&outcome, READY), pair("False", "CredentialsMissing"));
    assert_eq!(cond(&outcome, STALLED), pair("True", "CredentialsMissing"));
    assert_eq!(outcome.requeue, Requeue::AwaitChange);
    assert!(
        !outcome.status.conditions[0]
            .message
            .contains("fake-secret-VALUE")
    );
}

#[tokio::test]
async fn missing_group_is_terminal_but_looked_for_at_each_resync() {
    let mut object = support();
    let cams = FakeCams::new();
    let outcome = step(&cams, &mut object, at(0)).await;
    let failure = outcome.failure.as_ref().expect("failure");
    assert_eq!(failure.reason, Reason::GroupNotFound);
    assert_eq!(failure.class, ErrorClass::Terminal);
    assert_eq!(failure.category, "group_not_found");
    assert_eq!(cond(&outcome, STALLED), pair("True", "GroupNotFound"));
    assert!(outcome.status.retry.is_none());
    assert_eq!(delay(&outcome), Duration::from_secs(3600));
    assert!(
        failure.message.contains("EA303SUPPORT"),
        "{}",
        failure.message
    );
    // It appears: the next look finds and writes it, and the object is no longer stalled.
    cams.add_group(&key_of(&object), None);
    let found = step(&cams, &mut object, at(3600)).await;
    assert!(found.write.as_ref().is_some_and(|w| w.success));
    assert!(condition(&found, STALLED).is_none());
}

/// A listing cut at the page limit does not say the group is missing, only that it was not
/// among the groups listed: the failure says so and carries a label of its own.
#[tokio::test]
async fn a_group_past_the_page_limit_is_not_reported_as_missing() {
    let object = support();
    let cams = FakeCams::new();
    let key = key_of(&object);
    for i in 0..=crate::cams::pager::MAX_LIST_PAGES {
        let other = crate::cams::GroupKey {
            group_id: format!("A{i:05}"),
            ..key.clone()
        };
        cams.add_group(&other, None);
    }
    let lister = SharedLister::new(Duration::ZERO).with_page_size(1);
    let outcome = reconcile(
        Input {
            object: &object,
            credentials: Ok(creds()),
            endpoint_override: None,
            now: at(0),
            jitter: 0.0,
            peers: &crate::reconcile::lifecycle::NoPeers,
            marks: &crate::reconcile::lifecycle::NoMarks,
        },
        &cams,
        &lister,
    )
    .await;
    assert_eq!(
        cams.calls(ACTION_LIST_CHAT_GROUP),
        crate::cams::pager::MAX_LIST_PAGES as usize
    );
    let failure = outcome.failure.as_ref().expect("failure");
    assert_eq!(failure.category, "listing_truncated");
    assert_eq!(failure.reason, Reason::GroupNotFound);
    assert!(failure.message.contains("not known"), "{}", failure.message);
    assert_eq!(delay(&outcome), Duration::from_secs(3600));
}

#[tokio::test]
async fn transitional_group_is_read_again_later_without_writing() {
    let mut object = support();
    let cams = cams_with(&object);
    cams.edit_group(&key_of(&object), |g| {
        g.group_status = Some("UPDATING".to_owned())
    });
    let outcome = step(&cams, &mut object, at(0)).await;
    assert!(outcome.write.is_none());
    assert_eq!(cond(&outcome, READY), pair("False", "GroupTransitioning"));
    assert_eq!(
        cond(&outcome, RECONCILING),
        pair("True", "GroupTransitioning")
    );
    assert_eq!(delay(&outcome), TRANSITIONAL_RECHECK);
    cams.edit_group(&key_of(&object), |g| {
        g.group_status = Some("ACTIVE".to_owned())
    });
    let later = step(&cams, &mut object, at(60)).await;
    assert!(later.write.is_some_and(|w| w.success));
}

#[tokio::test]
async fn success_requeues_at_the_resync_with_bounded_jitter() {
    let mut object = support().with_resync("10m");
    let cams = cams_with(&object);
    step(&cams, &mut object, at(0)).await;
    let lister = SharedLister::new(Duration::ZERO);
    let outcome = reconcile(
        Input {
            object: &object,
            credentials: Ok(creds()),
            endpoint_override: None,
            now: at(10),
            jitter: 0.999,
            peers: &crate::reconcile::lifecycle::NoPeers,
            marks: &crate::reconcile::lifecycle::NoMarks,
        },
        &cams,
        &lister,
    )
    .await;
    let d = delay(&outcome);
    // The next read is the space's next slot (within one interval of the last read), plus at
    // most READ_JITTER.
    let seen = outcome
        .status
        .observed
        .as_ref()
        .and_then(|o| o.time)
        .expect("read time");
    let valid = validate(&object.spec).expect("valid");
    let due = next_read_after(seen.0, &valid);
    let slot_wait = Duration::try_from(at(10).duration_until(due)).expect("due later");
    assert!(
        d >= slot_wait && d <= slot_wait + READ_JITTER,
        "{d:?} vs {slot_wait:?}"
    );
    assert!(d <= Duration::from_secs(600) + READ_JITTER, "{d:?}");
}

#[tokio::test]
async fn endpoint_override_is_used_and_hashed() {
    let object = support();
    let cams = cams_with(&object);
    let lister = SharedLister::new(Duration::ZERO);
    let outcome = reconcile(
        Input {
            object: &object,
            credentials: Ok(creds()),
            endpoint_override: Some("http://127.0.0.1:9/"),
            now: at(0),
            jitter: 0.0,
            peers: &crate::reconcile::lifecycle::NoPeers,
            marks: &crate::reconcile::lifecycle::NoMarks,
        },
        &cams,
        &lister,
    )
    .await;
    let with_override =
        validate_with_endpoint(&object.spec, Some("http://127.0.0.1:9/")).expect("valid");
    assert_eq!(
        outcome.status.applied_hash,
        Some(applied_hash(&with_override))
    );
}

#[test]
fn events_for_a_quiet_success_are_empty() {
    let status = ChatGroupStatus::default();
    let outcome = Outcome {
        status: status.clone(),
        requeue: Requeue::After(Duration::from_secs(1)),
        write: None,
        failure: None,
        observed_remote: true,
        drift_found: false,
    };
    assert!(events(Some(&status), &outcome).is_empty());
}

#[test]
fn reads_of_one_space_share_slots_and_spaces_spread_out() {
    let a = validate(&support().spec).expect("valid");
    let mut other_space = support();
    other_space.spec.cust_space_id = "cams-other".to_owned();
    let b = validate(&other_space.spec).expect("valid");
    let resync = jiff::SignedDuration::try_from(a.resync).expect("duration");

    // Two objects of one space read at different moments of the same interval are next due
    // at the same instant, strictly later and at most one interval later.
    let first = next_read_after(at(10), &a);
    assert!(first > at(10) && first <= at(10).checked_add(resync).expect("time"));
    let slot_start = first.checked_sub(resync).expect("time");
    let later_in_slot = slot_start
        .checked_add(jiff::SignedDuration::from_secs(5))
        .expect("time");
    assert_eq!(next_read_after(later_in_slot, &a), first);
    assert_eq!(
        next_read_after(first, &a),
        first.checked_add(resync).expect("time")
    );
    // Another space has another phase.
    assert_ne!(next_read_after(at(10), &b), first);
}

/// Group lifecycle: creation without duplicates, deletion, invite links.
mod lifecycle {
    use std::sync::Mutex;

    use super::*;
    use crate::crd::{
        CREATE_AGAIN_ANNOTATION, DELETE_GROUP_FINALIZER, DeletionPolicy, InviteLinkPolicy,
    };
    use crate::reconcile::lifecycle::{
        CREATION_DEADLINE, MarkFuture, MarkWriter, NoMarks, NoPeers, Peers,
    };

    /// Records every creation record it is asked to store, and can refuse.
    #[derive(Default)]
    struct Marks {
        written: Mutex<Vec<ChatGroupStatus>>,
        refuse: bool,
    }

    impl MarkWriter for Marks {
        fn write_mark<'a>(&'a self, status: &'a ChatGroupStatus) -> MarkFuture<'a> {
            Box::pin(async move {
                if self.refuse {
                    return Err("the API server is unavailable".to_owned());
                }
                self.written
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(status.clone());
                Ok(())
            })
        }
    }

    /// Other ChatGroups: groups they claim, and an older creator of the same subject.
    #[derive(Default)]
    struct Others {
        claimed: Vec<String>,
        older_creator: Option<String>,
    }

    impl Peers for Others {
        fn claimed(&self, _: &crate::cams::Endpoint, key: &GroupKey) -> bool {
            self.claimed.contains(&key.group_id)
        }
        fn earlier_creator(
            &self,
            _: &crate::cams::Endpoint,
            _: &GroupKey,
            _: &str,
        ) -> Option<String> {
            self.older_creator.clone()
        }
    }

    fn to_create() -> ChatGroup {
        ChatGroup::test("made")
            .to_create()
            .with_subject("Made by the operator")
            .with_description("Created from Git")
    }

    async fn run_with(
        cams: &FakeCams,
        object: &ChatGroup,
        now: jiff::Timestamp,
        peers: &dyn Peers,
        marks: &dyn MarkWriter,
    ) -> Outcome {
        let lister = SharedLister::new(Duration::ZERO);
        reconcile(
            Input {
                object,
                credentials: Ok(creds()),
                endpoint_override: None,
                now,
                jitter: 0.0,
                peers,
                marks,
            },
            cams,
            &lister,
        )
        .await
    }

    async fn step_with(
        cams: &FakeCams,
        object: &mut ChatGroup,
        now: jiff::Timestamp,
        marks: &dyn MarkWriter,
    ) -> Outcome {
        let outcome = run_with(cams, object, now, &NoPeers, marks).await;
        object.status = Some(outcome.status.clone());
        outcome
    }

    fn space_groups(cams: &FakeCams, object: &ChatGroup) -> Vec<ChatGroupItem> {
        cams.groups(&object.spec.cust_space_id, &object.spec.business_number)
    }

    fn timeout() -> CamsError {
        CamsError::Timeout {
            action: ACTION_ADD_CHAT_GROUP,
            endpoint: "https://cams.ap-southeast-1.aliyuncs.com/".into(),
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn the_record_is_stored_before_the_call_and_the_new_group_is_adopted() {
        let cams = FakeCams::new();
        cams.create_groups_as("CREATING");
        let mut object = to_create();
        let marks = Marks::default();
        let first = step_with(&cams, &mut object, at(0), &marks).await;
        let written = marks.written.lock().expect("lock").clone();
        assert_eq!(written.len(), 1, "one record, before the call");
        let record = written[0].creation.as_ref().expect("the record");
        assert_eq!(record.subject, "Made by the operator");
        assert_eq!(record.request_id, None, "stored before any answer");
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 1);
        let creation = first.status.creation.as_ref().expect("still creating");
        assert!(creation.unique_code.is_some() && creation.request_id.is_some());
        assert_eq!(cond(&first, READY), pair("False", "Creating"));
        assert_eq!(cond(&first, RECONCILING), pair("True", "Creating"));
        assert_eq!(
            first.write.as_ref().map(|w| w.action),
            Some(ACTION_ADD_CHAT_GROUP)
        );

        let found = step_with(&cams, &mut object, at(10), &marks).await;
        let created = space_groups(&cams, &object);
        assert_eq!(created.len(), 1);
        assert_eq!(found.status.group_id, created[0].group_id);
        assert_eq!(found.status.creation, None);
        assert!(
            events(Some(&first.status), &found)
                .iter()
                .any(|e| e.reason == Reason::GroupCreated)
        );
        // The group is still being created: transitional, then in line.
        let next = step_with(&cams, &mut object, at(12), &marks).await;
        assert_eq!(cond(&next, READY), pair("False", "GroupTransitioning"));
        cams.edit_group(
            &GroupKey {
                group_id: found.status.group_id.clone().expect("id"),
                ..key_of(&object)
            },
            |g| g.group_status = Some("ACTIVE".into()),
        );
        let ready = step_with(&cams, &mut object, at(80), &marks).await;
        assert_eq!(cond(&ready, READY), pair("True", "Synced"), "{ready:?}");
        assert_eq!(
            cams.calls(ACTION_ADD_CHAT_GROUP),
            1,
            "never a second creation"
        );
    }

    #[tokio::test]
    async fn an_adopted_group_is_reported_in_status_like_a_created_one() {
        let mut object = support();
        let cams = cams_with(&object);
        let outcome = step(&cams, &mut object, at(0)).await;
        assert_eq!(outcome.status.group_id, object.spec.group_id);
        // Even an outcome that reads nothing (a paused object) keeps reporting it.
        object
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(crate::crd::PAUSED_ANNOTATION.into(), "true".into());
        let paused = step(&cams, &mut object, at(10)).await;
        assert_eq!(paused.status.group_id, object.spec.group_id);
    }

    #[tokio::test]
    async fn an_unknown_outcome_is_searched_and_never_called_again() {
        let cams = FakeCams::new();
        let mut object = to_create();
        cams.fail_next(ACTION_ADD_CHAT_GROUP, timeout());
        let lost = step_with(&cams, &mut object, at(0), &NoMarks).await;
        assert!(lost.status.creation.is_some(), "the record stays");
        assert_eq!(cond(&lost, READY), pair("False", "Creating"));
        // Nothing appears: searched with backoff, never created again, until the deadline.
        let mut now = 0;
        while now < CREATION_DEADLINE.as_secs() as i64 {
            let searched = step_with(&cams, &mut object, at(now), &NoMarks).await;
            now += delay(&searched).as_secs().max(1) as i64;
        }
        let gave_up = step_with(&cams, &mut object, at(now), &NoMarks).await;
        assert_eq!(cond(&gave_up, STALLED), pair("True", "CreationNotFound"));
        assert!(
            gave_up.status.creation.is_some(),
            "the record stays for the user"
        );
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 1);
        // Only a new value of the annotation creates again, once.
        object
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(CREATE_AGAIN_ANNOTATION.into(), "2026-11-30".into());
        let again = step_with(&cams, &mut object, at(now + 1), &NoMarks).await;
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 2);
        assert_eq!(
            again
                .status
                .creation
                .as_ref()
                .and_then(|c| c.create_again.as_deref()),
            Some("2026-11-30")
        );
        step_with(&cams, &mut object, at(now + 20), &NoMarks).await;
        step_with(&cams, &mut object, at(now + 40), &NoMarks).await;
        assert_eq!(
            cams.calls(ACTION_ADD_CHAT_GROUP),
            2,
            "the same value asks once"
        );
        assert!(
            object
                .status
                .as_ref()
                .and_then(|s| s.group_id.as_ref())
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_refused_creation_created_nothing_and_is_retried() {
        let cams = FakeCams::new();
        let mut object = to_create();
        let throttled = CamsError::Gateway {
            action: ACTION_ADD_CHAT_GROUP,
            http_status: 400,
            code: Some("Throttling.User".into()),
            message: None,
            request_id: Some("R1".into()),
            host_id: None,
            recommend: None,
            access_denied_detail: None,
            retry_after: Some(Duration::from_secs(2)),
        };
        cams.fail_next(ACTION_ADD_CHAT_GROUP, throttled);
        let refused = step_with(&cams, &mut object, at(0), &NoMarks).await;
        assert_eq!(
            refused.status.creation, None,
            "no record: nothing was created"
        );
        assert_eq!(cond(&refused, READY), pair("False", "Throttled"));
        let retried = step_with(&cams, &mut object, at(0) + delay(&refused), &NoMarks).await;
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 2);
        assert!(retried.status.creation.is_some());
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_stored_calls_nothing() {
        let cams = FakeCams::new();
        let mut object = to_create();
        let marks = Marks {
            refuse: true,
            ..Marks::default()
        };
        let outcome = step_with(&cams, &mut object, at(0), &marks).await;
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 0);
        assert_eq!(outcome.status.creation, None);
        assert_eq!(
            outcome.failure.map(|f| f.class),
            Some(ErrorClass::Recoverable)
        );
    }

    #[tokio::test]
    async fn groups_that_had_the_subject_before_or_are_claimed_are_never_adopted() {
        let cams = FakeCams::new();
        let object = to_create();
        let old = GroupKey {
            group_id: "OLDSAME".into(),
            ..key_of(&object)
        };
        cams.add_group(&old, Some("Made by the operator"));
        let mut object = object;
        step_with(&cams, &mut object, at(0), &NoMarks).await;
        assert_eq!(
            object
                .status
                .as_ref()
                .and_then(|s| s.creation.as_ref())
                .map(|c| c.preexisting.clone()),
            Some(vec!["OLDSAME".to_owned()])
        );
        // Someone else's group with the subject appears, claimed by another object.
        let claimed = GroupKey {
            group_id: "CLAIMED".into(),
            ..key_of(&object)
        };
        cams.add_group(&claimed, Some("Made by the operator"));
        let others = Others {
            claimed: vec!["CLAIMED".into()],
            ..Others::default()
        };
        let found = run_with(&cams, &object, at(10), &others, &NoMarks).await;
        let made = found.status.group_id.expect("adopted");
        assert!(made.starts_with("FAKEGROUP"), "{made}");
    }

    #[tokio::test]
    async fn several_new_groups_are_ambiguous() {
        let cams = FakeCams::new();
        let mut object = to_create();
        step_with(&cams, &mut object, at(0), &NoMarks).await;
        cams.add_group(
            &GroupKey {
                group_id: "ALSONEW".into(),
                ..key_of(&object)
            },
            Some("Made by the operator"),
        );
        let outcome = step_with(&cams, &mut object, at(10), &NoMarks).await;
        assert_eq!(cond(&outcome, STALLED), pair("True", "CreationAmbiguous"));
        let message = condition(&outcome, STALLED)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        assert!(
            message.contains("ALSONEW") && message.contains("FAKEGROUP"),
            "{message}"
        );
        assert_eq!(outcome.status.group_id, None);
        // The person picks one with spec.groupId: the record goes, nothing is created.
        object.spec.group_id = Some("ALSONEW".into());
        object.metadata.generation = Some(2);
        let resolved = step_with(&cams, &mut object, at(20), &NoMarks).await;
        assert_eq!(resolved.status.group_id.as_deref(), Some("ALSONEW"));
        assert_eq!(resolved.status.creation, None);
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 1);
    }

    #[tokio::test]
    async fn an_older_creator_of_the_same_subject_stops_the_creation() {
        let cams = FakeCams::new();
        let object = to_create();
        let others = Others {
            older_creator: Some("ChatGroup default/first".into()),
            ..Others::default()
        };
        let outcome = run_with(&cams, &object, at(0), &others, &NoMarks).await;
        assert_eq!(cond(&outcome, STALLED), pair("True", "CreationConflict"));
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 0);
        assert_eq!(cams.calls(ACTION_LIST_CHAT_GROUP), 0);
    }

    #[tokio::test]
    async fn plan_and_observe_modes_report_the_creation_without_calling() {
        for mode in [ManagementPolicy::Plan, ManagementPolicy::Observe] {
            let cams = FakeCams::new();
            let mut object = to_create();
            object.spec.management_policy = mode;
            let outcome = run(&cams, &object, at(0)).await;
            assert_eq!(cond(&outcome, READY), pair("False", "ChangesPending"));
            assert_eq!(outcome.status.pending_changes[0].field, "groupId");
            assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP), 0);
        }
    }

    async fn finalize_with(cams: &FakeCams, object: &ChatGroup, now: jiff::Timestamp) -> Deletion {
        let lister = SharedLister::new(Duration::ZERO);
        finalize(
            Input {
                object,
                credentials: Ok(creds()),
                endpoint_override: None,
                now,
                jitter: 0.0,
                peers: &NoPeers,
                marks: &NoMarks,
            },
            cams,
            &lister,
        )
        .await
    }

    fn being_deleted(policy: DeletionPolicy) -> ChatGroup {
        let mut object = support().with_deletion(policy);
        object.metadata.finalizers = Some(vec![DELETE_GROUP_FINALIZER.into()]);
        object
    }

    #[tokio::test]
    async fn deletion_deletes_the_group_and_a_gone_group_counts_as_deleted() {
        let object = being_deleted(DeletionPolicy::Delete);
        let cams = cams_with(&object);
        let done = finalize_with(&cams, &object, at(0)).await;
        assert!(done.release);
        assert_eq!(cams.group(&key_of(&object)), None);
        assert_eq!(cams.calls(ACTION_DELETE_CHAT_GROUP), 1);
        assert!(
            events(None, &done.outcome)
                .iter()
                .any(|e| e.reason == Reason::GroupDeleted)
        );
        let again = finalize_with(&cams, &object, at(1)).await;
        assert!(again.release, "already gone");
    }

    #[tokio::test]
    async fn a_failing_deletion_holds_the_object_and_orphan_lets_it_go_without_a_call() {
        let mut object = being_deleted(DeletionPolicy::Delete);
        let cams = cams_with(&object);
        let denied = CamsError::Business {
            action: ACTION_DELETE_CHAT_GROUP,
            http_status: 200,
            code: "Forbidden.RAM".into(),
            message: Some("no permission".into()),
            request_id: Some("R2".into()),
            success: Some(false),
            access_denied_detail: None,
        };
        cams.fail_always(ACTION_DELETE_CHAT_GROUP, denied);
        let held = finalize_with(&cams, &object, at(0)).await;
        assert!(!held.release);
        assert_eq!(cond(&held.outcome, READY), pair("False", "AccessDenied"));
        assert_eq!(cond(&held.outcome, RECONCILING), pair("True", "Deleting"));
        assert!(
            delay(&held.outcome) > Duration::ZERO,
            "retried with backoff"
        );
        object.status = Some(held.outcome.status);
        object.spec.deletion_policy = DeletionPolicy::Orphan;
        let released = finalize_with(&cams, &object, at(5)).await;
        assert!(released.release);
        assert_eq!(
            cams.calls(ACTION_DELETE_CHAT_GROUP),
            1,
            "no call after the switch"
        );
        assert!(cams.group(&key_of(&object)).is_some(), "the group stays");
    }

    #[tokio::test]
    async fn a_paused_or_observing_object_never_deletes() {
        let mut paused = being_deleted(DeletionPolicy::Delete);
        paused
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(crate::crd::PAUSED_ANNOTATION.into(), "true".into());
        let cams = cams_with(&paused);
        let held = finalize_with(&cams, &paused, at(0)).await;
        assert!(!held.release);
        let mut observing = being_deleted(DeletionPolicy::Delete);
        observing.spec.management_policy = ManagementPolicy::Observe;
        let released = finalize_with(&cams, &observing, at(0)).await;
        assert!(released.release);
        assert_eq!(cams.calls(ACTION_DELETE_CHAT_GROUP), 0);
    }

    #[tokio::test]
    async fn invite_links_are_added_removed_and_reported_under_the_drift_policy() {
        let mut object = support().with_invite_link(InviteLinkPolicy::Enabled);
        let cams = cams_with(&object);
        let added = step(&cams, &mut object, at(0)).await;
        let link = cams.group(&key_of(&object)).and_then(|g| g.invite_link);
        assert!(link.is_some());
        assert_eq!(added.status.invite_link, link);
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK), 1);

        // Someone revokes the link: Report lists it and calls nothing.
        cams.edit_group(&key_of(&object), |g| g.invite_link = None);
        object.spec.drift_policy = DriftPolicy::Report;
        let resync = at(0) + Duration::from_secs(3700);
        let reported = step(&cams, &mut object, resync).await;
        assert_eq!(
            cond(&reported, READY),
            pair("False", "Drifted"),
            "{reported:?}"
        );
        assert!(
            reported
                .status
                .pending_changes
                .iter()
                .any(|c| c.field == "inviteLink")
        );
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK), 1);
        // Ignore leaves it; Enforce adds it back.
        object.spec.drift_policy = DriftPolicy::Ignore;
        step(&cams, &mut object, resync + Duration::from_secs(3700)).await;
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK), 1);
        object.spec.drift_policy = DriftPolicy::Enforce;
        step(&cams, &mut object, resync + Duration::from_secs(7400)).await;
        assert_eq!(cams.calls(ACTION_ADD_CHAT_GROUP_INVITE_LINK), 2);

        // Disabled removes it.
        object.spec.invite_link = InviteLinkPolicy::Disabled;
        object.metadata.generation = Some(2);
        let removed = step(&cams, &mut object, resync + Duration::from_secs(7500)).await;
        assert_eq!(cams.calls(ACTION_DELETE_CHAT_GROUP_INVITE_LINK), 1);
        assert_eq!(removed.status.invite_link, None);
        assert_eq!(
            cams.group(&key_of(&object)).and_then(|g| g.invite_link),
            None
        );
    }
}

#[test]
fn a_read_uses_no_listing_started_within_the_second_of_the_last_write() {
    let written = at(100);
    let status = ChatGroupStatus {
        last_request: Some(crate::crd::LastRequest {
            action: ACTION_UPDATE_CHAT_GROUP.to_owned(),
            time: Time::from_timestamp(written + Duration::from_millis(700)),
            ..crate::crd::LastRequest::default()
        }),
        ..ChatGroupStatus::default()
    };
    // The write at 100.7 s is recorded as 100 s; a listing started at 100.2 s may not show it.
    let earliest = listed_after_last_write(Some(&status)).expect("a write");
    assert!(
        earliest > written + Duration::from_millis(700),
        "{earliest}"
    );
    assert_eq!(
        listed_after_last_write(Some(&ChatGroupStatus::default())),
        None
    );
}
