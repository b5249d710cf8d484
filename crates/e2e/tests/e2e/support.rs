//! What the stress test and the fault matrix share: the device-side SOs,
//! the state of a device's preinstall directory, the device processes of a
//! simulator root, and the one-line records children report to their
//! parent.
//!
//! The simulator reads its configuration (root, faults) from the process
//! environment at `aclInit`, so every scenario runs in a child process of
//! the test binary (`simpler_testkit::in_child`) with its own environment.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use simpler_abi::artifacts::files;
use simpler_abi::names::PREINSTALL_PREFIX;
use simpler_abi::sim::env;
use simpler_abi::{fingerprint, PreinstallName};
use simpler_testkit::device_artifacts;

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

/// Fingerprints of files, remembered per inode and version: a file is read
/// again only when its inode, size, modification or change time differs
/// from the last read, so that repeated scans stay cheap while a file
/// rewritten in place (which would change its times) is still read anew.
#[derive(Debug, Default)]
pub struct FileHashes {
    known: std::collections::HashMap<FileVersion, u64>,
    /// Files actually read and hashed.
    pub reads: usize,
}

impl FileHashes {
    /// FNV-1a 64 of the file at `path`, as of one `open`.
    pub fn fingerprint(&mut self, path: &Path) -> std::io::Result<u64> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let mut file = fs::File::open(path)?;
        let m = file.metadata()?;
        let key = (
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        );
        if let Some(&fp) = self.known.get(&key) {
            return Ok(fp);
        }
        let mut bytes = Vec::with_capacity(m.size() as usize);
        file.read_to_end(&mut bytes)?;
        self.reads += 1;
        let fp = fingerprint(&bytes);
        self.known.insert(key, fp);
        Ok(fp)
    }
}

/// Device, inode, size, modification and change times (seconds, nanoseconds).
type FileVersion = (u64, u64, u64, i64, i64, i64, i64);

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
pub fn scan_preinstall(dir: &Path, hashes: &mut FileHashes) -> PreinstallScan {
    let mut scan = PreinstallScan::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return scan;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(fp) = preinstall_fingerprint(&name) {
            match hashes.fingerprint(&entry.path()) {
                Ok(got) if got == fp => scan.sound.push(name),
                Ok(_) => scan.torn.push(name),
                Err(_) => {}
            }
        } else if name.starts_with(&format!(".{PREINSTALL_PREFIX}")) && name.contains(".tmp.") {
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
    PreinstallName::parse(name)
}

/// Runtime SOs as the device processes have them mapped: what their
/// `dlopen` actually loaded, read back through `/proc/<pid>/map_files`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MappedScan {
    /// Distinct mapped files whose bytes were hashed.
    pub checked: usize,
    /// Mapped files whose bytes do not hash to their name (`pid: path`).
    pub torn: Vec<String>,
    /// Mapped files the kernel would not let this process open (reading
    /// `map_files` needs `CAP_SYS_ADMIN` on some kernels).
    pub refused: usize,
}

/// Hashes every `simpler_inner_<fp>.so` mapped by a device process of the
/// simulator rooted at `root` — the inode the AICPU scheduler's `dlopen`
/// opened, even if a later install has renamed another file over its name
/// since (the mapping then shows ` (deleted)`). Each inode is checked once
/// per scan; processes or mappings that vanish meanwhile are skipped.
pub fn scan_mapped_runtimes(root: &Path, hashes: &mut FileHashes) -> MappedScan {
    let mut scan = MappedScan::default();
    let mut seen = std::collections::BTreeSet::new();
    for proc in device_processes(root) {
        let Ok(maps) = fs::read_to_string(format!("/proc/{}/maps", proc.pid)) else {
            continue;
        };
        for line in maps.lines() {
            // `start-end perms offset dev inode path`
            let fields: Vec<&str> = line.splitn(6, ' ').collect();
            let [range, _, _, dev, inode, path] = fields[..] else {
                continue;
            };
            let path = path.trim_start();
            let file = path.trim_end_matches(" (deleted)");
            let Some(name) = file.rsplit('/').next() else {
                continue;
            };
            let Some(fp) = preinstall_fingerprint(name) else {
                continue;
            };
            if !seen.insert((dev.to_owned(), inode.to_owned())) {
                continue;
            }
            let mapped = PathBuf::from(format!("/proc/{}/map_files/{range}", proc.pid));
            match hashes.fingerprint(&mapped) {
                Ok(got) => {
                    scan.checked += 1;
                    if got != fp {
                        scan.torn.push(format!("{}: {path}", proc.pid));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => scan.refused += 1,
                Err(_) => {}
            }
        }
    }
    scan
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
/// their device's directory, under `root`, on their command line (under
/// qemu-user as well, where the process is
/// `qemu-aarch64 … simpler-sim-aicpu …`).
pub fn device_processes(root: &Path) -> Vec<Proc> {
    let root = format!("{}/", root.display());
    let me = std::process::id();
    processes()
        .into_iter()
        .filter(|p| p.pid != me && p.cmdline.contains(files::SIM_DEVICE_BIN))
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

/// Lays `rows` out in columns under `header`, two spaces apart. A row with
/// fewer cells than the header is a note: its last cell runs on freely and
/// does not widen its column.
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows.iter().filter(|r| r.len() == header.len()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(w.saturating_sub(cell.chars().count())));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The device side as the simulator reports it (`e_machine` of its device
/// process) and the launcher it runs under, if any.
pub fn device_side(machine: u64) -> String {
    let name = match machine {
        62 => "x86-64".to_string(),
        183 => "AArch64".to_string(),
        other => format!("e_machine {other}"),
    };
    match std::env::var(env::AICPU_LAUNCHER) {
        Ok(launcher) if !launcher.trim().is_empty() => format!("{name}, under `{launcher}`"),
        _ => format!("{name}, native"),
    }
}
