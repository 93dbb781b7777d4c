//! `cams-operator`: parse the command line and dispatch.

use std::process::ExitCode;

use cams_operator::cli::{Cli, Command};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match cams_operator::crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot render the CRD: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Reconcile(args) => run_reconcile(&args),
        Command::Demo => run_demo(),
        Command::Sim(args) => run_sim(&args),
        Command::Run(args) => run_operator(args),
    }
}

/// `cams-operator run`: the controller until SIGTERM.
fn run_operator(args: cams_operator::cli::RunArgs) -> ExitCode {
    cams_operator::telemetry::init(args.log_format);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(cams_operator::controller::command::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "cams-operator stopped");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        })
}

/// `cams-operator reconcile`: prints the status as YAML; the exit code is
/// `cams_operator::oneshot::exit_code`.
fn run_reconcile(args: &cams_operator::cli::ReconcileArgs) -> ExitCode {
    use cams_operator::oneshot::{exit, exit_code, run_reconcile};
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(run_reconcile(args, |name| std::env::var(name).ok())) {
        Ok((outcome, yaml)) => {
            print!("{yaml}");
            if let Some(failure) = &outcome.failure {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::from(exit_code(&outcome))
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(exit::USAGE)
        }
    }
}

/// `cams-operator demo`.
fn run_demo() -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(cams_operator::oneshot::run_demo()) {
        Ok(report) => {
            print!("{}", report.text);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The simulator of the `sim` command: the config file (if any), then the flags.
fn simulator(
    args: &cams_operator::cli::SimArgs,
) -> Result<cams_sim::SimulatorBuilder, cams_sim::SimError> {
    let cams_operator::cli::SimArgs {
        addr,
        config,
        access_keys,
        groups,
    } = args;
    let mut sim_config = match config {
        Some(path) => cams_sim::SimConfig::from_file(path)?,
        None => cams_sim::SimConfig::default(),
    };
    sim_config.apply_flags(access_keys, groups)?;
    Ok(cams_sim::Simulator::builder()
        .config(sim_config)
        .addr(*addr))
}

/// `cams-operator sim`: serves until Ctrl-C or SIGTERM.
fn run_sim(args: &cams_operator::cli::SimArgs) -> ExitCode {
    cams_operator::telemetry::init(cams_operator::cli::LogFormat::Text);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let started = match simulator(args) {
            Ok(builder) => builder.start().await,
            Err(err) => Err(err),
        };
        let sim = match started {
            Ok(sim) => sim,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        };
        {
            use std::io::Write as _;
            let mut stdout = std::io::stdout();
            let _ = writeln!(stdout, "listening on http://{}", sim.addr());
            let _ = stdout.flush();
        }
        cams_operator::controller::shutdown_signal().await;
        sim.shutdown().await;
        ExitCode::SUCCESS
    })
}
