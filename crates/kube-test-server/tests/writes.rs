//! Updates and patches (optimistic concurrency, merge patch, generation, no-op writes), the
//! status subresource, deletion with finalizers and preconditions, deletecollection, and the
//! namespace lifecycle.

mod common;

use common::*;
use futures::StreamExt;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use kube_test_server::kinds;
use serde_json::{Value, json};

fn status_error(code: u16, reason: &str, message: &str, details: Value) -> Value {
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message": message, "reason": reason, "details": details, "code": code})
}

fn group_details(name: &str) -> Value {
    json!({"name": name, "group": "cams.chatapp.io", "kind": "chatgroups"})
}

mod updates {
    use super::*;

    #[tokio::test]
    async fn a_replace_with_a_stale_resource_version_is_409_conflict() {
        let (server, _client) = start().await;
        let created = server.put(&chatgroups(), chat_group("g"));
        let mut newer = created.clone();
        newer["spec"]["subject"] = json!("two");
        let replaced = send_json(&server, "PUT", &group_path("default", "g"), &newer).await;
        assert_eq!(replaced.status, 200);
        assert_eq!(replaced.json()["metadata"]["generation"], 2);

        let mut stale = created;
        stale["spec"]["subject"] = json!("three");
        let reply = send_json(&server, "PUT", &group_path("default", "g"), &stale).await;
        assert_eq!(reply.status, 409);
        assert_eq!(
            reply.json(),
            status_error(
                409,
                "Conflict",
                "Operation cannot be fulfilled on chatgroups.cams.chatapp.io \"g\": the object has been modified; please apply your changes to the latest version and try again",
                group_details("g"),
            )
        );
        assert_eq!(
            server.get(&chatgroups(), "default", "g").unwrap()["spec"]["subject"],
            "two"
        );
    }

    #[tokio::test]
    async fn a_replace_of_a_custom_resource_needs_a_resource_version() {
        let (server, _client) = start().await;
        let mut body = server.put(&chatgroups(), chat_group("g"));
        body["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        body["spec"]["subject"] = json!("two");
        let reply = send_json(&server, "PUT", &group_path("default", "g"), &body).await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            status_error(
                422,
                "Invalid",
                "chatgroups.cams.chatapp.io \"g\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                json!({"name":"g","group":"cams.chatapp.io","kind":"chatgroups","causes":[
                    {"reason":"FieldValueInvalid","message":"Invalid value: 0x0: must be specified for an update","field":"metadata.resourceVersion"}]}),
            )
        );
    }

    #[tokio::test]
    async fn a_replace_of_a_missing_object_is_404() {
        let (server, _client) = start().await;
        let mut body = chat_group("g");
        body["metadata"]["resourceVersion"] = json!("1");
        let reply = send_json(&server, "PUT", &group_path("default", "g"), &body).await;
        assert_eq!(reply.status, 404);
        assert!(
            server.get(&chatgroups(), "default", "g").is_none(),
            "a PUT never creates"
        );
    }

    #[tokio::test]
    async fn a_replace_naming_another_object_is_400() {
        let (server, _client) = start().await;
        let mut body = server.put(&chatgroups(), chat_group("g"));
        body["metadata"]["name"] = json!("h");
        let reply = send_json(&server, "PUT", &group_path("default", "g"), &body).await;
        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.json()["message"],
            "the name of the object (h) does not match the name on the URL (g)"
        );
    }

    #[tokio::test]
    async fn a_replace_body_must_be_a_json_object() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let reply = send_json(
            &server,
            "PUT",
            &group_path("default", "g"),
            &json!(["not", "an", "object"]),
        )
        .await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["reason"], "BadRequest");
    }

    #[tokio::test]
    async fn a_replace_keeps_the_metadata_only_the_server_sets() {
        let (server, _client) = start().await;
        let stored = server.put(&chatgroups(), chat_group("g"));
        let mut body = stored.clone();
        body["metadata"]["uid"] = json!("00000000-0000-4000-8000-000000000000");
        body["metadata"]["creationTimestamp"] = json!("2001-01-01T00:00:00Z");
        body["metadata"]["generation"] = json!(9);
        body["metadata"]["labels"] = json!({"team": "a"});
        let reply = send_json(&server, "PUT", &group_path("default", "g"), &body).await;
        let replaced = reply.json();
        for field in ["uid", "creationTimestamp", "generation"] {
            assert_eq!(
                replaced["metadata"][field], stored["metadata"][field],
                "{field}"
            );
        }
        assert_eq!(replaced["metadata"]["labels"]["team"], "a");
    }

    #[tokio::test]
    async fn a_merge_patch_merges_objects_and_null_removes_fields() {
        let (_server, client) = start().await;
        let api = groups(&client, "default");
        let mut object = chat_group("g");
        object["spec"]["description"] = json!("old");
        api.create(&PostParams::default(), &dynamic(object))
            .await
            .unwrap();
        let patched = json_of(
            &api.patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}, "spec": {"subject": "two", "description": null}})),
            )
            .await
            .unwrap(),
        );
        assert_eq!(patched["spec"]["subject"], "two");
        assert!(patched["spec"].get("description").is_none());
        assert_eq!(
            patched["spec"]["groupId"], "EA303XXXXX",
            "untouched fields stay"
        );
        assert_eq!(patched["metadata"]["labels"], json!({"a": "b"}));
    }

    #[tokio::test]
    async fn a_resource_version_in_a_patch_is_a_precondition() {
        let (server, client) = start().await;
        let created = server.put(&chatgroups(), chat_group("g"));
        let api = groups(&client, "default");
        api.patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"subject": "two"}})),
        )
        .await
        .unwrap();
        let stale = Patch::Merge(
            json!({"metadata": {"resourceVersion": rv(&created)}, "spec": {"subject": "three"}}),
        );
        let status = api_error(api.patch("g", &PatchParams::default(), &stale).await);
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        let current = server.get(&chatgroups(), "default", "g").unwrap();
        let fresh = Patch::Merge(
            json!({"metadata": {"resourceVersion": rv(&current)}, "spec": {"subject": "three"}}),
        );
        api.patch("g", &PatchParams::default(), &fresh)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_merge_patch_must_be_a_json_object() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        for body in [&b"[1, 2]"[..], b"not json"] {
            let reply = send(
                &server,
                "PATCH",
                &group_path("default", "g"),
                &[("Content-Type", "application/merge-patch+json")],
                body,
            )
            .await;
            assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(body));
            assert_eq!(reply.json()["reason"], "BadRequest");
        }
    }

    #[tokio::test]
    async fn generation_moves_only_for_changes_outside_metadata_and_status() {
        let (_server, client) = start().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &dynamic(chat_group("g")))
            .await
            .unwrap();
        let merge = |patch: Value| {
            let api = api.clone();
            async move {
                json_of(
                    &api.patch("g", &PatchParams::default(), &Patch::Merge(patch))
                        .await
                        .unwrap(),
                )
            }
        };
        let labelled =
            merge(json!({"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}}})).await;
        assert_eq!(labelled["metadata"]["generation"], 1);
        let respecced = merge(json!({"spec": {"subject": "two"}})).await;
        assert_eq!(respecced["metadata"]["generation"], 2);
        let statused = json_of(
            &api.patch_status(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"observedGeneration": 2}})),
            )
            .await
            .unwrap(),
        );
        assert_eq!(statused["metadata"]["generation"], 2);
        let respecced = merge(json!({"spec": {"description": "d"}})).await;
        assert_eq!(respecced["metadata"]["generation"], 3);
    }

    #[tokio::test]
    async fn a_write_that_changes_nothing_keeps_the_version_and_emits_no_event() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        let created = json_of(
            &api.create(&PostParams::default(), &dynamic(chat_group("g")))
                .await
                .unwrap(),
        );
        let before = server.resource_version();
        let mut stream = api
            .watch(
                &WatchParams::default().disable_bookmarks().timeout(1),
                &before.to_string(),
            )
            .await
            .unwrap()
            .boxed();
        let same = json_of(
            &api.patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"subject": "Support"}})),
            )
            .await
            .unwrap(),
        );
        assert_eq!(rv(&same), rv(&created));
        let replaced = json_of(
            &api.replace("g", &PostParams::default(), &dynamic(created.clone()))
                .await
                .unwrap(),
        );
        assert_eq!(rv(&replaced), rv(&created));
        assert_eq!(server.resource_version(), before);
        let events: Vec<_> = tokio::time::timeout(WAIT, (&mut stream).collect::<Vec<_>>())
            .await
            .unwrap();
        assert!(
            events.is_empty(),
            "no watch event for a no-op write: {events:?}"
        );
    }

    #[tokio::test]
    async fn a_strategic_merge_patch_is_refused_for_custom_resources() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let status = api_error(
            groups(&client, "default")
                .patch(
                    "g",
                    &PatchParams::default(),
                    &Patch::Strategic(json!({"spec": {"subject": "two"}})),
                )
                .await,
        );
        assert_eq!(
            (status.code, status.reason.as_str()),
            (415, "UnsupportedMediaType")
        );
        assert_eq!(
            server.get(&chatgroups(), "default", "g").unwrap()["spec"]["subject"],
            "Support"
        );
    }

    #[tokio::test]
    async fn a_strategic_merge_patch_of_a_builtin_kind_merges() {
        let (server, client) = start().await;
        server.put(
            &kinds::SECRETS,
            json!({"metadata": {"name": "s", "labels": {"a": "1"}}, "data": {"k": "dg=="}}),
        );
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client, "default");
        secrets
            .patch(
                "s",
                &PatchParams::default(),
                &Patch::Strategic(json!({"metadata": {"labels": {"b": "2"}}})),
            )
            .await
            .unwrap();
        let stored = server.get(&kinds::SECRETS, "default", "s").unwrap();
        assert_eq!(stored["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(stored["data"]["k"], "dg==");
    }

    #[tokio::test]
    async fn json_patch_is_not_emulated_and_answered_415() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let reply = send(
            &server,
            "PATCH",
            &group_path("default", "g"),
            &[("Content-Type", "application/json-patch+json")],
            br#"[{"op":"replace","path":"/spec/subject","value":"x"}]"#,
        )
        .await;
        assert_eq!(reply.status, 415);
        assert_eq!(reply.json()["reason"], "UnsupportedMediaType");
    }
}

mod status {
    use super::*;

    #[tokio::test]
    async fn create_drops_the_status_of_kinds_with_the_status_subresource() {
        let (server, _client) = start().await;
        let mut body = chat_group("g");
        body["status"] = json!({"observedGeneration": 7});
        let reply = send_json(&server, "POST", &groups_path("default"), &body).await;
        assert!(reply.json().get("status").is_none());
        assert!(
            server
                .get(&chatgroups(), "default", "g")
                .unwrap()
                .get("status")
                .is_none()
        );
    }

    #[tokio::test]
    async fn writes_to_the_object_leave_status_alone() {
        let (server, client) = start().await;
        let mut object = chat_group("g");
        object["status"] = json!({"observedGeneration": 1});
        let stored = server.put(&chatgroups(), object);
        let api = groups(&client, "default");
        let patched = json_of(
            &api.patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"observedGeneration": 9}, "spec": {"subject": "two"}}),
                ),
            )
            .await
            .unwrap(),
        );
        assert_eq!(patched["status"]["observedGeneration"], 1);
        assert_eq!(patched["spec"]["subject"], "two");
        let mut replace = patched.clone();
        replace["status"] = Value::Null;
        let replaced = json_of(
            &api.replace("g", &PostParams::default(), &dynamic(replace))
                .await
                .unwrap(),
        );
        assert_eq!(replaced["status"], stored["status"]);
    }

    #[tokio::test]
    async fn writes_to_status_change_only_status_and_keep_generation() {
        let (server, client) = start().await;
        let stored = server.put(&chatgroups(), chat_group("g"));
        let mut body = stored.clone();
        body["spec"]["subject"] = json!("ignored");
        body["metadata"]["labels"] = json!({"ignored": "yes"});
        body["status"] = json!({"observedGeneration": 1});
        let replaced = json_of(
            &groups(&client, "default")
                .replace_status("g", &PostParams::default(), &dynamic(body.clone()))
                .await
                .unwrap(),
        );
        assert_eq!(replaced["status"]["observedGeneration"], 1);
        assert_eq!(replaced["spec"], stored["spec"]);
        assert!(replaced["metadata"].get("labels").is_none());
        assert_eq!(replaced["metadata"]["generation"], 1);
        assert_ne!(rv(&replaced), rv(&stored));
    }

    #[tokio::test]
    async fn a_status_replace_checks_the_resource_version() {
        let (server, client) = start().await;
        let mut stale = server.put(&chatgroups(), chat_group("g"));
        server.put(&chatgroups(), {
            let mut newer = chat_group("g");
            newer["metadata"]["labels"] = json!({"a": "b"});
            newer
        });
        stale["status"] = json!({"observedGeneration": 1});
        let status = api_error(
            groups(&client, "default")
                .replace_status("g", &PostParams::default(), &dynamic(stale.clone()))
                .await,
        );
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    }

    #[tokio::test]
    async fn a_status_write_to_a_missing_object_is_404() {
        let (_server, client) = start().await;
        let apply = json!({"apiVersion": "cams.chatapp.io/v1alpha1", "kind": "ChatGroup", "status": {"observedGeneration": 1}});
        let status = api_error(
            groups(&client, "default")
                .patch_status(
                    "nope",
                    &PatchParams::apply("cams-operator"),
                    &Patch::Apply(&apply),
                )
                .await,
        );
        assert_eq!(status.code, 404);
        assert_eq!(
            status.message,
            "chatgroups.cams.chatapp.io \"nope\" not found"
        );
    }
}

mod deletion {
    use super::*;

    fn held(name: &str) -> Value {
        let mut object = chat_group(name);
        object["metadata"]["finalizers"] = json!(["example.com/hold"]);
        object
    }

    #[tokio::test]
    async fn a_delete_without_finalizers_removes_the_object_and_answers_a_success_status() {
        let (server, _client) = start().await;
        let stored = server.put(&chatgroups(), chat_group("g"));
        let reply = send(&server, "DELETE", &group_path("default", "g"), &[], b"").await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",
                "details":{"name":"g","group":"cams.chatapp.io","kind":"chatgroups","uid": stored["metadata"]["uid"]}})
        );
        assert!(server.get(&chatgroups(), "default", "g").is_none());
        let again = send(&server, "DELETE", &group_path("default", "g"), &[], b"").await;
        assert_eq!(again.status, 404);
    }

    #[tokio::test]
    async fn a_delete_with_finalizers_marks_the_object_and_bumps_generation_once() {
        let (server, client) = start().await;
        server.put(&chatgroups(), held("g"));
        let api = groups(&client, "default");
        let marked = json_of(
            &api.delete("g", &DeleteParams::default())
                .await
                .unwrap()
                .left()
                .expect("the object is kept"),
        );
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
        assert_eq!(marked["metadata"]["generation"], 2);
        assert_eq!(server.get(&chatgroups(), "default", "g").unwrap(), marked);
        let again = json_of(
            &api.delete("g", &DeleteParams::default())
                .await
                .unwrap()
                .left()
                .unwrap(),
        );
        assert_eq!(again, marked, "a second delete changes nothing");
    }

    #[tokio::test]
    async fn no_finalizer_may_be_added_while_the_object_is_being_deleted() {
        let (server, client) = start().await;
        server.put(&chatgroups(), held("g"));
        let api = groups(&client, "default");
        api.delete("g", &DeleteParams::default()).await.unwrap();
        let reply = send_json(
            &server,
            "PATCH",
            &group_path("default", "g"),
            &json!({"metadata": {"finalizers": ["example.com/hold", "example.com/second"]}}),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            status_error(
                422,
                "Invalid",
                "ChatGroup.cams.chatapp.io \"g\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/second\"}",
                json!({"name":"g","group":"cams.chatapp.io","kind":"ChatGroup","causes":[
                    {"reason":"FieldValueForbidden","message":"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/second\"}","field":"metadata.finalizers"}]}),
            )
        );
    }

    #[tokio::test]
    async fn removing_the_last_finalizer_deletes_the_object() {
        let (server, client) = start().await;
        let mut object = held("g");
        object["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b"]);
        let created = server.put(&chatgroups(), object);
        let api = groups(&client, "default");
        let mut stream = api
            .watch(&WatchParams::default(), &rv(&created))
            .await
            .unwrap()
            .boxed();
        api.delete("g", &DeleteParams::default()).await.unwrap();
        let finalizers = |list: Value| Patch::Merge(json!({"metadata": {"finalizers": list}}));
        api.patch(
            "g",
            &PatchParams::default(),
            &finalizers(json!(["example.com/b"])),
        )
        .await
        .unwrap();
        assert!(
            server.get(&chatgroups(), "default", "g").is_some(),
            "one finalizer is left"
        );
        api.patch("g", &PatchParams::default(), &finalizers(Value::Null))
            .await
            .unwrap();
        assert!(server.get(&chatgroups(), "default", "g").is_none());
        let mut types = Vec::new();
        for _ in 0..4 {
            types.push(match next_change(&mut stream).await {
                WatchEvent::Modified(_) => "MODIFIED",
                WatchEvent::Deleted(_) => "DELETED",
                other => panic!("unexpected {other:?}"),
            });
        }
        assert_eq!(types, ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]);
    }

    #[tokio::test]
    async fn delete_preconditions_must_match_the_object() {
        let (server, client) = start().await;
        let stored = server.put(&chatgroups(), chat_group("g"));
        let uid = stored["metadata"]["uid"].as_str().unwrap().to_owned();
        let api = groups(&client, "default");
        let with = |uid: Option<&str>, version: Option<&str>| {
            DeleteParams::default().preconditions(Preconditions {
                uid: uid.map(str::to_owned),
                resource_version: version.map(str::to_owned),
            })
        };
        let status = api_error(api.delete("g", &with(Some("not-the-uid"), None)).await);
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            status.message,
            format!(
                "Operation cannot be fulfilled on chatgroups.cams.chatapp.io \"g\": StorageError: invalid object, Code: 4, Key: /registry/cams.chatapp.io/chatgroups/default/g, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"
            )
        );
        let status = api_error(api.delete("g", &with(None, Some("1"))).await);
        assert_eq!(
            status.message,
            format!(
                "Operation cannot be fulfilled on chatgroups.cams.chatapp.io \"g\": StorageError: invalid object, Code: 4, Key: /registry/cams.chatapp.io/chatgroups/default/g, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: {}",
                rv(&stored)
            )
        );
        assert!(server.get(&chatgroups(), "default", "g").is_some());
        api.delete("g", &with(Some(&uid), Some(&rv(&stored))))
            .await
            .unwrap();
        assert!(server.get(&chatgroups(), "default", "g").is_none());
    }

    #[tokio::test]
    async fn a_collection_delete_removes_what_the_selector_selects_in_the_namespace() {
        let (server, client) = builder().namespace("other").start().await;
        for (name, team) in [("a", "x"), ("b", "x"), ("c", "y")] {
            let mut object = chat_group(name);
            object["metadata"]["labels"] = json!({"team": team});
            server.put(&chatgroups(), object);
        }
        let mut elsewhere = chat_group("d");
        elsewhere["metadata"]["namespace"] = json!("other");
        elsewhere["metadata"]["labels"] = json!({"team": "x"});
        server.put(&chatgroups(), elsewhere);
        let deleted = groups(&client, "default")
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels("team=x"),
            )
            .await
            .unwrap()
            .left()
            .expect("the deleted objects");
        let mut names: Vec<String> = deleted
            .items
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        let left: Vec<String> = server.list(&chatgroups(), None).iter().map(name).collect();
        assert_eq!(left, ["c", "d"]);
    }
}

mod namespaces {
    use super::*;

    #[tokio::test]
    async fn creating_in_a_missing_namespace_is_404() {
        let (server, _client) = start().await;
        let reply = send_json(&server, "POST", &groups_path("nowhere"), &chat_group("g")).await;
        assert_eq!(reply.status, 404);
        assert_eq!(
            reply.json(),
            status_error(
                404,
                "NotFound",
                "namespaces \"nowhere\" not found",
                json!({"name":"nowhere","kind":"namespaces"})
            )
        );
    }

    #[tokio::test]
    async fn namespaces_made_on_the_builder_or_the_handle_accept_objects() {
        let (server, _client) = builder().namespace("team-a").start().await;
        server.create_namespace("team-b");
        for namespace in ["team-a", "team-b", "kube-system"] {
            let reply = send_json(&server, "POST", &groups_path(namespace), &chat_group("g")).await;
            assert_eq!(reply.status, 201, "{namespace}");
        }
    }

    #[tokio::test]
    async fn deleting_a_namespace_terminates_it_deletes_its_contents_and_removes_it_once_empty() {
        let (server, client) = builder().namespace("x").start().await;
        let mut held = chat_group("held");
        held["metadata"]["namespace"] = json!("x");
        held["metadata"]["finalizers"] = json!(["example.com/hold"]);
        server.put(&chatgroups(), held);
        server.put(
            &kinds::SECRETS,
            json!({"metadata": {"name": "s", "namespace": "x"}}),
        );
        server.put(&chatgroups(), chat_group("elsewhere"));

        let reply = send(&server, "DELETE", "/api/v1/namespaces/x", &[], b"").await;
        assert_eq!(reply.status, 200);
        let namespace = reply.json();
        assert_eq!(namespace["status"]["phase"], "Terminating");
        assert!(namespace["metadata"]["deletionTimestamp"].is_string());

        assert!(
            server.get(&kinds::SECRETS, "x", "s").is_none(),
            "contents are deleted"
        );
        let held = server
            .get(&chatgroups(), "x", "held")
            .expect("finalizers hold it");
        assert!(held["metadata"]["deletionTimestamp"].is_string());
        assert!(
            server.get(&kinds::NAMESPACES, "", "x").is_some(),
            "not empty yet"
        );
        assert!(server.get(&chatgroups(), "default", "elsewhere").is_some());

        groups(&client, "x")
            .patch(
                "held",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .unwrap();
        assert!(server.get(&chatgroups(), "x", "held").is_none());
        assert!(
            server.get(&kinds::NAMESPACES, "", "x").is_none(),
            "gone once empty"
        );
    }

    #[tokio::test]
    async fn creating_in_a_terminating_namespace_is_403() {
        let (server, _client) = builder().namespace("x").start().await;
        let mut held = chat_group("held");
        held["metadata"]["namespace"] = json!("x");
        held["metadata"]["finalizers"] = json!(["example.com/hold"]);
        server.put(&chatgroups(), held);
        send(&server, "DELETE", "/api/v1/namespaces/x", &[], b"").await;

        let reply = send_json(&server, "POST", &groups_path("x"), &chat_group("g")).await;
        assert_eq!(reply.status, 403);
        assert_eq!(
            reply.json(),
            status_error(
                403,
                "Forbidden",
                "chatgroups.cams.chatapp.io \"g\" is forbidden: unable to create new content in namespace x because it is being terminated",
                json!({"name":"g","group":"cams.chatapp.io","kind":"chatgroups","causes":[
                    {"reason":"NamespaceTerminating","message":"namespace x is being terminated","field":"metadata.namespace"}]}),
            )
        );
        // Updates of what is still there are allowed.
        let patch = send_json(
            &server,
            "PATCH",
            &group_path("x", "held"),
            &json!({"metadata": {"labels": {"a": "b"}}}),
        )
        .await;
        assert_eq!(patch.status, 200);
    }

    #[tokio::test]
    async fn namespace_names_are_dns_labels() {
        let (server, _client) = start().await;
        let reply = send_json(
            &server,
            "POST",
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}}),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json()["message"],
            "Namespace \"team.a\" is invalid: metadata.name: Invalid value: \"team.a\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
    }
}
