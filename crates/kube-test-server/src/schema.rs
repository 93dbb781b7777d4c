//! Structural-schema handling of custom resources, as kube-apiserver 1.33 does it: pruning of
//! unknown fields, defaulting, OpenAPI v3 validation with ratcheting, `x-kubernetes-list-type`
//! checks and CEL `x-kubernetes-validations` rules.
//!
//! A [`Schema`] is parsed once from one element of a CRD's `spec.versions`. On a write the
//! server calls, in kube-apiserver's order: [`Schema::prune`] (unknown fields, and nulls of
//! non-nullable fields without a default), [`Schema::apply_defaults`], then [`Schema::check`]
//! (or [`Schema::validate`]) after its own metadata validation.
//!
//! # What is emulated
//! - Types `object`, `array`, `string`, `integer`, `number`, `boolean`,
//!   `x-kubernetes-int-or-string`, `nullable`, `x-kubernetes-preserve-unknown-fields`,
//!   `additionalProperties`, `x-kubernetes-embedded-resource` (kept `apiVersion`, `kind`,
//!   `metadata`); `required`, `enum`, `maxLength`/`minLength` (in code points), `pattern` (RE2
//!   semantics on the `regex` crate, unanchored), `minimum`/`maximum` (+ exclusive),
//!   `multipleOf`, `format` (the formats CRDs support; others, such as `int32`, `int64` or
//!   `uint16`, are ignored as the API server ignores them), `minItems`/`maxItems`,
//!   `uniqueItems`, `minProperties`/`maxProperties`, and `allOf`/`anyOf`/`oneOf`/`not`.
//!   Error kinds and wording follow `kubeOpenAPIResultToFieldErrors`, including the API
//!   server's quirks: a string schema reports only its first failing check (maxLength, then
//!   minLength, then pattern), an object failing min/maxProperties reports nothing below it,
//!   a bad `format` is a `FieldValueTypeInvalid` error (so it keeps CEL rules from running),
//!   and a null value fails any `enum`.
//! - Ratcheting (GA in 1.33): on update an OpenAPI error, or a failure of a rule that does not
//!   read `oldSelf`, inside a value equal to its correlated old value is dropped (CEL failures
//!   become warnings). Correlation follows `CorrelatedObject`: object fields by name,
//!   `x-kubernetes-list-type: map` items by key; other lists only as a whole.
//! - `x-kubernetes-list-type: set` and `map` uniqueness (`Duplicate` at the second
//!   occurrence), checked on update only when the old object passed the check.
//! - CEL rules (see the `cel` module for the interpreter's limits), skipped with the `<nil>`
//!   cause when a blocking error (Required, NotSupported, TooLong, TooMany, TypeInvalid) was
//!   found first; transition rules skipped when no old value correlates.
//! - Defaults wherever a field is absent, including inside list items and map values; a null
//!   non-nullable field is defaulted; a nullable null is kept.
//! - Pruning with the API server's warning paths (`spec.foo`, `status.conditions[0].bar`), and
//!   of unknown `metadata` fields (top level, and inside `ownerReferences`/`managedFields`).
//!
//! # Not emulated
//! Cost budgets of CEL rules; the CEL type checker and the Kubernetes CEL libraries; the
//! validation of the CRD itself (a schema that is not structural is used as given);
//! `x-kubernetes-map-type`; the metadata validation of embedded resources; the `MatchCount`
//! heuristic kube-openapi uses to pick which failing `anyOf`/`oneOf` branch to report (the
//! branch with the fewest errors is reported); the order of sibling fields, which is random
//! in the API server (Go map iteration) and alphabetical here.
//!
//! Sources (kubernetes/kubernetes `staging/src/k8s.io/...` and kubernetes/kube-openapi):
//! `apiextensions-apiserver/pkg/apiserver/validation/validation.go`,
//! `apiextensions-apiserver/pkg/apiserver/validation/ratcheting.go`,
//! `apiextensions-apiserver/pkg/apiserver/validation/formats.go`,
//! `apiextensions-apiserver/pkg/registry/customresource/strategy.go` and `status_strategy.go`,
//! `apiextensions-apiserver/pkg/apiserver/schema/listtype/validation.go`,
//! `apiextensions-apiserver/pkg/apiserver/schema/pruning/algorithm.go`,
//! `apiextensions-apiserver/pkg/apiserver/schema/defaulting/algorithm.go` and `prunenulls.go`,
//! `apiserver/pkg/cel/common/equality.go`, kube-openapi `pkg/validation/validate/*.go`,
//! `pkg/validation/errors/schema.go` and `pkg/validation/strfmt/*.go`.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Number, Value};

use super::cel::{self, Outcome, Reason, Rule};
use super::errors::{BadValue, FieldError, go_quote};

/// The message of the extra cause when CEL rules were skipped (`hasBlockingErr`).
const RULES_NOT_CHECKED: &str = "some validation rules were not checked because the object was \
                                 invalid; correct the existing errors to complete validation";

/// The fields of `ObjectMeta` (k8s.io/apimachinery `meta/v1` `ObjectMeta`, 1.33).
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];
const OWNER_REFERENCE_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "name",
    "uid",
    "controller",
    "blockOwnerDeletion",
];
const MANAGED_FIELDS_ENTRY_FIELDS: &[&str] = &[
    "manager",
    "operation",
    "apiVersion",
    "time",
    "fieldsType",
    "fieldsV1",
    "subresource",
];
/// Fields kept at a resource root whatever the schema says (`metaFields` in pruning).
const META_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

/// Which part of the object the OpenAPI schema check covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A create or update of the resource itself: the whole object.
    Object,
    /// A write to `/status`: only `status` (the list-type and CEL checks still cover the whole
    /// object, as `status_strategy.go` does).
    Status,
}

/// How server-side apply merges a list (`x-kubernetes-list-type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole (the default for custom resources).
    Atomic,
    /// Merged as a set of scalars.
    Set,
    /// Merged by the values of these key fields.
    Map(Vec<String>),
}

/// The result of [`Schema::check`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Validation {
    /// The field errors, in the order the API server reports them.
    pub errors: Vec<FieldError>,
    /// Warnings (`Warning: 299 - "<text>"`): failures of CEL rules that ratcheting let through.
    pub warnings: Vec<String>,
}

/// The structural schema of one version of a custom resource.
#[derive(Clone, Debug)]
pub struct Schema {
    root: Node,
}

/// `additionalProperties`.
#[derive(Clone, Debug)]
pub(crate) enum Additional {
    /// `true` or `false`.
    Allows(bool),
    /// A schema for the values.
    Schema(Box<Node>),
}

/// A format the API server checks for CRDs (`supportedVersionedFormats` in `formats.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    BsonObjectId,
    Uri,
    Email,
    Hostname,
    Ipv4,
    Ipv6,
    Cidr,
    Mac,
    Uuid,
    Uuid3,
    Uuid4,
    Uuid5,
    Isbn,
    Isbn10,
    Isbn13,
    CreditCard,
    Ssn,
    HexColor,
    RgbColor,
    Byte,
    Password,
    Date,
    Duration,
    DateTime,
}

impl Format {
    /// The checked format named `name` (`-` ignored, as go-openapi normalizes names); `None`
    /// for formats the API server strips (`StripUnsupportedFormatsPostProcess`).
    fn from_name(name: &str) -> Option<Format> {
        Some(match name.replace('-', "").as_str() {
            "bsonobjectid" => Format::BsonObjectId,
            "uri" => Format::Uri,
            "email" => Format::Email,
            "hostname" => Format::Hostname,
            "ipv4" => Format::Ipv4,
            "ipv6" => Format::Ipv6,
            "cidr" => Format::Cidr,
            "mac" => Format::Mac,
            "uuid" => Format::Uuid,
            "uuid3" => Format::Uuid3,
            "uuid4" => Format::Uuid4,
            "uuid5" => Format::Uuid5,
            "isbn" => Format::Isbn,
            "isbn10" => Format::Isbn10,
            "isbn13" => Format::Isbn13,
            "creditcard" => Format::CreditCard,
            "ssn" => Format::Ssn,
            "hexcolor" => Format::HexColor,
            "rgbcolor" => Format::RgbColor,
            "byte" => Format::Byte,
            "password" => Format::Password,
            "date" => Format::Date,
            "duration" => Format::Duration,
            "datetime" => Format::DateTime,
            _ => return None,
        })
    }

    /// Whether `text` is valid (kube-openapi `strfmt` checkers; `email` and `uri` are
    /// approximations of Go's `net/mail` and `net/url` parsers).
    fn check(self, text: &str) -> bool {
        match self {
            Format::BsonObjectId => text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit()),
            Format::Uri => is_request_uri(text),
            Format::Email => is_email(text),
            Format::Hostname => is_hostname(text),
            Format::Ipv4 => parse_ip_sloppy(text).is_some() && text.contains('.'),
            Format::Ipv6 => parse_ip_sloppy(text).is_some() && text.contains(':'),
            Format::Cidr => is_cidr(text),
            Format::Mac => is_mac(text),
            Format::Uuid => UUID.is_match(text),
            Format::Uuid3 => UUID3.is_match(text),
            Format::Uuid4 => UUID4.is_match(text),
            Format::Uuid5 => UUID5.is_match(text),
            Format::Isbn => is_isbn10(text) || is_isbn13(text),
            Format::Isbn10 => is_isbn10(text),
            Format::Isbn13 => is_isbn13(text),
            Format::CreditCard => is_credit_card(text),
            Format::Ssn => SSN.is_match(text),
            Format::HexColor => HEX_COLOR.is_match(text),
            Format::RgbColor => RGB_COLOR.is_match(text),
            Format::Byte => BASE64.is_match(text),
            Format::Password => true,
            Format::Date => is_date(text),
            Format::Duration => is_strfmt_duration(text),
            Format::DateTime => is_date_time(text),
        }
    }
}

/// One node of the schema.
#[derive(Clone, Debug, Default)]
pub(crate) struct Node {
    /// `type`, empty when absent.
    pub(crate) ty: String,
    pub(crate) int_or_string: bool,
    nullable: bool,
    preserve_unknown: bool,
    /// `x-kubernetes-embedded-resource`, and the resource root.
    pub(crate) embedded: bool,
    /// `format` as written, empty when absent.
    pub(crate) format: String,
    /// The format the OpenAPI check applies, when the API server supports it.
    checked_format: Option<Format>,
    default: Option<Value>,
    enumeration: Option<Vec<Value>>,
    max_length: Option<u64>,
    min_length: Option<u64>,
    pattern: Option<(String, Regex)>,
    maximum: Option<f64>,
    exclusive_maximum: bool,
    minimum: Option<f64>,
    exclusive_minimum: bool,
    multiple_of: Option<f64>,
    max_items: Option<u64>,
    min_items: Option<u64>,
    unique_items: bool,
    max_properties: Option<u64>,
    min_properties: Option<u64>,
    required: Vec<String>,
    pub(crate) properties: BTreeMap<String, Node>,
    additional: Option<Additional>,
    pub(crate) items: Option<Box<Node>>,
    list_type: Option<String>,
    list_map_keys: Vec<String>,
    all_of: Vec<Node>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    not: Option<Box<Node>>,
    rules: Vec<Rule>,
    /// This node or a descendant has CEL rules.
    has_rules: bool,
}

fn uint(object: &Map<String, Value>, key: &str, at: &str) -> Result<Option<u64>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| format!("{at}: {key} must be a non-negative integer")),
    }
}

fn float(object: &Map<String, Value>, key: &str, at: &str) -> Result<Option<f64>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{at}: {key} must be a number")),
    }
}

fn flag(object: &Map<String, Value>, key: &str) -> bool {
    object.get(key).and_then(Value::as_bool).unwrap_or(false)
}

impl Node {
    fn parse(value: &Value, at: &str) -> Result<Node, String> {
        let object = value
            .as_object()
            .ok_or_else(|| format!("{at}: a schema must be an object"))?;
        if object.contains_key("$ref") {
            return Err(format!("{at}: $ref is not allowed in a CRD schema"));
        }
        let child_at = |name: &str| {
            if at.is_empty() {
                name.to_owned()
            } else {
                format!("{at}.{name}")
            }
        };
        let mut node = Node {
            ty: object
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            int_or_string: flag(object, "x-kubernetes-int-or-string"),
            nullable: flag(object, "nullable"),
            preserve_unknown: flag(object, "x-kubernetes-preserve-unknown-fields"),
            embedded: flag(object, "x-kubernetes-embedded-resource"),
            format: object
                .get("format")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            default: object.get("default").cloned(),
            enumeration: object.get("enum").and_then(Value::as_array).cloned(),
            max_length: uint(object, "maxLength", at)?,
            min_length: uint(object, "minLength", at)?,
            maximum: float(object, "maximum", at)?,
            exclusive_maximum: flag(object, "exclusiveMaximum"),
            minimum: float(object, "minimum", at)?,
            exclusive_minimum: flag(object, "exclusiveMinimum"),
            multiple_of: float(object, "multipleOf", at)?,
            max_items: uint(object, "maxItems", at)?,
            min_items: uint(object, "minItems", at)?,
            unique_items: flag(object, "uniqueItems"),
            max_properties: uint(object, "maxProperties", at)?,
            min_properties: uint(object, "minProperties", at)?,
            required: object
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            list_type: object
                .get("x-kubernetes-list-type")
                .and_then(Value::as_str)
                .map(str::to_owned),
            list_map_keys: object
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            ..Node::default()
        };
        node.checked_format = Format::from_name(&node.format);
        if let Some(pattern) = object.get("pattern").and_then(Value::as_str) {
            let regex = go_regex(pattern)
                .map_err(|e| format!("{at}: pattern {pattern:?} is not a valid regex: {e}"))?;
            node.pattern = Some((pattern.to_owned(), regex));
        }
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            for (name, child) in properties {
                node.properties
                    .insert(name.clone(), Node::parse(child, &child_at(name))?);
            }
        }
        node.additional = match object.get("additionalProperties") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(Additional::Allows(*b)),
            Some(child) => Some(Additional::Schema(Box::new(Node::parse(
                child,
                &child_at("*"),
            )?))),
        };
        match object.get("items") {
            None | Some(Value::Null) => {}
            Some(items @ Value::Object(_)) => {
                node.items = Some(Box::new(Node::parse(items, &format!("{at}[]"))?));
            }
            Some(_) => return Err(format!("{at}: items must be a single schema")),
        }
        for (key, list) in [
            ("allOf", &mut node.all_of),
            ("anyOf", &mut node.any_of),
            ("oneOf", &mut node.one_of),
        ] {
            if let Some(schemas) = object.get(key).and_then(Value::as_array) {
                for schema in schemas {
                    list.push(Node::parse(schema, at)?);
                }
            }
        }
        if let Some(not) = object.get("not") {
            node.not = Some(Box::new(Node::parse(not, at)?));
        }
        if let Some(rules) = object
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
        {
            let name = if at.is_empty() { "<root>" } else { at };
            for rule in rules {
                node.rules.push(Rule::compile(rule, name)?);
            }
        }
        node.has_rules = !node.rules.is_empty()
            || node.properties.values().any(|p| p.has_rules)
            || node.items.as_ref().is_some_and(|i| i.has_rules)
            || matches!(&node.additional, Some(Additional::Schema(s)) if s.has_rules);
        Ok(node)
    }

    /// The schema of field `key` of an object: its property, or `additionalProperties`.
    pub(crate) fn child(&self, key: &str) -> Option<&Node> {
        self.properties.get(key).or(match &self.additional {
            Some(Additional::Schema(schema)) => Some(schema),
            _ => None,
        })
    }

    fn additional_schema(&self) -> Option<&Node> {
        match &self.additional {
            Some(Additional::Schema(schema)) => Some(schema),
            _ => None,
        }
    }

    fn is_map_list(&self) -> bool {
        self.list_type.as_deref() == Some("map")
    }
}

impl Schema {
    /// Parses the schema of one CRD version (an element of `spec.versions`, with
    /// `schema.openAPIV3Schema`). Fails when there is no schema, when a pattern is not a valid
    /// regex, or when a CEL rule does not compile or uses what the test server cannot evaluate.
    pub fn from_crd_version(version: &Value) -> Result<Schema, String> {
        let schema = version.pointer("/schema/openAPIV3Schema").ok_or_else(|| {
            let name = version["name"].as_str().unwrap_or("?");
            format!("version {name} has no schema.openAPIV3Schema")
        })?;
        Schema::from_openapi(schema)
    }

    /// Parses an `openAPIV3Schema`.
    pub fn from_openapi(schema: &Value) -> Result<Schema, String> {
        let mut root = Node::parse(schema, "")?;
        root.embedded = true;
        Ok(Schema { root })
    }

    /// Removes the fields the schema does not declare (except under
    /// `x-kubernetes-preserve-unknown-fields`, and `apiVersion`, `kind` and `metadata` at a
    /// resource root, where `metadata` keeps only `ObjectMeta`'s fields), then the nulls of
    /// non-nullable fields that have no default. Returns the paths of the removed fields as
    /// the API server words them in `unknown field "<path>"` warnings: unknown `metadata`
    /// fields first, then the others sorted, as `unstructuredSchemaCoercer.apply` lists them.
    ///
    /// Sources: `pruning/algorithm.go`, `defaulting/prunenulls.go`, `objectmeta/coerce.go`.
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        let mut paths = Vec::new();
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            prune_object_meta(meta, "metadata", &mut paths);
        }
        let mut pruned = Vec::new();
        prune(
            Some(&self.root),
            object,
            &mut String::new(),
            true,
            &mut pruned,
        );
        pruned.sort();
        paths.extend(pruned);
        prune_nulls(Some(&self.root), object);
        prune_embedded_meta(&self.root, object, &mut String::new(), true, &mut paths);
        paths
    }

    /// Applies `default`s wherever a field is absent or a non-nullable field is null,
    /// recursively (inside list items and map values too). Source: `defaulting/algorithm.go`.
    pub fn apply_defaults(&self, object: &mut Value) {
        apply_defaults(&self.root, object);
    }

    /// Validates a custom resource (after [`Schema::prune`] and [`Schema::apply_defaults`]):
    /// the errors of [`Schema::check`] without earlier errors.
    pub fn validate(&self, new: &Value, old: Option<&Value>, scope: Scope) -> Vec<FieldError> {
        self.check(new, old, scope, &[]).errors
    }

    /// Validates a custom resource as the custom resource strategy does after the metadata
    /// checks: the OpenAPI schema (of the whole object, or of `status` for [`Scope::Status`]),
    /// the list-type uniqueness, then the CEL rules over the whole object. `old` is the stored
    /// object on update (`None` on create). `earlier` are the errors the server found before
    /// (metadata); they are not repeated in the result, but a blocking one among them keeps
    /// the CEL rules from running, as in `hasBlockingErr`.
    ///
    /// Sources: `customresource/strategy.go` (`Validate`, `ValidateUpdate`, `hasBlockingErr`),
    /// `customresource/status_strategy.go`, `customresource/validator.go`.
    pub fn check(
        &self,
        new: &Value,
        old: Option<&Value>,
        scope: Scope,
        earlier: &[FieldError],
    ) -> Validation {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        match scope {
            Scope::Object => self.root.validate(new, "", old, "", &mut errors),
            Scope::Status => {
                if let (Some(status), Some(schema)) =
                    (new.get("status"), self.root.properties.get("status"))
                {
                    let old_status = old.and_then(|o| o.get("status"));
                    schema.validate(status, "", old_status, "status", &mut errors);
                }
            }
        }
        let mut list_errors = Vec::new();
        self.root.list_errors(new, "", &mut list_errors);
        if !list_errors.is_empty() {
            let old_passed = old.is_none_or(|o| {
                let mut old_errors = Vec::new();
                self.root.list_errors(o, "", &mut old_errors);
                old_errors.is_empty()
            });
            if old_passed {
                errors.extend(list_errors);
            }
        }
        if self.root.has_rules {
            if earlier
                .iter()
                .chain(errors.iter())
                .any(|e| e.kind.blocks_cel())
            {
                errors.push(FieldError::invalid(
                    "<nil>",
                    BadValue::Json(Value::Null),
                    RULES_NOT_CHECKED,
                ));
            } else {
                self.root
                    .cel_walk(new, old, "", old, &mut errors, &mut warnings);
            }
        }
        Validation { errors, warnings }
    }

    /// The list type at a field path, for server-side apply: `path` names fields (`["status",
    /// "conditions"]`); lists on the way are entered implicitly (an index or `[]` segment may
    /// also be given). Lists without `x-kubernetes-list-type`, and paths the schema does not
    /// describe, are [`ListType::Atomic`].
    pub fn list_type(&self, path: &[&str]) -> ListType {
        let mut node = &self.root;
        for segment in path {
            if node.ty == "array" {
                let Some(items) = node.items.as_deref() else {
                    return ListType::Atomic;
                };
                node = items;
                if *segment == "[]" || segment.parse::<usize>().is_ok() {
                    continue;
                }
            }
            match node.child(segment) {
                Some(child) => node = child,
                None => return ListType::Atomic,
            }
        }
        match node.list_type.as_deref() {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(node.list_map_keys.clone()),
            _ => ListType::Atomic,
        }
    }
}

// ---- pruning ----

fn append_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn record(path: &str, key: &str, out: &mut Vec<String>) {
    let mut full = path.to_owned();
    append_key(&mut full, key);
    out.push(full);
}

/// `prune` of `pruning/algorithm.go`. `resource` marks a resource root.
fn prune(
    node: Option<&Node>,
    value: &mut Value,
    path: &mut String,
    resource: bool,
    out: &mut Vec<String>,
) {
    if let Some(node) = node
        && node.preserve_unknown
    {
        skip_prune(node, value, path, resource, out);
        return;
    }
    let len = path.len();
    match value {
        Value::Object(map) => {
            let Some(node) = node else {
                for key in map.keys() {
                    record(path, key, out);
                }
                map.clear();
                return;
            };
            let embedded = node.embedded || resource;
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if embedded && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                let child = if let Some(property) = node.properties.get(&key) {
                    Some(Some(property))
                } else {
                    node.additional.as_ref().map(|a| match a {
                        Additional::Schema(schema) => Some(&**schema),
                        Additional::Allows(_) => None,
                    })
                };
                match child {
                    Some(schema) => {
                        append_key(path, &key);
                        if let Some(v) = map.get_mut(&key) {
                            prune(schema, v, path, false, out);
                        }
                        path.truncate(len);
                    }
                    None => {
                        if !META_FIELDS.contains(&key.as_str()) || !path.is_empty() {
                            record(path, &key, out);
                        }
                        map.remove(&key);
                    }
                }
            }
        }
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            for (i, item) in items.iter_mut().enumerate() {
                path.push_str(&format!("[{i}]"));
                prune(item_node, item, path, false, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// `skipPrune`: below `x-kubernetes-preserve-unknown-fields`, only declared fields are
/// pruned further.
fn skip_prune(
    node: &Node,
    value: &mut Value,
    path: &mut String,
    resource: bool,
    out: &mut Vec<String>,
) {
    let len = path.len();
    match value {
        Value::Object(map) => {
            let embedded = node.embedded || resource;
            for (key, child) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                let schema = if let Some(property) = node.properties.get(key) {
                    Some(Some(property))
                } else {
                    node.additional.as_ref().map(|a| match a {
                        Additional::Schema(schema) => Some(&**schema),
                        Additional::Allows(_) => None,
                    })
                };
                if let Some(schema) = schema {
                    append_key(path, key);
                    prune(schema, child, path, false, out);
                    path.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_node) = node.items.as_deref() else {
                return;
            };
            for (i, item) in items.iter_mut().enumerate() {
                path.push_str(&format!("[{i}]"));
                skip_prune(item_node, item, path, false, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// `PruneNonNullableNullsWithoutDefaults`.
fn prune_nulls(node: Option<&Node>, value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, child| {
                let schema = node.and_then(|n| n.child(key));
                let drop =
                    child.is_null() && schema.is_some_and(|s| !s.nullable && s.default.is_none());
                if !drop {
                    prune_nulls(schema, child);
                }
                !drop
            });
        }
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            for item in items {
                prune_nulls(item_node, item);
            }
        }
        _ => {}
    }
}

/// Drops the unknown fields of an `ObjectMeta` (`GetObjectMetaWithOptions` with
/// `ReturnUnknownFieldPaths`), recording `metadata.foo`-style paths.
fn prune_object_meta(meta: &mut Map<String, Value>, path: &str, out: &mut Vec<String>) {
    meta.retain(|key, _| {
        let known = OBJECT_META_FIELDS.contains(&key.as_str());
        if !known {
            record(path, key, out);
        }
        known
    });
    for (field, known) in [
        ("ownerReferences", OWNER_REFERENCE_FIELDS),
        ("managedFields", MANAGED_FIELDS_ENTRY_FIELDS),
    ] {
        if let Some(Value::Array(entries)) = meta.get_mut(field) {
            for (i, entry) in entries.iter_mut().enumerate() {
                if let Value::Object(entry) = entry {
                    let entry_path = format!("{path}.{field}[{i}]");
                    entry.retain(|key, _| {
                        let keep = known.contains(&key.as_str());
                        if !keep {
                            record(&entry_path, key, out);
                        }
                        keep
                    });
                }
            }
        }
    }
}

/// The metadata coercion of embedded resources (`objectmeta.CoerceWithOptions`).
fn prune_embedded_meta(
    node: &Node,
    value: &mut Value,
    path: &mut String,
    root: bool,
    out: &mut Vec<String>,
) {
    let len = path.len();
    match value {
        Value::Object(map) => {
            if node.embedded
                && !root
                && let Some(Value::Object(meta)) = map.get_mut("metadata")
            {
                let mut meta_path = path.clone();
                append_key(&mut meta_path, "metadata");
                prune_object_meta(meta, &meta_path, out);
            }
            for (key, child) in map.iter_mut() {
                if node.embedded && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                if let Some(schema) = node.child(key) {
                    append_key(path, key);
                    prune_embedded_meta(schema, child, path, false, out);
                    path.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = node.items.as_deref() {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push_str(&format!("[{i}]"));
                    prune_embedded_meta(item_node, item, path, false, out);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

// ---- defaulting ----

/// `Default` of `defaulting/algorithm.go`.
fn apply_defaults(node: &Node, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, property) in &node.properties {
                let Some(default) = &property.default else {
                    continue;
                };
                let missing = match map.get(key) {
                    None => true,
                    Some(Value::Null) => !property.nullable,
                    Some(_) => false,
                };
                if missing {
                    map.insert(key.clone(), default.clone());
                }
            }
            for (key, child) in map.iter_mut() {
                if let Some(property) = node.properties.get(key) {
                    apply_defaults(property, child);
                } else if let Some(schema) = node.additional_schema() {
                    if child.is_null() && !schema.nullable {
                        *child = schema.default.clone().unwrap_or(Value::Null);
                    }
                    apply_defaults(schema, child);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_node) = node.items.as_deref() else {
                return;
            };
            for item in items {
                if item.is_null() && !item_node.nullable {
                    *item = item_node.default.clone().unwrap_or(Value::Null);
                }
                apply_defaults(item_node, item);
            }
        }
        _ => {}
    }
}

// ---- OpenAPI validation (kube-openapi SchemaValidator) ----

/// The field path of a kube-openapi error named `name` under `prefix`
/// (`kubeOpenAPIResultToFieldErrors`: `fldPath.Child(strings.TrimPrefix(err.Name, "."))`).
fn field_of(prefix: &str, name: &str) -> String {
    let name = name.strip_prefix('.').unwrap_or(name);
    match (prefix.is_empty(), name.is_empty()) {
        (true, true) => "<nil>".to_owned(),
        (false, true) => prefix.to_owned(),
        (true, false) => name.to_owned(),
        (false, false) => format!("{prefix}.{name}"),
    }
}

/// The field of an error that is not an `errors.Validation` (the `allOf`/`anyOf`/`oneOf`/`not`
/// messages): the validator's root path.
fn root_field(prefix: &str) -> String {
    if prefix.is_empty() {
        "<nil>".to_owned()
    } else {
        prefix.to_owned()
    }
}

/// A number as decoded by the API server: `int64` when the literal is an integer that fits,
/// else `float64`.
#[derive(Clone, Copy, Debug)]
enum GoNumber {
    Int(i64),
    Float(f64),
}

fn go_number(n: &Number) -> GoNumber {
    match n.as_i64() {
        Some(i) => GoNumber::Int(i),
        None => GoNumber::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// The JSON type name and Go format the API server infers from a decoded value
/// (`schemaInfoForType`).
fn schema_info(value: &Value) -> (&'static str, &'static str) {
    match value {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Number(n) => match go_number(n) {
            GoNumber::Int(_) => ("integer", "int64"),
            GoNumber::Float(_) => ("number", "float64"),
        },
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
    }
}

/// `swag.IsFloat64AJSONInteger`.
fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_992.0; // 2^53
    if !f.is_finite() || !(-MAX..=MAX).contains(&f) {
        return false;
    }
    f.fract() == 0.0
}

fn as_int(f: f64) -> i64 {
    // Go's int64(f) for the values CRD bounds take.
    f as i64
}

impl Node {
    fn types(&self) -> Vec<&str> {
        if self.int_or_string {
            vec!["integer", "string"]
        } else if self.ty.is_empty() {
            Vec::new()
        } else {
            vec![self.ty.as_str()]
        }
    }

    /// kube-openapi `SchemaValidator.Validate` with the ratcheting of `ratcheting.go`: `old`
    /// is the correlated old value, if any; errors inside a value equal to it are dropped.
    fn validate(
        &self,
        value: &Value,
        name: &str,
        old: Option<&Value>,
        prefix: &str,
        out: &mut Vec<FieldError>,
    ) {
        let start = out.len();
        self.validate_here(value, name, old, prefix, out);
        if out.len() > start
            && let Some(old) = old
            && correlated_equal(self, value, old)
        {
            out.truncate(start);
        }
    }

    fn validate_here(
        &self,
        value: &Value,
        name: &str,
        old: Option<&Value>,
        prefix: &str,
        out: &mut Vec<FieldError>,
    ) {
        if value.is_null() {
            self.check_type(value, name, prefix, out);
            self.check_enum(value, name, prefix, out);
            return;
        }
        self.check_type(value, name, prefix, out);
        self.check_composition(value, name, prefix, out);
        if let Value::String(text) = value {
            self.check_string(text, name, prefix, out);
            self.check_format(text, name, prefix, out);
        }
        if let Value::Number(n) = value {
            self.check_number(n, name, prefix, out);
        }
        if let Value::Array(items) = value {
            self.check_array(items, value, name, old, prefix, out);
        }
        self.check_enum(value, name, prefix, out);
        if let Value::Object(map) = value {
            self.check_object(map, value, name, old, prefix, out);
        }
    }

    /// `typeValidator`.
    fn check_type(&self, value: &Value, name: &str, prefix: &str, out: &mut Vec<FieldError>) {
        let types = self.types();
        let format = if self.checked_format.is_some() {
            self.format.as_str()
        } else {
            ""
        };
        if types.is_empty() && format.is_empty() {
            return;
        }
        let fail = |type_name: &str, shown: &str| {
            FieldError::type_invalid(
                &field_of(prefix, name),
                BadValue::Json(Value::String(shown.to_owned())),
                format!(
                    "{name} in body must be of type {type_name}: {}",
                    go_quote(shown)
                ),
            )
        };
        if value.is_null() {
            if !types.is_empty() && !types.contains(&"null") && !self.nullable {
                out.push(fail(&types.join(","), "null"));
            }
            return;
        }
        let (schema_type, go_format) = schema_info(value);
        let is_float_int = types.contains(&"integer")
            && matches!(value, Value::Number(n)
                if matches!(go_number(n), GoNumber::Float(f) if is_json_integer(f)));
        let is_int_float = schema_type == "integer" && types.contains(&"number");
        let type_matches = types.contains(&schema_type) || is_float_int || is_int_float;
        let string_or_slice = matches!(value, Value::String(_) | Value::Array(_));
        let has_format = !format.is_empty();
        // A number, boolean or object against a schema with a format: the format's type.
        let format_matches = type_matches || go_format == format;
        if has_format && !string_or_slice && !format_matches {
            out.push(fail(format, go_format));
            return;
        }
        // A string or array against a non-numeric schema with a format passes here.
        let numeric = types.contains(&"number") || types.contains(&"integer");
        if has_format && string_or_slice && !numeric {
            return;
        }
        if !type_matches {
            out.push(fail(&types.join(","), schema_type));
        }
    }

    /// `schemaPropsValidator` (`allOf`, `anyOf`, `oneOf`, `not`).
    fn check_composition(
        &self,
        value: &Value,
        name: &str,
        prefix: &str,
        out: &mut Vec<FieldError>,
    ) {
        let quoted = go_quote(name);
        let message = |text: String| {
            FieldError::invalid(
                &root_field(prefix),
                BadValue::Json(Value::String(String::new())),
                text,
            )
        };
        let run = |schema: &Node| {
            let mut errors = Vec::new();
            schema.validate(value, name, None, prefix, &mut errors);
            errors
        };
        let fewest = |results: Vec<Vec<FieldError>>| results.into_iter().min_by_key(Vec::len);
        if !self.any_of.is_empty() {
            let results: Vec<Vec<FieldError>> = self.any_of.iter().map(run).collect();
            if !results.iter().any(Vec::is_empty) {
                out.push(message(format!(
                    "{quoted} must validate at least one schema (anyOf)"
                )));
                out.extend(fewest(results).unwrap_or_default());
            }
        }
        if !self.one_of.is_empty() {
            let results: Vec<Vec<FieldError>> = self.one_of.iter().map(run).collect();
            let valid = results.iter().filter(|r| r.is_empty()).count();
            if valid != 1 {
                let detail = if valid == 0 {
                    "Found none valid".to_owned()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                out.push(message(format!(
                    "{quoted} must validate one and only one schema (oneOf). {detail}"
                )));
                if valid == 0 {
                    out.extend(fewest(results).unwrap_or_default());
                }
            }
        }
        if !self.all_of.is_empty() {
            let mut valid = 0;
            for schema in &self.all_of {
                let errors = run(schema);
                if errors.is_empty() {
                    valid += 1;
                }
                out.extend(errors);
            }
            if valid != self.all_of.len() {
                let detail = if valid == 0 { ". None validated" } else { "" };
                out.push(message(format!(
                    "{quoted} must validate all the schemas (allOf){detail}"
                )));
            }
        }
        if let Some(not) = &self.not
            && run(not).is_empty()
        {
            out.push(message(format!(
                "{quoted} must not validate the schema (not)"
            )));
        }
    }

    /// `stringValidator`: the first failing check only.
    fn check_string(&self, text: &str, name: &str, prefix: &str, out: &mut Vec<FieldError>) {
        let length = text.chars().count() as u64;
        let field = field_of(prefix, name);
        let shown = || BadValue::Json(Value::String(text.to_owned()));
        if let Some(max) = self.max_length
            && length > max
        {
            out.push(FieldError::too_long(&field, max as usize));
            return;
        }
        if let Some(min) = self.min_length
            && length < min
        {
            out.push(FieldError::invalid(
                &field,
                shown(),
                format!("{name} in body should be at least {min} chars long"),
            ));
            return;
        }
        if let Some((pattern, regex)) = &self.pattern
            && !regex.is_match(text)
        {
            out.push(FieldError::invalid(
                &field,
                shown(),
                format!("{name} in body should match '{pattern}'"),
            ));
        }
    }

    /// `formatValidator`: a failure is an `InvalidType` error.
    fn check_format(&self, text: &str, name: &str, prefix: &str, out: &mut Vec<FieldError>) {
        if let Some(format) = self.checked_format
            && !format.check(text)
        {
            out.push(FieldError::type_invalid(
                &field_of(prefix, name),
                BadValue::Json(Value::String(text.to_owned())),
                format!(
                    "{name} in body must be of type {}: {}",
                    self.format,
                    go_quote(text)
                ),
            ));
        }
    }

    /// `numberValidator`: multipleOf, minimum, maximum.
    fn check_number(&self, n: &Number, name: &str, prefix: &str, out: &mut Vec<FieldError>) {
        let field = field_of(prefix, name);
        let shown = || BadValue::Json(Value::Number(n.clone()));
        let data = go_number(n);
        let invalid = |text: String| FieldError::invalid(&field, shown(), text);
        if let Some(factor) = self.multiple_of {
            if factor < 0.0 {
                out.push(FieldError::invalid(
                    &field,
                    BadValue::Json(json_float(factor)),
                    format!(
                        "factor MultipleOf declared for {name} must be positive: {}",
                        go_float(factor)
                    ),
                ));
            } else {
                match data {
                    GoNumber::Int(i) if as_int(factor) != 0 => {
                        let f = as_int(factor);
                        if i % f != 0 {
                            out.push(invalid(format!(
                                "{name} in body should be a multiple of {f}"
                            )));
                        }
                    }
                    _ => {
                        let x = match data {
                            GoNumber::Int(i) => i as f64,
                            GoNumber::Float(f) => f,
                        };
                        let multiple = if factor < 1.0 {
                            1.0 / factor * x
                        } else {
                            x / factor
                        };
                        if !is_json_integer(multiple) {
                            out.push(invalid(format!(
                                "{name} in body should be a multiple of {}",
                                go_float(factor)
                            )));
                        }
                    }
                }
            }
        }
        if let Some(min) = self.minimum {
            let exclusive = self.exclusive_minimum;
            let (fails, bound) = match data {
                GoNumber::Int(i) => {
                    let m = as_int(min);
                    (if exclusive { i <= m } else { i < m }, m.to_string())
                }
                GoNumber::Float(f) => (if exclusive { f <= min } else { f < min }, go_float(min)),
            };
            if fails {
                let words = if exclusive {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                out.push(invalid(format!("{name} in body should be {words} {bound}")));
            }
        }
        if let Some(max) = self.maximum {
            let exclusive = self.exclusive_maximum;
            let (fails, bound) = match data {
                GoNumber::Int(i) => {
                    let m = as_int(max);
                    (if exclusive { i >= m } else { i > m }, m.to_string())
                }
                GoNumber::Float(f) => (if exclusive { f >= max } else { f > max }, go_float(max)),
            };
            if fails {
                let words = if exclusive {
                    "less than"
                } else {
                    "less than or equal to"
                };
                out.push(invalid(format!("{name} in body should be {words} {bound}")));
            }
        }
    }

    /// `schemaSliceValidator`: items, then minItems, maxItems, uniqueItems.
    fn check_array(
        &self,
        items: &[Value],
        value: &Value,
        name: &str,
        old: Option<&Value>,
        prefix: &str,
        out: &mut Vec<FieldError>,
    ) {
        if let Some(item_node) = self.items.as_deref() {
            for (i, item) in items.iter().enumerate() {
                let correlated = old.and_then(|o| correlate_index(self, value, o, i));
                item_node.validate(item, &format!("{name}[{i}]"), correlated, prefix, out);
            }
        }
        let field = field_of(prefix, name);
        let size = items.len();
        if let Some(min) = self.min_items
            && (size as u64) < min
        {
            out.push(FieldError::invalid(
                &field,
                BadValue::Json(Value::from(size)),
                format!("{name} in body should have at least {min} items"),
            ));
        }
        if let Some(max) = self.max_items
            && size as u64 > max
        {
            out.push(FieldError::too_many(&field, size, max as usize));
        }
        if self.unique_items
            && items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].iter().any(|b| go_deep_equal(a, b)))
        {
            out.push(FieldError::invalid(
                &field,
                BadValue::Json(Value::String(String::new())),
                format!("{name} in body shouldn't contain duplicates"),
            ));
        }
    }

    /// `basicCommonValidator` (`enum`); a null never matches.
    fn check_enum(&self, value: &Value, name: &str, prefix: &str, out: &mut Vec<FieldError>) {
        let Some(allowed) = &self.enumeration else {
            return;
        };
        if allowed.is_empty() {
            return;
        }
        if !value.is_null() && allowed.iter().any(|e| enum_matches(value, e)) {
            return;
        }
        let values: Vec<String> = allowed
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => go_json(other),
            })
            .collect();
        out.push(FieldError::not_supported(
            &field_of(prefix, name),
            bad_value(value),
            &values,
        ));
    }

    /// `objectValidator`: min/maxProperties (which stop here), additional properties,
    /// properties, required.
    fn check_object(
        &self,
        map: &Map<String, Value>,
        value: &Value,
        name: &str,
        old: Option<&Value>,
        prefix: &str,
        out: &mut Vec<FieldError>,
    ) {
        let field = field_of(prefix, name);
        let count = map.len();
        if let Some(min) = self.min_properties
            && (count as u64) < min
        {
            out.push(FieldError::invalid(
                &field,
                BadValue::Json(Value::from(count)),
                format!("{name} in body should have at least {min} properties"),
            ));
            return;
        }
        if let Some(max) = self.max_properties
            && count as u64 > max
        {
            out.push(FieldError::too_many(&field, count, max as usize));
            return;
        }
        match &self.additional {
            Some(Additional::Allows(false)) => {
                for key in map.keys().filter(|k| !self.properties.contains_key(*k)) {
                    out.push(FieldError::invalid(
                        &field,
                        BadValue::Json(Value::String(key.clone())),
                        format!("{name}.{key} in body is a forbidden property"),
                    ));
                }
            }
            Some(Additional::Schema(schema)) => {
                for (key, child) in map
                    .iter()
                    .filter(|(k, _)| !self.properties.contains_key(*k))
                {
                    let correlated = old.and_then(|o| correlate_key(self, value, o, key));
                    schema.validate(child, &format!("{name}.{key}"), correlated, prefix, out);
                }
            }
            _ => {}
        }
        for (key, property) in &self.properties {
            if let Some(child) = map.get(key) {
                let child_name = if name.is_empty() {
                    key.clone()
                } else {
                    format!("{name}.{key}")
                };
                let correlated = old.and_then(|o| correlate_key(self, value, o, key));
                property.validate(child, &child_name, correlated, prefix, out);
            }
        }
        for key in &self.required {
            if !map.contains_key(key) {
                out.push(FieldError::required(
                    &field_of(prefix, &format!("{name}.{key}")),
                    "",
                ));
            }
        }
    }
}

/// Whether a decoded value matches an enum value, as kube-openapi compares them: equal after
/// converting the value to the enum value's Go type (enum numbers decode as `float64`; an
/// integer converts to a string as a rune).
fn enum_matches(value: &Value, allowed: &Value) -> bool {
    match (value, allowed) {
        (Value::Number(v), Value::Number(a)) => v.as_f64() == a.as_f64(),
        (Value::Number(v), Value::String(a)) => match go_number(v) {
            GoNumber::Int(i) => {
                let rune = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                a.chars().eq(std::iter::once(rune))
            }
            GoNumber::Float(_) => false,
        },
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_)) => {
            enum_deep_equal(value, allowed)
        }
        (a, b) => a == b,
    }
}

/// `reflect.DeepEqual` between a decoded value and an enum value, whose numbers are all
/// `float64`: a decoded integer never equals one.
fn enum_deep_equal(value: &Value, allowed: &Value) -> bool {
    match (value, allowed) {
        (Value::Number(v), Value::Number(a)) => match go_number(v) {
            GoNumber::Int(_) => false,
            GoNumber::Float(f) => Some(f) == a.as_f64(),
        },
        (Value::Array(v), Value::Array(a)) => {
            v.len() == a.len() && v.iter().zip(a).all(|(x, y)| enum_deep_equal(x, y))
        }
        (Value::Object(v), Value::Object(a)) => {
            v.len() == a.len()
                && v.iter()
                    .all(|(k, x)| a.get(k).is_some_and(|y| enum_deep_equal(x, y)))
        }
        (a, b) => a == b,
    }
}

/// `reflect.DeepEqual` of two decoded values (`int64` and `float64` differ).
fn go_deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (go_number(x), go_number(y)) {
            (GoNumber::Int(x), GoNumber::Int(y)) => x == y,
            (GoNumber::Float(x), GoNumber::Float(y)) => x == y,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| go_deep_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| go_deep_equal(a, b)))
        }
        (a, b) => a == b,
    }
}

// ---- correlation (apiserver/pkg/cel/common/equality.go) ----

/// `CorrelatedObject.Key`: the old value of field `key`, when both values are objects that
/// have it and the schema describes it.
fn correlate_key<'a>(node: &Node, new: &Value, old: &'a Value, key: &str) -> Option<&'a Value> {
    let (Value::Object(new), Value::Object(old)) = (new, old) else {
        return None;
    };
    if !new.contains_key(key) || node.child(key).is_none() {
        return None;
    }
    old.get(key)
}

/// `CorrelatedObject.Index`: the old item with the same keys, for `x-kubernetes-list-type:
/// map` lists only.
fn correlate_index<'a>(
    node: &Node,
    new: &Value,
    old: &'a Value,
    index: usize,
) -> Option<&'a Value> {
    let (Value::Array(new), Value::Array(old)) = (new, old) else {
        return None;
    };
    if !node.is_map_list() || node.items.is_none() {
        return None;
    }
    find_map_item(node, old, new.get(index)?)
}

/// `MapList.Get`: the item of `items` whose list-map keys equal those of `item`.
fn find_map_item<'a>(node: &Node, items: &'a [Value], item: &Value) -> Option<&'a Value> {
    let Value::Object(item) = item else {
        return None;
    };
    if node.list_map_keys.is_empty() {
        return None;
    }
    let keys: Option<Vec<&Value>> = node.list_map_keys.iter().map(|k| item.get(k)).collect();
    let keys = keys?;
    items.iter().find(|candidate| {
        let Value::Object(candidate) = candidate else {
            return false;
        };
        node.list_map_keys
            .iter()
            .zip(&keys)
            .all(|(k, v)| candidate.get(k).is_some_and(|c| go_deep_equal(c, v)))
    })
}

/// `CorrelatedObject.CachedDeepEqual`: equal, with objects compared field by correlated field
/// (a field the schema does not describe makes them unequal) and map lists item by key.
fn correlated_equal(node: &Node, new: &Value, old: &Value) -> bool {
    match (new, old) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Array(n), Value::Array(o)) => {
            if n.len() != o.len() {
                return false;
            }
            let map_list = node.is_map_list() && node.items.is_some();
            if !map_list {
                return go_deep_equal(new, old);
            }
            let item_node = node.items.as_deref().unwrap_or(node);
            (0..n.len()).all(|i| {
                correlate_index(node, new, old, i)
                    .is_some_and(|o| correlated_equal(item_node, &n[i], o))
            })
        }
        (Value::Object(n), Value::Object(o)) => {
            n.len() == o.len()
                && n.iter().all(|(key, child)| {
                    match (correlate_key(node, new, old, key), node.child(key)) {
                        (Some(old_child), Some(schema)) => {
                            correlated_equal(schema, child, old_child)
                        }
                        _ => false,
                    }
                })
        }
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        (a, b) => go_deep_equal(a, b),
    }
}

// ---- x-kubernetes-list-type (listtype/validation.go) ----

fn path_child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// A value as a key of `validateListSet`'s maps: scalars by Go type and value, compound
/// values by their JSON.
fn set_key(value: Option<&Value>) -> String {
    match value {
        None => "unspecified".to_owned(),
        Some(Value::Null) => "nil".to_owned(),
        Some(Value::Bool(b)) => format!("bool:{b}"),
        Some(Value::String(s)) => format!("string:{s}"),
        Some(Value::Number(n)) => match go_number(n) {
            GoNumber::Int(i) => format!("int64:{i}"),
            GoNumber::Float(f) => format!("float64:{}", f.to_bits()),
        },
        Some(compound) => format!("json:{}", go_json(compound)),
    }
}

/// `validateListSet`: the index of the second occurrence of each repeated value.
fn second_occurrences(keys: &[String]) -> Vec<usize> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let count = seen.entry(key).or_insert(0);
        *count += 1;
        if *count == 2 {
            out.push(i);
        }
    }
    out
}

impl Node {
    /// `ValidateListSetsAndMaps`.
    fn list_errors(&self, value: &Value, path: &str, out: &mut Vec<FieldError>) {
        match value {
            Value::Array(items) => {
                match self.list_type.as_deref() {
                    Some("set") => {
                        let keys: Vec<String> = items.iter().map(|v| set_key(Some(v))).collect();
                        for i in second_occurrences(&keys) {
                            out.push(FieldError::duplicate(
                                &format!("{path}[{i}]"),
                                bad_value(&items[i]),
                            ));
                        }
                    }
                    Some("map") => self.list_map_errors(items, path, out),
                    _ => {}
                }
                if let Some(item_node) = self.items.as_deref() {
                    for (i, item) in items.iter().enumerate() {
                        item_node.list_errors(item, &format!("{path}[{i}]"), out);
                    }
                }
            }
            Value::Object(map) => {
                for (key, child) in map {
                    if let Some(property) = self.properties.get(key) {
                        property.list_errors(child, &path_child(path, key), out);
                    } else if let Some(schema) = self.additional_schema() {
                        schema.list_errors(child, &format!("{path}[{key}]"), out);
                    }
                }
            }
            _ => {}
        }
    }

    /// `validateListMap`.
    fn list_map_errors(&self, items: &[Value], path: &str, out: &mut Vec<FieldError>) {
        if let Some((i, item)) = items
            .iter()
            .enumerate()
            .find(|(_, x)| !x.is_null() && !x.is_object())
        {
            out.push(FieldError::invalid(
                &format!("{path}[{i}]"),
                bad_value(item),
                "must be an object for an array of list-type map",
            ));
            return;
        }
        if items.len() <= 1 {
            return;
        }
        if let [key_field] = self.list_map_keys.as_slice() {
            let keys: Vec<Option<&Value>> = items.iter().map(|x| x.get(key_field)).collect();
            let set_keys: Vec<String> = keys.iter().map(|k| set_key(*k)).collect();
            for i in second_occurrences(&set_keys) {
                let shown = match keys[i] {
                    None => "map[string]interface {}{}".to_owned(),
                    Some(key) => {
                        let mut map = Map::new();
                        map.insert(key_field.clone(), key.clone());
                        go_sharp_v(&Value::Object(map))
                    }
                };
                out.push(FieldError::duplicate(
                    &format!("{path}[{i}]"),
                    BadValue::Raw(shown),
                ));
            }
            return;
        }
        let keys: Vec<Value> = items
            .iter()
            .map(|x| {
                let mut key = Map::new();
                for field in &self.list_map_keys {
                    if let Some(v) = x.get(field) {
                        key.insert(field.clone(), v.clone());
                    }
                }
                Value::Object(key)
            })
            .collect();
        let set_keys: Vec<String> = keys.iter().map(|k| set_key(Some(k))).collect();
        for i in second_occurrences(&set_keys) {
            out.push(FieldError::duplicate(
                &format!("{path}[{i}]"),
                BadValue::Raw(go_sharp_v(&keys[i])),
            ));
        }
    }
}

// ---- CEL (schema/cel/validation.go) ----

impl Node {
    /// `Validator.validate`: the rules of this node, then its children. `old` is the value
    /// `oldSelf` binds to; `ratchet` the correlated old value for ratcheting.
    fn cel_walk(
        &self,
        value: &Value,
        old: Option<&Value>,
        path: &str,
        ratchet: Option<&Value>,
        errors: &mut Vec<FieldError>,
        warnings: &mut Vec<String>,
    ) {
        if !self.has_rules || value.is_null() {
            return;
        }
        if !self.rules.is_empty() {
            let this = cel::to_cel(Some(self), value);
            let old_value = old
                .filter(|o| !o.is_null())
                .map(|o| cel::to_cel(Some(self), o));
            let mut unchanged: Option<bool> = None;
            for rule in &self.rules {
                if rule.uses_old_self && old_value.is_none() {
                    continue;
                }
                let error = match rule.evaluate(&this, old_value.as_ref()) {
                    Outcome::Pass => continue,
                    Outcome::Fail(detail) => {
                        let field = if rule.field_path.is_empty() {
                            path.to_owned()
                        } else {
                            path_child(path, &rule.field_path)
                        };
                        let field = if field.is_empty() {
                            "<nil>".to_owned()
                        } else {
                            field
                        };
                        let shown = BadValue::Json(Value::String(self.ty.clone()));
                        match rule.reason {
                            Reason::Invalid => FieldError::invalid(&field, shown, detail),
                            Reason::Forbidden => FieldError::forbidden(&field, detail),
                            Reason::Required => FieldError::required(&field, detail),
                            Reason::Duplicate => FieldError::duplicate(&field, shown),
                        }
                    }
                    Outcome::Error(detail) => FieldError::invalid(
                        if path.is_empty() { "<nil>" } else { path },
                        BadValue::Json(Value::String(self.ty.clone())),
                        detail,
                    ),
                };
                let ratcheted = !rule.uses_old_self
                    && *unchanged.get_or_insert_with(|| {
                        ratchet.is_some_and(|o| correlated_equal(self, value, o))
                    });
                if ratcheted {
                    warnings.push(error.to_string());
                } else {
                    errors.push(error);
                }
            }
        }
        match value {
            Value::Array(items) => {
                let Some(item_node) = self.items.as_deref() else {
                    return;
                };
                let old_items = old.and_then(Value::as_array);
                for (i, item) in items.iter().enumerate() {
                    let old_item = match old_items {
                        Some(old_items) if self.is_map_list() => {
                            find_map_item(self, old_items, item)
                        }
                        _ => None,
                    };
                    let correlated = ratchet.and_then(|o| correlate_index(self, value, o, i));
                    item_node.cel_walk(
                        item,
                        old_item,
                        &format!("{path}[{i}]"),
                        correlated,
                        errors,
                        warnings,
                    );
                }
            }
            Value::Object(map) => {
                for (key, child) in map {
                    let (schema, child_path) = if let Some(property) = self.properties.get(key) {
                        (property, path_child(path, key))
                    } else if let Some(schema) = self.additional_schema() {
                        (schema, format!("{path}[{key}]"))
                    } else {
                        continue;
                    };
                    let old_child = old.and_then(|o| o.get(key));
                    let correlated = ratchet.and_then(|o| correlate_key(self, value, o, key));
                    schema.cel_walk(child, old_child, &child_path, correlated, errors, warnings);
                }
            }
            _ => {}
        }
    }
}

// ---- Go renderings ----

/// How `ErrorBody` shows a bad value: scalars as they are, objects and arrays in Go syntax.
fn bad_value(value: &Value) -> BadValue {
    match value {
        Value::Array(_) | Value::Object(_) => BadValue::Raw(go_sharp_v(value)),
        scalar => BadValue::Json(scalar.clone()),
    }
}

fn json_float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Go's `%v` of a `float64` (`strconv.FormatFloat(f, 'g', -1, 64)` with the exponent used
/// below 1e-4 and from 1e21).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..21).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `json.Marshal` of a decoded value (keys sorted, floats as Go writes them).
fn go_json(value: &Value) -> String {
    match value {
        Value::Number(n) => match go_number(n) {
            GoNumber::Int(i) => i.to_string(),
            GoNumber::Float(f) => {
                let abs = f.abs();
                if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                    go_float(f)
                } else {
                    format!("{f}")
                }
            }
        },
        Value::String(s) => serde_json::to_string(s)
            .unwrap_or_default()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_json).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", go_json(&Value::String(k.clone())), go_json(v)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// Go's `%#v` of a decoded value: `map[string]interface {}{"type":"Ready"}`.
pub(crate) fn go_sharp_v(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match go_number(n) {
            GoNumber::Int(i) => i.to_string(),
            GoNumber::Float(f) => go_float(f),
        },
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_sharp_v).collect();
            format!("[]interface {{}}{{{}}}", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_sharp_v(v)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", parts.join(", "))
        }
    }
}

// ---- regular expressions ----

/// Compiles a Go (RE2) regular expression with the `regex` crate: Perl classes (`\d`, `\w`,
/// `\s` and their negations) and `\b` are made ASCII-only as in RE2, and `\Q...\E` is
/// expanded. Matching is unanchored, as Go's `MatchString`.
pub(crate) fn go_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&translate_go_regex(pattern)).map_err(|e| e.to_string())
}

fn translate_go_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_class_start = class_start;
        class_start = false;
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let replacement = match (in_class, next) {
                    (false, 'd') => "[0-9]",
                    (false, 'D') => "[^0-9]",
                    (false, 's') => "[\\t\\n\\f\\r ]",
                    (false, 'S') => "[^\\t\\n\\f\\r ]",
                    (false, 'w') => "[0-9A-Za-z_]",
                    (false, 'W') => "[^0-9A-Za-z_]",
                    (false, 'b') => "(?-u:\\b)",
                    (false, 'B') => "(?-u:\\B)",
                    (true, 'd') => "0-9",
                    (true, 'D') => "[:^digit:]",
                    (true, 's') => "\\t\\n\\f\\r ",
                    (true, 'S') => "[:^space:]",
                    (true, 'w') => "0-9A-Za-z_",
                    (true, 'W') => "[:^word:]",
                    (_, 'Q') => {
                        let mut literal = String::new();
                        while let Some(c) = chars.next() {
                            if c == '\\' && chars.peek() == Some(&'E') {
                                chars.next();
                                break;
                            }
                            literal.push(c);
                        }
                        out.push_str(&regex::escape(&literal));
                        continue;
                    }
                    _ => {
                        out.push('\\');
                        out.push(next);
                        continue;
                    }
                };
                out.push_str(replacement);
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class such as [:alpha:], copied whole.
                out.push('[');
                for c in chars.by_ref() {
                    out.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            ']' if in_class && !at_class_start => {
                in_class = false;
                out.push(']');
            }
            '[' => out.push_str("\\["),
            other => out.push(other),
        }
    }
    out
}

// ---- formats (kube-openapi pkg/validation/strfmt) ----

fn static_regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in pattern {pattern:?}: {e}"))
}

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
});
static UUID3: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
});
static UUID4: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
});
static UUID5: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
});
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9\-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
    )
});
static SSN: LazyLock<Regex> =
    LazyLock::new(|| static_regex(r"^[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}$"));
static HEX_COLOR: LazyLock<Regex> =
    LazyLock::new(|| static_regex(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"));
static RGB_COLOR: LazyLock<Regex> = LazyLock::new(|| {
    let n = r"(0|[1-9][0-9]?|1[0-9][0-9]?|2[0-4][0-9]|25[0-5])";
    static_regex(&format!(r"^rgb\(\s*{n}\s*,\s*{n}\s*,\s*{n}\s*\)$"))
});
static BASE64: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$",
    )
});
static CREDIT_CARD: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35[0-9]{3})[0-9]{11}|6[27][0-9]{14})$",
    )
});
static DATE_TIME_TAIL: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
});

/// `strfmt.IsDate`: Go's `time.Parse("2006-01-02", s)`.
fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        text.get(r.clone())
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// `strfmt.IsDateTime`.
fn is_date_time(text: &str) -> bool {
    if text.len() < 4 {
        return false;
    }
    let lower = text.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    let Some(m) = DATE_TIME_TAIL.captures(parts[1]) else {
        return false;
    };
    &m[1] <= "23" && &m[2] <= "59" && &m[3] <= "59"
}

/// `strfmt.IsDuration`: Go durations, or a number and a unit such as `3 days`.
fn is_strfmt_duration(text: &str) -> bool {
    static SPELLED: LazyLock<Regex> =
        LazyLock::new(|| static_regex(r"^(-?[0-9]+)\s*([A-Za-z\x{b5}\x{3bc}]+)$"));
    if cel::parse_go_duration(text).is_ok() {
        return true;
    }
    let Some(m) = SPELLED.captures(text) else {
        return false;
    };
    matches!(
        &m[2],
        "ns" | "us"
            | "\u{b5}s"
            | "\u{3bc}s"
            | "ms"
            | "s"
            | "m"
            | "h"
            | "d"
            | "w"
            | "nanosecond"
            | "nanoseconds"
            | "microsecond"
            | "microseconds"
            | "millisecond"
            | "milliseconds"
            | "second"
            | "seconds"
            | "sec"
            | "secs"
            | "minute"
            | "minutes"
            | "min"
            | "mins"
            | "hour"
            | "hours"
            | "hr"
            | "hrs"
            | "day"
            | "days"
            | "week"
            | "weeks"
    )
}

/// `netutils.ParseIPSloppy` (leading zeros tolerated in IPv4 parts).
fn parse_ip_sloppy(text: &str) -> Option<()> {
    if text.parse::<Ipv6Addr>().is_ok() {
        return Some(());
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    for part in parts {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.parse::<u16>().ok()? > 255 {
            return None;
        }
    }
    Some(())
}

/// `netutils.ParseCIDRSloppy`.
fn is_cidr(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    if ip.contains(':') {
        ip.parse::<Ipv6Addr>().is_ok() && prefix <= 128
    } else {
        parse_ip_sloppy(ip).is_some() && prefix <= 32
    }
}

/// `net.ParseMAC`: 6, 8 or 20 octets, separated by `:` or `-`, or dotted groups of four hex
/// digits.
fn is_mac(text: &str) -> bool {
    let valid_octets = |n: usize| n == 6 || n == 8 || n == 20;
    if text.len() < 14 {
        return false;
    }
    let bytes = text.as_bytes();
    if bytes[2] == b':' || bytes[2] == b'-' {
        let separator = bytes[2] as char;
        let groups: Vec<&str> = text.split(separator).collect();
        return valid_octets(groups.len())
            && groups
                .iter()
                .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    if bytes[4] == b'.' {
        let groups: Vec<&str> = text.split('.').collect();
        return valid_octets(groups.len() * 2)
            && groups
                .iter()
                .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    false
}

/// `strfmt.IsHostname`.
fn is_hostname(text: &str) -> bool {
    HOSTNAME.is_match(text) && text.len() <= 255 && text.split('.').all(|p| p.len() <= 63)
}

/// An approximation of `net/mail.ParseAddress` (`Name <local@domain>` or `local@domain`).
fn is_email(text: &str) -> bool {
    let address = match (text.rfind('<'), text.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => text.trim(),
    };
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

/// An approximation of `url.ParseRequestURI`: an absolute URI or an absolute path.
fn is_request_uri(text: &str) -> bool {
    static ABSOLUTE: LazyLock<Regex> =
        LazyLock::new(|| static_regex(r"^[A-Za-z][A-Za-z0-9+.\-]*:/"));
    if text.is_empty() || text.chars().any(|c| c.is_control()) {
        return false;
    }
    let without_fragment = text.split('#').next().unwrap_or_default();
    if without_fragment.starts_with('/') {
        return true;
    }
    if !ABSOLUTE.is_match(without_fragment) {
        return false;
    }
    // The host of `scheme://host/...` may not contain spaces.
    match without_fragment.split_once("://") {
        Some((_, rest)) => !rest.split('/').next().unwrap_or_default().contains(' '),
        None => true,
    }
}

fn isbn_digits(text: &str) -> String {
    text.chars().filter(|c| *c != '-' && *c != ' ').collect()
}

/// `govalidator.IsISBN10`.
fn is_isbn10(text: &str) -> bool {
    let s = isbn_digits(text);
    let b = s.as_bytes();
    if b.len() != 10
        || !b[..9].iter().all(u8::is_ascii_digit)
        || !(b[9].is_ascii_digit() || b[9] == b'X')
    {
        return false;
    }
    let mut sum = 0u32;
    for (i, c) in b[..9].iter().enumerate() {
        sum += (i as u32 + 1) * u32::from(c - b'0');
    }
    sum += if b[9] == b'X' {
        100
    } else {
        10 * u32::from(b[9] - b'0')
    };
    sum.is_multiple_of(11)
}

/// `govalidator.IsISBN13`.
fn is_isbn13(text: &str) -> bool {
    let s = isbn_digits(text);
    let b = s.as_bytes();
    if b.len() != 13 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..12]
        .iter()
        .enumerate()
        .map(|(i, c)| u32::from(c - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    (10 - sum % 10) % 10 == u32::from(b[12] - b'0')
}

/// `govalidator.IsCreditCard`: the card pattern and the Luhn checksum.
fn is_credit_card(text: &str) -> bool {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if text
        .chars()
        .any(|c| !c.is_ascii_digit() && c != ' ' && c != '-')
        || !CREDIT_CARD.is_match(&digits)
    {
        return false;
    }
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// Standard base64 with padding, for `byte` strings in CEL.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let bytes = text.as_bytes();
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let padding = chunk.iter().rev().take_while(|b| **b == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = if i >= 4 - padding { 0 } else { value(*c)? };
            n = (n << 6) | v;
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::FieldErrorKind;
    use serde_json::json;

    fn schema(openapi: Value) -> Schema {
        Schema::from_openapi(&openapi).expect("the schema parses")
    }

    /// A root with one `spec` object of the given properties.
    fn spec_schema(properties: Value) -> Schema {
        schema(json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": properties}},
        }))
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    fn create_errors(schema: &Schema, object: &Value) -> Vec<String> {
        messages(&schema.validate(object, None, Scope::Object))
    }

    fn crd_schema() -> Schema {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../crds/chatgroup.yaml"
        ))
        .expect("read the CRD");
        let crd: Value = serde_yaml::from_str(&text).expect("the CRD parses");
        let version = crd["spec"]["versions"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["storage"] == json!(true)))
            .expect("a storage version");
        Schema::from_crd_version(version).expect("the CRD schema loads")
    }

    fn chat_group() -> Value {
        json!({
            "apiVersion": "cams.chatapp.io/v1alpha1",
            "kind": "ChatGroup",
            "metadata": {"name": "support", "namespace": "default"},
            "spec": {
                "businessNumber": "8613800001234",
                "custSpaceId": "cams-8f2k1x",
                "groupId": "EA303SUPPORT",
                "subject": "Support",
            },
        })
    }

    /// What the server stores for a request body: pruned, then defaulted.
    fn admitted(schema: &Schema, mut object: Value) -> Value {
        schema.prune(&mut object);
        schema.apply_defaults(&mut object);
        object
    }

    fn condition(kind: &str) -> Value {
        json!({
            "type": kind,
            "status": "True",
            "reason": "Synced",
            "message": "",
            "lastTransitionTime": "2025-01-02T03:04:05Z",
        })
    }

    const NOT_CHECKED: &str = "<nil>: Invalid value: \"null\": some validation rules were not \
                               checked because the object was invalid; correct the existing \
                               errors to complete validation";

    // ---- the ChatGroup CRD ----

    #[test]
    fn a_valid_chat_group_passes() {
        let schema = crd_schema();
        let object = admitted(&schema, chat_group());
        assert_eq!(create_errors(&schema, &object), Vec::<String>::new());
    }

    #[test]
    fn chat_group_defaults_are_filled_in() {
        let schema = crd_schema();
        let object = admitted(&schema, chat_group());
        let spec = &object["spec"];
        assert_eq!(spec["channelType"], json!("WHATSAPP"));
        assert_eq!(spec["region"], json!("ap-southeast-1"));
        assert_eq!(spec["driftPolicy"], json!("Enforce"));
        assert_eq!(spec["managementPolicy"], json!("Manage"));
        assert_eq!(spec["resyncInterval"], json!("1h"));
        assert_eq!(spec["subject"], json!("Support"));
    }

    #[test]
    fn a_condition_without_message_gets_an_empty_one() {
        let schema = crd_schema();
        let mut object = chat_group();
        object["status"] = json!({"conditions": [{
            "type": "Ready", "status": "True", "reason": "Synced",
            "lastTransitionTime": "2025-01-02T03:04:05Z",
        }]});
        let object = admitted(&schema, object);
        assert_eq!(object["status"]["conditions"][0]["message"], json!(""));
    }

    #[test]
    fn a_subject_of_200_characters_is_too_long_and_blocks_the_rules() {
        let schema = crd_schema();
        let mut object = chat_group();
        object["spec"]["subject"] = json!("x".repeat(200));
        let object = admitted(&schema, object);
        let errors = schema.validate(&object, None, Scope::Object);
        assert_eq!(
            messages(&errors),
            [
                "spec.subject: Too long: may not be more than 128 bytes",
                NOT_CHECKED
            ]
        );
        assert_eq!(errors[0].kind, FieldErrorKind::TooLong);
    }

    #[test]
    fn a_business_number_with_letters_fails_the_pattern() {
        let schema = crd_schema();
        let mut object = chat_group();
        object["spec"]["businessNumber"] = json!("abc");
        let object = admitted(&schema, object);
        let errors = schema.validate(&object, None, Scope::Object);
        assert_eq!(
            messages(&errors),
            [
                "spec.businessNumber: Invalid value: \"abc\": spec.businessNumber in body should \
              match '^[0-9]+$'"
            ]
        );
        assert_eq!(errors[0].kind, FieldErrorKind::Invalid);
    }

    #[test]
    fn an_unknown_management_policy_lists_the_supported_ones() {
        let schema = crd_schema();
        let mut object = chat_group();
        object["spec"]["managementPolicy"] = json!("Sometimes");
        let object = admitted(&schema, object);
        let errors = schema.validate(&object, None, Scope::Object);
        assert_eq!(
            messages(&errors),
            [
                "spec.managementPolicy: Unsupported value: \"Sometimes\": supported values: \
                 \"Manage\", \"Observe\", \"Plan\"",
                NOT_CHECKED
            ]
        );
        assert_eq!(errors[0].kind, FieldErrorKind::NotSupported);
    }

    #[test]
    fn a_missing_group_id_is_required_unless_the_group_is_created() {
        let schema = crd_schema();
        let mut object = chat_group();
        object["spec"].as_object_mut().unwrap().remove("groupId");
        let object = admitted(&schema, object.clone());
        assert_eq!(
            create_errors(&schema, &object),
            [
                "spec: Invalid value: \"object\": groupId is required unless creationPolicy is Create"
            ]
        );
        let mut created = object;
        created["spec"]["creationPolicy"] = json!("Create");
        let created = admitted(&schema, created);
        assert_eq!(create_errors(&schema, &created), Vec::<String>::new());
    }

    #[test]
    fn a_changed_group_id_is_immutable() {
        let schema = crd_schema();
        let old = admitted(&schema, chat_group());
        let mut new = old.clone();
        new["spec"]["groupId"] = json!("EA303OTHER");
        let errors = schema.validate(&new, Some(&old), Scope::Object);
        assert_eq!(
            messages(&errors),
            ["spec: Invalid value: \"object\": groupId cannot change or be removed once set"]
        );
        assert_eq!(errors[0].kind, FieldErrorKind::Invalid);
    }

    #[test]
    fn a_resync_interval_under_a_minute_fails_its_rule() {
        let schema = crd_schema();
        let mut object = chat_group();
        object["spec"]["resyncInterval"] = json!("30s");
        let object = admitted(&schema, object);
        assert_eq!(
            create_errors(&schema, &object),
            ["spec.resyncInterval: Invalid value: \"string\": resyncInterval must be at least 1m"]
        );
        for ok in ["1m", "60s", "1h30m", "1.5h", "12h"] {
            let mut object = object.clone();
            object["spec"]["resyncInterval"] = json!(ok);
            assert_eq!(
                create_errors(&schema, &object),
                Vec::<String>::new(),
                "{ok}"
            );
        }
    }

    #[test]
    fn a_blocking_error_suppresses_the_rules_and_adds_the_nil_cause() {
        let schema = crd_schema();
        let mut object = chat_group();
        object["spec"]["resyncInterval"] = json!("30s");
        object["spec"]["managementPolicy"] = json!("Sometimes");
        let object = admitted(&schema, object);
        let errors = schema.validate(&object, None, Scope::Object);
        assert_eq!(
            messages(&errors),
            [
                "spec.managementPolicy: Unsupported value: \"Sometimes\": supported values: \
                 \"Manage\", \"Observe\", \"Plan\"",
                NOT_CHECKED
            ]
        );
        assert_eq!(errors[1].field, "<nil>");
        assert_eq!(errors[1].kind, FieldErrorKind::Invalid);
    }

    #[test]
    fn an_earlier_blocking_metadata_error_also_suppresses_the_rules() {
        let schema = crd_schema();
        let mut object = chat_group();
        object["spec"]["resyncInterval"] = json!("30s");
        let object = admitted(&schema, object);
        let earlier = [FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )];
        let result = schema.check(&object, None, Scope::Object, &earlier);
        assert_eq!(messages(&result.errors), [NOT_CHECKED]);
    }

    #[test]
    fn duplicate_condition_types_are_reported_at_the_second() {
        let schema = crd_schema();
        let old = admitted(&schema, chat_group());
        let mut new = old.clone();
        new["status"] =
            json!({"conditions": [condition("Ready"), condition("Synced"), condition("Ready")]});
        let errors = schema.validate(&new, Some(&old), Scope::Status);
        assert_eq!(
            messages(&errors),
            ["status.conditions[2]: Duplicate value: map[string]interface {}{\"type\":\"Ready\"}"]
        );
        assert_eq!(errors[0].kind, FieldErrorKind::Duplicate);
    }

    #[test]
    fn an_invalid_unchanged_spec_does_not_fail_a_status_write() {
        let schema = crd_schema();
        // Stored before the rules tightened: a pattern and a rule failure in the spec.
        let mut old = admitted(&schema, chat_group());
        old["spec"]["businessNumber"] = json!("abc");
        old["spec"]["resyncInterval"] = json!("30s");
        let mut new = old.clone();
        new["status"] = json!({"conditions": [condition("Ready")]});
        let result = schema.check(&new, Some(&old), Scope::Status, &[]);
        assert_eq!(result.errors, []);
        // The rule failure surfaces as a warning, as the API server sends it.
        assert_eq!(
            result.warnings,
            ["spec.resyncInterval: Invalid value: \"string\": resyncInterval must be at least 1m"]
        );
        // The same spec on the main resource, unchanged, is ratcheted too ...
        let mut relabelled = old.clone();
        relabelled["spec"]["subject"] = json!("New subject");
        assert_eq!(schema.validate(&relabelled, Some(&old), Scope::Object), []);
        // ... but changing the invalid field to another invalid value is not (and the
        // immutability rule, a transition rule, fails too).
        relabelled["spec"]["businessNumber"] = json!("abcd");
        assert_eq!(
            messages(&schema.validate(&relabelled, Some(&old), Scope::Object)),
            [
                "spec.businessNumber: Invalid value: \"abcd\": spec.businessNumber in body \
                 should match '^[0-9]+$'",
                "spec.businessNumber: Invalid value: \"string\": businessNumber is immutable",
            ]
        );
    }

    #[test]
    fn an_unknown_spec_field_is_pruned_and_reported() {
        let schema = crd_schema();
        let mut object = chat_group();
        object["spec"]["foo"] = json!("bar");
        object["status"] = json!({"conditions": [{"type": "Ready", "bar": 1}], "zzz": true});
        object["metadata"]["color"] = json!("blue");
        let paths = schema.prune(&mut object);
        assert_eq!(
            paths,
            [
                "metadata.color",
                "spec.foo",
                "status.conditions[0].bar",
                "status.zzz"
            ]
        );
        assert_eq!(object["spec"].get("foo"), None);
        assert_eq!(object["metadata"].get("color"), None);
        assert_eq!(object["apiVersion"], json!("cams.chatapp.io/v1alpha1"));
        assert_eq!(object["kind"], json!("ChatGroup"));
    }

    #[test]
    fn a_bad_last_transition_time_fails_the_date_time_format() {
        let schema = crd_schema();
        let old = admitted(&schema, chat_group());
        let mut new = old.clone();
        let mut bad = condition("Ready");
        bad["lastTransitionTime"] = json!("yesterday");
        new["status"] = json!({"conditions": [bad]});
        let new = admitted(&schema, new);
        let errors = schema.validate(&new, Some(&old), Scope::Status);
        // The status validator's paths are relative to status in the message.
        assert_eq!(
            messages(&errors),
            [
                "status.conditions[0].lastTransitionTime: Invalid value: \"yesterday\": \
                 conditions[0].lastTransitionTime in body must be of type date-time: \
                 \"yesterday\"",
                NOT_CHECKED
            ]
        );
        assert_eq!(errors[0].kind, FieldErrorKind::TypeInvalid);
        // Validated as part of the whole object, the message carries the full path.
        assert_eq!(
            messages(&schema.validate(&new, None, Scope::Object))[0],
            "status.conditions[0].lastTransitionTime: Invalid value: \"yesterday\": \
             status.conditions[0].lastTransitionTime in body must be of type date-time: \
             \"yesterday\""
        );
    }

    #[test]
    fn the_status_scope_ignores_spec_errors_but_the_object_scope_does_not() {
        let schema = crd_schema();
        let mut old = admitted(&schema, chat_group());
        old["spec"]["region"] = json!("Not A Region");
        let mut new = old.clone();
        new["status"] = json!({"observedGeneration": 1});
        assert_eq!(schema.validate(&new, Some(&old), Scope::Status), []);
        assert_eq!(
            messages(&schema.validate(&new, None, Scope::Object)),
            [
                "spec.region: Invalid value: \"Not A Region\": spec.region in body should match \
              '^[a-z0-9-]+$'"
            ]
        );
    }

    #[test]
    fn status_integers_are_checked_against_their_bounds() {
        let schema = crd_schema();
        let mut object = admitted(&schema, chat_group());
        object["status"] = json!({"lastRequest": {
            "action": "UpdateChatGroup", "time": "2025-01-02T03:04:05Z", "httpStatus": 70000,
        }});
        assert_eq!(
            create_errors(&schema, &object),
            ["status.lastRequest.httpStatus: Invalid value: 70000: \
              status.lastRequest.httpStatus in body should be less than or equal to 65535"]
        );
    }

    #[test]
    fn the_crd_list_types_are_reported_for_apply() {
        let schema = crd_schema();
        assert_eq!(
            schema.list_type(&["status", "conditions"]),
            ListType::Map(vec!["type".to_owned()])
        );
        assert_eq!(
            schema.list_type(&["status", "pendingChanges"]),
            ListType::Atomic
        );
        assert_eq!(schema.list_type(&["spec", "nothing"]), ListType::Atomic);
    }

    // ---- types ----

    #[test]
    fn a_type_mismatch_shows_the_json_type_of_the_value() {
        let s = spec_schema(json!({"name": {"type": "string"}, "count": {"type": "integer"}}));
        let errors = s.validate(
            &json!({"spec": {"name": 5, "count": "x"}}),
            None,
            Scope::Object,
        );
        assert_eq!(
            messages(&errors),
            [
                "spec.count: Invalid value: \"string\": spec.count in body must be of type \
                 integer: \"string\"",
                "spec.name: Invalid value: \"integer\": spec.name in body must be of type \
                 string: \"integer\"",
            ]
        );
        assert!(errors.iter().all(|e| e.kind == FieldErrorKind::TypeInvalid));
    }

    #[test]
    fn integers_accept_integral_floats_but_not_fractions() {
        let s = spec_schema(json!({"n": {"type": "integer"}, "x": {"type": "number"}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"n": 1.0, "x": 2}})),
            Vec::<String>::new()
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"n": 1.5}})),
            [
                "spec.n: Invalid value: \"number\": spec.n in body must be of type integer: \
              \"number\""
            ]
        );
    }

    #[test]
    fn int_or_string_accepts_both_and_nothing_else() {
        let s = spec_schema(json!({"port": {"x-kubernetes-int-or-string": true}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"port": 80}})),
            Vec::<String>::new()
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"port": "http"}})),
            Vec::<String>::new()
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"port": true}})),
            [
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type \
              integer,string: \"boolean\""
            ]
        );
    }

    #[test]
    fn null_is_accepted_only_where_nullable() {
        let s = spec_schema(json!({
            "a": {"type": "string", "nullable": true},
            "b": {"type": "string"},
        }));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"a": null, "b": null}})),
            ["spec.b: Invalid value: \"null\": spec.b in body must be of type string: \"null\""]
        );
    }

    #[test]
    fn objects_and_arrays_report_their_type() {
        let s = spec_schema(json!({"o": {"type": "object"}, "l": {"type": "array"}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"o": [], "l": {}}})),
            [
                "spec.l: Invalid value: \"object\": spec.l in body must be of type array: \
                 \"object\"",
                "spec.o: Invalid value: \"array\": spec.o in body must be of type object: \
                 \"array\"",
            ]
        );
    }

    // ---- value validations ----

    #[test]
    fn missing_required_fields_are_reported_after_the_present_ones() {
        let s = schema(json!({
            "type": "object",
            "required": ["spec"],
            "properties": {"spec": {"type": "object", "required": ["b", "a"],
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}}}},
        }));
        assert_eq!(create_errors(&s, &json!({})), ["spec: Required value"]);
        assert_eq!(
            create_errors(&s, &json!({"spec": {"c": 1}})),
            [
                "spec.c: Invalid value: \"integer\": spec.c in body must be of type string: \
                 \"integer\"",
                "spec.b: Required value",
                "spec.a: Required value",
            ]
        );
    }

    #[test]
    fn enums_quote_non_string_values_as_json() {
        let s = spec_schema(json!({"n": {"type": "integer", "enum": [1, 2]}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"n": 2}})),
            Vec::<String>::new()
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"n": 3}})),
            ["spec.n: Unsupported value: 3: supported values: \"1\", \"2\""]
        );
    }

    #[test]
    fn a_null_never_matches_an_enum() {
        let s = spec_schema(json!({"m": {"type": "string", "nullable": true, "enum": ["A"]}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"m": null}})),
            ["spec.m: Unsupported value: \"null\": supported values: \"A\""]
        );
    }

    #[test]
    fn max_length_counts_code_points() {
        let s = spec_schema(json!({"s": {"type": "string", "maxLength": 2}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"s": "\u{e9}\u{e9}"}})),
            Vec::<String>::new()
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"s": "\u{e9}\u{e9}\u{e9}"}})),
            ["spec.s: Too long: may not be more than 2 bytes"]
        );
    }

    #[test]
    fn a_string_reports_only_its_first_failing_check() {
        let s = spec_schema(
            json!({"s": {"type": "string", "maxLength": 3, "minLength": 2, "pattern": "^[0-9]+$"}}),
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"s": "abcd"}})),
            ["spec.s: Too long: may not be more than 3 bytes"]
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"s": "a"}})),
            ["spec.s: Invalid value: \"a\": spec.s in body should be at least 2 chars long"]
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"s": "ab"}})),
            ["spec.s: Invalid value: \"ab\": spec.s in body should match '^[0-9]+$'"]
        );
    }

    #[test]
    fn patterns_search_unanchored_with_ascii_perl_classes() {
        let s = spec_schema(json!({"s": {"type": "string", "pattern": "\\d{2}"}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"s": "ab12cd"}})),
            Vec::<String>::new()
        );
        // U+0661 U+0662 are Unicode digits, but not RE2's \d.
        assert_eq!(
            create_errors(&s, &json!({"spec": {"s": "\u{661}\u{662}"}})),
            ["spec.s: Invalid value: \"\u{661}\u{662}\": spec.s in body should match '\\d{2}'"]
        );
    }

    #[test]
    fn bounds_are_worded_as_kube_openapi_words_them() {
        let s = spec_schema(json!({
            "i": {"type": "integer", "minimum": 1, "maximum": 10, "exclusiveMaximum": true},
            "f": {"type": "number", "minimum": 0.5, "exclusiveMinimum": true},
        }));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"i": 10, "f": 0.5}})),
            [
                "spec.f: Invalid value: 0.5: spec.f in body should be greater than 0.5",
                "spec.i: Invalid value: 10: spec.i in body should be less than 10",
            ]
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"i": 0}})),
            ["spec.i: Invalid value: 0: spec.i in body should be greater than or equal to 1"]
        );
    }

    #[test]
    fn multiple_of_is_checked_for_integers_and_numbers() {
        let s = spec_schema(json!({
            "i": {"type": "integer", "multipleOf": 5},
            "f": {"type": "number", "multipleOf": 0.5},
        }));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"i": 15, "f": 1.5}})),
            Vec::<String>::new()
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"i": 7, "f": 1.25}})),
            [
                "spec.f: Invalid value: 1.25: spec.f in body should be a multiple of 0.5",
                "spec.i: Invalid value: 7: spec.i in body should be a multiple of 5",
            ]
        );
    }

    #[test]
    fn supported_formats_are_checked_and_others_ignored() {
        let s = spec_schema(json!({
            "t": {"type": "string", "format": "date-time"},
            "d": {"type": "string", "format": "date"},
            "u": {"type": "string", "format": "uuid"},
            "n": {"type": "integer", "format": "int32"},
            "x": {"type": "string", "format": "something-else"},
        }));
        let ok = json!({"spec": {
            "t": "2025-01-02T03:04:05.123+01:00", "d": "2024-02-29",
            "u": "123e4567-e89b-12d3-a456-426614174000", "n": 9_999_999_999_i64, "x": "anything",
        }});
        assert_eq!(create_errors(&s, &ok), Vec::<String>::new());
        assert_eq!(
            create_errors(
                &s,
                &json!({"spec": {"t": "2025-01-02 03:04:05", "d": "2023-02-29", "u": "nope"}})
            ),
            [
                "spec.d: Invalid value: \"2023-02-29\": spec.d in body must be of type date: \
                 \"2023-02-29\"",
                "spec.t: Invalid value: \"2025-01-02 03:04:05\": spec.t in body must be of \
                 type date-time: \"2025-01-02 03:04:05\"",
                "spec.u: Invalid value: \"nope\": spec.u in body must be of type uuid: \"nope\"",
            ]
        );
    }

    #[test]
    fn item_counts_are_checked_after_the_items() {
        let s = spec_schema(json!({"l": {"type": "array", "minItems": 2, "maxItems": 3,
            "items": {"type": "string"}}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"l": [1]}})),
            [
                "spec.l[0]: Invalid value: \"integer\": spec.l[0] in body must be of type \
                 string: \"integer\"",
                "spec.l: Invalid value: 1: spec.l in body should have at least 2 items",
            ]
        );
        let errors = s.validate(
            &json!({"spec": {"l": ["a", "b", "c", "d"]}}),
            None,
            Scope::Object,
        );
        assert_eq!(
            messages(&errors),
            ["spec.l: Too many: 4: must have at most 3 items"]
        );
        assert_eq!(errors[0].kind, FieldErrorKind::TooMany);
    }

    #[test]
    fn property_counts_stop_the_object_check() {
        let s = spec_schema(
            json!({"m": {"type": "object", "minProperties": 2, "maxProperties": 3,
            "additionalProperties": {"type": "string"}}}),
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"m": {"a": 1}}})),
            ["spec.m: Invalid value: 1: spec.m in body should have at least 2 properties"]
        );
        assert_eq!(
            create_errors(
                &s,
                &json!({"spec": {"m": {"a": 1, "b": 2, "c": 3, "d": 4}}})
            ),
            ["spec.m: Too many: 4: must have at most 3 items"]
        );
    }

    #[test]
    fn map_values_are_named_with_dots_by_openapi_and_brackets_by_cel() {
        let s = spec_schema(
            json!({"labels": {"type": "object", "additionalProperties": {
                "type": "string", "maxLength": 3,
                "x-kubernetes-validations": [{"rule": "self != 'no'", "message": "not no"}],
            }}}),
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"labels": {"foo": 1, "bar": "no"}}})),
            [
                "spec.labels.foo: Invalid value: \"integer\": spec.labels.foo in body must be \
                 of type string: \"integer\"",
                NOT_CHECKED,
            ]
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"labels": {"bar": "no"}}})),
            ["spec.labels[bar]: Invalid value: \"string\": not no"]
        );
    }

    #[test]
    fn any_of_and_one_of_failures_name_the_value_path() {
        let s = spec_schema(json!({"v": {"type": "integer",
            "anyOf": [{"minimum": 10}, {"maximum": 0}],
            "oneOf": [{"minimum": 1}, {"minimum": 2}]}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"v": 5}})),
            [
                "<nil>: Invalid value: \"\": \"spec.v\" must validate at least one schema \
                 (anyOf)",
                "spec.v: Invalid value: 5: spec.v in body should be greater than or equal to 10",
                "<nil>: Invalid value: \"\": \"spec.v\" must validate one and only one schema \
                 (oneOf). Found 2 valid alternatives",
            ]
        );
    }

    // ---- list types ----

    #[test]
    fn list_map_duplicates_show_the_key_in_go_syntax() {
        let s = spec_schema(json!({
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["port", "protocol"],
                "items": {"type": "object", "properties": {
                    "port": {"type": "integer"}, "protocol": {"type": "string"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        }));
        let errors = s.validate(
            &json!({"spec": {
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"},
                          {"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}],
                "tags": ["a", "b", "a"],
            }}),
            None,
            Scope::Object,
        );
        assert_eq!(
            messages(&errors),
            [
                "spec.ports[2]: Duplicate value: map[string]interface {}{\"port\":80, \
                 \"protocol\":\"TCP\"}",
                "spec.tags[2]: Duplicate value: \"a\"",
            ]
        );
    }

    #[test]
    fn list_map_items_must_be_objects() {
        let s = spec_schema(
            json!({"l": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"], "items": {"x-kubernetes-preserve-unknown-fields": true}}}),
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"l": [{"name": "a"}, "b"]}})),
            ["spec.l[1]: Invalid value: \"b\": must be an object for an array of list-type map"]
        );
    }

    #[test]
    fn list_duplicates_already_stored_do_not_fail_an_update() {
        let s = spec_schema(
            json!({"tags": {"type": "array", "x-kubernetes-list-type": "set",
            "items": {"type": "string"}}}),
        );
        let old = json!({"spec": {"tags": ["a", "a"]}});
        let new = json!({"spec": {"tags": ["a", "a", "b", "b"]}});
        assert_eq!(s.validate(&new, Some(&old), Scope::Object), []);
        assert_eq!(
            messages(&s.validate(&new, Some(&json!({"spec": {}})), Scope::Object)),
            [
                "spec.tags[1]: Duplicate value: \"a\"",
                "spec.tags[3]: Duplicate value: \"b\""
            ]
        );
    }

    #[test]
    fn list_types_follow_the_path_through_items() {
        let s = spec_schema(
            json!({"groups": {"type": "array", "items": {"type": "object",
            "properties": {"members": {"type": "array", "x-kubernetes-list-type": "set",
                "items": {"type": "string"}}}}}}),
        );
        assert_eq!(s.list_type(&["spec", "groups"]), ListType::Atomic);
        assert_eq!(s.list_type(&["spec", "groups", "members"]), ListType::Set);
        assert_eq!(
            s.list_type(&["spec", "groups", "0", "members"]),
            ListType::Set
        );
    }

    // ---- ratcheting ----

    #[test]
    fn map_list_items_are_ratcheted_by_key() {
        let s = spec_schema(
            json!({"items": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "value": {"type": "string", "maxLength": 2}}}}}),
        );
        let old = json!({"spec": {"items": [{"name": "a", "value": "toolong"}]}});
        // The invalid item moved and a valid one was added: still ratcheted.
        let new = json!({"spec": {"items": [{"name": "b", "value": "ok"}, {"name": "a", "value": "toolong"}]}});
        assert_eq!(s.validate(&new, Some(&old), Scope::Object), []);
        // An invalid new item is not.
        let worse = json!({"spec": {"items": [{"name": "c", "value": "toolong"}, {"name": "a", "value": "toolong"}]}});
        assert_eq!(
            messages(&s.validate(&worse, Some(&old), Scope::Object)),
            ["spec.items[0].value: Too long: may not be more than 2 bytes"]
        );
    }

    #[test]
    fn atomic_list_items_are_ratcheted_only_with_the_whole_list() {
        let s = spec_schema(
            json!({"l": {"type": "array", "items": {"type": "string", "maxLength": 2}}}),
        );
        let old = json!({"spec": {"l": ["toolong"]}});
        assert_eq!(s.validate(&old.clone(), Some(&old), Scope::Object), []);
        let appended = json!({"spec": {"l": ["toolong", "ok"]}});
        assert_eq!(
            messages(&s.validate(&appended, Some(&old), Scope::Object)),
            ["spec.l[0]: Too long: may not be more than 2 bytes"]
        );
    }

    #[test]
    fn transition_rules_are_never_ratcheted_and_skipped_on_create() {
        let s = spec_schema(json!({"v": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "immutable"},
            {"rule": "self.startsWith('a')"},
        ]}}));
        // On create only the plain rule runs.
        assert_eq!(
            create_errors(&s, &json!({"spec": {"v": "b"}})),
            ["spec.v: Invalid value: \"string\": failed rule: self.startsWith('a')"]
        );
        // Unchanged: the plain rule is ratcheted into a warning.
        let old = json!({"spec": {"v": "b"}});
        let result = s.check(&old.clone(), Some(&old), Scope::Object, &[]);
        assert_eq!(result.errors, []);
        assert_eq!(
            result.warnings,
            ["spec.v: Invalid value: \"string\": failed rule: self.startsWith('a')"]
        );
        // Changed: both fail.
        assert_eq!(
            messages(&s.validate(&json!({"spec": {"v": "c"}}), Some(&old), Scope::Object)),
            [
                "spec.v: Invalid value: \"string\": immutable",
                "spec.v: Invalid value: \"string\": failed rule: self.startsWith('a')",
            ]
        );
    }

    // ---- CEL ----

    #[test]
    fn rule_reasons_and_field_paths_shape_the_error() {
        let s = spec_schema(json!({"o": {"type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "x-kubernetes-validations": [
            {"rule": "has(self.a)", "message": "a is needed", "reason": "FieldValueRequired", "fieldPath": ".a"},
            {"rule": "!has(self.b)", "message": "b is not allowed", "reason": "FieldValueForbidden"},
            {"rule": "false", "reason": "FieldValueDuplicate"},
        ]}}));
        let errors = s.validate(&json!({"spec": {"o": {"b": "x"}}}), None, Scope::Object);
        assert_eq!(
            messages(&errors),
            [
                "spec.o.a: Required value: a is needed",
                "spec.o: Forbidden: b is not allowed",
                "spec.o: Duplicate value: \"object\"",
            ]
        );
        assert_eq!(
            errors.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [
                FieldErrorKind::Required,
                FieldErrorKind::Forbidden,
                FieldErrorKind::Duplicate
            ]
        );
    }

    #[test]
    fn a_rule_runtime_error_is_an_invalid_value() {
        let s = spec_schema(json!({"o": {"type": "object",
            "properties": {"a": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "self.a == 'x'"}]}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"o": {}}})),
            ["spec.o: Invalid value: \"object\": no such key: a evaluating rule: self.a == 'x'"]
        );
    }

    #[test]
    fn root_rules_see_the_name_but_not_other_metadata() {
        let s = schema(json!({"type": "object", "x-kubernetes-validations": [
            {"rule": "self.metadata.name.startsWith('cg-')", "message": "name must start with cg-"},
            {"rule": "!has(self.metadata.labels)"},
        ]}));
        let object = json!({"apiVersion": "v1", "kind": "K",
            "metadata": {"name": "other", "labels": {"a": "b"}}});
        assert_eq!(
            create_errors(&s, &object),
            ["<nil>: Invalid value: \"object\": name must start with cg-"]
        );
    }

    #[test]
    fn rules_in_list_items_see_the_old_item_by_key() {
        let s = spec_schema(
            json!({"l": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.v >= oldSelf.v", "message": "v may not decrease"}]}}}),
        );
        let old = json!({"spec": {"l": [{"name": "a", "v": 2}, {"name": "b", "v": 5}]}});
        let new = json!({"spec": {"l": [{"name": "b", "v": 4}, {"name": "a", "v": 3}, {"name": "c", "v": 0}]}});
        assert_eq!(
            messages(&s.validate(&new, Some(&old), Scope::Object)),
            ["spec.l[0]: Invalid value: \"object\": v may not decrease"]
        );
    }

    #[test]
    fn date_time_strings_are_timestamps_in_rules() {
        let s = spec_schema(json!({"t": {"type": "string", "format": "date-time",
            "x-kubernetes-validations": [{"rule": "self > timestamp('2020-01-01T00:00:00Z')"}]}}));
        assert_eq!(
            create_errors(&s, &json!({"spec": {"t": "2021-01-01T00:00:00Z"}})),
            Vec::<String>::new()
        );
        assert_eq!(
            create_errors(&s, &json!({"spec": {"t": "2019-01-01T00:00:00Z"}})),
            [
                "spec.t: Invalid value: \"string\": failed rule: self > timestamp('2020-01-01T00:00:00Z')"
            ]
        );
    }

    #[test]
    fn a_crd_with_an_unsupported_rule_is_refused() {
        let error = Schema::from_openapi(&json!({"type": "object", "properties": {"spec": {
            "type": "array", "x-kubernetes-validations": [{"rule": "self.isSorted()"}]}}}))
        .unwrap_err();
        assert!(error.contains("calls isSorted"), "{error}");
        let error = Schema::from_openapi(&json!({"type": "string", "pattern": "("})).unwrap_err();
        assert!(error.contains("is not a valid regex"), "{error}");
    }

    // ---- defaults and pruning ----

    #[test]
    fn defaults_fill_absent_fields_items_and_map_values() {
        let s = spec_schema(json!({
            "a": {"type": "string", "default": "x"},
            "n": {"type": "string", "nullable": true, "default": "y"},
            "m": {"type": "string", "default": "z"},
            "o": {"type": "object", "default": {}, "properties": {"inner": {"type": "integer", "default": 3}}},
            "l": {"type": "array", "items": {"type": "object", "properties": {
                "k": {"type": "string", "default": "d"}}}},
            "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "k": {"type": "string", "default": "e"}}}},
        }));
        let mut object =
            json!({"spec": {"n": null, "m": null, "l": [{}, {"k": "set"}], "map": {"x": {}}}});
        s.prune(&mut object);
        s.apply_defaults(&mut object);
        assert_eq!(
            object,
            json!({"spec": {
                "a": "x", "n": null, "m": "z", "o": {"inner": 3},
                "l": [{"k": "d"}, {"k": "set"}], "map": {"x": {"k": "e"}},
            }})
        );
    }

    #[test]
    fn pruning_drops_nulls_without_defaults_and_keeps_preserved_fields() {
        let s = spec_schema(json!({
            "a": {"type": "string"},
            "n": {"type": "string", "nullable": true},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"typed": {"type": "object", "properties": {"k": {"type": "string"}}}}},
            "l": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
        }));
        let mut object = json!({
            "apiVersion": "g/v1", "kind": "K", "metadata": {"name": "n"}, "top": 1,
            "spec": {"a": null, "n": null, "free": {"any": {"thing": 1}, "typed": {"k": "v", "x": 1}},
                     "l": [{"k": "v", "zz": 2}]},
        });
        let paths = s.prune(&mut object);
        assert_eq!(paths, ["spec.free.typed.x", "spec.l[0].zz", "top"]);
        assert_eq!(
            object,
            json!({
                "apiVersion": "g/v1", "kind": "K", "metadata": {"name": "n"},
                "spec": {"n": null, "free": {"any": {"thing": 1}, "typed": {"k": "v"}},
                         "l": [{"k": "v"}]},
            })
        );
    }

    #[test]
    fn embedded_resources_keep_their_type_and_object_meta() {
        let s = spec_schema(json!({"template": {"type": "object",
            "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}}}));
        let mut object = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "bogus": 1}, "spec": {}, "extra": 2}}});
        let paths = s.prune(&mut object);
        assert_eq!(
            paths,
            ["spec.template.extra", "spec.template.metadata.bogus"]
        );
        assert_eq!(
            object["spec"]["template"],
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}})
        );
    }

    // ---- helpers ----

    #[test]
    fn the_schema_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Schema>();
    }

    #[test]
    fn go_renderings_match_go() {
        assert_eq!(go_float(65535.0), "65535");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.5e-5), "1.5e-05");
        assert_eq!(
            go_sharp_v(&json!({"b": [1, "x", null], "a": 1.5})),
            "map[string]interface {}{\"a\":1.5, \"b\":[]interface {}{1, \"x\", interface {}(nil)}}"
        );
        assert_eq!(
            go_json(&json!({"b": 1.0, "a": "<"})),
            "{\"a\":\"\\u003c\",\"b\":1}"
        );
    }

    #[test]
    fn go_regexes_keep_classes_and_quoting() {
        let re = go_regex(r"^[\w.-]+\Q*+\E\s?$").expect("compiles");
        assert!(re.is_match("a_b.c-*+"));
        assert!(!re.is_match("\u{e9}*+"));
        let class = go_regex(r"^[^\d\s]+$").expect("compiles");
        assert!(class.is_match("abc"));
        assert!(!class.is_match("a1"));
        assert!(go_regex(r"[]a]").expect("compiles").is_match("]"));
    }

    #[test]
    fn formats_follow_strfmt() {
        assert!(Format::DateTime.check("2025-01-02T03:04:05Z"));
        assert!(Format::DateTime.check("2025-01-02t03:04:05.5+01:00"));
        assert!(!Format::DateTime.check("2025-01-02T24:04:05Z"));
        assert!(!Format::DateTime.check("2025-01-02T03:04:05"));
        assert!(Format::Ipv4.check("010.0.0.1"));
        assert!(!Format::Ipv4.check("::1"));
        assert!(Format::Ipv6.check("::1"));
        assert!(Format::Cidr.check("10.0.0.0/8"));
        assert!(!Format::Cidr.check("10.0.0.0/33"));
        assert!(Format::Mac.check("00:00:5e:00:53:01"));
        assert!(Format::Hostname.check("example.com"));
        assert!(!Format::Hostname.check("-bad-.com"));
        assert!(Format::Byte.check("aGVsbG8="));
        assert!(Format::Duration.check("3 days"));
        assert!(Format::Isbn13.check("978-0321751041"));
        assert!(Format::CreditCard.check("4111 1111 1111 1111"));
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
    }
}
