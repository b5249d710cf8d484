//! `libsimpler_aicpu_dispatcher.so`: the shared object CANN's
//! `libaicpu_extend_kernels.so` loads during the KFC bootstrap, so that
//! the runtime SO reaches the AICPU scheduler's preinstall directory
//! without a privileged install on the device (the long form is in
//! `docs/design.md`).
//!
//! [`DynTileFwkBackendKernelServerInit`] receives the device copy of the
//! [`BootstrapArgs`](simpler_abi::BootstrapArgs) block, reads the runtime SO
//! from the extended [`DeviceArgs`](simpler_abi::DeviceArgs) and installs it
//! atomically as `<preinstall dir>/simpler_inner_<fp>.so`. The other two
//! exports are stubs CANN requires before it calls Init. Nothing else is
//! exported.
//!
//! The same launch also carries the maintenance commands (list, remove,
//! gc of the files of simpler's naming in that directory): a `DeviceArgs`
//! whose `command` word has the tag of `simpler_abi::maintenance` asks for
//! one of those instead of an install, and is answered in a
//! `MaintenanceReply` (the `maintain` module).
//!
//! The preinstall directory is `SIMPLER_AICPU_PREINSTALL_DIR` when that is
//! set and non-empty in the AICPU process, else CANN's
//! `/usr/lib64/aicpu_kernels/0/aicpu_kernels_device`.
//!
//! Init reads from top to bottom: this file (the exports), `ffi` (what
//! crosses the C boundary: the block, the report or reply, the device
//! log), `install` (the file itself), `sweep` (the temp files dead writers
//! left), `maintain` (the maintenance commands), `files` (the files of
//! simpler's naming, as both of those list them), `outcome` (failure,
//! progress and the report built from them), then `sys` and `cbuf` (libc,
//! and C strings without allocation).
//!
//! # Temp files
//!
//! The bytes are written to a temp file in the same directory, created with
//! `O_CREAT | O_EXCL` and named
//!
//! ```text
//! .simpler_inner_<fp>.so.tmp.<device id>.<pid>.<tid>.<seq>.<clock>.<random>
//! ```
//!
//! (decimal device id, pid, thread id and per-process sequence number; the
//! `CLOCK_REALTIME` nanoseconds and 64 random bits from `getrandom(2)` or
//! `/dev/urandom` in 16 lower-case hex digits each). A pid alone is not
//! unique when dies share one filesystem; together with the clock and the
//! random bits a collision is unlikely, and `O_EXCL` makes one harmless: the
//! dispatcher picks a new name and retries. The file is made mode 0755 and
//! renamed onto the target, so a reader of the target sees either no file,
//! an older complete one, or the new complete one. Every failure path
//! unlinks the temp file: after Init returns, no `.simpler_inner_*.tmp.*`
//! entry of its own is left.
//!
//! A writer that dies mid-write leaves its temp file behind, so before
//! creating its own, Init removes every regular file of exactly this
//! naming in the directory whose mtime is more than 600 s old
//! (`SIMPLER_AICPU_TEMP_STALE_SECS` in the AICPU process overrides the
//! age). A live writer keeps its file's mtime fresh, so one on another die
//! is never disturbed. The sweep never fails Init; what it removed, or why
//! it could not, goes to the device log.
//!
//! # Two builds from one source
//!
//! With `--cfg simpler_nostd` (set by `cargo xtask build` together with the
//! `device-dispatcher` profile, which has `panic = "abort"`) the crate is
//! `no_std` and links only libc and libdl, with every glibc symbol at or
//! below GLIBC_2.17 when built by `cargo zigbuild --target
//! aarch64-unknown-linux-gnu.2.17`. Without the cfg it is an ordinary `std`
//! cdylib, so `cargo build --workspace` and `cargo test --workspace` work
//! under the unwinding dev profile. Only the `no_std` attribute and the
//! panic handler differ between the two.
//!
//! # No panic path, proven at link time
//!
//! The exports run inside the AICPU OS process: a panic must neither unwind
//! into C nor abort that process. The code therefore avoids every operation
//! that can panic — indexing and slicing go through `get`, arithmetic is
//! checked, saturating or wrapping, and there is no `core::fmt` — and the
//! device build *proves* it. Its panic handler calls
//! `simpler_dispatcher_panic_path_survived_linking`, which is defined
//! nowhere, and `build.rs` links the cdylib with `-Wl,--no-undefined`. After
//! LTO has removed unreachable code the handler is still referenced only if
//! some panic is reachable, and then the link fails naming that symbol. To
//! find the culprit, build without `lto` and look for callers of
//! `core::panicking`.

#![cfg_attr(simpler_nostd, no_std)]

mod cbuf;
mod ffi;
mod files;
mod install;
mod maintain;
mod outcome;
mod sweep;
mod sys;

use core::ffi::c_void;

use outcome::Progress;

/// Contract stub: CANN resolves it before calling Init and never needs it
/// to do anything here. Returns 0.
#[no_mangle]
#[allow(non_snake_case)]
pub extern "C" fn StaticTileFwkBackendKernelServer(_args: *mut c_void) -> i32 {
    0
}

/// Contract stub: CANN resolves it before calling Init; per-task launches
/// go straight to the runtime SO, never through the dispatcher. Returns 0.
#[no_mangle]
#[allow(non_snake_case)]
pub extern "C" fn DynTileFwkBackendKernelServer(_args: *mut c_void) -> i32 {
    0
}

/// Installs the runtime SO described by the bootstrap block at `args`, or
/// runs the maintenance command it carries.
///
/// Returns 0 when `simpler_inner_<fp>.so` is in place, otherwise the
/// [`ReportStage`](simpler_abi::ReportStage) that failed as a positive
/// number (1 validate, 2 open, 3 write, 4 rename). When `DeviceArgs::report`
/// is non-zero the [`BootstrapReport`](simpler_abi::BootstrapReport) there
/// is written on success and on every failure; the outcome is also logged
/// through `DlogRecord` when the process has one.
///
/// A maintenance command returns 0 once its reply is written, whatever it
/// says, and 1 when there is nowhere to write one; it never writes the
/// report.
///
/// # Safety
///
/// `args` is null or points to a readable `BootstrapArgs` block whose
/// `device_args` is 0 or the address of a readable `DeviceArgs`. There,
/// `inner_so_bin` must address `inner_so_len` readable bytes whenever it is
/// non-zero and the length is within the cap, and `report` is 0 or the
/// address of a writable `BootstrapReport`; with a tagged `command`,
/// `maintenance` is 0 or addresses a readable `MaintenanceArgs` whose
/// `reply` is 0 or addresses a writable `MaintenanceReply` and `capacity`
/// entries after it, and whose non-zero `fingerprints` addresses
/// `fingerprint_count` readable `u64`s. All of it for the duration of the
/// call, during which the runtime SO bytes do not change. Any alignment is
/// accepted.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn DynTileFwkBackendKernelServerInit(args: *mut c_void) -> i32 {
    // SAFETY: the caller's contract above is `ffi::read`'s, for a lifetime
    // that ends with this call (nothing of what it returns outlives it).
    let request = match unsafe { ffi::read(args.cast_const()) } {
        ffi::Work::Install(request) => request,
        // The reply says everything; the host reports it.
        ffi::Work::Maintain(Some(command)) => {
            maintain::run(&command);
            return 0;
        }
        ffi::Work::Maintain(None) => return simpler_abi::ReportStage::Validate as i32,
    };
    let mut progress = Progress::new();
    let result = request
        .install
        .and_then(|so| install::install(so.runtime, so.device_id, &mut progress));
    request.report.write(&progress.report(&result));
    ffi::log_outcome(&result, &progress);
    match result {
        Ok(()) => 0,
        Err(failure) => failure.stage as i32,
    }
}
