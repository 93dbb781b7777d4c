//! The HTTP side: a hyper 1 server that answers the RPC protocol on `/` and the admin endpoints
//! under `/_sim/`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::{self, Auth, Envelope};
use crate::faults::{ActionFaults, Decision, Fault, FaultTiming, ForcedError, ServerError};
use crate::group::GroupEdit;
use crate::handle::SimHandle;
use crate::params::{ApiError, Params};
use crate::protocol::codes;
use crate::state::{LoggedRequest, State, UNLOGGED_PARAMS};
use crate::verify::{self, AuthRequest, SignatureVersion};

/// Largest request body read.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long a client may take to send its headers or body.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Prefix of the admin endpoints.
pub const ADMIN_PREFIX: &str = "/_sim/";
/// Header carrying the throttling state.
pub const RATELIMIT_HEADER: &str = "x-ratelimit-user-api";
/// `HostId` reported when the request had no `Host` header.
const DEFAULT_HOST_ID: &str = "cams.ap-southeast-1.aliyuncs.com";

/// The service asked for the connection to be closed without an answer (a dropped-connection
/// fault).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub(crate) struct DroppedConnection;

type Body = Full<Bytes>;

/// Accepts connections until `shutdown` turns true, then lets open connections finish (up to
/// a grace period).
pub(crate) async fn serve(
    listener: TcpListener,
    handle: SimHandle,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let handle = handle.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(serve_connection(stream, handle, shutdown));
                }
                Err(error) => {
                    tracing::warn!(%error, "simulator: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    handle: SimHandle,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = service_fn(move |request: Request<Incoming>| {
        let handle = handle.clone();
        async move { route(&handle, request).await }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "simulator: connection ended");
            }
        }
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn route(
    handle: &SimHandle,
    request: Request<Incoming>,
) -> Result<Response<Body>, DroppedConnection> {
    let path = request.uri().path().to_owned();
    if path == "/" {
        rpc(handle, request).await
    } else if let Some(rest) = path.strip_prefix(ADMIN_PREFIX) {
        let rest = rest.to_owned();
        Ok(admin(handle, request, &rest).await)
    } else {
        let request_id = new_request_id();
        let host = host_id(request.headers());
        Ok(gateway_response(
            &request_id,
            &host,
            404,
            codes::INVALID_API_NOT_FOUND,
            &format!("Specified api is not found: the RPC endpoint is \"/\", not {path:?}."),
            None,
        ))
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `+` and `%20` are spaces. Fails on bad
/// escapes and on bytes that are not UTF-8; the message says where (a byte offset) and quotes at
/// most the escape itself, never the whole text, which may be long.
pub(crate) fn decode_form(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut offset = 0;
    for pair in text.split('&') {
        let start = offset;
        offset += pair.len() + 1;
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value_start = start + name.len() + 1;
        out.push((
            decode_component(name, start)?,
            decode_component(value, value_start)?,
        ));
    }
    Ok(out)
}

/// Decodes one name or value that starts at byte `offset` of the whole text.
fn decode_component(text: &str, offset: usize) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            b'%' => {
                // Exactly two hex digits: `u8::from_str_radix` alone would also take a sign.
                let digits = bytes
                    .get(index + 1..index + 3)
                    .filter(|d| d.iter().all(u8::is_ascii_hexdigit));
                let Some(digits) = digits else {
                    let escape = bytes
                        .get(index..(index + 3).min(bytes.len()))
                        .unwrap_or(&[]);
                    return Err(format!(
                        "bad percent-escape {:?} at byte {}",
                        String::from_utf8_lossy(escape),
                        offset + index
                    ));
                };
                out.push((hex_value(digits[0]) << 4) | hex_value(digits[1]));
                index += 3;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| format!("name or value that is not UTF-8 once decoded (at byte {offset})"))
}

/// The value of an ASCII hex digit (0 for anything else, which the caller has ruled out).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Longest part of a client's text quoted back in a message, in characters.
const MAX_QUOTED_CHARS: usize = 64;

/// `text` quoted, or its first [`MAX_QUOTED_CHARS`] characters quoted and followed by `...`.
fn quoted_start(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}...", &text[..end]),
    }
}

fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex = hex::encode_upper(bytes);
    format!(
        "{}-{}-4{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn host_id(headers: &HeaderMap) -> String {
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or(DEFAULT_HOST_ID)
        .to_owned()
}

fn json_response(status: u16, body: &Value, request_id: Option<&str>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert("x-acs-request-id", id);
    }
    response
}

fn gateway_response(
    request_id: &str,
    host: &str,
    status: u16,
    code: &str,
    message: &str,
    extra_header: Option<(&'static str, String)>,
) -> Response<Body> {
    let body = json!({
        "RequestId": request_id,
        "HostId": host,
        "Code": code,
        "Message": message,
        "Recommend": format!(
            "https://api.aliyun.com/troubleshoot?q={code}&product=cams&requestId={request_id}"
        ),
    });
    let mut response = json_response(status, &body, Some(request_id));
    if let Some((name, value)) = extra_header
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        response.headers_mut().insert(name, value);
    }
    response
}

fn business_response(request_id: &str, code: &str, message: &str) -> Response<Body> {
    let body = json!({
        "RequestId": request_id,
        "Code": code,
        "Message": message,
        "Success": false,
    });
    json_response(200, &body, Some(request_id))
}

fn success_response(
    request_id: &str,
    envelope: Envelope,
    mut fields: Map<String, Value>,
) -> Response<Body> {
    fields.insert("RequestId".into(), Value::String(request_id.to_owned()));
    if envelope == Envelope::CodeOk {
        fields.insert("Code".into(), Value::String(codes::OK.to_owned()));
        fields.insert("Message".into(), Value::String(codes::OK.to_owned()));
        fields.insert("Success".into(), Value::Bool(true));
    }
    json_response(200, &Value::Object(fields), Some(request_id))
}

/// What one RPC call produced, before it is logged.
struct Answer {
    response: Option<Response<Body>>,
    http_status: Option<u16>,
    code: Option<String>,
    /// `Code` of an answer that was made and then not sent (a lost-answer fault).
    lost_code: Option<String>,
}

impl Answer {
    fn gateway(
        request_id: &str,
        host: &str,
        status: u16,
        code: &str,
        message: &str,
        extra_header: Option<(&'static str, String)>,
    ) -> Answer {
        Answer {
            response: Some(gateway_response(
                request_id,
                host,
                status,
                code,
                message,
                extra_header,
            )),
            http_status: Some(status),
            code: Some(code.to_owned()),
            lost_code: None,
        }
    }
    fn business(request_id: &str, code: &str, message: &str) -> Answer {
        Answer {
            response: Some(business_response(request_id, code, message)),
            http_status: Some(200),
            code: Some(code.to_owned()),
            lost_code: None,
        }
    }
    fn from_api_error(request_id: &str, host: &str, error: ApiError) -> Answer {
        match error {
            ApiError::Gateway {
                http_status,
                code,
                message,
            } => Answer::gateway(request_id, host, http_status, &code, &message, None),
            ApiError::Business { code, message } => Answer::business(request_id, &code, &message),
        }
    }
    fn dropped() -> Answer {
        Answer {
            response: None,
            http_status: None,
            code: None,
            lost_code: None,
        }
    }
    /// The same call with its answer thrown away: the connection is closed instead.
    fn lost(self) -> Answer {
        Answer {
            lost_code: self.code,
            ..Answer::dropped()
        }
    }
}

/// Parsed parts of an RPC request.
struct RpcRequest {
    method: Method,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    params: Vec<(String, String)>,
    body: Bytes,
}

async fn read_rpc(request: Request<Incoming>) -> Result<RpcRequest, String> {
    let (parts, body) = request.into_parts();
    let collected =
        tokio::time::timeout(READ_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect())
            .await
            .map_err(|_| "the request body did not arrive in time".to_owned())?
            .map_err(|_| {
                format!("the request body could not be read (at most {MAX_BODY_BYTES} bytes)")
            })?;
    let body = collected.to_bytes();
    let query = decode_form(parts.uri.query().unwrap_or_default())
        .map_err(|detail| format!("the query string has a {detail}"))?;
    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let mut params = query.clone();
    if is_form && !body.is_empty() {
        let text =
            std::str::from_utf8(&body).map_err(|_| "the form body is not UTF-8".to_owned())?;
        params.extend(decode_form(text).map_err(|detail| format!("the form body has a {detail}"))?);
    }
    let mut seen = HashSet::new();
    if let Some((name, _)) = params.iter().find(|(name, _)| !seen.insert(name.as_str())) {
        return Err(format!(
            "the parameter {} is given more than once",
            quoted_start(name)
        ));
    }
    Ok(RpcRequest {
        method: parts.method,
        headers: parts.headers,
        query,
        params,
        body,
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn param_str<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    Params(params).get(name).filter(|v| !v.is_empty())
}

async fn rpc(
    handle: &SimHandle,
    request: Request<Incoming>,
) -> Result<Response<Body>, DroppedConnection> {
    let request_id = new_request_id();
    let host = host_id(request.headers());
    let method = request.method().clone();
    let scheme = verify::scheme_of(request.headers());
    let received = tokio::time::Instant::now();
    let mut entry = LoggedRequest {
        request_id: request_id.clone(),
        time: handle.now(),
        method: method.to_string(),
        action: None,
        version: None,
        signature_version: scheme,
        access_key_id: None,
        params: BTreeMap::new(),
        group_id: None,
        http_status: None,
        code: None,
        user_agent: header_str(request.headers(), "user-agent").map(str::to_owned),
        received,
        finished: received,
        abandoned: false,
        lost_answer_code: None,
    };
    // Logs the request as abandoned if the client goes away first (hyper then drops this
    // future).
    let mut abandoned = AbandonedGuard {
        handle,
        entry: Some(entry.clone()),
    };
    let answer = match read_rpc(request).await {
        Err(detail) => Answer::gateway(
            &request_id,
            &host,
            400,
            codes::INVALID_PARAMETER,
            &format!("The request could not be read: {detail}."),
            None,
        ),
        Ok(rpc) => {
            let (action, version) = action_and_version(scheme, &rpc);
            entry.action = action.map(str::to_owned);
            entry.version = version.map(str::to_owned);
            entry.params = rpc
                .params
                .iter()
                .filter(|(name, _)| !UNLOGGED_PARAMS.contains(&name.as_str()))
                .cloned()
                .collect();
            entry.group_id = param_str(&rpc.params, "GroupId").map(str::to_owned);
            entry.access_key_id = match scheme {
                SignatureVersion::V1 => param_str(&rpc.params, "AccessKeyId").map(str::to_owned),
                SignatureVersion::V3 => header_str(&rpc.headers, "authorization")
                    .and_then(|a| verify::parse_v3_authorization(a).ok())
                    .map(|a| a.access_key_id),
            };
            abandoned.entry = Some(entry.clone());
            answer_rpc(handle, &request_id, &host, &rpc).await
        }
    };
    abandoned.entry = None;
    entry.finished = tokio::time::Instant::now();
    entry.http_status = answer.http_status;
    entry.code.clone_from(&answer.code);
    entry.lost_answer_code.clone_from(&answer.lost_code);
    tracing::info!(
        request_id = %entry.request_id,
        action = entry.action.as_deref().unwrap_or(""),
        group_id = entry.group_id.as_deref().unwrap_or(""),
        http_status = entry.http_status.unwrap_or(0),
        code = entry.code.as_deref().unwrap_or(if entry.lost_answer_code.is_some() {
            "<answer lost>"
        } else {
            "<dropped>"
        }),
        lost_answer_code = entry.lost_answer_code.as_deref().unwrap_or(""),
        "simulator: call"
    );
    handle.with_state(|state| state.record(entry));
    answer.response.ok_or(DroppedConnection)
}

/// Records its entry as abandoned when dropped while still holding one: the request's future
/// was dropped before the answer was ready, because the client closed the connection.
struct AbandonedGuard<'a> {
    handle: &'a SimHandle,
    entry: Option<LoggedRequest>,
}

impl Drop for AbandonedGuard<'_> {
    fn drop(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            entry.finished = tokio::time::Instant::now();
            entry.abandoned = true;
            tracing::info!(
                request_id = %entry.request_id,
                action = entry.action.as_deref().unwrap_or(""),
                "simulator: call abandoned by the client"
            );
            self.handle.with_state(|state| state.record(entry));
        }
    }
}

/// `Action` and `Version`: parameters of a V1 request, headers of a V3 one.
fn action_and_version(scheme: SignatureVersion, rpc: &RpcRequest) -> (Option<&str>, Option<&str>) {
    match scheme {
        SignatureVersion::V1 => (
            param_str(&rpc.params, "Action"),
            param_str(&rpc.params, "Version"),
        ),
        SignatureVersion::V3 => (
            header_str(&rpc.headers, "x-acs-action"),
            header_str(&rpc.headers, "x-acs-version"),
        ),
    }
}

/// A gateway refusal: HTTP status, `Code`, `Message`.
type Refusal = (u16, &'static str, String);

async fn answer_rpc(handle: &SimHandle, request_id: &str, host: &str, rpc: &RpcRequest) -> Answer {
    let api = match find_api(rpc) {
        Ok(api) => api,
        Err((status, code, message)) => {
            return Answer::gateway(request_id, host, status, code, &message, None);
        }
    };
    tracing::debug!(
        product = api.product,
        action = api.action,
        version = api.version,
        "simulator: dispatch"
    );
    // Authentication, replay protection, then the fault decision, under one short lock.
    let (decision, timing) = match handle.with_state(|state| admit(state, api, rpc)) {
        Ok(decided) => decided,
        Err((status, code, message)) => {
            return Answer::gateway(request_id, host, status, code, &message, None);
        }
    };
    if timing.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(timing.latency_ms)).await;
    }
    match decision {
        Decision::Fault(fault) => answer_fault(request_id, host, &fault, &timing, handle.now()),
        Decision::Proceed => run_operation(handle, api, request_id, host, rpc, &timing),
        Decision::LoseAnswer => run_operation(handle, api, request_id, host, rpc, &timing).lost(),
    }
}

/// Runs the operation (or answers the code forced for its group) and makes its answer.
fn run_operation(
    handle: &SimHandle,
    api: &api::ApiSpec,
    request_id: &str,
    host: &str,
    rpc: &RpcRequest,
    timing: &FaultTiming,
) -> Answer {
    handle.with_state(|state| {
        let forced = param_str(&rpc.params, "GroupId")
            .and_then(|id| state.forced.get(id))
            .map(ForcedError::to_fault);
        if let Some(fault) = forced {
            return answer_fault(request_id, host, &fault, timing, state.now());
        }
        match (api.handler)(state, &Params(&rpc.params)) {
            Ok(fields) => Answer {
                response: Some(success_response(request_id, api.envelope, fields)),
                http_status: Some(200),
                code: Some(codes::OK.to_owned()),
                lost_code: None,
            },
            Err(error) => Answer::from_api_error(request_id, host, error),
        }
    })
}

/// The API a request names: the method, then `Action` and `Version`, then the API table.
fn find_api(rpc: &RpcRequest) -> Result<&'static api::ApiSpec, Refusal> {
    if rpc.method != Method::GET && rpc.method != Method::POST {
        return Err((
            400,
            codes::UNSUPPORTED_HTTP_METHOD,
            format!(
                "The HTTP method {} is not supported: use GET or POST.",
                rpc.method
            ),
        ));
    }
    let scheme = verify::scheme_of(&rpc.headers);
    let missing = |name: &str| {
        (
            400,
            codes::MISSING_PARAMETER,
            format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
        )
    };
    let (action, version) = action_and_version(scheme, rpc);
    let Some(action) = action else {
        return Err(missing(match scheme {
            SignatureVersion::V1 => "Action",
            SignatureVersion::V3 => "x-acs-action",
        }));
    };
    let Some(version) = version else {
        return Err(missing(match scheme {
            SignatureVersion::V1 => "Version",
            SignatureVersion::V3 => "x-acs-version",
        }));
    };
    api::find(version, action).ok_or_else(|| {
        (
            404,
            codes::INVALID_API_NOT_FOUND,
            format!("Specified api is not found: action {action:?} in version {version:?}."),
        )
    })
}

/// Whether the caller may call `api` (its signature, or for an anonymous API its timestamp, and
/// a fresh nonce), then the fault decision for the call.
fn admit(
    state: &mut State,
    api: &api::ApiSpec,
    rpc: &RpcRequest,
) -> Result<(Decision, FaultTiming), Refusal> {
    let now = state.now();
    match api.auth {
        Auth::AccessKey => {
            let auth_request = AuthRequest {
                method: rpc.method.as_str(),
                path: "/",
                headers: &rpc.headers,
                query: &rpc.query,
                params: &rpc.params,
                body: &rpc.body,
            };
            let keys = &state.keys;
            let caller = verify::authenticate(&auth_request, |id| keys.get(id), now)
                .map_err(|r| (r.http_status, r.code, r.message))?;
            if !state
                .nonces
                .check_and_insert(&caller.access_key_id, &caller.nonce, now)
            {
                return Err((
                    400,
                    codes::SIGNATURE_NONCE_USED,
                    "Specified signature nonce was used already.".to_owned(),
                ));
            }
        }
        Auth::Anonymous => {
            verify::check_anonymous(&rpc.params, now)
                .map_err(|r| (r.http_status, r.code, r.message))?;
        }
    }
    Ok(state.decide(api.action))
}

fn answer_fault(
    request_id: &str,
    host: &str,
    fault: &Fault,
    timing: &FaultTiming,
    now: jiff::Timestamp,
) -> Answer {
    match fault {
        Fault::Throttle => {
            let time_left = timing.throttle_time_left_ms;
            let reset =
                now.as_second() + i64::try_from(time_left.div_ceil(1000)).unwrap_or(i64::MAX / 2);
            Answer::gateway(
                request_id,
                host,
                400,
                codes::THROTTLING_USER,
                "Request was denied due to user flow control.",
                Some((
                    RATELIMIT_HEADER,
                    format!(
                        "Limit:{},Remain:0,TimeLeft:{time_left},Reset:{reset}",
                        timing.throttle_limit
                    ),
                )),
            )
        }
        Fault::ServerError { error } => Answer::gateway(
            request_id,
            host,
            error.http_status(),
            error.code(),
            match error {
                ServerError::ServiceUnavailable => {
                    "The request has failed due to a temporary failure of the server."
                }
                ServerError::InternalError => {
                    "The request processing has failed due to some unknown error, exception or failure."
                }
            },
            None,
        ),
        Fault::Drop => Answer::dropped(),
        Fault::Gateway {
            http_status,
            code,
            message,
        } => Answer::gateway(
            request_id,
            host,
            *http_status,
            code,
            message
                .as_deref()
                .unwrap_or("Error injected by the CAMS simulator."),
            None,
        ),
        Fault::Business { code, message } => Answer::business(
            request_id,
            code,
            message
                .as_deref()
                .unwrap_or("Error injected by the CAMS simulator."),
        ),
        Fault::Pass | Fault::LostAnswer => Answer::business(
            request_id,
            codes::INTERNAL_ERROR,
            "A fault that runs the operation was answered directly; this is a simulator bug.",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Admin endpoints

fn admin_json(status: u16, body: &Value) -> Response<Body> {
    json_response(status, body, None)
}

fn admin_error(status: u16, message: impl Into<String>) -> Response<Body> {
    admin_json(status, &json!({"error": message.into()}))
}

async fn admin_body<T: for<'de> Deserialize<'de>>(
    request: Request<Incoming>,
) -> Result<T, Response<Body>> {
    let collected = tokio::time::timeout(
        READ_TIMEOUT,
        Limited::new(request.into_body(), MAX_BODY_BYTES).collect(),
    )
    .await
    .map_err(|_| admin_error(400, "the request body did not arrive in time"))?
    .map_err(|_| admin_error(400, "the request body could not be read"))?;
    serde_json::from_slice(&collected.to_bytes())
        .map_err(|e| admin_error(400, format!("the body is not valid for this endpoint: {e}")))
}

/// `{"fixed": "2016-02-23T12:46:24Z"}`, `{"offsetSeconds": -3600}` or `{}` (system clock).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClockSetting {
    #[serde(default)]
    fixed: Option<jiff::Timestamp>,
    #[serde(default)]
    offset_seconds: Option<i64>,
}

/// `{"creationDelayMs": 30000}`: how long `AddChatGroup`'s groups stay `CREATING`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreationDelaySetting {
    creation_delay_ms: u64,
}

fn creation_delay_json(handle: &SimHandle) -> Value {
    let ms = u64::try_from(handle.creation_delay().as_millis()).unwrap_or(u64::MAX);
    json!({ "creationDelayMs": ms })
}

/// `{"custSpaceId": .., "businessNumber": .., "groupId": ..}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupKeyBody {
    cust_space_id: String,
    business_number: String,
    group_id: String,
}

async fn admin(handle: &SimHandle, request: Request<Incoming>, rest: &str) -> Response<Body> {
    let method = request.method().clone();
    match (method, rest) {
        (Method::GET, "stats") => admin_json(200, &json!(handle.stats())),
        (Method::POST, "reset") => {
            handle.reset_counters();
            admin_json(200, &json!({"ok": true}))
        }
        (Method::GET, "groups") => admin_json(200, &json!(handle.groups())),
        (Method::POST, "groups") => match admin_body::<GroupEdit>(request).await {
            Ok(edit) => match handle.apply_group_edit(edit) {
                Ok(group) => admin_json(200, &json!(group)),
                Err(error) => admin_error(400, error.to_string()),
            },
            Err(response) => response,
        },
        (Method::POST, "groups/delete") => match admin_body::<GroupKeyBody>(request).await {
            Ok(key) => {
                let removed =
                    handle.remove_group(&key.cust_space_id, &key.business_number, &key.group_id);
                admin_json(200, &json!({"removed": removed.is_some()}))
            }
            Err(response) => response,
        },
        (Method::POST, "faults") => {
            match admin_body::<BTreeMap<String, Option<ActionFaults>>>(request).await {
                Ok(map) => {
                    for (action, faults) in map {
                        let result = match faults {
                            Some(faults) => handle.set_faults(&action, faults),
                            None => {
                                handle.clear_faults(&action);
                                Ok(())
                            }
                        };
                        if let Err(error) = result {
                            return admin_error(400, error.to_string());
                        }
                    }
                    admin_json(200, &json!({"ok": true}))
                }
                Err(response) => response,
            }
        }
        (Method::POST, "forced-codes") => {
            match admin_body::<BTreeMap<String, Option<ForcedError>>>(request).await {
                Ok(map) => {
                    for (group_id, forced) in map {
                        let result = match forced {
                            Some(forced) => handle.force_error(&group_id, forced),
                            None => {
                                handle.clear_forced_code(&group_id);
                                Ok(())
                            }
                        };
                        if let Err(error) = result {
                            return admin_error(400, error.to_string());
                        }
                    }
                    admin_json(200, &json!({"ok": true}))
                }
                Err(response) => response,
            }
        }
        (Method::POST, "clock") => match admin_body::<ClockSetting>(request).await {
            Ok(ClockSetting {
                fixed: Some(_),
                offset_seconds: Some(_),
            }) => admin_error(400, "give either fixed or offsetSeconds, not both"),
            Ok(ClockSetting {
                fixed: Some(at), ..
            }) => {
                handle.set_time(at);
                admin_json(200, &json!({"now": handle.now()}))
            }
            Ok(ClockSetting { offset_seconds, .. }) => {
                handle
                    .set_clock_offset(jiff::SignedDuration::from_secs(offset_seconds.unwrap_or(0)));
                admin_json(200, &json!({"now": handle.now()}))
            }
            Err(response) => response,
        },
        (Method::GET, "creation-delay") => admin_json(200, &creation_delay_json(handle)),
        (Method::POST, "creation-delay") => match admin_body::<CreationDelaySetting>(request).await
        {
            Ok(setting) => {
                handle.set_creation_delay(Duration::from_millis(setting.creation_delay_ms));
                admin_json(200, &creation_delay_json(handle))
            }
            Err(response) => response,
        },
        (
            _,
            "stats" | "reset" | "groups" | "groups/delete" | "faults" | "forced-codes" | "clock"
            | "creation-delay",
        ) => admin_error(405, format!("method not allowed on {ADMIN_PREFIX}{rest}")),
        _ => admin_error(
            404,
            format!(
                "unknown admin endpoint {ADMIN_PREFIX}{rest}: use stats, reset, groups, groups/delete, faults, forced-codes, clock or creation-delay"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_treats_plus_and_percent20_as_space() {
        let pairs =
            decode_form("Subject=Team+chat%20%2A1%2A&Empty=&Flag&Caf%C3%A9=%7E").expect("ok");
        assert_eq!(
            pairs,
            vec![
                ("Subject".to_owned(), "Team chat *1*".to_owned()),
                ("Empty".to_owned(), String::new()),
                ("Flag".to_owned(), String::new()),
                ("Café".to_owned(), "~".to_owned()),
            ]
        );
        assert!(decode_form("a=%zz").is_err());
        assert!(decode_form("a=%ff").is_err());
        assert!(decode_form("a=%4").is_err());
    }

    #[test]
    fn a_sign_after_a_percent_is_not_a_hex_digit() {
        // `u8::from_str_radix` takes a leading sign: `%+A` once decoded to a line feed.
        for text in ["a=%+A", "a=%+0", "%+1=b", "a=%-1"] {
            let err = decode_form(text).expect_err(text);
            assert!(err.contains("bad percent-escape"), "{err}");
        }
    }

    #[test]
    fn a_refusal_quotes_the_escape_not_the_text() {
        let long = format!("a={}&b=%zz{}", "x".repeat(100_000), "y".repeat(100_000));
        let err = decode_form(&long).expect_err("bad escape");
        assert_eq!(err, "bad percent-escape \"%zz\" at byte 100005");
        let err = decode_form(&format!("{}=%ff", "n".repeat(100_000))).expect_err("not UTF-8");
        assert!(err.len() < 100, "{err}");
        assert_eq!(
            quoted_start(&"q".repeat(1000)),
            format!("{:?}...", "q".repeat(64))
        );
    }

    /// Whether `text` is well-formed form encoding: every `%` starts two hex digits, and every
    /// name and value is UTF-8 once decoded. Written independently of `decode_form`.
    fn well_formed(text: &str) -> bool {
        let part_ok = |part: &str| {
            let bytes = part.as_bytes();
            let mut decoded = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] != b'%' {
                    decoded.push(bytes[i]);
                    i += 1;
                    continue;
                }
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex {
                    Some(h) if h.chars().all(|c| c.is_ascii_hexdigit()) => {
                        decoded.push(u8::from_str_radix(h, 16).unwrap_or(0));
                        i += 3;
                    }
                    _ => return false,
                }
            }
            String::from_utf8(decoded).is_ok()
        };
        text.split('&').all(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            part_ok(name) && part_ok(value)
        })
    }

    fn config(cases: u32) -> proptest::test_runner::Config {
        let mut config = proptest::test_runner::Config::default();
        if std::env::var_os("PROPTEST_CASES").is_none() {
            config.cases = cases;
        }
        config.failure_persistence = None;
        config
    }

    proptest::proptest! {
        #![proptest_config(config(512))]

        /// Form decoding accepts exactly the well-formed texts, decodes what it accepts so
        /// that encoding it again and decoding gives the same pairs, and refuses the rest with
        /// a short message, however long the text.
        #[test]
        fn form_decoding_accepts_exactly_well_formed_text(
            text in "([%+=&a-fA-F0-9gG ~._\\-]|é|%[0-9a-fA-F+-][0-9a-fA-F+-]|%[cC][3]|%[fF][fF]){0,40}",
            padding in 0usize..3000,
        ) {
            let text = format!("{text}{}", "a".repeat(padding));
            match decode_form(&text) {
                Ok(pairs) => {
                    proptest::prop_assert!(well_formed(&text), "accepted {text:?}");
                    let encoded: Vec<String> = pairs
                        .iter()
                        .map(|(n, v)| format!("{}={}", crate::verify::pop_encode(n), crate::verify::pop_encode(v)))
                        .collect();
                    let again = decode_form(&encoded.join("&"));
                    proptest::prop_assert_eq!(again.as_ref(), Ok(&pairs));
                }
                Err(message) => {
                    proptest::prop_assert!(!well_formed(&text), "refused {text:?}: {message}");
                    proptest::prop_assert!(message.chars().count() <= 200, "{} characters", message.chars().count());
                }
            }
        }
    }

    #[test]
    fn request_ids_look_like_uppercase_uuids_and_differ() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(
            a.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase())
        );
    }
}
