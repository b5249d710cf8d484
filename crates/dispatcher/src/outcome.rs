//! What Init ends with: why it failed, or how far it got, and the
//! `BootstrapReport` the host reads, built from those two.

use core::ffi::CStr;

use simpler_abi::bootstrap::{REPORT_MAGIC, REPORT_PATH_LEN};
use simpler_abi::{BootstrapReport, ReportStage, ReportStatus, ABI_VERSION};

use crate::cbuf::CBuf;
use crate::sweep::Swept;
use crate::sys::Errno;

/// Why Init failed.
#[derive(Clone, Copy)]
pub struct Failure {
    /// The step that failed.
    pub stage: ReportStage,
    /// The OS errno of the failing call, or the one that best names a
    /// validation failure.
    pub errno: Errno,
    /// What went wrong, for the device log.
    pub what: &'static CStr,
}

impl Failure {
    /// A failure at `stage` with `errno`, described by `what`.
    pub const fn new(stage: ReportStage, errno: Errno, what: &'static CStr) -> Self {
        Self { stage, errno, what }
    }
}

/// How far Init got; the report is built from it on success and failure.
pub struct Progress {
    /// FNV-1a 64 of the runtime SO, once its bytes passed validation.
    pub fingerprint: u64,
    /// Bytes written to the temp file so far.
    pub bytes_written: u64,
    /// The target path, or as much of it as was built.
    pub path: CBuf<REPORT_PATH_LEN>,
    /// What the sweep of stale temp files did, if it ran.
    pub swept: Swept,
}

impl Progress {
    /// Nothing done yet.
    pub const fn new() -> Self {
        Self {
            fingerprint: 0,
            bytes_written: 0,
            path: CBuf::new(),
            swept: Swept {
                removed: 0,
                kept: 0,
                errno: 0,
            },
        }
    }

    /// The report of an Init that ended with `result` after this progress.
    pub fn report(&self, result: &Result<(), Failure>) -> BootstrapReport {
        let (status, stage, errno) = match result {
            Ok(()) => (ReportStatus::Ok, ReportStage::None, 0),
            Err(f) => (ReportStatus::Failed, f.stage, f.errno),
        };
        BootstrapReport {
            magic: REPORT_MAGIC,
            abi_version: ABI_VERSION,
            status: status as u32,
            stage: stage as u32,
            errno,
            reserved: 0,
            fingerprint: self.fingerprint,
            bytes_written: self.bytes_written,
            path: self.path.to_field(),
        }
    }
}
