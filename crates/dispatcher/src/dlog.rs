//! Device logging through CANN's `DlogRecord(int module, int level, const
//! char *fmt, ...)`, looked up at run time with `dlsym(RTLD_DEFAULT, ...)`
//! so the SO also loads, and works silently, where libslog is absent.

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::outcome::{Failure, Progress};

// glibc before 2.34 (every AICPU image) keeps dlsym in libdl; newer ones
// resolve it from libc and `--as-needed` drops the unused libdl.
#[link(name = "dl")]
extern "C" {}

/// `AICPU` in CANN's `log_types.h` module list.
const MODULE_AICPU: c_int = 36;
/// `DLOG_INFO`.
const DLOG_INFO: c_int = 1;
/// `DLOG_ERROR`.
const DLOG_ERROR: c_int = 3;

type DlogRecordFn = unsafe extern "C" fn(c_int, c_int, *const c_char, ...);

/// The resolved `DlogRecord` address, or one of the two markers below.
static DLOG_RECORD: AtomicUsize = AtomicUsize::new(UNRESOLVED);
const UNRESOLVED: usize = 0;
const ABSENT: usize = 1;

/// `DlogRecord`, looked up on first use and cached (also when absent: it is
/// part of the AICPU process from its start, not loaded later).
fn dlog_record() -> Option<DlogRecordFn> {
    let mut address = DLOG_RECORD.load(Ordering::Acquire);
    if address == UNRESOLVED {
        // SAFETY: a NUL-terminated name; RTLD_DEFAULT searches the global
        // scope of the process.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"DlogRecord".as_ptr()) };
        address = if symbol.is_null() {
            ABSENT
        } else {
            symbol as usize
        };
        // Racing threads resolve the same value, so the last store is right.
        DLOG_RECORD.store(address, Ordering::Release);
    }
    if address == ABSENT {
        return None;
    }
    // SAFETY: `address` came from dlsym for a function with this C signature.
    Some(unsafe { core::mem::transmute::<*const c_void, DlogRecordFn>(address as *const c_void) })
}

/// Logs the outcome of Init: what was installed, or what failed and why.
pub fn outcome(result: &Result<(), Failure>, progress: &Progress) {
    let Some(record) = dlog_record() else {
        return;
    };
    match result {
        // SAFETY: the format's conversions match the arguments (C string,
        // unsigned long long, unsigned long long); the path is NUL-terminated.
        Ok(()) => unsafe {
            record(
                MODULE_AICPU,
                DLOG_INFO,
                c"simpler dispatcher: installed %s (%llu bytes, fingerprint %016llx)".as_ptr(),
                progress.path.as_ptr(),
                progress.bytes_written,
                progress.fingerprint,
            )
        },
        Err(failure) => {
            let stage = failure.stage.name();
            let stage_len = c_int::try_from(stage.len()).unwrap_or_default();
            // SAFETY: the conversions match the arguments: `%.*s` takes an
            // int length and a pointer to that many bytes, `%s` the
            // NUL-terminated reason and path, `%d` an int.
            unsafe {
                record(
                    MODULE_AICPU,
                    DLOG_ERROR,
                    c"simpler dispatcher: %.*s failed: %s (errno %d), path '%s'".as_ptr(),
                    stage_len,
                    stage.as_ptr(),
                    failure.what.as_ptr(),
                    failure.errno,
                    progress.path.as_ptr(),
                )
            }
        }
    }
}
