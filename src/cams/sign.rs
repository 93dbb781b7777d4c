//! Signature V1 (HMAC-SHA1) for Alibaba Cloud RPC requests.
//!
//! The algorithm, as the CAMS gateway verifies it:
//!
//! 1. POP-encode every parameter name and value ([`pop_encode`]): keep `A-Z a-z 0-9 - _ . ~`,
//!    turn every other UTF-8 byte into `%XY` (uppercase hex). Space is `%20`, `*` is `%2A`.
//! 2. Sort the parameters by name (byte order) and join `name=value` pairs with `&`: the
//!    canonicalised query string ([`canonical_query`]). `Signature` itself is never signed.
//! 3. `StringToSign = METHOD & enc("/") & enc(canonical query)` ([`string_to_sign`]); the
//!    canonical query is encoded a second time.
//! 4. `Signature = base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))` ([`sign_v1`]).
//!
//! [`build_signed_query`] adds the common parameters CAMS expects (`Action`, `Version`, `Format`,
//! `AccessKeyId`, `SignatureMethod`, `SignatureVersion`, `SignatureNonce`, `Timestamp` and, for
//! STS credentials, `SecurityToken`), signs them and appends `Signature` last. Everything here is
//! pure: the clock and the nonce are parameters, so every function is reproducible in tests.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{API_VERSION, Credentials};

/// The HTTP method the client signs and sends (`POST`, parameters in the query, empty body).
pub const METHOD: &str = "POST";
/// `Format`: the response format asked for.
pub const FORMAT_JSON: &str = "JSON";
/// `SignatureMethod` of signature V1.
pub const SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// `SignatureVersion` of signature V1.
pub const SIGNATURE_VERSION: &str = "1.0";
/// Name of the parameter that carries the signature (added last, never signed).
pub const SIGNATURE_PARAM: &str = "Signature";
/// Name of the parameter that carries an STS token (signed like any other parameter).
pub const SECURITY_TOKEN_PARAM: &str = "SecurityToken";
/// `strftime` format of `Timestamp`: UTC, seconds, `Z` suffix.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// True for the bytes POP encoding keeps as they are (RFC 3986 unreserved characters).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Appends the POP encoding of `s` to `out`.
pub fn pop_encode_into(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0x0F)]));
        }
    }
}

/// Appends the POP encoding of the POP encoding of `s` (`enc(enc(s))`) to `out`, in one pass:
/// an escaped byte `%XY` becomes `%25XY`.
fn pop_encode_twice_into(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str("%25");
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0x0F)]));
        }
    }
}

/// Upper bound of the encoded length of `s` (every byte escaped).
fn encoded_len_bound(s: &str, per_byte: usize) -> usize {
    s.len() * per_byte
}

/// POP-encodes `s`: keeps `A-Z a-z 0-9 - _ . ~`, turns every other UTF-8 byte into `%XY`.
///
/// ```
/// use cams_operator::cams::sign::pop_encode;
/// assert_eq!(pop_encode("a b*c~"), "a%20b%2Ac~");
/// ```
pub fn pop_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    pop_encode_into(&mut out, s);
    out
}

/// Sorts parameters by name (byte order, case-sensitive), leaving out `Signature`.
fn sorted_for_signing<'a>(params: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(name, _)| *name != SIGNATURE_PARAM)
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(b.1)));
    sorted
}

/// The canonicalised query string: parameters (except `Signature`) sorted by name, each
/// `enc(name)=enc(value)`, joined with `&`.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    let sorted = sorted_for_signing(params);
    let bound: usize = sorted
        .iter()
        .map(|(k, v)| encoded_len_bound(k, 3) + encoded_len_bound(v, 3) + 2)
        .sum();
    let mut out = String::with_capacity(bound);
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        pop_encode_into(&mut out, name);
        out.push('=');
        pop_encode_into(&mut out, value);
    }
    out
}

/// `METHOD & enc("/") & enc(canonical query)`: the text that is signed.
pub fn string_to_sign(method: &str, params: &[(&str, &str)]) -> String {
    let sorted = sorted_for_signing(params);
    string_to_sign_sorted(method, &sorted)
}

/// [`string_to_sign`] for parameters already sorted and without `Signature`.
fn string_to_sign_sorted(method: &str, sorted: &[(&str, &str)]) -> String {
    let bound: usize = method.len()
        + 5
        + sorted
            .iter()
            .map(|(k, v)| encoded_len_bound(k, 5) + encoded_len_bound(v, 5) + 6)
            .sum::<usize>();
    let mut out = String::with_capacity(bound);
    out.push_str(method);
    out.push_str("&%2F&");
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push_str("%26");
        }
        pop_encode_twice_into(&mut out, name);
        out.push_str("%3D");
        pop_encode_twice_into(&mut out, value);
    }
    out
}

/// `base64(HMAC-SHA1(secret + "&", text))`.
fn hmac_sha1_base64(secret: &str, text: &str) -> String {
    let mut key = Vec::with_capacity(secret.len() + 1);
    key.extend_from_slice(secret.as_bytes());
    key.push(b'&');
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps the signer total.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The V1 signature of `params` (any `Signature` among them is ignored) sent with `method`,
/// under the AccessKey secret `secret`.
pub fn sign_v1(method: &str, params: &[(&str, &str)], secret: &str) -> String {
    let sorted = sorted_for_signing(params);
    hmac_sha1_base64(secret, &string_to_sign_sorted(method, &sorted))
}

/// `Timestamp` as CAMS expects it: UTC, `YYYY-MM-DDThh:mm:ssZ`.
pub fn format_timestamp(timestamp: jiff::Timestamp) -> String {
    timestamp.strftime(TIMESTAMP_FORMAT).to_string()
}

/// The full, signed parameter list of one request, sent with [`METHOD`]: the common
/// parameters, `action_params`, then `Signature` last. `RegionId` is not sent.
///
/// `nonce` must be unique per attempt (retries included) and `timestamp` within 15 minutes of
/// the service's clock.
pub fn build_signed_query(
    action: &str,
    action_params: &[(&str, &str)],
    credentials: &Credentials,
    timestamp: jiff::Timestamp,
    nonce: &str,
) -> Vec<(String, String)> {
    let timestamp = format_timestamp(timestamp);
    let mut params: Vec<(&str, &str)> = Vec::with_capacity(action_params.len() + 10);
    params.push(("Action", action));
    params.push(("Version", API_VERSION));
    params.push(("Format", FORMAT_JSON));
    params.push(("AccessKeyId", credentials.access_key_id.as_str()));
    params.push(("SignatureMethod", SIGNATURE_METHOD));
    params.push(("SignatureVersion", SIGNATURE_VERSION));
    params.push(("SignatureNonce", nonce));
    params.push(("Timestamp", timestamp.as_str()));
    if let Some(token) = &credentials.security_token {
        params.push((SECURITY_TOKEN_PARAM, token.expose()));
    }
    params.extend(
        action_params
            .iter()
            .copied()
            .filter(|(name, _)| *name != SIGNATURE_PARAM),
    );
    let signature = sign_v1(METHOD, &params, credentials.access_key_secret.expose());
    let mut out: Vec<(String, String)> = Vec::with_capacity(params.len() + 1);
    out.extend(
        params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    out.push((SIGNATURE_PARAM.to_owned(), signature));
    out
}

/// The query string of a request: every `name=value` POP-encoded (a valid URL query), in the
/// given order, joined with `&`.
pub fn encode_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let bound: usize = params
        .iter()
        .map(|(k, v)| encoded_len_bound(k.as_ref(), 3) + encoded_len_bound(v.as_ref(), 3) + 2)
        .sum();
    let mut out = String::with_capacity(bound);
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        pop_encode_into(&mut out, name.as_ref());
        out.push('=');
        pop_encode_into(&mut out, value.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cams::SecretString;

    const ECS_EXAMPLE_NONCE: &str = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf";

    fn ecs_example(timestamp_name: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", ECS_EXAMPLE_NONCE),
            ("SignatureVersion", "1.0"),
            (timestamp_name, "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]
    }

    fn cams_common() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AccessKeyId", "testid"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", ECS_EXAMPLE_NONCE),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2020-06-06"),
        ]
    }

    fn update_action() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Action", "UpdateChatGroup"),
            ("BusinessNumber", "8613800001234"),
            ("ChannelType", "WHATSAPP"),
            ("CustSpaceId", "cams-test"),
            ("GroupId", "EA303TEST"),
            ("Subject", "Team chat *1*"),
            ("Description", "Hello world ~ café"),
        ]
    }

    #[test]
    fn ecs_documentation_example() {
        let params = ecs_example("Timestamp");
        assert_eq!(
            string_to_sign("GET", &params),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26\
             SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26\
             SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            sign_v1("GET", &params, "testsecret"),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn ecs_example_with_the_legacy_timestamp_name() {
        assert_eq!(
            sign_v1("GET", &ecs_example("TimeStamp"), "testsecret"),
            "CT9X0VtwR86fNWSnsc6v8YGOjuE="
        );
    }

    #[test]
    fn sms_example_with_utf8_and_json_values() {
        let params = [
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
            ("TemplateParam", r#"{"customer":"test"}"#),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ];
        assert_eq!(
            sign_v1("GET", &params, "testSecret"),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }

    #[test]
    fn official_sdk_unit_test_vector() {
        assert_eq!(
            sign_v1("", &[("test", "ok")], "accessKeySecret"),
            "jHx/oHoHNrbVfhncHEvPdHXZwHU="
        );
    }

    #[test]
    fn update_chat_group_vector() {
        let mut params = cams_common();
        params.extend(update_action());
        assert_eq!(
            sign_v1("POST", &params, "testsecret"),
            "1+Vrjxn8RgFcmg1EBPghvWVXrsU="
        );
    }

    #[test]
    fn list_chat_group_vector() {
        let mut params = cams_common();
        params.extend([
            ("Action", "ListChatGroup"),
            ("BusinessNumber", "8613800001234"),
            ("CustSpaceId", "cams-test"),
            ("Page", r#"{"Index":1,"Size":20}"#),
        ]);
        assert_eq!(
            sign_v1("POST", &params, "testsecret"),
            "YMblCDRZShPOM9gsQvo333S1qsk="
        );
    }

    #[test]
    fn update_chat_group_vector_with_sts_token() {
        let mut params = cams_common();
        params.extend(update_action());
        params.push(("SecurityToken", "CAIS+token/abc="));
        assert_eq!(
            sign_v1("POST", &params, "testsecret"),
            "9JezM58oP4whMOfGGuUPrqYjQhI="
        );
    }

    #[test]
    fn parameter_order_does_not_change_the_signature() {
        let mut params = cams_common();
        params.extend(update_action());
        let forward = sign_v1("POST", &params, "testsecret");
        params.reverse();
        assert_eq!(sign_v1("POST", &params, "testsecret"), forward);
    }

    #[test]
    fn a_signature_parameter_is_not_signed() {
        let mut params = cams_common();
        params.extend(update_action());
        let without = sign_v1("POST", &params, "testsecret");
        params.push(("Signature", "anything"));
        assert_eq!(sign_v1("POST", &params, "testsecret"), without);
        assert!(!canonical_query(&params).contains("Signature="));
    }

    #[test]
    fn pop_encoding_of_special_characters() {
        assert_eq!(pop_encode(" "), "%20");
        assert_eq!(pop_encode("*"), "%2A");
        assert_eq!(pop_encode("~"), "~");
        assert_eq!(pop_encode("+"), "%2B");
        assert_eq!(pop_encode("/"), "%2F");
        assert_eq!(pop_encode("="), "%3D");
        assert_eq!(pop_encode("&"), "%26");
        assert_eq!(pop_encode("é"), "%C3%A9");
        assert_eq!(pop_encode("阿"), "%E9%98%BF");
        assert_eq!(pop_encode("AZaz09-_."), "AZaz09-_.");
        assert_eq!(pop_encode(":"), "%3A");
        assert_eq!(pop_encode(""), "");
    }

    #[test]
    fn canonical_query_sorts_by_byte_order_and_encodes() {
        // Uppercase sorts before lowercase in byte order.
        let cqs = canonical_query(&[("b", "x y"), ("B", "*"), ("a", "~/")]);
        assert_eq!(cqs, "B=%2A&a=~%2F&b=x%20y");
    }

    #[test]
    fn double_encoding_matches_encoding_twice() {
        for s in ["a b", "café*~+/=&%", "阿里云", r#"{"Index":1}"#] {
            let mut once_then_twice = String::new();
            pop_encode_twice_into(&mut once_then_twice, s);
            assert_eq!(once_then_twice, pop_encode(&pop_encode(s)));
        }
    }

    #[test]
    fn string_to_sign_is_method_path_and_encoded_canonical_query() {
        let params = [("Subject", "a b"), ("Action", "X")];
        assert_eq!(
            string_to_sign("POST", &params),
            format!("POST&%2F&{}", pop_encode(&canonical_query(&params)))
        );
    }

    #[test]
    fn timestamp_is_utc_seconds_with_z() {
        let ts: jiff::Timestamp = "2016-02-23T12:46:24.987Z".parse().unwrap();
        assert_eq!(format_timestamp(ts), "2016-02-23T12:46:24Z");
    }

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "testid".into(),
            access_key_secret: SecretString::new("testsecret"),
            security_token: token.map(SecretString::new),
        }
    }

    #[test]
    fn build_signed_query_reproduces_d1_and_d3() {
        let ts: jiff::Timestamp = "2016-02-23T12:46:24Z".parse().unwrap();
        let action = &update_action()[1..];
        for (token, expected) in [
            (None, "1+Vrjxn8RgFcmg1EBPghvWVXrsU="),
            (Some("CAIS+token/abc="), "9JezM58oP4whMOfGGuUPrqYjQhI="),
        ] {
            let query = build_signed_query(
                "UpdateChatGroup",
                action,
                &creds(token),
                ts,
                ECS_EXAMPLE_NONCE,
            );
            let last = query.last().unwrap();
            assert_eq!((last.0.as_str(), last.1.as_str()), ("Signature", expected));
            let names: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
            assert!(!names.contains(&"RegionId"));
            assert_eq!(names.contains(&"SecurityToken"), token.is_some());
            assert_eq!(names.iter().filter(|n| **n == "Signature").count(), 1);
        }
    }

    #[test]
    fn build_signed_query_d2_list() {
        let ts: jiff::Timestamp = "2016-02-23T12:46:24Z".parse().unwrap();
        let query = build_signed_query(
            "ListChatGroup",
            &[
                ("BusinessNumber", "8613800001234"),
                ("CustSpaceId", "cams-test"),
                ("Page", r#"{"Index":1,"Size":20}"#),
            ],
            &creds(None),
            ts,
            ECS_EXAMPLE_NONCE,
        );
        assert_eq!(query.last().unwrap().1, "YMblCDRZShPOM9gsQvo333S1qsk=");
    }

    #[test]
    fn encode_query_keeps_order_and_encodes() {
        let q = encode_query(&[("Signature", "a+b/c="), ("Subject", "x y")]);
        assert_eq!(q, "Signature=a%2Bb%2Fc%3D&Subject=x%20y");
    }
}
