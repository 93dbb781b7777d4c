//! Hostile input cannot crash or exhaust the operator: property tests (proptest) for every
//! place where bytes from outside become values.
//!
//! - `cams_answers`: what turns a CAMS answer (any status, any headers, any bytes) into a
//!   response or a `CamsError`, both as a pure function and through `HttpCams` over a socket.
//! - `sim_requests`: the simulator's request reading (methods, query strings, form bodies,
//!   signature parameters, headers) over a socket.
//! - `secret_values`: Secret values given to credential resolution.
//! - `chatgroup_limits`: ChatGroup objects at the edges of what the CRD schema admits, through
//!   `parse_chatgroup` and validation.
//!
//! Each property runs a modest number of cases so the whole file stays fast in the debug test
//! profile; `PROPTEST_CASES=5000 cargo nextest run --test hostile_input` runs more. Cases that
//! once failed are kept below as plain `#[test]`s, named after what they guard.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// `cases` cases, unless `PROPTEST_CASES` asks for another number. No regression files are
/// written: failures that matter are kept as plain tests.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}

/// Any character, weighted towards the ones that trip parsers: ASCII punctuation, control
/// characters, multi-byte and combining characters.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => proptest::char::range('\0', '\u{1f}'),
        1 => prop::sample::select(vec![
            'é', '\u{301}', '\u{200b}', '\u{feff}', '\u{a0}', '\u{2028}', 'ß', '日', '\u{10ffff}',
            '\u{fffd}', '\u{7f}', '😀', '\u{1f3fb}',
        ]),
        1 => any::<char>(),
    ]
}

fn tricky_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..max).prop_map(|chars| chars.into_iter().collect())
}

mod cams_answers {
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    use http::{HeaderMap, HeaderName, HeaderValue};
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use cams_operator::cams::answer::MAX_LIST_ITEMS;
    use cams_operator::cams::client::{
        CUT_MARK, HttpCams, HttpCamsConfig, MAX_BODY_BYTES, MAX_TEXT_CHARS, MAX_THROTTLE_DELAY,
        cut, decode_list_chat_group, decode_update_chat_group,
    };
    use cams_operator::cams::{
        CamsApi, CamsError, Credentials, ERROR_CATEGORIES, Endpoint, ErrorClass,
        ListChatGroupRequest, ListChatGroupResponse, SecretString, UpdateChatGroupRequest,
        UpdateChatGroupResponse,
    };
    use cams_operator::crd::Reason;

    use super::{config, tricky_string};

    const SECRET: &str = "hostile-SECRET-value-0123";
    const TOKEN: &str = "hostile/STS+token=value";

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "LTAIhostile".into(),
            access_key_secret: SecretString::new(SECRET),
            security_token: Some(SecretString::new(TOKEN)),
        }
    }

    /// Longest `Display` of any error: every text in it is cut to `MAX_TEXT_CHARS` characters
    /// (at most 4 bytes each), and there are at most three of them plus fixed words.
    const MAX_ERROR_TEXT_BYTES: usize = 4 * (3 * MAX_TEXT_CHARS + 512);

    /// What every answer must satisfy, whatever it was made of.
    fn check_common(
        status: u16,
        action: &str,
        err: Option<&CamsError>,
    ) -> Result<(), TestCaseError> {
        let Some(err) = err else {
            prop_assert!((200..300).contains(&status), "success with HTTP {status}");
            return Ok(());
        };
        prop_assert!(ERROR_CATEGORIES.contains(&err.category()), "{err:?}");
        prop_assert_eq!(err.action(), action);
        prop_assert_eq!(err.http_status(), Some(status));
        prop_assert_eq!(err.is_retryable(), err.class() == ErrorClass::Recoverable);
        if status >= 500 {
            prop_assert_eq!(err.class(), ErrorClass::Recoverable, "{:?}", err);
        }
        let text = err.to_string();
        let debug = format!("{err:?}");
        prop_assert!(!text.is_empty());
        prop_assert!(text.len() <= MAX_ERROR_TEXT_BYTES, "{} bytes", text.len());
        for secret in [SECRET, TOKEN] {
            prop_assert!(!text.contains(secret), "{text}");
            prop_assert!(!debug.contains(secret), "{debug}");
        }
        if let Some(delay) = err.retry_after() {
            prop_assert!(delay <= MAX_THROTTLE_DELAY);
            prop_assert_eq!(err.reason(), Reason::Throttled);
        }
        for field in [
            err.code(),
            err.message(),
            err.request_id(),
            err.access_denied_detail(),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert!(field.chars().count() <= MAX_TEXT_CHARS);
        }
        Ok(())
    }

    fn check_update(
        status: u16,
        result: &Result<UpdateChatGroupResponse, CamsError>,
    ) -> Result<(), TestCaseError> {
        check_common(status, "UpdateChatGroup", result.as_ref().err())?;
        if let Ok(ok) = result {
            prop_assert_eq!(&ok.meta.code, "OK");
            prop_assert_eq!(ok.meta.http_status, status);
            check_meta_texts(&ok.meta)?;
        }
        Ok(())
    }

    fn check_list(
        status: u16,
        result: &Result<ListChatGroupResponse, CamsError>,
    ) -> Result<(), TestCaseError> {
        check_common(status, "ListChatGroup", result.as_ref().err())?;
        if let Ok(ok) = result {
            prop_assert_eq!(&ok.meta.code, "OK");
            check_meta_texts(&ok.meta)?;
            prop_assert!(ok.groups.len() <= MAX_LIST_ITEMS);
            for item in &ok.groups {
                for text in [
                    &item.group_id,
                    &item.business_number,
                    &item.subject,
                    &item.description,
                    &item.profile_picture_file,
                    &item.group_status,
                    &item.invite_link,
                ]
                .into_iter()
                .flatten()
                {
                    prop_assert!(text.chars().count() <= MAX_TEXT_CHARS);
                    prop_assert!(!text.contains(SECRET) && !text.contains(TOKEN));
                }
            }
        }
        Ok(())
    }

    fn check_meta_texts(meta: &cams_operator::cams::ResponseMeta) -> Result<(), TestCaseError> {
        for text in [&meta.request_id, &meta.message, &meta.access_denied_detail]
            .into_iter()
            .flatten()
        {
            prop_assert!(text.chars().count() <= MAX_TEXT_CHARS);
            prop_assert!(!text.contains(SECRET) && !text.contains(TOKEN));
        }
        Ok(())
    }

    /// A header value of a rate-limit header: well-formed, almost well-formed, or any bytes a
    /// header may carry (including bytes that are not UTF-8).
    fn header_value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(l, t, r)| {
                format!("Limit:{l},Remain:0,TimeLeft:{t},Reset:{r}").into_bytes()
            }),
            "(TimeLeft|timeleft|Limit| TimeLeft )?[:,]{0,2}[-+0-9 ]{0,25}(,[A-Za-z]{0,6}:[0-9]{0,30}){0,3}"
                .prop_map(String::into_bytes),
            "(Mon, 01 Jan 2024 00:00:00 GMT|[0-9]{1,25}|-1|soon)".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| bytes
                .into_iter()
                .filter(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f))
                .collect()),
        ]
    }

    fn headers() -> impl Strategy<Value = HeaderMap> {
        let name = prop_oneof![
            Just("x-ratelimit-user-api".to_owned()),
            Just("x-ratelimit-user".to_owned()),
            Just("retry-after".to_owned()),
            Just("content-type".to_owned()),
            Just("x-acs-request-id".to_owned()),
            "[a-z][a-z0-9-]{0,20}",
        ];
        prop::collection::vec((name, header_value()), 0..6).prop_map(|pairs| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(&value),
                ) {
                    map.append(name, value);
                }
            }
            map
        })
    }

    fn status() -> impl Strategy<Value = u16> {
        prop_oneof![
            3 => prop::sample::select(vec![200u16, 201, 204, 299, 400, 403, 404, 429, 500, 502, 503]),
            1 => any::<u16>(),
        ]
    }

    /// A JSON leaf of any type, with the awkward numbers.
    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            tricky_string(40).prop_map(Value::String),
            Just(json!(SECRET)),
            Just(json!(format!("echo {TOKEN} echo"))),
            Just(json!("OK")),
            Just(json!("Throttling.User")),
            Just(json!("InvalidParameter.GroupNotExist")),
        ]
    }

    fn any_json() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((field_name(), inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    fn field_name() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(vec![
                "Code", "Message", "RequestId", "HostId", "Recommend", "AccessDeniedDetail",
                "Success", "Result", "Data", "Total", "List", "GroupId", "BusinessNumber",
                "Subject", "Description", "ProfilePictureFile", "GroupStatus", "InviteLink",
            ])
            .prop_map(str::to_owned),
            1 => tricky_string(12),
        ]
    }

    /// An object shaped like a CAMS envelope, each field of any type.
    fn envelope() -> impl Strategy<Value = Value> {
        let item = prop::collection::vec((field_name(), any_json()), 0..8)
            .prop_map(|fields| Value::Object(fields.into_iter().collect()));
        let list = prop_oneof![
            prop::collection::vec(prop_oneof![4 => item, 1 => any_json()], 0..8)
                .prop_map(Value::Array),
            any_json(),
        ];
        let data = prop_oneof![
            (any_json(), list).prop_map(|(total, list)| json!({"Total": total, "List": list})),
            any_json(),
        ];
        (
            prop::collection::vec((field_name(), any_json()), 0..8),
            prop::option::of(data),
        )
            .prop_map(|(fields, data)| {
                let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
                if let Some(data) = data {
                    object.insert("Data".into(), data);
                }
                Value::Object(object)
            })
    }

    /// Body bytes: valid envelopes, broken ones, and things that are not JSON at all.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => envelope().prop_map(|v| v.to_string().into_bytes()),
            2 => (envelope(), any::<prop::sample::Index>()).prop_map(|(v, at)| {
                // Truncated JSON.
                let text = v.to_string().into_bytes();
                let cut = at.index(text.len() + 1);
                text[..cut].to_vec()
            }),
            2 => (envelope(), any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..6))
                .prop_map(|(v, at, garbage)| {
                    // Bytes (maybe not UTF-8) spliced in anywhere.
                    let mut text = v.to_string().into_bytes();
                    let at = at.index(text.len() + 1);
                    text.splice(at..at, garbage);
                    text
                }),
            1 => prop::collection::vec(any::<u8>(), 0..256),
            1 => (1usize..3000, prop::sample::select(vec!["[", "{\"a\":", "{\"Data\":", "{\"Code\":["]))
                .prop_map(|(depth, open)| {
                    // Deep nesting, closed or not.
                    let mut text = String::from("{\"Code\":\"OK\",\"Data\":");
                    text.push_str(&open.repeat(depth));
                    text.push('1');
                    text.into_bytes()
                }),
            1 => prop::sample::select(vec![
                "1e400", "-1e400", "123456789012345678901234567890123456789", "-0", "1E-400",
                "18446744073709551616", "-9223372036854775809", "0.0000000000000000000001",
                "9007199254740993", "1e15", "8999999999999999.0",
            ])
            .prop_flat_map(|number| {
                prop::sample::select(vec!["Result", "Total", "Code", "Message", "Success"])
                    .prop_map(move |field| {
                        format!(
                            "{{\"Code\":\"OK\",\"{field}\":{number},\"Data\":{{\"Total\":{number},\"List\":[{number}]}}}}"
                        )
                        .into_bytes()
                    })
            }),
            1 => (0usize..40_000, prop::sample::select(vec!["Message", "Code", "RequestId", "AccessDeniedDetail", "Subject"]), prop::sample::select(vec!["x", "é", "\\u0000", "\\\"", SECRET]))
                .prop_map(|(n, field, unit)| {
                    // A giant string, in the envelope and in an item.
                    let giant = unit.repeat(n);
                    format!(
                        "{{\"Code\":\"Big\",\"{field}\":\"{giant}\",\"Data\":{{\"List\":[{{\"{field}\":\"{giant}\"}}]}}}}"
                    )
                    .into_bytes()
                }),
        ]
    }

    proptest! {
        #![proptest_config(config(256))]

        /// Any status, any headers, any bytes: an answer or an error with a category, never a
        /// panic; texts bounded, secrets never echoed, delays capped.
        #[test]
        fn any_answer_is_read_without_panic(status in status(), headers in headers(), body in body()) {
            let update = decode_update_chat_group(status, &headers, &body, &creds());
            check_update(status, &update)?;
            let list = decode_list_chat_group(status, &headers, &body, &creds());
            check_list(status, &list)?;
            // Both actions read the envelope the same way.
            prop_assert_eq!(update.as_ref().err().map(CamsError::category), list.as_ref().err().map(CamsError::category));
        }

        /// A well-formed envelope of texts is read back exactly (cut to the text limit), and
        /// its status and code decide success, a business error or a gateway error.
        #[test]
        fn envelopes_round_trip(
            status in status(),
            code in prop_oneof![Just("OK".to_owned()), tricky_string(30)],
            message in prop::option::of(tricky_string(60)),
            request_id in prop::option::of(tricky_string(40)),
            subjects in prop::collection::vec(prop::option::of(tricky_string(200)), 0..5),
            long in 0usize..(MAX_TEXT_CHARS + 20),
        ) {
            let long_message = message.map(|m| format!("{m}{}", "z".repeat(long)));
            let list: Vec<Value> = subjects
                .iter()
                .enumerate()
                .map(|(i, s)| json!({"GroupId": format!("G{i}"), "Subject": s}))
                .collect();
            let body = json!({
                "Code": code,
                "Message": long_message,
                "RequestId": request_id,
                "Data": {"Total": subjects.len(), "List": list},
            })
            .to_string();
            let result = decode_list_chat_group(status, &HeaderMap::new(), body.as_bytes(), &creds());
            check_list(status, &result)?;
            let want_message = long_message.map(cut);
            match result {
                Ok(page) => {
                    prop_assert!((200..300).contains(&status) && code == "OK");
                    prop_assert_eq!(page.meta.message, want_message);
                    prop_assert_eq!(page.meta.request_id, request_id);
                    prop_assert_eq!(page.total, Some(subjects.len() as u64));
                    let got: Vec<Option<String>> = page.groups.into_iter().map(|g| g.subject).collect();
                    prop_assert_eq!(got, subjects);
                }
                Err(CamsError::Business { code: got, message, .. }) => {
                    prop_assert!((200..300).contains(&status) && code != "OK");
                    prop_assert_eq!(got, cut(code));
                    prop_assert_eq!(message, want_message);
                }
                Err(CamsError::Gateway { code: got, message, .. }) => {
                    prop_assert!(!(200..300).contains(&status));
                    prop_assert_eq!(got, Some(cut(code)));
                    prop_assert_eq!(message, want_message);
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn a_body_at_the_limit_is_read_and_one_byte_more_is_refused_naming_the_limit() {
        let mut body = br#"{"Code":"OK","RequestId":"R"}"#.to_vec();
        body.resize(MAX_BODY_BYTES, b' ');
        let ok = decode_update_chat_group(200, &HeaderMap::new(), &body, &creds());
        assert!(ok.is_ok(), "{ok:?}");
        body.push(b' ');
        for status in [200, 400, 503] {
            let err = decode_update_chat_group(status, &HeaderMap::new(), &body, &creds())
                .expect_err("over the limit");
            assert!(
                matches!(
                    err,
                    CamsError::BodyTooLarge {
                        limit: MAX_BODY_BYTES,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains("4194304-byte limit"), "{err}");
            assert!(ERROR_CATEGORIES.contains(&err.category()));
        }
    }

    #[test]
    fn a_runaway_time_left_is_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ratelimit-user-api",
            HeaderValue::from_static("Limit:1,Remain:0,TimeLeft:18446744073709551615"),
        );
        let err =
            decode_update_chat_group(400, &headers, br#"{"Code":"Throttling.User"}"#, &creds())
                .expect_err("throttled");
        assert_eq!(err.retry_after(), Some(MAX_THROTTLE_DELAY));
    }

    #[test]
    fn a_giant_message_is_cut_before_it_reaches_an_error() {
        let body = json!({"Code": "Nope", "Message": "m".repeat(MAX_BODY_BYTES / 2)}).to_string();
        let err = decode_update_chat_group(200, &HeaderMap::new(), body.as_bytes(), &creds())
            .expect_err("business");
        let message = err.message().expect("message");
        assert_eq!(message.chars().count(), MAX_TEXT_CHARS);
        assert!(message.ends_with(CUT_MARK));
        assert!(err.to_string().len() < 20_000);
    }

    #[test]
    fn a_page_of_a_million_empty_items_keeps_at_most_the_item_limit() {
        let mut body = String::from(r#"{"Code":"OK","Data":{"List":["#);
        body.push_str(&"{},".repeat(1_000_000));
        body.push_str("{}]}}");
        let page = decode_list_chat_group(200, &HeaderMap::new(), body.as_bytes(), &creds())
            .expect("a page");
        assert_eq!(page.groups.len(), MAX_LIST_ITEMS);
    }

    #[test]
    fn nesting_past_the_reader_depth_is_an_invalid_body_not_a_stack_overflow() {
        for open in ["[", "{\"a\":"] {
            let body = format!(
                r#"{{"Code":"OK","AccessDeniedDetail":{},"Data":{}}}"#,
                open.repeat(100_000),
                open.repeat(100_000)
            );
            let err = decode_update_chat_group(200, &HeaderMap::new(), body.as_bytes(), &creds())
                .expect_err("too deep");
            assert!(matches!(err, CamsError::InvalidBody { .. }), "{err:?}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Over a socket: the body limit holds while reading.

    /// A server that answers every connection with `reply` (raw bytes, after the request head)
    /// and then, when `hold` is set, keeps the connection open without sending more.
    async fn raw_server(reply: Vec<u8>, endless: bool, hold: bool) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                    if endless {
                        let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                        while stream.write_all(chunk.as_bytes()).await.is_ok() {}
                        return;
                    }
                    if hold {
                        tokio::time::sleep(Duration::from_secs(120)).await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        Endpoint::from_url(&format!("http://{addr}/"))
    }

    fn client(timeout: Duration) -> HttpCams {
        HttpCams::new(HttpCamsConfig {
            request_timeout: timeout,
            ..HttpCamsConfig::default()
        })
        .expect("client")
    }

    fn update_request() -> UpdateChatGroupRequest {
        UpdateChatGroupRequest {
            key: cams_operator::cams::GroupKey {
                cust_space_id: "cams-test".into(),
                business_number: "8613800001234".into(),
                group_id: "EA303TEST".into(),
            },
            channel_type: None,
            subject: Some("s".into()),
            description: None,
            profile_picture_file: None,
        }
    }

    fn list_request() -> ListChatGroupRequest {
        ListChatGroupRequest {
            cust_space_id: "cams-test".into(),
            business_number: "8613800001234".into(),
            channel_type: None,
            group_status: None,
            subject: None,
            page_index: 1,
            page_size: 20,
        }
    }

    #[tokio::test]
    async fn an_endless_body_is_refused_once_the_limit_is_read() {
        let endpoint = raw_server(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                .to_vec(),
            true,
            false,
        )
        .await;
        let started = Instant::now();
        let err = client(Duration::from_secs(60))
            .update_chat_group(&endpoint, &creds(), &update_request())
            .await
            .expect_err("too large");
        assert!(
            matches!(
                err,
                CamsError::BodyTooLarge {
                    http_status: 200,
                    limit: MAX_BODY_BYTES,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_without_reading() {
        // The server announces 10 GiB and then sends nothing: reading would wait for the
        // request timeout; the refusal must come at once.
        let endpoint = raw_server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 10737418240\r\n\r\n{".to_vec(),
            false,
            true,
        )
        .await;
        let started = Instant::now();
        let err = client(Duration::from_secs(60))
            .list_chat_group(&endpoint, &creds(), &list_request())
            .await
            .expect_err("too large");
        assert!(matches!(err, CamsError::BodyTooLarge { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("{MAX_BODY_BYTES}-byte limit")),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    /// A raw HTTP/1.1 answer: any status, header lines of any bytes a header may hold, a body.
    fn raw_answer() -> impl Strategy<Value = Vec<u8>> {
        let line = (
            "[a-zA-Z][a-zA-Z0-9-]{0,15}",
            prop_oneof![
                Just("x-ratelimit-user-api".to_owned()),
                Just("Retry-After".to_owned()),
            ],
            header_value(),
            any::<bool>(),
        )
            .prop_map(|(random, known, value, pick_known)| {
                let mut line = if pick_known { known } else { random }.into_bytes();
                line.extend_from_slice(b": ");
                line.extend(value);
                line.extend_from_slice(b"\r\n");
                line
            });
        (200u16..=999, prop::collection::vec(line, 0..5), body()).prop_map(
            |(status, lines, body)| {
                let mut out = Vec::new();
                let _ = write!(out, "HTTP/1.1 {status} Whatever\r\n");
                for line in lines {
                    out.extend(line);
                }
                let _ = write!(
                    out,
                    "content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                out.extend(body);
                out
            },
        )
    }

    proptest! {
        #![proptest_config(config(24))]

        /// The same, through `HttpCams` over a real socket: whatever the server sends, the call
        /// ends with an answer or an error with a category, never a panic.
        #[test]
        fn any_raw_answer_over_a_socket(answer in raw_answer()) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let result = runtime.block_on(async {
                let endpoint = raw_server(answer, false, false).await;
                client(Duration::from_secs(5))
                    .update_chat_group(&endpoint, &creds(), &update_request())
                    .await
            });
            if let Err(err) = &result {
                prop_assert!(ERROR_CATEGORIES.contains(&err.category()), "{err:?}");
                let text = format!("{err} {err:?}");
                prop_assert!(!text.contains(SECRET) && !text.contains(TOKEN));
            }
        }
    }
}
