//! The reconcile pipeline against the CAMS simulator, through the real HTTP client: the write
//! rule, the management and drift policies, failure classes, and the one-shot commands
//! (`cams-operator reconcile` exit codes, `cams-operator demo`).
//!
//! The engine's clock is injected (so "an hour later" costs nothing); the HTTP requests carry
//! the real time, which the simulator checks.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cams_operator::cams::client::{HttpCams, HttpCamsConfig};
use cams_operator::cams::{
    ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP, Credentials, ErrorClass, SecretString,
};
use cams_operator::crd::condition::{READY, STALLED, SYNCED};
use cams_operator::crd::{ChatGroup, ChatGroupStatus, DriftPolicy, ManagementPolicy, Reason};
use cams_operator::oneshot::{self, exit};
use cams_operator::reconcile::engine::{Input, Outcome, Requeue, reconcile};
use cams_operator::reconcile::observe::{DEFAULT_LIST_WINDOW, SharedLister};
use cams_operator::reconcile::status::find_condition;
use cams_sim::{ActionFaults, ForcedError, Group, RunningSim, Simulator};

const KEY_ID: &str = "LTAI5tTESTKEYID";
const KEY_SECRET: &str = "test-secret-value-1234";
const SPACE: &str = "cams-test";
const NUMBER: &str = "8613800001234";
const T0: i64 = 1_800_000_000;

fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(T0 + seconds).expect("valid time")
}

fn credentials() -> Credentials {
    Credentials {
        access_key_id: KEY_ID.to_owned(),
        access_key_secret: SecretString::new(KEY_SECRET),
        security_token: None,
    }
}

/// A simulator on a free loopback port holding `group_ids` with outdated subjects.
async fn simulator(group_ids: &[&str]) -> RunningSim {
    let mut builder = Simulator::builder()
        .addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_key(KEY_ID, KEY_SECRET);
    for id in group_ids {
        builder = builder.group(Group::new(SPACE, NUMBER, *id).subject("Old subject"));
    }
    builder.start().await.expect("simulator starts")
}

fn object(name: &str) -> ChatGroup {
    ChatGroup::test(name)
        .with_cust_space_id(SPACE)
        .with_business_number(NUMBER)
        .with_subject("Support team")
        .with_description("Questions about orders")
}

/// Drives one object like the controller: reconcile, store the status, at the given times.
struct Driver {
    sim: RunningSim,
    api: HttpCams,
    lister: SharedLister,
    object: ChatGroup,
}

impl Driver {
    async fn new(object: ChatGroup) -> Driver {
        let sim = simulator(&[object.spec.group_id.as_deref().unwrap_or_default()]).await;
        Driver {
            sim,
            api: HttpCams::new(HttpCamsConfig::default()).expect("client"),
            lister: SharedLister::new(Duration::ZERO),
            object,
        }
    }

    async fn at(&mut self, seconds: i64) -> Outcome {
        let endpoint = self.sim.url();
        let outcome = reconcile(
            Input {
                object: &self.object,
                credentials: Ok(credentials()),
                endpoint_override: Some(&endpoint),
                now: at(seconds),
                jitter: 0.0,
                peers: &cams_operator::reconcile::lifecycle::NoPeers,
                marks: &cams_operator::reconcile::lifecycle::NoMarks,
            },
            &self.api,
            &self.lister,
        )
        .await;
        self.object.status = Some(outcome.status.clone());
        outcome
    }

    fn writes(&self) -> u64 {
        self.sim.call_count(ACTION_UPDATE_CHAT_GROUP)
    }

    fn listings(&self) -> u64 {
        self.sim.call_count(ACTION_LIST_CHAT_GROUP)
    }

    fn group(&self) -> Group {
        let spec = &self.object.spec;
        self.sim
            .group(
                &spec.cust_space_id,
                &spec.business_number,
                spec.group_id.as_deref().unwrap_or_default(),
            )
            .expect("group exists")
    }

    fn edit_subject(&self, subject: &str) {
        let spec = &self.object.spec;
        assert!(self.sim.edit_group(
            &spec.cust_space_id,
            &spec.business_number,
            spec.group_id.as_deref().unwrap_or_default(),
            |g| g.subject = Some(subject.to_owned()),
        ));
    }

    /// Converges (write + confirmation read), then someone renames the group in WhatsApp.
    async fn converge_then_drift(&mut self) {
        self.at(0).await;
        self.at(10).await;
        self.edit_subject("Renamed in WhatsApp");
    }
}

fn cond(outcome: &Outcome, type_: &str) -> (String, String) {
    find_condition(Some(&outcome.status), type_)
        .map(|c| (c.status.as_str().to_owned(), c.reason.to_string()))
        .unwrap_or_default()
}

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_owned(), reason.to_owned())
}

mod write_rule {
    use super::*;

    #[tokio::test]
    async fn manage_writes_once_then_never_again() {
        let mut d = Driver::new(object("once")).await;
        let first = d.at(0).await;
        assert_eq!(cond(&first, READY), pair("True", "Synced"));
        assert_eq!(cond(&first, SYNCED), pair("True", "UpdateSucceeded"));
        let last = first.status.last_request.clone().expect("lastRequest");
        assert_eq!(last.code.as_deref(), Some("OK"));
        assert!(last.request_id.is_some_and(|id| !id.is_empty()));
        assert_eq!(d.group().subject.as_deref(), Some("Support team"));
        assert_eq!(
            d.group().description.as_deref(),
            Some("Questions about orders")
        );
        assert_eq!(d.writes(), 1);

        // Confirmation read, reconciles triggered by anything, a restart, resyncs: no write.
        d.at(10).await;
        for seconds in [11, 300, 1800, 3610, 3700, 7210] {
            let outcome = d.at(seconds).await;
            assert_eq!(cond(&outcome, READY), pair("True", "Synced"), "t={seconds}");
        }
        assert_eq!(d.writes(), 1);
        // One read to confirm and one per resync; none in between.
        assert_eq!(d.listings(), 4);
    }

    #[tokio::test]
    async fn a_changed_spec_is_written_once() {
        let mut d = Driver::new(object("changed")).await;
        d.at(0).await;
        d.at(10).await;
        d.object = d
            .object
            .clone()
            .with_subject("Support, 24/7")
            .with_generation(2);
        let outcome = d.at(20).await;
        assert_eq!(outcome.write.as_ref().map(|w| w.success), Some(true));
        assert_eq!(d.group().subject.as_deref(), Some("Support, 24/7"));
        let sent = d.sim.requests_for(ACTION_UPDATE_CHAT_GROUP);
        let params = &sent.last().expect("logged").params;
        assert_eq!(
            params.get("Subject").map(String::as_str),
            Some("Support, 24/7")
        );
        assert!(
            !params.contains_key("Description"),
            "unchanged field not sent: {params:?}"
        );
        d.at(30).await;
        d.at(3630).await;
        assert_eq!(d.writes(), 2);
    }

    #[tokio::test]
    async fn objects_of_one_space_share_listings_and_confirm_their_own_writes() {
        let names = ["alpha", "bravo", "charlie"];
        let objects: Vec<ChatGroup> = names.iter().map(|n| object(n)).collect();
        let ids: Vec<&str> = objects
            .iter()
            .map(|o| o.spec.group_id.as_deref().unwrap_or_default())
            .collect();
        let sim = simulator(&ids).await;
        let api = HttpCams::new(HttpCamsConfig::default()).expect("client");
        let lister = SharedLister::new(DEFAULT_LIST_WINDOW);
        let endpoint = sim.url();
        let mut objects = objects;
        for seconds in [0, 1, 10, 11, 3610] {
            for object in &mut objects {
                let outcome = reconcile(
                    Input {
                        object,
                        credentials: Ok(credentials()),
                        endpoint_override: Some(&endpoint),
                        now: at(seconds),
                        jitter: 0.0,
                        peers: &cams_operator::reconcile::lifecycle::NoPeers,
                        marks: &cams_operator::reconcile::lifecycle::NoMarks,
                    },
                    &api,
                    &lister,
                )
                .await;
                assert_eq!(cond(&outcome, READY), pair("True", "Synced"), "t={seconds}");
                object.status = Some(outcome.status);
            }
        }
        // t=0: one listing for the three, three writes; t=1: confirmation not due yet; t=10:
        // one shared confirmation listing; t=11: nothing due; t=3610: one resync listing.
        assert_eq!(sim.call_count(ACTION_UPDATE_CHAT_GROUP), 3);
        assert_eq!(sim.call_count(ACTION_LIST_CHAT_GROUP), 3);
        let synced =
            |o: &ChatGroup| find_condition(o.status.as_ref(), SYNCED).map(|c| c.reason.to_string());
        assert!(
            objects
                .iter()
                .all(|o| synced(o).as_deref() == Some("UpToDate"))
        );
    }
}

mod policies {
    use super::*;

    #[tokio::test]
    async fn plan_never_writes_and_lists_pending_changes() {
        let mut d = Driver::new(object("plan").with_management(ManagementPolicy::Plan)).await;
        for seconds in [0, 10, 3600, 7200] {
            let outcome = d.at(seconds).await;
            assert_eq!(cond(&outcome, READY), pair("False", "ChangesPending"));
            let pending = &outcome.status.pending_changes;
            let fields: Vec<&str> = pending.iter().map(|p| p.field.as_str()).collect();
            assert_eq!(fields, ["subject", "description"]);
            assert_eq!(pending[0].observed.as_deref(), Some("Old subject"));
            assert_eq!(pending[0].desired.as_deref(), Some("Support team"));
        }
        assert_eq!(d.writes(), 0);
        assert_eq!(d.group().subject.as_deref(), Some("Old subject"));
    }

    #[tokio::test]
    async fn observe_never_writes() {
        let mut d = Driver::new(object("observe").with_management(ManagementPolicy::Observe)).await;
        for seconds in [0, 10, 3600] {
            let outcome = d.at(seconds).await;
            assert_eq!(cond(&outcome, READY), pair("True", "Observed"));
            assert_eq!(
                outcome
                    .status
                    .observed
                    .as_ref()
                    .and_then(|o| o.subject.as_deref()),
                Some("Old subject")
            );
            assert!(outcome.status.pending_changes.is_empty());
        }
        assert_eq!(d.writes(), 0);
    }

    #[tokio::test]
    async fn drift_is_rewritten_once_under_enforce() {
        let mut d = Driver::new(object("enforce")).await;
        d.converge_then_drift().await;
        let outcome = d.at(3610).await;
        assert!(outcome.drift_found);
        assert_eq!(d.group().subject.as_deref(), Some("Support team"));
        d.at(3620).await;
        d.at(7220).await;
        assert_eq!(d.writes(), 2, "the first write and one correction");
    }

    #[tokio::test]
    async fn drift_is_reported_under_report() {
        let mut d = Driver::new(object("report").with_drift(DriftPolicy::Report)).await;
        d.converge_then_drift().await;
        for seconds in [3610, 7210] {
            let outcome = d.at(seconds).await;
            assert!(outcome.drift_found);
            assert_eq!(cond(&outcome, READY), pair("False", "Drifted"));
            let pending = &outcome.status.pending_changes;
            assert_eq!(pending.len(), 1);
            assert_eq!(pending[0].observed.as_deref(), Some("Renamed in WhatsApp"));
        }
        assert_eq!(d.writes(), 1);
        assert_eq!(d.group().subject.as_deref(), Some("Renamed in WhatsApp"));
    }

    #[tokio::test]
    async fn drift_is_left_alone_under_ignore() {
        let mut d = Driver::new(object("ignore").with_drift(DriftPolicy::Ignore)).await;
        d.converge_then_drift().await;
        let outcome = d.at(3610).await;
        assert!(!outcome.drift_found);
        assert_eq!(cond(&outcome, READY), pair("True", "Synced"));
        assert_eq!(d.writes(), 1);
        assert_eq!(d.group().subject.as_deref(), Some("Renamed in WhatsApp"));
    }

    #[tokio::test]
    async fn paused_makes_no_calls() {
        let mut d = Driver::new(object("paused").with_paused(true)).await;
        let outcome = d.at(0).await;
        assert_eq!(cond(&outcome, READY), pair("False", "Paused"));
        assert_eq!(d.writes() + d.listings(), 0);
    }
}

mod failures {
    use super::*;

    #[tokio::test]
    async fn a_terminal_error_is_not_retried() {
        let mut d = Driver::new(object("denied")).await;
        d.sim
            .force_error(
                &d.object.spec.group_id.clone().unwrap_or_default(),
                ForcedError::gateway(403, "Forbidden.RAM").message("You are not authorized"),
            )
            .expect("forced");
        let outcome = d.at(0).await;
        let failure = outcome.failure.clone().expect("failure");
        assert_eq!(failure.reason, Reason::AccessDenied);
        assert_eq!(failure.class, ErrorClass::Terminal);
        assert_eq!(outcome.requeue, Requeue::AwaitChange);
        assert_eq!(cond(&outcome, STALLED), pair("True", "AccessDenied"));
        let last = outcome.status.last_request.clone().expect("lastRequest");
        assert_eq!(last.code.as_deref(), Some("Forbidden.RAM"));
        assert_eq!(last.http_status, Some(403));
        let message = &find_condition(Some(&outcome.status), READY)
            .expect("Ready")
            .message;
        assert!(message.contains("Forbidden.RAM"), "{message}");
        assert!(
            message.contains(last.request_id.as_deref().expect("request id")),
            "{message}"
        );
        assert_eq!(d.writes(), 1);
        // A controller follows the requeue: AwaitChange means no timed retry. Only a change
        // (here the forced error is lifted and the generation bumped) brings it back.
        d.sim
            .clear_forced_code(&d.object.spec.group_id.clone().unwrap_or_default());
        d.object = d.object.clone().with_generation(2);
        let after_change = d.at(60).await;
        assert_eq!(cond(&after_change, READY), pair("True", "Synced"));
        assert!(find_condition(Some(&after_change.status), STALLED).is_none());
        assert_eq!(d.writes(), 2);
    }

    #[tokio::test]
    async fn bad_credentials_are_terminal() {
        let mut d = Driver::new(object("badkey")).await;
        let endpoint = d.sim.url();
        let outcome = reconcile(
            Input {
                object: &d.object,
                credentials: Ok(Credentials {
                    access_key_id: KEY_ID.to_owned(),
                    access_key_secret: SecretString::new("wrong-secret-value"),
                    security_token: None,
                }),
                endpoint_override: Some(&endpoint),
                now: at(0),
                jitter: 0.0,
                peers: &cams_operator::reconcile::lifecycle::NoPeers,
                marks: &cams_operator::reconcile::lifecycle::NoMarks,
            },
            &d.api,
            &d.lister,
        )
        .await;
        assert_eq!(cond(&outcome, STALLED), pair("True", "CredentialsInvalid"));
        let message = &find_condition(Some(&outcome.status), READY)
            .expect("Ready")
            .message;
        assert!(message.contains("SignatureDoesNotMatch"), "{message}");
        assert!(!message.contains("wrong-secret-value") && !message.contains(KEY_SECRET));
        assert_eq!(d.writes(), 0);
        // The same object with the right key works: a Secret change is all it takes.
        assert_eq!(cond(&d.at(5).await, READY), pair("True", "Synced"));
    }

    #[tokio::test]
    async fn throttling_is_recoverable_and_carries_the_retry_after() {
        let mut d = Driver::new(object("throttled")).await;
        d.sim
            .set_faults(
                ACTION_UPDATE_CHAT_GROUP,
                ActionFaults::none()
                    .throttle_rate(1.0)
                    .throttle_header(5, 2500),
            )
            .expect("faults");
        let outcome = d.at(0).await;
        let failure = outcome.failure.clone().expect("failure");
        assert_eq!(failure.reason, Reason::Throttled);
        assert_eq!(failure.class, ErrorClass::Recoverable);
        assert_eq!(failure.retry_after, Some(Duration::from_millis(2500)));
        match outcome.requeue {
            Requeue::After(delay) => assert!(delay >= Duration::from_millis(2500), "{delay:?}"),
            Requeue::AwaitChange => panic!("throttling must be retried"),
        }
        assert!(find_condition(Some(&outcome.status), STALLED).is_none());
        assert_eq!(outcome.status.retry.as_ref().map(|r| r.attempts), Some(1));
        assert!(outcome.status.last_request.as_ref().is_some_and(|l| {
            l.code
                .as_deref()
                .is_some_and(|c| c.starts_with("Throttling"))
        }));

        // Too early: nothing is sent. Once due and unthrottled: it converges.
        d.at(1).await;
        assert_eq!(d.writes(), 1);
        d.sim.clear_faults(ACTION_UPDATE_CHAT_GROUP);
        let retried = d.at(3).await;
        assert_eq!(cond(&retried, READY), pair("True", "Synced"));
        assert!(retried.status.retry.is_none());
        assert_eq!(d.writes(), 2);
    }

    #[tokio::test]
    async fn a_missing_group_is_reported_and_found_later() {
        let mut d = Driver::new(object("present")).await;
        d.object = object("absent");
        let outcome = d.at(0).await;
        assert_eq!(cond(&outcome, READY), pair("False", "GroupNotFound"));
        assert_eq!(outcome.requeue, Requeue::After(Duration::from_secs(3600)));
        d.sim
            .upsert_group(Group::new(
                SPACE,
                NUMBER,
                d.object.spec.group_id.as_deref().unwrap_or_default(),
            ))
            .expect("group added");
        let later = d.at(3600).await;
        assert_eq!(cond(&later, READY), pair("True", "Synced"));
    }

    #[tokio::test]
    async fn one_listing_serves_a_whole_space() {
        let ids: Vec<String> = (0..30).map(|i| format!("EA303SPACE{i:02}")).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let sim = simulator(&id_refs).await;
        let api = HttpCams::new(HttpCamsConfig::default()).expect("client");
        let lister = SharedLister::new(Duration::from_secs(3600));
        let endpoint = sim.url();
        for id in &ids {
            let object = object("space")
                .with_group_id(id)
                .with_management(ManagementPolicy::Observe);
            let outcome = reconcile(
                Input {
                    object: &object,
                    credentials: Ok(credentials()),
                    endpoint_override: Some(&endpoint),
                    now: at(0),
                    jitter: 0.0,
                    peers: &cams_operator::reconcile::lifecycle::NoPeers,
                    marks: &cams_operator::reconcile::lifecycle::NoMarks,
                },
                &api,
                &lister,
            )
            .await;
            assert_eq!(cond(&outcome, READY), pair("True", "Observed"));
        }
        // 30 groups, pages of 50: one page for all 30 objects.
        assert_eq!(sim.call_count(ACTION_LIST_CHAT_GROUP), 1);
    }
}

mod commands {
    use super::*;

    fn binary() -> Command {
        Command::new(env!("CARGO_BIN_EXE_cams-operator"))
    }

    fn manifest(dir: &Path, object: &ChatGroup) -> std::path::PathBuf {
        let path = dir.join("chatgroup.yaml");
        let mut object = object.clone();
        object.metadata.generation = None;
        std::fs::write(&path, serde_yaml::to_string(&object).expect("yaml")).expect("write");
        path
    }

    struct Run {
        code: i32,
        stdout: String,
        stderr: String,
    }

    /// Runs `cams-operator reconcile -f FILE --endpoint URL` with `env` (and nothing else from
    /// the test's own environment about Alibaba Cloud).
    async fn reconcile_cli(file: &Path, endpoint: Option<String>, env: &[(&str, &str)]) -> Run {
        let mut command = binary();
        command.arg("reconcile").arg("-f").arg(file);
        if let Some(endpoint) = endpoint {
            command.arg("--endpoint").arg(endpoint);
        }
        for name in [
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            "ALIBABA_CLOUD_SECURITY_TOKEN",
        ] {
            command.env_remove(name);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("cams-operator runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    const ENV: [(&str, &str); 2] = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", KEY_SECRET),
    ];

    fn status_of(run: &Run) -> ChatGroupStatus {
        serde_yaml::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not a status ({e}): {}\n{}",
                run.stdout, run.stderr
            )
        })
    }

    fn ready(status: &ChatGroupStatus) -> (String, String) {
        find_condition(Some(status), READY)
            .map(|c| (c.status.as_str().to_owned(), c.reason.to_string()))
            .unwrap_or_default()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconcile_exits_0_when_ready_and_prints_the_status() {
        let object = object("cli-ready");
        let sim = simulator(&[object.spec.group_id.as_deref().unwrap_or_default()]).await;
        let dir = tempfile::tempdir().expect("dir");
        let run = reconcile_cli(&manifest(dir.path(), &object), Some(sim.url()), &ENV).await;
        assert_eq!(
            run.code,
            i32::from(exit::READY),
            "{}\n{}",
            run.stdout,
            run.stderr
        );
        let status = status_of(&run);
        assert_eq!(ready(&status), pair("True", "Synced"));
        assert_eq!(status.observed_generation, Some(1));
        assert!(
            status
                .last_request
                .is_some_and(|l| l.code.as_deref() == Some("OK"))
        );
        assert_eq!(sim.call_count(ACTION_UPDATE_CHAT_GROUP), 1);
        assert!(!run.stdout.contains(KEY_SECRET) && !run.stderr.contains(KEY_SECRET));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconcile_exits_4_for_pending_plan_changes() {
        let object = object("cli-plan").with_management(ManagementPolicy::Plan);
        let sim = simulator(&[object.spec.group_id.as_deref().unwrap_or_default()]).await;
        let dir = tempfile::tempdir().expect("dir");
        let run = reconcile_cli(&manifest(dir.path(), &object), Some(sim.url()), &ENV).await;
        assert_eq!(
            run.code,
            i32::from(exit::NOT_READY),
            "{}\n{}",
            run.stdout,
            run.stderr
        );
        let status = status_of(&run);
        assert_eq!(ready(&status), pair("False", "ChangesPending"));
        assert_eq!(status.pending_changes.len(), 2);
        assert_eq!(sim.call_count(ACTION_UPDATE_CHAT_GROUP), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconcile_exits_2_for_a_terminal_failure() {
        let object = object("cli-terminal");
        let sim = simulator(&[object.spec.group_id.as_deref().unwrap_or_default()]).await;
        let dir = tempfile::tempdir().expect("dir");
        let env = [
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-right-secret"),
        ];
        let run = reconcile_cli(&manifest(dir.path(), &object), Some(sim.url()), &env).await;
        assert_eq!(
            run.code,
            i32::from(exit::TERMINAL),
            "{}\n{}",
            run.stdout,
            run.stderr
        );
        assert_eq!(ready(&status_of(&run)), pair("False", "CredentialsInvalid"));
        assert!(
            run.stderr.contains("SignatureDoesNotMatch"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("not-the-right-secret"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconcile_exits_3_for_a_recoverable_failure() {
        let object = object("cli-throttled");
        let sim = simulator(&[object.spec.group_id.as_deref().unwrap_or_default()]).await;
        sim.set_faults(
            ACTION_LIST_CHAT_GROUP,
            ActionFaults::none().throttle_rate(1.0),
        )
        .expect("faults");
        let dir = tempfile::tempdir().expect("dir");
        let run = reconcile_cli(&manifest(dir.path(), &object), Some(sim.url()), &ENV).await;
        assert_eq!(
            run.code,
            i32::from(exit::RECOVERABLE),
            "{}\n{}",
            run.stdout,
            run.stderr
        );
        let status = status_of(&run);
        assert_eq!(ready(&status), pair("False", "Throttled"));
        assert_eq!(status.retry.map(|r| r.attempts), Some(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconcile_exits_2_for_an_invalid_spec_without_calling_cams() {
        let object = object("cli-invalid").with_resync("10s");
        let sim = simulator(&[object.spec.group_id.as_deref().unwrap_or_default()]).await;
        let dir = tempfile::tempdir().expect("dir");
        let run = reconcile_cli(&manifest(dir.path(), &object), Some(sim.url()), &ENV).await;
        assert_eq!(
            run.code,
            i32::from(exit::TERMINAL),
            "{}\n{}",
            run.stdout,
            run.stderr
        );
        assert_eq!(ready(&status_of(&run)), pair("False", "InvalidSpec"));
        assert!(run.stderr.contains("spec.resyncInterval"), "{}", run.stderr);
        assert_eq!(sim.call_count(ACTION_LIST_CHAT_GROUP), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconcile_exits_1_for_usage_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = reconcile_cli(&dir.path().join("nope.yaml"), None, &ENV).await;
        assert_eq!(missing.code, i32::from(exit::USAGE));
        assert!(missing.stderr.contains("nope.yaml"), "{}", missing.stderr);

        let file = manifest(dir.path(), &object("cli-usage"));
        let no_env = reconcile_cli(&file, None, &[]).await;
        assert_eq!(no_env.code, i32::from(exit::USAGE));
        assert!(
            no_env.stderr.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"),
            "{}",
            no_env.stderr
        );
        assert!(no_env.stdout.is_empty());

        let secret_only = dir.path().join("secret.yaml");
        std::fs::write(
            &secret_only,
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n",
        )
        .expect("write");
        let none = reconcile_cli(&secret_only, None, &ENV).await;
        assert_eq!(none.code, i32::from(exit::USAGE));
        assert!(none.stderr.contains("0 ChatGroup"), "{}", none.stderr);
    }

    #[tokio::test]
    async fn demo_reconciles_every_example() {
        let report = oneshot::run_demo().await.expect("demo runs");
        assert_eq!(report.rows.len(), 6, "{}", report.text);
        let by_file = |file: &str| {
            report
                .rows
                .iter()
                .find(|r| r.file == file)
                .unwrap_or_else(|| panic!("{file} missing: {}", report.text))
        };
        for file in [
            "minimal.yaml",
            "full.yaml",
            "custom-secret-keys.yaml",
            "namespace-default-secret.yaml",
        ] {
            let row = by_file(file);
            assert_eq!(
                (row.ready.as_str(), row.code.as_str()),
                ("True", "OK"),
                "{}",
                report.text
            );
            assert_ne!(row.request_id, "-");
        }
        assert_eq!(by_file("plan-mode.yaml").reason, "ChangesPending");
        assert_eq!(by_file("observe-mode.yaml").reason, "Observed");
        assert_eq!(report.first_pass_writes, 4);
        assert_eq!(report.second_pass_writes, 0);
        for header in ["NAME", "READY", "REASON", "REQUEST-ID", "CODE"] {
            assert!(report.text.contains(header), "{}", report.text);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn demo_command_runs() {
        let output = tokio::task::spawn_blocking(|| binary().arg("demo").output())
            .await
            .expect("join")
            .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("support/support-team"), "{stdout}");
        assert!(
            stdout.contains("0 when reconciling everything again"),
            "{stdout}"
        );
    }
}
