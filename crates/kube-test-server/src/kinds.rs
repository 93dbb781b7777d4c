//! The resource table: which kinds the server serves, and how each behaves.

use std::borrow::Cow;

use serde_json::Value;

/// One kind of resource the server stores: a row of its resource table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceKind {
    /// API group, empty for the core group (`/api/v1`).
    pub group: Cow<'static, str>,
    /// API version, for example `v1alpha1`.
    pub version: Cow<'static, str>,
    /// Kind, for example `ChatGroup`; lists are `<kind>List`.
    pub kind: Cow<'static, str>,
    /// Plural resource name used in URLs, for example `chatgroups`.
    pub plural: Cow<'static, str>,
    /// Objects live in namespaces (otherwise they are cluster-scoped).
    pub namespaced: bool,
    /// The kind has the `/status` subresource: the main resource ignores `.status` and
    /// `/status` changes only `.status`.
    pub status_subresource: bool,
    /// `metadata.generation` is maintained: 1 on create, +1 on every change outside
    /// `metadata` (and outside `status` when it is a subresource), +1 when deletion starts.
    pub generation: bool,
    /// A custom resource: strategic merge patches are refused with 415, as the API server
    /// does for CRDs.
    pub custom: bool,
    /// A `PUT` may leave out `metadata.resourceVersion` (the registry strategy's
    /// `AllowUnconditionalUpdate`): true for Secrets, Events and Namespaces; false for Leases
    /// (`pkg/registry/coordination/lease/strategy.go`) and custom resources
    /// (`apiextensions-apiserver/pkg/registry/customresource/strategy.go`).
    pub unconditional_update: bool,
}

impl ResourceKind {
    /// A built-in kind (`const`-constructible).
    pub const fn builtin(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> Self {
        ResourceKind {
            group: Cow::Borrowed(group),
            version: Cow::Borrowed(version),
            kind: Cow::Borrowed(kind),
            plural: Cow::Borrowed(plural),
            namespaced: true,
            status_subresource: false,
            generation: false,
            custom: false,
            unconditional_update: true,
        }
    }

    /// The same kind, with every `PUT` required to carry a resourceVersion (`const`).
    pub const fn conditional_updates(mut self) -> Self {
        self.unconditional_update = false;
        self
    }

    /// The same kind, cluster-scoped (`const`).
    pub const fn cluster_scoped(mut self) -> Self {
        self.namespaced = false;
        self
    }

    /// `apiVersion` of objects of this kind (`v1` or `group/version`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource's qualified name in error messages (`chatgroups.cams.chatapp.io`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The qualified kind in `Invalid` messages (`ChatGroup.cams.chatapp.io`, `Secret`).
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The kind a `CustomResourceDefinition` (`apiextensions.k8s.io/v1`, as JSON) defines,
    /// for its storage version.
    pub fn from_crd(crd: &Value) -> Result<Self, String> {
        let text = |pointer: &str| {
            crd.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("the CRD has no {pointer}"))
        };
        let version = storage_version(crd)?;
        Ok(ResourceKind {
            group: Cow::Owned(text("/spec/group")?),
            version: Cow::Owned(text_of(version, "/name")?),
            kind: Cow::Owned(text("/spec/names/kind")?),
            plural: Cow::Owned(text("/spec/names/plural")?),
            namespaced: text("/spec/scope")? == "Namespaced",
            status_subresource: version.pointer("/subresources/status").is_some(),
            generation: true,
            custom: true,
            unconditional_update: false,
        })
    }
}

fn text_of(value: &Value, pointer: &str) -> Result<String, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the CRD version has no {pointer}"))
}

/// The version of a CRD that is stored (`storage: true`).
pub fn storage_version(crd: &Value) -> Result<&Value, String> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|versions| {
            versions
                .iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .ok_or_else(|| "the CRD has no storage version".to_owned())
}

/// Core `v1` Secrets.
pub const SECRETS: ResourceKind = ResourceKind::builtin("", "v1", "Secret", "secrets");

/// `events.k8s.io/v1` Events (what `kube::runtime::events::Recorder` writes).
pub const EVENTS: ResourceKind = ResourceKind::builtin("events.k8s.io", "v1", "Event", "events");

/// Core `v1` Events (a separate collection from [`EVENTS`] here).
pub const CORE_EVENTS: ResourceKind = ResourceKind::builtin("", "v1", "Event", "events");

/// `coordination.k8s.io/v1` Leases.
pub const LEASES: ResourceKind =
    ResourceKind::builtin("coordination.k8s.io", "v1", "Lease", "leases").conditional_updates();

/// Core `v1` Namespaces (cluster-scoped).
pub const NAMESPACES: ResourceKind =
    ResourceKind::builtin("", "v1", "Namespace", "namespaces").cluster_scoped();

/// The built-in kinds every server serves.
pub const BUILTIN: [ResourceKind; 5] = [NAMESPACES, SECRETS, EVENTS, CORE_EVENTS, LEASES];

/// The namespaces a new cluster has.
pub const INITIAL_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];
