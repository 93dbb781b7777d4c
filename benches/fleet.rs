//! The fleet benchmark: the release `cams-operator run` binary against the
//! Kubernetes API test server and the CAMS simulator, with N ChatGroups spread over several
//! spaces. Run it with `scripts/bench-fleet [N...]` (see `docs/performance.md`).
//!
//! This process is the load generator: it serves the Kubernetes API (the test server of
//! `crates/kube-test-server`) and CAMS (the simulator, with a fixed latency per call) on
//! loopback, seeds the objects, and measures. The operator is a separate process, spawned
//! from the binary Cargo built with this benchmark (`CARGO_BIN_EXE_cams-operator`, the
//! release profile under `cargo bench`).
//!
//! For each N:
//! 1. **Cold start**: every group starts with an old subject, so each object needs one write.
//!    Measured from spawning the operator: `/readyz`, the first CAMS call, the first status
//!    patch, all objects `Ready=True`, and all writes confirmed by a read (the end of the cold
//!    start); CAMS calls (listing pages and writes) and Kubernetes requests per object; peak
//!    RSS and CPU seconds of the operator; the reconcile overhead histogram.
//! 2. **Steady state**: the operator is stopped (SIGTERM) and started again with its clock
//!    compressed (`CAMS_OPERATOR_TIME_SCALE`, so a `resyncInterval` of 1 min passes in a few
//!    real seconds). After a warm-up of 1.5 resync periods, several periods are observed:
//!    CAMS writes and listings per space per period, status patches, CPU, RSS and overhead.
//! 3. **Physical floor**: with the operator gone, `HttpCams` calls the simulator in a tight
//!    loop at the same concurrency: the fastest signed round trips the machine allows.
//!
//! It prints a Markdown table. It runs only under `cargo bench` (which passes `--bench`):
//! built in test mode (`cargo test --benches`, `cargo nextest run --all-targets`) it lists no
//! tests and exits at once, so the test suite never runs it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cams_operator::cams::client::{HttpCams, HttpCamsConfig};
use cams_operator::cams::{
    ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP, CamsApi, Credentials, Endpoint, GroupKey,
    ListChatGroupRequest, SecretString, UpdateChatGroupRequest,
};
use cams_operator::controller::command::TIME_SCALE_ENV;
use cams_operator::crd::{API_GROUP, API_VERSION, KIND};
use cams_operator::reconcile::observe::LIST_PAGE_SIZE;
use cams_sim::{ActionFaults, Group, RunningSim, Simulator};
use clap::Parser;
use kube_test_server::{RequestKind, RequestRecord, ResourceKind, TestApiServer, kinds};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_ID: &str = "LTAI5tFleetBenchmark";
const KEY_SECRET: &str = "fleet-benchmark-secret-0123456789";
const NUMBER: &str = "8613800001234";
const SECRET_NAME: &str = "cams-credentials";
/// The committed CRD, which the API test server serves and validates against.
const CRD_YAML: &str = include_str!("../crds/chatgroup.yaml");

/// The ChatGroup kind the CRD defines.
fn chatgroups() -> ResourceKind {
    static KIND: std::sync::OnceLock<ResourceKind> = std::sync::OnceLock::new();
    KIND.get_or_init(|| {
        let crd: Value = serde_yaml::from_str(CRD_YAML).expect("the CRD parses");
        ResourceKind::from_crd(&crd).expect("the CRD defines a kind")
    })
    .clone()
}

/// Polling interval while waiting for the first reconcile.
const STEP: Duration = Duration::from_millis(5);

/// The fleet benchmark: `cargo bench --bench fleet -- [OPTIONS] [N]...`.
#[derive(Parser, Debug, Clone)]
#[command(name = "fleet", about = "Fleet benchmark of cams-operator")]
struct Config {
    /// Fleet sizes to run, one after the other.
    #[arg(default_values_t = [1_000usize, 10_000])]
    sizes: Vec<usize>,
    /// CAMS spaces the objects are spread over (one namespace, with its own Secret, each).
    #[arg(long, default_value_t = 20)]
    spaces: usize,
    /// Simulated CAMS latency of every call, milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// The operator's `--cams-qps`.
    #[arg(long, default_value_t = 200.0)]
    qps: f64,
    /// The operator's `--concurrency` (and the concurrency of the physical-floor loop).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Unrelated Secrets of 8 KiB seeded in 40 other namespaces, as Helm releases leave them in
    /// real clusters: the operator watches Secrets cluster-wide, as metadata only.
    #[arg(long, default_value_t = 0)]
    unrelated_secrets: usize,
    /// The operator's `--kube-qps`. High by default, so that the figures measure the operator
    /// against the CAMS budget rather than the client-side Kubernetes budget (its default of
    /// 20 per second would make a 10,000-object cold start last about an hour).
    #[arg(long, default_value_t = 2000.0)]
    kube_qps: f64,
    /// The operator's `--kube-burst`.
    #[arg(long, default_value_t = 4000)]
    kube_burst: u32,
    /// Start from a fleet already in line with CAMS: every group already has the desired
    /// subject and description, so the first run makes no write (as when the operator is
    /// installed over groups set up by hand, or replaced). Used for the largest sizes, whose
    /// cold-start writes alone would take minutes at `--cams-qps`.
    #[arg(long)]
    in_line: bool,
    /// `spec.resyncInterval` of every object.
    #[arg(long, default_value = "1m")]
    resync: humantime::Duration,
    /// Time compression of the steady-state run (`CAMS_OPERATOR_TIME_SCALE`). Default: a
    /// real resync period of 6 s, or 2 ms per object when longer (at most 10, at least 1), so
    /// that the compressed steady state stays within what 2 cores serve.
    #[arg(long)]
    time_scale: Option<f64>,
    /// Resync periods observed in the steady state.
    #[arg(long, default_value_t = 5)]
    periods: u32,
    /// Calls per action in the physical-floor loop.
    #[arg(long, default_value_t = 2_000)]
    raw_calls: usize,
    /// Gives up on a phase after this long.
    #[arg(long, default_value = "20m")]
    timeout: humantime::Duration,
    /// `RUST_LOG` of the operator (its log is kept in a temp dir; warnings are counted).
    #[arg(long, default_value = "warn")]
    operator_log: String,
    /// An extra environment variable of the operator, `NAME=VALUE` (repeatable), e.g.
    /// `MALLOC_ARENA_MAX=2`.
    #[arg(long = "operator-env")]
    operator_env: Vec<String>,
    /// A command prefix for the operator, split on spaces (profiling, e.g.
    /// `heaptrack -o /tmp/operator`); RSS and CPU are then those of the wrapper.
    #[arg(long)]
    wrapper: Option<String>,
    /// Keeps the temp dir (kubeconfig, operator logs) and prints its path.
    #[arg(long)]
    keep: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    // `cargo bench` passes `--bench`. Without it this is a test run (`cargo test --benches`,
    // `cargo nextest run --all-targets`, which lists tests with `--list`): there are none.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let config = Config::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("fleet: cannot start the tokio runtime: {err}");
            std::process::exit(2);
        }
    };
    let machine = machine();
    let mut reports = Vec::new();
    for &n in &config.sizes {
        eprintln!("fleet: N = {n} ...");
        match runtime.block_on(run(&config, n)) {
            Ok(report) => {
                eprintln!("{}", report.summary());
                reports.push(report);
            }
            Err(err) => {
                eprintln!("fleet: N = {n} failed: {err}");
                std::process::exit(1);
            }
        }
    }
    println!("{}", markdown(&config, &machine, &reports));
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// Overhead quantiles read from the `reconcile_overhead_seconds` histogram.
#[derive(Debug, Default, Clone)]
struct Overhead {
    count: u64,
    median: Option<f64>,
    p99: Option<f64>,
}

#[derive(Debug, Default, Clone)]
struct ColdStart {
    readyz: Option<Duration>,
    first_call: Option<Duration>,
    first_patch: Option<Duration>,
    all_ready: Duration,
    all_confirmed: Duration,
    lists_at_ready: u64,
    writes_at_ready: u64,
    lists: u64,
    writes: u64,
    status_patches: usize,
    secret_reads: usize,
    events: usize,
    kube_requests: usize,
    cpu: f64,
    rss_kib: u64,
    overhead: Overhead,
    own: Overhead,
    reconciles: f64,
    warnings: usize,
    object_bytes: usize,
    managed_fields_bytes: usize,
}

#[derive(Debug, Default, Clone)]
struct Restart {
    writes: u64,
    lists: u64,
    status_patches: usize,
}

#[derive(Debug, Default, Clone)]
struct Steady {
    time_scale: f64,
    period: Duration,
    observed: Duration,
    lists: u64,
    writes: u64,
    status_patches: usize,
    secret_reads: usize,
    kube_requests: usize,
    cpu: f64,
    rss_kib: u64,
    overhead: Overhead,
    own: Overhead,
    reconciles: f64,
    warnings: usize,
}

#[derive(Debug, Default, Clone)]
struct Raw {
    list_rate: f64,
    list_median: Duration,
    update_rate: f64,
    update_median: Duration,
}

#[derive(Debug, Clone)]
struct Report {
    n: usize,
    per_space: usize,
    pages_per_walk: u64,
    cold: ColdStart,
    restart: Restart,
    steady: Steady,
    raw: Raw,
    harness_cpu: f64,
    load_before: String,
}

impl Report {
    fn summary(&self) -> String {
        format!(
            "fleet: N = {}: all Ready after {:.1} s, confirmed after {:.1} s; {} listing pages, {} writes; steady {} pages / {} writes",
            self.n,
            self.cold.all_ready.as_secs_f64(),
            self.cold.all_confirmed.as_secs_f64(),
            self.cold.lists,
            self.cold.writes,
            self.steady.lists,
            self.steady.writes
        )
    }
}

// ---------------------------------------------------------------------------------------------
// One run

async fn run(config: &Config, n: usize) -> Result<Report, String> {
    let harness_cpu_start = cpu_seconds(std::process::id()).unwrap_or_default();
    let load_before = load_average();
    let spaces = config.spaces.clamp(1, n.max(1));
    let per_space = n.div_ceil(spaces);
    let pages_per_walk = (per_space as u64)
        .div_ceil(u64::from(LIST_PAGE_SIZE))
        .max(1);
    let timeout: Duration = config.timeout.into();

    // CAMS, with the same latency on both actions; the request log is kept small.
    let latency = ActionFaults::none().latency_ms(config.latency_ms);
    let mut builder = Simulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .faults(ACTION_LIST_CHAT_GROUP, latency.clone())
        .faults(ACTION_UPDATE_CHAT_GROUP, latency)
        .log_capacity(100);
    for index in 0..n {
        let group = Group::new(space_id(index % spaces), NUMBER, group_id(index));
        builder = builder.group(if config.in_line {
            group.subject(subject(index)).description(DESCRIPTION)
        } else {
            group.subject("Old subject")
        });
    }
    let sim = builder
        .start()
        .await
        .map_err(|e| format!("simulator: {e}"))?;

    // Kubernetes: one namespace per space, its Secret, and the ChatGroups.
    let (api, _client) = TestApiServer::builder().crd(CRD_YAML).start().await;
    let resync = humantime::format_duration(config.resync.into()).to_string();
    // `seed` creates each namespace on first use, as an administrator would beforehand.
    api.seed(&kinds::SECRETS, (0..spaces).map(secret));
    api.seed_unrelated_secrets(config.unrelated_secrets, 8 * 1024, 40);
    api.seed(
        &chatgroups(),
        (0..n).map(|index| chatgroup(index, spaces, &sim.url(), &resync)),
    );
    api.clear_log();

    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    if config.keep {
        eprintln!("fleet: logs in {}", dir.path().display());
    }
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig_yaml()).map_err(|e| format!("kubeconfig: {e}"))?;

    // 1. Cold start.
    let cold_log = dir.path().join("operator-cold.log");
    let admin = free_port()?;
    let started = Instant::now();
    let mut operator = spawn_operator(config, &kubeconfig, admin, &cold_log, None)?;
    let mut cold = ColdStart::default();
    let writes_expected = if config.in_line { 0 } else { n };
    let outcome = cold_start(
        &mut cold,
        &api,
        &sim,
        (n, writes_expected),
        admin,
        started,
        timeout,
    )
    .await;
    let pid = operator.id();
    if let Err(err) = outcome {
        drop(operator);
        return Err(format!("{err}\n{}", tail(&cold_log)));
    }
    cold.lists = sim.call_count(ACTION_LIST_CHAT_GROUP);
    cold.writes = sim.call_count(ACTION_UPDATE_CHAT_GROUP);
    let requests = api.requests();
    cold.status_patches = count(&requests, RequestRecord::is_status_patch);
    cold.secret_reads = count(&requests, is_secret_read);
    cold.events = count(&requests, is_event_create);
    cold.kube_requests = requests.len();
    drop(requests);
    let objects = api.list(&chatgroups(), None);
    let bytes: usize = objects
        .iter()
        .map(|o| serde_json::to_vec(o).map_or(0, |v| v.len()))
        .sum();
    let managed: usize = objects
        .iter()
        .map(|o| serde_json::to_vec(&o["metadata"]["managedFields"]).map_or(0, |v| v.len()))
        .sum();
    cold.object_bytes = bytes / objects.len().max(1);
    cold.managed_fields_bytes = managed / objects.len().max(1);
    if config.keep
        && let Some(first) = objects.first()
    {
        let _ = std::fs::write(
            dir.path().join("object.json"),
            serde_json::to_string_pretty(first).unwrap_or_default(),
        );
    }
    drop(objects);
    cold.cpu = cpu_seconds(pid).unwrap_or_default();
    cold.rss_kib = peak_rss_kib(pid).unwrap_or_default();
    let metrics = scrape(admin).await?;
    cold.overhead = overhead(&metrics, "", OVERHEAD);
    cold.own = overhead(&metrics, "", SELF);
    cold.reconciles = reconciles(&metrics);
    operator.terminate()?;
    cold.warnings = warnings(&cold_log);

    // 2. Restart with a compressed clock, warm up, observe.
    api.clear_log();
    sim.reset_counters();
    let resync_period: Duration = config.resync.into();
    let time_scale = config.time_scale.unwrap_or_else(|| {
        let real = (n as f64 * 0.002).max(6.0);
        (resync_period.as_secs_f64() / real).clamp(1.0, 10.0)
    });
    let period = resync_period.div_f64(time_scale.max(1.0));
    let steady_log = dir.path().join("operator-steady.log");
    let admin = free_port()?;
    let mut operator = spawn_operator(config, &kubeconfig, admin, &steady_log, Some(time_scale))?;
    let pid = operator.id();
    tokio::time::sleep(period.mul_f64(1.5)).await;
    let restart = Restart {
        writes: sim.call_count(ACTION_UPDATE_CHAT_GROUP),
        lists: sim.call_count(ACTION_LIST_CHAT_GROUP),
        status_patches: api.count(RequestRecord::is_status_patch),
    };
    let before = scrape(admin).await?;
    let cpu_before = cpu_seconds(pid).unwrap_or_default();
    sim.reset_counters();
    api.clear_log();
    let window = Instant::now();
    tokio::time::sleep(period * config.periods).await;
    let lists = sim.call_count(ACTION_LIST_CHAT_GROUP);
    let writes = sim.call_count(ACTION_UPDATE_CHAT_GROUP);
    let observed = window.elapsed();
    let requests = api.requests();
    let after = scrape(admin).await?;
    let mut steady = Steady {
        time_scale,
        period,
        observed,
        lists,
        writes,
        status_patches: count(&requests, RequestRecord::is_status_patch),
        secret_reads: count(&requests, is_secret_read),
        kube_requests: requests.len(),
        cpu: cpu_seconds(pid).unwrap_or_default() - cpu_before,
        rss_kib: peak_rss_kib(pid).unwrap_or_default(),
        overhead: overhead(&after, &before, OVERHEAD),
        own: overhead(&after, &before, SELF),
        reconciles: reconciles(&after) - reconciles(&before),
        warnings: 0,
    };
    drop(requests);
    operator.terminate()?;
    steady.warnings = warnings(&steady_log);

    // 3. The physical floor, on the same simulator.
    let raw = physical_floor(config, &sim, n, spaces).await?;
    sim.shutdown().await;

    if config.keep {
        let _ = dir.keep();
    }
    Ok(Report {
        n,
        per_space,
        pages_per_walk,
        cold,
        restart,
        steady,
        raw,
        harness_cpu: cpu_seconds(std::process::id()).unwrap_or_default() - harness_cpu_start,
        load_before,
    })
}

/// Watches the cold start until every write is confirmed. `sizes` is the number of objects
/// and the number of writes they need (0 for a fleet already in line).
async fn cold_start(
    cold: &mut ColdStart,
    api: &TestApiServer,
    sim: &RunningSim,
    sizes: (usize, usize),
    admin: u16,
    started: Instant,
    timeout: Duration,
) -> Result<(), String> {
    // The first second at a fine grain: readiness, first call, first status patch (the
    // `Reconciling` mark comes before the first call, so the loop waits for all three).
    while cold.first_patch.is_none() || cold.readyz.is_none() || cold.first_call.is_none() {
        if started.elapsed() > timeout {
            return Err("not ready, or no CAMS call or status patch, before the timeout".into());
        }
        if cold.readyz.is_none() && http_get(admin, "/readyz").await.is_ok_and(|r| r.0 == 200) {
            cold.readyz = Some(started.elapsed());
        }
        if cold.first_call.is_none()
            && sim.call_count(ACTION_LIST_CHAT_GROUP) + sim.call_count(ACTION_UPDATE_CHAT_GROUP) > 0
        {
            cold.first_call = Some(started.elapsed());
        }
        if cold.first_patch.is_none() && api.count(RequestRecord::is_status_patch) > 0 {
            cold.first_patch = Some(started.elapsed());
        }
        tokio::time::sleep(STEP).await;
    }
    // Then the whole fleet. Every object that needs a write needs it before it can be Ready,
    // so the simulator's cheap counter is watched first; the store (a copy of every object) is
    // listed only once all writes are made, keeping the harness's own load small.
    let (n, writes) = sizes;
    while sim.call_count(ACTION_UPDATE_CHAT_GROUP) < writes as u64 {
        if started.elapsed() > timeout {
            return Err(format!(
                "the fleet did not converge before the timeout ({} of {n} written)",
                sim.call_count(ACTION_UPDATE_CHAT_GROUP)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Without writes to wait for, the count of status patches stands in: each object gets two
    // (the Reconciling mark and its result) on its way to Ready. Waiting until they are made,
    // or until the count stops moving for two seconds, keeps the copies of the store (50,000
    // objects) to a few.
    if writes == 0 {
        let mut last = (0, started.elapsed());
        loop {
            let patches = api.count(RequestRecord::is_status_patch);
            if patches >= 2 * n || started.elapsed() > timeout {
                break;
            }
            if patches != last.0 {
                last = (patches, started.elapsed());
            } else if started.elapsed() - last.1 > Duration::from_secs(2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Listing the store copies every object: at the largest sizes, less often.
    let grain = Duration::from_millis(match n {
        0..=2_000 => 50,
        2_001..=20_000 => 250,
        _ => 1_000,
    });
    let mut ready_at = None;
    loop {
        if started.elapsed() > timeout {
            return Err(format!(
                "the fleet did not converge before the timeout ({} of {n} Ready)",
                ready_count(api).0
            ));
        }
        if cold.readyz.is_none() && http_get(admin, "/readyz").await.is_ok_and(|r| r.0 == 200) {
            cold.readyz = Some(started.elapsed());
        }
        let (ready, written_and_confirmed) = ready_count(api);
        // Without writes, an object is done once it is Ready (its first read was the check).
        let confirmed = if writes == 0 {
            ready
        } else {
            written_and_confirmed
        };
        if ready_at.is_none() && ready == n {
            let at = started.elapsed();
            ready_at = Some(at);
            cold.all_ready = at;
            cold.lists_at_ready = sim.call_count(ACTION_LIST_CHAT_GROUP);
            cold.writes_at_ready = sim.call_count(ACTION_UPDATE_CHAT_GROUP);
        }
        if confirmed == n {
            cold.all_confirmed = started.elapsed();
            return Ok(());
        }
        tokio::time::sleep(grain).await;
    }
}

/// Objects with `Ready=True`, and those whose last write was confirmed by a later read.
fn ready_count(api: &TestApiServer) -> (usize, usize) {
    let objects = api.list(&chatgroups(), None);
    let mut ready = 0;
    let mut confirmed = 0;
    for object in &objects {
        let status = &object["status"];
        let is_ready = status["conditions"].as_array().is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if !is_ready {
            continue;
        }
        ready += 1;
        let time = |v: &Value| v.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let observed = time(&status["observed"]["time"]);
        let written = time(&status["lastRequest"]["time"]);
        if let (Some(observed), Some(written)) = (observed, written)
            && observed > written
        {
            confirmed += 1;
        }
    }
    (ready, confirmed)
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn space_id(space: usize) -> String {
    format!("cams-bench-{space:02}")
}

fn namespace(space: usize) -> String {
    format!("bench-{space:02}")
}

/// The description every ChatGroup asks for.
const DESCRIPTION: &str = "Questions about orders, returns and invoices";

/// The subject ChatGroup `index` asks for.
fn subject(index: usize) -> String {
    format!("Support team {index}")
}

fn group_id(index: usize) -> String {
    format!("EA303B{index:06}")
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn secret(space: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME, "namespace": namespace(space)},
        "data": {"accessKeyId": b64(KEY_ID), "accessKeySecret": b64(KEY_SECRET)},
    })
}

fn chatgroup(index: usize, spaces: usize, endpoint: &str, resync: &str) -> Value {
    let space = index % spaces;
    json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": KIND,
        "metadata": {
            "name": format!("group-{index:06}"),
            "namespace": namespace(space),
            "generation": 1,
        },
        "spec": {
            "custSpaceId": space_id(space),
            "businessNumber": NUMBER,
            "groupId": group_id(index),
            "subject": subject(index),
            "description": DESCRIPTION,
            "endpoint": endpoint,
            "resyncInterval": resync,
        },
    })
}

// ---------------------------------------------------------------------------------------------
// The operator process

fn spawn_operator(
    config: &Config,
    kubeconfig: &Path,
    admin: u16,
    log: &Path,
    time_scale: Option<f64>,
) -> Result<Operator, String> {
    let stderr = std::fs::File::create(log).map_err(|e| format!("operator log: {e}"))?;
    let addr = format!("127.0.0.1:{admin}");
    let binary = env!("CARGO_BIN_EXE_cams-operator");
    let wrapper: Vec<&str> = config
        .wrapper
        .as_deref()
        .map(|w| w.split_whitespace().collect())
        .unwrap_or_default();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    command
        .args(["run", "--metrics-addr", &addr, "--health-addr", &addr])
        .args(["--cams-qps", &config.qps.to_string()])
        .args(["--concurrency", &config.concurrency.to_string()])
        .args(["--kube-qps", &config.kube_qps.to_string()])
        .args(["--kube-burst", &config.kube_burst.to_string()])
        .args(["--log-format", "json"])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", &config.operator_log)
        .env_remove(TIME_SCALE_ENV)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    for name in [
        "CAMS_OPERATOR_NAMESPACES",
        "CAMS_OPERATOR_SELECTOR",
        "CAMS_OPERATOR_LEADER_ELECTION",
    ] {
        command.env_remove(name);
    }
    for pair in &config.operator_env {
        if let Some((name, value)) = pair.split_once('=') {
            command.env(name, value);
        }
    }
    if let Some(scale) = time_scale {
        command.env(TIME_SCALE_ENV, scale.to_string());
    }
    command
        .process_group(0)
        .spawn()
        .map(|child| Operator { child })
        .map_err(|e| format!("cannot start {}: {e}", env!("CARGO_BIN_EXE_cams-operator")))
}

/// The operator process, in a process group of its own (with a wrapper, the group holds the
/// wrapper and the operator). Dropping it kills the group if it still runs.
struct Operator {
    child: Child,
}

impl Operator {
    fn id(&self) -> u32 {
        self.child.id()
    }

    fn signal_group(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// SIGTERM, then waits for the graceful exit (SIGKILL after 30 s).
    fn terminate(&mut self) -> Result<(), String> {
        if !self.signal_group("-TERM") {
            return Err("kill -TERM failed".into());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("waiting for the operator: {e}")),
            }
        }
        Err("the operator did not stop within 30 s of SIGTERM".into())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.signal_group("-KILL");
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> Result<u16, String> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn warnings(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .count()
}

/// The 1-, 5- and 15-minute load averages (other work on the machine skews every figure).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// utime + stime of a process, seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// VmHWM (peak resident set), KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Metrics

async fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let io = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    let text = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| format!("GET {path}: timed out"))?
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: no status line"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

async fn scrape(port: u16) -> Result<String, String> {
    let (status, body) = http_get(port, "/metrics").await?;
    if status != 200 {
        return Err(format!("GET /metrics answered {status}"));
    }
    Ok(body)
}

/// Reconcile duration minus CAMS waits.
const OVERHEAD: &str = "cams_operator_reconcile_overhead_seconds";
/// Reconcile duration minus CAMS and Kubernetes API waits.
const SELF: &str = "cams_operator_reconcile_self_seconds";

/// Cumulative bucket counts of the histogram `name`, by upper bound.
fn buckets(metrics: &str, name: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{name}_bucket{{le=\"");
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (le, value) = rest.split_once("\"}")?;
            Some((le.to_owned(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// Median and p99 of the histogram `name` recorded between `before` and `metrics`,
/// interpolating linearly within a bucket (as Prometheus's `histogram_quantile` does).
fn overhead(metrics: &str, before: &str, name: &str) -> Overhead {
    let after = buckets(metrics, name);
    let before = buckets(before, name);
    let mut bounds: Vec<(f64, u64)> = after
        .iter()
        .map(|(le, count)| {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            (
                bound,
                count.saturating_sub(before.get(le).copied().unwrap_or(0)),
            )
        })
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = bounds.last().map_or(0, |b| b.1);
    let quantile = |q: f64| -> Option<f64> {
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut lower = (0.0, 0u64);
        for &(bound, cumulative) in &bounds {
            if cumulative as f64 >= rank {
                if bound.is_infinite() {
                    return Some(lower.0);
                }
                let inside = (cumulative - lower.1) as f64;
                let fraction = if inside > 0.0 {
                    (rank - lower.1 as f64) / inside
                } else {
                    1.0
                };
                return Some(lower.0 + (bound - lower.0) * fraction);
            }
            lower = (bound, cumulative);
        }
        None
    };
    Overhead {
        count: total,
        median: quantile(0.5),
        p99: quantile(0.99),
    }
}

/// Total reconciles (`cams_operator_reconciles_total`, all results).
fn reconciles(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("cams_operator_reconciles_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn count(requests: &[RequestRecord], predicate: impl Fn(&RequestRecord) -> bool) -> usize {
    requests.iter().filter(|r| predicate(r)).count()
}

fn is_secret_read(record: &RequestRecord) -> bool {
    record.kind == RequestKind::Get && record.is_for(&kinds::SECRETS)
}

fn is_event_create(record: &RequestRecord) -> bool {
    record.kind == RequestKind::Create
        && (record.is_for(&kinds::EVENTS) || record.is_for(&kinds::CORE_EVENTS))
}

// ---------------------------------------------------------------------------------------------
// The physical floor

async fn physical_floor(
    config: &Config,
    sim: &RunningSim,
    n: usize,
    spaces: usize,
) -> Result<Raw, String> {
    let client = Arc::new(HttpCams::new(HttpCamsConfig::default()).map_err(|e| e.to_string())?);
    let endpoint = Endpoint::from_url(&sim.url());
    let (list_rate, list_median) = raw_loop(config, &client, &endpoint, |i| {
        RawCall::List(ListChatGroupRequest {
            cust_space_id: space_id(i % spaces),
            business_number: NUMBER.into(),
            channel_type: Some("WHATSAPP".into()),
            group_status: None,
            subject: None,
            page_index: 1,
            page_size: LIST_PAGE_SIZE,
        })
    })
    .await?;
    let (update_rate, update_median) = raw_loop(config, &client, &endpoint, |i| {
        let index = i % n.max(1);
        RawCall::Update(UpdateChatGroupRequest {
            key: GroupKey {
                cust_space_id: space_id(index % spaces),
                business_number: NUMBER.into(),
                group_id: group_id(index),
            },
            channel_type: Some("WHATSAPP".into()),
            subject: Some(format!("Raw round trip {i}")),
            description: None,
            profile_picture_file: None,
        })
    })
    .await?;
    Ok(Raw {
        list_rate,
        list_median,
        update_rate,
        update_median,
    })
}

enum RawCall {
    List(ListChatGroupRequest),
    Update(UpdateChatGroupRequest),
}

/// `raw_calls` calls from `concurrency` tasks: calls per second and the median latency.
async fn raw_loop(
    config: &Config,
    client: &Arc<HttpCams>,
    endpoint: &Endpoint,
    call: impl Fn(usize) -> RawCall,
) -> Result<(f64, Duration), String> {
    let credentials = Credentials {
        access_key_id: KEY_ID.into(),
        access_key_secret: SecretString::new(KEY_SECRET),
        security_token: None,
    };
    let calls: Vec<RawCall> = (0..config.raw_calls).map(call).collect();
    let queue = Arc::new(std::sync::Mutex::new(calls));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        let queue = queue.clone();
        let client = client.clone();
        let endpoint = endpoint.clone();
        let credentials = credentials.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(call) = next else { break };
                let at = Instant::now();
                let result = match &call {
                    RawCall::List(r) => client
                        .list_chat_group(&endpoint, &credentials, r)
                        .await
                        .map(|_| ()),
                    RawCall::Update(r) => client
                        .update_chat_group(&endpoint, &credentials, r)
                        .await
                        .map(|_| ()),
                };
                result.map_err(|e| format!("raw call failed: {e}"))?;
                latencies.push(at.elapsed());
            }
            Ok::<_, String>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let median = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default();
    Ok((latencies.len() as f64 / elapsed.as_secs_f64(), median))
}

// ---------------------------------------------------------------------------------------------
// Report

struct Machine {
    cpus: usize,
    model: String,
    kernel: String,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        model,
        kernel,
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn micros(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.0} µs", v * 1e6))
}

fn markdown(config: &Config, machine: &Machine, reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {} CPUs, {}, Linux {}.\n",
        machine.cpus, machine.model, machine.kernel
    );
    let _ = writeln!(
        out,
        "Settings: {} spaces, CAMS latency {} ms per call, --cams-qps {}, --concurrency {}, \
         --kube-qps {}, resyncInterval {}, steady state over {} periods, {} raw calls per \
         action, {} unrelated Secrets of 8 KiB{}.\n",
        config.spaces,
        config.latency_ms,
        config.qps,
        config.concurrency,
        config.kube_qps,
        config.resync,
        config.periods,
        config.raw_calls,
        config.unrelated_secrets,
        if config.in_line {
            "; the fleet starts in line with CAMS (no writes needed)"
        } else {
            ""
        }
    );
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Report) -> String| {
        rows.push((name.to_owned(), reports.iter().map(f).collect()));
    };
    let qps = config.qps;
    row("load average before the run (1, 5, 15 min)", &|r| {
        r.load_before.clone()
    });
    row("groups per space", &|r| r.per_space.to_string());
    row("listing pages per space walk", &|r| {
        r.pages_per_walk.to_string()
    });
    row("**cold start**", &|_| String::new());
    row("start to /readyz", &|r| secs(r.cold.readyz));
    row("start to first CAMS call", &|r| secs(r.cold.first_call));
    row(
        "start to first status patch (a Reconciling mark or a result)",
        &|r| secs(r.cold.first_patch),
    );
    row("start to all Ready", &|r| secs(Some(r.cold.all_ready)));
    row("budget floor for the calls made until all Ready", &|r| {
        format!(
            "{:.2} s",
            (r.cold.lists_at_ready + r.cold.writes_at_ready) as f64 / qps
        )
    });
    row("start to all writes confirmed by a read", &|r| {
        secs(Some(r.cold.all_confirmed))
    });
    row("budget floor for all cold-start calls", &|r| {
        format!("{:.2} s", (r.cold.lists + r.cold.writes) as f64 / qps)
    });
    row("physical floor for all cold-start calls", &|r| {
        format!(
            "{:.2} s",
            r.cold.lists as f64 / r.raw.list_rate.max(1e-9)
                + r.cold.writes as f64 / r.raw.update_rate.max(1e-9)
        )
    });
    row("CAMS writes per object", &|r| {
        format!("{:.3}", r.cold.writes as f64 / r.n as f64)
    });
    row("CAMS listing pages per object", &|r| {
        format!(
            "{:.3} ({} pages = {:.1} walks per space)",
            r.cold.lists as f64 / r.n as f64,
            r.cold.lists,
            r.cold.lists as f64 / (r.pages_per_walk as f64 * config.spaces as f64)
        )
    });
    row("reconciles per object", &|r| {
        format!("{:.2}", r.cold.reconciles / r.n as f64)
    });
    row("Kubernetes requests per object", &|r| {
        format!(
            "{:.2} ({:.2} status patches, {:.2} Secret reads, {:.2} Events)",
            r.cold.kube_requests as f64 / r.n as f64,
            r.cold.status_patches as f64 / r.n as f64,
            r.cold.secret_reads as f64 / r.n as f64,
            r.cold.events as f64 / r.n as f64
        )
    });
    row("operator CPU", &|r| format!("{:.2} s", r.cold.cpu));
    row("operator CPU per reconcile", &|r| {
        format!("{:.0} µs", r.cold.cpu / r.cold.reconciles.max(1.0) * 1e6)
    });
    row("operator peak RSS", &|r| {
        format!("{:.1} MiB", r.cold.rss_kib as f64 / 1024.0)
    });
    row(
        "a converged ChatGroup as JSON (of which managedFields)",
        &|r| {
            format!(
                "{} B ({} B)",
                r.cold.object_bytes, r.cold.managed_fields_bytes
            )
        },
    );
    row("reconcile overhead excluding CAMS, median / p99", &|r| {
        format!(
            "{} / {}",
            micros(r.cold.overhead.median),
            micros(r.cold.overhead.p99)
        )
    });
    row(
        "... also excluding the Kubernetes API, median / p99",
        &|r| format!("{} / {}", micros(r.cold.own.median), micros(r.cold.own.p99)),
    );
    row("operator warnings logged", &|r| r.cold.warnings.to_string());
    row("**restart (first 1.5 periods)**", &|_| String::new());
    row("CAMS writes", &|r| r.restart.writes.to_string());
    row("CAMS listing pages", &|r| r.restart.lists.to_string());
    row("status patches", &|r| r.restart.status_patches.to_string());
    row("**steady state**", &|_| String::new());
    row(
        "time scale; resync period in real time x periods observed",
        &|r| {
            format!(
                "{}; {:.1} s x {:.2}",
                r.steady.time_scale,
                r.steady.period.as_secs_f64(),
                r.steady.observed.as_secs_f64() / r.steady.period.as_secs_f64()
            )
        },
    );
    row("CAMS writes", &|r| r.steady.writes.to_string());
    row("CAMS listing pages", &|r| r.steady.lists.to_string());
    row("listing walks per space per period", &|r| {
        let periods = r.steady.observed.as_secs_f64() / r.steady.period.as_secs_f64();
        format!(
            "{:.2}",
            r.steady.lists as f64 / r.pages_per_walk as f64 / config.spaces as f64 / periods
        )
    });
    row("status patches", &|r| r.steady.status_patches.to_string());
    row("reconciles per object per period", &|r| {
        let periods = r.steady.observed.as_secs_f64() / r.steady.period.as_secs_f64();
        format!("{:.2}", r.steady.reconciles / r.n as f64 / periods)
    });
    row("Kubernetes requests (Secret reads)", &|r| {
        format!("{} ({})", r.steady.kube_requests, r.steady.secret_reads)
    });
    row("operator CPU (per real second)", &|r| {
        format!(
            "{:.2} s ({:.3})",
            r.steady.cpu,
            r.steady.cpu / r.steady.observed.as_secs_f64()
        )
    });
    row("operator CPU per resync period", &|r| {
        let periods = r.steady.observed.as_secs_f64() / r.steady.period.as_secs_f64();
        format!("{:.2} s", r.steady.cpu / periods.max(f64::MIN_POSITIVE))
    });
    row("operator CPU per reconcile", &|r| {
        format!(
            "{:.0} µs",
            r.steady.cpu / r.steady.reconciles.max(1.0) * 1e6
        )
    });
    row("operator peak RSS", &|r| {
        format!("{:.1} MiB", r.steady.rss_kib as f64 / 1024.0)
    });
    row("reconcile overhead excluding CAMS, median / p99", &|r| {
        format!(
            "{} / {} ({} reconciles)",
            micros(r.steady.overhead.median),
            micros(r.steady.overhead.p99),
            r.steady.overhead.count
        )
    });
    row(
        "... also excluding the Kubernetes API, median / p99",
        &|r| {
            format!(
                "{} / {}",
                micros(r.steady.own.median),
                micros(r.steady.own.p99)
            )
        },
    );
    row("operator warnings logged", &|r| {
        r.steady.warnings.to_string()
    });
    row("**physical floor (raw signed round trips)**", &|_| {
        String::new()
    });
    row("ListChatGroup: calls/s, median", &|r| {
        format!(
            "{:.0}/s, {:.1} ms",
            r.raw.list_rate,
            r.raw.list_median.as_secs_f64() * 1e3
        )
    });
    row("UpdateChatGroup: calls/s, median", &|r| {
        format!(
            "{:.0}/s, {:.1} ms",
            r.raw.update_rate,
            r.raw.update_median.as_secs_f64() * 1e3
        )
    });
    row("harness CPU (API server, simulator, load)", &|r| {
        format!("{:.1} s", r.harness_cpu)
    });

    let _ = write!(out, "| | ");
    let _ = writeln!(
        out,
        "{} |",
        reports
            .iter()
            .map(|r| format!("N = {}", r.n))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|{}", "---|".repeat(reports.len()));
    for (name, values) in rows {
        let _ = writeln!(out, "| {name} | {} |", values.join(" | "));
    }
    out
}
