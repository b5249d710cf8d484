//! `cargo xtask bench`: the benchmark table of docs/performance.md, every
//! goal against a floor measured in the same run (crates/bench). Builds the
//! host artifacts first; the dispatcher-size row reads the aarch64
//! manifest when `cargo xtask build --target aarch64` has made one. The
//! growth curves' plots go to docs/ (perf-bootstrap.svg, perf-tasks.svg),
//! except from a `--quick` run, whose numbers mean little.

use std::path::Path;
use std::process::Command;

use anyhow::Result;
use simpler_abi::artifacts::ARTIFACTS_DIR_ENV;

use crate::cargo::cargo;
use crate::flags::BenchArgs;
use crate::target::Target;
use crate::{build, run};

/// Builds the host artifacts, then runs `simpler-bench` in release mode.
pub fn run(root: &Path, args: &BenchArgs) -> Result<()> {
    let artifacts = build::release(root, Target::Host)?;
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["run", "--quiet", "--release", "-p", "simpler-bench", "--"])
        .args(&args.rest)
        .env(ARTIFACTS_DIR_ENV, &artifacts);
    let given = |flag: &str| args.rest.iter().any(|a| a == flag);
    if !given("--quick") && !given("--plots") {
        cmd.arg("--plots").arg(root.join("docs"));
    }
    run::run(&mut cmd)
}
