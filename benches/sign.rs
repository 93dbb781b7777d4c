//! The cost of signing one CAMS request (target: under 5 microseconds).
//!
//! `cargo bench --bench sign` prints, per benchmark, the time of one iteration:
//! - `sign_request/update_chat_group`: everything the client does to sign one `UpdateChatGroup`
//!   (common parameters, timestamp, canonical query, HMAC-SHA1, the encoded query string);
//! - `sign_request/update_chat_group_sts`: the same with an STS token;
//! - `sign_v1/update_chat_group_vector`: the signature alone over the parameters of the
//!   UpdateChatGroup signature vector (see docs/design.md).

use std::hint::black_box;

use cams_operator::cams::sign::{build_signed_query, encode_query, sign_v1};
use cams_operator::cams::{Credentials, SecretString};
use criterion::{Criterion, criterion_group, criterion_main};

const NONCE: &str = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf";

const ACTION_PARAMS: [(&str, &str); 6] = [
    ("BusinessNumber", "8613800001234"),
    ("ChannelType", "WHATSAPP"),
    ("CustSpaceId", "cams-test"),
    ("GroupId", "EA303TEST"),
    ("Subject", "Team chat *1*"),
    ("Description", "Hello world ~ café"),
];

fn credentials(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "LTAI5tExampleAccessKeyId".into(),
        access_key_secret: SecretString::new("ExampleAccessKeySecret0123456789"),
        security_token: token.map(SecretString::new),
    }
}

fn bench_sign(c: &mut Criterion) {
    let timestamp: jiff::Timestamp = "2016-02-23T12:46:24Z".parse().unwrap_or_default();
    let mut group = c.benchmark_group("sign_request");
    for (name, creds) in [
        ("update_chat_group", credentials(None)),
        (
            "update_chat_group_sts",
            credentials(Some(&"CAIS+ExampleSecurityToken/abc=".repeat(20))),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let query = build_signed_query(
                    black_box("UpdateChatGroup"),
                    black_box(&ACTION_PARAMS),
                    black_box(&creds),
                    black_box(timestamp),
                    black_box(NONCE),
                );
                encode_query(&query)
            })
        });
    }
    group.finish();

    let mut params: Vec<(&str, &str)> = vec![
        ("AccessKeyId", "testid"),
        ("Action", "UpdateChatGroup"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", NONCE),
        ("SignatureVersion", "1.0"),
        ("Timestamp", "2016-02-23T12:46:24Z"),
        ("Version", "2020-06-06"),
    ];
    params.extend(ACTION_PARAMS);
    c.bench_function("sign_v1/update_chat_group_vector", |b| {
        b.iter(|| {
            sign_v1(
                black_box("POST"),
                black_box(&params),
                black_box("testsecret"),
            )
        })
    });
}

criterion_group!(benches, bench_sign);
criterion_main!(benches);
