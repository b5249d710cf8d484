//! The device log, through CANN's `DlogRecord` when the process has one
//! (found by the private `sys` module); without it, logging is silently
//! off.
//!
//! Messages are filtered by the level latched by `simpler_aicpu_init`
//! ([`LogLevel::Error`] until then) and written with the text
//! `simpler_aicpu: <message>`. What each level adds: errors are failures of
//! a launch (a bad header, a panic), warnings failed tasks, info the init,
//! debug the per-thread launch summaries.
//!
//! Lines go under CANN's module `AICPU` (36), as the dispatcher's do; why
//! that module is written next to [`dlog::MODULE_AICPU`].

use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};

use simpler_abi::log::dlog;
use simpler_abi::LogLevel;

use crate::sys::DlogRecord;

static LEVEL: AtomicU32 = AtomicU32::new(LogLevel::Error as u32);

/// Latches the level messages are filtered by.
pub fn set_level(level: LogLevel) {
    LEVEL.store(level as u32, Ordering::Relaxed);
}

/// Whether a message at `level` would be written (if `DlogRecord` exists).
pub fn enabled(level: LogLevel) -> bool {
    level as u32 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes `args` to the device log at `level`, if enabled and available.
pub fn write(level: LogLevel, args: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let Some(record) = DlogRecord::get() else {
        return;
    };
    let text = format!("simpler_aicpu: {args}").replace('\0', "\\0");
    let Ok(text) = CString::new(text) else {
        return;
    };
    record.write(dlog::MODULE_AICPU, level.dlog_level(), &text);
}

/// Writes a formatted message to the device log:
/// `dlog!(LogLevel::Warn, "task {} failed", i)`.
#[macro_export]
macro_rules! dlog {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::write($level, ::std::format_args!($($arg)+))
    };
}
