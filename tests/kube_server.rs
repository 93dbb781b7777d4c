//! The Kubernetes API test server (`tests/support/kube_server`), driven by kube-rs the way
//! the operator drives a real API server: typed `Api`s, `watcher`, `reflector`,
//! `Controller` and the event `Recorder`.

mod support;
use support::chatgroups;

use std::time::Duration;

use cams_operator::crd::{ChatGroup, ChatGroupSpec, ChatGroupStatus, FIELD_MANAGER};
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use kube_test_server::{PatchType, RequestKind, TestApiServer, kinds};
use serde_json::{Value, json};

/// Upper bound for anything the tests wait for; never reached when the server works.
const WAIT: Duration = Duration::from_secs(20);

fn chat_group(name: &str, subject: &str) -> ChatGroup {
    let spec: ChatGroupSpec = serde_json::from_value(json!({
        "custSpaceId": "cams-8f2k1x",
        "businessNumber": "8613800001234",
        "groupId": "EA303XXXXX",
        "subject": subject,
    }))
    .unwrap();
    ChatGroup::new(name, spec)
}

fn with_labels(mut group: ChatGroup, labels: &[(&str, &str)]) -> ChatGroup {
    group.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    group
}

fn groups(client: &Client, namespace: &str) -> Api<ChatGroup> {
    Api::namespaced(client.clone(), namespace)
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv_of(object: &impl Resource) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

fn names<K: Resource>(objects: &[K]) -> Vec<String> {
    let mut names: Vec<String> = objects
        .iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect();
    names.sort();
    names
}

/// The next item of a stream that must not end.
async fn next_item<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a stream item in time")
        .expect("the stream is open")
}

/// The next watch event that is not a bookmark.
async fn next_change<K>(
    stream: &mut (impl Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    loop {
        let event = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a watch event in time")
            .expect("the watch stream is open")
            .expect("a well-formed watch event");
        if !matches!(event, WatchEvent::Bookmark(_)) {
            return event;
        }
    }
}

fn status_apply(observed_generation: i64, extra: Value) -> Patch<Value> {
    let mut status = json!({"observedGeneration": observed_generation});
    if let (Some(status), Some(extra)) = (status.as_object_mut(), extra.as_object()) {
        status.extend(extra.clone());
    }
    Patch::Apply(json!({
        "apiVersion": "cams.chatapp.io/v1alpha1",
        "kind": "ChatGroup",
        "status": status,
    }))
}

mod basics {
    use super::*;

    #[tokio::test]
    async fn version_is_served_and_unknown_paths_are_404_status_objects() {
        let (_server, client) = support::start_api_server().await;
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.major, "1");

        let request = http::Request::get("/apis/example.com/v1/widgets")
            .body(Vec::new())
            .unwrap();
        let status = api_error(client.request::<Value>(request).await);
        assert_eq!(status.code, 404);
        assert_eq!(status.reason, "NotFound");
    }

    #[tokio::test]
    async fn create_sets_server_fields_and_get_returns_the_object() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "support");
        let mut group = chat_group("team", "Support");
        group.status = Some(ChatGroupStatus {
            observed_generation: Some(7),
            ..Default::default()
        });
        let created = api.create(&PostParams::default(), &group).await.unwrap();

        assert_eq!(created.namespace().as_deref(), Some("support"));
        assert!(created.uid().is_some_and(|u| u.len() == 36));
        assert!(created.creation_timestamp().is_some());
        assert_eq!(created.meta().generation, Some(1));
        assert_eq!(rv_of(&created), server.resource_version());
        assert_eq!(created.status, None, "status is dropped on create");

        let fetched = api.get("team").await.unwrap();
        assert_eq!(fetched, created);
        assert_eq!(
            server.get_as::<ChatGroup>("support", "team").unwrap(),
            created
        );
    }

    #[tokio::test]
    async fn create_of_an_existing_name_is_409_already_exists_and_missing_get_is_404() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("a", "A"))
            .await
            .unwrap();

        let status = api_error(
            api.create(&PostParams::default(), &chat_group("a", "B"))
                .await,
        );
        assert_eq!(
            (status.code, status.reason.as_str()),
            (409, "AlreadyExists")
        );

        let status = api_error(api.get("missing").await);
        assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
        assert!(api.get_opt("missing").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn generate_name_gets_a_random_suffix() {
        let (_server, client) = support::start_api_server().await;
        let secrets: Api<Secret> = Api::namespaced(client, "default");
        let secret = Secret {
            metadata: ObjectMeta {
                generate_name: Some("creds-".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let a = secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let b = secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        assert!(a.name_any().starts_with("creds-") && a.name_any().len() == "creds-".len() + 5);
        assert_ne!(a.name_any(), b.name_any());
    }

    #[tokio::test]
    async fn dry_run_stores_nothing() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let rv = server.resource_version();
        let params = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let created = api
            .create(&params, &chat_group("dry", "Dry"))
            .await
            .unwrap();
        assert_eq!(created.name_any(), "dry");
        assert!(api.get_opt("dry").await.unwrap().is_none());
        assert_eq!(server.resource_version(), rv);
    }

    #[tokio::test]
    async fn the_request_log_classifies_requests() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("a", "A"))
            .await
            .unwrap();
        api.patch_status(
            "a",
            &PatchParams::apply(FIELD_MANAGER),
            &status_apply(1, json!({})),
        )
        .await
        .unwrap();
        api.list(&ListParams::default()).await.unwrap();

        let log = server.requests();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0].kind, RequestKind::Create);
        assert_eq!(log[0].status, 201);
        assert!(log[0].is_for(&chatgroups()));
        assert_eq!(
            log[1].kind,
            RequestKind::Patch {
                patch_type: PatchType::Apply,
                subresource: Some("status".into())
            }
        );
        assert_eq!(log[1].field_manager.as_deref(), Some(FIELD_MANAGER));
        assert_eq!(
            log[1].content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(log[1].name.as_deref(), Some("a"));
        assert_eq!(
            log[1].body.as_ref().unwrap()["status"]["observedGeneration"],
            1
        );
        assert!(log[1].is_status_patch() && log[1].is_write());
        assert_eq!(log[2].kind, RequestKind::List);
        assert_eq!(server.count(|r| r.is_write()), 2);

        server.clear_log();
        assert!(server.requests().is_empty());
    }
}

mod helpers {
    use super::*;

    #[tokio::test]
    async fn put_stores_objects_as_given_and_watchers_see_them() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let mut group = chat_group("seeded", "one");
        group.metadata.namespace = Some("default".into());
        group.status = Some(ChatGroupStatus {
            observed_generation: Some(1),
            ..Default::default()
        });
        let stored = server.put_as(&group);
        assert_eq!(stored.status, group.status, "put keeps the status");
        assert_eq!(stored.meta().generation, Some(1));
        assert_eq!(api.get("seeded").await.unwrap(), stored);

        group.spec.subject = Some("two".into());
        let updated = server.put_as(&group);
        assert_eq!(updated.meta().generation, Some(2));
        assert_eq!(updated.uid(), stored.uid());
        assert!(rv_of(&updated) > rv_of(&stored));
        assert_eq!(server.list(&chatgroups(), Some("default")).len(), 1);
        assert!(server.list(&chatgroups(), Some("other")).is_empty());
        assert_eq!(server.list_as::<ChatGroup>(None).len(), 1);
    }

    #[tokio::test]
    async fn create_and_delete_helpers_follow_the_api_rules() {
        let (server, _client) = support::start_api_server().await;
        let object = json!({
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
            "spec": {"custSpaceId": "c", "businessNumber": "1", "groupId": "g"},
            "status": {"observedGeneration": 5},
        });
        let created = server
            .create(&chatgroups(), "default", object.clone())
            .unwrap();
        assert!(created.get("status").is_none());
        let again = server.create(&chatgroups(), "default", object).unwrap_err();
        assert_eq!(again.code, 409);
        let marked = server.delete(&chatgroups(), "default", "held").unwrap();
        assert!(marked.pointer("/metadata/deletionTimestamp").is_some());
        assert!(server.get(&chatgroups(), "default", "held").is_some());
    }

    #[tokio::test]
    async fn wait_for_wakes_on_changes_and_gives_up_at_the_timeout() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let writer = tokio::spawn(async move {
            api.create(&PostParams::default(), &chat_group("later", "x"))
                .await
                .unwrap();
        });
        let seen = server
            .wait_for_value(|s| s.get(&chatgroups(), "default", "later"), WAIT)
            .await;
        assert!(seen.is_some());
        writer.await.unwrap();
        assert!(
            !server
                .wait_for(
                    |s| s.get(&chatgroups(), "default", "never").is_some(),
                    Duration::from_millis(50)
                )
                .await
        );
    }

    #[tokio::test]
    async fn the_kubeconfig_reaches_the_server() {
        let (server, _client) = support::start_api_server().await;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = Client::try_from(config).unwrap();
        let api: Api<ChatGroup> = Api::default_namespaced(client);
        api.create(&PostParams::default(), &chat_group("via-kubeconfig", "x"))
            .await
            .unwrap();
        assert!(
            server
                .get(&chatgroups(), "default", "via-kubeconfig")
                .is_some()
        );
    }

    #[test]
    fn the_handle_can_be_shared_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TestApiServer>();
    }

    #[tokio::test]
    async fn shutdown_stops_serving() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.list(&ListParams::default()).await.unwrap();
        server.shutdown();
        let fresh = groups(&client, "default");
        assert!(fresh.list(&ListParams::default()).await.is_err());
    }
}

mod lists {
    use super::*;

    #[tokio::test]
    async fn lists_page_through_a_consistent_snapshot_with_continue_tokens() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "a");
        for i in 0..7 {
            api.create(&PostParams::default(), &chat_group(&format!("g{i}"), "x"))
                .await
                .unwrap();
        }
        groups(&client, "b")
            .create(&PostParams::default(), &chat_group("other", "x"))
            .await
            .unwrap();

        let first = api.list(&ListParams::default().limit(3)).await.unwrap();
        assert_eq!(first.items.len(), 3);
        let token = first.metadata.continue_.clone().unwrap();
        assert_eq!(first.metadata.remaining_item_count, Some(4));
        let list_rv = first.metadata.resource_version.clone().unwrap();
        assert_eq!(list_rv, server.resource_version().to_string());

        // A change between pages does not leak into the snapshot.
        api.create(&PostParams::default(), &chat_group("late", "x"))
            .await
            .unwrap();

        let mut items = first.items;
        let mut token = Some(token);
        while let Some(t) = token {
            let page = api
                .list(&ListParams::default().limit(3).continue_token(&t))
                .await
                .unwrap();
            assert_eq!(
                page.metadata.resource_version.as_deref(),
                Some(list_rv.as_str())
            );
            items.extend(page.items);
            token = page.metadata.continue_.filter(|t| !t.is_empty());
        }
        assert_eq!(
            names(&items),
            (0..7).map(|i| format!("g{i}")).collect::<Vec<_>>()
        );

        let all: Api<ChatGroup> = Api::all(client.clone());
        assert_eq!(
            all.list(&ListParams::default()).await.unwrap().items.len(),
            9
        );
    }

    #[tokio::test]
    async fn label_selectors_filter_lists() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        for (name, labels) in [
            ("a", vec![("team", "support"), ("tier", "gold")]),
            ("b", vec![("team", "sales")]),
            ("c", vec![("team", "ops"), ("tier", "silver")]),
            ("d", vec![]),
        ] {
            api.create(
                &PostParams::default(),
                &with_labels(chat_group(name, "x"), &labels),
            )
            .await
            .unwrap();
        }
        let select = |selector: &'static str| {
            let api = api.clone();
            async move {
                names(
                    &api.list(&ListParams::default().labels(selector))
                        .await
                        .unwrap()
                        .items,
                )
            }
        };
        assert_eq!(select("team=support").await, ["a"]);
        assert_eq!(select("team==sales").await, ["b"]);
        assert_eq!(select("team!=support").await, ["b", "c", "d"]);
        assert_eq!(select("team in (support, ops)").await, ["a", "c"]);
        assert_eq!(select("team notin (support,ops)").await, ["b", "d"]);
        assert_eq!(select("tier").await, ["a", "c"]);
        assert_eq!(select("!tier").await, ["b", "d"]);
        assert_eq!(select("team in (support,ops),tier=silver").await, ["c"]);

        let status = api_error(
            api.list(&ListParams::default().labels("team in support"))
                .await,
        );
        assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    }

    #[tokio::test]
    async fn field_selectors_filter_by_name_and_namespace() {
        let (_server, client) = support::start_api_server().await;
        for (ns, name) in [("x", "one"), ("x", "two"), ("y", "one")] {
            groups(&client, ns)
                .create(&PostParams::default(), &chat_group(name, "s"))
                .await
                .unwrap();
        }
        let all: Api<ChatGroup> = Api::all(client.clone());
        let by_name = all
            .list(&ListParams::default().fields("metadata.name=one"))
            .await
            .unwrap();
        assert_eq!(by_name.items.len(), 2);
        let by_ns = all
            .list(&ListParams::default().fields("metadata.namespace=x,metadata.name!=one"))
            .await
            .unwrap();
        assert_eq!(names(&by_ns.items), ["two"]);

        let status = api_error(
            all.list(&ListParams::default().fields("spec.groupId=x"))
                .await,
        );
        assert_eq!(status.code, 400);
    }
}

mod watches {
    use super::*;

    #[tokio::test]
    async fn a_watch_streams_added_modified_and_deleted_after_its_version() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("before", "x"))
            .await
            .unwrap();
        let rv = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let mut stream = api
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();

        api.create(&PostParams::default(), &chat_group("g", "one"))
            .await
            .unwrap();
        api.patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"subject": "two"}})),
        )
        .await
        .unwrap();
        api.delete("g", &DeleteParams::default()).await.unwrap();

        let WatchEvent::Added(added) = next_change(&mut stream).await else {
            panic!("expected ADDED");
        };
        assert_eq!(added.name_any(), "g");
        let WatchEvent::Modified(modified) = next_change(&mut stream).await else {
            panic!("expected MODIFIED");
        };
        assert_eq!(modified.spec.subject.as_deref(), Some("two"));
        let WatchEvent::Deleted(deleted) = next_change(&mut stream).await else {
            panic!("expected DELETED");
        };
        assert!(rv_of(&added) < rv_of(&modified) && rv_of(&modified) < rv_of(&deleted));
        assert!(rv_of(&added) > rv.parse().unwrap());
    }

    #[tokio::test]
    async fn watches_filter_by_namespace_and_label_selector_transitions() {
        let (_server, client) = support::start_api_server().await;
        let ns1 = groups(&client, "ns1");
        let ns2 = groups(&client, "ns2");
        let params = WatchParams::default().labels("team=a");
        let mut stream = ns1.watch(&params, "1").await.unwrap().boxed();

        ns2.create(
            &PostParams::default(),
            &with_labels(chat_group("elsewhere", "x"), &[("team", "a")]),
        )
        .await
        .unwrap();
        ns1.create(&PostParams::default(), &chat_group("plain", "x"))
            .await
            .unwrap();
        let label = |value: Value| Patch::Merge(json!({"metadata": {"labels": {"team": value}}}));
        ns1.patch("plain", &PatchParams::default(), &label(json!("a")))
            .await
            .unwrap();
        ns1.patch("plain", &PatchParams::default(), &label(json!("b")))
            .await
            .unwrap();

        let WatchEvent::Added(entered) = next_change(&mut stream).await else {
            panic!("expected ADDED when the object starts matching");
        };
        assert_eq!(entered.name_any(), "plain");
        let WatchEvent::Deleted(left) = next_change(&mut stream).await else {
            panic!("expected DELETED when the object stops matching");
        };
        assert_eq!(left.name_any(), "plain");
        assert!(rv_of(&left) > rv_of(&entered));
    }

    #[tokio::test]
    async fn all_namespace_watches_see_every_namespace() {
        let (_server, client) = support::start_api_server().await;
        let all: Api<ChatGroup> = Api::all(client.clone());
        let mut stream = all
            .watch(&WatchParams::default(), "1")
            .await
            .unwrap()
            .boxed();
        groups(&client, "one")
            .create(&PostParams::default(), &chat_group("a", "x"))
            .await
            .unwrap();
        groups(&client, "two")
            .create(&PostParams::default(), &chat_group("b", "x"))
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let WatchEvent::Added(g) = next_change(&mut stream).await else {
                panic!("expected ADDED");
            };
            seen.push(format!("{}/{}", g.namespace().unwrap(), g.name_any()));
        }
        assert_eq!(seen, ["one/a", "two/b"]);
    }

    #[tokio::test]
    async fn bookmarks_carry_the_current_version() {
        let (server, client) = support::api_server()
            .bookmark_interval(Duration::from_millis(50))
            .start()
            .await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("g", "x"))
            .await
            .unwrap();
        let mut stream = api
            .watch(&WatchParams::default(), "1")
            .await
            .unwrap()
            .boxed();
        let bookmark = loop {
            let event = tokio::time::timeout(WAIT, stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let WatchEvent::Bookmark(b) = event {
                break b;
            }
        };
        assert_eq!(
            bookmark.metadata.resource_version,
            server.resource_version().to_string()
        );
        assert_eq!(bookmark.types.kind, "ChatGroup");
    }

    #[tokio::test]
    async fn timeout_seconds_ends_the_stream() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let params = WatchParams::default().timeout(1).disable_bookmarks();
        let stream = api.watch(&params, "1").await.unwrap();
        let events: Vec<_> = tokio::time::timeout(WAIT, stream.collect::<Vec<_>>())
            .await
            .expect("the stream ends");
        assert!(events.is_empty());
    }

    #[tokio::test]
    async fn a_version_older_than_the_history_gets_410_expired() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let first = api
            .create(&PostParams::default(), &chat_group("g", "x"))
            .await
            .unwrap();
        server.compact();
        let mut stream = api
            .watch(&WatchParams::default(), &rv_of(&first).to_string())
            .await
            .unwrap()
            .boxed();
        let WatchEvent::Error(status) = next_change(&mut stream).await else {
            panic!("expected an ERROR event");
        };
        assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));

        // A fresh list gives a version that can be watched again.
        let rv = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        let mut stream = api
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();
        api.delete("g", &DeleteParams::default()).await.unwrap();
        assert!(matches!(
            next_change(&mut stream).await,
            WatchEvent::Deleted(_)
        ));
    }

    #[tokio::test]
    async fn a_bounded_history_expires_old_versions_only() {
        let (_server, client) = support::api_server().history_limit(2).start().await;
        let api = groups(&client, "default");
        let mut versions = Vec::new();
        for i in 0..4 {
            let g = api
                .create(&PostParams::default(), &chat_group(&format!("g{i}"), "x"))
                .await
                .unwrap();
            versions.push(rv_of(&g).to_string());
        }
        let mut old = api
            .watch(&WatchParams::default(), &versions[0])
            .await
            .unwrap()
            .boxed();
        assert!(matches!(next_change(&mut old).await, WatchEvent::Error(s) if s.code == 410));

        let mut recent = api
            .watch(&WatchParams::default(), &versions[2])
            .await
            .unwrap()
            .boxed();
        let WatchEvent::Added(g) = next_change(&mut recent).await else {
            panic!("expected the retained ADDED event");
        };
        assert_eq!(g.name_any(), "g3");
    }

    #[tokio::test]
    async fn version_zero_and_send_initial_events_start_with_the_current_objects() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("existing", "x"))
            .await
            .unwrap();
        let mut from_zero = api
            .watch(&WatchParams::default(), "0")
            .await
            .unwrap()
            .boxed();
        assert!(
            matches!(next_change(&mut from_zero).await, WatchEvent::Added(g) if g.name_any() == "existing")
        );

        let events: Vec<_> = watcher(api.clone(), watcher::Config::default().streaming_lists())
            .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
            .try_collect()
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, watcher::Event::InitApply(g) if g.name_any() == "existing"))
        );

        let params = WatchParams::streaming_lists();
        let mut streaming = api.watch(&params, "").await.unwrap().boxed();
        assert!(
            matches!(next_change(&mut streaming).await, WatchEvent::Added(g) if g.name_any() == "existing")
        );
        let end = tokio::time::timeout(WAIT, streaming.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let WatchEvent::Bookmark(end) = end else {
            panic!("expected the initial-events-end bookmark");
        };
        assert_eq!(
            end.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        );
    }
}

mod writes {
    use super::*;

    #[tokio::test]
    async fn replace_with_a_stale_resource_version_is_409_conflict() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let created = api
            .create(&PostParams::default(), &chat_group("g", "one"))
            .await
            .unwrap();

        let mut changed = created.clone();
        changed.spec.subject = Some("two".into());
        let replaced = api
            .replace("g", &PostParams::default(), &changed)
            .await
            .unwrap();
        assert!(rv_of(&replaced) > rv_of(&created));
        assert_eq!(replaced.meta().generation, Some(2));

        let mut stale = created.clone();
        stale.spec.subject = Some("three".into());
        let status = api_error(api.replace("g", &PostParams::default(), &stale).await);
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));

        // Custom resources require the version on update.
        let mut unversioned = replaced.clone();
        unversioned.metadata.resource_version = None;
        let status = api_error(api.replace("g", &PostParams::default(), &unversioned).await);
        assert_eq!(status.code, 422);
        assert_eq!(
            api.get("g").await.unwrap().spec.subject.as_deref(),
            Some("two")
        );
    }

    #[tokio::test]
    async fn merge_patches_bump_generation_only_for_spec_changes() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let created = api
            .create(&PostParams::default(), &chat_group("g", "one"))
            .await
            .unwrap();

        let labelled = api
            .patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
            )
            .await
            .unwrap();
        assert_eq!(labelled.meta().generation, Some(1));
        assert!(rv_of(&labelled) > rv_of(&created));

        let respecced = api
            .patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"subject": "two", "description": "d"}})),
            )
            .await
            .unwrap();
        assert_eq!(respecced.meta().generation, Some(2));
        assert_eq!(respecced.spec.subject.as_deref(), Some("two"));
        assert_eq!(respecced.labels().get("a").map(String::as_str), Some("b"));

        let rv = server.resource_version();
        let unchanged = api
            .patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"subject": "two"}})),
            )
            .await
            .unwrap();
        assert_eq!(rv_of(&unchanged), rv_of(&respecced));
        assert_eq!(
            server.resource_version(),
            rv,
            "a no-op patch does not bump the version"
        );

        // A stale version in a patch is a precondition.
        let stale = Patch::Merge(json!({
            "metadata": {"resourceVersion": rv_of(&created).to_string()},
            "spec": {"subject": "three"},
        }));
        let status = api_error(api.patch("g", &PatchParams::default(), &stale).await);
        assert_eq!(status.code, 409);
    }

    #[tokio::test]
    async fn strategic_merge_is_refused_for_custom_resources_and_json_patch_is_not_emulated() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("g", "one"))
            .await
            .unwrap();
        let status = api_error(
            api.patch(
                "g",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"subject": "two"}})),
            )
            .await,
        );
        assert_eq!(status.code, 415);

        let request =
            http::Request::patch("/apis/cams.chatapp.io/v1alpha1/namespaces/default/chatgroups/g")
                .header("content-type", "application/json-patch+json")
                .body(br#"[{"op":"replace","path":"/spec/subject","value":"x"}]"#.to_vec())
                .unwrap();
        assert_eq!(api_error(client.request::<Value>(request).await).code, 415);
    }

    #[tokio::test]
    async fn apply_creates_missing_objects_and_requires_a_field_manager() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let group = chat_group("applied", "one");
        let created = api
            .patch(
                "applied",
                &PatchParams::apply("tester"),
                &Patch::Apply(&group),
            )
            .await
            .unwrap();
        assert_eq!(created.meta().generation, Some(1));
        assert_eq!(
            server.requests().last().map(|r| r.status),
            Some(201),
            "apply of a missing object creates it"
        );
        let managers = created.meta().managed_fields.clone().unwrap();
        assert_eq!(managers.len(), 1);
        assert_eq!(managers[0].manager.as_deref(), Some("tester"));
        assert_eq!(managers[0].operation.as_deref(), Some("Apply"));

        let yaml = "apiVersion: cams.chatapp.io/v1alpha1\nkind: ChatGroup\nmetadata:\n  name: applied\n\
                    spec:\n  custSpaceId: cams-8f2k1x\n  businessNumber: \"8613800001234\"\n  \
                    groupId: EA303XXXXX\n  subject: two\n";
        let request = http::Request::patch(
            "/apis/cams.chatapp.io/v1alpha1/namespaces/default/chatgroups/applied",
        )
        .header("content-type", "application/apply-patch+yaml")
        .body(yaml.as_bytes().to_vec())
        .unwrap();
        let status = api_error(client.request::<Value>(request).await);
        assert_eq!(status.code, 400, "fieldManager is required for apply");

        let request = http::Request::patch(
            "/apis/cams.chatapp.io/v1alpha1/namespaces/default/chatgroups/applied?fieldManager=tester",
        )
        .header("content-type", "application/apply-patch+yaml")
        .body(yaml.as_bytes().to_vec())
        .unwrap();
        let applied: ChatGroup = client.request(request).await.unwrap();
        assert_eq!(applied.spec.subject.as_deref(), Some("two"));
        assert_eq!(applied.meta().generation, Some(2));
    }

    #[tokio::test]
    async fn apply_conflicts_with_another_manager_unless_forced() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let patch = |subject: &str| {
            Patch::Apply(json!({
                "apiVersion": "cams.chatapp.io/v1alpha1",
                "kind": "ChatGroup",
                "spec": {"subject": subject},
            }))
        };
        api.patch(
            "g",
            &PatchParams::apply("alice"),
            &Patch::Apply(chat_group("g", "two")),
        )
        .await
        .unwrap();

        // Same value: shared ownership, no conflict.
        api.patch("g", &PatchParams::apply("bob"), &patch("two"))
            .await
            .unwrap();
        let status = api_error(
            api.patch("g", &PatchParams::apply("carol"), &patch("three"))
                .await,
        );
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));

        let forced = api
            .patch("g", &PatchParams::apply("carol").force(), &patch("three"))
            .await
            .unwrap();
        assert_eq!(forced.spec.subject.as_deref(), Some("three"));
        // alice and bob lost the field; carol owns it now.
        let owners: Vec<String> = forced
            .meta()
            .managed_fields
            .iter()
            .flatten()
            .filter(|m| {
                m.fields_v1
                    .as_ref()
                    .is_some_and(|f| f.0.pointer("/f:spec/f:subject").is_some())
            })
            .filter_map(|m| m.manager.clone())
            .collect();
        assert_eq!(owners, ["carol"]);
    }

    #[tokio::test]
    async fn apply_removes_fields_its_manager_no_longer_applies() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let apply = |spec: Value| {
            Patch::Apply(json!({
                "apiVersion": "cams.chatapp.io/v1alpha1",
                "kind": "ChatGroup",
                "spec": spec,
            }))
        };
        let base = json!({
            "custSpaceId": "cams-8f2k1x", "businessNumber": "8613800001234", "groupId": "EA303XXXXX",
        });
        let mut full = base.clone();
        full["description"] = json!("desc");
        full["subject"] = json!("s");
        api.patch("g", &PatchParams::apply("owner"), &apply(full))
            .await
            .unwrap();
        // Another manager takes the subject with a merge patch.
        api.patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"subject": "mine"}})),
        )
        .await
        .unwrap();

        let trimmed = api
            .patch("g", &PatchParams::apply("owner").force(), &apply(base))
            .await
            .unwrap();
        assert_eq!(
            trimmed.spec.description, None,
            "an unapplied field is removed"
        );
        assert_eq!(
            trimmed.spec.subject.as_deref(),
            Some("mine"),
            "a field another manager changed since stays"
        );
    }
}

mod status {
    use super::*;

    #[tokio::test]
    async fn status_apply_is_isolated_from_spec_and_does_not_move_generation() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let created = api
            .create(&PostParams::default(), &chat_group("g", "one"))
            .await
            .unwrap();
        let params = PatchParams::apply(FIELD_MANAGER);

        // A status apply that also carries a spec change: only status lands.
        let mut patch = json!({
            "apiVersion": "cams.chatapp.io/v1alpha1",
            "kind": "ChatGroup",
            "spec": {"subject": "ignored"},
            "status": {"observedGeneration": 1, "appliedHash": "sha256:aa", "retry": {"attempts": 2}},
        });
        let applied = api
            .patch_status("g", &params, &Patch::Apply(&patch))
            .await
            .unwrap();
        let status = applied.status.clone().unwrap();
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(status.retry.map(|r| r.attempts), Some(2));
        assert_eq!(applied.spec.subject.as_deref(), Some("one"));
        assert_eq!(applied.meta().generation, Some(1));
        assert!(rv_of(&applied) > rv_of(&created));
        let entry = applied
            .meta()
            .managed_fields
            .iter()
            .flatten()
            .find(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
            .unwrap();
        assert_eq!(entry.operation.as_deref(), Some("Apply"));
        assert_eq!(entry.subresource.as_deref(), Some("status"));

        // The same apply again changes nothing: no new version, no watch event.
        let rv = server.resource_version();
        let mut stream = api
            .watch(
                &WatchParams::default().disable_bookmarks().timeout(1),
                &rv.to_string(),
            )
            .await
            .unwrap()
            .boxed();
        let again = api
            .patch_status("g", &params, &Patch::Apply(&patch))
            .await
            .unwrap();
        assert_eq!(rv_of(&again), rv_of(&applied));
        assert_eq!(server.resource_version(), rv);
        let events: Vec<_> = tokio::time::timeout(WAIT, (&mut stream).collect::<Vec<_>>())
            .await
            .unwrap();
        assert!(
            events.is_empty(),
            "a no-op apply emits no watch event: {events:?}"
        );

        // Omitting a field this manager applied before removes it.
        patch["status"] = json!({"observedGeneration": 1, "appliedHash": "sha256:aa"});
        let trimmed = api
            .patch_status("g", &params, &Patch::Apply(&patch))
            .await
            .unwrap();
        assert_eq!(trimmed.status.unwrap().retry, None);

        // A spec change moves generation; status stays.
        let respecced = api
            .patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"spec": {"subject": "two"}, "status": {"observedGeneration": 9}}),
                ),
            )
            .await
            .unwrap();
        assert_eq!(respecced.meta().generation, Some(2));
        assert_eq!(respecced.status.unwrap().observed_generation, Some(1));
    }

    #[tokio::test]
    async fn replace_status_changes_only_status() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let mut group = api
            .create(&PostParams::default(), &chat_group("g", "one"))
            .await
            .unwrap();
        group.spec.subject = Some("ignored".into());
        group.status = Some(ChatGroupStatus {
            observed_generation: Some(1),
            ..Default::default()
        });
        let replaced = api
            .replace_status("g", &PostParams::default(), &group)
            .await
            .unwrap();
        assert_eq!(replaced.spec.subject.as_deref(), Some("one"));
        assert_eq!(replaced.meta().generation, Some(1));
        assert_eq!(replaced.status.unwrap().observed_generation, Some(1));

        // The status endpoint also checks the version.
        let status = api_error(
            api.replace_status("g", &PostParams::default(), &group)
                .await,
        );
        assert_eq!(status.code, 409);
        assert_eq!(api.get_status("g").await.unwrap().name_any(), "g");
    }

    #[tokio::test]
    async fn status_patch_of_a_missing_object_is_404() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let status = api_error(
            api.patch_status(
                "nope",
                &PatchParams::apply(FIELD_MANAGER),
                &status_apply(1, json!({})),
            )
            .await,
        );
        assert_eq!(status.code, 404);
    }
}

mod deletion {
    use super::*;

    #[tokio::test]
    async fn delete_without_finalizers_removes_the_object_now() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("g", "x"))
            .await
            .unwrap();
        let result = api.delete("g", &DeleteParams::default()).await.unwrap();
        let status = result.right().expect("a Status for an immediate deletion");
        assert_eq!(status.code, 0);
        assert!(status.is_success());
        assert!(server.get(&chatgroups(), "default", "g").is_none());
        assert_eq!(
            api_error(api.delete("g", &DeleteParams::default()).await).code,
            404
        );
    }

    #[tokio::test]
    async fn delete_with_finalizers_marks_the_object_until_they_are_removed() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let mut group = chat_group("g", "x");
        group.metadata.finalizers = Some(vec!["cams.chatapp.io/test".into()]);
        let created = api.create(&PostParams::default(), &group).await.unwrap();
        let mut stream = api
            .watch(&WatchParams::default(), &rv_of(&created).to_string())
            .await
            .unwrap()
            .boxed();

        let marked = api
            .delete("g", &DeleteParams::default())
            .await
            .unwrap()
            .left()
            .expect("the object is kept while finalizers remain");
        assert!(marked.meta().deletion_timestamp.is_some());
        assert_eq!(marked.meta().generation, Some(2));
        let fetched = api.get("g").await.unwrap();
        assert_eq!(
            fetched.meta().deletion_timestamp,
            marked.meta().deletion_timestamp
        );

        // A second delete changes nothing.
        let again = api
            .delete("g", &DeleteParams::default())
            .await
            .unwrap()
            .left()
            .unwrap();
        assert_eq!(rv_of(&again), rv_of(&marked));

        api.patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
        assert!(api.get_opt("g").await.unwrap().is_none());

        let kinds: Vec<&str> = [
            next_change(&mut stream).await,
            next_change(&mut stream).await,
            next_change(&mut stream).await,
        ]
        .iter()
        .map(|e| match e {
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            _ => "other",
        })
        .collect();
        assert_eq!(kinds, ["MODIFIED", "MODIFIED", "DELETED"]);
    }

    #[tokio::test]
    async fn delete_preconditions_are_checked() {
        let (_server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("g", "x"))
            .await
            .unwrap();
        let status = api_error(
            api.delete(
                "g",
                &DeleteParams::default().preconditions(kube::api::Preconditions {
                    uid: Some("not-the-uid".into()),
                    resource_version: None,
                }),
            )
            .await,
        );
        assert_eq!(status.code, 409);
        assert!(api.get_opt("g").await.unwrap().is_some());
    }
}

mod builtin {
    use super::*;
    use k8s_openapi::ByteString;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    #[tokio::test]
    async fn secrets_round_trip_and_replace_without_a_version() {
        let (server, client) = support::start_api_server().await;
        let secrets: Api<Secret> = Api::namespaced(client, "team");
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("cams-credentials".into()),
                ..Default::default()
            },
            data: Some(
                [("accessKeyId".to_string(), ByteString(b"LTAI".to_vec()))]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        };
        let created = secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        assert_eq!(created.meta().generation, None);
        let fetched = secrets.get("cams-credentials").await.unwrap();
        assert_eq!(fetched.data, secret.data);

        // Built-in kinds accept an unconditional update.
        let mut rotated = secret.clone();
        rotated.data = Some(
            [("accessKeyId".to_string(), ByteString(b"LTAI2".to_vec()))]
                .into_iter()
                .collect(),
        );
        let replaced = secrets
            .replace("cams-credentials", &PostParams::default(), &rotated)
            .await
            .unwrap();
        assert!(rv_of(&replaced) > rv_of(&created));
        let stored = server
            .get(&kinds::SECRETS, "team", "cams-credentials")
            .unwrap();
        assert_eq!(stored["data"]["accessKeyId"], "TFRBSTI=");
    }

    #[tokio::test]
    async fn metadata_only_watches_get_partial_objects() {
        let (_server, client) = support::start_api_server().await;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), "team");
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("s".into()),
                ..Default::default()
            },
            string_data: Some([("k".to_string(), "v".to_string())].into_iter().collect()),
            ..Default::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let meta: Api<kube::core::PartialObjectMeta<Secret>> = Api::namespaced(client, "team");
        let list = meta.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 1);
        assert_eq!(list.items[0].name_any(), "s");

        let events: Vec<_> = watcher(meta, watcher::Config::default())
            .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
            .try_collect()
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, watcher::Event::InitApply(s) if s.name_any() == "s"))
        );
    }

    #[tokio::test]
    async fn the_event_recorder_creates_then_patches_events() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "team");
        let group = api
            .create(&PostParams::default(), &chat_group("g", "x"))
            .await
            .unwrap();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
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
        let reference = group.object_ref(&());
        recorder.publish(&event, &reference).await.unwrap();
        recorder.publish(&event, &reference).await.unwrap();

        let events = server.list_as::<k8s_openapi::api::events::v1::Event>(Some("team"));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason.as_deref(), Some("UpdateSucceeded"));
        assert_eq!(events[0].series.as_ref().map(|s| s.count), Some(2));
        assert_eq!(
            events[0].regarding.as_ref().and_then(|r| r.name.as_deref()),
            Some("g")
        );
        assert_eq!(
            server.count(|r| r.is_for(&kinds::EVENTS) && r.kind == RequestKind::Create),
            1
        );

        let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "team");
        core.create(
            &PostParams::default(),
            &k8s_openapi::api::core::v1::Event {
                metadata: ObjectMeta {
                    name: Some("legacy".into()),
                    ..Default::default()
                },
                reason: Some("Test".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            core.list(&ListParams::default()).await.unwrap().items.len(),
            1
        );
    }

    #[tokio::test]
    async fn leases_are_created_and_replaced_with_optimistic_concurrency() {
        let (_server, client) = support::start_api_server().await;
        let leases: Api<Lease> = Api::namespaced(client, "ops");
        let lease = |holder: &str| Lease {
            metadata: ObjectMeta {
                name: Some("cams-operator".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                ..Default::default()
            }),
        };
        let created = leases
            .create(&PostParams::default(), &lease("a"))
            .await
            .unwrap();
        let status = api_error(leases.create(&PostParams::default(), &lease("b")).await);
        assert_eq!(status.code, 409);

        // Two candidates read the same version; the second write loses.
        let mut first = created.clone();
        first.spec = lease("b").spec;
        let mut second = created.clone();
        second.spec = lease("c").spec;
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
}

mod faults {
    use super::*;

    #[tokio::test]
    async fn injected_500s_reach_the_caller_then_requests_recover() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        server.fail_next(2, 500);
        for _ in 0..2 {
            let status = api_error(api.list(&ListParams::default()).await);
            assert_eq!(
                (status.code, status.reason.as_str()),
                (500, "InternalError")
            );
        }
        api.list(&ListParams::default()).await.unwrap();
        assert_eq!(server.count(|r| r.injected_fault), 2);
    }

    #[tokio::test]
    async fn the_client_retries_503_by_itself() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        server.fail_next(3, 503);
        api.list(&ListParams::default()).await.unwrap();
        assert_eq!(server.count(|r| r.injected_fault && r.status == 503), 3);
        assert_eq!(server.count(|r| r.kind == RequestKind::List), 4);
    }

    #[tokio::test]
    async fn faults_can_target_matching_requests() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("g", "x"))
            .await
            .unwrap();
        server.fail_next_matching(1, 500, |r| r.is_status_patch());
        api.get("g").await.unwrap();
        let status = api_error(
            api.patch_status(
                "g",
                &PatchParams::apply(FIELD_MANAGER),
                &status_apply(1, json!({})),
            )
            .await,
        );
        assert_eq!(status.code, 500);
        api.patch_status(
            "g",
            &PatchParams::apply(FIELD_MANAGER),
            &status_apply(1, json!({})),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_failure_window_ends_by_itself() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        server.fail_for(Duration::from_millis(300), 500);
        assert_eq!(api_error(api.list(&ListParams::default()).await).code, 500);
        let deadline = tokio::time::Instant::now() + WAIT;
        while api.list(&ListParams::default()).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the failure window never ended"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn slow_responses_trip_client_timeouts() {
        let (server, _client) = support::start_api_server().await;
        let mut config = server.config();
        config.read_timeout = Some(Duration::from_millis(200));
        let client = Client::try_from(config).unwrap();
        let api = groups(&client, "default");
        server.slow_for(WAIT, Duration::from_secs(5));
        let result = api.list(&ListParams::default()).await;
        assert!(result.is_err(), "a 5 s answer trips a 200 ms read timeout");
        server.clear_faults();
        api.list(&ListParams::default()).await.unwrap();
    }

    #[tokio::test]
    async fn close_watches_makes_watchers_reconnect_without_relisting() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("first", "x"))
            .await
            .unwrap();
        let (reader, writer) = kube::runtime::reflector::store::<ChatGroup>();
        let stream =
            kube::runtime::reflector(writer, watcher(api.clone(), watcher::Config::default()));
        let task = tokio::spawn(stream.for_each(|_| futures::future::ready(())));
        reader.wait_until_ready().await.unwrap();
        assert!(
            server
                .wait_for(|s| s.count(|r| r.kind == RequestKind::Watch) == 1, WAIT)
                .await
        );

        server.close_watches();
        assert!(
            server
                .wait_for(|s| s.count(|r| r.kind == RequestKind::Watch) == 2, WAIT)
                .await
        );
        api.create(&PostParams::default(), &chat_group("second", "x"))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        while reader
            .get(&kube::runtime::reflector::ObjectRef::new("second").within("default"))
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the reflector never saw the new object"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            server.count(|r| r.kind == RequestKind::List),
            1,
            "a reconnect resumes, it does not re-list"
        );
        task.abort();
    }

    #[tokio::test]
    async fn the_watcher_relists_after_410_gone() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        api.create(&PostParams::default(), &chat_group("first", "x"))
            .await
            .unwrap();
        let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
        loop {
            if matches!(next_item(&mut events).await, Ok(watcher::Event::InitDone)) {
                break;
            }
        }
        // Whether the watch has started yet or not, it now starts (or resumes) from a
        // version older than the history.
        server.compact();
        server.close_watches();
        let error = loop {
            if let Err(e) = next_item(&mut events).await {
                break e;
            }
        };
        assert!(
            matches!(&error, watcher::Error::WatchError(s) if s.code == 410),
            "expected 410 Gone, got {error:?}"
        );
        loop {
            match next_item(&mut events).await {
                Ok(watcher::Event::InitDone) => break,
                Ok(_) => {}
                Err(e) => panic!("unexpected watcher error after 410: {e:?}"),
            }
        }
        assert_eq!(
            server.count(|r| r.kind == RequestKind::List),
            2,
            "410 makes the watcher re-list"
        );

        api.create(&PostParams::default(), &chat_group("second", "x"))
            .await
            .unwrap();
        loop {
            if let Ok(watcher::Event::Apply(g)) = next_item(&mut events).await {
                assert_eq!(g.name_any(), "second");
                break;
            }
        }
    }

    #[tokio::test]
    async fn the_watcher_pages_its_initial_list() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        for i in 0..5 {
            api.create(&PostParams::default(), &chat_group(&format!("g{i}"), "x"))
                .await
                .unwrap();
        }
        let events: Vec<_> = watcher(api, watcher::Config::default().page_size(2))
            .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
            .try_collect()
            .await
            .unwrap();
        let listed = events
            .iter()
            .filter(|e| matches!(e, watcher::Event::InitApply(_)))
            .count();
        assert_eq!(listed, 5);
        assert_eq!(server.count(|r| r.kind == RequestKind::List), 3);
    }
}

mod runtime {
    use super::*;
    use kube::runtime::controller::{Action, Controller};
    use std::sync::Arc;

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    struct ReconcileError(#[from] kube::Error);

    async fn reconcile(
        group: Arc<ChatGroup>,
        api: Arc<Api<ChatGroup>>,
    ) -> Result<Action, ReconcileError> {
        let generation = group.meta().generation.unwrap_or_default();
        api.patch_status(
            &group.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &status_apply(generation, json!({})),
        )
        .await?;
        Ok(Action::await_change())
    }

    #[tokio::test]
    async fn a_controller_converges_and_follows_spec_changes() {
        let (server, client) = support::start_api_server().await;
        let api = groups(&client, "default");
        let controller = Controller::new(api.clone(), watcher::Config::default())
            .run(
                reconcile,
                |_, _, _| Action::requeue(Duration::from_secs(1)),
                Arc::new(api.clone()),
            )
            .for_each(|_| futures::future::ready(()));
        let task = tokio::spawn(controller);

        api.create(&PostParams::default(), &chat_group("g", "one"))
            .await
            .unwrap();
        let observed = |generation: i64| {
            move |s: &TestApiServer| {
                s.get_as::<ChatGroup>("default", "g")
                    .and_then(|g| g.status)
                    .and_then(|st| st.observed_generation)
                    == Some(generation)
            }
        };
        assert!(server.wait_for(observed(1), WAIT).await);

        api.patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"subject": "two"}})),
        )
        .await
        .unwrap();
        assert!(server.wait_for(observed(2), WAIT).await);
        task.abort();
    }
}
