//! Reading a CAMS answer takes memory in proportion to the body, whatever its shape.
//!
//! A JSON value tree costs many times its text (an empty object `{}` is 3 bytes of text and
//! dozens of bytes of tree), so a hostile 4 MiB body of tiny values could cost hundreds of MiB
//! if it were read into one. The client reads only the fields it uses; this test measures the
//! peak of the bytes allocated while a body is read, for bodies made to be expensive, and holds
//! it under a small multiple of the body's size.
//!
//! The counting allocator sees the whole process, so this file holds a single test: nothing
//! else allocates while it measures. `PROPTEST_CASES=...` runs more cases.

use http::HeaderMap;
use peak_alloc::PeakAlloc;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use cams_operator::cams::client::{decode_list_chat_group, decode_update_chat_group};
use cams_operator::cams::{Credentials, SecretString};

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// The bound: a few copies of the body (the texts kept, the escapes undone, the redaction and
/// the cut) plus a fixed allowance.
fn bound(body_len: usize) -> usize {
    4 * body_len + 256 * 1024
}

fn creds() -> Credentials {
    Credentials {
        access_key_id: "LTAImemory".into(),
        access_key_secret: SecretString::new("memory-test-secret-value"),
        security_token: None,
    }
}

/// The peak of the bytes allocated while both actions read `body`, above what was allocated
/// before.
fn peak_while_reading(body: &[u8]) -> usize {
    let headers = HeaderMap::new();
    let credentials = creds();
    let before = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let update = decode_update_chat_group(200, &headers, body, &credentials);
    drop(update);
    let list = decode_list_chat_group(200, &headers, body, &credentials);
    drop(list);
    ALLOCATOR.peak_usage().saturating_sub(before)
}

/// `count` copies of `unit`, comma-separated, inside `template` at `{}`.
fn repeated(template: &str, unit: &str, count: usize) -> Vec<u8> {
    let mut items = String::with_capacity(count * (unit.len() + 1));
    for i in 0..count {
        if i > 0 {
            items.push(',');
        }
        items.push_str(unit);
    }
    template.replacen("{}", &items, 1).into_bytes()
}

/// Bodies built to be expensive to read: many tiny values where a tree would cost the most,
/// long escaped strings, numbers that print longer than they are written.
fn expensive_body() -> impl Strategy<Value = Vec<u8>> {
    let template = prop::sample::select(vec![
        r#"{"Code":"OK","Data":{"Total":1,"List":[{}]}}"#,
        r#"{"Code":"OK","Unknown":[{}]}"#,
        r#"{"Code":"OK","AccessDeniedDetail":[{}]}"#,
        r#"{"Code":"Denied","AccessDeniedDetail":{"k":[{}]}}"#,
        r#"{"Code":"OK","Data":{"List":[{"GroupId":"G","Extra":[{}]}]}}"#,
    ]);
    let unit = prop::sample::select(vec![
        "{}",
        "[]",
        "0",
        "9e9",
        "null",
        "\"\"",
        "\"\\u0000\"",
        r#"{"Subject":"s"}"#,
        r#"{"a":{}}"#,
        "[[[[[[[[1]]]]]]]]",
    ]);
    (template, unit, 1usize..60_000)
        .prop_map(|(template, unit, count)| repeated(template, unit, count))
}

#[test]
fn reading_an_answer_takes_memory_in_proportion_to_its_body() {
    // The worst shapes found, at the full body limit.
    for (template, unit) in [
        (r#"{"Code":"OK","Data":{"List":[{}]}}"#, "{}"),
        (r#"{"Code":"OK","Unknown":[{}]}"#, "[]"),
        (r#"{"Code":"OK","AccessDeniedDetail":[{}]}"#, "9e9"),
        (
            r#"{"Code":"OK","Data":{"List":[{}]}}"#,
            r#"{"Subject":"s"}"#,
        ),
    ] {
        let count = (4 * 1024 * 1024 - template.len()) / (unit.len() + 1);
        let body = repeated(template, unit, count);
        let peak = peak_while_reading(&body);
        assert!(
            peak <= bound(body.len()),
            "{template} with {count} x {unit}: {peak} bytes for a body of {}",
            body.len()
        );
    }

    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 48;
    }
    config.failure_persistence = None;
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&expensive_body(), |body| {
        let peak = peak_while_reading(&body);
        prop_assert!(
            peak <= bound(body.len()),
            "{peak} bytes for a body of {}",
            body.len()
        );
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
