//! CAMS wire tests: `HttpCams` against a small HTTP server started inside each test on
//! 127.0.0.1, which records every request and answers with a scripted response.
//!
//! The signature of every recorded request is recomputed here from the decoded query with code
//! of its own (not `cams::sign`), so a bug shared by the signer and the test cannot hide.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;

use cams_operator::cams::client::{HttpCams, HttpCamsConfig, StampSource, find_group};
use cams_operator::cams::pager::Lookup;
use cams_operator::cams::{
    CODE_GROUP_NOT_FOUND, CamsApi, CamsError, Credentials, Endpoint, ErrorClass, ErrorKind,
    SecretString,
};
use cams_operator::crd::Reason;

mod support;

/// The fake CAMS servers and credentials of these tests.
mod wire {
    use super::*;

    /// One request as the server saw it.
    #[derive(Clone, Debug)]
    pub struct Seen {
        pub method: String,
        pub path: String,
        pub raw_query: String,
        pub params: Vec<(String, String)>,
        pub headers: http::HeaderMap,
        pub body: Vec<u8>,
    }

    impl Seen {
        /// The decoded parameters as a map (names must be unique).
        pub fn param_map(&self) -> BTreeMap<String, String> {
            let map: BTreeMap<String, String> = self.params.iter().cloned().collect();
            assert_eq!(map.len(), self.params.len(), "duplicate parameter names");
            map
        }

        pub fn param(&self, name: &str) -> Option<&str> {
            self.params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// What the server answers.
    #[derive(Clone, Debug)]
    pub struct Reply {
        pub status: u16,
        pub headers: Vec<(&'static str, String)>,
        pub body: String,
        pub delay: Duration,
    }

    impl Reply {
        pub fn json(status: u16, body: serde_json::Value) -> Self {
            Reply {
                status,
                headers: vec![("content-type", "application/json".into())],
                body: body.to_string(),
                delay: Duration::ZERO,
            }
        }

        pub fn text(status: u16, body: &str) -> Self {
            Reply {
                status,
                headers: vec![("content-type", "text/html".into())],
                body: body.to_owned(),
                delay: Duration::ZERO,
            }
        }

        pub fn header(mut self, name: &'static str, value: &str) -> Self {
            self.headers.push((name, value.to_owned()));
            self
        }

        pub fn after(mut self, delay: Duration) -> Self {
            self.delay = delay;
            self
        }
    }

    pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

    /// A scripted CAMS stand-in on 127.0.0.1, port chosen by the OS.
    pub struct Server {
        pub endpoint: Endpoint,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Server {
        pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
            let handler: Handler = Arc::new(handler);
            let log = seen.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let handler = handler.clone();
                    let log = log.clone();
                    tokio::spawn(async move {
                        let service =
                            service_fn(move |req: http::Request<hyper::body::Incoming>| {
                                let handler = handler.clone();
                                let log = log.clone();
                                async move {
                                    let (parts, body) = req.into_parts();
                                    let body = body.collect().await.unwrap().to_bytes().to_vec();
                                    let raw_query = parts.uri.query().unwrap_or("").to_owned();
                                    let seen = Seen {
                                        method: parts.method.to_string(),
                                        path: parts.uri.path().to_owned(),
                                        params: decode_query(&raw_query),
                                        raw_query,
                                        headers: parts.headers,
                                        body,
                                    };
                                    log.lock().unwrap().push(seen.clone());
                                    let reply = handler(&seen);
                                    if !reply.delay.is_zero() {
                                        tokio::time::sleep(reply.delay).await;
                                    }
                                    let mut response =
                                        http::Response::builder().status(reply.status);
                                    for (name, value) in &reply.headers {
                                        response = response.header(*name, value.as_str());
                                    }
                                    Ok::<_, Infallible>(
                                        response.body(Full::new(Bytes::from(reply.body))).unwrap(),
                                    )
                                }
                            });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            Server {
                endpoint: Endpoint::from_url(&format!("http://{addr}/")),
                seen,
            }
        }

        pub fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    /// Decodes `a=b&c=d`, `%XY` escapes and `+` as space.
    pub fn decode_query(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(name), percent_decode(value))
            })
            .collect()
    }

    fn percent_decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// RFC 3986 encoding as Alibaba's V1 signature needs it, written independently of the
    /// crate's signer.
    pub fn encode(text: &str) -> String {
        let mut out = String::new();
        for byte in text.bytes() {
            let keep = byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte);
            if keep {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

    /// The StringToSign the service would compute for this request.
    pub fn string_to_sign(seen: &Seen) -> String {
        let sorted: BTreeMap<&str, &str> = seen
            .params
            .iter()
            .filter(|(k, _)| k != "Signature")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let canonical = sorted
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        format!("{}&{}&{}", seen.method, encode("/"), encode(&canonical))
    }

    /// The signature the service would expect for this request under `secret`.
    pub fn expected_signature(seen: &Seen, secret: &str) -> String {
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
        mac.update(string_to_sign(seen).as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// Fixed `Timestamp` and `SignatureNonce`.
    pub struct Fixed {
        pub timestamp: &'static str,
        pub nonce: &'static str,
    }

    impl StampSource for Fixed {
        fn now(&self) -> jiff::Timestamp {
            self.timestamp.parse().unwrap()
        }
        fn nonce(&self) -> String {
            self.nonce.to_owned()
        }
    }

    pub const NONCE: &str = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf";

    /// The client of the UpdateChatGroup, ListChatGroup and STS signature vectors (see
    /// docs/design.md): fixed clock and nonce.
    pub fn vector_client() -> HttpCams {
        HttpCams::new(HttpCamsConfig::default())
            .unwrap()
            .with_stamps(Fixed {
                timestamp: "2016-02-23T12:46:24Z",
                nonce: NONCE,
            })
    }

    pub fn client() -> HttpCams {
        HttpCams::new(HttpCamsConfig::default()).unwrap()
    }

    pub fn creds(secret: &str, token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "testid".into(),
            access_key_secret: SecretString::new(secret),
            security_token: token.map(SecretString::new),
        }
    }

    pub fn ok_body(request_id: &str) -> serde_json::Value {
        json!({"RequestId": request_id, "Code": "OK", "Message": "OK", "Success": true})
    }

    /// A local port with nothing listening on it.
    pub fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }
}

use support::fixtures::{list_request, update_request};
use wire::*;

mod request_shape {
    use super::*;

    fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn update_sends_exactly_the_d1_parameters_signed() {
        let server = Server::start(|_| {
            Reply::json(
                200,
                json!({"RequestId": "R-1", "Code": "OK", "Message": "done", "Success": false,
                       "Result": "1", "AccessDeniedDetail": "", "SomethingNew": {"x": 1}}),
            )
        })
        .await;
        let response = vector_client()
            .update_chat_group(
                &server.endpoint,
                &creds("testsecret", None),
                &update_request(),
            )
            .await
            .unwrap();

        assert_eq!(response.meta.http_status, 200);
        assert_eq!(response.meta.request_id.as_deref(), Some("R-1"));
        assert_eq!(response.meta.code, "OK");
        assert_eq!(response.meta.message.as_deref(), Some("done"));
        // Code OK is the success signal; Success is recorded as reported.
        assert_eq!(response.meta.success, Some(false));
        assert_eq!(response.meta.access_denied_detail, None);
        assert_eq!(response.result, Some(1));

        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        let request = &seen[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/");
        assert!(request.body.is_empty());
        assert_eq!(
            request.headers.get("user-agent").unwrap(),
            &format!("cams-operator/{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(
            request.param_map(),
            expected(&[
                ("AccessKeyId", "testid"),
                ("Action", "UpdateChatGroup"),
                ("BusinessNumber", "8613800001234"),
                ("ChannelType", "WHATSAPP"),
                ("CustSpaceId", "cams-test"),
                ("Description", "Hello world ~ café"),
                ("Format", "JSON"),
                ("GroupId", "EA303TEST"),
                ("Signature", "1+Vrjxn8RgFcmg1EBPghvWVXrsU="),
                ("SignatureMethod", "HMAC-SHA1"),
                ("SignatureNonce", NONCE),
                ("SignatureVersion", "1.0"),
                ("Subject", "Team chat *1*"),
                ("Timestamp", "2016-02-23T12:46:24Z"),
                ("Version", "2020-06-06"),
            ])
        );
        assert_eq!(
            request.param("Signature").unwrap(),
            expected_signature(request, "testsecret")
        );
        assert!(
            request
                .raw_query
                .rsplit('&')
                .next()
                .unwrap()
                .starts_with("Signature=")
        );
        // Spaces travel as %20 and `*` as %2A, exactly as signed.
        assert!(request.raw_query.contains("Subject=Team%20chat%20%2A1%2A"));
    }

    #[tokio::test]
    async fn sts_credentials_send_and_sign_the_security_token() {
        let server = Server::start(|_| Reply::json(200, ok_body("R-sts"))).await;
        vector_client()
            .update_chat_group(
                &server.endpoint,
                &creds("testsecret", Some("CAIS+token/abc=")),
                &update_request(),
            )
            .await
            .unwrap();
        let request = &server.seen()[0];
        assert_eq!(request.param("SecurityToken"), Some("CAIS+token/abc="));
        // The STS vector.
        assert_eq!(
            request.param("Signature"),
            Some("9JezM58oP4whMOfGGuUPrqYjQhI=")
        );
        assert_eq!(
            request.param("Signature").unwrap(),
            expected_signature(request, "testsecret")
        );
    }

    #[tokio::test]
    async fn list_sends_page_as_json_and_reads_items_tolerantly() {
        let server = Server::start(|_| {
            Reply::json(
                200,
                json!({"RequestId": "R-list", "Code": "OK", "Success": true,
                "Data": {"Total": "3", "List": [
                    {"GroupId": "G1", "Subject": "One", "GroupStatus": "ACTIVE",
                     "GmtModifier": 1700000000000_i64, "Unknown": [1, 2]},
                    {"GroupId": "G2"},
                    "not an item",
                    {"Subject": "no id", "Description": "d", "ProfilePictureFile": "https://p",
                     "InviteLink": "https://l", "BusinessNumber": 8613800001234_i64}
                ]}}),
            )
        })
        .await;
        let page = vector_client()
            .list_chat_group(
                &server.endpoint,
                &creds("testsecret", None),
                &list_request(1, 20),
            )
            .await
            .unwrap();
        assert_eq!(page.total, Some(3));
        assert_eq!(page.groups.len(), 3);
        assert_eq!(page.groups[0].group_id.as_deref(), Some("G1"));
        assert_eq!(page.groups[0].group_status.as_deref(), Some("ACTIVE"));
        assert_eq!(page.groups[1].subject, None);
        assert_eq!(page.groups[2].group_id, None);
        assert_eq!(
            page.groups[2].business_number.as_deref(),
            Some("8613800001234")
        );
        assert_eq!(page.groups[2].invite_link.as_deref(), Some("https://l"));

        let request = &server.seen()[0];
        assert_eq!(
            request.param_map(),
            expected(&[
                ("AccessKeyId", "testid"),
                ("Action", "ListChatGroup"),
                ("BusinessNumber", "8613800001234"),
                ("CustSpaceId", "cams-test"),
                ("Format", "JSON"),
                ("Page", r#"{"Index":1,"Size":20}"#),
                ("Signature", "YMblCDRZShPOM9gsQvo333S1qsk="),
                ("SignatureMethod", "HMAC-SHA1"),
                ("SignatureNonce", NONCE),
                ("SignatureVersion", "1.0"),
                ("Timestamp", "2016-02-23T12:46:24Z"),
                ("Version", "2020-06-06"),
            ])
        );
    }

    #[tokio::test]
    async fn every_call_gets_a_fresh_nonce_and_a_verifiable_signature() {
        let server = Server::start(|_| Reply::json(200, ok_body("R"))).await;
        let client = client();
        let credentials = creds("another-secret", None);
        for _ in 0..3 {
            client
                .update_chat_group(&server.endpoint, &credentials, &update_request())
                .await
                .unwrap();
        }
        let seen = server.seen();
        let mut nonces: Vec<&str> = seen
            .iter()
            .map(|s| s.param("SignatureNonce").unwrap())
            .collect();
        nonces.sort_unstable();
        nonces.dedup();
        assert_eq!(nonces.len(), 3);
        for request in &seen {
            assert_eq!(
                request.param("Signature").unwrap(),
                expected_signature(request, "another-secret")
            );
            let timestamp = request.param("Timestamp").unwrap();
            assert_eq!(timestamp.len(), "2016-02-23T12:46:24Z".len());
            assert!(timestamp.ends_with('Z'));
            assert!(timestamp.parse::<jiff::Timestamp>().is_ok(), "{timestamp}");
            assert!(request.param("RegionId").is_none());
        }
    }

    #[tokio::test]
    async fn unset_and_empty_optional_fields_are_not_sent() {
        let server = Server::start(|_| Reply::json(200, ok_body("R"))).await;
        let mut request = update_request();
        request.subject = Some(String::new());
        request.description = None;
        request.profile_picture_file = Some("https://cdn.example.com/p.jpg".into());
        client()
            .update_chat_group(&server.endpoint, &creds("s", None), &request)
            .await
            .unwrap();
        let seen = &server.seen()[0];
        assert!(seen.param("Subject").is_none());
        assert!(seen.param("Description").is_none());
        assert_eq!(
            seen.param("ProfilePictureFile"),
            Some("https://cdn.example.com/p.jpg")
        );
        assert_eq!(
            seen.param("Signature").unwrap(),
            expected_signature(seen, "s")
        );
    }

    #[tokio::test]
    async fn the_user_agent_is_configurable() {
        let server = Server::start(|_| Reply::json(200, ok_body("R"))).await;
        let client = HttpCams::new(HttpCamsConfig {
            user_agent: "custom-agent/1".into(),
            ..HttpCamsConfig::default()
        })
        .unwrap();
        client
            .list_chat_group(&server.endpoint, &creds("s", None), &list_request(2, 5))
            .await
            .unwrap();
        let seen = &server.seen()[0];
        assert_eq!(seen.headers.get("user-agent").unwrap(), "custom-agent/1");
        assert_eq!(seen.param("Page"), Some(r#"{"Index":2,"Size":5}"#));
    }
}

mod outcomes {
    use super::*;

    async fn update_against(reply: Reply) -> CamsError {
        let server = Server::start(move |_| reply.clone()).await;
        client()
            .update_chat_group(&server.endpoint, &creds("s", None), &update_request())
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn a_business_error_keeps_the_envelope() {
        let err = update_against(Reply::json(
            200,
            json!({"RequestId": "R-b", "Code": CODE_GROUP_NOT_FOUND, "Message": "group not exist",
                   "Success": false, "AccessDeniedDetail": {"PolicyType": "x"}}),
        ))
        .await;
        match &err {
            CamsError::Business {
                action,
                http_status,
                code,
                message,
                request_id,
                success,
                access_denied_detail,
            } => {
                assert_eq!(*action, "UpdateChatGroup");
                assert_eq!(*http_status, 200);
                assert_eq!(code, CODE_GROUP_NOT_FOUND);
                assert_eq!(message.as_deref(), Some("group not exist"));
                assert_eq!(request_id.as_deref(), Some("R-b"));
                assert_eq!(*success, Some(false));
                assert_eq!(
                    access_denied_detail.as_deref(),
                    Some(r#"{"PolicyType":"x"}"#)
                );
            }
            other => panic!("expected a business error, got {other:?}"),
        }
        assert_eq!(err.class(), ErrorClass::Terminal);
        assert_eq!(err.reason(), Reason::GroupNotFound);
        assert_eq!(err.category(), "group_not_found");
        let text = err.to_string();
        assert!(
            text.contains(CODE_GROUP_NOT_FOUND) && text.contains("R-b"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn gateway_errors_are_classified() {
        use ErrorClass::{Recoverable, Terminal};
        let cases: &[(u16, &str, ErrorClass, Reason)] = &[
            (400, "Throttling.User", Recoverable, Reason::Throttled),
            (503, "Throttling", Recoverable, Reason::Throttled),
            (
                503,
                "ServiceUnavailable",
                Recoverable,
                Reason::CamsUnavailable,
            ),
            (500, "InternalError", Recoverable, Reason::CamsUnavailable),
            (502, "Whatever", Recoverable, Reason::CamsUnavailable),
            (
                400,
                "SignatureNonceUsed",
                Recoverable,
                Reason::CamsUnavailable,
            ),
            (
                400,
                "InvalidTimeStamp.Expired",
                Recoverable,
                Reason::ClockSkew,
            ),
            (
                400,
                "SignatureDoesNotMatch",
                Terminal,
                Reason::CredentialsInvalid,
            ),
            (
                404,
                "InvalidAccessKeyId.NotFound",
                Terminal,
                Reason::CredentialsInvalid,
            ),
            (
                400,
                "InvalidSecurityToken.Expired",
                Terminal,
                Reason::CredentialsInvalid,
            ),
            (403, "Forbidden.RAM", Terminal, Reason::AccessDenied),
            (
                404,
                "InvalidApi.NotFound",
                Terminal,
                Reason::EndpointInvalid,
            ),
            (
                404,
                "InvalidProtocol.NeedSsl",
                Terminal,
                Reason::EndpointInvalid,
            ),
            (400, "MissingParameter", Terminal, Reason::CamsRejected),
            (
                400,
                "InvalidParameter.PageInvalid",
                Terminal,
                Reason::CamsRejected,
            ),
            (400, "Never.Seen.Before", Terminal, Reason::CamsRejected),
        ];
        for (status, code, class, reason) in cases {
            let err = update_against(Reply::json(
                *status,
                json!({"RequestId": "R-g", "HostId": "cams.ap-southeast-1.aliyuncs.com",
                       "Code": code, "Message": "m", "Recommend": "https://diag/x",
                       "AccessDeniedDetail": "detail"}),
            ))
            .await;
            let CamsError::Gateway {
                http_status,
                code: got_code,
                message,
                request_id,
                host_id,
                recommend,
                access_denied_detail,
                ..
            } = &err
            else {
                panic!("{status} {code}: expected a gateway error, got {err:?}");
            };
            assert_eq!(http_status, status);
            assert_eq!(got_code.as_deref(), Some(*code));
            assert_eq!(message.as_deref(), Some("m"));
            assert_eq!(request_id.as_deref(), Some("R-g"));
            assert_eq!(host_id.as_deref(), Some("cams.ap-southeast-1.aliyuncs.com"));
            assert_eq!(recommend.as_deref(), Some("https://diag/x"));
            assert_eq!(access_denied_detail.as_deref(), Some("detail"));
            assert_eq!(err.class(), *class, "{status} {code}");
            assert_eq!(err.reason(), *reason, "{status} {code}");
        }
    }

    #[tokio::test]
    async fn throttling_headers_become_retry_after() {
        let throttled = || {
            Reply::json(
                400,
                json!({"RequestId": "R-t", "Code": "Throttling.User", "Message": "slow down"}),
            )
        };
        let err = update_against(throttled().header(
            "x-ratelimit-user-api",
            "Limit:1,Remain:0,TimeLeft:2000,Reset:1234",
        ))
        .await;
        assert_eq!(err.retry_after(), Some(Duration::from_millis(2000)));
        assert!(err.is_retryable());

        let err =
            update_against(throttled().header("x-ratelimit-user", "Limit:5,Remain:0,TimeLeft:750"))
                .await;
        assert_eq!(err.retry_after(), Some(Duration::from_millis(750)));

        let err = update_against(
            throttled()
                .header("x-ratelimit-user", "TimeLeft:9000")
                .header("x-ratelimit-user-api", "TimeLeft:300"),
        )
        .await;
        assert_eq!(err.retry_after(), Some(Duration::from_millis(300)));

        let err = update_against(throttled()).await;
        assert_eq!(err.retry_after(), None);
        assert_eq!(err.reason(), Reason::Throttled);

        // A header on a response that is not a throttle is not a retry-after.
        let err = update_against(
            Reply::json(400, json!({"Code": "MissingParameter"}))
                .header("x-ratelimit-user-api", "Limit:5,Remain:4,TimeLeft:800"),
        )
        .await;
        assert_eq!(err.retry_after(), None);
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_keeps_status_and_a_short_snippet() {
        let page = format!("<html><body>{}</body></html>", "x".repeat(1000));
        let err = update_against(Reply::text(200, &page)).await;
        let CamsError::InvalidBody {
            http_status,
            snippet,
            ..
        } = &err
        else {
            panic!("expected InvalidBody, got {err:?}");
        };
        assert_eq!(*http_status, 200);
        assert!(snippet.starts_with("<html><body>xxx"), "{snippet}");
        assert!(snippet.chars().count() <= 200);
        assert_eq!(err.class(), ErrorClass::Terminal);
        assert_eq!(err.reason(), Reason::EndpointInvalid);

        let err = update_against(Reply::text(502, "<html>Bad Gateway</html>")).await;
        assert!(
            matches!(
                err,
                CamsError::InvalidBody {
                    http_status: 502,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Recoverable);

        let err = update_against(Reply::text(403, "")).await;
        assert!(
            matches!(
                err,
                CamsError::InvalidBody {
                    http_status: 403,
                    ..
                }
            ),
            "{err:?}"
        );

        // JSON that is not the envelope.
        let err = update_against(Reply::json(200, json!({"hello": "world"}))).await;
        assert!(
            matches!(
                err,
                CamsError::InvalidBody {
                    http_status: 200,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = update_against(Reply::json(200, json!([1, 2]))).await;
        assert!(matches!(err, CamsError::InvalidBody { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_slow_server_is_a_timeout() {
        let server =
            Server::start(|_| Reply::json(200, ok_body("R-late")).after(Duration::from_secs(30)))
                .await;
        let client = HttpCams::new(HttpCamsConfig {
            request_timeout: Duration::from_millis(200),
            ..HttpCamsConfig::default()
        })
        .unwrap();
        let err = client
            .list_chat_group(&server.endpoint, &creds("s", None), &list_request(1, 20))
            .await
            .unwrap_err();
        match &err {
            CamsError::Timeout {
                action,
                endpoint,
                timeout,
            } => {
                assert_eq!(*action, "ListChatGroup");
                assert_eq!(endpoint, server.endpoint.as_str());
                assert_eq!(*timeout, Duration::from_millis(200));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(err.class(), ErrorClass::Recoverable);
        assert_eq!(err.category(), "timeout");
    }

    #[tokio::test]
    async fn refused_and_dropped_connections_are_transport_errors() {
        let endpoint = Endpoint::from_url(&format!("http://127.0.0.1:{}/", closed_port()));
        let err = client()
            .update_chat_group(&endpoint, &creds("s", None), &update_request())
            .await
            .unwrap_err();
        assert!(matches!(err, CamsError::Transport { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Recoverable);
        assert_eq!(err.reason(), Reason::CamsUnavailable);

        // A server that reads the request and hangs up without answering.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
                drop(stream);
            }
        });
        let endpoint = Endpoint::from_url(&format!("http://{addr}/"));
        let err = client()
            .update_chat_group(&endpoint, &creds("s", None), &update_request())
            .await
            .unwrap_err();
        assert!(matches!(err, CamsError::Transport { .. }), "{err:?}");
        assert!(err.is_retryable());
        // The client never retries on its own: the controller does, with a new nonce.
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn https_to_a_plain_server_fails_in_tls_not_in_a_panic() {
        // The server answers HTTP; the client speaks TLS to it, so the handshake must fail.
        let server = Server::start(|_| Reply::json(200, ok_body("R"))).await;
        let endpoint = Endpoint::from_url(&server.endpoint.as_str().replace("http://", "https://"));
        let err = client()
            .update_chat_group(&endpoint, &creds("s", None), &update_request())
            .await
            .unwrap_err();
        assert!(matches!(err, CamsError::Transport { .. }), "{err:?}");
        assert!(server.seen().is_empty());
    }

    #[tokio::test]
    async fn a_bad_endpoint_is_rejected_before_sending() {
        for url in ["not a url", "ftp://127.0.0.1/", "http://127.0.0.1/?x=1"] {
            let err = client()
                .update_chat_group(
                    &Endpoint::from_url(url),
                    &creds("s", None),
                    &update_request(),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, CamsError::InvalidRequest { .. }),
                "{url}: {err:?}"
            );
            assert_eq!(err.class(), ErrorClass::Terminal);
            assert_eq!(err.reason(), Reason::EndpointInvalid);
        }
    }
}

mod paging {
    use super::*;

    /// A server holding `count` groups `G0..`, answering `ListChatGroup` pages; `total` decides
    /// what `Data.Total` says.
    async fn listing_server(count: usize, total: Option<serde_json::Value>) -> Server {
        capped_listing_server(count, total, usize::MAX).await
    }

    /// As [`listing_server`], but pages hold at most `cap` items whatever size was asked for.
    async fn capped_listing_server(
        count: usize,
        total: Option<serde_json::Value>,
        cap: usize,
    ) -> Server {
        Server::start(move |seen| {
            let page: serde_json::Value =
                serde_json::from_str(seen.param("Page").unwrap()).unwrap();
            let index = page["Index"].as_u64().unwrap() as usize;
            let size = (page["Size"].as_u64().unwrap() as usize).min(cap);
            let start = (index - 1) * size;
            let items: Vec<serde_json::Value> = (start..(start + size).min(count))
                .map(|i| json!({"GroupId": format!("G{i}"), "Subject": format!("group {i}")}))
                .collect();
            let mut data = json!({"List": items});
            if let Some(total) = &total {
                data["Total"] = total.clone();
            }
            Reply::json(
                200,
                json!({"RequestId": format!("R-page-{index}"), "Code": "OK", "Data": data}),
            )
        })
        .await
    }

    fn page_indexes(server: &Server) -> Vec<String> {
        server
            .seen()
            .iter()
            .map(|s| s.param("Page").unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn finds_a_group_on_a_later_page() {
        let server = listing_server(45, Some(json!(45))).await;
        let found = find_group(
            &client(),
            &server.endpoint,
            &creds("s", None),
            "cams-test",
            "8613800001234",
            "G42",
            20,
        )
        .await
        .unwrap();
        let (item, meta) = found.found().unwrap();
        assert_eq!(item.subject.as_deref(), Some("group 42"));
        assert_eq!(meta.request_id.as_deref(), Some("R-page-3"));
        assert_eq!(
            page_indexes(&server),
            [
                r#"{"Index":1,"Size":20}"#,
                r#"{"Index":2,"Size":20}"#,
                r#"{"Index":3,"Size":20}"#
            ]
        );
    }

    #[tokio::test]
    async fn smaller_pages_than_asked_for_are_walked_to_the_total() {
        let server = capped_listing_server(25, Some(json!(25)), 10).await;
        let found = find_group(
            &client(),
            &server.endpoint,
            &creds("s", None),
            "cams-test",
            "8613800001234",
            "G22",
            20,
        )
        .await
        .unwrap();
        assert_eq!(found.found().unwrap().0.group_id.as_deref(), Some("G22"));
        assert_eq!(server.seen().len(), 3);
    }

    #[tokio::test]
    async fn stops_at_the_first_match() {
        let server = listing_server(45, Some(json!(45))).await;
        let found = find_group(
            &client(),
            &server.endpoint,
            &creds("s", None),
            "cams-test",
            "8613800001234",
            "G3",
            20,
        )
        .await
        .unwrap();
        assert!(found.is_found());
        assert_eq!(server.seen().len(), 1);
    }

    #[tokio::test]
    async fn a_missing_group_stops_at_total() {
        // Total as a numeric string, exactly a multiple of the page size.
        let server = listing_server(40, Some(json!("40"))).await;
        let found = find_group(
            &client(),
            &server.endpoint,
            &creds("s", None),
            "cams-test",
            "8613800001234",
            "nope",
            20,
        )
        .await
        .unwrap();
        assert_eq!(found, Lookup::Missing);
        assert_eq!(server.seen().len(), 2);
    }

    #[tokio::test]
    async fn without_total_a_short_or_empty_page_is_the_last() {
        let server = listing_server(45, None).await;
        let found = find_group(
            &client(),
            &server.endpoint,
            &creds("s", None),
            "cams-test",
            "8613800001234",
            "nope",
            20,
        )
        .await
        .unwrap();
        assert_eq!(found, Lookup::Missing);
        assert_eq!(server.seen().len(), 3);

        // A Total larger than the truth: the empty page ends the walk.
        let server = listing_server(20, Some(json!(1000))).await;
        let found = find_group(
            &client(),
            &server.endpoint,
            &creds("s", None),
            "cams-test",
            "8613800001234",
            "nope",
            20,
        )
        .await
        .unwrap();
        assert_eq!(found, Lookup::Missing);
        assert_eq!(server.seen().len(), 2);
    }

    #[tokio::test]
    async fn a_server_ignoring_the_page_index_cannot_loop_forever() {
        let server = Server::start(|_| {
            let items: Vec<_> = (0..5)
                .map(|i| json!({"GroupId": format!("G{i}")}))
                .collect();
            Reply::json(200, json!({"Code": "OK", "Data": {"List": items}}))
        })
        .await;
        let found = find_group(
            &client(),
            &server.endpoint,
            &creds("s", None),
            "cams-test",
            "8613800001234",
            "nope",
            5,
        )
        .await
        .unwrap();
        assert_eq!(found, Lookup::Truncated);
        assert_eq!(
            server.seen().len(),
            cams_operator::cams::pager::MAX_LIST_PAGES as usize
        );
    }

    #[tokio::test]
    async fn a_failing_page_is_an_error() {
        let server = Server::start(|_| {
            Reply::json(
                503,
                json!({"Code": "ServiceUnavailable", "RequestId": "R-x"}),
            )
        })
        .await;
        let err = find_group(
            &client(),
            &server.endpoint,
            &creds("s", None),
            "cams-test",
            "8613800001234",
            "G1",
            20,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Some("ServiceUnavailable"));
        assert!(err.is_retryable());
    }
}

mod no_leak {
    use super::*;
    use std::io::Write;
    use std::sync::OnceLock;

    const SECRET: &str = "LeakTestSecret/+=Abc123";
    const TOKEN: &str = "CAIS+LeakTestToken/xyz==";

    /// Everything every subscriber-visible log line wrote, at TRACE, for the whole process.
    fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
        static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
        BUFFER.get_or_init(|| {
            let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
            let sink = buffer.clone();
            // Also bridges the `log` records of reqwest into tracing.
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone()))
                .try_init()
                .expect("no other global subscriber in this test binary");
            buffer
        })
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Each secret as a server could echo it: raw, encoded once, encoded twice.
    fn forms(value: &str) -> Vec<String> {
        vec![value.to_owned(), encode(value), encode(&encode(value))]
    }

    #[tokio::test]
    async fn no_secret_token_or_signature_in_logs_or_errors() {
        let buffer = captured();
        let server = Server::start(|seen| {
            let scenario = seen.param("GroupId").unwrap_or("list").to_owned();
            match scenario.as_str() {
                "ok" => Reply::json(200, ok_body("R-leak-ok")),
                // The real gateway echoes its StringToSign (which holds the encoded token).
                "sig" => Reply::json(
                    400,
                    json!({"RequestId": "R-leak-sig", "Code": "SignatureDoesNotMatch",
                           "Message": format!("server string to sign is:{}", string_to_sign(seen)),
                           "Recommend": format!("https://diag/?{}", seen.raw_query)}),
                ),
                // A web server that echoes the request.
                "html" => Reply::text(404, &format!("<pre>POST /?{}</pre>", seen.raw_query)),
                "params" => Reply::text(
                    500,
                    &seen
                        .params
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                "business" => Reply::json(
                    200,
                    json!({"RequestId": "R-leak-biz", "Code": "InvalidParameter",
                           "Message": format!("bad token {}", seen.param("SecurityToken").unwrap()),
                           "AccessDeniedDetail": seen.param("Signature").unwrap()}),
                ),
                "slow" => Reply::json(200, ok_body("R-late")).after(Duration::from_secs(30)),
                _ => Reply::json(
                    200,
                    json!({"RequestId": "R-leak-list", "Code": "OK",
                           "Data": {"Total": 1, "List": [{"GroupId": "ok"}]}}),
                ),
            }
        })
        .await;
        let client = HttpCams::new(HttpCamsConfig {
            request_timeout: Duration::from_secs(2),
            ..HttpCamsConfig::default()
        })
        .unwrap();
        let credentials = creds(SECRET, Some(TOKEN));
        let mut errors: Vec<CamsError> = Vec::new();

        for scenario in ["ok", "sig", "html", "params", "business", "slow"] {
            let mut request = update_request();
            request.key.group_id = scenario.into();
            if let Err(err) = client
                .update_chat_group(&server.endpoint, &credentials, &request)
                .await
            {
                errors.push(err);
            }
        }
        let found = find_group(
            &client,
            &server.endpoint,
            &credentials,
            "cams-test",
            "8613800001234",
            "ok",
            20,
        )
        .await
        .unwrap();
        assert!(found.is_found());
        let closed = Endpoint::from_url(&format!("http://127.0.0.1:{}/", closed_port()));
        errors.push(
            client
                .update_chat_group(&closed, &credentials, &update_request())
                .await
                .unwrap_err(),
        );
        assert_eq!(errors.len(), 6, "{errors:?}");

        let signatures: Vec<String> = server
            .seen()
            .iter()
            .map(|s| s.param("Signature").unwrap().to_owned())
            .collect();
        assert_eq!(signatures.len(), 7);
        let mut needles: Vec<String> = forms(SECRET);
        needles.extend(forms(TOKEN));
        for signature in &signatures {
            needles.extend(forms(signature));
        }

        let logs = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        // The capture works: our own call events are there.
        for request_id in ["R-leak-ok", "R-leak-sig", "R-leak-biz", "R-leak-list"] {
            assert!(
                logs.contains(request_id),
                "{request_id} missing from logs:\n{logs}"
            );
        }
        for needle in &needles {
            assert!(
                !logs.contains(needle.as_str()),
                "logs leak {needle:?}:\n{logs}"
            );
        }
        for err in &errors {
            let texts = [err.to_string(), format!("{err:?}")];
            for text in &texts {
                for needle in &needles {
                    assert!(
                        !text.contains(needle.as_str()),
                        "error leaks {needle:?}: {text}"
                    );
                }
            }
        }
        // The errors still say what happened.
        assert!(
            errors
                .iter()
                .any(|e| e.code() == Some("SignatureDoesNotMatch"))
        );
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, CamsError::Timeout { .. }))
        );
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, CamsError::Transport { .. }))
        );
        assert!(errors.iter().any(|e| matches!(
            e,
            CamsError::InvalidBody {
                http_status: 404,
                ..
            }
        )));
        assert!(format!("{credentials:?}").contains("<redacted>"));
    }
}

/// The actions that create and delete groups and their invite links: what each sends, and that
/// each reads its answer through the one decoding every CAMS call shares.
mod group_lifecycle_actions {
    use super::*;
    use cams_operator::cams::client::{CUT_MARK, MAX_TEXT_CHARS};
    use cams_operator::cams::{
        ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_DELETE_CHAT_GROUP,
        ACTION_DELETE_CHAT_GROUP_INVITE_LINK, ACTION_UPDATE_CHAT_GROUP, AddChatGroupRequest,
        GroupKey, GroupRequest,
    };

    fn add_request() -> AddChatGroupRequest {
        AddChatGroupRequest {
            cust_space_id: "cams-test".into(),
            business_number: "8613800001234".into(),
            channel_type: Some("WHATSAPP".into()),
            subject: Some("Team chat *1*".into()),
            description: Some("Hello world ~ café".into()),
        }
    }

    fn group_request() -> GroupRequest {
        GroupRequest {
            key: GroupKey {
                cust_space_id: "cams-test".into(),
                business_number: "8613800001234".into(),
                group_id: "EA303TEST".into(),
            },
            channel_type: Some("WHATSAPP".into()),
        }
    }

    /// The parameters every signed call carries, with the fixed clock and nonce of
    /// [`vector_client`], plus `action`'s own.
    fn common_and(action: &str, own: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = [
            ("AccessKeyId", "testid"),
            ("Action", action),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", NONCE),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2020-06-06"),
        ]
        .iter()
        .chain(own)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(map.len(), 8 + own.len(), "duplicate names");
        map.remove("Signature");
        map
    }

    /// The parameters of `seen` without `Signature`, after checking that the signature is the
    /// one this file computes on its own, and that it comes last as the client sends it.
    fn verified_params(seen: &Seen, secret: &str) -> BTreeMap<String, String> {
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.path, "/");
        assert!(seen.body.is_empty());
        assert_eq!(
            seen.param("Signature").unwrap(),
            expected_signature(seen, secret)
        );
        assert!(
            seen.raw_query
                .rsplit('&')
                .next()
                .unwrap()
                .starts_with("Signature=")
        );
        let mut map = seen.param_map();
        map.remove("Signature");
        map
    }

    const GROUP_KEYS: [(&str, &str); 4] = [
        ("BusinessNumber", "8613800001234"),
        ("ChannelType", "WHATSAPP"),
        ("CustSpaceId", "cams-test"),
        ("GroupId", "EA303TEST"),
    ];

    #[tokio::test]
    async fn add_sends_its_parameters_signed_and_reads_the_unique_code() {
        let server = Server::start(|_| {
            Reply::json(
                200,
                json!({"RequestId": "R-add", "Code": "OK", "Message": "OK", "Success": true,
                       "UniqueCode": "8a3f0c0e5d2b4f6e9c1d7a2b3c4d5e6f", "SomethingNew": [1]}),
            )
        })
        .await;
        let added = vector_client()
            .add_chat_group(&server.endpoint, &creds("testsecret", None), &add_request())
            .await
            .unwrap();
        assert_eq!(added.meta.http_status, 200);
        assert_eq!(added.meta.code, "OK");
        assert_eq!(added.meta.request_id.as_deref(), Some("R-add"));
        assert_eq!(added.meta.success, Some(true));
        assert_eq!(
            added.unique_code.as_deref(),
            Some("8a3f0c0e5d2b4f6e9c1d7a2b3c4d5e6f")
        );

        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            verified_params(&seen[0], "testsecret"),
            common_and(
                "AddChatGroup",
                &[
                    ("BusinessNumber", "8613800001234"),
                    ("ChannelType", "WHATSAPP"),
                    ("CustSpaceId", "cams-test"),
                    ("Description", "Hello world ~ café"),
                    ("Subject", "Team chat *1*"),
                ]
            )
        );
        // No GroupId: CAMS chooses it.
        assert!(seen[0].param("GroupId").is_none());
        assert!(seen[0].raw_query.contains("Subject=Team%20chat%20%2A1%2A"));
    }

    #[tokio::test]
    async fn add_sends_no_empty_or_unset_optional_field() {
        let server = Server::start(|_| Reply::json(200, ok_body("R"))).await;
        let request = AddChatGroupRequest {
            channel_type: None,
            subject: Some(String::new()),
            description: None,
            ..add_request()
        };
        let added = client()
            .add_chat_group(&server.endpoint, &creds("s", None), &request)
            .await
            .unwrap();
        // An answer without UniqueCode is still a success; the code is simply unknown.
        assert_eq!(added.unique_code, None);
        let seen = &server.seen()[0];
        let params = verified_params(seen, "s");
        let own: Vec<&str> = params
            .keys()
            .map(String::as_str)
            .filter(|k| {
                ![
                    "AccessKeyId",
                    "Action",
                    "Format",
                    "SignatureMethod",
                    "SignatureNonce",
                    "SignatureVersion",
                    "Timestamp",
                    "Version",
                ]
                .contains(k)
            })
            .collect();
        assert_eq!(own, ["BusinessNumber", "CustSpaceId"]);
    }

    #[tokio::test]
    async fn the_group_calls_send_exactly_the_group_keys_signed() {
        let server = Server::start(|seen| match seen.param("Action") {
            Some("AddChatGroupInviteLink") => Reply::json(
                200,
                json!({"RequestId": "R-link", "Code": "OK", "Success": true,
                       "InviteLink": "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv"}),
            ),
            _ => Reply::json(
                200,
                json!({"RequestId": "R-del", "Code": "OK", "Success": true, "Result": "1"}),
            ),
        })
        .await;
        let api = vector_client();
        let creds = creds("testsecret", None);
        let deleted = api
            .delete_chat_group(&server.endpoint, &creds, &group_request())
            .await
            .unwrap();
        assert_eq!(deleted.result, Some(1));
        assert_eq!(deleted.meta.request_id.as_deref(), Some("R-del"));
        let link = api
            .add_chat_group_invite_link(&server.endpoint, &creds, &group_request())
            .await
            .unwrap();
        assert_eq!(
            link.invite_link.as_deref(),
            Some("https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv")
        );
        assert_eq!(link.meta.code, "OK");
        let unlinked = api
            .delete_chat_group_invite_link(&server.endpoint, &creds, &group_request())
            .await
            .unwrap();
        assert_eq!(unlinked.result, Some(1));

        let seen = server.seen();
        let actions = [
            "DeleteChatGroup",
            "AddChatGroupInviteLink",
            "DeleteChatGroupInviteLink",
        ];
        assert_eq!(seen.len(), actions.len());
        for (request, action) in seen.iter().zip(actions) {
            assert_eq!(
                verified_params(request, "testsecret"),
                common_and(action, &GROUP_KEYS),
                "{action}"
            );
        }
        // Same clock, same nonce, same keys: only the action tells the signatures apart.
        let mut signatures: Vec<&str> =
            seen.iter().map(|s| s.param("Signature").unwrap()).collect();
        signatures.dedup();
        assert_eq!(signatures.len(), 3);
    }

    #[tokio::test]
    async fn the_group_calls_send_no_channel_when_none_is_set_and_sign_the_token() {
        let server = Server::start(|_| Reply::json(200, ok_body("R"))).await;
        let api = client();
        let creds = creds("s", Some("CAIS+token/abc="));
        let request = GroupRequest {
            channel_type: Some(String::new()),
            ..group_request()
        };
        api.delete_chat_group(&server.endpoint, &creds, &request)
            .await
            .unwrap();
        api.add_chat_group_invite_link(&server.endpoint, &creds, &request)
            .await
            .unwrap();
        let request = GroupRequest {
            channel_type: None,
            ..group_request()
        };
        api.delete_chat_group_invite_link(&server.endpoint, &creds, &request)
            .await
            .unwrap();
        for seen in server.seen() {
            let params = verified_params(&seen, "s");
            assert!(!params.contains_key("ChannelType"), "{params:?}");
            assert_eq!(
                params.get("SecurityToken").map(String::as_str),
                Some("CAIS+token/abc=")
            );
            assert_eq!(params.get("GroupId").map(String::as_str), Some("EA303TEST"));
        }
    }

    #[tokio::test]
    async fn answer_fields_are_read_tolerantly() {
        let server = Server::start(|seen| {
            let body = match seen.param("Action") {
                Some("AddChatGroup") => json!({"Code": "OK", "UniqueCode": 12345}),
                Some("AddChatGroupInviteLink") => {
                    json!({"Code": "OK", "InviteLink": {"Url": "https://x"}})
                }
                _ => json!({"Code": "OK", "Result": 1.0}),
            };
            Reply::json(200, body)
        })
        .await;
        let api = client();
        let creds = creds("s", None);
        let added = api
            .add_chat_group(&server.endpoint, &creds, &add_request())
            .await
            .unwrap();
        assert_eq!(added.unique_code.as_deref(), Some("12345"));
        let link = api
            .add_chat_group_invite_link(&server.endpoint, &creds, &group_request())
            .await
            .unwrap();
        assert_eq!(link.invite_link, None);
        let deleted = api
            .delete_chat_group(&server.endpoint, &creds, &group_request())
            .await
            .unwrap();
        assert_eq!(deleted.result, Some(1));
    }

    /// `UniqueCode` and `InviteLink` are texts of the answer like any other: an echo of the
    /// secret is redacted and a runaway value is cut.
    #[tokio::test]
    async fn unique_code_and_invite_link_are_scrubbed_and_cut() {
        const SECRET: &str = "wire-secret-value-0123";
        let long = "l".repeat(MAX_TEXT_CHARS * 3);
        let body = json!({"Code": "OK", "UniqueCode": format!("code {SECRET}"),
                          "InviteLink": format!("https://chat.whatsapp.com/{long}")});
        let server = Server::start(move |_| Reply::json(200, body.clone())).await;
        let api = client();
        let creds = creds(SECRET, None);
        let added = api
            .add_chat_group(&server.endpoint, &creds, &add_request())
            .await
            .unwrap();
        assert_eq!(added.unique_code.as_deref(), Some("code <redacted>"));
        let link = api
            .add_chat_group_invite_link(&server.endpoint, &creds, &group_request())
            .await
            .unwrap()
            .invite_link
            .expect("a link");
        assert_eq!(link.chars().count(), MAX_TEXT_CHARS);
        assert!(link.ends_with(CUT_MARK), "{link}");
    }

    /// One call of each action against `server`, its answer reduced to the error it gave
    /// (`None` on success).
    async fn every_action(server: &Server) -> Vec<(&'static str, Option<CamsError>)> {
        let api = client();
        let creds = creds("s", None);
        let endpoint = &server.endpoint;
        vec![
            (
                ACTION_UPDATE_CHAT_GROUP,
                api.update_chat_group(endpoint, &creds, &update_request())
                    .await
                    .err(),
            ),
            (
                ACTION_ADD_CHAT_GROUP,
                api.add_chat_group(endpoint, &creds, &add_request())
                    .await
                    .err(),
            ),
            (
                ACTION_DELETE_CHAT_GROUP,
                api.delete_chat_group(endpoint, &creds, &group_request())
                    .await
                    .err(),
            ),
            (
                ACTION_ADD_CHAT_GROUP_INVITE_LINK,
                api.add_chat_group_invite_link(endpoint, &creds, &group_request())
                    .await
                    .err(),
            ),
            (
                ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
                api.delete_chat_group_invite_link(endpoint, &creds, &group_request())
                    .await
                    .err(),
            ),
        ]
    }

    /// Every failing answer gives each new action exactly the error it gives `UpdateChatGroup`
    /// (variant, status, code, message, ids, retry-after, classification), with the action's
    /// own name.
    #[tokio::test]
    async fn every_action_reads_errors_through_the_one_decoding() {
        let replies: Vec<(&str, Reply)> =
            vec![
            (
                "business",
                Reply::json(
                    200,
                    json!({"RequestId": "R-b", "Code": CODE_GROUP_NOT_FOUND,
                           "Message": "group not exist", "Success": false,
                           "AccessDeniedDetail": {"PolicyType": "x"}}),
                ),
            ),
            (
                "gateway",
                Reply::json(
                    403,
                    json!({"RequestId": "R-g", "HostId": "cams.ap-southeast-1.aliyuncs.com",
                           "Code": "Forbidden.RAM", "Message": "m",
                           "Recommend": "https://diag/x", "AccessDeniedDetail": "detail"}),
                ),
            ),
            (
                "throttled",
                Reply::json(
                    400,
                    json!({"RequestId": "R-t", "Code": "Throttling.User", "Message": "slow down"}),
                )
                .header("x-ratelimit-user-api", "Limit:1,Remain:0,TimeLeft:2000,Reset:1234"),
            ),
            (
                "unavailable",
                Reply::json(503, json!({"RequestId": "R-u", "Code": "ServiceUnavailable"})),
            ),
            ("not json", Reply::text(502, "<html>Bad Gateway</html>")),
            ("no code", Reply::json(200, json!({"RequestId": "R-n"}))),
        ];
        for (name, reply) in replies {
            let server = Server::start(move |_| reply.clone()).await;
            let results = every_action(&server).await;
            let (_, reference) = &results[0];
            let reference = reference
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: UpdateChatGroup succeeded"));
            let shape = |err: &CamsError| format!("{err:?}").replace(err.action(), "<action>");
            for (action, err) in &results[1..] {
                let err = err
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: {action} succeeded"));
                assert_eq!(err.action(), *action, "{name}");
                assert_eq!(shape(err), shape(reference), "{name}: {action}");
                assert_eq!(err.kind(), reference.kind(), "{name}: {action}");
                assert_eq!(
                    err.retry_after(),
                    reference.retry_after(),
                    "{name}: {action}"
                );
            }
            assert_eq!(server.seen().len(), 5, "{name}: one request per call");
        }
    }

    /// The classification, spelled out for the new actions.
    #[tokio::test]
    async fn errors_of_the_new_actions_are_classified() {
        let cases: Vec<(Reply, ErrorKind, ErrorClass, Option<Duration>)> = vec![
            (
                Reply::json(200, json!({"Code": CODE_GROUP_NOT_FOUND, "Success": false})),
                ErrorKind::GroupNotFound,
                ErrorClass::Terminal,
                None,
            ),
            (
                Reply::json(200, json!({"Code": "Forbidden.NotAllowlisted"})),
                ErrorKind::AccessDenied,
                ErrorClass::Terminal,
                None,
            ),
            (
                Reply::json(400, json!({"Code": "SignatureDoesNotMatch"})),
                ErrorKind::CredentialsInvalid,
                ErrorClass::Terminal,
                None,
            ),
            (
                Reply::json(400, json!({"Code": "Throttling.User"}))
                    .header("x-ratelimit-user", "Limit:5,Remain:0,TimeLeft:750"),
                ErrorKind::Throttled,
                ErrorClass::Recoverable,
                Some(Duration::from_millis(750)),
            ),
            (
                Reply::json(429, json!({})),
                ErrorKind::Throttled,
                ErrorClass::Recoverable,
                None,
            ),
            (
                Reply::json(500, json!({"Code": "InternalError"})),
                ErrorKind::Unavailable,
                ErrorClass::Recoverable,
                None,
            ),
        ];
        for (reply, kind, class, retry_after) in cases {
            let server = Server::start(move |_| reply.clone()).await;
            for (action, err) in every_action(&server).await {
                let err = err.unwrap_or_else(|| panic!("{action} succeeded"));
                assert_eq!(err.kind(), kind, "{action}: {err:?}");
                assert_eq!(err.class(), class, "{action}: {err:?}");
                assert_eq!(err.retry_after(), retry_after, "{action}: {err:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_dropped_connection_is_a_transport_error_for_every_action() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
                drop(stream);
            }
        });
        let api = client();
        let creds = creds("s", None);
        let endpoint = Endpoint::from_url(&format!("http://{addr}/"));
        let errors = [
            api.add_chat_group(&endpoint, &creds, &add_request())
                .await
                .map(drop),
            api.delete_chat_group(&endpoint, &creds, &group_request())
                .await
                .map(drop),
            api.add_chat_group_invite_link(&endpoint, &creds, &group_request())
                .await
                .map(drop),
            api.delete_chat_group_invite_link(&endpoint, &creds, &group_request())
                .await
                .map(drop),
        ];
        for err in errors {
            let err = err.expect_err("dropped");
            assert!(matches!(err, CamsError::Transport { .. }), "{err:?}");
            assert_eq!(err.kind(), ErrorKind::Transport);
            assert_eq!(err.reason(), Reason::CamsUnavailable);
        }
    }
}
