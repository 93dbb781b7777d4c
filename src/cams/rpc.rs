//! One Alibaba Cloud RPC exchange, shared by every call the operator makes: the CAMS actions
//! (signed with signature V1 by [`super::client`]) and STS `AssumeRoleWithOIDC` for the
//! operator's own identity (anonymous, built by [`crate::identity`]).
//!
//! The caller builds the request (URL, query, body); [`exchange`] sends it, reads at most
//! [`MAX_BODY_BYTES`] of the answer and parses its JSON envelope into an [`Answer`]: the HTTP
//! status, the throttling delay the gateway asked for, and the envelope ([`Envelope`]: `Code`,
//! `Message`, `RequestId` and the other fields the operator reads), every text cut to
//! [`MAX_TEXT_CHARS`](super::client::MAX_TEXT_CHARS) and scrubbed of the caller's secrets. [`read_answer`] is the same reading
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
use super::client::{HttpCamsConfig, MAX_BODY_BYTES, SNIPPET_CHARS, cut, throttle_delay};
use super::sign;

const REDACTED: &str = "<redacted>";
/// Values shorter than this are not searched for in response texts: real secrets, tokens and
/// signatures are far longer, and replacing a short string would garble codes and messages.
const MIN_REDACTED_LEN: usize = 8;

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
    config: &HttpCamsConfig,
    redactor: &Redactor,
) -> Result<Answer<'static>, RpcError> {
    let transport_error = |err: reqwest::Error| {
        if err.is_timeout() {
            RpcError::Timeout {
                timeout: if err.is_connect() {
                    config.connect_timeout
                } else {
                    config.request_timeout
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

    /// A text of an answer as it is kept: scrubbed, then cut to [`MAX_TEXT_CHARS`](super::client::MAX_TEXT_CHARS).
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
