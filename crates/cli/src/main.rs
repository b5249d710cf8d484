//! `simpler`: run a self-checking batch on an Ascend device or the CANN
//! simulator, launch a kernel of any AICPU SO, inspect device SOs, diagnose a setup, and list and clean what
//! simpler installed on a device.

#![forbid(unsafe_code)]

mod device;
mod doctor;
mod inspect;
mod launch;
mod run;
mod stack;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

/// Run your own AICPU code on an Ascend NPU (or the CANN simulator).
#[derive(Parser)]
#[command(name = "simpler", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bootstrap the runtime SO, run a batch using every built-in op, verify
    /// the results on the host and print a report.
    Run(run::RunArgs),
    /// Install any AICPU SO through the dispatcher and launch one of its
    /// kernels once, with a payload from a file.
    Launch(launch::LaunchArgs),
    /// Show what device SOs are built for, export and need.
    Inspect(inspect::InspectArgs),
    /// Show which CANN libraries, simulator and artifacts this machine has.
    Doctor,
    /// List and clean what simpler installed on a device (`ls`, `rm`, `gc`).
    Device(device::DeviceArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        // A closed span logs its duration: bootstrap, init and each exec.
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Launch(args) => launch::launch(&args),
        Command::Inspect(args) => inspect::inspect(&args),
        Command::Doctor => doctor::doctor(),
        Command::Device(args) => device::device(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
