//! The object store behind the test API server: objects as JSON, one global
//! resourceVersion counter, the watch history, and the write rules of the API server
//! (status subresource, generation, finalizers, preconditions, field ownership).
//!
//! Everything here is synchronous and runs under the server's mutex; the HTTP layer in
//! `server.rs` only parses requests and renders results.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde_json::{Map, Value, json};

use super::errors::{ApiError, BadValue, FieldError};
use super::json::{
    FieldPath, changed_paths, from_fields_v1, get_path, leaf_paths, merge_patch, name_suffix,
    new_uid, now_rfc3339, overlaps, remove_path, to_fields_v1,
};
use super::kinds::ResourceKind;
use super::selector::{FieldSelector, LabelSelector};

/// Which endpoint of an object a write goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself.
    Main,
    /// The `/status` subresource.
    Status,
}

impl Subresource {
    fn name(self) -> Option<&'static str> {
        match self {
            Subresource::Main => None,
            Subresource::Status => Some("status"),
        }
    }
}

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

/// One change in the watch history.
#[derive(Clone, Debug)]
struct HistoryEvent {
    rv: u64,
    kind: usize,
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

/// One entry of `metadata.managedFields`, with its field set decoded.
#[derive(Clone, Debug, PartialEq)]
struct Manager {
    manager: String,
    operation: &'static str,
    subresource: Option<&'static str>,
    api_version: String,
    time: String,
    paths: BTreeSet<FieldPath>,
}

impl Manager {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

fn read_managers(object: &Value) -> Vec<Manager> {
    let entries = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    entries
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let operation = match e.get("operation")?.as_str()? {
                "Apply" => "Apply",
                _ => "Update",
            };
            let subresource = match e.get("subresource").and_then(Value::as_str) {
                Some("status") => Some("status"),
                _ => None,
            };
            Some(Manager {
                manager: e.get("manager")?.as_str()?.to_owned(),
                operation,
                subresource,
                api_version: e.get("apiVersion")?.as_str()?.to_owned(),
                time: e.get("time")?.as_str()?.to_owned(),
                paths: from_fields_v1(e.get("fieldsV1")?),
            })
        })
        .collect()
}

fn write_managers(object: &mut Value, managers: &[Manager]) {
    let entries: Vec<Value> = managers
        .iter()
        .map(|m| {
            let mut e = json!({
                "manager": m.manager,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&m.paths),
            });
            if let Some(sub) = m.subresource {
                e["subresource"] = json!(sub);
            }
            e
        })
        .collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
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

/// Whether a field belongs to the given endpoint (and is tracked for ownership).
fn in_scope(kind: &ResourceKind, sub: Subresource, path: &[String]) -> bool {
    let first = path.first().map(String::as_str);
    match sub {
        Subresource::Status => first == Some("status"),
        Subresource::Main => match first {
            None | Some("apiVersion" | "kind") => false,
            Some("status") => !kind.status_subresource,
            Some("metadata") => matches!(
                path.get(1).map(String::as_str),
                Some("labels" | "annotations" | "finalizers" | "ownerReferences")
            ),
            Some(_) => true,
        },
    }
}

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

/// How a write changes field ownership.
enum Ownership<'a> {
    /// Create, update, merge patch: the manager takes the fields it changed.
    Update,
    /// Server-side apply of this (scoped) configuration.
    Apply(&'a Value),
}

type Key = (usize, String, String);

/// The store: objects, the resourceVersion counter and the watch history.
#[derive(Debug)]
pub struct Store {
    /// The resource table.
    pub kinds: Vec<ResourceKind>,
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<HistoryEvent>,
    history_limit: usize,
    /// Every version up to and including this one may have lost events: watches from an
    /// older version get 410 Gone.
    compacted: u64,
    snapshots: HashMap<u64, (u64, Vec<Value>)>,
    next_snapshot: u64,
}

impl Store {
    /// An empty store serving `kinds`, keeping at most `history_limit` watch events.
    pub fn new(kinds: Vec<ResourceKind>, history_limit: usize) -> Self {
        Store {
            kinds,
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_limit,
            compacted: 0,
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
                match parsed {
                    Some((id, offset)) if self.snapshots.contains_key(&id) => (id, offset),
                    _ => return Err(ApiError::bad_request("invalid continue token")),
                }
            }
            None => {
                let id = self.next_snapshot;
                self.next_snapshot += 1;
                self.snapshots.insert(id, (self.rv, self.select(k, filter)));
                (id, 0)
            }
        };
        let (rv, items) = self
            .snapshots
            .get(&id)
            .cloned()
            .unwrap_or((self.rv, Vec::new()));
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
        self.history.push_back(HistoryEvent {
            rv: self.rv,
            kind: k,
            namespace,
            event,
            object: object.clone(),
            previous,
        });
        self.trim_history();
        object
    }

    fn trim_history(&mut self) {
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = self.compacted.max(dropped.rv);
            }
        }
    }

    /// Keeps at most `limit` watch events; older versions become too old to watch from.
    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit;
        self.trim_history();
    }

    /// Forgets the whole watch history: every resourceVersion issued so far becomes too
    /// old to watch from (410 Gone). The counter moves on by one so that a fresh list
    /// returns a version that can be watched.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.compacted = self.rv;
        self.history.clear();
    }

    /// Watch events of kind `k` after version `since` that `filter` selects, as watch-event
    /// JSON, and the version the watch has reached. `Err` when `since` is too old.
    pub fn events_since(
        &self,
        k: usize,
        filter: &Filter,
        since: u64,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        if since < self.compacted {
            let message = format!("too old resource version: {since} ({})", self.compacted);
            return Err(ApiError::expired(message));
        }
        let start = self.history.partition_point(|e| e.rv <= since);
        let mut events = Vec::new();
        for e in self.history.range(start..).filter(|e| e.kind == k) {
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
        if self.get(k, namespace, &name).is_some() {
            return Err(ApiError::already_exists(&kind, &name));
        }
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
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if kind.generation {
            meta.insert("generation".into(), json!(1));
        }
        let (operation, paths) = match ownership {
            Ownership::Update => ("Update", leaf_paths(&body)),
            Ownership::Apply(applied) => ("Apply", leaf_paths(applied)),
        };
        let paths: BTreeSet<FieldPath> = paths
            .into_iter()
            .filter(|p| in_scope(&kind, Subresource::Main, p))
            .collect();
        if !paths.is_empty() {
            let manager = Manager {
                manager: opts.manager.clone(),
                operation,
                subresource: None,
                api_version: kind.api_version(),
                time: now_rfc3339(),
                paths,
            };
            write_managers(&mut body, &[manager]);
        }
        if opts.dry_run {
            return Ok(body);
        }
        Ok(self.commit(k, EventType::Added, body, None))
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
        self.check_precondition(k, &old, &body, kind.custom)?;
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
            return Err(ApiError::bad_request(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
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
        let mut scoped = Value::Object(Map::new());
        for path in leaf_paths(&applied) {
            if in_scope(&kind, sub, &path)
                && let Some(value) = get_path(&applied, &path)
            {
                let mut patch = value.clone();
                for key in path.iter().rev() {
                    patch = json!({ key.as_str(): patch });
                }
                merge_patch(&mut scoped, &patch);
            }
        }
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
        merge_patch(&mut candidate, &scoped);
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
        let name = meta_str(&old, "name").unwrap_or("").to_owned();
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

        let mut managers = read_managers(&old);
        let (operation, subresource) = match ownership {
            Ownership::Update => ("Update", sub.name()),
            Ownership::Apply(_) => ("Apply", sub.name()),
        };
        let mine = |m: &Manager| m.is(&opts.manager, operation, subresource);
        let taken: BTreeSet<FieldPath> = match ownership {
            Ownership::Update => changed_paths(&old, &new)
                .into_iter()
                .filter(|p| in_scope(&kind, sub, p))
                .collect(),
            Ownership::Apply(applied) => {
                let applied_paths = leaf_paths(applied);
                if !opts.force {
                    let mut conflicts = Vec::new();
                    for other in managers.iter().filter(|m| m.manager != opts.manager) {
                        for p in &applied_paths {
                            for q in other.paths.iter().filter(|q| overlaps(p, q)) {
                                let at = if p.len() <= q.len() { p } else { q };
                                if get_path(&old, at) != get_path(applied, at) {
                                    conflicts.push(format!(
                                        "conflict with \"{}\": .{}",
                                        other.manager,
                                        p.join(".")
                                    ));
                                }
                            }
                        }
                    }
                    if !conflicts.is_empty() {
                        let message = format!(
                            "Apply failed with {} conflict{}: {}",
                            conflicts.len(),
                            if conflicts.len() == 1 { "" } else { "s" },
                            conflicts.join(", ")
                        );
                        return Err(ApiError::new(409, "Conflict", message).about(&kind, &name));
                    }
                }
                let previous = managers
                    .iter()
                    .find(|m| mine(m))
                    .map(|m| m.paths.clone())
                    .unwrap_or_default();
                for stale in previous.difference(&applied_paths) {
                    let still_wanted = applied_paths.iter().any(|q| overlaps(stale, q));
                    let owned_elsewhere = managers
                        .iter()
                        .filter(|m| !mine(m))
                        .any(|m| m.paths.iter().any(|q| overlaps(stale, q)));
                    if !still_wanted && !owned_elsewhere && remove_path(&mut new, stale) {
                        // Maps emptied by the removal go too, as the manager owned them.
                        for depth in (1..stale.len()).rev() {
                            let parent = &stale[..depth];
                            let emptied = get_path(&new, parent)
                                .is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
                            if !emptied || applied_paths.iter().any(|q| q.starts_with(parent)) {
                                break;
                            }
                            remove_path(&mut new, parent);
                        }
                    }
                }
                applied_paths
            }
        };
        // Fields changed by an update, or forcibly applied, leave their other owners.
        let exclusive = matches!(ownership, Ownership::Update) || opts.force;
        for m in managers.iter_mut().filter(|m| m.manager != opts.manager) {
            if exclusive {
                m.paths.retain(|q| !taken.iter().any(|p| overlaps(p, q)));
            }
        }
        match managers.iter_mut().find(|m| mine(m)) {
            Some(m) if matches!(ownership, Ownership::Apply(_)) => m.paths = taken,
            Some(m) => m.paths.extend(taken),
            None => managers.push(Manager {
                manager: opts.manager.clone(),
                operation,
                subresource,
                api_version: kind.api_version(),
                time: String::new(),
                paths: taken,
            }),
        }
        managers.retain(|m| !m.paths.is_empty());

        if kind.generation && generation_relevant(&kind, &old) != generation_relevant(&kind, &new) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }

        // A write that changes nothing (timestamps of managedFields aside) is not stored.
        let old_managers = read_managers(&old);
        let same_owners = old_managers.len() == managers.len()
            && old_managers.iter().zip(&managers).all(|(a, b)| {
                a.manager == b.manager
                    && a.operation == b.operation
                    && a.subresource == b.subresource
                    && a.paths == b.paths
            });
        let strip = |v: &Value| {
            let mut v = v.clone();
            meta_mut(&mut v).remove("managedFields");
            v
        };
        if same_owners && strip(&old) == strip(&new) {
            return Ok(old);
        }
        let now = now_rfc3339();
        for m in managers.iter_mut().filter(|m| mine(m) || m.time.is_empty()) {
            m.time = now.clone();
        }
        write_managers(&mut new, &managers);
        if opts.dry_run {
            return Ok(new);
        }
        let stored = self.commit(k, EventType::Modified, new, Some(old));
        if stored.pointer("/metadata/deletionTimestamp").is_some() && finalizers_empty(&stored) {
            self.commit(k, EventType::Deleted, stored.clone(), Some(stored.clone()));
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
                let message = format!(
                    "Precondition failed: {field} in precondition: {wanted}, {field} in object meta: {}",
                    actual.unwrap_or("")
                );
                return Err(ApiError::new(409, "Conflict", message).about(&kind, name));
            }
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

    /// Stores an object as given (status and managed fields included), creating or
    /// replacing it: the test's backdoor for setting up state. Server-owned metadata is
    /// kept or generated; generation and resourceVersion follow the usual rules.
    pub fn put(&mut self, k: usize, mut object: Value) -> Result<Value, ApiError> {
        let kind = self.kinds[k].clone();
        let namespace = meta_str(&object, "namespace")
            .unwrap_or("default")
            .to_owned();
        self.prepare_new(k, &namespace, &mut object)?;
        let name = meta_str(&object, "name").unwrap_or("").to_owned();
        let Some(old) = self.get(k, &namespace, &name).cloned() else {
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
