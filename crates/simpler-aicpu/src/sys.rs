//! The one C function the runtime calls: CANN's `void DlogRecord(int
//! moduleId, int level, const char *fmt, ...)`.
//!
//! It lives in CANN's log library, which the AICPU process has loaded; the
//! runtime SO does not link it, so the SO also loads where it is absent (a
//! test process, an old image). The symbol is resolved once with
//! `dlsym(RTLD_DEFAULT)`.

use std::ffi::{c_int, CStr};
use std::sync::OnceLock;

use simpler_abi::log::dlog::{self, RecordFn as DlogFn};

/// CANN's `DlogRecord`, as found in this process.
#[derive(Clone, Copy)]
pub struct DlogRecord(DlogFn);

impl DlogRecord {
    /// The process's `DlogRecord`, looked up on first use; `None` when the
    /// process has none.
    pub fn get() -> Option<Self> {
        static DLOG: OnceLock<Option<DlogRecord>> = OnceLock::new();
        *DLOG.get_or_init(|| {
            // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has
            // no preconditions; the result is checked for null below.
            let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, dlog::SYMBOL_C.as_ptr()) };
            if sym.is_null() {
                return None;
            }
            // SAFETY: a non-null `DlogRecord` is CANN's variadic C function
            // `void DlogRecord(int, int, const char *, ...)`, which is
            // exactly `DlogFn`.
            Some(Self(unsafe {
                std::mem::transmute::<*mut libc::c_void, DlogFn>(sym)
            }))
        })
    }

    /// Writes `text` as it is (the format is `"%s"`, so nothing in it is
    /// read as a conversion) at CANN level `level` under `module`.
    pub fn write(self, module: c_int, level: c_int, text: &CStr) {
        // SAFETY: `self.0` is DlogRecord (see `get`); the format is the
        // literal "%s" and its one argument a NUL-terminated string that
        // outlives the call.
        unsafe { (self.0)(module, level, c"%s".as_ptr(), text.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use simpler_abi::LogLevel;

    use super::DlogRecord;

    /// This unit-test binary defines no `DlogRecord` (the integration tests
    /// define one): logging is off, and nothing else changes.
    #[test]
    fn without_dlog_record_logging_is_silently_off() {
        assert!(DlogRecord::get().is_none());
        crate::log::write(LogLevel::Error, format_args!("nowhere to go"));
    }
}
