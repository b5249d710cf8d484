//! Init end to end: what it installs, what it reports, and that every bad
//! input or failing step returns non-zero, reports the stage and errno, and
//! leaves neither the target nor a temp file behind.

use std::path::Path;

use simpler_abi::names::{DEFAULT_PREINSTALL_DIR, MAX_INNER_SO_LEN};
use simpler_abi::{PreinstallName, ReportStage};

use crate::common::*;
use crate::ffi::{self, dispatcher, Bootstrap, REPORT_POISON};

#[test]
fn installs_identical_bytes_as_0755_under_the_fingerprint_name() {
    let Some(dir) = preinstall_dir_or_spawn(
        "install::installs_identical_bytes_as_0755_under_the_fingerprint_name",
    ) else {
        return;
    };
    // A restrictive umask must not leak into the installed mode (of this
    // child process).
    ffi::set_umask(0o077);
    let runtime = fake_elf(300_001, 1);
    let target = target_in(&dir, &runtime);
    let mut call = Bootstrap::of(&runtime);
    assert_eq!(call.run(), 0);
    assert_report_ok(&call.report, &runtime, &target);
    assert_installed(&target, &runtime);
    assert_eq!(
        PreinstallName::parse(target.file_name().unwrap().to_str().unwrap()),
        Some(simpler_abi::fingerprint(&runtime))
    );
    assert_entries(&dir, &[PreinstallName::of(&runtime).as_str()]);
}

#[test]
fn replaces_an_existing_file_and_keeps_other_runtimes() {
    let Some(dir) =
        preinstall_dir_or_spawn("install::replaces_an_existing_file_and_keeps_other_runtimes")
    else {
        return;
    };
    let first = fake_elf(4096, 2);
    let second = fake_elf(8192, 3);
    let target = target_in(&dir, &first);
    std::fs::write(&target, b"stale, truncated content").unwrap();
    assert_eq!(Bootstrap::of(&first).run(), 0);
    assert_eq!(Bootstrap::of(&second).run(), 0);
    // Bootstrapping the same bytes again is harmless.
    assert_eq!(Bootstrap::of(&first).run(), 0);
    assert_installed(&target, &first);
    assert_installed(&target_in(&dir, &second), &second);
    assert_entries(
        &dir,
        &[
            PreinstallName::of(&first).as_str(),
            PreinstallName::of(&second).as_str(),
        ],
    );
}

#[test]
fn works_without_a_report() {
    let Some(dir) = preinstall_dir_or_spawn("install::works_without_a_report") else {
        return;
    };
    let runtime = fake_elf(100, 4);
    assert_eq!(Bootstrap::of(&runtime).without_report().run(), 0);
    assert_installed(&target_in(&dir, &runtime), &runtime);
    // A failure without a report still returns its stage.
    assert_eq!(
        Bootstrap::of(b"not elf").without_report().run(),
        ReportStage::Validate as i32
    );
    assert_entries(&dir, &[PreinstallName::of(&runtime).as_str()]);
}

#[test]
fn trailing_slash_and_empty_variable() {
    if !simpler_testkit::is_child() {
        let dir = tempfile::tempdir().unwrap();
        let with_slash = format!("{}/", dir.path().display());
        run_child(
            "install::trailing_slash_and_empty_variable",
            &[(simpler_abi::names::PREINSTALL_DIR_ENV, with_slash.as_ref())],
        );
        let empty = std::ffi::OsStr::new("");
        run_child(
            "install::trailing_slash_and_empty_variable",
            &[(simpler_abi::names::PREINSTALL_DIR_ENV, empty)],
        );
        return;
    }
    let dir = std::env::var(simpler_abi::names::PREINSTALL_DIR_ENV).unwrap();
    let runtime = fake_elf(64, 5);
    let name = PreinstallName::of(&runtime);
    let mut call = Bootstrap::of(&runtime);
    if dir.is_empty() {
        // Empty means unset: CANN's directory, which this machine lacks.
        if Path::new(DEFAULT_PREINSTALL_DIR).exists() {
            eprintln!("{DEFAULT_PREINSTALL_DIR} exists here; not writing into it");
            return;
        }
        assert_report_failed(call.run(), &call.report, ReportStage::Open, libc::ENOENT);
        assert_path_field(&call.report, &format!("{DEFAULT_PREINSTALL_DIR}/{name}"));
        assert_eq!(call.report.fingerprint, simpler_abi::fingerprint(&runtime));
    } else {
        assert_eq!(call.run(), 0);
        let clean = dir.trim_end_matches('/');
        assert_path_field(&call.report, &format!("{clean}/{name}"));
        assert_installed(&Path::new(clean).join(name.as_str()), &runtime);
    }
}

#[test]
fn null_block_and_null_device_args_are_rejected() {
    let Some(dir) =
        preinstall_dir_or_spawn("install::null_block_and_null_device_args_are_rejected")
    else {
        return;
    };
    let ret = dispatcher().init_null();
    assert_eq!(ret, ReportStage::Validate as i32);

    let runtime = fake_elf(64, 6);
    let mut call = Bootstrap::of(&runtime);
    call.args.device_args = 0;
    assert_eq!(call.run(), ReportStage::Validate as i32);
    // Without DeviceArgs there is no report address: nothing may be written.
    assert!(bytemuck::bytes_of(&call.report)
        .iter()
        .all(|&b| b == REPORT_POISON));
    assert_entries(&dir, &[]);
}

/// Runs a bootstrap of `len` bytes at `bin` and checks the validation
/// failure it must produce, with no file left.
fn assert_rejected(dir: &Path, bin: u64, len: u64, errno: i32) {
    let mut call = Bootstrap::raw(bin, len);
    assert_report_failed(call.run(), &call.report, ReportStage::Validate, errno);
    assert_eq!(call.report.bytes_written, 0);
    assert_eq!(
        call.report.fingerprint, 0,
        "no fingerprint of rejected bytes"
    );
    // The directory was not looked at: no path either.
    assert_path_field(&call.report, "");
    assert_entries(dir, &[]);
}

/// The table of `Validate` errnos in docs/abi.md is the one the checks
/// here (and in `path_length_limit`) hold the dispatcher to.
#[test]
fn validate_errnos_are_the_documented_ones() {
    let abi_md = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/abi.md");
    let doc = std::fs::read_to_string(&abi_md).unwrap();
    let header = "| `errno` | name | `Validate` failure |";
    let table = &doc[doc.find(header).expect("the Validate errno table")..];
    let rows: Vec<(i32, String)> = table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (
                cells[1].parse().unwrap(),
                cells[2].trim_matches('`').to_owned(),
            )
        })
        .collect();
    let reported = [
        (libc::EINVAL, "EINVAL"),
        (libc::EFBIG, "EFBIG"),
        (libc::ENOEXEC, "ENOEXEC"),
        (libc::ENAMETOOLONG, "ENAMETOOLONG"),
    ]
    .map(|(errno, name)| (errno, name.to_owned()));
    assert_eq!(rows, reported);
}

#[test]
fn bad_runtime_bytes_are_rejected() {
    let Some(dir) = preinstall_dir_or_spawn("install::bad_runtime_bytes_are_rejected") else {
        return;
    };
    let elf = fake_elf(64, 7);
    let at = elf.as_ptr() as u64;
    assert_rejected(&dir, at, 0, libc::EINVAL);
    assert_rejected(&dir, 0, elf.len() as u64, libc::EINVAL);
    // Over the cap: rejected on the length alone, the bytes are never read.
    assert_rejected(&dir, at, MAX_INNER_SO_LEN + 1, libc::EFBIG);
    assert_rejected(&dir, at, u64::MAX, libc::EFBIG);
    let not_elf = b"MZ\x90\x00 this is not an ELF image";
    assert_rejected(
        &dir,
        not_elf.as_ptr() as u64,
        not_elf.len() as u64,
        libc::ENOEXEC,
    );
    // Shorter than the magic, even when it is a prefix of it.
    assert_rejected(&dir, elf.as_ptr() as u64, 3, libc::ENOEXEC);
}

#[test]
fn missing_directory_fails_at_open() {
    if !simpler_testkit::is_child() {
        let parent = tempfile::tempdir().unwrap();
        let missing = parent.path().join("missing");
        run_child(
            "install::missing_directory_fails_at_open",
            &[(simpler_abi::names::PREINSTALL_DIR_ENV, missing.as_os_str())],
        );
        assert_entries(parent.path(), &[]);
        return;
    }
    let dir =
        std::path::PathBuf::from(std::env::var_os(simpler_abi::names::PREINSTALL_DIR_ENV).unwrap());
    let runtime = fake_elf(64, 8);
    let mut call = Bootstrap::of(&runtime);
    assert_report_failed(call.run(), &call.report, ReportStage::Open, libc::ENOENT);
    assert_path_field(&call.report, target_in(&dir, &runtime).to_str().unwrap());
    assert_eq!(call.report.fingerprint, simpler_abi::fingerprint(&runtime));
    assert_eq!(call.report.bytes_written, 0);
    assert!(!dir.exists());
}

#[test]
fn directory_that_is_a_file_fails_at_open() {
    if !simpler_testkit::is_child() {
        let parent = tempfile::tempdir().unwrap();
        let file = parent.path().join("file");
        std::fs::write(&file, b"just a file").unwrap();
        run_child(
            "install::directory_that_is_a_file_fails_at_open",
            &[(simpler_abi::names::PREINSTALL_DIR_ENV, file.as_os_str())],
        );
        assert_entries(parent.path(), &["file"]);
        assert_eq!(std::fs::read(&file).unwrap(), b"just a file");
        return;
    }
    let runtime = fake_elf(64, 9);
    let mut call = Bootstrap::of(&runtime);
    assert_report_failed(call.run(), &call.report, ReportStage::Open, libc::ENOTDIR);
}

/// The report's path field holds 255 bytes and a NUL: the longest target
/// path that fits installs, one byte more is rejected before touching the
/// filesystem.
#[test]
fn path_length_limit() {
    const NAME_LEN: usize = simpler_abi::fingerprint::PREINSTALL_NAME_LEN;
    const FIELD: usize = simpler_abi::bootstrap::REPORT_PATH_LEN;
    if !simpler_testkit::is_child() {
        let root = tempfile::tempdir().unwrap();
        // `<root>/<pad>` + `/` + name must be exactly FIELD - 1 bytes.
        let base = root.path().to_str().unwrap().len() + 1;
        let pad = "d".repeat(FIELD - 1 - NAME_LEN - 1 - base);
        let fits = root.path().join(&pad);
        std::fs::create_dir(&fits).unwrap();
        run_child(
            "install::path_length_limit",
            &[(simpler_abi::names::PREINSTALL_DIR_ENV, fits.as_os_str())],
        );
        assert_eq!(entries(&fits).len(), 1);

        let too_long = root.path().join(format!("{pad}e"));
        std::fs::create_dir(&too_long).unwrap();
        run_child(
            "install::path_length_limit",
            &[(simpler_abi::names::PREINSTALL_DIR_ENV, too_long.as_os_str())],
        );
        assert_entries(&too_long, &[]);
        return;
    }
    let dir = std::env::var(simpler_abi::names::PREINSTALL_DIR_ENV).unwrap();
    let runtime = fake_elf(128, 10);
    let full = format!("{dir}/{}", PreinstallName::of(&runtime));
    let mut call = Bootstrap::of(&runtime);
    let ret = call.run();
    if full.len() < FIELD {
        assert_eq!(full.len(), FIELD - 1);
        assert_eq!(ret, 0);
        assert_report_ok(&call.report, &runtime, Path::new(&full));
        assert_installed(Path::new(&full), &runtime);
    } else {
        assert_report_failed(ret, &call.report, ReportStage::Validate, libc::ENAMETOOLONG);
        // As much of the path as fits, for the host's error message.
        assert_path_field(&call.report, &full[..FIELD - 1]);
        assert_eq!(call.report.bytes_written, 0);
        assert_eq!(call.report.fingerprint, simpler_abi::fingerprint(&runtime));
    }
}

#[test]
fn rename_failure_removes_the_temp_file() {
    let Some(dir) = preinstall_dir_or_spawn("install::rename_failure_removes_the_temp_file") else {
        return;
    };
    let runtime = fake_elf(10_000, 11);
    let name = PreinstallName::of(&runtime);
    // A non-empty directory squats on the target name: rename(2) refuses
    // to replace it with a file, even for root.
    let squatter = dir.join(name.as_str());
    std::fs::create_dir(&squatter).unwrap();
    std::fs::write(squatter.join("keep"), b"x").unwrap();
    let mut call = Bootstrap::of(&runtime);
    assert_report_failed(call.run(), &call.report, ReportStage::Rename, libc::EISDIR);
    assert_eq!(call.report.bytes_written, runtime.len() as u64);
    assert_path_field(&call.report, squatter.to_str().unwrap());
    assert_entries(&dir, &[name.as_str()]);
    assert_entries(&squatter, &["keep"]);
}

#[test]
fn write_failure_removes_the_temp_file() {
    let Some(dir) = preinstall_dir_or_spawn("install::write_failure_removes_the_temp_file") else {
        return;
    };
    // A file size limit fails writes for root too: the first write stops
    // short at the limit, the next gets EFBIG (SIGXFSZ ignored).
    const LIMIT: u64 = 4096;
    // Of this child process only.
    assert_eq!(ffi::limit_file_size(LIMIT), 0);
    let runtime = fake_elf(64 * 1024, 12);
    let mut call = Bootstrap::of(&runtime);
    assert_report_failed(call.run(), &call.report, ReportStage::Write, libc::EFBIG);
    assert_eq!(
        call.report.bytes_written, LIMIT,
        "the short write is counted"
    );
    assert_eq!(call.report.fingerprint, simpler_abi::fingerprint(&runtime));
    assert_entries(&dir, &[]);
}
