//! Status codes, the thread-local last error, and the guard that turns a
//! result (or a panic) into a code.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use simpler_host::Error;

/// Success.
pub const SIMPLER_OK: c_int = 0;
/// An argument is NULL, not UTF-8, out of range or inconsistent.
pub const SIMPLER_ERROR_INVALID_ARGUMENT: c_int = -1;
/// The CANN libraries (or the simulator) could not be found, opened or
/// resolved.
pub const SIMPLER_ERROR_LOAD: c_int = -2;
/// A CANN call failed; `simpler_last_cann_code()` has its code.
pub const SIMPLER_ERROR_CANN: c_int = -3;
/// An SO failed the checks made before anything is uploaded (not ELF,
/// wrong machine, a kernel that is not an exported function, …).
pub const SIMPLER_ERROR_PREFLIGHT: c_int = -4;
/// The bootstrap did not install the SO on the device.
pub const SIMPLER_ERROR_BOOTSTRAP: c_int = -5;
/// A kernel failed on the device (it returned non-zero, or crashed);
/// `simpler_last_cann_code()` has the CANN code it surfaced as.
pub const SIMPLER_ERROR_KERNEL: c_int = -6;
/// A file could not be read, or a default file was not found.
pub const SIMPLER_ERROR_IO: c_int = -7;
/// A bug in simpler (a caught panic); the message says where.
pub const SIMPLER_ERROR_INTERNAL: c_int = -8;

/// The last failure of this thread's latest call.
struct LastError {
    message: CString,
    cann_code: i32,
}

thread_local! {
    static LAST: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

/// A failure on its way to the caller: a code and a message.
#[derive(Debug)]
pub struct Failure {
    /// A negative `SIMPLER_ERROR_*` code.
    pub code: c_int,
    /// What went wrong.
    pub message: String,
    /// The CANN code behind it, 0 for none.
    pub cann_code: i32,
}

impl Failure {
    /// A [`SIMPLER_ERROR_INVALID_ARGUMENT`] failure.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: SIMPLER_ERROR_INVALID_ARGUMENT,
            message: message.into(),
            cann_code: 0,
        }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        let cann_code = err.cann().map_or(0, |c| c.code);
        let code = match &err {
            Error::InvalidArgument(_) | Error::InvalidTask { .. } => SIMPLER_ERROR_INVALID_ARGUMENT,
            Error::Load(_) | Error::LaunchPathUnsupported { .. } => SIMPLER_ERROR_LOAD,
            Error::Preflight(_) => SIMPLER_ERROR_PREFLIGHT,
            Error::Bootstrap(_) | Error::BootstrapAbandoned => SIMPLER_ERROR_BOOTSTRAP,
            Error::Io { .. } | Error::Write { .. } | Error::ArtifactNotFound { .. } => {
                SIMPLER_ERROR_IO
            }
            Error::Kernel(_)
            | Error::InitRejected { .. }
            | Error::TasksFailed { .. }
            | Error::IncompleteBatch { .. } => SIMPLER_ERROR_KERNEL,
            _ if cann_code != 0 => SIMPLER_ERROR_CANN,
            _ => SIMPLER_ERROR_INTERNAL,
        };
        Self {
            code,
            message: err.to_string(),
            cann_code,
        }
    }
}

/// Runs `f` for an exported function: clears this thread's last error,
/// and turns `f`'s failure or panic into a code and a new last error.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Failure>) -> c_int {
    LAST.with(|l| l.borrow_mut().take());
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Err(Failure {
            code: SIMPLER_ERROR_INTERNAL,
            message: format!("internal error in libsimpler (caught panic): {what}"),
            cann_code: 0,
        })
    });
    match outcome {
        Ok(()) => SIMPLER_OK,
        Err(failure) => {
            let code = failure.code;
            set_last(failure);
            code
        }
    }
}

/// Runs a function that cannot fail but must not unwind into C (the
/// destroy functions): a panic is logged and swallowed.
pub(crate) fn quietly(what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::error!("{what} panicked; the handle was released anyway");
    }
}

fn set_last(failure: Failure) {
    // A message with a NUL inside is cut there rather than lost.
    let mut bytes = failure.message.into_bytes();
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    let message = CString::new(bytes).unwrap_or_default();
    LAST.with(|l| {
        *l.borrow_mut() = Some(LastError {
            message,
            cann_code: failure.cann_code,
        })
    });
}

/// This thread's last error message, or NULL; valid until this thread's
/// next call into libsimpler.
pub(crate) fn last_error() -> *const c_char {
    LAST.with(|l| {
        l.borrow()
            .as_ref()
            .map_or(std::ptr::null(), |e| e.message.as_ptr())
    })
}

/// The CANN code behind this thread's last error, or 0.
pub(crate) fn last_cann_code() -> i32 {
    LAST.with(|l| l.borrow().as_ref().map_or(0, |e| e.cann_code))
}
