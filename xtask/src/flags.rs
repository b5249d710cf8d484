//! The command line.

use clap::{Args, Parser, Subcommand};

use crate::target::Target;

/// Build, check and test automation for simpler.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build what this machine needs and run `simpler run` on the simulator:
    /// bootstrap, init, a self-checking batch of every op, and the report.
    Demo(DemoArgs),
    /// Build the device SOs and the simulator into target/artifacts/<triple>/.
    Build(BuildArgs),
    /// Check the built device SOs against the AICPU ABI rules.
    CheckAbi(CheckAbiArgs),
    /// Run every check and test: the command CI runs.
    Test(TestArgs),
    /// Show, and unless --dry-run install, rustfmt, clippy and the cross
    /// tools a target needs.
    Toolchain(ToolchainArgs),
    /// Run the benchmark suite (crates/bench) and print its table: every
    /// goal against a floor measured in the same run.
    Bench(BenchArgs),
    /// Build the Python wheel into target/wheels/ (bundling the simulator
    /// and the device SOs) and check every ELF in it against its tag.
    Wheel,
    /// Build examples/own-runtime and examples/c-kernels for this machine
    /// and aarch64 and run them on the simulator, natively and with the
    /// aarch64 device side under qemu.
    Examples,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// AICPU threads the batch runs on.
    #[arg(long, default_value_t = 4)]
    pub threads: u32,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Arguments passed on to `simpler-bench` (try `-- --help`).
    #[arg(last = true)]
    pub rest: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Which machine the device SOs are for.
    #[arg(long, value_enum, default_value_t = Target::Host)]
    pub target: Target,
    /// Device SOs with symbols and debug info (otherwise the same code as
    /// the release build); the simulator with the dev profile.
    #[arg(long)]
    pub debug: bool,
}

#[derive(Debug, Args)]
pub struct CheckAbiArgs {
    /// Which artifacts directory to check.
    #[arg(long, value_enum, default_value_t = Target::Host)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct TestArgs {}

#[derive(Debug, Args)]
pub struct ToolchainArgs {
    /// The target whose build tools to provision.
    #[arg(long, value_enum, default_value_t = Target::Aarch64)]
    pub target: Target,
    /// Also provision what running aarch64 code under qemu needs.
    #[arg(long)]
    pub qemu: bool,
    /// Print what is present and what would be run, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}
