//! The atomic install of the runtime SO: a temp file in the preinstall
//! directory (named as the crate documentation says), written in full, made
//! mode 0755, then renamed onto `simpler_inner_<fp>.so`. [`TempFile`]'s
//! drop closes and unlinks it on every path that does not end in the
//! rename.
//!
//! No fsync: the only reader, the AICPU scheduler, runs on the same kernel,
//! for which the rename alone publishes the complete file. Durability across
//! a device crash buys nothing, because every host process bootstraps again
//! (the host cannot see the device's files, so it never trusts one already
//! there) and rewrites the file; an fsync would only add flash latency to
//! every bootstrap.

use core::ffi::c_int;

use simpler_abi::bootstrap::REPORT_PATH_LEN;
use simpler_abi::fingerprint::PREINSTALL_NAME_LEN;
use simpler_abi::names::{DEFAULT_PREINSTALL_DIR, PREINSTALL_DIR_ENV_C, PREINSTALL_TEMP_INFIX};
use simpler_abi::{fingerprint, PreinstallName, ReportStage};

use crate::cbuf::{CBuf, TooLong};
use crate::outcome::{Failure, Progress};
use crate::{sweep, sys};

/// Mode of the installed file: the scheduler only needs to read and map it.
const INSTALLED_MODE: libc::mode_t = 0o755;
/// Mode the temp file is created with, before it is complete.
const TEMP_MODE: libc::mode_t = 0o600;
/// Temp names tried before giving up on `EEXIST`.
const CREATE_ATTEMPTS: u32 = 8;

/// `.tmp.` plus the longest unique part: six numbers and the dots between.
const TEMP_SUFFIX_MAX: usize = PREINSTALL_TEMP_INFIX.len() + 3 * 20 + 10 + 16 + 16 + 5;
/// Room for every temp path whose target fits the report.
const TEMP_PATH_LEN: usize = REPORT_PATH_LEN + 1 + TEMP_SUFFIX_MAX;

// Once the target fits the report, so does its temp path: `<dir>/` is at
// most what the target leaves after the name, then `.`, the name and the
// suffix, then the NUL.
const _: () = assert!(
    (REPORT_PATH_LEN - 1 - PREINSTALL_NAME_LEN) + 1 + PREINSTALL_NAME_LEN + TEMP_SUFFIX_MAX
        < TEMP_PATH_LEN
);

/// Sequence number in temp names, so a thread's retries never rebuild the
/// same name even with a coarse clock and no random source. Threads may
/// race on it and read the same value, but their thread ids differ; a plain
/// load and store avoid a read-modify-write, which on aarch64 would link the
/// outline-atomics runtime (a constructor and about 1 KiB).
static TEMP_SEQ: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Installs `runtime` as `<preinstall dir>/simpler_inner_<fp>.so`, recording
/// the fingerprint, the target path and the bytes written in `progress`.
pub fn install(runtime: &[u8], device_id: u64, progress: &mut Progress) -> Result<(), Failure> {
    progress.fingerprint = fingerprint(runtime);
    let name = PreinstallName::new(progress.fingerprint);
    let dir_len = target_path(&name, &mut progress.path)?;

    let mut temp_path = CBuf::<TEMP_PATH_LEN>::new();
    let dir = progress.path.as_bytes().get(..dir_len).unwrap_or_default();
    let stem_fits = temp_path.push(dir).is_ok()
        && temp_path.push(b".").is_ok()
        && temp_path.push(name.as_bytes()).is_ok()
        && temp_path.push(PREINSTALL_TEMP_INFIX.as_bytes()).is_ok();
    if !stem_fits {
        return Err(path_too_long());
    }

    // Before the write, so that space the dead writers held is free for it.
    let mut dir_path = CBuf::<REPORT_PATH_LEN>::new();
    if dir_path.push(dir).is_ok() {
        progress.swept = sweep::sweep(&dir_path);
    }

    let mut temp = TempFile::create(temp_path, device_id)?;
    temp.write(runtime, &mut progress.bytes_written)?;
    temp.publish(&progress.path)
}

fn path_too_long() -> Failure {
    Failure::new(ReportStage::Validate, libc::ENAMETOOLONG, c"path too long")
}

/// Builds `<dir>/<name>` in `path` (as much as fits, on failure) and returns
/// the length of `<dir>/`.
fn target_path(name: &PreinstallName, path: &mut CBuf<REPORT_PATH_LEN>) -> Result<usize, Failure> {
    preinstall_dir(path).map_err(|_| path_too_long())?;
    let dir_len = path.mark();
    path.push(name.as_bytes()).map_err(|_| path_too_long())?;
    Ok(dir_len)
}

/// Appends the preinstall directory, with a trailing `/`, to `path`: the
/// one place that reads `SIMPLER_AICPU_PREINSTALL_DIR`.
pub fn preinstall_dir(path: &mut CBuf<REPORT_PATH_LEN>) -> Result<(), TooLong> {
    let dir = match sys::getenv(PREINSTALL_DIR_ENV_C) {
        Some(dir) if !dir.is_empty() => dir,
        _ => DEFAULT_PREINSTALL_DIR.as_bytes(),
    };
    path.push(dir)?;
    if path.as_bytes().last() != Some(&b'/') {
        path.push(b"/")?;
    }
    Ok(())
}

/// A temp file being written; closed and unlinked on drop unless published.
struct TempFile {
    path: CBuf<TEMP_PATH_LEN>,
    /// Open descriptor, or -1 once closed.
    fd: c_int,
    /// Renamed onto the target: nothing left to remove.
    published: bool,
}

impl TempFile {
    /// Creates a fresh temp file named `<stem><unique part>`, where `stem`
    /// is already in `path`.
    fn create(mut path: CBuf<TEMP_PATH_LEN>, device_id: u64) -> Result<Self, Failure> {
        let stem = path.mark();
        for _ in 0..CREATE_ATTEMPTS {
            path.rewind(stem);
            unique_part(&mut path, device_id).map_err(|_| path_too_long())?;
            match sys::create_new(&path, TEMP_MODE) {
                Ok(fd) => {
                    return Ok(Self {
                        path,
                        fd,
                        published: false,
                    })
                }
                Err(libc::EEXIST) => continue,
                Err(errno) => {
                    return Err(Failure::new(
                        ReportStage::Open,
                        errno,
                        c"cannot create the temp file",
                    ))
                }
            }
        }
        Err(Failure::new(
            ReportStage::Open,
            libc::EEXIST,
            c"every temp name taken",
        ))
    }

    fn write(&mut self, bytes: &[u8], written: &mut u64) -> Result<(), Failure> {
        sys::write_all(self.fd, bytes, written)
            .map_err(|errno| Failure::new(ReportStage::Write, errno, c"cannot write the temp file"))
    }

    /// Sets the final mode, closes and renames onto `target`.
    fn publish(mut self, target: &CBuf<REPORT_PATH_LEN>) -> Result<(), Failure> {
        // Explicitly, because the umask may have stripped bits at creation.
        sys::fchmod(self.fd, INSTALLED_MODE)
            .map_err(|errno| Failure::new(ReportStage::Write, errno, c"cannot chmod 0755"))?;
        let fd = core::mem::replace(&mut self.fd, -1);
        sys::close(fd).map_err(|errno| Failure::new(ReportStage::Write, errno, c"close failed"))?;
        sys::rename(&self.path, target).map_err(|errno| {
            Failure::new(ReportStage::Rename, errno, c"cannot rename onto the target")
        })?;
        self.published = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.fd >= 0 {
            // The failure being reported is the one that brought us here.
            let _ = sys::close(self.fd);
        }
        if !self.published {
            sys::unlink(&self.path);
        }
    }
}

/// `<device id>.<pid>.<tid>.<seq>.<clock hex>.<random hex>`.
fn unique_part(path: &mut CBuf<TEMP_PATH_LEN>, device_id: u64) -> Result<(), crate::cbuf::TooLong> {
    let seq = TEMP_SEQ.load(core::sync::atomic::Ordering::Relaxed);
    TEMP_SEQ.store(seq.wrapping_add(1), core::sync::atomic::Ordering::Relaxed);
    // Without any random source the other parts still differ between
    // threads, processes and attempts on one die; O_EXCL covers the rest.
    let random = sys::random_u64().unwrap_or(0);
    path.push_dec(device_id)?;
    path.push(b".")?;
    path.push_dec(sys::pid())?;
    path.push(b".")?;
    path.push_dec(sys::tid())?;
    path.push(b".")?;
    path.push_dec(u64::from(seq))?;
    path.push(b".")?;
    path.push_hex(sys::clock_ns())?;
    path.push(b".")?;
    path.push_hex(random)
}
