//! Each install first removes the temp files dead writers left in the
//! preinstall directory: regular files of exactly the dispatcher's temp
//! naming whose mtime is older than the stale age (600 s, or
//! `SIMPLER_AICPU_TEMP_STALE_SECS`). Nothing else is touched, and a sweep
//! that cannot run does not fail the install.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use simpler_abi::log::dlog::{INFO, MODULE_AICPU, WARN};
use simpler_abi::names::{PREINSTALL_DIR_ENV, TEMP_STALE_SECS_ENV};
use simpler_abi::PreinstallName;

use crate::common::*;
use crate::ffi::{self, take_records, Bootstrap};

/// A temp name as the dispatcher makes them, for fingerprint `fp`.
fn temp_name(fp: u64, pid: u32) -> String {
    format!(
        ".{}.tmp.0.{pid}.{pid}.7.{:016x}.{:016x}",
        PreinstallName::new(fp),
        u64::from(pid) << 20,
        fp.rotate_left(7)
    )
}

/// Creates file `name` in `dir` with `len` bytes, `secs_ago` seconds old.
fn file_aged(dir: &Path, name: &str, len: usize, secs_ago: i64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, vec![0x5a; len]).unwrap();
    ffi::set_times_ago(&path, secs_ago);
    path
}

/// Installs a new runtime made from `seed`; its preinstall name.
fn install(dir: &Path, seed: u64) -> String {
    let runtime = fake_elf(2048, seed);
    let mut call = Bootstrap::of(&runtime);
    assert_eq!(call.run(), 0, "{:?}", call.report);
    assert_report_ok(&call.report, &runtime, &target_in(dir, &runtime));
    PreinstallName::of(&runtime).to_string()
}

/// The sweep line the dispatcher logs for `removed` files in `dir`.
fn removed_line(removed: u32, dir: &Path) -> (i32, i32, String) {
    (
        MODULE_AICPU,
        INFO,
        format!(
            "simpler dispatcher: removed {removed} stale temp files from {}, 0 left (errno 0)",
            dir.display()
        ),
    )
}

#[test]
fn temp_files_older_than_600_seconds_are_removed() {
    let Some(dir) = preinstall_dir_or_spawn("sweep::temp_files_older_than_600_seconds_are_removed")
    else {
        return;
    };
    // Two dead writers' leftovers, and the file of a writer on another die
    // that is still at work.
    file_aged(&dir, &temp_name(0x1111, 10), 4096, 601 + 60);
    file_aged(&dir, &temp_name(0x2222, 11), 0, 24 * 3600);
    let live = temp_name(0x3333, 12);
    file_aged(&dir, &live, 100, 500);
    let installed = install(&dir, 30);
    assert_entries(&dir, &[&installed, &live]);
    let records = take_records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0], removed_line(2, &dir));

    // The next install finds nothing to remove and says nothing about it.
    let second = install(&dir, 31);
    assert_entries(&dir, &[&installed, &second, &live]);
    let records = take_records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].1, INFO);
    assert!(records[0].2.contains("installed"), "{records:?}");
}

#[test]
fn the_stale_age_comes_from_the_environment() {
    const NAME: &str = "sweep::the_stale_age_comes_from_the_environment";
    if !simpler_testkit::is_child() {
        let dir = tempfile::tempdir().unwrap();
        for age in ["5", "not a number"] {
            let old = file_aged(dir.path(), &temp_name(0x4444, 13), 10, 60);
            run_child(
                NAME,
                &[
                    (PREINSTALL_DIR_ENV, dir.path().as_os_str()),
                    (TEMP_STALE_SECS_ENV, age.as_ref()),
                ],
            );
            // Not a number: the default, 600 s, keeps a minute-old file.
            assert_eq!(old.exists(), age != "5", "{age}");
            std::fs::remove_file(&old).ok();
        }
        return;
    }
    let dir = PathBuf::from(std::env::var_os(PREINSTALL_DIR_ENV).unwrap());
    let fresh = temp_name(0x5555, 14);
    file_aged(&dir, &fresh, 10, 0);
    install(&dir, 32);
    assert!(dir.join(&fresh).exists(), "a fresh temp file was removed");
    std::fs::remove_file(dir.join(fresh)).unwrap();
}

#[test]
fn only_regular_files_of_the_exact_temp_naming_are_touched() {
    let Some(dir) =
        preinstall_dir_or_spawn("sweep::only_regular_files_of_the_exact_temp_naming_are_touched")
    else {
        return;
    };
    const OLD: i64 = 3600;
    let stale = temp_name(0x6666, 15);
    file_aged(&dir, &stale, 10, OLD);

    let good = temp_name(0x7777, 16);
    let mut keep = vec![
        // Installed runtimes, however old.
        PreinstallName::new(0x7777).to_string(),
        // Other software's files, and names that almost match.
        "libfoo.so".to_owned(),
        ".simpler_inner_0000000000007777.so.tmp".to_owned(),
        good[1..].to_owned(),
        format!("{good}.bak"),
        good.replace(".7.", ".07."),
        good.to_uppercase(),
    ];
    for name in &keep {
        file_aged(&dir, name, 10, OLD);
    }

    // A symlink with the naming, itself old, to an old file elsewhere;
    // and one that dangles.
    let elsewhere = tempfile::tempdir().unwrap();
    let pointee = file_aged(elsewhere.path(), &temp_name(0x8888, 17), 10, OLD);
    let link = temp_name(0x9999, 18);
    std::os::unix::fs::symlink(&pointee, dir.join(&link)).unwrap();
    ffi::set_times_ago(&dir.join(&link), OLD);
    let dangling = temp_name(0xaaaa, 19);
    std::os::unix::fs::symlink(dir.join("nowhere"), dir.join(&dangling)).unwrap();
    ffi::set_times_ago(&dir.join(&dangling), OLD);
    // Directories with the naming, empty or not.
    let empty_dir = temp_name(0xbbbb, 20);
    std::fs::create_dir(dir.join(&empty_dir)).unwrap();
    ffi::set_times_ago(&dir.join(&empty_dir), OLD);
    let full_dir = temp_name(0xcccc, 21);
    std::fs::create_dir(dir.join(&full_dir)).unwrap();
    file_aged(&dir.join(&full_dir), &temp_name(0xdddd, 22), 10, OLD);
    ffi::set_times_ago(&dir.join(&full_dir), OLD);
    keep.extend([link, dangling, empty_dir, full_dir.clone()]);

    keep.push(install(&dir, 33));
    let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
    assert_entries(&dir, &keep);
    assert!(!dir.join(&stale).exists());
    assert_eq!(std::fs::read(&pointee).unwrap(), [0x5a; 10]);
    assert_eq!(entries(&dir.join(full_dir)).len(), 1);
    assert_eq!(take_records()[0], removed_line(1, &dir));
}

#[test]
fn an_unreadable_directory_does_not_fail_the_install() {
    const NAME: &str = "sweep::an_unreadable_directory_does_not_fail_the_install";
    if !simpler_testkit::is_child() {
        let dir = tempfile::tempdir().unwrap();
        let stale = file_aged(dir.path(), &temp_name(0xeeee, 23), 10, 3600);
        // Write and search, but no read: files can be created, not listed.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o300)).unwrap();
        run_child(NAME, &[(PREINSTALL_DIR_ENV, dir.path().as_os_str())]);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(stale.exists());
        assert_eq!(
            entries(dir.path()).len(),
            2,
            "the stale file and the runtime"
        );
        return;
    }
    let dir = PathBuf::from(std::env::var_os(PREINSTALL_DIR_ENV).unwrap());
    // Loaded first: the artifacts need no privilege, but the load should
    // not be what this test exercises.
    ffi::dispatcher();
    // As root, the permission bits bind only without capabilities.
    assert_eq!(ffi::drop_capabilities(), 0);
    assert!(
        std::fs::read_dir(&dir).is_err(),
        "the directory is readable"
    );
    let runtime = fake_elf(2048, 34);
    let mut call = Bootstrap::of(&runtime);
    assert_eq!(call.run(), 0, "{:?}", call.report);
    assert_report_ok(&call.report, &runtime, &target_in(&dir, &runtime));
    let records = take_records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        records[0],
        (
            MODULE_AICPU,
            WARN,
            format!(
                "simpler dispatcher: cannot list {} for stale temp files (errno {})",
                dir.display(),
                libc::EACCES
            )
        )
    );
}
