//! Hostile input cannot crash or exhaust the operator: property tests (proptest) for every
//! place where bytes from outside become values.
//!
//! - `cams_answers`: what turns a CAMS answer (any status, any headers, any bytes) into a
//!   response or a `CamsError`, both as a pure function and through `HttpCams` over a socket.
//! - `sim_requests`: the simulator's request reading (methods, query strings, form bodies,
//!   signature parameters, headers) over a socket.
//! - `secret_values`: Secret values given to credential resolution.
//! - `chatgroup_limits`: ChatGroup objects at the edges of what the CRD schema admits, through
//!   the watch cache's parsing (`CachedChatGroup`) and validation.
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

mod support;

mod cams_answers {
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    use http::{HeaderMap, HeaderName, HeaderValue};
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use crate::support::fixtures::{list_request, update_request};
    use cams_operator::cams::answer::MAX_LIST_ITEMS;
    use cams_operator::cams::client::{
        CUT_MARK, HttpCams, HttpCamsConfig, MAX_BODY_BYTES, MAX_TEXT_CHARS, MAX_THROTTLE_DELAY,
        cut, decode_list_chat_group, decode_update_chat_group,
    };
    use cams_operator::cams::{AddChatGroupRequest, GroupKey, GroupRequest};
    use cams_operator::cams::{
        CamsApi, CamsError, Credentials, ERROR_CATEGORIES, Endpoint, ErrorClass,
        ListChatGroupResponse, SecretString, UpdateChatGroupResponse,
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
            .list_chat_group(&endpoint, &creds(), &list_request(1, 20))
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

    // -----------------------------------------------------------------------------------------
    // `UniqueCode` (AddChatGroup) and `InviteLink` (AddChatGroupInviteLink): top-level texts of
    // the answer, read through `HttpCams` over a socket like the others.

    /// What a text field of any JSON type becomes: a string as it is (scrubbed of the
    /// credentials, cut to the text limit), a number or a boolean as its JSON text, anything
    /// else absent.
    fn expected_text(value: &Value) -> Option<String> {
        match value {
            Value::String(text) => Some(cut(text
                .replace(SECRET, "<redacted>")
                .replace(TOKEN, "<redacted>"))),
            Value::Bool(flag) => Some(flag.to_string()),
            Value::Number(number) => Some(number.to_string()),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }

    /// A value for a text field: any JSON, or a string around the text limit.
    fn text_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => any_json(),
            1 => (0usize..(2 * MAX_TEXT_CHARS), prop::sample::select(vec!["x", "é", "😀"]))
                .prop_map(|(n, unit)| Value::String(unit.repeat(n))),
        ]
    }

    /// A raw `200 OK` answer with `body`.
    fn ok_answer(body: &Value) -> Vec<u8> {
        let body = body.to_string();
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn add_request() -> AddChatGroupRequest {
        AddChatGroupRequest {
            cust_space_id: "cams-test".into(),
            business_number: "8613800001234".into(),
            channel_type: None,
            subject: Some("Hostile".into()),
            description: None,
        }
    }

    fn group_request() -> GroupRequest {
        GroupRequest {
            key: GroupKey {
                cust_space_id: "cams-test".into(),
                business_number: "8613800001234".into(),
                group_id: "EA303TEST".into(),
            },
            channel_type: None,
        }
    }

    proptest! {
        #![proptest_config(config(48))]

        /// `UniqueCode` and `InviteLink` of any JSON type never fail a successful answer: a
        /// string is kept (scrubbed and cut), a number or a boolean becomes its text, null, an
        /// array or an object counts as absent.
        #[test]
        fn unique_code_and_invite_link_of_any_type(unique_code in text_value(), invite_link in text_value()) {
            let body = json!({"Code": "OK", "RequestId": "R-h", "UniqueCode": unique_code, "InviteLink": invite_link});
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let (added, linked) = runtime.block_on(async {
                let endpoint = raw_server(ok_answer(&body), false, false).await;
                let api = client(Duration::from_secs(5));
                let added = api.add_chat_group(&endpoint, &creds(), &add_request()).await;
                let linked = api
                    .add_chat_group_invite_link(&endpoint, &creds(), &group_request())
                    .await;
                (added, linked)
            });
            let added = added.map_err(|err| TestCaseError::fail(format!("{err:?}")))?;
            let linked = linked.map_err(|err| TestCaseError::fail(format!("{err:?}")))?;
            prop_assert_eq!(added.meta.request_id.as_deref(), Some("R-h"));
            prop_assert_eq!(&added.unique_code, &expected_text(&unique_code));
            prop_assert_eq!(&linked.invite_link, &expected_text(&invite_link));
            for text in [&added.unique_code, &linked.invite_link].into_iter().flatten() {
                prop_assert!(text.chars().count() <= MAX_TEXT_CHARS);
                prop_assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{}", text);
            }
        }
    }

    /// A float `UniqueCode` reads back as the number sent, to the last digit: the JSON
    /// parser rounds it correctly (`float_roundtrip`), not to a neighbouring float.
    #[test]
    fn a_float_unique_code_keeps_its_digits() {
        let unique_code = json!(3.649082943665822e100);
        let body = json!({"Code": "OK", "RequestId": "R-h", "UniqueCode": unique_code});
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let added = runtime
            .block_on(async {
                let endpoint = raw_server(ok_answer(&body), false, false).await;
                client(Duration::from_secs(5))
                    .add_chat_group(&endpoint, &creds(), &add_request())
                    .await
            })
            .expect("a successful answer");
        assert_eq!(added.unique_code, expected_text(&unique_code));
    }
}

mod sim_requests {
    use std::io::Write as _;
    use std::net::SocketAddr;
    use std::sync::OnceLock;
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::runtime::Runtime;

    use cams_operator::cams::client::{HttpCams, HttpCamsConfig};
    use cams_operator::cams::sign::{build_signed_query, encode_query};
    use cams_operator::cams::{
        CODE_GROUP_NOT_FOUND, CamsApi, Credentials, Endpoint, ListChatGroupRequest, SecretString,
    };
    use cams_sim::{Group, RunningSim, Simulator, codes};

    use super::config;

    const KEY_ID: &str = "testid";
    const SECRET: &str = "testsecret";
    const SPACE: &str = "cams-test";
    const NUMBER: &str = "8613800001234";
    const GROUP: &str = "EA303TEST";

    /// One simulator for every case, on a runtime of its own (each case sends from the
    /// proptest thread with `block_on`).
    fn sim() -> &'static (Runtime, RunningSim) {
        static SIM: OnceLock<(Runtime, RunningSim)> = OnceLock::new();
        SIM.get_or_init(start_sim)
    }

    /// Another simulator for the admin endpoints, whose requests change the clock and the
    /// faults.
    fn admin_sim() -> &'static (Runtime, RunningSim) {
        static SIM: OnceLock<(Runtime, RunningSim)> = OnceLock::new();
        SIM.get_or_init(start_sim)
    }

    fn start_sim() -> (Runtime, RunningSim) {
        {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let sim = runtime.block_on(async {
                Simulator::builder()
                    .access_key(KEY_ID, SECRET)
                    .group(Group::new(SPACE, NUMBER, GROUP).subject("Team"))
                    .log_capacity(64)
                    .start()
                    .await
                    .expect("simulator")
            });
            (runtime, sim)
        }
    }

    /// Every `(status, Code)` the simulator documents for the RPC endpoint (`None`: an STS
    /// success, which has no `Code`).
    fn documented(status: u16, code: Option<&str>) -> bool {
        let gateway_400 = [
            codes::MISSING_PARAMETER,
            codes::INVALID_PARAMETER,
            codes::INCOMPLETE_SIGNATURE,
            codes::SIGNATURE_DOES_NOT_MATCH,
            codes::INVALID_TIMESTAMP_EXPIRED,
            codes::INVALID_TIMESTAMP_FORMAT,
            codes::SIGNATURE_NONCE_USED,
            codes::INVALID_SECURITY_TOKEN_MISMATCH,
            codes::INVALID_SECURITY_TOKEN_EXPIRED,
            codes::UNSUPPORTED_HTTP_METHOD,
            codes::INVALID_DURATION_SECONDS,
            codes::INVALID_ROLE_SESSION_NAME,
        ];
        let business_200 = [
            codes::OK,
            codes::INVALID_PARAMETER,
            codes::CHANNEL_TYPE_NOT_SUPPORT,
            codes::PAGE_INVALID,
            CODE_GROUP_NOT_FOUND,
        ];
        match (status, code) {
            (200, None) => true,
            (200, Some(code)) => business_200.contains(&code),
            (400, Some(code)) => gateway_400.contains(&code),
            (401, Some(code)) => [
                codes::OIDC_TOKEN_EXPIRED,
                codes::OIDC_TOKEN_INVALID,
                codes::AUTHENTICATION_FAIL_NO_PERMISSION,
            ]
            .contains(&code),
            (404, Some(code)) => [
                codes::INVALID_API_NOT_FOUND,
                codes::INVALID_ACCESS_KEY_ID_NOT_FOUND,
                codes::ENTITY_NOT_EXIST_ROLE,
            ]
            .contains(&code),
            _ => false,
        }
    }

    /// A raw request: method, target, headers, body.
    #[derive(Clone)]
    struct Raw {
        method: String,
        target: String,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    }

    /// Shows at most the start of a long target or body, so a failure stays readable.
    impl std::fmt::Debug for Raw {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let start = |bytes: &[u8]| {
                let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
                format!("{shown:?} ({} bytes)", bytes.len())
            };
            f.debug_struct("Raw")
                .field("method", &self.method)
                .field("target", &start(self.target.as_bytes()))
                .field(
                    "headers",
                    &self
                        .headers
                        .iter()
                        .map(|(n, v)| (n, String::from_utf8_lossy(v)))
                        .collect::<Vec<_>>(),
                )
                .field("body", &start(&self.body))
                .finish()
        }
    }

    impl Raw {
        fn bytes(&self, addr: SocketAddr) -> Vec<u8> {
            let mut out = Vec::new();
            let _ = write!(
                out,
                "{} {} HTTP/1.1\r\nhost: {addr}\r\n",
                self.method, self.target
            );
            for (name, value) in &self.headers {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
            let _ = write!(
                out,
                "connection: close\r\ncontent-length: {}\r\n\r\n",
                self.body.len()
            );
            out.extend_from_slice(&self.body);
            out
        }
    }

    /// Sends `raw` and returns the status and the body; `Err` when no answer came.
    async fn send(addr: SocketAddr, raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.write_all(raw).await.map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
            .await
            .map_err(|_| "no answer within 20 s".to_owned())?
            .map_err(|e| e.to_string())?;
        let end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("no header end in {:?}", String::from_utf8_lossy(&answer)))?;
        let head = String::from_utf8_lossy(&answer[..end]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line in {head:?}"))?;
        Ok((status, answer[end + 4..].to_vec()))
    }

    fn param_name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec![
                "Action", "Version", "AccessKeyId", "Signature", "SignatureMethod",
                "SignatureVersion", "SignatureNonce", "Timestamp", "TimeStamp", "SecurityToken",
                "GroupId", "CustSpaceId", "BusinessNumber", "Page", "Subject", "Description",
                "ChannelType", "ProfilePictureFile", "GroupStatus", "Format", "DurationSeconds",
                "RoleArn", "OIDCProviderArn", "OIDCToken", "RoleSessionName",
            ])
            .prop_map(str::to_owned),
            1 => "[A-Za-z%+.~_-]{0,12}",
        ]
    }

    /// A parameter value already in its encoded form: plausible values, percent-encoding
    /// garbage, encoded UTF-8 and bytes that are not UTF-8, huge values.
    fn encoded_value() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(vec![
                "UpdateChatGroup", "ListChatGroup", "AddChatGroup", "DeleteChatGroup",
                "AssumeRoleWithOIDC", "2020-06-06", "2015-04-01", "testid", "HMAC-SHA1", "1.0",
                "2016-02-23T12%3A46%3A24Z", "9999-12-31T23%3A59%3A59Z", "WHATSAPP", "JSON",
                "cams-test", "8613800001234", "EA303TEST", "%7B%22Index%22%3A1%2C%22Size%22%3A20%7D",
                "%7B%22Index%22%3A18446744073709551615%2C%22Size%22%3A100%7D", "-1", "", "+",
                "acs%3Aram%3A%3A1%3Arole%2Fx", "a.b@c-d_e",
            ])
            .prop_map(str::to_owned),
            2 => "(%[0-9a-fA-FzZ+-]{0,2}|[A-Za-z0-9._~!$'()*,;:@/?-]|\\+|%C3%A9|%FF|%E2%82){0,16}",
            1 => (prop::sample::select(vec!["a", "%41", "%FF", "%", "+", "%C3%A9"]), 1usize..600)
                .prop_map(|(unit, n)| unit.repeat(n)),
        ]
    }

    /// A query string or form body. The HTTP layer refuses request lines over 64 KiB (414,
    /// before the simulator sees them), so `huge` values only go into bodies.
    fn query(huge: bool) -> impl Strategy<Value = String> {
        let value = if huge {
            prop_oneof![
                4 => encoded_value(),
                1 => (prop::sample::select(vec!["a", "%41", "%FF", "%", "+", "%C3%A9"]), 1usize..200_000)
                    .prop_map(|(unit, n)| unit.repeat(n)),
            ]
            .boxed()
        } else {
            encoded_value().boxed()
        };
        prop::collection::vec((param_name(), value, any::<bool>()), 0..14).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(name, value, with_eq)| {
                    if with_eq || !value.is_empty() {
                        format!("{name}={value}")
                    } else {
                        name
                    }
                })
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
        let name = prop_oneof![
            3 => prop::sample::select(vec![
                "content-type", "authorization", "x-acs-action", "x-acs-version", "x-acs-date",
                "x-acs-signature-nonce", "x-acs-content-sha256", "x-acs-security-token",
                "user-agent",
            ])
            .prop_map(str::to_owned),
            1 => "x-[a-z]{1,10}",
        ];
        let value = prop_oneof![
            prop::sample::select(vec![
                "application/x-www-form-urlencoded",
                "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8",
                "application/json",
                "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-date,Signature=00",
                "ACS3-HMAC-SHA256",
                "ACS3-HMAC-SHA256 ,,,=,Credential=",
                "UpdateChatGroup",
                "2020-06-06",
                "2016-02-23T12:46:24Z",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ])
            .prop_map(|v| v.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..80).prop_map(|bytes| bytes
                .into_iter()
                .filter(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f))
                .collect::<Vec<u8>>()),
        ];
        (name, value)
    }

    fn raw_request() -> impl Strategy<Value = Raw> {
        let method = prop_oneof![
            4 => prop::sample::select(vec!["POST", "GET"]).prop_map(str::to_owned),
            1 => prop::sample::select(vec!["PUT", "DELETE", "PATCH", "OPTIONS", "FOO"])
                .prop_map(str::to_owned),
        ];
        let target = (
            prop_oneof![5 => Just("/"), 1 => Just("/x"), 1 => Just("//")],
            query(false),
        )
            .prop_map(|(path, query)| {
                if query.is_empty() {
                    path.to_owned()
                } else {
                    format!("{path}?{query}")
                }
            });
        let body = prop_oneof![
            2 => Just(Vec::new()),
            2 => query(true).prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 0..512),
        ];
        let headers =
            prop::collection::btree_map(header().prop_map(|(n, v)| (n, v)), Just(()), 0..5)
                .prop_map(|map| map.into_keys().collect::<Vec<_>>());
        (method, target, headers, body).prop_map(|(method, target, headers, body)| Raw {
            method,
            target,
            headers,
            body,
        })
    }

    /// A request signed with the simulator's key, so the checks past authentication (the
    /// actions' own parameters) are reached, with garbage in the parameters it carries.
    fn signed_request() -> impl Strategy<Value = Raw> {
        let action = prop::sample::select(vec![
            "UpdateChatGroup",
            "ListChatGroup",
            "AddChatGroup",
            "DeleteChatGroup",
        ]);
        let value = prop_oneof![
            3 => super::tricky_string(30),
            1 => prop::sample::select(vec![
                r#"{"Index":1,"Size":20}"#, r#"{"Index":0,"Size":20}"#, r#"{"Index":"2","Size":"100"}"#,
                r#"{"Index":18446744073709551615,"Size":100}"#, r#"{"Index":1e400,"Size":1}"#,
                r#"{"Index":-1,"Size":-1}"#, r#"[1,2]"#, r#"{"Index":1,"Size":20"#, "WHATSAPP", "SMS",
                "ACTIVE", "https://cdn.example.com/a.jpg",
            ])
            .prop_map(str::to_owned),
            1 => (prop::sample::select(vec!["x", "é", "😀", " "]), 100usize..5000)
                .prop_map(|(unit, n)| unit.repeat(n)),
        ];
        let params = prop::collection::vec((param_name(), value), 0..8);
        let defaults = prop::collection::vec(any::<bool>(), 4);
        (
            action,
            params,
            defaults,
            any::<u64>(),
            any::<bool>(),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(action, mut params, defaults, nonce, in_body, tamper)| {
                // The group's keys (and a page), unless left out or replaced by garbage.
                for ((name, value), keep) in [
                    ("CustSpaceId", SPACE),
                    ("BusinessNumber", NUMBER),
                    ("GroupId", GROUP),
                    ("Page", r#"{"Index":1,"Size":20}"#),
                ]
                .into_iter()
                .zip(defaults)
                {
                    if keep {
                        params.push((name.to_owned(), value.to_owned()));
                    }
                }
                let credentials = Credentials {
                    access_key_id: KEY_ID.into(),
                    access_key_secret: SecretString::new(SECRET),
                    security_token: None,
                };
                let mut seen = std::collections::BTreeSet::new();
                let own: Vec<(&str, &str)> = params
                    .iter()
                    .filter(|(name, _)| {
                        !matches!(
                            name.as_str(),
                            "Action"
                                | "Version"
                                | "Format"
                                | "AccessKeyId"
                                | "SignatureMethod"
                                | "SignatureVersion"
                                | "SignatureNonce"
                                | "Timestamp"
                                | "SecurityToken"
                                | "Signature"
                        ) && seen.insert(name.clone())
                    })
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let mut signed = build_signed_query(
                    action,
                    &own,
                    &credentials,
                    jiff::Timestamp::now(),
                    &format!("{nonce:016x}"),
                );
                if tamper && let Some((_, signature)) = signed.last_mut() {
                    signature.insert(0, 'A');
                }
                let encoded = encode_query(&signed);
                // The HTTP layer refuses request lines over 64 KiB (414) before the simulator
                // sees them: long requests go as form bodies.
                if in_body || encoded.len() > 60_000 {
                    Raw {
                        method: "POST".into(),
                        target: "/".into(),
                        headers: vec![(
                            "content-type".into(),
                            b"application/x-www-form-urlencoded".to_vec(),
                        )],
                        body: encoded.into_bytes(),
                    }
                } else {
                    Raw {
                        method: "POST".into(),
                        target: format!("/?{encoded}"),
                        headers: Vec::new(),
                        body: Vec::new(),
                    }
                }
            })
    }

    /// The answer is a documented one, in the JSON envelope, and not out of proportion to the
    /// request.
    fn check_answer(raw: &Raw) -> Result<(), TestCaseError> {
        let (runtime, sim) = sim();
        let bytes = raw.bytes(sim.addr());
        let (status, body) = runtime
            .block_on(send(sim.addr(), &bytes))
            .map_err(|e| TestCaseError::fail(format!("no answer to {raw:?}: {e}")))?;
        let json: Value = serde_json::from_slice(&body).map_err(|e| {
            TestCaseError::fail(format!(
                "HTTP {status} body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&body)
            ))
        })?;
        let code = json.get("Code").and_then(Value::as_str);
        prop_assert!(
            documented(status, code),
            "HTTP {} {:?}: {}",
            status,
            code,
            json
        );
        prop_assert!(
            json.get("RequestId").is_some_and(Value::is_string),
            "{}",
            json
        );
        if status != 200 || code.is_some_and(|c| c != codes::OK) {
            prop_assert!(
                json.get("Message").is_some_and(Value::is_string),
                "{}",
                json
            );
        }
        prop_assert!(
            body.len() <= 8 * bytes.len() + 8 * 1024,
            "{} bytes answered to {} bytes",
            body.len(),
            bytes.len()
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(config(192))]

        /// Any method, query, headers and body: a documented code in the JSON envelope.
        #[test]
        fn any_request_gets_a_documented_answer(raw in raw_request()) {
            check_answer(&raw)?;
        }

        /// Signed requests with garbage in their own parameters reach the actions and still
        /// get documented answers.
        #[test]
        fn signed_requests_with_garbage_parameters(raw in signed_request()) {
            check_answer(&raw)?;
        }
    }

    /// An admin request: a known endpoint or not, any method, a JSON-ish or garbage body.
    fn admin_request() -> impl Strategy<Value = Raw> {
        let path = prop_oneof![
            4 => prop::sample::select(vec![
                "stats", "reset", "groups", "groups/delete", "faults", "forced-codes", "clock",
            ])
            .prop_map(str::to_owned),
            1 => "[a-z/%.-]{0,20}",
        ];
        let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]);
        let body = prop_oneof![
            prop::sample::select(vec![
                r#"{"fixed":"2016-02-23T12:46:24Z"}"#,
                r#"{"fixed":"-009999-01-01T00:00:00Z"}"#,
                r#"{"offsetSeconds":9223372036854775807}"#,
                r#"{"offsetSeconds":-9223372036854775808}"#,
                r#"{"fixed":"2016-02-23T12:46:24Z","offsetSeconds":1}"#,
                r#"{"UpdateChatGroup":{"throttleRate":2.5}}"#,
                r#"{"UpdateChatGroup":{"latencyMs":18446744073709551615}}"#,
                r#"{"UpdateChatGroup":null}"#,
                r#"{"G":{"code":""}}"#,
                r#"{"custSpaceId":"s","businessNumber":"1","groupId":"g","subject":"x"}"#,
                r#"{"custSpaceId":"","businessNumber":"","groupId":""}"#,
                "[]",
                "null",
            ])
            .prop_map(|b| b.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..200),
        ];
        (path, method, body).prop_map(|(path, method, body)| Raw {
            method: method.to_owned(),
            target: format!("/_sim/{path}"),
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body,
        })
    }

    proptest! {
        #![proptest_config(config(64))]

        /// The admin endpoints answer any request with JSON and a client-error or success
        /// status, never a server error.
        #[test]
        fn any_admin_request_gets_a_json_answer(raw in admin_request()) {
            let (runtime, sim) = admin_sim();
            let (status, body) = runtime
                .block_on(send(sim.addr(), &raw.bytes(sim.addr())))
                .map_err(|e| TestCaseError::fail(format!("no answer to {raw:?}: {e}")))?;
            prop_assert!(matches!(status, 200 | 400 | 404 | 405), "HTTP {status} to {raw:?}");
            prop_assert!(serde_json::from_slice::<Value>(&body).is_ok(), "{raw:?}");
        }
    }

    /// After all that, the simulator still serves a well-formed call.
    #[test]
    fn the_simulator_still_serves_after_garbage() {
        let (runtime, sim) = sim();
        for raw in [
            Raw {
                method: "POST".into(),
                target: "/?Action=%+A&Version=%".into(),
                headers: Vec::new(),
                body: vec![0xff; 64],
            },
            Raw {
                method: "POST".into(),
                target: "/".into(),
                headers: vec![(
                    "content-type".into(),
                    b"application/x-www-form-urlencoded".to_vec(),
                )],
                body: [b"Action=".as_slice(), &[0xc3, 0x28]].concat(),
            },
        ] {
            check_answer(&raw).expect("documented answer");
        }
        let client = HttpCams::new(HttpCamsConfig::default()).expect("client");
        let credentials = Credentials {
            access_key_id: KEY_ID.into(),
            access_key_secret: SecretString::new(SECRET),
            security_token: None,
        };
        let page = runtime
            .block_on(client.list_chat_group(
                &Endpoint::from_url(&sim.url()),
                &credentials,
                &ListChatGroupRequest {
                    cust_space_id: SPACE.into(),
                    business_number: NUMBER.into(),
                    channel_type: None,
                    group_status: None,
                    subject: None,
                    page_index: 1,
                    page_size: 20,
                },
            ))
            .expect("a page");
        // The signed requests may have added and deleted groups (the properties share this
        // simulator when the tests run as threads of one process): the page is what counts.
        assert_eq!(page.meta.code, "OK");
    }

    /// A sign after `%` is not a hex digit: `%+A` once decoded to a line feed, and the
    /// simulator accepted a request real gateways refuse.
    #[test]
    fn a_signed_percent_escape_is_refused_as_invalid_parameter() {
        let (runtime, sim) = sim();
        let raw = Raw {
            method: "POST".into(),
            target: "/?Action=ListChatGroup&Subject=%+A".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        let (status, body) = runtime
            .block_on(send(sim.addr(), &raw.bytes(sim.addr())))
            .expect("answer");
        let json: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            (status, json["Code"].as_str()),
            (400, Some(codes::INVALID_PARAMETER))
        );
        assert!(
            json["Message"]
                .as_str()
                .is_some_and(|m| m.contains("bad percent-escape \"%+A\"")),
            "{json}"
        );
    }
}

mod secret_values {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use cams_operator::cams::{Credentials, SecretString};
    use cams_operator::crd::{ChatGroup, ChatGroupSpec, CredentialsSpec, Reason, SecretRef};
    use cams_operator::reconcile::credentials::{
        CredentialsError, IdentityNamespaces, MAX_VALUE_BYTES, ValueProblem, resolve,
        resolve_with_source,
    };

    use super::config;

    const SECRET_NAME: &str = "team-a";
    const ID_KEY: &str = "accessKeyId";
    const SECRET_KEY: &str = "accessKeySecret";
    const TOKEN_KEY: &str = "securityToken";

    /// A Secret value: usable ones, and every kind of unusable one.
    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => "[A-Za-z0-9+/=._-]{1,40}".prop_map(String::into_bytes),
            1 => Just(Vec::new()),
            1 => "[ \t\r\n\u{a0}\u{2003}\u{feff}]{1,12}".prop_map(String::into_bytes),
            2 => ("[ \t\r\n]{0,3}", "[A-Za-z0-9]{1,30}", "[ \t\r\n]{0,3}")
                .prop_map(|(a, b, c)| format!("{a}{b}{c}").into_bytes()),
            1 => ("[A-Za-z0-9]{1,20}", prop::sample::select(vec!["\0", " ", "\t", "\n", "\u{7f}", "\u{85}", "\u{2028}", "\u{1b}[31m"]), "[A-Za-z0-9]{1,20}")
                .prop_map(|(a, b, c)| format!("{a}{b}{c}").into_bytes()),
            2 => prop::collection::vec(any::<u8>(), 0..64),
            1 => ("[A-Za-z0-9]{1,8}", prop::collection::vec(0x80u8..=0xff, 1..4))
                .prop_map(|(a, tail)| [a.into_bytes(), tail].concat()),
            1 => (prop::sample::select(vec!['x', 'é', '\0']), (MAX_VALUE_BYTES - 4)..(MAX_VALUE_BYTES + 4))
                .prop_map(|(c, n)| c.to_string().repeat(n / c.len_utf8()).into_bytes()),
            1 => Just(vec![b'k'; 1024 * 1024]),
        ]
    }

    /// A key name: the usual ones, odd ones and very long ones.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[A-Za-z0-9._-]{1,20}",
            1 => (1usize..20_000).prop_map(|n| "k".repeat(n)),
            1 => super::tricky_string(20),
        ]
    }

    /// What the resolution should say about one value, written independently of it.
    fn usable(bytes: &[u8]) -> Option<&str> {
        let text = std::str::from_utf8(bytes).ok()?.trim();
        let ok = !text.is_empty()
            && text.len() <= MAX_VALUE_BYTES
            && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then_some(text)
    }

    /// Everything an error may say that is not a value: the Secret, the key names and the
    /// fixed words of every message. A value that happens to be made of these words cannot
    /// be told apart from them and is skipped by the no-leak check.
    fn vocabulary(keys: &[&str]) -> String {
        let mut text = String::from(SECRET_NAME);
        for key in keys {
            text.push(' ');
            text.push_str(key);
        }
        for err in [
            CredentialsError::SecretNotFound {
                name: SECRET_NAME.into(),
                access_key_id_key: keys[0].into(),
                access_key_secret_key: keys[1].into(),
            },
            CredentialsError::NoneFound {
                default_secret: "cams-credentials",
            },
        ] {
            text.push_str(&format!(" {err} {err:?}"));
        }
        for key in keys {
            for what in ["AccessKey ID", "AccessKey secret", "STS security token"] {
                for field in [
                    "spec.credentials.accessKeyIdKey",
                    "spec.credentials.accessKeySecretKey",
                    "spec.credentials.securityTokenKey",
                ] {
                    for err in [
                        CredentialsError::KeyMissing {
                            secret: SECRET_NAME.into(),
                            key: (*key).into(),
                            what,
                            field,
                        },
                        CredentialsError::EmptyValue {
                            secret: SECRET_NAME.into(),
                            key: (*key).into(),
                            what,
                        },
                        CredentialsError::NotUtf8 {
                            secret: SECRET_NAME.into(),
                            key: (*key).into(),
                            what,
                        },
                        CredentialsError::InvalidValue {
                            secret: SECRET_NAME.into(),
                            key: (*key).into(),
                            what,
                            problem: ValueProblem::InnerSpace,
                        },
                        CredentialsError::InvalidValue {
                            secret: SECRET_NAME.into(),
                            key: (*key).into(),
                            what,
                            problem: ValueProblem::TooLong,
                        },
                    ] {
                        text.push_str(&format!(" {err} {err:?}"));
                    }
                }
            }
        }
        text
    }

    fn spec(keys: [&str; 3], explicit_token: bool) -> ChatGroupSpec {
        ChatGroup::test("a")
            .with_credentials(CredentialsSpec {
                secret_ref: Some(SecretRef {
                    name: SECRET_NAME.into(),
                }),
                access_key_id_key: Some(keys[0].into()),
                access_key_secret_key: Some(keys[1].into()),
                security_token_key: explicit_token.then(|| keys[2].into()),
            })
            .spec
    }

    proptest! {
        #![proptest_config(config(256))]

        /// Whatever the Secret holds: usable values resolve (trimmed), anything else is an
        /// error naming the Secret and the key, never the value; no value shows in any error
        /// or in the `Debug` of what resolved, but the AccessKey ID, which is not secret.
        #[test]
        fn any_secret_value_resolves_or_names_the_key(
            id in prop::option::of(value()),
            secret in prop::option::of(value()),
            token in prop::option::of(value()),
            keys in prop_oneof![
                3 => Just([ID_KEY.to_owned(), SECRET_KEY.to_owned(), TOKEN_KEY.to_owned()]),
                1 => [key(), key(), key()],
            ],
            explicit_token in any::<bool>(),
        ) {
            prop_assume!(keys[0] != keys[1] && keys[0] != keys[2] && keys[1] != keys[2]);
            // Without an explicit token key, the token is read from the default key.
            prop_assume!(explicit_token || (keys[0] != TOKEN_KEY && keys[1] != TOKEN_KEY));
            let token_key = if explicit_token { keys[2].as_str() } else { TOKEN_KEY };
            let keys = [keys[0].as_str(), keys[1].as_str(), token_key];
            let mut data = BTreeMap::new();
            for (key, value) in keys.iter().zip([&id, &secret, &token]) {
                if let Some(value) = value {
                    data.insert((*key).to_owned(), value.clone());
                }
            }
            let spec = spec(keys, explicit_token);
            let result = resolve_with_source(
                &spec,
                "team",
                |name| (name == SECRET_NAME).then(|| data.clone()),
                &IdentityNamespaces::none(),
                None,
            );

            let want_id = id.as_deref().and_then(usable);
            let want_secret = secret.as_deref().and_then(usable);
            let token_ok = match token.as_deref() {
                None => !explicit_token,
                Some(bytes) => usable(bytes).is_some()
                    || (!explicit_token && std::str::from_utf8(bytes).is_ok_and(|t| t.trim().is_empty())),
            };
            let values: Vec<&[u8]> = [&id, &secret, &token].into_iter().flatten().map(Vec::as_slice).collect();
            match &result {
                Ok(resolved) => {
                    prop_assert!(want_id.is_some() && want_secret.is_some() && token_ok);
                    prop_assert_eq!(Some(resolved.credentials.access_key_id.as_str()), want_id);
                    prop_assert_eq!(Some(resolved.credentials.access_key_secret.expose()), want_secret);
                    // The AccessKey ID and the key names are shown, by design; nothing else.
                    let shown = format!("{resolved:?}");
                    let public = format!("{} {}", resolved.credentials.access_key_id, vocabulary(&keys));
                    for value in [&secret, &token].into_iter().flatten() {
                        if let Some(text) = usable(value).filter(|t| t.len() >= 8 && !public.contains(t)) {
                            prop_assert!(!shown.contains(text), "Debug shows a value");
                        }
                    }
                }
                Err(err) => {
                    prop_assert!(!(want_id.is_some() && want_secret.is_some() && token_ok), "{err}");
                    prop_assert!(matches!(err.reason(), Reason::CredentialsMissing | Reason::CredentialsInvalid));
                    prop_assert!(!err.is_retryable());
                    let text = err.to_string();
                    prop_assert!(text.contains(&format!("Secret `{SECRET_NAME}`")), "{text}");
                    prop_assert!(keys.iter().any(|k| text.contains(&format!("`{k}`"))), "{text}");
                    let shown = format!("{text} {err:?}");
                    let vocabulary = vocabulary(&keys);
                    for value in &values {
                        let Ok(value) = std::str::from_utf8(value) else { continue };
                        for form in [value, value.trim()] {
                            if form.chars().count() >= 8 && !vocabulary.contains(form) {
                                prop_assert!(!shown.contains(form), "the error shows a value");
                            }
                        }
                    }
                }
            }
        }
    }

    fn data(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect()
    }

    fn resolve_default(data: BTreeMap<String, Vec<u8>>) -> Result<Credentials, CredentialsError> {
        let spec = ChatGroup::test("a").spec;
        resolve(
            &spec,
            "team",
            move |name| (name == "cams-credentials").then(|| data.clone()),
            &IdentityNamespaces::none(),
            None,
        )
    }

    /// A NUL inside a value once resolved, and the AccessKey ID went out with it in every
    /// signed query and log line.
    #[test]
    fn a_nul_or_a_space_inside_a_value_is_refused_naming_the_key() {
        for bad in [
            &b"LTAI\0abc"[..],
            b"LTAI abc",
            b"LTAI\tabc",
            b"LTAI\x1b[2Jabc",
        ] {
            let err = resolve_default(data(&[(ID_KEY, bad), (SECRET_KEY, b"s3cr3t-value-ok")]))
                .expect_err("unusable ID");
            assert!(
                matches!(&err, CredentialsError::InvalidValue { key, .. } if key == ID_KEY),
                "{err:?}"
            );
            let text = err.to_string();
            assert!(
                text.contains("`cams-credentials`") && text.contains("`accessKeyId`"),
                "{text}"
            );
            assert!(!text.contains("LTAI"), "{text}");
            assert_eq!(err.reason(), Reason::CredentialsMissing);
        }
    }

    /// A 1 MiB value once resolved, and was signed into every request.
    #[test]
    fn a_one_mebibyte_value_is_refused_naming_the_limit() {
        let huge = vec![b'k'; 1024 * 1024];
        let err = resolve_default(data(&[(ID_KEY, b"LTAIok"), (SECRET_KEY, &huge)]))
            .expect_err("too long");
        assert!(
            matches!(&err, CredentialsError::InvalidValue { key, .. } if key == SECRET_KEY),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&MAX_VALUE_BYTES.to_string()),
            "{err}"
        );
        assert!(err.to_string().len() < 400, "{err}");
    }

    #[test]
    fn values_at_the_limit_and_with_surrounding_whitespace_resolve() {
        let at_limit = vec![b'k'; MAX_VALUE_BYTES];
        let padded = [b" \n".as_slice(), &at_limit, b"\r\n\t"].concat();
        let creds = resolve_default(data(&[(ID_KEY, b" LTAIok\n"), (SECRET_KEY, &padded)]))
            .expect("usable");
        assert_eq!(creds.access_key_id, "LTAIok");
        assert_eq!(creds.access_key_secret.expose().len(), MAX_VALUE_BYTES);
        let shown = format!("{creds:?}");
        assert!(!shown.contains("kkkkkkkk"), "{shown}");
        let _ = SecretString::new("unused");
    }
}

mod chatgroup_limits {
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use cams_operator::cams::Endpoint;
    use cams_operator::cams::client::check_endpoint;
    use cams_operator::controller::cached::CachedChatGroup;
    use cams_operator::crd::ChatGroup;
    use cams_operator::crd::{ChannelType, DriftPolicy, ManagementPolicy};
    use cams_operator::reconcile::validate::{parse_duration, validate};

    use super::config;

    /// Longest part of a problem text: a value over its limit by any amount is not quoted whole.
    const MAX_PROBLEM_CHARS: usize = 2 * 2048 + 400;
    const MAX_GO_NANOS: f64 = 9_223_372_036_854_775_807.0;

    /// Characters that count differently in bytes, UTF-16 units and scalar values, plus spaces.
    fn spec_char() -> impl Strategy<Value = char> {
        prop_oneof![
            6 => proptest::char::range('a', 'z'),
            1 => prop::sample::select(vec!['é', '\u{301}', '日', '😀', '\u{200d}', '\u{1f3fb}', 'ß']),
            1 => prop::sample::select(vec![' ', '\u{a0}', '\t', '\n', '\u{2003}', '\u{b}', '\0']),
        ]
    }

    /// A string of about `limit` scalar values: exactly at it, one under, one over, empty,
    /// anything up to it, or far over it (a short pattern repeated, which is cheap to make).
    fn text_around(limit: usize) -> impl Strategy<Value = String> {
        let length = prop_oneof![
            2 => Just(limit),
            1 => Just(limit - 1),
            2 => Just(limit + 1),
            1 => Just(0),
            2 => 1..=limit,
            1 => (limit + 2)..(limit * 40 + 100),
        ];
        (length, prop::collection::vec(spec_char(), 1..48))
            .prop_map(|(length, pattern)| pattern.into_iter().cycle().take(length).collect())
    }

    fn digits_around(limit: usize) -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop_oneof![Just(limit), Just(limit + 1), 1..=limit, Just(limit * 100)]
                .prop_flat_map(|n| proptest::string::string_regex(&format!("[0-9]{{{n}}}")).expect("regex")),
            1 => "[0-9+ a-]{0,10}",
        ]
    }

    fn region() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            1 => Just(None),
            4 => prop_oneof![Just(64usize), Just(65), 1..64usize, Just(5000)]
                .prop_flat_map(|n| proptest::string::string_regex(&format!("[a-z0-9-]{{{n}}}")).expect("regex"))
                .prop_map(Some),
            1 => "[A-Za-z0-9_. -]{0,20}".prop_map(Some),
        ]
    }

    /// Durations: the edges, the CRD pattern at random, and text that only looks like one.
    fn duration() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(vec![
                "1m", "59s", "60s", "59.999999999s", "60000ms", "60000000000ns", "1m0s",
                "0.0166666666666666666666h", "2562047h", "2562048h", "2562047h47m16.854775807s",
                "2562047h47m16.854775808s", "9999999999h", "9223372036854775807ns",
                "9223372036854775808ns", "340282366920938463463374607431768211.9us",
                "0000000000000000000000000000000000000000001h", "1.h", ".5h", "1", "h", "", "-1h",
                "1d", "1µs", "1us", "1h1h1h", "1e3s", " 1h", "1h ", "１h",
            ])
            .prop_map(str::to_owned),
            3 => prop::collection::vec(
                (
                    "[0-9]{1,45}",
                    prop::option::of("[0-9]{1,25}"),
                    prop::sample::select(vec!["ns", "us", "µs", "ms", "s", "m", "h"]),
                ),
                1..4,
            )
            .prop_map(|parts| {
                parts
                    .into_iter()
                    .map(|(int, frac, unit)| match frac {
                        Some(frac) => format!("{int}.{frac}{unit}"),
                        None => format!("{int}{unit}"),
                    })
                    .collect()
            }),
            // The largest whole number of a unit that still fits in 128 bits of nanoseconds,
            // with a fraction: where adding the fraction can overflow.
            1 => (
                prop::sample::select(vec![
                    ("us", 1_000u128),
                    ("ms", 1_000_000),
                    ("s", 1_000_000_000),
                    ("m", 60_000_000_000),
                    ("h", 3_600_000_000_000),
                ]),
                0u128..3,
                "[0-9]{1,20}",
            )
                .prop_map(|((unit, nanos), below, fraction)| {
                    format!("{}.{fraction}{unit}", u128::MAX / nanos - below)
                }),
            1 => super::tricky_string(12),
        ]
    }

    /// The value of a duration in the CRD pattern, as a float (close enough away from the
    /// edge); `None` when the text is not in the pattern.
    fn approximate_nanos(text: &str) -> Option<f64> {
        let mut total = 0.0;
        let mut rest = text;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let (int, after) = rest.split_at(digits);
            let (frac, after) = match after.strip_prefix('.') {
                Some(after) => {
                    let n = after.bytes().take_while(u8::is_ascii_digit).count();
                    if n == 0 {
                        return None;
                    }
                    after.split_at(n)
                }
                None => ("", after),
            };
            let (unit, after) = [
                ("ns", 1.0),
                ("us", 1e3),
                ("µs", 1e3),
                ("ms", 1e6),
                ("s", 1e9),
                ("m", 6e10),
                ("h", 3.6e12),
            ]
            .iter()
            .find_map(|(name, nanos)| after.strip_prefix(name).map(|a| (*nanos, a)))?;
            let number: f64 = format!("{int}.{}", if frac.is_empty() { "0" } else { frac })
                .parse()
                .ok()?;
            total += number * unit;
            rest = after;
        }
        Some(total)
    }

    proptest! {
        #![proptest_config(config(512))]

        /// Any text: a duration or an error, never a panic; within the CRD pattern, an error
        /// exactly when the total is over Go's limit (away from the edge, where a float cannot
        /// tell).
        #[test]
        fn durations_parse_without_panic_and_agree_with_go(text in duration()) {
            let parsed = parse_duration(&text);
            if let Some(nanos) = approximate_nanos(&text) {
                if nanos < MAX_GO_NANOS * 0.999_999 {
                    let got = parsed.map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                    let got_nanos = got.as_nanos() as f64;
                    prop_assert!((got_nanos - nanos).abs() <= nanos * 1e-9 + 10.0, "{} -> {:?}", text, got);
                } else if nanos > MAX_GO_NANOS * 1.000_001 {
                    prop_assert!(parsed.is_err(), "{} -> {:?}", text, parsed);
                }
            } else {
                prop_assert!(parsed.is_err(), "{} -> {:?}", text, parsed);
            }
            if let Err(problem) = parse_duration(&text) {
                prop_assert!(problem.chars().count() <= 400, "{}", problem);
            }
        }
    }

    /// A URL as odd as the CRD pattern `^https?://` and 2048 characters allow.
    fn odd_url() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(vec!["https://", "http://", "HTTPS://", "ftp://", ""]);
        let userinfo = prop::sample::select(vec!["", "", "", "user@", "user:pw@", ":@", "@"]);
        let host = prop_oneof![
            4 => prop::sample::select(vec![
                "cams.ap-southeast-1.aliyuncs.com", "127.0.0.1", "[::1]", "[::1", "localhost",
                "bücher.example", "xn--bcher-kva.example", "a..b", "-.example", "%41.example",
                "exa mple.com", "", "999.999.999.999", "0x7f.1", "[fe80::1%25eth0]", "a_b.example",
                "*.example", "ex\u{0}ample.com",
            ])
            .prop_map(str::to_owned),
            1 => "[a-z0-9.-]{1,30}",
        ];
        let port = prop::sample::select(vec![
            "", "", ":8787", ":0", ":65535", ":65536", ":99999", ":", ":x",
        ]);
        let path = prop::sample::select(vec![
            "/", "", "/x/y", "/%zz", "/a b", "/é", "//", "/\\", "/?", "/#", "?a=b", "#f",
            "/x?a=b#f",
        ]);
        let pad = prop_oneof![3 => Just(0usize), 1 => 1900usize..2100];
        (scheme, userinfo, host, port, path, pad).prop_map(
            |(scheme, userinfo, host, port, path, pad)| {
                let mut url = format!("{scheme}{userinfo}{host}{port}{path}");
                if pad > url.chars().count() {
                    if !url.ends_with('/') {
                        url.push('/');
                    }
                    while url.chars().count() < pad {
                        url.push('p');
                    }
                }
                url
            },
        )
    }

    fn base_spec() -> Map<String, Value> {
        json!({
            "custSpaceId": "cams-test",
            "businessNumber": "8613800001234",
            "groupId": "EA303TEST",
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn object(spec: Map<String, Value>) -> Value {
        json!({
            "apiVersion": "cams.chatapp.io/v1alpha1",
            "kind": "ChatGroup",
            "metadata": {"name": "edge", "namespace": "default", "generation": 3},
            "spec": spec,
        })
    }

    /// The object as the controller's watch cache reads it: caching never fails for an object
    /// with Kubernetes metadata; the spec parses, or the error names its field.
    fn parse_chatgroup(value: Value) -> Result<ChatGroup, String> {
        CachedChatGroup::from_value(value)
            .expect("every object with metadata is cached")
            .chatgroup()
    }

    fn problems_are_short(
        errors: &cams_operator::reconcile::validate::SpecErrors,
    ) -> Result<(), TestCaseError> {
        for error in &errors.errors {
            prop_assert!(
                error.field.starts_with("spec.") || error.field == "--endpoint",
                "{}",
                error.field
            );
            prop_assert!(
                error.problem.chars().count() <= MAX_PROBLEM_CHARS,
                "{}: {} characters",
                error.field,
                error.problem.chars().count()
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config(256))]

        /// An endpoint in the CRD's pattern passes validation exactly when the CAMS client
        /// would send to it; a refused one names `spec.endpoint`.
        #[test]
        fn endpoints_pass_validation_exactly_when_the_client_accepts_them(url in odd_url()) {
            let mut spec = base_spec();
            spec.insert("endpoint".into(), json!(url));
            let parsed = parse_chatgroup(object(spec)).map_err(TestCaseError::fail)?;
            prop_assert_eq!(parsed.spec.endpoint.as_deref(), Some(url.as_str()));
            let client = check_endpoint(&Endpoint::from_url(&url));
            // What the CRD schema asks for (`^https?://`, 2048 characters), and no spaces.
            let fits = (url.starts_with("https://") || url.starts_with("http://"))
                && url.chars().count() <= 2048
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            match validate(&parsed.spec) {
                Ok(valid) => {
                    prop_assert!(client.is_ok() && fits, "{:?} passed validation, client says {:?}", url, client);
                    prop_assert_eq!(valid.endpoint.as_str(), url.as_str());
                }
                Err(errors) => {
                    problems_are_short(&errors)?;
                    prop_assert_eq!(errors.fields(), vec!["spec.endpoint"]);
                    prop_assert!(client.is_err() || !fits, "{:?} refused: {}", url, errors);
                }
            }
        }

        /// A picture URL passes validation when it is an https:// URL with a host; a refused
        /// one names `spec.profilePictureFile`. The empty string (which the generator makes
        /// about once in 20,000 cases) is an unset optional field, as everywhere in the spec:
        /// it passes and sets no picture.
        #[test]
        fn picture_urls_are_checked_like_urls(url in odd_url()) {
            let mut spec = base_spec();
            spec.insert("profilePictureFile".into(), json!(url));
            let parsed = parse_chatgroup(object(spec)).map_err(TestCaseError::fail)?;
            match validate(&parsed.spec) {
                Ok(valid) if url.is_empty() => {
                    prop_assert_eq!(valid.profile_picture_file, None);
                }
                Ok(valid) => {
                    let parsed_url = reqwest::Url::parse(&url);
                    prop_assert!(
                        parsed_url.as_ref().is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty())),
                        "{:?} passed as a picture", url
                    );
                    prop_assert_eq!(valid.profile_picture_file.as_deref(), Some(url.as_str()));
                }
                Err(errors) => {
                    problems_are_short(&errors)?;
                    prop_assert_eq!(errors.fields(), vec!["spec.profilePictureFile"]);
                }
            }
        }

        /// Every field at, under and over its limit, with multi-byte, combining and space
        /// characters, every enum value, empty optional strings and odd durations: parsing the
        /// object as the watch cache does gives back what was written; validation accepts it or names exactly
        /// the fields that break a rule, with short problem texts.
        #[test]
        fn specs_at_the_limits_round_trip_or_name_their_fields(
            cust_space_id in text_around(64),
            business_number in digits_around(32),
            group_id in text_around(128),
            subject in prop::option::of(text_around(128)),
            description in prop::option::of(text_around(2048)),
            region in region(),
            management in prop::option::of(prop::sample::select(vec!["Manage", "Observe", "Plan"])),
            drift in prop::option::of(prop::sample::select(vec!["Enforce", "Report", "Ignore"])),
            resync in prop::option::of(duration()),
            secret_name in prop::option::of(prop_oneof![
                "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\\.[a-z0-9]{1,10}){0,3}",
                (253usize..=254).prop_map(|n| "a".repeat(n)),
                "[A-Z_ .]{1,10}",
            ]),
            id_key in prop::option::of(prop_oneof![
                "[A-Za-z0-9._-]{1,20}",
                (253usize..=254).prop_map(|n| "k".repeat(n)),
                "[ /:]{1,4}",
            ]),
            nulls in any::<bool>(),
        ) {
            let mut spec = Map::new();
            spec.insert("custSpaceId".into(), json!(cust_space_id));
            spec.insert("businessNumber".into(), json!(business_number));
            spec.insert("groupId".into(), json!(group_id));
            spec.insert("channelType".into(), json!("WHATSAPP"));
            for (name, value) in [("subject", &subject), ("description", &description)] {
                match value {
                    Some(text) => {
                        spec.insert(name.into(), json!(text));
                    }
                    None if nulls => {
                        spec.insert(name.into(), Value::Null);
                    }
                    None => {}
                }
            }
            if let Some(region) = &region {
                spec.insert("region".into(), json!(region));
            }
            if let Some(management) = management {
                spec.insert("managementPolicy".into(), json!(management));
            }
            if let Some(drift) = drift {
                spec.insert("driftPolicy".into(), json!(drift));
            }
            if let Some(resync) = &resync {
                spec.insert("resyncInterval".into(), json!(resync));
            }
            if secret_name.is_some() || id_key.is_some() || nulls {
                let mut credentials = Map::new();
                if let Some(name) = &secret_name {
                    credentials.insert("secretRef".into(), json!({"name": name}));
                }
                if let Some(key) = &id_key {
                    credentials.insert("accessKeyIdKey".into(), json!(key));
                }
                spec.insert("credentials".into(), Value::Object(credentials));
            }

            let parsed = parse_chatgroup(object(spec)).map_err(TestCaseError::fail)?;
            let got = &parsed.spec;
            prop_assert_eq!(&got.cust_space_id, &cust_space_id);
            prop_assert_eq!(&got.business_number, &business_number);
            prop_assert_eq!(got.group_id.as_deref(), Some(group_id.as_str()));
            prop_assert_eq!(got.channel_type, ChannelType::Whatsapp);
            prop_assert_eq!(&got.subject, &subject);
            prop_assert_eq!(&got.description, &description);
            prop_assert_eq!(&got.region, region.as_deref().unwrap_or("ap-southeast-1"));
            prop_assert_eq!(got.management_policy, match management {
                Some("Observe") => ManagementPolicy::Observe,
                Some("Plan") => ManagementPolicy::Plan,
                _ => ManagementPolicy::Manage,
            });
            prop_assert_eq!(got.drift_policy, match drift {
                Some("Report") => DriftPolicy::Report,
                Some("Ignore") => DriftPolicy::Ignore,
                _ => DriftPolicy::Enforce,
            });
            prop_assert_eq!(&got.resync_interval, resync.as_deref().unwrap_or("1h"));

            // The rules, written out again from the CRD and the docs.
            let chars = |s: &str| s.chars().count();
            let id_ok = |s: &str, max: usize| {
                (1..=max).contains(&chars(s)) && !s.chars().any(char::is_whitespace)
            };
            let mut want = Vec::new();
            if !id_ok(&cust_space_id, 64) {
                want.push("spec.custSpaceId");
            }
            if !(1..=32).contains(&business_number.len())
                || !business_number.bytes().all(|b| b.is_ascii_digit())
            {
                want.push("spec.businessNumber");
            }
            if !id_ok(&group_id, 128) {
                want.push("spec.groupId");
            }
            if subject.as_deref().is_some_and(|s| chars(s) > 128) {
                want.push("spec.subject");
            }
            if description.as_deref().is_some_and(|s| chars(s) > 2048) {
                want.push("spec.description");
            }
            let region_text = region.as_deref().unwrap_or("ap-southeast-1");
            if !(1..=64).contains(&region_text.len())
                || !region_text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                want.push("spec.region");
            }
            let resync_text = resync.as_deref().unwrap_or("1h");
            if !parse_duration(resync_text).is_ok_and(|d| d >= Duration::from_secs(60)) {
                want.push("spec.resyncInterval");
            }
            if let Some(name) = &secret_name {
                let dns = name.len() <= 253
                    && name.split('.').all(|l| {
                        !l.is_empty()
                            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                            && !l.starts_with('-')
                            && !l.ends_with('-')
                    });
                if !dns {
                    want.push("spec.credentials.secretRef.name");
                }
            }
            if let Some(key) = &id_key {
                if key.len() > 253
                    || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                {
                    want.push("spec.credentials.accessKeyIdKey");
                }
                if key == "accessKeySecret" || key == "securityToken" {
                    want.push("spec.credentials");
                }
            }

            match validate(got) {
                Ok(valid) => {
                    prop_assert!(want.is_empty(), "accepted, but {:?} break a rule", want);
                    prop_assert_eq!(&valid.key.cust_space_id, &cust_space_id);
                    prop_assert_eq!(&valid.key.group_id, &group_id);
                    prop_assert_eq!(valid.subject.as_deref(), subject.as_deref().filter(|s| !s.is_empty()));
                    prop_assert_eq!(valid.description.as_deref(), description.as_deref().filter(|s| !s.is_empty()));
                    prop_assert!(check_endpoint(&valid.endpoint).is_ok(), "{}", valid.endpoint);
                    prop_assert!(valid.resync >= Duration::from_secs(60));
                }
                Err(errors) => {
                    problems_are_short(&errors)?;
                    prop_assert_eq!(errors.fields(), want);
                }
            }
        }

        /// Any JSON under `spec` (wrong types, nulls, nesting): parsing never panics, and a
        /// refusal starts with the path of the field it is about.
        #[test]
        fn any_spec_json_parses_or_names_the_path(
            field in prop::sample::select(vec![
                "custSpaceId", "businessNumber", "groupId", "channelType", "subject",
                "description", "profilePictureFile", "credentials", "region", "endpoint",
                "managementPolicy", "driftPolicy", "resyncInterval", "unknownField",
            ]),
            value in any_json(),
        ) {
            let mut spec = base_spec();
            spec.insert(field.to_owned(), value);
            match parse_chatgroup(object(spec)) {
                Ok(_) => {}
                Err(problem) => {
                    prop_assert!(problem.starts_with(&format!("spec.{field}")), "{}", problem);
                    prop_assert!(problem.chars().count() <= 2000, "{} characters", problem.chars().count());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(config(128))]

        /// A status at the edges of what the schema admits (counters past 32 bits, odd times,
        /// extreme generations): the object parses whatever the status holds, with its spec
        /// intact; a status that cannot be read counts as absent.
        #[test]
        fn any_status_leaves_the_spec_readable(
            attempts in prop::sample::select(vec![json!(0), json!(4_294_967_295u64), json!(4_294_967_296u64), json!(u64::MAX), json!(-1), json!(1.5)]),
            generation in prop::sample::select(vec![json!(i64::MIN), json!(0), json!(i64::MAX), json!(9.3e18), json!("1")]),
            time in prop::sample::select(vec![
                "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123456789+14:00", "9999-12-31T23:59:59Z",
                "0000-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01t00:00:00z", "not a time", "",
            ]),
            http_status in prop::sample::select(vec![json!(0), json!(65535), json!(65536), json!(null)]),
            reason in super::tricky_string(30),
        ) {
            let mut spec = base_spec();
            spec.insert("subject".into(), json!("Team"));
            let mut value = object(spec);
            value["status"] = json!({
                "observedGeneration": generation,
                "retry": {"attempts": attempts, "nextAttemptTime": time},
                "lastRequest": {"action": "UpdateChatGroup", "time": time, "httpStatus": http_status},
                "conditions": [{"type": "Ready", "status": "True", "reason": reason, "lastTransitionTime": time}],
            });
            let parsed = parse_chatgroup(value).map_err(TestCaseError::fail)?;
            prop_assert_eq!(parsed.spec.subject.as_deref(), Some("Team"));
            if let Some(status) = parsed.status {
                prop_assert_eq!(status.retry.map(|r| u64::from(r.attempts)), attempts.as_u64());
                prop_assert_eq!(status.conditions[0].reason.as_str(), reason.as_str());
            }
        }
    }

    /// A retry counter past 32 bits (the schema does not bound it) made the whole object
    /// unparseable, reported as an invalid spec that no change to the spec could fix.
    #[test]
    fn a_status_the_operator_cannot_read_is_dropped_not_reported_as_an_invalid_spec() {
        let mut value = object(base_spec());
        value["status"] = json!({"retry": {"attempts": 4_294_967_296u64}});
        let parsed = parse_chatgroup(value).expect("the spec is fine");
        assert_eq!(parsed.status, None);
        assert_eq!(parsed.spec.group_id.as_deref(), Some("EA303TEST"));

        // A broken spec is still reported, with its own path, whatever the status.
        let mut spec = base_spec();
        spec.insert("managementPolicy".into(), json!("Sometimes"));
        let mut value = object(spec);
        value["status"] = json!({"retry": {"attempts": -1}});
        let problem = parse_chatgroup(value).expect_err("invalid spec");
        assert!(problem.starts_with("spec.managementPolicy"), "{problem}");
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            super::tricky_string(20).prop_map(Value::String),
            prop::sample::select(vec![
                "WHATSAPP", "Manage", "Plan", "Enforce", "1h", "manage", "whatsapp"
            ])
            .prop_map(|s| json!(s)),
            (1usize..50_000).prop_map(|n| json!("z".repeat(n))),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// These passed validation, and then every CAMS call failed with a message that did not
    /// name the field: the client refuses a bad port, an empty host, a user name, a query and
    /// a fragment.
    #[test]
    fn an_endpoint_the_client_refuses_is_refused_naming_the_field() {
        for url in [
            "https://cams.ap-southeast-1.aliyuncs.com:65536/",
            "https://:8787/",
            "https://user@cams.example/",
            "https://cams.example/?a=b",
            "https://cams.example/#f",
            "http://[::1/",
        ] {
            let mut spec = base_spec();
            spec.insert("endpoint".into(), json!(url));
            let parsed = parse_chatgroup(object(spec)).expect("parses");
            let err = validate(&parsed.spec).expect_err(url);
            assert_eq!(err.fields(), ["spec.endpoint"], "{url}: {err}");
            assert!(check_endpoint(&Endpoint::from_url(url)).is_err(), "{url}");
        }
        let mut spec = base_spec();
        spec.insert("profilePictureFile".into(), json!("https://:8787/a.jpg"));
        let parsed = parse_chatgroup(object(spec)).expect("parses");
        let err = validate(&parsed.spec).expect_err("no host");
        assert_eq!(err.fields(), ["spec.profilePictureFile"], "{err}");
    }

    /// A value far over its limit was quoted whole in the problem, and from there in the status
    /// condition and the Event.
    #[test]
    fn a_value_far_over_its_limit_is_not_quoted_whole() {
        let mut spec = base_spec();
        spec.insert("custSpaceId".into(), json!("c".repeat(100_000)));
        spec.insert("region".into(), json!("r".repeat(100_000)));
        spec.insert("businessNumber".into(), json!("1".repeat(100_000)));
        let parsed = parse_chatgroup(object(spec)).expect("parses");
        let err = validate(&parsed.spec).expect_err("too long");
        assert_eq!(
            err.fields(),
            ["spec.custSpaceId", "spec.businessNumber", "spec.region"]
        );
        let text = err.to_string();
        assert!(text.len() < 1500, "{} bytes", text.len());
        assert!(text.contains("(100000 characters)"), "{text}");

        let mut spec = base_spec();
        spec.insert("managementPolicy".into(), json!("m".repeat(100_000)));
        let problem = parse_chatgroup(object(spec)).expect_err("unknown variant");
        assert!(problem.starts_with("spec.managementPolicy: "), "{problem}");
        assert!(problem.len() < 400, "{} bytes", problem.len());
    }

    /// `1.9us` past `u128`: the fraction was added without a check, which panicked in debug
    /// builds and wrapped around to a short duration in release builds.
    #[test]
    fn a_fraction_past_the_largest_whole_number_is_too_long_not_an_overflow() {
        for text in [
            "340282366920938463463374607431768211.9us",
            "340282366920938463463374607431768.9ms",
            "94522879700260684295381835397.9h",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains("too long"), "{text}: {err}");
        }
    }
}
