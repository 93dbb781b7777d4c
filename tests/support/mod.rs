//! Support code shared by the integration tests: the ChatGroup CRD as the API test server
//! serves it, and the fixtures of `fixtures`. Include it from a test binary with
//! `mod support;`; each binary uses only part of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

pub mod fixtures;

use std::sync::OnceLock;

use kube_test_server::{ResourceKind, TestApiServer, TestApiServerBuilder};

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
pub const NAMESPACES: [&str; 10] = [
    "support", "e2e", "fleet", "other", "a", "b", "ns1", "ns2", "one", "two",
];

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
