//! The built-in kinds: Secrets (stringData, keys, size, immutability), events.k8s.io/v1
//! Events (what kube-rs' Recorder writes, and the create validation), Leases (conditional
//! updates and spec checks), Namespaces, and metadata-only requests.

mod common;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use kube_test_server::{RequestKind, kinds};
use serde_json::{Value, json};

fn secret(name: &str, data: &[(&str, &[u8])]) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

mod secrets {
    use super::*;

    #[tokio::test]
    async fn secrets_round_trip_and_may_be_replaced_without_a_resource_version() {
        let (server, client) = start().await;
        let secrets: Api<Secret> = Api::namespaced(client, "default");
        let created = secrets
            .create(
                &PostParams::default(),
                &secret("creds", &[("accessKeyId", b"LTAI")]),
            )
            .await
            .unwrap();
        assert_eq!(
            created.meta().generation,
            None,
            "built-in kinds here keep no generation"
        );
        let rotated = secrets
            .replace(
                "creds",
                &PostParams::default(),
                &secret("creds", &[("accessKeyId", b"LTAI2")]),
            )
            .await
            .unwrap();
        assert_ne!(rotated.resource_version(), created.resource_version());
        assert_eq!(
            server.get(&kinds::SECRETS, "default", "creds").unwrap()["data"]["accessKeyId"],
            "TFRBSTI="
        );
    }

    #[tokio::test]
    async fn string_data_is_merged_into_data_and_not_stored() {
        let (server, _client) = start().await;
        let reply = send_json(
            &server,
            "POST",
            "/api/v1/namespaces/default/secrets",
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                "data": {"kept": "YQ==", "replaced": "YQ=="},
                "stringData": {"replaced": "plain", "added": "text"}}),
        )
        .await;
        assert_eq!(reply.status, 201);
        let stored = server.get(&kinds::SECRETS, "default", "s").unwrap();
        assert_eq!(
            stored["data"],
            json!({"kept": "YQ==", "replaced": "cGxhaW4=", "added": "dGV4dA=="})
        );
        assert!(stored.get("stringData").is_none());
        assert_eq!(reply.json()["data"], stored["data"]);
    }

    #[tokio::test]
    async fn secret_keys_must_be_config_keys() {
        let (server, _client) = start().await;
        let reply = send_json(
            &server,
            "POST",
            "/api/v1/namespaces/default/secrets",
            &json!({"metadata": {"name": "s"}, "data": {"bad/key": "YQ=="}}),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Secret \"s\" is invalid: data: Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "reason":"Invalid",
                "details":{"name":"s","kind":"Secret","causes":[{"reason":"FieldValueInvalid",
                    "message":"Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                    "field":"data"}]},
                "code":422})
        );
    }

    #[tokio::test]
    async fn secret_data_is_limited_to_one_mebibyte() {
        let (_server, client) = start().await;
        let secrets: Api<Secret> = Api::namespaced(client, "default");
        let fits = vec![b'x'; 1024 * 1024];
        secrets
            .create(&PostParams::default(), &secret("fits", &[("blob", &fits)]))
            .await
            .unwrap();
        let too_big = vec![b'x'; 1024 * 1024 + 3];
        let status = api_error(
            secrets
                .create(
                    &PostParams::default(),
                    &secret("big", &[("blob", &too_big)]),
                )
                .await,
        );
        assert_eq!(status.code, 422);
        assert_eq!(
            status.message,
            "Secret \"big\" is invalid: data: Too long: may not be more than 1048576 bytes"
        );
    }

    #[tokio::test]
    async fn a_secrets_type_cannot_change() {
        let (server, _client) = start().await;
        server.put(
            &kinds::SECRETS,
            json!({"metadata": {"name": "s"}, "type": "Opaque"}),
        );
        let reply = send_json(
            &server,
            "PUT",
            "/api/v1/namespaces/default/secrets/s",
            &json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"}),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json()["message"],
            "Secret \"s\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable"
        );
    }

    #[tokio::test]
    async fn an_immutable_secret_keeps_its_data() {
        let (server, _client) = start().await;
        server.put(
            &kinds::SECRETS,
            json!({"metadata": {"name": "s"}, "immutable": true, "data": {"k": "YQ=="}}),
        );
        let reply = send_json(
            &server,
            "PATCH",
            "/api/v1/namespaces/default/secrets/s",
            &json!({"data": {"k": "Yg=="}}),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json()["message"],
            "Secret \"s\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
        );
    }
}

mod events {
    use super::*;

    fn valid_event(name: &str) -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "type": "Normal", "reason": "UpdateSucceeded", "action": "UpdateChatGroup",
            "note": "RequestId 90E63D28",
            "reportingController": "cams-operator", "reportingInstance": "cams-operator-0",
            "regarding": {"apiVersion": "cams.chatapp.io/v1alpha1", "kind": "ChatGroup", "namespace": "default", "name": "g"},
        })
    }

    async fn post(server: &kube_test_server::TestApiServer, body: &Value) -> Reply {
        send_json(
            server,
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            body,
        )
        .await
    }

    #[tokio::test]
    async fn the_kube_rs_recorder_creates_an_event_then_counts_repeats_in_its_series() {
        let (server, client) = start().await;
        let group = groups(&client, "default")
            .create(&PostParams::default(), &dynamic(chat_group("g")))
            .await
            .unwrap();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "cams-operator".into(),
                instance: None,
            },
        );
        let event = Event {
            type_: EventType::Normal,
            reason: "UpdateSucceeded".into(),
            note: Some("RequestId 90E63D28".into()),
            action: "UpdateChatGroup".into(),
            secondary: None,
        };
        let reference = group.object_ref(&chat_group_resource());
        recorder.publish(&event, &reference).await.unwrap();
        recorder.publish(&event, &reference).await.unwrap();
        let events = server.list(&kinds::EVENTS, Some("default"));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["reason"], "UpdateSucceeded");
        assert_eq!(events[0]["series"]["count"], 2);
        assert_eq!(events[0]["regarding"]["name"], "g");
        assert_eq!(
            server.count(|r| r.is_for(&kinds::EVENTS) && r.kind == RequestKind::Create),
            1
        );
    }

    #[tokio::test]
    async fn event_names_reasons_actions_and_notes_are_limited() {
        let (server, _client) = start().await;
        let name = "e".repeat(254);
        let mut body = valid_event(&name);
        body["reason"] = json!("R".repeat(129));
        body["action"] = json!("A".repeat(129));
        body["note"] = json!("n".repeat(1025));
        let reply = post(&server, &body).await;
        assert_eq!(reply.status, 422);
        let too_many = "Invalid value: \"\": can have at most 128 characters";
        let causes = json!([
            {"reason":"FieldValueInvalid","message": format!("Invalid value: \"{name}\": must be no more than 253 characters"),"field":"metadata.name"},
            {"reason":"FieldValueInvalid","message": too_many,"field":"action"},
            {"reason":"FieldValueInvalid","message": too_many,"field":"reason"},
            {"reason":"FieldValueInvalid","message":"Invalid value: \"\": can have at most 1024 characters","field":"message"},
        ]);
        let mut expected_message = format!("Event.events.k8s.io \"{name}\" is invalid: [");
        let parts: Vec<String> = causes
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{}: {}",
                    c["field"].as_str().unwrap(),
                    c["message"].as_str().unwrap()
                )
            })
            .collect();
        expected_message.push_str(&parts.join(", "));
        expected_message.push(']');
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message": expected_message, "reason":"Invalid",
                "details":{"name": name, "group":"events.k8s.io","kind":"Event","causes": causes},
                "code":422})
        );
        // At the limits, the same Event is accepted.
        let mut at_limits = valid_event(&"e".repeat(253));
        at_limits["reason"] = json!("R".repeat(128));
        at_limits["action"] = json!("A".repeat(128));
        at_limits["note"] = json!("n".repeat(1024));
        assert_eq!(post(&server, &at_limits).await.status, 201);
    }

    #[tokio::test]
    async fn an_event_needs_an_event_time_and_a_known_type() {
        let (server, _client) = start().await;
        let mut body = valid_event("e");
        body.as_object_mut().unwrap().remove("eventTime");
        body["type"] = json!("Info");
        let causes = post(&server, &body).await.json()["details"]["causes"].clone();
        assert_eq!(
            causes,
            json!([
                {"reason":"FieldValueRequired","message":"Required value","field":"eventTime"},
                {"reason":"FieldValueInvalid","message":"Invalid value: \"\": has invalid value: Info","field":"type"},
            ])
        );
    }

    #[tokio::test]
    async fn an_event_about_an_object_without_namespace_lives_in_default_or_kube_system() {
        let (server, _client) = builder().namespace("team-a").start().await;
        let mut body = valid_event("e");
        body["metadata"]["namespace"] = json!("team-a");
        body["regarding"] = json!({"kind": "Node", "name": "n1"});
        let reply = send_json(
            &server,
            "POST",
            "/apis/events.k8s.io/v1/namespaces/team-a/events",
            &body,
        )
        .await;
        assert_eq!(
            reply.json()["details"]["causes"],
            json!([{"reason":"FieldValueInvalid","message":"Invalid value: \"\": does not match event.namespace","field":"involvedObject.namespace"}])
        );
        let mut in_default = valid_event("e");
        in_default["regarding"] = json!({"kind": "Node", "name": "n1"});
        assert_eq!(post(&server, &in_default).await.status, 201);
    }

    #[tokio::test]
    async fn an_event_needs_a_qualified_reporting_controller_and_an_instance() {
        let (server, _client) = start().await;
        let mut body = valid_event("e");
        body["reportingController"] = json!("cams operator");
        body.as_object_mut().unwrap().remove("reportingInstance");
        let causes = post(&server, &body).await.json()["details"]["causes"].clone();
        let fields: Vec<&str> = causes
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["reportingController", "reportingInstance"]);
        assert_eq!(causes[1]["reason"], "FieldValueRequired");
    }

    #[tokio::test]
    async fn an_event_series_counts_at_least_two_and_needs_its_last_time() {
        let (server, _client) = start().await;
        let mut body = valid_event("e");
        body["series"] = json!({"count": 1});
        let causes = post(&server, &body).await.json()["details"]["causes"].clone();
        assert_eq!(
            causes,
            json!([
                {"reason":"FieldValueInvalid","message":"Invalid value: \"\": should be at least 2","field":"series.count"},
                {"reason":"FieldValueRequired","message":"Required value","field":"series.lastObservedTime"},
            ])
        );
        body["series"] = json!({"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"});
        assert_eq!(post(&server, &body).await.status, 201);
    }

    #[tokio::test]
    async fn the_deprecated_fields_of_an_event_must_be_unset() {
        let (server, _client) = start().await;
        let mut body = valid_event("e");
        body["deprecatedFirstTimestamp"] = json!("2026-01-01T00:00:00Z");
        body["deprecatedLastTimestamp"] = json!("2026-01-01T00:00:00Z");
        body["deprecatedCount"] = json!(3);
        body["deprecatedSource"] = json!({"component": "cams-operator"});
        let causes = post(&server, &body).await.json()["details"]["causes"].clone();
        let unset = |field: &str| json!({"reason":"FieldValueInvalid","message":"Invalid value: \"\": needs to be unset","field": field});
        assert_eq!(
            causes,
            json!([
                unset("firstTimestamp"),
                unset("lastTimestamp"),
                unset("count"),
                unset("source")
            ])
        );
    }

    #[tokio::test]
    async fn core_v1_events_are_a_collection_of_their_own_here() {
        let (server, client) = start().await;
        let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "default");
        let legacy: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
            "metadata": {"name": "legacy"}, "reason": "Test", "involvedObject": {"name": "g"}
        }))
        .unwrap();
        core.create(&PostParams::default(), &legacy).await.unwrap();
        assert_eq!(
            core.list(&ListParams::default()).await.unwrap().items.len(),
            1
        );
        assert!(server.list(&kinds::EVENTS, None).is_empty());
    }
}

mod leases {
    use super::*;

    fn lease(holder: &str, duration: i32) -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "cams-operator"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration},
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_lease_replace_without_a_resource_version_is_422() {
        let (server, client) = start().await;
        let leases: Api<Lease> = Api::namespaced(client, "kube-system");
        leases
            .create(&PostParams::default(), &lease("a", 15))
            .await
            .unwrap();
        let reply = send_json(
            &server,
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/cams-operator",
            &json_of(&lease("b", 15)),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"leases.coordination.k8s.io \"cams-operator\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                "reason":"Invalid",
                "details":{"name":"cams-operator","group":"coordination.k8s.io","kind":"leases","causes":[
                    {"reason":"FieldValueInvalid","message":"Invalid value: 0x0: must be specified for an update","field":"metadata.resourceVersion"}]},
                "code":422})
        );
    }

    #[tokio::test]
    async fn of_two_candidates_replacing_the_same_version_the_second_loses() {
        let (_server, client) = start().await;
        let leases: Api<Lease> = Api::namespaced(client, "kube-system");
        let created = leases
            .create(&PostParams::default(), &lease("a", 15))
            .await
            .unwrap();
        let status = api_error(leases.create(&PostParams::default(), &lease("b", 15)).await);
        assert_eq!(status.code, 409);
        let mut first = lease("b", 15);
        first.metadata.resource_version = created.metadata.resource_version.clone();
        let mut second = lease("c", 15);
        second.metadata.resource_version = created.metadata.resource_version.clone();
        leases
            .replace("cams-operator", &PostParams::default(), &first)
            .await
            .unwrap();
        let status = api_error(
            leases
                .replace("cams-operator", &PostParams::default(), &second)
                .await,
        );
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        let holder = leases
            .get("cams-operator")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity;
        assert_eq!(holder.as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn lease_durations_are_positive_and_transitions_not_negative() {
        let (server, _client) = start().await;
        let reply = send_json(
            &server,
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
            &json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json()["message"],
            "Lease.coordination.k8s.io \"l\" is invalid: [spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0, spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0]"
        );
    }
}

mod namespaces {
    use super::*;

    #[tokio::test]
    async fn namespaces_are_cluster_scoped_and_a_new_cluster_has_four() {
        let (_server, client) = builder().namespace("cams-system").start().await;
        let namespaces: Api<Namespace> = Api::all(client);
        let mut names: Vec<String> = namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "cams-system",
                "default",
                "kube-node-lease",
                "kube-public",
                "kube-system"
            ]
        );
    }
}

mod metadata_only {
    use super::*;

    const ACCEPT: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

    #[tokio::test]
    async fn a_metadata_only_get_and_list_answer_partial_object_metadata() {
        let (server, _client) = start().await;
        let stored = server.put(
            &kinds::SECRETS,
            json!({"metadata": {"name": "s", "labels": {"a": "b"}}, "data": {"k": "YQ=="}}),
        );
        let one = send(
            &server,
            "GET",
            "/api/v1/namespaces/default/secrets/s",
            &[("Accept", ACCEPT)],
            b"",
        )
        .await;
        assert_eq!(
            one.json(),
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": stored["metadata"]})
        );
        let list = send(
            &server,
            "GET",
            "/api/v1/namespaces/default/secrets",
            &[("Accept", ACCEPT)],
            b"",
        )
        .await
        .json();
        assert_eq!(list["kind"], "PartialObjectMetadataList");
        assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            list["items"],
            json!([{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": stored["metadata"]}])
        );
    }

    #[tokio::test]
    async fn a_metadata_watcher_sees_partial_objects() {
        let (server, client) = start().await;
        server.put(
            &kinds::SECRETS,
            json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
        );
        let meta: Api<PartialObjectMeta<Secret>> = Api::namespaced(client, "default");
        let events: Vec<_> = watcher(meta, watcher::Config::default())
            .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
            .try_collect()
            .await
            .unwrap();
        let names: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                watcher::Event::InitApply(s) => Some(s.name_any()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["s"]);
        let mut stream = Api::<PartialObjectMeta<Secret>>::namespaced(server.client(), "default")
            .watch(
                &kube::api::WatchParams::default(),
                &server.resource_version().to_string(),
            )
            .await
            .unwrap()
            .boxed();
        server.put(
            &kinds::SECRETS,
            json!({"metadata": {"name": "t"}, "data": {"k": "YQ=="}}),
        );
        let kube::api::WatchEvent::Added(added) = next_change(&mut stream).await else {
            panic!("expected ADDED");
        };
        assert_eq!(
            added.types.as_ref().map(|t| t.kind.as_str()),
            Some("PartialObjectMetadata")
        );
        assert_eq!(added.name_any(), "t");
    }
}
