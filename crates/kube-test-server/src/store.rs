//! The object store behind the test API server: objects as JSON, one global
//! resourceVersion counter, the watch history, and the write rules of the API server
//! (status subresource, generation, finalizers, preconditions, field ownership).
//!
//! Everything here is synchronous and runs under the server's mutex; the HTTP layer in
//! `server.rs` only parses requests and renders results.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::errors::{ApiError, BadValue, FieldError};
use super::fields::{AllAtomic, ListTypes, apply_merge, merge_patch};
use super::json::{name_suffix, new_uid, now_rfc3339};
use super::kinds::{NAMESPACES, ResourceKind};
pub use super::managed::Subresource;
use super::managed::{self, Ownership, Writer};
use super::schema::{Schema, Scope};
use super::selector::{FieldSelector, LabelSelector};
use super::validation::{self, NameRule};

/// The patch formats of `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`, handled as a merge patch (the lists of the
    /// built-in kinds served here have no merge keys that matter); refused for custom
    /// resources with 415, as the API server does.
    Strategic,
    /// `application/json-patch+json` (RFC 6902): not emulated, answered with 415.
    Json,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
    /// Any other content type (answered with 415).
    Unknown,
}

/// Options of a write request.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Field manager: the `fieldManager` parameter, else derived from the User-Agent.
    pub manager: String,
    /// Whether `fieldManager` was given explicitly (server-side apply requires it).
    pub manager_given: bool,
    /// `force=true`: take ownership of conflicting fields (server-side apply).
    pub force: bool,
    /// `dryRun=All`: validate and compute, but store nothing.
    pub dry_run: bool,
    /// What to do with fields the schema does not know (`fieldValidation`).
    pub field_validation: FieldValidation,
}

/// The `fieldValidation` parameter of a write (`apiserver/pkg/endpoints/handlers/rest.go`):
/// `Warn` when absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields are dropped silently.
    Ignore,
    /// Unknown fields are dropped, each with a warning.
    #[default]
    Warn,
    /// Unknown fields fail the request with 400 BadRequest.
    Strict,
}

impl FieldValidation {
    /// The parameter's value (anything but `Ignore` and `Strict` is `Warn`).
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            _ => FieldValidation::Warn,
        }
    }
}

impl WriteOptions {
    fn writer(&self) -> Writer {
        Writer {
            manager: self.manager.clone(),
            force: self.force,
        }
    }
}

/// Watch event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `ADDED`.
    Added,
    /// `MODIFIED`.
    Modified,
    /// `DELETED`.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// How much watch history each kind keeps, as kube-apiserver's watch cache does
/// (`apiserver/pkg/storage/cacher/watch_cache.go`: a ring buffer of at least 100 events that
/// grows while its oldest event is younger than the 75 s `eventFreshDuration`, up to
/// 100 × 1024 events, and otherwise drops its oldest events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Events younger than this are kept (up to `max_events`).
    pub window: Duration,
    /// This many of the latest events are kept whatever their age.
    pub min_events: usize,
    /// Never more events than this.
    pub max_events: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            window: Duration::from_secs(75),
            min_events: 100,
            max_events: 100 * 1024,
        }
    }
}

/// The watch history of one kind.
#[derive(Debug, Default)]
struct History {
    events: VecDeque<HistoryEvent>,
    /// Every version up to and including this one may have lost events: watches from an
    /// older version get 410 Expired.
    compacted: u64,
}

impl History {
    fn trim(&mut self, limits: &HistoryLimits, now: Instant) {
        let mut trimmed = false;
        while let Some(oldest) = self.events.front() {
            let over_max = self.events.len() > limits.max_events;
            let stale = self.events.len() > limits.min_events
                && now.duration_since(oldest.at) > limits.window;
            if !(over_max || stale) {
                break;
            }
            self.compacted = self.compacted.max(oldest.rv);
            self.events.pop_front();
            trimmed = true;
        }
        // Once events were dropped, the watch cache serves only versions from the oldest kept
        // one minus one (`getAllEventsSinceLocked`: `resourceVersion < oldest-1` expires).
        if trimmed && let Some(front) = self.events.front() {
            self.compacted = self.compacted.max(front.rv - 1);
        }
    }
}

/// One change in the watch history.
#[derive(Clone, Debug)]
struct HistoryEvent {
    rv: u64,
    /// When it happened.
    at: Instant,
    namespace: String,
    event: EventType,
    /// The object after the change (for DELETED, its last state at the deletion's version).
    object: Value,
    /// The object before the change, for selector transitions.
    previous: Option<Value>,
}

/// Which objects a list or watch selects.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `None` for all namespaces.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
}

impl Filter {
    fn matches(&self, namespace: &str, object: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|ns| ns == namespace)
            && self.labels.matches(object)
            && self.fields.matches(object)
    }
}

/// Metadata fields only the server sets; writes to them are ignored.
const SERVER_METADATA: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
];

/// The object without the parts whose changes do not move `metadata.generation`.
fn generation_relevant(kind: &ResourceKind, object: &Value) -> Value {
    let mut rest = object.clone();
    if let Some(map) = rest.as_object_mut() {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
        if kind.status_subresource {
            map.remove("status");
        }
    }
    rest
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata") {
        Some(Value::Object(map)) => map,
        // Unreachable: the metadata object was inserted above.
        _ => unreachable!("metadata is an object"),
    }
}

fn finalizers_empty(object: &Value) -> bool {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

/// The message of a 410 for a `continue` token whose snapshot was compacted away, which
/// carries a fresh token continuing at the latest version
/// (`apiserver/pkg/storage/etcd3/errors.go`, `handleCompactedErrorForPaging`).
const CONTINUE_INCONSISTENT: &str = "The provided continue parameter is too old to display a \
     consistent list result. You can start a new list without the continue parameter, or use the \
     continue token in this response to retrieve the remainder of the results. Continuing with \
     the provided token results in an inconsistent list - objects that were created, modified, \
     or deleted between the time the first chunk was returned and now may show up in the list.";

type Key = (usize, String, String);

/// The etcd key kube-apiserver stores an object under (default prefix `/registry`): custom
/// resources under their group, built-in kinds under their resource alone.
fn etcd_key(kind: &ResourceKind, namespace: &str, name: &str) -> String {
    let resource = if kind.custom {
        format!("{}/{}", kind.group, kind.plural)
    } else {
        kind.plural.to_string()
    };
    if kind.namespaced {
        format!("/registry/{resource}/{namespace}/{name}")
    } else {
        format!("/registry/{resource}/{name}")
    }
}

/// The kind-specific rules of a kind's writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checks {
    /// Metadata only.
    Plain,
    /// Core `v1` Secrets: `stringData` merged into `data`, keys and size checked.
    Secret,
    /// `events.k8s.io/v1` Events.
    Event,
    /// `coordination.k8s.io/v1` Leases.
    Lease,
    /// Core `v1` Namespaces (names are DNS labels).
    Namespace,
}

impl Checks {
    fn of(kind: &ResourceKind) -> Checks {
        match (&*kind.group, &*kind.plural) {
            ("", "secrets") => Checks::Secret,
            ("events.k8s.io", "events") => Checks::Event,
            ("coordination.k8s.io", "leases") => Checks::Lease,
            ("", "namespaces") => Checks::Namespace,
            _ => Checks::Plain,
        }
    }
}

/// Merges a Secret's write-only `stringData` into `data` (base64), as the API server does
/// on every write (`pkg/apis/core/v1/conversion.go`).
fn string_data_into_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(map) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(data) = data.as_object_mut() {
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            data.insert(
                key,
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

/// The store: objects, the resourceVersion counter and the watch history.
#[derive(Debug)]
pub struct Store {
    /// The resource table.
    pub kinds: Vec<ResourceKind>,
    /// The schema of each custom kind, from its CRD.
    schemas: Vec<Option<Arc<Schema>>>,
    /// Warnings for the request being served (`Warning: 299` headers).
    warnings: Vec<String>,
    objects: BTreeMap<Key, Value>,
    rv: u64,
    /// One history per kind, as kube-apiserver keeps one watch cache per resource.
    histories: Vec<History>,
    limits: HistoryLimits,
    /// The revision of the last (emulated) etcd compaction: continue tokens of lists read
    /// before it have expired.
    etcd_compacted: u64,
    /// Consistent list snapshots being paged through: kind, version, items.
    snapshots: HashMap<u64, (usize, u64, Vec<Value>)>,
    next_snapshot: u64,
}

impl Store {
    /// An empty store serving `kinds`, keeping watch history within `limits`.
    /// resourceVersions start from a random base, so that nothing can rely on their values:
    /// clients must treat them as opaque strings.
    pub fn new(kinds: Vec<(ResourceKind, Option<Arc<Schema>>)>, limits: HistoryLimits) -> Self {
        let histories = kinds.iter().map(|_| History::default()).collect();
        let (kinds, schemas) = kinds.into_iter().unzip();
        Store {
            kinds,
            schemas,
            warnings: Vec::new(),
            objects: BTreeMap::new(),
            rv: rand::random_range(1_000_000..1_000_000_000),
            histories,
            limits,
            etcd_compacted: 0,
            snapshots: HashMap::new(),
            next_snapshot: 1,
        }
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The index of a kind in the table.
    pub fn kind_index(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        self.kinds
            .iter()
            .position(|k| k.group == group && k.version == version && k.plural == plural)
    }

    fn key(&self, k: usize, namespace: &str, name: &str) -> Key {
        let ns = if self.kinds[k].namespaced {
            namespace
        } else {
            ""
        };
        (k, ns.to_owned(), name.to_owned())
    }

    /// One object.
    pub fn get(&self, k: usize, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&self.key(k, namespace, name))
    }

    /// Like [`Store::get`], with a NotFound error.
    pub fn get_or_404(&self, k: usize, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.get(k, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&self.kinds[k], name))
    }

    /// Objects of a kind matching `filter`, ordered by namespace and name.
    pub fn select(&self, k: usize, filter: &Filter) -> Vec<Value> {
        self.objects
            .range((k, String::new(), String::new())..)
            .take_while(|((kind, _, _), _)| *kind == k)
            .filter(|((_, ns, _), obj)| filter.matches(ns, obj))
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    /// A list response: a consistent snapshot served in pages of `limit` items, resumed
    /// with the `continue` token of the previous page.
    pub fn list(
        &mut self,
        k: usize,
        filter: &Filter,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Value, ApiError> {
        let (id, offset) = match continue_token {
            Some(token) => {
                let parsed = token.split_once(':').and_then(|(id, offset)| {
                    Some((id.parse::<u64>().ok()?, offset.parse::<usize>().ok()?))
                });
                match parsed.and_then(|(id, offset)| Some((id, offset, self.snapshots.get(&id)?))) {
                    Some((_, _, (kind, _, _))) if *kind != k => {
                        return Err(ApiError::bad_request("invalid continue token"));
                    }
                    Some((id, offset, (_, rv, items))) if *rv < self.etcd_compacted => {
                        // etcd compacted the revision the snapshot was read at: the answer
                        // carries a token for the rest of the list at the latest version.
                        let key_of = |o: &Value| {
                            (
                                meta_str(o, "namespace").unwrap_or("").to_owned(),
                                meta_str(o, "name").unwrap_or("").to_owned(),
                            )
                        };
                        let last = offset.checked_sub(1).and_then(|i| items.get(i)).map(key_of);
                        let rest: Vec<Value> = self
                            .select(k, filter)
                            .into_iter()
                            .filter(|o| last.as_ref().is_none_or(|l| key_of(o) > *l))
                            .collect();
                        self.snapshots.remove(&id);
                        let fresh = self.next_snapshot;
                        self.next_snapshot += 1;
                        self.snapshots.insert(fresh, (k, self.rv, rest));
                        let mut error = ApiError::expired(CONTINUE_INCONSISTENT);
                        error.continue_token = Some(format!("{fresh}:0"));
                        return Err(error);
                    }
                    Some((id, offset, _)) => (id, offset),
                    None => return Err(ApiError::bad_request("invalid continue token")),
                }
            }
            None => {
                let id = self.next_snapshot;
                self.next_snapshot += 1;
                self.snapshots
                    .insert(id, (k, self.rv, self.select(k, filter)));
                (id, 0)
            }
        };
        let (_, rv, items) = self
            .snapshots
            .get(&id)
            .cloned()
            .unwrap_or((k, self.rv, Vec::new()));
        let end = limit
            .filter(|l| *l > 0)
            .map_or(items.len(), |l| (offset + l).min(items.len()));
        let page: Vec<Value> = items.get(offset..end).unwrap_or_default().to_vec();
        let kind = &self.kinds[k];
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if end < items.len() {
            metadata["continue"] = json!(format!("{id}:{end}"));
            metadata["remainingItemCount"] = json!(items.len() - end);
        } else {
            self.snapshots.remove(&id);
        }
        Ok(json!({
            "apiVersion": kind.api_version(),
            "kind": format!("{}List", kind.kind),
            "metadata": metadata,
            "items": page,
        }))
    }

    /// Records a change: bumps the resourceVersion, stores (or removes) the object and
    /// appends the watch event. Returns the stored object.
    fn commit(
        &mut self,
        k: usize,
        event: EventType,
        mut object: Value,
        previous: Option<Value>,
    ) -> Value {
        self.rv += 1;
        meta_mut(&mut object).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let namespace = meta_str(&object, "namespace").unwrap_or("").to_owned();
        let name = meta_str(&object, "name").unwrap_or("").to_owned();
        let key = self.key(k, &namespace, &name);
        if event == EventType::Deleted {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key, object.clone());
        }
        let now = Instant::now();
        let history = &mut self.histories[k];
        history.events.push_back(HistoryEvent {
            rv: self.rv,
            at: now,
            namespace,
            event,
            object: object.clone(),
            previous,
        });
        history.trim(&self.limits, now);
        object
    }

    /// Changes how much watch history is kept; older versions become too old to watch from.
    pub fn set_history_limits(&mut self, limits: HistoryLimits) {
        self.limits = limits;
        let now = Instant::now();
        for history in &mut self.histories {
            history.trim(&limits, now);
        }
    }

    /// The current history limits.
    pub fn history_limits(&self) -> HistoryLimits {
        self.limits
    }

    /// Forgets the whole watch history, as an etcd compaction does: every resourceVersion
    /// issued so far becomes too old to watch from (410 Expired), and continue tokens of
    /// lists read before expire. The counter moves on by one so that a fresh list returns
    /// a version that can be watched.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.etcd_compacted = self.rv;
        for history in &mut self.histories {
            history.compacted = self.rv;
            history.events.clear();
        }
    }

    /// Watch events of kind `k` after version `since` that `filter` selects, as watch-event
    /// JSON, and the version the watch has reached. `Err` when `since` is too old.
    pub fn events_since(
        &self,
        k: usize,
        filter: &Filter,
        since: u64,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        let history = &self.histories[k];
        if since < history.compacted {
            let message = format!("too old resource version: {since} ({})", history.compacted);
            return Err(ApiError::expired(message));
        }
        let start = history.events.partition_point(|e| e.rv <= since);
        let mut events = Vec::new();
        for e in history.events.range(start..) {
            let now = filter.matches(&e.namespace, &e.object) && e.event != EventType::Deleted;
            let before = e
                .previous
                .as_ref()
                .is_some_and(|p| filter.matches(&e.namespace, p));
            let event = match (before, now) {
                (false, true) => EventType::Added,
                (true, true) => EventType::Modified,
                (true, false) => EventType::Deleted,
                (false, false) => continue,
            };
            let object = if event == EventType::Deleted && e.event != EventType::Deleted {
                // The object left the selection: report its previous state at this version.
                let mut last = e.previous.clone().unwrap_or_default();
                meta_mut(&mut last).insert("resourceVersion".into(), json!(e.rv.to_string()));
                last
            } else {
                e.object.clone()
            };
            events.push(json!({"type": event.as_str(), "object": object}));
        }
        Ok((events, self.rv.max(since)))
    }

    /// Checks a body against the kind and fills in `apiVersion`, `kind`, the namespace
    /// and a generated name.
    fn prepare_new(&self, k: usize, namespace: &str, body: &mut Value) -> Result<(), ApiError> {
        let kind = &self.kinds[k];
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        for (field, expected) in [
            ("apiVersion", kind.api_version()),
            ("kind", kind.kind.to_string()),
        ] {
            match body.get(field).and_then(Value::as_str) {
                Some(found) if found != expected => {
                    return Err(ApiError::bad_request(format!(
                        "{field} {found:?} does not match the resource (expected {expected:?})"
                    )));
                }
                _ => body[field] = json!(expected),
            }
        }
        let meta = meta_mut(body);
        if kind.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() && ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(namespace));
                }
            }
        } else {
            meta.remove("namespace");
        }
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            let Some(prefix) = meta.get("generateName").and_then(Value::as_str) else {
                return Err(ApiError::invalid_object(
                    kind,
                    "",
                    &[FieldError::required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            };
            let prefix = prefix.to_owned();
            let name = loop {
                let candidate = format!("{prefix}{}", name_suffix());
                if self.get(k, namespace, &candidate).is_none() {
                    break candidate;
                }
            };
            meta.insert("name".into(), json!(name));
        }
        Ok(())
    }

    /// POST: creates an object (`Ownership::Apply` when server-side apply creates it).
    fn create_with(
        &mut self,
        k: usize,
        namespace: &str,
        mut body: Value,
        opts: &WriteOptions,
        ownership: Ownership<'_>,
    ) -> Result<Value, ApiError> {
        self.prepare_new(k, namespace, &mut body)?;
        let kind = self.kinds[k].clone();
        let name = meta_str(&body, "name").unwrap_or("").to_owned();
        self.admit_namespace(k, namespace, &name)?;
        // PrepareForCreate: status and server-set metadata are not the client's to set.
        if kind.status_subresource
            && let Some(map) = body.as_object_mut()
        {
            map.remove("status");
        }
        let meta = meta_mut(&mut body);
        for field in SERVER_METADATA {
            if field != "name" && field != "namespace" {
                meta.remove(field);
            }
        }
        self.admit(k, &mut body, None, Subresource::Main, opts)?;
        if self.get(k, namespace, &name).is_some() {
            return Err(ApiError::already_exists(&kind, &name));
        }
        let meta = meta_mut(&mut body);
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if kind.generation {
            meta.insert("generation".into(), json!(1));
        }
        let managers = managed::on_create(
            &body,
            ownership,
            &opts.writer(),
            &kind,
            self.list_types(k),
            &now_rfc3339(),
        );
        managed::write(&mut body, &managers);
        if opts.dry_run {
            return Ok(body);
        }
        Ok(self.commit(k, EventType::Added, body, None))
    }

    /// The NamespaceLifecycle admission plugin: objects are created only in namespaces that
    /// exist and are not being deleted
    /// (`apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go`).
    /// `name` is the name of the object being created. A refusal is `admission.NewForbidden`
    /// with the `NamespaceTerminating` cause the plugin adds.
    fn admit_namespace(&self, k: usize, namespace: &str, name: &str) -> Result<(), ApiError> {
        if !self.kinds[k].namespaced {
            return Ok(());
        }
        let Some(ns) = self.namespace_index() else {
            return Ok(());
        };
        match self.get(ns, "", namespace) {
            None => Err(ApiError::not_found(&NAMESPACES, namespace)),
            Some(object) if object.pointer("/metadata/deletionTimestamp").is_some() => {
                let kind = &self.kinds[k];
                let mut error = ApiError::forbidden(
                    &kind.group,
                    &kind.plural,
                    name,
                    &format!(
                        "unable to create new content in namespace {namespace} because it is \
                         being terminated"
                    ),
                );
                if let Some(details) = error.details.as_mut() {
                    details["causes"] = json!([{
                        "reason": "NamespaceTerminating",
                        "message": format!("namespace {namespace} is being terminated"),
                        "field": "metadata.namespace",
                    }]);
                }
                Err(error)
            }
            Some(_) => Ok(()),
        }
    }

    /// How the lists of kind `k` merge.
    fn list_types(&self, k: usize) -> &dyn ListTypes {
        match &self.schemas[k] {
            Some(schema) => schema.as_ref(),
            None => &AllAtomic,
        }
    }

    /// The warnings of the request just served, for its `Warning` headers.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn namespace_index(&self) -> Option<usize> {
        self.kind_index(&NAMESPACES.group, &NAMESPACES.version, &NAMESPACES.plural)
    }

    /// What the API server does to a write between decoding and storage: the kind's own
    /// normalisation, then validation. `old` is the stored object on update.
    fn admit(
        &mut self,
        k: usize,
        new: &mut Value,
        old: Option<&Value>,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<(), ApiError> {
        let kind = self.kinds[k].clone();
        let name = meta_str(new, "name").unwrap_or("").to_owned();
        let checks = Checks::of(&kind);
        if checks == Checks::Secret {
            string_data_into_data(new);
        }
        let names = if checks == Checks::Namespace {
            NameRule::Label
        } else {
            NameRule::Subdomain
        };
        let mut errors = validation::object_meta(new, kind.namespaced, names);
        if let Some(old) = old {
            errors.extend(validation::object_meta_update(new, old));
        }
        match checks {
            Checks::Secret => errors.extend(validation::secret(new, old)),
            Checks::Event if old.is_none() => errors.extend(validation::event(new)),
            Checks::Lease => errors.extend(validation::lease(new)),
            _ => {}
        }
        if let Some(schema) = self.schemas[k].clone() {
            let unknown = schema.prune(new);
            if !unknown.is_empty() {
                match opts.field_validation {
                    FieldValidation::Strict => {
                        let listed: Vec<String> = unknown
                            .iter()
                            .map(|f| format!("unknown field \"{f}\""))
                            .collect();
                        return Err(ApiError::bad_request(format!(
                            "{} in version \"{}\" cannot be handled as a {}: strict decoding \
                             error: {}",
                            kind.kind,
                            kind.version,
                            kind.kind,
                            listed.join(", ")
                        )));
                    }
                    FieldValidation::Warn => self
                        .warnings
                        .extend(unknown.iter().map(|f| format!("unknown field \"{f}\""))),
                    FieldValidation::Ignore => {}
                }
            }
            schema.apply_defaults(new);
            let scope = match sub {
                Subresource::Main => Scope::Object,
                Subresource::Status => Scope::Status,
            };
            let checked = schema.check(new, old, scope, &errors);
            errors.extend(checked.errors);
            self.warnings.extend(checked.warnings);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_object(&kind, &name, &errors))
        }
    }

    /// POST.
    pub fn create(
        &mut self,
        k: usize,
        namespace: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.create_with(k, namespace, body, opts, Ownership::Update)
    }

    /// Checks a `metadata.resourceVersion` precondition carried by a request body.
    fn check_precondition(
        &self,
        k: usize,
        current: &Value,
        body: &Value,
        required: bool,
    ) -> Result<(), ApiError> {
        let kind = &self.kinds[k];
        let name = meta_str(current, "name").unwrap_or("");
        match meta_str(body, "resourceVersion").filter(|rv| !rv.is_empty()) {
            Some(rv) if Some(rv) != meta_str(current, "resourceVersion") => {
                Err(ApiError::conflict(kind, name))
            }
            None if required => Err(ApiError::invalid(
                &kind.group,
                &kind.plural,
                name,
                &[FieldError::invalid(
                    "metadata.resourceVersion",
                    BadValue::Raw("0x0".into()),
                    "must be specified for an update",
                )],
            )),
            _ => Ok(()),
        }
    }

    /// PUT, to the object or its `/status`.
    pub fn update(
        &mut self,
        k: usize,
        namespace: &str,
        name: &str,
        sub: Subresource,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let kind = self.kinds[k].clone();
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        if let Some(body_name) = meta_str(&body, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let old = self.get_or_404(k, namespace, name)?;
        self.check_precondition(k, &old, &body, !kind.unconditional_update)?;
        self.finish_update(k, old, body, sub, opts, Ownership::Update)
    }

    /// PATCH, to the object or its `/status`. Server-side apply creates a missing object
    /// (answered with 201); the flag says whether it did.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        k: usize,
        namespace: &str,
        name: &str,
        sub: Subresource,
        patch_type: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let kind = self.kinds[k].clone();
        let unsupported = || {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: \
                 application/merge-patch+json, application/apply-patch+yaml",
            )
        };
        match patch_type {
            PatchType::Merge | PatchType::Strategic => {
                if patch_type == PatchType::Strategic && kind.custom {
                    return Err(unsupported());
                }
                let patch: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch body: {e}")))?;
                if !patch.is_object() {
                    return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                }
                let old = self.get_or_404(k, namespace, name)?;
                self.check_precondition(k, &old, &patch, false)?;
                let mut candidate = old.clone();
                merge_patch(&mut candidate, &patch);
                let object = self.finish_update(k, old, candidate, sub, opts, Ownership::Update)?;
                Ok((object, false))
            }
            PatchType::Apply => self.apply(k, namespace, name, sub, body, opts),
            PatchType::Json | PatchType::Unknown => Err(unsupported()),
        }
    }

    /// Server-side apply: the applied configuration is merged into the object; fields this
    /// manager applied before and omits now are removed unless another manager owns them;
    /// a field another manager owns with a different value is a conflict unless `force`.
    fn apply(
        &mut self,
        k: usize,
        namespace: &str,
        name: &str,
        sub: Subresource,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let kind = self.kinds[k].clone();
        if !opts.manager_given {
            // `ValidatePatchOptions`, answered with `NewInvalid` by the patch handler.
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                &[FieldError::required(
                    "fieldManager",
                    "is required for apply patch",
                )],
            ));
        }
        let applied: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(_) => serde_yaml::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid apply body: {e}")))?,
        };
        if !applied.is_object() {
            return Err(ApiError::bad_request(
                "the applied configuration must be an object",
            ));
        }
        for (field, expected) in [
            ("apiVersion", kind.api_version()),
            ("kind", kind.kind.to_string()),
        ] {
            if applied.get(field).and_then(Value::as_str) != Some(expected.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "{field} must be set to {expected:?} in an applied configuration"
                )));
            }
        }
        if meta_str(&applied, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object does not match the name on the URL ({name})"
            )));
        }
        // The configuration restricted to what this endpoint may set.
        let scoped = managed::scope(&applied, &kind, sub, self.list_types(k));
        let Some(old) = self.get(k, namespace, name).cloned() else {
            if sub == Subresource::Status {
                return Err(ApiError::not_found(&kind, name));
            }
            let mut body = scoped.clone();
            body["apiVersion"] = json!(kind.api_version());
            body["kind"] = json!(kind.kind);
            meta_mut(&mut body).insert("name".into(), json!(name));
            let created = self.create_with(k, namespace, body, opts, Ownership::Apply(&scoped))?;
            return Ok((created, true));
        };
        self.check_precondition(k, &old, &applied, false)?;
        let mut candidate = old.clone();
        apply_merge(&mut candidate, &scoped, self.list_types(k));
        let object = self.finish_update(k, old, candidate, sub, opts, Ownership::Apply(&scoped))?;
        Ok((object, false))
    }

    /// The common end of every update: keeps server-owned fields, isolates status, moves
    /// field ownership, bumps generation, skips no-op writes, stores the result, and
    /// completes a pending deletion whose last finalizer is gone.
    fn finish_update(
        &mut self,
        k: usize,
        old: Value,
        candidate: Value,
        sub: Subresource,
        opts: &WriteOptions,
        ownership: Ownership<'_>,
    ) -> Result<Value, ApiError> {
        let kind = self.kinds[k].clone();
        let mut new = match sub {
            Subresource::Status => {
                let mut new = old.clone();
                match candidate.get("status").filter(|s| !s.is_null()) {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
                new
            }
            Subresource::Main => {
                let mut new = candidate;
                if !new.is_object() {
                    return Err(ApiError::bad_request("the object must be a JSON object"));
                }
                new["apiVersion"] = old["apiVersion"].clone();
                new["kind"] = old["kind"].clone();
                let old_meta = old.get("metadata").cloned().unwrap_or_default();
                let meta = meta_mut(&mut new);
                for field in SERVER_METADATA {
                    match old_meta.get(field) {
                        Some(value) => meta.insert(field.into(), value.clone()),
                        None => meta.remove(field),
                    };
                }
                if kind.status_subresource {
                    match old.get("status") {
                        Some(status) => new["status"] = status.clone(),
                        None => {
                            if let Some(map) = new.as_object_mut() {
                                map.remove("status");
                            }
                        }
                    }
                }
                new
            }
        };

        self.admit(k, &mut new, Some(&old), sub, opts)?;

        let settled = managed::settle(
            &old,
            &mut new,
            ownership,
            &opts.writer(),
            &kind,
            sub,
            self.list_types(k),
        )?;

        if kind.generation && generation_relevant(&kind, &old) != generation_relevant(&kind, &new) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }

        // A write that changes nothing (timestamps of managedFields aside) is not stored.
        let strip = |v: &Value| {
            let mut v = v.clone();
            meta_mut(&mut v).remove("managedFields");
            v
        };
        if settled.unchanged && strip(&old) == strip(&new) {
            return Ok(old);
        }
        managed::stamp(
            &mut new,
            settled.managers,
            &opts.writer(),
            ownership,
            sub,
            &now_rfc3339(),
        );
        if opts.dry_run {
            return Ok(new);
        }
        let stored = self.commit(k, EventType::Modified, new, Some(old));
        if stored.pointer("/metadata/deletionTimestamp").is_some() && finalizers_empty(&stored) {
            self.commit(k, EventType::Deleted, stored.clone(), Some(stored.clone()));
            self.reap_namespace(meta_str(&stored, "namespace").unwrap_or(""));
        }
        Ok(stored)
    }

    /// DELETE: with finalizers, marks the object (`deletionTimestamp`) and keeps it;
    /// without, removes it. Returns the marked object, or a success `Status`.
    pub fn delete(
        &mut self,
        k: usize,
        namespace: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let kind = self.kinds[k].clone();
        let old = self.get_or_404(k, namespace, name)?;
        let preconditions = options.get("preconditions");
        for (field, actual) in [
            ("uid", meta_str(&old, "uid")),
            ("resourceVersion", meta_str(&old, "resourceVersion")),
        ] {
            if let Some(wanted) = preconditions
                .and_then(|p| p.get(field))
                .and_then(Value::as_str)
                && Some(wanted) != actual
            {
                // `storage.Preconditions.Check` fails with an invalid-object StorageError
                // naming the etcd key, which `InterpretDeleteError` turns into a Conflict.
                let label = if field == "uid" {
                    "UID"
                } else {
                    "ResourceVersion"
                };
                let message = format!(
                    "Operation cannot be fulfilled on {} \"{name}\": StorageError: invalid \
                     object, Code: 4, Key: {}, ResourceVersion: 0, AdditionalErrorMsg: \
                     Precondition failed: {label} in precondition: {wanted}, {label} in object \
                     meta: {}",
                    kind.qualified(),
                    etcd_key(&kind, namespace, name),
                    actual.unwrap_or("")
                );
                return Err(ApiError::new(409, "Conflict", message).about(&kind, name));
            }
        }
        if Checks::of(&kind) == Checks::Namespace {
            return self.delete_namespace(k, old, dry_run);
        }
        if !finalizers_empty(&old) {
            if old.pointer("/metadata/deletionTimestamp").is_some() || dry_run {
                return Ok(old);
            }
            let mut marked = old.clone();
            let generation = marked
                .pointer("/metadata/generation")
                .and_then(Value::as_i64);
            let meta = meta_mut(&mut marked);
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if let Some(generation) = generation {
                meta.insert("generation".into(), json!(generation + 1));
            }
            return Ok(self.commit(k, EventType::Modified, marked, Some(old)));
        }
        if !dry_run {
            self.commit(k, EventType::Deleted, old.clone(), Some(old.clone()));
            self.reap_namespace(namespace);
        }
        Ok(json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": name,
                "group": kind.group,
                "kind": kind.plural,
                "uid": meta_str(&old, "uid"),
            },
        }))
    }

    /// Deleting a namespace, as the API server and the namespace controller do it together:
    /// the namespace turns `Terminating`, everything in it is deleted (objects with
    /// finalizers stay until those are removed), and the namespace goes once it is empty.
    fn delete_namespace(&mut self, k: usize, old: Value, dry_run: bool) -> Result<Value, ApiError> {
        let name = meta_str(&old, "name").unwrap_or("").to_owned();
        if dry_run || old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(old);
        }
        let mut marked = old.clone();
        meta_mut(&mut marked).insert("deletionTimestamp".into(), json!(now_rfc3339()));
        marked["status"] = json!({"phase": "Terminating"});
        let marked = self.commit(k, EventType::Modified, marked, Some(old));
        let contents: Vec<(usize, String)> = self
            .objects
            .keys()
            .filter(|(kind, ns, _)| self.kinds[*kind].namespaced && *ns == name)
            .map(|(kind, _, object)| (*kind, object.clone()))
            .collect();
        for (kind, object) in contents {
            // Each object goes as by DELETE; one failure does not stop the rest.
            let _ = self.delete(kind, &name, &object, &json!({}), false);
        }
        self.reap_namespace(&name);
        Ok(marked)
    }

    /// Removes a terminating namespace once nothing is left in it.
    fn reap_namespace(&mut self, namespace: &str) {
        let Some(ns) = self.namespace_index() else {
            return;
        };
        let Some(object) = self.get(ns, "", namespace).cloned() else {
            return;
        };
        let empty = !self
            .objects
            .keys()
            .any(|(kind, n, _)| self.kinds[*kind].namespaced && n == namespace);
        if object.pointer("/metadata/deletionTimestamp").is_some() && empty {
            self.commit(ns, EventType::Deleted, object.clone(), Some(object));
        }
    }

    /// Stores an object as given (status and managed fields included), creating or
    /// replacing it: the test's backdoor for setting up state. Server-owned metadata is
    /// kept or generated; generation and resourceVersion follow the usual rules. With
    /// `checked`, the object must pass the namespace and validation rules of a write;
    /// without, it is stored even where a real API server would refuse it.
    pub fn put(&mut self, k: usize, mut object: Value, checked: bool) -> Result<Value, ApiError> {
        let kind = self.kinds[k].clone();
        let namespace = meta_str(&object, "namespace")
            .unwrap_or("default")
            .to_owned();
        self.prepare_new(k, &namespace, &mut object)?;
        let name = meta_str(&object, "name").unwrap_or("").to_owned();
        let existing = self.get(k, &namespace, &name).cloned();
        if checked {
            if existing.is_none() {
                self.admit_namespace(k, &namespace, &name)?;
            }
            let opts = WriteOptions {
                manager: "test".into(),
                manager_given: true,
                force: false,
                dry_run: false,
                field_validation: FieldValidation::Warn,
            };
            self.admit(k, &mut object, existing.as_ref(), Subresource::Main, &opts)?;
        } else if let Some(schema) = &self.schemas[k] {
            // The API server applies the schema's defaults whenever it reads an object from
            // storage; applying them once here serves every reader the same object.
            schema.apply_defaults(&mut object);
        }
        let Some(old) = existing else {
            let meta = meta_mut(&mut object);
            meta.entry("uid").or_insert_with(|| json!(new_uid()));
            meta.entry("creationTimestamp")
                .or_insert_with(|| json!(now_rfc3339()));
            if kind.generation {
                meta.entry("generation").or_insert(json!(1));
            }
            return Ok(self.commit(k, EventType::Added, object, None));
        };
        let old_meta = old.get("metadata").cloned().unwrap_or_default();
        let meta = meta_mut(&mut object);
        for field in ["uid", "creationTimestamp", "generation", "managedFields"] {
            if let Some(value) = old_meta.get(field) {
                meta.entry(field).or_insert(value.clone());
            }
        }
        if kind.generation
            && generation_relevant(&kind, &old) != generation_relevant(&kind, &object)
        {
            let generation = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut object).insert("generation".into(), json!(generation + 1));
        }
        meta_mut(&mut object).insert(
            "resourceVersion".into(),
            old_meta["resourceVersion"].clone(),
        );
        if object == old {
            return Ok(old);
        }
        Ok(self.commit(k, EventType::Modified, object, Some(old)))
    }
}
