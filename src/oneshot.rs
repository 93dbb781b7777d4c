//! The commands that run the reconcile pipeline once, without a cluster:
//! `cams-operator reconcile -f FILE [--endpoint URL]` and `cams-operator demo`.
//!
//! # `reconcile`
//! Reads one ChatGroup from a manifest (YAML or JSON; other documents in the file, such as
//! Secrets, are ignored), reconciles it once against CAMS with the credentials of the
//! `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` / `_SECURITY_TOKEN` environment (there is no
//! cluster, so `spec.credentials` is not used), and prints the resulting status as YAML on
//! stdout. The exit code says how it went:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | `Ready=True` |
//! | 1 | usage or I/O error: unreadable file, no single ChatGroup in it, no credentials in the environment |
//! | 2 | terminal failure (`Stalled=True`): fix the spec, the credentials or the permissions |
//! | 3 | recoverable failure (throttled, CAMS unavailable): running again later can succeed |
//! | 4 | not ready, but nothing failed: Plan-mode changes pending, drift reported, paused, or the group is transitional |
//!
//! A ChatGroup that asks the operator to create its group is followed through the creation: the
//! new group is looked for (waiting as the operator would) until it is found and brought in line,
//! or the search gives up. There is no cluster to keep the creation's record in, so the process
//! is the record: stopping it during a creation leaves the group, if one was made, to be adopted
//! with `spec.groupId`.
//!
//! # `demo`
//! Starts the CAMS simulator on loopback, seeded with the groups the bundled examples name
//! (with outdated subjects, so there is something to do) and with the access keys of their
//! Secrets, reconciles every example against it (creating the group of the example that asks
//! for it), and prints a table. Then it reconciles all of them again, to show that an unchanged
//! spec costs no further write and no second creation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;

use crate::cams::client::{self, HttpCams, HttpCamsConfig};
use crate::cams::{
    ACTION_ADD_CHAT_GROUP, ACTION_LIST_CHAT_GROUP, ACTION_UPDATE_CHAT_GROUP, CamsApi, Credentials,
};
use crate::cli::ReconcileArgs;
use crate::crd::{ChatGroup, CreationPolicy, ManagementPolicy, Reason};
use crate::identity::{ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, IdentityError, OperatorIdentity};
use crate::reconcile::credentials::{self, CredentialsError, IdentityNamespaces};
use crate::reconcile::engine::{Input, Outcome, Requeue, reconcile};
use crate::reconcile::lifecycle::{MAX_CREATION_RECHECK, NoMarks, NoPeers};
use crate::reconcile::observe::{ReadAt, SharedLister};
use crate::reconcile::status::find_condition;
use crate::reconcile::validate::validate_with_endpoint;
use cams_sim::{AccessKeySeed, Group, SimError, Simulator};

/// Exit codes of `cams-operator reconcile` (see the module docs).
pub mod exit {
    /// `Ready=True`.
    pub const READY: u8 = 0;
    /// Usage or I/O error.
    pub const USAGE: u8 = 1;
    /// Terminal failure.
    pub const TERMINAL: u8 = 2;
    /// Recoverable failure.
    pub const RECOVERABLE: u8 = 3;
    /// Not ready, nothing failed.
    pub const NOT_READY: u8 = 4;
}

/// The examples bundled into the binary (so `demo` works without a checkout), by file name.
/// A test checks that this is exactly the content of `examples/`.
pub const EXAMPLES: [(&str, &str); 7] = [
    (
        "create-group.yaml",
        include_str!("../examples/create-group.yaml"),
    ),
    (
        "custom-secret-keys.yaml",
        include_str!("../examples/custom-secret-keys.yaml"),
    ),
    ("full.yaml", include_str!("../examples/full.yaml")),
    ("minimal.yaml", include_str!("../examples/minimal.yaml")),
    (
        "namespace-default-secret.yaml",
        include_str!("../examples/namespace-default-secret.yaml"),
    ),
    (
        "observe-mode.yaml",
        include_str!("../examples/observe-mode.yaml"),
    ),
    ("plan-mode.yaml", include_str!("../examples/plan-mode.yaml")),
];

/// The demo's own identity, used by examples that name no Secret (the operator's identity).
const DEMO_OPERATOR_KEY_ID: &str = "LTAI5tDEMOOPERATORKEY";
const DEMO_OPERATOR_KEY_SECRET: &str = "demo-operator-secret-not-real";

/// What went wrong before a reconcile could run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest could not be read.
    #[error("reading {path}: {source}")]
    ReadManifest {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest is not YAML/JSON of Kubernetes objects.
    #[error("parsing {path}: {detail}")]
    ParseManifest {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// The manifest does not hold exactly one ChatGroup.
    #[error("{path} holds {count} ChatGroup objects; exactly one is needed")]
    ChatGroupCount {
        /// The file.
        path: String,
        /// How many there are.
        count: usize,
    },
    /// The environment has no usable identity (no key pair, half a pair, or failing RRSA).
    #[error(
        "no credentials: set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} (and ALIBABA_CLOUD_SECURITY_TOKEN for STS credentials), or the RRSA variables{}",
        .0.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    NoCredentials(Option<IdentityError>),
    /// The CAMS client could not be built.
    #[error(transparent)]
    Client(#[from] client::Error),
    /// The simulator could not start.
    #[error("starting the CAMS simulator: {0}")]
    Simulator(#[from] SimError),
    /// The status could not be rendered.
    #[error("rendering the status as YAML: {0}")]
    Render(#[from] serde_yaml::Error),
    /// The manifest asks for a group to be created, and a group with its subject exists.
    #[error(
        "space {space} already has a group with subject {subject:?} ({groups}); `reconcile` keeps no record between runs, so it does not create another one: set spec.groupId to manage one of them"
    )]
    CreationRefused {
        /// The customer space.
        space: String,
        /// The subject of the group to create.
        subject: String,
        /// The groups that have it.
        groups: String,
    },
}

impl Error {
    /// Bounded label for logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::ReadManifest { .. } => "read_manifest",
            Error::ParseManifest { .. } => "parse_manifest",
            Error::ChatGroupCount { .. } => "chat_group_count",
            Error::NoCredentials(_) => "no_credentials",
            Error::Client(_) => "client_build",
            Error::Simulator(_) => "simulator",
            Error::Render(_) => "render",
            Error::CreationRefused { .. } => "creation_refused",
        }
    }
    /// Always false: these need a different invocation or machine set-up.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// The Kubernetes objects of one manifest file that the commands use.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// The ChatGroups, in file order.
    pub chat_groups: Vec<ChatGroup>,
    /// The Secrets, in file order.
    pub secrets: Vec<Secret>,
}

impl Manifest {
    /// Parses every YAML (or JSON) document of `text`; `origin` names it in errors. Documents
    /// of other kinds are skipped.
    pub fn parse(origin: &str, text: &str) -> Result<Manifest, Error> {
        let mut manifest = Manifest::default();
        for document in serde_yaml::Deserializer::from_str(text) {
            let parse = |detail: String| Error::ParseManifest {
                path: origin.to_owned(),
                detail,
            };
            let value: serde_json::Value =
                serde::Deserialize::deserialize(document).map_err(|e| parse(e.to_string()))?;
            match value.get("kind").and_then(serde_json::Value::as_str) {
                Some(crate::crd::KIND) => manifest.chat_groups.push(
                    serde_json::from_value(value)
                        .map_err(|e| parse(format!("not a valid ChatGroup: {e}")))?,
                ),
                Some("Secret") => manifest.secrets.push(
                    serde_json::from_value(value)
                        .map_err(|e| parse(format!("not a valid Secret: {e}")))?,
                ),
                _ => {}
            }
        }
        Ok(manifest)
    }

    /// The data of Secret `name` in `namespace` (`data` and `stringData` merged, `stringData`
    /// winning, as the API server does).
    pub fn secret_data(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let secret = self.secrets.iter().find(|s| {
            s.metadata.name.as_deref() == Some(name)
                && s.metadata.namespace.as_deref().unwrap_or("default") == namespace
        })?;
        let mut data: BTreeMap<String, Vec<u8>> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        for (k, v) in secret.string_data.iter().flatten() {
            data.insert(k.clone(), v.clone().into_bytes());
        }
        Some(data)
    }
}

/// The exit code of `reconcile` for an outcome (see [`exit`]).
pub fn exit_code(outcome: &Outcome) -> u8 {
    match &outcome.failure {
        Some(failure) if failure.is_terminal() => exit::TERMINAL,
        Some(_) => exit::RECOVERABLE,
        None if outcome.is_ready() => exit::READY,
        None => exit::NOT_READY,
    }
}

/// Most reconciles one command spends following a creation (a search that finds nothing ends
/// well before, at the creation deadline).
const MAX_CREATION_ROUNDS: usize = 120;

/// Reconciles `object` against `api`, as the one-shot commands do: generation 1 when the
/// manifest has none, a lister that shares nothing across time, the system clock and random
/// jitter. While a creation is in progress (reason `Creating`) it reconciles again, after the
/// delay the outcome asks for but at most `pace`, so the command ends with the created group
/// found and in line, or with the reason the search gave up.
pub async fn reconcile_once<C: CamsApi>(
    object: &ChatGroup,
    credentials: Result<Credentials, CredentialsError>,
    api: &C,
    endpoint_override: Option<&str>,
    lister: &SharedLister,
    pace: Duration,
) -> Outcome {
    let mut object = object.clone();
    if object.metadata.generation.is_none() {
        object.metadata.generation = Some(1);
    }
    let mut rounds = 0;
    loop {
        let outcome = reconcile(
            Input {
                object: &object,
                credentials: credentials.clone(),
                endpoint_override,
                now: jiff::Timestamp::now(),
                jitter: rand::random::<f64>(),
                peers: &NoPeers,
                marks: &NoMarks,
            },
            api,
            lister,
        )
        .await;
        rounds += 1;
        let creating = outcome.ready_reason() == Some(Reason::Creating);
        match outcome.requeue {
            Requeue::After(delay) if creating && rounds < MAX_CREATION_ROUNDS => {
                object.status = Some(outcome.status);
                tokio::time::sleep(delay.min(pace)).await;
            }
            _ => return outcome,
        }
    }
}

/// `cams-operator reconcile`: returns the outcome and the status as YAML. `env` reads an
/// environment variable.
pub async fn run_reconcile(
    args: &ReconcileArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Outcome, String), Error> {
    let ReconcileArgs { file, endpoint } = args;
    let text = std::fs::read_to_string(file).map_err(|source| Error::ReadManifest {
        path: file.clone(),
        source,
    })?;
    let origin = file.display().to_string();
    let manifest = Manifest::parse(&origin, &text)?;
    let [object] = manifest.chat_groups.as_slice() else {
        return Err(Error::ChatGroupCount {
            path: origin,
            count: manifest.chat_groups.len(),
        });
    };
    let identity = OperatorIdentity::from_lookup(env).map_err(|e| Error::NoCredentials(Some(e)))?;
    let credentials = match identity.current().await {
        Ok(Some(credentials)) => credentials,
        Ok(None) => return Err(Error::NoCredentials(None)),
        Err(err) => return Err(Error::NoCredentials(Some(err))),
    };
    let api = HttpCams::new(HttpCamsConfig::default())?;
    let lister = SharedLister::new(Duration::ZERO);
    refuse_second_creation(object, &credentials, &api, endpoint.as_deref(), &lister).await?;
    let outcome = reconcile_once(
        object,
        Ok(credentials),
        &api,
        endpoint.as_deref(),
        &lister,
        MAX_CREATION_RECHECK,
    )
    .await;
    let yaml = serde_yaml::to_string(&outcome.status)?;
    Ok((outcome, yaml))
}

/// Without a cluster there is no record of an earlier run's creation: a manifest that asks for
/// a group is not created again when its space already has a group with the subject. A
/// spec or listing problem is left to the reconcile, which reports it.
async fn refuse_second_creation<C: CamsApi>(
    object: &ChatGroup,
    credentials: &Credentials,
    api: &C,
    endpoint_override: Option<&str>,
    lister: &SharedLister,
) -> Result<(), Error> {
    let recorded = object
        .status
        .as_ref()
        .is_some_and(|s| s.group_id.is_some() || s.creation.is_some());
    if recorded || object.spec.creation_policy != CreationPolicy::Create {
        return Ok(());
    }
    let Ok(valid) = validate_with_endpoint(&object.spec, endpoint_override) else {
        return Ok(());
    };
    if valid.group_known() || valid.management != ManagementPolicy::Manage {
        return Ok(());
    }
    let subject = valid.subject.clone().unwrap_or_default();
    let at = ReadAt {
        now: jiff::Timestamp::now(),
        listed_after: None,
    };
    let Ok((groups, _)) = lister
        .groups(
            api,
            &valid.endpoint,
            credentials,
            valid.channel,
            &valid.key,
            at,
        )
        .await
    else {
        return Ok(());
    };
    let same: Vec<&str> = groups
        .iter()
        .filter(|g| g.subject() == subject)
        .map(|g| g.group_id())
        .collect();
    if same.is_empty() {
        return Ok(());
    }
    Err(Error::CreationRefused {
        space: valid.key.cust_space_id.clone(),
        subject,
        groups: same.join(", "),
    })
}

/// One row of the demo's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoRow {
    /// `namespace/name`.
    pub name: String,
    /// The example file.
    pub file: String,
    /// `Ready` status.
    pub ready: String,
    /// `Ready` reason.
    pub reason: String,
    /// RequestId of the write, if one was made.
    pub request_id: String,
    /// CAMS `Code` of the write, if one was made.
    pub code: String,
}

/// What the demo did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoReport {
    /// One row per example ChatGroup.
    pub rows: Vec<DemoRow>,
    /// `UpdateChatGroup` calls of the first pass.
    pub first_pass_writes: u64,
    /// `UpdateChatGroup` calls of the second pass (0: the write rule holds).
    pub second_pass_writes: u64,
    /// `AddChatGroup` calls of both passes: one per example that asks for a creation.
    pub creations: u64,
    /// `ListChatGroup` calls of both passes.
    pub listings: u64,
    /// The printed text.
    pub text: String,
}

/// An outdated version of the group `object` names, as the simulator's starting point; none
/// for an object that asks the operator to create its group.
fn seed_group(object: &ChatGroup) -> Option<Group> {
    let spec = &object.spec;
    let name = object.metadata.name.as_deref().unwrap_or("group");
    let group_id = spec.group_id.as_deref()?;
    Some(
        Group::new(&spec.cust_space_id, &spec.business_number, group_id)
            .subject(format!("{name} (old subject)")),
    )
}

/// `cams-operator demo`: see the module docs. Returns the report; the caller prints
/// `report.text`.
pub async fn run_demo() -> Result<DemoReport, Error> {
    let mut examples = Vec::new();
    for (file, text) in EXAMPLES {
        let manifest = Manifest::parse(file, text)?;
        for object in &manifest.chat_groups {
            examples.push((file, object.clone(), manifest.clone()));
        }
    }

    let operator = Credentials {
        access_key_id: DEMO_OPERATOR_KEY_ID.to_owned(),
        access_key_secret: crate::cams::SecretString::new(DEMO_OPERATOR_KEY_SECRET),
        security_token: None,
    };
    let mut builder = Simulator::builder()
        .addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_key(DEMO_OPERATOR_KEY_ID, DEMO_OPERATOR_KEY_SECRET);
    let mut resolved = Vec::new();
    for (file, object, manifest) in &examples {
        if let Some(group) = seed_group(object) {
            builder = builder.group(group);
        }
        let namespace = object.metadata.namespace.as_deref().unwrap_or("default");
        // The demo plays an operator whose identity every example namespace may use
        // (`--identity-namespaces='*'`), so that examples naming no Secret show that step.
        let credentials = credentials::resolve(
            &object.spec,
            namespace,
            |name| manifest.secret_data(namespace, name),
            &IdentityNamespaces::All,
            Some(&operator),
        );
        if let Ok(c) = &credentials
            && c.access_key_id != DEMO_OPERATOR_KEY_ID
        {
            let key = match &c.security_token {
                Some(token) => AccessKeySeed::sts(
                    &c.access_key_id,
                    c.access_key_secret.expose(),
                    token.expose(),
                ),
                None => AccessKeySeed::new(&c.access_key_id, c.access_key_secret.expose()),
            };
            builder = builder.key(key);
        }
        resolved.push((*file, object, credentials));
    }
    let sim = builder.start().await?;
    let endpoint = sim.url();
    let api = HttpCams::new(HttpCamsConfig::default())?;
    let lister = SharedLister::new(Duration::ZERO);

    let mut rows = Vec::new();
    let mut second_pass = Vec::new();
    for (file, object, credentials) in &resolved {
        let outcome = reconcile_once(
            object,
            credentials.clone(),
            &api,
            Some(&endpoint),
            &lister,
            Duration::ZERO,
        )
        .await;
        let mut with_status = (*object).clone();
        with_status.metadata.generation = Some(1);
        with_status.status = Some(outcome.status.clone());
        second_pass.push((with_status, credentials.clone()));
        rows.push(row(file, object, &outcome));
    }
    let first_pass_writes = sim.call_count(ACTION_UPDATE_CHAT_GROUP);
    for (object, credentials) in &second_pass {
        reconcile_once(
            object,
            credentials.clone(),
            &api,
            Some(&endpoint),
            &lister,
            Duration::ZERO,
        )
        .await;
    }
    let second_pass_writes = sim.call_count(ACTION_UPDATE_CHAT_GROUP) - first_pass_writes;
    let creations = sim.call_count(ACTION_ADD_CHAT_GROUP);
    let listings = sim.call_count(ACTION_LIST_CHAT_GROUP);
    sim.shutdown().await;

    let text = render(
        &endpoint,
        &rows,
        first_pass_writes,
        second_pass_writes,
        creations,
        listings,
    );
    Ok(DemoReport {
        rows,
        first_pass_writes,
        second_pass_writes,
        creations,
        listings,
        text,
    })
}

fn row(file: &str, object: &ChatGroup, outcome: &Outcome) -> DemoRow {
    let ready = find_condition(Some(&outcome.status), crate::crd::condition::READY);
    DemoRow {
        name: format!(
            "{}/{}",
            object.metadata.namespace.as_deref().unwrap_or("default"),
            object.metadata.name.as_deref().unwrap_or("")
        ),
        file: file.to_owned(),
        ready: ready
            .map_or(crate::crd::ConditionStatus::Unknown, |c| c.status)
            .as_str()
            .to_owned(),
        reason: ready.map(|c| c.reason.to_string()).unwrap_or_default(),
        request_id: outcome
            .write
            .as_ref()
            .and_then(|w| w.request_id.clone())
            .unwrap_or_else(|| "-".to_owned()),
        code: outcome
            .write
            .as_ref()
            .map(|w| w.code.clone())
            .or_else(|| outcome.failure.as_ref().and_then(|f| f.code.clone()))
            .unwrap_or_else(|| "-".to_owned()),
    }
}

fn render(
    endpoint: &str,
    rows: &[DemoRow],
    first_pass_writes: u64,
    second_pass_writes: u64,
    creations: u64,
    listings: u64,
) -> String {
    let headers = ["NAME", "READY", "REASON", "REQUEST-ID", "CODE", "EXAMPLE"];
    let cells: Vec<[&str; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.as_str(),
                r.ready.as_str(),
                r.reason.as_str(),
                r.request_id.as_str(),
                r.code.as_str(),
                r.file.as_str(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "CAMS simulator listening on {endpoint}; reconciling {} examples against it:\n",
        rows.len()
    );
    for line in std::iter::once(headers).chain(cells) {
        let mut out = String::new();
        for (i, (cell, width)) in line.iter().zip(widths).enumerate() {
            if i + 1 == line.len() {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<width$}  ");
            }
        }
        let _ = writeln!(text, "{}", out.trim_end());
    }
    let _ = writeln!(
        text,
        "\nUpdateChatGroup calls: {first_pass_writes} on the first pass, {second_pass_writes} when reconciling everything again (an unchanged spec costs no write); AddChatGroup calls: {creations} (each group asked for is created once, never twice); ListChatGroup calls: {listings}."
    );
    let _ = writeln!(
        text,
        "Plan mode lists what it would change in status.pendingChanges; Observe mode only reads. Try `cams-operator reconcile -f examples/full.yaml --endpoint URL` against `cams-operator sim`."
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_examples_are_exactly_the_examples_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("examples/")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .map(|p| {
                (
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    std::fs::read_to_string(&p).expect("read"),
                )
            })
            .collect();
        on_disk.sort();
        let bundled: Vec<(String, String)> = EXAMPLES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        assert_eq!(bundled, on_disk, "list every example in oneshot::EXAMPLES");
    }

    #[test]
    fn manifest_secrets_merge_data_and_string_data() {
        let manifest = Manifest::parse(
            "inline",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ns}\ndata: {a: YWFh, b: YmJi}\nstringData: {b: override}\n---\nkind: ConfigMap\n",
        )
        .expect("parses");
        let data = manifest.secret_data("ns", "s").expect("found");
        assert_eq!(data["a"], b"aaa");
        assert_eq!(data["b"], b"override");
        assert!(manifest.secret_data("other", "s").is_none());
        assert!(manifest.chat_groups.is_empty());
    }

    #[test]
    fn manifest_errors_name_the_file() {
        let err = Manifest::parse("bad.yaml", "kind: ChatGroup\nspec: 3\n").expect_err("bad");
        assert!(err.to_string().contains("bad.yaml"), "{err}");
        let err = Manifest::parse("bad.yaml", "a: [").expect_err("bad yaml");
        assert!(err.to_string().starts_with("parsing bad.yaml"), "{err}");
    }
}
