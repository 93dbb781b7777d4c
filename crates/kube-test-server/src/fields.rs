//! Field paths, the unit of field ownership in server-side apply, and the walks over objects
//! that follow each list's `x-kubernetes-list-type` (kubernetes-sigs/structured-merge-diff:
//! `fieldpath/element.go`, `fieldpath/serialize-pe.go`, `typed/merge.go`).
//!
//! - Object keys are fields (`f:name` in `fieldsV1`).
//! - Items of a `map` list are addressed by their key fields (`k:{"type":"Ready"}`), items
//!   of a `set` list by their value (`v:"a"`); an item's own path is in a set (`.` in
//!   `fieldsV1`) next to its fields.
//! - `atomic` lists, the default for custom resources without a list type, are one leaf.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub use super::schema::ListType;
use super::schema::Schema;

/// Tells the list type of the list at a path of field names (list items are implicit steps).
pub trait ListTypes {
    /// The list type at `fields`.
    fn list_type(&self, fields: &[&str]) -> ListType;
}

/// Every list is atomic (the built-in kinds served here have no lists that matter).
pub struct AllAtomic;

impl ListTypes for AllAtomic {
    fn list_type(&self, _fields: &[&str]) -> ListType {
        ListType::Atomic
    }
}

impl ListTypes for Schema {
    fn list_type(&self, fields: &[&str]) -> ListType {
        Schema::list_type(self, fields)
    }
}

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    /// An object key.
    Field(String),
    /// A `map` list item, by its key fields as a compact JSON object with sorted keys.
    Key(String),
    /// A `set` list item, by its value as compact JSON.
    Value(String),
}

impl Element {
    /// The field name, for [`Element::Field`].
    pub fn field(&self) -> Option<&str> {
        match self {
            Element::Field(name) => Some(name),
            _ => None,
        }
    }
}

/// A path from the root of an object to a field or list item.
pub type FieldPath = Vec<Element>;

/// The field names along a path (list items skipped), for schema lookups.
fn field_names(path: &[Element]) -> Vec<&str> {
    path.iter().filter_map(Element::field).collect()
}

/// The key element of a `map` list item, `None` when the item is no object.
fn key_of(item: &Value, keys: &[String]) -> Option<Element> {
    let object = item.as_object()?;
    let mut parts: Vec<(&String, &Value)> = keys
        .iter()
        .filter_map(|k| object.get(k).map(|v| (k, v)))
        .collect();
    parts.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = parts
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
        .collect();
    Some(Element::Key(format!("{{{}}}", body.join(","))))
}

fn element_of(item: &Value, list: &ListType) -> Option<Element> {
    match list {
        ListType::Map(keys) => key_of(item, keys),
        ListType::Set => Some(Element::Value(item.to_string())),
        ListType::Atomic => None,
    }
}

/// The item of `list` that `element` addresses.
fn find_item(list: &[Value], element: &Element) -> Option<usize> {
    list.iter().position(|item| match element {
        Element::Key(_) => item.as_object().is_some_and(|_| key_matches(item, element)),
        Element::Value(text) => serde_json::from_str::<Value>(text).is_ok_and(|v| v == *item),
        Element::Field(_) => false,
    })
}

fn key_matches(item: &Value, element: &Element) -> bool {
    let Element::Key(text) = element else {
        return false;
    };
    let Ok(Value::Object(wanted)) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let keys: Vec<String> = wanted.keys().cloned().collect();
    key_of(item, &keys).as_ref() == Some(element)
}

/// Every owned path of `value`: its leaves (scalars, atomic lists, empty objects) and the
/// items of `map` and `set` lists together with their fields. Nulls are skipped.
pub fn leaf_paths(value: &Value, types: &dyn ListTypes) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    walk(value, &mut Vec::new(), types, &mut out);
    out
}

fn walk(
    value: &Value,
    prefix: &mut FieldPath,
    types: &dyn ListTypes,
    out: &mut BTreeSet<FieldPath>,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                prefix.push(Element::Field(key.clone()));
                walk(child, prefix, types, out);
                prefix.pop();
            }
        }
        Value::Array(items) if !prefix.is_empty() => {
            let list = types.list_type(&field_names(prefix));
            if list == ListType::Atomic {
                out.insert(prefix.clone());
                return;
            }
            for item in items {
                let Some(element) = element_of(item, &list) else {
                    continue;
                };
                prefix.push(element);
                out.insert(prefix.clone());
                if matches!(list, ListType::Map(_)) {
                    walk(item, prefix, types, out);
                }
                prefix.pop();
            }
        }
        Value::Null => {}
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

/// Paths whose values differ between `old` and `new` (present in one only, or changed).
pub fn changed_paths(old: &Value, new: &Value, types: &dyn ListTypes) -> BTreeSet<FieldPath> {
    let before = leaf_paths(old, types);
    let after = leaf_paths(new, types);
    before
        .union(&after)
        .filter(|p| {
            let (a, b) = (get_path(old, p), get_path(new, p));
            match (a, b) {
                // An item whose fields changed is reported by those fields.
                (Some(x), Some(y)) if is_item(p) => x.is_object() != y.is_object(),
                (x, y) => x != y,
            }
        })
        .cloned()
        .collect()
}

/// Whether a path ends at a list item.
pub fn is_item(path: &[Element]) -> bool {
    matches!(path.last(), Some(Element::Key(_) | Element::Value(_)))
}

/// The value at `path`.
pub fn get_path<'a>(value: &'a Value, path: &[Element]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, element| match element {
        Element::Field(key) => v.get(key),
        other => {
            let list = v.as_array()?;
            list.get(find_item(list, other)?)
        }
    })
}

/// Removes the field or list item at `path`; returns whether something was removed.
pub fn remove_path(value: &mut Value, path: &[Element]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = value;
    for element in parents {
        let next = match element {
            Element::Field(key) => current.get_mut(key),
            other => match current.as_array_mut() {
                Some(list) => match find_item(list, other) {
                    Some(i) => list.get_mut(i),
                    None => None,
                },
                None => None,
            },
        };
        match next {
            Some(next) => current = next,
            None => return false,
        }
    }
    match last {
        Element::Field(key) => current
            .as_object_mut()
            .is_some_and(|map| map.remove(key).is_some()),
        other => match current.as_array_mut() {
            Some(list) => match find_item(list, other) {
                Some(i) => {
                    list.remove(i);
                    true
                }
                None => false,
            },
            None => false,
        },
    }
}

/// True when one path is a prefix of the other (they name the same field or nest).
pub fn overlaps(a: &[Element], b: &[Element]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Merges an applied configuration into a live object as server-side apply does: objects
/// field by field, `map` lists item by item (by key), `set` lists as a union, `atomic` lists
/// and scalars replaced; a null removes the field.
pub fn apply_merge(live: &mut Value, applied: &Value, types: &dyn ListTypes) {
    merge_at(live, applied, &mut Vec::new(), types);
}

fn merge_at(live: &mut Value, applied: &Value, prefix: &mut Vec<String>, types: &dyn ListTypes) {
    match applied {
        Value::Object(fields) => {
            if !live.is_object() {
                *live = Value::Object(Map::new());
            }
            let Some(target) = live.as_object_mut() else {
                return;
            };
            for (key, value) in fields {
                if value.is_null() {
                    target.remove(key);
                    continue;
                }
                prefix.push(key.clone());
                merge_at(
                    target.entry(key.clone()).or_insert(Value::Null),
                    value,
                    prefix,
                    types,
                );
                prefix.pop();
            }
        }
        Value::Array(items) if !prefix.is_empty() => {
            let names: Vec<&str> = prefix.iter().map(String::as_str).collect();
            let list = types.list_type(&names);
            if list == ListType::Atomic || !live.is_array() {
                *live = applied.clone();
                return;
            }
            let Some(target) = live.as_array_mut() else {
                return;
            };
            for item in items {
                let existing = element_of(item, &list).and_then(|e| find_item(target, &e));
                match (existing, &list) {
                    (Some(i), ListType::Map(_)) => merge_at(&mut target[i], item, prefix, types),
                    (Some(_), _) => {}
                    (None, _) => target.push(item.clone()),
                }
            }
        }
        other => *live = other.clone(),
    }
}

/// Applies an RFC 7386 JSON merge patch to `target` (lists are replaced whole).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The part of `value` at the given paths (and nothing else), for scoping an applied
/// configuration to what an endpoint may set.
pub fn restrict(value: &Value, paths: &BTreeSet<FieldPath>) -> Value {
    let mut out = Value::Object(Map::new());
    for path in paths {
        if let Some(leaf) = get_path(value, path) {
            set_path(&mut out, value, path, leaf);
        }
    }
    out
}

/// Copies `leaf` to `path` in `out`, creating objects and list items on the way (list items
/// are created from `source`'s item with only their key fields).
fn set_path(out: &mut Value, source: &Value, path: &[Element], leaf: &Value) {
    let mut current = out;
    let mut from = Some(source);
    for (i, element) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        from = from.and_then(|s| get_path(s, std::slice::from_ref(element)));
        match element {
            Element::Field(key) => {
                if !current.is_object() {
                    *current = Value::Object(Map::new());
                }
                let Some(map) = current.as_object_mut() else {
                    return;
                };
                let slot = map.entry(key.clone()).or_insert(Value::Null);
                if last {
                    *slot = leaf.clone();
                    return;
                }
                current = slot;
            }
            other => {
                if !current.is_array() {
                    *current = Value::Array(Vec::new());
                }
                let Some(list) = current.as_array_mut() else {
                    return;
                };
                let index = match find_item(list, other) {
                    Some(i) => i,
                    None => {
                        let seed = match (other, from) {
                            (Element::Key(text), _) => {
                                serde_json::from_str(text).unwrap_or(Value::Null)
                            }
                            (_, Some(item)) => item.clone(),
                            _ => Value::Null,
                        };
                        list.push(seed);
                        list.len() - 1
                    }
                };
                if last {
                    if matches!(other, Element::Key(_)) {
                        merge_patch(&mut list[index], leaf);
                    } else {
                        list[index] = leaf.clone();
                    }
                    return;
                }
                current = &mut list[index];
            }
        }
    }
}

/// Encodes a set of paths in the `FieldsV1` format of `metadata.managedFields`
/// (`{"f:status":{"f:conditions":{"k:{\"type\":\"Ready\"}":{".":{},"f:status":{}}}}}`).
pub fn to_fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    fn insert(node: &mut Map<String, Value>, path: &[Element], item: bool) {
        let Some((first, rest)) = path.split_first() else {
            if item {
                node.insert(".".to_owned(), Value::Object(Map::new()));
            }
            return;
        };
        let key = match first {
            Element::Field(name) => format!("f:{name}"),
            Element::Key(text) => format!("k:{text}"),
            Element::Value(text) => format!("v:{text}"),
        };
        if let Value::Object(next) = node.entry(key).or_insert_with(|| Value::Object(Map::new())) {
            insert(next, rest, item);
        }
    }
    let mut root = Map::new();
    for path in paths {
        insert(&mut root, path, is_item(path));
    }
    Value::Object(root)
}

/// Decodes [`to_fields_v1`]'s format back into paths.
pub fn from_fields_v1(value: &Value) -> BTreeSet<FieldPath> {
    fn walk(value: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        let Value::Object(map) = value else {
            return;
        };
        let children: Vec<(Element, &Value)> = map
            .iter()
            .filter_map(|(k, v)| {
                let (kind, rest) = k.split_once(':')?;
                let element = match kind {
                    "f" => Element::Field(rest.to_owned()),
                    "k" => Element::Key(rest.to_owned()),
                    "v" => Element::Value(rest.to_owned()),
                    _ => return None,
                };
                Some((element, v))
            })
            .collect();
        if !prefix.is_empty() && (children.is_empty() || map.contains_key(".")) {
            out.insert(prefix.clone());
        }
        for (element, child) in children {
            prefix.push(element);
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `status.conditions` is a map list keyed by `type`; `spec.tags` a set.
    struct Conditions;

    impl ListTypes for Conditions {
        fn list_type(&self, fields: &[&str]) -> ListType {
            match fields {
                ["status", "conditions"] => ListType::Map(vec!["type".into()]),
                ["spec", "tags"] => ListType::Set,
                _ => ListType::Atomic,
            }
        }
    }

    fn status(conditions: Value) -> Value {
        json!({"status": {"conditions": conditions}})
    }

    #[test]
    fn map_list_items_are_owned_by_key_with_their_fields() {
        let object = status(json!([{"type": "Ready", "status": "True"}]));
        let paths = leaf_paths(&object, &Conditions);
        let fields = to_fields_v1(&paths);
        assert_eq!(
            fields,
            json!({"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {
                ".": {}, "f:status": {}, "f:type": {}
            }}}})
        );
        assert_eq!(from_fields_v1(&fields), paths);
    }

    #[test]
    fn atomic_lists_are_one_leaf_and_sets_are_owned_by_value() {
        let object = json!({"spec": {"tags": ["a", "b"], "list": [1, 2]}});
        let paths = leaf_paths(&object, &Conditions);
        let fields = to_fields_v1(&paths);
        assert_eq!(
            fields,
            json!({"f:spec": {"f:list": {}, "f:tags": {"v:\"a\"": {".": {}}, "v:\"b\"": {".": {}}}}})
        );
        assert_eq!(from_fields_v1(&fields), paths);
    }

    #[test]
    fn apply_merges_map_items_by_key_and_keeps_the_others() {
        let mut live = status(json!([
            {"type": "Ready", "status": "False", "reason": "Old"},
            {"type": "PolicyChecked", "status": "True"}
        ]));
        apply_merge(
            &mut live,
            &status(json!([{"type": "Ready", "status": "True"}])),
            &Conditions,
        );
        assert_eq!(
            live,
            status(json!([
                {"type": "Ready", "status": "True", "reason": "Old"},
                {"type": "PolicyChecked", "status": "True"}
            ]))
        );
    }

    #[test]
    fn paths_address_and_remove_list_items() {
        let mut object = status(json!([{"type": "Ready"}, {"type": "Stalled"}]));
        let stalled = leaf_paths(&status(json!([{"type": "Stalled"}])), &Conditions)
            .into_iter()
            .find(|p| is_item(p))
            .expect("an item path");
        assert_eq!(
            get_path(&object, &stalled),
            Some(&json!({"type": "Stalled"}))
        );
        assert!(remove_path(&mut object, &stalled));
        assert_eq!(object, status(json!([{"type": "Ready"}])));
    }

    #[test]
    fn changed_paths_compare_items_by_key_not_position() {
        let old = status(json!([{"type": "A", "status": "x"}, {"type": "B", "status": "y"}]));
        let new = status(json!([{"type": "B", "status": "y"}, {"type": "A", "status": "z"}]));
        let changed = changed_paths(&old, &new, &Conditions);
        let rendered: Vec<Value> = changed
            .iter()
            .map(|p| to_fields_v1(&[p.clone()].into()))
            .collect();
        assert_eq!(
            rendered,
            vec![json!({"f:status": {"f:conditions": {"k:{\"type\":\"A\"}": {"f:status": {}}}}})]
        );
    }

    #[test]
    fn restrict_keeps_only_the_given_paths_with_item_keys() {
        let object = status(json!([{"type": "Ready", "status": "True", "reason": "R"}]));
        let wanted: BTreeSet<FieldPath> = leaf_paths(&object, &Conditions)
            .into_iter()
            .filter(|p| p.last() == Some(&Element::Field("status".into())))
            .collect();
        assert_eq!(
            restrict(&object, &wanted),
            status(json!([{"type": "Ready", "status": "True"}]))
        );
    }
}
