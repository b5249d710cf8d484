//! Init from start to finish: read the arguments, install, then report the
//! outcome to the host (the `BootstrapReport`) and to the device log.

use core::ffi::{c_void, CStr};

use simpler_abi::bootstrap::{REPORT_MAGIC, REPORT_PATH_LEN};
use simpler_abi::{BootstrapReport, ReportStage, ReportStatus, ABI_VERSION};

use crate::cbuf::CBuf;
use crate::sys::Errno;
use crate::{args, dlog, install};

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
}

/// Init: installs the runtime SO and reports. Returns 0 or the failing stage.
///
/// # Safety
///
/// As `DynTileFwkBackendKernelServerInit`.
pub unsafe fn run(block: *const c_void) -> i32 {
    let mut progress = Progress {
        fingerprint: 0,
        bytes_written: 0,
        path: CBuf::new(),
    };
    let mut report: *mut BootstrapReport = core::ptr::null_mut();
    // SAFETY: the caller vouches for `block` and what it points to.
    let result = unsafe { args::device_args(block) }.and_then(|device| {
        report = device.report as usize as *mut BootstrapReport;
        // SAFETY: the caller vouches for the runtime SO bytes.
        let runtime = unsafe { args::runtime_so(&device) }?;
        install::install(runtime, device.device_id, &mut progress)
    });
    if !report.is_null() {
        // SAFETY: a non-zero `report` addresses a writable BootstrapReport;
        // the write makes no alignment assumption.
        unsafe { report.write_unaligned(to_report(&result, &progress)) };
    }
    dlog::outcome(&result, &progress);
    match result {
        Ok(()) => 0,
        Err(failure) => failure.stage as i32,
    }
}

fn to_report(result: &Result<(), Failure>, progress: &Progress) -> BootstrapReport {
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
        fingerprint: progress.fingerprint,
        bytes_written: progress.bytes_written,
        path: progress.path.to_field(),
    }
}
