//! Checks shared by the tests (what a report, a file or a directory must
//! hold), the fake runtime SOs they install, and running a test's body in
//! a child process with its own preinstall directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use simpler_abi::names::PREINSTALL_DIR_ENV;
use simpler_abi::{BootstrapReport, PreinstallName, ReportStage, ReportStatus};

/// Asserts a successful report for `runtime` installed as `target`.
pub fn assert_report_ok(report: &BootstrapReport, runtime: &[u8], target: &Path) {
    assert_report_written(report, ReportStatus::Ok);
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
    assert_report_written(report, ReportStatus::Failed);
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

/// Asserts that this dispatcher wrote the report, with `status`.
fn assert_report_written(report: &BootstrapReport, status: ReportStatus) {
    assert_eq!(
        report.magic,
        simpler_abi::bootstrap::REPORT_MAGIC,
        "{report:?}"
    );
    assert_eq!(report.abi_version, simpler_abi::ABI_VERSION);
    assert_eq!(
        ReportStatus::from_raw(report.status),
        Some(status),
        "{report:?}"
    );
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

/// In the parent: runs test `name` (module-qualified, as libtest names
/// it) again in a child process whose
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

/// Runs test `name` (module-qualified) in a child process with `envs` and
/// asserts that it ran exactly that test and passed.
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
