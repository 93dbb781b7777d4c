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

/// A test server builder that serves ChatGroups from the committed CRD.
pub fn api_server() -> TestApiServerBuilder {
    TestApiServer::builder().crd(CRD_YAML)
}

/// A test server serving ChatGroups from the committed CRD, and a client for it.
pub async fn start_api_server() -> (TestApiServer, kube::Client) {
    api_server().start().await
}
