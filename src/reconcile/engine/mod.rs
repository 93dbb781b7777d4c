//! The reconcile pipeline, generic over [`CamsApi`]: used by the controller, by
//! `cams-operator reconcile` and by `cams-operator demo`.
//!
//! One call of [`reconcile`] runs the steps in order and returns an [`Outcome`]: the complete
//! new status, when to look again, and what happened (for events, metrics and exit codes). The
//! caller resolves credentials (I/O against Secrets) and writes the status; the clock and the
//! jitter are inputs, so the function is deterministic given the CAMS answers.
//!
//! # Outcomes by mode
//! | situation | `Ready` | `Synced` | `Stalled` | requeue |
//! |---|---|---|---|---|
//! | paused annotation | `False`/`Paused` | `Unknown`/`Paused` | - | await a change |
//! | invalid spec, missing credentials, terminal CAMS error | `False`/reason | `False`/reason | `True`/reason | await a change (group not found: resync) |
//! | recoverable CAMS error | `False`/reason (kept `True` when a routine re-read of an in-line group fails) | `False`/reason | - | backoff |
//! | `Manage`, group in line | `True`/`Synced` | `True`/`UpToDate` | - | resync |
//! | `Manage`, written | `True`/`Synced` | `True`/`UpdateSucceeded` | - | confirmation read soon |
//! | `Plan`, changes to make | `False`/`ChangesPending` | `True`/`ChangesPending` | - | resync |
//! | drift under `Report` | `False`/`Drifted` | `True`/`Drifted` | - | resync |
//! | `Observe` | `True`/`Observed` | `True`/`Observed` | - | resync |
//! | group `...ING` (`Manage`, `Plan`) | `False`/`GroupTransitioning` | `True`/`GroupTransitioning` | - | 1 min |
//!
//! Drift under `Report` makes `Ready` `False`: `Ready` means "the group is in line with the
//! spec", and it is not; the differences are in `status.pendingChanges`. `Observe` mode never
//! compares, so it never lists pending changes.
//!
//! # When CAMS is read
//! `ListChatGroup` (shared, see [`SharedLister`]) is called only when due: no status or a new
//! generation; the last reconcile of this generation did not succeed (`Synced` is not `True`);
//! the resync interval has passed since `status.observed.time`; a recoverable failure is being
//! retried; the group was transitional; the last successful write is newer than the last read
//! (the confirmation read); or, in `Manage` mode, the desired hash differs from
//! `status.appliedHash`. When nothing is due, the previous verdict stands: no call is made and
//! the status is returned unchanged, so planning (and any write) always works on a fresh read.
//! A recoverable failure is not retried before `status.retry.nextAttemptTime`, and a write is
//! not confirmed before [`CONFIRM_DELAY`] has passed, unless the generation changes: a
//! reconcile triggered early (for example by the operator's own status update) makes no call,
//! returns the status unchanged and no failure, and asks to be requeued when the wait is over.
//!
//! # Group not found
//! A group missing from its space's listing is `GroupNotFound`, terminal like the client's
//! classification of the group-not-found code (`Stalled=True`: someone must check the three
//! keys). Unlike other terminal failures it is looked for again at every resync, because CAMS
//! creates groups asynchronously and the group may still be on its way; that read is shared
//! with the space's other objects.

use std::time::Duration;

mod creation;
mod deletion;

use self::creation::{Creation, create};
pub use self::deletion::{Deletion, finalize};

use crate::cams::pager::{Lookup, MAX_LIST_PAGES};
use crate::cams::{
    ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_DELETE_CHAT_GROUP,
    ACTION_DELETE_CHAT_GROUP_INVITE_LINK, ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP,
    CamsApi, CamsError, Credentials, ErrorClass, GroupRequest, ResponseMeta,
    UpdateChatGroupResponse,
};
use crate::crd::condition::{READY, RECONCILING, STALLED, SYNCED};
use crate::crd::{
    ChatGroup, ChatGroupStatus, DriftPolicy, LastRequest, ManagementPolicy, ObservedGroup,
    PAUSED_ANNOTATION, Reason, RetryStatus, Time,
};
use crate::reconcile::credentials::CredentialsError;
use crate::reconcile::lifecycle::{MarkWriter, Peers};
use crate::reconcile::observe::ListedGroup;
use crate::reconcile::observe::{ReadAt, SharedLister};
use crate::reconcile::plan::{
    Field, FieldChange, LinkChange, Plan, WriteCause, applied_hash, confirming_own_write,
    invite_link_change, is_transitional, plan,
};
use crate::reconcile::status::{
    ConditionSpec, ConditionStatus, Failure, backoff, find_condition, merge_conditions, time_after,
    with_jitter,
};
use crate::reconcile::validate::{ValidSpec, validate_with_endpoint};

/// Shortest delay before the read that confirms a write (also never shorter than the lister's
/// window). The confirmation never uses a listing that started before the write, however long
/// the walk took: see [`ReadAt::listed_after`].
pub const CONFIRM_DELAY: Duration = Duration::from_secs(10);
/// Delay before reading a transitional (`...ING`) group again.
pub const TRANSITIONAL_RECHECK: Duration = Duration::from_secs(60);
/// Shortest requeue delay after a success.
const MIN_REQUEUE: Duration = Duration::from_secs(1);

/// Everything one reconcile needs besides the CAMS client.
pub struct Input<'a> {
    /// The object: spec, `metadata.generation`, annotations and current status.
    pub object: &'a ChatGroup,
    /// Its credentials, resolved by the caller (see [`crate::reconcile::credentials`]).
    pub credentials: Result<Credentials, CredentialsError>,
    /// An endpoint URL overriding the spec's (`reconcile --endpoint`, the demo).
    pub endpoint_override: Option<&'a str>,
    /// The current time.
    pub now: jiff::Timestamp,
    /// Randomness for jitter, in `[0, 1)`.
    pub jitter: f64,
    /// What the other ChatGroups claim, for creating a group ([`NoPeers`](crate::reconcile::lifecycle::NoPeers) without a cluster).
    pub peers: &'a dyn Peers,
    /// Stores the record of a creation before `AddChatGroup` is called ([`NoMarks`](crate::reconcile::lifecycle::NoMarks) without a
    /// cluster).
    pub marks: &'a dyn MarkWriter,
}

/// When to reconcile the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// After this delay.
    After(Duration),
    /// Not by time: only when the object's generation or one of its Secrets changes.
    AwaitChange,
}

/// A call of `UpdateChatGroup`, successful or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRecord {
    /// The action, `UpdateChatGroup`.
    pub action: &'static str,
    /// CAMS `RequestId`, when a response arrived.
    pub request_id: Option<String>,
    /// CAMS `Code` (`OK` on success), or the failure kind when no response arrived.
    pub code: String,
    /// True when `Code` was `OK`.
    pub success: bool,
    /// The fields sent.
    pub fields: Vec<Field>,
    /// HTTP status, when a response arrived.
    pub http_status: Option<u16>,
    /// Why the write was made.
    pub cause: WriteCause,
}

/// What one reconcile did and decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The complete new status.
    pub status: ChatGroupStatus,
    /// When to reconcile again.
    pub requeue: Requeue,
    /// The write made, if any.
    pub write: Option<WriteRecord>,
    /// The failure, if the reconcile failed.
    pub failure: Option<Failure>,
    /// True when CAMS was read (`ListChatGroup`, possibly a shared listing).
    pub observed_remote: bool,
    /// True when drift was found (written back under `Enforce`, reported under `Report`).
    pub drift_found: bool,
}

impl Outcome {
    /// True when the new status says `Ready=True`.
    pub fn is_ready(&self) -> bool {
        find_condition(Some(&self.status), READY).is_some_and(|c| c.status == ConditionStatus::True)
    }

    /// The `Ready` condition's reason, if any.
    pub fn ready_reason(&self) -> Option<Reason> {
        find_condition(Some(&self.status), READY).and_then(|c| c.reason.known())
    }
}

/// The per-call context shared by the outcome builders.
struct Ctx<'a> {
    old: Option<&'a ChatGroupStatus>,
    generation: Option<i64>,
    now: jiff::Timestamp,
    now_time: Time,
    jitter: f64,
    /// How long after a write the read that confirms it waits: long enough that a shared
    /// listing made before the write has expired.
    confirm_after: Duration,
    /// The group this object manages, once known: written to every status.
    group_id: Option<String>,
}

impl Ctx<'_> {
    fn new_generation(&self) -> bool {
        self.old.and_then(|s| s.observed_generation) != self.generation
    }

    /// The old status (or an empty one) with this generation. Once the group is known, no
    /// creation is pending: a record left from before `spec.groupId` named the group goes.
    fn base(&self) -> ChatGroupStatus {
        let mut status = self.old.cloned().unwrap_or_default();
        status.observed_generation = self.generation;
        if let Some(group_id) = &self.group_id {
            status.group_id = Some(group_id.clone());
            status.creation = None;
        }
        status
    }

    fn conditions(&self, desired: &[ConditionSpec]) -> Vec<crate::crd::Condition> {
        merge_conditions(
            self.old.map_or(&[], |s| s.conditions.as_slice()),
            desired,
            self.generation,
            self.now_time,
        )
    }
}

/// Runs one reconcile of `input.object` (see the module docs).
pub async fn reconcile<C: CamsApi>(input: Input<'_>, api: &C, lister: &SharedLister) -> Outcome {
    let Input {
        object,
        credentials,
        endpoint_override,
        now,
        jitter,
        peers,
        marks,
    } = input;
    let mut ctx = Ctx {
        old: object.status.as_ref(),
        generation: object.metadata.generation,
        now,
        now_time: Time::from_timestamp(now),
        jitter,
        confirm_after: CONFIRM_DELAY.max(lister.window() + MIN_REQUEUE),
        group_id: None,
    };

    if object.is_paused() {
        return paused(&ctx);
    }
    let mut valid = match validate_with_endpoint(&object.spec, endpoint_override) {
        Ok(valid) => valid,
        Err(errors) => {
            return failed(&ctx, None, Failure::invalid_spec(&errors), Step::default());
        }
    };
    // `spec.groupId` wins; without it, the group this object created earlier.
    if !valid.group_known()
        && let Some(created) = ctx.old.and_then(|s| s.group_id.clone())
    {
        valid.key.group_id = created;
    }
    if valid.group_known() {
        ctx.group_id = Some(valid.key.group_id.clone());
    }
    if let Some(wait) = retry_wait(&ctx).or_else(|| confirm_wait(&ctx)) {
        return waiting(&ctx, wait);
    }
    let credentials = match credentials {
        Ok(credentials) => credentials,
        Err(err) => {
            return failed(
                &ctx,
                Some(&valid),
                Failure::credentials(&err),
                Step::default(),
            );
        }
    };

    if !valid.group_known() {
        let creation = Creation {
            object,
            valid: &valid,
            credentials: &credentials,
            peers,
            marks,
        };
        return create(&ctx, creation, api, lister).await;
    }

    let hash = applied_hash(&valid);
    let retry_write = retrying_write(&ctx, &valid);
    if retry_write.is_none() && !observe_due(&ctx, &valid, &hash) {
        return no_news(&ctx, &valid);
    }
    let mut step = Step {
        listed: retry_write.is_none(),
        ..Step::default()
    };
    let observation = match retry_write {
        Some(observation) => observation,
        None => match read_group(&ctx, &valid, &credentials, api, lister).await {
            Ok(listed) => {
                step.invite_link = Some(listed.invite_link());
                listed.observed(ctx.now)
            }
            Err(failure) => return failed(&ctx, Some(&valid), failure, step),
        },
    };
    step.observed = Some(observation.clone());

    if valid.management == ManagementPolicy::Observe {
        return observed_only(&ctx, &valid, &observation, step);
    }

    act(&ctx, &valid, &credentials, &hash, &observation, step, api).await
}

/// Reads the group through the shared listing of its space.
async fn read_group<C: CamsApi>(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    credentials: &Credentials,
    api: &C,
    lister: &SharedLister,
) -> Result<ListedGroup, Failure> {
    let read_at = ReadAt {
        now: ctx.now,
        listed_after: listed_after_last_write(ctx.old),
    };
    let key = &valid.key;
    match lister
        .find(
            api,
            &valid.endpoint,
            credentials,
            valid.channel,
            key,
            read_at,
        )
        .await
    {
        Ok(Lookup::Found(group)) => Ok(group),
        Ok(Lookup::Truncated) => Err(Failure::listing_truncated(format!(
            "group {} was not among the groups of space {} for business number {} at {} that ListChatGroup listed before the walk stopped at its limit of {MAX_LIST_PAGES} pages; whether the group exists is not known",
            key.group_id, key.cust_space_id, key.business_number, valid.endpoint,
        ))),
        Ok(Lookup::Missing) => Err(Failure::group_not_found(format!(
            "group {} was not found by ListChatGroup in space {} for business number {} at {}",
            key.group_id, key.cust_space_id, key.business_number, valid.endpoint,
        ))),
        Err(err) => Err(Failure::from_cams(&err)),
    }
}

/// The earliest start of a listing a read may use: a read never uses a listing that started
/// before this object's last write, which may not show the write yet. The write's time is kept
/// to the second (as Kubernetes keeps times), so the write happened somewhere in that second:
/// only a listing started after the whole second is certainly newer.
fn listed_after_last_write(status: Option<&ChatGroupStatus>) -> Option<jiff::Timestamp> {
    let written = status?.last_request.as_ref()?.time.0;
    Some(
        written
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap_or(written),
    )
}

/// Plans against the group as read, and writes when the plan and the management policy say
/// so.
async fn act<C: CamsApi>(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    credentials: &Credentials,
    hash: &str,
    observation: &ObservedGroup,
    mut step: Step,
    api: &C,
) -> Outcome {
    let decision = plan(valid, Some(observation), ctx.old);
    // The invite link: written now, or reported with the fields' changes.
    let mut link_report = None;
    if !matches!(decision, Plan::Transitional { .. })
        && let Some(Some(change)) = step
            .invite_link
            .as_ref()
            .map(|link| invite_link_change(valid.invite_link, link.as_deref()))
    {
        let spec_changed = ctx.old.and_then(|s| s.applied_hash.as_deref()) != Some(hash);
        let observed = step.invite_link.clone().flatten();
        let report = change.to_change(observed.as_deref());
        match (valid.management, spec_changed, valid.drift) {
            (ManagementPolicy::Plan, ..) | (_, false, DriftPolicy::Report) => {
                step.drift_found |= !spec_changed;
                link_report = Some(report);
            }
            (_, false, DriftPolicy::Ignore) => {}
            _ => {
                step.drift_found |= !spec_changed;
                if let Err(outcome) =
                    write_link(ctx, valid, credentials, change, &mut step, api).await
                {
                    return *outcome;
                }
            }
        }
    }
    let link_write = step.write.clone();
    let mut outcome = match (decision, link_report) {
        (Plan::InSync { .. }, Some(report)) if valid.management == ManagementPolicy::Plan => {
            pending(ctx, valid, vec![report], WriteCause::SpecChanged, step)
        }
        (Plan::InSync { .. }, Some(report)) => {
            let message = format!(
                "the group differs from the spec: {}; driftPolicy Report leaves it alone (see status.pendingChanges)",
                describe_changes_with_values(std::slice::from_ref(&report))
            );
            differs(ctx, valid, vec![report], message, step)
        }
        (Plan::Update { changes, cause, .. }, Some(report))
            if valid.management == ManagementPolicy::Plan =>
        {
            let mut changes = changes;
            changes.push(report);
            pending(ctx, valid, changes, cause, step)
        }
        (Plan::Drifted { mut changes }, Some(report)) => {
            changes.push(report);
            act_on_plan(
                ctx,
                valid,
                credentials,
                hash,
                Plan::Drifted { changes },
                step,
                api,
            )
            .await
        }
        (decision, _) => act_on_plan(ctx, valid, credentials, hash, decision, step, api).await,
    };
    // A link written in this reconcile is its write when nothing else was written.
    if outcome.write.is_none()
        && let Some(write) = link_write
    {
        outcome.status.last_request = Some(last_request(&write, ctx.now_time, None));
        outcome.write = Some(write);
    }
    outcome
}

/// Adds or removes the invite link; on success `step` holds the new link and the write.
async fn write_link<C: CamsApi>(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    credentials: &Credentials,
    change: LinkChange,
    step: &mut Step,
    api: &C,
) -> Result<(), Box<Outcome>> {
    let request = GroupRequest {
        key: valid.key.clone(),
        channel_type: Some(valid.channel.as_str().to_owned()),
    };
    let (action, result) = match change {
        LinkChange::Add => (
            ACTION_ADD_CHAT_GROUP_INVITE_LINK,
            api.add_chat_group_invite_link(&valid.endpoint, credentials, &request)
                .await
                .map(|r| (r.meta, r.invite_link)),
        ),
        LinkChange::Remove => (
            ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
            api.delete_chat_group_invite_link(&valid.endpoint, credentials, &request)
                .await
                .map(|r| (r.meta, None)),
        ),
    };
    match result {
        Ok((meta, link)) => {
            step.write = Some(success_record(action, &meta, vec![Field::InviteLink]));
            step.invite_link = Some(link);
            Ok(())
        }
        Err(err) => {
            let failure = Failure::from_cams(&err);
            step.write = Some(failure_record(
                action,
                &err,
                &failure,
                vec![Field::InviteLink],
            ));
            let step = std::mem::take(step);
            Err(Box::new(failed(ctx, Some(valid), failure, step)))
        }
    }
}

/// Acts on the fields' plan: writes under `Manage`, reports otherwise.
async fn act_on_plan<C: CamsApi>(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    credentials: &Credentials,
    hash: &str,
    decision: Plan,
    mut step: Step,
    api: &C,
) -> Outcome {
    match decision {
        Plan::InSync { .. } => in_sync(ctx, valid, hash, step),
        Plan::Update {
            request,
            changes,
            cause,
        } => {
            if valid.management == ManagementPolicy::Plan {
                return pending(ctx, valid, changes, cause, step);
            }
            step.drift_found = cause == WriteCause::Drift;
            let fields: Vec<Field> = changes.iter().map(|c| c.field).collect();
            let result = api
                .update_chat_group(&valid.endpoint, credentials, &request)
                .await;
            written(ctx, valid, hash, result, fields, cause, step)
        }
        Plan::Drifted { changes } => {
            step.drift_found = true;
            let message = format!(
                "the group differs from the spec: {}; driftPolicy Report leaves it alone (see status.pendingChanges)",
                describe_changes_with_values(&changes)
            );
            differs(ctx, valid, changes, message, step)
        }
        Plan::Unconfirmed { changes } => {
            let request_id = ctx
                .old
                .and_then(|s| s.last_request.as_ref())
                .and_then(|l| l.request_id.clone())
                .unwrap_or_else(|| "none".to_owned());
            let message = format!(
                "CAMS accepted UpdateChatGroup (RequestId {request_id}) but reports different values: {}; it is written again at the next resync at the earliest",
                describe_changes_with_values(&changes)
            );
            differs(ctx, valid, changes, message, step)
        }
        Plan::Transitional { group_status } => transitional(ctx, valid, &group_status, step),
    }
}

/// The record of a successful call.
fn success_record(action: &'static str, meta: &ResponseMeta, fields: Vec<Field>) -> WriteRecord {
    WriteRecord {
        action,
        request_id: meta.request_id.clone(),
        code: meta.code.clone(),
        success: true,
        fields,
        http_status: Some(meta.http_status),
        cause: WriteCause::SpecChanged,
    }
}

/// The record of a failed call.
fn failure_record(
    action: &'static str,
    err: &CamsError,
    failure: &Failure,
    fields: Vec<Field>,
) -> WriteRecord {
    WriteRecord {
        action,
        request_id: err.request_id().map(str::to_owned),
        code: err
            .code()
            .map_or_else(|| failure_kind(err).to_owned(), str::to_owned),
        success: false,
        fields,
        http_status: err.http_status(),
        cause: if failure.reason == Reason::Drifted {
            WriteCause::Drift
        } else {
            WriteCause::SpecChanged
        },
    }
}

/// What the CAMS steps did so far in this reconcile.
#[derive(Default)]
struct Step {
    /// The group as read in this reconcile.
    observed: Option<ObservedGroup>,
    /// True when `ListChatGroup` was consulted (even if it failed or missed the group).
    listed: bool,
    /// True when drift was found.
    drift_found: bool,
    /// The write made.
    write: Option<WriteRecord>,
    /// The group's invite link as read in this reconcile (`Some(None)`: it has none), or as
    /// set by this reconcile.
    invite_link: Option<Option<String>>,
}

/// `Some(delay)` while a recoverable failure of this generation waits for its next attempt.
fn retry_wait(ctx: &Ctx<'_>) -> Option<Duration> {
    if ctx.new_generation() {
        return None;
    }
    let next = ctx.old?.retry.as_ref()?.next_attempt_time?;
    let wait = ctx.now.duration_until(next.0);
    let wait = Duration::try_from(wait).ok()?;
    (!wait.is_zero()).then_some(wait)
}

/// `Some(delay)` while the read confirming the last write is not due yet: a read right after
/// the write could be served a shared listing made before it, and CAMS may apply the write
/// with a delay.
fn confirm_wait(ctx: &Ctx<'_>) -> Option<Duration> {
    if ctx.new_generation() || !confirming_own_write(ctx.old) {
        return None;
    }
    let written_at = ctx.old?.last_request.as_ref()?.time;
    let due = jiff::SignedDuration::try_from(ctx.confirm_after)
        .ok()
        .and_then(|d| written_at.0.checked_add(d).ok())?;
    let wait = Duration::try_from(ctx.now.duration_until(due)).ok()?;
    (!wait.is_zero()).then_some(wait)
}

/// The observation to plan on, without reading again, when this reconcile retries a write
/// that failed recoverably after a successful read of this generation: the write carries the
/// desired values whatever the group holds now, so retrying it needs no fresh read (under
/// throttling, a read before every retry would double the calls and halve the chance that an
/// attempt succeeds).
fn retrying_write(ctx: &Ctx<'_>, valid: &ValidSpec) -> Option<ObservedGroup> {
    if ctx.new_generation() || valid.management != ManagementPolicy::Manage {
        return None;
    }
    let status = ctx.old?;
    status.retry.as_ref()?;
    let last = status.last_request.as_ref()?;
    let observed = status.observed.as_ref()?;
    let read_before_write = observed.time.is_some_and(|seen| seen <= last.time);
    let write_failed = last.code.as_deref() != Some(crate::cams::CODE_OK);
    // `retry` is set only by a recoverable failure, and no read was made after the failed
    // write: the write was the step that failed.
    (read_before_write && write_failed).then(|| observed.clone())
}

fn observe_due(ctx: &Ctx<'_>, valid: &ValidSpec, hash: &str) -> bool {
    let Some(status) = ctx.old else {
        return true;
    };
    let Some(observed) = &status.observed else {
        return true;
    };
    let Some(seen_at) = observed.time else {
        return true;
    };
    let resync_due = ctx.now >= next_read_after(seen_at.0, valid);
    let last_succeeded = find_condition(ctx.old, SYNCED).is_some_and(|c| {
        c.status == ConditionStatus::True && c.observed_generation == ctx.generation
    });
    ctx.new_generation()
        || !last_succeeded
        || status.retry.is_some()
        || resync_due
        || is_transitional(observed.group_status.as_deref())
        || confirming_own_write(ctx.old)
        || (valid.management == ManagementPolicy::Manage
            && status.applied_hash.as_deref() != Some(hash))
}

/// Delay until the next read is due (the space's next read slot), plus a little jitter.
fn resync_delay(ctx: &Ctx<'_>, valid: &ValidSpec, observed: Option<&ObservedGroup>) -> Duration {
    let remaining = observed
        .and_then(|o| o.time)
        .and_then(|seen_at| {
            let due = next_read_after(seen_at.0, valid);
            Duration::try_from(ctx.now.duration_until(due)).ok()
        })
        .unwrap_or(valid.resync)
        .min(valid.resync);
    remaining.max(MIN_REQUEUE) + READ_JITTER.mul_f64(ctx.jitter.clamp(0.0, 1.0))
}

/// Largest random delay added to a scheduled read. Small on purpose: reads of one space must
/// stay within the listing window to share one `ListChatGroup` walk.
pub const READ_JITTER: Duration = Duration::from_secs(2);

/// When a group last read at `seen_at` is due to be read again: the next read slot of its space.
///
/// Every object of one space (endpoint, custSpaceId, businessNumber) with the same
/// `resyncInterval` reads in the same slots, `phase + k × resyncInterval`, so the whole space
/// costs one shared `ListChatGroup` walk per interval however many objects it holds. The phase is derived from the space's identity, which spreads different spaces
/// over the interval instead of reading them all at once.
pub fn next_read_after(seen_at: jiff::Timestamp, valid: &ValidSpec) -> jiff::Timestamp {
    let interval = i128::try_from(valid.resync.as_nanos())
        .unwrap_or(i128::MAX)
        .max(1);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        valid.endpoint.as_str(),
        valid.key.cust_space_id.as_str(),
        valid.key.business_number.as_str(),
    ] {
        for byte in part.bytes().chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let phase = i128::from(hash) % interval;
    let at = seen_at.as_nanosecond();
    let slot = (at - phase).div_euclid(interval) + 1;
    jiff::Timestamp::from_nanosecond(phase + slot * interval).unwrap_or(jiff::Timestamp::MAX)
}

/// Nothing is due and the last reconcile of this generation succeeded: the same inputs give the
/// same verdict, so the status stays as it is and the next read is scheduled.
fn no_news(ctx: &Ctx<'_>, valid: &ValidSpec) -> Outcome {
    let status = ctx.base();
    Outcome {
        requeue: Requeue::After(resync_delay(ctx, valid, status.observed.as_ref())),
        status,
        write: None,
        failure: None,
        observed_remote: false,
        drift_found: false,
    }
}

fn paused(ctx: &Ctx<'_>) -> Outcome {
    let message = format!(
        "the annotation {PAUSED_ANNOTATION} is \"true\": no CAMS calls are made until it is removed"
    );
    let mut status = ctx.base();
    status.retry = None;
    status.conditions = ctx.conditions(&[
        ConditionSpec::new(READY, ConditionStatus::False, Reason::Paused, &message),
        ConditionSpec::new(SYNCED, ConditionStatus::Unknown, Reason::Paused, &message),
    ]);
    Outcome {
        status,
        requeue: Requeue::AwaitChange,
        write: None,
        failure: None,
        observed_remote: false,
        drift_found: false,
    }
}

/// A recoverable failure still waiting for `status.retry.nextAttemptTime`, or a write waiting
/// for its confirmation read: no call, the status stays as it is, and no failure is reported.
fn waiting(ctx: &Ctx<'_>, wait: Duration) -> Outcome {
    Outcome {
        status: ctx.base(),
        requeue: Requeue::After(wait),
        write: None,
        failure: None,
        observed_remote: false,
        drift_found: false,
    }
}

fn failed(ctx: &Ctx<'_>, valid: Option<&ValidSpec>, failure: Failure, step: Step) -> Outcome {
    let mut status = ctx.base();
    if let Some(observed) = &step.observed {
        status.observed = Some(observed.clone());
    }
    if let Some(link) = &step.invite_link {
        status.invite_link.clone_from(link);
    }
    if let Some(write) = &step.write {
        status.last_request = Some(last_request(write, ctx.now_time, Some(&failure)));
    }
    let (requeue, retry) = retry_after_failure(ctx, valid, &failure);
    status.retry = retry;

    let ready = ready_after_failure(ctx, valid, &failure);
    let mut conditions = vec![
        ready,
        ConditionSpec::new(
            SYNCED,
            ConditionStatus::False,
            failure.reason,
            failure.message.clone(),
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
    if let Some(next) = status.retry.as_ref().and_then(|r| r.next_attempt_time) {
        conditions.push(ConditionSpec::new(
            RECONCILING,
            ConditionStatus::True,
            failure.reason,
            format!("retrying at {}", next.0),
        ));
    }
    status.conditions = ctx.conditions(&conditions);
    Outcome {
        status,
        requeue,
        write: step.write,
        failure: Some(failure),
        observed_remote: step.listed,
        drift_found: step.drift_found,
    }
}

/// When to try again after `failure`, and the retry count to record.
fn retry_after_failure(
    ctx: &Ctx<'_>,
    valid: Option<&ValidSpec>,
    failure: &Failure,
) -> (Requeue, Option<RetryStatus>) {
    match failure.class {
        // A group that is not there yet may be on its way (CAMS creates groups
        // asynchronously), and a conflicting ChatGroup may go: look again at the resync, like
        // any read.
        ErrorClass::Terminal
            if matches!(
                failure.reason,
                Reason::GroupNotFound
                    | Reason::CreationNotFound
                    | Reason::CreationAmbiguous
                    | Reason::CreationConflict
            ) =>
        {
            (
                Requeue::After(with_jitter(
                    valid.map_or(crate::crd::MIN_RESYNC_INTERVAL, |v| v.resync),
                    ctx.jitter,
                )),
                None,
            )
        }
        ErrorClass::Terminal => (Requeue::AwaitChange, None),
        ErrorClass::Recoverable => {
            let previous = if ctx.new_generation() {
                0
            } else {
                ctx.old
                    .and_then(|s| s.retry.as_ref())
                    .map_or(0, |r| r.attempts)
            };
            let attempts = previous.saturating_add(1);
            let delay = backoff(attempts, ctx.jitter, failure.retry_after);
            (
                Requeue::After(delay),
                Some(RetryStatus {
                    attempts,
                    next_attempt_time: Some(time_after(ctx.now, delay)),
                }),
            )
        }
    }
}

/// The `Ready` condition after `failure`. A routine re-read of a group known to be in line
/// that fails transiently does not make the group "not ready": only `Synced` reports the
/// failure.
fn ready_after_failure(
    ctx: &Ctx<'_>,
    valid: Option<&ValidSpec>,
    failure: &Failure,
) -> ConditionSpec {
    let old_ready = find_condition(ctx.old, READY);
    let keep_ready = failure.class == ErrorClass::Recoverable
        && failure.action == ACTION_LIST_CHAT_GROUP
        && !ctx.new_generation()
        && old_ready.is_some_and(|c| c.status == ConditionStatus::True)
        && valid.is_some_and(|v| {
            v.management == ManagementPolicy::Observe
                || ctx.old.and_then(|s| s.applied_hash.as_deref()) == Some(applied_hash(v).as_str())
        });
    match old_ready.and_then(|c| c.reason.known().map(|r| (r, c))) {
        Some((reason, c)) if keep_ready => {
            ConditionSpec::new(READY, ConditionStatus::True, reason, c.message.clone())
        }
        _ => ConditionSpec::new(
            READY,
            ConditionStatus::False,
            failure.reason,
            failure.message.clone(),
        ),
    }
}

/// A successful reconcile's status: `ready` and `synced` conditions, retry cleared, the read
/// recorded.
fn succeeded(
    ctx: &Ctx<'_>,
    step: &Step,
    ready: (ConditionStatus, Reason, String),
    synced: Reason,
    synced_message: String,
) -> ChatGroupStatus {
    let mut status = ctx.base();
    status.retry = None;
    if let Some(observed) = &step.observed {
        status.observed = Some(observed.clone());
    }
    if let Some(link) = &step.invite_link {
        status.invite_link.clone_from(link);
    }
    status.conditions = ctx.conditions(&[
        ConditionSpec::new(READY, ready.0, ready.1, ready.2),
        ConditionSpec::new(SYNCED, ConditionStatus::True, synced, synced_message),
    ]);
    status
}

fn observed_only(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    observed: &ObservedGroup,
    step: Step,
) -> Outcome {
    let group_status = observed.group_status.as_deref().unwrap_or("unknown");
    let message = format!(
        "managementPolicy Observe: the group was read (status {group_status}); nothing is compared or written"
    );
    let mut status = succeeded(
        ctx,
        &step,
        (ConditionStatus::True, Reason::Observed, message.clone()),
        Reason::Observed,
        message,
    );
    status.pending_changes.clear();
    Outcome {
        status,
        requeue: Requeue::After(resync_delay(ctx, valid, Some(observed))),
        write: None,
        failure: None,
        observed_remote: step.listed,
        drift_found: false,
    }
}

fn in_sync(ctx: &Ctx<'_>, valid: &ValidSpec, hash: &str, step: Step) -> Outcome {
    let message = "the group matches the spec".to_owned();
    let mut status = succeeded(
        ctx,
        &step,
        (ConditionStatus::True, Reason::Synced, message.clone()),
        Reason::UpToDate,
        message,
    );
    status.pending_changes.clear();
    if valid.management == ManagementPolicy::Manage {
        status.applied_hash = Some(hash.to_owned());
    }
    if step.observed.is_some() {
        status.last_sync_time = Some(ctx.now_time);
    }
    Outcome {
        requeue: Requeue::After(resync_delay(ctx, valid, status.observed.as_ref())),
        status,
        write: None,
        failure: None,
        observed_remote: step.listed,
        drift_found: false,
    }
}

fn pending(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    changes: Vec<FieldChange>,
    cause: WriteCause,
    step: Step,
) -> Outcome {
    let message = format!(
        "managementPolicy Plan: UpdateChatGroup would set {}{}; see status.pendingChanges",
        describe_fields(&changes),
        if cause == WriteCause::Drift {
            " (the group drifted)"
        } else {
            ""
        }
    );
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
    status.pending_changes = changes.iter().map(FieldChange::to_pending).collect();
    Outcome {
        requeue: Requeue::After(resync_delay(ctx, valid, status.observed.as_ref())),
        status,
        write: None,
        failure: None,
        observed_remote: step.listed,
        drift_found: cause == WriteCause::Drift,
    }
}

fn differs(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    changes: Vec<FieldChange>,
    message: String,
    step: Step,
) -> Outcome {
    let mut status = succeeded(
        ctx,
        &step,
        (ConditionStatus::False, Reason::Drifted, message.clone()),
        Reason::Drifted,
        message,
    );
    status.pending_changes = changes.iter().map(FieldChange::to_pending).collect();
    Outcome {
        requeue: Requeue::After(resync_delay(ctx, valid, status.observed.as_ref())),
        status,
        write: None,
        failure: None,
        observed_remote: step.listed,
        drift_found: step.drift_found,
    }
}

fn transitional(ctx: &Ctx<'_>, valid: &ValidSpec, group_status: &str, step: Step) -> Outcome {
    let recheck = TRANSITIONAL_RECHECK.min(valid.resync);
    let message = format!(
        "CAMS reports the group as {group_status}; it is read again in {}s",
        recheck.as_secs()
    );
    let mut status = succeeded(
        ctx,
        &step,
        (
            ConditionStatus::False,
            Reason::GroupTransitioning,
            message.clone(),
        ),
        Reason::GroupTransitioning,
        message.clone(),
    );
    status
        .conditions
        .extend(ctx.conditions(&[ConditionSpec::new(
            RECONCILING,
            ConditionStatus::True,
            Reason::GroupTransitioning,
            message,
        )]));
    status.pending_changes.clear();
    Outcome {
        status,
        requeue: Requeue::After(with_jitter(recheck, ctx.jitter)),
        write: None,
        failure: None,
        observed_remote: step.listed,
        drift_found: false,
    }
}

fn written(
    ctx: &Ctx<'_>,
    valid: &ValidSpec,
    hash: &str,
    result: Result<UpdateChatGroupResponse, CamsError>,
    fields: Vec<Field>,
    cause: WriteCause,
    mut step: Step,
) -> Outcome {
    match result {
        Ok(response) => {
            let record = WriteRecord {
                action: ACTION_UPDATE_CHAT_GROUP,
                request_id: response.meta.request_id.clone(),
                code: response.meta.code.clone(),
                success: true,
                fields,
                http_status: Some(response.meta.http_status),
                cause,
            };
            let request_id = record.request_id.as_deref().unwrap_or("none");
            let message = format!(
                "UpdateChatGroup set {}{} (RequestId {request_id})",
                describe_field_names(&record.fields),
                if cause == WriteCause::Drift {
                    ", correcting drift"
                } else {
                    ""
                }
            );
            let mut status = succeeded(
                ctx,
                &step,
                (ConditionStatus::True, Reason::Synced, message.clone()),
                Reason::UpdateSucceeded,
                message,
            );
            let mut last = last_request(&record, ctx.now_time, None);
            last.message = response.meta.message.clone();
            last.success = response.meta.success;
            last.result = response.result;
            last.access_denied_detail = response.meta.access_denied_detail.clone();
            status.last_request = Some(last);
            status.applied_hash = Some(hash.to_owned());
            status.last_sync_time = Some(ctx.now_time);
            status.pending_changes.clear();
            Outcome {
                status,
                requeue: Requeue::After(with_jitter(ctx.confirm_after, ctx.jitter)),
                write: Some(record),
                failure: None,
                observed_remote: step.listed,
                drift_found: step.drift_found,
            }
        }
        Err(err) => {
            let failure = Failure::from_cams(&err);
            step.write = Some(WriteRecord {
                action: ACTION_UPDATE_CHAT_GROUP,
                request_id: err.request_id().map(str::to_owned),
                code: err
                    .code()
                    .map_or_else(|| failure_kind(&err).to_owned(), str::to_owned),
                success: false,
                fields,
                http_status: err.http_status(),
                cause,
            });
            failed(ctx, Some(valid), failure, step)
        }
    }
}

fn last_request(record: &WriteRecord, now: Time, failure: Option<&Failure>) -> LastRequest {
    LastRequest {
        action: record.action.to_owned(),
        request_id: record.request_id.clone(),
        code: Some(record.code.clone()),
        message: failure.map(|f| f.message.clone()),
        success: Some(record.success),
        result: None,
        access_denied_detail: None,
        http_status: record.http_status,
        time: now,
    }
}

/// `lastRequest.code` when no CAMS `Code` arrived.
fn failure_kind(err: &CamsError) -> &'static str {
    match err {
        CamsError::Business { .. } | CamsError::Gateway { .. } => "NoCode",
        CamsError::InvalidBody { .. } | CamsError::BodyTooLarge { .. } => "InvalidResponse",
        CamsError::Transport { .. } => "ConnectionFailed",
        CamsError::Timeout { .. } => "Timeout",
        CamsError::InvalidRequest { .. } => "InvalidRequest",
    }
}

fn describe_field_names(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_fields(changes: &[FieldChange]) -> String {
    describe_field_names(&changes.iter().map(|c| c.field).collect::<Vec<_>>())
}

fn describe_changes_with_values(changes: &[FieldChange]) -> String {
    changes
        .iter()
        .map(|c| {
            format!(
                "{} is {} (spec: {:?})",
                c.field.as_str(),
                c.observed
                    .as_deref()
                    .map_or_else(|| "unset".to_owned(), |o| format!("{o:?}")),
                c.desired
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Type of a Kubernetes Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    /// The string Kubernetes expects.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// An Event to publish about the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// Normal or Warning.
    pub type_: EventType,
    /// Reason (from the closed set).
    pub reason: Reason,
    /// What the operator did: `UpdateChatGroup`, `ListChatGroup`, `ValidateSpec`,
    /// `ResolveCredentials` or `Reconcile`.
    pub action: &'static str,
    /// Text for a person (carries the RequestId for CAMS calls).
    pub note: String,
}

/// The Events an outcome deserves, given the status before it:
/// - one per successful `UpdateChatGroup` (Normal, with the RequestId);
/// - one per *change* of failure reason (Warning); a failure that persists across retries is
///   not repeated, whether or not it came from a write;
/// - one when drift is first reported or Plan-mode changes first become pending;
/// - none for a quiet success.
pub fn events(old: Option<&ChatGroupStatus>, outcome: &Outcome) -> Vec<EventSpec> {
    let mut events: Vec<EventSpec> = outcome
        .write
        .as_ref()
        .filter(|write| write.success)
        .map(|write| write_event(write, outcome))
        .into_iter()
        .collect();
    if let Some(group_id) = &outcome.status.group_id
        && old.is_some_and(|o| o.creation.is_some() && o.group_id.is_none())
    {
        events.push(EventSpec {
            type_: EventType::Normal,
            reason: Reason::GroupCreated,
            action: ACTION_ADD_CHAT_GROUP,
            note: format!("the group created for this object is {group_id}"),
        });
    }
    let old_synced = find_condition(old, SYNCED);
    if let Some(failure) = &outcome.failure {
        let same_as_before = old_synced
            .is_some_and(|c| c.status == ConditionStatus::False && c.reason == failure.reason);
        if !same_as_before {
            events.push(EventSpec {
                type_: EventType::Warning,
                reason: failure.reason,
                action: failure.action,
                note: failure.message.clone(),
            });
        }
    }
    let old_ready_reason = find_condition(old, READY).and_then(|c| c.reason.known());
    if let Some(reason @ (Reason::Drifted | Reason::ChangesPending)) = outcome.ready_reason()
        && old_ready_reason != Some(reason)
    {
        let message = find_condition(Some(&outcome.status), READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        events.push(EventSpec {
            type_: if reason == Reason::Drifted {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason,
            action: "Reconcile",
            note: message,
        });
    }
    events
}

/// The `Normal` Event of a successful write.
fn write_event(write: &WriteRecord, outcome: &Outcome) -> EventSpec {
    let request_id = write.request_id.as_deref().unwrap_or("none");
    let drift = if write.cause == WriteCause::Drift {
        ", correcting drift"
    } else {
        ""
    };
    let (reason, note) = match write.action {
        ACTION_ADD_CHAT_GROUP => (
            Reason::Creating,
            format!("AddChatGroup accepted (RequestId {request_id}); looking for the new group"),
        ),
        ACTION_DELETE_CHAT_GROUP => (
            Reason::GroupDeleted,
            format!(
                "DeleteChatGroup deleted group {} (RequestId {request_id})",
                outcome.status.group_id.as_deref().unwrap_or("unknown")
            ),
        ),
        ACTION_ADD_CHAT_GROUP_INVITE_LINK => (
            Reason::UpdateSucceeded,
            format!(
                "AddChatGroupInviteLink gave the group an invite link{drift} (RequestId {request_id})"
            ),
        ),
        ACTION_DELETE_CHAT_GROUP_INVITE_LINK => (
            Reason::UpdateSucceeded,
            format!(
                "DeleteChatGroupInviteLink removed the group's invite link{drift} (RequestId {request_id})"
            ),
        ),
        _ => (
            Reason::UpdateSucceeded,
            format!(
                "UpdateChatGroup set {}{drift} (RequestId {request_id})",
                describe_field_names(&write.fields)
            ),
        ),
    };
    EventSpec {
        type_: EventType::Normal,
        reason,
        action: write.action,
        note,
    }
}

/// The status to write as soon as the operator starts on a generation it has not reported
/// on yet (a new object, or a changed spec), before any CAMS call: `observedGeneration` is that
/// generation and `Reconciling=True`, so kstatus readers (`kubectl wait`, Flux, kpt) see work in
/// progress instead of a finished object. The operator's other conditions stay as they were
/// (they name the generation they describe).
pub fn reconciling_mark(
    old: Option<&ChatGroupStatus>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> ChatGroupStatus {
    let mut status = old.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.conditions.retain(|c| c.type_ != RECONCILING);
    let message = match generation {
        Some(generation) => format!("cams-operator is reconciling generation {generation}"),
        None => "cams-operator is reconciling this object".to_owned(),
    };
    status.conditions.extend(merge_conditions(
        &[],
        &[ConditionSpec::new(
            RECONCILING,
            ConditionStatus::True,
            Reason::Reconciling,
            message,
        )],
        generation,
        Time::from_timestamp(now),
    ));
    status
}

/// Whether the new status must be written: see [`crate::reconcile::status::status_changed`].
pub fn status_changed(old: Option<&ChatGroupStatus>, new: &ChatGroupStatus) -> bool {
    crate::reconcile::status::status_changed(old, new)
}

/// The outcome for an object that is not a ChatGroup at all (it does not parse, for example a
/// field of the wrong type that schema validation could not catch): terminal `InvalidSpec`
/// naming the offending field path, and no CAMS call.
pub fn unparseable(
    generation: Option<i64>,
    old: Option<&ChatGroupStatus>,
    problem: &str,
    now: jiff::Timestamp,
) -> Outcome {
    let ctx = Ctx {
        old,
        generation,
        now,
        now_time: Time::from_timestamp(now),
        jitter: 0.0,
        confirm_after: CONFIRM_DELAY,
        group_id: None,
    };
    let failure = Failure {
        reason: Reason::InvalidSpec,
        class: ErrorClass::Terminal,
        message: format!(
            "the object does not parse as a ChatGroup: {problem}. {}",
            crate::reconcile::status::hint(Reason::InvalidSpec)
        ),
        category: crate::reconcile::validate::CATEGORY_INVALID_SPEC,
        action: "ValidateSpec",
        code: None,
        retry_after: None,
    };
    failed(&ctx, None, failure, Step::default())
}

#[cfg(test)]
mod tests;
