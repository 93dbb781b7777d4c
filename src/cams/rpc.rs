//! One Alibaba Cloud RPC exchange, shared by every call the operator makes: the CAMS actions
//! (signed with signature V1 by [`super::client`]) and STS `AssumeRoleWithOIDC` for the
//! operator's own identity (anonymous, built by [`crate::identity`]).
//!
//! The caller builds the request (URL, query, body); [`exchange`] sends it, reads at most
//! [`MAX_BODY_BYTES`] of the answer and parses its JSON envelope into an [`Answer`]: the HTTP
//! status, the throttling delay the gateway asked for, and the envelope ([`Envelope`]: `Code`,
//! `Message`, `RequestId` and the other fields the operator reads), every text cut to
//! [`MAX_TEXT_CHARS`] and scrubbed of the caller's secrets. [`read_answer`] is the same reading
//! without the network (tests and fuzzing feed it bytes).
//!
//! What an answer means is decided once, by [`ErrorKind::of_response`], for CAMS and STS alike;
//! each caller then wraps it in its own typed error ([`super::CamsError`],
//! [`crate::identity::IdentityError`]).

use std::borrow::Cow;
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::ErrorKind;
use super::answer::{self, Envelope};
use super::sign;

const REDACTED: &str = "<redacted>";
/// Values shorter than this are not searched for in response texts: real secrets, tokens and
/// signatures are far longer, and replacing a short string would garble codes and messages.
const MIN_REDACTED_LEN: usize = 8;

/// Largest response body read; a longer one is refused as [`CamsError::BodyTooLarge`](super::CamsError::BodyTooLarge).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Longest body excerpt kept in [`CamsError::InvalidBody`](super::CamsError::InvalidBody), in characters.
pub const SNIPPET_CHARS: usize = 200;
/// Longest text kept from any field of an answer (`Message`, a group's `Subject`, ...), in
/// characters. A longer one is cut and ends with [`CUT_MARK`]. Real values are far shorter
/// (a description has at most 2048 characters); the cut keeps a runaway answer out of status
/// conditions, Events and logs.
pub const MAX_TEXT_CHARS: usize = 4096;
/// What ends a text cut to [`MAX_TEXT_CHARS`].
pub const CUT_MARK: &str = "…";
/// Longest throttling delay honoured: a larger `TimeLeft` is read as this much.
pub const MAX_THROTTLE_DELAY: Duration = Duration::from_secs(3600);
/// Headers that carry the throttling window, in the order they are read.
pub const RATE_LIMIT_HEADERS: [&str; 2] = ["x-ratelimit-user-api", "x-ratelimit-user"];

/// The time allowed to open a connection, and for a whole request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

/// A readable answer: the status, the delay a throttled answer asked for, and the envelope.
#[derive(Debug)]
pub(crate) struct Answer<'a> {
    pub http_status: u16,
    /// The throttling `TimeLeft` of the rate-limit headers, when there was one.
    pub retry_after: Option<Duration>,
    /// The envelope, texts cut and scrubbed.
    pub envelope: Envelope,
    /// The body, kept only for [`Answer::snippet`].
    body: Cow<'a, [u8]>,
}

impl Answer<'_> {
    /// True for HTTP 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.http_status)
    }

    /// What the one classification makes of this answer's `Code` and status.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::of_response(self.envelope.code.as_deref(), self.http_status)
    }

    /// The envelope, the body dropped.
    pub fn into_envelope(self) -> Envelope {
        self.envelope
    }

    /// The start of the body, for an answer that is an object but not the expected one.
    pub fn snippet(&self, redactor: &Redactor) -> String {
        snippet(redactor, &self.body)
    }
}

/// A body that cannot be read as an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Longer than [`MAX_BODY_BYTES`]; none of it was used.
    TooLarge {
        http_status: u16,
        /// The limit, in bytes.
        limit: usize,
    },
    /// Not a JSON object.
    NotAnObject {
        http_status: u16,
        /// The start of the body, scrubbed ([`SNIPPET_CHARS`] characters at most).
        snippet: String,
    },
}

/// An exchange that produced no readable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RpcError {
    /// Connection, TLS or protocol failure before an answer arrived.
    Transport {
        /// What failed, scrubbed, without the URL.
        detail: String,
    },
    /// No answer within the timeout.
    Timeout {
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// An answer arrived but its body is not an envelope.
    Unreadable(Unreadable),
}

/// Sends `request` and reads its answer (see the [module docs](self)). Never logs: the
/// callers log with their own context, and never the URL (it may carry a signature).
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    timeouts: Timeouts,
    redactor: &Redactor,
) -> Result<Answer<'static>, RpcError> {
    let transport_error = |err: reqwest::Error| {
        if err.is_timeout() {
            RpcError::Timeout {
                timeout: if err.is_connect() {
                    timeouts.connect
                } else {
                    timeouts.request
                },
            }
        } else {
            RpcError::Transport {
                detail: redactor.scrub(error_chain(&err.without_url())),
            }
        }
    };
    let response = request.send().await.map_err(transport_error)?;
    let http_status = response.status().as_u16();
    let headers = response.headers().clone();
    let (body, too_long) = read_body(response, MAX_BODY_BYTES)
        .await
        .map_err(transport_error)?;
    if too_long {
        return Err(RpcError::Unreadable(Unreadable::TooLarge {
            http_status,
            limit: MAX_BODY_BYTES,
        }));
    }
    read_answer(http_status, &headers, Cow::Owned(body), redactor).map_err(RpcError::Unreadable)
}

/// Reads one answer from its status, headers and body. Pure; never panics, whatever the bytes.
pub(crate) fn read_answer<'a>(
    http_status: u16,
    headers: &HeaderMap,
    body: Cow<'a, [u8]>,
    redactor: &Redactor,
) -> Result<Answer<'a>, Unreadable> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Unreadable::TooLarge {
            http_status,
            limit: MAX_BODY_BYTES,
        });
    }
    let Some(mut envelope) = answer::parse(&body) else {
        return Err(Unreadable::NotAnObject {
            http_status,
            snippet: snippet(redactor, &body),
        });
    };
    for text in [
        &mut envelope.code,
        &mut envelope.message,
        &mut envelope.request_id,
        &mut envelope.host_id,
        &mut envelope.recommend,
        &mut envelope.access_denied_detail,
    ] {
        *text = redactor.clean(text.take());
    }
    Ok(Answer {
        http_status,
        retry_after: throttle_delay(headers),
        envelope,
        body,
    })
}

/// Reads at most `max` bytes of a response body; the flag is true when the body was longer
/// (and was cut). The limit holds while reading: a body whose `Content-Length` is over it is not
/// read at all, and reading stops at the first chunk that passes it, so at most `max` bytes are
/// ever held, however long the body or however much the server sends.
async fn read_body(
    mut response: reqwest::Response,
    max: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|declared| declared > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Ok((Vec::new(), true));
    }
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = max.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Replaces every echo of the caller's secrets (an AccessKey secret, a security token, a
/// signature, an OIDC token), in the forms a server could echo them: raw, encoded once,
/// encoded twice.
pub(crate) struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor of `secrets`; values shorter than 8 bytes are not searched for.
    pub fn new<'s>(secrets: impl IntoIterator<Item = &'s str>) -> Self {
        let mut needles: Vec<String> = Vec::new();
        for value in secrets.into_iter().filter(|v| v.len() >= MIN_REDACTED_LEN) {
            let once = sign::pop_encode(value);
            let twice = sign::pop_encode(&once);
            needles.push(value.to_owned());
            needles.push(once);
            needles.push(twice);
        }
        // Longest first, so that an encoded form is replaced whole.
        needles.sort_unstable_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor { needles }
    }

    /// Length in bytes of the longest value searched for (0 when there is none).
    fn longest(&self) -> usize {
        self.needles.first().map_or(0, String::len)
    }

    /// `text` with every echo replaced by `<redacted>`.
    pub fn scrub(&self, text: String) -> String {
        if !self.needles.iter().any(|n| text.contains(n.as_str())) {
            return text;
        }
        let mut text = text;
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), REDACTED);
            }
        }
        text
    }

    /// A text of an answer as it is kept: scrubbed, then cut to [`MAX_TEXT_CHARS`].
    pub fn clean(&self, text: Option<String>) -> Option<String> {
        text.map(|t| cut(self.scrub(t)))
    }
}

/// At most [`SNIPPET_CHARS`] characters of the body (lossy UTF-8), secrets redacted.
///
/// Only the start of the body is looked at: each character of the snippet stands for at most
/// four bytes of the body, or for part of a redacted value, so a window of
/// `SNIPPET_CHARS * max(4, longest value)` bytes, plus one value's length for an echo that
/// starts inside it, holds everything the snippet can show.
fn snippet(redactor: &Redactor, body: &[u8]) -> String {
    let longest = redactor.longest();
    let window = SNIPPET_CHARS
        .saturating_mul(longest.max(4))
        .saturating_add(longest);
    let head = body.get(..window).unwrap_or(body);
    let text = redactor.scrub(String::from_utf8_lossy(head).into_owned());
    text.chars().take(SNIPPET_CHARS).collect()
}

/// The error and its sources, joined with `: `.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `text` cut to [`MAX_TEXT_CHARS`] characters, the last of which is then [`CUT_MARK`].
pub fn cut(text: String) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        None => text,
        Some(_) => {
            let keep = MAX_TEXT_CHARS - CUT_MARK.chars().count();
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            let mut text = text;
            text.truncate(end);
            text.push_str(CUT_MARK);
            text
        }
    }
}

/// The delay of a throttling header `Limit:1,Remain:0,TimeLeft:2000,Reset:1234` (milliseconds),
/// from the first of [`RATE_LIMIT_HEADERS`] that has one, at most [`MAX_THROTTLE_DELAY`].
pub fn throttle_delay(headers: &HeaderMap) -> Option<Duration> {
    RATE_LIMIT_HEADERS.iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_time_left)
            .map(|delay| delay.min(MAX_THROTTLE_DELAY))
    })
}

/// `TimeLeft` (milliseconds) of a rate-limit header value.
pub fn parse_time_left(value: &str) -> Option<Duration> {
    value.split(',').find_map(|part| {
        let (name, number) = part.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("TimeLeft") {
            number.trim().parse::<u64>().ok().map(Duration::from_millis)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(http_status: u16, body: &str) -> Result<Answer<'_>, Unreadable> {
        read_answer(
            http_status,
            &HeaderMap::new(),
            Cow::Borrowed(body.as_bytes()),
            &Redactor::new(["oidc-token-value"]),
        )
    }

    #[test]
    fn the_envelope_is_read_scrubbed_and_classified() {
        let answer = read(
            400,
            r#"{"RequestId":"R1","Code":"Throttling.User","Message":"slow down oidc-token-value"}"#,
        )
        .expect("an answer");
        assert_eq!(answer.http_status, 400);
        assert!(!answer.is_success());
        assert_eq!(answer.envelope.request_id.as_deref(), Some("R1"));
        assert_eq!(
            answer.envelope.message.as_deref(),
            Some("slow down <redacted>")
        );
        assert_eq!(answer.kind(), ErrorKind::Throttled);
        let answer = read(200, r#"{"RequestId":"R2"}"#).expect("an answer");
        assert!(answer.is_success());
        assert_eq!(answer.envelope.code, None);
    }

    #[test]
    fn a_body_that_is_not_an_object_or_too_long_is_unreadable() {
        assert!(matches!(
            read(502, "<html>bad gateway oidc-token-value</html>"),
            Err(Unreadable::NotAnObject { http_status: 502, snippet }) if snippet == "<html>bad gateway <redacted></html>"
        ));
        let long = vec![b' '; MAX_BODY_BYTES + 1];
        let too_long = read_answer(200, &HeaderMap::new(), Cow::Owned(long), &Redactor::new([]));
        assert!(matches!(
            too_long,
            Err(Unreadable::TooLarge {
                limit: MAX_BODY_BYTES,
                ..
            })
        ));
    }

    #[test]
    fn the_throttling_delay_is_read_from_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-user-api", "TimeLeft:1500".parse().unwrap());
        let answer = read_answer(
            400,
            &headers,
            Cow::Borrowed(b"{\"Code\":\"Throttling.Api\"}".as_slice()),
            &Redactor::new([]),
        )
        .expect("an answer");
        assert_eq!(answer.retry_after, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn redactor_hides_every_form_of_the_secrets() {
        let r = Redactor::new(["secret value", "CAIS+tok/en=", "ab+c/d=EFGH12="]);
        let text = format!(
            "{} {} {} {} {}",
            "secret value",
            sign::pop_encode("CAIS+tok/en="),
            sign::pop_encode(&sign::pop_encode("CAIS+tok/en=")),
            "ab+c/d=EFGH12=",
            sign::pop_encode("ab+c/d=EFGH12=")
        );
        let scrubbed = r.scrub(text);
        assert_eq!(scrubbed.matches(REDACTED).count(), 5, "{scrubbed}");
        assert_eq!(r.scrub("nothing here".into()), "nothing here");
    }

    #[test]
    fn short_values_are_not_searched_for() {
        let r = Redactor::new(["s"]);
        assert_eq!(r.scrub("Throttling.User".into()), "Throttling.User");
    }

    #[test]
    fn snippet_is_bounded() {
        let r = Redactor::new(["s"]);
        let body = "é".repeat(500);
        assert_eq!(snippet(&r, body.as_bytes()).chars().count(), SNIPPET_CHARS);
    }
}
