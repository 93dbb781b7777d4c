//! Validation through the API: object metadata (names, labels, annotations, finalizers) and
//! the ChatGroup CRD's own schema (types, patterns, enums, required fields, CEL rules,
//! defaults, pruning of unknown fields, the status schema, ratcheting).

mod common;

use common::*;
use kube_test_server::TestApiServer;
use serde_json::{Value, json};

const NOT_CHECKED: &str = "Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

fn invalid(name: &str, causes: Value) -> Value {
    let messages: Vec<String> = causes
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
    let aggregate = match messages.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message": format!("ChatGroup.cams.chatapp.io \"{name}\" is invalid: {aggregate}"),
        "reason":"Invalid",
        "details":{"name": name, "group":"cams.chatapp.io","kind":"ChatGroup","causes": causes},
        "code":422})
}

fn cause(reason: &str, field: &str, message: &str) -> Value {
    json!({"reason": reason, "message": message, "field": field})
}

fn not_checked() -> Value {
    cause("FieldValueInvalid", "<nil>", NOT_CHECKED)
}

async fn create(server: &TestApiServer, body: &Value) -> Reply {
    send_json(server, "POST", &groups_path("default"), body).await
}

fn with_spec(name: &str, changes: Value) -> Value {
    let mut object = chat_group(name);
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            object["spec"].as_object_mut().unwrap().remove(key);
        } else {
            object["spec"][key] = value.clone();
        }
    }
    object
}

mod metadata {
    use super::*;

    #[tokio::test]
    async fn names_are_dns_subdomains() {
        let (server, _client) = start().await;
        let reply = create(&server, &chat_group("step_name")).await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            invalid(
                "step_name",
                json!([cause(
                    "FieldValueInvalid",
                    "metadata.name",
                    "Invalid value: \"step_name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                )])
            )
        );
    }

    #[tokio::test]
    async fn names_are_at_most_253_characters() {
        let (server, _client) = start().await;
        assert_eq!(
            create(&server, &chat_group(&"a".repeat(253))).await.status,
            201
        );
        let long = "a".repeat(254);
        let reply = create(&server, &chat_group(&long)).await;
        assert_eq!(reply.status, 422);
        let causes = reply.json()["details"]["causes"].clone();
        assert_eq!(
            causes,
            json!([cause(
                "FieldValueInvalid",
                "metadata.name",
                &format!("Invalid value: \"{long}\": must be no more than 253 characters")
            )])
        );
    }

    #[tokio::test]
    async fn label_keys_and_values_must_be_valid() {
        let (server, _client) = start().await;
        let mut object = chat_group("g");
        object["metadata"]["labels"] = json!({"bad key": "x", "team": "-bad"});
        let reply = create(&server, &object).await;
        assert_eq!(reply.status, 422);
        let fields: Vec<String> = reply.json()["details"]["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(fields, ["metadata.labels", "metadata.labels[team]"]);
        assert!(
            reply.json()["details"]["causes"][1]["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters")
        );
    }

    #[tokio::test]
    async fn annotation_keys_must_be_qualified_names() {
        let (server, _client) = start().await;
        let mut object = chat_group("g");
        object["metadata"]["annotations"] = json!({"example.com/Fine": "x", "not ok": "y"});
        let reply = create(&server, &object).await;
        assert_eq!(reply.status, 422);
        let causes = reply.json()["details"]["causes"].clone();
        assert_eq!(causes.as_array().unwrap().len(), 1, "{causes}");
        assert_eq!(causes[0]["field"], "metadata.annotations");
        assert!(causes[0]["message"].as_str().unwrap().starts_with(
            "Invalid value: \"not ok\": name part must consist of alphanumeric characters"
        ));
    }

    #[tokio::test]
    async fn annotations_are_limited_to_256_kib_in_total() {
        let (server, _client) = start().await;
        let mut object = chat_group("g");
        object["metadata"]["annotations"] = json!({"a": "x".repeat(256 * 1024)});
        let reply = create(&server, &object).await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([
                    cause(
                        "FieldValueTooLong",
                        "metadata.annotations",
                        "Too long: may not be more than 262144 bytes"
                    ),
                    not_checked(),
                ])
            )
        );
    }

    #[tokio::test]
    async fn finalizers_must_be_standard_or_fully_qualified() {
        let (server, _client) = start().await;
        let mut object = chat_group("g");
        object["metadata"]["finalizers"] = json!(["cams.chatapp.io/group", "kubernetes", "mine"]);
        let reply = create(&server, &object).await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([cause(
                    "FieldValueInvalid",
                    "metadata.finalizers[2]",
                    "Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"
                )])
            )
        );
    }
}

mod openapi {
    use super::*;

    #[tokio::test]
    async fn a_too_long_subject_is_too_long_and_keeps_the_rules_from_running() {
        let (server, _client) = start().await;
        let reply = create(
            &server,
            &with_spec("g", json!({"subject": "s".repeat(200)})),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([
                    cause(
                        "FieldValueTooLong",
                        "spec.subject",
                        "Too long: may not be more than 128 bytes"
                    ),
                    not_checked(),
                ])
            )
        );
    }

    #[tokio::test]
    async fn a_business_number_with_other_characters_fails_the_pattern() {
        let (server, _client) = start().await;
        let reply = create(
            &server,
            &with_spec("g", json!({"businessNumber": "86-138"})),
        )
        .await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([cause(
                    "FieldValueInvalid",
                    "spec.businessNumber",
                    "Invalid value: \"86-138\": spec.businessNumber in body should match '^[0-9]+$'"
                )])
            ),
            "a pattern failure does not keep the rules from running"
        );
    }

    #[tokio::test]
    async fn a_value_outside_an_enum_lists_the_supported_ones() {
        let (server, _client) = start().await;
        let reply = create(
            &server,
            &with_spec("g", json!({"managementPolicy": "Sometimes"})),
        )
        .await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([
                    cause(
                        "FieldValueNotSupported",
                        "spec.managementPolicy",
                        "Unsupported value: \"Sometimes\": supported values: \"Manage\", \"Observe\", \"Plan\""
                    ),
                    not_checked(),
                ])
            )
        );
    }

    #[tokio::test]
    async fn a_missing_required_field_is_required() {
        let (server, _client) = start().await;
        let reply = create(&server, &with_spec("g", json!({"custSpaceId": null}))).await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([
                    cause("FieldValueRequired", "spec.custSpaceId", "Required value"),
                    not_checked()
                ])
            )
        );
    }

    /// `groupId` is required by a rule on `spec` (unless the operator creates the group), not
    /// by the schema: the rule's cause names `spec`, with the object's type.
    #[tokio::test]
    async fn a_missing_group_id_fails_the_rule_on_spec() {
        let (server, _client) = start().await;
        let reply = create(&server, &with_spec("g", json!({"groupId": null}))).await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([cause(
                    "FieldValueInvalid",
                    "spec",
                    "Invalid value: \"object\": groupId is required unless creationPolicy is Create"
                )])
            )
        );
    }

    #[tokio::test]
    async fn a_value_of_the_wrong_type_names_its_json_type() {
        let (server, _client) = start().await;
        let reply = create(&server, &with_spec("g", json!({"subject": 5}))).await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([
                    cause(
                        "FieldValueTypeInvalid",
                        "spec.subject",
                        "Invalid value: \"integer\": spec.subject in body must be of type string: \"integer\""
                    ),
                    not_checked(),
                ])
            )
        );
    }

    #[tokio::test]
    async fn several_failures_come_in_one_answer_with_one_cause_each() {
        let (server, _client) = start().await;
        let body = with_spec(
            "g",
            json!({"subject": "s".repeat(200), "businessNumber": "86-138", "managementPolicy": "Sometimes", "custSpaceId": null}),
        );
        let reply = create(&server, &body).await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([
                    cause(
                        "FieldValueInvalid",
                        "spec.businessNumber",
                        "Invalid value: \"86-138\": spec.businessNumber in body should match '^[0-9]+$'"
                    ),
                    cause(
                        "FieldValueNotSupported",
                        "spec.managementPolicy",
                        "Unsupported value: \"Sometimes\": supported values: \"Manage\", \"Observe\", \"Plan\""
                    ),
                    cause(
                        "FieldValueTooLong",
                        "spec.subject",
                        "Too long: may not be more than 128 bytes"
                    ),
                    cause("FieldValueRequired", "spec.custSpaceId", "Required value"),
                    not_checked(),
                ])
            )
        );
    }

    #[tokio::test]
    async fn a_missing_spec_is_required() {
        let (server, _client) = start().await;
        let mut body = chat_group("g");
        body.as_object_mut().unwrap().remove("spec");
        let reply = create(&server, &body).await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([
                    cause("FieldValueRequired", "spec", "Required value"),
                    not_checked()
                ])
            )
        );
    }

    #[tokio::test]
    async fn without_rules_in_the_schema_no_rules_cause_is_added() {
        let (server, _client) = TestApiServer::builder()
            .crd(include_str!("fixtures/widgets.yaml"))
            .start()
            .await;
        let reply = send_json(
            &server,
            "POST",
            "/apis/example.com/v1/namespaces/default/widgets",
            &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
        )
        .await;
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Widget.example.com \"w\" is invalid: spec: Required value","reason":"Invalid",
                "details":{"name":"w","group":"example.com","kind":"Widget","causes":[
                    {"reason":"FieldValueRequired","message":"Required value","field":"spec"}]},
                "code":422})
        );
    }

    #[tokio::test]
    async fn nulls_stay_where_nullable_and_are_defaulted_or_dropped_elsewhere() {
        let (server, _client) = start().await;
        let mut body = with_spec("g", json!({}));
        body["spec"]["description"] = Value::Null;
        body["spec"]["driftPolicy"] = Value::Null;
        let reply = create(&server, &body).await;
        assert_eq!(reply.status, 201, "{}", reply.text());
        let created = reply.json();
        assert_eq!(created["spec"]["description"], Value::Null);
        assert!(
            created["spec"]
                .as_object()
                .unwrap()
                .contains_key("description")
        );
        assert_eq!(created["spec"]["driftPolicy"], "Enforce");
    }
}

mod rules {
    use super::*;

    #[tokio::test]
    async fn group_id_is_immutable() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let reply = send_json(
            &server,
            "PATCH",
            &group_path("default", "g"),
            &json!({"spec": {"groupId": "EA999"}}),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([cause(
                    "FieldValueInvalid",
                    "spec",
                    "Invalid value: \"object\": groupId cannot change or be removed once set"
                )])
            )
        );
    }

    #[tokio::test]
    async fn group_id_cannot_be_removed_but_may_be_set_later() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let removed = send_json(
            &server,
            "PATCH",
            &group_path("default", "g"),
            &json!({"spec": {"groupId": null}}),
        )
        .await;
        assert_eq!(removed.status, 422, "{:?}", removed.json());
        let created = create(
            &server,
            &with_spec("made", json!({"groupId": null, "creationPolicy": "Create"})),
        )
        .await;
        assert_eq!(created.status, 201, "{:?}", created.json());
        let adopted = send_json(
            &server,
            "PATCH",
            &group_path("default", "made"),
            &json!({"spec": {"groupId": "EA303LATER"}}),
        )
        .await;
        assert_eq!(adopted.status, 200, "{:?}", adopted.json());
    }

    #[tokio::test]
    async fn only_creation_may_leave_out_the_group_id() {
        let (server, _client) = start().await;
        let reply = create(&server, &with_spec("g", json!({"groupId": null}))).await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([cause(
                    "FieldValueInvalid",
                    "spec",
                    "Invalid value: \"object\": groupId is required unless creationPolicy is Create"
                )])
            )
        );
        let reply = create(
            &server,
            &with_spec(
                "g",
                json!({"groupId": null, "subject": null, "creationPolicy": "Create"}),
            ),
        )
        .await;
        assert_eq!(reply.status, 422, "{:?}", reply.json());
    }

    #[tokio::test]
    async fn transition_rules_do_not_run_on_create() {
        let (server, _client) = start().await;
        // `self == oldSelf` has no old value on create: the object is accepted.
        let reply = create(&server, &chat_group("g")).await;
        assert_eq!(reply.status, 201);
    }

    #[tokio::test]
    async fn a_resync_interval_under_a_minute_fails_its_rule() {
        let (server, _client) = start().await;
        let reply = create(&server, &with_spec("g", json!({"resyncInterval": "30s"}))).await;
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([cause(
                    "FieldValueInvalid",
                    "spec.resyncInterval",
                    "Invalid value: \"string\": resyncInterval must be at least 1m"
                )])
            )
        );
    }
}

mod defaults_and_pruning {
    use super::*;

    #[tokio::test]
    async fn defaults_are_filled_in_on_create() {
        let (server, _client) = start().await;
        let reply = create(&server, &chat_group("g")).await;
        let spec = reply.json()["spec"].clone();
        assert_eq!(
            spec,
            json!({"custSpaceId": "cams-8f2k1x", "businessNumber": "8613800001234", "groupId": "EA303XXXXX",
                "subject": "Support", "channelType": "WHATSAPP", "driftPolicy": "Enforce",
                "managementPolicy": "Manage", "region": "ap-southeast-1", "resyncInterval": "1h",
                "creationPolicy": "Adopt", "deletionPolicy": "Orphan", "inviteLink": "Unmanaged"})
        );
    }

    #[tokio::test]
    async fn unknown_fields_are_pruned_with_a_warning_each() {
        let (server, _client) = start().await;
        let mut body = with_spec("g", json!({"foo": 1, "bar": {"x": 1}}));
        body["metadata"]["bogus"] = json!(true);
        let reply = create(&server, &body).await;
        assert_eq!(reply.status, 201);
        assert_eq!(
            reply.all("warning"),
            [
                "299 - \"unknown field \\\"metadata.bogus\\\"\"",
                "299 - \"unknown field \\\"spec.bar\\\"\"",
                "299 - \"unknown field \\\"spec.foo\\\"\"",
            ]
        );
        let stored = server.get(&chatgroups(), "default", "g").unwrap();
        assert!(stored["spec"].get("foo").is_none() && stored["spec"].get("bar").is_none());
        assert!(stored["metadata"].get("bogus").is_none());
    }

    #[tokio::test]
    async fn strict_field_validation_refuses_unknown_fields_with_400() {
        let (server, _client) = start().await;
        let body = with_spec("g", json!({"foo": 1, "bar": 2}));
        let reply = send_json(
            &server,
            "POST",
            &format!("{}?fieldValidation=Strict", groups_path("default")),
            &body,
        )
        .await;
        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"ChatGroup in version \"v1alpha1\" cannot be handled as a ChatGroup: strict decoding error: unknown field \"spec.bar\", unknown field \"spec.foo\"",
                "reason":"BadRequest","code":400})
        );
        assert!(server.get(&chatgroups(), "default", "g").is_none());
    }

    #[tokio::test]
    async fn ignore_field_validation_prunes_silently() {
        let (server, _client) = start().await;
        let body = with_spec("g", json!({"foo": 1}));
        let reply = send_json(
            &server,
            "POST",
            &format!("{}?fieldValidation=Ignore", groups_path("default")),
            &body,
        )
        .await;
        assert_eq!(reply.status, 201);
        assert!(reply.all("warning").is_empty());
        assert!(reply.json()["spec"].get("foo").is_none());
    }
}

mod status_and_ratcheting {
    use super::*;

    /// The status schema is validated on its own (`ValidateStatusUpdate` with the status
    /// sub-schema's validator), so the OpenAPI texts name paths inside `status`.
    #[tokio::test]
    async fn status_writes_are_checked_against_the_status_schema() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let reply = send_json(
            &server,
            "PATCH",
            &format!("{}/status", group_path("default", "g")),
            &json!({"status": {"observedGeneration": "one", "conditions": [{"type": "Ready", "status": "True", "reason": "R", "lastTransitionTime": "yesterday"}]}}),
        )
        .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            invalid(
                "g",
                json!([
                    cause(
                        "FieldValueTypeInvalid",
                        "status.conditions[0].lastTransitionTime",
                        "Invalid value: \"yesterday\": conditions[0].lastTransitionTime in body must be of type date-time: \"yesterday\""
                    ),
                    cause(
                        "FieldValueTypeInvalid",
                        "status.observedGeneration",
                        "Invalid value: \"string\": observedGeneration in body must be of type integer: \"string\""
                    ),
                    not_checked(),
                ])
            )
        );
    }

    #[tokio::test]
    async fn a_status_write_is_accepted_while_an_unchanged_spec_stays_invalid() {
        let (server, _client) = start().await;
        // Stored under an older, laxer schema: the business number has a `+`, which the
        // current pattern refuses. The operator must still be able to report status.
        server.put_unchecked(
            &chatgroups(),
            with_spec("g", json!({"businessNumber": "+8613800001234"})),
        );
        let reply = send_json(
            &server,
            "PATCH",
            &format!("{}/status", group_path("default", "g")),
            &json!({"status": {"observedGeneration": 1}}),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["status"]["observedGeneration"], 1);
    }

    #[tokio::test]
    async fn an_update_leaving_an_invalid_field_unchanged_is_accepted_and_changing_it_is_not() {
        let (server, _client) = start().await;
        // Stored under an older, laxer schema (see above).
        server.put_unchecked(
            &chatgroups(),
            with_spec("g", json!({"businessNumber": "+8613800001234"})),
        );
        let path = group_path("default", "g");
        let untouched = send_json(
            &server,
            "PATCH",
            &path,
            &json!({"spec": {"subject": "Sales"}}),
        )
        .await;
        assert_eq!(untouched.status, 200, "{}", untouched.text());
        let changed = send_json(
            &server,
            "PATCH",
            &path,
            &json!({"spec": {"businessNumber": "+86"}}),
        )
        .await;
        assert_eq!(changed.status, 422);
        assert_eq!(
            changed.json()["details"]["causes"][0]["field"],
            "spec.businessNumber"
        );
    }

    #[tokio::test]
    async fn a_rule_an_unchanged_value_fails_is_a_warning_on_update() {
        let (server, _client) = start().await;
        // Stored before the rule existed: an interval under a minute.
        server.put_unchecked(
            &chatgroups(),
            with_spec("g", json!({"resyncInterval": "30s"})),
        );
        let reply = send_json(
            &server,
            "PATCH",
            &group_path("default", "g"),
            &json!({"spec": {"subject": "Sales"}}),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            reply.all("warning"),
            [
                "299 - \"spec.resyncInterval: Invalid value: \\\"string\\\": resyncInterval must be at least 1m\""
            ]
        );
    }
}
