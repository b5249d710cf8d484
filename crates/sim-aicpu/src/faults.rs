//! Fault injection inside the device process.

use simpler_abi::sim::env;

use crate::log;
use crate::sys::FileGrowthBlocked;

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
