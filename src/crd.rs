//! The `ChatGroup` custom resource (`cams.chatapp.io/v1alpha1`) and the project's fixed names.
//!
//! Every spec field's rustdoc becomes `kubectl explain` text, so it is written for the person
//! applying the manifest. Schema rules (lengths, patterns, CEL immutability) live next to each
//! field; `crds/chatgroup.yaml` is generated from these types by `cams-operator crd`.

use std::fmt;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the resource.
pub const API_GROUP: &str = "cams.chatapp.io";
/// API version of the resource.
pub const API_VERSION: &str = "v1alpha1";
/// Kind of the resource.
pub const KIND: &str = "ChatGroup";
/// Plural name of the resource.
pub const PLURAL: &str = "chatgroups";
/// Field manager for every server-side apply, and the reporter of every Event.
pub const FIELD_MANAGER: &str = "cams-operator";
/// Annotation that stops all CAMS calls for one object while it is `"true"`.
pub const PAUSED_ANNOTATION: &str = "cams.chatapp.io/paused";
/// Annotation that asks for another `AddChatGroup` after a creation whose group never turned
/// up: the operator creates again once for each new value (any text, for example a date).
pub const CREATE_AGAIN_ANNOTATION: &str = "cams.chatapp.io/create-again";
/// Finalizer of objects with `deletionPolicy: Delete`: the group is deleted before the object
/// goes.
pub const DELETE_GROUP_FINALIZER: &str = "cams.chatapp.io/delete-group";
/// Name of the Secret used when `spec.credentials.secretRef` is not set.
pub const DEFAULT_SECRET_NAME: &str = "cams-credentials";
/// Default Secret key holding the AccessKey ID.
pub const DEFAULT_ACCESS_KEY_ID_KEY: &str = "accessKeyId";
/// Default Secret key holding the AccessKey secret.
pub const DEFAULT_ACCESS_KEY_SECRET_KEY: &str = "accessKeySecret";
/// Default Secret key holding an optional STS security token.
pub const DEFAULT_SECURITY_TOKEN_KEY: &str = "securityToken";
/// Default Alibaba Cloud region of the CAMS endpoint.
pub const DEFAULT_REGION: &str = "ap-southeast-1";
/// Default interval between two readings of the remote group.
pub const DEFAULT_RESYNC_INTERVAL: &str = "1h";
/// Shortest accepted `resyncInterval`.
pub const MIN_RESYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest accepted `subject`, in characters (WhatsApp's limit).
pub const MAX_SUBJECT_CHARS: usize = 128;
/// Longest accepted `description`, in characters (WhatsApp's limit).
pub const MAX_DESCRIPTION_CHARS: usize = 2048;

/// Desired state of one CAMS WhatsApp group.
///
/// By default the group must already exist in CAMS (`creationPolicy: Adopt`) and outlives this
/// object (`deletionPolicy: Orphan`): the operator keeps its subject, description and picture in
/// line. With `creationPolicy: Create` it creates the group, and with `deletionPolicy: Delete`
/// it deletes the group when this object is deleted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cams.chatapp.io",
    version = "v1alpha1",
    kind = "ChatGroup",
    plural = "chatgroups",
    shortname = "cg",
    category = "cams",
    namespaced,
    status = "ChatGroupStatus",
    derive = "PartialEq",
    doc = "A CAMS WhatsApp group kept in line with this spec by cams-operator.",
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"SYNCED","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"GROUP","type":"string","jsonPath":".status.groupId"}"#,
    printcolumn = r#"{"name":"REQUEST-ID","type":"string","jsonPath":".status.lastRequest.requestId"}"#,
    printcolumn = r#"{"name":"CODE","type":"string","jsonPath":".status.lastRequest.code"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!has(oldSelf.groupId) || (has(self.groupId) && self.groupId == oldSelf.groupId)").message("groupId cannot change or be removed once set"),
    validation = kube::core::Rule::new("has(self.groupId) || self.creationPolicy == 'Create'").message("groupId is required unless creationPolicy is Create"),
    validation = kube::core::Rule::new("has(self.groupId) || has(self.subject)").message("subject is required when the operator creates the group (creationPolicy Create without groupId)"),
)]
pub struct ChatGroupSpec {
    /// ID of the CAMS customer space (ISV sub-account) that owns the business number, for
    /// example `cams-8f2k1x`. Required and immutable.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^\S+$"))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("custSpaceId is immutable"))]
    pub cust_space_id: String,

    /// WhatsApp business phone number that owns the group, in digits only with the country
    /// code and no `+`, for example `8613800001234`. Required and immutable.
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[0-9]+$"))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("businessNumber is immutable"))]
    pub business_number: String,

    /// ID of the WhatsApp group in CAMS, for example `EA303XXXXX`. Required with
    /// `creationPolicy: Adopt` (the group must exist). With `creationPolicy: Create` leave it
    /// unset: the operator creates the group and records its ID in `status.groupId`. It may be
    /// set later, to adopt an existing group; once set it cannot change or be removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^\S+$"))]
    pub group_id: Option<String>,

    /// Messaging channel of the group. CAMS accepts only `WHATSAPP`.
    #[serde(default)]
    pub channel_type: ChannelType,

    /// Group subject (name) shown to members, 1 to 128 characters. Sent only when set; leave
    /// it unset to keep whatever the group has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub subject: Option<String>,

    /// Group description, at most 2048 characters. Sent only when set and non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub description: Option<String>,

    /// HTTPS URL of the group picture: a square JPEG of at most 5 MB and at least 192x192
    /// pixels. Sent only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https://"))]
    pub profile_picture_file: Option<String>,

    /// Where the Alibaba Cloud AccessKey comes from. Without it the operator uses the Secret
    /// `cams-credentials` in this namespace, then its own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsSpec>,

    /// Alibaba Cloud region of the CAMS endpoint `https://cams.<region>.aliyuncs.com`.
    #[serde(default = "default_region")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9-]+$"))]
    pub region: String,

    /// Full CAMS endpoint URL overriding `region`, for a private endpoint or the simulator,
    /// for example `https://cams-vpc.ap-southeast-1.aliyuncs.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,

    /// What the operator may do: `Manage` writes the desired fields, `Plan` only reports the
    /// changes it would make (in `status.pendingChanges`), `Observe` only reads the group.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// Where the group comes from: `Adopt` (the default) manages the existing group
    /// `groupId`; `Create` has the operator create the group when `groupId` is unset (only in
    /// `Manage` mode; `subject` is then required). A creation is never repeated on its own:
    /// see `docs/status.md` for what to do when a created group does not turn up.
    #[serde(default)]
    pub creation_policy: CreationPolicy,

    /// What happens to the group when this object is deleted: `Orphan` (the default) leaves it
    /// alone; `Delete` deletes it in CAMS first (in `Manage` mode only; a deleted group cannot
    /// be recovered). Switching back to `Orphan`, even while the object is being deleted, lets
    /// the object go without touching the group.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// The group's invite link, the only way to join a WhatsApp group: `Unmanaged` (the
    /// default) leaves it as it is; `Enabled` gives a group without a link one; `Disabled`
    /// removes the link. The link is reported in `status.inviteLink`.
    #[serde(default)]
    pub invite_link: InviteLinkPolicy,

    /// What to do when the remote group differs from this spec although nothing here changed
    /// (someone edited it in WhatsApp): `Enforce` writes it back, `Report` records it in
    /// status, `Ignore` does neither.
    #[serde(default)]
    pub drift_policy: DriftPolicy,

    /// How often the remote group is read again to detect drift, as a duration such as `30m`,
    /// `1h` or `12h`. At least `1m`.
    #[serde(default = "default_resync_interval")]
    #[schemars(
        length(min = 2, max = 64),
        regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
    )]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('1m')").message("resyncInterval must be at least 1m"))]
    pub resync_interval: String,
}

fn default_region() -> String {
    DEFAULT_REGION.to_owned()
}

fn default_resync_interval() -> String {
    DEFAULT_RESYNC_INTERVAL.to_owned()
}

/// Messaging channel of a group.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelType {
    /// WhatsApp, the only channel CAMS groups support.
    #[default]
    #[serde(rename = "WHATSAPP")]
    Whatsapp,
}

impl ChannelType {
    /// The value CAMS expects in `ChannelType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Whatsapp => "WHATSAPP",
        }
    }
}

/// What the operator may do with the remote group.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ManagementPolicy {
    /// Read the group and write the desired fields when they differ.
    #[default]
    Manage,
    /// Read the group and report only.
    Observe,
    /// Read the group and list the writes `Manage` would make, without making them.
    Plan,
}

/// What to do about drift: a remote group that differs from the spec although the spec did not
/// change.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DriftPolicy {
    /// Write the desired fields back.
    #[default]
    Enforce,
    /// Record the differences in status and leave the group alone.
    Report,
    /// Neither write nor report.
    Ignore,
}

/// Where the group comes from.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CreationPolicy {
    /// The group exists: manage `groupId`.
    #[default]
    Adopt,
    /// Create the group when `groupId` is unset.
    Create,
}

/// What happens to the group when the object is deleted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeletionPolicy {
    /// Leave the group alone.
    #[default]
    Orphan,
    /// Delete the group in CAMS before the object goes.
    Delete,
}

/// What the operator does about the group's invite link.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InviteLinkPolicy {
    /// Leave the link as it is.
    #[default]
    Unmanaged,
    /// The group has a link: one is added when it has none.
    Enabled,
    /// The group has no link: an existing one is removed.
    Disabled,
}

/// Where the Alibaba Cloud AccessKey comes from.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSpec {
    /// Secret in this namespace holding the AccessKey. Secrets in other namespaces cannot be
    /// used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Key in the Secret holding the AccessKey ID. Default `accessKeyId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub access_key_id_key: Option<String>,
    /// Key in the Secret holding the AccessKey secret. Default `accessKeySecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub access_key_secret_key: Option<String>,
    /// Key in the Secret holding an optional STS security token. Default `securityToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub security_token_key: Option<String>,
}

/// Reference to a Secret in the ChatGroup's own namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
pub struct SecretRef {
    /// Name of the Secret (a DNS subdomain name, for example `cams-credentials`).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
}

/// What the operator last saw and did. Written only by the operator, through server-side apply.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChatGroupStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The group this object manages: `spec.groupId`, or the group the operator created for
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The group's invite link, as CAMS last reported it. Anyone with the link can join the
    /// group: treat it like a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_link: Option<String>,
    /// A creation in progress: set before `AddChatGroup` is called, cleared once the new group
    /// is found and recorded in `groupId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation: Option<CreationStatus>,
    /// kstatus-compatible conditions: `Ready`, `Synced`, `Stalled` for terminal failures, and
    /// `Reconciling` while work is in progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Outcome of the last CAMS write (`UpdateChatGroup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<LastRequest>,
    /// Hash of the fields and target last applied successfully (`sha256:<hex>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_hash: Option<String>,
    /// When the remote group was last found in line with the spec, or last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// The remote group as last read with `ListChatGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedGroup>,
    /// Writes the operator would make (`Plan`) or drift it found and left alone (`Report`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_changes: Vec<PendingChange>,
    /// Retry state after a recoverable failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStatus>,
}

/// A creation in progress. Its presence means `AddChatGroup` may have been called: the operator
/// then looks for the new group and never calls again on its own.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreationStatus {
    /// When the operator decided to create, written before the call.
    pub started_time: Time,
    /// The subject the group was created with: the new group is found by it.
    pub subject: String,
    /// Groups that already had this subject before the call: never taken for the new group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preexisting: Vec<String>,
    /// `RequestId` of the `AddChatGroup` call, once answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `UniqueCode` CAMS returned for the creation, once answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_code: Option<String>,
    /// The value of the `cams.chatapp.io/create-again` annotation this creation answered, if
    /// any: a new value asks for another creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_again: Option<String>,
}

/// `status` of a condition, as `metav1.Condition` allows it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet (for example while paused).
    Unknown,
}

impl ConditionStatus {
    /// The string written to the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition in the `metav1.Condition` shape.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type: `Ready`, `Synced`, `Stalled` or `Reconciling` (other tools may add
    /// types of their own).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// One CamelCase word from a closed set; see docs/status.md.
    pub reason: ConditionReason,
    /// What happened and what to do, for a person.
    #[serde(default)]
    pub message: String,
    /// The generation this condition describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed.
    pub last_transition_time: Time,
}

/// Outcome of the last CAMS write.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastRequest {
    /// CAMS action, `UpdateChatGroup`.
    pub action: String,
    /// RequestId returned by CAMS; quote it to Alibaba Cloud support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// CAMS `Code` (`OK` on success), or the failure class when no response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// CAMS `Message`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// CAMS `Success`, as reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// CAMS `Result` ("number of affected rows"), when returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<i64>,
    /// CAMS `AccessDeniedDetail`, when returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_denied_detail: Option<String>,
    /// HTTP status of the response, when one arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// When the request was made.
    pub time: Time,
}

/// The remote group as read with `ListChatGroup`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObservedGroup {
    /// Subject reported by CAMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Description reported by CAMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Picture URL reported by CAMS (may be a re-hosted copy of the one sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_file: Option<String>,
    /// Group status reported by CAMS, for example `ACTIVE` or `UPDATING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_status: Option<String>,
    /// When the group was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// One field that differs between the spec and the remote group.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PendingChange {
    /// Spec field name: `subject`, `description` or `profilePictureFile`.
    pub field: String,
    /// Value read from CAMS, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// Value in the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<String>,
}

/// Retry state after a recoverable failure.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetryStatus {
    /// Consecutive failed attempts.
    pub attempts: u32,
    /// When the next attempt is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_time: Option<Time>,
}

/// A point in time, written as RFC 3339 in UTC with second precision, like `metav1.Time`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub jiff::Timestamp);

impl Time {
    /// The time, truncated to whole seconds as Kubernetes stores it.
    pub fn from_timestamp(ts: jiff::Timestamp) -> Self {
        Time(jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<jiff::Timestamp>()
            .map(Time::from_timestamp)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Time {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Time".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}

/// Condition types.
pub mod condition {
    /// The group is in line with the spec (or, in Observe mode, was read successfully).
    pub const READY: &str = "Ready";
    /// The last reconcile finished without error.
    pub const SYNCED: &str = "Synced";
    /// A terminal failure: nothing will change until the spec or the Secret does.
    pub const STALLED: &str = "Stalled";
    /// Work in progress (kstatus): the operator is working on this generation, or retrying a
    /// recoverable failure, or waiting for a group in a transitional CAMS status. Absent when
    /// there is nothing left to do.
    pub const RECONCILING: &str = "Reconciling";

    /// The condition types this operator writes. Other tools may add conditions of their own
    /// to the same list (the API server merges it per type); the operator leaves them alone.
    pub const OWN: [&str; 4] = [READY, SYNCED, STALLED, RECONCILING];
}

/// Condition reasons: a closed set, reused as Event reasons. `docs/status.md` explains each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Ready: the remote group matches the spec.
    Synced,
    /// Synced: the last reconcile wrote the group successfully.
    UpdateSucceeded,
    /// Synced: the group already matched; no write was needed.
    UpToDate,
    /// Ready in Observe mode: the group was read; nothing is written.
    Observed,
    /// The first reconcile of this generation has not finished yet.
    Reconciling,
    /// The group is in a transitional CAMS status (`...ING`); it is read again later.
    GroupTransitioning,
    /// Plan mode: writes are pending, see `status.pendingChanges`.
    ChangesPending,
    /// Report mode: the remote group differs from the spec, see `status.pendingChanges`.
    Drifted,
    /// The pause annotation is set; no CAMS calls are made.
    Paused,
    /// The spec breaks a rule; fix the named field.
    InvalidSpec,
    /// The Secret, a key in it, or a value is missing; no CAMS call was made.
    CredentialsMissing,
    /// CAMS rejected the AccessKey or the signature.
    CredentialsInvalid,
    /// The AccessKey lacks the RAM permission, or the account is not allowlisted.
    AccessDenied,
    /// CAMS throttled the request; it is retried after the time CAMS asked for.
    Throttled,
    /// CAMS was unreachable, timed out or failed on its side; retried with backoff.
    CamsUnavailable,
    /// The clock differs from CAMS's by more than 15 minutes.
    ClockSkew,
    /// CAMS rejected the request (parameters, unknown code); see the message.
    CamsRejected,
    /// The endpoint does not serve CAMS (wrong URL or protocol, or a non-JSON answer).
    EndpointInvalid,
    /// No group with `spec.groupId` exists in this space and number.
    GroupNotFound,
    /// A creation is in progress: `AddChatGroup` is being called, or the new group is being
    /// looked for.
    Creating,
    /// Event: the created group was found and recorded in `status.groupId`.
    GroupCreated,
    /// No new group with the subject turned up after `AddChatGroup`; the operator does not
    /// create again on its own.
    CreationNotFound,
    /// Several new groups with the subject turned up after `AddChatGroup`; `spec.groupId`
    /// must say which one this object manages.
    CreationAmbiguous,
    /// An older ChatGroup creates a group with the same subject in the same space and number;
    /// this one creates nothing.
    CreationConflict,
    /// The object is being deleted and the operator is deleting the group.
    Deleting,
    /// Event: the group was deleted in CAMS.
    GroupDeleted,
}

impl Reason {
    /// Every reason, for documentation and tests.
    pub const ALL: [Reason; 26] = [
        Reason::Synced,
        Reason::UpdateSucceeded,
        Reason::UpToDate,
        Reason::Observed,
        Reason::Reconciling,
        Reason::GroupTransitioning,
        Reason::ChangesPending,
        Reason::Drifted,
        Reason::Paused,
        Reason::InvalidSpec,
        Reason::CredentialsMissing,
        Reason::CredentialsInvalid,
        Reason::AccessDenied,
        Reason::Throttled,
        Reason::CamsUnavailable,
        Reason::ClockSkew,
        Reason::CamsRejected,
        Reason::EndpointInvalid,
        Reason::GroupNotFound,
        Reason::Creating,
        Reason::GroupCreated,
        Reason::CreationNotFound,
        Reason::CreationAmbiguous,
        Reason::CreationConflict,
        Reason::Deleting,
        Reason::GroupDeleted,
    ];

    /// The CamelCase word written to conditions and Events.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::UpdateSucceeded => "UpdateSucceeded",
            Reason::UpToDate => "UpToDate",
            Reason::Observed => "Observed",
            Reason::Reconciling => "Reconciling",
            Reason::GroupTransitioning => "GroupTransitioning",
            Reason::ChangesPending => "ChangesPending",
            Reason::Drifted => "Drifted",
            Reason::Paused => "Paused",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::CredentialsMissing => "CredentialsMissing",
            Reason::CredentialsInvalid => "CredentialsInvalid",
            Reason::AccessDenied => "AccessDenied",
            Reason::Throttled => "Throttled",
            Reason::CamsUnavailable => "CamsUnavailable",
            Reason::ClockSkew => "ClockSkew",
            Reason::CamsRejected => "CamsRejected",
            Reason::EndpointInvalid => "EndpointInvalid",
            Reason::GroupNotFound => "GroupNotFound",
            Reason::Creating => "Creating",
            Reason::GroupCreated => "GroupCreated",
            Reason::CreationNotFound => "CreationNotFound",
            Reason::CreationAmbiguous => "CreationAmbiguous",
            Reason::CreationConflict => "CreationConflict",
            Reason::Deleting => "Deleting",
            Reason::GroupDeleted => "GroupDeleted",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reason of a condition: one of the operator's [`Reason`]s, or a word it does not know
/// (the reason of another tool's condition, or one another version of the operator wrote),
/// kept as written so that such a status stays readable and is written back unchanged. On the
/// wire it is the plain word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConditionReason {
    /// A reason of the operator's closed set.
    Known(Reason),
    /// Any other word, as written.
    Other(String),
}

impl ConditionReason {
    /// The word written to the condition.
    pub fn as_str(&self) -> &str {
        match self {
            ConditionReason::Known(reason) => reason.as_str(),
            ConditionReason::Other(text) => text,
        }
    }

    /// The operator's reason, when it is one.
    pub fn known(&self) -> Option<Reason> {
        match self {
            ConditionReason::Known(reason) => Some(*reason),
            ConditionReason::Other(_) => None,
        }
    }

    /// Reads the word of a condition: a [`Reason`] when it is one, else [`Self::Other`].
    pub fn from_word(text: String) -> Self {
        match Reason::ALL.iter().find(|reason| reason.as_str() == text) {
            Some(reason) => ConditionReason::Known(*reason),
            None => ConditionReason::Other(text),
        }
    }
}

impl From<Reason> for ConditionReason {
    fn from(reason: Reason) -> Self {
        ConditionReason::Known(reason)
    }
}

impl PartialEq<Reason> for ConditionReason {
    fn eq(&self, other: &Reason) -> bool {
        self.known() == Some(*other)
    }
}

impl fmt::Display for ConditionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ConditionReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ConditionReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(ConditionReason::from_word)
    }
}

impl JsonSchema for ConditionReason {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConditionReason".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string"})
    }
}

impl ChatGroup {
    /// True when the pause annotation is `"true"`.
    pub fn is_paused(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PAUSED_ANNOTATION))
            .is_some_and(|v| v == "true")
    }
}

/// The CRD as YAML, exactly as committed in `crds/chatgroup.yaml`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&ChatGroup::crd())
}

/// Builders for `ChatGroup` fixtures, used by the tests and benchmarks (unit tests, and with the
/// `testing` feature, which the integration tests and benchmarks enable; not in the release
/// binary).
///
/// `ChatGroup::test("support")` is a complete, valid object (namespace `default`, generation 1,
/// space `cams-test`, number `8613800001234`, group `EA303SUPPORT`, nothing else set); the
/// `with_*` methods change one thing each.
#[cfg(any(test, feature = "testing"))]
mod fixtures {
    use std::collections::BTreeMap;

    use super::{
        ChannelType, ChatGroup, ChatGroupSpec, ChatGroupStatus, CreationPolicy, CredentialsSpec,
        DeletionPolicy, DriftPolicy, InviteLinkPolicy, ManagementPolicy, PAUSED_ANNOTATION,
        SecretRef, default_region, default_resync_interval,
    };

    impl ChatGroup {
        /// A valid ChatGroup named `name` whose group ID is `EA303` followed by the name in
        /// upper case without dashes.
        pub fn test(name: &str) -> Self {
            let group_id = format!("EA303{}", name.to_uppercase().replace(['-', '.'], ""));
            let mut object = ChatGroup::new(
                name,
                ChatGroupSpec {
                    cust_space_id: "cams-test".to_owned(),
                    business_number: "8613800001234".to_owned(),
                    group_id: Some(group_id),
                    channel_type: ChannelType::Whatsapp,
                    subject: None,
                    description: None,
                    profile_picture_file: None,
                    credentials: None,
                    region: default_region(),
                    endpoint: None,
                    management_policy: ManagementPolicy::Manage,
                    drift_policy: DriftPolicy::Enforce,
                    resync_interval: default_resync_interval(),
                    creation_policy: CreationPolicy::Adopt,
                    deletion_policy: DeletionPolicy::Orphan,
                    invite_link: InviteLinkPolicy::Unmanaged,
                },
            );
            object.metadata.namespace = Some("default".to_owned());
            object.metadata.generation = Some(1);
            object
        }

        /// Asks the operator to create the group: `creationPolicy: Create`, no `groupId`.
        pub fn to_create(mut self) -> Self {
            self.spec.creation_policy = CreationPolicy::Create;
            self.spec.group_id = None;
            self
        }

        /// Sets `spec.deletionPolicy`.
        pub fn with_deletion(mut self, value: DeletionPolicy) -> Self {
            self.spec.deletion_policy = value;
            self
        }

        /// Sets `spec.inviteLink`.
        pub fn with_invite_link(mut self, value: InviteLinkPolicy) -> Self {
            self.spec.invite_link = value;
            self
        }

        /// Sets `spec.custSpaceId`.
        pub fn with_cust_space_id(mut self, value: &str) -> Self {
            value.clone_into(&mut self.spec.cust_space_id);
            self
        }

        /// Sets `spec.businessNumber`.
        pub fn with_business_number(mut self, value: &str) -> Self {
            value.clone_into(&mut self.spec.business_number);
            self
        }

        /// Sets `spec.groupId`.
        pub fn with_group_id(mut self, value: &str) -> Self {
            self.spec.group_id = Some(value.to_owned());
            self
        }

        /// Sets `spec.subject`.
        pub fn with_subject(mut self, value: &str) -> Self {
            self.spec.subject = Some(value.to_owned());
            self
        }

        /// Sets `spec.description`.
        pub fn with_description(mut self, value: &str) -> Self {
            self.spec.description = Some(value.to_owned());
            self
        }

        /// Sets `spec.profilePictureFile`.
        pub fn with_picture(mut self, value: &str) -> Self {
            self.spec.profile_picture_file = Some(value.to_owned());
            self
        }

        /// Sets `spec.endpoint`.
        pub fn with_endpoint(mut self, value: &str) -> Self {
            self.spec.endpoint = Some(value.to_owned());
            self
        }

        /// Sets `spec.managementPolicy`.
        pub fn with_management(mut self, value: ManagementPolicy) -> Self {
            self.spec.management_policy = value;
            self
        }

        /// Sets `spec.driftPolicy`.
        pub fn with_drift(mut self, value: DriftPolicy) -> Self {
            self.spec.drift_policy = value;
            self
        }

        /// Sets `spec.resyncInterval`.
        pub fn with_resync(mut self, value: &str) -> Self {
            value.clone_into(&mut self.spec.resync_interval);
            self
        }

        /// Sets `spec.credentials.secretRef.name`.
        pub fn with_secret_ref(mut self, name: &str) -> Self {
            self.spec
                .credentials
                .get_or_insert_with(CredentialsSpec::default)
                .secret_ref = Some(SecretRef {
                name: name.to_owned(),
            });
            self
        }

        /// Sets `spec.credentials` as a whole.
        pub fn with_credentials(mut self, value: CredentialsSpec) -> Self {
            self.spec.credentials = Some(value);
            self
        }

        /// Sets `metadata.generation`.
        pub fn with_generation(mut self, value: i64) -> Self {
            self.metadata.generation = Some(value);
            self
        }

        /// Sets `metadata.namespace`.
        pub fn with_namespace(mut self, value: &str) -> Self {
            self.metadata.namespace = Some(value.to_owned());
            self
        }

        /// Sets or clears the pause annotation.
        pub fn with_paused(mut self, paused: bool) -> Self {
            let annotations = self.metadata.annotations.get_or_insert_with(BTreeMap::new);
            if paused {
                annotations.insert(PAUSED_ANNOTATION.to_owned(), "true".to_owned());
            } else {
                annotations.remove(PAUSED_ANNOTATION);
            }
            self
        }

        /// Sets `status`.
        pub fn with_status(mut self, value: Option<ChatGroupStatus>) -> Self {
            self.status = value;
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_reason_the_operator_does_not_know_stays_readable() {
        let written = r#"{"type":"Ready","status":"False","reason":"SomeOlderReason","message":"m","lastTransitionTime":"2026-11-26T06:00:00Z"}"#;
        let condition: Condition = serde_json::from_str(written).expect("readable");
        assert_eq!(
            condition.reason,
            ConditionReason::Other("SomeOlderReason".into())
        );
        assert_eq!(condition.reason.known(), None);
        assert_eq!(
            serde_json::to_value(&condition).expect("json")["reason"],
            "SomeOlderReason"
        );
    }

    #[test]
    fn every_reason_is_written_as_its_word_and_read_back() {
        for reason in Reason::ALL {
            let read: ConditionReason =
                serde_json::from_value(serde_json::json!(reason.as_str())).expect("readable");
            assert_eq!(read, ConditionReason::Known(reason));
            assert_eq!(read, reason);
            assert_eq!(
                serde_json::to_value(ConditionReason::from(reason)).expect("json"),
                reason.as_str()
            );
        }
    }
}
