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
//! real implementation. Errors are typed ([`CamsError`]) and classified ([`ErrorClass`]) so the
//! controller knows whether retrying can help.

use std::fmt;
use std::future::Future;
use std::time::Duration;

pub mod client;
pub mod fake;
pub mod sign;

/// CAMS API version sent in `Version`.
pub const API_VERSION: &str = "2020-06-06";
/// Action name of the write the operator makes.
pub const ACTION_UPDATE_CHAT_GROUP: &str = "UpdateChatGroup";
/// Action name of the read the operator makes.
pub const ACTION_LIST_CHAT_GROUP: &str = "ListChatGroup";
/// `Code` of a successful response.
pub const CODE_OK: &str = "OK";
/// `Code` for "no such group" (the simulator's; CAMS does not document one).
pub const CODE_GROUP_NOT_FOUND: &str = "InvalidParameter.GroupNotExist";

/// Alibaba Cloud credentials. `Debug` and `Display` never show the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// AccessKey ID (not secret; shown in logs).
    pub access_key_id: String,
    /// AccessKey secret.
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
    /// `CustSpaceId`.
    pub cust_space_id: String,
    /// `BusinessNumber`.
    pub business_number: String,
    /// `GroupId`.
    pub group_id: String,
}

/// Parameters of `UpdateChatGroup`. `None` fields are not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateChatGroupRequest {
    /// The group to update.
    pub key: GroupKey,
    /// `ChannelType`, normally `WHATSAPP`.
    pub channel_type: Option<String>,
    /// `Subject`.
    pub subject: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `ProfilePictureFile`.
    pub profile_picture_file: Option<String>,
}

/// Parameters of `ListChatGroup`. `None` fields are not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListChatGroupRequest {
    /// `CustSpaceId`.
    pub cust_space_id: String,
    /// `BusinessNumber`.
    pub business_number: String,
    /// `ChannelType`.
    pub channel_type: Option<String>,
    /// `GroupStatus` filter.
    pub group_status: Option<String>,
    /// `Subject` filter.
    pub subject: Option<String>,
    /// 1-based page index (`Page.Index`).
    pub page_index: u32,
    /// Page size (`Page.Size`).
    pub page_size: u32,
}

/// The envelope fields of a successful response, as returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseMeta {
    /// HTTP status.
    pub http_status: u16,
    /// `RequestId`.
    pub request_id: Option<String>,
    /// `Code` (`OK`).
    pub code: String,
    /// `Message`.
    pub message: Option<String>,
    /// `Success`, as reported (CAMS has been seen to send `false` with `Code: OK`).
    pub success: Option<bool>,
    /// `AccessDeniedDetail`.
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
    /// `GroupId`.
    pub group_id: Option<String>,
    /// `BusinessNumber`.
    pub business_number: Option<String>,
    /// `Subject`.
    pub subject: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `ProfilePictureFile`.
    pub profile_picture_file: Option<String>,
    /// `GroupStatus`: `ACTIVE`, `INACTIVE`, `SUSPENDED`, or transitional `...ING`.
    pub group_status: Option<String>,
    /// `InviteLink`.
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
        /// HTTP status.
        http_status: u16,
        /// `Code`.
        code: String,
        /// `Message`.
        message: Option<String>,
        /// `RequestId`.
        request_id: Option<String>,
        /// `Success`.
        success: Option<bool>,
        /// `AccessDeniedDetail`.
        access_denied_detail: Option<String>,
    },
    /// HTTP 4xx/5xx from the API gateway.
    #[error("CAMS {action} failed with HTTP {http_status}: {code}: {message} (RequestId {request_id})", code = .code.as_deref().unwrap_or("no code"), message = .message.as_deref().unwrap_or(""), request_id = .request_id.as_deref().unwrap_or("none"))]
    Gateway {
        /// Action called.
        action: &'static str,
        /// HTTP status.
        http_status: u16,
        /// `Code`.
        code: Option<String>,
        /// `Message`.
        message: Option<String>,
        /// `RequestId`.
        request_id: Option<String>,
        /// `HostId`.
        host_id: Option<String>,
        /// `Recommend` (a diagnosis URL).
        recommend: Option<String>,
        /// `AccessDeniedDetail`.
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
        /// HTTP status.
        http_status: u16,
        /// The first bytes of the body (lossy UTF-8).
        snippet: String,
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
}

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
