//! Fault injection inside the device process.

use crate::log;

/// Runs `f` while every write that would grow a regular file fails with
/// `EFBIG` (`RLIMIT_FSIZE` 0, `SIGXFSZ` ignored): an honest way to make the
/// real dispatcher's write fail without touching it. Log lines written
/// meanwhile are kept and written afterwards.
pub fn with_file_writes_failing<T>(f: impl FnOnce() -> T) -> T {
    log::hold();
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is writable; RLIMIT_FSIZE is a valid resource.
    let have_old = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut old) } == 0;
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: old.rlim_max,
    };
    // SAFETY: ignoring SIGXFSZ makes the failing write return EFBIG instead
    // of killing the process; the old disposition is restored below.
    let old_handler = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // SAFETY: lowering our own soft limit.
    let limited = have_old && unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &zero) } == 0;
    let result = f();
    if limited {
        // SAFETY: restoring the limit read above (soft ≤ hard holds).
        unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &old) };
    }
    // SAFETY: restoring the disposition returned by signal() above.
    unsafe { libc::signal(libc::SIGXFSZ, old_handler) };
    log::release();
    if !limited {
        log::note(
            log::level::ERROR,
            "SIMPLER_SIM_FAIL_DISPATCHER_WRITE: could not lower RLIMIT_FSIZE; the write was not made to fail",
        );
    }
    result
}
