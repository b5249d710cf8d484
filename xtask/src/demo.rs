//! `cargo xtask demo`: the main job on the simulator, as a newcomer's first
//! command. Builds what this machine needs (the host-triple artifacts and
//! the `simpler` CLI), then runs `simpler run --backend sim` in a private
//! simulator root, which bootstraps the real dispatcher and runtime SO,
//! runs a self-checking batch of every built-in op and prints the report.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use simpler_abi::artifacts::ARTIFACTS_DIR_ENV;
use simpler_abi::sim;

use crate::cargo::cargo;
use crate::flags::DemoArgs;
use crate::target::Target;
use crate::{build, run};

/// Builds, then runs the CLI's self-checking batch on the simulator.
pub fn run(root: &Path, args: &DemoArgs) -> Result<()> {
    let artifacts = build::release(root, Target::Host)?;
    // A fresh root, so the demo shows a real bootstrap (no file left by an
    // earlier run) and leaves nothing in the shared default root.
    let sim_root = tempfile::Builder::new()
        .prefix("simpler-demo-")
        .tempdir()
        .context("creating a private simulator root")?;
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "simpler-cli",
            "--bin",
            "simpler",
            "--",
        ])
        .args(["run", "--backend", "sim"])
        .args(["--threads", &args.threads.to_string()])
        .env(ARTIFACTS_DIR_ENV, &artifacts)
        .env(sim::env::ROOT, sim_root.path());
    run::run(&mut cmd)
}
