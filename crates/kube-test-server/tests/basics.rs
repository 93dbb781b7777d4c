//! Routing, create and get, object identity, dry run, the request log, the test-side
//! handle (put, create, delete, seed, wait), kubeconfig and shutdown.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::{Client, ResourceExt};
use kube_test_server::{PatchType, RequestKind, TestApiServer, User, kinds};
use serde_json::{Value, json};

mod routing {
    use super::*;

    #[tokio::test]
    async fn version_answers_as_kubernetes_1_33() {
        let (_server, client) = start().await;
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(
            (version.major.as_str(), version.minor.as_str()),
            ("1", "33")
        );
    }

    #[tokio::test]
    async fn an_unknown_path_is_a_404_status_with_empty_details() {
        let (server, _client) = start().await;
        for path in [
            "/apis/example.com/v1/widgets",
            "/healthz/nothing",
            "/api/v1/pods",
        ] {
            let reply = get(&server, path).await;
            assert_eq!(reply.status, 404, "{path}");
            assert_eq!(reply.header("content-type"), Some("application/json"));
            assert_eq!(
                reply.json(),
                json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                    "message":"the server could not find the requested resource",
                    "reason":"NotFound","details":{},"code":404}),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn only_kinds_with_the_status_subresource_have_a_status_path() {
        let (server, _client) = start().await;
        server.put(
            &kinds::SECRETS,
            json!({"metadata": {"name": "s", "namespace": "default"}}),
        );
        server.put(&chatgroups(), chat_group("g"));
        let secret_status = get(&server, "/api/v1/namespaces/default/secrets/s/status").await;
        assert_eq!(secret_status.status, 404);
        let group_status = get(&server, &format!("{}/status", group_path("default", "g"))).await;
        assert_eq!(group_status.status, 200);
        assert_eq!(name(&group_status.json()), "g");
    }

    #[tokio::test]
    async fn a_namespaced_kind_is_only_listed_and_watched_across_namespaces() {
        let (server, _client) = start().await;
        let list = get(&server, "/apis/cams.chatapp.io/v1alpha1/chatgroups").await;
        assert_eq!(list.status, 200);
        assert_eq!(list.json()["kind"], "ChatGroupList");
        let create = send_json(
            &server,
            "POST",
            "/apis/cams.chatapp.io/v1alpha1/chatgroups",
            &chat_group("g"),
        )
        .await;
        assert_eq!(create.status, 405);
        assert_eq!(create.json()["reason"], "MethodNotAllowed");
        // A name needs a namespace in the path.
        let named = get(&server, "/apis/cams.chatapp.io/v1alpha1/chatgroups/g").await;
        assert_eq!(named.status, 404);
    }

    #[tokio::test]
    async fn a_kind_added_without_a_schema_is_served_and_stores_any_fields() {
        let gadgets =
            kube_test_server::ResourceKind::builtin("example.com", "v1", "Gadget", "gadgets");
        let (server, _client) = builder().kind(gadgets.clone()).start().await;
        let path = "/apis/example.com/v1/namespaces/default/gadgets";
        let body = json!({"apiVersion": "example.com/v1", "kind": "Gadget",
            "metadata": {"name": "g"}, "spec": {"anything": [1, "two"]}});
        let reply = send_json(&server, "POST", path, &body).await;
        assert_eq!(reply.status, 201);
        assert_eq!(reply.json()["spec"], json!({"anything": [1, "two"]}));
        assert!(reply.all("warning").is_empty(), "no schema, nothing pruned");
        let list = get(&server, path).await.json();
        assert_eq!(list["kind"], "GadgetList");
        assert_eq!(server.list(&gadgets, None).len(), 1);
    }

    #[tokio::test]
    async fn a_method_a_path_does_not_serve_is_405() {
        let (server, _client) = start().await;
        let reply = send_json(&server, "PUT", &groups_path("default"), &json!({})).await;
        assert_eq!(reply.status, 405);
        assert_eq!(reply.json()["reason"], "MethodNotAllowed");
        assert!(server.list(&chatgroups(), None).is_empty());
    }
}

mod create_and_get {
    use super::*;

    #[tokio::test]
    async fn create_fills_in_the_server_owned_metadata() {
        let (server, client) = start().await;
        let created = groups(&client, "default")
            .create(&PostParams::default(), &dynamic(chat_group("team")))
            .await
            .unwrap();
        let created = json_of(&created);
        let meta = &created["metadata"];
        assert_eq!(meta["namespace"], "default");
        assert_eq!(meta["generation"], 1);
        assert_eq!(rv(&created), server.resource_version().to_string());
        let uid = meta["uid"].as_str().unwrap();
        let uid_shape = regex_like_uuid_v4(uid);
        assert!(uid_shape, "a version 4 UUID: {uid}");
        let created_at = meta["creationTimestamp"].as_str().unwrap();
        assert!(
            created_at.len() == 20
                && created_at.ends_with('Z')
                && created_at.as_bytes()[10] == b'T',
            "RFC 3339 in whole seconds: {created_at}"
        );
        assert_eq!(
            server.get(&chatgroups(), "default", "team").unwrap(),
            created
        );
        let fetched = get(&server, &group_path("default", "team")).await;
        assert_eq!(fetched.json(), created);
    }

    fn regex_like_uuid_v4(uid: &str) -> bool {
        let parts: Vec<&str> = uid.split('-').collect();
        parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && uid.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
            && parts[2].starts_with('4')
            && matches!(parts[3].chars().next(), Some('8' | '9' | 'a' | 'b'))
    }

    #[tokio::test]
    async fn metadata_only_the_server_sets_is_ignored_on_create() {
        let (server, _client) = start().await;
        let mut body = chat_group("g");
        body["metadata"] = json!({
            "name": "g", "uid": "00000000-0000-4000-8000-000000000000",
            "resourceVersion": "5", "generation": 7,
            "creationTimestamp": "2001-01-01T00:00:00Z",
            "deletionTimestamp": "2001-01-01T00:00:00Z",
            "deletionGracePeriodSeconds": 30,
        });
        let reply = send_json(&server, "POST", &groups_path("default"), &body).await;
        assert_eq!(reply.status, 201);
        let meta = reply.json()["metadata"].clone();
        assert_ne!(meta["uid"], "00000000-0000-4000-8000-000000000000");
        assert_ne!(meta["resourceVersion"], "5");
        assert_eq!(meta["generation"], 1);
        assert_ne!(meta["creationTimestamp"], "2001-01-01T00:00:00Z");
        assert!(meta.get("deletionTimestamp").is_none());
        assert!(meta.get("deletionGracePeriodSeconds").is_none());
    }

    #[tokio::test]
    async fn every_create_gets_a_fresh_uid() {
        let (server, _client) = start().await;
        let a = server
            .create(&chatgroups(), "default", chat_group("a"))
            .unwrap();
        let b = server
            .create(&chatgroups(), "default", chat_group("b"))
            .unwrap();
        assert_ne!(a["metadata"]["uid"], b["metadata"]["uid"]);
    }

    #[tokio::test]
    async fn delete_and_recreate_gives_a_new_uid_and_generation_1() {
        let (_server, client) = start().await;
        let api = groups(&client, "default");
        let first = json_of(
            &api.create(&PostParams::default(), &dynamic(chat_group("g")))
                .await
                .unwrap(),
        );
        let changed = json_of(
            &api.patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"subject": "Sales"}})),
            )
            .await
            .unwrap(),
        );
        assert_eq!(changed["metadata"]["generation"], 2);
        api.delete("g", &DeleteParams::default()).await.unwrap();
        let again = json_of(
            &api.create(&PostParams::default(), &dynamic(chat_group("g")))
                .await
                .unwrap(),
        );
        assert_ne!(again["metadata"]["uid"], first["metadata"]["uid"]);
        assert_eq!(again["metadata"]["generation"], 1);
        assert_ne!(
            again["metadata"]["creationTimestamp"],
            Value::Null,
            "a new creation timestamp"
        );
    }

    #[tokio::test]
    async fn creating_an_existing_name_is_409_already_exists() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("a"));
        let reply = send_json(&server, "POST", &groups_path("default"), &chat_group("a")).await;
        assert_eq!(reply.status, 409);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"chatgroups.cams.chatapp.io \"a\" already exists","reason":"AlreadyExists",
                "details":{"name":"a","group":"cams.chatapp.io","kind":"chatgroups"},"code":409})
        );
    }

    #[tokio::test]
    async fn getting_a_missing_object_is_404_not_found() {
        let (server, _client) = start().await;
        let reply = get(&server, &group_path("default", "missing")).await;
        assert_eq!(reply.status, 404);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"chatgroups.cams.chatapp.io \"missing\" not found","reason":"NotFound",
                "details":{"name":"missing","group":"cams.chatapp.io","kind":"chatgroups"},"code":404})
        );
        let secret = get(&server, "/api/v1/namespaces/default/secrets/missing").await;
        assert_eq!(
            secret.json()["message"],
            "secrets \"missing\" not found",
            "the core group is left out"
        );
        assert_eq!(
            secret.json()["details"],
            json!({"name":"missing","kind":"secrets"})
        );
    }

    #[tokio::test]
    async fn generate_name_appends_five_characters_of_the_apiserver_alphabet() {
        let (_server, client) = start().await;
        let secrets: Api<Secret> = Api::namespaced(client, "default");
        let template: Secret = serde_json::from_value(json!({
            "metadata": {"generateName": "creds-"}
        }))
        .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let secret = secrets
                .create(&PostParams::default(), &template)
                .await
                .unwrap();
            let name = secret.name_any();
            let suffix = name.strip_prefix("creds-").expect("the prefix is kept");
            assert_eq!(suffix.len(), 5, "{name}");
            assert!(
                suffix
                    .chars()
                    .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
                "{name}"
            );
            seen.insert(name);
        }
        assert_eq!(seen.len(), 20, "every generated name is new");
    }

    #[tokio::test]
    async fn a_name_or_generate_name_is_required() {
        let (server, _client) = start().await;
        let mut body = chat_group("x");
        body["metadata"] = json!({});
        let reply = send_json(&server, "POST", &groups_path("default"), &body).await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"ChatGroup.cams.chatapp.io \"\" is invalid: metadata.name: Required value: name or generateName is required",
                "reason":"Invalid",
                "details":{"group":"cams.chatapp.io","kind":"ChatGroup","causes":[
                    {"reason":"FieldValueRequired","message":"Required value: name or generateName is required","field":"metadata.name"}]},
                "code":422})
        );
    }

    #[tokio::test]
    async fn a_body_for_another_kind_is_400() {
        let (server, _client) = start().await;
        let mut body = chat_group("g");
        body["kind"] = json!("Secret");
        let reply = send_json(&server, "POST", &groups_path("default"), &body).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["reason"], "BadRequest");
        assert!(server.get(&chatgroups(), "default", "g").is_none());
    }

    #[tokio::test]
    async fn a_body_naming_another_namespace_is_400() {
        let (server, _client) = start().await;
        let mut body = chat_group("g");
        body["metadata"]["namespace"] = json!("kube-system");
        let reply = send_json(&server, "POST", &groups_path("default"), &body).await;
        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.json()["message"],
            "the namespace of the provided object does not match the namespace sent on the request"
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_400() {
        let (server, _client) = start().await;
        let reply = send(
            &server,
            "POST",
            &groups_path("default"),
            &[("Content-Type", "application/json")],
            b"{not json",
        )
        .await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["reason"], "BadRequest");
    }
}

mod dry_run {
    use super::*;

    #[tokio::test]
    async fn a_dry_run_create_answers_the_object_and_stores_nothing() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        let before = server.resource_version();
        let params = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let created = json_of(
            &api.create(&params, &dynamic(chat_group("dry")))
                .await
                .unwrap(),
        );
        assert_eq!(name(&created), "dry");
        assert_eq!(
            created["spec"]["region"], "ap-southeast-1",
            "defaults are applied"
        );
        assert!(created.pointer("/metadata/resourceVersion").is_none());
        assert!(server.get(&chatgroups(), "default", "dry").is_none());
        assert_eq!(server.resource_version(), before);
    }

    #[tokio::test]
    async fn a_dry_run_is_still_validated() {
        let (_server, client) = start().await;
        let params = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let mut invalid = chat_group("dry");
        invalid["spec"]["businessNumber"] = json!("+86");
        let status = api_error(
            groups(&client, "default")
                .create(&params, &dynamic(invalid))
                .await,
        );
        assert_eq!(status.code, 422);
    }

    #[tokio::test]
    async fn dry_run_updates_patches_and_deletes_change_nothing() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        let mut with_finalizer = chat_group("g");
        with_finalizer["metadata"]["finalizers"] = json!(["example.com/hold"]);
        server.put(&chatgroups(), with_finalizer);
        server.put(&chatgroups(), chat_group("plain"));
        let before = server.resource_version();
        let patched = api
            .patch(
                "g",
                &PatchParams::default().dry_run(),
                &Patch::Merge(json!({"spec": {"subject": "Dry"}})),
            )
            .await
            .unwrap();
        assert_eq!(json_of(&patched)["spec"]["subject"], "Dry");
        let dry_delete = DeleteParams {
            dry_run: true,
            ..Default::default()
        };
        api.delete("g", &dry_delete).await.unwrap();
        api.delete("plain", &dry_delete).await.unwrap();
        assert_eq!(server.resource_version(), before);
        let stored = server.get(&chatgroups(), "default", "g").unwrap();
        assert_eq!(stored["spec"]["subject"], "Support");
        assert!(stored.pointer("/metadata/deletionTimestamp").is_none());
        assert!(server.get(&chatgroups(), "default", "plain").is_some());
    }
}

mod request_log {
    use super::*;

    #[tokio::test]
    async fn the_log_classifies_every_request() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &dynamic(chat_group("a")))
            .await
            .unwrap();
        let apply = json!({
            "apiVersion": "cams.chatapp.io/v1alpha1", "kind": "ChatGroup",
            "status": {"observedGeneration": 1},
        });
        api.patch_status(
            "a",
            &PatchParams::apply("cams-operator"),
            &Patch::Apply(&apply),
        )
        .await
        .unwrap();
        api.list(&ListParams::default().labels("team=a"))
            .await
            .unwrap();
        api.get("a").await.unwrap();
        api.replace("a", &PostParams::default(), &api.get("a").await.unwrap())
            .await
            .unwrap();
        api.delete("a", &DeleteParams::default()).await.unwrap();
        client.apiserver_version().await.unwrap();

        let log = server.requests();
        let kinds: Vec<RequestKind> = log.iter().map(|r| r.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                RequestKind::Create,
                RequestKind::Patch {
                    patch_type: PatchType::Apply,
                    subresource: Some("status".into())
                },
                RequestKind::List,
                RequestKind::Get,
                RequestKind::Get,
                RequestKind::Update { subresource: None },
                RequestKind::Delete,
                RequestKind::Other,
            ]
        );
        assert_eq!(
            log.iter().map(|r| r.status).collect::<Vec<_>>(),
            [201, 200, 200, 200, 200, 200, 200, 200]
        );
        let create = &log[0];
        assert!(create.is_for(&chatgroups()) && create.is_write());
        assert_eq!(create.method, http::Method::POST);
        assert_eq!(create.path, groups_path("default"));
        assert_eq!(create.namespace.as_deref(), Some("default"));
        assert_eq!(create.body.as_ref().unwrap()["metadata"]["name"], "a");
        let patch = &log[1];
        assert!(patch.is_status_patch());
        assert_eq!(patch.name.as_deref(), Some("a"));
        assert_eq!(patch.field_manager.as_deref(), Some("cams-operator"));
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(
            patch.body.as_ref().unwrap()["status"]["observedGeneration"],
            1
        );
        assert_eq!(log[2].param("labelSelector"), Some("team=a"));
        assert!(!log[2].is_write());
        assert!(log[7].resource.is_none());
        assert!(log.iter().all(|r| !r.injected_fault));
        assert_eq!(server.count(|r| r.is_write()), 4);

        server.clear_log();
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn a_dry_run_is_logged_but_counts_as_no_write() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &dynamic(chat_group("a")))
            .await
            .unwrap();
        server.clear_log();
        let apply = json!({
            "apiVersion": "cams.chatapp.io/v1alpha1", "kind": "ChatGroup",
            "status": {"observedGeneration": 1},
        });
        let mut params = PatchParams::apply("cams-operator");
        params.dry_run = true;
        api.patch_status("a", &params, &Patch::Apply(&apply))
            .await
            .unwrap();
        api.create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &dynamic(chat_group("b")),
        )
        .await
        .unwrap();

        let log = server.requests();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].param("dryRun"), Some("All"));
        assert!(log.iter().all(|r| r.is_dry_run()));
        assert!(!log[0].is_status_patch() && !log[0].is_write());
        assert!(!log[1].is_write());
        assert_eq!(server.count(|r| r.is_write() || r.is_status_patch()), 0);
    }

    #[tokio::test]
    async fn the_log_names_the_user_each_request_authenticated_as() {
        let (server, client) = start().await;
        let robot = User::service_account("ops", "robot");
        groups(&client, "default")
            .list(&ListParams::default())
            .await
            .unwrap();
        groups(&server.client_as(&robot), "default")
            .list(&ListParams::default())
            .await
            .unwrap();
        get(&server, &groups_path("default")).await;
        send(
            &server,
            "GET",
            &groups_path("default"),
            &[("Authorization", "Bearer nobody-gave-this-out")],
            b"",
        )
        .await;
        let users: Vec<String> = server.requests().into_iter().map(|r| r.user).collect();
        assert_eq!(
            users,
            [
                "kubernetes-admin",
                "system:serviceaccount:ops:robot",
                "system:anonymous",
                ""
            ]
        );
    }
}

mod handle {
    use super::*;

    #[tokio::test]
    async fn put_stores_the_object_as_given_status_included_and_watchers_see_it() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        let mut stream = api
            .watch(
                &WatchParams::default(),
                &server.resource_version().to_string(),
            )
            .await
            .unwrap()
            .boxed();
        let mut object = chat_group("seeded");
        object["status"] = json!({"observedGeneration": 3});
        let stored = server.put(&chatgroups(), object);
        assert_eq!(stored["status"]["observedGeneration"], 3);
        assert_eq!(stored["metadata"]["namespace"], "default");
        assert_eq!(stored["metadata"]["generation"], 1);
        let kube::api::WatchEvent::Added(seen) = next_change(&mut stream).await else {
            panic!("expected ADDED");
        };
        assert_eq!(json_of(&seen), stored);
        assert!(
            server
                .requests()
                .iter()
                .all(|r| r.kind == RequestKind::Watch)
        );
    }

    #[tokio::test]
    async fn put_of_an_existing_object_keeps_its_identity_and_moves_generation_on_spec_changes() {
        let (server, _client) = start().await;
        let first = server.put(&chatgroups(), chat_group("g"));
        let mut relabelled = chat_group("g");
        relabelled["metadata"]["labels"] = json!({"team": "a"});
        let second = server.put(&chatgroups(), relabelled.clone());
        assert_eq!(second["metadata"]["uid"], first["metadata"]["uid"]);
        assert_eq!(second["metadata"]["generation"], 1);
        assert_ne!(rv(&second), rv(&first));
        relabelled["spec"]["subject"] = json!("Sales");
        let third = server.put(&chatgroups(), relabelled.clone());
        assert_eq!(third["metadata"]["generation"], 2);
        let before = server.resource_version();
        let same = server.put(&chatgroups(), relabelled);
        assert_eq!(rv(&same), rv(&third), "an unchanged put changes nothing");
        assert_eq!(server.resource_version(), before);
    }

    #[tokio::test]
    #[should_panic(
        expected = "put refused: ChatGroup.cams.chatapp.io \"g\" is invalid: spec.businessNumber: Invalid value: \"+86\": spec.businessNumber in body should match '^[0-9]+$'"
    )]
    async fn put_refuses_what_the_api_would_refuse() {
        let (server, _client) = start().await;
        let mut object = chat_group("g");
        object["spec"]["businessNumber"] = json!("+86");
        server.put(&chatgroups(), object);
    }

    #[tokio::test]
    #[should_panic(expected = "put refused: namespaces \"nowhere\" not found")]
    async fn put_needs_the_namespace_to_exist() {
        let (server, _client) = start().await;
        let mut object = chat_group("g");
        object["metadata"]["namespace"] = json!("nowhere");
        server.put(&chatgroups(), object);
    }

    #[tokio::test]
    async fn put_unchecked_stores_what_the_api_would_refuse() {
        let (server, client) = start().await;
        // An object stored under an older, laxer schema: the business number has a `+`.
        let mut object = chat_group("legacy");
        object["spec"]["businessNumber"] = json!("+8613800001234");
        let stored = server.put_unchecked(&chatgroups(), object);
        assert_eq!(stored["spec"]["businessNumber"], "+8613800001234");
        let fetched = json_of(&groups(&client, "default").get("legacy").await.unwrap());
        assert_eq!(fetched, stored);
    }

    #[tokio::test]
    async fn create_and_delete_follow_the_api_rules() {
        let (server, _client) = start().await;
        let mut object = chat_group("held");
        object["metadata"]["finalizers"] = json!(["example.com/hold"]);
        object["status"] = json!({"observedGeneration": 5});
        let created = server
            .create(&chatgroups(), "default", object.clone())
            .unwrap();
        assert!(
            created.get("status").is_none(),
            "status is dropped on create"
        );
        assert_eq!(
            created["spec"]["driftPolicy"], "Enforce",
            "defaults are applied"
        );
        let again = server.create(&chatgroups(), "default", object).unwrap_err();
        assert_eq!((again.code, again.reason), (409, "AlreadyExists"));
        let marked = server.delete(&chatgroups(), "default", "held").unwrap();
        assert!(marked.pointer("/metadata/deletionTimestamp").is_some());
        assert!(server.get(&chatgroups(), "default", "held").is_some());
        let missing = server
            .delete(&chatgroups(), "default", "missing")
            .unwrap_err();
        assert_eq!(missing.code, 404);
    }

    #[tokio::test]
    async fn get_and_list_read_the_store_by_namespace() {
        let (server, _client) = builder().namespace("team-a").start().await;
        server.put(&chatgroups(), chat_group("a"));
        let mut elsewhere = chat_group("b");
        elsewhere["metadata"]["namespace"] = json!("team-a");
        server.put(&chatgroups(), elsewhere);
        assert_eq!(server.list(&chatgroups(), Some("default")).len(), 1);
        assert_eq!(server.list(&chatgroups(), Some("team-a")).len(), 1);
        assert_eq!(server.list(&chatgroups(), None).len(), 2);
        assert!(server.get(&chatgroups(), "team-a", "a").is_none());
        assert!(server.get(&chatgroups(), "team-a", "b").is_some());
        assert_eq!(server.count(|_| true), 0, "the handle is not logged");
    }

    #[tokio::test]
    async fn create_namespace_creates_an_active_namespace_once() {
        let (server, _client) = start().await;
        server.create_namespace("team-z");
        let namespace = server.get(&kinds::NAMESPACES, "", "team-z").unwrap();
        assert_eq!(namespace["status"]["phase"], "Active");
        assert_eq!(
            namespace["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-z"
        );
        let rv = server.resource_version();
        server.create_namespace("team-z");
        assert_eq!(
            server.resource_version(),
            rv,
            "an existing namespace is left alone"
        );
        for initial in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(
                server.get(&kinds::NAMESPACES, "", initial).is_some(),
                "{initial}"
            );
        }
    }

    #[tokio::test]
    async fn seed_creates_the_namespaces_its_objects_need() {
        let (server, _client) = start().await;
        let secrets = (0..3).map(
            |i| json!({"metadata": {"name": format!("s{i}"), "namespace": format!("seeded-{i}")}}),
        );
        server.seed(&kinds::SECRETS, secrets);
        for i in 0..3 {
            assert!(
                server
                    .get(&kinds::NAMESPACES, "", &format!("seeded-{i}"))
                    .is_some()
            );
            assert!(
                server
                    .get(&kinds::SECRETS, &format!("seeded-{i}"), &format!("s{i}"))
                    .is_some()
            );
        }
    }

    #[tokio::test]
    async fn handle_writes_leave_no_warnings_for_the_next_request() {
        let (server, _client) = start().await;
        let mut unknown = chat_group("seeded");
        unknown["spec"]["foo"] = json!(1);
        server.put(&chatgroups(), unknown.clone());
        unknown["metadata"]["name"] = json!("created");
        server.create(&chatgroups(), "default", unknown).unwrap();
        let reply = send_json(
            &server,
            "POST",
            &groups_path("default"),
            &chat_group("clean"),
        )
        .await;
        assert_eq!(reply.status, 201);
        assert_eq!(reply.all("warning"), Vec::<&str>::new());
    }

    #[tokio::test]
    async fn wait_for_wakes_on_changes_and_gives_up_at_the_timeout() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            api.create(&PostParams::default(), &dynamic(chat_group("later")))
                .await
                .unwrap();
        });
        let seen = server
            .wait_for_value(|s| s.get(&chatgroups(), "default", "later"), WAIT)
            .await;
        assert_eq!(seen.map(|o| name(&o)), Some("later".to_owned()));
        writer.await.unwrap();
        let started = std::time::Instant::now();
        let never = server
            .wait_for(
                |s| s.get(&chatgroups(), "default", "never").is_some(),
                Duration::from_millis(100),
            )
            .await;
        assert!(!never);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn typed_helpers_put_and_read_kube_resources() {
        let (server, _client) = start().await;
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "typed", "namespace": "default"},
            "stringData": {"k": "v"},
        }))
        .unwrap();
        let stored = server.put_as(&secret);
        assert_eq!(stored.data.unwrap()["k"].0, b"v");
        assert!(stored.string_data.is_none());
        let read = server.get_as::<Secret>("default", "typed").unwrap();
        assert_eq!(read.metadata.uid, stored.metadata.uid);
        assert_eq!(server.list_as::<Secret>(Some("default")).len(), 1);
        assert!(server.list_as::<Secret>(Some("kube-system")).is_empty());
    }

    #[test]
    fn the_handle_can_be_shared_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TestApiServer>();
    }
}

mod connection {
    use super::*;

    #[tokio::test]
    async fn the_kubeconfig_reaches_the_server_as_an_administrator() {
        let (server, _client) = start().await;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        assert_eq!(config.default_namespace, "default");
        let client = Client::try_from(config).unwrap();
        groups(&client, "default")
            .create(
                &PostParams::default(),
                &dynamic(chat_group("via-kubeconfig")),
            )
            .await
            .unwrap();
        assert!(
            server
                .get(&chatgroups(), "default", "via-kubeconfig")
                .is_some()
        );
        assert_eq!(server.requests()[0].user, "kubernetes-admin");
    }

    #[tokio::test]
    async fn a_kubeconfig_for_a_user_authenticates_as_that_user() {
        let (server, _client) = start().await;
        let robot = User::service_account("ops", "robot");
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml_as(&robot)).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = Client::try_from(config).unwrap();
        groups(&client, "default")
            .list(&ListParams::default())
            .await
            .unwrap();
        assert_eq!(server.requests()[0].user, "system:serviceaccount:ops:robot");
        assert_eq!(server.token_for(&robot), server.token_for(&robot));
        assert_ne!(server.token_for(&robot), server.token_for(&User::admin()));
    }

    #[tokio::test]
    async fn shutdown_stops_serving() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        api.list(&ListParams::default()).await.unwrap();
        let addr = server.addr();
        server.shutdown();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(api.list(&ListParams::default()).await.is_err());
        let connect = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr)).await;
        assert!(
            matches!(connect, Ok(Err(_))),
            "nothing listens on {addr} any more"
        );
    }
}
