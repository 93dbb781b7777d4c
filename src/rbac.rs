//! The Kubernetes API access the operator needs: the single list the Helm chart's RBAC is checked
//! against.
//!
//! Every API call the controller makes must be covered by exactly one rule here, and the chart
//! (`charts/cams-operator/templates/rbac.yaml` and `_helpers.tpl`) must grant exactly these rules,
//! no more: `tests/packaging.rs` renders the chart and compares its Roles and ClusterRoles with
//! [`RULES`]. When the controller starts calling another verb or resource, add it here and to the
//! chart in the same change.

use crate::crd::{API_GROUP, PLURAL};

/// Where a rule is granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// In every watched namespace: a ClusterRole when the operator watches all namespaces, a
    /// Role in each namespace of `watchNamespaces` otherwise.
    Watched,
    /// In the namespace of the leader-election Lease only, and only when leader election is on.
    Lease,
}

/// One RBAC policy rule: an API group, one resource (or `resource/subresource`) and its verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RbacRule {
    /// API group; `""` is the core group.
    pub api_group: &'static str,
    /// Resource plural, or `plural/subresource`.
    pub resource: &'static str,
    /// Verbs, sorted, never `*`.
    pub verbs: &'static [&'static str],
    /// Where the rule is granted.
    pub scope: Scope,
}

/// Resource name of the ChatGroup status subresource.
pub const CHATGROUP_STATUS_RESOURCE: &str = "chatgroups/status";

/// Every API access the operator makes, no more: `tests/e2e.rs` checks that the requests the
/// running operator makes are exactly these.
///
/// - ChatGroups: watched (list + watch); status written with server-side apply (patch on
///   `/status`); the object itself patched only to add or remove the operator's finalizer
///   (`deletionPolicy: Delete`), under a field manager of its own. The operator never writes
///   `spec`.
/// - Secrets: credentials are read (get) and watched so rotation needs no restart. Never
///   written.
/// - Events (`events.k8s.io`): created, one per write and per change of failure class (each
///   occurrence is its own Event, so nothing is patched).
/// - Leases (`coordination.k8s.io`): leader election, only when `--leader-election` is set.
pub const RULES: &[RbacRule] = &[
    RbacRule {
        api_group: API_GROUP,
        resource: PLURAL,
        verbs: &["list", "patch", "watch"],
        scope: Scope::Watched,
    },
    RbacRule {
        api_group: API_GROUP,
        resource: CHATGROUP_STATUS_RESOURCE,
        verbs: &["patch"],
        scope: Scope::Watched,
    },
    RbacRule {
        api_group: "",
        resource: "secrets",
        verbs: &["get", "list", "watch"],
        scope: Scope::Watched,
    },
    RbacRule {
        api_group: "events.k8s.io",
        resource: "events",
        verbs: &["create"],
        scope: Scope::Watched,
    },
    RbacRule {
        api_group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["create", "get", "update"],
        scope: Scope::Lease,
    },
];

/// The rules granted in `scope`, in the order of [`RULES`].
pub fn rules_in(scope: Scope) -> impl Iterator<Item = &'static RbacRule> {
    RULES.iter().filter(move |rule| rule.scope == scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_resource_is_the_plural_with_the_status_subresource() {
        assert_eq!(CHATGROUP_STATUS_RESOURCE, format!("{PLURAL}/status"));
    }

    #[test]
    fn no_wildcards_sorted_verbs_and_one_rule_per_resource() {
        let mut seen = std::collections::HashSet::new();
        for rule in RULES {
            assert!(!rule.api_group.contains('*'), "{rule:?}");
            assert!(!rule.resource.contains('*'), "{rule:?}");
            assert!(!rule.verbs.is_empty(), "{rule:?}");
            assert!(rule.verbs.iter().all(|v| !v.contains('*')), "{rule:?}");
            assert!(rule.verbs.windows(2).all(|w| w[0] < w[1]), "{rule:?}");
            assert!(seen.insert((rule.api_group, rule.resource)), "{rule:?}");
        }
    }

    #[test]
    fn secrets_are_read_only_and_leases_only_in_the_lease_scope() {
        for rule in RULES {
            if rule.resource == "secrets" {
                assert_eq!(rule.verbs, ["get", "list", "watch"]);
            }
            assert_eq!(rule.resource == "leases", rule.scope == Scope::Lease);
        }
        assert_eq!(rules_in(Scope::Lease).count(), 1);
    }
}
