//! Injected faults, per resource and verb: API Priority and Fairness 429s, 503s, 500s that
//! reach the caller, held requests, and how long a fault lasts (`times`, `for_duration`,
//! `rate`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube_test_server::{Fault, RequestKind, TestApiServer, Verb, kinds};
use serde_json::json;

const INTERNAL_ERROR: &str =
    "an error on the server (\"injected fault\") has prevented the request from succeeding";

async fn list_status(server: &TestApiServer) -> u16 {
    get(server, &groups_path("default")).await.status
}

mod answers {
    use super::*;

    #[tokio::test]
    async fn an_apf_rejection_is_a_plain_text_429_with_retry_after() {
        let (server, _client) = start().await;
        server.inject(
            Fault::on(&chatgroups())
                .verb(Verb::List)
                .too_many_requests(2)
                .times(1),
        );
        let reply = get(&server, &groups_path("default")).await;
        assert_eq!(reply.status, 429);
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("retry-after"), Some("2"));
        assert_eq!(reply.text(), "Too many requests, please try again later.\n");
        assert_eq!(list_status(&server).await, 200);
        let log = server.requests();
        assert!(log[0].injected_fault && log[0].status == 429);
        assert!(!log[1].injected_fault);
    }

    #[tokio::test]
    async fn kube_rs_waits_out_the_retry_after_of_a_429_and_retries() {
        let (server, client) = start().await;
        server.inject(
            Fault::on(&chatgroups())
                .verb(Verb::List)
                .too_many_requests(1)
                .times(1),
        );
        let started = Instant::now();
        groups(&client, "default")
            .list(&ListParams::default())
            .await
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [429, 200]);
    }

    #[tokio::test]
    async fn a_503_is_a_status_with_retry_after_when_given() {
        let (server, _client) = start().await;
        server.inject(Fault::on(&chatgroups()).unavailable(Some(5)).times(1));
        server.inject(Fault::on(&chatgroups()).unavailable(None).times(1));
        let expected = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503});
        let with = get(&server, &groups_path("default")).await;
        assert_eq!(with.status, 503);
        assert_eq!(with.header("retry-after"), Some("5"));
        assert_eq!(with.json(), expected);
        let without = get(&server, &groups_path("default")).await;
        assert_eq!(without.status, 503);
        assert_eq!(without.header("retry-after"), None);
        assert_eq!(without.json(), expected);
    }

    #[tokio::test]
    async fn kube_rs_retries_503s_by_itself() {
        let (server, client) = start().await;
        server.fail_next(2, 503);
        groups(&client, "default")
            .list(&ListParams::default())
            .await
            .unwrap();
        assert_eq!(server.count(|r| r.injected_fault && r.status == 503), 2);
        assert_eq!(server.count(|r| r.kind == RequestKind::List), 3);
    }

    #[tokio::test]
    async fn an_injected_500_reaches_the_kube_rs_caller() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        server.fail_next(2, 500);
        for _ in 0..2 {
            let status = api_error(api.list(&ListParams::default()).await);
            assert_eq!(
                (status.code, status.reason.as_str(), status.message.as_str()),
                (500, "InternalError", INTERNAL_ERROR)
            );
        }
        api.list(&ListParams::default()).await.unwrap();
        assert_eq!(server.count(|r| r.injected_fault), 2);
    }

    #[tokio::test]
    async fn other_codes_get_the_status_kube_apiserver_words_for_them() {
        let (server, _client) = start().await;
        server.inject(Fault::any().status(504).times(1));
        server.inject(Fault::any().status(429).times(1));
        let timeout = get(&server, &groups_path("default")).await;
        assert_eq!(
            timeout.json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"the server was unable to return a response in the time allotted, but may still be processing the request",
                "reason":"Timeout","code":504})
        );
        let throttled = get(&server, &groups_path("default")).await;
        assert_eq!(throttled.status, 429);
        assert_eq!(throttled.json()["reason"], "TooManyRequests");
    }

    #[tokio::test]
    async fn a_failed_write_changes_nothing() {
        let (server, client) = start().await;
        server.inject(
            Fault::on(&chatgroups())
                .verb(Verb::Create)
                .status(500)
                .times(1),
        );
        let before = server.resource_version();
        let status = api_error(
            groups(&client, "default")
                .create(&PostParams::default(), &dynamic(chat_group("g")))
                .await,
        );
        assert_eq!(status.code, 500);
        assert!(server.get(&chatgroups(), "default", "g").is_none());
        assert_eq!(server.resource_version(), before);
    }
}

mod selection {
    use super::*;

    #[tokio::test]
    async fn a_fault_selects_by_resource_verb_subresource_and_namespace() {
        let (server, client) = builder().namespace("x").start().await;
        for ns in ["x", "default"] {
            let mut object = chat_group("g");
            object["metadata"]["namespace"] = json!(ns);
            server.put(&chatgroups(), object);
        }
        server.inject(
            Fault::on(&chatgroups())
                .verb(Verb::Patch)
                .subresource("status")
                .namespace("x")
                .status(500),
        );
        let status_patch = Patch::Merge(json!({"status": {"observedGeneration": 1}}));
        let main_patch = Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}}));
        let x = groups(&client, "x");
        assert_eq!(
            api_error(
                x.patch_status("g", &PatchParams::default(), &status_patch)
                    .await
            )
            .code,
            500
        );
        x.patch("g", &PatchParams::default(), &main_patch)
            .await
            .unwrap();
        x.list(&ListParams::default()).await.unwrap();
        groups(&client, "default")
            .patch_status("g", &PatchParams::default(), &status_patch)
            .await
            .unwrap();
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client.clone(), "x");
        secrets.list(&ListParams::default()).await.unwrap();
        assert_eq!(server.count(|r| r.injected_fault), 1);
    }

    #[tokio::test]
    async fn main_resource_leaves_the_subresources_alone() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        server.inject(
            Fault::on(&chatgroups())
                .verb(Verb::Patch)
                .main_resource()
                .status(500),
        );
        let api = groups(&client, "default");
        let patch = Patch::Merge(json!({"status": {"observedGeneration": 1}}));
        api.patch_status("g", &PatchParams::default(), &patch)
            .await
            .unwrap();
        assert_eq!(
            api_error(api.patch("g", &PatchParams::default(), &patch).await).code,
            500
        );
    }

    #[tokio::test]
    async fn several_verbs_may_be_selected() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        server.inject(
            Fault::on(&chatgroups())
                .verb(Verb::Get)
                .verb(Verb::Delete)
                .status(500),
        );
        assert_eq!(get(&server, &group_path("default", "g")).await.status, 500);
        assert_eq!(
            send(&server, "DELETE", &group_path("default", "g"), &[], b"")
                .await
                .status,
            500
        );
        assert_eq!(list_status(&server).await, 200);
    }

    #[tokio::test]
    async fn a_predicate_selects_the_requests_it_accepts() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        server.fail_next_matching(1, 500, |r| r.is_status_patch());
        let api = groups(&client, "default");
        api.get("g").await.unwrap();
        let patch = Patch::Merge(json!({"status": {"observedGeneration": 1}}));
        assert_eq!(
            api_error(api.patch_status("g", &PatchParams::default(), &patch).await).code,
            500
        );
        api.patch_status("g", &PatchParams::default(), &patch)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_first_matching_failure_applies_and_a_hold_combines_with_it() {
        let (server, _client) = start().await;
        server.inject(Fault::any().hold(Duration::from_millis(200)).times(1));
        server.inject(Fault::any().status(500).times(1));
        server.inject(Fault::any().status(504).times(2));
        let started = Instant::now();
        let first = get(&server, &groups_path("default")).await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(
            first.status, 500,
            "held, then failed by the first failure rule"
        );
        assert_eq!(
            list_status(&server).await,
            504,
            "the used-up rule gives way"
        );
        assert_eq!(list_status(&server).await, 504);
        assert_eq!(list_status(&server).await, 200);
    }

    #[tokio::test]
    async fn clear_faults_removes_every_rule() {
        let (server, _client) = start().await;
        server.fail_for(WAIT, 500);
        assert_eq!(list_status(&server).await, 500);
        server.clear_faults();
        assert_eq!(list_status(&server).await, 200);
    }
}

mod lifetime {
    use super::*;

    #[tokio::test]
    async fn times_limits_a_fault_to_the_next_requests_it_selects() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        server.inject(
            Fault::on(&chatgroups())
                .verb(Verb::Get)
                .status(500)
                .times(2),
        );
        assert_eq!(list_status(&server).await, 200, "not selected, not counted");
        assert_eq!(get(&server, &group_path("default", "g")).await.status, 500);
        assert_eq!(get(&server, &group_path("default", "g")).await.status, 500);
        assert_eq!(get(&server, &group_path("default", "g")).await.status, 200);
    }

    #[tokio::test]
    async fn a_fault_for_a_duration_ends_by_itself() {
        let (server, _client) = start().await;
        server.fail_for(Duration::from_millis(300), 500);
        assert_eq!(list_status(&server).await, 500);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(list_status(&server).await, 200);
    }

    #[tokio::test]
    async fn a_rate_applies_a_fault_to_a_share_of_the_requests() {
        let (server, _client) = start().await;
        server.inject(Fault::on(&kinds::SECRETS).status(500).rate(0.5));
        let mut failed = 0;
        for _ in 0..200 {
            if get(&server, "/api/v1/namespaces/default/secrets")
                .await
                .status
                == 500
            {
                failed += 1;
            }
        }
        assert!(
            (50..=150).contains(&failed),
            "about half of 200 failed, not {failed}"
        );
    }

    #[tokio::test]
    async fn a_held_request_trips_a_client_timeout_and_is_served_afterwards() {
        let (server, _client) = start().await;
        server.inject(
            Fault::on(&chatgroups())
                .verb(Verb::Create)
                .hold(Duration::from_millis(600))
                .times(1),
        );
        let mut config = server.config();
        config.read_timeout = Some(Duration::from_millis(200));
        let impatient = kube::Client::try_from(config).unwrap();
        let result = groups(&impatient, "default")
            .create(&PostParams::default(), &dynamic(chat_group("g")))
            .await;
        assert!(
            result.is_err(),
            "a 600 ms answer trips a 200 ms read timeout"
        );
        assert!(
            server.get(&chatgroups(), "default", "g").is_none(),
            "still held"
        );
        assert!(
            server
                .wait_for(|s| s.get(&chatgroups(), "default", "g").is_some(), WAIT)
                .await,
            "the held create is served once the hold ends"
        );
    }

    #[tokio::test]
    async fn slow_for_holds_every_request_for_a_while() {
        let (server, _client) = start().await;
        server.slow_for(Duration::from_millis(500), Duration::from_millis(300));
        let started = Instant::now();
        assert_eq!(list_status(&server).await, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        assert_eq!(list_status(&server).await, 200);
        assert!(started.elapsed() < Duration::from_millis(300));
    }
}
