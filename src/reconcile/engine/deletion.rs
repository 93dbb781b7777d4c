//! Deleting the group of an object that is being deleted and carries the finalizer (see
//! [`crate::reconcile::lifecycle::deletion_plan`]).

use super::creation::waited_since;
use super::{
    CONFIRM_DELAY, Ctx, Input, Outcome, Requeue, Step, failed, failure_record, last_request,
    paused, reconcile, success_record,
};
use crate::cams::{ACTION_DELETE_CHAT_GROUP, CamsApi, GroupRequest};
use crate::crd::condition::{READY, RECONCILING, STALLED, SYNCED};
use crate::crd::{Reason, RetryStatus, Time};
use crate::reconcile::lifecycle::{CREATION_DEADLINE, DeletionPlan, deletion_plan};
use crate::reconcile::observe::SharedLister;
use crate::reconcile::status::{ConditionSpec, ConditionStatus, Failure, backoff, time_after};
use crate::reconcile::validate::validate_with_endpoint;

/// What one reconcile of an object being deleted did: its outcome, and whether the finalizer
/// may go.
#[derive(Clone, Debug, PartialEq)]
pub struct Deletion {
    /// The status to write while the object stays, when to look again, what was called.
    pub outcome: Outcome,
    /// True when the object may go: the group is deleted (or was already gone), or deleting
    /// the object no longer means deleting the group.
    pub release: bool,
}

/// One reconcile of an object that is being deleted and carries the finalizer (see
/// [`crate::reconcile::lifecycle::deletion_plan`]): deletes the group, and says whether the
/// finalizer may go. A failure keeps the object and is retried with backoff, whatever its class:
/// the way out is to fix the cause or to switch to `deletionPolicy: Orphan`.
pub async fn finalize<C: CamsApi>(input: Input<'_>, api: &C, lister: &SharedLister) -> Deletion {
    let object = input.object;
    let ctx = Ctx {
        old: object.status.as_ref(),
        generation: object.metadata.generation,
        now: input.now,
        now_time: Time::from_timestamp(input.now),
        jitter: input.jitter,
        confirm_after: CONFIRM_DELAY,
        group_id: None,
    };
    let release = |outcome: Outcome| Deletion {
        outcome,
        release: true,
    };
    let group_id = match deletion_plan(object) {
        DeletionPlan::Release | DeletionPlan::Nothing => return release(no_call(&ctx)),
        DeletionPlan::HoldPaused => {
            return Deletion {
                outcome: paused(&ctx),
                release: false,
            };
        }
        DeletionPlan::Delete(group_id) => group_id,
        DeletionPlan::Search => {
            // The group of a recorded creation: the creation's own reconcile finds it (and
            // records it in status), or gives up after its deadline; then there is nothing to
            // delete.
            let outcome = reconcile(input, api, lister).await;
            return match (&outcome.status.group_id, &outcome.status.creation) {
                (Some(_), _) => Deletion {
                    outcome,
                    release: false,
                },
                (None, Some(creation)) if waited_since(&ctx, creation) < CREATION_DEADLINE => {
                    Deletion {
                        outcome,
                        release: false,
                    }
                }
                _ => release(outcome),
            };
        }
    };
    let mut valid = match validate_with_endpoint(&object.spec, input.endpoint_override) {
        Ok(valid) => valid,
        Err(errors) => return held(&ctx, Failure::invalid_spec(&errors), Step::default()),
    };
    valid.key.group_id = group_id;
    let credentials = match input.credentials {
        Ok(credentials) => credentials,
        Err(err) => return held(&ctx, Failure::credentials(&err), Step::default()),
    };
    let request = GroupRequest {
        key: valid.key.clone(),
        channel_type: Some(valid.channel.as_str().to_owned()),
    };
    match api
        .delete_chat_group(&valid.endpoint, &credentials, &request)
        .await
    {
        Ok(response) => {
            let write = success_record(ACTION_DELETE_CHAT_GROUP, &response.meta, Vec::new());
            let mut outcome = no_call(&ctx);
            outcome.status.last_request = Some(last_request(&write, ctx.now_time, None));
            outcome.write = Some(write);
            release(outcome)
        }
        Err(err) if err.reason() == Reason::GroupNotFound => release(no_call(&ctx)),
        Err(err) => {
            let failure = Failure::from_cams(&err);
            let mut failure_with_context = failure.clone();
            failure_with_context.message = format!(
                "deleting group {} before the object goes: {}",
                valid.key.group_id, failure.message
            );
            let step = Step {
                write: Some(failure_record(
                    ACTION_DELETE_CHAT_GROUP,
                    &err,
                    &failure,
                    Vec::new(),
                )),
                ..Step::default()
            };
            held(&ctx, failure_with_context, step)
        }
    }
}

/// The status unchanged, nothing called, nothing to wait for.
fn no_call(ctx: &Ctx<'_>) -> Outcome {
    Outcome {
        status: ctx.base(),
        requeue: Requeue::AwaitChange,
        write: None,
        failure: None,
        observed_remote: false,
        drift_found: false,
    }
}

/// A deletion that failed: the object stays, the failure is reported with `Reconciling`
/// `Deleting`, and the next attempt comes with backoff whatever the failure's class.
fn held(ctx: &Ctx<'_>, failure: Failure, step: Step) -> Deletion {
    let mut outcome = failed(ctx, None, failure.clone(), step);
    let attempts = ctx
        .old
        .and_then(|s| s.retry.as_ref())
        .map_or(0, |r| r.attempts)
        .saturating_add(1);
    let delay = backoff(
        attempts,
        ctx.jitter,
        outcome.failure.as_ref().and_then(|f| f.retry_after),
    );
    let next = time_after(ctx.now, delay);
    outcome.status.retry = Some(RetryStatus {
        attempts,
        next_attempt_time: Some(next),
    });
    outcome.requeue = Requeue::After(delay);
    let mut conditions = vec![
        ConditionSpec::new(
            READY,
            ConditionStatus::False,
            failure.reason,
            failure.message.clone(),
        ),
        ConditionSpec::new(
            SYNCED,
            ConditionStatus::False,
            failure.reason,
            failure.message.clone(),
        ),
        ConditionSpec::new(
            RECONCILING,
            ConditionStatus::True,
            Reason::Deleting,
            format!(
                "the group is deleted before the object goes; next attempt at {}",
                next.0
            ),
        ),
    ];
    if failure.is_terminal() {
        conditions.push(ConditionSpec::new(
            STALLED,
            ConditionStatus::True,
            failure.reason,
            failure.message.clone(),
        ));
    }
    outcome.status.conditions = ctx.conditions(&conditions);
    Deletion {
        outcome,
        release: false,
    }
}
