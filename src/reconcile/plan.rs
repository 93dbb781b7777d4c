//! Step 4 of the pipeline: decide whether CAMS must be written, and what (pure).
//!
//! # The rule
//! A write is needed when
//! - the spec asks for something new: the desired fields' hash ([`applied_hash`]) differs from
//!   `status.appliedHash`, and the group (as last observed) differs in at least one field the
//!   spec sets. When the group already matches, nothing is written and the hash is recorded as
//!   applied (adoption of a group that is already right costs no write); or
//! - the spec did not change but the group drifted (someone edited it in WhatsApp) and
//!   `driftPolicy` is `Enforce`. Under `Report` the differences are returned as
//!   [`Plan::Drifted`]; under `Ignore` they are not looked at.
//!
//! Only the fields that differ are sent (the three keys and the channel always are); fields the
//! spec does not set, and empty strings, are never sent.
//!
//! # Transitional groups
//! A group whose CAMS status ends in `ING` (`CREATING`, `UPDATING`, `DELETING`) is changing on
//! the service side: its fields prove nothing, so the plan is [`Plan::Transitional`] ("look
//! again later"), never drift and never a write.
//!
//! # Pictures
//! CAMS may store a re-hosted copy of the picture and report a different URL than the one sent
//! (the UpdateChatGroup documentation says the picture is re-hosted). Comparing URLs would then find "drift" after every write and
//! rewrite the picture forever. So the picture is compared by the applied hash only: it is sent
//! when the spec changes (or was never applied) and the group does not already report that URL;
//! a different URL reported by CAMS later is not treated as drift. To force a re-upload, point
//! `profilePictureFile` at a new URL. (A consequence: when another field changes, the picture is
//! sent along with it unless CAMS reports exactly the spec's URL.)
//!
//! # After the operator's own write
//! The first observation after a successful `UpdateChatGroup` confirms it. If a field the
//! operator just wrote still differs (and the group is not transitional), CAMS accepted the
//! value but stores it differently (for example normalised). Rewriting at once could loop, so
//! the plan is [`Plan::Unconfirmed`]: reported, and enforced again no sooner than the next
//! resync. This bounds writes to one per resync interval even in that case.

use sha2::{Digest, Sha256};

use crate::cams::UpdateChatGroupRequest;
use crate::crd::{ChatGroupStatus, DriftPolicy, InviteLinkPolicy, ObservedGroup, PendingChange};
use crate::reconcile::validate::ValidSpec;

/// Version tag hashed into [`applied_hash`]; bump it only together with a changelog note
/// (a new tag makes every object look changed once, but causes no write where the group
/// already matches).
const APPLIED_HASH_VERSION: &str = "cams-operator/applied-hash/v1";

/// A group field the operator manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Subject,
    Description,
    ProfilePictureFile,
    /// The invite link: written with its own actions, not `UpdateChatGroup`.
    InviteLink,
}

impl Field {
    /// The spec field name, as written to `status.pendingChanges[].field`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Subject => "subject",
            Field::Description => "description",
            Field::ProfilePictureFile => "profilePictureFile",
            Field::InviteLink => "inviteLink",
        }
    }
}

/// One field that differs between the spec and the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub field: Field,
    /// Value reported by CAMS (`None`: not reported, or not observed yet).
    pub observed: Option<String>,
    /// Value in the spec.
    pub desired: String,
}

impl FieldChange {
    /// As a `status.pendingChanges` entry.
    pub fn to_pending(&self) -> PendingChange {
        PendingChange {
            field: self.field.as_str().to_owned(),
            observed: self.observed.clone(),
            desired: Some(self.desired.clone()),
        }
    }
}

/// Why a write is planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteCause {
    /// The spec (or the target) changed since the last apply.
    SpecChanged,
    /// The spec did not change; the group drifted and `driftPolicy` is `Enforce`.
    Drift,
}

/// What to do about the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to write. `adopt` is true when the spec changed but the group already matches:
    /// the new hash is recorded as applied without a write.
    InSync {
        /// Record the new hash as applied.
        adopt: bool,
    },
    /// Call `UpdateChatGroup` with `request`.
    Update {
        /// The request: keys, channel, and only the fields in `changes`.
        request: UpdateChatGroupRequest,
        /// The fields sent, with the observed values they replace.
        changes: Vec<FieldChange>,
        /// Why.
        cause: WriteCause,
    },
    /// The group drifted and `driftPolicy` is `Report`: the differences, nothing written.
    Drifted {
        /// The differences.
        changes: Vec<FieldChange>,
    },
    /// After the operator's own successful write, CAMS still reports other values for fields
    /// it wrote: reported, enforced again at the next resync at the earliest.
    Unconfirmed {
        /// The fields CAMS reports differently.
        changes: Vec<FieldChange>,
    },
    /// The group is in a transitional CAMS status: look again later.
    Transitional {
        /// The status CAMS reported, e.g. `UPDATING`.
        group_status: String,
    },
}

impl Plan {
    /// True when the plan calls `UpdateChatGroup`.
    pub fn writes(&self) -> bool {
        matches!(self, Plan::Update { .. })
    }
}

/// `sha256:<hex>` over the target (endpoint, the three keys, channel) and the desired fields,
/// each set/unset marker and value in a fixed order, encoded as one JSON array prefixed by a
/// version tag. Stable across releases and platforms; independent of the credentials (a
/// rotated key is not a reason to write) and of the policies and resync interval.
pub fn applied_hash(valid: &ValidSpec) -> String {
    let mut material = serde_json::json!([
        APPLIED_HASH_VERSION,
        valid.endpoint.as_str(),
        valid.key.cust_space_id,
        valid.key.business_number,
        valid.key.group_id,
        valid.channel.as_str(),
        valid.subject,
        valid.description,
        valid.profile_picture_file,
    ]);
    // Only a managed link is hashed, so that the hash of every object written before links
    // could be managed stays what it was.
    if let (Some(policy), Some(items)) =
        (link_policy_word(valid.invite_link), material.as_array_mut())
    {
        items.push(serde_json::json!(policy));
    }
    let digest = Sha256::digest(material.to_string().as_bytes());
    format!("sha256:{}", hex::encode(digest))
}

fn link_policy_word(policy: InviteLinkPolicy) -> Option<&'static str> {
    match policy {
        InviteLinkPolicy::Unmanaged => None,
        InviteLinkPolicy::Enabled => Some("inviteLink:Enabled"),
        InviteLinkPolicy::Disabled => Some("inviteLink:Disabled"),
    }
}

/// What the invite link needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// `inviteLink: Enabled` and the group has no link: `AddChatGroupInviteLink`.
    Add,
    /// `inviteLink: Disabled` and the group has a link: `DeleteChatGroupInviteLink`.
    Remove,
}

impl LinkChange {
    /// As a field change: the link read, and what the spec wants in words.
    pub fn to_change(self, observed: Option<&str>) -> FieldChange {
        FieldChange {
            field: Field::InviteLink,
            observed: observed.map(str::to_owned),
            desired: match self {
                LinkChange::Add => "a link".to_owned(),
                LinkChange::Remove => "no link".to_owned(),
            },
        }
    }
}

/// Whether the group's invite link `link` (as read) needs a change under `policy`.
pub fn invite_link_change(policy: InviteLinkPolicy, link: Option<&str>) -> Option<LinkChange> {
    let has_link = link.is_some_and(|l| !l.is_empty());
    match policy {
        InviteLinkPolicy::Enabled if !has_link => Some(LinkChange::Add),
        InviteLinkPolicy::Disabled if has_link => Some(LinkChange::Remove),
        _ => None,
    }
}

/// True when a CAMS group status is transitional (ends in `ING`, case-insensitively).
pub fn is_transitional(group_status: Option<&str>) -> bool {
    group_status.is_some_and(|s| s.to_ascii_uppercase().ends_with("ING"))
}

/// True when the last successful `UpdateChatGroup` happened at or after the previous
/// observation: the observation now being planned on is the first one after that write.
pub fn confirming_own_write(status: Option<&ChatGroupStatus>) -> bool {
    let Some(status) = status else {
        return false;
    };
    let Some(last) = &status.last_request else {
        return false;
    };
    // Only `UpdateChatGroup` writes the fields a read confirms; a creation is found by its
    // own search, which never uses a listing older than the creation.
    let succeeded = last.code.as_deref() == Some(crate::cams::CODE_OK)
        && last.action == crate::cams::ACTION_UPDATE_CHAT_GROUP;
    let observed_at = status.observed.as_ref().and_then(|o| o.time);
    succeeded && observed_at.is_none_or(|seen| last.time >= seen)
}

/// Decides what to do. `observed` is the group as just read, or as last read (from status)
/// when no read was due; `None` when it has never been read. `status` is the object's current
/// (previous) status.
pub fn plan(
    valid: &ValidSpec,
    observed: Option<&ObservedGroup>,
    status: Option<&ChatGroupStatus>,
) -> Plan {
    if let Some(o) = observed
        && is_transitional(o.group_status.as_deref())
    {
        return Plan::Transitional {
            group_status: o.group_status.clone().unwrap_or_default(),
        };
    }
    let hash = applied_hash(valid);
    let spec_changed = status.and_then(|s| s.applied_hash.as_deref()) != Some(hash.as_str());
    let observed_of = |field: Field| -> Option<String> {
        let o = observed?;
        let value = match field {
            Field::Subject => &o.subject,
            Field::Description => &o.description,
            Field::ProfilePictureFile => &o.profile_picture_file,
            Field::InviteLink => return None,
        };
        value.clone().filter(|v| !v.is_empty())
    };
    let desired = [
        (Field::Subject, &valid.subject),
        (Field::Description, &valid.description),
        (Field::ProfilePictureFile, &valid.profile_picture_file),
    ];
    let differing = |include_picture: bool| -> Vec<FieldChange> {
        desired
            .iter()
            .filter(|(field, _)| include_picture || *field != Field::ProfilePictureFile)
            .filter_map(|(field, want)| {
                let want = want.as_deref().filter(|w| !w.is_empty())?;
                let seen = observed_of(*field);
                // Without an observation every set field counts as differing.
                let differs = observed.is_none() || seen.as_deref() != Some(want);
                differs.then(|| FieldChange {
                    field: *field,
                    observed: seen,
                    desired: want.to_owned(),
                })
            })
            .collect()
    };

    if spec_changed {
        let changes = differing(true);
        return if changes.is_empty() {
            Plan::InSync { adopt: true }
        } else {
            update(valid, changes, WriteCause::SpecChanged)
        };
    }
    if observed.is_none() || valid.drift == DriftPolicy::Ignore {
        return Plan::InSync { adopt: false };
    }
    // The picture is never compared for drift (see the module docs).
    let changes = differing(false);
    if changes.is_empty() {
        return Plan::InSync { adopt: false };
    }
    if confirming_own_write(status) {
        return Plan::Unconfirmed { changes };
    }
    match valid.drift {
        DriftPolicy::Enforce => update(valid, changes, WriteCause::Drift),
        DriftPolicy::Report | DriftPolicy::Ignore => Plan::Drifted { changes },
    }
}

fn update(valid: &ValidSpec, changes: Vec<FieldChange>, cause: WriteCause) -> Plan {
    let value_of = |field: Field| {
        changes
            .iter()
            .find(|c| c.field == field)
            .map(|c| c.desired.clone())
    };
    let request = UpdateChatGroupRequest {
        key: valid.key.clone(),
        channel_type: Some(valid.channel.as_str().to_owned()),
        subject: value_of(Field::Subject),
        description: value_of(Field::Description),
        profile_picture_file: value_of(Field::ProfilePictureFile),
    };
    Plan::Update {
        request,
        changes,
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ChatGroup, LastRequest, Time};
    use crate::reconcile::validate::validate;

    fn valid(object: &ChatGroup) -> ValidSpec {
        validate(&object.spec).expect("valid spec")
    }

    fn full() -> ChatGroup {
        ChatGroup::test("support")
            .with_subject("Support team")
            .with_description("Questions about orders")
            .with_picture("https://cdn.example.com/support.jpg")
    }

    fn observed(subject: &str, description: &str, picture: &str) -> ObservedGroup {
        let opt = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        ObservedGroup {
            subject: opt(subject),
            description: opt(description),
            profile_picture_file: opt(picture),
            group_status: Some("ACTIVE".to_owned()),
            time: Some(at(100)),
        }
    }

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + second).expect("valid time"))
    }

    fn applied(valid: &ValidSpec) -> ChatGroupStatus {
        ChatGroupStatus {
            applied_hash: Some(applied_hash(valid)),
            observed: Some(observed("x", "", "")),
            ..ChatGroupStatus::default()
        }
    }

    fn fields(plan: &Plan) -> Vec<Field> {
        let changes = match plan {
            Plan::Update { changes, .. }
            | Plan::Drifted { changes }
            | Plan::Unconfirmed { changes } => changes,
            Plan::InSync { .. } | Plan::Transitional { .. } => return Vec::new(),
        };
        changes.iter().map(|c| c.field).collect()
    }

    #[test]
    fn hash_is_stable_and_documented_shape() {
        let v = valid(&full());
        let h = applied_hash(&v);
        assert!(h.starts_with("sha256:"), "{h}");
        assert_eq!(h.len(), "sha256:".len() + 64);
        assert_eq!(h, applied_hash(&valid(&full())));
        // Golden value, computed independently as SHA-256 of the compact JSON array
        // ["cams-operator/applied-hash/v1","https://cams.ap-southeast-1.aliyuncs.com/",
        //  "cams-test","8613800001234","EA303SUPPORT","WHATSAPP","Support team",null,null]:
        // the hash must not change between releases, or every object would be re-planned.
        assert_eq!(
            applied_hash(&valid(
                &ChatGroup::test("support").with_subject("Support team")
            )),
            "sha256:c2a4326aac9d4064e29a5d354f1fa08a6d765f51b2d09f2fb3bca100ee036bce"
        );
    }

    #[test]
    fn hash_covers_fields_and_target_but_not_policies() {
        let base = applied_hash(&valid(&full()));
        for changed in [
            full().with_subject("Other"),
            full().with_description("Other"),
            full().with_picture("https://cdn.example.com/other.jpg"),
            full().with_group_id("EA303OTHER"),
            full().with_cust_space_id("cams-other"),
            full().with_business_number("8613800009999"),
            full().with_endpoint("http://127.0.0.1:8787/"),
        ] {
            assert_ne!(applied_hash(&valid(&changed)), base, "{:?}", changed.spec);
        }
        for same in [
            full().with_drift(DriftPolicy::Report),
            full().with_management(crate::crd::ManagementPolicy::Plan),
            full().with_resync("2h"),
            full().with_secret_ref("other"),
        ] {
            assert_eq!(applied_hash(&valid(&same)), base, "{:?}", same.spec);
        }
        // Unset and empty are the same desired state.
        assert_eq!(
            applied_hash(&valid(&ChatGroup::test("a"))),
            applied_hash(&valid(&ChatGroup::test("a").with_subject("")))
        );
        // A value moving between fields changes the hash.
        assert_ne!(
            applied_hash(&valid(&ChatGroup::test("a").with_subject("x"))),
            applied_hash(&valid(&ChatGroup::test("a").with_description("x")))
        );
    }

    #[test]
    fn new_spec_writes_only_differing_set_fields() {
        let v = valid(&full());
        let o = observed("Old name", "Questions about orders", "");
        let p = plan(&v, Some(&o), None);
        let Plan::Update {
            request,
            changes,
            cause,
        } = &p
        else {
            panic!("expected an update, got {p:?}");
        };
        assert_eq!(*cause, WriteCause::SpecChanged);
        assert_eq!(fields(&p), [Field::Subject, Field::ProfilePictureFile]);
        assert_eq!(changes[0].observed.as_deref(), Some("Old name"));
        assert_eq!(request.subject.as_deref(), Some("Support team"));
        assert_eq!(request.description, None, "matching field not sent");
        assert_eq!(
            request.profile_picture_file.as_deref(),
            Some("https://cdn.example.com/support.jpg")
        );
        assert_eq!(request.channel_type.as_deref(), Some("WHATSAPP"));
        assert_eq!(request.key, v.key);
    }

    #[test]
    fn unset_and_empty_fields_are_never_sent() {
        let v = valid(
            &ChatGroup::test("a")
                .with_subject("Team")
                .with_description(""),
        );
        let p = plan(&v, None, None);
        let Plan::Update { request, .. } = &p else {
            panic!("expected an update, got {p:?}");
        };
        assert_eq!(request.subject.as_deref(), Some("Team"));
        assert_eq!(request.description, None);
        assert_eq!(request.profile_picture_file, None);

        // A spec that sets nothing has nothing to write, observed or not.
        let v = valid(&ChatGroup::test("a").with_subject(""));
        assert_eq!(plan(&v, None, None), Plan::InSync { adopt: true });
        assert_eq!(
            plan(&v, Some(&observed("x", "y", "")), None),
            Plan::InSync { adopt: true }
        );
    }

    #[test]
    fn matching_group_is_adopted_without_a_write() {
        let v = valid(&full());
        let o = observed(
            "Support team",
            "Questions about orders",
            "https://cdn.example.com/support.jpg",
        );
        assert_eq!(plan(&v, Some(&o), None), Plan::InSync { adopt: true });
        let s = applied(&v);
        assert_eq!(plan(&v, Some(&o), Some(&s)), Plan::InSync { adopt: false });
    }

    #[test]
    fn drift_under_each_policy() {
        let drifted = observed(
            "Renamed in WhatsApp",
            "Questions about orders",
            "https://cdn.example.com/support.jpg",
        );
        let enforce = valid(&full());
        let s = applied(&enforce);
        let p = plan(&enforce, Some(&drifted), Some(&s));
        assert!(
            matches!(&p, Plan::Update { cause: WriteCause::Drift, request, .. } if request.subject.as_deref() == Some("Support team") && request.description.is_none()),
            "{p:?}"
        );

        let report = valid(&full().with_drift(DriftPolicy::Report));
        let p = plan(&report, Some(&drifted), Some(&s));
        assert_eq!(fields(&p), [Field::Subject]);
        assert!(matches!(p, Plan::Drifted { .. }), "{p:?}");

        let ignore = valid(&full().with_drift(DriftPolicy::Ignore));
        assert_eq!(
            plan(&ignore, Some(&drifted), Some(&s)),
            Plan::InSync { adopt: false }
        );
    }

    #[test]
    fn spec_change_is_written_whatever_the_drift_policy() {
        for drift in [
            DriftPolicy::Enforce,
            DriftPolicy::Report,
            DriftPolicy::Ignore,
        ] {
            let old = valid(&full().with_drift(drift));
            let s = applied(&old);
            let new = valid(&full().with_drift(drift).with_subject("New name"));
            let o = observed(
                "Support team",
                "Questions about orders",
                "https://cdn.example.com/support.jpg",
            );
            let p = plan(&new, Some(&o), Some(&s));
            assert!(
                matches!(
                    &p,
                    Plan::Update {
                        cause: WriteCause::SpecChanged,
                        ..
                    }
                ),
                "{drift:?}: {p:?}"
            );
            assert_eq!(fields(&p), [Field::Subject]);
        }
    }

    #[test]
    fn transitional_status_means_look_again_never_drift() {
        let v = valid(&full());
        for status in ["UPDATING", "CREATING", "DELETING", "updating"] {
            let mut o = observed("Other", "", "");
            o.group_status = Some(status.to_owned());
            assert_eq!(
                plan(&v, Some(&o), Some(&applied(&v))),
                Plan::Transitional {
                    group_status: status.to_owned()
                }
            );
            assert_eq!(
                plan(&v, Some(&o), None),
                Plan::Transitional {
                    group_status: status.to_owned()
                },
                "not even for a new spec"
            );
        }
        for status in ["ACTIVE", "INACTIVE", "SUSPENDED"] {
            assert!(!is_transitional(Some(status)));
        }
    }

    #[test]
    fn rehosted_picture_is_not_drift() {
        let v = valid(&full());
        let s = applied(&v);
        let o = observed(
            "Support team",
            "Questions about orders",
            "https://oss.alicdn.example/rehosted/abc.jpg",
        );
        assert_eq!(plan(&v, Some(&o), Some(&s)), Plan::InSync { adopt: false });
        // ...but a changed picture in the spec is sent.
        let changed = valid(&full().with_picture("https://cdn.example.com/new.jpg"));
        assert_eq!(
            fields(&plan(&changed, Some(&o), Some(&s))),
            [Field::ProfilePictureFile]
        );
    }

    #[test]
    fn mismatch_right_after_own_write_is_not_rewritten() {
        let v = valid(&full());
        let mut s = applied(&v);
        s.last_request = Some(LastRequest {
            action: "UpdateChatGroup".to_owned(),
            code: Some("OK".to_owned()),
            time: at(100),
            ..LastRequest::default()
        });
        // status.observed.time == at(100): the write came after (or in the same second as) it.
        let normalised = observed(
            "Support  team",
            "Questions about orders",
            "https://cdn.example.com/support.jpg",
        );
        let p = plan(&v, Some(&normalised), Some(&s));
        assert!(matches!(p, Plan::Unconfirmed { .. }), "{p:?}");
        assert_eq!(fields(&p), [Field::Subject]);

        // Once a later observation exists, a difference is drift again.
        if let Some(o) = s.observed.as_mut() {
            o.time = Some(at(200));
        }
        assert!(plan(&v, Some(&normalised), Some(&s)).writes());

        // A failed write does not count as one to confirm.
        if let (Some(o), Some(l)) = (s.observed.as_mut(), s.last_request.as_mut()) {
            o.time = Some(at(100));
            l.code = Some("Throttling.User".to_owned());
        }
        assert!(plan(&v, Some(&normalised), Some(&s)).writes());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn text() -> impl Strategy<Value = Option<String>> {
            prop_oneof![
                Just(None),
                Just(Some(String::new())),
                "[a-zA-Z0-9 ,.!é中]{1,40}".prop_map(Some),
            ]
        }

        fn picture() -> impl Strategy<Value = Option<String>> {
            prop_oneof![
                Just(None),
                Just(Some(String::new())),
                "[a-z0-9]{1,12}".prop_map(|p| Some(format!("https://cdn.example.com/{p}.jpg"))),
            ]
        }

        fn drift() -> impl Strategy<Value = DriftPolicy> {
            prop_oneof![
                Just(DriftPolicy::Enforce),
                Just(DriftPolicy::Report),
                Just(DriftPolicy::Ignore),
            ]
        }

        /// What CAMS stores after an update: the sent fields, the picture possibly re-hosted.
        fn apply(
            before: &ObservedGroup,
            request: &UpdateChatGroupRequest,
            rehost: bool,
        ) -> ObservedGroup {
            let mut after = before.clone();
            if let Some(v) = &request.subject {
                after.subject = Some(v.clone());
            }
            if let Some(v) = &request.description {
                after.description = Some(v.clone());
            }
            if let Some(v) = &request.profile_picture_file {
                after.profile_picture_file = Some(if rehost {
                    "https://oss.example/rehosted.jpg".to_owned()
                } else {
                    v.clone()
                });
            }
            after
        }

        proptest! {
            /// After a successful apply, planning again (right after the write, and at any
            /// later resync) yields no write, whatever the spec and the group's prior state.
            #[test]
            fn no_write_after_a_successful_apply(
                subject in text(),
                description in text(),
                picture_url in picture(),
                policy in drift(),
                before_subject in text(),
                before_description in text(),
                before_picture in picture(),
                rehost in any::<bool>(),
                with_previous_hash in any::<bool>(),
            ) {
                let mut object = ChatGroup::test("prop").with_drift(policy);
                object.spec.subject = subject;
                object.spec.description = description;
                object.spec.profile_picture_file = picture_url;
                let v = valid(&object);
                let before = ObservedGroup {
                    subject: before_subject,
                    description: before_description,
                    profile_picture_file: before_picture,
                    group_status: Some("ACTIVE".to_owned()),
                    time: Some(at(0)),
                };
                let previous = with_previous_hash.then(|| ChatGroupStatus {
                    applied_hash: Some("sha256:previous".to_owned()),
                    observed: Some(before.clone()),
                    ..ChatGroupStatus::default()
                });
                let first = plan(&v, Some(&before), previous.as_ref());
                let (after, last_request) = match &first {
                    Plan::Update { request, .. } => (
                        apply(&before, request, rehost),
                        Some(LastRequest {
                            action: "UpdateChatGroup".to_owned(),
                            code: Some("OK".to_owned()),
                            time: at(0),
                            ..LastRequest::default()
                        }),
                    ),
                    Plan::InSync { adopt: true } => (before.clone(), None),
                    other => return Err(TestCaseError::fail(format!("first plan {other:?}"))),
                };
                let mut status = ChatGroupStatus {
                    applied_hash: Some(applied_hash(&v)),
                    observed: Some(before.clone()),
                    last_request,
                    ..ChatGroupStatus::default()
                };
                let mut confirmed = after.clone();
                confirmed.time = Some(at(10));
                let second = plan(&v, Some(&confirmed), Some(&status));
                prop_assert_eq!(&second, &Plan::InSync { adopt: false });
                status.observed = Some(confirmed.clone());
                let mut resync = confirmed;
                resync.time = Some(at(3610));
                let third = plan(&v, Some(&resync), Some(&status));
                prop_assert_eq!(&third, &Plan::InSync { adopt: false });
            }

            /// Plans never carry an empty string or a field the spec does not set.
            #[test]
            fn only_set_non_empty_fields_are_sent(
                subject in text(),
                description in text(),
                picture_url in picture(),
                seen_subject in text(),
            ) {
                let mut object = ChatGroup::test("prop");
                object.spec.subject = subject.clone();
                object.spec.description = description.clone();
                object.spec.profile_picture_file = picture_url.clone();
                let v = valid(&object);
                let seen = ObservedGroup { subject: seen_subject, ..ObservedGroup::default() };
                if let Plan::Update { request, .. } = plan(&v, Some(&seen), None) {
                    for (sent, spec) in [
                        (&request.subject, &subject),
                        (&request.description, &description),
                        (&request.profile_picture_file, &picture_url),
                    ] {
                        if let Some(sent) = sent {
                            prop_assert!(!sent.is_empty());
                            prop_assert_eq!(Some(sent), spec.as_ref());
                        }
                    }
                }
            }
        }
    }
}
