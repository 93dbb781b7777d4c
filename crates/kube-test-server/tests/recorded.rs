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

/// The recorded 422 of an `IngressRoute` created without `spec`, reproduced on a fixture CRD
/// with the same rule (`spec` required).
#[tokio::test]
async fn a_custom_resource_without_a_required_field_gets_the_recorded_422() {
    let crd = include_str!("fixtures/ingressroutes.yaml");
    let (server, _client) = TestApiServer::builder().crd(crd).start().await;
    let reply = send_json(
        &server,
        "POST",
        "/apis/traefik.containo.us/v1alpha1/namespaces/default/ingressroutes",
        &serde_json::json!({
            "apiVersion": "traefik.containo.us/v1alpha1",
            "kind": "IngressRoute",
            "metadata": {"name": "traefik-dashboard", "namespace": "default"},
        }),
    )
    .await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.json(),
        recorded("422-ingressroute-spec-required.json")
    );
}

/// The recorded in-band 410 of a watch from a version the watch cache no longer holds, with
/// the two versions (the cluster's own numbers) masked.
#[tokio::test]
async fn a_watch_from_a_forgotten_version_gets_the_recorded_410_event() {
    let (server, _client) = start().await;
    let old = rv(&server.put(&chatgroups(), chat_group("g")));
    server.compact();
    let reply = send(
        &server,
        "GET",
        &format!("/apis/cams.chatapp.io/v1alpha1/namespaces/default/chatgroups?watch=true&resourceVersion={old}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "the error travels inside the stream");
    // Each run of digits in the message becomes `N`.
    let mask = |mut event: Value| {
        let message = event["object"]["message"].as_str().unwrap_or_default();
        let mut masked = String::new();
        for c in message.chars() {
            if !c.is_ascii_digit() {
                masked.push(c);
            } else if !masked.ends_with('N') {
                masked.push('N');
            }
        }
        event["object"]["message"] = Value::String(masked);
        event
    };
    let lines = reply.lines();
    assert_eq!(lines.len(), 1, "one ERROR event, then the stream ends");
    assert_eq!(
        mask(lines[0].clone()),
        mask(recorded("410-watch-too-old.json"))
    );
}
