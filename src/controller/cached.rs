//! What the controller keeps in memory of each watched ChatGroup.
//!
//! The watch cache holds one [`CachedChatGroup`] per object for as long as it exists, so its
//! size is the operator's memory per object. It keeps only what reconciling reads:
//!
//! - the metadata that identifies the object and its version (name, namespace, `uid`,
//!   `resourceVersion`, `generation`, `creationTimestamp` (which of two ChatGroups came first), `deletionTimestamp`, finalizers) and the annotations of
//!   this operator's own domain; never `managedFields`, labels, owner references or other
//!   tools' annotations (a `kubectl apply` copy of the whole object among them);
//! - the spec, checked once when the object arrives and kept as its compact JSON text, or the
//!   reason it does not parse (the field path and what is wrong), so a malformed object is
//!   reported as `InvalidSpec` instead of failing the watch of all the others;
//! - the status as compact JSON text, without conditions of other managers.
//!
//! Both texts are kept [`Packed`]: a typical status of about 900 bytes takes about 200, a
//! tenth of the same status as Rust values. They are parsed again only when the object is
//! reconciled, which costs a few microseconds.
//!
//! Once the watcher has read an object's `resourceVersion` (it resumes from it), the
//! `resourceVersion` and the `uid` are moved out of the metadata kube-runtime sees
//! ([`CachedChatGroup::stow`]): its store and scheduler key each object by a copy of its
//! identity, which holds both when they are set, and an object is held under two or three
//! keys at once. Read them with [`CachedChatGroup::resource_version`] and
//! [`CachedChatGroup::uid`].
//!
//! Parsing never fails for an object the API server sends: only metadata must have its
//! Kubernetes shape, which the API server guarantees.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time as MetaTime};
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::packed::Packed;
use crate::crd::{
    API_GROUP, API_VERSION, ChatGroup, ChatGroupSpec, ChatGroupStatus, KIND, PLURAL, condition,
};

/// Longest description of why an object does not parse, in characters: the reader's own words
/// may quote the offending value whole, which can be long.
pub const MAX_PARSE_PROBLEM_CHARS: usize = 300;

/// A ChatGroup as the controller's watch cache holds it (see the module documentation).
#[derive(Clone, Debug)]
pub struct CachedChatGroup {
    metadata: ObjectMeta,
    /// `metadata.uid`, once stowed.
    uid: Option<Box<str>>,
    /// `metadata.resourceVersion`, once stowed.
    version: Option<Box<str>>,
    spec: Result<Packed, Box<str>>,
    status: Option<Packed>,
}

/// The status of a [`CachedChatGroup`], read back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CachedStatus {
    /// The status, or `None` when the object has none or it could not be read.
    pub status: Option<ChatGroupStatus>,
    /// Why a stored status could not be read (the field path and the problem): the object is
    /// then reconciled as if it had none, and the next status write replaces it.
    pub problem: Option<String>,
}

impl CachedChatGroup {
    /// The object's metadata, as far as it is kept (with its `uid` and `resourceVersion`).
    pub fn metadata(&self) -> ObjectMeta {
        ObjectMeta {
            uid: self.uid(),
            resource_version: self.resource_version(),
            ..self.metadata.clone()
        }
    }

    /// Moves `uid` and `resourceVersion` out of the metadata kube-runtime reads (see the
    /// module documentation). The watcher must have seen the object first.
    pub fn stow(&mut self) {
        if let Some(uid) = self.metadata.uid.take() {
            self.uid = Some(uid.into_boxed_str());
        }
        if let Some(version) = self.metadata.resource_version.take() {
            self.version = Some(version.into_boxed_str());
        }
    }

    /// `metadata.uid`, stowed or not.
    pub fn uid(&self) -> Option<String> {
        self.uid
            .as_deref()
            .map(str::to_owned)
            .or_else(|| self.metadata.uid.clone())
    }

    /// `metadata.resourceVersion`, stowed or not.
    pub fn resource_version(&self) -> Option<String> {
        self.version
            .as_deref()
            .map(str::to_owned)
            .or_else(|| self.metadata.resource_version.clone())
    }

    /// The parsed spec, or the field path and the reason it does not parse.
    pub fn spec(&self) -> Result<ChatGroupSpec, String> {
        let text = self.spec.as_ref().map_err(|problem| problem.to_string())?;
        let text = text.unpack()?;
        serde_json::from_str(&text).map_err(|err| format!("spec: {err}"))
    }

    /// The status as the API server held it when the object was cached (conditions of other
    /// managers left out).
    pub fn status(&self) -> CachedStatus {
        let Some(packed) = &self.status else {
            return CachedStatus::default();
        };
        let text = match packed.unpack() {
            Ok(text) => text,
            Err(problem) => {
                return CachedStatus {
                    status: None,
                    problem: Some(format!("status: {problem}")),
                };
            }
        };
        let mut reader = serde_json::Deserializer::from_str(&text);
        match serde_path_to_error::deserialize::<_, ChatGroupStatus>(&mut reader) {
            Ok(status) => CachedStatus {
                status: Some(status),
                problem: None,
            },
            Err(err) => CachedStatus {
                status: None,
                problem: Some(format!(
                    "status.{}: {}",
                    err.path(),
                    cut_problem(err.inner().to_string())
                )),
            },
        }
    }

    /// The object as a typed [`ChatGroup`] (spec and readable status), or why its spec does
    /// not parse.
    pub fn chatgroup(&self) -> Result<ChatGroup, String> {
        self.with_status(self.status().status)
    }

    /// The object as a typed [`ChatGroup`] with `status`, or why its spec does not parse.
    pub fn with_status(&self, status: Option<ChatGroupStatus>) -> Result<ChatGroup, String> {
        Ok(ChatGroup {
            metadata: self.metadata(),
            spec: self.spec()?,
            status,
        })
    }

    /// Builds the cached form of an object given as JSON (as the API server sends it).
    pub fn from_value(value: Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value)
    }
}

impl kube::Resource for CachedChatGroup {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(KIND)
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(API_GROUP)
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(API_VERSION)
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(PLURAL)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The metadata fields kept; serde skips every other field without building it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    creation_timestamp: Option<MetaTime>,
    deletion_timestamp: Option<MetaTime>,
    finalizers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "own_annotations")]
    annotations: Option<BTreeMap<String, String>>,
}

/// The object as it comes from the API server: the spec and status are read as JSON first, so
/// that a spec which does not parse leaves the rest readable.
#[derive(Deserialize)]
struct Wire {
    metadata: WireMeta,
    #[serde(default)]
    spec: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
}

impl<'de> Deserialize<'de> for CachedChatGroup {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let meta = wire.metadata;
        let metadata = ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            generation: meta.generation,
            creation_timestamp: meta.creation_timestamp,
            deletion_timestamp: meta.deletion_timestamp,
            finalizers: meta.finalizers,
            annotations: meta.annotations,
            ..ObjectMeta::default()
        };
        Ok(CachedChatGroup {
            metadata,
            uid: None,
            version: None,
            spec: parse_spec(wire.spec.unwrap_or(Value::Null)),
            status: wire.status.and_then(compact_status),
        })
    }
}

/// Keeps the annotations of this operator's domain (`cams.chatapp.io/...`); values of other
/// annotations are skipped unread.
fn own_annotations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct Own;
    impl<'de> serde::de::Visitor<'de> for Own {
        type Value = Option<BTreeMap<String, String>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of annotations")
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(Own)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut own = BTreeMap::new();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if is_own_annotation(&key) {
                    own.insert(key.into_owned(), map.next_value::<String>()?);
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok((!own.is_empty()).then_some(own))
        }
    }
    deserializer.deserialize_option(Own)
}

fn is_own_annotation(key: &str) -> bool {
    key.strip_prefix(API_GROUP)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The spec as the compact JSON of its parsed form (unknown fields dropped), or
/// `<field path>: <problem>` naming the first field that does not parse.
fn parse_spec(value: Value) -> Result<Packed, Box<str>> {
    let spec = serde_path_to_error::deserialize::<_, ChatGroupSpec>(value).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." {
            "spec".to_owned()
        } else {
            format!("spec.{path}")
        };
        format!("{field}: {}", cut_problem(err.inner().to_string())).into_boxed_str()
    })?;
    serde_json::to_string(&spec)
        .map(|text| Packed::pack(&text))
        .map_err(|err| format!("spec: {err}").into_boxed_str())
}

/// The status as compact JSON without the conditions of other managers (the operator neither
/// reads nor writes them). A status that is not a JSON object is kept as it is, to be
/// reported unreadable when the object is reconciled.
fn compact_status(mut status: Value) -> Option<Packed> {
    if status.is_null() {
        return None;
    }
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        conditions.retain(|c| {
            c.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| condition::OWN.contains(&t))
        });
    }
    serde_json::to_string(&status)
        .ok()
        .map(|text| Packed::pack(&text))
}

/// `text` cut to [`MAX_PARSE_PROBLEM_CHARS`] characters, marked with `...` when cut.
fn cut_problem(mut text: String) -> String {
    if let Some((end, _)) = text.char_indices().nth(MAX_PARSE_PROBLEM_CHARS) {
        text.truncate(end);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "cams.chatapp.io/v1alpha1",
            "kind": "ChatGroup",
            "metadata": {
                "name": "team-a", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
                "generation": 3, "labels": {"team": "a"},
                "annotations": {
                    "cams.chatapp.io/paused": "true",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}",
                    "cams.chatapp.io.evil/x": "1",
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": spec,
            "status": status,
        })
    }

    fn spec() -> Value {
        json!({"custSpaceId": "cs", "businessNumber": "86", "groupId": "G1"})
    }

    #[test]
    fn keeps_what_reconciling_reads_and_drops_the_rest() {
        let cached = CachedChatGroup::from_value(object(spec(), json!({"observedGeneration": 2})))
            .expect("cached");
        let meta = cached.metadata();
        assert_eq!(meta.name.as_deref(), Some("team-a"));
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        assert_eq!(meta.uid.as_deref(), Some("u-1"));
        assert_eq!(meta.resource_version.as_deref(), Some("42"));
        assert_eq!(meta.generation, Some(3));
        assert!(meta.managed_fields.is_none());
        assert!(meta.labels.is_none());
        let annotations = meta.annotations.as_ref().expect("own annotations");
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["cams.chatapp.io/paused"]
        );
        let chatgroup = cached.chatgroup().expect("parses");
        assert!(chatgroup.is_paused());
        assert_eq!(chatgroup.spec.group_id.as_deref(), Some("G1"));
        assert_eq!(
            chatgroup.status.and_then(|s| s.observed_generation),
            Some(2)
        );
    }

    #[test]
    fn stowing_keeps_the_identity_out_of_kube_runtime_keys_only() {
        use kube::Resource as _;
        use kube::runtime::reflector::ObjectRef;
        let mut cached = CachedChatGroup::from_value(object(spec(), Value::Null)).expect("cached");
        let before = ObjectRef::from_obj(&cached);
        assert_eq!(before.extra.resource_version.as_deref(), Some("42"));
        cached.stow();
        let after = ObjectRef::from_obj(&cached);
        assert_eq!(after, before, "the same object");
        assert_eq!(
            (after.extra.resource_version, after.extra.uid),
            (None, None)
        );
        assert_eq!(cached.meta().resource_version, None);
        assert_eq!(cached.resource_version().as_deref(), Some("42"));
        assert_eq!(cached.uid().as_deref(), Some("u-1"));
        let meta = cached.metadata();
        assert_eq!(
            (meta.uid.as_deref(), meta.resource_version.as_deref()),
            (Some("u-1"), Some("42"))
        );
        let chatgroup = cached.chatgroup().expect("parses");
        assert_eq!(chatgroup.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(chatgroup.metadata.resource_version.as_deref(), Some("42"));
    }

    #[test]
    fn a_spec_that_does_not_parse_names_its_field_and_keeps_the_status() {
        let mut bad = spec();
        bad["subject"] = json!(7);
        let cached = CachedChatGroup::from_value(object(bad, json!({"observedGeneration": 1})))
            .expect("a malformed spec still caches");
        let problem = cached.spec().expect_err("spec does not parse");
        assert!(
            problem.starts_with("spec.subject: invalid type"),
            "{problem}"
        );
        assert_eq!(cached.chatgroup().expect_err("no ChatGroup"), problem);
        assert_eq!(
            cached.status().status.and_then(|s| s.observed_generation),
            Some(1)
        );
    }

    #[test]
    fn a_missing_spec_is_named() {
        let mut value = object(spec(), Value::Null);
        value.as_object_mut().expect("object").remove("spec");
        let cached = CachedChatGroup::from_value(value).expect("caches");
        assert!(cached.spec().expect_err("no spec").starts_with("spec: "));
        assert_eq!(cached.status(), CachedStatus::default());
    }

    #[test]
    fn conditions_of_other_managers_are_not_kept() {
        let status = json!({"conditions": [
            {"type": "Ready", "status": "True", "reason": "InSync", "message": "",
             "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "PolicyCompliant", "status": "True", "reason": "Ok", "message": "",
             "lastTransitionTime": "2026-01-01T00:00:00Z"},
        ]});
        let cached = CachedChatGroup::from_value(object(spec(), status)).expect("caches");
        let types: Vec<String> = cached
            .status()
            .status
            .expect("status")
            .conditions
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(types, ["Ready"]);
    }

    #[test]
    fn an_unreadable_status_is_reported_with_its_field() {
        let status = json!({"retry": {"attempts": -1}});
        let cached = CachedChatGroup::from_value(object(spec(), status)).expect("caches");
        let read = cached.status();
        assert!(read.status.is_none());
        let problem = read.problem.expect("problem");
        assert!(problem.starts_with("status.retry.attempts: "), "{problem}");
        assert!(cached.chatgroup().expect("spec parses").status.is_none());
    }

    #[test]
    fn long_problems_are_cut() {
        let mut bad = spec();
        bad["channelType"] = json!("X".repeat(5_000));
        let cached = CachedChatGroup::from_value(object(bad, Value::Null)).expect("caches");
        let problem = cached.spec().expect_err("bad enum");
        assert!(
            problem.chars().count() <= "spec.channelType: ".len() + MAX_PARSE_PROBLEM_CHARS + 3
        );
        assert!(problem.ends_with("..."));
    }
}
