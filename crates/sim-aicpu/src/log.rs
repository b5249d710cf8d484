//! The simulator's own lines in the device log, written through
//! `DlogRecord` like any device SO's.

use std::ffi::CString;

pub use simpler_abi::log::dlog::{ERROR, INFO, WARN};

pub use crate::sink::{hold, open, release};
use crate::{ffi, sink};

/// Logs one of the simulator's own lines at `level`.
pub fn note(level: i32, text: &str) {
    let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
    ffi::dlog(sink::SIM_MODULE, level, &text);
}
