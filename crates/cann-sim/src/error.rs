//! CANN result codes as a Rust error, and the per-thread message
//! `aclGetRecentErrMsg` returns.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

pub use simpler_abi::cann::error::*;

/// A failed call: the CANN code it returns and a readable reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclError {
    /// The `aclError` value.
    pub code: i32,
    /// What went wrong, for `aclGetRecentErrMsg`.
    pub message: String,
}

impl AclError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `ACL_ERROR_RT_PARAM_INVALID` with `message`.
    pub fn param(message: impl Into<String>) -> Self {
        Self::new(ACL_ERROR_RT_PARAM_INVALID, message)
    }
}

/// Result of an API operation.
pub type AclResult<T> = Result<T, AclError>;

thread_local! {
    static RECENT: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Converts a result to the C return code, remembering the message of a
/// failure for this thread.
pub fn to_code(call: &str, result: AclResult<()>) -> i32 {
    match result {
        Ok(()) => ACL_SUCCESS,
        Err(err) => {
            let name = name(err.code).unwrap_or("unnamed code");
            let text = format!("{call}: {} ({name} {})", err.message, err.code);
            let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
            RECENT.with(|slot| *slot.borrow_mut() = Some(text));
            err.code
        }
    }
}

/// The calling thread's most recent failure message, or NULL when none of
/// its calls has failed. Valid until the thread's next failing call.
pub fn recent_message() -> *const c_char {
    RECENT.with(|slot| {
        slot.borrow()
            .as_ref()
            .map_or(std::ptr::null(), |text| text.as_ptr())
    })
}
