//! The CAMS simulator, from the outside: the reference vectors' requests, rejections with the
//! real codes, the group operations, faults, counters and the request log, the `sim` command and
//! its admin endpoints, and the official Python SDK talking to it.
//!
//! Requests are built here with a small signer of the tests' own (not `cams::sign`) and sent with
//! a raw HTTP/1.1 client, so that every byte on the wire is under the test's control.

mod support {
    use std::net::SocketAddr;
    use std::time::Duration;

    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub use cams_sim::{
        ActionFaults, Fault, ForcedError, Group, RunningSim, ServerError, Simulator,
        SimulatorBuilder,
    };

    /// Time of the reference vectors.
    pub const VECTOR_TIME: &str = "2016-02-23T12:46:24Z";
    pub const VECTOR_NONCE: &str = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf";
    pub const SPACE: &str = "cams-test";
    pub const NUMBER: &str = "8613800001234";
    pub const GROUP: &str = "EA303TEST";
    pub const KEY_ID: &str = "testid";
    pub const SECRET: &str = "testsecret";

    /// An HTTP answer.
    #[derive(Debug)]
    pub struct Reply {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Reply {
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body)
                .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
        }
        pub fn code(&self) -> String {
            self.json()["Code"].as_str().unwrap_or_default().to_owned()
        }
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends one request over a fresh connection. `Err` when the server closed the connection
    /// without answering.
    pub async fn send(
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect(addr).await?;
        let mut request = format!("{method} {target} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            request.push_str(&format!("host: {addr}\r\n"));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!(
            "connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ));
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        // A bound on a stuck server, not a timing assertion.
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
            .await
            .map_err(|_| std::io::Error::other("no answer within 30 s"))??;
        if raw.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed without a response",
            ));
        }
        let text = String::from_utf8(raw).map_err(std::io::Error::other)?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Ok(Reply {
            status,
            headers,
            body: body.to_owned(),
        })
    }

    /// `A-Z a-z 0-9 - _ . ~` kept, everything else `%XY`.
    pub fn pop(value: &str) -> String {
        let mut out = String::new();
        for byte in value.bytes() {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

    /// Form encoding as Python's `urlencode` does it: space as `+`.
    pub fn plus(value: &str) -> String {
        pop(value).replace("%20", "+")
    }

    pub fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The tests' own V1 signer.
    pub fn sign_v1(method: &str, params: &[(String, String)], secret: &str) -> String {
        let mut sorted: Vec<(String, String)> =
            params.iter().map(|(n, v)| (pop(n), pop(v))).collect();
        sorted.sort();
        let cqs = sorted
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let to_sign = format!("{method}&%2F&{}", pop(&cqs));
        let mut mac =
            Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("key");
        mac.update(to_sign.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// `name=value&...` with `encode` applied to both.
    pub fn encode_all(params: &[(String, String)], encode: fn(&str) -> String) -> String {
        params
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The common V1 parameters with the given time and nonce.
    pub fn common(action: &str, key_id: &str, time: &str, nonce: &str) -> Vec<(String, String)> {
        owned(&[
            ("AccessKeyId", key_id),
            ("Action", action),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            ("Timestamp", time),
            ("Version", "2020-06-06"),
        ])
    }

    pub fn now_utc() -> String {
        jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    pub fn fresh_nonce() -> String {
        hex::encode(rand::random::<[u8; 16]>())
    }

    /// Action parameters plus current common parameters, signed with `secret`: the query string.
    pub fn signed_now(action: &str, key_id: &str, secret: &str, extra: &[(&str, &str)]) -> String {
        let mut params = common(action, key_id, &now_utc(), &fresh_nonce());
        params.extend(owned(extra));
        let signature = sign_v1("POST", &params, secret);
        params.push(("Signature".into(), signature));
        encode_all(&params, pop)
    }

    /// POST `/` with a signed query, current time, a fresh nonce.
    pub async fn call(sim: &RunningSim, action: &str, extra: &[(&str, &str)]) -> Reply {
        let query = signed_now(action, KEY_ID, SECRET, extra);
        send(sim.addr(), "POST", &format!("/?{query}"), &[], "")
            .await
            .expect("an answer")
    }

    /// A simulator with the vectors' key and group.
    pub fn vector_builder() -> SimulatorBuilder {
        Simulator::builder()
            .access_key(KEY_ID, SECRET)
            .group(Group::new(SPACE, NUMBER, GROUP).subject("Before"))
    }

    pub fn vector_time() -> jiff::Timestamp {
        VECTOR_TIME.parse().expect("vector time")
    }

    pub async fn start(builder: SimulatorBuilder) -> RunningSim {
        builder.start().await.expect("simulator starts")
    }

    pub fn update_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("BusinessNumber", NUMBER),
            ("CustSpaceId", SPACE),
            ("GroupId", GROUP),
        ]
    }

    pub fn list_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("BusinessNumber", NUMBER),
            ("CustSpaceId", SPACE),
            ("Page", r#"{"Index":1,"Size":20}"#),
        ]
    }
}

/// Published signature test vectors (checked against the official signer), sent byte for byte.
mod vectors {
    use super::support::*;

    fn d1_params() -> Vec<(String, String)> {
        let mut params = common("UpdateChatGroup", KEY_ID, VECTOR_TIME, VECTOR_NONCE);
        params.extend(owned(&[
            ("BusinessNumber", NUMBER),
            ("ChannelType", "WHATSAPP"),
            ("CustSpaceId", SPACE),
            ("GroupId", GROUP),
            ("Subject", "Team chat *1*"),
            ("Description", "Hello world ~ café"),
        ]));
        params
    }

    fn with_signature(mut params: Vec<(String, String)>, signature: &str) -> String {
        params.push(("Signature".into(), signature.into()));
        format!("/?{}", encode_all(&params, pop))
    }

    pub fn d1_target() -> String {
        with_signature(d1_params(), "1+Vrjxn8RgFcmg1EBPghvWVXrsU=")
    }

    #[tokio::test]
    async fn d1_update_is_accepted_and_applied() {
        let sim = start(vector_builder().fixed_time(vector_time())).await;
        let reply = send(sim.addr(), "POST", &d1_target(), &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        assert_eq!(body["Code"], "OK");
        assert_eq!(body["Success"], true);
        assert_eq!(body["Result"], 1);
        let group = sim.group(SPACE, NUMBER, GROUP).expect("group");
        assert_eq!(group.subject.as_deref(), Some("Team chat *1*"));
        assert_eq!(group.description.as_deref(), Some("Hello world ~ café"));
        assert_eq!(sim.call_count("UpdateChatGroup"), 1);
    }

    #[tokio::test]
    async fn d2_list_is_accepted() {
        let sim = start(vector_builder().fixed_time(vector_time())).await;
        let mut params = common("ListChatGroup", KEY_ID, VECTOR_TIME, VECTOR_NONCE);
        params.extend(owned(&list_params()));
        let target = with_signature(params, "YMblCDRZShPOM9gsQvo333S1qsk=");
        let reply = send(sim.addr(), "POST", &target, &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        assert_eq!(body["Code"], "OK");
        assert_eq!(body["Data"]["Total"], 1);
        assert_eq!(body["Data"]["List"][0]["GroupId"], GROUP);
        assert_eq!(body["Data"]["List"][0]["Subject"], "Before");
    }

    #[tokio::test]
    async fn d3_sts_is_accepted_with_the_token_and_refused_without() {
        let sts = start(
            Simulator::builder()
                .sts_key(KEY_ID, SECRET, "CAIS+token/abc=")
                .group(Group::new(SPACE, NUMBER, GROUP))
                .fixed_time(vector_time()),
        )
        .await;
        let mut params = d1_params();
        params.push(("SecurityToken".into(), "CAIS+token/abc=".into()));
        let target = with_signature(params, "9JezM58oP4whMOfGGuUPrqYjQhI=");
        let reply = send(sts.addr(), "POST", &target, &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.code(), "OK");

        // The same key without its token (the UpdateChatGroup vector), on a fresh simulator (it
        // shares the STS vector's nonce).
        let sts = start(
            Simulator::builder()
                .sts_key(KEY_ID, SECRET, "CAIS+token/abc=")
                .group(Group::new(SPACE, NUMBER, GROUP))
                .fixed_time(vector_time()),
        )
        .await;
        let reply = send(sts.addr(), "POST", &d1_target(), &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "InvalidSecurityToken.Mismatch");

        // A token sent with a permanent key.
        let plain = start(vector_builder().fixed_time(vector_time())).await;
        let reply = send(plain.addr(), "POST", &target, &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "InvalidSecurityToken.Mismatch");
    }

    #[tokio::test]
    async fn expired_sts_token_is_refused() {
        let key = cams_sim::AccessKeySeed::sts(KEY_ID, SECRET, "CAIS+token/abc=")
            .expires_at("2016-02-23T12:00:00Z".parse().expect("time"));
        let sim = start(
            Simulator::builder()
                .key(key)
                .group(Group::new(SPACE, NUMBER, GROUP))
                .fixed_time(vector_time()),
        )
        .await;
        let mut params = d1_params();
        params.push(("SecurityToken".into(), "CAIS+token/abc=".into()));
        let target = with_signature(params, "9JezM58oP4whMOfGGuUPrqYjQhI=");
        let reply = send(sim.addr(), "POST", &target, &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "InvalidSecurityToken.Expired");
    }

    pub fn v3_target() -> String {
        let query = owned(&[
            ("BusinessNumber", NUMBER),
            ("ChannelType", "WHATSAPP"),
            ("CustSpaceId", SPACE),
            ("GroupId", GROUP),
            ("Subject", "Team chat *1*"),
            ("Description", "Hello world ~ café"),
        ]);
        format!("/?{}", encode_all(&query, plus))
    }

    pub fn v3_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("host", "cams.ap-southeast-1.aliyuncs.com"),
            ("x-acs-action", "UpdateChatGroup"),
            ("x-acs-version", "2020-06-06"),
            ("x-acs-date", VECTOR_TIME),
            ("x-acs-signature-nonce", VECTOR_NONCE),
            (
                "x-acs-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                "authorization",
                "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=0f80c8c4f671182c8ca48c63b3007ba63d3aac6eea6d2c69631bfda521a3cd23",
            ),
        ]
    }

    #[tokio::test]
    async fn v3_1_update_is_accepted() {
        let sim = start(vector_builder().fixed_time(vector_time())).await;
        let reply = send(sim.addr(), "POST", &v3_target(), &v3_headers(), "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.code(), "OK");
        let group = sim.group(SPACE, NUMBER, GROUP).expect("group");
        assert_eq!(group.subject.as_deref(), Some("Team chat *1*"));
        let log = sim.request_log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].action.as_deref(), Some("UpdateChatGroup"));
        assert_eq!(log[0].signature_version, cams_sim::SignatureVersion::V3);
        assert_eq!(log[0].access_key_id.as_deref(), Some(KEY_ID));
    }
}

/// Every rejection the issue lists, with the real codes and HTTP statuses.
mod rejections {
    use super::support::*;
    use super::vectors::{d1_target, v3_headers, v3_target};

    async fn vector_sim() -> RunningSim {
        start(vector_builder().fixed_time(vector_time())).await
    }

    #[tokio::test]
    async fn tampered_parameter_v1_and_v3() {
        let sim = vector_sim().await;
        let tampered = d1_target().replace("Team%20chat", "Team%20chap");
        let reply = send(sim.addr(), "POST", &tampered, &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "SignatureDoesNotMatch");
        let body = reply.json();
        for field in ["RequestId", "HostId", "Message", "Recommend"] {
            assert!(body[field].is_string(), "{field} in {body}");
        }
        assert_eq!(
            sim.group(SPACE, NUMBER, GROUP).and_then(|g| g.subject),
            Some("Before".to_owned()),
            "a rejected call changes nothing"
        );

        let tampered = v3_target().replace("Team+chat", "Team+chap");
        let reply = send(sim.addr(), "POST", &tampered, &v3_headers(), "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "SignatureDoesNotMatch");
    }

    #[tokio::test]
    async fn v3_body_hash_and_unsigned_headers_are_checked() {
        let sim = vector_sim().await;
        let reply = send(
            sim.addr(),
            "POST",
            &v3_target(),
            &v3_headers(),
            "Subject=Sneaky",
        )
        .await
        .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "SignatureDoesNotMatch");

        let mut headers = v3_headers();
        headers.push(("x-acs-security-token", "smuggled"));
        let reply = send(sim.addr(), "POST", &v3_target(), &headers, "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "IncompleteSignature");
    }

    #[tokio::test]
    async fn wrong_secret() {
        let sim = start(vector_builder()).await;
        let query = signed_now(
            "UpdateChatGroup",
            KEY_ID,
            "not-the-secret",
            &update_params(),
        );
        let reply = send(sim.addr(), "POST", &format!("/?{query}"), &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "SignatureDoesNotMatch");
        assert!(
            !reply.body.contains("not-the-secret"),
            "the answer never echoes a secret"
        );
    }

    #[tokio::test]
    async fn missing_signature() {
        let sim = vector_sim().await;
        let target = d1_target();
        let (without, _) = target.split_once("&Signature=").expect("signature last");
        let reply = send(sim.addr(), "POST", without, &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "IncompleteSignature");

        let headers: Vec<_> = v3_headers()
            .into_iter()
            .map(|(n, v)| {
                if n == "authorization" {
                    (n, "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host")
                } else {
                    (n, v)
                }
            })
            .collect();
        let reply = send(sim.addr(), "POST", &v3_target(), &headers, "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "IncompleteSignature");
    }

    #[tokio::test]
    async fn unknown_access_key() {
        let sim = start(vector_builder()).await;
        let query = signed_now("UpdateChatGroup", "nobody", SECRET, &update_params());
        let reply = send(sim.addr(), "POST", &format!("/?{query}"), &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 404, "{}", reply.body);
        assert_eq!(reply.code(), "InvalidAccessKeyId.NotFound");
    }

    #[tokio::test]
    async fn timestamp_more_than_15_minutes_off() {
        let sixteen = jiff::SignedDuration::from_secs(16 * 60);
        let fourteen = jiff::SignedDuration::from_secs(14 * 60);
        for (clock, expect_ok) in [
            (vector_time() + sixteen, false),
            (vector_time() - sixteen, false),
            (vector_time() + fourteen, true),
        ] {
            for (target, headers) in [
                (d1_target(), vec![]),
                (v3_target(), super::vectors::v3_headers()),
            ] {
                // A fresh simulator each time: both vectors use the same nonce.
                let sim = start(vector_builder().fixed_time(clock)).await;
                let reply = send(sim.addr(), "POST", &target, &headers, "")
                    .await
                    .expect("answer");
                if expect_ok {
                    assert_eq!(reply.code(), "OK", "{clock}: {}", reply.body);
                } else {
                    assert_eq!(reply.status, 400, "{clock}: {}", reply.body);
                    assert_eq!(reply.code(), "InvalidTimeStamp.Expired", "{clock}");
                }
            }
        }
    }

    #[tokio::test]
    async fn reused_nonce() {
        let sim = vector_sim().await;
        let first = send(sim.addr(), "POST", &d1_target(), &[], "")
            .await
            .expect("answer");
        assert_eq!(first.code(), "OK", "{}", first.body);
        let again = send(sim.addr(), "POST", &d1_target(), &[], "")
            .await
            .expect("answer");
        assert_eq!(again.status, 400, "{}", again.body);
        assert_eq!(again.code(), "SignatureNonceUsed");

        // V3 vector: same nonce, same key: also a replay.
        let v3 = send(sim.addr(), "POST", &v3_target(), &v3_headers(), "")
            .await
            .expect("answer");
        assert_eq!(v3.status, 400, "{}", v3.body);
        assert_eq!(v3.code(), "SignatureNonceUsed");
        assert_eq!(sim.code_count("UpdateChatGroup", "SignatureNonceUsed"), 2);
    }

    #[tokio::test]
    async fn unknown_action_and_version() {
        let sim = start(vector_builder()).await;
        let reply = call(&sim, "DescribeRegions", &[]).await;
        assert_eq!(reply.status, 404, "{}", reply.body);
        assert_eq!(reply.code(), "InvalidApi.NotFound");

        let mut params = common("UpdateChatGroup", KEY_ID, &now_utc(), &fresh_nonce());
        params.retain(|(n, _)| n != "Version");
        params.push(("Version".into(), "2019-01-01".into()));
        params.extend(owned(&update_params()));
        let signature = sign_v1("POST", &params, SECRET);
        params.push(("Signature".into(), signature));
        let reply = send(
            sim.addr(),
            "POST",
            &format!("/?{}", encode_all(&params, pop)),
            &[],
            "",
        )
        .await
        .expect("answer");
        assert_eq!(reply.status, 404, "{}", reply.body);
        assert_eq!(reply.code(), "InvalidApi.NotFound");

        let reply = send(sim.addr(), "POST", "/other/path", &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 404);
        assert_eq!(reply.code(), "InvalidApi.NotFound");
    }
}

/// The wire format: methods, encodings, form bodies, the envelope.
mod protocol {
    use super::support::*;

    #[tokio::test]
    async fn plus_and_percent20_both_decode_as_space() {
        let sim = start(vector_builder()).await;
        for (encode, subject) in [(plus as fn(&str) -> String, "With plus"), (pop, "With pct")] {
            let mut params = common("UpdateChatGroup", KEY_ID, &now_utc(), &fresh_nonce());
            params.extend(owned(&update_params()));
            params.push(("Subject".into(), subject.into()));
            let signature = sign_v1("POST", &params, SECRET);
            params.push(("Signature".into(), signature));
            let target = format!("/?{}", encode_all(&params, encode));
            let reply = send(sim.addr(), "POST", &target, &[], "")
                .await
                .expect("answer");
            assert_eq!(reply.code(), "OK", "{}", reply.body);
            assert_eq!(
                sim.group(SPACE, NUMBER, GROUP).and_then(|g| g.subject),
                Some(subject.to_owned())
            );
        }
    }

    #[tokio::test]
    async fn get_and_form_body_are_accepted() {
        let sim = start(vector_builder()).await;
        let mut params = common("ListChatGroup", KEY_ID, &now_utc(), &fresh_nonce());
        params.extend(owned(&list_params()));
        let signature = sign_v1("GET", &params, SECRET);
        params.push(("Signature".into(), signature));
        let reply = send(
            sim.addr(),
            "GET",
            &format!("/?{}", encode_all(&params, pop)),
            &[],
            "",
        )
        .await
        .expect("answer");
        assert_eq!(reply.code(), "OK", "{}", reply.body);

        // Common parameters in the query, the action's in a form body: all signed together.
        let query = common("UpdateChatGroup", KEY_ID, &now_utc(), &fresh_nonce());
        let mut form = owned(&update_params());
        form.push(("Subject".into(), "From the body".into()));
        let mut all = query.clone();
        all.extend(form.clone());
        let signature = sign_v1("POST", &all, SECRET);
        let mut query = query;
        query.push(("Signature".into(), signature));
        let reply = send(
            sim.addr(),
            "POST",
            &format!("/?{}", encode_all(&query, pop)),
            &[("content-type", "application/x-www-form-urlencoded")],
            &encode_all(&form, plus),
        )
        .await
        .expect("answer");
        assert_eq!(reply.code(), "OK", "{}", reply.body);
        assert_eq!(
            sim.group(SPACE, NUMBER, GROUP).and_then(|g| g.subject),
            Some("From the body".to_owned())
        );
    }

    #[tokio::test]
    async fn envelope_and_request_ids() {
        let sim = start(vector_builder()).await;
        let a = call(&sim, "ListChatGroup", &list_params()).await;
        let b = call(&sim, "ListChatGroup", &list_params()).await;
        assert_eq!(a.status, 200);
        assert!(
            a.header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
        );
        let (ida, idb) = (a.json()["RequestId"].clone(), b.json()["RequestId"].clone());
        let ida = ida.as_str().expect("RequestId");
        assert_ne!(Some(ida), idb.as_str());
        assert!(
            ida.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        assert_eq!(ida.len(), 36);
        let log = sim.request_log();
        assert_eq!(log[0].request_id, ida);
    }

    #[tokio::test]
    async fn repeated_parameters_and_bad_escapes_are_refused() {
        let sim = start(vector_builder()).await;
        let query = signed_now("ListChatGroup", KEY_ID, SECRET, &list_params());
        let reply = send(
            sim.addr(),
            "POST",
            &format!("/?{query}&CustSpaceId=other"),
            &[],
            "",
        )
        .await
        .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "InvalidParameter");
        let reply = send(sim.addr(), "POST", "/?Action=%zz", &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "InvalidParameter");
    }
}

/// The four group operations and their parameter rules.
mod operations {
    use super::support::*;
    use cams_operator::cams::CODE_GROUP_NOT_FOUND;

    #[tokio::test]
    async fn update_changes_only_sent_fields() {
        let sim = start(vector_builder()).await;
        sim.edit_group(SPACE, NUMBER, GROUP, |g| {
            g.description = Some("Keep me".into());
        });
        let mut params = update_params();
        params.push(("ProfilePictureFile", "https://cdn.example.com/p.jpg"));
        let reply = call(&sim, "UpdateChatGroup", &params).await;
        assert_eq!(reply.code(), "OK", "{}", reply.body);
        let group = sim.group(SPACE, NUMBER, GROUP).expect("group");
        assert_eq!(group.subject.as_deref(), Some("Before"));
        assert_eq!(group.description.as_deref(), Some("Keep me"));
        assert_eq!(
            group.profile_picture_file.as_deref(),
            Some("https://cdn.example.com/p.jpg")
        );
    }

    #[tokio::test]
    async fn business_errors_are_http_200_with_success_false() {
        let sim = start(vector_builder()).await;
        type Case = (
            &'static str,
            Vec<(&'static str, &'static str)>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                "UpdateChatGroup",
                vec![
                    ("BusinessNumber", NUMBER),
                    ("CustSpaceId", SPACE),
                    ("GroupId", "NOPE"),
                ],
                CODE_GROUP_NOT_FOUND,
            ),
            (
                "UpdateChatGroup",
                {
                    let mut p = update_params();
                    p.push(("ChannelType", "SMS"));
                    p
                },
                "InvalidParameter.ChannelTypeNotSupport",
            ),
            (
                "ListChatGroup",
                vec![
                    ("BusinessNumber", NUMBER),
                    ("CustSpaceId", SPACE),
                    ("Page", r#"{"Index":0,"Size":20}"#),
                ],
                "InvalidParameter.PageInvalid",
            ),
            (
                "ListChatGroup",
                vec![
                    ("BusinessNumber", NUMBER),
                    ("CustSpaceId", SPACE),
                    ("Page", "1"),
                ],
                "InvalidParameter.PageInvalid",
            ),
            (
                "DeleteChatGroup",
                vec![
                    ("BusinessNumber", NUMBER),
                    ("CustSpaceId", "other-space"),
                    ("GroupId", GROUP),
                ],
                CODE_GROUP_NOT_FOUND,
            ),
        ];
        for (action, params, code) in cases {
            let reply = call(&sim, action, &params).await;
            assert_eq!(reply.status, 200, "{action} {params:?}: {}", reply.body);
            let body = reply.json();
            assert_eq!(body["Code"], code, "{action} {params:?}");
            assert_eq!(body["Success"], false);
            assert!(body["Message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }

    #[tokio::test]
    async fn missing_required_parameter_is_a_400() {
        let sim = start(vector_builder()).await;
        let reply = call(
            &sim,
            "UpdateChatGroup",
            &[("BusinessNumber", NUMBER), ("CustSpaceId", SPACE)],
        )
        .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "MissingParameter");
        assert!(
            reply.json()["Message"]
                .as_str()
                .unwrap_or("")
                .contains("GroupId")
        );
    }

    #[tokio::test]
    async fn add_list_filter_page_delete() {
        let sim = start(vector_builder().seed(3)).await;
        for subject in ["Sales", "Support east", "Support west"] {
            let reply = call(
                &sim,
                "AddChatGroup",
                &[
                    ("BusinessNumber", NUMBER),
                    ("CustSpaceId", SPACE),
                    ("Subject", subject),
                ],
            )
            .await;
            assert_eq!(reply.code(), "OK", "{}", reply.body);
            assert!(reply.json()["UniqueCode"].is_string());
        }
        sim.set_group_status(SPACE, NUMBER, GROUP, "SUSPENDED");
        let page = |index: u32, size: u32| format!(r#"{{"Index":{index},"Size":{size}}}"#);

        let p1 = page(1, 2);
        let first = call(
            &sim,
            "ListChatGroup",
            &[
                ("BusinessNumber", NUMBER),
                ("CustSpaceId", SPACE),
                ("Page", &p1),
            ],
        )
        .await
        .json();
        assert_eq!(first["Data"]["Total"], 4);
        assert_eq!(first["Data"]["List"].as_array().map(Vec::len), Some(2));
        let p2 = page(2, 2);
        let second = call(
            &sim,
            "ListChatGroup",
            &[
                ("BusinessNumber", NUMBER),
                ("CustSpaceId", SPACE),
                ("Page", &p2),
            ],
        )
        .await
        .json();
        let ids = |v: &serde_json::Value| -> Vec<String> {
            v["Data"]["List"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g["GroupId"].as_str().map(str::to_owned))
                .collect()
        };
        let mut all = ids(&first);
        all.extend(ids(&second));
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(all.len(), 4);
        assert_eq!(all, sorted, "pages are disjoint and in a stable order");

        let p = page(1, 20);
        let support = call(
            &sim,
            "ListChatGroup",
            &[
                ("BusinessNumber", NUMBER),
                ("CustSpaceId", SPACE),
                ("Page", &p),
                ("Subject", "Support"),
            ],
        )
        .await
        .json();
        assert_eq!(support["Data"]["Total"], 2);
        let suspended = call(
            &sim,
            "ListChatGroup",
            &[
                ("BusinessNumber", NUMBER),
                ("CustSpaceId", SPACE),
                ("Page", &p),
                ("GroupStatus", "SUSPENDED"),
            ],
        )
        .await
        .json();
        assert_eq!(ids(&suspended), [GROUP]);

        let reply = call(&sim, "DeleteChatGroup", &update_params()).await;
        assert_eq!(reply.code(), "OK", "{}", reply.body);
        assert!(sim.group(SPACE, NUMBER, GROUP).is_none());
        assert_eq!(sim.groups().len(), 3);
    }

    /// A created group is `CREATING` until the simulator's clock passes the creation delay;
    /// only listing sees it meanwhile. Then its invite link comes and goes, and it is deleted.
    #[tokio::test]
    async fn group_lifecycle_by_the_clock() {
        let start_time = jiff::Timestamp::now();
        let sim = start(
            vector_builder()
                .fixed_time(start_time)
                .creation_delay(std::time::Duration::from_secs(30)),
        )
        .await;
        let reply = call(
            &sim,
            "AddChatGroup",
            &[
                ("BusinessNumber", NUMBER),
                ("CustSpaceId", SPACE),
                ("Subject", "Lifecycle"),
            ],
        )
        .await;
        assert_eq!(reply.code(), "OK", "{}", reply.body);
        let listed = |reply: Reply, id: &str| -> Option<serde_json::Value> {
            reply.json()["Data"]["List"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["GroupId"] == id)
                .cloned()
        };
        let id = sim
            .groups()
            .into_iter()
            .find(|g| g.subject.as_deref() == Some("Lifecycle"))
            .map(|g| g.group_id)
            .expect("created");
        let keys = [
            ("BusinessNumber", NUMBER),
            ("CustSpaceId", SPACE),
            ("GroupId", id.as_str()),
        ];
        let item = listed(call(&sim, "ListChatGroup", &list_params()).await, &id);
        assert_eq!(
            item.map(|g| g["GroupStatus"].clone()),
            Some("CREATING".into())
        );
        for action in [
            "UpdateChatGroup",
            "AddChatGroupInviteLink",
            "DeleteChatGroupInviteLink",
            "DeleteChatGroup",
        ] {
            let reply = call(&sim, action, &keys).await;
            assert_eq!(reply.status, 200, "{action}: {}", reply.body);
            assert_eq!(reply.code(), "InvalidStatus.GroupCreating", "{action}");
            assert_eq!(reply.json()["Success"], false);
        }

        sim.set_time(start_time + jiff::SignedDuration::from_secs(30));
        let item = listed(call(&sim, "ListChatGroup", &list_params()).await, &id).expect("listed");
        assert_eq!(item["GroupStatus"], "ACTIVE");
        assert!(item.get("InviteLink").is_none(), "{item}");

        let added = call(&sim, "AddChatGroupInviteLink", &keys).await;
        assert_eq!(added.code(), "OK", "{}", added.body);
        let link = added.json()["InviteLink"].clone();
        assert!(
            link.as_str()
                .is_some_and(|l| l.starts_with("https://chat.whatsapp.com/"))
        );
        let item = listed(call(&sim, "ListChatGroup", &list_params()).await, &id).expect("listed");
        assert_eq!(item["InviteLink"], link);
        let deleted = call(&sim, "DeleteChatGroupInviteLink", &keys).await;
        assert_eq!(deleted.json()["Result"], 1, "{}", deleted.body);
        let item = listed(call(&sim, "ListChatGroup", &list_params()).await, &id).expect("listed");
        assert!(item.get("InviteLink").is_none(), "{item}");

        let gone = call(&sim, "DeleteChatGroup", &keys).await;
        assert_eq!(gone.code(), "OK", "{}", gone.body);
        assert!(listed(call(&sim, "ListChatGroup", &list_params()).await, &id).is_none());
        let again = call(&sim, "DeleteChatGroup", &keys).await;
        assert_eq!(
            (again.status, again.code()),
            (200, CODE_GROUP_NOT_FOUND.to_owned())
        );
    }

    #[tokio::test]
    async fn external_edits_show_in_the_listing() {
        let sim = start(vector_builder()).await;
        let before = sim.group(SPACE, NUMBER, GROUP).expect("group");
        assert!(sim.edit_group(SPACE, NUMBER, GROUP, |g| {
            g.subject = Some("Renamed in WhatsApp".into());
            g.gmt_modifier = Some(before.gmt_modifier.unwrap_or(0) + 1);
        }));
        assert!(!sim.edit_group(SPACE, NUMBER, "NOPE", |_| {}));
        let listing = call(&sim, "ListChatGroup", &list_params()).await.json();
        assert_eq!(listing["Data"]["List"][0]["Subject"], "Renamed in WhatsApp");
        assert_eq!(
            listing["Data"]["List"][0]["GmtModifier"],
            before.gmt_modifier.unwrap_or(0) + 1
        );
    }
}

/// Fault injection and its determinism.
mod faults {
    use super::support::*;

    async fn codes_of(seed: u64, calls: usize) -> Vec<String> {
        let sim = start(
            vector_builder().seed(seed).faults(
                "ListChatGroup",
                ActionFaults::none()
                    .throttle_rate(0.3)
                    .server_error_rate(0.3, ServerError::ServiceUnavailable),
            ),
        )
        .await;
        let mut codes = Vec::new();
        for _ in 0..calls {
            codes.push(call(&sim, "ListChatGroup", &list_params()).await.code());
        }
        codes
    }

    #[tokio::test]
    async fn same_seed_same_sequence() {
        let a = codes_of(42, 24).await;
        let b = codes_of(42, 24).await;
        let c = codes_of(43, 24).await;
        assert_eq!(a, b);
        assert_ne!(a, c);
        for code in ["OK", "Throttling.User", "ServiceUnavailable"] {
            assert!(a.iter().any(|c| c == code), "{code} in {a:?}");
        }
    }

    #[tokio::test]
    async fn throttling_carries_the_ratelimit_header() {
        let sim = start(
            vector_builder().faults(
                "UpdateChatGroup",
                ActionFaults::none()
                    .throttle_rate(1.0)
                    .throttle_header(7, 2500),
            ),
        )
        .await;
        let reply = call(&sim, "UpdateChatGroup", &update_params()).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "Throttling.User");
        let header = reply.header("x-ratelimit-user-api").expect("header");
        let fields: Vec<(&str, &str)> = header
            .split(',')
            .filter_map(|f| f.split_once(':'))
            .collect();
        assert_eq!(fields[0], ("Limit", "7"));
        assert_eq!(fields[1], ("Remain", "0"));
        assert_eq!(fields[2], ("TimeLeft", "2500"));
        assert_eq!(fields[3].0, "Reset");
        assert!(fields[3].1.parse::<i64>().is_ok());
        assert_eq!(
            sim.group(SPACE, NUMBER, GROUP).and_then(|g| g.subject),
            Some("Before".into()),
            "a throttled call changes nothing"
        );
    }

    #[tokio::test]
    async fn faults_apply_after_signature_checks() {
        let sim = start(
            vector_builder().faults("UpdateChatGroup", ActionFaults::none().throttle_rate(1.0)),
        )
        .await;
        let query = signed_now("UpdateChatGroup", KEY_ID, "wrong", &update_params());
        let reply = send(sim.addr(), "POST", &format!("/?{query}"), &[], "")
            .await
            .expect("answer");
        assert_eq!(reply.code(), "SignatureDoesNotMatch");
    }

    #[tokio::test]
    async fn scripted_errors_drops_and_latency() {
        let sim = start(vector_builder()).await;
        sim.set_faults(
            "UpdateChatGroup",
            ActionFaults::none()
                .latency_ms(5)
                .then(Fault::ServerError {
                    error: ServerError::InternalError,
                })
                .then(Fault::Drop)
                .then(Fault::Gateway {
                    http_status: 403,
                    code: "Forbidden.RAM".into(),
                    message: None,
                }),
        )
        .expect("valid faults");
        let first = call(&sim, "UpdateChatGroup", &update_params()).await;
        assert_eq!((first.status, first.code()), (500, "InternalError".into()));

        let query = signed_now("UpdateChatGroup", KEY_ID, SECRET, &update_params());
        let dropped = send(sim.addr(), "POST", &format!("/?{query}"), &[], "").await;
        assert!(dropped.is_err(), "dropped, got {dropped:?}");

        let third = call(&sim, "UpdateChatGroup", &update_params()).await;
        assert_eq!((third.status, third.code()), (403, "Forbidden.RAM".into()));
        let fourth = call(&sim, "UpdateChatGroup", &update_params()).await;
        assert_eq!(fourth.code(), "OK", "the script is used up");

        let stats = sim.stats();
        let update = &stats.calls["UpdateChatGroup"];
        assert_eq!(update.total, 4);
        assert_eq!(update.dropped, 1);
        let dropped_entry = &sim.requests_for("UpdateChatGroup")[1];
        assert_eq!(dropped_entry.http_status, None);
        assert_eq!(dropped_entry.code, None);
    }

    #[tokio::test]
    async fn forced_codes_by_group() {
        let sim = start(
            vector_builder()
                .group(Group::new(SPACE, NUMBER, "OTHER"))
                .force_code(GROUP, "Forbidden.NotAllowlisted"),
        )
        .await;
        let reply = call(&sim, "UpdateChatGroup", &update_params()).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.code(), "Forbidden.NotAllowlisted");
        assert_eq!(reply.json()["Success"], false);
        let other = call(
            &sim,
            "UpdateChatGroup",
            &[
                ("BusinessNumber", NUMBER),
                ("CustSpaceId", SPACE),
                ("GroupId", "OTHER"),
            ],
        )
        .await;
        assert_eq!(other.code(), "OK");
        sim.force_error(GROUP, ForcedError::gateway(403, "Forbidden.RAM"))
            .expect("valid");
        let reply = call(&sim, "UpdateChatGroup", &update_params()).await;
        assert_eq!((reply.status, reply.code()), (403, "Forbidden.RAM".into()));
        sim.clear_forced_code(GROUP);
        assert_eq!(
            call(&sim, "UpdateChatGroup", &update_params()).await.code(),
            "OK"
        );
    }

    /// Faults are keyed by action name, so the invite-link actions get theirs, from the builder
    /// and at run time, and a faulted call changes nothing.
    #[tokio::test]
    async fn faults_apply_to_the_invite_link_actions() {
        let sim = start(vector_builder().faults(
            cams_sim::ACTION_ADD_CHAT_GROUP_INVITE_LINK,
            ActionFaults::none().throttle_rate(1.0),
        ))
        .await;
        let reply = call(&sim, "AddChatGroupInviteLink", &update_params()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "Throttling.User".into())
        );
        assert!(reply.header("x-ratelimit-user-api").is_some());
        assert_eq!(
            sim.group(SPACE, NUMBER, GROUP).and_then(|g| g.invite_link),
            None,
            "a throttled call changes nothing"
        );
        sim.clear_faults(cams_sim::ACTION_ADD_CHAT_GROUP_INVITE_LINK);
        let reply = call(&sim, "AddChatGroupInviteLink", &update_params()).await;
        assert_eq!(reply.code(), "OK", "{}", reply.body);
        let link = reply.json()["InviteLink"].clone();

        sim.set_faults(
            cams_sim::ACTION_DELETE_CHAT_GROUP_INVITE_LINK,
            ActionFaults::none()
                .then(Fault::ServerError {
                    error: ServerError::ServiceUnavailable,
                })
                .then(Fault::Business {
                    code: "Forbidden.NotAllowlisted".into(),
                    message: None,
                }),
        )
        .expect("valid faults");
        let first = call(&sim, "DeleteChatGroupInviteLink", &update_params()).await;
        assert_eq!(
            (first.status, first.code()),
            (503, "ServiceUnavailable".into())
        );
        let second = call(&sim, "DeleteChatGroupInviteLink", &update_params()).await;
        assert_eq!(
            (second.status, second.code()),
            (200, "Forbidden.NotAllowlisted".into())
        );
        assert_eq!(
            sim.group(SPACE, NUMBER, GROUP).and_then(|g| g.invite_link),
            link.as_str().map(str::to_owned),
            "the faulted deletes kept the link"
        );
        let third = call(&sim, "DeleteChatGroupInviteLink", &update_params()).await;
        assert_eq!(third.code(), "OK", "the script is used up: {}", third.body);
        assert_eq!(
            sim.group(SPACE, NUMBER, GROUP).and_then(|g| g.invite_link),
            None
        );
        assert_eq!(
            sim.code_count("DeleteChatGroupInviteLink", "ServiceUnavailable"),
            1
        );
        assert_eq!(
            sim.code_count("AddChatGroupInviteLink", "Throttling.User"),
            1
        );
    }

    #[tokio::test]
    async fn invalid_faults_are_refused_with_the_field_named() {
        let sim = start(vector_builder()).await;
        let err = sim
            .set_faults("ListChatGroup", ActionFaults::none().throttle_rate(-0.1))
            .expect_err("invalid");
        assert!(err.to_string().contains("throttleRate"), "{err}");
    }
}

/// Counters, the request log and reset, in-process.
mod counters {
    use super::support::*;

    #[tokio::test]
    async fn counts_log_and_reset() {
        let sim =
            start(vector_builder().sts_key("STS.key", "stssecret", "TOKEN-must-not-leak")).await;
        call(&sim, "ListChatGroup", &list_params()).await;
        call(&sim, "UpdateChatGroup", &update_params()).await;
        let mut params = common("ListChatGroup", "STS.key", &now_utc(), &fresh_nonce());
        params.push(("SecurityToken".into(), "TOKEN-must-not-leak".into()));
        params.extend(owned(&list_params()));
        let signature = sign_v1("POST", &params, "stssecret");
        params.push(("Signature".into(), signature.clone()));
        let reply = send(
            sim.addr(),
            "POST",
            &format!("/?{}", encode_all(&params, pop)),
            &[],
            "",
        )
        .await
        .expect("answer");
        assert_eq!(reply.code(), "OK", "{}", reply.body);

        assert_eq!(sim.call_count("ListChatGroup"), 2);
        assert_eq!(sim.call_count("UpdateChatGroup"), 1);
        assert_eq!(sim.call_count("DeleteChatGroup"), 0);
        let log = sim.request_log();
        assert_eq!(log.len(), 3);
        assert_eq!(log[1].action.as_deref(), Some("UpdateChatGroup"));
        assert_eq!(log[1].group_id.as_deref(), Some(GROUP));
        assert_eq!(log[1].code.as_deref(), Some("OK"));
        assert_eq!(log[1].http_status, Some(200));
        assert_eq!(
            log[1].params.get("CustSpaceId").map(String::as_str),
            Some(SPACE)
        );
        let text = serde_json::to_string(&sim.stats()).expect("serialises");
        for secret in [
            SECRET,
            "stssecret",
            "TOKEN-must-not-leak",
            signature.as_str(),
        ] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
        assert!(log.iter().all(|r| !r.params.contains_key("Signature")));

        sim.reset_counters();
        assert_eq!(sim.call_count("ListChatGroup"), 0);
        assert!(sim.request_log().is_empty());
        assert!(
            sim.group(SPACE, NUMBER, GROUP).is_some(),
            "state survives a reset"
        );
    }

    #[tokio::test]
    async fn clock_can_be_shifted_at_run_time() {
        let sim = start(vector_builder()).await;
        sim.set_clock_offset(jiff::SignedDuration::from_secs(3600));
        let reply = call(&sim, "ListChatGroup", &list_params()).await;
        assert_eq!(reply.code(), "InvalidTimeStamp.Expired");
        sim.use_system_clock();
        let reply = call(&sim, "ListChatGroup", &list_params()).await;
        assert_eq!(reply.code(), "OK");
    }

    #[tokio::test]
    async fn key_rotation_at_run_time() {
        let sim = start(vector_builder()).await;
        sim.add_access_key(cams_sim::AccessKeySeed::new(KEY_ID, "rotated"));
        assert_eq!(
            call(&sim, "ListChatGroup", &list_params()).await.code(),
            "SignatureDoesNotMatch"
        );
        assert!(sim.remove_access_key(KEY_ID));
        assert_eq!(
            call(&sim, "ListChatGroup", &list_params()).await.code(),
            "InvalidAccessKeyId.NotFound"
        );
    }
}

/// The README's config example is a valid config.
mod docs {
    use cams_sim::{Fault, SimConfig};

    #[test]
    fn readme_config_example_parses() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("### Config file")
            .nth(1)
            .expect("README has a Config file section");
        let yaml = section
            .split("```yaml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a yaml block");
        let config = SimConfig::from_yaml_str(yaml).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.seed, 42);
        assert_eq!(config.faults["UpdateChatGroup"].script.len(), 7);
        assert!(
            config.faults["UpdateChatGroup"]
                .script
                .contains(&Fault::LostAnswer)
        );
        assert_eq!(config.faults["UpdateChatGroup"].lost_answer_rate, 0.01);
        assert_eq!(
            config.faults["UpdateChatGroup"].script.back(),
            Some(&Fault::Pass)
        );
        assert_eq!(config.forced_codes["EA303DENY"].http_status, 403);
        assert_eq!(config.forced_codes["EA303GONE"].http_status, 200);
        assert_eq!(config.sts.credential_ttl_seconds, Some(60));
        assert_eq!(config.sts.oidc_tokens.as_ref().map(Vec::len), Some(1));
        assert_eq!(config.creation_delay_ms, 5000);
    }
}

/// The `sim` command as a process, and its admin endpoints.
mod process {
    use std::io::{BufRead, BufReader};
    use std::net::SocketAddr;
    use std::process::{Child, Command, Stdio};

    use super::support::*;

    /// Kills the child when a test fails half-way.
    struct Guard(Child);

    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn spawn(args: &[&str]) -> (Guard, SocketAddr) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cams-operator"))
            .arg("sim")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns");
        let stdout = child.stdout.take().expect("stdout");
        let guard = Guard(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reads");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        (guard, addr)
    }

    async fn admin(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
        send(
            addr,
            method,
            path,
            &[("content-type", "application/json")],
            body,
        )
        .await
        .expect("admin answer")
    }

    async fn signed(addr: SocketAddr, action: &str, extra: &[(&str, &str)]) -> Reply {
        let query = signed_now(action, KEY_ID, SECRET, extra);
        send(addr, "POST", &format!("/?{query}"), &[], "")
            .await
            .expect("answer")
    }

    #[tokio::test]
    async fn flags_admin_endpoints_and_sigterm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("sim.yaml");
        std::fs::write(
            &config,
            "seed: 9\ngroups:\n  - {custSpaceId: cams-test, businessNumber: \"8613800001234\", groupId: FROMFILE}\n",
        )
        .expect("writes");
        let config = config.to_str().expect("utf-8 path");
        let (mut guard, addr) = spawn(&[
            "--addr",
            "127.0.0.1:0",
            "--config",
            config,
            "--access-key",
            "testid:testsecret",
            "--group",
            "cams-test:8613800001234:EA303TEST:Team: chat",
        ]);

        let listing = signed(addr, "ListChatGroup", &list_params()).await;
        assert_eq!(listing.code(), "OK", "{}", listing.body);
        assert_eq!(listing.json()["Data"]["Total"], 2);
        let reply = signed(addr, "UpdateChatGroup", &update_params()).await;
        assert_eq!(reply.code(), "OK", "{}", reply.body);

        let stats = admin(addr, "GET", "/_sim/stats", "").await.json();
        assert_eq!(stats["calls"]["ListChatGroup"]["total"], 1);
        assert_eq!(stats["calls"]["UpdateChatGroup"]["byCode"]["OK"], 1);
        assert_eq!(stats["log"].as_array().map(Vec::len), Some(2));
        assert!(!stats.to_string().contains(SECRET));

        let groups = admin(addr, "GET", "/_sim/groups", "").await.json();
        let subject = groups
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["groupId"] == GROUP)
            .map(|g| g["subject"].clone());
        assert_eq!(subject, Some(serde_json::json!("Team: chat")));

        let reset = admin(addr, "POST", "/_sim/reset", "").await;
        assert_eq!(reset.status, 200);
        let stats = admin(addr, "GET", "/_sim/stats", "").await.json();
        assert_eq!(stats["calls"], serde_json::json!({}));

        let faults = admin(
            addr,
            "POST",
            "/_sim/faults",
            r#"{"UpdateChatGroup": {"throttleRate": 1.0, "throttleTimeLeftMs": 3000}}"#,
        )
        .await;
        assert_eq!(faults.status, 200, "{}", faults.body);
        let throttled = signed(addr, "UpdateChatGroup", &update_params()).await;
        assert_eq!(throttled.code(), "Throttling.User");
        assert!(
            throttled
                .header("x-ratelimit-user-api")
                .is_some_and(|h| h.contains("TimeLeft:3000"))
        );
        admin(addr, "POST", "/_sim/faults", r#"{"UpdateChatGroup": null}"#).await;
        assert_eq!(
            signed(addr, "UpdateChatGroup", &update_params())
                .await
                .code(),
            "OK"
        );

        let edit = admin(
            addr,
            "POST",
            "/_sim/groups",
            r#"{"custSpaceId":"cams-test","businessNumber":"8613800001234","groupId":"EA303TEST","subject":"Edited outside"}"#,
        )
        .await;
        assert_eq!(edit.status, 200, "{}", edit.body);
        let listing = signed(addr, "ListChatGroup", &list_params()).await.json();
        let subjects: Vec<&str> = listing["Data"]["List"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["Subject"].as_str())
            .collect();
        assert!(subjects.contains(&"Edited outside"), "{listing}");

        let forced = admin(
            addr,
            "POST",
            "/_sim/forced-codes",
            r#"{"EA303TEST": "Forbidden.NotAllowlisted"}"#,
        )
        .await;
        assert_eq!(forced.status, 200, "{}", forced.body);
        assert_eq!(
            signed(addr, "UpdateChatGroup", &update_params())
                .await
                .code(),
            "Forbidden.NotAllowlisted"
        );

        // The creation delay, set at run time, by a clock fixed through the admin endpoint.
        let start_time = jiff::Timestamp::now();
        let fixed = admin(
            addr,
            "POST",
            "/_sim/clock",
            &format!(r#"{{"fixed": "{start_time}"}}"#),
        )
        .await;
        assert_eq!(fixed.status, 200, "{}", fixed.body);
        let delay = admin(
            addr,
            "POST",
            "/_sim/creation-delay",
            r#"{"creationDelayMs": 60000}"#,
        )
        .await;
        assert_eq!(delay.status, 200, "{}", delay.body);
        assert_eq!(
            admin(addr, "GET", "/_sim/creation-delay", "").await.json()["creationDelayMs"],
            60000
        );
        let added = signed(
            addr,
            "AddChatGroup",
            &[
                ("BusinessNumber", NUMBER),
                ("CustSpaceId", SPACE),
                ("Subject", "Made by admin test"),
            ],
        )
        .await;
        assert_eq!(added.code(), "OK", "{}", added.body);
        let status_of_new_group = || async {
            admin(addr, "GET", "/_sim/groups", "")
                .await
                .json()
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["subject"] == "Made by admin test")
                .map(|g| g["groupStatus"].clone())
        };
        assert_eq!(status_of_new_group().await, Some("CREATING".into()));
        let later = start_time + jiff::SignedDuration::from_secs(60);
        admin(
            addr,
            "POST",
            "/_sim/clock",
            &format!(r#"{{"fixed": "{later}"}}"#),
        )
        .await;
        assert_eq!(status_of_new_group().await, Some("ACTIVE".into()));
        let bad = admin(
            addr,
            "POST",
            "/_sim/creation-delay",
            r#"{"creationDelayMs": -1}"#,
        )
        .await;
        assert_eq!(bad.status, 400, "{}", bad.body);

        let clock = admin(addr, "POST", "/_sim/clock", r#"{"offsetSeconds": 7200}"#).await;
        assert_eq!(clock.status, 200, "{}", clock.body);
        assert_eq!(
            signed(addr, "ListChatGroup", &list_params()).await.code(),
            "InvalidTimeStamp.Expired"
        );

        let bad = admin(addr, "POST", "/_sim/faults", r#"{"X": {"dropRate": 3}}"#).await;
        assert_eq!(bad.status, 400);
        let unknown = admin(addr, "GET", "/_sim/nothing", "").await;
        assert_eq!(unknown.status, 404);

        // SIGTERM ends it cleanly.
        let pid = guard.0.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let status = guard.0.wait().expect("exits");
        assert!(status.success(), "exit status {status:?}");
    }

    #[test]
    fn bad_flags_fail_without_echoing_secrets() {
        let output = Command::new(env!("CARGO_BIN_EXE_cams-operator"))
            .args([
                "sim",
                "--addr",
                "127.0.0.1:0",
                "--access-key",
                "lonely-hunter2",
            ])
            .output()
            .expect("runs");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--access-key"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }

    #[test]
    fn help_lists_the_flags() {
        let output = Command::new(env!("CARGO_BIN_EXE_cams-operator"))
            .args(["sim", "--help"])
            .output()
            .expect("runs");
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        for flag in ["--addr", "--config", "--access-key", "--group"] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
        }
    }
}

/// The official Python SDK (`alibabacloud-cams20200606`) against the simulator, V1 and V3.
mod interop {
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::support::*;
    use cams_sim::SignatureVersion;

    const STS_ID: &str = "STS.interop";
    const STS_SECRET: &str = "sts-interop-secret";
    const STS_TOKEN: &str = "CAIS+interop/token=";

    fn python() -> PathBuf {
        let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/install-test-tools (it installs the official Alibaba Cloud SDK into .venv/)",
            python.display()
        );
        python
    }

    /// Runs an SDK script of `tests/interop/`, killing it if it hangs (a bound, not a timing
    /// assertion).
    fn run_sdk(script: &str, args: Vec<String>) -> serde_json::Value {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop")
            .join(script);
        let mut child = Command::new(python())
            .arg(script)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python starts");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if child.try_wait().expect("waits").is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the SDK script did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the SDK script failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("script output is not JSON ({e}): {stdout}"))
    }

    async fn run(algorithm: &str, expect: SignatureVersion) {
        let sim = start(
            vector_builder()
                .seed(11)
                .sts_key(STS_ID, STS_SECRET, STS_TOKEN),
        )
        .await;
        let args: Vec<String> = [
            "--endpoint",
            &format!("127.0.0.1:{}", sim.addr().port()),
            "--algorithm",
            algorithm,
            "--key-id",
            KEY_ID,
            "--secret",
            SECRET,
            "--space",
            SPACE,
            "--number",
            NUMBER,
            "--group-id",
            GROUP,
            "--sts-key-id",
            STS_ID,
            "--sts-secret",
            STS_SECRET,
            "--sts-token",
            STS_TOKEN,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let result = tokio::task::spawn_blocking(move || run_sdk("sdk_calls.py", args))
            .await
            .expect("joins");

        let subject = result["subject"].as_str().expect("subject").to_owned();
        let description = result["description"]
            .as_str()
            .expect("description")
            .to_owned();
        let update = &result["update"];
        assert_eq!(update["ok"], true, "{result}");
        assert_eq!(update["body"]["Code"], "OK");
        assert_eq!(update["body"]["Result"], 1);

        let list = &result["list"];
        assert_eq!(list["ok"], true, "{result}");
        let item = list["body"]["Data"]["List"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["GroupId"] == GROUP)
            .cloned()
            .expect("the group is listed");
        assert_eq!(item["Subject"], subject.as_str());
        assert_eq!(item["Description"], description.as_str());

        let add = &result["add"];
        assert_eq!(add["ok"], true, "{result}");
        assert!(
            add["body"]["UniqueCode"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );

        let wrong = &result["wrongSecret"];
        assert_eq!(wrong["ok"], false, "{result}");
        assert_eq!(wrong["code"], "SignatureDoesNotMatch");
        assert_eq!(wrong["statusCode"], 400);

        assert_eq!(result["stsList"]["ok"], true, "{result}");
        assert_eq!(
            result["stsWrongToken"]["code"],
            "InvalidSecurityToken.Mismatch"
        );

        // What the simulator saw.
        let group = sim.group(SPACE, NUMBER, GROUP).expect("group");
        assert_eq!(group.subject.as_deref(), Some(subject.as_str()));
        assert_eq!(group.description.as_deref(), Some(description.as_str()));
        assert_eq!(sim.groups().len(), 2, "AddChatGroup created one group");
        assert_eq!(sim.call_count("UpdateChatGroup"), 2);
        assert_eq!(sim.code_count("UpdateChatGroup", "OK"), 1);
        assert_eq!(
            sim.code_count("UpdateChatGroup", "SignatureDoesNotMatch"),
            1
        );
        assert_eq!(sim.call_count("ListChatGroup"), 3);
        assert_eq!(sim.call_count("AddChatGroup"), 1);
        let log = sim.request_log();
        assert!(log.iter().all(|r| r.signature_version == expect), "{log:?}");
        let text = serde_json::to_string(&log).expect("serialises");
        for secret in [SECRET, STS_SECRET, STS_TOKEN] {
            assert!(!text.contains(secret), "{secret} leaked into the log");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn official_sdk_with_signature_v1() {
        run("v2", SignatureVersion::V1).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn official_sdk_with_signature_v3() {
        run("v3", SignatureVersion::V3).await;
    }

    /// The group lifecycle through the SDK: a new group is `CREATING` until the simulator's
    /// (fixed) clock passes the creation delay, which the script does through `/_sim/clock`;
    /// then its invite link is added and deleted, and the group is deleted. Every answer must
    /// parse in the SDK's response models.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn official_sdk_walks_the_group_lifecycle() {
        let delay = Duration::from_secs(60);
        let sim = start(
            vector_builder()
                .seed(5)
                .fixed_time(jiff::Timestamp::now())
                .creation_delay(delay),
        )
        .await;
        let args: Vec<String> = [
            "--endpoint",
            &format!("127.0.0.1:{}", sim.addr().port()),
            "--algorithm",
            "v3",
            "--key-id",
            KEY_ID,
            "--secret",
            SECRET,
            "--space",
            SPACE,
            "--number",
            NUMBER,
            // From the fixed start to the system clock plus twice the delay: past it whatever
            // the time the script took.
            "--clock-offset-seconds",
            &(2 * delay.as_secs()).to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let result = tokio::task::spawn_blocking(move || run_sdk("sdk_lifecycle.py", args))
            .await
            .expect("joins");

        let subject = result["subject"].as_str().expect("subject").to_owned();
        let add = &result["add"];
        assert_eq!(add["ok"], true, "{result}");
        assert_eq!(add["body"]["Code"], "OK", "{result}");
        assert!(
            add["body"]["UniqueCode"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );
        assert!(add["body"].get("GroupId").is_none(), "{result}");
        let group_id = result["groupId"]
            .as_str()
            .unwrap_or_else(|| panic!("the new group is listed: {result}"))
            .to_owned();
        let item = |listing: &serde_json::Value| -> Option<serde_json::Value> {
            assert_eq!(listing["ok"], true, "{result}");
            assert_eq!(listing["body"]["Code"], "OK", "{result}");
            listing["body"]["Data"]["List"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["GroupId"] == group_id.as_str())
                .cloned()
        };

        let creating = item(&result["listCreating"]).expect("listed while creating");
        assert_eq!(creating["GroupStatus"], "CREATING", "{result}");
        assert_eq!(creating["Subject"], subject.as_str());
        for refused in ["addLinkWhileCreating", "deleteWhileCreating"] {
            assert_eq!(result[refused]["ok"], true, "{result}");
            assert_eq!(
                result[refused]["body"]["Code"],
                cams_sim::codes::GROUP_CREATING,
                "{refused}: {result}"
            );
        }

        let active = item(&result["listActive"]).expect("listed once created");
        assert_eq!(active["GroupStatus"], "ACTIVE", "{result}");
        assert!(active.get("InviteLink").is_none(), "{result}");

        let add_link = &result["addLink"];
        assert_eq!(add_link["body"]["Code"], "OK", "{result}");
        let link = add_link["inviteLink"]
            .as_str()
            .expect("the SDK model's invite_link");
        assert!(link.starts_with("https://chat.whatsapp.com/"), "{link}");
        let with_link = item(&result["listWithLink"]).expect("listed");
        assert_eq!(with_link["InviteLink"], link);

        let delete_link = &result["deleteLink"];
        assert_eq!(delete_link["body"]["Code"], "OK", "{result}");
        assert_eq!(delete_link["body"]["Result"], 1, "{result}");
        let without_link = item(&result["listWithoutLink"]).expect("listed");
        assert!(without_link.get("InviteLink").is_none(), "{result}");
        assert_eq!(result["deleteLinkAgain"]["body"]["Code"], "OK", "{result}");

        let delete = &result["deleteGroup"];
        assert_eq!(delete["body"]["Code"], "OK", "{result}");
        assert_eq!(delete["body"]["Result"], 1, "{result}");
        for missing in ["deleteGroupAgain", "addLinkAfterDelete"] {
            assert_eq!(
                result[missing]["body"]["Code"],
                cams_sim::codes::GROUP_NOT_FOUND,
                "{missing}: {result}"
            );
        }
        assert!(item(&result["listAfterDelete"]).is_none(), "{result}");

        // What the simulator saw.
        assert!(sim.group(SPACE, NUMBER, &group_id).is_none());
        assert_eq!(sim.groups().len(), 1, "only the seeded group is left");
        for (action, calls) in [
            ("AddChatGroup", 1),
            ("AddChatGroupInviteLink", 3),
            ("DeleteChatGroupInviteLink", 2),
            ("DeleteChatGroup", 3),
            ("ListChatGroup", 5),
        ] {
            assert_eq!(sim.call_count(action), calls, "{action}");
        }
    }
}

/// `HttpCams`, the operator's own client, against the simulator for every outcome the client
/// distinguishes: success, business error, gateway error, throttling with its retry-after, a
/// server error, a dropped connection, a timeout, and STS credentials. (A body that is not
/// JSON is covered by `tests/cams_wire.rs`: the simulator always answers with the envelope.)
mod client_against_simulator {
    use std::time::Duration;

    use cams_operator::cams::client::{HttpCams, HttpCamsConfig, find_group};
    use cams_operator::cams::pager::Lookup;
    use cams_operator::cams::{
        ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_DELETE_CHAT_GROUP,
        ACTION_DELETE_CHAT_GROUP_INVITE_LINK, ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP,
        AddChatGroupRequest, CODE_GROUP_NOT_FOUND, CODE_OK, CamsApi, CamsError, ChatGroupItem,
        Credentials, Endpoint, ErrorClass, ErrorKind, GroupKey, GroupRequest, ListChatGroupRequest,
        SecretString, UpdateChatGroupRequest,
    };
    use cams_operator::crd::Reason;
    use cams_sim::{
        ActionFaults, Fault, ForcedError, Group, RunningSim, ServerError, Simulator, codes,
    };

    const SPACE: &str = "cams-client";
    const NUMBER: &str = "8613800009999";

    fn creds(secret: &str, token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: if token.is_some() {
                "STS.client"
            } else {
                "LTAIclient"
            }
            .to_owned(),
            access_key_secret: SecretString::new(secret),
            security_token: token.map(SecretString::new),
        }
    }

    fn update(group_id: &str) -> UpdateChatGroupRequest {
        UpdateChatGroupRequest {
            key: GroupKey {
                cust_space_id: SPACE.to_owned(),
                business_number: NUMBER.to_owned(),
                group_id: group_id.to_owned(),
            },
            channel_type: Some("WHATSAPP".to_owned()),
            subject: Some("Client subject".to_owned()),
            description: None,
            profile_picture_file: None,
        }
    }

    async fn sim() -> RunningSim {
        Simulator::builder()
            .access_key("LTAIclient", "client-secret-value")
            .sts_key("STS.client", "sts-secret-value", "sts-token-value")
            .group(Group::new(SPACE, NUMBER, "G1").subject("Before"))
            .group(Group::new(SPACE, NUMBER, "G2"))
            .start()
            .await
            .expect("simulator")
    }

    /// `UpdateChatGroup` of `group_id` with the permanent key and `secret`, under `timeout`.
    async fn update_with(
        sim: &RunningSim,
        timeout: Duration,
        secret: &str,
        group_id: &str,
    ) -> Result<cams_operator::cams::UpdateChatGroupResponse, CamsError> {
        client(timeout)
            .update_chat_group(
                &cams_operator::cams::Endpoint::from_url(&sim.url()),
                &creds(secret, None),
                &update(group_id),
            )
            .await
    }

    fn client(timeout: Duration) -> HttpCams {
        HttpCams::new(HttpCamsConfig {
            request_timeout: timeout,
            ..HttpCamsConfig::default()
        })
        .expect("client")
    }

    #[tokio::test]
    async fn success_with_access_key_and_with_sts() {
        let sim = sim().await;
        let api = client(Duration::from_secs(10));
        let ok = update_with(&sim, Duration::from_secs(10), "client-secret-value", "G1")
            .await
            .expect("update");
        assert_eq!(ok.meta.code, CODE_OK);
        assert_eq!(ok.meta.http_status, 200);
        assert_eq!(ok.result, Some(1));
        let logged = sim.requests_for(ACTION_UPDATE_CHAT_GROUP);
        assert_eq!(
            ok.meta.request_id.as_deref(),
            Some(logged[0].request_id.as_str())
        );

        let sts = creds("sts-secret-value", Some("sts-token-value"));
        let found = find_group(
            &api,
            &cams_operator::cams::Endpoint::from_url(&sim.url()),
            &sts,
            SPACE,
            NUMBER,
            "G1",
            1,
        )
        .await
        .expect("list with STS")
        .found()
        .expect("found");
        assert_eq!(found.0.subject.as_deref(), Some("Client subject"));
    }

    #[tokio::test]
    async fn business_and_gateway_errors_keep_the_service_fields() {
        let sim = sim().await;
        sim.force_error("G2", ForcedError::business("InvalidParameter.Unknown"))
            .expect("force");
        let err = update_with(&sim, Duration::from_secs(10), "client-secret-value", "G2")
            .await
            .expect_err("business error");
        assert!(
            matches!(&err, CamsError::Business { http_status: 200, code, request_id: Some(_), .. } if code == "InvalidParameter.Unknown"),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Terminal);

        let err = update_with(&sim, Duration::from_secs(10), "wrong-secret-value", "G1")
            .await
            .expect_err("gateway error");
        assert!(
            matches!(&err, CamsError::Gateway { http_status: 400, code: Some(code), request_id: Some(_), host_id: Some(_), .. } if code == "SignatureDoesNotMatch"),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Terminal);
        assert!(!format!("{err} {err:?}").contains("client-secret-value"));
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_recoverable() {
        let sim = sim().await;
        let api = client(Duration::from_secs(10));
        sim.set_faults(
            ACTION_LIST_CHAT_GROUP,
            ActionFaults::none()
                .throttle_rate(1.0)
                .throttle_header(3, 1500),
        )
        .expect("faults");
        let err = find_group(
            &api,
            &cams_operator::cams::Endpoint::from_url(&sim.url()),
            &creds("client-secret-value", None),
            SPACE,
            NUMBER,
            "G1",
            20,
        )
        .await
        .expect_err("throttled");
        assert_eq!(err.code(), Some("Throttling.User"));
        assert_eq!(err.class(), ErrorClass::Recoverable);
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));

        sim.set_faults(
            ACTION_UPDATE_CHAT_GROUP,
            ActionFaults::none().server_error_rate(1.0, ServerError::ServiceUnavailable),
        )
        .expect("faults");
        let err = update_with(&sim, Duration::from_secs(10), "client-secret-value", "G1")
            .await
            .expect_err("503");
        assert_eq!(err.http_status(), Some(503));
        assert_eq!(err.class(), ErrorClass::Recoverable);
    }

    #[tokio::test]
    async fn dropped_connections_and_timeouts_have_their_own_variants() {
        let sim = sim().await;
        sim.set_faults(
            ACTION_UPDATE_CHAT_GROUP,
            ActionFaults::none().drop_rate(1.0),
        )
        .expect("faults");
        let err = update_with(&sim, Duration::from_secs(10), "client-secret-value", "G1")
            .await
            .expect_err("dropped");
        assert!(matches!(err, CamsError::Transport { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Recoverable);

        sim.set_faults(
            ACTION_UPDATE_CHAT_GROUP,
            ActionFaults::none().latency_ms(2000),
        )
        .expect("faults");
        let err = update_with(
            &sim,
            Duration::from_millis(200),
            "client-secret-value",
            "G1",
        )
        .await
        .expect_err("timeout");
        assert!(matches!(err, CamsError::Timeout { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Recoverable);
    }

    fn add_request(subject: &str) -> AddChatGroupRequest {
        AddChatGroupRequest {
            cust_space_id: SPACE.to_owned(),
            business_number: NUMBER.to_owned(),
            channel_type: Some("WHATSAPP".to_owned()),
            subject: Some(subject.to_owned()),
            description: Some(format!("About {subject}")),
        }
    }

    fn group_request(group_id: &str) -> GroupRequest {
        GroupRequest {
            key: GroupKey {
                cust_space_id: SPACE.to_owned(),
                business_number: NUMBER.to_owned(),
                group_id: group_id.to_owned(),
            },
            channel_type: Some("WHATSAPP".to_owned()),
        }
    }

    /// Every group of the space and number, through the client's `ListChatGroup`.
    async fn listed(api: &HttpCams, sim: &RunningSim) -> Vec<ChatGroupItem> {
        let page = api
            .list_chat_group(
                &Endpoint::from_url(&sim.url()),
                &creds("client-secret-value", None),
                &ListChatGroupRequest {
                    cust_space_id: SPACE.to_owned(),
                    business_number: NUMBER.to_owned(),
                    channel_type: None,
                    group_status: None,
                    subject: None,
                    page_index: 1,
                    page_size: 100,
                },
            )
            .await
            .expect("list");
        assert_eq!(page.total, Some(page.groups.len() as u64));
        page.groups
    }

    /// Add, wait for `ACTIVE` by the simulator's clock, add and remove an invite link, delete:
    /// every step through `HttpCams` with real signing, every answer read as the operator reads
    /// it, and the simulator's state checked after each.
    #[tokio::test]
    async fn a_group_lifecycle_through_the_client() {
        let start = jiff::Timestamp::now();
        let sim = Simulator::builder()
            .access_key("LTAIclient", "client-secret-value")
            .fixed_time(start)
            .creation_delay(Duration::from_secs(45))
            .start()
            .await
            .expect("simulator");
        let api = client(Duration::from_secs(10));
        let endpoint = Endpoint::from_url(&sim.url());
        let creds = creds("client-secret-value", None);

        let added = api
            .add_chat_group(&endpoint, &creds, &add_request("Lifecycle"))
            .await
            .expect("add");
        assert_eq!(
            (added.meta.code.as_str(), added.meta.http_status),
            (CODE_OK, 200)
        );
        let unique_code = added.unique_code.expect("a UniqueCode");
        assert!(!unique_code.is_empty());
        let logged = &sim.requests_for(ACTION_ADD_CHAT_GROUP)[0];
        assert_eq!(
            added.meta.request_id.as_deref(),
            Some(logged.request_id.as_str())
        );
        assert_eq!(
            logged.params.get("Subject").map(String::as_str),
            Some("Lifecycle")
        );
        assert_eq!(
            logged.params.get("Description").map(String::as_str),
            Some("About Lifecycle")
        );

        let groups = listed(&api, &sim).await;
        assert_eq!(groups.len(), 1, "{groups:?}");
        let created = &groups[0];
        let id = created.group_id.clone().expect("a GroupId");
        assert_eq!(
            created.group_status.as_deref(),
            Some(cams_sim::GROUP_STATUS_CREATING)
        );
        assert_eq!(created.subject.as_deref(), Some("Lifecycle"));
        assert_eq!(created.description.as_deref(), Some("About Lifecycle"));
        assert_eq!(created.business_number.as_deref(), Some(NUMBER));
        assert_eq!(created.invite_link, None);

        // While it is being created, the group cannot be changed.
        let err = api
            .add_chat_group_invite_link(&endpoint, &creds, &group_request(&id))
            .await
            .expect_err("still creating");
        assert!(
            matches!(&err, CamsError::Business { code, http_status: 200, .. } if code == codes::GROUP_CREATING),
            "{err:?}"
        );

        sim.set_time(start + jiff::SignedDuration::from_secs(44));
        assert_eq!(
            listed(&api, &sim).await[0].group_status.as_deref(),
            Some(cams_sim::GROUP_STATUS_CREATING)
        );
        sim.set_time(start + jiff::SignedDuration::from_secs(45));
        let found = find_group(&api, &endpoint, &creds, SPACE, NUMBER, &id, 20)
            .await
            .expect("find")
            .found()
            .expect("found");
        assert_eq!(
            found.0.group_status.as_deref(),
            Some(cams_sim::GROUP_STATUS_ACTIVE)
        );

        let link = api
            .add_chat_group_invite_link(&endpoint, &creds, &group_request(&id))
            .await
            .expect("add invite link");
        assert_eq!(link.meta.code, CODE_OK);
        let link = link.invite_link.expect("an InviteLink");
        assert!(link.starts_with("https://chat.whatsapp.com/"), "{link}");
        assert_eq!(
            sim.group(SPACE, NUMBER, &id).and_then(|g| g.invite_link),
            Some(link.clone())
        );
        assert_eq!(listed(&api, &sim).await[0].invite_link, Some(link));

        let removed = api
            .delete_chat_group_invite_link(&endpoint, &creds, &group_request(&id))
            .await
            .expect("delete invite link");
        assert_eq!(
            (removed.meta.code.as_str(), removed.result),
            (CODE_OK, Some(1))
        );
        assert_eq!(listed(&api, &sim).await[0].invite_link, None);
        assert_eq!(
            sim.group(SPACE, NUMBER, &id).and_then(|g| g.invite_link),
            None
        );

        let deleted = api
            .delete_chat_group(&endpoint, &creds, &group_request(&id))
            .await
            .expect("delete");
        assert_eq!(
            (deleted.meta.code.as_str(), deleted.result),
            (CODE_OK, Some(1))
        );
        assert!(sim.group(SPACE, NUMBER, &id).is_none());
        assert!(listed(&api, &sim).await.is_empty());
        assert!(matches!(
            find_group(&api, &endpoint, &creds, SPACE, NUMBER, &id, 20)
                .await
                .expect("find"),
            Lookup::Missing
        ));

        let err = api
            .delete_chat_group(&endpoint, &creds, &group_request(&id))
            .await
            .expect_err("deleted already");
        assert!(
            matches!(
                &err,
                CamsError::Business {
                    http_status: 200,
                    request_id: Some(_),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.code(), Some(CODE_GROUP_NOT_FOUND));
        assert_eq!(err.action(), ACTION_DELETE_CHAT_GROUP);
        assert_eq!(err.kind(), ErrorKind::GroupNotFound);
        assert_eq!(err.reason(), Reason::GroupNotFound);
        assert_eq!(err.category(), "group_not_found");
        assert_eq!(err.class(), ErrorClass::Terminal);
        // The invite-link actions name a missing group the same way.
        for err in [
            api.add_chat_group_invite_link(&endpoint, &creds, &group_request(&id))
                .await
                .map(drop),
            api.delete_chat_group_invite_link(&endpoint, &creds, &group_request(&id))
                .await
                .map(drop),
        ] {
            let err = err.expect_err("missing group");
            assert_eq!(err.kind(), ErrorKind::GroupNotFound, "{err:?}");
        }
        assert_eq!(
            sim.code_count(ACTION_ADD_CHAT_GROUP_INVITE_LINK, CODE_GROUP_NOT_FOUND)
                + sim.code_count(ACTION_DELETE_CHAT_GROUP_INVITE_LINK, CODE_GROUP_NOT_FOUND),
            2
        );
    }

    /// A lost answer: the simulator creates the group and then closes the connection instead
    /// of answering. The client can only report a dropped connection (recoverable, outcome
    /// unknown); the group exists all the same, and the request log tells the call apart from
    /// a connection dropped before the call ran.
    #[tokio::test]
    async fn a_lost_answer_is_a_transport_error_yet_the_group_exists() {
        let sim = sim().await;
        sim.set_faults(
            ACTION_ADD_CHAT_GROUP,
            ActionFaults::none().lost_answer_rate(1.0),
        )
        .expect("faults");
        let api = client(Duration::from_secs(10));
        let endpoint = Endpoint::from_url(&sim.url());
        let creds = creds("client-secret-value", None);
        let err = api
            .add_chat_group(&endpoint, &creds, &add_request("Lost"))
            .await
            .expect_err("no answer");
        assert!(matches!(err, CamsError::Transport { .. }), "{err:?}");
        assert_eq!(err.action(), ACTION_ADD_CHAT_GROUP);
        assert_eq!(err.kind(), ErrorKind::Transport);
        assert_eq!(err.class(), ErrorClass::Recoverable);
        assert_eq!(err.http_status(), None);

        let created: Vec<_> = sim
            .groups()
            .into_iter()
            .filter(|g| g.subject.as_deref() == Some("Lost"))
            .collect();
        assert_eq!(created.len(), 1, "the call took effect: {created:?}");
        assert!(
            listed(&api, &sim)
                .await
                .iter()
                .any(|g| g.group_id.as_deref() == Some(created[0].group_id.as_str()))
        );

        let logged = sim.requests_for(ACTION_ADD_CHAT_GROUP);
        assert_eq!(logged.len(), 1);
        assert_eq!(
            (logged[0].http_status, logged[0].code.as_deref()),
            (None, None)
        );
        assert_eq!(logged[0].lost_answer_code.as_deref(), Some(CODE_OK));
        assert!(!logged[0].abandoned);
        let stats = &sim.stats().calls[ACTION_ADD_CHAT_GROUP];
        assert_eq!((stats.total, stats.lost_answers, stats.dropped), (1, 1, 0));

        // A connection dropped before the call changes nothing, and is logged without a code.
        sim.set_faults(
            ACTION_ADD_CHAT_GROUP,
            ActionFaults::none().then(Fault::Drop),
        )
        .expect("faults");
        let err = api
            .add_chat_group(&endpoint, &creds, &add_request("Dropped"))
            .await
            .expect_err("no answer");
        assert!(matches!(err, CamsError::Transport { .. }), "{err:?}");
        assert!(
            sim.groups()
                .iter()
                .all(|g| g.subject.as_deref() != Some("Dropped"))
        );
        let logged = sim.requests_for(ACTION_ADD_CHAT_GROUP);
        assert_eq!(logged[1].lost_answer_code, None);
        assert_eq!(logged[1].code, None);
        let stats = &sim.stats().calls[ACTION_ADD_CHAT_GROUP];
        assert_eq!((stats.total, stats.lost_answers, stats.dropped), (2, 1, 1));
    }

    /// A lost answer keeps whatever the call produced, business errors included: a delete of a
    /// missing group loses its `InvalidParameter.GroupNotExist`, and a delete that worked
    /// removes the group though the client hears nothing.
    #[tokio::test]
    async fn a_lost_delete_answer_still_deletes() {
        let sim = sim().await;
        sim.set_faults(
            ACTION_DELETE_CHAT_GROUP,
            ActionFaults::none()
                .then(Fault::LostAnswer)
                .then(Fault::LostAnswer),
        )
        .expect("faults");
        let api = client(Duration::from_secs(10));
        let endpoint = Endpoint::from_url(&sim.url());
        let creds = creds("client-secret-value", None);
        for _ in 0..2 {
            let err = api
                .delete_chat_group(&endpoint, &creds, &group_request("G2"))
                .await
                .expect_err("no answer");
            assert!(matches!(err, CamsError::Transport { .. }), "{err:?}");
        }
        assert!(sim.group(SPACE, NUMBER, "G2").is_none());
        let codes: Vec<Option<String>> = sim
            .requests_for(ACTION_DELETE_CHAT_GROUP)
            .into_iter()
            .map(|r| r.lost_answer_code)
            .collect();
        assert_eq!(
            codes,
            [
                Some(CODE_OK.to_owned()),
                Some(CODE_GROUP_NOT_FOUND.to_owned())
            ]
        );
        // The script is used up: the next call is answered.
        let err = api
            .delete_chat_group(&endpoint, &creds, &group_request("G2"))
            .await
            .expect_err("gone");
        assert_eq!(err.kind(), ErrorKind::GroupNotFound);
    }
}

/// The simulator writes the protocol down on its own (`cams_sim::protocol`) so that it checks the
/// client instead of agreeing with it. This is where the two meet: any disagreement between the
/// simulator's facts and the client's constants fails here, by name.
mod agreement {
    use cams_operator::cams::client::RATE_LIMIT_HEADERS;
    use cams_operator::cams::{
        ACTION_ADD_CHAT_GROUP, ACTION_ADD_CHAT_GROUP_INVITE_LINK, ACTION_DELETE_CHAT_GROUP,
        ACTION_DELETE_CHAT_GROUP_INVITE_LINK, ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP,
        API_VERSION, CODE_GROUP_NOT_FOUND, CODE_OK,
    };
    use cams_operator::crd::{ChannelType, MAX_DESCRIPTION_CHARS, MAX_SUBJECT_CHARS};
    use cams_operator::identity::{
        ACTION_ASSUME_ROLE_WITH_OIDC, DEFAULT_DURATION, MIN_DURATION, STS_API_VERSION,
    };
    use cams_operator::reconcile::observe::LIST_PAGE_SIZE;
    use cams_sim::protocol as sim;

    #[test]
    fn simulator_and_client_agree_on_the_protocol() {
        let pairs: [(&str, String, String); 17] = [
            (
                "CAMS API version",
                API_VERSION.into(),
                sim::CAMS_API_VERSION.into(),
            ),
            (
                "UpdateChatGroup action",
                ACTION_UPDATE_CHAT_GROUP.into(),
                sim::ACTION_UPDATE_CHAT_GROUP.into(),
            ),
            (
                "ListChatGroup action",
                ACTION_LIST_CHAT_GROUP.into(),
                sim::ACTION_LIST_CHAT_GROUP.into(),
            ),
            (
                "AddChatGroup action",
                ACTION_ADD_CHAT_GROUP.into(),
                sim::ACTION_ADD_CHAT_GROUP.into(),
            ),
            (
                "DeleteChatGroup action",
                ACTION_DELETE_CHAT_GROUP.into(),
                sim::ACTION_DELETE_CHAT_GROUP.into(),
            ),
            (
                "AddChatGroupInviteLink action",
                ACTION_ADD_CHAT_GROUP_INVITE_LINK.into(),
                sim::ACTION_ADD_CHAT_GROUP_INVITE_LINK.into(),
            ),
            (
                "DeleteChatGroupInviteLink action",
                ACTION_DELETE_CHAT_GROUP_INVITE_LINK.into(),
                sim::ACTION_DELETE_CHAT_GROUP_INVITE_LINK.into(),
            ),
            ("success code", CODE_OK.into(), sim::codes::OK.into()),
            (
                "missing group code",
                CODE_GROUP_NOT_FOUND.into(),
                sim::codes::GROUP_NOT_FOUND.into(),
            ),
            (
                "WhatsApp channel type",
                ChannelType::Whatsapp.as_str().into(),
                sim::CHANNEL_TYPE_WHATSAPP.into(),
            ),
            (
                "subject limit",
                MAX_SUBJECT_CHARS.to_string(),
                sim::MAX_SUBJECT_CHARS.to_string(),
            ),
            (
                "description limit",
                MAX_DESCRIPTION_CHARS.to_string(),
                sim::MAX_DESCRIPTION_CHARS.to_string(),
            ),
            (
                "STS API version",
                STS_API_VERSION.into(),
                sim::STS_API_VERSION.into(),
            ),
            (
                "AssumeRoleWithOIDC action",
                ACTION_ASSUME_ROLE_WITH_OIDC.into(),
                sim::ACTION_ASSUME_ROLE_WITH_OIDC.into(),
            ),
            (
                "shortest STS session",
                MIN_DURATION.as_secs().to_string(),
                sim::MIN_DURATION_SECONDS.to_string(),
            ),
            (
                "default STS session",
                DEFAULT_DURATION.as_secs().to_string(),
                sim::DEFAULT_DURATION_SECONDS.to_string(),
            ),
            (
                "throttling header",
                RATE_LIMIT_HEADERS[0].into(),
                cams_sim::RATELIMIT_HEADER.into(),
            ),
        ];
        let disagreements: Vec<String> = pairs
            .iter()
            .filter(|(_, client, simulator)| client != simulator)
            .map(|(what, client, simulator)| {
                format!("{what}: the client says {client:?}, the simulator {simulator:?}")
            })
            .collect();
        assert!(disagreements.is_empty(), "{disagreements:#?}");
        assert!(
            u64::from(LIST_PAGE_SIZE) <= sim::MAX_PAGE_SIZE,
            "the client asks for pages of {LIST_PAGE_SIZE}, CAMS serves at most {}",
            sim::MAX_PAGE_SIZE
        );
    }
}
