//! Signature verification, as the Alibaba Cloud API gateway does it.
//!
//! Written from the published algorithm, independently of the operator's signer, so that a bug in
//! that signer cannot be mirrored here and go unnoticed:
//!
//! - **V1** (HMAC-SHA1, RPC style): every parameter but `Signature` (query and form body) is
//!   POP-encoded, sorted by name and joined into the canonicalised query string (CQS);
//!   `StringToSign = METHOD & enc("/") & enc(CQS)`; the signature is
//!   `base64(HMAC-SHA1(secret + "&", StringToSign))`.
//! - **V3** (`ACS3-HMAC-SHA256`): the canonical request is rebuilt from the method, the path, the
//!   query, exactly the headers named in `SignedHeaders` and `x-acs-content-sha256`;
//!   `StringToSign = "ACS3-HMAC-SHA256\n" + hex(SHA-256(CanonicalRequest))` and the signature is
//!   `hex(HMAC-SHA256(secret, StringToSign))`.
//!
//! `authenticate` runs every check that needs no memory (required parameters, clock skew, key
//! lookup, signature, STS token); replay protection (nonces) is the caller's, because it needs
//! state.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use jiff::{SignedDuration, Timestamp};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::config::AccessKeySeed;
use crate::protocol::codes;

/// The only V3 algorithm the simulator accepts.
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// The largest difference between a request's timestamp and the simulator's clock.
pub const MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(15 * 60);
/// SHA-256 of an empty body, as sent in `x-acs-content-sha256`.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The signature scheme a request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SignatureVersion {
    /// RPC signature V1 (HMAC-SHA1, parameters `Signature*`).
    V1,
    /// Signature V3 (`Authorization: ACS3-HMAC-SHA256 ...`).
    V3,
}

/// Percent-encodes as Alibaba Cloud's POP canonicalisation does: `A-Z a-z 0-9 - _ . ~` stay,
/// every other UTF-8 byte becomes `%XY` with uppercase hex (space is `%20`, `*` is `%2A`).
pub fn pop_encode(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len() + value.len() / 2);
    for &byte in value.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// Sorted `enc(name)=enc(value)` pairs joined with `&`. Sorting is by encoded name, then by
/// encoded value (byte order), which for the ASCII names of Alibaba Cloud APIs is the order the
/// official signers use.
fn canonical_query<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(String, String)> = params
        .map(|(name, value)| (pop_encode(name), pop_encode(value)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The V1 StringToSign of a request: `METHOD&%2F&enc(CQS)`, with every parameter but
/// `Signature` in the CQS.
pub fn v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let cqs = canonical_query(
        params
            .iter()
            .filter(|(name, _)| name != "Signature")
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    format!("{method}&{}&{}", pop_encode("/"), pop_encode(&cqs))
}

/// Whether `signature` (base64) is the V1 signature of `string_to_sign` under `secret`.
/// The comparison is constant-time.
pub fn v1_signature_matches(secret: &str, string_to_sign: &str, signature: &str) -> bool {
    let Ok(received) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    let key = format!("{secret}&");
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&received).is_ok()
}

/// The parts of an `Authorization: ACS3-HMAC-SHA256 ...` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V3Authorization {
    /// The algorithm before the first space.
    pub algorithm: String,
    /// `Credential`: the AccessKey ID.
    pub access_key_id: String,
    /// `SignedHeaders`, in the order given, lowercase.
    pub signed_headers: Vec<String>,
    /// `Signature`, lowercase hex as sent.
    pub signature: String,
}

/// Parses `ACS3-HMAC-SHA256 Credential=ID,SignedHeaders=h1;h2,Signature=HEX`. The error names
/// what is missing or malformed (never the signature itself).
pub fn parse_v3_authorization(value: &str) -> Result<V3Authorization, String> {
    let value = value.trim();
    let (algorithm, rest) = value
        .split_once(' ')
        .ok_or_else(|| "the Authorization header has no credential part".to_owned())?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, item) = part
            .split_once('=')
            .ok_or_else(|| "the Authorization header has an item without '='".to_owned())?;
        match name.trim() {
            "Credential" => credential = Some(item.trim().to_owned()),
            "SignedHeaders" => signed_headers = Some(item.trim().to_owned()),
            "Signature" => signature = Some(item.trim().to_owned()),
            _ => {}
        }
    }
    let access_key_id = credential
        .filter(|c| !c.is_empty())
        .ok_or_else(|| "the Authorization header lacks Credential".to_owned())?;
    let signed_headers = signed_headers
        .filter(|h| !h.is_empty())
        .ok_or_else(|| "the Authorization header lacks SignedHeaders".to_owned())?;
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "the Authorization header lacks Signature".to_owned())?;
    Ok(V3Authorization {
        algorithm: algorithm.trim().to_owned(),
        access_key_id,
        signed_headers: signed_headers
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect(),
        signature,
    })
}

/// The V3 canonical request. `query` holds the decoded query parameters only (a form body is
/// covered by `payload_hash`); headers are taken exactly as listed in `signed_headers`, each as
/// `name:value` with repeated headers' trimmed values sorted and joined by `,`.
pub fn v3_canonical_request(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut out = String::new();
    out.push_str(method);
    out.push('\n');
    out.push_str(path);
    out.push('\n');
    out.push_str(&canonical_query(
        query.iter().map(|(n, v)| (n.as_str(), v.as_str())),
    ));
    out.push('\n');
    for name in signed_headers {
        let mut values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .collect();
        values.sort();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// The V3 StringToSign of a canonical request.
pub fn v3_string_to_sign(canonical_request: &str) -> String {
    let digest = Sha256::digest(canonical_request.as_bytes());
    format!("{V3_ALGORITHM}\n{}", hex::encode(digest))
}

/// Whether `signature` (hex) is the V3 signature of `string_to_sign` under `secret`.
/// The comparison is constant-time.
pub fn v3_signature_matches(secret: &str, string_to_sign: &str, signature: &str) -> bool {
    let Ok(received) = hex::decode(signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&received).is_ok()
}

/// Hex SHA-256 of a body, as `x-acs-content-sha256` carries it.
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// What [`authenticate`] looks at.
pub(crate) struct AuthRequest<'a> {
    /// HTTP method (`GET`, `POST`).
    pub method: &'a str,
    /// Request path (`/`).
    pub path: &'a str,
    /// Headers as received.
    pub headers: &'a HeaderMap,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// Decoded query and form-body parameters together.
    pub params: &'a [(String, String)],
    /// Raw body.
    pub body: &'a [u8],
}

/// A request whose signature, clock and token checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The AccessKey ID that signed.
    pub access_key_id: String,
    /// The request's nonce, for the replay check.
    pub nonce: String,
    /// The scheme used.
    pub version: SignatureVersion,
}

/// A gateway rejection: HTTP status, `Code` and `Message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// HTTP status of the answer.
    pub http_status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    fn new(http_status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            http_status,
            code,
            message: message.into(),
        }
    }
    fn missing(name: &str) -> Self {
        Rejection::new(
            400,
            codes::MISSING_PARAMETER,
            format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
        )
    }
    fn incomplete(detail: impl Into<String>) -> Self {
        Rejection::new(
            400,
            codes::INCOMPLETE_SIGNATURE,
            format!(
                "The request signature does not conform to Aliyun standards: {}",
                detail.into()
            ),
        )
    }
}

/// The scheme a request claims: V3 when it carries an `Authorization` header, V1 otherwise.
pub(crate) fn scheme_of(headers: &HeaderMap) -> SignatureVersion {
    if headers.contains_key(http::header::AUTHORIZATION) {
        SignatureVersion::V3
    } else {
        SignatureVersion::V1
    }
}

/// Checks a request's signature, timestamp and STS token against the configured keys
/// (`lookup`) and the simulator's clock (`now`). Nonce reuse is checked by the caller.
pub(crate) fn authenticate<'k>(
    request: &AuthRequest<'_>,
    lookup: impl Fn(&str) -> Option<&'k AccessKeySeed>,
    now: Timestamp,
) -> Result<Caller, Rejection> {
    match scheme_of(request.headers) {
        SignatureVersion::V1 => authenticate_v1(request, lookup, now),
        SignatureVersion::V3 => authenticate_v3(request, lookup, now),
    }
}

/// Checks an unsigned request (an [`super::api::Auth::Anonymous`] API): it must carry a
/// `Timestamp` (or the legacy `TimeStamp`) within 15 minutes of the simulator's clock.
pub(crate) fn check_anonymous(
    params: &[(String, String)],
    now: Timestamp,
) -> Result<(), Rejection> {
    match (param(params, "Timestamp"), param(params, "TimeStamp")) {
        (Some(t), _) => check_time(t, "Timestamp", now),
        (None, Some(t)) => check_time(t, "TimeStamp", now),
        (None, None) => Err(Rejection::missing("Timestamp")),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn check_time(value: &str, name: &str, now: Timestamp) -> Result<(), Rejection> {
    let time: Timestamp = value.parse().map_err(|_| {
        Rejection::new(
            400,
            codes::INVALID_TIMESTAMP_FORMAT,
            format!(
                "Specified {name} is not valid: expected UTC in ISO 8601, e.g. 2026-11-26T06:00:00Z."
            ),
        )
    })?;
    let skew = now.duration_since(time).abs();
    if skew > MAX_CLOCK_SKEW {
        return Err(Rejection::new(
            400,
            codes::INVALID_TIMESTAMP_EXPIRED,
            format!(
                "Specified time stamp or date value is expired: {name} {time} is more than 15 minutes away from the server time {now}."
            ),
        ));
    }
    Ok(())
}

fn lookup_key<'k>(
    lookup: impl Fn(&str) -> Option<&'k AccessKeySeed>,
    id: &str,
) -> Result<&'k AccessKeySeed, Rejection> {
    lookup(id).ok_or_else(|| {
        Rejection::new(
            404,
            codes::INVALID_ACCESS_KEY_ID_NOT_FOUND,
            "Specified access key is not found.",
        )
    })
}

fn check_token(key: &AccessKeySeed, sent: Option<&str>, now: Timestamp) -> Result<(), Rejection> {
    match (&key.security_token, sent) {
        (None, None) => Ok(()),
        (Some(expected), Some(sent)) if expected.expose() == sent => match key.expires_at {
            Some(expiry) if expiry <= now => Err(Rejection::new(
                400,
                codes::INVALID_SECURITY_TOKEN_EXPIRED,
                "Specified SecurityToken is expired.",
            )),
            _ => Ok(()),
        },
        (Some(_), None) => Err(Rejection::new(
            400,
            codes::INVALID_SECURITY_TOKEN_MISMATCH,
            "The AccessKey is an STS key: the request must carry its SecurityToken.",
        )),
        (Some(_), Some(_)) => Err(Rejection::new(
            400,
            codes::INVALID_SECURITY_TOKEN_MISMATCH,
            "Specified SecurityToken does not match the AccessKey.",
        )),
        (None, Some(_)) => Err(Rejection::new(
            400,
            codes::INVALID_SECURITY_TOKEN_MISMATCH,
            "A SecurityToken was sent with an AccessKey that is not an STS key.",
        )),
    }
}

fn authenticate_v1<'k>(
    request: &AuthRequest<'_>,
    lookup: impl Fn(&str) -> Option<&'k AccessKeySeed>,
    now: Timestamp,
) -> Result<Caller, Rejection> {
    let params = request.params;
    let signature = param(params, "Signature")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejection::incomplete("the Signature parameter is missing"))?;
    match param(params, "SignatureMethod") {
        Some("HMAC-SHA1") => {}
        Some(_) => return Err(Rejection::incomplete("SignatureMethod must be HMAC-SHA1")),
        None => return Err(Rejection::incomplete("SignatureMethod is missing")),
    }
    match param(params, "SignatureVersion") {
        Some("1.0") => {}
        Some(_) => return Err(Rejection::incomplete("SignatureVersion must be 1.0")),
        None => return Err(Rejection::incomplete("SignatureVersion is missing")),
    }
    let access_key_id = param(params, "AccessKeyId")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejection::missing("AccessKeyId"))?;
    let nonce = param(params, "SignatureNonce")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejection::missing("SignatureNonce"))?;
    let (time_name, time) = match (param(params, "Timestamp"), param(params, "TimeStamp")) {
        (Some(t), _) => ("Timestamp", t),
        (None, Some(t)) => ("TimeStamp", t),
        (None, None) => return Err(Rejection::missing("Timestamp")),
    };
    check_time(time, time_name, now)?;
    let key = lookup_key(lookup, access_key_id)?;
    let string_to_sign = v1_string_to_sign(request.method, params);
    if !v1_signature_matches(key.secret.expose(), &string_to_sign, signature) {
        return Err(Rejection::new(
            400,
            codes::SIGNATURE_DOES_NOT_MATCH,
            format!(
                "Specified signature does not match our calculation. server string to sign is:{}",
                mask_token(&string_to_sign, param(params, "SecurityToken"))
            ),
        ));
    }
    check_token(key, param(params, "SecurityToken"), now)?;
    Ok(Caller {
        access_key_id: access_key_id.to_owned(),
        nonce: nonce.to_owned(),
        version: SignatureVersion::V1,
    })
}

/// The StringToSign with the (doubly encoded) security token masked, so that an error message
/// can echo it like the real gateway does without carrying the token.
fn mask_token(string_to_sign: &str, token: Option<&str>) -> String {
    match token {
        Some(token) if !token.is_empty() => {
            let twice = pop_encode(&pop_encode(token));
            string_to_sign.replace(&twice, "<redacted>")
        }
        _ => string_to_sign.to_owned(),
    }
}

fn authenticate_v3<'k>(
    request: &AuthRequest<'_>,
    lookup: impl Fn(&str) -> Option<&'k AccessKeySeed>,
    now: Timestamp,
) -> Result<Caller, Rejection> {
    let headers = request.headers;
    let raw = header(headers, http::header::AUTHORIZATION.as_str())
        .ok_or_else(|| Rejection::incomplete("the Authorization header is not valid text"))?;
    let auth = parse_v3_authorization(raw).map_err(Rejection::incomplete)?;
    if auth.algorithm != V3_ALGORITHM {
        return Err(Rejection::incomplete(format!(
            "the signature algorithm must be {V3_ALGORITHM}"
        )));
    }
    for required in [
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        if header(headers, required).is_none_or(str::is_empty) {
            return Err(Rejection::incomplete(format!(
                "the {required} header is missing"
            )));
        }
    }
    // Every header that carries meaning must be covered by the signature.
    let unsigned = headers.keys().map(http::HeaderName::as_str).find(|name| {
        (*name == "host" || *name == "content-type" || name.starts_with("x-acs-"))
            && !auth.signed_headers.iter().any(|s| s == name)
    });
    if let Some(name) = unsigned {
        return Err(Rejection::incomplete(format!(
            "the {name} header must be listed in SignedHeaders"
        )));
    }
    let content_sha256 = header(headers, "x-acs-content-sha256").unwrap_or_default();
    if !content_sha256.eq_ignore_ascii_case(&sha256_hex(request.body)) {
        return Err(Rejection::new(
            400,
            codes::SIGNATURE_DOES_NOT_MATCH,
            "The x-acs-content-sha256 header does not match the SHA-256 of the request body.",
        ));
    }
    check_time(
        header(headers, "x-acs-date").unwrap_or_default(),
        "x-acs-date",
        now,
    )?;
    let key = lookup_key(lookup, &auth.access_key_id)?;
    let canonical = v3_canonical_request(
        request.method,
        request.path,
        request.query,
        headers,
        &auth.signed_headers,
        content_sha256,
    );
    let string_to_sign = v3_string_to_sign(&canonical);
    if !v3_signature_matches(key.secret.expose(), &string_to_sign, &auth.signature) {
        return Err(Rejection::new(
            400,
            codes::SIGNATURE_DOES_NOT_MATCH,
            format!(
                "Specified signature does not match our calculation. server string to sign is:{}",
                string_to_sign.replace('\n', "\\n")
            ),
        ));
    }
    check_token(key, header(headers, "x-acs-security-token"), now)?;
    Ok(Caller {
        access_key_id: auth.access_key_id,
        nonce: header(headers, "x-acs-signature-nonce")
            .unwrap_or_default()
            .to_owned(),
        version: SignatureVersion::V3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn ecs_example(time_name: &str) -> Vec<(String, String)> {
        params(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            (time_name, "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ])
    }

    #[test]
    fn pop_encoding_follows_the_gateway_rules() {
        assert_eq!(pop_encode("a b*c~d/é"), "a%20b%2Ac~d%2F%C3%A9");
        assert_eq!(pop_encode("AZaz09-_.~"), "AZaz09-_.~");
    }

    #[test]
    fn ecs_documentation_example() {
        let sts = v1_string_to_sign("GET", &ecs_example("Timestamp"));
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert!(v1_signature_matches(
            "testsecret",
            &sts,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
        assert!(!v1_signature_matches(
            "testsecreT",
            &sts,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
    }

    #[test]
    fn ecs_example_with_the_legacy_timestamp_name() {
        let sts = v1_string_to_sign("GET", &ecs_example("TimeStamp"));
        assert!(v1_signature_matches(
            "testsecret",
            &sts,
            "CT9X0VtwR86fNWSnsc6v8YGOjuE="
        ));
    }

    #[test]
    fn sms_example_with_utf8_and_json_values() {
        let p = params(&[
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", "{\"customer\":\"test\"}"),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]);
        let sts = v1_string_to_sign("GET", &p);
        assert!(v1_signature_matches(
            "testSecret",
            &sts,
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        ));
    }

    #[test]
    fn official_sdk_unit_test_vector_with_an_empty_method() {
        let sts = v1_string_to_sign("", &params(&[("test", "ok")]));
        assert!(v1_signature_matches(
            "accessKeySecret",
            &sts,
            "jHx/oHoHNrbVfhncHEvPdHXZwHU="
        ));
    }

    #[test]
    fn signature_parameter_is_not_signed_and_garbage_does_not_match() {
        let mut p = ecs_example("Timestamp");
        p.push(("Signature".into(), "whatever".into()));
        let sts = v1_string_to_sign("GET", &p);
        assert!(v1_signature_matches(
            "testsecret",
            &sts,
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
        assert!(!v1_signature_matches("testsecret", &sts, "not base64!"));
        assert!(!v1_signature_matches("testsecret", &sts, ""));
    }

    #[test]
    fn v3_vector_matches() {
        let query = params(&[
            ("BusinessNumber", "8613800001234"),
            ("ChannelType", "WHATSAPP"),
            ("CustSpaceId", "cams-test"),
            ("GroupId", "EA303TEST"),
            ("Subject", "Team chat *1*"),
            ("Description", "Hello world ~ café"),
        ]);
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "cams.ap-southeast-1.aliyuncs.com"),
            ("x-acs-action", "UpdateChatGroup"),
            ("x-acs-version", "2020-06-06"),
            ("x-acs-date", "2016-02-23T12:46:24Z"),
            (
                "x-acs-signature-nonce",
                "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
            ),
            ("x-acs-content-sha256", EMPTY_BODY_SHA256),
        ] {
            headers.insert(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        let auth = parse_v3_authorization(
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=0f80c8c4f671182c8ca48c63b3007ba63d3aac6eea6d2c69631bfda521a3cd23",
        )
        .expect("parses");
        assert_eq!(auth.access_key_id, "testid");
        let canonical = v3_canonical_request(
            "POST",
            "/",
            &query,
            &headers,
            &auth.signed_headers,
            EMPTY_BODY_SHA256,
        );
        let sts = v3_string_to_sign(&canonical);
        assert!(v3_signature_matches("testsecret", &sts, &auth.signature));
        assert!(!v3_signature_matches("testsecreT", &sts, &auth.signature));
        assert_eq!(sha256_hex(b""), EMPTY_BODY_SHA256);
    }

    #[test]
    fn v3_authorization_errors_name_the_missing_part() {
        assert!(parse_v3_authorization("ACS3-HMAC-SHA256").is_err());
        let err = parse_v3_authorization("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host")
            .expect_err("no signature");
        assert!(err.contains("Signature"), "{err}");
    }
}
