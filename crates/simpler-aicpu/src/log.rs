//! The device log: CANN's `DlogRecord`, looked up at run time.
//!
//! `DlogRecord(int moduleId, int level, const char *fmt, ...)` lives in
//! CANN's log library, which the AICPU process has loaded; the runtime SO
//! does not link it, so the SO also loads where it is absent (a test
//! process, an old image). The symbol is resolved once with
//! `dlsym(RTLD_DEFAULT)`; when it is missing, logging is silently off.
//!
//! Messages are filtered by the level latched by `simpler_aicpu_init`
//! ([`Level::Error`] until then) and written as `"%s"` with the text
//! `simpler_aicpu: <message>`, so no message is ever read as a format.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The symbol looked up in the AICPU process.
pub const DLOG_SYMBOL: &std::ffi::CStr = c"DlogRecord";
/// CANN's log module id for AICPU (`AICPU` in `log_types.h`).
pub const AICPU_MODULE_ID: c_int = 36;

/// Log levels as `InitArgs::log_level` numbers them (0 = error … 3 =
/// debug, the reverse of CANN's `DLOG_*` ids); a message is written when
/// its level is at most the latched one.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Failures of a launch (bad header, panics). Always on.
    Error = 0,
    /// Failed tasks.
    Warn = 1,
    /// Init.
    Info = 2,
    /// Per-thread launch summaries.
    Debug = 3,
}

impl Level {
    /// The level for an `InitArgs::log_level`; values above 3 mean debug.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Self::Error,
            1 => Self::Warn,
            2 => Self::Info,
            _ => Self::Debug,
        }
    }

    /// CANN's `DLOG_DEBUG` (0) … `DLOG_ERROR` (3) id for this level.
    pub fn dlog_level(self) -> c_int {
        3 - self as c_int
    }
}

static LEVEL: AtomicU32 = AtomicU32::new(Level::Error as u32);

/// Latches the level messages are filtered by.
pub fn set_level(level: Level) {
    LEVEL.store(level as u32, Ordering::Relaxed);
}

/// Whether a message at `level` would be written (if `DlogRecord` exists).
pub fn enabled(level: Level) -> bool {
    level as u32 <= LEVEL.load(Ordering::Relaxed)
}

type DlogFn = unsafe extern "C" fn(c_int, c_int, *const c_char, ...);

fn dlog_record() -> Option<DlogFn> {
    static DLOG: OnceLock<Option<DlogFn>> = OnceLock::new();
    *DLOG.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has no
        // preconditions; the result is checked for null below.
        let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, DLOG_SYMBOL.as_ptr()) };
        if sym.is_null() {
            return None;
        }
        // SAFETY: a non-null `DlogRecord` is CANN's variadic C function
        // `void DlogRecord(int, int, const char *, ...)`, which is exactly
        // `DlogFn`.
        Some(unsafe { std::mem::transmute::<*mut libc::c_void, DlogFn>(sym) })
    })
}

/// Writes `args` to the device log at `level`, if enabled and available.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let Some(dlog) = dlog_record() else {
        return;
    };
    let text = format!("simpler_aicpu: {args}").replace('\0', "\\0");
    let Ok(text) = CString::new(text) else {
        return;
    };
    // SAFETY: `dlog` is DlogRecord (see `dlog_record`); the format is the
    // literal "%s" and its one argument a NUL-terminated string that
    // outlives the call.
    unsafe {
        dlog(
            AICPU_MODULE_ID,
            level.dlog_level(),
            c"%s".as_ptr(),
            text.as_ptr(),
        )
    }
}

/// Writes a formatted message to the device log:
/// `dlog!(Level::Warn, "task {} failed", i)`.
#[macro_export]
macro_rules! dlog {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::write($level, ::std::format_args!($($arg)+))
    };
}
