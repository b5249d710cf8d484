//! One call of the dispatcher's `DynTileFwkBackendKernelServerInit` on a
//! generated bootstrap argument block, and everything that must hold after
//! it.
//!
//! Shared by the `dispatcher_args` fuzz target and the `prop_dispatcher`
//! property tests of `simpler-e2e`.
//!
//! Host memory stands in for device memory: every "device address" is a
//! host pointer. Each structure the dispatcher may touch (the block, the
//! `DeviceArgs`, the report, the runtime SO bytes) ends at most a few bytes
//! before a `PROT_NONE` guard page, so reading or writing past what the
//! contract allows crashes the process instead of passing unnoticed. The
//! mappings and the call itself are in [`sys`].

mod sys;

use std::fs;
use std::io::Read;
use std::mem::size_of;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use simpler_abi::bootstrap::{REPORT_MAGIC, REPORT_PATH_LEN};
use simpler_abi::fingerprint::PREINSTALL_NAME_LEN;
use simpler_abi::names::MAX_INNER_SO_LEN;
use simpler_abi::{
    fingerprint, BootstrapArgs, BootstrapReport, DeviceArgs, PreinstallName, ReportStage,
    ReportStatus, ABI_VERSION,
};

pub use sys::Dispatcher;
use sys::{Call, Guarded, Links};

/// The ELF magic, the only part of the image the dispatcher validates.
pub const ELF_MAGIC: [u8; 4] = *b"\x7fELF";

/// Byte the report is filled with before the call, so a report written when
/// it must not be, or a field left unwritten, shows.
const REPORT_POISON: u8 = 0xa5;

/// Mode of an installed runtime SO.
const INSTALLED_MODE: u32 = 0o755;

/// One generated call of Init.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapCase {
    /// Pass a null pointer instead of the block.
    pub null_block: bool,
    /// Store 0 in `BootstrapArgs::device_args`.
    pub null_device_args: bool,
    /// Store 0 in `DeviceArgs::inner_so_bin`.
    pub null_bin: bool,
    /// Attach a report (`DeviceArgs::report` non-zero).
    pub report: bool,
    /// The bytes at `inner_so_bin`. When `declared_len` is larger and
    /// within the cap, zeros follow up to `declared_len`, so the pointer
    /// always addresses as many readable bytes as the contract requires.
    pub payload: Vec<u8>,
    /// `DeviceArgs::inner_so_len`.
    pub declared_len: u64,
    /// `DeviceArgs::device_id` (it only shapes the temp file name).
    pub device_id: u64,
    /// Seed for the fields the dispatcher must ignore: the rest of the
    /// block, the `DeviceArgs` reserved words, its `command` and
    /// `maintenance` words (noise carries no maintenance tag, so it still
    /// means install) and the dispatcher SO address and length (CANN's,
    /// never dereferenced by our Init).
    pub noise: u64,
    /// Bytes between the end of the block, the `DeviceArgs` and the report
    /// and their guard pages (any alignment is accepted).
    pub slack: [u8; 3],
}

/// Why Init must reject a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The errno the report must carry.
    pub errno: i32,
    /// Whether the report is reachable (block and `DeviceArgs` present and
    /// a report attached), so that it must be written.
    pub reported: bool,
}

impl BootstrapCase {
    /// Whether the report is reachable from the block.
    fn report_reachable(&self) -> bool {
        !self.null_block && !self.null_device_args && self.report
    }

    /// How many bytes at `inner_so_bin` are readable.
    fn readable_len(&self) -> usize {
        let mut len = self.payload.len();
        if self.declared_len <= MAX_INNER_SO_LEN {
            // The cap keeps this far below usize::MAX on 64-bit hosts.
            len = len.max(self.declared_len as usize);
        }
        len
    }

    /// The dispatcher's validation rule (`crates/dispatcher/src/args.rs`,
    /// `install.rs`): a block and `DeviceArgs` present, then a non-null
    /// image of non-zero length within `MAX_INNER_SO_LEN` whose first four
    /// bytes are the ELF magic, and a target path `<dir>/<name>` that fits
    /// the report's path field with its NUL. `dir` is the (non-empty)
    /// preinstall directory as set in the environment.
    pub fn expected(&self, dir: &Path) -> Result<(), Rejection> {
        let reject = |errno| {
            Err(Rejection {
                errno,
                reported: self.report_reachable(),
            })
        };
        if self.null_block || self.null_device_args || self.null_bin || self.declared_len == 0 {
            return reject(libc::EINVAL);
        }
        if self.declared_len > MAX_INNER_SO_LEN {
            return reject(libc::EFBIG);
        }
        // The image is the payload, then zeros.
        let mut head = [0u8; ELF_MAGIC.len()];
        let n = self.payload.len().min(head.len());
        head[..n].copy_from_slice(&self.payload[..n]);
        if self.declared_len < ELF_MAGIC.len() as u64 || head != ELF_MAGIC {
            return reject(libc::ENOEXEC);
        }
        let dir = dir.as_os_str().as_bytes();
        let slash = usize::from(!dir.ends_with(b"/"));
        if dir.len() + slash + PREINSTALL_NAME_LEN > REPORT_PATH_LEN - 1 {
            return reject(libc::ENAMETOOLONG);
        }
        Ok(())
    }

    /// FNV-1a 64 of the image Init reads (the payload and any zeros after
    /// it, up to `declared_len`), computed without hashing the zeros one by
    /// one, as an image may be 256 MiB: a zero byte leaves FNV-1a's xor step
    /// unchanged, so each one only multiplies the hash by the FNV prime.
    /// Valid for accepted cases only (`declared_len` within the cap).
    pub fn image_fingerprint(&self) -> u64 {
        const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
        let len = self.declared_len as usize;
        let head = &self.payload[..len.min(self.payload.len())];
        let mut zeros = (len - head.len()) as u64;
        let (mut factor, mut power) = (1u64, FNV_PRIME);
        while zeros > 0 {
            if zeros & 1 == 1 {
                factor = factor.wrapping_mul(power);
            }
            power = power.wrapping_mul(power);
            zeros >>= 1;
        }
        fingerprint(head).wrapping_mul(factor)
    }

    /// Calls the dispatcher's Init on this case with `dir` as the preinstall directory
    /// (exactly the value the caller set in `SIMPLER_AICPU_PREINSTALL_DIR`;
    /// an existing, empty directory), checks the return value, the report
    /// and the directory, then empties `dir` again. Returns the first
    /// violation found.
    pub fn run_and_check(&self, dispatcher: &Dispatcher, dir: &Path) -> Result<(), String> {
        let result = self.run_and_check_inner(dispatcher, dir);
        let cleanup = empty_dir(dir);
        result.and(cleanup)
    }

    fn run_and_check_inner(&self, dispatcher: &Dispatcher, dir: &Path) -> Result<(), String> {
        let mut image = Guarded::new(self.readable_len(), 0);
        image.bytes_mut()[..self.payload.len()].copy_from_slice(&self.payload);
        let mut noise = Noise(self.noise | 1);

        let mut report = Guarded::new(size_of::<BootstrapReport>(), self.slack[2]);
        report.bytes_mut().fill(REPORT_POISON);

        let mut device = DeviceArgs::default();
        noise.fill(bytemuck::bytes_of_mut(&mut device));
        device.device_id = self.device_id;
        device.inner_so_len = self.declared_len;

        let mut block = Guarded::new(size_of::<BootstrapArgs>(), self.slack[0]);
        noise.fill(block.bytes_mut());
        let links = Links {
            image: !self.null_bin,
            report: self.report,
            device_args: !self.null_device_args,
            block: !self.null_block,
        };
        let call = Call::new(image, report, device, self.slack[1], block, links);
        let ret = dispatcher.init(&call);

        let expected = self.expected(dir);
        let report_bytes: BootstrapReport = bytemuck::pod_read_unaligned(call.report());
        match expected {
            Ok(()) => {
                let fp = self.image_fingerprint();
                let target = dir.join(PreinstallName::new(fp).as_str());
                check(ret == 0, || {
                    format!("Init returned {ret} for a valid image")
                })?;
                if self.report {
                    check_report_ok(&report_bytes, fp, self.declared_len, &target)?;
                } else {
                    check_untouched(call.report())?;
                }
                check_installed(&target, &call.image()[..self.declared_len as usize])?;
                check_entries(dir, &[target.file_name().unwrap().to_str().unwrap()])
            }
            Err(rejection) => {
                check(ret == ReportStage::Validate as i32, || {
                    format!(
                        "Init returned {ret}, expected {} (validate) for {rejection:?}",
                        ReportStage::Validate as i32
                    )
                })?;
                if rejection.reported {
                    check_report_rejected(&report_bytes, rejection.errno)?;
                } else {
                    check_untouched(call.report())?;
                }
                check_entries(dir, &[])
            }
        }
    }
}

fn check(ok: bool, violation: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(violation())
    }
}

fn errno_name(errno: i32) -> String {
    format!("{errno} ({})", std::io::Error::from_raw_os_error(errno))
}

fn check_untouched(report: &[u8]) -> Result<(), String> {
    check(report.iter().all(|&b| b == REPORT_POISON), || {
        "a report the dispatcher cannot reach (or was not given) was written".into()
    })
}

fn check_common(report: &BootstrapReport) -> Result<(), String> {
    check(report.magic == REPORT_MAGIC, || {
        format!("report magic {:#x}: {report:?}", report.magic)
    })?;
    check(report.abi_version == ABI_VERSION, || {
        format!("report ABI version {}", report.abi_version)
    })?;
    check(report.reserved == 0, || "report reserved word not 0".into())?;
    check(report.path.contains(&0), || {
        "report path is not NUL-terminated".into()
    })
}

fn check_report_rejected(report: &BootstrapReport, errno: i32) -> Result<(), String> {
    check_common(report)?;
    check(
        ReportStatus::from_raw(report.status) == Some(ReportStatus::Failed),
        || format!("report status {} instead of failed", report.status),
    )?;
    check(
        ReportStage::from_raw(report.stage) == Some(ReportStage::Validate),
        || format!("report stage {} instead of validate", report.stage),
    )?;
    check(report.errno == errno, || {
        format!(
            "report errno {} instead of {}",
            errno_name(report.errno),
            errno_name(errno)
        )
    })?;
    check(report.bytes_written == 0, || {
        format!(
            "{} bytes written for a rejected image",
            report.bytes_written
        )
    })
}

fn check_report_ok(
    report: &BootstrapReport,
    fp: u64,
    len: u64,
    target: &Path,
) -> Result<(), String> {
    check_common(report)?;
    check(
        ReportStatus::from_raw(report.status) == Some(ReportStatus::Ok)
            && ReportStage::from_raw(report.stage) == Some(ReportStage::None)
            && report.errno == 0,
        || format!("success reported as {report:?}"),
    )?;
    check(report.fingerprint == fp, || {
        format!(
            "report fingerprint {:016x}, expected {fp:016x}",
            report.fingerprint
        )
    })?;
    check(report.bytes_written == len, || {
        format!("report says {} bytes written", report.bytes_written)
    })?;
    check(report.path_str() == target.to_str(), || {
        format!(
            "report path {:?}, expected {}",
            report.path_str(),
            target.display()
        )
    })
}

fn check_installed(target: &Path, image: &[u8]) -> Result<(), String> {
    let meta = fs::metadata(target).map_err(|e| format!("{}: {e}", target.display()))?;
    check(meta.len() == image.len() as u64, || {
        format!(
            "{} holds {} bytes, expected {}",
            target.display(),
            meta.len(),
            image.len()
        )
    })?;
    check(meta.permissions().mode() & 0o777 == INSTALLED_MODE, || {
        format!("mode {:o}", meta.permissions().mode() & 0o777)
    })?;
    // In chunks: an image may be as large as the 256 MiB cap.
    let mut file = fs::File::open(target).map_err(|e| e.to_string())?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < image.len() {
        let n = file.read(&mut chunk).map_err(|e| e.to_string())?;
        check(n > 0, || format!("{} ends early", target.display()))?;
        check(chunk[..n] == image[at..at + n], || {
            format!("{} differs from the image near byte {at}", target.display())
        })?;
        at += n;
    }
    Ok(())
}

/// Checks that `dir` holds exactly `names`: no other runtime and no temp
/// file (`.simpler_inner_*.tmp.*`) left behind.
fn check_entries(dir: &Path, names: &[&str]) -> Result<(), String> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    found.sort();
    check(found == names, || {
        format!("preinstall directory holds {found:?}, expected {names:?}")
    })
}

fn empty_dir(dir: &Path) -> Result<(), String> {
    for entry in fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        fs::remove_file(&path).map_err(|e| format!("remove {}: {e}", path.display()))?;
    }
    Ok(())
}

/// xorshift64: cheap, reproducible filler for fields that must not matter.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, bytes: &mut [u8]) {
        for b in bytes {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}
