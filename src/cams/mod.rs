//! Alibaba Cloud Chat App Message Service (CAMS), API version `2020-06-06`.
//!
//! CAMS speaks Alibaba Cloud's RPC protocol: a request is a `POST /` whose query string carries
//! every parameter (`Action`, `Version`, the common signature parameters and the action's own),
//! with an empty body. The request is signed with signature V1 (HMAC-SHA1, [`sign`]). Every
//! response is a JSON envelope with `RequestId`, `Code` (`"OK"` on success) and `Message`.
//! Gateway errors (signature, throttling, permissions) arrive as HTTP 4xx/5xx; business errors
//! arrive as HTTP 200 with another `Code`.
//!
//! [`CamsApi`] is the seam between the reconcile core and the wire: [`client::HttpCams`] is the
//! real implementation, [`pager`] walks the paged listing of a space (with one page limit), and
//! [`client::find_group`] reads one group through it.
//! Errors are typed ([`CamsError`]) and classified so the controller knows what to do:
//! [`CamsError::class`] says whether retrying can help ([`ErrorClass`]),
//! [`CamsError::category`] gives a bounded metrics label ([`ERROR_CATEGORIES`]),
//! [`CamsError::reason`] the condition reason, and [`CamsError::retry_after`] the delay a
//! throttled response asked for. The client itself never retries.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::crd::Reason;

pub mod answer;
pub mod client;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod pager;
pub(crate) mod rpc;
pub mod sign;

/// CAMS API version sent in `Version`.
pub const API_VERSION: &str = "2020-06-06";
/// Action name of the write the operator makes.
pub const ACTION_UPDATE_CHAT_GROUP: &str = "UpdateChatGroup";
/// Action name of the read the operator makes.
pub const ACTION_LIST_CHAT_GROUP: &str = "ListChatGroup";
/// Action that creates a group (`creationPolicy: Create`).
pub const ACTION_ADD_CHAT_GROUP: &str = "AddChatGroup";
/// Action that deletes a group (`deletionPolicy: Delete`).
pub const ACTION_DELETE_CHAT_GROUP: &str = "DeleteChatGroup";
/// Action that gives a group an invite link (`inviteLink: Enabled`).
pub const ACTION_ADD_CHAT_GROUP_INVITE_LINK: &str = "AddChatGroupInviteLink";
/// Action that removes a group's invite link (`inviteLink: Disabled`).
pub const ACTION_DELETE_CHAT_GROUP_INVITE_LINK: &str = "DeleteChatGroupInviteLink";
/// `Code` of a successful response.
pub const CODE_OK: &str = "OK";
/// `Code` CAMS answers when no group with the given `GroupId` exists in the space and number.
/// Group-specific codes are not documented by CAMS; the simulator uses this one, and the client
/// maps it to [`crate::crd::Reason::GroupNotFound`].
pub const CODE_GROUP_NOT_FOUND: &str = "InvalidParameter.GroupNotExist";

/// Alibaba Cloud credentials. `Debug` and `Display` never show the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// AccessKey ID (not secret; shown in logs).
    pub access_key_id: String,
    pub access_key_secret: SecretString,
    /// STS security token, for temporary credentials.
    pub security_token: Option<SecretString>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret)
            .field("security_token", &self.security_token)
            .finish()
    }
}

/// A string that is never printed: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }
    /// The secret itself, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The three keys that address one group, plus the channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub cust_space_id: String,
    pub business_number: String,
    pub group_id: String,
}

/// Parameters of `UpdateChatGroup`. `None` fields are not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateChatGroupRequest {
    /// The group to update.
    pub key: GroupKey,
    /// `ChannelType`, normally `WHATSAPP`.
    pub channel_type: Option<String>,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub profile_picture_file: Option<String>,
}

/// Parameters of `AddChatGroup`. `None` fields are not sent. CAMS answers with a `UniqueCode`
/// but not the new group's ID: the group is created asynchronously and appears in
/// `ListChatGroup` (first as `CREATING`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddChatGroupRequest {
    pub cust_space_id: String,
    pub business_number: String,
    pub channel_type: Option<String>,
    pub subject: Option<String>,
    pub description: Option<String>,
}

/// Result of a successful `AddChatGroup`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddChatGroupResponse {
    pub meta: ResponseMeta,
    /// `UniqueCode`, CAMS's handle of the creation (not the group's ID).
    pub unique_code: Option<String>,
}

/// Parameters of the calls that name one group and nothing else: `DeleteChatGroup`,
/// `AddChatGroupInviteLink` and `DeleteChatGroupInviteLink`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRequest {
    pub key: GroupKey,
    pub channel_type: Option<String>,
}

/// Result of a successful `DeleteChatGroup` or `DeleteChatGroupInviteLink`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteResponse {
    pub meta: ResponseMeta,
    /// `Result`, "number of affected rows", when returned.
    pub result: Option<i64>,
}

/// Result of a successful `AddChatGroupInviteLink`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InviteLinkResponse {
    pub meta: ResponseMeta,
    /// `InviteLink`, the URL members join the group with.
    pub invite_link: Option<String>,
}

/// Parameters of `ListChatGroup`. `None` fields are not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListChatGroupRequest {
    pub cust_space_id: String,
    pub business_number: String,
    pub channel_type: Option<String>,
    /// `GroupStatus` filter.
    pub group_status: Option<String>,
    /// `Subject` filter.
    pub subject: Option<String>,
    /// 1-based page index (`Page.Index`).
    pub page_index: u32,
    pub page_size: u32,
}

/// The envelope fields of a successful response, as returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseMeta {
    pub http_status: u16,
    pub request_id: Option<String>,
    /// `Code` (`OK`).
    pub code: String,
    pub message: Option<String>,
    /// `Success`, as reported (CAMS has been seen to send `false` with `Code: OK`).
    pub success: Option<bool>,
    pub access_denied_detail: Option<String>,
}

/// Result of a successful `UpdateChatGroup`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateChatGroupResponse {
    /// Envelope.
    pub meta: ResponseMeta,
    /// `Result`, "number of affected rows", when returned.
    pub result: Option<i64>,
}

/// One page of `ListChatGroup`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListChatGroupResponse {
    /// Envelope.
    pub meta: ResponseMeta,
    /// `Data.Total`.
    pub total: Option<u64>,
    /// `Data.List`.
    pub groups: Vec<ChatGroupItem>,
}

/// One item of `ListChatGroup`. Every field is optional; unknown fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatGroupItem {
    pub group_id: Option<String>,
    pub business_number: Option<String>,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub profile_picture_file: Option<String>,
    /// `GroupStatus`: `ACTIVE`, `INACTIVE`, `SUSPENDED`, or transitional `...ING`.
    pub group_status: Option<String>,
    pub invite_link: Option<String>,
}

/// Whether retrying a failed call can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Transient: retry with backoff (honouring any retry-after).
    Recoverable,
    /// Retrying the same request cannot help until the spec, credentials or permissions change.
    Terminal,
}

/// A failed CAMS call. Never contains a secret, a token or a signature.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CamsError {
    /// HTTP 2xx with `Code != "OK"`.
    #[error("CAMS {action} failed: {code}: {message} (RequestId {request_id})", message = .message.as_deref().unwrap_or(""), request_id = .request_id.as_deref().unwrap_or("none"))]
    Business {
        /// Action called.
        action: &'static str,
        http_status: u16,
        code: String,
        message: Option<String>,
        request_id: Option<String>,
        success: Option<bool>,
        access_denied_detail: Option<String>,
    },
    /// HTTP 4xx/5xx from the API gateway.
    #[error("CAMS {action} failed with HTTP {http_status}: {code}: {message} (RequestId {request_id})", code = .code.as_deref().unwrap_or("no code"), message = .message.as_deref().unwrap_or(""), request_id = .request_id.as_deref().unwrap_or("none"))]
    Gateway {
        /// Action called.
        action: &'static str,
        http_status: u16,
        code: Option<String>,
        message: Option<String>,
        request_id: Option<String>,
        host_id: Option<String>,
        /// `Recommend` (a diagnosis URL).
        recommend: Option<String>,
        access_denied_detail: Option<String>,
        /// Delay asked for by a throttling header (`TimeLeft`).
        retry_after: Option<Duration>,
    },
    /// The body was not the JSON envelope.
    #[error(
        "CAMS {action} answered HTTP {http_status} with a body that is not a CAMS response: {snippet:?}"
    )]
    InvalidBody {
        /// Action called.
        action: &'static str,
        http_status: u16,
        /// The first bytes of the body (lossy UTF-8).
        snippet: String,
    },
    /// The body was longer than the client reads ([`client::MAX_BODY_BYTES`]); none of it was
    /// used.
    #[error(
        "CAMS {action} answered HTTP {http_status} with a body over the {limit}-byte limit; it was not read"
    )]
    BodyTooLarge {
        /// Action called.
        action: &'static str,
        http_status: u16,
        /// The limit, in bytes.
        limit: usize,
    },
    /// Connection, TLS or protocol failure before a response arrived.
    #[error("CAMS {action} could not be sent to {endpoint}: {detail}")]
    Transport {
        /// Action called.
        action: &'static str,
        /// Endpoint (no query string).
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// No response within the timeout.
    #[error("CAMS {action} to {endpoint} timed out after {timeout:?}")]
    Timeout {
        /// Action called.
        action: &'static str,
        /// Endpoint (no query string).
        endpoint: String,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// The request could not be built (bad endpoint URL).
    #[error("CAMS {action} request could not be built: {detail}")]
    InvalidRequest {
        /// Action called.
        action: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Every value [`CamsError::category`] can return: a bounded label set for metrics.
pub const ERROR_CATEGORIES: [&str; 11] = [
    "throttled",
    "unavailable",
    "nonce_reused",
    "clock_skew",
    "transport",
    "timeout",
    "credentials_invalid",
    "access_denied",
    "group_not_found",
    "endpoint_invalid",
    "rejected",
];

/// What went wrong, in the closed set behind [`CamsError::category`], [`CamsError::class`] and
/// [`CamsError::reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `Throttling*`, HTTP 429.
    Throttled,
    /// `ServiceUnavailable`, `InternalError`, HTTP 5xx.
    Unavailable,
    /// `SignatureNonceUsed`: the next attempt has a new nonce.
    NonceReused,
    /// `InvalidTimeStamp.Expired`: the clocks differ by more than CAMS allows.
    ClockSkew,
    /// No connection, or the connection failed before an answer.
    Transport,
    /// No answer in time.
    Timeout,
    /// A signature or AccessKey that CAMS does not accept.
    CredentialsInvalid,
    /// The AccessKey may not call the action.
    AccessDenied,
    /// The group does not exist.
    GroupNotFound,
    /// The endpoint is not CAMS (a wrong URL, version or protocol).
    EndpointInvalid,
    /// Any other refusal, unknown codes included.
    Rejected,
}

impl ErrorKind {
    /// Error codes that name a passing condition (throttling, an unavailable or failing service),
    /// so retrying later can succeed.
    fn recoverable_code(code: &str) -> Option<ErrorKind> {
        match code {
            c if c.starts_with("Throttling") => Some(ErrorKind::Throttled),
            "ServiceUnavailable" | "InternalError" => Some(ErrorKind::Unavailable),
            "SignatureNonceUsed" => Some(ErrorKind::NonceReused),
            "InvalidTimeStamp.Expired" => Some(ErrorKind::ClockSkew),
            _ => None,
        }
    }

    /// Codes that need a change of credentials, permissions, endpoint or spec.
    fn terminal_code(code: &str) -> ErrorKind {
        let family = |prefix: &str| {
            code == prefix
                || code
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        match code {
            "SignatureDoesNotMatch" | "IncompleteSignature" => ErrorKind::CredentialsInvalid,
            _ if family("InvalidAccessKeyId") || family("InvalidSecurityToken") => {
                ErrorKind::CredentialsInvalid
            }
            "ActionUnauthorized" | "Authentication.NoAuth" => ErrorKind::AccessDenied,
            _ if code.starts_with("Forbidden") || family("NoPermission") => ErrorKind::AccessDenied,
            CODE_GROUP_NOT_FOUND => ErrorKind::GroupNotFound,
            "InvalidApi.NotFound" | "InvalidProtocol.NeedSsl" => ErrorKind::EndpointInvalid,
            _ => ErrorKind::Rejected,
        }
    }

    /// Classifies an Alibaba Cloud answer that carried `code` (if any) with `http_status`: the
    /// one reading of codes, for CAMS calls and for STS (the operator's own identity) alike.
    pub fn of_response(code: Option<&str>, http_status: u16) -> ErrorKind {
        if let Some(kind) = code.and_then(ErrorKind::recoverable_code) {
            return kind;
        }
        if http_status >= 500 {
            return ErrorKind::Unavailable;
        }
        if http_status == 429 {
            return ErrorKind::Throttled;
        }
        code.map_or(ErrorKind::Rejected, ErrorKind::terminal_code)
    }

    fn class(self) -> ErrorClass {
        match self {
            ErrorKind::Throttled
            | ErrorKind::Unavailable
            | ErrorKind::NonceReused
            | ErrorKind::ClockSkew
            | ErrorKind::Transport
            | ErrorKind::Timeout => ErrorClass::Recoverable,
            ErrorKind::CredentialsInvalid
            | ErrorKind::AccessDenied
            | ErrorKind::GroupNotFound
            | ErrorKind::EndpointInvalid
            | ErrorKind::Rejected => ErrorClass::Terminal,
        }
    }

    /// The metrics label: one of [`ERROR_CATEGORIES`].
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NonceReused => "nonce_reused",
            ErrorKind::ClockSkew => "clock_skew",
            ErrorKind::Transport => "transport",
            ErrorKind::Timeout => "timeout",
            ErrorKind::CredentialsInvalid => "credentials_invalid",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::GroupNotFound => "group_not_found",
            ErrorKind::EndpointInvalid => "endpoint_invalid",
            ErrorKind::Rejected => "rejected",
        }
    }

    fn reason(self) -> Reason {
        match self {
            ErrorKind::Throttled => Reason::Throttled,
            ErrorKind::Unavailable
            | ErrorKind::NonceReused
            | ErrorKind::Transport
            | ErrorKind::Timeout => Reason::CamsUnavailable,
            ErrorKind::ClockSkew => Reason::ClockSkew,
            ErrorKind::CredentialsInvalid => Reason::CredentialsInvalid,
            ErrorKind::AccessDenied => Reason::AccessDenied,
            ErrorKind::GroupNotFound => Reason::GroupNotFound,
            ErrorKind::EndpointInvalid => Reason::EndpointInvalid,
            ErrorKind::Rejected => Reason::CamsRejected,
        }
    }
}

impl CamsError {
    /// What went wrong, by the one classification of answers ([`ErrorKind::of_response`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            CamsError::Business {
                code, http_status, ..
            } => ErrorKind::of_response(Some(code), *http_status),
            CamsError::Gateway {
                code, http_status, ..
            } => ErrorKind::of_response(code.as_deref(), *http_status),
            CamsError::InvalidBody { http_status, .. }
            | CamsError::BodyTooLarge { http_status, .. }
                if *http_status >= 500 =>
            {
                ErrorKind::Unavailable
            }
            CamsError::InvalidBody { .. }
            | CamsError::BodyTooLarge { .. }
            | CamsError::InvalidRequest { .. } => ErrorKind::EndpointInvalid,
            CamsError::Transport { .. } => ErrorKind::Transport,
            CamsError::Timeout { .. } => ErrorKind::Timeout,
        }
    }

    /// Whether retrying can help.
    ///
    /// Recoverable: transport errors, timeouts, any HTTP 5xx, HTTP 429, `Throttling*`,
    /// `ServiceUnavailable`, `InternalError`, `SignatureNonceUsed` (the next attempt carries a new
    /// nonce) and `InvalidTimeStamp.Expired` (the next attempt carries a fresh timestamp; when the
    /// local clock really is off, the controller's growing backoff keeps the retries rare while
    /// the status reports `ClockSkew`). Everything else is terminal, unknown codes included.
    pub fn class(&self) -> ErrorClass {
        self.kind().class()
    }

    /// True when [`class`](Self::class) is [`ErrorClass::Recoverable`].
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Recoverable
    }

    /// A short, bounded label for metrics and logs: one of [`ERROR_CATEGORIES`].
    pub fn category(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The condition reason that reports this error on a ChatGroup.
    pub fn reason(&self) -> Reason {
        self.kind().reason()
    }

    /// The action that failed (`UpdateChatGroup`, `ListChatGroup`).
    pub fn action(&self) -> &'static str {
        match self {
            CamsError::Business { action, .. }
            | CamsError::Gateway { action, .. }
            | CamsError::InvalidBody { action, .. }
            | CamsError::BodyTooLarge { action, .. }
            | CamsError::Transport { action, .. }
            | CamsError::Timeout { action, .. }
            | CamsError::InvalidRequest { action, .. } => action,
        }
    }

    /// The CAMS `Code`, when a response carried one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CamsError::Business { code, .. } => Some(code),
            CamsError::Gateway { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The CAMS `Message`, when a response carried one.
    pub fn message(&self) -> Option<&str> {
        match self {
            CamsError::Business { message, .. } | CamsError::Gateway { message, .. } => {
                message.as_deref()
            }
            _ => None,
        }
    }

    /// The `RequestId`, when a response carried one (quote it to Alibaba Cloud support).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            CamsError::Business { request_id, .. } | CamsError::Gateway { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }

    /// The `AccessDeniedDetail`, when a response carried one.
    pub fn access_denied_detail(&self) -> Option<&str> {
        match self {
            CamsError::Business {
                access_denied_detail,
                ..
            }
            | CamsError::Gateway {
                access_denied_detail,
                ..
            } => access_denied_detail.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, when a response arrived.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            CamsError::Business { http_status, .. }
            | CamsError::Gateway { http_status, .. }
            | CamsError::InvalidBody { http_status, .. }
            | CamsError::BodyTooLarge { http_status, .. } => Some(*http_status),
            _ => None,
        }
    }

    /// The delay the service asked for (throttling `TimeLeft`), if any. The controller waits at
    /// least this long before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CamsError::Gateway { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The operations the operator needs from CAMS. Implemented by [`client::HttpCams`] and by
/// test doubles; futures are `Send` so calls can run on any runtime thread.
pub trait CamsApi: Send + Sync {
    /// `UpdateChatGroup` against `endpoint` with `credentials`.
    fn update_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &UpdateChatGroupRequest,
    ) -> impl Future<Output = Result<UpdateChatGroupResponse, CamsError>> + Send;

    /// One page of `ListChatGroup` against `endpoint` with `credentials`.
    fn list_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &ListChatGroupRequest,
    ) -> impl Future<Output = Result<ListChatGroupResponse, CamsError>> + Send;

    /// `AddChatGroup`: asks CAMS to create a group.
    fn add_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &AddChatGroupRequest,
    ) -> impl Future<Output = Result<AddChatGroupResponse, CamsError>> + Send;

    /// `DeleteChatGroup`: deletes a group for good.
    fn delete_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> impl Future<Output = Result<DeleteResponse, CamsError>> + Send;

    /// `AddChatGroupInviteLink`: gives the group an invite link.
    fn add_chat_group_invite_link(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> impl Future<Output = Result<InviteLinkResponse, CamsError>> + Send;

    /// `DeleteChatGroupInviteLink`: revokes the group's invite link.
    fn delete_chat_group_invite_link(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> impl Future<Output = Result<DeleteResponse, CamsError>> + Send;
}

/// The writes of a [`CamsApi`] test double that only lists: each succeeds and changes nothing.
#[cfg(test)]
macro_rules! no_op_writes {
    () => {
        async fn update_chat_group(
            &self,
            _: &$crate::cams::Endpoint,
            _: &$crate::cams::Credentials,
            _: &$crate::cams::UpdateChatGroupRequest,
        ) -> Result<$crate::cams::UpdateChatGroupResponse, $crate::cams::CamsError> {
            Ok(Default::default())
        }
        async fn add_chat_group(
            &self,
            _: &$crate::cams::Endpoint,
            _: &$crate::cams::Credentials,
            _: &$crate::cams::AddChatGroupRequest,
        ) -> Result<$crate::cams::AddChatGroupResponse, $crate::cams::CamsError> {
            Ok(Default::default())
        }
        async fn delete_chat_group(
            &self,
            _: &$crate::cams::Endpoint,
            _: &$crate::cams::Credentials,
            _: &$crate::cams::GroupRequest,
        ) -> Result<$crate::cams::DeleteResponse, $crate::cams::CamsError> {
            Ok(Default::default())
        }
        async fn add_chat_group_invite_link(
            &self,
            _: &$crate::cams::Endpoint,
            _: &$crate::cams::Credentials,
            _: &$crate::cams::GroupRequest,
        ) -> Result<$crate::cams::InviteLinkResponse, $crate::cams::CamsError> {
            Ok(Default::default())
        }
        async fn delete_chat_group_invite_link(
            &self,
            _: &$crate::cams::Endpoint,
            _: &$crate::cams::Credentials,
            _: &$crate::cams::GroupRequest,
        ) -> Result<$crate::cams::DeleteResponse, $crate::cams::CamsError> {
            Ok(Default::default())
        }
    };
}
#[cfg(test)]
pub(crate) use no_op_writes;

/// Where CAMS requests go: `https://cams.<region>.aliyuncs.com/` or an override URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint(String);

impl Endpoint {
    /// The public endpoint of `region`.
    pub fn for_region(region: &str) -> Self {
        Endpoint(format!("https://cams.{region}.aliyuncs.com/"))
    }
    /// An explicit endpoint URL (a private endpoint, or the simulator).
    pub fn from_url(url: &str) -> Self {
        Endpoint(url.to_owned())
    }
    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Errors as CAMS returns them, for the unit tests of every module that classifies them.
#[cfg(test)]
pub(crate) mod test_errors {
    use super::{ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP, CamsError};

    /// A gateway error (`UpdateChatGroup`, RequestId `REQ-1`).
    pub(crate) fn gateway(http_status: u16, code: Option<&str>) -> CamsError {
        CamsError::Gateway {
            action: ACTION_UPDATE_CHAT_GROUP,
            http_status,
            code: code.map(str::to_owned),
            message: Some("message from CAMS".to_owned()),
            request_id: Some("REQ-1".to_owned()),
            host_id: None,
            recommend: None,
            access_denied_detail: None,
            retry_after: None,
        }
    }

    /// A business error (`ListChatGroup`, HTTP 200, RequestId `REQ-2`).
    pub(crate) fn business(code: &str) -> CamsError {
        CamsError::Business {
            action: ACTION_LIST_CHAT_GROUP,
            http_status: 200,
            code: code.to_owned(),
            message: Some("business message".to_owned()),
            request_id: Some("REQ-2".to_owned()),
            success: Some(false),
            access_denied_detail: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_errors::{business, gateway};

    #[test]
    fn codes_map_to_class_category_and_reason() {
        use ErrorClass::{Recoverable, Terminal};
        let table: &[(u16, &str, ErrorClass, &str, Reason)] = &[
            (
                400,
                "Throttling",
                Recoverable,
                "throttled",
                Reason::Throttled,
            ),
            (
                503,
                "Throttling.User",
                Recoverable,
                "throttled",
                Reason::Throttled,
            ),
            (
                400,
                "Throttling.Api",
                Recoverable,
                "throttled",
                Reason::Throttled,
            ),
            (
                503,
                "ServiceUnavailable",
                Recoverable,
                "unavailable",
                Reason::CamsUnavailable,
            ),
            (
                500,
                "InternalError",
                Recoverable,
                "unavailable",
                Reason::CamsUnavailable,
            ),
            (
                400,
                "SignatureNonceUsed",
                Recoverable,
                "nonce_reused",
                Reason::CamsUnavailable,
            ),
            (
                400,
                "InvalidTimeStamp.Expired",
                Recoverable,
                "clock_skew",
                Reason::ClockSkew,
            ),
            (
                400,
                "SignatureDoesNotMatch",
                Terminal,
                "credentials_invalid",
                Reason::CredentialsInvalid,
            ),
            (
                403,
                "IncompleteSignature",
                Terminal,
                "credentials_invalid",
                Reason::CredentialsInvalid,
            ),
            (
                404,
                "InvalidAccessKeyId.NotFound",
                Terminal,
                "credentials_invalid",
                Reason::CredentialsInvalid,
            ),
            (
                400,
                "InvalidAccessKeyId.Inactive",
                Terminal,
                "credentials_invalid",
                Reason::CredentialsInvalid,
            ),
            (
                400,
                "InvalidSecurityToken.Expired",
                Terminal,
                "credentials_invalid",
                Reason::CredentialsInvalid,
            ),
            (
                403,
                "Forbidden.RAM",
                Terminal,
                "access_denied",
                Reason::AccessDenied,
            ),
            (
                403,
                "Forbidden",
                Terminal,
                "access_denied",
                Reason::AccessDenied,
            ),
            (
                403,
                "ActionUnauthorized",
                Terminal,
                "access_denied",
                Reason::AccessDenied,
            ),
            (
                403,
                "NoPermission",
                Terminal,
                "access_denied",
                Reason::AccessDenied,
            ),
            (
                404,
                "InvalidApi.NotFound",
                Terminal,
                "endpoint_invalid",
                Reason::EndpointInvalid,
            ),
            (
                404,
                "InvalidProtocol.NeedSsl",
                Terminal,
                "endpoint_invalid",
                Reason::EndpointInvalid,
            ),
            (
                400,
                "MissingParameter",
                Terminal,
                "rejected",
                Reason::CamsRejected,
            ),
            (
                400,
                "InvalidParameter",
                Terminal,
                "rejected",
                Reason::CamsRejected,
            ),
            (
                400,
                "Something.NobodyDocumented",
                Terminal,
                "rejected",
                Reason::CamsRejected,
            ),
            // Any 5xx is recoverable, whatever its code says.
            (
                502,
                "InvalidParameter",
                Recoverable,
                "unavailable",
                Reason::CamsUnavailable,
            ),
            // A prefix that only looks like a family is not one.
            (
                400,
                "NoPermissionsAtAllX",
                Terminal,
                "rejected",
                Reason::CamsRejected,
            ),
        ];
        for (status, code, class, category, reason) in table {
            let err = gateway(*status, Some(code));
            assert_eq!(err.class(), *class, "{status} {code}");
            assert_eq!(err.is_retryable(), *class == Recoverable, "{status} {code}");
            assert_eq!(err.category(), *category, "{status} {code}");
            assert_eq!(err.reason(), *reason, "{status} {code}");
            assert!(ERROR_CATEGORIES.contains(&err.category()));
        }
    }

    #[test]
    fn business_codes_classify_like_gateway_codes() {
        let missing = business(CODE_GROUP_NOT_FOUND);
        assert_eq!(missing.class(), ErrorClass::Terminal);
        assert_eq!(missing.category(), "group_not_found");
        assert_eq!(missing.reason(), Reason::GroupNotFound);
        let no_auth = business("Authentication.NoAuth");
        assert_eq!(no_auth.reason(), Reason::AccessDenied);
        assert_eq!(
            business("InvalidParameter.PageInvalid").category(),
            "rejected"
        );
        assert_eq!(business("Throttling.User").class(), ErrorClass::Recoverable);
        assert_eq!(missing.code(), Some(CODE_GROUP_NOT_FOUND));
        assert_eq!(missing.request_id(), Some("REQ-2"));
        assert_eq!(missing.action(), ACTION_LIST_CHAT_GROUP);
    }

    #[test]
    fn status_only_responses_and_transport_failures() {
        assert_eq!(gateway(500, None).class(), ErrorClass::Recoverable);
        assert_eq!(gateway(429, None).category(), "throttled");
        assert_eq!(gateway(404, None).category(), "rejected");
        let body = |status| CamsError::InvalidBody {
            action: ACTION_LIST_CHAT_GROUP,
            http_status: status,
            snippet: "<html>".into(),
        };
        assert_eq!(body(502).class(), ErrorClass::Recoverable);
        assert_eq!(body(502).reason(), Reason::CamsUnavailable);
        assert_eq!(body(200).class(), ErrorClass::Terminal);
        assert_eq!(body(200).reason(), Reason::EndpointInvalid);
        assert_eq!(body(200).http_status(), Some(200));
        let transport = CamsError::Transport {
            action: ACTION_LIST_CHAT_GROUP,
            endpoint: "https://x/".into(),
            detail: "refused".into(),
        };
        assert_eq!(transport.class(), ErrorClass::Recoverable);
        assert_eq!(transport.category(), "transport");
        assert_eq!(transport.http_status(), None);
        let timeout = CamsError::Timeout {
            action: ACTION_LIST_CHAT_GROUP,
            endpoint: "https://x/".into(),
            timeout: Duration::from_secs(10),
        };
        assert_eq!(timeout.category(), "timeout");
        assert_eq!(timeout.reason(), Reason::CamsUnavailable);
        let invalid = CamsError::InvalidRequest {
            action: ACTION_LIST_CHAT_GROUP,
            detail: "bad URL".into(),
        };
        assert_eq!(invalid.class(), ErrorClass::Terminal);
        assert_eq!(invalid.reason(), Reason::EndpointInvalid);
    }

    #[test]
    fn retry_after_comes_from_gateway_errors_only() {
        let mut err = gateway(400, Some("Throttling.User"));
        if let CamsError::Gateway { retry_after, .. } = &mut err {
            *retry_after = Some(Duration::from_millis(2000));
        }
        assert_eq!(err.retry_after(), Some(Duration::from_millis(2000)));
        assert_eq!(business("Throttling.User").retry_after(), None);
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let creds = Credentials {
            access_key_id: "LTAIid".into(),
            access_key_secret: SecretString::new("s3cr3t-value"),
            security_token: Some(SecretString::new("sts-token-value")),
        };
        let text = format!("{creds:?}");
        assert!(text.contains("LTAIid"));
        assert!(!text.contains("s3cr3t-value"));
        assert!(!text.contains("sts-token-value"));
    }
}
