//! Realistic populations: thousands of unrelated Secrets spread over tenant namespaces, as
//! every real cluster holds.

mod common;

use std::collections::BTreeSet;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube_test_server::{RequestKind, kinds};

#[tokio::test]
async fn seeded_helm_release_secrets_exist_spread_over_the_tenant_namespaces() {
    let (server, _client) = start().await;
    server.seed_unrelated_secrets(2000, 8192, 40);
    let all = server.list(&kinds::SECRETS, None);
    assert_eq!(all.len(), 2000);
    let namespaces: BTreeSet<String> = all
        .iter()
        .map(|s| s["metadata"]["namespace"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(namespaces, (0..40).map(|i| format!("tenant-{i}")).collect());
    for i in 0..40 {
        assert!(
            server
                .get(&kinds::NAMESPACES, "", &format!("tenant-{i}"))
                .is_some()
        );
        assert_eq!(
            server
                .list(&kinds::SECRETS, Some(&format!("tenant-{i}")))
                .len(),
            50
        );
    }
    let first = server
        .get(&kinds::SECRETS, "tenant-0", "sh.helm.release.v1.app-0.v1")
        .expect("named as Helm names release Secrets");
    assert_eq!(first["type"], "helm.sh/release.v1");
    assert_eq!(first["metadata"]["labels"]["owner"], "helm");
    let release = first["data"]["release"].as_str().unwrap();
    assert_eq!(
        release.len(),
        8192usize.div_ceil(3) * 4,
        "8192 bytes, base64-encoded"
    );
}

#[tokio::test]
async fn a_list_pages_through_every_seeded_secret() {
    let (server, client) = start().await;
    server.seed_unrelated_secrets(2000, 8192, 40);
    let secrets: Api<Secret> = Api::all(client);
    let mut names = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(500);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = secrets.list(&params).await.unwrap();
        for secret in &page.items {
            assert!(names.insert(format!(
                "{}/{}",
                secret.namespace().unwrap(),
                secret.name_any()
            )));
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names.len(), 2000);
    assert_eq!(server.count(|r| r.kind == RequestKind::List), 4);
}

#[tokio::test]
async fn a_namespaced_list_elsewhere_does_not_see_them() {
    let (server, client) = start().await;
    server.seed_unrelated_secrets(2000, 8192, 40);
    let default: Api<Secret> = Api::namespaced(client.clone(), "default");
    assert!(
        default
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let tenant: Api<Secret> = Api::namespaced(client, "tenant-7");
    assert_eq!(
        tenant
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        50
    );
}
