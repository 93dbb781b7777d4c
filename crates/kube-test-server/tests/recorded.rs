//! Recorded kube-apiserver responses (see `tests/recorded/README.md` for their sources),
//! reproduced against the test server and compared whole.

mod common;

use common::*;
use kube_test_server::{Attributes, Authorizer, TestApiServer, User};
use serde_json::Value;

fn recorded(name: &str) -> Value {
    let path = format!("{}/tests/recorded/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A server enforcing RBAC with nothing but the bootstrap roles of a new cluster.
async fn bare_rbac() -> TestApiServer {
    let (server, _client) = start().await;
    server.enforce_rbac("");
    server
}

async fn get_as(server: &TestApiServer, user: &User, path: &str) -> Reply {
    let authorization = format!("Bearer {}", server.token_for(user));
    send(
        server,
        "GET",
        path,
        &[("Authorization", &authorization)],
        b"",
    )
    .await
}

/// Every case through the authorizer; over HTTP only the named get can be asked (a GET
/// without a name is a list, and a subresource needs a name).
#[test]
fn the_authorizer_renders_every_test_forbidden_body() {
    let expected = recorded("test-forbidden.json");
    let user = User::new("NAME", Vec::<String>::new());
    let cases = [
        Attributes::non_resource("GET", "/whatever"),
        Attributes::non_resource("GET", "/<script>"),
        Attributes::resource("get", "", "pod"),
        Attributes::resource("get", "", "pod").named("mypod"),
        Attributes::resource("get", "v2", "pod")
            .with_subresource("quota")
            .in_namespace("test"),
    ];
    for (i, attributes) in cases.iter().enumerate() {
        assert_eq!(
            Authorizer::forbidden(&user, attributes).to_status(),
            expected[i],
            "case {i}: {attributes:?}"
        );
    }
}

#[tokio::test]
async fn a_named_get_over_http_is_refused_with_the_test_forbidden_body() {
    let server = bare_rbac().await;
    let user = User::new("NAME", Vec::<String>::new());
    let reply = get_as(&server, &user, "/api/v1/pod/mypod").await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json(), recorded("test-forbidden.json")[3]);
}

#[tokio::test]
async fn listing_secrets_across_namespaces_without_a_cluster_grant_is_the_kubetorch_403() {
    let server = bare_rbac().await;
    let controller = User::service_account("kubetorch", "kubetorch-controller");
    let reply = get_as(&server, &controller, "/api/v1/secrets").await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), recorded("kubetorch-list-secrets-403.json"));
}
