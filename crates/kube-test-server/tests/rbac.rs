//! RBAC enforced over HTTP with the roles the project's chart renders: what the operator's
//! ServiceAccount may do in the default (all namespaces) mode and with `watchNamespaces`, the
//! exact 403 it gets elsewhere, the 401 of an unknown token, and the administrator.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use kube::api::{ListParams, Patch, PatchParams, WatchParams};
use kube_test_server::{TestApiServer, User};
use serde_json::{Value, json};

const OPERATOR: &str = "system:serviceaccount:cams-system:cams-operator";

/// `helm template` of the project's chart as release `cams-operator` in `cams-system`.
fn render_chart(sets: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let helm = root.join(".tools/bin/helm");
    assert!(
        helm.exists(),
        "helm is missing at {}: run scripts/install-test-tools (it installs .tools/bin/helm)",
        helm.display()
    );
    let mut command = Command::new(&helm);
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

/// A server enforcing the chart's RBAC (rendered with `sets`), with the namespaces used here.
async fn enforcing(sets: &[&str]) -> TestApiServer {
    let (server, _admin) = builder()
        .namespace("cams-system")
        .namespace("team-a")
        .namespace("team-c")
        .start()
        .await;
    for namespace in ["team-a", "team-c"] {
        let mut object = chat_group("x");
        object["metadata"]["namespace"] = json!(namespace);
        server.put(&chatgroups(), object);
    }
    server.enforce_rbac(&render_chart(sets));
    server
}

fn operator() -> User {
    User::service_account("cams-system", "cams-operator")
}

/// A raw request as `user`.
async fn send_as(
    server: &TestApiServer,
    user: &User,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Reply {
    let authorization = format!("Bearer {}", server.token_for(user));
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    send(
        server,
        method,
        path,
        &[
            ("Authorization", &authorization),
            ("Content-Type", content_type),
        ],
        body.as_bytes(),
    )
    .await
}

fn forbidden(message: &str, details: Value) -> Value {
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message": message, "reason":"Forbidden", "details": details, "code":403})
}

fn status_apply() -> Value {
    json!({"apiVersion": "cams.chatapp.io/v1alpha1", "kind": "ChatGroup", "status": {"observedGeneration": 1}})
}

mod all_namespaces {
    use super::*;

    #[tokio::test]
    async fn the_operator_may_list_and_watch_chatgroups_across_namespaces() {
        let server = enforcing(&[]).await;
        let client = server.client_as(&operator());
        let listed = all_groups(&client)
            .list(&ListParams::default())
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 2);
        let _watch = all_groups(&client)
            .watch(
                &WatchParams::default().timeout(1),
                &listed.metadata.resource_version.unwrap(),
            )
            .await
            .unwrap();
        assert!(
            server
                .requests()
                .iter()
                .all(|r| r.status == 200 && r.user == OPERATOR)
        );
    }

    #[tokio::test]
    async fn the_operator_may_apply_chatgroup_status_in_any_namespace() {
        let server = enforcing(&[]).await;
        let client = server.client_as(&operator());
        for namespace in ["team-a", "team-c"] {
            groups(&client, namespace)
                .patch_status(
                    "x",
                    &PatchParams::apply("cams-operator"),
                    &Patch::Apply(status_apply()),
                )
                .await
                .unwrap_or_else(|e| panic!("{namespace}: {e}"));
        }
    }

    #[tokio::test]
    async fn the_operator_gets_the_exact_403_for_what_the_chart_does_not_grant() {
        let server = enforcing(&[]).await;
        // The operator may patch ChatGroups (its finalizer), never replace or delete them.
        let spec_update = send_as(
            &server,
            &operator(),
            "PUT",
            &group_path("team-a", "x"),
            "application/json",
            &json!({"apiVersion": "cams.chatapp.io/v1alpha1", "kind": "ChatGroup", "metadata": {"name": "x", "namespace": "team-a"}, "spec": {"subject": "x"}}),
        )
        .await;
        assert_eq!(spec_update.status, 403);
        assert_eq!(
            spec_update.json(),
            forbidden(
                &format!(
                    "chatgroups.cams.chatapp.io \"x\" is forbidden: User \"{OPERATOR}\" cannot update resource \"chatgroups\" in API group \"cams.chatapp.io\" in the namespace \"team-a\""
                ),
                json!({"name":"x","group":"cams.chatapp.io","kind":"chatgroups"}),
            )
        );
        let lease = send_as(
            &server,
            &operator(),
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/cams-system/leases/cams-operator",
            "application/json",
            &json!({"metadata": {"name": "cams-operator", "resourceVersion": "1"}}),
        )
        .await;
        assert_eq!(
            lease.json(),
            forbidden(
                &format!(
                    "leases.coordination.k8s.io \"cams-operator\" is forbidden: User \"{OPERATOR}\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"cams-system\""
                ),
                json!({"name":"cams-operator","group":"coordination.k8s.io","kind":"leases"}),
            )
        );
        assert_eq!(
            server.get(&chatgroups(), "team-a", "x").unwrap()["spec"]["subject"],
            "Support"
        );
        assert_eq!(server.count(|r| r.status == 403), 2);
    }
}

mod watched_namespaces {
    use super::*;

    #[tokio::test]
    async fn the_operator_may_list_and_apply_status_in_a_watched_namespace() {
        let server = enforcing(&["watchNamespaces={team-a}"]).await;
        let client = server.client_as(&operator());
        let team_a = groups(&client, "team-a");
        assert_eq!(
            team_a
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        team_a
            .patch_status(
                "x",
                &PatchParams::apply("cams-operator"),
                &Patch::Apply(status_apply()),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_operator_may_not_list_across_namespaces() {
        let server = enforcing(&["watchNamespaces={team-a}"]).await;
        let reply = send_as(
            &server,
            &operator(),
            "GET",
            "/apis/cams.chatapp.io/v1alpha1/chatgroups",
            "application/json",
            &Value::Null,
        )
        .await;
        assert_eq!(reply.status, 403);
        assert_eq!(
            reply.json(),
            forbidden(
                &format!(
                    "chatgroups.cams.chatapp.io is forbidden: User \"{OPERATOR}\" cannot list resource \"chatgroups\" in API group \"cams.chatapp.io\" at the cluster scope"
                ),
                json!({"group":"cams.chatapp.io","kind":"chatgroups"}),
            )
        );
    }

    #[tokio::test]
    async fn the_operator_may_not_write_status_in_another_namespace() {
        let server = enforcing(&["watchNamespaces={team-a}"]).await;
        let reply = send_as(
            &server,
            &operator(),
            "PATCH",
            &format!(
                "{}/status?fieldManager=cams-operator",
                group_path("team-c", "x")
            ),
            "application/apply-patch+yaml",
            &status_apply(),
        )
        .await;
        assert_eq!(
            reply.json(),
            forbidden(
                &format!(
                    "chatgroups.cams.chatapp.io \"x\" is forbidden: User \"{OPERATOR}\" cannot patch resource \"chatgroups/status\" in API group \"cams.chatapp.io\" in the namespace \"team-c\""
                ),
                json!({"name":"x","group":"cams.chatapp.io","kind":"chatgroups"}),
            )
        );
        assert!(
            server
                .get(&chatgroups(), "team-c", "x")
                .unwrap()
                .get("status")
                .is_none()
        );
    }
}

mod identities {
    use super::*;

    #[tokio::test]
    async fn an_unknown_bearer_token_is_401() {
        let (server, _client) = start().await;
        let reply = send(
            &server,
            "GET",
            &groups_path("default"),
            &[("Authorization", "Bearer token-nobody-was-given")],
            b"",
        )
        .await;
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Unauthorized","reason":"Unauthorized","code":401})
        );
    }

    #[tokio::test]
    async fn the_administrator_is_allowed_everything_under_enforcement() {
        let server = enforcing(&["watchNamespaces={team-a}"]).await;
        let admin = server.client();
        all_groups(&admin)
            .list(&ListParams::default())
            .await
            .unwrap();
        groups(&admin, "team-c")
            .patch(
                "x",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"subject": "admin"}})),
            )
            .await
            .unwrap();
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::all(admin);
        secrets.list(&ListParams::default()).await.unwrap();
        assert_eq!(server.count(|r| r.status == 403), 0);
    }

    #[tokio::test]
    async fn a_request_without_credentials_is_system_anonymous() {
        let server = enforcing(&[]).await;
        let reply = get(&server, &groups_path("team-a")).await;
        assert_eq!(
            reply.json(),
            forbidden(
                "chatgroups.cams.chatapp.io is forbidden: User \"system:anonymous\" cannot list resource \"chatgroups\" in API group \"cams.chatapp.io\" in the namespace \"team-a\"",
                json!({"group":"cams.chatapp.io","kind":"chatgroups"}),
            )
        );
    }

    #[tokio::test]
    #[should_panic(
        expected = "RBAC manifests refused: ClusterRoleBinding.rbac.authorization.k8s.io \"b\" is invalid: [roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\", subjects[0].namespace: Required value]"
    )]
    async fn enforce_rbac_refuses_objects_the_api_server_would_refuse() {
        let (server, _client) = start().await;
        server.enforce_rbac(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: b\n\
             roleRef:\n  kind: Role\n  name: r\nsubjects:\n- kind: ServiceAccount\n  name: robot\n",
        );
    }

    #[tokio::test]
    async fn allow_all_stops_enforcing() {
        let server = enforcing(&["watchNamespaces={team-a}"]).await;
        let client = server.client_as(&operator());
        assert_eq!(
            api_error(all_groups(&client).list(&ListParams::default()).await).code,
            403
        );
        server.allow_all();
        all_groups(&client)
            .list(&ListParams::default())
            .await
            .unwrap();
    }
}
