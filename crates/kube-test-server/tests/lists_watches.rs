//! Lists (paging, continue tokens, selectors), watches (events, selector transitions,
//! initial events, bookmarks, timeouts), the bounded watch history and its 410s, opaque
//! resourceVersions, and watches closed by the server.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::DynamicObject;
use kube::runtime::watcher;
use kube_test_server::{HistoryLimits, RequestKind, TestApiServer, kinds};
use serde_json::{Value, json};

fn labelled(name: &str, labels: Value) -> Value {
    let mut object = chat_group(name);
    object["metadata"]["labels"] = labels;
    object
}

fn in_namespace(name: &str, namespace: &str) -> Value {
    let mut object = chat_group(name);
    object["metadata"]["namespace"] = json!(namespace);
    object
}

fn names_of(items: &[DynamicObject]) -> Vec<String> {
    let mut names: Vec<String> = items
        .iter()
        .map(|o| o.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    names
}

/// Creates ChatGroups `g0`..`g{n-1}` in `default` through the handle; their versions.
fn create_groups(server: &TestApiServer, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| rv(&server.put(&chatgroups(), chat_group(&format!("g{i}")))))
        .collect()
}

/// The events of a watch from `version` that ends after `timeout_seconds`, read raw.
async fn watch_raw(server: &TestApiServer, path: &str, version: &str, query: &str) -> Reply {
    get(
        server,
        &format!("{path}?watch=true&resourceVersion={version}&{query}"),
    )
    .await
}

mod lists {
    use super::*;

    #[tokio::test]
    async fn a_list_pages_through_a_consistent_snapshot() {
        let (server, client) = builder().namespace("a").namespace("b").start().await;
        for i in 0..7 {
            server.put(&chatgroups(), in_namespace(&format!("g{i}"), "a"));
        }
        server.put(&chatgroups(), in_namespace("other", "b"));
        let api = groups(&client, "a");
        let first = api.list(&ListParams::default().limit(3)).await.unwrap();
        assert_eq!(first.items.len(), 3);
        assert_eq!(first.metadata.remaining_item_count, Some(4));
        let list_rv = first.metadata.resource_version.clone().unwrap();
        assert_eq!(list_rv, server.resource_version().to_string());

        // Changes between pages do not leak into the snapshot.
        server.put(&chatgroups(), in_namespace("late", "a"));
        server.delete(&chatgroups(), "a", "g6").unwrap();

        let mut items = first.items;
        let mut token = first.metadata.continue_.clone();
        let mut pages = 1;
        while let Some(t) = token.filter(|t| !t.is_empty()) {
            let page = api
                .list(&ListParams::default().limit(3).continue_token(&t))
                .await
                .unwrap();
            assert_eq!(
                page.metadata.resource_version.as_deref(),
                Some(list_rv.as_str())
            );
            pages += 1;
            if page.metadata.continue_.is_none() {
                assert_eq!(page.metadata.remaining_item_count, None);
            }
            items.extend(page.items);
            token = page.metadata.continue_;
        }
        assert_eq!(pages, 3);
        assert_eq!(
            names_of(&items),
            (0..7).map(|i| format!("g{i}")).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_list_names_its_kind_and_the_current_version() {
        let (server, _client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        let list = get(&server, &groups_path("default")).await.json();
        assert_eq!(list["apiVersion"], "cams.chatapp.io/v1alpha1");
        assert_eq!(list["kind"], "ChatGroupList");
        assert_eq!(
            list["metadata"],
            json!({"resourceVersion": server.resource_version().to_string()})
        );
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_continue_token_read_before_a_compaction_expires_with_410_and_a_fresh_token() {
        let (server, client) = start().await;
        create_groups(&server, 5);
        let api = groups(&client, "default");
        let first = api.list(&ListParams::default().limit(2)).await.unwrap();
        let token = first.metadata.continue_.clone().unwrap();
        server.compact();
        server.put(&chatgroups(), chat_group("g9"));

        let reply = get(
            &server,
            &format!("{}?limit=2&continue={token}", groups_path("default")),
        )
        .await;
        assert_eq!(reply.status, 410);
        let mut body = reply.json();
        let fresh = body["metadata"]["continue"]
            .as_str()
            .expect("a fresh continue token")
            .to_owned();
        assert!(!fresh.is_empty() && fresh != token);
        body["metadata"]["continue"] = json!("<masked>");
        assert_eq!(
            body,
            json!({"kind":"Status","apiVersion":"v1","metadata":{"continue":"<masked>"},"status":"Failure",
                "message":"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                "reason":"Expired","code":410})
        );

        // The fresh token continues after the last item returned, at the latest version.
        let mut rest = Vec::new();
        let mut token = Some(fresh);
        while let Some(t) = token.filter(|t| !t.is_empty()) {
            let page = api
                .list(&ListParams::default().limit(2).continue_token(&t))
                .await
                .unwrap();
            assert_eq!(
                page.metadata.resource_version,
                Some(server.resource_version().to_string())
            );
            rest.extend(page.items);
            token = page.metadata.continue_;
        }
        assert_eq!(names_of(&rest), ["g2", "g3", "g4", "g9"]);
    }

    #[tokio::test]
    async fn a_continue_token_that_was_never_issued_is_400() {
        let (server, client) = start().await;
        create_groups(&server, 3);
        let status = api_error(
            groups(&client, "default")
                .list(&ListParams::default().continue_token("garbage"))
                .await,
        );
        assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
        // A token of another resource's list is refused too.
        let page = get(&server, &format!("{}?limit=1", groups_path("default")))
            .await
            .json();
        let token = page["metadata"]["continue"].as_str().unwrap();
        let secrets = get(
            &server,
            &format!("/api/v1/namespaces/default/secrets?limit=1&continue={token}"),
        )
        .await;
        assert_eq!(secrets.status, 400);
    }

    #[tokio::test]
    async fn label_selectors_filter_lists() {
        let (server, client) = start().await;
        for (name, labels) in [
            ("a", json!({"team": "support", "tier": "gold"})),
            ("b", json!({"team": "sales"})),
            ("c", json!({"team": "ops", "tier": "silver"})),
            ("d", json!({})),
        ] {
            server.put(&chatgroups(), labelled(name, labels));
        }
        let api = groups(&client, "default");
        let select = |selector: &'static str| {
            let api = api.clone();
            async move {
                names_of(
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
    async fn field_selectors_filter_by_name_and_namespace_only() {
        let (server, client) = builder().namespace("x").namespace("y").start().await;
        for (ns, name) in [("x", "one"), ("x", "two"), ("y", "one")] {
            server.put(&chatgroups(), in_namespace(name, ns));
        }
        let all = all_groups(&client);
        let by_name = all
            .list(&ListParams::default().fields("metadata.name=one"))
            .await
            .unwrap();
        assert_eq!(by_name.items.len(), 2);
        let by_namespace = all
            .list(&ListParams::default().fields("metadata.namespace==x,metadata.name!=one"))
            .await
            .unwrap();
        assert_eq!(names_of(&by_namespace.items), ["two"]);
        let status = api_error(
            all.list(&ListParams::default().fields("spec.groupId=x"))
                .await,
        );
        assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    }

    #[tokio::test]
    async fn a_namespaced_list_sees_one_namespace_and_the_collection_sees_all() {
        let (server, client) = builder().namespace("x").start().await;
        server.put(&chatgroups(), in_namespace("a", "x"));
        server.put(&chatgroups(), chat_group("b"));
        let x = groups(&client, "x")
            .list(&ListParams::default())
            .await
            .unwrap();
        assert_eq!(names_of(&x.items), ["a"]);
        let all = all_groups(&client)
            .list(&ListParams::default())
            .await
            .unwrap();
        assert_eq!(names_of(&all.items), ["a", "b"]);
    }

    #[tokio::test]
    async fn the_watcher_pages_its_initial_list() {
        let (server, client) = start().await;
        create_groups(&server, 5);
        let events: Vec<_> = watcher(
            groups(&client, "default"),
            watcher::Config::default().page_size(2),
        )
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

mod versions {
    use super::*;

    #[tokio::test]
    async fn resource_versions_start_at_a_random_base() {
        let (a, _) = start().await;
        let (b, _) = start().await;
        let first_a = rv(&a.put(&chatgroups(), chat_group("g")));
        let first_b = rv(&b.put(&chatgroups(), chat_group("g")));
        assert_ne!(first_a, first_b, "two servers never agree on versions");
        assert!(first_a.parse::<u64>().unwrap() > 1000, "{first_a}");
    }

    #[tokio::test]
    async fn every_change_gets_a_version_no_earlier_one_had() {
        let (server, _client) = start().await;
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..5 {
            assert!(seen.insert(rv(&server.put(&chatgroups(), chat_group(&format!("g{i}"))))));
            assert!(seen.insert(rv(&server.put(
                &kinds::SECRETS,
                json!({"metadata": {"name": format!("s{i}")}})
            ))));
        }
        assert_eq!(seen.len(), 10);
    }
}

mod watches {
    use super::*;

    #[tokio::test]
    async fn a_watch_streams_the_changes_after_its_version() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("before"));
        let api = groups(&client, "default");
        let start = server.resource_version().to_string();
        let mut stream = api
            .watch(&WatchParams::default(), &start)
            .await
            .unwrap()
            .boxed();
        api.create(&PostParams::default(), &dynamic(chat_group("g")))
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
        assert_eq!(added.metadata.name.as_deref(), Some("g"));
        let WatchEvent::Modified(modified) = next_change(&mut stream).await else {
            panic!("expected MODIFIED");
        };
        assert_eq!(modified.data["spec"]["subject"], "two");
        let WatchEvent::Deleted(deleted) = next_change(&mut stream).await else {
            panic!("expected DELETED");
        };
        assert_eq!(deleted.metadata.name.as_deref(), Some("g"));
        let versions =
            [&added, &modified, &deleted].map(|o| o.metadata.resource_version.clone().unwrap());
        assert!(versions[0] != versions[1] && versions[1] != versions[2]);
        assert_eq!(versions[2], server.resource_version().to_string());
    }

    #[tokio::test]
    async fn a_label_selector_watch_reports_objects_entering_and_leaving_as_added_and_deleted() {
        let (server, client) = builder().namespace("ns1").namespace("ns2").start().await;
        let ns1 = groups(&client, "ns1");
        let from = server.resource_version().to_string();
        let mut stream = ns1
            .watch(&WatchParams::default().labels("team=a"), &from)
            .await
            .unwrap()
            .boxed();
        let mut elsewhere = in_namespace("elsewhere", "ns2");
        elsewhere["metadata"]["labels"] = json!({"team": "a"});
        server.put(&chatgroups(), elsewhere);
        server.put(&chatgroups(), in_namespace("plain", "ns1"));
        let label = |v: &str| Patch::Merge(json!({"metadata": {"labels": {"team": v}}}));
        ns1.patch("plain", &PatchParams::default(), &label("a"))
            .await
            .unwrap();
        ns1.patch("plain", &PatchParams::default(), &label("b"))
            .await
            .unwrap();

        let WatchEvent::Added(entered) = next_change(&mut stream).await else {
            panic!("expected ADDED when the object starts matching");
        };
        assert_eq!(entered.metadata.name.as_deref(), Some("plain"));
        let WatchEvent::Deleted(left) = next_change(&mut stream).await else {
            panic!("expected DELETED when it stops matching");
        };
        assert_eq!(left.metadata.name.as_deref(), Some("plain"));
        assert_eq!(
            left.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("team"))
                .map(String::as_str),
            Some("a"),
            "its last matching state"
        );
        assert_eq!(
            left.metadata.resource_version,
            Some(server.resource_version().to_string()),
            "at the version of the change"
        );
    }

    #[tokio::test]
    async fn a_field_selector_watch_follows_one_object() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        let from = server.resource_version().to_string();
        let mut stream = api
            .watch(&WatchParams::default().fields("metadata.name=b"), &from)
            .await
            .unwrap()
            .boxed();
        server.put(&chatgroups(), chat_group("a"));
        server.put(&chatgroups(), chat_group("b"));
        let WatchEvent::Added(b) = next_change(&mut stream).await else {
            panic!("expected ADDED");
        };
        assert_eq!(b.metadata.name.as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn an_all_namespaces_watch_sees_every_namespace() {
        let (server, client) = builder().namespace("one").namespace("two").start().await;
        let from = server.resource_version().to_string();
        let mut stream = all_groups(&client)
            .watch(&WatchParams::default(), &from)
            .await
            .unwrap()
            .boxed();
        server.put(&chatgroups(), in_namespace("a", "one"));
        server.put(&chatgroups(), in_namespace("b", "two"));
        let mut seen = Vec::new();
        for _ in 0..2 {
            let WatchEvent::Added(g) = next_change(&mut stream).await else {
                panic!("expected ADDED");
            };
            seen.push(format!(
                "{}/{}",
                g.metadata.namespace.unwrap(),
                g.metadata.name.unwrap()
            ));
        }
        assert_eq!(seen, ["one/a", "two/b"]);
    }

    #[tokio::test]
    async fn a_watch_from_version_0_starts_with_the_current_objects() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("existing"));
        let mut stream = groups(&client, "default")
            .watch(&WatchParams::default(), "0")
            .await
            .unwrap()
            .boxed();
        let WatchEvent::Added(existing) = next_change(&mut stream).await else {
            panic!("expected a synthetic ADDED");
        };
        assert_eq!(existing.metadata.name.as_deref(), Some("existing"));
        server.put(&chatgroups(), chat_group("new"));
        let WatchEvent::Added(new) = next_change(&mut stream).await else {
            panic!("expected ADDED");
        };
        assert_eq!(new.metadata.name.as_deref(), Some("new"));
    }

    #[tokio::test]
    async fn send_initial_events_ends_its_initial_events_with_a_bookmark() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("existing"));
        let mut stream = groups(&client, "default")
            .watch(&WatchParams::streaming_lists(), "")
            .await
            .unwrap()
            .boxed();
        let WatchEvent::Added(existing) = next_item(&mut stream).await.unwrap() else {
            panic!("expected ADDED first");
        };
        assert_eq!(existing.metadata.name.as_deref(), Some("existing"));
        let WatchEvent::Bookmark(end) = next_item(&mut stream).await.unwrap() else {
            panic!("expected the initial-events-end bookmark");
        };
        assert_eq!(
            end.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(
            end.metadata.resource_version,
            server.resource_version().to_string()
        );
        // kube-rs' streaming-list watcher completes its initial state from it.
        let events: Vec<_> = watcher(
            groups(&client, "default"),
            watcher::Config::default().streaming_lists(),
        )
        .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
        .try_collect()
        .await
        .unwrap();
        assert!(events.iter().any(|e| matches!(e, watcher::Event::InitApply(g) if g.metadata.name.as_deref() == Some("existing"))));
    }

    #[tokio::test]
    async fn bookmarks_arrive_on_the_configured_cadence_with_the_current_version() {
        let interval = Duration::from_millis(200);
        let (server, client) = builder().bookmark_interval(interval).start().await;
        let started = Instant::now();
        let from = server.resource_version().to_string();
        let mut stream = groups(&client, "default")
            .watch(&WatchParams::default(), &from)
            .await
            .unwrap()
            .boxed();
        let mut times = Vec::new();
        while times.len() < 3 {
            match next_item(&mut stream).await.unwrap() {
                WatchEvent::Bookmark(b) => {
                    times.push(started.elapsed());
                    assert_eq!(b.types.kind, "ChatGroup");
                    assert_eq!(b.types.api_version, "cams.chatapp.io/v1alpha1");
                    assert_eq!(
                        b.metadata.resource_version,
                        server.resource_version().to_string()
                    );
                    // A change to another kind moves the version the next bookmark carries.
                    server.put(
                        &kinds::SECRETS,
                        json!({"metadata": {"name": format!("s{}", times.len())}}),
                    );
                }
                other => panic!("only bookmarks expected, got {other:?}"),
            }
        }
        assert!(
            times[0] >= interval - Duration::from_millis(20),
            "{times:?}"
        );
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= interval - Duration::from_millis(20) && gap < interval * 3,
                "bookmarks every {interval:?}: {times:?}"
            );
        }
    }

    #[tokio::test]
    async fn by_default_the_only_bookmark_of_a_short_watch_is_the_one_before_its_timeout() {
        let (server, client) = start().await;
        let from = server.resource_version().to_string();
        let started = Instant::now();
        let stream = groups(&client, "default")
            .watch(&WatchParams::default().timeout(1), &from)
            .await
            .unwrap();
        let events: Vec<_> = tokio::time::timeout(WAIT, stream.try_collect::<Vec<_>>())
            .await
            .expect("the watch ends at its timeout")
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(900));
        assert_eq!(events.len(), 1, "{events:?}");
        let WatchEvent::Bookmark(last) = &events[0] else {
            panic!("expected the closing bookmark, got {events:?}");
        };
        assert_eq!(
            last.metadata.resource_version,
            server.resource_version().to_string()
        );
        assert_eq!(
            kube_test_server::DEFAULT_BOOKMARK_INTERVAL,
            Duration::from_secs(60)
        );
    }

    #[tokio::test]
    async fn a_watch_without_bookmarks_gets_none_and_ends_at_timeout_seconds() {
        let (server, _client) = builder()
            .bookmark_interval(Duration::from_millis(100))
            .start()
            .await;
        let started = Instant::now();
        let reply = watch_raw(
            &server,
            &groups_path("default"),
            &server.resource_version().to_string(),
            "timeoutSeconds=1",
        )
        .await;
        let elapsed = started.elapsed();
        assert_eq!(reply.status, 200);
        assert!(reply.lines().is_empty(), "{:?}", reply.text());
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_watch_from_a_compacted_version_gets_an_in_band_410_expired() {
        let (server, _client) = start().await;
        let old = rv(&server.put(&chatgroups(), chat_group("g")));
        server.compact();
        let reply = watch_raw(&server, &groups_path("default"), &old, "").await;
        assert_eq!(reply.status, 200, "the error travels inside the stream");
        let mut lines = reply.lines();
        assert_eq!(lines.len(), 1, "one ERROR event, then the stream ends");
        let message = lines[0]["object"]["message"].as_str().unwrap().to_owned();
        let (requested, oldest) = message
            .strip_prefix("too old resource version: ")
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|rest| rest.split_once(" ("))
            .unwrap_or_else(|| panic!("{message}"));
        assert_eq!(requested, old);
        assert!(oldest.parse::<u64>().unwrap() > old.parse::<u64>().unwrap());
        lines[0]["object"]["message"] = json!("too old resource version: N (N)");
        // Derived from watch_cache.go (`too old resource version: %d (%d)`) and
        // errors.go `NewResourceExpired`; see tests/recorded/README.md.
        assert_eq!(
            lines[0],
            json!({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},
                "status":"Failure","message":"too old resource version: N (N)","reason":"Expired","code":410}})
        );
    }

    #[tokio::test]
    async fn a_fresh_list_after_a_410_gives_a_version_that_can_be_watched() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("g"));
        server.compact();
        let api = groups(&client, "default");
        let list = api.list(&ListParams::default()).await.unwrap();
        let mut stream = api
            .watch(
                &WatchParams::default(),
                &list.metadata.resource_version.unwrap(),
            )
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
    async fn the_kube_rs_watcher_relists_after_410() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("first"));
        let mut events = watcher(groups(&client, "default"), watcher::Config::default()).boxed();
        while !matches!(next_item(&mut events).await, Ok(watcher::Event::InitDone)) {}
        server.compact();
        server.close_watches();
        let error = loop {
            if let Err(e) = next_item(&mut events).await {
                break e;
            }
        };
        assert!(
            matches!(&error, watcher::Error::WatchError(s) if s.code == 410),
            "expected 410, got {error:?}"
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
        server.put(&chatgroups(), chat_group("second"));
        loop {
            if let Ok(watcher::Event::Apply(g)) = next_item(&mut events).await {
                assert_eq!(g.metadata.name.as_deref(), Some("second"));
                break;
            }
        }
    }
}

mod controllers {
    use super::*;
    use kube::runtime::controller::{Action, Controller};
    use std::sync::Arc;

    async fn reconcile(
        group: Arc<DynamicObject>,
        api: Arc<kube::Api<DynamicObject>>,
    ) -> Result<Action, kube::Error> {
        let generation = group.metadata.generation.unwrap_or_default();
        let status = json!({"apiVersion": "cams.chatapp.io/v1alpha1", "kind": "ChatGroup",
            "status": {"observedGeneration": generation}});
        api.patch_status(
            group.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::apply("cams-operator").force(),
            &Patch::Apply(status),
        )
        .await?;
        Ok(Action::await_change())
    }

    #[tokio::test]
    async fn a_kube_rs_controller_converges_and_follows_spec_changes() {
        let (server, client) = start().await;
        let api = groups(&client, "default");
        let controller = Controller::new_with(
            api.clone(),
            watcher::Config::default(),
            chat_group_resource(),
        )
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            Arc::new(api.clone()),
        )
        .for_each(|_| futures::future::ready(()));
        let task = tokio::spawn(controller);
        server.put(&chatgroups(), chat_group("g"));
        let observed = |generation: i64| {
            move |s: &TestApiServer| {
                s.get(&chatgroups(), "default", "g")
                    .is_some_and(|g| g["status"]["observedGeneration"] == generation)
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

mod history {
    use super::*;

    async fn first_event(server: &TestApiServer, kind_path: &str, from: &str) -> Value {
        first_watch_event(
            server,
            &format!("{kind_path}?watch=true&resourceVersion={from}&timeoutSeconds=1"),
        )
        .await
    }

    fn is_expired(event: &Value) -> bool {
        event["type"] == "ERROR" && event["object"]["code"] == 410
    }

    #[tokio::test]
    async fn the_latest_min_events_are_kept_whatever_their_age() {
        let limits = HistoryLimits {
            window: Duration::ZERO,
            min_events: 2,
            max_events: 1000,
        };
        let (server, _client) = builder().history_limits(limits).start().await;
        let versions = create_groups(&server, 4);
        let path = groups_path("default");
        assert!(is_expired(&first_event(&server, &path, &versions[0]).await));
        let kept = first_event(&server, &path, &versions[1]).await;
        assert_eq!(
            (kept["type"].as_str(), name(&kept["object"]).as_str()),
            (Some("ADDED"), "g2")
        );
    }

    #[tokio::test]
    async fn events_younger_than_the_window_are_kept_and_older_ones_expire() {
        let limits = HistoryLimits {
            window: Duration::from_millis(300),
            min_events: 1,
            max_events: 1000,
        };
        let (server, client) = builder().history_limits(limits).start().await;
        let before = server.resource_version().to_string();
        let versions = create_groups(&server, 3);
        // Young: every event is still there.
        let mut stream = groups(&client, "default")
            .watch(&WatchParams::default(), &before)
            .await
            .unwrap()
            .boxed();
        for i in 0..3 {
            let WatchEvent::Added(g) = next_change(&mut stream).await else {
                panic!("expected ADDED");
            };
            assert_eq!(g.metadata.name, Some(format!("g{i}")));
        }
        drop(stream);
        tokio::time::sleep(Duration::from_millis(400)).await;
        // The next change trims what is older than the window, down to the minimum.
        server.put(&chatgroups(), chat_group("g3"));
        let path = groups_path("default");
        assert!(is_expired(&first_event(&server, &path, &before).await));
        assert!(is_expired(&first_event(&server, &path, &versions[1]).await));
        let kept = first_event(&server, &path, &versions[2]).await;
        assert_eq!(name(&kept["object"]), "g3");
    }

    #[tokio::test]
    async fn max_events_bounds_the_history_even_when_it_is_young() {
        let (server, _client) = builder().history_limit(3).start().await;
        let versions = create_groups(&server, 5);
        let path = groups_path("default");
        assert!(is_expired(&first_event(&server, &path, &versions[0]).await));
        let kept = first_event(&server, &path, &versions[1]).await;
        assert_eq!(name(&kept["object"]), "g2");
    }

    #[tokio::test]
    async fn a_version_older_than_the_oldest_kept_event_is_too_old_even_if_nothing_was_lost() {
        // `getAllEventsSinceLocked`: a watch from below (oldest kept version - 1) expires, and
        // the message names that bound.
        let (server, _client) = builder().history_limit(2).start().await;
        let mut between = Vec::new();
        for i in 0..4 {
            server.put(&chatgroups(), chat_group(&format!("g{i}")));
            let secret = server.put(
                &kinds::SECRETS,
                json!({"metadata": {"name": format!("s{i}")}}),
            );
            between.push(rv(&secret));
            server.put(
                &kinds::SECRETS,
                json!({"metadata": {"name": format!("t{i}")}}),
            );
        }
        // Kept: g2 and g3. The first Secret written after g1 is newer than every trimmed
        // ChatGroup event, yet older than g2's version minus one.
        let g2 = server.get(&chatgroups(), "default", "g2").unwrap();
        let bound = rv(&g2).parse::<u64>().unwrap() - 1;
        let path = groups_path("default");
        let expired = first_event(&server, &path, &between[1]).await;
        assert!(is_expired(&expired), "{expired}");
        assert_eq!(
            expired["object"]["message"],
            format!("too old resource version: {} ({bound})", between[1])
        );
        let kept = first_event(&server, &path, &bound.to_string()).await;
        assert_eq!(name(&kept["object"]), "g2");
    }

    #[tokio::test]
    async fn each_kind_keeps_its_own_history() {
        let (server, _client) = builder().history_limit(2).start().await;
        let before = server.resource_version().to_string();
        server.put(&chatgroups(), chat_group("g"));
        for i in 0..5 {
            server.put(
                &kinds::SECRETS,
                json!({"metadata": {"name": format!("s{i}")}}),
            );
        }
        let group = first_event(&server, &groups_path("default"), &before).await;
        assert_eq!(
            name(&group["object"]),
            "g",
            "Secrets did not push the ChatGroup out"
        );
        let secret = first_event(&server, "/api/v1/namespaces/default/secrets", &before).await;
        assert!(is_expired(&secret));
    }

    #[tokio::test]
    async fn set_history_limit_trims_at_once() {
        let (server, _client) = start().await;
        let versions = create_groups(&server, 4);
        let path = groups_path("default");
        let kept = first_event(&server, &path, &versions[0]).await;
        assert_eq!(name(&kept["object"]), "g1");
        server.set_history_limit(1);
        assert!(is_expired(&first_event(&server, &path, &versions[1]).await));
        let kept = first_event(&server, &path, &versions[2]).await;
        assert_eq!(name(&kept["object"]), "g3");
    }

    #[tokio::test]
    async fn by_default_a_hundred_recent_events_are_kept() {
        let (server, _client) = start().await;
        let versions = create_groups(&server, 150);
        let path = groups_path("default");
        let kept = first_event(&server, &path, &versions[0]).await;
        assert_eq!(
            name(&kept["object"]),
            "g1",
            "young events are kept beyond 100"
        );
        assert_eq!(
            HistoryLimits::default(),
            HistoryLimits {
                window: Duration::from_secs(75),
                min_events: 100,
                max_events: 102_400,
            }
        );
    }
}

mod closing {
    use super::*;

    #[tokio::test]
    async fn close_watches_ends_streams_and_watchers_resume_without_relisting() {
        let (server, client) = start().await;
        server.put(&chatgroups(), chat_group("first"));
        let api = groups(&client, "default");
        let writer =
            kube::runtime::reflector::store::Writer::<DynamicObject>::new(chat_group_resource());
        let reader = writer.as_reader();
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
        server.put(&chatgroups(), chat_group("second"));
        let key = kube::runtime::reflector::ObjectRef::new_with("second", chat_group_resource())
            .within("default");
        let deadline = Instant::now() + WAIT;
        while reader.get(&key).is_none() {
            assert!(
                Instant::now() < deadline,
                "the reflector never saw the new object"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            server.count(|r| r.kind == RequestKind::List),
            1,
            "a reconnect resumes"
        );
        task.abort();
    }

    #[tokio::test]
    async fn close_watches_every_ends_each_watch_after_the_period() {
        let period = Duration::from_millis(300);
        let (server, _client) = builder().close_watches_every(period).start().await;
        for _ in 0..2 {
            let started = Instant::now();
            let reply = watch_raw(
                &server,
                &groups_path("default"),
                &server.resource_version().to_string(),
                "timeoutSeconds=60",
            )
            .await;
            assert_eq!(reply.status, 200);
            assert!(started.elapsed() < period * 3, "{:?}", started.elapsed());
        }
    }
}
