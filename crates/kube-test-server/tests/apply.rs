//! Server-side apply: creation, field managers, conflicts and forcing, pruning of what a
//! manager stops applying, `status.conditions` as a map list keyed by `type`, and the
//! `managedFields` encoding.

mod common;

use common::*;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn applied(spec: Value) -> Value {
    json!({"apiVersion": "cams.chatapp.io/v1alpha1", "kind": "ChatGroup", "spec": spec})
}

fn applied_status(status: Value) -> Value {
    json!({"apiVersion": "cams.chatapp.io/v1alpha1", "kind": "ChatGroup", "status": status})
}

fn condition(type_: &str, status: &str) -> Value {
    json!({"type": type_, "status": status, "reason": "Tested", "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// The managedFields entry of `manager`, if any.
fn entry<'a>(object: &'a Value, manager: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

/// The condition types in order.
fn condition_types(object: &Value) -> Vec<String> {
    object["status"]["conditions"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|c| c["type"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn apply(
    client: &kube::Client,
    name: &str,
    manager: &str,
    force: bool,
    body: &Value,
) -> kube::Result<Value> {
    let mut params = PatchParams::apply(manager);
    params.force = force;
    groups(client, "default")
        .patch(name, &params, &Patch::Apply(body))
        .await
        .map(|o| json_of(&o))
}

async fn apply_status(
    client: &kube::Client,
    manager: &str,
    force: bool,
    status: Value,
) -> kube::Result<Value> {
    let mut params = PatchParams::apply(manager);
    params.force = force;
    groups(client, "default")
        .patch_status("g", &params, &Patch::Apply(applied_status(status)))
        .await
        .map(|o| json_of(&o))
}

mod applying {
    use super::*;

    #[tokio::test]
    async fn apply_creates_a_missing_object_with_201_owned_by_the_applier() {
        let (server, _client) = start().await;
        let reply = send(
            &server,
            "PATCH",
            &format!("{}?fieldManager=tester", group_path("default", "g")),
            &[("Content-Type", "application/apply-patch+yaml")],
            applied(spec()).to_string().as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 201);
        let created = reply.json();
        assert_eq!(created["metadata"]["generation"], 1);
        assert_eq!(
            created["spec"]["region"], "ap-southeast-1",
            "defaults are applied"
        );
        let managers = created["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(managers.len(), 1);
        let mut entry = managers[0].clone();
        assert!(entry["time"].as_str().unwrap().ends_with('Z'));
        entry["time"] = json!("<time>");
        assert_eq!(
            entry,
            json!({"manager": "tester", "operation": "Apply", "apiVersion": "cams.chatapp.io/v1alpha1",
                "time": "<time>", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:businessNumber": {}, "f:custSpaceId": {}, "f:groupId": {}, "f:subject": {}}}}),
            "the applier owns what it applied, not the defaults"
        );
    }

    #[tokio::test]
    async fn apply_needs_a_field_manager() {
        let (server, _client) = start().await;
        let reply = send(
            &server,
            "PATCH",
            &group_path("default", "g"),
            &[("Content-Type", "application/apply-patch+yaml")],
            applied(spec()).to_string().as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                "reason":"Invalid",
                "details":{"group":"meta.k8s.io","kind":"PatchOptions","causes":[
                    {"reason":"FieldValueRequired","message":"Required value: is required for apply patch","field":"fieldManager"}]},
                "code":422})
        );
        assert!(server.get(&chatgroups(), "default", "g").is_none());
    }

    #[tokio::test]
    async fn apply_accepts_yaml_bodies() {
        let (server, _client) = start().await;
        let yaml = "apiVersion: cams.chatapp.io/v1alpha1\nkind: ChatGroup\nmetadata:\n  name: g\n\
                    spec:\n  custSpaceId: cams-8f2k1x\n  businessNumber: \"8613800001234\"\n  \
                    groupId: EA303XXXXX\n  subject: from yaml\n";
        let reply = send(
            &server,
            "PATCH",
            &format!("{}?fieldManager=tester", group_path("default", "g")),
            &[("Content-Type", "application/apply-patch+yaml")],
            yaml.as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 201);
        assert_eq!(reply.json()["spec"]["subject"], "from yaml");
    }

    #[tokio::test]
    async fn an_applied_configuration_must_name_the_kind_and_the_object() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let mut wrong_kind = applied(spec());
        wrong_kind["kind"] = json!("Secret");
        let status = api_error(apply(&client, "g", "tester", false, &wrong_kind).await);
        assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
        let mut wrong_name = applied(spec());
        wrong_name["metadata"] = json!({"name": "h"});
        let status = api_error(apply(&client, "g", "tester", false, &wrong_name).await);
        assert_eq!(status.code, 400);
    }

    #[tokio::test]
    async fn a_resource_version_in_an_applied_configuration_is_a_precondition() {
        let (server, client) = start().await;
        let stored = server.put(&chatgroups(), chat_group("g"));
        let mut body = applied(json!({"subject": "two"}));
        body["metadata"] = json!({"resourceVersion": "1"});
        let status = api_error(apply(&client, "g", "tester", true, &body).await);
        assert_eq!(status.code, 409);
        body["metadata"] = json!({"resourceVersion": rv(&stored)});
        let done = apply(&client, "g", "tester", true, &body).await.unwrap();
        assert_eq!(done["spec"]["subject"], "two");
    }

    #[tokio::test]
    async fn the_same_apply_twice_changes_nothing() {
        let (server, client) = start().await;
        let first = apply(&client, "g", "tester", false, &applied(spec()))
            .await
            .unwrap();
        let before = server.resource_version();
        let second = apply(&client, "g", "tester", false, &applied(spec()))
            .await
            .unwrap();
        assert_eq!(rv(&second), rv(&first));
        assert_eq!(server.resource_version(), before);
    }

    #[tokio::test]
    async fn apply_to_status_sets_only_status_and_apply_to_the_object_ignores_status() {
        let (server, client) = start().await;
        apply(&client, "g", "tester", false, &applied(spec()))
            .await
            .unwrap();
        let mut both = applied(json!({"subject": "ignored"}));
        both["status"] = json!({"observedGeneration": 1});
        let after_status = json_of(
            &groups(&client, "default")
                .patch_status("g", &PatchParams::apply("operator"), &Patch::Apply(&both))
                .await
                .unwrap(),
        );
        assert_eq!(after_status["spec"]["subject"], "Support");
        assert_eq!(after_status["status"]["observedGeneration"], 1);
        assert_eq!(after_status["metadata"]["generation"], 1);
        let operator = entry(&after_status, "operator").unwrap();
        assert_eq!(operator["subresource"], "status");
        assert_eq!(
            operator["fieldsV1"],
            json!({"f:status": {"f:observedGeneration": {}}})
        );

        let mut object = applied(spec());
        object["status"] = json!({"observedGeneration": 9});
        let after_object = apply(&client, "g", "tester", false, &object).await.unwrap();
        assert_eq!(after_object["status"]["observedGeneration"], 1);
        assert_eq!(
            server.get(&chatgroups(), "default", "g").unwrap()["status"]["observedGeneration"],
            1
        );
    }

    #[tokio::test]
    async fn without_field_manager_a_write_is_owned_by_its_user_agent_product() {
        let (server, _client) = start().await;
        let reply = send(
            &server,
            "POST",
            &groups_path("default"),
            &[
                ("Content-Type", "application/json"),
                ("User-Agent", "kubectl/v1.33.0 (linux/amd64) kubernetes/abc"),
            ],
            chat_group("a").to_string().as_bytes(),
        )
        .await;
        assert_eq!(
            entry(&reply.json(), "kubectl").unwrap()["operation"],
            "Update"
        );
        let reply = send_json(&server, "POST", &groups_path("default"), &chat_group("b")).await;
        assert!(
            entry(&reply.json(), "unknown").is_some(),
            "{}",
            reply.text()
        );
    }
}

mod ownership {
    use super::*;

    #[tokio::test]
    async fn an_apply_that_changes_another_appliers_field_is_a_409_conflict() {
        let (server, client) = start().await;
        apply(&client, "g", "alice", false, &applied(spec()))
            .await
            .unwrap();
        let reply = send(
            &server,
            "PATCH",
            &format!("{}?fieldManager=carol", group_path("default", "g")),
            &[("Content-Type", "application/apply-patch+yaml")],
            applied(json!({"subject": "three"})).to_string().as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 409);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Apply failed with 1 conflict: conflict with \"alice\": .spec.subject",
                "reason":"Conflict",
                "details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"alice\"","field":".spec.subject"}]},
                "code":409})
        );
    }

    #[tokio::test]
    async fn a_conflict_with_an_updater_names_its_api_version_and_time() {
        let (server, client) = start().await;
        let created = json_of(
            &groups(&client, "default")
                .create(&PostParams::default(), &dynamic(chat_group("g")))
                .await
                .unwrap(),
        );
        let time = entry(&created, "unknown").unwrap()["time"]
            .as_str()
            .unwrap()
            .to_owned();
        let status = api_error(
            apply(
                &client,
                "g",
                "operator",
                false,
                &applied(json!({"subject": "two"})),
            )
            .await,
        );
        assert_eq!(
            status.message,
            format!(
                "Apply failed with 1 conflict: conflict with \"unknown\" using cams.chatapp.io/v1alpha1 at {time}: .spec.subject"
            )
        );
        assert_eq!(
            server.get(&chatgroups(), "default", "g").unwrap()["spec"]["subject"],
            "Support"
        );
    }

    #[tokio::test]
    async fn several_conflicts_are_listed_under_each_manager() {
        let (_server, client) = start().await;
        apply(&client, "g", "alice", false, &applied(spec()))
            .await
            .unwrap();
        apply(
            &client,
            "g",
            "bob",
            false,
            &applied(json!({"description": "d", "resyncInterval": "1h"})),
        )
        .await
        .unwrap();
        let status = api_error(
            apply(
                &client,
                "g",
                "carol",
                false,
                &applied(json!({"subject": "x", "description": "x", "resyncInterval": "2h"})),
            )
            .await,
        );
        assert_eq!(
            status.message,
            "Apply failed with 3 conflicts: conflicts with \"alice\":\n- .spec.subject\nconflicts with \"bob\":\n- .spec.description\n- .spec.resyncInterval"
        );
        let fields: Vec<String> = status
            .details
            .unwrap()
            .causes
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            [".spec.subject", ".spec.description", ".spec.resyncInterval"]
        );
    }

    #[tokio::test]
    async fn equal_values_are_shared_without_conflict() {
        let (_server, client) = start().await;
        apply(&client, "g", "alice", false, &applied(spec()))
            .await
            .unwrap();
        let shared = apply(
            &client,
            "g",
            "bob",
            false,
            &applied(json!({"subject": "Support"})),
        )
        .await
        .unwrap();
        for manager in ["alice", "bob"] {
            assert!(
                entry(&shared, manager).unwrap()["fieldsV1"]
                    .pointer("/f:spec/f:subject")
                    .is_some(),
                "{manager}"
            );
        }
    }

    #[tokio::test]
    async fn a_forced_apply_takes_only_the_conflicting_fields() {
        let (_server, client) = start().await;
        apply(&client, "g", "alice", false, &applied(spec()))
            .await
            .unwrap();
        apply(
            &client,
            "g",
            "bob",
            false,
            &applied(json!({"subject": "Support"})),
        )
        .await
        .unwrap();
        let forced = apply(
            &client,
            "g",
            "carol",
            true,
            &applied(json!({"subject": "three"})),
        )
        .await
        .unwrap();
        assert_eq!(forced["spec"]["subject"], "three");
        assert!(entry(&forced, "bob").is_none(), "bob owned nothing else");
        let alice = entry(&forced, "alice").unwrap();
        assert_eq!(
            alice["fieldsV1"],
            json!({"f:spec": {"f:businessNumber": {}, "f:custSpaceId": {}, "f:groupId": {}}})
        );
        assert_eq!(
            entry(&forced, "carol").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:subject": {}}})
        );
    }

    #[tokio::test]
    async fn an_update_takes_the_fields_it_changes_from_appliers() {
        let (_server, client) = start().await;
        apply(&client, "g", "alice", false, &applied(spec()))
            .await
            .unwrap();
        let patched = json_of(
            &groups(&client, "default")
                .patch(
                    "g",
                    &PatchParams {
                        field_manager: Some("editor".into()),
                        ..Default::default()
                    },
                    &Patch::Merge(json!({"spec": {"subject": "edited"}})),
                )
                .await
                .unwrap(),
        );
        let editor = entry(&patched, "editor").unwrap();
        assert_eq!(editor["operation"], "Update");
        assert_eq!(editor["fieldsV1"], json!({"f:spec": {"f:subject": {}}}));
        assert!(
            entry(&patched, "alice").unwrap()["fieldsV1"]
                .pointer("/f:spec/f:subject")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_status_update_is_recorded_under_the_status_subresource() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let params = PatchParams {
            field_manager: Some("editor".into()),
            ..Default::default()
        };
        let patched = json_of(
            &groups(&client, "default")
                .patch_status(
                    "g",
                    &params,
                    &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
                )
                .await
                .unwrap(),
        );
        let editor = entry(&patched, "editor").unwrap();
        assert_eq!(editor["operation"], "Update");
        assert_eq!(editor["subresource"], "status");
        assert_eq!(
            editor["fieldsV1"],
            json!({"f:status": {"f:observedGeneration": {}}})
        );
    }

    #[tokio::test]
    async fn an_apply_removes_the_fields_its_manager_stops_applying_unless_another_owns_them() {
        let (_server, client) = start().await;
        let mut full = spec();
        full["description"] = json!("desc");
        apply(&client, "g", "owner", false, &applied(full))
            .await
            .unwrap();
        groups(&client, "default")
            .patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"subject": "mine"}})),
            )
            .await
            .unwrap();
        let mut base = spec();
        base.as_object_mut().unwrap().remove("subject");
        let trimmed = apply(&client, "g", "owner", true, &applied(base))
            .await
            .unwrap();
        assert!(
            trimmed["spec"].get("description").is_none(),
            "an unapplied field is removed"
        );
        assert_eq!(
            trimmed["spec"]["subject"], "mine",
            "a field another manager owns stays"
        );
    }
}

mod conditions {
    use super::*;

    #[tokio::test]
    async fn conditions_merge_item_by_item_keyed_by_type() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        apply_status(
            &client,
            "operator",
            false,
            json!({"conditions": [condition("Ready", "False")]}),
        )
        .await
        .unwrap();
        let both = apply_status(
            &client,
            "auditor",
            false,
            json!({"conditions": [condition("Synced", "True")]}),
        )
        .await
        .unwrap();
        assert_eq!(condition_types(&both), ["Ready", "Synced"]);
        let updated = apply_status(
            &client,
            "operator",
            false,
            json!({"conditions": [condition("Ready", "True")]}),
        )
        .await
        .unwrap();
        assert_eq!(condition_types(&updated), ["Ready", "Synced"]);
        assert_eq!(updated["status"]["conditions"][0]["status"], "True");
        assert_eq!(updated["status"]["conditions"][1]["status"], "True");
        assert_eq!(
            updated["status"]["conditions"][0]["message"], "",
            "defaults fill each item"
        );
    }

    #[tokio::test]
    async fn items_another_manager_owns_survive_a_forced_apply_of_ours() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        apply_status(
            &client,
            "auditor",
            false,
            json!({"conditions": [condition("Stalled", "True")]}),
        )
        .await
        .unwrap();
        let ours = apply_status(
            &client,
            "operator",
            true,
            json!({"conditions": [condition("Ready", "True")]}),
        )
        .await
        .unwrap();
        assert_eq!(condition_types(&ours), ["Stalled", "Ready"]);
    }

    #[tokio::test]
    async fn an_item_our_apply_omits_is_pruned() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        apply_status(
            &client,
            "operator",
            true,
            json!({"conditions": [condition("Ready", "True"), condition("Synced", "True")]}),
        )
        .await
        .unwrap();
        let trimmed = apply_status(
            &client,
            "operator",
            true,
            json!({"conditions": [condition("Ready", "True")]}),
        )
        .await
        .unwrap();
        assert_eq!(condition_types(&trimmed), ["Ready"]);
    }

    #[tokio::test]
    async fn a_changed_item_another_applier_owns_is_a_conflict_naming_the_subresource() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        apply_status(
            &client,
            "operator",
            false,
            json!({"conditions": [condition("Ready", "True")]}),
        )
        .await
        .unwrap();
        let status = api_error(
            apply_status(
                &client,
                "intruder",
                false,
                json!({"conditions": [condition("Ready", "False")]}),
            )
            .await,
        );
        assert_eq!(
            status.message,
            "Apply failed with 1 conflict: conflict with \"operator\" with subresource \"status\": .status.conditions[type=\"Ready\"].status"
        );
    }

    #[tokio::test]
    async fn duplicate_condition_types_are_refused() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let reply = send_json(
            &server,
            "PATCH",
            &format!("{}/status", group_path("default", "g")),
            &json!({"status": {"conditions": [condition("Ready", "True"), condition("Ready", "False")]}}),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"ChatGroup.cams.chatapp.io \"g\" is invalid: status.conditions[1]: Duplicate value: map[string]interface {}{\"type\":\"Ready\"}",
                "reason":"Invalid",
                "details":{"name":"g","group":"cams.chatapp.io","kind":"ChatGroup","causes":[
                    {"reason":"FieldValueDuplicate","message":"Duplicate value: map[string]interface {}{\"type\":\"Ready\"}","field":"status.conditions[1]"}]},
                "code":422})
        );
    }

    #[tokio::test]
    async fn managed_fields_name_condition_items_by_their_key() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let applied = apply_status(
            &client,
            "operator",
            false,
            json!({"observedGeneration": 1, "conditions": [condition("Ready", "True")]}),
        )
        .await
        .unwrap();
        let operator = entry(&applied, "operator").unwrap();
        assert_eq!(operator["operation"], "Apply");
        assert_eq!(operator["subresource"], "status");
        assert_eq!(
            operator["fieldsV1"],
            json!({"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {
                ".": {}, "f:lastTransitionTime": {}, "f:reason": {}, "f:status": {}, "f:type": {}}},
                "f:observedGeneration": {}}})
        );
    }
}
