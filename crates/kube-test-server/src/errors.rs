//! Failures as the API server reports them: `Status` objects, and the field errors of a
//! `422 Invalid` answer.
//!
//! The wording follows kube-apiserver 1.33:
//! - `k8s.io/apimachinery/pkg/util/validation/field/errors.go` (`Error`, `ErrorBody`, the
//!   constructors `Required`, `Invalid`, `NotSupported`, `TooLong`, `TooMany`, `Duplicate`,
//!   `Forbidden`, `TypeInvalid`; `TooLong` reads "may not be more than N bytes" since 1.32);
//! - `k8s.io/apimachinery/pkg/api/errors/errors.go` (`NewInvalid`: one cause per field error,
//!   the message `Kind.group "name" is invalid: [a, b]`; `NewForbidden`, `NewConflict`,
//!   `NewNotFound`, `NewAlreadyExists`, `NewResourceExpired`);
//! - `k8s.io/apimachinery/pkg/util/errors/errors.go` (`aggregate.Error`: one error alone, several
//!   in brackets, duplicates of the same text dropped).

use std::fmt;

use serde_json::{Value, json};

use super::kinds::ResourceKind;

/// A failed request, rendered as a `Status` object.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status code (`Status.code`).
    pub code: u16,
    /// `Status.reason`, for example `NotFound`.
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when the failure concerns one object.
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429 and 503 answers).
    pub retry_after: Option<u64>,
    /// `metadata.continue` of the `Status`: the fresh token of an expired list continuation.
    pub continue_token: Option<String>,
}

impl ApiError {
    /// A failure without object details.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            continue_token: None,
        }
    }

    /// Adds `details` naming the object (`kind` is the plural resource, as the API server
    /// reports it for NotFound, Conflict, AlreadyExists and Forbidden).
    pub fn about(mut self, kind: &ResourceKind, name: &str) -> Self {
        self.details = Some(details(name, &kind.group, &kind.plural));
        self
    }

    /// `404 NotFound`: `chatgroups.cams.chatapp.io "x" not found`.
    pub fn not_found(kind: &ResourceKind, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", kind.qualified());
        ApiError::new(404, "NotFound", message).about(kind, name)
    }

    /// `409 AlreadyExists`.
    pub fn already_exists(kind: &ResourceKind, name: &str) -> Self {
        let message = format!("{} \"{name}\" already exists", kind.qualified());
        ApiError::new(409, "AlreadyExists", message).about(kind, name)
    }

    /// `409 Conflict` for a stale `resourceVersion` (the optimistic-lock message).
    pub fn conflict(kind: &ResourceKind, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            kind.qualified()
        );
        ApiError::new(409, "Conflict", message).about(kind, name)
    }

    /// `403 Forbidden`, as `NewForbidden` builds it: `<resource>[.<group>][ "<name>"] is
    /// forbidden: <err>`, or `forbidden: <err>` when both `group` and `resource` are empty (a
    /// non-resource request). `details` hold the name, group and **resource** (plural, no
    /// subresource) as `kind`, each left out when empty, so a request with none of them gets
    /// `"details":{}`.
    pub fn forbidden(group: &str, resource: &str, name: &str, err: &str) -> Self {
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        let message = if qualified.is_empty() {
            format!("forbidden: {err}")
        } else if name.is_empty() {
            format!("{qualified} is forbidden: {err}")
        } else {
            format!("{qualified} {} is forbidden: {err}", go_quote(name))
        };
        ApiError {
            details: Some(details(name, group, resource)),
            ..ApiError::new(403, "Forbidden", message)
        }
    }

    /// `400 BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    /// `410 Expired` (`NewResourceExpired`): a watch or list from a version no longer kept.
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    /// `422 Invalid` with one cause per field error, as `NewInvalid` builds it. `group` and
    /// `kind` are the qualified kind's parts (`cams.chatapp.io`, `ChatGroup`), except for the
    /// registry's own resourceVersion check, which names the resource (`leases`).
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let message = match aggregate(errors) {
            Some(text) => format!("{qualified} \"{name}\" is invalid: {text}"),
            None => format!("{qualified} \"{name}\" is invalid"),
        };
        let mut details = details(name, group, kind);
        details["causes"] = errors
            .iter()
            .map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.field}))
            .collect();
        ApiError {
            details: Some(details),
            ..ApiError::new(422, "Invalid", message)
        }
    }

    /// [`ApiError::invalid`] for an object of `kind` (details name the kind, as for validation
    /// failures).
    pub fn invalid_object(kind: &ResourceKind, name: &str, errors: &[FieldError]) -> Self {
        ApiError::invalid(&kind.group, &kind.kind, name, errors)
    }

    /// Sets the `Retry-After` seconds.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The `Status` object the API server answers with.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(token) = &self.continue_token {
            status["metadata"]["continue"] = json!(token);
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        if let (429, Some(seconds)) = (self.code, self.retry_after) {
            status["details"]["retryAfterSeconds"] = json!(seconds);
        }
        status
    }
}

/// `metav1.StatusDetails` with its empty fields left out (`omitempty`).
fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut details = serde_json::Map::new();
    for (key, value) in [("name", name), ("group", group), ("kind", kind)] {
        if !value.is_empty() {
            details.insert(key.to_owned(), json!(value));
        }
    }
    Value::Object(details)
}

/// `aggregate.Error()` of a field error list: `None` when empty, the one message alone, or
/// several in brackets; repeated messages appear once.
fn aggregate(errors: &[FieldError]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    let messages: Vec<String> = errors
        .iter()
        .map(FieldError::to_string)
        .filter(|m| seen.insert(m.clone()))
        .collect();
    match messages.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(format!("[{}]", many.join(", "))),
    }
}

/// The kind of a field error (`field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `FieldValueNotFound`.
    NotFound,
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueDuplicate`.
    Duplicate,
    /// `FieldValueInvalid`.
    Invalid,
    /// `FieldValueNotSupported`.
    NotSupported,
    /// `FieldValueForbidden`.
    Forbidden,
    /// `FieldValueTooLong`.
    TooLong,
    /// `FieldValueTooMany`.
    TooMany,
    /// `FieldValueTypeInvalid`.
    TypeInvalid,
}

impl FieldErrorKind {
    /// The cause's `reason` (`metav1.CauseType`).
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The words that open the message (`ErrorType.String()`).
    fn words(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "Not found",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
        }
    }

    /// Whether this kind keeps CEL rules from running (`hasBlockingErr` in the custom resource
    /// strategy: enum, required, maxLength, maxItems/maxProperties and type failures).
    pub fn blocks_cel(self) -> bool {
        matches!(
            self,
            FieldErrorKind::NotSupported
                | FieldErrorKind::Required
                | FieldErrorKind::TooLong
                | FieldErrorKind::TooMany
                | FieldErrorKind::TypeInvalid
        )
    }
}

/// The bad value a field error shows.
#[derive(Clone, Debug, PartialEq)]
pub enum BadValue {
    /// Not shown.
    Omitted,
    /// A JSON value, printed as Go prints it (`%q` for strings, `%v` for numbers and booleans,
    /// `"null"` for null).
    Json(Value),
    /// Text printed as it is (a Go `%#v` rendering such as `0x0` or
    /// `map[string]interface {}{"type":"Ready"}`).
    Raw(String),
}

/// One field error (`field.Error`).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// What kind of failure.
    pub kind: FieldErrorKind,
    /// The field path, for example `spec.subject` or `status.conditions[1]` (`<nil>` for none).
    pub field: String,
    /// The value shown.
    pub value: BadValue,
    /// The detail after the value.
    pub detail: String,
}

impl FieldError {
    fn new(kind: FieldErrorKind, field: &str, value: BadValue, detail: impl Into<String>) -> Self {
        FieldError {
            kind,
            field: field.to_owned(),
            value,
            detail: detail.into(),
        }
    }

    /// `field.Required`.
    pub fn required(field: &str, detail: impl Into<String>) -> Self {
        FieldError::new(FieldErrorKind::Required, field, BadValue::Omitted, detail)
    }

    /// `field.Invalid`.
    pub fn invalid(field: &str, value: BadValue, detail: impl Into<String>) -> Self {
        FieldError::new(FieldErrorKind::Invalid, field, value, detail)
    }

    /// `field.TypeInvalid`.
    pub fn type_invalid(field: &str, value: BadValue, detail: impl Into<String>) -> Self {
        FieldError::new(FieldErrorKind::TypeInvalid, field, value, detail)
    }

    /// `field.NotSupported`: `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: &str, value: BadValue, supported: &[String]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError::new(FieldErrorKind::NotSupported, field, value, detail)
    }

    /// `field.TooLong` (1.32 and later): `Too long: may not be more than N bytes`.
    pub fn too_long(field: &str, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        FieldError::new(
            FieldErrorKind::TooLong,
            field,
            BadValue::Omitted,
            format!("may not be more than {max} {unit}"),
        )
    }

    /// `field.TooMany`: `Too many: 5: must have at most 3 items`.
    pub fn too_many(field: &str, actual: usize, max: usize) -> Self {
        FieldError::new(
            FieldErrorKind::TooMany,
            field,
            BadValue::Raw(actual.to_string()),
            format!("must have at most {max} items"),
        )
    }

    /// `field.Duplicate`.
    pub fn duplicate(field: &str, value: BadValue) -> Self {
        FieldError::new(FieldErrorKind::Duplicate, field, value, "")
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: &str, detail: impl Into<String>) -> Self {
        FieldError::new(FieldErrorKind::Forbidden, field, BadValue::Omitted, detail)
    }

    /// `ErrorBody()`: the message without the field.
    pub fn body(&self) -> String {
        let words = self.kind.words();
        let shows_value = !matches!(
            self.kind,
            FieldErrorKind::Required | FieldErrorKind::Forbidden | FieldErrorKind::TooLong
        );
        let mut body = match (&self.value, shows_value) {
            (BadValue::Json(value), true) => format!("{words}: {}", go_value(value)),
            (BadValue::Raw(text), true) => format!("{words}: {text}"),
            _ => words.to_owned(),
        };
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        body
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// A JSON value as `ErrorBody` prints it: strings quoted (`%q`), numbers and booleans plain,
/// null as `"null"`, objects and arrays as compact JSON.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::String(text) => go_quote(text),
        Value::Null => go_quote("null"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Go's `strconv.Quote`: double quotes, with `"` and `\` and control characters escaped.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_error_is_shown_alone_and_several_in_brackets() {
        let one = ApiError::invalid(
            "traefik.containo.us",
            "IngressRoute",
            "traefik-dashboard",
            &[FieldError::required("spec", "")],
        );
        assert_eq!(
            one.message,
            "IngressRoute.traefik.containo.us \"traefik-dashboard\" is invalid: spec: Required value"
        );
        let two = ApiError::invalid(
            "g",
            "K",
            "n",
            &[
                FieldError::too_long("spec.a", 128),
                FieldError::invalid("spec.b", BadValue::Json(json!("x")), "bad"),
            ],
        );
        assert_eq!(
            two.message,
            "K.g \"n\" is invalid: [spec.a: Too long: may not be more than 128 bytes, spec.b: Invalid value: \"x\": bad]"
        );
    }

    #[test]
    fn the_core_group_is_left_out_of_details() {
        let status =
            ApiError::invalid("", "Pod", "p", &[FieldError::required("spec", "")]).to_status();
        assert!(status["details"].get("group").is_none());
        assert_eq!(status["details"]["kind"], "Pod");
    }
}
