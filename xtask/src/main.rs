//! `cargo xtask`: build, check and test automation for simpler.
//!
//! Each command lives in its own module; `flags` holds the command line.
//! Every external command xtask runs is echoed first (`$ …`), so a failing
//! step can be re-run by hand.

mod bench;
mod build;
mod cargo;
mod check_abi;
mod demo;
mod examples;
mod flags;
mod manifest;
mod run;
mod target;
mod test;
mod toolchain;
mod util;
mod wheel;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let flags = flags::Xtask::parse();
    let root = project_root();
    let result = match flags.command {
        flags::Command::Demo(args) => demo::run(&root, &args),
        flags::Command::Build(args) => build::run(&root, &args).map(drop),
        flags::Command::CheckAbi(args) => check_abi::run(&root, &args),
        flags::Command::Test(args) => test::run(&root, &args),
        flags::Command::Toolchain(args) => toolchain::run(&root, &args),
        flags::Command::Bench(args) => bench::run(&root, &args),
        flags::Command::Wheel => wheel::run(&root).map(drop),
        flags::Command::Examples => examples::run(&root),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The cause chain, without the backtrace a RUST_BACKTRACE in the
            // environment would add: these are user-facing errors.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent directory")
        .to_path_buf()
}
