//! JSON plumbing shared by the store: merge patches, field paths (the unit of field
//! ownership), `fieldsV1` encoding, and the small generators (timestamps, UIDs, names).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A path of object keys from the root of an object to a field. Lists are atomic: a path
/// never descends into one.
pub type FieldPath = Vec<String>;

/// Applies an RFC 7386 JSON merge patch to `target`.
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

/// Every leaf field of `value`: scalars, lists and empty objects. Null values are skipped
/// (in an applied configuration they mean "not set").
pub fn leaf_paths(value: &Value) -> BTreeSet<FieldPath> {
    fn walk(value: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    prefix.push(key.clone());
                    walk(child, prefix, out);
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
    let mut out = BTreeSet::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

/// Leaf paths whose values differ between `old` and `new` (present in one only, or changed).
pub fn changed_paths(old: &Value, new: &Value) -> BTreeSet<FieldPath> {
    fn walk(old: Option<&Value>, new: Option<&Value>, prefix: &mut FieldPath) -> Vec<FieldPath> {
        match (old, new) {
            (Some(Value::Object(a)), Some(Value::Object(b))) if !a.is_empty() && !b.is_empty() => {
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                let mut out = Vec::new();
                for key in keys {
                    prefix.push(key.clone());
                    out.extend(walk(a.get(key), b.get(key), prefix));
                    prefix.pop();
                }
                out
            }
            (a, b) if a == b => Vec::new(),
            (a, b) => {
                // One side is a leaf (or missing): every leaf on either side changed.
                let mut out: BTreeSet<FieldPath> = BTreeSet::new();
                for side in [a, b].into_iter().flatten() {
                    if matches!(side, Value::Object(m) if !m.is_empty()) {
                        out.extend(leaf_paths(side).into_iter().map(|p| {
                            let mut full = prefix.clone();
                            full.extend(p);
                            full
                        }));
                    } else if !prefix.is_empty() {
                        out.insert(prefix.clone());
                    }
                }
                out.into_iter().collect()
            }
        }
    }
    walk(Some(old), Some(new), &mut Vec::new())
        .into_iter()
        .collect()
}

/// The value at `path`, if every step is an object key.
pub fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// Removes the field at `path`; returns whether something was removed.
pub fn remove_path(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = value;
    for key in parents {
        match current.get_mut(key) {
            Some(next) => current = next,
            None => return false,
        }
    }
    current
        .as_object_mut()
        .is_some_and(|map| map.remove(last).is_some())
}

/// True when one path is a prefix of the other (they name the same field or nest).
pub fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Encodes a set of paths in the `FieldsV1` format of `metadata.managedFields`
/// (`{"f:spec":{"f:subject":{}}}`).
pub fn to_fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for key in path {
            let entry = node
                .entry(format!("f:{key}"))
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else {
                break;
            };
            node = next;
        }
    }
    Value::Object(root)
}

/// Decodes [`to_fields_v1`]'s format back into paths; keys without the `f:` prefix are
/// ignored.
pub fn from_fields_v1(value: &Value) -> BTreeSet<FieldPath> {
    fn walk(value: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        let Value::Object(map) = value else {
            return;
        };
        let fields: Vec<(&str, &Value)> = map
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("f:").map(|k| (k, v)))
            .collect();
        if fields.is_empty() && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (key, child) in fields {
            prefix.push(key.to_owned());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

/// The current time as Kubernetes writes `metav1.Time`: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A random RFC 4122 version 4 UID.
pub fn new_uid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Five random characters from the alphabet the API server uses for `generateName`.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

/// Splits a URL query into decoded key/value pairs (`+` is a space, `%XX` a byte).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let hex = |b: u8| char::from(b).to_digit(16);
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escaped = match bytes.get(i..i + 3) {
                Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| (h * 16 + l) as u8),
                _ => None,
            };
            match (escaped, bytes[i]) {
                (Some(byte), _) => {
                    out.push(byte);
                    i += 3;
                }
                (None, b'+') => {
                    out.push(b' ');
                    i += 1;
                }
                (None, other) => {
                    out.push(other);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}
