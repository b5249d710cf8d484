//! The C boundary with CANN: what the bootstrap hands Init (the block, the
//! `DeviceArgs` it points to, the runtime SO bytes or a maintenance
//! command's arguments), the `BootstrapReport` or `MaintenanceReply` Init
//! writes back, and CANN's device logger.
//!
//! Every raw address the host sent is turned into a checked value here;
//! the rest of the crate sees only those.

use core::ffi::{c_int, c_void};
use core::marker::PhantomData;
use core::mem::offset_of;
use core::sync::atomic::{AtomicUsize, Ordering};

use simpler_abi::log::dlog::{self, RecordFn as DlogRecordFn};
use simpler_abi::maintenance::{
    tagged_command, MaintenanceArgs, MaintenanceEntry, MaintenanceReply,
};
use simpler_abi::names::MAX_INNER_SO_LEN;
use simpler_abi::{BootstrapArgs, BootstrapReport, DeviceArgs, ReportStage};

use crate::outcome::{Failure, Progress};

// glibc before 2.34 (every AICPU image) keeps dlsym in libdl; newer ones
// resolve it from libc and `--as-needed` drops the unused libdl.
#[link(name = "dl")]
extern "C" {}

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// What Init is asked to do.
pub enum Work<'a> {
    /// Install a runtime SO (every request without a tagged command word).
    Install(Request<'a>),
    /// Run a maintenance command; `None` when its arguments or reply
    /// address is 0, so that there is nowhere to answer.
    Maintain(Option<Maintain<'a>>),
}

/// What the host sent for an install, as far as it checks out.
pub struct Request<'a> {
    /// Where the report goes; nowhere without `DeviceArgs`.
    pub report: Report<'a>,
    /// The runtime SO to install, or why it was refused.
    pub install: Result<Install<'a>, Failure>,
}

/// A runtime SO that passed validation.
pub struct Install<'a> {
    /// `DeviceArgs::device_id`, for the temp file name.
    pub device_id: u64,
    /// The SO bytes: within the cap and starting with the ELF magic.
    pub runtime: &'a [u8],
}

/// The host's `BootstrapReport`, when `DeviceArgs::report` names one.
pub struct Report<'a> {
    // Null for none; otherwise writable for the call (see `read`).
    at: *mut BootstrapReport,
    _host: PhantomData<&'a mut BootstrapReport>,
}

impl Report<'_> {
    /// Writes `report` to the host's report, if `DeviceArgs` named one.
    pub fn write(&self, report: &BootstrapReport) {
        if self.at.is_null() {
            return;
        }
        // SAFETY: only `read` makes a non-null `at`, from a `report` field
        // its caller vouches for as a writable BootstrapReport; the write
        // makes no alignment assumption.
        unsafe { self.at.write_unaligned(*report) };
    }
}

/// Reads and checks the bootstrap block at `block`.
///
/// # Safety
///
/// As `DynTileFwkBackendKernelServerInit`: `block` is null or addresses a
/// readable `BootstrapArgs` whose `device_args` is 0 or addresses a
/// readable `DeviceArgs`. There a non-zero `inner_so_bin` addresses
/// `inner_so_len` readable bytes whenever that length is within
/// [`MAX_INNER_SO_LEN`], unchanged while `'a` lasts, and `report` is 0 or
/// the address of a `BootstrapReport` writable while `'a` lasts. With a
/// tagged `command`, [`maintain`]'s contract holds for `maintenance`
/// instead. Any alignment is accepted.
pub unsafe fn read<'a>(block: *const c_void) -> Work<'a> {
    let nowhere = Report {
        at: core::ptr::null_mut(),
        _host: PhantomData,
    };
    // SAFETY: forwarded from this function's contract.
    let device = match unsafe { device_args(block) } {
        Ok(device) => device,
        Err(failure) => {
            return Work::Install(Request {
                report: nowhere,
                install: Err(failure),
            })
        }
    };
    if let Some(command) = tagged_command(device.command) {
        // SAFETY: forwarded from this function's contract.
        return Work::Maintain(unsafe { maintain(command, &device) });
    }
    let report = Report {
        at: device.report as usize as *mut BootstrapReport,
        _host: PhantomData,
    };
    // SAFETY: forwarded from this function's contract.
    let install = unsafe { runtime_so(&device) }.map(|runtime| Install {
        device_id: device.device_id,
        runtime,
    });
    Work::Install(Request { report, install })
}

/// A maintenance command whose arguments and reply address are non-zero.
/// Nothing else of the arguments is checked yet: `maintain.rs` refuses
/// bad values in the reply.
pub struct Maintain<'a> {
    /// The low half of the tagged command word.
    pub command: u32,
    /// A copy of the host's arguments.
    pub args: MaintenanceArgs,
    // Non-null; writable for the header and `args.capacity` entries.
    reply: *mut MaintenanceReply,
    _host: PhantomData<&'a mut MaintenanceReply>,
}

impl Maintain<'_> {
    /// Fingerprint `index` of a remove command, if `index` is below
    /// `fingerprint_count` and the array's address is non-zero.
    pub fn fingerprint(&self, index: u32) -> Option<u64> {
        let base = self.args.fingerprints as usize as *const u64;
        if base.is_null() || index >= self.args.fingerprint_count {
            return None;
        }
        // SAFETY: `maintain`'s caller vouches for `fingerprint_count`
        // readable u64s at a non-zero `fingerprints`; `index` is below it.
        Some(unsafe { base.add(index as usize).read_unaligned() })
    }

    /// Writes `entry` at `index` after the reply header, if the reply has
    /// room for it.
    pub fn write_entry(&self, index: u32, entry: &MaintenanceEntry) {
        if index >= self.args.capacity {
            return;
        }
        // SAFETY: the reply is writable for its header and `capacity`
        // entries after it (`maintain`'s contract); `index` is below that.
        unsafe {
            self.reply
                .add(1)
                .cast::<MaintenanceEntry>()
                .add(index as usize)
                .write_unaligned(*entry)
        };
    }

    /// Writes the reply header.
    pub fn write_reply(&self, reply: &MaintenanceReply) {
        // SAFETY: `reply` is non-null and writable (`maintain`'s contract).
        unsafe { self.reply.write_unaligned(*reply) };
    }
}

/// The maintenance command `command` with the arguments `device` names.
///
/// # Safety
///
/// `device.maintenance` is 0 or the address of a readable
/// `MaintenanceArgs` whose `reply` is 0 or addresses a `MaintenanceReply`
/// followed by `capacity` `MaintenanceEntry`s, all writable, and whose
/// `fingerprints`, when non-zero, addresses `fingerprint_count` readable
/// `u64`s, while `'a` lasts. Any alignment is accepted.
unsafe fn maintain<'a>(command: u32, device: &DeviceArgs) -> Option<Maintain<'a>> {
    let at = device.maintenance as usize as *const MaintenanceArgs;
    if at.is_null() {
        return None;
    }
    // SAFETY: a non-zero `maintenance` addresses a readable MaintenanceArgs.
    let args = unsafe { at.read_unaligned() };
    let reply = args.reply as usize as *mut MaintenanceReply;
    (!reply.is_null()).then_some(Maintain {
        command,
        args,
        reply,
        _host: PhantomData,
    })
}

const fn invalid(errno: c_int, what: &'static core::ffi::CStr) -> Failure {
    Failure::new(ReportStage::Validate, errno, what)
}

/// The `DeviceArgs` the bootstrap block at `block` points to.
///
/// # Safety
///
/// `block` is null or addresses a readable `BootstrapArgs` whose
/// `device_args` is 0 or addresses a readable `DeviceArgs`.
unsafe fn device_args(block: *const c_void) -> Result<DeviceArgs, Failure> {
    if block.is_null() {
        return Err(invalid(libc::EINVAL, c"null argument block"));
    }
    // Only `device_args` is read: CANN owns the rest of the block.
    // SAFETY: `block` addresses a whole BootstrapArgs, so the field at its
    // offset is readable; unaligned reads accept any address.
    let address = unsafe {
        block
            .cast::<u8>()
            .add(offset_of!(BootstrapArgs, device_args))
            .cast::<u64>()
            .read_unaligned()
    };
    let device = address as usize as *const DeviceArgs;
    if device.is_null() {
        return Err(invalid(libc::EINVAL, c"device_args is 0"));
    }
    // SAFETY: a non-zero `device_args` addresses a readable DeviceArgs.
    Ok(unsafe { device.read_unaligned() })
}

/// The runtime SO bytes, once their address, length and ELF magic check out.
///
/// # Safety
///
/// A non-zero `inner_so_bin` addresses `inner_so_len` readable bytes
/// whenever `inner_so_len` is within [`MAX_INNER_SO_LEN`]; they stay
/// unchanged while the returned slice lives.
unsafe fn runtime_so<'a>(device: &DeviceArgs) -> Result<&'a [u8], Failure> {
    let start = device.inner_so_bin as usize as *const u8;
    if start.is_null() {
        return Err(invalid(libc::EINVAL, c"inner_so_bin is 0"));
    }
    if device.inner_so_len == 0 {
        return Err(invalid(libc::EINVAL, c"inner_so_len is 0"));
    }
    let too_big = invalid(libc::EFBIG, c"inner_so_len over the cap");
    if device.inner_so_len > MAX_INNER_SO_LEN {
        return Err(too_big);
    }
    let len = usize::try_from(device.inner_so_len).map_err(|_| too_big)?;
    // SAFETY: the caller vouches for `len` bytes at `start`; the cap keeps
    // `len` far below isize::MAX.
    let bytes = unsafe { core::slice::from_raw_parts(start, len) };
    if bytes.get(..ELF_MAGIC.len()) != Some(ELF_MAGIC.as_slice()) {
        return Err(invalid(libc::ENOEXEC, c"not an ELF image"));
    }
    Ok(bytes)
}

/// The resolved `DlogRecord` address, or one of the two markers below.
static DLOG_RECORD: AtomicUsize = AtomicUsize::new(UNRESOLVED);
const UNRESOLVED: usize = 0;
const ABSENT: usize = 1;

/// `DlogRecord`, looked up with `dlsym(RTLD_DEFAULT)` on first use, so the
/// SO also loads, and works silently, where CANN's log library is absent.
/// The result is cached, also when absent: the library is part of the
/// AICPU process from its start, not loaded later.
fn dlog_record() -> Option<DlogRecordFn> {
    let mut address = DLOG_RECORD.load(Ordering::Acquire);
    if address == UNRESOLVED {
        // SAFETY: a NUL-terminated name; RTLD_DEFAULT searches the global
        // scope of the process.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, dlog::SYMBOL_C.as_ptr()) };
        address = if symbol.is_null() {
            ABSENT
        } else {
            symbol as usize
        };
        // Racing threads resolve the same value, so the last store is right.
        DLOG_RECORD.store(address, Ordering::Release);
    }
    if address == ABSENT {
        return None;
    }
    // SAFETY: `address` came from dlsym for a function with this C signature.
    Some(unsafe { core::mem::transmute::<*const c_void, DlogRecordFn>(address as *const c_void) })
}

/// Logs the outcome of Init to the device log: what was installed, or what
/// failed and why.
///
/// Under module `AICPU` (36), like the runtime SO; why that module is
/// written next to [`dlog::MODULE_AICPU`].
pub fn log_outcome(result: &Result<(), Failure>, progress: &Progress) {
    let Some(record) = dlog_record() else {
        return;
    };
    log_sweep(record, progress);
    match result {
        // SAFETY: the format's conversions match the arguments (C string,
        // unsigned long long, unsigned long long); the path is NUL-terminated.
        Ok(()) => unsafe {
            record(
                dlog::MODULE_AICPU,
                dlog::INFO,
                c"simpler dispatcher: installed %s (%llu bytes, fingerprint %016llx)".as_ptr(),
                progress.path.as_ptr(),
                progress.bytes_written,
                progress.fingerprint,
            )
        },
        Err(failure) => {
            let stage = failure.stage.name();
            let stage_len = c_int::try_from(stage.len()).unwrap_or_default();
            // SAFETY: the conversions match the arguments: `%.*s` takes an
            // int length and a pointer to that many bytes, `%s` the
            // NUL-terminated reason and path, `%d` an int.
            unsafe {
                record(
                    dlog::MODULE_AICPU,
                    dlog::ERROR,
                    c"simpler dispatcher: %.*s failed: %s (errno %d), path '%s'".as_ptr(),
                    stage_len,
                    stage.as_ptr(),
                    failure.what.as_ptr(),
                    failure.errno,
                    progress.path.as_ptr(),
                )
            }
        }
    }
}

/// Logs what the sweep of stale temp files did, when it did or failed
/// anything: a warning if something could not be listed or removed.
fn log_sweep(record: DlogRecordFn, progress: &Progress) {
    let swept = &progress.swept;
    // The directory is the target path up to its last `/`.
    let path = progress.path.as_bytes();
    let dir_len = path.iter().rposition(|&b| b == b'/').unwrap_or_default();
    let dir_len = c_int::try_from(dir_len).unwrap_or_default();
    if swept.removed == 0 && swept.kept == 0 {
        if swept.errno != 0 {
            // SAFETY: the conversions match the arguments: `%.*s` an int
            // length and a pointer to that many bytes, `%d` an int.
            unsafe {
                record(
                    dlog::MODULE_AICPU,
                    dlog::WARN,
                    c"simpler dispatcher: cannot list %.*s for stale temp files (errno %d)"
                        .as_ptr(),
                    dir_len,
                    progress.path.as_ptr(),
                    swept.errno,
                )
            }
        }
        return;
    }
    let level = if swept.kept == 0 {
        dlog::INFO
    } else {
        dlog::WARN
    };
    // SAFETY: the conversions match the arguments: `%u` unsigned ints,
    // `%.*s` an int length and a pointer to that many bytes, `%d` an int.
    unsafe {
        record(
            dlog::MODULE_AICPU,
            level,
            c"simpler dispatcher: removed %u stale temp files from %.*s, %u left (errno %d)"
                .as_ptr(),
            swept.removed,
            dir_len,
            progress.path.as_ptr(),
            swept.kept,
            swept.errno,
        )
    }
}

#[cfg(test)]
mod tests {
    use simpler_abi::names::PREINSTALL_DIR_ENV;
    use simpler_abi::{BootstrapArgs, BootstrapReport, DeviceArgs, PreinstallName, ReportStatus};

    use super::dlog_record;

    /// This unit-test binary defines no `DlogRecord` (the integration tests
    /// define one), as a process without CANN's log library: Init installs
    /// and reports all the same.
    #[test]
    fn init_works_without_dlog_record() {
        assert!(dlog_record().is_none());
        let dir = tempfile::tempdir().unwrap();
        // No other unit test reads the environment.
        std::env::set_var(PREINSTALL_DIR_ENV, dir.path());
        let runtime = b"\x7fELF, and then some";
        let mut report: BootstrapReport = bytemuck::Zeroable::zeroed();
        let device = DeviceArgs {
            inner_so_bin: runtime.as_ptr() as u64,
            inner_so_len: runtime.len() as u64,
            report: &raw mut report as u64,
            ..DeviceArgs::default()
        };
        let mut block = BootstrapArgs::new(0);
        block.device_args = &raw const device as u64;
        // SAFETY: the block, DeviceArgs, report and runtime bytes are live
        // and laid out as Init expects.
        let ret = unsafe { crate::DynTileFwkBackendKernelServerInit((&raw mut block).cast()) };
        assert_eq!(ret, 0);
        assert_eq!(
            ReportStatus::from_raw(report.status),
            Some(ReportStatus::Ok)
        );
        let target = dir.path().join(PreinstallName::of(runtime).as_str());
        assert_eq!(std::fs::read(target).unwrap(), runtime);
    }
}
