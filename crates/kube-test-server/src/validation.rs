//! Validation of the built-in kinds and of every object's metadata, as kube-apiserver 1.33
//! validates them on create and update.
//!
//! Sources:
//! - `k8s.io/apimachinery/pkg/api/validation/objectmeta.go` (`ValidateObjectMetaAccessor`,
//!   `ValidateObjectMetaAccessorUpdate`: names, labels, annotations, finalizers, no new
//!   finalizers once deletion started);
//! - `k8s.io/apimachinery/pkg/util/validation/validation.go` (`IsDNS1123Subdomain`,
//!   `IsDNS1123Label`, `IsQualifiedName`, `IsValidLabelValue` and their messages);
//! - `pkg/apis/core/validation/events.go` (`ValidateEventCreate`, `legacyValidateEvent`) for
//!   `events.k8s.io/v1` Events;
//! - `pkg/apis/coordination/validation/validation.go` (`ValidateLease`);
//! - `pkg/apis/core/validation/validation.go` (`ValidateSecret`, `ValidateSecretUpdate`,
//!   `ValidateNamespace`).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::errors::{BadValue, FieldError};

/// Longest DNS-1123 subdomain (`metadata.name` of most kinds).
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Longest DNS-1123 label (namespace names).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest name part of a qualified name, and longest label value.
pub const QUALIFIED_NAME_MAX: usize = 63;
/// Total size of all annotations of an object (`TotalAnnotationSizeLimitB`).
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;
/// Total size of a Secret's data (`MaxSecretSize`).
pub const SECRET_MAX_BYTES: usize = 1024 * 1024;
/// Longest `reportingInstance`, `action` and `reason` of an Event.
pub const EVENT_FIELD_MAX: usize = 128;
/// Longest Event note (`NoteLengthLimit`).
pub const EVENT_NOTE_MAX: usize = 1024;

const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const SECRET_KEY_FMT: &str = "[-._a-zA-Z0-9]+";

fn anchored(pattern: &str) -> Regex {
    // The patterns are constants of this module, all valid.
    Regex::new(&format!("^(?:{pattern})$")).unwrap_or_else(|e| panic!("bad pattern: {e}"))
}

static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_SUBDOMAIN_FMT));
static DNS1123_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_LABEL_FMT));
static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| anchored(QUALIFIED_NAME_FMT));
static LABEL_VALUE: LazyLock<Regex> = LazyLock::new(|| anchored(LABEL_VALUE_FMT));
static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| anchored(SECRET_KEY_FMT));

/// `IsDNS1123Subdomain`: the problems with `value`, none when valid.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        problems.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if !DNS1123_SUBDOMAIN.is_match(value) {
        problems.push(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is '{DNS1123_SUBDOMAIN_FMT}')"
        ));
    }
    problems
}

/// `IsDNS1123Label`: the problems with `value`, none when valid.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        problems.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !DNS1123_LABEL.is_match(value) {
        problems.push(format!(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or \
             '123-abc', regex used for validation is '{DNS1123_LABEL_FMT}')"
        ));
    }
    problems
}

/// `IsQualifiedName`: `[prefix/]name`, the prefix a DNS subdomain, the name at most 63
/// characters of `[-A-Za-z0-9_.]` starting and ending alphanumeric.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_owned());
            } else {
                problems.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            name
        }
        _ => {
            problems.push(format!(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and \
                 must start and end with an alphanumeric character (e.g. 'MyName',  or \
                 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}') \
                 with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return problems;
        }
    };
    if name.is_empty() {
        problems.push("name part must be non-empty".to_owned());
    } else if name.len() > QUALIFIED_NAME_MAX {
        problems.push(format!(
            "name part must be no more than {QUALIFIED_NAME_MAX} characters"
        ));
    }
    if !QUALIFIED_NAME.is_match(name) {
        problems.push(format!(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start \
             and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
             '123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}')"
        ));
    }
    problems
}

/// `IsValidLabelValue`.
pub fn label_value(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > QUALIFIED_NAME_MAX {
        problems.push(format!(
            "must be no more than {QUALIFIED_NAME_MAX} characters"
        ));
    }
    if !LABEL_VALUE.is_match(value) {
        problems.push(format!(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', \
             '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  \
             or 'my_value',  or '12345', regex used for validation is '{LABEL_VALUE_FMT}')"
        ));
    }
    problems
}

fn invalid_each(field: &str, value: &str, problems: Vec<String>) -> Vec<FieldError> {
    problems
        .into_iter()
        .map(|p| FieldError::invalid(field, BadValue::Json(Value::from(value)), p))
        .collect()
}

/// How a kind's names are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// `NameIsDNSSubdomain` (most kinds, custom resources included).
    Subdomain,
    /// `ValidateNamespaceName`: a DNS-1123 label.
    Label,
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.pointer(&format!("/metadata/{field}"))?.as_str()
}

fn string_map<'a>(object: &'a Value, field: &str) -> Vec<(&'a str, Option<&'a str>)> {
    object
        .pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_object)
        .map(|map| map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .unwrap_or_default()
}

/// `ValidateObjectMetaAccessor`: name, namespace, labels, annotations and finalizers of an
/// object being created or updated.
pub fn object_meta(object: &Value, namespaced: bool, names: NameRule) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match meta_str(object, "name").filter(|n| !n.is_empty()) {
        None => errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => {
            let problems = match names {
                NameRule::Subdomain => dns1123_subdomain(name),
                NameRule::Label => dns1123_label(name),
            };
            errors.extend(invalid_each("metadata.name", name, problems));
        }
    }
    let namespace = meta_str(object, "namespace").unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            errors.push(FieldError::required("metadata.namespace", ""));
        } else {
            errors.extend(invalid_each(
                "metadata.namespace",
                namespace,
                dns1123_label(namespace),
            ));
        }
    } else if !namespace.is_empty() {
        errors.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    for (key, value) in string_map(object, "labels") {
        errors.extend(invalid_each("metadata.labels", key, qualified_name(key)));
        let value = value.unwrap_or("");
        errors.extend(invalid_each(
            &format!("metadata.labels[{key}]"),
            value,
            label_value(value),
        ));
    }
    let mut annotation_bytes = 0;
    for (key, value) in string_map(object, "annotations") {
        errors.extend(invalid_each(
            "metadata.annotations",
            key,
            qualified_name(&key.to_ascii_lowercase()),
        ));
        annotation_bytes += key.len() + value.unwrap_or("").len();
    }
    if annotation_bytes > ANNOTATIONS_MAX_BYTES {
        errors.push(FieldError::too_long(
            "metadata.annotations",
            ANNOTATIONS_MAX_BYTES,
        ));
    }
    for (i, finalizer) in finalizers(object).iter().enumerate() {
        let field = format!("metadata.finalizers[{i}]");
        errors.extend(invalid_each(&field, finalizer, qualified_name(finalizer)));
        if !finalizer.contains('/') && !STANDARD_FINALIZERS.contains(&finalizer.as_str()) {
            errors.push(FieldError::invalid(
                &field,
                BadValue::Json(Value::from(finalizer.as_str())),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errors
}

/// Finalizers the API server knows without a domain prefix (`kubernetes`, `orphan`,
/// `foregroundDeletion`).
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// The finalizers of an object.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `ValidateObjectMetaAccessorUpdate`: once deletion started, no finalizer may be added.
pub fn object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    if old.pointer("/metadata/deletionTimestamp").is_none() {
        return Vec::new();
    }
    let before = finalizers(old);
    let added: Vec<String> = finalizers(new)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Vec::new();
    }
    let listed: Vec<String> = added.iter().map(|f| super::errors::go_quote(f)).collect();
    vec![FieldError::forbidden(
        "metadata.finalizers",
        format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers \
             []string{{{}}}",
            listed.join(", ")
        ),
    )]
}

/// `ValidateSecret` (create and update): data keys, total size, and `ValidateSecretUpdate`'s
/// immutability of `type` and of the data of an immutable Secret.
pub fn secret(new: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut total = 0;
    if let Some(data) = new.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            if key.len() > DNS1123_SUBDOMAIN_MAX || !SECRET_KEY.is_match(key) {
                errors.push(FieldError::invalid(
                    "data",
                    BadValue::Json(Value::from(key.as_str())),
                    format!(
                        "a valid config key must consist of alphanumeric characters, '-', '_' or \
                         '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for \
                         validation is '{SECRET_KEY_FMT}')"
                    ),
                ));
            }
            // Values are base64; the decoded size (padding excluded) is what counts.
            total += value.as_str().map_or(0, |v| {
                let padding = v.bytes().rev().take_while(|b| *b == b'=').count();
                (v.len() / 4 * 3).saturating_sub(padding)
            });
        }
    }
    if total > SECRET_MAX_BYTES {
        errors.push(FieldError::too_long("data", SECRET_MAX_BYTES));
    }
    if let Some(old) = old {
        let type_of = |s: &Value| {
            s.get("type")
                .and_then(Value::as_str)
                .unwrap_or("Opaque")
                .to_owned()
        };
        if type_of(new) != type_of(old) {
            errors.push(FieldError::invalid(
                "type",
                BadValue::Json(Value::from(type_of(new))),
                "field is immutable",
            ));
        }
        if old.get("immutable") == Some(&Value::Bool(true)) {
            if new.get("data") != old.get("data") {
                errors.push(FieldError::forbidden(
                    "data",
                    "field is immutable when `immutable` is set",
                ));
            }
            if new.get("immutable") != Some(&Value::Bool(true)) {
                errors.push(FieldError::forbidden(
                    "immutable",
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    errors
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// An `events.k8s.io/v1` Event on create (`ValidateEventCreate` with the strict rules of
/// that API version, and `legacyValidateEvent`). Field paths are those of the internal
/// Event type, as the API server reports them (`message` for `note`, `involvedObject` for
/// `regarding`).
pub fn event(event: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let namespace = text(event, "/metadata/namespace");
    let event_time = text(event, "/eventTime");
    if event_time.is_empty() {
        errors.push(FieldError::required("eventTime", ""));
    } else {
        if text(event, "/regarding/namespace").is_empty()
            && namespace != "default"
            && namespace != "kube-system"
        {
            errors.push(FieldError::invalid(
                "involvedObject.namespace",
                BadValue::Json(Value::from("")),
                "does not match event.namespace",
            ));
        }
        let controller = text(event, "/reportingController");
        if controller.is_empty() {
            errors.push(FieldError::required("reportingController", ""));
        }
        errors.extend(invalid_each(
            "reportingController",
            controller,
            qualified_name(controller),
        ));
        for (field, pointer) in [
            ("reportingInstance", "/reportingInstance"),
            ("action", "/action"),
            ("reason", "/reason"),
        ] {
            let value = text(event, pointer);
            if value.is_empty() {
                errors.push(FieldError::required(field, ""));
            }
            if value.len() > EVENT_FIELD_MAX {
                errors.push(FieldError::invalid(
                    field,
                    BadValue::Json(Value::from("")),
                    format!("can have at most {EVENT_FIELD_MAX} characters"),
                ));
            }
        }
        if text(event, "/note").len() > EVENT_NOTE_MAX {
            errors.push(FieldError::invalid(
                "message",
                BadValue::Json(Value::from("")),
                format!("can have at most {EVENT_NOTE_MAX} characters"),
            ));
        }
    }
    let type_ = text(event, "/type");
    if type_ != "Normal" && type_ != "Warning" {
        errors.push(FieldError::invalid(
            "type",
            BadValue::Json(Value::from("")),
            format!("has invalid value: {type_}"),
        ));
    }
    if let Some(series) = event.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errors.push(FieldError::invalid(
                "series.count",
                BadValue::Json(Value::from("")),
                "should be at least 2",
            ));
        }
        if text(series, "/lastObservedTime").is_empty() {
            errors.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    for (field, pointer) in [
        ("firstTimestamp", "/deprecatedFirstTimestamp"),
        ("lastTimestamp", "/deprecatedLastTimestamp"),
    ] {
        if !text(event, pointer).is_empty() {
            errors.push(FieldError::invalid(
                field,
                BadValue::Json(Value::from("")),
                "needs to be unset",
            ));
        }
    }
    if event
        .get("deprecatedCount")
        .and_then(Value::as_i64)
        .is_some_and(|c| c != 0)
    {
        errors.push(FieldError::invalid(
            "count",
            BadValue::Json(Value::from("")),
            "needs to be unset",
        ));
    }
    if !text(event, "/deprecatedSource/component").is_empty()
        || !text(event, "/deprecatedSource/host").is_empty()
    {
        errors.push(FieldError::invalid(
            "source",
            BadValue::Json(Value::from("")),
            "needs to be unset",
        ));
    }
    errors
}

/// `ValidateLeaseSpec`: a positive `leaseDurationSeconds`, non-negative `leaseTransitions`.
pub fn lease(lease: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(duration) = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64)
        && duration <= 0
    {
        errors.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            BadValue::Json(Value::from(duration)),
            "must be greater than 0",
        ));
    }
    if let Some(transitions) = lease
        .pointer("/spec/leaseTransitions")
        .and_then(Value::as_i64)
        && transitions < 0
    {
        errors.push(FieldError::invalid(
            "spec.leaseTransitions",
            BadValue::Json(Value::from(transitions)),
            "must be greater than or equal to 0",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn names_are_dns_subdomains_of_at_most_253_characters() {
        assert!(dns1123_subdomain("team-a.support").is_empty());
        assert!(dns1123_subdomain(&"a".repeat(253)).is_empty());
        assert_eq!(
            dns1123_subdomain(&"a".repeat(254)),
            vec!["must be no more than 253 characters"]
        );
        let object = json!({"metadata": {"name": "step_name", "namespace": "ns"}});
        assert_eq!(
            messages(&object_meta(&object, true, NameRule::Subdomain)),
            vec![
                "metadata.name: Invalid value: \"step_name\": a lowercase RFC 1123 subdomain must \
                 consist of lower case alphanumeric characters, '-' or '.', and must start and end \
                 with an alphanumeric character (e.g. 'example.com', regex used for validation is \
                 '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
    }

    #[test]
    fn a_missing_name_and_namespace_are_required() {
        let errors = object_meta(&json!({"metadata": {}}), true, NameRule::Subdomain);
        assert_eq!(
            messages(&errors),
            vec![
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Required value"
            ]
        );
    }

    #[test]
    fn namespace_names_are_labels() {
        let object = json!({"metadata": {"name": "a.b"}});
        assert_eq!(object_meta(&object, false, NameRule::Label).len(), 1);
        let object = json!({"metadata": {"name": "ab"}});
        assert!(object_meta(&object, false, NameRule::Label).is_empty());
    }

    #[test]
    fn labels_and_annotations_are_checked() {
        let object = json!({"metadata": {"name": "a", "namespace": "n",
            "labels": {"shard": "a", "bad key!": "x", "k": "-bad"},
            "annotations": {"big": "x".repeat(ANNOTATIONS_MAX_BYTES)}}});
        let found = messages(&object_meta(&object, true, NameRule::Subdomain));
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("metadata.labels: Invalid value: \"bad key!\": name part"));
        assert!(found[1].starts_with("metadata.labels[k]: Invalid value: \"-bad\": a valid label"));
        assert_eq!(
            found[2],
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn finalizers_must_be_qualified() {
        let object = json!({"metadata": {"name": "a", "namespace": "n",
            "finalizers": ["cams.chatapp.io/group", "kubernetes", "mine"]}});
        let found = messages(&object_meta(&object, true, NameRule::Subdomain));
        assert_eq!(
            found,
            vec![
                "metadata.finalizers[2]: Invalid value: \"mine\": name is neither a standard \
                 finalizer name nor is it fully qualified"
            ]
        );
    }

    #[test]
    fn no_finalizer_may_be_added_once_deletion_started() {
        let old = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": ["a.io/x"]}});
        let removed = json!({"metadata": {"finalizers": []}});
        assert!(object_meta_update(&removed, &old).is_empty());
        let added = json!({"metadata": {"finalizers": ["a.io/x", "b.io/y"]}});
        assert_eq!(
            messages(&object_meta_update(&added, &old)),
            vec![
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is \
                 being deleted, found new finalizers []string{\"b.io/y\"}"
            ]
        );
        let live = json!({"metadata": {"finalizers": []}});
        assert!(object_meta_update(&added, &live).is_empty());
    }

    #[test]
    fn secrets_keys_and_size_are_limited_and_type_is_immutable() {
        let ok = json!({"data": {"accessKeyId": "YQ=="}});
        assert!(secret(&ok, None).is_empty());
        let bad = json!({"data": {"bad/key": "YQ=="}});
        assert_eq!(secret(&bad, None).len(), 1);
        let huge = json!({"data": {"k": "A".repeat(SECRET_MAX_BYTES / 3 * 4 + 8)}});
        assert_eq!(
            messages(&secret(&huge, None)),
            vec!["data: Too long: may not be more than 1048576 bytes"]
        );
        let typed = json!({"type": "kubernetes.io/tls", "data": {}});
        assert_eq!(
            messages(&secret(&typed, Some(&ok))),
            vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
        let frozen = json!({"immutable": true, "data": {"a": "YQ=="}});
        let changed = json!({"immutable": true, "data": {"a": "Yg=="}});
        assert_eq!(secret(&changed, Some(&frozen)).len(), 1);
    }

    fn valid_event() -> Value {
        json!({
            "metadata": {"name": "team-a.17f", "namespace": "support"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "type": "Normal",
            "reason": "UpdateSucceeded",
            "action": "UpdateChatGroup",
            "note": "ok",
            "reportingController": "cams-operator",
            "reportingInstance": "cams-operator-0",
            "regarding": {"namespace": "support", "name": "team-a"},
        })
    }

    #[test]
    fn a_complete_event_is_valid() {
        assert!(event(&valid_event()).is_empty());
    }

    #[test]
    fn event_fields_are_required_and_limited() {
        let mut e = valid_event();
        e["reason"] = json!("R".repeat(129));
        e["action"] = json!("");
        e["note"] = json!("n".repeat(1025));
        e["type"] = json!("Info");
        assert_eq!(
            messages(&event(&e)),
            vec![
                "action: Required value",
                "reason: Invalid value: \"\": can have at most 128 characters",
                "message: Invalid value: \"\": can have at most 1024 characters",
                "type: Invalid value: \"\": has invalid value: Info",
            ]
        );
        let mut e = valid_event();
        e.as_object_mut().map(|m| m.remove("eventTime"));
        assert_eq!(messages(&event(&e)), vec!["eventTime: Required value"]);
    }

    #[test]
    fn an_event_about_nothing_in_its_namespace_is_refused() {
        let mut e = valid_event();
        e["regarding"] = json!({"name": "x"});
        assert_eq!(
            messages(&event(&e)),
            vec!["involvedObject.namespace: Invalid value: \"\": does not match event.namespace"]
        );
        e["metadata"]["namespace"] = json!("default");
        assert!(event(&e).is_empty());
    }

    #[test]
    fn lease_durations_must_be_positive() {
        let l = json!({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}});
        assert_eq!(
            messages(&lease(&l)),
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"
            ]
        );
    }
}
