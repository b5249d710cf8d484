//! The maintenance commands through Init, on a temp preinstall directory:
//! list, remove and gc see and touch only regular files of simpler's two
//! namings; gc keeps the newest installed runtimes and the fresh temp
//! files; a reply never overruns its capacity, and says so when it is
//! truncated; a bad request is refused in the reply with nothing touched;
//! the bootstrap report is never written by a command.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use simpler_abi::maintenance::{
    Command, EntryAction, EntryKind, MaintenanceEntry, ReplyStatus, COMMAND_TAG,
    MAINTENANCE_VERSION, MAX_REPLY_ENTRIES, REPLY_MAGIC, REPLY_TRUNCATED,
};
use simpler_abi::names::PREINSTALL_DIR_ENV;
use simpler_abi::{PreinstallName, ReportStage};

use crate::common::*;
use crate::ffi::{self, Bootstrap, Maintenance, REPORT_POISON};

/// A temp name as the dispatcher makes them, for fingerprint `fp`.
fn temp_name(fp: u64, pid: u32) -> String {
    format!(
        ".{}.tmp.1.{pid}.{pid}.0.{:016x}.{:016x}",
        PreinstallName::new(fp),
        u64::from(pid) << 24,
        fp.rotate_left(11)
    )
}

fn installed_name(fp: u64) -> String {
    PreinstallName::new(fp).to_string()
}

/// Creates file `name` in `dir` with `len` bytes, `secs_ago` seconds old.
fn file_aged(dir: &Path, name: &str, len: usize, secs_ago: i64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, vec![0x3c; len]).unwrap();
    ffi::set_times_ago(&path, secs_ago);
    path
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs `command` with room for `capacity` entries; asserts the reply is
/// written, complete and consistent, the report untouched and nothing
/// written past the entries the reply counts.
fn run(call: &mut Maintenance, command: Command, dir: &Path) -> Vec<MaintenanceEntry> {
    let before = now_secs();
    assert_eq!(call.run(), 0);
    let reply = call.reply();
    assert_eq!(reply.magic, REPLY_MAGIC, "{reply:?}");
    assert_eq!(reply.version, MAINTENANCE_VERSION);
    assert_eq!(reply.command, command as u32);
    assert_eq!(
        ReplyStatus::from_raw(reply.status),
        Some(ReplyStatus::Ok),
        "errno {}",
        reply.errno
    );
    assert_eq!(reply.errno, 0);
    assert!((before..=now_secs()).contains(&reply.now), "{}", reply.now);
    assert_eq!(
        reply.dir_str(),
        Some(format!("{}/", dir.display()).as_str())
    );
    assert_eq!(reply.count, reply.total.min(call.maintenance.capacity));
    assert_eq!(
        reply.flags,
        if reply.count < reply.total {
            REPLY_TRUNCATED
        } else {
            0
        }
    );
    assert!(call.untouched_from(reply.count as usize));
    assert_untouched_report(call);
    call.entries()
}

/// A command never writes the bootstrap report: the host tells an old
/// dispatcher (which refuses the request in the report) by it.
fn assert_untouched_report(call: &Maintenance) {
    assert!(
        bytemuck::bytes_of(&call.report)
            .iter()
            .all(|&b| b == REPORT_POISON),
        "the report was written: {:?}",
        call.report
    );
}

/// (kind, action, name, size) of each entry, sorted by name.
fn summary(entries: &[MaintenanceEntry]) -> Vec<(EntryKind, EntryAction, String, u64)> {
    let mut out: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                EntryKind::from_raw(e.kind).expect("kind"),
                EntryAction::from_raw(e.action).expect("action"),
                e.name_str().expect("a NUL-terminated name").to_owned(),
                e.size,
            )
        })
        .collect();
    out.sort_by(|a, b| a.2.cmp(&b.2));
    out
}

fn sorted(
    mut rows: Vec<(EntryKind, EntryAction, String, u64)>,
) -> Vec<(EntryKind, EntryAction, String, u64)> {
    rows.sort_by(|a, b| a.2.cmp(&b.2));
    rows
}

/// Files of other namings and of simpler's naming that are not regular
/// files: none of them is ever listed or removed. Returns their names.
fn plant_foreign(dir: &Path) -> Vec<String> {
    const OLD: i64 = 7 * 24 * 3600;
    let temp = temp_name(0xf0f0, 90);
    let names = vec![
        "libfoo.so".to_owned(),
        "simpler_inner_0123.so".to_owned(),
        installed_name(0xf1).to_uppercase(),
        format!("{}.bak", installed_name(0xf2)),
        temp[1..].to_owned(),
        format!("{temp}.partial"),
        temp.replace(".0.", ".00."),
    ];
    for name in &names {
        file_aged(dir, name, 7, OLD);
    }
    let mut all = names;
    // A symlink and a directory with each naming.
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let pointee = file_aged(&elsewhere, &installed_name(0xf3), 7, OLD);
    for (i, name) in [installed_name(0xf4), temp_name(0xf5, 91)]
        .iter()
        .enumerate()
    {
        let link = dir.join(name);
        std::os::unix::fs::symlink(&pointee, &link).unwrap();
        ffi::set_times_ago(&link, OLD);
        let sub = if i == 0 {
            installed_name(0xf6)
        } else {
            temp_name(0xf7, 92)
        };
        std::fs::create_dir(dir.join(&sub)).unwrap();
        ffi::set_times_ago(&dir.join(&sub), OLD);
        all.extend([name.clone(), sub]);
    }
    all.push("elsewhere".to_owned());
    all
}

#[test]
fn list_shows_every_regular_file_of_simpler_naming_and_nothing_else() {
    let Some(dir) = preinstall_dir_or_spawn(
        "maintenance::list_shows_every_regular_file_of_simpler_naming_and_nothing_else",
    ) else {
        return;
    };
    let foreign = plant_foreign(&dir);
    let installed = [(0xa1, 100, 30), (0xa2, 2000, 5000)];
    for (fp, len, age) in installed {
        file_aged(&dir, &installed_name(fp), len, age);
    }
    ffi::set_times_ago_ns(&dir.join(installed_name(0xa1)), 30, 123_456_789);
    let temp = temp_name(0xb1, 7);
    file_aged(&dir, &temp, 0, 3);

    let mut call = Maintenance::new(Command::List.word(), 16);
    let entries = run(&mut call, Command::List, &dir);
    assert_eq!(
        summary(&entries),
        sorted(vec![
            (
                EntryKind::Installed,
                EntryAction::Listed,
                installed_name(0xa1),
                100
            ),
            (
                EntryKind::Installed,
                EntryAction::Listed,
                installed_name(0xa2),
                2000
            ),
            (EntryKind::Temp, EntryAction::Listed, temp.clone(), 0),
        ])
    );
    let now = call.reply().now;
    for e in &entries {
        assert_eq!(e.errno, 0);
        let age = now - e.mtime;
        let want = match e.name_str().unwrap() {
            n if n == installed_name(0xa1) => 30,
            n if n == installed_name(0xa2) => 5000,
            _ => 3,
        };
        // The clock may tick between planting and listing.
        assert!((want..=want + 2).contains(&age), "{e:?}: age {age}");
    }
    let first = entries
        .iter()
        .find(|e| e.name_str() == Some(installed_name(0xa1).as_str()))
        .unwrap();
    assert_eq!(first.mtime_nsec, 123_456_789);

    // Listing changed nothing.
    let mut all: Vec<String> = foreign;
    all.extend([installed_name(0xa1), installed_name(0xa2), temp]);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_entries(&dir, &all);
}

#[test]
fn a_reply_holds_at_most_its_capacity_and_says_it_was_truncated() {
    let Some(dir) = preinstall_dir_or_spawn(
        "maintenance::a_reply_holds_at_most_its_capacity_and_says_it_was_truncated",
    ) else {
        return;
    };
    for fp in 1..=5 {
        file_aged(&dir, &installed_name(fp), 10, 60);
    }
    for capacity in [0u32, 2, 5, 6] {
        let mut call = Maintenance::new(Command::List.word(), capacity);
        let entries = run(&mut call, Command::List, &dir);
        let reply = call.reply();
        assert_eq!(reply.total, 5);
        assert_eq!(reply.count, capacity.min(5));
        assert_eq!(reply.flags & REPLY_TRUNCATED != 0, capacity < 5);
        assert_eq!(entries.len(), capacity.min(5) as usize);
    }
    // A gc whose reply is too small still removes everything it should.
    let mut call = Maintenance::new(Command::Gc.word(), 1);
    call.maintenance.keep = 1;
    run(&mut call, Command::Gc, &dir);
    assert_eq!((call.reply().total, call.reply().count), (4, 1));
    assert_eq!(entries(&dir).len(), 1);
}

#[test]
fn remove_takes_exactly_the_named_installed_runtimes() {
    let Some(dir) =
        preinstall_dir_or_spawn("maintenance::remove_takes_exactly_the_named_installed_runtimes")
    else {
        return;
    };
    let foreign = plant_foreign(&dir);
    for fp in [0xc1, 0xc2, 0xc3] {
        file_aged(&dir, &installed_name(fp), 50 + fp as usize, 10);
    }
    // A temp file of a named fingerprint stays: only installed runtimes
    // are removed by fingerprint.
    let temp = temp_name(0xc1, 8);
    file_aged(&dir, &temp, 1, 10_000);

    let mut call = Maintenance::new(Command::Remove.word(), 8);
    // Present, absent, present twice, a symlink and a directory of the
    // naming (0xf4, 0xf6: planted by `plant_foreign`).
    call.fingerprints = vec![0xc1, 0xdead, 0xc3, 0xc3, 0xf4, 0xf6];
    let entries = run(&mut call, Command::Remove, &dir);
    assert_eq!(
        summary(&entries),
        sorted(vec![
            (
                EntryKind::Installed,
                EntryAction::Removed,
                installed_name(0xc1),
                50 + 0xc1
            ),
            (
                EntryKind::Installed,
                EntryAction::Removed,
                installed_name(0xc3),
                50 + 0xc3
            ),
        ])
    );
    let mut left = foreign;
    left.extend([installed_name(0xc2), temp]);
    let left: Vec<&str> = left.iter().map(String::as_str).collect();
    assert_entries(&dir, &left);

    // Nothing named, nothing removed.
    let mut call = Maintenance::new(Command::Remove.word(), 8);
    assert!(run(&mut call, Command::Remove, &dir).is_empty());
    assert_entries(&dir, &left);
}

#[test]
fn a_file_that_cannot_be_removed_is_reported_with_its_errno() {
    const NAME: &str = "maintenance::a_file_that_cannot_be_removed_is_reported_with_its_errno";
    if !simpler_testkit::is_child() {
        let dir = tempfile::tempdir().unwrap();
        file_aged(dir.path(), &installed_name(0xd1), 3, 10);
        file_aged(dir.path(), &temp_name(0xd2, 9), 3, 10_000);
        use std::os::unix::fs::PermissionsExt;
        // Listable, not writable: entries can be seen, not removed.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
        run_child(NAME, &[(PREINSTALL_DIR_ENV, dir.path().as_os_str())]);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(entries(dir.path()).len(), 2);
        return;
    }
    let dir = PathBuf::from(std::env::var_os(PREINSTALL_DIR_ENV).unwrap());
    ffi::dispatcher();
    // As root, the permission bits bind only without capabilities.
    assert_eq!(ffi::drop_capabilities(), 0);
    let mut call = Maintenance::new(Command::Remove.word(), 4);
    call.fingerprints = vec![0xd1];
    let entries = run(&mut call, Command::Remove, &dir);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        EntryAction::from_raw(entries[0].action),
        Some(EntryAction::Failed)
    );
    assert_eq!(entries[0].errno, libc::EACCES);
    assert_eq!(entries[0].size, 3);

    let mut call = Maintenance::new(Command::Gc.word(), 4);
    call.maintenance.keep = 0;
    call.maintenance.stale_secs = 600;
    let entries = run(&mut call, Command::Gc, &dir);
    let mut got: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                EntryKind::from_raw(e.kind),
                EntryAction::from_raw(e.action),
                e.errno,
            )
        })
        .collect();
    got.sort_by_key(|g| g.0);
    assert_eq!(
        got,
        [
            (
                Some(EntryKind::Installed),
                Some(EntryAction::Failed),
                libc::EACCES
            ),
            (
                Some(EntryKind::Temp),
                Some(EntryAction::Failed),
                libc::EACCES
            ),
        ]
    );
}

#[test]
fn gc_keeps_the_newest_installed_runtimes_and_fresh_temp_files() {
    let Some(dir) = preinstall_dir_or_spawn(
        "maintenance::gc_keeps_the_newest_installed_runtimes_and_fresh_temp_files",
    ) else {
        return;
    };
    let foreign = plant_foreign(&dir);
    // Newest first: 0xe5 (10 s), then 0xe2 and 0xe4 in the same second,
    // told apart by their nanoseconds, then 0xe1 and 0xe3 in one instant,
    // told apart by their fingerprints (the higher counts as newer).
    for (fp, age, nsec) in [
        (0xe1, 500, 0),
        (0xe2, 200, 900),
        (0xe3, 500, 0),
        (0xe4, 200, 100),
        (0xe5, 10, 0),
    ] {
        let path = file_aged(&dir, &installed_name(fp), 1, age);
        ffi::set_times_ago_ns(&path, age, nsec);
    }
    let by_age = [0xe5u64, 0xe2, 0xe4, 0xe3, 0xe1];
    let stale = temp_name(0xe6, 10);
    let fresh = temp_name(0xe7, 11);
    file_aged(&dir, &stale, 1, 601 + 5);
    file_aged(&dir, &fresh, 1, 590);

    let gc = |keep: u32, stale_secs: u64| {
        let mut call = Maintenance::new(Command::Gc.word(), 16);
        call.maintenance.keep = keep;
        call.maintenance.stale_secs = stale_secs;
        summary(&run(&mut call, Command::Gc, &dir))
    };
    let removed = |kind, name: String| (kind, EntryAction::Removed, name, 1);

    // More to keep than there are: only the stale temp file goes.
    assert_eq!(gc(9, 600), vec![removed(EntryKind::Temp, stale.clone())]);
    assert_eq!(gc(5, 600), vec![]);
    // Keep 3: the two oldest go, the tie broken by fingerprint.
    assert_eq!(
        gc(3, 600),
        sorted(
            by_age[3..]
                .iter()
                .map(|&fp| removed(EntryKind::Installed, installed_name(fp)))
                .collect()
        )
    );
    // Keep 2: the same-second pair is told apart by nanoseconds.
    assert_eq!(
        gc(2, 600),
        vec![removed(EntryKind::Installed, installed_name(by_age[2]))]
    );
    // Keep 0 takes every installed runtime; a stale age of 0 every temp
    // file modified before this second.
    assert_eq!(
        gc(0, 0),
        sorted(vec![
            removed(EntryKind::Installed, installed_name(by_age[0])),
            removed(EntryKind::Installed, installed_name(by_age[1])),
            removed(EntryKind::Temp, fresh),
        ])
    );
    let left: Vec<&str> = foreign.iter().map(String::as_str).collect();
    assert_entries(&dir, &left);
}

#[test]
fn bad_requests_are_refused_in_the_reply_and_touch_nothing() {
    let Some(dir) = preinstall_dir_or_spawn(
        "maintenance::bad_requests_are_refused_in_the_reply_and_touch_nothing",
    ) else {
        return;
    };
    let keep = installed_name(0x1);
    file_aged(&dir, &keep, 1, 100);
    let refused = |call: &mut Maintenance, errno: i32| {
        assert_eq!(call.run(), 0);
        let reply = call.reply();
        assert_eq!(reply.magic, REPLY_MAGIC);
        assert_eq!(
            ReplyStatus::from_raw(reply.status),
            Some(ReplyStatus::BadRequest)
        );
        assert_eq!(reply.errno, errno, "{reply:?}");
        assert_eq!((reply.count, reply.total), (0, 0));
        assert!(call.untouched_from(0));
        assert_untouched_report(call);
    };
    // A command this build does not know.
    let mut call = Maintenance::new((u64::from(COMMAND_TAG) << 32) | 9, 4);
    refused(&mut call, libc::ENOSYS);
    assert_eq!(call.reply().command, 9);
    let mut call = Maintenance::new(u64::from(COMMAND_TAG) << 32, 4);
    refused(&mut call, libc::ENOSYS);
    // Another version of the arguments.
    let mut call = Maintenance::new(Command::Gc.word(), 4);
    call.maintenance.version = MAINTENANCE_VERSION + 1;
    refused(&mut call, libc::EPROTO);
    // Bounds.
    let mut call = Maintenance::new(Command::List.word(), 4);
    call.maintenance.capacity = MAX_REPLY_ENTRIES + 1;
    refused(&mut call, libc::EINVAL);
    let mut call = Maintenance::new(Command::Remove.word(), 4);
    call.fingerprints = vec![0x1; MAX_REPLY_ENTRIES as usize + 1];
    refused(&mut call, libc::EINVAL);
    assert_entries(&dir, &[&keep]);

    // Nowhere to reply: Init returns the validate stage and writes nothing.
    let mut call = Maintenance::new(Command::Gc.word(), 4);
    call.fill();
    call.device.maintenance = 0;
    assert_eq!(call.run_as_is(), ReportStage::Validate as i32);
    assert!(call.untouched_from(0));
    let mut call = Maintenance::new(Command::Gc.word(), 4);
    call.fill();
    call.maintenance.reply = 0;
    assert_eq!(call.run_as_is(), ReportStage::Validate as i32);
    assert!(call.untouched_from(0));
    assert_untouched_report(&call);
    assert_entries(&dir, &[&keep]);
}

#[test]
fn a_missing_directory_is_reported_with_its_path() {
    const NAME: &str = "maintenance::a_missing_directory_is_reported_with_its_path";
    if !simpler_testkit::is_child() {
        let parent = tempfile::tempdir().unwrap();
        let missing = parent.path().join("no-such-dir");
        run_child(NAME, &[(PREINSTALL_DIR_ENV, missing.as_os_str())]);
        return;
    }
    let dir = PathBuf::from(std::env::var_os(PREINSTALL_DIR_ENV).unwrap());
    for command in [Command::List, Command::Remove, Command::Gc] {
        let mut call = Maintenance::new(command.word(), 4);
        call.fingerprints = vec![1];
        assert_eq!(call.run(), 0);
        let reply = call.reply();
        assert_eq!(
            ReplyStatus::from_raw(reply.status),
            Some(ReplyStatus::NoDirectory)
        );
        assert_eq!(reply.errno, libc::ENOENT);
        assert_eq!(
            reply.dir_str(),
            Some(format!("{}/", dir.display()).as_str())
        );
        assert_untouched_report(&call);
    }
}

#[test]
fn a_word_without_the_tag_installs_as_before() {
    let Some(dir) =
        preinstall_dir_or_spawn("maintenance::a_word_without_the_tag_installs_as_before")
    else {
        return;
    };
    let runtime = fake_elf(1024, 77);
    for word in [Command::List as u64, u64::MAX, u64::from(COMMAND_TAG)] {
        let mut call = Bootstrap::of(&runtime);
        call.device.command = word;
        call.device.maintenance = 0x10;
        assert_eq!(call.run(), 0, "{word:#x}");
        assert_report_ok(&call.report, &runtime, &target_in(&dir, &runtime));
    }
}

/// What a dispatcher that predates the commands makes of one: it sees no
/// runtime SO, refuses the request in the report and touches no file.
/// (Its install path is this build's with the command word ignored.)
#[test]
fn an_install_without_a_runtime_touches_nothing() {
    let Some(dir) =
        preinstall_dir_or_spawn("maintenance::an_install_without_a_runtime_touches_nothing")
    else {
        return;
    };
    let stale = temp_name(0x77, 12);
    file_aged(&dir, &stale, 1, 100_000);
    let mut call = Bootstrap::raw(0, 0);
    call.device.command = 0;
    call.device.maintenance = 0x10;
    let ret = call.run();
    assert_report_failed(ret, &call.report, ReportStage::Validate, libc::EINVAL);
    assert_entries(&dir, &[&stale]);
}
