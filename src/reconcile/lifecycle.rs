//! The group's lifecycle around the reconcile core (pure): creating the group when the spec
//! asks for it, without ever creating it twice, and deleting it when the object goes.
//!
//! # Creation
//! CAMS's `AddChatGroup` answers with a `UniqueCode` but not the new group's ID, and creates the
//! group asynchronously (it is listed `CREATING`, later `ACTIVE`). A naive operator creates a
//! duplicate after every crash, timeout or lost answer. This one:
//! 1. refuses to create when an older ChatGroup creates a group with the same subject in the
//!    same space and number ([`Peers::earlier_creator`]): both would find each other's group;
//! 2. lists the space and notes the groups that already have the subject
//!    ([`CreationStatus::preexisting`]), then records the creation in status
//!    ([`MarkWriter`]) *before* calling `AddChatGroup`. From then on the object's status says
//!    that a group may exist;
//! 3. after the call (answered or not) looks for the new group: a group of the space and number
//!    with the subject, not among the pre-existing ones and claimed by no other ChatGroup
//!    ([`Peers::claimed`]). Exactly one: it is recorded in `status.groupId`. None yet: it looks
//!    again with backoff up to [`CREATION_DEADLINE`], then stops with `CreationNotFound`.
//!    Several: `CreationAmbiguous`, and `spec.groupId` must say which.
//!
//! An `AddChatGroup` refused by CAMS (an answer with an error code) created nothing: the record
//! is dropped and the creation is retried like any failed call. Any other outcome (a timeout, a
//! dropped connection, an unreadable answer, the operator stopped after the call) may have
//! created the group, so the operator only looks for it. It calls `AddChatGroup` again only
//! when a person asks, with a new value of the annotation [`CREATE_AGAIN_ANNOTATION`].
//!
//! # Deletion
//! With `deletionPolicy: Delete` in `Manage` mode the object carries the finalizer
//! [`DELETE_GROUP_FINALIZER`]; see [`finalizer_wanted`] and [`deletion_plan`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::cams::{CamsError, Endpoint, GroupKey};
use crate::crd::{
    CREATE_AGAIN_ANNOTATION, ChatGroup, ChatGroupSpec, CreationStatus, DELETE_GROUP_FINALIZER,
    DeletionPolicy, ManagementPolicy,
};
use crate::reconcile::observe::ListedGroup;

/// Delay before looking for a group just created (CAMS creates it asynchronously), and the
/// first delay of the search's backoff.
pub const CREATION_RECHECK: Duration = Duration::from_secs(10);
/// Longest delay between two searches for a created group.
pub const MAX_CREATION_RECHECK: Duration = Duration::from_secs(60);
/// How long after `AddChatGroup` the new group is looked for before `CreationNotFound`.
pub const CREATION_DEADLINE: Duration = Duration::from_secs(600);
/// Most groups that may already have the subject of a group to create: each is remembered in
/// status so that it is never taken for the new group.
pub const MAX_PREEXISTING: usize = 50;

/// What the other ChatGroups of the cluster claim, as far as creating a group is concerned.
pub trait Peers: Sync {
    /// Whether another ChatGroup manages the group `key` at `endpoint` (through its
    /// `spec.groupId` or `status.groupId`).
    fn claimed(&self, endpoint: &Endpoint, key: &GroupKey) -> bool;
    /// An older ChatGroup that creates (or created) a group with `subject` in `key`'s space and
    /// number at `endpoint`, described for the message (`namespace/name` when it is in the same
    /// namespace, only "a ChatGroup in another namespace" otherwise).
    fn earlier_creator(&self, endpoint: &Endpoint, key: &GroupKey, subject: &str)
    -> Option<String>;
}

/// No other ChatGroups (`cams-operator reconcile`, the demo, tests).
pub struct NoPeers;

impl Peers for NoPeers {
    fn claimed(&self, _: &Endpoint, _: &GroupKey) -> bool {
        false
    }
    fn earlier_creator(&self, _: &Endpoint, _: &GroupKey, _: &str) -> Option<String> {
        None
    }
}

/// A boxed future of a [`MarkWriter`].
pub type MarkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Persists the status that records a creation before `AddChatGroup` is called. The call is
/// made only after the status is stored, so that a restart finds the record and looks for the
/// group instead of creating another.
pub trait MarkWriter: Sync {
    /// Stores `status` as the object's status; an error means nothing is called.
    fn write_mark<'a>(&'a self, status: &'a crate::crd::ChatGroupStatus) -> MarkFuture<'a>;
}

/// Stores nothing: for callers without a cluster (`cams-operator reconcile`, the demo), where
/// the process itself is the only record.
pub struct NoMarks;

impl MarkWriter for NoMarks {
    fn write_mark<'a>(&'a self, _: &'a crate::crd::ChatGroupStatus) -> MarkFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// Whether a failed `AddChatGroup` may still have created the group: anything but an answer
/// CAMS gave with an error code (a timeout, a dropped connection, an unreadable answer).
pub fn outcome_unknown(err: &CamsError) -> bool {
    !matches!(
        err,
        CamsError::Business { .. } | CamsError::Gateway { .. } | CamsError::InvalidRequest { .. }
    )
}

/// The value of the create-again annotation when it asks for a creation `creation` has not
/// answered yet.
pub fn create_again_requested(object: &ChatGroup, creation: &CreationStatus) -> Option<String> {
    let value = object
        .metadata
        .annotations
        .as_ref()?
        .get(CREATE_AGAIN_ANNOTATION)?
        .trim();
    (!value.is_empty() && creation.create_again.as_deref() != Some(value)).then(|| value.to_owned())
}

/// What a search for a created group found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Search {
    /// Exactly one candidate: the new group.
    Found(String),
    /// None yet, and the deadline has not passed.
    NotYet,
    /// None, and the deadline has passed.
    NotFound,
    /// Several candidates, sorted.
    Ambiguous(Vec<String>),
}

/// Judges the groups with the creation's subject listed after the call: `claimed` says whether
/// another ChatGroup manages a group; `waited` is the time since the creation started.
pub fn judge_search(
    listed: &[ListedGroup],
    creation: &CreationStatus,
    claimed: impl Fn(&str) -> bool,
    waited: Duration,
) -> Search {
    let mut candidates: Vec<String> = listed
        .iter()
        .map(ListedGroup::group_id)
        .filter(|id| !creation.preexisting.iter().any(|known| known == id))
        .filter(|id| !claimed(id))
        .map(str::to_owned)
        .collect();
    candidates.sort();
    candidates.dedup();
    match candidates.len() {
        0 if waited >= CREATION_DEADLINE => Search::NotFound,
        0 => Search::NotYet,
        1 => Search::Found(candidates.remove(0)),
        _ => Search::Ambiguous(candidates),
    }
}

/// The delay before the next search, `waited` after the creation started: half the time
/// waited so far, from [`CREATION_RECHECK`] up to [`MAX_CREATION_RECHECK`].
pub fn search_delay(waited: Duration) -> Duration {
    (waited / 2).clamp(CREATION_RECHECK, MAX_CREATION_RECHECK)
}

/// Whether the object should carry [`DELETE_GROUP_FINALIZER`]: only when deleting it is to
/// delete the group (`deletionPolicy: Delete` in `Manage` mode). Any other spec lets the object
/// go without a call, even while it is being deleted.
pub fn finalizer_wanted(spec: &ChatGroupSpec) -> bool {
    spec.deletion_policy == DeletionPolicy::Delete
        && spec.management_policy == ManagementPolicy::Manage
}

/// Whether the object carries [`DELETE_GROUP_FINALIZER`].
pub fn has_finalizer(object: &ChatGroup) -> bool {
    object
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|all| all.iter().any(|f| f == DELETE_GROUP_FINALIZER))
}

/// What to do for an object being deleted that carries the finalizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeletionPlan {
    /// Let the object go without a call: the spec no longer deletes the group.
    Release,
    /// Keep the object while it is paused: nothing is called until the pause ends (or the
    /// policy becomes `Orphan`).
    HoldPaused,
    /// Delete the group `group_id`.
    Delete(String),
    /// A creation was recorded but its group is not known yet: look for it first.
    Search,
    /// No group was ever created or adopted: nothing to delete.
    Nothing,
}

/// Decides what deleting the object means for the group.
pub fn deletion_plan(object: &ChatGroup) -> DeletionPlan {
    if !finalizer_wanted(&object.spec) {
        return DeletionPlan::Release;
    }
    if object.is_paused() {
        return DeletionPlan::HoldPaused;
    }
    let status = object.status.as_ref();
    let known = object
        .spec
        .group_id
        .clone()
        .or_else(|| status.and_then(|s| s.group_id.clone()));
    match known {
        Some(group_id) => DeletionPlan::Delete(group_id),
        None if status.is_some_and(|s| s.creation.is_some()) => DeletionPlan::Search,
        None => DeletionPlan::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cams::{ChatGroupItem, ErrorClass};
    use crate::crd::{ChatGroupStatus, CreationPolicy, PAUSED_ANNOTATION, Time};

    fn listed(id: &str, subject: &str) -> ListedGroup {
        ListedGroup::new(&ChatGroupItem {
            group_id: Some(id.to_owned()),
            subject: Some(subject.to_owned()),
            ..ChatGroupItem::default()
        })
        .expect("listed")
    }

    fn creation(preexisting: &[&str]) -> CreationStatus {
        CreationStatus {
            started_time: Time::default(),
            subject: "Support".into(),
            preexisting: preexisting.iter().map(|s| (*s).to_owned()).collect(),
            ..CreationStatus::default()
        }
    }

    #[test]
    fn the_new_group_is_the_one_candidate_neither_preexisting_nor_claimed() {
        let groups = [
            listed("OLD", "Support"),
            listed("NEW", "Support"),
            listed("X", "Support"),
        ];
        let found = judge_search(&groups, &creation(&["OLD"]), |id| id == "X", Duration::ZERO);
        assert_eq!(found, Search::Found("NEW".into()));
    }

    #[test]
    fn several_candidates_are_ambiguous_and_none_waits_until_the_deadline() {
        let groups = [listed("B", "Support"), listed("A", "Support")];
        let none = |_: &str| false;
        assert_eq!(
            judge_search(&groups, &creation(&[]), none, Duration::ZERO),
            Search::Ambiguous(vec!["A".into(), "B".into()])
        );
        assert_eq!(
            judge_search(&[], &creation(&[]), none, CREATION_DEADLINE / 2),
            Search::NotYet
        );
        assert_eq!(
            judge_search(&[], &creation(&[]), none, CREATION_DEADLINE),
            Search::NotFound
        );
    }

    #[test]
    fn only_answers_with_an_error_code_prove_nothing_was_created() {
        let refused = CamsError::Business {
            action: crate::cams::ACTION_ADD_CHAT_GROUP,
            http_status: 200,
            code: "InvalidParameter".into(),
            message: None,
            request_id: None,
            success: Some(false),
            access_denied_detail: None,
        };
        assert!(!outcome_unknown(&refused));
        let timeout = CamsError::Timeout {
            action: crate::cams::ACTION_ADD_CHAT_GROUP,
            endpoint: "https://cams.ap-southeast-1.aliyuncs.com/".into(),
            timeout: Duration::from_secs(10),
        };
        assert!(outcome_unknown(&timeout));
        assert_eq!(timeout.class(), ErrorClass::Recoverable);
    }

    #[test]
    fn the_search_backs_off_to_a_minute() {
        assert_eq!(search_delay(Duration::ZERO), CREATION_RECHECK);
        assert_eq!(
            search_delay(Duration::from_secs(50)),
            Duration::from_secs(25)
        );
        assert_eq!(search_delay(CREATION_DEADLINE), MAX_CREATION_RECHECK);
    }

    #[test]
    fn a_new_annotation_value_asks_for_one_more_creation() {
        let mut object = ChatGroup::test("g");
        let mut done = creation(&[]);
        assert_eq!(create_again_requested(&object, &done), None);
        object
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(CREATE_AGAIN_ANNOTATION.into(), "2026-11-30".into());
        assert_eq!(
            create_again_requested(&object, &done),
            Some("2026-11-30".into())
        );
        done.create_again = Some("2026-11-30".into());
        assert_eq!(create_again_requested(&object, &done), None);
    }

    #[test]
    fn only_delete_in_manage_mode_holds_the_object_and_a_pause_holds_the_call() {
        let mut object = ChatGroup::test("g");
        assert!(!finalizer_wanted(&object.spec));
        assert_eq!(deletion_plan(&object), DeletionPlan::Release);
        object.spec.deletion_policy = DeletionPolicy::Delete;
        assert!(finalizer_wanted(&object.spec));
        assert_eq!(
            deletion_plan(&object),
            DeletionPlan::Delete(object.spec.group_id.clone().expect("set"))
        );
        object.spec.management_policy = ManagementPolicy::Observe;
        assert_eq!(deletion_plan(&object), DeletionPlan::Release);
        object.spec.management_policy = ManagementPolicy::Manage;
        object
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(PAUSED_ANNOTATION.into(), "true".into());
        assert_eq!(deletion_plan(&object), DeletionPlan::HoldPaused);
    }

    #[test]
    fn a_created_group_is_deleted_by_its_recorded_id_and_a_pending_creation_is_searched() {
        let mut object = ChatGroup::test("g");
        object.spec.group_id = None;
        object.spec.creation_policy = CreationPolicy::Create;
        object.spec.deletion_policy = DeletionPolicy::Delete;
        assert_eq!(deletion_plan(&object), DeletionPlan::Nothing);
        object.status = Some(ChatGroupStatus {
            creation: Some(creation(&[])),
            ..ChatGroupStatus::default()
        });
        assert_eq!(deletion_plan(&object), DeletionPlan::Search);
        object.status = Some(ChatGroupStatus {
            group_id: Some("MADE".into()),
            ..ChatGroupStatus::default()
        });
        assert_eq!(deletion_plan(&object), DeletionPlan::Delete("MADE".into()));
    }
}
