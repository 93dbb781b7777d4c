//! Creating the group an object asks for: the record stored before `AddChatGroup`, and the
//! search for the new group afterwards (see [`crate::reconcile::lifecycle`] for the rules).

use std::time::Duration;

use super::{
    Ctx, MIN_REQUEUE, Outcome, Requeue, Step, failed, failure_record, last_request, succeeded,
    success_record,
};
use crate::cams::pager::{MAX_LIST_PAGES, WalkEnd};
use crate::cams::{
    ACTION_ADD_CHAT_GROUP, AddChatGroupRequest, AddChatGroupResponse, CamsApi, CamsError,
    Credentials, GroupKey,
};
use crate::crd::condition::{READY, RECONCILING};
use crate::crd::{
    ChatGroup, ChatGroupStatus, CreationStatus, ManagementPolicy, PendingChange, Reason,
};
use crate::reconcile::lifecycle::{
    CREATION_DEADLINE, CREATION_RECHECK, MAX_PREEXISTING, MarkWriter, Peers, Search,
    create_again_requested, judge_search, outcome_unknown, search_delay,
};
use crate::reconcile::observe::{ListedGroup, ReadAt, SharedLister};
use crate::reconcile::status::{ConditionSpec, ConditionStatus, Failure, with_jitter};
use crate::reconcile::validate::ValidSpec;

/// What creating a group needs besides the context and the CAMS client.
pub(super) struct Creation<'a> {
    pub(super) object: &'a ChatGroup,
    pub(super) valid: &'a ValidSpec,
    pub(super) credentials: &'a Credentials,
    pub(super) peers: &'a dyn Peers,
    pub(super) marks: &'a dyn MarkWriter,
}

/// The object asks the operator to create its group and no group is known yet: look for the
/// group of a creation already recorded, or create one (see [`crate::reconcile::lifecycle`]).
pub(super) async fn create<C: CamsApi>(
    ctx: &Ctx<'_>,
    creation: Creation<'_>,
    api: &C,
    lister: &SharedLister,
) -> Outcome {
    let valid = creation.valid;
    if valid.management != ManagementPolicy::Manage {
        return creation_pending(ctx, valid);
    }
    let recorded = ctx.old.and_then(|s| s.creation.as_ref());
    let create_again = recorded.and_then(|c| create_again_requested(creation.object, c));
    if let Some(recorded) = recorded {
        let gave_up = waited_since(ctx, recorded) >= CREATION_DEADLINE;
        if create_again.is_none() || !gave_up {
            return search_created(ctx, &creation, recorded, api, lister).await;
        }
    }
    let subject = valid.subject.clone().unwrap_or_default();
    if let Some(other) = creation
        .peers
        .earlier_creator(&valid.endpoint, &valid.key, &subject)
    {
        let what = format!(
            "{other} (created earlier) creates a group with subject {subject:?} in space {} for business number {}; creating another would make both ambiguous, so nothing is created",
            valid.key.cust_space_id, valid.key.business_number
        );
        return failed(
            ctx,
            Some(valid),
            Failure::creation(Reason::CreationConflict, what),
            Step::default(),
        );
    }
    start_creation(ctx, &creation, subject, create_again, api, lister).await
}

/// A new creation: lists the space to note the groups that already have the subject, stores
/// the record, and only then calls `AddChatGroup`.
async fn start_creation<C: CamsApi>(
    ctx: &Ctx<'_>,
    creation: &Creation<'_>,
    subject: String,
    create_again: Option<String>,
    api: &C,
    lister: &SharedLister,
) -> Outcome {
    let valid = creation.valid;
    let step = Step {
        listed: true,
        ..Step::default()
    };
    let at = ReadAt {
        now: ctx.now,
        listed_after: None,
    };
    let preexisting = match lister
        .groups(
            api,
            &valid.endpoint,
            creation.credentials,
            valid.channel,
            &valid.key,
            at,
        )
        .await
    {
        Ok((_, WalkEnd::Truncated)) => {
            let what = format!(
                "the groups of space {} for business number {} could not all be listed (the walk stopped at {MAX_LIST_PAGES} pages), so a new group could not be told from an existing one",
                valid.key.cust_space_id, valid.key.business_number
            );
            return failed(ctx, Some(valid), Failure::listing_truncated(what), step);
        }
        Ok((groups, _)) => with_subject(&groups, &subject),
        Err(err) => return failed(ctx, Some(valid), Failure::from_cams(&err), step),
    };
    if preexisting.len() > MAX_PREEXISTING {
        let what = format!(
            "{} groups of space {} for business number {} already have subject {subject:?} (at most {MAX_PREEXISTING} can be told from a new one)",
            preexisting.len(),
            valid.key.cust_space_id,
            valid.key.business_number
        );
        return failed(
            ctx,
            Some(valid),
            Failure::creation(Reason::CreationConflict, what),
            step,
        );
    }
    let record = CreationStatus {
        started_time: ctx.now_time,
        subject: subject.clone(),
        preexisting: preexisting
            .iter()
            .map(|g| g.group_id().to_owned())
            .collect(),
        request_id: None,
        unique_code: None,
        create_again,
    };
    let mut mark = creating_status(
        ctx,
        &step,
        format!("creating the group: calling AddChatGroup with subject {subject:?}"),
    );
    mark.creation = Some(record.clone());
    if let Err(detail) = creation.marks.write_mark(&mark).await {
        return failed(ctx, Some(valid), Failure::mark_not_stored(&detail), step);
    }
    let request = AddChatGroupRequest {
        cust_space_id: valid.key.cust_space_id.clone(),
        business_number: valid.key.business_number.clone(),
        channel_type: Some(valid.channel.as_str().to_owned()),
        subject: Some(subject),
        description: valid.description.clone(),
    };
    let result = api
        .add_chat_group(&valid.endpoint, creation.credentials, &request)
        .await;
    answered(ctx, valid, record, result, step)
}

/// The outcome of the `AddChatGroup` call that `record` stands for.
fn answered(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    record: CreationStatus,
    result: Result<AddChatGroupResponse, CamsError>,
    mut step: Step,
) -> Outcome {
    match result {
        Ok(response) => {
            let write = success_record(ACTION_ADD_CHAT_GROUP, &response.meta, Vec::new());
            let message = format!(
                "AddChatGroup accepted (RequestId {}, UniqueCode {}); looking for the new group",
                response.meta.request_id.as_deref().unwrap_or("none"),
                response.unique_code.as_deref().unwrap_or("none")
            );
            let mut status = creating_status(ctx, &step, message);
            status.creation = Some(CreationStatus {
                request_id: response.meta.request_id.clone(),
                unique_code: response.unique_code,
                ..record
            });
            status.last_request = Some(last_request(&write, ctx.now_time, None));
            Outcome {
                status,
                requeue: Requeue::After(with_jitter(CREATION_RECHECK, ctx.jitter)),
                write: Some(write),
                failure: None,
                observed_remote: true,
                drift_found: false,
            }
        }
        Err(err) if outcome_unknown(&err) => {
            let failure = Failure::from_cams(&err);
            let write = failure_record(ACTION_ADD_CHAT_GROUP, &err, &failure, Vec::new());
            let message = format!(
                "AddChatGroup's outcome is unknown ({err}): it may have created the group, so the operator looks for it and does not call again on its own"
            );
            let mut status = creating_status(ctx, &step, message);
            status.creation = Some(record);
            status.last_request = Some(last_request(&write, ctx.now_time, Some(&failure)));
            Outcome {
                status,
                requeue: Requeue::After(with_jitter(CREATION_RECHECK, ctx.jitter)),
                write: Some(write),
                failure: None,
                observed_remote: true,
                drift_found: false,
            }
        }
        Err(err) => {
            // CAMS answered with an error code: nothing was created, and the record goes.
            let failure = Failure::from_cams(&err);
            step.write = Some(failure_record(
                ACTION_ADD_CHAT_GROUP,
                &err,
                &failure,
                Vec::new(),
            ));
            let mut outcome = failed(ctx, Some(valid), failure, step);
            outcome.status.creation = None;
            outcome
        }
    }
}

/// Looks for the group of the creation `recorded` among the groups listed after it started.
async fn search_created<C: CamsApi>(
    ctx: &Ctx<'_>,
    creation: &Creation<'_>,
    recorded: &CreationStatus,
    api: &C,
    lister: &SharedLister,
) -> Outcome {
    let valid = creation.valid;
    let step = Step {
        listed: true,
        ..Step::default()
    };
    let at = ReadAt {
        now: ctx.now,
        listed_after: Some(recorded.started_time.0),
    };
    let listed = match lister
        .groups(
            api,
            &valid.endpoint,
            creation.credentials,
            valid.channel,
            &valid.key,
            at,
        )
        .await
    {
        Ok((groups, _)) => with_subject(&groups, &recorded.subject),
        Err(err) => return failed(ctx, Some(valid), Failure::from_cams(&err), step),
    };
    let claimed = |id: &str| {
        let key = GroupKey {
            group_id: id.to_owned(),
            ..valid.key.clone()
        };
        creation.peers.claimed(&valid.endpoint, &key)
    };
    let waited = waited_since(ctx, recorded);
    let search = judge_search(&listed, recorded, claimed, waited);
    searched(ctx, valid, recorded, &listed, (search, waited), step)
}

/// The outcome of a search for the group of the creation `recorded`.
fn searched(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    recorded: &CreationStatus,
    listed: &[ListedGroup],
    (search, waited): (Search, Duration),
    step: Step,
) -> Outcome {
    let sent = format!(
        "AddChatGroup (RequestId {}, UniqueCode {}) was sent at {} with subject {:?}",
        recorded.request_id.as_deref().unwrap_or("unknown"),
        recorded.unique_code.as_deref().unwrap_or("unknown"),
        recorded.started_time,
        recorded.subject
    );
    match search {
        Search::Found(group_id) => {
            let message = format!("{sent}; the new group is {group_id}");
            let mut status = creating_status(ctx, &step, message);
            status.group_id = Some(group_id.clone());
            status.creation = None;
            if let Some(found) = listed.iter().find(|g| g.group_id() == group_id) {
                status.observed = Some(found.observed(ctx.now));
                status.invite_link = found.invite_link();
            }
            Outcome {
                status,
                requeue: Requeue::After(MIN_REQUEUE),
                write: None,
                failure: None,
                observed_remote: true,
                drift_found: false,
            }
        }
        Search::NotYet => {
            let message = format!("{sent}; the new group is not listed yet, looking again");
            Outcome {
                status: creating_status(ctx, &step, message),
                requeue: Requeue::After(with_jitter(search_delay(waited), ctx.jitter)),
                write: None,
                failure: None,
                observed_remote: true,
                drift_found: false,
            }
        }
        Search::NotFound => {
            let what = format!(
                "{sent}, but no new group with that subject appeared in space {} for business number {} within {}",
                valid.key.cust_space_id,
                valid.key.business_number,
                humantime::format_duration(CREATION_DEADLINE)
            );
            failed(
                ctx,
                Some(valid),
                Failure::creation(Reason::CreationNotFound, what),
                step,
            )
        }
        Search::Ambiguous(candidates) => {
            let what = format!(
                "{sent}, and {} new groups with that subject appeared: {}",
                candidates.len(),
                candidates.join(", ")
            );
            failed(
                ctx,
                Some(valid),
                Failure::creation(Reason::CreationAmbiguous, what),
                step,
            )
        }
    }
}

/// The listed groups whose subject is `subject`.
fn with_subject(groups: &[ListedGroup], subject: &str) -> Vec<ListedGroup> {
    groups
        .iter()
        .filter(|group| group.subject() == subject)
        .cloned()
        .collect()
}

/// How long ago the creation `recorded` started (zero when the clock went back).
pub(super) fn waited_since(ctx: &Ctx<'_>, recorded: &CreationStatus) -> Duration {
    Duration::try_from(recorded.started_time.0.duration_until(ctx.now)).unwrap_or_default()
}

/// The status while a creation is in progress: `Ready=False` and `Reconciling=True`, both
/// `Creating`; `Synced` stays as it was.
fn creating_status(ctx: &Ctx<'_>, step: &Step, message: String) -> ChatGroupStatus {
    let mut status = ctx.base();
    status.retry = None;
    if let Some(observed) = &step.observed {
        status.observed = Some(observed.clone());
    }
    status.conditions = ctx.conditions(&[
        ConditionSpec::new(
            READY,
            ConditionStatus::False,
            Reason::Creating,
            message.clone(),
        ),
        ConditionSpec::new(
            RECONCILING,
            ConditionStatus::True,
            Reason::Creating,
            message,
        ),
    ]);
    status
}

/// `Plan` or `Observe` mode, and the group is still to be created: reported, nothing called.
fn creation_pending(ctx: &Ctx<'_>, valid: &ValidSpec) -> Outcome {
    let message = format!(
        "the group does not exist yet; managementPolicy Manage would create it with AddChatGroup (subject {:?})",
        valid.subject.as_deref().unwrap_or_default()
    );
    let step = Step::default();
    let mut status = succeeded(
        ctx,
        &step,
        (
            ConditionStatus::False,
            Reason::ChangesPending,
            message.clone(),
        ),
        Reason::ChangesPending,
        message,
    );
    status.pending_changes = vec![PendingChange {
        field: "groupId".to_owned(),
        observed: None,
        desired: Some("a new group".to_owned()),
    }];
    Outcome {
        status,
        requeue: Requeue::After(with_jitter(valid.resync, ctx.jitter)),
        write: None,
        failure: None,
        observed_remote: false,
        drift_found: false,
    }
}
