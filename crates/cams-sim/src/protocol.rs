//! The protocol facts the simulator serves, written down here on their own: API versions,
//! action names, answer codes and field limits, as the public CAMS and STS API reference pages
//! state them.
//!
//! They are deliberately not imported from the operator's client. The simulator is the second,
//! independent implementation of the protocol; a constant shared between the two would let a
//! wrong value in the client be silently agreed with. The operator's test
//! `simulator_and_client_agree_on_the_protocol` compares the two sets instead, so a
//! disagreement fails loudly.

pub const CAMS_API_VERSION: &str = "2020-06-06";
/// Action that creates a group.
pub const ACTION_ADD_CHAT_GROUP: &str = "AddChatGroup";
/// Action that changes a group's subject, description or picture.
pub const ACTION_UPDATE_CHAT_GROUP: &str = "UpdateChatGroup";
/// Action that lists the groups of a space, a page at a time.
pub const ACTION_LIST_CHAT_GROUP: &str = "ListChatGroup";
/// Action that deletes a group.
pub const ACTION_DELETE_CHAT_GROUP: &str = "DeleteChatGroup";
/// Action that gives a group a new invite link, revoking the one it had.
pub const ACTION_ADD_CHAT_GROUP_INVITE_LINK: &str = "AddChatGroupInviteLink";
/// Action that revokes a group's invite link.
pub const ACTION_DELETE_CHAT_GROUP_INVITE_LINK: &str = "DeleteChatGroupInviteLink";
/// Largest `Page.Size` accepted by `ListChatGroup`.
pub const MAX_PAGE_SIZE: u64 = 100;
/// Longest `Subject`, in characters.
pub const MAX_SUBJECT_CHARS: usize = 128;
/// Longest `Description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2048;
/// The only `ChannelType` CAMS groups support.
pub const CHANNEL_TYPE_WHATSAPP: &str = "WHATSAPP";
/// `GroupStatus` of a usable group.
pub const GROUP_STATUS_ACTIVE: &str = "ACTIVE";
/// `GroupStatus` of a group `AddChatGroup` asked for and WhatsApp has not finished creating:
/// creation is asynchronous, so a new group is listed with it first.
pub const GROUP_STATUS_CREATING: &str = "CREATING";
/// What every WhatsApp group invite link starts with; the invite code follows.
pub const INVITE_LINK_PREFIX: &str = "https://chat.whatsapp.com/";
/// Length of a WhatsApp invite code, in letters and digits.
pub const INVITE_CODE_CHARS: usize = 22;

pub const STS_API_VERSION: &str = "2015-04-01";
/// STS action that exchanges an OIDC token for temporary credentials.
pub const ACTION_ASSUME_ROLE_WITH_OIDC: &str = "AssumeRoleWithOIDC";
/// Smallest `DurationSeconds` STS accepts.
pub const MIN_DURATION_SECONDS: u64 = 900;
/// `DurationSeconds` when the request has none.
pub const DEFAULT_DURATION_SECONDS: u64 = 3600;
/// Largest `MaxSessionDuration` a RAM role can have.
pub const MAX_SESSION_DURATION_LIMIT: u64 = 43_200;
/// Longest OIDC token STS accepts, in characters.
pub const MAX_OIDC_TOKEN_CHARS: usize = 20_000;

/// The `Code` values the simulator answers with. HTTP statuses are those of the real gateway.
pub mod codes {
    /// `OK`: the call succeeded.
    pub const OK: &str = "OK";
    /// HTTP 200 (business): no group has these `CustSpaceId`, `BusinessNumber` and `GroupId`.
    pub const GROUP_NOT_FOUND: &str = "InvalidParameter.GroupNotExist";
    /// HTTP 200 (business): the group is still `CREATING`, so only listing sees it. The real
    /// service's answer to a change of a group being created is undocumented: this code is the
    /// simulator's own assumption (see the crate documentation).
    pub const GROUP_CREATING: &str = "InvalidStatus.GroupCreating";
    /// HTTP 400: a required parameter is absent or empty.
    pub const MISSING_PARAMETER: &str = "MissingParameter";
    /// HTTP 400 (gateway: unreadable request, repeated parameter) or 200 (business: a field
    /// over its limit, an empty optional field).
    pub const INVALID_PARAMETER: &str = "InvalidParameter";
    /// HTTP 400: `Signature` (V1) or the `Authorization` header (V3) is absent or malformed, or
    /// a header that must be signed is not.
    pub const INCOMPLETE_SIGNATURE: &str = "IncompleteSignature";
    /// HTTP 400: the signature is not the one computed with the key's secret.
    pub const SIGNATURE_DOES_NOT_MATCH: &str = "SignatureDoesNotMatch";
    /// HTTP 404: the AccessKey ID is not configured.
    pub const INVALID_ACCESS_KEY_ID_NOT_FOUND: &str = "InvalidAccessKeyId.NotFound";
    /// HTTP 400: `Timestamp` / `x-acs-date` is more than 15 minutes from the simulator's clock.
    pub const INVALID_TIMESTAMP_EXPIRED: &str = "InvalidTimeStamp.Expired";
    /// HTTP 400: `Timestamp` / `x-acs-date` is not an ISO 8601 UTC time.
    pub const INVALID_TIMESTAMP_FORMAT: &str = "InvalidTimeStamp.Format";
    /// HTTP 400: the nonce was used in the last 30 minutes by the same AccessKey.
    pub const SIGNATURE_NONCE_USED: &str = "SignatureNonceUsed";
    /// HTTP 400: an STS key without its token, with another token, or a token with a
    /// permanent key.
    pub const INVALID_SECURITY_TOKEN_MISMATCH: &str = "InvalidSecurityToken.Mismatch";
    /// HTTP 400: the STS token's configured expiry has passed.
    pub const INVALID_SECURITY_TOKEN_EXPIRED: &str = "InvalidSecurityToken.Expired";
    /// HTTP 400, with `x-ratelimit-user-api`: throttled.
    pub const THROTTLING_USER: &str = "Throttling.User";
    /// HTTP 503.
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
    /// HTTP 500.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// HTTP 404: unknown `Action`, unknown `Version`, or a path other than `/`.
    pub const INVALID_API_NOT_FOUND: &str = "InvalidApi.NotFound";
    /// HTTP 400: a method other than GET or POST.
    pub const UNSUPPORTED_HTTP_METHOD: &str = "UnsupportedHTTPMethod";
    /// HTTP 200 (business): `ChannelType` other than `WHATSAPP`.
    pub const CHANNEL_TYPE_NOT_SUPPORT: &str = "InvalidParameter.ChannelTypeNotSupport";
    /// HTTP 200 (business): `Page` is not JSON, `Index < 1`, or `Size` outside 1..=100.
    pub const PAGE_INVALID: &str = "InvalidParameter.PageInvalid";
    /// STS, HTTP 401: the OIDC token has expired (its `exp` claim has passed).
    pub const OIDC_TOKEN_EXPIRED: &str = "AuthenticationFail.OIDCToken.Expired";
    /// STS, HTTP 401: the OIDC token is empty, malformed or not issued by the provider.
    pub const OIDC_TOKEN_INVALID: &str = "AuthenticationFail.OIDCToken.Invalid";
    /// STS, HTTP 401: no such OIDC provider is registered (`OIDCProviderArn`).
    pub const AUTHENTICATION_FAIL_NO_PERMISSION: &str = "AuthenticationFail.NoPermission";
    /// STS, HTTP 404: the role of `RoleArn` does not exist.
    pub const ENTITY_NOT_EXIST_ROLE: &str = "EntityNotExist.Role";
    /// STS, HTTP 400: `DurationSeconds` is outside 900 s to the role's maximum session duration.
    pub const INVALID_DURATION_SECONDS: &str = "InvalidParameter.DurationSeconds";
    /// STS, HTTP 400: `RoleSessionName` is not 2 to 64 of `A-Za-z0-9.@-_`.
    pub const INVALID_ROLE_SESSION_NAME: &str = "InvalidParameter.RoleSessionName";
}
