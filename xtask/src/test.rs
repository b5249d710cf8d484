//! `cargo xtask test`: every check and test, in the order that fails
//! fastest, with a summary of the stages and their durations. This is what
//! CI runs (`.ci/run`), on a fresh machine: it provisions its own tools.

use std::cell::RefCell;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use simpler_abi::artifacts::{files, ARTIFACTS_DIR_ENV, DEVICE_ARTIFACTS_DIR_ENV};
use simpler_abi::sim;

use crate::cargo::cargo;
use crate::flags::{CheckAbiArgs, TestArgs};
use crate::target::Target;
use crate::toolchain::{self, Need, AARCH64_SYSROOT, QEMU_AARCH64};
use crate::{build, check_abi, examples, run, wheel};

/// The end-to-end tests that take their device side from
/// `SIMPLER_DEVICE_ARTIFACTS_DIR` (through `simpler_testkit::device_artifacts`).
/// The qemu stage re-runs them with the aarch64 device side: the x86_64
/// host process loads the host simulator library, which starts the aarch64
/// `simpler-sim-aicpu` under qemu-user, which loads the aarch64 dispatcher
/// and runtime SOs. (The simulator's other tests load kernels they compile
/// for the host.)
///
/// Each entry is (package, integration test, libtest name filter): with a
/// filter, only the tests whose path contains it run (a module, such as
/// `"real_path::"`).
const DEVICE_E2E_TESTS: [(&str, &str, Option<&str>); 4] = [
    ("simpler-host", "e2e", None),
    ("simpler-cann-sim", "sim", Some("real_path::")),
    ("simpler-cli", "cli", None),
    ("simpler-e2e", "e2e", None),
];

/// The `cargo test` arguments that run an entry of [`DEVICE_E2E_TESTS`],
/// every failure reported.
fn e2e_test_args<'a>(package: &'a str, test: &'a str, filter: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec!["test", "-p", package, "--test", test, "--no-fail-fast"];
    if let Some(filter) = filter {
        args.extend(["--", filter]);
    }
    args
}

type Stage<'a> = (&'static str, Box<dyn Fn() -> Result<()> + 'a>);

/// Test counts summed over every `cargo test` run of the stages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Counts {
    /// Adds the counts of a libtest `test result: …` line; other lines are
    /// ignored.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs every stage; stops at the first failure.
pub fn run(root: &Path, _args: &TestArgs) -> Result<()> {
    let host_dir = Target::Host.artifacts_dir(root);
    let device_dir = Target::Aarch64.artifacts_dir(root);
    let counts = RefCell::new(Counts::default());
    let count = |line: &str| counts.borrow_mut().add_line(line);
    let stages: Vec<Stage> = vec![
        (
            "tools",
            Box::new(|| {
                let mut needs = vec![Need::Lints];
                needs.extend(toolchain::needs(Target::Aarch64, true));
                toolchain::ensure(root, &needs).map(drop)
            }),
        ),
        (
            "fmt",
            Box::new(|| cargo_in(root, &["fmt", "--all", "--check"])),
        ),
        (
            "clippy",
            Box::new(|| {
                let args = [
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ];
                cargo_in(root, &args)
            }),
        ),
        (
            "fuzz targets",
            Box::new(|| {
                // Not a workspace member (cargo-fuzz wants its own), so the
                // workspace's fmt and clippy do not see it; checked here so
                // the targets cannot rot unnoticed between fuzzing runs.
                let manifest = "fuzz/Cargo.toml";
                cargo_in(root, &["fmt", "--manifest-path", manifest, "--check"])?;
                let args = [
                    "clippy",
                    "--manifest-path",
                    manifest,
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ];
                cargo_in(root, &args)
            }),
        ),
        ("build host", Box::new(|| build_for(root, Target::Host))),
        (
            "build aarch64",
            Box::new(|| build_for(root, Target::Aarch64)),
        ),
        ("check-abi host", Box::new(|| check_for(root, Target::Host))),
        (
            "check-abi aarch64",
            Box::new(|| check_for(root, Target::Aarch64)),
        ),
        (
            "cargo test",
            Box::new(|| {
                let mut cmd = Command::new(cargo());
                // Every test binary, so one run reports every failure.
                cmd.current_dir(root)
                    .args(["test", "--workspace", "--no-fail-fast"])
                    .env(ARTIFACTS_DIR_ENV, &host_dir);
                run::run_lines(&mut cmd, count)
            }),
        ),
        (
            "aarch64 device under qemu",
            Box::new(|| device_under_qemu(root, &host_dir, &device_dir, count)),
        ),
        ("examples", Box::new(|| examples::run(root))),
        ("python", Box::new(|| wheel::test(root, count))),
    ];

    let mut results: Vec<(&str, Duration, bool)> = Vec::new();
    for (name, stage) in &stages {
        eprintln!("\n==> xtask test: {name}");
        let start = Instant::now();
        let result = stage();
        if let Err(err) = &result {
            eprintln!("error: {err:#}");
        }
        results.push((name, start.elapsed(), result.is_ok()));
        if result.is_err() {
            break;
        }
    }

    println!("\nxtask test summary:");
    for (name, took, ok) in &results {
        let result = if *ok { "ok" } else { "FAILED" };
        println!("  {name:<28} {:>8.1}s  {result}", took.as_secs_f64());
    }
    for (name, _) in stages.iter().skip(results.len()) {
        println!("  {name:<28} {:>9}  not reached", "");
    }
    let total: Duration = results.iter().map(|(_, took, _)| *took).sum();
    println!("  {:<28} {:>8.1}s", "total", total.as_secs_f64());
    // The tests of every `cargo test` above, summed; last, in the plain
    // form CI reads.
    let Counts {
        passed,
        failed,
        ignored,
    } = *counts.borrow();
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    match results.iter().find(|(_, _, ok)| !ok) {
        Some((name, _, _)) => bail!("stage `{name}` failed"),
        None => Ok(()),
    }
}

fn cargo_in(root: &Path, args: &[&str]) -> Result<()> {
    run::run(Command::new(cargo()).current_dir(root).args(args))
}

fn build_for(root: &Path, target: Target) -> Result<()> {
    build::release(root, target).map(drop)
}

fn check_for(root: &Path, target: Target) -> Result<()> {
    check_abi::run(root, &CheckAbiArgs { target })
}

/// The aarch64 end-to-end stage: an x86_64 host driving the aarch64 device
/// side, the shape of a real Ascend server.
fn device_under_qemu(
    root: &Path,
    host_dir: &Path,
    device_dir: &Path,
    count: impl Fn(&str),
) -> Result<()> {
    let device_bin = device_dir.join(files::SIM_DEVICE_BIN);
    if !device_bin.is_file() {
        // `build aarch64` produces it; its absence means that stage changed.
        bail!(
            "{} is missing: the aarch64 simulator device process was not built",
            device_bin.display()
        );
    }
    let launcher = format!("{QEMU_AARCH64} -L {AARCH64_SYSROOT}");
    let mut failed = Vec::new();
    for (package, test, filter) in DEVICE_E2E_TESTS {
        let mut cmd = Command::new(cargo());
        cmd.current_dir(root)
            .args(e2e_test_args(package, test, filter))
            .env(ARTIFACTS_DIR_ENV, host_dir)
            .env(DEVICE_ARTIFACTS_DIR_ENV, device_dir)
            .env(sim::env::AICPU_BIN, &device_bin)
            .env(sim::env::AICPU_LAUNCHER, &launcher)
            .env(
                simpler_abi::test_env::DEVICE_CC,
                Target::Aarch64.c_compiler_words().join(" "),
            );
        // Run them all, so one run reports every failing package.
        if let Err(err) = run::run_lines(&mut cmd, &count) {
            eprintln!("error: {err:#}");
            failed.push(package);
        }
    }
    if !failed.is_empty() {
        bail!(
            "end-to-end tests failed with the aarch64 device side: {}",
            failed.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_e2e_entry_runs_one_binary_with_its_filter() {
        assert_eq!(
            e2e_test_args("p", "t", None),
            ["test", "-p", "p", "--test", "t", "--no-fail-fast"]
        );
        assert_eq!(
            e2e_test_args("p", "t", Some("m::")),
            [
                "test",
                "-p",
                "p",
                "--test",
                "t",
                "--no-fail-fast",
                "--",
                "m::"
            ]
        );
    }

    #[test]
    fn counts_add_up_libtest_result_lines_only() {
        let mut counts = Counts::default();
        for line in [
            "test result: ok. 9 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 1.30s",
            "test result: FAILED. 22 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.35s",
            "test foo ... ok",
            "running 3 tests",
            "   Doc-tests simpler_abi",
        ] {
            counts.add_line(line);
        }
        assert_eq!(
            counts,
            Counts {
                passed: 31,
                failed: 1,
                ignored: 2
            }
        );
    }
}
