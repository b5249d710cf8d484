//! Fault injection inside the device process.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use simpler_abi::names::{PREINSTALL_PREFIX, PREINSTALL_TEMP_INFIX};
use simpler_abi::sim::env;

use crate::log;
use crate::sys::{self, FileGrowthBlocked};

/// How often the kill-during-write watcher looks at the preinstall
/// directory: often enough to catch a write of tens of MiB part-way.
const WATCH_EVERY: Duration = Duration::from_micros(200);

/// Runs `f` while every write that would grow a regular file fails with
/// `EFBIG`: an honest way to make the real dispatcher's write fail without
/// touching it. Log lines written meanwhile are kept and written afterwards.
pub fn with_file_writes_failing<T>(f: impl FnOnce() -> T) -> T {
    log::hold();
    let blocked = FileGrowthBlocked::start();
    let limited = blocked.limited();
    let result = f();
    blocked.restore();
    log::release();
    if !limited {
        log::note(
            log::ERROR,
            &format!(
                "{}: could not lower RLIMIT_FSIZE; the write was not made to fail",
                env::FAIL_DISPATCHER_WRITE
            ),
        );
    }
    result
}

/// Runs `f` (the dispatcher's Init) while a watcher thread looks at `dir`
/// every [`WATCH_EVERY`] and kills this process (`SIGKILL`) as soon as it
/// sees a temp file of the dispatcher's naming, created since `f` began, of
/// at least `bytes` bytes: an honest kill part-way through the real
/// dispatcher's write, the state a host killed mid-bootstrap leaves behind.
/// The file left is at least that long, and whole only if the write
/// finished between two looks. Temp files already there (left by earlier
/// writers) are not this write's and are ignored.
pub fn killed_when_a_temp_file_reaches<T>(dir: &Path, bytes: u64, f: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    let earlier: HashSet<String> = temp_files(dir).map(|(name, _)| name).collect();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let grown =
                    temp_files(dir).find(|(name, len)| *len >= bytes && !earlier.contains(name));
                if let Some((name, len)) = grown {
                    log::note(
                        log::ERROR,
                        &format!(
                            "{}={bytes}: {name} has {len} bytes; killing the device process",
                            env::KILL_DURING_WRITE
                        ),
                    );
                    sys::kill_self();
                }
                std::thread::sleep(WATCH_EVERY);
            }
        });
        let result = f();
        done.store(true, Ordering::Relaxed);
        result
    })
}

/// The temp files of the dispatcher's naming in `dir`: names and lengths
/// (none when it cannot be read).
fn temp_files(dir: &Path) -> impl Iterator<Item = (String, u64)> {
    let prefix = format!(".{PREINSTALL_PREFIX}");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(move |entry| {
            let name = entry.file_name().into_string().ok()?;
            if !name.starts_with(&prefix) || !name.contains(PREINSTALL_TEMP_INFIX) {
                return None;
            }
            Some((name, entry.metadata().ok()?.len()))
        })
}
