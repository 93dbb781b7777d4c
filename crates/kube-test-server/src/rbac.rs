//! RBAC authorization as kube-apiserver 1.33 decides it, and the 403 `Status` it answers a
//! denied request with.
//!
//! # Why it exists
//! The operator's chart grants it exactly the access it needs (`cams_operator::rbac::RULES`).
//! Whether those grants *work* — a Role in the right namespace, a subresource spelled the way
//! the API server matches it, a cluster-wide list that a namespaced grant cannot cover —
//! is decided by the RBAC authorizer, so this module decides it the same way, from the RBAC
//! objects the chart renders ([`Authorizer::from_manifests`] on `helm template` output), and
//! renders the same 403 body when it says no ([`Authorizer::forbidden`]).
//!
//! # Sources (kubernetes/kubernetes)
//! - `plugin/pkg/auth/authorizer/rbac/rbac.go`: `Authorize` (the first matching rule allows; a
//!   denial carries `RBAC: <errors>` when bindings that apply to the user name missing roles),
//!   `RulesAllow`, `RuleAllows`.
//! - `pkg/apis/rbac/v1/evaluation_helpers.go`: `VerbMatches`, `APIGroupMatches`,
//!   `ResourceMatches` (`*`, `resource`, `resource/subresource`, `*/subresource`),
//!   `ResourceNameMatches`, `NonResourceURLMatches`.
//! - `pkg/registry/rbac/validation/rule.go`: `VisitRulesFor` (every ClusterRoleBinding, then
//!   the RoleBindings of the request's namespace only), `GetRoleReferenceRules`, `appliesTo`,
//!   `appliesToUser` (a ServiceAccount subject's namespace defaults to the binding's).
//! - `pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go`: an aggregated
//!   ClusterRole's rules are the union of the rules of the other ClusterRoles its selectors
//!   match, in name order, replacing its own.
//! - `staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`: `NewRequestInfo`
//!   (HTTP request to verb, resource, subresource, namespace and name).
//! - `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go`:
//!   `Forbidden`, `forbiddenMessage`; the body from `apimachinery/pkg/api/errors` `NewForbidden`
//!   ([`ApiError::forbidden`]).
//! - `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`: the default ClusterRoles and
//!   bindings [`Authorizer::new`] starts with.
//! - `pkg/apis/rbac/v1/defaults.go` and `pkg/apis/rbac/validation/validation.go`: defaulting and
//!   validation of the four kinds ([`Authorizer::add`] refuses what the API server refuses).
//! - `staging/src/k8s.io/apiserver/pkg/authentication/group/authenticated_group_adder.go` and
//!   `.../authentication/serviceaccount/util.go`: the groups of a user and a ServiceAccount.
//!
//! # What is emulated
//! - The decision: the `system:masters` group is always allowed (the privileged-group
//!   authorizer that runs before RBAC); otherwise ClusterRoleBindings grant everywhere and
//!   RoleBindings in their own namespace only (also when they reference a ClusterRole); a
//!   request without a namespace (cluster-scoped resources, all-namespaces list/watch,
//!   non-resource paths) is decided by ClusterRoleBindings alone.
//! - Rule matching exactly as the helpers above, including `resourceNames` (a request without a
//!   name — list, watch, create, deletecollection — is not allowed by a rule with
//!   `resourceNames`; a list or watch with `fieldSelector=metadata.name=<n>` carries that name).
//! - Subjects of kind User, Group and ServiceAccount (validation refuses other kinds).
//! - ClusterRole aggregation (`matchLabels`, `matchExpressions` with `In`, `NotIn`, `Exists`,
//!   `DoesNotExist`), resolved at decision time, transitively; a cycle is cut at the role met
//!   twice (its stored `rules` are used).
//! - The bootstrap policy a fresh cluster has: `cluster-admin` (bound to `system:masters`),
//!   `system:discovery`, `system:basic-user`, `system:public-info-viewer`,
//!   `system:service-account-issuer-discovery`, and the aggregating shells `admin`, `edit`,
//!   `view` with their labels.
//! - Defaulting (`roleRef.apiGroup`, a subject's `apiGroup`) and validation of the four kinds,
//!   with the 422 message text `NewInvalid` would give (derived from the source, not from
//!   recorded responses).
//!
//! # What is not emulated
//! - Authentication: the caller says who the [`User`] is.
//! - The `system:aggregate-to-admin`, `system:aggregate-to-edit` and `system:aggregate-to-view`
//!   ClusterRoles: `admin`, `edit` and `view` grant only what other ClusterRoles (such as the
//!   chart's) aggregate into them, not their built-in rules for pods, deployments and so on.
//!   Other bootstrap roles (controllers, nodes, `system:monitoring`, ...) are absent.
//! - The Node authorizer, webhooks, impersonation, selector-based authorization, escalation
//!   checks on writes of RBAC objects (`escalate`, `bind`), and the delay of the aggregation
//!   controller (the real `rules` of an aggregated role catch up after a moment).
//! - The order of several `RBAC:` errors: the API server lists bindings in its cache's
//!   (unspecified) order; here they come in the order the bindings were added,
//!   ClusterRoleBindings first.
//! - Validation of label keys and values, of namespace names, and of `metadata` beyond the
//!   name and namespace; query decoding errors other than in `watch`, `fieldSelector`, `limit`
//!   and `timeoutSeconds`; percent-encoded paths (the path is taken as given).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::errors::{ApiError, BadValue, FieldError};

/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The only RBAC API version a 1.33 server serves.
const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";
/// Members are allowed everything, before RBAC is asked (`user.SystemPrivilegedGroup`).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Every authenticated user is in it (`user.AllAuthenticated`).
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The anonymous user is in it (`user.AllUnauthenticated`).
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user name of unauthenticated requests (`user.Anonymous`).
pub const ANONYMOUS: &str = "system:anonymous";

/// Who makes a request (`user.Info`): a name and groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// `system:serviceaccount:<ns>:<name>` for a ServiceAccount.
    pub name: String,
    /// Group names, matched by `Group` subjects.
    pub groups: Vec<String>,
}

impl User {
    /// An authenticated user: the groups given, plus `system:authenticated` unless they already
    /// hold it or `system:unauthenticated`, as the `AuthenticatedGroupAdder` every
    /// authenticator is wrapped in adds it (`authenticated_group_adder.go`).
    pub fn new<G: Into<String>>(
        name: impl Into<String>,
        groups: impl IntoIterator<Item = G>,
    ) -> Self {
        let name = name.into();
        let mut groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        let has_marker = groups
            .iter()
            .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED);
        if name != ANONYMOUS && !has_marker {
            groups.push(ALL_AUTHENTICATED.to_owned());
        }
        User { name, groups }
    }

    /// The identity of a pod running as a ServiceAccount: user
    /// `system:serviceaccount:<namespace>:<name>` in the groups `system:serviceaccounts`,
    /// `system:serviceaccounts:<namespace>` and `system:authenticated`
    /// (`serviceaccount.MakeUsername`, `MakeGroupNames`).
    pub fn service_account(namespace: &str, name: &str) -> Self {
        User::new(
            service_account_username(namespace, name),
            [
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
            ],
        )
    }

    /// A cluster administrator as kind and older kubeadm kubeconfigs name it:
    /// `kubernetes-admin` in `system:masters`, which is allowed everything.
    pub fn admin() -> Self {
        User::new("kubernetes-admin", [SYSTEM_MASTERS])
    }

    /// An unauthenticated request: `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Self {
        User {
            name: ANONYMOUS.to_owned(),
            groups: vec![ALL_UNAUTHENTICATED.to_owned()],
        }
    }
}

/// `system:serviceaccount:<namespace>:<name>` (`serviceaccount.MakeUsername`).
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// What a request asks to do (`authorizer.Attributes`): a verb on a resource, or a verb on a
/// non-resource path (`/version`, `/api`, `/apis/...`, `/healthz`).
///
/// Build one with [`Attributes::resource`] and its builder methods, with
/// [`Attributes::non_resource`], or from an HTTP request with [`Attributes::from_http`].
/// Empty strings in the optional fields count as absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, ...;
    /// for a non-resource request the lower-case HTTP method.
    pub verb: String,
    /// API group; `""` is the core group.
    pub api_group: String,
    /// Resource plural, e.g. `chatgroups`.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: Option<String>,
    /// Namespace; `None` for cluster-scoped resources and all-namespaces requests.
    pub namespace: Option<String>,
    /// Object name; `None` for list, watch, create and deletecollection.
    pub name: Option<String>,
    /// `Some(path)` makes this a non-resource request; the resource fields are then ignored.
    pub non_resource_path: Option<String>,
}

impl Attributes {
    /// A resource request: `verb` on `resource` in `api_group`, cluster-wide and unnamed until
    /// [`Attributes::in_namespace`] and [`Attributes::named`] say otherwise.
    pub fn resource(verb: &str, api_group: &str, resource: &str) -> Self {
        Attributes {
            verb: verb.to_owned(),
            api_group: api_group.to_owned(),
            resource: resource.to_owned(),
            ..Attributes::default()
        }
    }

    /// A non-resource request: `verb` (lower-case HTTP method) on `path`.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Attributes {
            verb: verb.to_owned(),
            non_resource_path: Some(path.to_owned()),
            ..Attributes::default()
        }
    }

    /// Sets the subresource (`status`).
    pub fn with_subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(subresource.to_owned());
        self
    }

    /// Sets the namespace.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Sets the object name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// True unless this is a non-resource request.
    pub fn is_resource_request(&self) -> bool {
        self.non_resource_path.is_none()
    }

    /// The attributes kube-apiserver derives from an HTTP request (`NewRequestInfo` in
    /// `requestinfo.go`): paths under `/api/<version>/` and `/apis/<group>/<version>/` are
    /// resource requests (`[watch/|proxy/][namespaces/<ns>/]<resource>[/<name>[/<sub>]]`),
    /// everything else (including `/api`, `/apis/<group>/<version>`) is a non-resource
    /// request whose verb is the lower-case method. `GET` without a name is `list`, or `watch`
    /// when the `watch` parameter is anything but `false`/`0`, and takes its name from a
    /// `fieldSelector` requiring `metadata.name=<n>`; `DELETE` without a name is
    /// `deletecollection`; `HEAD` is `get`. `query` holds the decoded query parameters.
    pub fn from_http(method: &str, path: &str, query: &[(String, String)]) -> Self {
        let param = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let non_resource = Attributes::non_resource(&method.to_ascii_lowercase(), path);
        let parts: Vec<&str> = {
            let trimmed = path.trim_matches('/');
            if trimmed.is_empty() {
                Vec::new()
            } else {
                trimmed.split('/').collect()
            }
        };
        if parts.len() < 3 {
            return non_resource;
        }
        let mut rest: &[&str] = match parts[0] {
            "api" => &parts[1..],
            "apis" => &parts[1..],
            _ => return non_resource,
        };
        let mut attributes = Attributes::default();
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return non_resource;
            }
            attributes.api_group = rest[0].to_owned();
            rest = &rest[1..];
        }
        // The version.
        rest = &rest[1..];
        let mut verb_via_path = false;
        if rest[0] == "watch" || rest[0] == "proxy" {
            if rest.len() < 2 {
                // The API server fails to resolve such a request and answers 500; no verb.
                return Attributes {
                    verb: rest[0].to_owned(),
                    ..attributes
                };
            }
            attributes.verb = rest[0].to_owned();
            verb_via_path = true;
            rest = &rest[1..];
        } else {
            attributes.verb = match method.to_ascii_uppercase().as_str() {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .to_owned();
        }
        // `/namespaces/<ns>/<resource>/...`; `status` and `finalize` after the namespace name
        // are subresources of the namespace itself.
        if rest[0] == "namespaces" && rest.len() > 1 {
            attributes.namespace = Some(rest[1].to_owned());
            if rest.len() > 2 && rest[2] != "status" && rest[2] != "finalize" {
                rest = &rest[2..];
            }
        }
        let allows_subresource = !(verb_via_path && attributes.verb == "proxy");
        if rest.len() >= 3 && allows_subresource {
            attributes.subresource = Some(rest[2].to_owned());
        }
        if rest.len() >= 2 {
            attributes.name = Some(rest[1].to_owned());
        }
        attributes.resource = rest[0].to_owned();

        if attributes.name.is_none() && attributes.verb == "get" {
            // `metainternalversion.ListOptions` decoding: on any error the name is not taken
            // from the field selector, and `watch` is read on its own.
            let watch =
                param("watch").is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
            attributes.verb = if watch { "watch" } else { "list" }.to_owned();
            let numbers_decode = ["limit", "timeoutSeconds"]
                .iter()
                .all(|key| param(key).is_none_or(|v| v.parse::<i64>().is_ok()));
            if numbers_decode
                && let Some(selector) = param("fieldSelector")
                && let Ok(Some(name)) = exact_match(selector, "metadata.name")
                && is_valid_path_segment_name(&name)
            {
                attributes.name = Some(name);
            }
        }
        if attributes.name.is_none() && attributes.verb == "delete" {
            attributes.verb = "deletecollection".to_owned();
        }
        attributes
    }

    fn namespace_str(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    fn subresource_str(&self) -> &str {
        self.subresource.as_deref().unwrap_or("")
    }
}

/// `fields.ParseSelector(text).RequiresExactMatch(field)`: the value of the first (in sorted
/// term order) `field=v` or `field==v` term, `Ok(None)` when there is none, `Err` when the
/// selector does not parse (`apimachinery/pkg/fields/selector.go`).
fn exact_match(text: &str, field: &str) -> Result<Option<String>, String> {
    // splitTerms: commas not escaped by a backslash separate terms.
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    terms.push(current);
    terms.sort();
    for term in terms.iter().filter(|t| !t.is_empty()) {
        let (lhs, op, rhs) =
            split_term(term).ok_or_else(|| format!("invalid selector: {text:?}"))?;
        let value = unescape_field_value(rhs)?;
        if op != "!=" && lhs == field {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// `splitTerm`: the first unescaped `!=`, `==` or `=` (tried in that order at each position).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
        i += 1;
    }
    None
}

/// `UnescapeValue`: `\\`, `\,` and `\=` stand for the character; any other escape is an error.
fn unescape_field_value(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                _ => return Err(format!("invalid field selector value: {value:?}")),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `path.IsValidPathSegmentName` without messages.
fn is_valid_path_segment_name(name: &str) -> bool {
    path_segment_name_errors(name).is_empty()
}

/// `path.IsValidPathSegmentName` (`apimachinery/pkg/api/validation/path/name.go`).
fn path_segment_name_errors(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(*illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The RBAC objects, as the API server decodes them (null and absent lists are empty).

fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    namespace: String,
    #[serde(default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

/// `rbacv1.PolicyRule`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyRule {
    #[serde(default, deserialize_with = "nullable")]
    verbs: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    api_groups: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    resources: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    resource_names: Vec<String>,
    #[serde(default, deserialize_with = "nullable", rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
}

/// `metav1.LabelSelectorRequirement`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SelectorRequirement {
    #[serde(default, deserialize_with = "nullable")]
    key: String,
    #[serde(default, deserialize_with = "nullable")]
    operator: String,
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<String>,
}

/// `metav1.LabelSelector`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelSelector {
    #[serde(default, deserialize_with = "nullable")]
    match_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    match_expressions: Vec<SelectorRequirement>,
}

impl LabelSelector {
    /// `LabelSelectorAsSelector(...).Matches(labels)`; an empty selector matches everything.
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    // Refused by validation; matches nothing, as the controller errs on it.
                    _ => false,
                }
            })
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AggregationRule {
    #[serde(default, deserialize_with = "nullable")]
    cluster_role_selectors: Vec<LabelSelector>,
}

/// A Role or a ClusterRole.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleObject {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default, deserialize_with = "nullable")]
    rules: Vec<PolicyRule>,
    #[serde(default)]
    aggregation_rule: Option<AggregationRule>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleRef {
    #[serde(default, deserialize_with = "nullable")]
    api_group: String,
    #[serde(default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subject {
    #[serde(default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    api_group: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    namespace: String,
}

/// A RoleBinding or a ClusterRoleBinding.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingObject {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    role_ref: RoleRef,
    #[serde(default, deserialize_with = "nullable")]
    subjects: Vec<Subject>,
}

/// The four RBAC kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl Kind {
    fn parse(kind: &str) -> Option<Kind> {
        match kind {
            "Role" => Some(Kind::Role),
            "ClusterRole" => Some(Kind::ClusterRole),
            "RoleBinding" => Some(Kind::RoleBinding),
            "ClusterRoleBinding" => Some(Kind::ClusterRoleBinding),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Role => "Role",
            Kind::ClusterRole => "ClusterRole",
            Kind::RoleBinding => "RoleBinding",
            Kind::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }

    fn namespaced(self) -> bool {
        matches!(self, Kind::Role | Kind::RoleBinding)
    }
}

// ---------------------------------------------------------------------------------------------

/// An RBAC authorizer over a set of Roles, ClusterRoles, RoleBindings and ClusterRoleBindings.
///
/// [`Authorizer::new`] starts from the bootstrap policy of a fresh cluster;
/// [`Authorizer::add`] and [`Authorizer::from_manifests`] add objects as `kubectl apply` would
/// (an object with the same kind, namespace and name is replaced); [`Authorizer::allows`] and
/// [`Authorizer::authorize`] decide a request.
#[derive(Clone, Debug)]
pub struct Authorizer {
    roles: Vec<RoleObject>,
    cluster_roles: Vec<RoleObject>,
    role_bindings: Vec<BindingObject>,
    cluster_role_bindings: Vec<BindingObject>,
}

impl Authorizer {
    /// An authorizer holding the default ClusterRoles and ClusterRoleBindings of a 1.33 cluster
    /// (`bootstrappolicy/policy.go`, see the module documentation for which): every
    /// authenticated user may `get` the discovery and health paths (`/api`, `/api/*`, `/apis`,
    /// `/apis/*`, `/version`, `/healthz`, `/livez`, `/readyz`, `/openapi/*`) and create
    /// self-subject reviews; anonymous users the health paths and `/version`; `system:masters`
    /// everything.
    pub fn new() -> Self {
        let mut authorizer = Authorizer::empty();
        for object in bootstrap_policy() {
            authorizer
                .add(&object)
                .expect("the bootstrap policy is valid");
        }
        authorizer
    }

    /// An authorizer without any RBAC object (only `system:masters` is allowed anything).
    pub fn empty() -> Self {
        Authorizer {
            roles: Vec::new(),
            cluster_roles: Vec::new(),
            role_bindings: Vec::new(),
            cluster_role_bindings: Vec::new(),
        }
    }

    /// [`Authorizer::new`] plus the RBAC objects of a multi-document YAML text, as
    /// `helm template` prints it. Documents of other kinds (and empty ones) are ignored; an
    /// RBAC object that does not decode or validate is an error naming it.
    pub fn from_manifests(yaml: &str) -> Result<Self, String> {
        let mut authorizer = Authorizer::new();
        authorizer.add_manifests(yaml)?;
        Ok(authorizer)
    }

    /// Adds the RBAC objects of a multi-document YAML text (see [`Authorizer::from_manifests`]).
    pub fn add_manifests(&mut self, yaml: &str) -> Result<(), String> {
        for (index, document) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
            let value = Value::deserialize(document)
                .map_err(|e| format!("YAML document {index} does not parse: {e}"))?;
            let is_rbac = value
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|kind| Kind::parse(kind).is_some());
            if is_rbac {
                self.add(&value)?;
            }
        }
        Ok(())
    }

    /// Adds (or replaces) one Role, ClusterRole, RoleBinding or ClusterRoleBinding, after the
    /// defaulting and validation the API server applies on create. The error is the message
    /// the API server would answer with (`no matches for kind ...` for another API version,
    /// `... is invalid: ...` for a 422).
    pub fn add(&mut self, object: &Value) -> Result<(), String> {
        let kind_name = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(kind) = Kind::parse(kind_name) else {
            return Err(format!("not an RBAC object: kind {kind_name:?}"));
        };
        if api_version != RBAC_API_VERSION {
            return Err(format!(
                "no matches for kind {kind_name:?} in version {api_version:?}"
            ));
        }
        let mut object = object.clone();
        if matches!(kind, Kind::RoleBinding | Kind::ClusterRoleBinding) {
            default_binding(&mut object);
        }
        let decode_error =
            |e: serde_json::Error| format!("{kind_name}.{RBAC_GROUP} does not decode: {e}");
        match kind {
            Kind::Role | Kind::ClusterRole => {
                let role: RoleObject = serde_json::from_value(object).map_err(decode_error)?;
                check(kind, &role.metadata, validate_role(kind, &role))?;
                let list = if kind == Kind::Role {
                    &mut self.roles
                } else {
                    &mut self.cluster_roles
                };
                upsert(list, role, |r| &r.metadata, kind);
            }
            Kind::RoleBinding | Kind::ClusterRoleBinding => {
                let binding: BindingObject =
                    serde_json::from_value(object).map_err(decode_error)?;
                check(kind, &binding.metadata, validate_binding(kind, &binding))?;
                let list = if kind == Kind::RoleBinding {
                    &mut self.role_bindings
                } else {
                    &mut self.cluster_role_bindings
                };
                upsert(list, binding, |b| &b.metadata, kind);
            }
        }
        Ok(())
    }

    /// Removes the object of `kind` (`Role`, `ClusterRole`, `RoleBinding`,
    /// `ClusterRoleBinding`) with this name (and namespace, for the namespaced kinds; ignored
    /// for the others). True when there was one.
    pub fn remove(&mut self, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        let Some(kind) = Kind::parse(kind) else {
            return false;
        };
        let namespace = if kind.namespaced() {
            namespace.unwrap_or("")
        } else {
            ""
        };
        let keep = |m: &Metadata| !(m.name == name && m.namespace == namespace);
        match kind {
            Kind::Role | Kind::ClusterRole => {
                let list = if kind == Kind::Role {
                    &mut self.roles
                } else {
                    &mut self.cluster_roles
                };
                let before = list.len();
                list.retain(|r| keep(&r.metadata));
                list.len() != before
            }
            Kind::RoleBinding | Kind::ClusterRoleBinding => {
                let list = if kind == Kind::RoleBinding {
                    &mut self.role_bindings
                } else {
                    &mut self.cluster_role_bindings
                };
                let before = list.len();
                list.retain(|b| keep(&b.metadata));
                list.len() != before
            }
        }
    }

    /// True when `user` may do what `attributes` describe.
    pub fn allows(&self, user: &User, attributes: &Attributes) -> bool {
        self.evaluate(user, attributes).is_ok()
    }

    /// `Ok` when allowed, else the 403 the API server answers with: [`Authorizer::forbidden`],
    /// with `: RBAC: <errors>` appended when bindings that apply to the user reference Roles
    /// or ClusterRoles that do not exist (`role.rbac.authorization.k8s.io "x" not found`,
    /// several in brackets).
    pub fn authorize(&self, user: &User, attributes: &Attributes) -> Result<(), ApiError> {
        self.evaluate(user, attributes).map_err(|errors| {
            let reason = if errors.is_empty() {
                String::new()
            } else {
                format!("RBAC: {}", aggregate(&errors))
            };
            forbidden_because(user, attributes, &reason)
        })
    }

    /// The 403 Forbidden kube-apiserver answers a denied request with
    /// (`responsewriters.Forbidden`, `forbiddenMessage`, `NewForbidden`):
    /// message `<resource>[.<group>][ "<name>"] is forbidden: User "<u>" cannot <verb>
    /// resource "<resource>[/<sub>]" in API group "<g>" (in the namespace "<ns>" | at the
    /// cluster scope)`, details `{name?, group?, kind: <resource>}`, reason `Forbidden`, code
    /// 403. A non-resource request gets `forbidden: User "<u>" cannot <verb> path "<p>"` and
    /// empty details. `&`, `<` and `>` in the part after `is forbidden: ` are HTML-escaped,
    /// as the API server's sanitizer does.
    pub fn forbidden(user: &User, attributes: &Attributes) -> ApiError {
        forbidden_because(user, attributes, "")
    }

    /// The decision: `Ok` when a rule allows, else the rule-resolution errors met.
    fn evaluate(&self, user: &User, attributes: &Attributes) -> Result<(), Vec<String>> {
        if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return Ok(());
        }
        let mut errors = Vec::new();
        for binding in &self.cluster_role_bindings {
            if !applies_to(user, &binding.subjects, "") {
                continue;
            }
            match self.cluster_role_rules(&binding.role_ref.name) {
                Some(rules) => {
                    if rules.iter().any(|rule| rule_allows(attributes, rule)) {
                        return Ok(());
                    }
                }
                None => errors.push(not_found("clusterrole", &binding.role_ref.name)),
            }
        }
        let namespace = attributes.namespace_str();
        if !namespace.is_empty() {
            for binding in self
                .role_bindings
                .iter()
                .filter(|b| b.metadata.namespace == namespace)
            {
                if !applies_to(user, &binding.subjects, namespace) {
                    continue;
                }
                let reference = &binding.role_ref;
                let rules = if reference.kind == "Role" {
                    self.roles
                        .iter()
                        .find(|r| {
                            r.metadata.namespace == namespace && r.metadata.name == reference.name
                        })
                        .map(|r| r.rules.clone())
                        .ok_or_else(|| not_found("role", &reference.name))
                } else {
                    self.cluster_role_rules(&reference.name)
                        .ok_or_else(|| not_found("clusterrole", &reference.name))
                };
                match rules {
                    Ok(rules) => {
                        if rules.iter().any(|rule| rule_allows(attributes, rule)) {
                            return Ok(());
                        }
                    }
                    Err(error) => errors.push(error),
                }
            }
        }
        Err(errors)
    }

    /// The rules a ClusterRole grants now, `None` when it does not exist.
    fn cluster_role_rules(&self, name: &str) -> Option<Vec<PolicyRule>> {
        let role = self
            .cluster_roles
            .iter()
            .find(|r| r.metadata.name == name)?;
        Some(self.effective_rules(role, &mut Vec::new()))
    }

    /// A ClusterRole's rules; for an aggregated one, the union of the rules of the other
    /// ClusterRoles each selector matches, in name order, without repeats (what the
    /// aggregation controller writes into its `rules`).
    fn effective_rules(&self, role: &RoleObject, stack: &mut Vec<String>) -> Vec<PolicyRule> {
        let Some(aggregation) = &role.aggregation_rule else {
            return role.rules.clone();
        };
        if stack.contains(&role.metadata.name) {
            return role.rules.clone();
        }
        stack.push(role.metadata.name.clone());
        let mut rules: Vec<PolicyRule> = Vec::new();
        for selector in &aggregation.cluster_role_selectors {
            let mut selected: Vec<&RoleObject> = self
                .cluster_roles
                .iter()
                .filter(|r| r.metadata.name != role.metadata.name)
                .filter(|r| selector.matches(&r.metadata.labels))
                .collect();
            selected.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            for other in selected {
                for rule in self.effective_rules(other, stack) {
                    if !rules.contains(&rule) {
                        rules.push(rule);
                    }
                }
            }
        }
        stack.pop();
        rules
    }
}

impl Default for Authorizer {
    /// [`Authorizer::new`]: the bootstrap policy.
    fn default() -> Self {
        Authorizer::new()
    }
}

/// Replaces the object with the same namespace and name, or appends it.
fn upsert<T>(list: &mut Vec<T>, object: T, meta: impl Fn(&T) -> &Metadata, kind: Kind) {
    let key = |m: &Metadata| {
        let namespace = if kind.namespaced() {
            m.namespace.clone()
        } else {
            String::new()
        };
        (namespace, m.name.clone())
    };
    let wanted = key(meta(&object));
    match list.iter_mut().find(|o| key(meta(o)) == wanted) {
        Some(existing) => *existing = object,
        None => list.push(object),
    }
}

/// The lister's NotFound text: `role.rbac.authorization.k8s.io "x" not found`
/// (`errors.NewNotFound(v1.Resource("role"), name)` in `client-go/listers/rbac/v1`).
fn not_found(resource: &str, name: &str) -> String {
    format!(
        "{resource}.{RBAC_GROUP} {} not found",
        crate::errors::go_quote(name)
    )
}

/// `utilerrors.NewAggregate(errs).Error()`: one alone, several (repeats dropped) in brackets.
fn aggregate(errors: &[String]) -> String {
    let mut unique: Vec<&String> = Vec::new();
    for error in errors {
        if !unique.contains(&error) {
            unique.push(error);
        }
    }
    match unique.as_slice() {
        [one] => (*one).clone(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `appliesTo`: whether any subject is the user.
fn applies_to(user: &User, subjects: &[Subject], namespace: &str) -> bool {
    subjects.iter().any(|s| applies_to_user(user, s, namespace))
}

/// `appliesToUser`: User by name, Group by membership, ServiceAccount by its user name (its
/// namespace defaulting to the RoleBinding's; a ServiceAccount without one never matches in a
/// ClusterRoleBinding).
fn applies_to_user(user: &User, subject: &Subject, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let sa_namespace = if subject.namespace.is_empty() {
                namespace
            } else {
                &subject.namespace
            };
            !sa_namespace.is_empty()
                && user.name == service_account_username(sa_namespace, &subject.name)
        }
        _ => false,
    }
}

/// `RuleAllows`.
fn rule_allows(attributes: &Attributes, rule: &PolicyRule) -> bool {
    let verb_matches = rule.verbs.iter().any(|v| v == "*" || *v == attributes.verb);
    if !verb_matches {
        return false;
    }
    if let Some(path) = &attributes.non_resource_path {
        return rule.non_resource_urls.iter().any(|url| {
            url == "*"
                || url == path
                || (url.ends_with('*') && path.starts_with(url.trim_end_matches('*')))
        });
    }
    let subresource = attributes.subresource_str();
    let combined = if subresource.is_empty() {
        attributes.resource.clone()
    } else {
        format!("{}/{subresource}", attributes.resource)
    };
    let group_matches = rule
        .api_groups
        .iter()
        .any(|g| g == "*" || *g == attributes.api_group);
    let resource_matches = rule.resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
    });
    let name_matches = rule.resource_names.is_empty()
        || rule
            .resource_names
            .iter()
            .any(|n| n == attributes.name_str());
    group_matches && resource_matches && name_matches
}

/// `responsewriters.Forbidden` with an authorizer reason (empty: none).
fn forbidden_because(user: &User, attributes: &Attributes, reason: &str) -> ApiError {
    let quote = crate::errors::go_quote;
    let message = match &attributes.non_resource_path {
        Some(path) => format!(
            "User {} cannot {} path {}",
            quote(&user.name),
            attributes.verb,
            quote(path)
        ),
        None => {
            let subresource = attributes.subresource_str();
            let resource = if subresource.is_empty() {
                attributes.resource.clone()
            } else {
                format!("{}/{subresource}", attributes.resource)
            };
            let namespace = attributes.namespace_str();
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {}", quote(namespace))
            };
            format!(
                "User {} cannot {} resource {} in API group {} {scope}",
                quote(&user.name),
                attributes.verb,
                quote(&resource),
                quote(&attributes.api_group),
            )
        }
    };
    let message = sanitize(&message);
    let err = if reason.is_empty() {
        message
    } else {
        format!("{message}: {reason}")
    };
    if attributes.is_resource_request() {
        ApiError::forbidden(
            &attributes.api_group,
            &attributes.resource,
            attributes.name_str(),
            &err,
        )
    } else {
        ApiError::forbidden("", "", "", &err)
    }
}

/// The response writers' `sanitizer`: `&`, `<`, `>` as HTML entities.
fn sanitize(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

// ---------------------------------------------------------------------------------------------
// Defaulting and validation.

/// `SetDefaults_RoleBinding`, `SetDefaults_ClusterRoleBinding`, `SetDefaults_Subject`.
fn default_binding(object: &mut Value) {
    if let Some(role_ref) = object.get_mut("roleRef").and_then(Value::as_object_mut) {
        let empty = role_ref
            .get("apiGroup")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if empty {
            role_ref.insert("apiGroup".to_owned(), json!(RBAC_GROUP));
        }
    }
    if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_array_mut) {
        for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
            let empty = subject
                .get("apiGroup")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
            if empty && (kind == "User" || kind == "Group") {
                subject.insert("apiGroup".to_owned(), json!(RBAC_GROUP));
            }
        }
    }
}

/// Turns field errors into the 422 message `NewInvalid` gives.
fn check(kind: Kind, metadata: &Metadata, errors: Vec<FieldError>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(RBAC_GROUP, kind.name(), &metadata.name, &errors).message)
    }
}

/// `ValidateObjectMeta` as far as names go: the name (`ValidateRBACName`, a path segment
/// name) and, for the namespaced kinds, the presence of a namespace.
fn validate_metadata(kind: Kind, metadata: &Metadata) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if metadata.name.is_empty() {
        errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for message in path_segment_name_errors(&metadata.name) {
            errors.push(FieldError::invalid(
                "metadata.name",
                BadValue::Json(json!(metadata.name)),
                message,
            ));
        }
    }
    if kind.namespaced() && metadata.namespace.is_empty() {
        errors.push(FieldError::required("metadata.namespace", ""));
    }
    errors
}

/// `ValidateRole`, `ValidateClusterRole` (with `ValidatePolicyRule` and the aggregation rule's
/// label selectors).
fn validate_role(kind: Kind, role: &RoleObject) -> Vec<FieldError> {
    let mut errors = validate_metadata(kind, &role.metadata);
    for (i, rule) in role.rules.iter().enumerate() {
        errors.extend(validate_policy_rule(
            rule,
            kind.namespaced(),
            &format!("rules[{i}]"),
        ));
    }
    if kind == Kind::ClusterRole
        && let Some(aggregation) = &role.aggregation_rule
    {
        let path = "aggregationRule.clusterRoleSelectors";
        if aggregation.cluster_role_selectors.is_empty() {
            errors.push(FieldError::required(
                path,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, selector) in aggregation.cluster_role_selectors.iter().enumerate() {
            let selector_path = format!("{path}[{i}]");
            let selector_errors = validate_label_selector(selector, &selector_path);
            let invalid = !selector_errors.is_empty();
            errors.extend(selector_errors);
            if invalid {
                // `LabelSelectorAsSelector` fails too, and its nil selector is shown as null.
                errors.push(FieldError::invalid(
                    &selector_path,
                    BadValue::Json(Value::Null),
                    "invalid label selector.",
                ));
            }
        }
    }
    errors
}

/// `ValidatePolicyRule`.
fn validate_policy_rule(rule: &PolicyRule, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if rule.verbs.is_empty() {
        errors.push(FieldError::required(
            &format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    if !rule.non_resource_urls.is_empty() {
        let urls = BadValue::Raw(go_string_slice(&rule.non_resource_urls));
        let field = format!("{path}.nonResourceURLs");
        if namespaced {
            errors.push(FieldError::invalid(
                &field,
                urls.clone(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !rule.api_groups.is_empty()
            || !rule.resources.is_empty()
            || !rule.resource_names.is_empty()
        {
            errors.push(FieldError::invalid(
                &field,
                urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errors;
    }
    if rule.api_groups.is_empty() {
        errors.push(FieldError::required(
            &format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if rule.resources.is_empty() {
        errors.push(FieldError::required(
            &format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errors
}

/// Go's `%#v` of a `[]string`: `[]string{"a", "b"}`.
fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| crate::errors::go_quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `ValidateLabelSelector` as far as operators and values go (`ValidateLabelSelectorRequirement`).
fn validate_label_selector(selector: &LabelSelector, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, requirement) in selector.match_expressions.iter().enumerate() {
        let path = format!("{path}.matchExpressions[{i}]");
        match requirement.operator.as_str() {
            "In" | "NotIn" => {
                if requirement.values.is_empty() {
                    errors.push(FieldError::required(
                        &format!("{path}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !requirement.values.is_empty() {
                    errors.push(FieldError::forbidden(
                        &format!("{path}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errors.push(FieldError::invalid(
                &format!("{path}.operator"),
                BadValue::Json(json!(other)),
                "not a valid selector operator",
            )),
        }
    }
    errors
}

/// `ValidateRoleBinding`, `ValidateClusterRoleBinding` (with `ValidateRoleBindingSubject`).
fn validate_binding(kind: Kind, binding: &BindingObject) -> Vec<FieldError> {
    let mut errors = validate_metadata(kind, &binding.metadata);
    let role_ref = &binding.role_ref;
    if role_ref.api_group != RBAC_GROUP {
        errors.push(FieldError::not_supported(
            "roleRef.apiGroup",
            BadValue::Json(json!(role_ref.api_group)),
            &[RBAC_GROUP.to_owned()],
        ));
    }
    let kinds: &[&str] = if kind == Kind::RoleBinding {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        errors.push(FieldError::not_supported(
            "roleRef.kind",
            BadValue::Json(json!(role_ref.kind)),
            &kinds.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>(),
        ));
    }
    if role_ref.name.is_empty() {
        errors.push(FieldError::required("roleRef.name", ""));
    } else {
        for message in path_segment_name_errors(&role_ref.name) {
            errors.push(FieldError::invalid(
                "roleRef.name",
                BadValue::Json(json!(role_ref.name)),
                message,
            ));
        }
    }
    for (i, subject) in binding.subjects.iter().enumerate() {
        errors.extend(validate_subject(
            subject,
            kind.namespaced(),
            &format!("subjects[{i}]"),
        ));
    }
    errors
}

/// `ValidateRoleBindingSubject`.
fn validate_subject(subject: &Subject, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if subject.name.is_empty() {
        errors.push(FieldError::required(&format!("{path}.name"), ""));
    }
    let rbac_group = || vec![RBAC_GROUP.to_owned()];
    match subject.kind.as_str() {
        "ServiceAccount" => {
            if !subject.name.is_empty() {
                for message in dns1123_subdomain_errors(&subject.name) {
                    errors.push(FieldError::invalid(
                        &format!("{path}.name"),
                        BadValue::Json(json!(subject.name)),
                        message,
                    ));
                }
            }
            if !subject.api_group.is_empty() {
                errors.push(FieldError::not_supported(
                    &format!("{path}.apiGroup"),
                    BadValue::Json(json!(subject.api_group)),
                    &[String::new()],
                ));
            }
            if !namespaced && subject.namespace.is_empty() {
                errors.push(FieldError::required(&format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if subject.api_group != RBAC_GROUP {
                errors.push(FieldError::not_supported(
                    &format!("{path}.apiGroup"),
                    BadValue::Json(json!(subject.api_group)),
                    &rbac_group(),
                ));
            }
        }
        other => errors.push(FieldError::not_supported(
            &format!("{path}.kind"),
            BadValue::Json(json!(other)),
            &[
                "ServiceAccount".to_owned(),
                "User".to_owned(),
                "Group".to_owned(),
            ],
        )),
    }
    errors
}

/// `validation.IsDNS1123Subdomain` (`apimachinery/pkg/util/validation/validation.go`), which
/// `ValidateServiceAccountName` applies.
fn dns1123_subdomain_errors(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > 253 {
        errors.push("must be no more than 253 characters".to_owned());
    }
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || *b == b'-')
            && !bytes.iter().any(u8::is_ascii_uppercase)
    };
    if !name.split('.').all(label_ok) {
        errors.push(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .to_owned(),
        );
    }
    errors
}

// ---------------------------------------------------------------------------------------------

/// The bootstrap ClusterRoles and ClusterRoleBindings [`Authorizer::new`] holds (a subset of
/// `bootstrappolicy/policy.go`, 1.33).
fn bootstrap_policy() -> Vec<Value> {
    let bootstrap = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    let cluster_role = |name: &str, rules: Value| {
        json!({
            "apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
            "metadata": {"name": name, "labels": bootstrap},
            "rules": rules,
        })
    };
    let aggregating = |name: &str, into: Option<&str>, selected: &str| {
        let mut labels = bootstrap.clone();
        if let Some(into) = into {
            labels[format!("rbac.authorization.k8s.io/aggregate-to-{into}")] = json!("true");
        }
        json!({
            "apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{selected}"): "true"}}
            ]},
        })
    };
    let binding = |name: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"kind": "Group", "apiGroup": RBAC_GROUP, "name": g}))
            .collect();
        json!({
            "apiVersion": RBAC_API_VERSION, "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": bootstrap},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            "subjects": subjects,
        })
    };
    vec![
        cluster_role(
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
        ),
        cluster_role(
            "system:discovery",
            json!([{"verbs": ["get"], "nonResourceURLs": [
                "/livez", "/readyz", "/healthz", "/version", "/version/",
                "/openapi", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*",
            ]}]),
        ),
        cluster_role(
            "system:basic-user",
            json!([
                {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                 "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
                {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
                 "resources": ["selfsubjectreviews"]},
            ]),
        ),
        cluster_role(
            "system:public-info-viewer",
            json!([{"verbs": ["get"], "nonResourceURLs": [
                "/livez", "/readyz", "/healthz", "/version", "/version/",
            ]}]),
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            json!([{"verbs": ["get"], "nonResourceURLs": [
                "/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                "/openid/v1/jwks", "/openid/v1/jwks/",
            ]}]),
        ),
        aggregating("admin", None, "admin"),
        aggregating("edit", Some("admin"), "edit"),
        aggregating("view", Some("edit"), "view"),
        binding("cluster-admin", &[SYSTEM_MASTERS]),
        binding("system:discovery", &[ALL_AUTHENTICATED]),
        binding("system:basic-user", &[ALL_AUTHENTICATED]),
        binding(
            "system:public-info-viewer",
            &[ALL_AUTHENTICATED, ALL_UNAUTHENTICATED],
        ),
        binding(
            "system:service-account-issuer-discovery",
            &["system:serviceaccounts"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMS: &str = "cams.chatapp.io";

    /// A Status body as the API server writes it, parsed.
    fn go_body(text: &str) -> Value {
        serde_json::from_str(text).expect("the expected body is JSON")
    }

    fn with(objects: &[Value]) -> Authorizer {
        let mut authorizer = Authorizer::new();
        for object in objects {
            authorizer
                .add(object)
                .unwrap_or_else(|e| panic!("{e}: {object}"));
        }
        authorizer
    }

    fn cluster_role(name: &str, rules: Value) -> Value {
        json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
               "metadata": {"name": name}, "rules": rules})
    }

    fn role(namespace: &str, name: &str, rules: Value) -> Value {
        json!({"apiVersion": RBAC_API_VERSION, "kind": "Role",
               "metadata": {"name": name, "namespace": namespace}, "rules": rules})
    }

    fn cluster_binding(name: &str, role: &str, subjects: Value) -> Value {
        json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRoleBinding",
               "metadata": {"name": name},
               "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
               "subjects": subjects})
    }

    fn binding(namespace: &str, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
        json!({"apiVersion": RBAC_API_VERSION, "kind": "RoleBinding",
               "metadata": {"name": name, "namespace": namespace},
               "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role},
               "subjects": subjects})
    }

    fn users(names: &[&str]) -> Value {
        names
            .iter()
            .map(|n| json!({"kind": "User", "apiGroup": RBAC_GROUP, "name": n}))
            .collect()
    }

    fn alice() -> User {
        User::new("alice", Vec::<String>::new())
    }

    /// `alice` holds `rules` cluster-wide.
    fn alice_may(rules: Value) -> Authorizer {
        with(&[
            cluster_role("r", rules),
            cluster_binding("b", "r", users(&["alice"])),
        ])
    }

    #[test]
    fn forbidden_bodies_are_those_of_kubernetes_test_forbidden() {
        // staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors_test.go
        let user = User {
            name: "NAME".to_owned(),
            groups: Vec::new(),
        };
        let cases = [
            (
                Attributes::resource("get", "", "pod"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pod is forbidden: User \"NAME\" cannot get resource \"pod\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"kind":"pod"},"code":403}"#,
            ),
            (
                Attributes::resource("get", "", "pod").named("mypod"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pod \"mypod\" is forbidden: User \"NAME\" cannot get resource \"pod\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"name":"mypod","kind":"pod"},"code":403}"#,
            ),
            (
                Attributes::resource("get", "v2", "pod")
                    .with_subresource("quota")
                    .in_namespace("test"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pod.v2 is forbidden: User \"NAME\" cannot get resource \"pod/quota\" in API group \"v2\" in the namespace \"test\"","reason":"Forbidden","details":{"group":"v2","kind":"pod"},"code":403}"#,
            ),
            (
                Attributes::non_resource("GET", "/whatever"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"NAME\" cannot GET path \"/whatever\"","reason":"Forbidden","details":{},"code":403}"#,
            ),
            (
                Attributes::non_resource("GET", "/<script>"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"NAME\" cannot GET path \"/\u0026lt;script\u0026gt;\"","reason":"Forbidden","details":{},"code":403}"#,
            ),
        ];
        for (attributes, expected) in cases {
            let error = Authorizer::forbidden(&user, &attributes);
            assert_eq!(error.code, 403);
            assert_eq!(error.to_status(), go_body(expected), "{attributes:?}");
        }
    }

    #[test]
    fn forbidden_body_is_the_recorded_cluster_scope_list_of_secrets() {
        // https://github.com/run-house/kubetorch/pull/2175
        let user = User::service_account("kubetorch", "kubetorch-controller");
        let attributes = Attributes::resource("list", "", "secrets");
        let authorizer = Authorizer::new();
        let error = authorizer.authorize(&user, &attributes).unwrap_err();
        assert_eq!(
            error.to_status(),
            go_body(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets is forbidden: User \"system:serviceaccount:kubetorch:kubetorch-controller\" cannot list resource \"secrets\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"kind":"secrets"},"code":403}"#
            )
        );
        assert_eq!(error, Authorizer::forbidden(&user, &attributes));
    }

    #[test]
    fn forbidden_bodies_are_the_recorded_namespaced_and_grouped_ones() {
        // kube-oidc-proxy e2e expectation.
        let error = Authorizer::forbidden(
            &User::new("test-username", ["some-group"]),
            &Attributes::resource("list", "", "secrets").in_namespace("kube-oidc-proxy-e2e-rbac"),
        );
        assert_eq!(
            error.to_status(),
            go_body(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets is forbidden: User \"test-username\" cannot list resource \"secrets\" in API group \"\" in the namespace \"kube-oidc-proxy-e2e-rbac\"","reason":"Forbidden","details":{"kind":"secrets"},"code":403}"#
            )
        );
        let anonymous = Authorizer::new()
            .authorize(
                &User::anonymous(),
                &Attributes::resource("create", "authorization.k8s.io", "selfsubjectaccessreviews"),
            )
            .unwrap_err();
        assert_eq!(
            anonymous.to_status(),
            go_body(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"selfsubjectaccessreviews.authorization.k8s.io is forbidden: User \"system:anonymous\" cannot create resource \"selfsubjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope","reason":"Forbidden","details":{"group":"authorization.k8s.io","kind":"selfsubjectaccessreviews"},"code":403}"#
            )
        );
        // JobSet troubleshooting doc (message only).
        let jobs = Authorizer::forbidden(
            &User::service_account("jobset-system", "jobset-controller-manager"),
            &Attributes::resource("update", "batch", "jobs")
                .with_subresource("status")
                .in_namespace("default")
                .named("js-slice-job-1"),
        );
        assert_eq!(
            jobs.message,
            r#"jobs.batch "js-slice-job-1" is forbidden: User "system:serviceaccount:jobset-system:jobset-controller-manager" cannot update resource "jobs/status" in API group "batch" in the namespace "default""#
        );
    }

    #[test]
    fn forbidden_names_the_object_and_quotes_the_subresource() {
        let error = Authorizer::forbidden(
            &User::service_account("ns", "sa"),
            &Attributes::resource("patch", CAMS, "chatgroups")
                .with_subresource("status")
                .in_namespace("ns")
                .named("x"),
        );
        assert_eq!(
            error.to_status(),
            go_body(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"chatgroups.cams.chatapp.io \"x\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot patch resource \"chatgroups/status\" in API group \"cams.chatapp.io\" in the namespace \"ns\"","reason":"Forbidden","details":{"name":"x","group":"cams.chatapp.io","kind":"chatgroups"},"code":403}"#
            )
        );
    }

    #[test]
    fn a_verb_matches_itself_or_the_wildcard_only() {
        let get =
            alice_may(json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]));
        assert!(get.allows(&alice(), &Attributes::resource("get", "", "secrets")));
        assert!(!get.allows(&alice(), &Attributes::resource("list", "", "secrets")));
        assert!(!get.allows(&alice(), &Attributes::resource("GET", "", "secrets")));
        let any = alice_may(json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]));
        for verb in ["get", "list", "watch", "deletecollection", "escalate"] {
            assert!(
                any.allows(&alice(), &Attributes::resource(verb, "", "secrets")),
                "{verb}"
            );
        }
    }

    #[test]
    fn an_api_group_matches_itself_or_the_wildcard_and_core_is_the_empty_group() {
        let core =
            alice_may(json!([{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]));
        assert!(core.allows(&alice(), &Attributes::resource("create", "", "events")));
        assert!(!core.allows(
            &alice(),
            &Attributes::resource("create", "events.k8s.io", "events")
        ));
        let events = alice_may(
            json!([{"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}]),
        );
        assert!(events.allows(
            &alice(),
            &Attributes::resource("create", "events.k8s.io", "events")
        ));
        assert!(!events.allows(&alice(), &Attributes::resource("create", "", "events")));
        let any =
            alice_may(json!([{"apiGroups": ["*"], "resources": ["events"], "verbs": ["create"]}]));
        assert!(any.allows(&alice(), &Attributes::resource("create", "", "events")));
        assert!(any.allows(
            &alice(),
            &Attributes::resource("create", "events.k8s.io", "events")
        ));
    }

    #[test]
    fn a_resource_rule_covers_neither_its_subresources_nor_its_parent() {
        let main = alice_may(
            json!([{"apiGroups": [CAMS], "resources": ["chatgroups"], "verbs": ["patch"]}]),
        );
        let patch = Attributes::resource("patch", CAMS, "chatgroups")
            .in_namespace("a")
            .named("x");
        assert!(main.allows(&alice(), &patch));
        assert!(!main.allows(&alice(), &patch.clone().with_subresource("status")));
        let status = alice_may(
            json!([{"apiGroups": [CAMS], "resources": ["chatgroups/status"], "verbs": ["patch"]}]),
        );
        assert!(status.allows(&alice(), &patch.clone().with_subresource("status")));
        assert!(!status.allows(&alice(), &patch));
        assert!(!status.allows(&alice(), &patch.clone().with_subresource("scale")));
    }

    #[test]
    fn the_resource_wildcard_covers_subresources_and_star_slash_covers_one_subresource_of_all() {
        let patch = |resource: &str| Attributes::resource("patch", CAMS, resource).named("x");
        let all = alice_may(json!([{"apiGroups": [CAMS], "resources": ["*"], "verbs": ["patch"]}]));
        assert!(all.allows(&alice(), &patch("chatgroups")));
        assert!(all.allows(&alice(), &patch("chatgroups").with_subresource("status")));
        let statuses = alice_may(
            json!([{"apiGroups": [CAMS], "resources": ["*/status"], "verbs": ["patch"]}]),
        );
        assert!(statuses.allows(&alice(), &patch("chatgroups").with_subresource("status")));
        assert!(statuses.allows(&alice(), &patch("others").with_subresource("status")));
        assert!(!statuses.allows(&alice(), &patch("chatgroups")));
        assert!(!statuses.allows(&alice(), &patch("chatgroups").with_subresource("scale")));
    }

    #[test]
    fn resource_names_allow_only_requests_naming_one_of_them() {
        let authorizer = alice_may(json!([{
            "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["cams-credentials"],
            "verbs": ["get", "list", "watch", "create", "deletecollection"],
        }]));
        let secrets = |verb: &str| Attributes::resource(verb, "", "secrets").in_namespace("a");
        assert!(authorizer.allows(&alice(), &secrets("get").named("cams-credentials")));
        assert!(!authorizer.allows(&alice(), &secrets("get").named("other")));
        for verb in ["list", "watch", "create", "deletecollection"] {
            assert!(
                !authorizer.allows(&alice(), &secrets(verb)),
                "{verb} has no name"
            );
        }
        // A list or watch selecting the one name carries it, as NewRequestInfo sets it.
        let query = |selector: &str| {
            vec![
                ("watch".to_owned(), "true".to_owned()),
                ("fieldSelector".to_owned(), selector.to_owned()),
            ]
        };
        let named_watch = Attributes::from_http(
            "GET",
            "/api/v1/namespaces/a/secrets",
            &query("metadata.name=cams-credentials"),
        );
        assert_eq!(named_watch.name.as_deref(), Some("cams-credentials"));
        assert!(authorizer.allows(&alice(), &named_watch));
        let other = Attributes::from_http(
            "GET",
            "/api/v1/namespaces/a/secrets",
            &query("metadata.name=x"),
        );
        assert!(!authorizer.allows(&alice(), &other));
    }

    #[test]
    fn a_cluster_role_binding_grants_in_every_namespace_and_at_cluster_scope() {
        let authorizer =
            alice_may(json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]));
        let list = Attributes::resource("list", "", "secrets");
        assert!(authorizer.allows(&alice(), &list));
        assert!(authorizer.allows(&alice(), &list.clone().in_namespace("a")));
        assert!(authorizer.allows(&alice(), &list.clone().in_namespace("kube-system")));
    }

    #[test]
    fn a_role_binding_grants_only_in_its_namespace() {
        let authorizer = with(&[
            role(
                "a",
                "r",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
            ),
            binding("a", "b", "Role", "r", users(&["alice"])),
        ]);
        let list = Attributes::resource("list", "", "secrets");
        assert!(authorizer.allows(&alice(), &list.clone().in_namespace("a")));
        assert!(!authorizer.allows(&alice(), &list.clone().in_namespace("b")));
        assert!(!authorizer.allows(&alice(), &list));
    }

    #[test]
    fn a_role_binding_to_a_cluster_role_grants_its_rules_only_in_the_binding_namespace() {
        let authorizer = with(&[
            cluster_role(
                "r",
                json!([{"apiGroups": [CAMS], "resources": ["chatgroups"], "verbs": ["list"]}]),
            ),
            binding("a", "b", "ClusterRole", "r", users(&["alice"])),
        ]);
        let list = Attributes::resource("list", CAMS, "chatgroups");
        assert!(authorizer.allows(&alice(), &list.clone().in_namespace("a")));
        assert!(!authorizer.allows(&alice(), &list.clone().in_namespace("b")));
        assert!(!authorizer.allows(&alice(), &list));
    }

    #[test]
    fn listing_across_all_namespaces_needs_a_cluster_wide_grant() {
        let mut objects = Vec::new();
        for namespace in ["a", "b"] {
            objects.push(role(namespace, "r", json!([{"apiGroups": [CAMS], "resources": ["chatgroups"], "verbs": ["list", "watch"]}])));
            objects.push(binding(namespace, "b", "Role", "r", users(&["alice"])));
        }
        let authorizer = with(&objects);
        for verb in ["list", "watch"] {
            let all = Attributes::resource(verb, CAMS, "chatgroups");
            assert!(authorizer.allows(&alice(), &all.clone().in_namespace("a")));
            assert!(!authorizer.allows(&alice(), &all));
            assert_eq!(
                authorizer.authorize(&alice(), &all).unwrap_err().message,
                format!(
                    "chatgroups.cams.chatapp.io is forbidden: User \"alice\" cannot {verb} resource \"chatgroups\" in API group \"cams.chatapp.io\" at the cluster scope"
                )
            );
        }
    }

    #[test]
    fn subjects_match_users_by_name_groups_by_membership_and_service_accounts_by_identity() {
        let rules = json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]);
        let get = Attributes::resource("get", "", "secrets")
            .in_namespace("a")
            .named("s");
        let subjects = json!([
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "team"},
            {"kind": "ServiceAccount", "name": "robot", "namespace": "ops"},
        ]);
        let authorizer = with(&[
            cluster_role("r", rules),
            cluster_binding("b", "r", subjects),
        ]);
        assert!(authorizer.allows(&alice(), &get));
        assert!(!authorizer.allows(&User::new("bob", Vec::<String>::new()), &get));
        assert!(authorizer.allows(&User::new("bob", ["team"]), &get));
        assert!(authorizer.allows(&User::service_account("ops", "robot"), &get));
        assert!(!authorizer.allows(&User::service_account("a", "robot"), &get));
        // A user merely named like the ServiceAccount is that ServiceAccount.
        assert!(authorizer.allows(
            &User::new("system:serviceaccount:ops:robot", Vec::<String>::new()),
            &get
        ));
        // Group subjects do not match user names, nor user subjects groups.
        assert!(!authorizer.allows(&User::new("team", Vec::<String>::new()), &get));
        assert!(!authorizer.allows(&User::new("carol", ["alice"]), &get));
    }

    #[test]
    fn a_service_account_subject_without_namespace_means_the_role_binding_namespace() {
        let authorizer = with(&[
            role(
                "a",
                "r",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
            ),
            binding(
                "a",
                "b",
                "Role",
                "r",
                json!([{"kind": "ServiceAccount", "name": "robot"}]),
            ),
        ]);
        let get = Attributes::resource("get", "", "secrets")
            .in_namespace("a")
            .named("s");
        assert!(authorizer.allows(&User::service_account("a", "robot"), &get));
        assert!(!authorizer.allows(&User::service_account("b", "robot"), &get));
    }

    #[test]
    fn service_account_users_carry_the_service_account_groups() {
        let user = User::service_account("ops", "robot");
        assert_eq!(user.name, "system:serviceaccount:ops:robot");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ops",
                "system:authenticated"
            ]
        );
        let authorizer = with(&[
            cluster_role(
                "r",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
            ),
            cluster_binding(
                "b",
                "r",
                json!([{"kind": "Group", "name": "system:serviceaccounts:ops"}]),
            ),
        ]);
        let list = Attributes::resource("list", "", "secrets");
        assert!(authorizer.allows(&user, &list));
        assert!(!authorizer.allows(&User::service_account("dev", "robot"), &list));
        assert_eq!(User::new("x", ["g"]).groups, ["g", "system:authenticated"]);
        assert_eq!(User::anonymous().groups, ["system:unauthenticated"]);
    }

    #[test]
    fn an_aggregated_cluster_role_grants_the_rules_of_the_roles_it_selects_at_decision_time() {
        let mut authorizer = with(&[
            json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": {"name": "agg"},
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-agg": "true"}}]},
                   "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
            cluster_binding("b", "agg", users(&["alice"])),
        ]);
        let chatgroups = Attributes::resource("list", CAMS, "chatgroups").in_namespace("a");
        // Its own rules are replaced by the (still empty) aggregation.
        assert!(!authorizer.allows(
            &alice(),
            &Attributes::resource("get", "", "pods").named("p")
        ));
        assert!(!authorizer.allows(&alice(), &chatgroups));
        authorizer
            .add(&json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
                         "metadata": {"name": "piece", "labels": {"to-agg": "true"}},
                         "rules": [{"apiGroups": [CAMS], "resources": ["chatgroups"], "verbs": ["list"]}]}))
            .unwrap();
        assert!(authorizer.allows(&alice(), &chatgroups));
        // A role without the label adds nothing.
        authorizer
            .add(&json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
                         "metadata": {"name": "other", "labels": {"to-agg": "false"}},
                         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}))
            .unwrap();
        assert!(!authorizer.allows(&alice(), &Attributes::resource("list", "", "secrets")));
        // Relabelling the piece takes its rules away again.
        authorizer
            .add(&json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
                         "metadata": {"name": "piece"},
                         "rules": [{"apiGroups": [CAMS], "resources": ["chatgroups"], "verbs": ["list"]}]}))
            .unwrap();
        assert!(!authorizer.allows(&alice(), &chatgroups));
    }

    #[test]
    fn aggregation_selectors_match_expressions_with_in_notin_exists_and_does_not_exist() {
        let piece = |name: &str, labels: Value, resource: &str| {
            json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
                   "metadata": {"name": name, "labels": labels},
                   "rules": [{"apiGroups": [""], "resources": [resource], "verbs": ["get"]}]})
        };
        let aggregating = |operator: &str, values: Value| {
            let mut expression = json!({"key": "tier", "operator": operator});
            if !values.is_null() {
                expression["values"] = values;
            }
            // Empty: the bootstrap roles lack the label too, and `NotIn`/`DoesNotExist` would
            // select them (cluster-admin included), as on a real cluster.
            let mut authorizer = Authorizer::empty();
            for object in [
                piece("p-gold", json!({"tier": "gold"}), "gold"),
                piece("p-silver", json!({"tier": "silver"}), "silver"),
                piece("p-none", json!({}), "none"),
                json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": {"name": "agg"},
                       "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [expression]}]}}),
                cluster_binding("b", "agg", users(&["alice"])),
            ] {
                authorizer.add(&object).unwrap();
            }
            authorizer
        };
        let granted = |authorizer: &Authorizer| -> Vec<&str> {
            ["gold", "silver", "none"]
                .into_iter()
                .filter(|r| {
                    authorizer.allows(&alice(), &Attributes::resource("get", "", r).named("x"))
                })
                .collect()
        };
        assert_eq!(granted(&aggregating("In", json!(["gold"]))), ["gold"]);
        assert_eq!(
            granted(&aggregating("NotIn", json!(["gold"]))),
            ["silver", "none"]
        );
        assert_eq!(
            granted(&aggregating("Exists", Value::Null)),
            ["gold", "silver"]
        );
        assert_eq!(granted(&aggregating("DoesNotExist", Value::Null)), ["none"]);
        // With the bootstrap policy, `NotIn` also selects cluster-admin: everything.
        let mut bootstrapped = aggregating("NotIn", json!(["gold"]));
        for object in bootstrap_policy() {
            bootstrapped.add(&object).unwrap();
        }
        assert_eq!(granted(&bootstrapped), ["gold", "silver", "none"]);
    }

    #[test]
    fn aggregation_is_transitive_through_the_builtin_view_edit_and_admin() {
        let authorizer = with(&[
            json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
                   "metadata": {"name": "reader", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                   "rules": [{"apiGroups": [CAMS], "resources": ["chatgroups"], "verbs": ["get"]}]}),
            binding("a", "admins", "ClusterRole", "admin", users(&["alice"])),
        ]);
        // reader → view → edit → admin.
        let get = Attributes::resource("get", CAMS, "chatgroups")
            .in_namespace("a")
            .named("x");
        assert!(authorizer.allows(&alice(), &get));
        assert!(!authorizer.allows(&alice(), &get.clone().in_namespace("b")));
        // Without a contribution the built-in roles grant nothing here (not emulated).
        assert!(
            !authorizer.allows(
                &alice(),
                &Attributes::resource("get", "", "pods")
                    .in_namespace("a")
                    .named("p")
            )
        );
    }

    #[test]
    fn an_aggregation_cycle_is_cut() {
        let aggregating = |name: &str, label: &str, selects: &str| {
            json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
                   "metadata": {"name": name, "labels": {label: "true"}},
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {selects: "true"}}]}})
        };
        let authorizer = with(&[
            aggregating("x", "to-y", "to-x"),
            aggregating("y", "to-x", "to-y"),
            json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole",
                   "metadata": {"name": "leaf", "labels": {"to-y": "true"}},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}),
            cluster_binding("b", "y", users(&["alice"])),
        ]);
        assert!(authorizer.allows(&alice(), &Attributes::resource("list", "", "secrets")));
    }

    #[test]
    fn system_masters_may_do_anything_even_without_rbac_objects() {
        let admin = User::admin();
        assert_eq!(admin.groups, ["system:masters", "system:authenticated"]);
        for authorizer in [Authorizer::empty(), Authorizer::new()] {
            assert!(authorizer.allows(&admin, &Attributes::resource("list", "", "secrets")));
            assert!(authorizer.allows(
                &admin,
                &Attributes::resource("escalate", RBAC_GROUP, "clusterroles").named("x")
            ));
            assert!(authorizer.allows(&admin, &Attributes::non_resource("post", "/anything")));
        }
        assert!(
            !Authorizer::empty().allows(&alice(), &Attributes::non_resource("get", "/version"))
        );
    }

    #[test]
    fn authenticated_users_may_read_discovery_and_health_paths_and_nothing_else() {
        let authorizer = Authorizer::new();
        let user = User::service_account("cams-system", "cams-operator");
        for path in [
            "/version",
            "/version/",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/cams.chatapp.io/v1",
            "/healthz",
            "/livez",
            "/readyz",
            "/openapi/v3",
            "/.well-known/openid-configuration",
        ] {
            let request = Attributes::from_http("GET", path, &[]);
            assert!(!request.is_resource_request(), "{path}");
            assert!(authorizer.allows(&user, &request), "{path}");
        }
        for (method, path) in [
            ("GET", "/metrics"),
            ("GET", "/healthz/etcd"),
            ("POST", "/version"),
            ("GET", "/"),
        ] {
            let request = Attributes::from_http(method, path, &[]);
            assert!(!authorizer.allows(&user, &request), "{method} {path}");
        }
        assert_eq!(
            authorizer
                .authorize(&user, &Attributes::from_http("GET", "/metrics", &[]))
                .unwrap_err()
                .to_status(),
            go_body(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:serviceaccount:cams-system:cams-operator\" cannot get path \"/metrics\"","reason":"Forbidden","details":{},"code":403}"#
            )
        );
        // Self-subject reviews (system:basic-user).
        assert!(authorizer.allows(
            &user,
            &Attributes::resource("create", "authorization.k8s.io", "selfsubjectaccessreviews")
        ));
        assert!(authorizer.allows(
            &user,
            &Attributes::resource("create", "authentication.k8s.io", "selfsubjectreviews")
        ));
    }

    #[test]
    fn anonymous_users_may_read_only_health_and_version() {
        let authorizer = Authorizer::new();
        for path in ["/healthz", "/livez", "/readyz", "/version"] {
            assert!(
                authorizer.allows(&User::anonymous(), &Attributes::non_resource("get", path)),
                "{path}"
            );
        }
        for path in ["/api", "/apis", "/openapi/v2"] {
            assert!(
                !authorizer.allows(&User::anonymous(), &Attributes::non_resource("get", path)),
                "{path}"
            );
        }
    }

    #[test]
    fn a_binding_to_a_missing_role_adds_the_rbac_reason_to_the_403() {
        let mut authorizer = with(&[
            cluster_binding("gone", "missing", users(&["alice"])),
            binding("a", "b1", "Role", "nope", users(&["alice"])),
            binding("a", "b2", "Role", "nope", users(&["alice"])),
            // Bindings that do not name alice add nothing.
            binding("a", "b3", "ClusterRole", "absent", users(&["bob"])),
        ]);
        let list = Attributes::resource("list", "", "secrets").in_namespace("a");
        assert_eq!(
            authorizer
                .authorize(&alice(), &list)
                .unwrap_err()
                .to_status(),
            go_body(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"a\": RBAC: [clusterrole.rbac.authorization.k8s.io \"missing\" not found, role.rbac.authorization.k8s.io \"nope\" not found]","reason":"Forbidden","details":{"kind":"secrets"},"code":403}"#
            )
        );
        // Another namespace: its RoleBindings are not looked at.
        assert_eq!(
            authorizer
                .authorize(
                    &alice(),
                    &Attributes::resource("list", "", "secrets").in_namespace("b")
                )
                .unwrap_err()
                .message,
            r#"secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "b": RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found"#
        );
        // A Role of the same name in another namespace does not count.
        authorizer
            .add(&role(
                "b",
                "nope",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
            ))
            .unwrap();
        assert!(!authorizer.allows(&alice(), &list));
        // Once the role exists (and allows), no reason is left.
        authorizer
            .add(&cluster_role(
                "missing",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
            ))
            .unwrap();
        assert_eq!(authorizer.authorize(&alice(), &list), Ok(()));
    }

    #[test]
    fn http_requests_map_to_attributes_as_new_request_info_does() {
        let query = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let cg = "/apis/cams.chatapp.io/v1";
        type Case = (&'static str, String, Vec<(String, String)>, Attributes);
        let cases: Vec<Case> = vec![
            (
                "GET",
                format!("{cg}/namespaces/a/chatgroups"),
                vec![],
                Attributes::resource("list", CAMS, "chatgroups").in_namespace("a"),
            ),
            (
                "GET",
                format!("{cg}/namespaces/a/chatgroups"),
                query(&[("watch", "true")]),
                Attributes::resource("watch", CAMS, "chatgroups").in_namespace("a"),
            ),
            (
                "GET",
                format!("{cg}/chatgroups"),
                query(&[("watch", "1")]),
                Attributes::resource("watch", CAMS, "chatgroups"),
            ),
            (
                "GET",
                format!("{cg}/chatgroups"),
                query(&[("watch", "")]),
                Attributes::resource("watch", CAMS, "chatgroups"),
            ),
            (
                "GET",
                format!("{cg}/chatgroups"),
                query(&[("watch", "False")]),
                Attributes::resource("list", CAMS, "chatgroups"),
            ),
            (
                "GET",
                format!("{cg}/chatgroups"),
                query(&[("watch", "0")]),
                Attributes::resource("list", CAMS, "chatgroups"),
            ),
            (
                "GET",
                format!("{cg}/namespaces/a/chatgroups/x"),
                vec![],
                Attributes::resource("get", CAMS, "chatgroups")
                    .in_namespace("a")
                    .named("x"),
            ),
            (
                "PATCH",
                format!("{cg}/namespaces/a/chatgroups/x/status"),
                vec![],
                Attributes::resource("patch", CAMS, "chatgroups")
                    .in_namespace("a")
                    .named("x")
                    .with_subresource("status"),
            ),
            (
                "PUT",
                format!("{cg}/namespaces/a/chatgroups/x/status"),
                vec![],
                Attributes::resource("update", CAMS, "chatgroups")
                    .in_namespace("a")
                    .named("x")
                    .with_subresource("status"),
            ),
            (
                "POST",
                "/apis/events.k8s.io/v1/namespaces/a/events".to_owned(),
                vec![],
                Attributes::resource("create", "events.k8s.io", "events").in_namespace("a"),
            ),
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/cams-system/leases/l".to_owned(),
                vec![],
                Attributes::resource("update", "coordination.k8s.io", "leases")
                    .in_namespace("cams-system")
                    .named("l"),
            ),
            (
                "DELETE",
                format!("{cg}/namespaces/a/chatgroups/x"),
                vec![],
                Attributes::resource("delete", CAMS, "chatgroups")
                    .in_namespace("a")
                    .named("x"),
            ),
            (
                "DELETE",
                format!("{cg}/namespaces/a/chatgroups"),
                vec![],
                Attributes::resource("deletecollection", CAMS, "chatgroups").in_namespace("a"),
            ),
            (
                "HEAD",
                "/api/v1/namespaces/a/secrets/s".to_owned(),
                vec![],
                Attributes::resource("get", "", "secrets")
                    .in_namespace("a")
                    .named("s"),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/secrets".to_owned(),
                query(&[("fieldSelector", "metadata.name=s")]),
                Attributes::resource("list", "", "secrets")
                    .in_namespace("a")
                    .named("s"),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/secrets".to_owned(),
                query(&[("fieldSelector", "metadata.namespace=a,metadata.name==s")]),
                Attributes::resource("list", "", "secrets")
                    .in_namespace("a")
                    .named("s"),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/secrets".to_owned(),
                query(&[("fieldSelector", "metadata.name!=s")]),
                Attributes::resource("list", "", "secrets").in_namespace("a"),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/secrets".to_owned(),
                query(&[("fieldSelector", "metadata.name=a%b")]),
                Attributes::resource("list", "", "secrets").in_namespace("a"),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/secrets".to_owned(),
                query(&[("fieldSelector", "metadata.name=s"), ("limit", "x")]),
                Attributes::resource("list", "", "secrets").in_namespace("a"),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/secrets".to_owned(),
                query(&[("fieldSelector", r"metadata.name=s\q")]),
                Attributes::resource("list", "", "secrets").in_namespace("a"),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/a/secrets/s".to_owned(),
                vec![],
                Attributes::resource("watch", "", "secrets")
                    .in_namespace("a")
                    .named("s"),
            ),
            (
                "GET",
                "/api/v1/namespaces/a".to_owned(),
                vec![],
                Attributes::resource("get", "", "namespaces")
                    .in_namespace("a")
                    .named("a"),
            ),
            (
                "GET",
                "/api/v1/namespaces".to_owned(),
                vec![],
                Attributes::resource("list", "", "namespaces"),
            ),
            (
                "PUT",
                "/api/v1/namespaces/a/finalize".to_owned(),
                vec![],
                Attributes::resource("update", "", "namespaces")
                    .in_namespace("a")
                    .named("a")
                    .with_subresource("finalize"),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/pods/p/log".to_owned(),
                vec![],
                Attributes::resource("get", "", "pods")
                    .in_namespace("a")
                    .named("p")
                    .with_subresource("log"),
            ),
            (
                "GET",
                "/version".to_owned(),
                vec![],
                Attributes::non_resource("get", "/version"),
            ),
            (
                "GET",
                "/api".to_owned(),
                vec![],
                Attributes::non_resource("get", "/api"),
            ),
            (
                "GET",
                "/api/v1".to_owned(),
                vec![],
                Attributes::non_resource("get", "/api/v1"),
            ),
            (
                "GET",
                cg.to_owned(),
                vec![],
                Attributes::non_resource("get", cg),
            ),
            (
                "POST",
                "/foo/bar/baz".to_owned(),
                vec![],
                Attributes::non_resource("post", "/foo/bar/baz"),
            ),
        ];
        for (method, path, query, expected) in cases {
            assert_eq!(
                Attributes::from_http(method, &path, &query),
                expected,
                "{method} {path} {query:?}"
            );
        }
    }

    #[test]
    fn invalid_rbac_objects_are_refused_with_the_422_message() {
        let mut authorizer = Authorizer::new();
        let cases = [
            (
                cluster_role("bad", json!([{"resources": ["pods"]}])),
                r#"ClusterRole.rbac.authorization.k8s.io "bad" is invalid: [rules[0].verbs: Required value: verbs must contain at least one value, rules[0].apiGroups: Required value: resource rules must supply at least one api group]"#,
            ),
            (
                role(
                    "a",
                    "r",
                    json!([{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]),
                ),
                r#"Role.rbac.authorization.k8s.io "r" is invalid: rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs"#,
            ),
            (
                cluster_role(
                    "mixed",
                    json!([{"nonResourceURLs": ["/x"], "resources": ["pods"], "verbs": ["get"]}]),
                ),
                r#"ClusterRole.rbac.authorization.k8s.io "mixed" is invalid: rules[0].nonResourceURLs: Invalid value: []string{"/x"}: rules cannot apply to both regular resources and non-resource URLs"#,
            ),
            (
                json!({"apiVersion": RBAC_API_VERSION, "kind": "Role", "metadata": {"name": "r"}, "rules": []}),
                r#"Role.rbac.authorization.k8s.io "r" is invalid: metadata.namespace: Required value"#,
            ),
            (
                json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": {"name": "a/b"}}),
                r#"ClusterRole.rbac.authorization.k8s.io "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain '/'"#,
            ),
            (
                json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
                       "roleRef": {"kind": "Role", "name": "r"},
                       "subjects": [{"kind": "ServiceAccount", "name": "robot"}]}),
                r#"ClusterRoleBinding.rbac.authorization.k8s.io "b" is invalid: [roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole", subjects[0].namespace: Required value]"#,
            ),
            (
                binding(
                    "a",
                    "b",
                    "Role",
                    "r",
                    json!([
                        {"kind": "ServiceAccount", "name": "Robot", "apiGroup": "v1"},
                        {"kind": "Team", "name": "t"},
                        {"kind": "User", "name": "u", "apiGroup": "example.com"},
                    ]),
                ),
                r#"RoleBinding.rbac.authorization.k8s.io "b" is invalid: [subjects[0].name: Invalid value: "Robot": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), subjects[0].apiGroup: Unsupported value: "v1": supported values: "", subjects[1].kind: Unsupported value: "Team": supported values: "ServiceAccount", "User", "Group", subjects[2].apiGroup: Unsupported value: "example.com": supported values: "rbac.authorization.k8s.io"]"#,
            ),
            (
                json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": {"name": "agg"},
                       "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "k", "operator": "Equals", "values": ["v"]}]}]}}),
                r#"ClusterRole.rbac.authorization.k8s.io "agg" is invalid: [aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator, aggregationRule.clusterRoleSelectors[0]: Invalid value: "null": invalid label selector.]"#,
            ),
            (
                json!({"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": {"name": "agg"},
                       "aggregationRule": {"clusterRoleSelectors": []}}),
                r#"ClusterRole.rbac.authorization.k8s.io "agg" is invalid: aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"#,
            ),
            (
                json!({"apiVersion": "rbac.authorization.k8s.io/v1beta1", "kind": "ClusterRole", "metadata": {"name": "old"}}),
                r#"no matches for kind "ClusterRole" in version "rbac.authorization.k8s.io/v1beta1""#,
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(
                authorizer.add(&object),
                Err(expected.to_owned()),
                "{object}"
            );
        }
        assert!(
            authorizer
                .add(&json!({"apiVersion": "v1", "kind": "Secret"}))
                .is_err()
        );
    }

    #[test]
    fn bindings_are_defaulted_before_validation() {
        // No roleRef.apiGroup, no apiGroup on User and Group subjects: defaulted, accepted.
        let authorizer = with(&[
            role(
                "a",
                "r",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
            ),
            json!({"apiVersion": RBAC_API_VERSION, "kind": "RoleBinding",
                   "metadata": {"name": "b", "namespace": "a"},
                   "roleRef": {"kind": "Role", "name": "r"},
                   "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "g"}]}),
        ]);
        let get = Attributes::resource("get", "", "secrets")
            .in_namespace("a")
            .named("s");
        assert!(authorizer.allows(&alice(), &get));
        assert!(authorizer.allows(&User::new("bob", ["g"]), &get));
    }

    #[test]
    fn manifests_keep_the_rbac_objects_and_ignore_the_rest() {
        let yaml = r#"
---
# Source: x/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: robot
  namespace: a
---
# only a comment
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: r
  namespace: a
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: r
  namespace: a
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: r
subjects:
  - kind: ServiceAccount
    name: robot
"#;
        let authorizer = Authorizer::from_manifests(yaml).unwrap();
        let get = Attributes::resource("get", "", "secrets")
            .in_namespace("a")
            .named("s");
        assert!(authorizer.allows(&User::service_account("a", "robot"), &get));
        let broken = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n";
        assert_eq!(
            Authorizer::from_manifests(broken).unwrap_err(),
            r#"Role.rbac.authorization.k8s.io "r" is invalid: metadata.namespace: Required value"#
        );
    }

    #[test]
    fn adding_an_object_again_replaces_it_and_removing_it_revokes() {
        let rules =
            |verb: &str| json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": [verb]}]);
        let mut authorizer = with(&[
            role("a", "r", rules("get")),
            binding("a", "b", "Role", "r", users(&["alice"])),
        ]);
        let get = Attributes::resource("get", "", "secrets")
            .in_namespace("a")
            .named("s");
        let list = Attributes::resource("list", "", "secrets").in_namespace("a");
        assert!(authorizer.allows(&alice(), &get));
        authorizer.add(&role("a", "r", rules("list"))).unwrap();
        assert!(!authorizer.allows(&alice(), &get));
        assert!(authorizer.allows(&alice(), &list));
        assert!(!authorizer.remove("RoleBinding", Some("b"), "b"));
        assert!(authorizer.remove("RoleBinding", Some("a"), "b"));
        assert!(!authorizer.allows(&alice(), &list));
    }

    /// `helm template` of the project's chart (release `cams-operator` in `cams-system`), with
    /// the helm `scripts/install-test-tools` installs.
    fn render_chart(sets: &[&str]) -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let helm = root.join(".tools/bin/helm");
        assert!(
            helm.exists(),
            "helm is missing at {}: run scripts/install-test-tools (it installs .tools/bin/helm)",
            helm.display()
        );
        let mut command = std::process::Command::new(&helm);
        command.current_dir(&root).args([
            "template",
            "cams-operator",
            "charts/cams-operator",
            "--namespace",
            "cams-system",
            "--kube-version",
            "1.33.0",
        ]);
        for set in sets {
            command.args(["--set", set]);
        }
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", helm.display()));
        assert!(
            output.status.success(),
            "helm template {sets:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("helm prints UTF-8")
    }

    fn chart(sets: &[&str]) -> Authorizer {
        Authorizer::from_manifests(&render_chart(sets))
            .unwrap_or_else(|e| panic!("the chart's RBAC ({sets:?}) does not load: {e}"))
    }

    #[test]
    fn the_chart_grants_the_operator_what_it_needs_in_each_mode() {
        let operator = User::service_account("cams-system", "cams-operator");
        let patch_status = |namespace: &str| {
            Attributes::resource("patch", CAMS, "chatgroups")
                .with_subresource("status")
                .in_namespace(namespace)
                .named("x")
        };
        let list_secrets = Attributes::resource("list", "", "secrets");
        let lease = |verb: &str, namespace: &str| {
            Attributes::resource(verb, "coordination.k8s.io", "leases")
                .in_namespace(namespace)
                .named("cams-operator")
        };

        // All namespaces (the default): one ClusterRole, no Lease access.
        let all = chart(&[]);
        for namespace in ["team-a", "team-c", "cams-system"] {
            assert!(
                all.allows(&operator, &patch_status(namespace)),
                "{namespace}"
            );
            assert!(all.allows(&operator, &list_secrets.clone().in_namespace(namespace)));
            assert!(all.allows(
                &operator,
                &Attributes::resource("create", "events.k8s.io", "events").in_namespace(namespace)
            ));
        }
        assert!(all.allows(&operator, &list_secrets));
        assert!(all.allows(
            &operator,
            &Attributes::resource("watch", CAMS, "chatgroups")
        ));
        // The finalizer of `deletionPolicy: Delete` is applied to the object itself.
        assert!(
            all.allows(
                &operator,
                &Attributes::resource("patch", CAMS, "chatgroups")
                    .in_namespace("team-a")
                    .named("x")
            )
        );
        assert_eq!(
            all.authorize(&operator, &lease("update", "cams-system"))
                .unwrap_err()
                .to_status(),
            go_body(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"leases.coordination.k8s.io \"cams-operator\" is forbidden: User \"system:serviceaccount:cams-system:cams-operator\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"cams-system\"","reason":"Forbidden","details":{"name":"cams-operator","group":"coordination.k8s.io","kind":"leases"},"code":403}"#
            )
        );
        // What the operator never does is not granted either.
        let never = [
            Attributes::resource("get", CAMS, "chatgroups")
                .in_namespace("team-a")
                .named("x"),
            Attributes::resource("update", CAMS, "chatgroups")
                .in_namespace("team-a")
                .named("x"),
            Attributes::resource("update", "", "secrets")
                .in_namespace("team-a")
                .named("s"),
            Attributes::resource("create", "", "events").in_namespace("team-a"),
            Attributes::resource("patch", "events.k8s.io", "events")
                .in_namespace("team-a")
                .named("e"),
        ];
        for attributes in &never {
            assert!(!all.allows(&operator, attributes), "{attributes:?}");
        }
        // Nobody else in the release namespace gets the operator's access.
        assert!(!all.allows(
            &User::service_account("cams-system", "default"),
            &patch_status("team-a")
        ));

        // Leader election adds create/get/update of Leases in the release namespace only.
        let elected = chart(&["leaderElection.enabled=true"]);
        for verb in ["create", "get", "update"] {
            assert!(
                elected.allows(&operator, &lease(verb, "cams-system")),
                "{verb}"
            );
            assert!(!elected.allows(&operator, &lease(verb, "team-a")), "{verb}");
        }
        assert!(!elected.allows(&operator, &lease("patch", "cams-system")));
        assert!(!elected.allows(&operator, &lease("delete", "cams-system")));

        // watchNamespaces: a Role and RoleBinding per watched namespace.
        let watched = chart(&[
            "watchNamespaces={team-a,team-b}",
            "leaderElection.enabled=true",
        ]);
        for namespace in ["team-a", "team-b"] {
            assert!(
                watched.allows(&operator, &patch_status(namespace)),
                "{namespace}"
            );
            assert!(watched.allows(&operator, &list_secrets.clone().in_namespace(namespace)));
            assert!(watched.allows(
                &operator,
                &Attributes::resource("watch", CAMS, "chatgroups").in_namespace(namespace)
            ));
        }
        assert_eq!(
            watched
                .authorize(&operator, &patch_status("team-c"))
                .unwrap_err()
                .to_status(),
            go_body(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"chatgroups.cams.chatapp.io \"x\" is forbidden: User \"system:serviceaccount:cams-system:cams-operator\" cannot patch resource \"chatgroups/status\" in API group \"cams.chatapp.io\" in the namespace \"team-c\"","reason":"Forbidden","details":{"name":"x","group":"cams.chatapp.io","kind":"chatgroups"},"code":403}"#
            )
        );
        assert_eq!(
            watched
                .authorize(&operator, &list_secrets)
                .unwrap_err()
                .to_status(),
            go_body(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets is forbidden: User \"system:serviceaccount:cams-system:cams-operator\" cannot list resource \"secrets\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"kind":"secrets"},"code":403}"#
            )
        );
        assert!(!watched.allows(
            &operator,
            &Attributes::resource("watch", CAMS, "chatgroups")
        ));
        assert!(watched.allows(&operator, &lease("update", "cams-system")));
        // The Lease Role grants nothing else in the release namespace.
        assert!(!watched.allows(&operator, &patch_status("cams-system")));

        let watched_alone = chart(&["watchNamespaces={team-a,team-b}"]);
        assert!(watched_alone.allows(&operator, &patch_status("team-a")));
        assert!(!watched_alone.allows(&operator, &lease("update", "cams-system")));
    }

    #[test]
    fn the_chart_aggregates_chatgroup_access_into_view_edit_and_admin() {
        let mut authorizer = chart(&[]);
        for (name, role) in [("viewer", "view"), ("editor", "edit"), ("owner", "admin")] {
            authorizer
                .add(&binding(
                    "team-a",
                    name,
                    "ClusterRole",
                    role,
                    users(&[name]),
                ))
                .unwrap();
        }
        let user = |name: &str| User::new(name, Vec::<String>::new());
        let chatgroups =
            |verb: &str| Attributes::resource(verb, CAMS, "chatgroups").in_namespace("team-a");
        let read = [
            chatgroups("get").named("x"),
            chatgroups("list"),
            chatgroups("watch"),
        ];
        let write = [
            chatgroups("create"),
            chatgroups("update").named("x"),
            chatgroups("patch").named("x"),
            chatgroups("delete").named("x"),
            chatgroups("deletecollection"),
        ];
        for name in ["viewer", "editor", "owner"] {
            for attributes in &read {
                assert!(
                    authorizer.allows(&user(name), attributes),
                    "{name} {attributes:?}"
                );
                let elsewhere = attributes.clone().in_namespace("team-b");
                assert!(
                    !authorizer.allows(&user(name), &elsewhere),
                    "{name} {elsewhere:?}"
                );
            }
            // Nobody but the operator writes status.
            assert!(!authorizer.allows(
                &user(name),
                &chatgroups("patch").named("x").with_subresource("status")
            ));
        }
        for attributes in &write {
            assert!(
                !authorizer.allows(&user("viewer"), attributes),
                "{attributes:?}"
            );
            assert!(
                authorizer.allows(&user("editor"), attributes),
                "{attributes:?}"
            );
            assert!(
                authorizer.allows(&user("owner"), attributes),
                "{attributes:?}"
            );
        }
        let chart_off = chart(&["rbac.aggregateToDefaultRoles=false"]);
        let mut off = chart_off;
        off.add(&binding(
            "team-a",
            "editor",
            "ClusterRole",
            "edit",
            users(&["editor"]),
        ))
        .unwrap();
        assert!(!off.allows(&user("editor"), &chatgroups("list")));
    }
}
