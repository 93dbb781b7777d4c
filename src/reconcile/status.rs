//! Step 6 and 7 building blocks (pure): conditions, failure classification, backoff, and the
//! "did anything change" test that lets the controller skip a status patch.
//!
//! # Conditions (kstatus-compatible)
//! - `Ready`: the group is in line with the spec (in `Observe` mode: it was read).
//! - `Synced`: the last reconcile finished without error.
//! - `Stalled`: present, `True`, only after a terminal failure; omitted otherwise, so
//!   `kubectl wait --for=condition=Ready`, Flux and kpt tell "still working" from "stuck".
//!
//! Every condition carries `observedGeneration`; `lastTransitionTime` is kept when a
//! condition's `status` does not change.
//!
//! # Failure classes
//! A failed CAMS call is classified by the client's error type, the single source of truth
//! ([`CamsError::class`], [`CamsError::reason`], [`CamsError::category`],
//! [`CamsError::retry_after`]); [`Failure`] adds the failures found without a CAMS error
//! (invalid spec, missing credentials, a group missing from its listing) and a hint on what to
//! do. Recoverable failures are retried with [`backoff`]; terminal ones wait for a change of
//! the object's generation or of its Secret.

use std::time::Duration;

use crate::cams::{CamsError, ERROR_CATEGORIES, ErrorClass};
use crate::crd::{ChatGroupStatus, Condition, Reason, Time};
use crate::reconcile::credentials::{CATEGORY_CREDENTIALS_MISSING, CredentialsError};
use crate::reconcile::validate::{CATEGORY_INVALID_SPEC, SpecErrors};

/// Metrics label of a group missing from its space's listing (the same label the client gives
/// `UpdateChatGroup`'s group-not-found code).
pub const CATEGORY_GROUP_NOT_FOUND: &str = "group_not_found";
/// Metrics label of a group missing from a listing cut at the page limit
/// ([`crate::cams::pager::MAX_LIST_PAGES`]).
pub const CATEGORY_LISTING_TRUNCATED: &str = "listing_truncated";
/// Metrics label of a creation whose group did not turn up.
pub const CATEGORY_CREATION_NOT_FOUND: &str = "creation_not_found";
/// Metrics label of a creation after which several candidate groups turned up.
pub const CATEGORY_CREATION_AMBIGUOUS: &str = "creation_ambiguous";
/// Metrics label of a creation refused because an older ChatGroup creates the same group.
pub const CATEGORY_CREATION_CONFLICT: &str = "creation_conflict";
/// Metrics label of a creation record that could not be stored (nothing was called).
pub const CATEGORY_STATUS_WRITE: &str = "status_write";

/// First retry delay after a recoverable failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay after recoverable failures (before jitter).
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Largest fraction added to a delay as jitter (0.1 = up to +10%).
pub const JITTER_FRACTION: f64 = 0.1;

pub use crate::crd::ConditionStatus;

/// A condition to set (without the times and generation filled in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionSpec {
    /// `Ready`, `Synced` or `Stalled` (see [`crate::crd::condition`]).
    pub type_: &'static str,
    pub status: ConditionStatus,
    pub reason: Reason,
    /// Message for a person.
    pub message: String,
}

impl ConditionSpec {
    /// A condition of `type_`.
    pub fn new(
        type_: &'static str,
        status: ConditionStatus,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        ConditionSpec {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// The new condition list: exactly `desired`, in that order, each with `generation`, keeping
/// the old `lastTransitionTime` of a condition whose status did not change.
pub fn merge_conditions(
    old: &[Condition],
    desired: &[ConditionSpec],
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|want| {
            let status = want.status;
            let last_transition_time = old
                .iter()
                .find(|c| c.type_ == want.type_ && c.status == status)
                .map_or(now, |c| c.last_transition_time);
            Condition {
                type_: want.type_.to_owned(),
                status,
                reason: want.reason.into(),
                message: want.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The condition of `type_` in `status`, if any.
pub fn find_condition<'a>(
    status: Option<&'a ChatGroupStatus>,
    type_: &str,
) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

/// A failed reconcile: what went wrong, whether retrying helps, and how to say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Condition and Event reason.
    pub reason: Reason,
    /// Recoverable (retried with backoff) or terminal (waits for a change).
    pub class: ErrorClass,
    /// For a person: what happened (with CAMS `Code`, `Message` and `RequestId` when there was
    /// a call) and what to do. Never contains a secret.
    pub message: String,
    /// Bounded label for metrics: one of [`Failure::categories`].
    pub category: &'static str,
    /// The operation that failed: `ValidateSpec`, `ResolveCredentials`, `ListChatGroup` or
    /// `UpdateChatGroup`.
    pub action: &'static str,
    /// The CAMS `Code`, when a response carried one.
    pub code: Option<String>,
    /// Shortest delay before a retry, when the service asked for one (throttling `TimeLeft`)
    /// or the reason has a floor.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// Every value [`Failure::category`] can take: the client's [`ERROR_CATEGORIES`] plus the
    /// failures found without a CAMS call.
    pub fn categories() -> Vec<&'static str> {
        let mut all = ERROR_CATEGORIES.to_vec();
        for own in [
            CATEGORY_INVALID_SPEC,
            CATEGORY_CREDENTIALS_MISSING,
            CATEGORY_GROUP_NOT_FOUND,
            CATEGORY_LISTING_TRUNCATED,
            CATEGORY_CREATION_NOT_FOUND,
            CATEGORY_CREATION_AMBIGUOUS,
            CATEGORY_CREATION_CONFLICT,
            CATEGORY_STATUS_WRITE,
        ] {
            if !all.contains(&own) {
                all.push(own);
            }
        }
        all
    }

    /// The spec breaks rules: terminal, no CAMS call.
    pub fn invalid_spec(errors: &SpecErrors) -> Self {
        Failure {
            reason: Reason::InvalidSpec,
            class: ErrorClass::Terminal,
            message: format!("{errors}. {}", hint(Reason::InvalidSpec)),
            category: CATEGORY_INVALID_SPEC,
            action: "ValidateSpec",
            code: None,
            retry_after: None,
        }
    }

    /// No usable credentials: terminal until a Secret changes, no CAMS call (recoverable
    /// when the operator's own identity failed for a passing reason, such as STS throttling).
    pub fn credentials(err: &CredentialsError) -> Self {
        let reason = err.reason();
        Failure {
            reason,
            class: if err.is_retryable() {
                ErrorClass::Recoverable
            } else {
                ErrorClass::Terminal
            },
            message: format!("{err}. {}", hint(reason)),
            category: err.category(),
            action: "ResolveCredentials",
            code: None,
            retry_after: None,
        }
    }

    /// The group is not in its space's listing: terminal, like the client's classification of
    /// the group-not-found code (the engine still looks again at each resync).
    pub fn group_not_found(what: String) -> Self {
        Failure {
            reason: Reason::GroupNotFound,
            class: ErrorClass::Terminal,
            message: format!("{what}. {}", hint(Reason::GroupNotFound)),
            category: CATEGORY_GROUP_NOT_FOUND,
            action: crate::cams::ACTION_LIST_CHAT_GROUP,
            code: None,
            retry_after: None,
        }
    }

    /// The group is not among the groups a listing cut at the page limit showed, so whether it
    /// exists is not known: reported like a missing group (looked for again at each resync),
    /// with a label of its own so that a space too large to list is told apart.
    pub fn listing_truncated(what: String) -> Self {
        Failure {
            category: CATEGORY_LISTING_TRUNCATED,
            ..Failure::group_not_found(what)
        }
    }

    /// A creation that cannot go on without the user: terminal. `reason` is one of
    /// [`Reason::CreationNotFound`], [`Reason::CreationAmbiguous`] and
    /// [`Reason::CreationConflict`].
    pub fn creation(reason: Reason, what: String) -> Self {
        let category = match reason {
            Reason::CreationAmbiguous => CATEGORY_CREATION_AMBIGUOUS,
            Reason::CreationConflict => CATEGORY_CREATION_CONFLICT,
            _ => CATEGORY_CREATION_NOT_FOUND,
        };
        Failure {
            reason,
            class: ErrorClass::Terminal,
            message: format!("{what}. {}", hint(reason)),
            category,
            action: crate::cams::ACTION_ADD_CHAT_GROUP,
            code: None,
            retry_after: None,
        }
    }

    /// The record of a creation could not be stored, so `AddChatGroup` was not called:
    /// recoverable.
    pub fn mark_not_stored(detail: &str) -> Self {
        Failure {
            reason: Reason::Creating,
            class: ErrorClass::Recoverable,
            message: format!(
                "the record of the creation could not be stored in status ({detail}); AddChatGroup is called only once it is, so nothing was created. Retried with backoff."
            ),
            category: CATEGORY_STATUS_WRITE,
            action: crate::cams::ACTION_ADD_CHAT_GROUP,
            code: None,
            retry_after: None,
        }
    }

    /// The failure of a CAMS call, classified by the error itself.
    pub fn from_cams(err: &CamsError) -> Self {
        let reason = err.reason();
        let mut message = err.to_string();
        if let Some(detail) = err.access_denied_detail() {
            message.push_str(&format!(" (AccessDeniedDetail: {detail})"));
        }
        message.push_str(". ");
        message.push_str(hint(reason));
        Failure {
            reason,
            class: err.class(),
            message,
            category: err.category(),
            action: err.action(),
            code: err.code().map(str::to_owned),
            retry_after: err.retry_after(),
        }
    }

    /// True for terminal failures (`Stalled=True`).
    pub fn is_terminal(&self) -> bool {
        self.class == ErrorClass::Terminal
    }
}

/// What the user can do about a reason, appended to failure messages.
pub fn hint(reason: Reason) -> &'static str {
    match reason {
        Reason::InvalidSpec => "Fix the named fields; nothing is sent to CAMS until then.",
        Reason::CredentialsMissing => {
            "Create or fix the Secret; the object is reconciled again when it changes."
        }
        Reason::CredentialsInvalid => {
            "Check the AccessKey ID and secret (and STS token) in the Secret; retried when the Secret changes."
        }
        Reason::AccessDenied => {
            "Grant the RAM action of the failed call to the AccessKey's identity (cams:ListChatGroup and cams:UpdateChatGroup always; cams:AddChatGroup, cams:DeleteChatGroup, cams:AddChatGroupInviteLink or cams:DeleteChatGroupInviteLink when the spec creates, deletes or manages invite links), and make sure the account is allowlisted for CAMS group APIs; retried when the spec or Secret changes."
        }
        Reason::Throttled => "CAMS throttled the request; retried after the delay it asked for.",
        Reason::CamsUnavailable => "Retried with exponential backoff.",
        Reason::ClockSkew => {
            "The operator's clock differs from CAMS's by more than 15 minutes; fix the node's time synchronisation. Retried with backoff."
        }
        Reason::CamsRejected => {
            "CAMS rejected the request; check the Code and Message, fix the spec, and the object is retried when it changes."
        }
        Reason::EndpointInvalid => {
            "Check spec.endpoint / spec.region (the endpoint must serve CAMS over HTTPS); retried when the spec changes."
        }
        Reason::GroupNotFound => {
            "Check spec.custSpaceId, spec.businessNumber and spec.groupId; the group is looked for again at every resync in case it is still being created."
        }
        Reason::CreationNotFound => {
            "The operator never creates a group twice on its own. Check the group in CAMS: to manage a group that exists, set spec.groupId; to create again, set the annotation cams.chatapp.io/create-again to a new value."
        }
        Reason::CreationAmbiguous => {
            "Set spec.groupId to the group this object manages (the others are left alone)."
        }
        Reason::CreationConflict => {
            "Give this object a different subject, or set spec.groupId to adopt an existing group; it is retried when the spec changes or the other object goes."
        }
        Reason::Synced
        | Reason::UpdateSucceeded
        | Reason::UpToDate
        | Reason::Observed
        | Reason::Reconciling
        | Reason::GroupTransitioning
        | Reason::ChangesPending
        | Reason::Drifted
        | Reason::Paused
        | Reason::Creating
        | Reason::GroupCreated
        | Reason::Deleting
        | Reason::GroupDeleted => "",
    }
}

/// The delay before retry number `attempts` (1 for the first retry): 1 s doubling up to
/// 5 min, plus up to 10% jitter (`jitter` in `[0, 1)`), and never less than `floor` (the
/// service's retry-after).
pub fn backoff(attempts: u32, jitter: f64, floor: Option<Duration>) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    let base = BACKOFF_BASE
        .saturating_mul(1u32 << exponent)
        .min(BACKOFF_MAX);
    let delay = with_jitter(base, jitter);
    floor.map_or(delay, |f| delay.max(f))
}

/// `delay` stretched by up to [`JITTER_FRACTION`] (`jitter` in `[0, 1)`; clamped).
pub fn with_jitter(delay: Duration, jitter: f64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    delay.mul_f64(1.0 + JITTER_FRACTION * jitter)
}

/// `now + delay` as a status time (saturating at the far future instead of failing).
pub fn time_after(now: jiff::Timestamp, delay: Duration) -> Time {
    let later = jiff::SignedDuration::try_from(delay)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    Time::from_timestamp(later)
}

/// Whether `new` says anything `old` does not, so the controller must patch `/status`.
///
/// Only the operator's own fields count: conditions of other types belong to other tools
/// (a policy engine adding its own condition), which the operator neither writes nor removes.
/// Timestamps alone never justify a write either: condition `lastTransitionTime`s (kept
/// anyway while a condition's status does not change), `lastSyncTime` and `observed.time`. A
/// routine resync that finds nothing new therefore writes nothing; the controller remembers
/// such reads in memory so they still schedule the next one (after a restart, the first read
/// of each space is simply made again).
pub fn status_changed(old: Option<&ChatGroupStatus>, new: &ChatGroupStatus) -> bool {
    let Some(old) = old else {
        return true;
    };
    let strip = |s: &ChatGroupStatus| {
        let mut s = s.clone();
        s.conditions
            .retain(|c| crate::crd::condition::OWN.contains(&c.type_.as_str()));
        for c in &mut s.conditions {
            c.last_transition_time = Time::default();
        }
        s.last_sync_time = None;
        if let Some(observed) = &mut s.observed {
            observed.time = None;
        }
        s
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ObservedGroup;
    use crate::crd::condition::{READY, STALLED, SYNCED};

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + second).expect("valid time"))
    }

    use crate::cams::test_errors::business;

    fn gateway(http_status: u16, code: &str) -> CamsError {
        crate::cams::test_errors::gateway(http_status, Some(code))
    }

    #[test]
    fn conditions_of_other_types_never_make_a_status_change() {
        let ours = ChatGroupStatus {
            observed_generation: Some(1),
            conditions: merge_conditions(
                &[],
                &[ConditionSpec::new(
                    READY,
                    ConditionStatus::True,
                    Reason::Synced,
                    "ok",
                )],
                Some(1),
                at(0),
            ),
            ..ChatGroupStatus::default()
        };
        let mut with_foreign = ours.clone();
        with_foreign.conditions.push(crate::crd::Condition {
            type_: "PolicyChecked".into(),
            status: ConditionStatus::True,
            reason: crate::crd::ConditionReason::Other("Compliant".into()),
            message: String::new(),
            observed_generation: None,
            last_transition_time: at(5),
        });
        assert!(!status_changed(Some(&with_foreign), &ours));
        let mut ready_false = ours.clone();
        ready_false.conditions[0].status = ConditionStatus::False;
        assert!(status_changed(Some(&with_foreign), &ready_false));
    }

    #[test]
    fn conditions_keep_transition_time_when_status_is_unchanged() {
        let first = merge_conditions(
            &[],
            &[
                ConditionSpec::new(READY, ConditionStatus::False, Reason::Throttled, "a"),
                ConditionSpec::new(SYNCED, ConditionStatus::False, Reason::Throttled, "a"),
            ],
            Some(1),
            at(0),
        );
        assert!(first.iter().all(|c| c.last_transition_time == at(0)));
        let second = merge_conditions(
            &first,
            &[
                ConditionSpec::new(READY, ConditionStatus::False, Reason::CamsUnavailable, "b"),
                ConditionSpec::new(SYNCED, ConditionStatus::True, Reason::UpToDate, "c"),
            ],
            Some(2),
            at(10),
        );
        assert_eq!(second[0].last_transition_time, at(0), "Ready stayed False");
        assert_eq!(second[0].reason, Reason::CamsUnavailable);
        assert_eq!(second[1].last_transition_time, at(10), "Synced flipped");
        assert!(second.iter().all(|c| c.observed_generation == Some(2)));
        // A condition not desired any more is dropped.
        let third = merge_conditions(
            &[
                first[0].clone(),
                Condition {
                    type_: STALLED.to_owned(),
                    ..first[0].clone()
                },
            ],
            &[ConditionSpec::new(
                READY,
                ConditionStatus::True,
                Reason::Synced,
                "",
            )],
            Some(2),
            at(20),
        );
        assert_eq!(third.len(), 1);
        assert_eq!(third[0].status, ConditionStatus::True);
    }

    #[test]
    fn failure_message_carries_code_message_request_id_and_a_hint() {
        let f = Failure::from_cams(&gateway(403, "Forbidden.RAM"));
        for part in [
            "Forbidden.RAM",
            "message from CAMS",
            "REQ-1",
            "cams:UpdateChatGroup",
        ] {
            assert!(f.message.contains(part), "{}", f.message);
        }
        assert_eq!(f.action, "UpdateChatGroup");
        assert_eq!(f.category, "access_denied");
        assert!(f.is_terminal());
    }

    #[test]
    fn throttling_keeps_retry_after() {
        let mut err = gateway(503, "Throttling.User");
        if let CamsError::Gateway { retry_after, .. } = &mut err {
            *retry_after = Some(Duration::from_millis(2000));
        }
        let f = Failure::from_cams(&err);
        assert_eq!(f.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(f.class, ErrorClass::Recoverable);
        let f = Failure::from_cams(&business(crate::cams::CODE_GROUP_NOT_FOUND));
        assert_eq!(f.reason, Reason::GroupNotFound);
        assert_eq!(f.category, CATEGORY_GROUP_NOT_FOUND);
    }

    /// A failure of the operator's own identity is labelled by what went wrong at STS, as the
    /// same failure at CAMS would be: throttling is not a missing credential.
    #[test]
    fn operator_identity_failures_are_labelled_by_what_went_wrong() {
        let identity = |reason, retryable| {
            Failure::credentials(&CredentialsError::OperatorIdentity {
                detail: "STS AssumeRoleWithOIDC failed".to_owned(),
                retryable,
                reason,
            })
        };
        for (reason, retryable, category) in [
            (Reason::Throttled, true, "throttled"),
            (Reason::CamsUnavailable, true, "unavailable"),
            (Reason::CredentialsInvalid, false, "credentials_invalid"),
            (
                Reason::CredentialsMissing,
                false,
                CATEGORY_CREDENTIALS_MISSING,
            ),
        ] {
            let failure = identity(reason, retryable);
            assert_eq!(failure.category, category, "{reason:?}");
            assert_eq!(failure.reason, reason);
            assert!(Failure::categories().contains(&failure.category));
        }
    }

    #[test]
    fn every_category_is_in_the_bounded_set() {
        let all = Failure::categories();
        let spec_errors = SpecErrors { errors: Vec::new() };
        for failure in [
            Failure::invalid_spec(&spec_errors),
            Failure::credentials(&CredentialsError::NoneFound {
                default_secret: crate::crd::DEFAULT_SECRET_NAME,
            }),
            Failure::group_not_found("group G not listed".to_owned()),
            Failure::from_cams(&gateway(403, "Forbidden.RAM")),
            Failure::from_cams(&business("Some.UnknownCode")),
        ] {
            assert!(all.contains(&failure.category), "{}", failure.category);
        }
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn backoff_doubles_caps_and_honours_the_floor() {
        let secs: Vec<u64> = (1..=12).map(|n| backoff(n, 0.0, None).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX, 0.0, None), BACKOFF_MAX);
        let jittered = backoff(3, 0.999, None);
        assert!(jittered > Duration::from_secs(4) && jittered < Duration::from_secs_f64(4.4));
        assert_eq!(
            backoff(1, 0.0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(backoff(1, f64::NAN, None), Duration::from_secs(1));
    }

    #[test]
    fn status_changed_ignores_timestamps_only() {
        let status = ChatGroupStatus {
            observed_generation: Some(1),
            conditions: merge_conditions(
                &[],
                &[ConditionSpec::new(
                    READY,
                    ConditionStatus::True,
                    Reason::Synced,
                    "ok",
                )],
                Some(1),
                at(0),
            ),
            ..ChatGroupStatus::default()
        };
        assert!(status_changed(None, &status));
        assert!(!status_changed(Some(&status), &status.clone()));
        let mut later = status.clone();
        later.conditions[0].last_transition_time = at(5);
        assert!(!status_changed(Some(&status), &later));
        let mut read = status.clone();
        read.last_sync_time = Some(at(5));
        read.observed = Some(ObservedGroup {
            time: Some(at(5)),
            ..ObservedGroup::default()
        });
        let mut reread = read.clone();
        reread.last_sync_time = Some(at(9));
        reread.observed = Some(ObservedGroup {
            time: Some(at(9)),
            ..ObservedGroup::default()
        });
        assert!(
            !status_changed(Some(&read), &reread),
            "a read that found nothing new"
        );
        let mut news = reread.clone();
        news.observed = Some(ObservedGroup {
            subject: Some("edited".to_owned()),
            time: Some(at(9)),
            ..ObservedGroup::default()
        });
        assert!(
            status_changed(Some(&read), &news),
            "a read that found a change"
        );
        let mut other = status.clone();
        other.conditions[0].message = "different".to_owned();
        assert!(status_changed(Some(&status), &other));
    }

    #[test]
    fn time_after_saturates() {
        let now = jiff::Timestamp::from_second(0).expect("epoch");
        assert_eq!(time_after(now, Duration::from_secs(5)).0.as_second(), 5);
        assert_eq!(
            time_after(now, Duration::MAX).0.as_second(),
            jiff::Timestamp::MAX.as_second()
        );
    }
}
