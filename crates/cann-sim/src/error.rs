//! CANN result codes as a Rust error, and the per-thread messages
//! `aclGetRecentErrMsg` returns.

use std::cell::RefCell;
use std::collections::VecDeque;
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

/// Messages kept per thread when nobody fetches them.
const MAX_PENDING: usize = 16;

thread_local! {
    /// Failure messages not yet fetched, newest first.
    static PENDING: RefCell<VecDeque<String>> = const { RefCell::new(VecDeque::new()) };
    /// The string the last `aclGetRecentErrMsg` returned; valid until the
    /// thread's next call of it, as in CANN.
    static RETURNED: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Converts a result to the C return code, keeping the message of a
/// failure for this thread's next `aclGetRecentErrMsg`.
pub fn to_code(call: &str, result: AclResult<()>) -> i32 {
    match result {
        Ok(()) => ACL_SUCCESS,
        Err(err) => {
            let name = name(err.code).unwrap_or("unnamed code");
            let text = format!("{call}: {} ({name} {})", err.message, err.code);
            PENDING.with(|pending| {
                let mut pending = pending.borrow_mut();
                pending.push_front(text);
                pending.truncate(MAX_PENDING);
            });
            err.code
        }
    }
}

/// CANN's `aclGetRecentErrMsg`: takes (and clears) the calling thread's
/// failure messages not fetched yet, newest first, one per line; NULL when
/// there are none.
pub fn recent_message() -> *const c_char {
    let messages: Vec<String> = PENDING.with(|p| p.borrow_mut().drain(..).collect());
    RETURNED.with(|slot| {
        let mut slot = slot.borrow_mut();
        *slot = if messages.is_empty() {
            None
        } else {
            Some(CString::new(messages.join("\n").replace('\0', " ")).unwrap_or_default())
        };
        slot.as_ref().map_or(std::ptr::null(), |text| text.as_ptr())
    })
}
