//! The libc calls of the device process and its raw memory work: the
//! fixed-address mapping of device memory with bounds-checked copies out
//! of it, the descriptors inherited from the host library, leaving at
//! once, and the file-size limit of the dispatcher-write fault.

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The device memory window `[base, base + size)`, mapped shared at exactly
/// `base` for the life of the process. Kernels dereference it directly; the
/// simulator's own reads go through the checked copies below.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    base: u64,
    size: u64,
}

impl Mapping {
    /// Maps the memfd `fd` at exactly `base`; fails rather than replace a
    /// mapping. The descriptor is closed: the mapping keeps the object.
    pub fn map(fd: OwnedFd, base: u64, size: u64) -> io::Result<Self> {
        let len = usize::try_from(size).map_err(io::Error::other)?;
        // SAFETY: MAP_FIXED_NOREPLACE refuses to replace existing mappings,
        // so this cannot clobber memory of this process.
        let got = unsafe {
            libc::mmap(
                base as *mut c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                fd.as_raw_fd(),
                0,
            )
        };
        if got == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        if got as u64 != base {
            // SAFETY: unmapping the mapping just made, which nothing uses.
            unsafe { libc::munmap(got, len) };
            return Err(io::Error::other(format!(
                "mapped at {got:p} instead of {base:#x} (MAP_FIXED_NOREPLACE unsupported?)"
            )));
        }
        Ok(Self { base, size })
    }

    /// The first address past the window.
    pub fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Whether `[addr, addr + len)` lies inside the window.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base && addr.checked_add(len).is_some_and(|end| end <= self.end())
    }

    /// Copies `out.len()` bytes at `addr` into `out`; `None` (nothing
    /// copied) when they are not all inside the window.
    pub fn copy_out(&self, addr: u64, out: &mut [u8]) -> Option<()> {
        if !self.contains(addr, out.len() as u64) {
            return None;
        }
        // SAFETY: the range was checked to lie in the mapping, which stays
        // mapped for the life of the process; `out` is a live, exclusive
        // slice of the same length outside it (device memory is never a
        // Rust object).
        unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, out.as_mut_ptr(), out.len()) };
        Some(())
    }

    /// The offset of the first NUL in `[addr, addr + len)`: `None` when the
    /// range is not inside the window, `Some(None)` when it has no NUL.
    pub fn find_nul(&self, addr: u64, len: u64) -> Option<Option<usize>> {
        if !self.contains(addr, len) {
            return None;
        }
        // SAFETY: the range was checked to lie in the mapping, which stays
        // mapped for the life of the process.
        let nul = unsafe { libc::memchr(addr as *const c_void, 0, len as usize) };
        Some((!nul.is_null()).then(|| nul as usize - addr as usize))
    }
}

/// Takes ownership of a descriptor the host library handed this process
/// (named on the command line, open across `exec`). Each one is adopted
/// once, at start-up.
pub fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY: the library passed this descriptor to us and nothing else in
    // this process refers to it; it is adopted exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Leaves at once, with status 0: kernels may still be running on worker
/// threads and must not observe destructors of the state they use.
pub fn exit_now() -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(0) }
}

/// Kills this process with `SIGKILL` (the kill-at-launch and
/// kill-during-write faults).
pub fn kill_self() {
    // SAFETY: signalling ourselves; no memory is involved.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

/// Every write that would grow a regular file failing with `EFBIG`
/// (`RLIMIT_FSIZE` 0, `SIGXFSZ` ignored), until [`FileGrowthBlocked::restore`].
pub struct FileGrowthBlocked {
    /// The limit before, when it was lowered.
    old_limit: Option<libc::rlimit>,
    old_handler: libc::sighandler_t,
}

impl FileGrowthBlocked {
    /// Lowers the limit and ignores `SIGXFSZ`.
    pub fn start() -> Self {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is writable; RLIMIT_FSIZE is a valid resource.
        let have_old = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut old) } == 0;
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: old.rlim_max,
        };
        // SAFETY: ignoring SIGXFSZ makes the failing write return EFBIG
        // instead of killing the process; `restore` puts the old
        // disposition back.
        let old_handler = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        // SAFETY: lowering our own soft limit.
        let limited = have_old && unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &zero) } == 0;
        Self {
            old_limit: limited.then_some(old),
            old_handler,
        }
    }

    /// Whether the limit was lowered (else writes were not made to fail).
    pub fn limited(&self) -> bool {
        self.old_limit.is_some()
    }

    /// Restores the limit and the signal disposition.
    pub fn restore(self) {
        if let Some(old) = self.old_limit {
            // SAFETY: restoring the limit read in `start` (soft ≤ hard holds).
            unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &old) };
        }
        // SAFETY: restoring the disposition `signal` returned in `start`.
        unsafe { libc::signal(libc::SIGXFSZ, self.old_handler) };
    }
}
