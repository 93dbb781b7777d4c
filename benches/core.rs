//! The cost of the pure reconcile core per object (target: operator overhead per reconcile
//! under 1 ms median).
//!
//! `cargo bench --bench core` prints, per benchmark, the time of one iteration:
//! - `validate/full_spec`: spec -> `ValidSpec` for a spec with every optional field set;
//! - `plan/in_sync` and `plan/update`: the write decision for a group in line with the spec,
//!   and for one whose subject differs (the request is built);
//! - `status/merge_conditions`: the `Ready`/`Synced` conditions of a success against the old
//!   ones;
//! - `status/status_changed`: the "is a status patch needed" check on two equal statuses;
//! - `reconcile/steady_state_noop`: one whole engine reconcile of an in-line object whose
//!   resync is not due (the steady-state path: no CAMS call, status unchanged), against the
//!   in-memory `FakeCams`;
//! - `reconcile/resync_shared_listing`: one whole engine reconcile whose resync is due,
//!   answered from a shared listing of 500 groups made by another object of the space;
//! - `controller/cache_object`: reading an object as the watch delivers it into the
//!   controller's compact cached form (once per watch event);
//! - `controller/cached_to_chatgroup`: the typed `ChatGroup` a reconcile works on, from the
//!   cached form (once per reconcile: the spec and the status are unpacked and parsed).

use std::hint::black_box;
use std::time::Duration;

use cams_operator::cams::fake::FakeCams;
use cams_operator::cams::{Credentials, GroupKey, SecretString};
use cams_operator::controller::cached::CachedChatGroup;
use cams_operator::crd::condition::{READY, SYNCED};
use cams_operator::crd::{ChatGroup, ChatGroupStatus, ObservedGroup, Reason, Time};
use cams_operator::reconcile::engine::{self, CONFIRM_DELAY, Input, Outcome};
use cams_operator::reconcile::plan::plan;
use cams_operator::reconcile::status::{ConditionSpec, ConditionStatus, merge_conditions};
use cams_operator::reconcile::{SharedLister, status_changed, validate};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;

/// Groups in the benchmark's space (a 10,000-object fleet over 20 spaces).
const GROUPS_PER_SPACE: usize = 500;
const T0: i64 = 1_800_000_000;

fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(T0 + seconds).unwrap_or_default()
}

fn credentials() -> Credentials {
    Credentials {
        access_key_id: "LTAI5tBenchAccessKeyId".into(),
        access_key_secret: SecretString::new("bench-access-key-secret-0123456789"),
        security_token: None,
    }
}

fn fixture(index: usize) -> ChatGroup {
    ChatGroup::test(&format!("group-{index:05}"))
        .with_subject(&format!("Support team {index}"))
        .with_description("Questions about orders, returns and invoices")
        .with_picture("https://cdn.example.com/support.jpg")
}

fn key_of(object: &ChatGroup) -> GroupKey {
    GroupKey {
        cust_space_id: object.spec.cust_space_id.clone(),
        business_number: object.spec.business_number.clone(),
        group_id: object.spec.group_id.clone().unwrap_or_default(),
    }
}

/// A fake CAMS whose space holds `GROUPS_PER_SPACE` groups with old subjects.
fn fake_space() -> FakeCams {
    let cams = FakeCams::new();
    for index in 0..GROUPS_PER_SPACE {
        cams.add_group(&key_of(&fixture(index)), Some("Old subject"));
    }
    cams
}

fn run(cams: &FakeCams, lister: &SharedLister, object: &ChatGroup, seconds: i64) -> Outcome {
    block_on(engine::reconcile(
        Input {
            object,
            credentials: Ok(credentials()),
            endpoint_override: None,
            now: at(seconds),
            jitter: 0.5,
            peers: &cams_operator::reconcile::lifecycle::NoPeers,
            marks: &cams_operator::reconcile::lifecycle::NoMarks,
        },
        cams,
        lister,
    ))
}

/// Object 0 after its first write and the read confirming it: in line, `Ready=True`, its last
/// read made at the returned time (seconds after `T0`).
fn converged(cams: &FakeCams) -> (ChatGroup, i64) {
    let lister = SharedLister::new(Duration::ZERO);
    let mut object = fixture(0);
    let written = run(cams, &lister, &object, 0);
    object.status = Some(written.status);
    let confirmed_at = CONFIRM_DELAY.as_secs() as i64 + 5;
    let confirmed = run(cams, &lister, &object, confirmed_at);
    assert!(confirmed.is_ready(), "the fixture converges: {confirmed:?}");
    object.status = Some(confirmed.status);
    (object, confirmed_at)
}

fn bench_pure(c: &mut Criterion) {
    let cams = fake_space();
    let (object, _) = converged(&cams);
    let status = object.status.clone().unwrap_or_default();
    let valid = match validate(&object.spec) {
        Ok(valid) => valid,
        Err(errors) => panic!("the fixture is valid: {errors:?}"),
    };

    c.bench_function("validate/full_spec", |b| {
        b.iter(|| validate(black_box(&object.spec)))
    });

    let in_line = status.observed.clone().unwrap_or_default();
    let drifted = ObservedGroup {
        subject: Some("Someone renamed it".into()),
        ..in_line.clone()
    };
    let mut group = c.benchmark_group("plan");
    group.bench_function("in_sync", |b| {
        b.iter(|| plan(black_box(&valid), Some(black_box(&in_line)), Some(&status)))
    });
    group.bench_function("update", |b| {
        b.iter(|| plan(black_box(&valid), Some(black_box(&drifted)), Some(&status)))
    });
    group.finish();

    let desired = [
        ConditionSpec::new(
            READY,
            ConditionStatus::True,
            Reason::Synced,
            "the group is in line with the spec",
        ),
        ConditionSpec::new(
            SYNCED,
            ConditionStatus::True,
            Reason::UpToDate,
            "the last reconcile found nothing to change",
        ),
    ];
    let now = Time::from_timestamp(at(3600));
    let mut group = c.benchmark_group("status");
    group.bench_function("merge_conditions", |b| {
        b.iter(|| {
            merge_conditions(
                black_box(&status.conditions),
                black_box(&desired),
                Some(1),
                now,
            )
        })
    });
    let same: ChatGroupStatus = status.clone();
    group.bench_function("status_changed", |b| {
        b.iter(|| status_changed(Some(black_box(&status)), black_box(&same)))
    });
    group.finish();
}

fn bench_reconcile(c: &mut Criterion) {
    let cams = fake_space();
    let (object, read_at) = converged(&cams);
    let mut group = c.benchmark_group("reconcile");

    let lister = SharedLister::new(Duration::ZERO);
    let before = cams.calls("ListChatGroup") + cams.calls("UpdateChatGroup");
    group.bench_function("steady_state_noop", |b| {
        b.iter(|| run(&cams, &lister, black_box(&object), read_at + 60))
    });
    let after = cams.calls("ListChatGroup") + cams.calls("UpdateChatGroup");
    assert_eq!(before, after, "the steady-state path makes no CAMS call");

    // A resync due an hour after the last read, served by a listing another object of the
    // space made within the window (warmed once, then shared by every iteration).
    let shared = SharedLister::new(Duration::from_secs(3600 * 24));
    let resync_at = read_at + 3600 * 2;
    let warm = run(&cams, &shared, &fixture(1), resync_at);
    assert!(warm.observed_remote, "the warm-up lists the space");
    group.bench_function("resync_shared_listing", |b| {
        b.iter(|| run(&cams, &shared, black_box(&object), resync_at))
    });
    group.finish();

    let value = match serde_json::to_value(&object) {
        Ok(value) => value,
        Err(err) => panic!("the fixture serializes: {err}"),
    };
    let text = value.to_string();
    c.bench_function("controller/cache_object", |b| {
        b.iter(|| serde_json::from_str::<CachedChatGroup>(black_box(&text)))
    });
    let cached = match CachedChatGroup::from_value(value) {
        Ok(cached) => cached,
        Err(err) => panic!("the fixture caches: {err}"),
    };
    c.bench_function("controller/cached_to_chatgroup", |b| {
        b.iter(|| black_box(&cached).chatgroup())
    });
}

criterion_group!(benches, bench_pure, bench_reconcile);
criterion_main!(benches);
