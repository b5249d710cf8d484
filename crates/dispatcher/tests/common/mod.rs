//! Calls the dispatcher SO as CANN's `libaicpu_extend_kernels.so` would:
//! dlopen the host-arch artifact, resolve the three contract symbols, build
//! the bootstrap block, `DeviceArgs` and report in memory (host and "device"
//! share one address space here) and call Init.
//!
//! The dispatcher reads `SIMPLER_AICPU_PREINSTALL_DIR` from the process
//! environment, so every test that installs runs its body in a child
//! process with its own directory ([`preinstall_dir_or_spawn`]).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::ffi::c_void;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use simpler_abi::names::{
    DISPATCHER_INIT_SYMBOL, DISPATCHER_SERVER_SYMBOL, DISPATCHER_STATIC_SYMBOL, PREINSTALL_DIR_ENV,
};
use simpler_abi::{
    BootstrapArgs, BootstrapReport, DeviceArgs, PreinstallName, ReportStage, ReportStatus,
};

/// A contract export: `int32_t f(void *args)`.
pub type Entry = unsafe extern "C" fn(*mut c_void) -> i32;

/// The loaded dispatcher and its three exports.
pub struct Dispatcher {
    _lib: libloading::Library,
    pub init: Entry,
    pub server: Entry,
    pub static_server: Entry,
}

/// The host-arch dispatcher artifact, loaded once per test process.
pub fn dispatcher() -> &'static Dispatcher {
    static DISPATCHER: OnceLock<Dispatcher> = OnceLock::new();
    DISPATCHER.get_or_init(|| {
        let path = simpler_testkit::host_artifacts().dispatcher();
        // SAFETY: the dispatcher has no initialisers beyond libc's.
        let lib = unsafe { libloading::Library::new(&path) }
            .unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()));
        let entry = |name: &str| -> Entry {
            // SAFETY: every contract symbol has the `Entry` signature.
            *unsafe { lib.get::<Entry>(name.as_bytes()) }
                .unwrap_or_else(|e| panic!("{name} missing from {}: {e}", path.display()))
        };
        Dispatcher {
            init: entry(DISPATCHER_INIT_SYMBOL),
            server: entry(DISPATCHER_SERVER_SYMBOL),
            static_server: entry(DISPATCHER_STATIC_SYMBOL),
            _lib: lib,
        }
    })
}

/// One bootstrap call's memory: the block, the `DeviceArgs` it points to
/// and the report `DeviceArgs` points to, at stable (boxed) addresses.
pub struct Bootstrap {
    pub args: BootstrapArgs,
    pub device: DeviceArgs,
    pub report: BootstrapReport,
}

/// Byte the report is filled with before a call, so a field the
/// dispatcher forgot to write shows up.
pub const REPORT_POISON: u8 = 0xa5;

impl Bootstrap {
    /// A bootstrap of the `len` bytes at `bin` (any values, valid or not)
    /// for device 3, with a poisoned report attached.
    pub fn raw(bin: u64, len: u64) -> Box<Self> {
        let mut this = Box::new(Self {
            args: BootstrapArgs::new(0),
            device: DeviceArgs::default(),
            report: bytemuck::Zeroable::zeroed(),
        });
        bytemuck::bytes_of_mut(&mut this.report).fill(REPORT_POISON);
        this.device.device_id = 3;
        this.device.inner_so_bin = bin;
        this.device.inner_so_len = len;
        this.device.report = &raw mut this.report as u64;
        this.args.device_args = &raw const this.device as u64;
        this
    }

    /// A bootstrap of `runtime`, which must outlive the call.
    pub fn of(runtime: &[u8]) -> Box<Self> {
        Self::raw(runtime.as_ptr() as u64, runtime.len() as u64)
    }

    /// Detaches the report (`DeviceArgs::report = 0`).
    pub fn without_report(mut self: Box<Self>) -> Box<Self> {
        self.device.report = 0;
        self
    }

    /// Calls Init on the block, as `libaicpu_extend_kernels` does.
    pub fn run(&mut self) -> i32 {
        // SAFETY: the block, DeviceArgs and report are live and laid out as
        // the dispatcher expects; the runtime bytes outlive the call.
        unsafe { (dispatcher().init)((&raw mut self.args).cast()) }
    }
}

/// Asserts a successful report for `runtime` installed as `target`.
pub fn assert_report_ok(report: &BootstrapReport, runtime: &[u8], target: &Path) {
    assert_eq!(
        report.magic,
        simpler_abi::bootstrap::REPORT_MAGIC,
        "{report:?}"
    );
    assert_eq!(report.abi_version, simpler_abi::ABI_VERSION);
    assert_eq!(
        ReportStatus::from_raw(report.status),
        Some(ReportStatus::Ok),
        "{report:?}"
    );
    assert_eq!(ReportStage::from_raw(report.stage), Some(ReportStage::None));
    assert_eq!(report.errno, 0);
    assert_eq!(report.reserved, 0);
    assert_eq!(report.fingerprint, simpler_abi::fingerprint(runtime));
    assert_eq!(report.bytes_written, runtime.len() as u64);
    assert_path_field(report, target.to_str().unwrap());
}

/// Asserts a failure report at `stage` with `errno`, and that the call
/// returned the stage number.
pub fn assert_report_failed(ret: i32, report: &BootstrapReport, stage: ReportStage, errno: i32) {
    assert_eq!(
        ret, stage as i32,
        "return value is the failing stage; {report:?}"
    );
    assert_eq!(
        report.magic,
        simpler_abi::bootstrap::REPORT_MAGIC,
        "{report:?}"
    );
    assert_eq!(report.abi_version, simpler_abi::ABI_VERSION);
    assert_eq!(
        ReportStatus::from_raw(report.status),
        Some(ReportStatus::Failed),
        "{report:?}"
    );
    assert_eq!(
        ReportStage::from_raw(report.stage),
        Some(stage),
        "stage; errno {} ({})",
        report.errno,
        std::io::Error::from_raw_os_error(report.errno)
    );
    assert_eq!(
        report.errno,
        errno,
        "expected {}, got {}",
        std::io::Error::from_raw_os_error(errno),
        std::io::Error::from_raw_os_error(report.errno)
    );
    assert_eq!(report.reserved, 0);
}

/// Asserts the report's path field holds exactly `expected`, NUL-padded.
pub fn assert_path_field(report: &BootstrapReport, expected: &str) {
    assert_eq!(report.path_str(), Some(expected), "report path");
    let tail = &report.path[expected.len()..];
    assert!(
        tail.iter().all(|&b| b == 0),
        "path field is NUL-padded: {tail:?}"
    );
}

/// `len` bytes that start with the ELF magic and otherwise depend on `seed`.
pub fn fake_elf(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    bytes[..4.min(len)].copy_from_slice(&b"\x7fELF"[..4.min(len)]);
    bytes
}

/// The preinstall path of `runtime` in `dir`.
pub fn target_in(dir: &Path, runtime: &[u8]) -> PathBuf {
    dir.join(PreinstallName::of(runtime).as_str())
}

/// The names in `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Asserts `dir` holds exactly `names` (so no temp file either).
pub fn assert_entries(dir: &Path, names: &[&str]) {
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(entries(dir), want, "entries of {}", dir.display());
}

/// Asserts `path` is a regular file with mode 0755 and exactly `bytes`.
pub fn assert_installed(path: &Path, bytes: &[u8]) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(meta.is_file());
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o755,
        "mode of {}",
        path.display()
    );
    assert!(
        std::fs::read(path).unwrap() == bytes,
        "content of {}",
        path.display()
    );
}

/// In the parent: runs test `name` again in a child process whose
/// `SIMPLER_AICPU_PREINSTALL_DIR` is a fresh temp directory, asserts the
/// child ran that one test and passed, and returns `None`. In the child:
/// returns the directory.
pub fn preinstall_dir_or_spawn(name: &str) -> Option<PathBuf> {
    if simpler_testkit::is_child() {
        return Some(
            std::env::var_os(PREINSTALL_DIR_ENV)
                .expect("child has a preinstall dir")
                .into(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    run_child(name, &[(PREINSTALL_DIR_ENV, dir.path().as_os_str())]);
    None
}

/// Runs test `name` in a child process with `envs` and asserts that it ran
/// exactly that test and passed.
pub fn run_child(name: &str, envs: &[(&str, &std::ffi::OsStr)]) {
    let out = simpler_testkit::in_child(name, envs.iter().copied());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child `{name}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}
