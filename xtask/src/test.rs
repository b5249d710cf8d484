//! `cargo xtask test`: every check and test, in the order that fails
//! fastest, with a summary of the stages and their durations. This is what
//! CI runs (`.ci/run`), on a fresh machine: it provisions its own tools.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use simpler_testkit::{files, ARTIFACTS_DIR_ENV, DEVICE_ARTIFACTS_DIR_ENV};

use crate::cargo::cargo;
use crate::flags::{BuildArgs, CheckAbiArgs, TestArgs};
use crate::target::Target;
use crate::toolchain::{self, AARCH64_SYSROOT, QEMU_AARCH64};
use crate::{build, check_abi, run};

/// The simulator's device process binary (read by libsimpler_cann_sim).
const SIM_AICPU_BIN_ENV: &str = "SIMPLER_SIM_AICPU_BIN";
/// Command prefix the simulator starts its device process with.
const SIM_AICPU_LAUNCHER_ENV: &str = "SIMPLER_SIM_AICPU_LAUNCHER";

/// How a stage ended.
enum Outcome {
    Passed,
    Failed,
    /// Could not run yet, for the reason given (printed, never silent).
    NotRun(String),
}

/// Runs every stage; stops at the first failure.
pub fn run(root: &Path, _args: &TestArgs) -> Result<()> {
    let host_dir = Target::Host.artifacts_dir(root);
    let device_dir = Target::Aarch64.artifacts_dir(root);
    type StageFn<'a> = Box<dyn Fn() -> Result<Option<String>> + 'a>;
    let done = |r: Result<()>| r.map(|()| None);
    let stages: Vec<(&str, StageFn)> = vec![
        (
            "tools",
            Box::new(|| {
                let needs = toolchain::needs(Target::Aarch64, true);
                done(toolchain::ensure(root, &needs).map(drop))
            }),
        ),
        (
            "fmt",
            Box::new(|| done(cargo_in(root, &["fmt", "--all", "--check"]))),
        ),
        (
            "clippy",
            Box::new(|| {
                done(cargo_in(
                    root,
                    &[
                        "clippy",
                        "--workspace",
                        "--all-targets",
                        "--",
                        "-D",
                        "warnings",
                    ],
                ))
            }),
        ),
        (
            "build host",
            Box::new(|| done(build_for(root, Target::Host))),
        ),
        (
            "build aarch64",
            Box::new(|| done(build_for(root, Target::Aarch64))),
        ),
        (
            "check-abi host",
            Box::new(|| done(check_for(root, Target::Host))),
        ),
        (
            "check-abi aarch64",
            Box::new(|| done(check_for(root, Target::Aarch64))),
        ),
        (
            "cargo test",
            Box::new(|| {
                let mut cmd = Command::new(cargo());
                cmd.current_dir(root)
                    // Every test binary, so one run reports every failure.
                    .args(["test", "--workspace", "--no-fail-fast"])
                    .env(ARTIFACTS_DIR_ENV, &host_dir);
                done(run::run(&mut cmd))
            }),
        ),
        (
            "aarch64 device under qemu",
            Box::new(|| device_under_qemu(root, &host_dir, &device_dir)),
        ),
    ];

    let mut results: Vec<(&str, Duration, Outcome)> = Vec::new();
    let mut failure = None;
    for (name, stage) in &stages {
        eprintln!("\n==> xtask test: {name}");
        let start = Instant::now();
        let outcome = match stage() {
            Ok(None) => Outcome::Passed,
            Ok(Some(reason)) => Outcome::NotRun(reason),
            Err(err) => {
                eprintln!("error: {err:#}");
                failure = Some(*name);
                Outcome::Failed
            }
        };
        results.push((name, start.elapsed(), outcome));
        if failure.is_some() {
            break;
        }
    }

    println!("\nxtask test summary:");
    for (name, took, outcome) in &results {
        let result = match outcome {
            Outcome::Passed => "ok".to_string(),
            Outcome::Failed => "FAILED".to_string(),
            Outcome::NotRun(reason) => format!("NOT RUN: {reason}"),
        };
        println!("  {name:<28} {:>8.1}s  {result}", took.as_secs_f64());
    }
    for (name, _) in stages.iter().skip(results.len()) {
        println!("  {name:<28} {:>9}  not reached", "");
    }
    let total: Duration = results.iter().map(|(_, took, _)| *took).sum();
    println!("  {:<28} {:>8.1}s", "total", total.as_secs_f64());
    if let Some(name) = failure {
        bail!("stage `{name}` failed");
    }
    Ok(())
}

fn cargo_in(root: &Path, args: &[&str]) -> Result<()> {
    run::run(Command::new(cargo()).current_dir(root).args(args))
}

fn build_for(root: &Path, target: Target) -> Result<()> {
    build::run(
        root,
        &BuildArgs {
            target,
            debug: false,
        },
    )
    .map(drop)
}

fn check_for(root: &Path, target: Target) -> Result<()> {
    check_abi::run(root, &CheckAbiArgs { target })
}

/// The end-to-end test packages that take their device side from
/// `SIMPLER_DEVICE_ARTIFACTS_DIR` (through `simpler_testkit::device_artifacts`),
/// re-run with the aarch64 device side: the x86_64 host process loads the
/// host simulator library, which starts the aarch64 `simpler-sim-aicpu`
/// under qemu-user, which loads the aarch64 dispatcher and runtime SOs.
const DEVICE_E2E_PACKAGES: [&str; 1] = ["simpler-host"];

/// The aarch64 end-to-end stage (issue 5). Returns why it could not run
/// when the simulator's device process is not built yet.
fn device_under_qemu(root: &Path, host_dir: &Path, device_dir: &Path) -> Result<Option<String>> {
    let device_bin = device_dir.join(files::SIM_DEVICE_BIN);
    if !device_bin.exists() {
        return Ok(Some(format!(
            "{} was not built (the simulator has no device binary yet)",
            device_bin.display()
        )));
    }
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root).arg("test");
    for package in DEVICE_E2E_PACKAGES {
        cmd.args(["-p", package]);
    }
    // Integration tests only: unit tests and doctests do not start devices.
    cmd.args(["--test", "*", "--no-fail-fast"]);
    cmd.env(ARTIFACTS_DIR_ENV, host_dir)
        .env(DEVICE_ARTIFACTS_DIR_ENV, device_dir)
        .env(SIM_AICPU_BIN_ENV, &device_bin)
        .env(
            SIM_AICPU_LAUNCHER_ENV,
            format!("{QEMU_AARCH64} -L {AARCH64_SYSROOT}"),
        );
    run::run(&mut cmd).map(|()| None)
}
