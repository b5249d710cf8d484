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
    /// Build the device SOs and the simulator into target/artifacts/<triple>/.
    Build(BuildArgs),
    /// Check the built device SOs against the AICPU ABI rules.
    CheckAbi(CheckAbiArgs),
    /// Run every check and test: the command CI runs.
    Test(TestArgs),
    /// Show, and unless --dry-run install, rustfmt, clippy and the cross
    /// tools a target needs.
    Toolchain(ToolchainArgs),
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
