//! HTTP: routing of Kubernetes REST paths, request logging, fault injection, and the
//! chunked watch stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::errors::ApiError;
use super::faults::{self, FaultEffect, Faults, TOO_MANY_REQUESTS_BODY};
use super::json::parse_query;
use super::rbac::{Attributes, Authorizer, User};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{FieldValidation, Filter, PatchType, Store, Subresource, WriteOptions};
use super::{RequestKind, RequestRecord};

/// Response body: a whole JSON document, or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// State shared by the server's tasks and the test's handle.
pub struct Shared {
    /// Objects, versions and watch history.
    pub store: Mutex<Store>,
    /// Every request answered, in order.
    pub log: Mutex<Vec<RequestRecord>>,
    /// Active fault rules.
    pub faults: Mutex<Faults>,
    /// Bumped after every change to the store or the log; wakes watches and `wait_for`.
    pub changes: watch::Sender<u64>,
    /// Bumped by `close_watches`: every open watch ends.
    pub close_watches: watch::Sender<u64>,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Who the bearer tokens stand for, and the RBAC rules when they are enforced.
    pub auth: Mutex<Auth>,
}

/// Authentication and authorization.
#[derive(Default)]
pub struct Auth {
    /// Bearer tokens and the users they authenticate.
    pub tokens: HashMap<String, User>,
    /// The RBAC objects, when RBAC is enforced; `None` allows every authenticated request.
    pub authorizer: Option<Authorizer>,
}

impl Auth {
    /// The user a request's `Authorization` header authenticates: anonymous without one,
    /// 401 for a token nobody was given.
    fn authenticate(&self, header: Option<&str>) -> Result<User, ApiError> {
        let Some(value) = header else {
            return Ok(User::anonymous());
        };
        let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
        self.tokens
            .get(token)
            .cloned()
            .ok_or_else(|| ApiError::new(401, "Unauthorized", "Unauthorized"))
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test must not cascade).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Runs `f` on the store and wakes everyone waiting for changes.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let result = f(&mut lock(&self.store));
        self.notify();
        result
    }

    /// [`Shared::with_store`] for a write: also returns the warnings it produced.
    pub fn write<R>(&self, f: impl FnOnce(&mut Store) -> R) -> (R, Vec<String>) {
        self.with_store(|s| {
            let result = f(s);
            (result, s.take_warnings())
        })
    }

    /// Wakes watches and waiters.
    pub fn notify(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

/// Where a path leads.
enum Route {
    Version,
    Resource {
        kind: usize,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    },
    NotFound,
}

fn route(store: &Store, path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Route::Version,
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::NotFound,
    };
    let namespaced_kind = |plural: &str| {
        store
            .kind_index(group, version, plural)
            .filter(|k| store.kinds[*k].namespaced)
    };
    let (kind, namespace, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced_kind(plural).is_some() => {
            (namespaced_kind(plural), Some((*ns).to_owned()), tail)
        }
        [plural, tail @ ..] => (store.kind_index(group, version, plural), None, tail),
        [] => return Route::NotFound,
    };
    let Some(kind) = kind else {
        return Route::NotFound;
    };
    let spec = &store.kinds[kind];
    // A namespaced kind without a namespace only has the collection (all namespaces).
    if spec.namespaced && namespace.is_none() && !tail.is_empty() {
        return Route::NotFound;
    }
    match tail {
        [] => Route::Resource {
            kind,
            namespace,
            name: None,
            subresource: None,
        },
        [name] => Route::Resource {
            kind,
            namespace,
            name: Some((*name).to_owned()),
            subresource: None,
        },
        [name, "status"] if spec.status_subresource => Route::Resource {
            kind,
            namespace,
            name: Some((*name).to_owned()),
            subresource: Some("status".to_owned()),
        },
        _ => Route::NotFound,
    }
}

fn patch_type(content_type: Option<&str>) -> PatchType {
    match content_type {
        Some("application/merge-patch+json") => PatchType::Merge,
        Some("application/strategic-merge-patch+json") => PatchType::Strategic,
        Some("application/json-patch+json") => PatchType::Json,
        Some("application/apply-patch+yaml") => PatchType::Apply,
        _ => PatchType::Unknown,
    }
}

fn classify(
    method: &Method,
    route: &Route,
    query: &[(String, String)],
    ct: Option<&str>,
) -> RequestKind {
    let Route::Resource {
        name, subresource, ..
    } = route
    else {
        return RequestKind::Other;
    };
    let watch = query
        .iter()
        .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    match (method.clone(), name.is_some()) {
        (Method::GET, false) if watch => RequestKind::Watch,
        (Method::GET, false) => RequestKind::List,
        (Method::GET, true) => RequestKind::Get,
        (Method::POST, false) => RequestKind::Create,
        (Method::PUT, true) => RequestKind::Update {
            subresource: subresource.clone(),
        },
        (Method::PATCH, true) => RequestKind::Patch {
            patch_type: patch_type(ct),
            subresource: subresource.clone(),
        },
        (Method::DELETE, true) => RequestKind::Delete,
        (Method::DELETE, false) => RequestKind::DeleteCollection,
        _ => RequestKind::Other,
    }
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut response = Response::new(Full::new(bytes).boxed_unsync());
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.to_status());
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The plain-text 429 of API Priority and Fairness.
fn too_many_requests(retry_after: u64) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(TOO_MANY_REQUESTS_BODY.as_bytes())).boxed_unsync(),
    );
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// The `PartialObjectMetadata` view requested by metadata-only clients.
fn as_metadata(object: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": object.get("metadata").cloned().unwrap_or_default(),
    })
}

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Handles one request: log, faults, dispatch.
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header_str = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header_str(header::CONTENT_TYPE).map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    let accept = header_str(header::ACCEPT).unwrap_or_default();
    let authorization = header_str(header::AUTHORIZATION);
    let user_agent = header_str(header::USER_AGENT);
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let query = parse_query(&raw_query);
    let route = route(&lock(&shared.store), &path);
    let kind = classify(&parts.method, &route, &query, content_type.as_deref());
    let (resource, namespace, name) = match &route {
        Route::Resource {
            kind,
            namespace,
            name,
            ..
        } => (
            Some(lock(&shared.store).kinds[*kind].clone()),
            namespace.clone(),
            name.clone(),
        ),
        _ => (None, None, None),
    };
    let parsed_body = if body.is_empty() {
        None
    } else {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .or_else(|| serde_yaml::from_slice::<Value>(&body).ok())
    };
    let mut record = RequestRecord {
        method: parts.method.clone(),
        path,
        query: query.clone(),
        content_type,
        field_manager: param(&query, "fieldManager").map(str::to_owned),
        kind,
        resource,
        namespace,
        name,
        status: 0,
        injected_fault: false,
        body: parsed_body,
        user: String::new(),
        metadata_only: accept.contains("as=PartialObjectMetadata"),
    };
    let authenticated = lock(&shared.auth).authenticate(authorization.as_deref());
    if let Ok(user) = &authenticated {
        record.user = user.name.clone();
    }

    let decision = lock(&shared.faults).decide(&record);
    let hold = decision.hold;
    let serve = async move {
        if let Some(hold) = hold {
            tokio::time::sleep(hold).await;
        }
        let response = match decision.fail {
            Some(effect) => {
                record.injected_fault = true;
                match (effect, faults::error_of(effect)) {
                    (FaultEffect::TooManyRequests { retry_after }, _) => {
                        too_many_requests(retry_after)
                    }
                    (_, Some(error)) => error_response(&error),
                    (_, None) => {
                        error_response(&ApiError::new(500, "InternalError", "injected fault"))
                    }
                }
            }
            None => match authenticated.and_then(|user| authorize(&shared, &user, &record)) {
                Err(error) => error_response(&error),
                Ok(()) => dispatch(&shared, route, &record, user_agent.as_deref(), &body),
            },
        };
        record.status = response.status().as_u16();
        lock(&shared.log).push(record);
        shared.notify();
        response
    };
    if hold.is_none() {
        return Ok(serve.await);
    }
    // A held request is served to the end even when its client gives up meanwhile, as a
    // write that reached storage completes after its client timed out.
    Ok(tokio::spawn(serve).await.unwrap_or_else(|_| {
        error_response(&ApiError::new(
            500,
            "InternalError",
            "the held request failed",
        ))
    }))
}

/// The RBAC decision on a request, when RBAC is enforced: 403 Forbidden when no rule allows
/// it.
fn authorize(shared: &Shared, user: &User, record: &RequestRecord) -> Result<(), ApiError> {
    let auth = lock(&shared.auth);
    let Some(authorizer) = &auth.authorizer else {
        return Ok(());
    };
    let attributes = Attributes::from_http(record.method.as_str(), &record.path, &record.query);
    authorizer.authorize(user, &attributes)
}

/// Serves a request that no fault intercepted.
fn dispatch(
    shared: &Arc<Shared>,
    route: Route,
    record: &RequestRecord,
    user_agent: Option<&str>,
    body: &[u8],
) -> Response<Body> {
    let (method, query) = (&record.method, record.query.as_slice());
    let (k, namespace, name, subresource) = match route {
        Route::Version => {
            return json_response(
                200,
                &json!({
                    "major": "1", "minor": "33", "gitVersion": "v1.33.0-cams-test",
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                    "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64",
                }),
            );
        }
        Route::NotFound => {
            // `NewGenericServerResponse` always carries details, empty here.
            let error = ApiError {
                details: Some(json!({})),
                ..ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            };
            return error_response(&error);
        }
        Route::Resource {
            kind,
            namespace,
            name,
            subresource,
        } => (kind, namespace, name, subresource),
    };
    let namespaced = lock(&shared.store).kinds[k].namespaced;
    if namespaced
        && namespace.is_none()
        && !matches!(record.kind, RequestKind::List | RequestKind::Watch)
    {
        // Only lists and watches span all namespaces.
        let error = ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} needs a namespace for this resource"),
        );
        return error_response(&error);
    }
    let metadata_only = record.metadata_only;
    let sub = if subresource.is_some() {
        Subresource::Status
    } else {
        Subresource::Main
    };
    let ns = namespace.clone().unwrap_or_default();
    let opts = WriteOptions {
        manager: param(query, "fieldManager")
            .map(str::to_owned)
            .or_else(|| {
                user_agent
                    .and_then(|ua| ua.split('/').next())
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "unknown".to_owned()),
        manager_given: param(query, "fieldManager").is_some(),
        force: param(query, "force") == Some("true"),
        dry_run: param(query, "dryRun") == Some("All"),
        field_validation: FieldValidation::parse(param(query, "fieldValidation")),
    };
    let parse_body = || -> Result<Value, ApiError> {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::new(400, "BadRequest", format!("invalid JSON body: {e}")))
    };
    let filter = || -> Result<Filter, ApiError> {
        let bad = |e: String| ApiError::new(400, "BadRequest", e);
        Ok(Filter {
            namespace: namespace.clone(),
            labels: LabelSelector::parse(param(query, "labelSelector").unwrap_or(""))
                .map_err(bad)?,
            fields: FieldSelector::parse(param(query, "fieldSelector").unwrap_or(""))
                .map_err(bad)?,
        })
    };
    let view = |object: Value| {
        if metadata_only && object.get("kind").and_then(Value::as_str) != Some("Status") {
            as_metadata(&object)
        } else {
            object
        }
    };
    let mut warnings = Vec::new();
    let result: Result<(u16, Value), ApiError> = match (&record.kind, name.as_deref()) {
        (RequestKind::Watch, _) => {
            return match filter() {
                Ok(filter) => watch_response(shared, k, filter, query, metadata_only),
                Err(e) => error_response(&e),
            };
        }
        (RequestKind::List, _) => filter().and_then(|filter| {
            let limit = param(query, "limit").and_then(|l| l.parse().ok());
            let mut list =
                shared.with_store(|s| s.list(k, &filter, limit, param(query, "continue")))?;
            if metadata_only {
                list["apiVersion"] = json!("meta.k8s.io/v1");
                list["kind"] = json!("PartialObjectMetadataList");
                if let Some(items) = list["items"].as_array_mut() {
                    items.iter_mut().for_each(|i| *i = as_metadata(i));
                }
            }
            Ok((200, list))
        }),
        (RequestKind::Get, Some(name)) => lock(&shared.store)
            .get_or_404(k, &ns, name)
            .map(|o| (200, view(o))),
        (RequestKind::Create, _) => parse_body().and_then(|body| {
            let (created, warned) = shared.write(|s| s.create(k, &ns, body, &opts));
            warnings = warned;
            Ok((201, view(created?)))
        }),
        (RequestKind::Update { .. }, Some(name)) => parse_body().and_then(|body| {
            let (updated, warned) = shared.write(|s| s.update(k, &ns, name, sub, body, &opts));
            warnings = warned;
            Ok((200, view(updated?)))
        }),
        (RequestKind::Patch { patch_type, .. }, Some(name)) => {
            let (patched, warned) =
                shared.write(|s| s.patch(k, &ns, name, sub, *patch_type, body, &opts));
            warnings = warned;
            patched.map(|(object, created)| (if created { 201 } else { 200 }, view(object)))
        }
        (RequestKind::Delete, Some(name)) => {
            let options = if body.is_empty() {
                Ok(json!({}))
            } else {
                parse_body()
            };
            options.and_then(|options| {
                // `DeleteOptions.dryRun` comes in the body as often as in the query.
                let dry_run = opts.dry_run
                    || options
                        .get("dryRun")
                        .and_then(Value::as_array)
                        .is_some_and(|d| d.iter().any(|v| v == "All"));
                shared
                    .with_store(|s| s.delete(k, &ns, name, &options, dry_run))
                    .map(|o| (200, view(o)))
            })
        }
        (RequestKind::DeleteCollection, None) if namespace.is_some() => filter().map(|filter| {
            let deleted = shared.with_store(|s| {
                let victims = s.select(k, &filter);
                for victim in &victims {
                    if let Some(name) = victim.pointer("/metadata/name").and_then(Value::as_str) {
                        // Each object is deleted as by DELETE; one failure does not stop the rest.
                        let _ = s.delete(k, &ns, name, &json!({}), opts.dry_run);
                    }
                }
                victims
            });
            let kind = lock(&shared.store).kinds[k].clone();
            (
                200,
                json!({
                    "apiVersion": kind.api_version(),
                    "kind": format!("{}List", kind.kind),
                    "metadata": {},
                    "items": deleted,
                }),
            )
        }),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )),
    };
    let mut response = match result {
        Ok((code, value)) => json_response(code, &value),
        Err(error) => error_response(&error),
    };
    for warning in warnings {
        // `299 - "<text>"`, the text quoted as `net/http.go` `NewWarningHeader` does.
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// State of one watch stream.
struct WatchState {
    shared: Arc<Shared>,
    kind: usize,
    filter: Filter,
    metadata_only: bool,
    /// Every event up to this version has been sent.
    cursor: u64,
    pending: std::collections::VecDeque<Bytes>,
    deadline: Instant,
    next_bookmark: Option<Instant>,
    bookmark_due: bool,
    changes: watch::Receiver<u64>,
    close: watch::Receiver<u64>,
    done: bool,
}

impl WatchState {
    fn push(&mut self, event: &Value) {
        let mut event = event.clone();
        if self.metadata_only
            && let Some(object) = event.get("object").filter(|o| o["kind"] != "Status")
        {
            event["object"] = as_metadata(object);
        }
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        self.pending.push_back(Bytes::from(line));
    }

    fn bookmark(&self, annotations: Value) -> Value {
        let (api_version, kind) = if self.metadata_only {
            (
                "meta.k8s.io/v1".to_owned(),
                "PartialObjectMetadata".to_owned(),
            )
        } else {
            let kind = lock(&self.shared.store).kinds[self.kind].clone();
            (kind.api_version(), kind.kind.to_string())
        };
        json!({
            "type": "BOOKMARK",
            "object": {
                "apiVersion": api_version,
                "kind": kind,
                "metadata": {"resourceVersion": self.cursor.to_string(), "annotations": annotations},
            },
        })
    }

    /// Produces the next chunk, waiting for changes, bookmarks, the timeout or a close.
    async fn next(mut self) -> Option<(Result<Frame<Bytes>, Infallible>, Self)> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some((Ok(Frame::data(chunk)), self));
            }
            if self.done {
                return None;
            }
            self.changes.borrow_and_update();
            let collected =
                lock(&self.shared.store).events_since(self.kind, &self.filter, self.cursor);
            match collected {
                Ok((events, cursor)) => {
                    self.cursor = cursor;
                    for event in &events {
                        self.push(event);
                    }
                }
                Err(gone) => {
                    self.push(&json!({"type": "ERROR", "object": gone.to_status()}));
                    self.done = true;
                    continue;
                }
            }
            if self.bookmark_due {
                self.bookmark_due = false;
                let bookmark = self.bookmark(json!({}));
                self.push(&bookmark);
            }
            if !self.pending.is_empty() {
                continue;
            }
            let next_bookmark = self.next_bookmark;
            let deadline = self.deadline;
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        self.done = true;
                    }
                }
                _ = tokio::time::sleep_until(next_bookmark.unwrap_or(deadline)), if next_bookmark.is_some() => {
                    self.bookmark_due = true;
                    self.next_bookmark = next_bookmark.map(|t| t + self.shared.bookmark_interval);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    // A last bookmark right before the deadline (cacher.go), so the client
                    // resumes from the latest version.
                    if self.next_bookmark.is_some() {
                        let bookmark = self.bookmark(json!({}));
                        self.push(&bookmark);
                    }
                    self.done = true;
                }
                _ = self.close.changed() => self.done = true,
            }
        }
    }
}

fn watch_response(
    shared: &Arc<Shared>,
    kind: usize,
    filter: Filter,
    query: &[(String, String)],
    metadata_only: bool,
) -> Response<Body> {
    let bookmarks = param(query, "allowWatchBookmarks") == Some("true");
    let initial_events = param(query, "sendInitialEvents") == Some("true");
    let timeout = param(query, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let requested = param(query, "resourceVersion").unwrap_or("0");
    let mut close = shared.close_watches.subscribe();
    close.borrow_and_update();
    let mut state = WatchState {
        shared: shared.clone(),
        kind,
        filter,
        metadata_only,
        cursor: 0,
        pending: Default::default(),
        deadline: Instant::now() + Duration::from_secs(timeout),
        next_bookmark: bookmarks.then(|| Instant::now() + shared.bookmark_interval),
        bookmark_due: false,
        changes: shared.changes.subscribe(),
        close,
        done: false,
    };
    // Version "0" (or none) and sendInitialEvents start from the current state, sent as
    // ADDED events; any other version replays the history after it.
    if initial_events || requested == "0" {
        let (objects, rv) = {
            let store = lock(&shared.store);
            (store.select(kind, &state.filter), store.resource_version())
        };
        for object in objects {
            state.push(&json!({"type": "ADDED", "object": object}));
        }
        state.cursor = rv;
        if initial_events && bookmarks {
            let bookmark = state.bookmark(json!({"k8s.io/initial-events-end": "true"}));
            state.push(&bookmark);
        }
    } else {
        match requested.parse::<u64>() {
            Ok(rv) => state.cursor = rv,
            Err(_) => {
                let error = ApiError::new(
                    400,
                    "BadRequest",
                    format!("invalid resource version: {requested}"),
                );
                return error_response(&error);
            }
        }
    }
    let stream = futures::stream::unfold(state, WatchState::next).boxed();
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
