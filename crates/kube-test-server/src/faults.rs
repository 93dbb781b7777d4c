//! Faults as a real control plane shows them, injected per resource and verb.
//!
//! - `429 Too Many Requests` from API Priority and Fairness: a plain-text body (not a
//!   `Status`) and a `Retry-After` header in whole seconds
//!   (`apiserver/pkg/server/filters/priority-and-fairness.go`, `maxinflight.go`
//!   `tooManyRequests`);
//! - `503 Service Unavailable` and `500 Internal Server Error` with `Status` bodies, the 503
//!   optionally with `Retry-After` (as an apiserver behind a load balancer, or one whose
//!   storage is unavailable, answers);
//! - a request held without an answer for a while, as when etcd or a webhook stalls (the
//!   request is then served normally, by which time the client may have given up).

use std::time::Duration;

use rand::Rng as _;
use tokio::time::Instant;

use super::errors::ApiError;
use super::kinds::ResourceKind;
use super::{RequestKind, RequestRecord};

/// Body of API Priority and Fairness' 429 answer.
pub const TOO_MANY_REQUESTS_BODY: &str = "Too many requests, please try again later.\n";

/// The verb of a request, as RBAC and audit name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `GET` of one object.
    Get,
    /// `GET` of a collection.
    List,
    /// `GET` of a collection with `watch=true`.
    Watch,
    /// `POST`.
    Create,
    /// `PUT`.
    Update,
    /// `PATCH` (any patch type, server-side apply included).
    Patch,
    /// `DELETE` of one object.
    Delete,
    /// `DELETE` of a collection.
    DeleteCollection,
}

impl Verb {
    /// The verb of a request kind, `None` for requests that are not about resources.
    pub fn of(kind: &RequestKind) -> Option<Verb> {
        Some(match kind {
            RequestKind::List => Verb::List,
            RequestKind::Watch => Verb::Watch,
            RequestKind::Get => Verb::Get,
            RequestKind::Create => Verb::Create,
            RequestKind::Update { .. } => Verb::Update,
            RequestKind::Patch { .. } => Verb::Patch,
            RequestKind::Delete => Verb::Delete,
            RequestKind::DeleteCollection => Verb::DeleteCollection,
            RequestKind::Other => return None,
        })
    }

    /// The lower-case name (`get`, `list`, `deletecollection`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// What a fault does to a request it selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultEffect {
    /// Answer with this status code and a `Status` body, without touching the store.
    Fail(u16),
    /// API Priority and Fairness rejects the request: 429, plain-text body, `Retry-After`.
    TooManyRequests {
        /// The `Retry-After` seconds.
        retry_after: u64,
    },
    /// 503 with a `Status` body and, when given, `Retry-After`.
    Unavailable {
        /// The `Retry-After` seconds, if any.
        retry_after: Option<u64>,
    },
    /// No answer for this long; then the request is served normally.
    Hold(Duration),
}

/// Selects the requests a fault applies to.
pub type RequestFilter = Box<dyn Fn(&RequestRecord) -> bool + Send + Sync>;

/// A fault rule. Build one with [`Fault::on`] or [`Fault::any`], then give it to
/// `TestApiServer::inject`.
pub struct Fault {
    resource: Option<ResourceKind>,
    verbs: Vec<Verb>,
    subresource: Option<Option<String>>,
    namespace: Option<String>,
    filter: Option<RequestFilter>,
    effect: FaultEffect,
    remaining: Option<u32>,
    until: Option<Instant>,
    rate: f64,
}

impl Fault {
    /// A fault for requests about `kind` (every verb until narrowed), answering 500 until
    /// another effect is chosen.
    pub fn on(kind: &ResourceKind) -> Fault {
        Fault {
            resource: Some(kind.clone()),
            ..Fault::any()
        }
    }

    /// A fault for every request.
    pub fn any() -> Fault {
        Fault {
            resource: None,
            verbs: Vec::new(),
            subresource: None,
            namespace: None,
            filter: None,
            effect: FaultEffect::Fail(500),
            remaining: None,
            until: None,
            rate: 1.0,
        }
    }

    /// Only requests with this verb (may be given several times).
    pub fn verb(mut self, verb: Verb) -> Fault {
        self.verbs.push(verb);
        self
    }

    /// Only requests to this subresource (`"status"`).
    pub fn subresource(mut self, name: &str) -> Fault {
        self.subresource = Some(Some(name.to_owned()));
        self
    }

    /// Only requests to the main resource, not a subresource.
    pub fn main_resource(mut self) -> Fault {
        self.subresource = Some(None);
        self
    }

    /// Only requests in this namespace.
    pub fn namespace(mut self, namespace: &str) -> Fault {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Only requests `filter` selects too.
    pub fn matching(
        mut self,
        filter: impl Fn(&RequestRecord) -> bool + Send + Sync + 'static,
    ) -> Fault {
        self.filter = Some(Box::new(filter));
        self
    }

    /// Answers with `code` and a `Status` body.
    pub fn status(mut self, code: u16) -> Fault {
        self.effect = FaultEffect::Fail(code);
        self
    }

    /// Answers 429 as API Priority and Fairness does, with `Retry-After: seconds`.
    pub fn too_many_requests(mut self, retry_after: u64) -> Fault {
        self.effect = FaultEffect::TooManyRequests { retry_after };
        self
    }

    /// Answers 503, with `Retry-After` when given.
    pub fn unavailable(mut self, retry_after: Option<u64>) -> Fault {
        self.effect = FaultEffect::Unavailable { retry_after };
        self
    }

    /// Holds the request without an answer for `duration`, then serves it.
    pub fn hold(mut self, duration: Duration) -> Fault {
        self.effect = FaultEffect::Hold(duration);
        self
    }

    /// Applies to the next `n` requests it selects only.
    pub fn times(mut self, n: u32) -> Fault {
        self.remaining = Some(n);
        self
    }

    /// Applies for `duration` from now only.
    pub fn for_duration(mut self, duration: Duration) -> Fault {
        self.until = Some(Instant::now() + duration);
        self
    }

    /// Applies to each selected request with probability `rate` (0 to 1).
    pub fn rate(mut self, rate: f64) -> Fault {
        self.rate = rate.clamp(0.0, 1.0);
        self
    }

    fn selects(&self, record: &RequestRecord) -> bool {
        let verb = Verb::of(&record.kind);
        let subresource = match &record.kind {
            RequestKind::Update { subresource } | RequestKind::Patch { subresource, .. } => {
                subresource.clone()
            }
            _ => record
                .path
                .ends_with("/status")
                .then(|| "status".to_owned()),
        };
        self.resource
            .as_ref()
            .is_none_or(|kind| record.resource.as_ref() == Some(kind))
            && (self.verbs.is_empty() || verb.is_some_and(|v| self.verbs.contains(&v)))
            && self.subresource.as_ref().is_none_or(|s| *s == subresource)
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| record.namespace.as_ref() == Some(ns))
            && self.filter.as_ref().is_none_or(|f| f(record))
    }

    fn live(&self, now: Instant) -> bool {
        self.remaining != Some(0) && self.until.is_none_or(|t| t > now)
    }
}

/// What the faults decided for one request.
#[derive(Debug, Default)]
pub struct Decision {
    /// How long to hold the request first.
    pub hold: Option<Duration>,
    /// The error to answer with instead of serving the request.
    pub fail: Option<FaultEffect>,
}

/// The active faults, applied in the order they were added: the first matching hold and the
/// first matching failure apply.
#[derive(Default)]
pub struct Faults {
    rules: Vec<Fault>,
}

impl Faults {
    /// Adds a rule.
    pub fn add(&mut self, fault: Fault) {
        self.rules.push(fault);
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Decides the faults of one request, using up counted rules.
    pub fn decide(&mut self, record: &RequestRecord) -> Decision {
        let now = Instant::now();
        self.rules.retain(|f| f.live(now));
        let mut decision = Decision::default();
        let mut rng = rand::rng();
        for rule in self.rules.iter_mut() {
            if !rule.selects(record) {
                continue;
            }
            let applies = match rule.effect {
                FaultEffect::Hold(d) if decision.hold.is_none() => {
                    decision.hold = Some(d);
                    true
                }
                FaultEffect::Hold(_) => false,
                effect if decision.fail.is_none() => {
                    decision.fail = Some(effect);
                    true
                }
                _ => false,
            };
            if !applies {
                continue;
            }
            if rule.rate < 1.0 && !rng.random_bool(rule.rate) {
                // Not this time: undo the choice.
                match rule.effect {
                    FaultEffect::Hold(_) => decision.hold = None,
                    _ => decision.fail = None,
                }
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
        }
        decision
    }
}

/// The error an effect answers with (`None` for holds). 429s are answered in plain text by
/// the HTTP layer.
pub fn error_of(effect: FaultEffect) -> Option<ApiError> {
    match effect {
        FaultEffect::Hold(_) | FaultEffect::TooManyRequests { .. } => None,
        FaultEffect::Unavailable { retry_after } => {
            let error = ApiError::new(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            );
            Some(match retry_after {
                Some(seconds) => error.with_retry_after(seconds),
                None => error,
            })
        }
        FaultEffect::Fail(code) => {
            let (reason, message) = match code {
                429 => (
                    "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later",
                ),
                500 => (
                    "InternalError",
                    "an error on the server (\"injected fault\") has prevented the request from succeeding",
                ),
                503 => (
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                ),
                504 => (
                    "Timeout",
                    "the server was unable to return a response in the time allotted, but may still be processing the request",
                ),
                _ => ("InternalError", "injected fault"),
            };
            Some(ApiError::new(code, reason, message))
        }
    }
}
