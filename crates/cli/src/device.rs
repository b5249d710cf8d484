//! `simpler device ls | rm | gc`: see and clean what simpler installed in
//! a device's preinstall directory, through the same no-sudo KFC path as
//! the bootstrap (`simpler_host::maintenance`). Files of any other naming
//! are never touched.
//!
//! Output, for scripts: one line per file, whitespace-separated columns.
//!
//! - `ls`: `<kind> <name> <size> <age>` — kind `installed` or `temp`, the
//!   file name, its size in bytes and the seconds since it was last
//!   written (by the device's clock); installed runtimes newest first,
//!   then temp files newest first (ties by name).
//! - `rm`, `gc`: `removed <kind> <name> <size> <age>` per file removed, in
//!   the same order. What could not be done (a fingerprint with no
//!   installed runtime, a file that could not be removed) goes to stderr,
//!   one `error:` line each, and the exit status is 1.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use simpler_host::abi::maintenance::MAX_REPLY_ENTRIES;
use simpler_host::maintenance::{
    DeviceFile, Maintenance, Removal, DEFAULT_KEEP, DEFAULT_STALE_AFTER,
};
use std::time::Duration;

use crate::run::Target;

#[derive(Args, Debug)]
pub struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(Subcommand, Debug)]
enum DeviceCommand {
    /// List the files of simpler's naming in the device's preinstall
    /// directory: `<installed|temp> <name> <size> <age>`, one per line.
    Ls(LsArgs),
    /// Remove the installed runtimes with these fingerprints.
    Rm(RmArgs),
    /// Keep the most recently installed runtimes, remove the others and
    /// the temp files older than the stale age.
    Gc(GcArgs),
}

#[derive(Args, Debug)]
struct LsArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Args, Debug)]
struct RmArgs {
    /// Fingerprints of installed runtimes: the 16 hex digits of
    /// `simpler_inner_<fp>.so`.
    #[arg(value_name = "FP", required = true, value_parser = parse_fingerprint)]
    fingerprints: Vec<u64>,
    #[command(flatten)]
    target: Target,
}

#[derive(Args, Debug)]
struct GcArgs {
    /// Installed runtimes to keep, the most recently installed.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KEEP)]
    keep: u32,
    /// Remove temp files last written more than this many seconds ago.
    #[arg(long = "stale-after", value_name = "SECS", default_value_t = DEFAULT_STALE_AFTER.as_secs())]
    stale_after: u64,
    #[command(flatten)]
    target: Target,
}

/// 16 hex digits, as in a preinstall name.
fn parse_fingerprint(text: &str) -> Result<u64, String> {
    if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{text:?} is not a fingerprint: 16 hex digits, as in simpler_inner_<fp>.so"
        ));
    }
    u64::from_str_radix(text, 16).map_err(|e| format!("{text:?}: {e}"))
}

pub fn device(args: &DeviceArgs) -> Result<ExitCode> {
    match &args.command {
        DeviceCommand::Ls(a) => ls(&a.target),
        DeviceCommand::Rm(a) => {
            let m = maintenance(&a.target)?;
            let removal = m
                .remove(&a.fingerprints)
                .context("removing installed runtimes")?;
            Ok(report(&removal))
        }
        DeviceCommand::Gc(a) => {
            let m = maintenance(&a.target)?;
            let removal = m
                .gc(a.keep, Duration::from_secs(a.stale_after))
                .context("collecting garbage")?;
            Ok(report(&removal))
        }
    }
}

fn maintenance(target: &Target) -> Result<Maintenance> {
    let (cann, machine) = target.load()?;
    let dispatcher = target.dispatcher_image(machine)?;
    Ok(Maintenance::new(&cann, target.device, dispatcher))
}

fn ls(target: &Target) -> Result<ExitCode> {
    let m = maintenance(target)?;
    let mut listing = m.list().context("listing the preinstall directory")?;
    if listing.truncated && listing.total <= MAX_REPLY_ENTRIES {
        // More files than the default reply holds: ask once more with
        // room for all of them.
        listing = m
            .capacity(listing.total)
            .list()
            .context("listing the preinstall directory")?;
    }
    for file in &listing.files {
        println!("{}", line(file));
    }
    if listing.truncated {
        eprintln!(
            "warning: {} of the {} files are listed: the reply has no room for more",
            listing.files.len(),
            listing.total
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `<kind> <name> <size> <age>`.
fn line(file: &DeviceFile) -> String {
    format!(
        "{} {} {} {}",
        file.kind.name(),
        file.name,
        file.size,
        file.age.as_secs()
    )
}

/// Prints what was removed, and on stderr what was not; the exit status.
fn report(removal: &Removal) -> ExitCode {
    for file in &removal.removed {
        println!("removed {}", line(file));
    }
    let shown = removal.removed.len() + removal.failed.len();
    if removal.truncated {
        eprintln!(
            "note: {} more files were removed or failed than are listed",
            removal.total as usize - shown
        );
    }
    for failed in &removal.failed {
        eprintln!("error: {failed} (device {})", removal.device);
    }
    for fp in &removal.missing {
        eprintln!(
            "error: no runtime with fingerprint {fp:016x} is installed on device {} ({})",
            removal.device, removal.dir
        );
    }
    if removal.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
