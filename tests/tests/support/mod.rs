//! What the workspace-level end-to-end tests on the simulator share: the
//! environment of a child process, the simulator and SOs, the state of a
//! device's preinstall directory, the device processes of a simulator root,
//! and the one-line records children report to their parent.
//!
//! The simulator reads its configuration (root, faults) from the process
//! environment at `aclInit`, so every scenario runs in a child process of
//! the test binary (`simpler_testkit::in_child`) with its own environment.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use simpler_host::abi::{fingerprint, SimStats};
use simpler_host::{Cann, CannSource};
use simpler_testkit::{
    device_artifacts, host_artifacts, ARTIFACTS_DIR_ENV, DEVICE_ARTIFACTS_DIR_ENV,
};

/// The simulator's root directory variable.
pub const SIM_ROOT_ENV: &str = "SIMPLER_SIM_ROOT";

/// The variables every child needs besides its own: its simulator root and
/// the artifacts directories, so that children neither build nor search.
pub fn child_env(root: &Path) -> Vec<(String, String)> {
    vec![
        (SIM_ROOT_ENV.into(), root.display().to_string()),
        (
            ARTIFACTS_DIR_ENV.into(),
            host_artifacts().dir().display().to_string(),
        ),
        (
            DEVICE_ARTIFACTS_DIR_ENV.into(),
            device_artifacts().dir().display().to_string(),
        ),
    ]
}

/// The simulator root of this (child) process.
pub fn sim_root() -> PathBuf {
    std::env::var_os(SIM_ROOT_ENV)
        .expect("a child process gets SIMPLER_SIM_ROOT from its parent")
        .into()
}

/// `<root>/device<N>/preinstall`, as `docs/simulator.md` lays it out.
pub fn preinstall_dir(root: &Path, device: i32) -> PathBuf {
    root.join(format!("device{device}")).join("preinstall")
}

/// The simulator library from the artifacts directory.
pub fn cann() -> Cann {
    Cann::load(&CannSource::Libraries(vec![host_artifacts().sim_lib()]))
        .expect("load the simulator")
}

/// The simulator's accounting for `device`.
pub fn stats(cann: &Cann, device: i32) -> SimStats {
    cann.sim_stats(device)
        .expect("simpler_sim_get_stats")
        .expect("the simulator exports its accounting")
}

/// The device-side dispatcher SO.
pub fn dispatcher_bytes() -> Vec<u8> {
    fs::read(device_artifacts().dispatcher()).expect("read the dispatcher SO")
}

/// The device-side runtime SO and a variant of it: the same ELF with bytes
/// appended after its last section, so it still loads and works but has
/// another fingerprint, hence another preinstall file.
pub fn runtime_pair() -> [Vec<u8>; 2] {
    let original = fs::read(device_artifacts().runtime()).expect("read the runtime SO");
    let mut variant = original.clone();
    variant.extend_from_slice(b"\0simpler e2e: a second runtime SO with its own fingerprint\0");
    [original, variant]
}

/// What a preinstall directory holds, checked file by file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreinstallScan {
    /// `simpler_inner_<fp>.so` files whose bytes hash to their name.
    pub sound: Vec<String>,
    /// `simpler_inner_<fp>.so` files whose bytes do not hash to their name:
    /// a reader (the AICPU scheduler's `dlopen`) would see torn bytes.
    pub torn: Vec<String>,
    /// The dispatcher's temp files (`.simpler_inner_<fp>.so.tmp.<unique>`).
    pub temp: Vec<String>,
    /// Anything else.
    pub other: Vec<String>,
}

/// Reads every file in `dir` (a missing directory is empty). A file that
/// vanishes between listing and reading (a temp file renamed into place) is
/// skipped: only what can be opened is judged.
pub fn scan_preinstall(dir: &Path) -> PreinstallScan {
    let mut scan = PreinstallScan::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return scan;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(fp) = preinstall_fingerprint(&name) {
            match fs::read(entry.path()) {
                Ok(bytes) if fingerprint(&bytes) == fp => scan.sound.push(name),
                Ok(_) => scan.torn.push(name),
                Err(_) => {}
            }
        } else if name.starts_with(".simpler_inner_") && name.contains(".tmp.") {
            scan.temp.push(name);
        } else {
            scan.other.push(name);
        }
    }
    for list in [
        &mut scan.sound,
        &mut scan.torn,
        &mut scan.temp,
        &mut scan.other,
    ] {
        list.sort();
    }
    scan
}

/// The fingerprint a `simpler_inner_<16 hex>.so` name claims.
fn preinstall_fingerprint(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("simpler_inner_")?.strip_suffix(".so")?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A process seen in `/proc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its state letter (`R`, `S`, `Z`, …).
    pub state: char,
    /// Its command line, arguments joined by spaces (empty for a zombie).
    pub cmdline: String,
}

/// Every process visible in `/proc` (ones that exit while being read are
/// skipped).
pub fn processes() -> Vec<Proc> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces and parens.
            let rest = &stat[stat.rfind(')')? + 1..];
            let mut fields = rest.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let ppid = fields.next()?.parse().ok()?;
            let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    raw.split(|&b| b == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            Some(Proc {
                pid,
                ppid,
                state,
                cmdline,
            })
        })
        .collect()
}

/// Device processes of the simulator rooted at `root`: the simulator puts
/// `--root <root>/device<N>` on their command line (under qemu-user as
/// well, where the process is `qemu-aarch64 … simpler-sim-aicpu …`).
pub fn device_processes(root: &Path) -> Vec<Proc> {
    let root = format!("{}/device", root.display());
    let me = std::process::id();
    processes()
        .into_iter()
        .filter(|p| p.pid != me && p.cmdline.contains("simpler-sim-aicpu"))
        .filter(|p| p.cmdline.contains(&root))
        .collect()
}

/// Children of this process, alive or not yet reaped: after every device is
/// reset, a host process must have none left (each one is a device process
/// that outlived its reset or was never waited for).
pub fn children() -> Vec<Proc> {
    let me = std::process::id();
    processes().into_iter().filter(|p| p.ppid == me).collect()
}

/// One record a child prints for its parent: a tag, then `key=value` fields
/// separated by tabs (values hold no tab or newline).
pub fn print_record(tag: &str, fields: &[(&str, String)]) {
    let mut line = String::from(tag);
    for (key, value) in fields {
        line.push('\t');
        line.push_str(key);
        line.push('=');
        line.push_str(&value.replace(['\t', '\n'], " "));
    }
    // On a line of its own: libtest has already printed `test <name> ... `.
    println!("\n{line}");
}

/// The records tagged `tag` in a child's stdout.
pub fn records(out: &Output, tag: &str) -> Vec<BTreeMap<String, String>> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            (parts.next()? == tag).then(|| {
                parts
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
        })
        .collect()
}

/// A child's output for a failure message.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
