//! Command line. Every flag of `run` has an environment twin (`CAMS_OPERATOR_*`), so the Helm
//! chart can set them either way. This is a contract: docs, the chart and tests rely on it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::controller::kube_client::{DEFAULT_KUBE_BURST, DEFAULT_KUBE_QPS};
use crate::reconcile::credentials::IDENTITY_NAMESPACES_ENV;

/// Keeps Alibaba Cloud CAMS WhatsApp groups in line with ChatGroup resources.
#[derive(Debug, Parser)]
#[command(name = "cams-operator", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller against the cluster in the kubeconfig (or in-cluster).
    Run(RunArgs),
    /// Print the ChatGroup CustomResourceDefinition as YAML.
    Crd,
    /// Reconcile one ChatGroup manifest once, without a cluster, and print its status as YAML.
    ///
    /// Credentials come from ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET and
    /// (for STS) ALIBABA_CLOUD_SECURITY_TOKEN. Exit codes: 0 Ready; 1 usage or I/O error;
    /// 2 terminal failure; 3 recoverable failure; 4 not ready without failure (Plan changes
    /// pending, drift reported, paused, group transitional).
    Reconcile(ReconcileArgs),
    /// Start the CAMS simulator on loopback, reconcile the bundled examples against it and
    /// print the outcome: the no-cluster quick start.
    Demo,
    /// Run the CAMS simulator (a local stand-in for Alibaba Cloud CAMS) until Ctrl-C or SIGTERM.
    Sim(SimArgs),
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    #[default]
    Text,
}

/// Flags of `cams-operator run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Namespace to watch (repeatable); all namespaces when absent.
    #[arg(
        long = "namespace",
        env = "CAMS_OPERATOR_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
    /// Label selector limiting the ChatGroups handled (for sharding), e.g. `shard=a`.
    #[arg(long, env = "CAMS_OPERATOR_SELECTOR")]
    pub selector: Option<String>,
    /// Namespaces whose ChatGroups may use the operator's own identity (its AccessKey or RRSA
    /// role) when they have no Secret of their own (repeatable, or comma-separated); `*` alone
    /// allows every namespace. Default: only the namespace the operator runs in
    /// (`POD_NAMESPACE`, else the kubeconfig context's namespace). Secrets work everywhere.
    #[arg(
        long = "identity-namespaces",
        env = IDENTITY_NAMESPACES_ENV,
        value_delimiter = ',',
        value_name = "NS"
    )]
    pub identity_namespaces: Vec<String>,
    /// Global CAMS request budget, requests per second, shared by all objects.
    #[arg(long, env = "CAMS_OPERATOR_CAMS_QPS", default_value_t = 5.0)]
    pub cams_qps: f64,
    /// Most CAMS calls in flight at once.
    #[arg(long, env = "CAMS_OPERATOR_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Kubernetes API request budget, requests per second, shared by every request of the
    /// controller (reads, watches, status patches, Events); leader election has a budget of the
    /// same size of its own.
    #[arg(long, env = "CAMS_OPERATOR_KUBE_QPS", default_value_t = DEFAULT_KUBE_QPS)]
    pub kube_qps: f64,
    /// Most Kubernetes API requests sent at once after an idle period.
    #[arg(long, env = "CAMS_OPERATOR_KUBE_BURST", default_value_t = DEFAULT_KUBE_BURST)]
    pub kube_burst: u32,
    /// Address of the Prometheus `/metrics` endpoint.
    #[arg(
        long,
        env = "CAMS_OPERATOR_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_addr: SocketAddr,
    /// Address of the `/livez` and `/readyz` probes.
    #[arg(
        long,
        env = "CAMS_OPERATOR_HEALTH_ADDR",
        default_value = "0.0.0.0:8081"
    )]
    pub health_addr: SocketAddr,
    /// Run only while holding a Lease (for a standby replica).
    #[arg(long, env = "CAMS_OPERATOR_LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "CAMS_OPERATOR_LEASE_NAME",
        default_value = "cams-operator"
    )]
    pub lease_name: String,
    /// Namespace of the leader-election Lease (default: the pod's namespace).
    #[arg(long, env = "CAMS_OPERATOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How log lines are written: `json` (one object per line) for log pipelines, `text` for people.
    #[arg(long, env = "CAMS_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Flags of `cams-operator reconcile`.
#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// ChatGroup manifest (YAML or JSON).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// CAMS endpoint URL overriding the manifest's region and endpoint.
    #[arg(long)]
    pub endpoint: Option<String>,
}

/// Flags of `cams-operator sim`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Listen address (port 0 picks a free port; the line `listening on http://HOST:PORT`
    /// tells which).
    #[arg(long, env = "CAMS_SIM_ADDR", default_value = "127.0.0.1:8787")]
    pub addr: SocketAddr,
    /// Seed file (YAML or JSON): access keys, groups, faults and forced codes.
    #[arg(long, env = "CAMS_SIM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Access key `ID:SECRET` or `ID:SECRET:STS_TOKEN` (repeatable).
    #[arg(long = "access-key")]
    pub access_keys: Vec<String>,
    /// Group `CUST_SPACE_ID:BUSINESS_NUMBER:GROUP_ID[:SUBJECT]` (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::credentials::IDENTITY_NAMESPACES_FLAG;
    use clap::CommandFactory;

    fn run_args(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = Cli::try_parse_from(
            ["cams-operator", "run"]
                .iter()
                .chain(args)
                .copied()
                .collect::<Vec<_>>(),
        )?;
        match cli.command {
            Command::Run(run) => Ok(run),
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn identity_namespaces_flag_has_the_documented_name_and_env_twin() {
        let command = Cli::command();
        let run = command.find_subcommand("run").expect("run subcommand");
        let arg = run
            .get_arguments()
            .find(|a| a.get_id() == "identity_namespaces")
            .expect("the flag");
        assert_eq!(
            arg.get_long().map(|l| format!("--{l}")).as_deref(),
            Some(IDENTITY_NAMESPACES_FLAG)
        );
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some(IDENTITY_NAMESPACES_ENV)
        );
    }

    #[test]
    fn identity_namespaces_are_split_at_commas_and_repeatable() {
        let run = run_args(&[
            "--identity-namespaces=support,sales",
            "--identity-namespaces",
            "ops",
        ])
        .expect("parses");
        assert_eq!(run.identity_namespaces, ["support", "sales", "ops"]);
        let run = run_args(&["--identity-namespaces=*"]).expect("parses");
        assert_eq!(run.identity_namespaces, ["*"]);
    }
}
