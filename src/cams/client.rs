//! [`HttpCams`]: the CAMS client on reqwest (rustls with the ring provider).
//!
//! One call is one HTTP request: `POST <endpoint>?<signed query>` with an empty body. The query
//! carries the common parameters and the action's own ([`sign::build_signed_query`]), with a
//! fresh `SignatureNonce` and `Timestamp` per call, taken from a [`StampSource`]. Nested
//! parameters travel as JSON text (`Page={"Index":1,"Size":20}`).
//!
//! The exchange itself (sending, the body limit, the envelope, redaction) is the one every
//! Alibaba Cloud call of the operator goes through (`cams::rpc`); what follows is what a CAMS
//! answer means:
//! - HTTP 2xx with `Code == "OK"`: success; the envelope is returned as [`ResponseMeta`];
//! - HTTP 2xx with another `Code`: [`CamsError::Business`];
//! - any other status with a JSON body: [`CamsError::Gateway`], with the throttling `TimeLeft`
//!   of `x-ratelimit-user-api` / `x-ratelimit-user` as `retry_after` (at most
//!   [`MAX_THROTTLE_DELAY`]);
//! - a body that is not a JSON object (or a 2xx object without `Code`): [`CamsError::InvalidBody`];
//! - a body over [`MAX_BODY_BYTES`]: [`CamsError::BodyTooLarge`], decided from `Content-Length`
//!   before anything is read, or as soon as the bytes read pass the limit;
//! - no answer: [`CamsError::Transport`] or [`CamsError::Timeout`].
//!
//! Parsing is tolerant ([`super::answer`]): every field is optional, unknown fields are ignored,
//! and numbers may arrive as numeric strings. It reads only the fields it uses, so the memory a
//! call takes is bounded by the body limit whatever the body holds, and every text it keeps is
//! cut to [`MAX_TEXT_CHARS`] (a status condition or an Event carries it further). The client
//! never retries and never follows redirects (a redirect would hand the signed query to another
//! host): retry and backoff belong to the controller, which reads [`CamsError::class`] and
//! [`CamsError::retry_after`].
//!
//! No secret leaves this module: the query string (with `Signature` and `SecurityToken`) is never
//! logged, errors never carry the URL, and any echo of the secret, the token or the signature in
//! a response text is replaced by `<redacted>` before it reaches an error or a log line.

use std::borrow::Cow;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

use super::answer::Envelope;
use super::pager::{self, Lookup, WalkEnd};
use super::rpc::{self, Answer, Redactor, RpcError, Timeouts, Unreadable, error_chain};
use super::sign::{self, SIGNATURE_PARAM};
use super::{
    ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_DELETE_CHAT_GROUP,
    ACTION_DELETE_CHAT_GROUP_INVITE_LINK, ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP,
    AddChatGroupRequest, AddChatGroupResponse, CODE_OK, CamsApi, CamsError, ChatGroupItem,
    Credentials, DeleteResponse, Endpoint, ErrorKind, GroupKey, GroupRequest, InviteLinkResponse,
    ListChatGroupRequest, ListChatGroupResponse, ResponseMeta, SecretString,
    UpdateChatGroupRequest, UpdateChatGroupResponse,
};

/// `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("cams-operator/", env!("CARGO_PKG_VERSION"));

/// The `User-Agent` of one operator instance, `cams-operator/<version> (<instance>)`, so that
/// every CAMS call can be attributed to the replica that made it. Characters other than
/// visible ASCII, and parentheses, become `_`.
pub fn user_agent_for(instance: &str) -> String {
    let instance: String = instance
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '(' && c != ')' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{USER_AGENT} ({instance})")
}
/// Default time allowed to open a connection (the official SDKs use 5 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for a whole request, body included (the official SDKs use 10 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub use super::rpc::{
    CUT_MARK, MAX_BODY_BYTES, MAX_TEXT_CHARS, MAX_THROTTLE_DELAY, RATE_LIMIT_HEADERS,
    SNIPPET_CHARS, cut, parse_time_left, throttle_delay,
};

/// Settings of [`HttpCams`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCamsConfig {
    /// Time allowed to open a connection (TCP and TLS). Default 5 s.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, from sending to the last byte of the body. Default 10 s.
    pub request_timeout: Duration,
    /// `User-Agent` header. Default [`USER_AGENT`].
    pub user_agent: String,
}

impl HttpCamsConfig {
    pub(crate) fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            request: self.request_timeout,
        }
    }
}

impl Default for HttpCamsConfig {
    fn default() -> Self {
        HttpCamsConfig {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            user_agent: USER_AGENT.to_owned(),
        }
    }
}

/// Where each request's `Timestamp` and `SignatureNonce` come from. The default,
/// [`SystemStamps`], reads the system clock and draws a random nonce; tests fix both.
pub trait StampSource: Send + Sync {
    /// The time written to `Timestamp` (must be within 15 minutes of the service's clock).
    fn now(&self) -> jiff::Timestamp;
    /// A `SignatureNonce` never used before by this AccessKey.
    fn nonce(&self) -> String;
}

/// The system clock and a random 128-bit nonce (32 lowercase hex digits).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemStamps;

impl StampSource for SystemStamps {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    fn nonce(&self) -> String {
        format!("{:032x}", rand::random::<u128>())
    }
}

/// Errors of building the client itself (not of a call: see [`CamsError`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The HTTP client could not be built (TLS set-up, for example no CA certificates found on
    /// the system).
    #[error("cannot build the CAMS HTTP client: {detail}")]
    Build {
        /// What failed.
        detail: String,
    },
}

impl Error {
    /// A short, bounded label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Build { .. } => "client_build",
        }
    }

    /// Whether trying again can help: never, the set-up of the machine must change.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// The CAMS client: implements [`CamsApi`] over HTTPS (or HTTP, for a local simulator).
///
/// Cheap to clone (the connection pool is shared). It does not retry, rate-limit or cache:
/// the controller does.
#[derive(Clone)]
pub struct HttpCams {
    http: reqwest::Client,
    config: HttpCamsConfig,
    stamps: Arc<dyn StampSource>,
}

impl fmt::Debug for HttpCams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCams")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpCams {
    /// Builds a client with `config`, the system clock and random nonces.
    ///
    /// Installs rustls's ring crypto provider as the process default if none is installed yet,
    /// and trusts the system's CA certificates (the container image must ship them).
    pub fn new(config: HttpCamsConfig) -> Result<Self, Error> {
        let http = build_http_client(&config)?;
        Ok(HttpCams {
            http,
            config,
            stamps: Arc::new(SystemStamps),
        })
    }

    /// The same client with another source of timestamps and nonces (tests fix them).
    pub fn with_stamps(mut self, stamps: impl StampSource + 'static) -> Self {
        self.stamps = Arc::new(stamps);
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &HttpCamsConfig {
        &self.config
    }

    /// Sends one signed call and logs its outcome (never the query string).
    async fn call(
        &self,
        action: &'static str,
        endpoint: &Endpoint,
        credentials: &Credentials,
        params: &[(&str, &str)],
    ) -> Result<(ResponseMeta, Envelope), CamsError> {
        let started = Instant::now();
        let url = match endpoint_url(endpoint) {
            Ok(url) => url,
            Err(detail) => {
                let err = CamsError::InvalidRequest { action, detail };
                tracing::debug!(action, category = err.category(), error = %err, "CAMS call not sent");
                return Err(err);
            }
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        let result = self.send(action, endpoint, url, credentials, params).await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok((meta, _)) => tracing::debug!(
                action,
                host = %host,
                request_id = meta.request_id.as_deref().unwrap_or("none"),
                http_status = meta.http_status,
                code = %meta.code,
                elapsed_ms,
                "CAMS call succeeded"
            ),
            Err(err) => tracing::debug!(
                action,
                host = %host,
                request_id = err.request_id().unwrap_or("none"),
                http_status = err.http_status().unwrap_or(0),
                code = err.code().unwrap_or(""),
                category = err.category(),
                elapsed_ms,
                error = %err,
                "CAMS call failed"
            ),
        }
        result
    }

    async fn send(
        &self,
        action: &'static str,
        endpoint: &Endpoint,
        mut url: reqwest::Url,
        credentials: &Credentials,
        params: &[(&str, &str)],
    ) -> Result<(ResponseMeta, Envelope), CamsError> {
        let nonce = self.stamps.nonce();
        let query =
            sign::build_signed_query(action, params, credentials, self.stamps.now(), &nonce);
        let redactor = redactor(credentials, &query);
        url.set_query(Some(&sign::encode_query(&query)));
        drop(query);
        match rpc::exchange(self.http.post(url), self.config.timeouts(), &redactor).await {
            Ok(answer) => decode(action, answer, &redactor),
            Err(RpcError::Unreadable(unreadable)) => Err(unreadable_error(action, unreadable)),
            Err(RpcError::Transport { detail }) => Err(CamsError::Transport {
                action,
                endpoint: endpoint.as_str().to_owned(),
                detail,
            }),
            Err(RpcError::Timeout { timeout }) => Err(CamsError::Timeout {
                action,
                endpoint: endpoint.as_str().to_owned(),
                timeout,
            }),
        }
    }
}

/// What signs a call, to be kept out of every text of its answer: the AccessKey secret, the
/// security token and the signature.
fn redactor(credentials: &Credentials, query: &[(String, String)]) -> Redactor {
    Redactor::new(
        std::iter::once(credentials.access_key_secret.expose())
            .chain(
                credentials
                    .security_token
                    .as_ref()
                    .map(SecretString::expose),
            )
            .chain(
                query
                    .iter()
                    .filter(|(name, _)| name == SIGNATURE_PARAM)
                    .map(|(_, value)| value.as_str()),
            ),
    )
}

/// The error of an answer whose body cannot be read.
fn unreadable_error(action: &'static str, unreadable: Unreadable) -> CamsError {
    match unreadable {
        Unreadable::TooLarge { http_status, limit } => CamsError::BodyTooLarge {
            action,
            http_status,
            limit,
        },
        Unreadable::NotAnObject {
            http_status,
            snippet,
        } => CamsError::InvalidBody {
            action,
            http_status,
            snippet,
        },
    }
}

/// What a CAMS answer means: the envelope of a success (`Code` `OK`), or the error it stands
/// for, classified by the one classification of Alibaba Cloud answers
/// ([`ErrorKind::of_response`](super::ErrorKind)). Pure.
// The error every `CamsApi` call returns, by value like theirs.
#[allow(clippy::result_large_err)]
fn decode(
    action: &'static str,
    answer: Answer<'_>,
    redactor: &Redactor,
) -> Result<(ResponseMeta, Envelope), CamsError> {
    let http_status = answer.http_status;
    if !answer.is_success() {
        let retry_after = answer
            .retry_after
            .filter(|_| answer.kind() == ErrorKind::Throttled);
        let envelope = answer.into_envelope();
        return Err(CamsError::Gateway {
            action,
            http_status,
            code: envelope.code,
            message: envelope.message,
            request_id: envelope.request_id,
            host_id: envelope.host_id,
            recommend: envelope.recommend,
            access_denied_detail: envelope.access_denied_detail,
            retry_after,
        });
    }
    let Some(code) = answer.envelope.code.clone() else {
        return Err(CamsError::InvalidBody {
            action,
            http_status,
            snippet: answer.snippet(redactor),
        });
    };
    let mut envelope = answer.into_envelope();
    if code != CODE_OK {
        return Err(CamsError::Business {
            action,
            http_status,
            code,
            message: envelope.message,
            request_id: envelope.request_id,
            success: envelope.success,
            access_denied_detail: envelope.access_denied_detail,
        });
    }
    let meta = ResponseMeta {
        http_status,
        request_id: envelope.request_id.take(),
        code,
        message: envelope.message.take(),
        success: envelope.success,
        access_denied_detail: envelope.access_denied_detail.take(),
    };
    for text in [&mut envelope.unique_code, &mut envelope.invite_link] {
        *text = redactor.clean(text.take());
    }
    if let Some(data) = &mut envelope.data {
        for item in &mut data.list {
            for text in [
                &mut item.group_id,
                &mut item.business_number,
                &mut item.subject,
                &mut item.description,
                &mut item.profile_picture_file,
                &mut item.group_status,
                &mut item.invite_link,
            ] {
                *text = redactor.clean(text.take());
            }
        }
    }
    Ok((meta, envelope))
}

/// Reads bytes exactly as [`HttpCams`] reads an answer, without the network.
#[allow(clippy::result_large_err)]
fn decode_bytes(
    action: &'static str,
    http_status: u16,
    headers: &HeaderMap,
    body: &[u8],
    credentials: &Credentials,
) -> Result<(ResponseMeta, Envelope), CamsError> {
    let redactor = redactor(credentials, &[]);
    let answer = rpc::read_answer(http_status, headers, Cow::Borrowed(body), &redactor)
        .map_err(|unreadable| unreadable_error(action, unreadable))?;
    decode(action, answer, &redactor)
}

/// The `UpdateChatGroup` answer made of `http_status`, `headers` and `body`, read exactly as
/// [`HttpCams`] reads it (texts cut, echoes of `credentials` redacted). Never panics, whatever
/// the bytes.
// The error every `CamsApi` call returns, by value like theirs.
#[allow(clippy::result_large_err)]
pub fn decode_update_chat_group(
    http_status: u16,
    headers: &HeaderMap,
    body: &[u8],
    credentials: &Credentials,
) -> Result<UpdateChatGroupResponse, CamsError> {
    decode_bytes(
        ACTION_UPDATE_CHAT_GROUP,
        http_status,
        headers,
        body,
        credentials,
    )
    .map(update_response)
}

/// The `ListChatGroup` answer made of `http_status`, `headers` and `body`, read exactly as
/// [`HttpCams`] reads it (texts cut, at most [`MAX_LIST_ITEMS`](super::answer::MAX_LIST_ITEMS) items, echoes of
/// `credentials` redacted). Never panics, whatever the bytes.
// The error every `CamsApi` call returns, by value like theirs.
#[allow(clippy::result_large_err)]
pub fn decode_list_chat_group(
    http_status: u16,
    headers: &HeaderMap,
    body: &[u8],
    credentials: &Credentials,
) -> Result<ListChatGroupResponse, CamsError> {
    decode_bytes(
        ACTION_LIST_CHAT_GROUP,
        http_status,
        headers,
        body,
        credentials,
    )
    .map(|(meta, envelope)| list_response(meta, envelope))
}

fn update_response((meta, envelope): (ResponseMeta, Envelope)) -> UpdateChatGroupResponse {
    UpdateChatGroupResponse {
        meta,
        result: envelope.result,
    }
}

fn list_response(meta: ResponseMeta, envelope: Envelope) -> ListChatGroupResponse {
    let data = envelope.data.unwrap_or_default();
    let groups = data
        .list
        .into_iter()
        .map(|item| ChatGroupItem {
            group_id: item.group_id,
            business_number: item.business_number,
            subject: item.subject,
            description: item.description,
            profile_picture_file: item.profile_picture_file,
            group_status: item.group_status,
            invite_link: item.invite_link,
        })
        .collect();
    ListChatGroupResponse {
        meta,
        total: data.total,
        groups,
    }
}

impl CamsApi for HttpCams {
    async fn update_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &UpdateChatGroupRequest,
    ) -> Result<UpdateChatGroupResponse, CamsError> {
        let mut params = group_params(&request.key, &request.channel_type);
        push_optional(&mut params, "Subject", &request.subject);
        push_optional(&mut params, "Description", &request.description);
        push_optional(
            &mut params,
            "ProfilePictureFile",
            &request.profile_picture_file,
        );
        self.call(ACTION_UPDATE_CHAT_GROUP, endpoint, credentials, &params)
            .await
            .map(update_response)
    }

    async fn list_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &ListChatGroupRequest,
    ) -> Result<ListChatGroupResponse, CamsError> {
        let page = page_json(request.page_index, request.page_size);
        let mut params: Vec<(&str, &str)> = vec![
            ("BusinessNumber", request.business_number.as_str()),
            ("CustSpaceId", request.cust_space_id.as_str()),
            ("Page", page.as_str()),
        ];
        push_optional(&mut params, "ChannelType", &request.channel_type);
        push_optional(&mut params, "GroupStatus", &request.group_status);
        push_optional(&mut params, "Subject", &request.subject);
        let (meta, envelope) = self
            .call(ACTION_LIST_CHAT_GROUP, endpoint, credentials, &params)
            .await?;
        Ok(list_response(meta, envelope))
    }

    async fn add_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &AddChatGroupRequest,
    ) -> Result<AddChatGroupResponse, CamsError> {
        let mut params: Vec<(&str, &str)> = vec![
            ("BusinessNumber", request.business_number.as_str()),
            ("CustSpaceId", request.cust_space_id.as_str()),
        ];
        push_optional(&mut params, "ChannelType", &request.channel_type);
        push_optional(&mut params, "Subject", &request.subject);
        push_optional(&mut params, "Description", &request.description);
        let (meta, envelope) = self
            .call(ACTION_ADD_CHAT_GROUP, endpoint, credentials, &params)
            .await?;
        Ok(AddChatGroupResponse {
            meta,
            unique_code: envelope.unique_code,
        })
    }

    async fn delete_chat_group(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<DeleteResponse, CamsError> {
        self.group_call(ACTION_DELETE_CHAT_GROUP, endpoint, credentials, request)
            .await
            .map(delete_response)
    }

    async fn add_chat_group_invite_link(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<InviteLinkResponse, CamsError> {
        let (meta, envelope) = self
            .group_call(
                ACTION_ADD_CHAT_GROUP_INVITE_LINK,
                endpoint,
                credentials,
                request,
            )
            .await?;
        Ok(InviteLinkResponse {
            meta,
            invite_link: envelope.invite_link,
        })
    }

    async fn delete_chat_group_invite_link(
        &self,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<DeleteResponse, CamsError> {
        self.group_call(
            ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
            endpoint,
            credentials,
            request,
        )
        .await
        .map(delete_response)
    }
}

impl HttpCams {
    /// A call whose parameters are the group's keys and the channel.
    async fn group_call(
        &self,
        action: &'static str,
        endpoint: &Endpoint,
        credentials: &Credentials,
        request: &GroupRequest,
    ) -> Result<(ResponseMeta, Envelope), CamsError> {
        let params = group_params(&request.key, &request.channel_type);
        self.call(action, endpoint, credentials, &params).await
    }
}

/// The parameters that address one group: its three keys and the channel.
fn group_params<'a>(
    key: &'a GroupKey,
    channel_type: &'a Option<String>,
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("BusinessNumber", key.business_number.as_str()),
        ("CustSpaceId", key.cust_space_id.as_str()),
        ("GroupId", key.group_id.as_str()),
    ];
    push_optional(&mut params, "ChannelType", channel_type);
    params
}

fn delete_response((meta, envelope): (ResponseMeta, Envelope)) -> DeleteResponse {
    DeleteResponse {
        meta,
        result: envelope.result,
    }
}

/// Finds the group `group_id` of `business_number` in `cust_space_id` by walking
/// `ListChatGroup` pages of `page_size` (at least 1) with the one pager ([`pager::walk`]), and
/// returns it with the envelope of the page it was on. Stops at the first match.
///
/// [`Lookup::Missing`] means the whole listing was read without the group;
/// [`Lookup::Truncated`] that the walk stopped at [`pager::MAX_LIST_PAGES`] pages before the
/// group turned up.
pub async fn find_group<C: CamsApi>(
    api: &C,
    endpoint: &Endpoint,
    credentials: &Credentials,
    cust_space_id: &str,
    business_number: &str,
    group_id: &str,
    page_size: u32,
) -> Result<Lookup<(ChatGroupItem, ResponseMeta)>, CamsError> {
    let request = ListChatGroupRequest {
        cust_space_id: cust_space_id.to_owned(),
        business_number: business_number.to_owned(),
        channel_type: None,
        group_status: None,
        subject: None,
        page_index: 1,
        page_size,
    };
    let mut found = None;
    let end = pager::walk(api, endpoint, credentials, &request, |page| {
        let ListChatGroupResponse { meta, groups, .. } = page;
        match groups
            .into_iter()
            .find(|item| item.group_id.as_deref() == Some(group_id))
        {
            Some(item) => {
                found = Some((item, meta));
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    })
    .await?;
    Ok(match (found, end) {
        (Some(found), _) => Lookup::Found(found),
        (None, WalkEnd::Truncated) => Lookup::Truncated,
        (None, WalkEnd::Stopped | WalkEnd::Complete) => Lookup::Missing,
    })
}

/// `Page` as CAMS expects it: `{"Index":1,"Size":20}`.
fn page_json(index: u32, size: u32) -> String {
    format!("{{\"Index\":{index},\"Size\":{size}}}")
}

/// Adds `name=value` when the value is set and not empty (empty strings are never sent).
fn push_optional<'a>(
    params: &mut Vec<(&'a str, &'a str)>,
    name: &'a str,
    value: &'a Option<String>,
) {
    if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
        params.push((name, value));
    }
}

/// The HTTP client of every Alibaba Cloud call the operator makes (CAMS, and STS for the
/// operator's own identity): rustls with the ring provider (installed as the process default if
/// none is yet), the system's CA certificates, the timeouts and `User-Agent` of `config`, no
/// redirects (a redirect would hand a signed query or a token to another host) and no retries
/// (every attempt needs a fresh timestamp and nonce, and the callers own retries).
pub(crate) fn build_http_client(config: &HttpCamsConfig) -> Result<reqwest::Client, Error> {
    // Fails only when a provider is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .user_agent(config.user_agent.as_str())
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .build()
        .map_err(|err| Error::Build {
            detail: error_chain(&err.without_url()),
        })
}

/// Whether the client sends requests to `endpoint`: an absolute `https://` (or `http://`) URL
/// with a host, without a user name, a password, a query or a fragment. The error says what is
/// wrong and what is allowed; validation uses it so that a spec names the field instead of
/// every call failing.
pub fn check_endpoint(endpoint: &Endpoint) -> Result<(), String> {
    endpoint_url(endpoint).map(drop)
}

/// Checks the endpoint and turns it into a URL without a query; the error says what is wrong
/// and what is allowed.
pub(crate) fn endpoint_url(endpoint: &Endpoint) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(endpoint.as_str()).map_err(|err| {
        format!(
            "endpoint {:?} is not a URL ({err}); expected https://host/",
            endpoint.as_str()
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!(
            "endpoint scheme {:?} is not allowed; use https:// (or http:// for a local simulator)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("endpoint has no host; expected https://host/".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "endpoint must not carry a user name or password; credentials never travel in the URL"
                .into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("endpoint must not carry a query or a fragment; expected https://host/".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cams::SecretString;

    #[test]
    fn default_config_matches_the_official_sdks() {
        let config = HttpCamsConfig::default();
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert_eq!(config.request_timeout, Duration::from_secs(10));
        assert_eq!(
            config.user_agent,
            format!("cams-operator/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn the_user_agent_names_the_instance() {
        assert_eq!(
            user_agent_for("cams-operator-7d9f-x2"),
            format!(
                "cams-operator/{} (cams-operator-7d9f-x2)",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(user_agent_for("a b(c)\u{e9}").ends_with(" (a_b_c__)"));
    }

    #[test]
    fn time_left_is_read_in_milliseconds() {
        assert_eq!(
            parse_time_left("Limit:1,Remain:0,TimeLeft:2000,Reset:1234"),
            Some(Duration::from_millis(2000))
        );
        assert_eq!(
            parse_time_left(" timeleft : 15 "),
            Some(Duration::from_millis(15))
        );
        assert_eq!(parse_time_left("Limit:1,Remain:0"), None);
        assert_eq!(parse_time_left("TimeLeft:soon"), None);
    }

    #[test]
    fn the_api_header_wins_over_the_user_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-ratelimit-user", "TimeLeft:9000".parse().unwrap());
        assert_eq!(throttle_delay(&headers), Some(Duration::from_secs(9)));
        headers.insert("x-ratelimit-user-api", "TimeLeft:250".parse().unwrap());
        assert_eq!(throttle_delay(&headers), Some(Duration::from_millis(250)));
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "id".into(),
            access_key_secret: SecretString::new("secret value"),
            security_token: None,
        }
    }

    #[test]
    fn answers_are_read_tolerantly() {
        let headers = HeaderMap::new();
        let ok = decode_update_chat_group(
            200,
            &headers,
            br#"{"Code":"OK","RequestId":"R","Success":"TRUE","Result":"2","AccessDeniedDetail":{"a":1}}"#,
            &creds(),
        )
        .expect("success");
        assert_eq!(ok.result, Some(2));
        assert_eq!(ok.meta.success, Some(true));
        assert_eq!(ok.meta.access_denied_detail.as_deref(), Some(r#"{"a":1}"#));
        let list = decode_list_chat_group(
            200,
            &headers,
            br#"{"Code":"OK","Data":{"Total":1,"List":[{"GroupId":"G1","NewField":[1]},"x"]}}"#,
            &creds(),
        )
        .expect("success");
        assert_eq!(list.total, Some(1));
        assert_eq!(list.groups.len(), 1);
        assert_eq!(list.groups[0].group_id.as_deref(), Some("G1"));
        assert_eq!(list.groups[0].subject, None);
    }

    #[test]
    fn long_texts_are_cut_and_echoed_secrets_redacted() {
        let message = format!("secret value {}", "m".repeat(10_000));
        let body = serde_json::json!({"Code": "Nope", "Message": message}).to_string();
        let err = decode_update_chat_group(200, &HeaderMap::new(), body.as_bytes(), &creds())
            .expect_err("business error");
        let message = err.message().expect("message");
        assert_eq!(message.chars().count(), MAX_TEXT_CHARS);
        assert!(message.starts_with("<redacted> mmm"), "{message}");
        assert!(message.ends_with(CUT_MARK));
        assert_eq!(cut("short".to_owned()), "short");
        assert_eq!(cut("é".repeat(MAX_TEXT_CHARS)), "é".repeat(MAX_TEXT_CHARS));
    }

    #[test]
    fn a_body_over_the_limit_names_the_limit() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let err =
            decode_list_chat_group(503, &HeaderMap::new(), &body, &creds()).expect_err("too large");
        assert!(matches!(
            err,
            CamsError::BodyTooLarge {
                limit: MAX_BODY_BYTES,
                ..
            }
        ));
        assert!(
            err.to_string().contains(&MAX_BODY_BYTES.to_string()),
            "{err}"
        );
        assert_eq!(err.category(), "unavailable");
    }

    #[test]
    fn throttle_delays_are_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ratelimit-user-api",
            "TimeLeft:18446744073709551615".parse().unwrap(),
        );
        assert_eq!(throttle_delay(&headers), Some(MAX_THROTTLE_DELAY));
    }

    #[test]
    fn page_is_json() {
        assert_eq!(page_json(1, 20), r#"{"Index":1,"Size":20}"#);
    }

    #[test]
    fn endpoint_rules() {
        let check = |url: &str| endpoint_url(&Endpoint::from_url(url));
        assert!(check("https://cams.ap-southeast-1.aliyuncs.com/").is_ok());
        assert!(check("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "not a url",
            "ftp://host/",
            "https://user:pw@host/",
            "https://host/?a=b",
            "https://host/#x",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
        let detail = check("https://user:hunter2@host/").unwrap_err();
        assert!(!detail.contains("hunter2"), "{detail}");
    }

    #[test]
    fn system_stamps_are_fresh() {
        let a = SystemStamps.nonce();
        let b = SystemStamps.nonce();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn building_the_client_does_not_panic() {
        let client = HttpCams::new(HttpCamsConfig::default());
        assert!(client.is_ok(), "{:?}", client.err());
    }

    #[tokio::test]
    async fn https_to_a_closed_port_is_a_transport_error() {
        // Bind then drop a listener to get a local port nobody listens on.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = HttpCams::new(HttpCamsConfig::default()).unwrap();
        let creds = Credentials {
            access_key_id: "id".into(),
            access_key_secret: SecretString::new("secret"),
            security_token: None,
        };
        let request = ListChatGroupRequest {
            cust_space_id: "cams-test".into(),
            business_number: "8613800001234".into(),
            channel_type: None,
            group_status: None,
            subject: None,
            page_index: 1,
            page_size: 20,
        };
        let endpoint = Endpoint::from_url(&format!("https://127.0.0.1:{port}/"));
        let err = client
            .list_chat_group(&endpoint, &creds, &request)
            .await
            .unwrap_err();
        assert!(matches!(err, CamsError::Transport { .. }), "{err:?}");
        assert!(err.is_retryable());
        assert!(!err.to_string().contains("Signature"), "{err}");
    }
}
