//! Field ownership (`metadata.managedFields`) and server-side apply, after
//! kubernetes-sigs/structured-merge-diff (`merge/update.go`: `Update`, `Apply`, `prune`,
//! conflicts) and the Kubernetes documentation "Server-Side Apply".
//!
//! - An update (create, `PUT`, merge patch) takes the fields it changes from every other
//!   manager.
//! - An apply owns exactly the fields of its configuration. A field another manager owns
//!   and the apply would change is a conflict (409) unless forced; forcing takes just those
//!   fields. Equal values are shared.
//! - Fields (and `map`/`set` list items) the manager applied before and omits now are
//!   removed, unless another manager owns them. Items owned only by others are never
//!   removed by an apply, forced or not.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::errors::{ApiError, go_quote};
use super::fields::{
    Element, FieldPath, ListTypes, changed_paths, from_fields_v1, get_path, is_item, leaf_paths,
    overlaps, remove_path, restrict, to_fields_v1,
};
use super::kinds::ResourceKind;

/// Which endpoint of an object a write goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself.
    Main,
    /// The `/status` subresource.
    Status,
}

impl Subresource {
    /// The name recorded in managed fields.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Subresource::Main => None,
            Subresource::Status => Some("status"),
        }
    }
}

/// How a write changes field ownership.
#[derive(Clone, Copy)]
pub enum Ownership<'a> {
    /// Create, update, merge patch: the manager takes the fields it changed.
    Update,
    /// Server-side apply of this (scoped) configuration.
    Apply(&'a Value),
}

/// Who writes, for field ownership.
#[derive(Clone, Debug)]
pub struct Writer {
    /// The field manager.
    pub manager: String,
    /// `force=true` on an apply.
    pub force: bool,
}

/// One entry of `metadata.managedFields`, with its field set decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Manager {
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

    fn same_fields(&self, other: &Manager) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && self.paths == other.paths
    }
}

/// The managers recorded in an object.
pub fn read(object: &Value) -> Vec<Manager> {
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

/// Records `managers` in `object` (no entry when there are none).
pub fn write(object: &mut Value, managers: &[Manager]) {
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

/// Whether a field belongs to the given endpoint (and is tracked for ownership).
pub fn in_scope(kind: &ResourceKind, sub: Subresource, path: &[Element]) -> bool {
    let first = path.first().and_then(Element::field);
    match sub {
        Subresource::Status => first == Some("status"),
        Subresource::Main => match first {
            None | Some("apiVersion" | "kind") => false,
            Some("status") => !kind.status_subresource,
            Some("metadata") => matches!(
                path.get(1).and_then(Element::field),
                Some("labels" | "annotations" | "finalizers" | "ownerReferences")
            ),
            Some(_) => true,
        },
    }
}

/// An applied configuration restricted to what the endpoint may set.
pub fn scope(
    applied: &Value,
    kind: &ResourceKind,
    sub: Subresource,
    types: &dyn ListTypes,
) -> Value {
    let paths: BTreeSet<FieldPath> = leaf_paths(applied, types)
        .into_iter()
        .filter(|p| in_scope(kind, sub, p))
        .collect();
    restrict(applied, &paths)
}

/// The paths a new object's creator owns.
pub fn on_create(
    body: &Value,
    ownership: Ownership<'_>,
    writer: &Writer,
    kind: &ResourceKind,
    types: &dyn ListTypes,
    now: &str,
) -> Vec<Manager> {
    let (operation, source) = match ownership {
        Ownership::Update => ("Update", body),
        Ownership::Apply(applied) => ("Apply", applied),
    };
    let paths: BTreeSet<FieldPath> = leaf_paths(source, types)
        .into_iter()
        .filter(|p| in_scope(kind, Subresource::Main, p))
        .collect();
    if paths.is_empty() {
        return Vec::new();
    }
    vec![Manager {
        manager: writer.manager.clone(),
        operation,
        subresource: None,
        api_version: kind.api_version(),
        time: now.to_owned(),
        paths,
    }]
}

/// A path as structured-merge-diff prints it in conflicts:
/// `.status.conditions[type="Ready"].status`.
pub fn render(path: &[Element]) -> String {
    let mut out = String::new();
    for element in path {
        match element {
            Element::Field(name) => {
                let _ = write!(out, ".{name}");
            }
            Element::Key(text) => {
                let fields: Map<String, Value> = serde_json::from_str(text).unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = write!(out, "[{}]", parts.join(","));
            }
            Element::Value(text) => {
                let _ = write!(out, "[={text}]");
            }
        }
    }
    out
}

/// The result of [`settle`]: whether anything but managed-field timestamps changed.
pub struct Settled {
    /// The managers after the write.
    pub managers: Vec<Manager>,
    /// The managers before the write, for the no-op check.
    pub unchanged: bool,
}

/// Moves field ownership for an update of `old` into `new`, and prunes from `new` what an
/// apply no longer sets. Fails with 409 on conflicts of an unforced apply.
#[allow(clippy::too_many_arguments)]
pub fn settle(
    old: &Value,
    new: &mut Value,
    ownership: Ownership<'_>,
    writer: &Writer,
    kind: &ResourceKind,
    sub: Subresource,
    types: &dyn ListTypes,
) -> Result<Settled, ApiError> {
    let mut managers = read(old);
    let before = managers.clone();
    let (operation, subresource) = match ownership {
        Ownership::Update => ("Update", sub.name()),
        Ownership::Apply(_) => ("Apply", sub.name()),
    };
    let mine = |m: &Manager| m.is(&writer.manager, operation, subresource);
    let others = |m: &Manager| m.manager != writer.manager;
    let taken: BTreeSet<FieldPath> = match ownership {
        Ownership::Update => {
            let changed: BTreeSet<FieldPath> = changed_paths(old, new, types)
                .into_iter()
                .filter(|p| in_scope(kind, sub, p))
                .collect();
            // An update takes what it changed from everyone else.
            for m in managers.iter_mut().filter(|m| others(m)) {
                m.paths.retain(|q| !changed.iter().any(|p| overlaps(p, q)));
            }
            changed
        }
        Ownership::Apply(applied) => {
            let applied_paths = leaf_paths(applied, types);
            let changed = changed_paths(old, new, types);
            let mut conflicts: Vec<(Manager, FieldPath)> = Vec::new();
            for m in managers.iter_mut().filter(|m| others(m)) {
                let clashing: Vec<FieldPath> = m
                    .paths
                    .iter()
                    .filter(|q| {
                        !is_item(q)
                            && changed
                                .iter()
                                .any(|p| applied_paths.contains(p) && !is_item(p) && overlaps(p, q))
                    })
                    .cloned()
                    .collect();
                for q in clashing {
                    if writer.force {
                        m.paths.remove(&q);
                    } else {
                        conflicts.push((m.clone(), q));
                    }
                }
            }
            if !conflicts.is_empty() {
                return Err(conflict_error(conflicts));
            }
            let previous = managers
                .iter()
                .find(|m| mine(m))
                .map(|m| m.paths.clone())
                .unwrap_or_default();
            prune(new, &previous, &applied_paths, &managers, &mine);
            applied_paths
        }
    };
    match managers.iter_mut().find(|m| mine(m)) {
        Some(m) if matches!(ownership, Ownership::Apply(_)) => m.paths = taken,
        Some(m) => m.paths.extend(taken),
        None => managers.push(Manager {
            manager: writer.manager.clone(),
            operation,
            subresource,
            api_version: kind.api_version(),
            time: String::new(),
            paths: taken,
        }),
    }
    managers.retain(|m| !m.paths.is_empty());
    let unchanged = before.len() == managers.len()
        && before.iter().zip(&managers).all(|(a, b)| a.same_fields(b));
    Ok(Settled {
        managers,
        unchanged,
    })
}

/// Stamps the writer's entry (and new entries) with `now` and records the managers.
pub fn stamp(
    new: &mut Value,
    mut managers: Vec<Manager>,
    writer: &Writer,
    ownership: Ownership<'_>,
    sub: Subresource,
    now: &str,
) {
    let operation = match ownership {
        Ownership::Update => "Update",
        Ownership::Apply(_) => "Apply",
    };
    for m in managers
        .iter_mut()
        .filter(|m| m.is(&writer.manager, operation, sub.name()) || m.time.is_empty())
    {
        m.time = now.to_owned();
    }
    write(new, &managers);
}

/// Removes what the applier owned before and no longer applies, unless someone else owns it.
fn prune(
    new: &mut Value,
    previous: &BTreeSet<FieldPath>,
    applied: &BTreeSet<FieldPath>,
    managers: &[Manager],
    mine: &dyn Fn(&Manager) -> bool,
) {
    for stale in previous.difference(applied) {
        let still_wanted = applied.iter().any(|q| overlaps(stale, q));
        let owned_elsewhere = managers
            .iter()
            .filter(|m| !mine(m))
            .any(|m| m.paths.iter().any(|q| overlaps(stale, q)));
        if still_wanted || owned_elsewhere || !remove_path(new, stale) {
            continue;
        }
        // Maps emptied by the removal go too, as the manager owned them.
        for depth in (1..stale.len()).rev() {
            let parent = &stale[..depth];
            let emptied =
                get_path(new, parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
            if !emptied || is_item(parent) || applied.iter().any(|q| q.starts_with(parent)) {
                break;
            }
            remove_path(new, parent);
        }
    }
}

/// A manager as the API server names it in conflicts (`printManager` in
/// `apiserver/pkg/endpoints/handlers/fieldmanager/internal/conflict.go`): `"name"`, with
/// ` with subresource "status"` for a subresource, and ` using <apiVersion> at <time>` for an
/// updater.
fn print_manager(m: &Manager) -> String {
    let mut text = go_quote(&m.manager);
    if let Some(subresource) = m.subresource {
        text = format!("{text} with subresource {}", go_quote(subresource));
    }
    match (m.operation, m.time.is_empty()) {
        ("Update", true) => format!("{text} using {}", m.api_version),
        ("Update", false) => format!("{text} using {} at {}", m.api_version, m.time),
        _ => text,
    }
}

/// The 409 of an apply that conflicts (`NewConflictError`, `getConflictMessage`,
/// `NewApplyConflict`): one conflict in a line, several grouped by manager in the managers'
/// order; details hold only the causes.
fn conflict_error(mut conflicts: Vec<(Manager, FieldPath)>) -> ApiError {
    conflicts.sort_by(|(a, p), (b, q)| {
        (
            &a.manager,
            a.operation,
            &a.api_version,
            &a.time,
            a.subresource,
            p,
        )
            .cmp(&(
                &b.manager,
                b.operation,
                &b.api_version,
                &b.time,
                b.subresource,
                q,
            ))
    });
    let message = match conflicts.as_slice() {
        [(manager, path)] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            print_manager(manager),
            render(path)
        ),
        _ => {
            let mut lines: Vec<String> = Vec::new();
            let mut last: Option<String> = None;
            for (manager, path) in &conflicts {
                let printed = print_manager(manager);
                if last.as_ref() != Some(&printed) {
                    lines.push(format!("conflicts with {printed}:"));
                    last = Some(printed);
                }
                lines.push(format!("- {}", render(path)));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", print_manager(manager)),
                "field": render(path),
            })
        })
        .collect();
    ApiError {
        details: Some(json!({"causes": causes})),
        ..ApiError::new(409, "Conflict", message)
    }
}
