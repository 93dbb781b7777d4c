//! Support code shared by the integration tests: the ChatGroup CRD as the API test server
//! serves it, the fixtures of `fixtures`, and a running operator (`operator`). Include it
//! from a test binary with `mod support;`; each binary uses only part of it, hence
//! `dead_code` is allowed here.
#![allow(dead_code)]

pub mod fixtures;
pub mod operator;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use kube_test_server::{ResourceKind, TestApiServer, TestApiServerBuilder, User};

/// The committed CRD manifest (`crds/chatgroup.yaml`), as the test server loads it.
pub const CRD_YAML: &str = include_str!("../../crds/chatgroup.yaml");

/// The ChatGroup kind, as defined by the committed CRD.
pub fn chatgroups() -> ResourceKind {
    static KIND: OnceLock<ResourceKind> = OnceLock::new();
    KIND.get_or_init(|| {
        let crd: serde_json::Value = serde_yaml::from_str(CRD_YAML).expect("the CRD parses");
        ResourceKind::from_crd(&crd).expect("the CRD defines a kind")
    })
    .clone()
}

/// The namespaces the test suites put their objects in; a real cluster has them created
/// before anything is applied in them, and so does the test server.
pub const NAMESPACES: [&str; 5] = ["support", "e2e", "fleet", "lifecycle", RELEASE_NAMESPACE];

/// The namespace the chart is installed in, in the RBAC tests (its Lease lives there).
pub const RELEASE_NAMESPACE: &str = "cams-system";
/// The Helm release name; the operator's ServiceAccount has the same name.
pub const RELEASE: &str = "cams-operator";

/// The operator's ServiceAccount, as the chart creates it.
pub fn operator_user() -> User {
    User::service_account(RELEASE_NAMESPACE, RELEASE)
}

/// How the chart grants the operator access (`watchNamespaces`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RbacMode {
    /// A ClusterRole and its binding: the operator watches every namespace.
    ClusterWide,
    /// A Role and RoleBinding in each watched namespace (`watchNamespaces={e2e,fleet}`).
    WatchedNamespaces,
}

impl RbacMode {
    /// The namespaces the operator watches in this mode (empty: all).
    pub fn watched(self) -> Vec<String> {
        match self {
            RbacMode::ClusterWide => Vec::new(),
            RbacMode::WatchedNamespaces => vec!["e2e".into(), "fleet".into()],
        }
    }
}

/// The chart rendered by the real `helm template` for `mode`, with leader election on: the
/// RBAC objects the API test server enforces. Fails loudly when helm is missing.
pub fn chart_manifests(mode: RbacMode) -> String {
    static RENDERED: OnceLock<std::sync::Mutex<std::collections::HashMap<RbacMode, String>>> =
        OnceLock::new();
    let cache = RENDERED.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(mode)
        .or_insert_with(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let helm = root.join(".tools/bin/helm");
            assert!(
                helm.exists(),
                "helm is missing at {}: run scripts/install-test-tools (the test command runs it first)",
                helm.display()
            );
            let mut args = vec![
                "template".to_owned(),
                RELEASE.to_owned(),
                "charts/cams-operator".to_owned(),
                "--namespace".to_owned(),
                RELEASE_NAMESPACE.to_owned(),
                "--set".to_owned(),
                "leaderElection.enabled=true".to_owned(),
            ];
            if mode == RbacMode::WatchedNamespaces {
                args.push("--set".to_owned());
                args.push(format!("watchNamespaces={{{}}}", mode.watched().join(",")));
            }
            let output = Command::new(&helm)
                .args(&args)
                .current_dir(&root)
                .output()
                .expect("helm runs");
            assert!(
                output.status.success(),
                "helm template failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).expect("helm prints UTF-8")
        })
        .clone()
}

/// A test server builder that serves ChatGroups from the committed CRD, with the suites'
/// namespaces created.
pub fn api_server() -> TestApiServerBuilder {
    NAMESPACES
        .iter()
        .fold(TestApiServer::builder().crd(CRD_YAML), |b, ns| {
            b.namespace(ns)
        })
}

/// A test server serving ChatGroups from the committed CRD, and a client for it.
pub async fn start_api_server() -> (TestApiServer, kube::Client) {
    api_server().start().await
}

/// The kstatus verdict on an object (`Current`, `InProgress`, `Failed`, `Terminating`), by the
/// rules that `kubectl wait`, Flux and kpt apply to custom resources: kubernetes-sigs/cli-utils
/// `pkg/kstatus/status/status.go` (`Compute`) and `generic.go` (`checkGenericProperties`,
/// `checkGeneration`): a deletion timestamp is Terminating; a `status.observedGeneration` that
/// differs from `metadata.generation` is InProgress; then the first of `Reconciling=True`
/// (InProgress) and `Stalled=True` (Failed) in the conditions decides; anything else — no
/// status at all included — is Current.
pub fn kstatus(object: &serde_json::Value) -> &'static str {
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| t.as_str().is_some_and(|t| !t.is_empty()))
    {
        return "Terminating";
    }
    let generation = object
        .pointer("/metadata/generation")
        .and_then(|g| g.as_i64());
    let observed = object
        .pointer("/status/observedGeneration")
        .and_then(|g| g.as_i64());
    if let (Some(generation), Some(observed)) = (generation, observed)
        && generation != observed
    {
        return "InProgress";
    }
    let conditions = object
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    for condition in &conditions {
        match (condition["type"].as_str(), condition["status"].as_str()) {
            (Some("Reconciling"), Some("True")) => return "InProgress",
            (Some("Stalled"), Some("True")) => return "Failed",
            _ => {}
        }
    }
    "Current"
}
