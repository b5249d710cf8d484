//! Every libc call and raw-memory operation of the library: the device
//! memory object and the host's view of it, the inaccessible reservation of
//! each device's address window, finding this library's own path, and the
//! descriptors handed to a device process between `fork` and `exec`.

use std::ffi::{c_void, CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::ptr::NonNull;

/// A memfd of `len` bytes mapped shared into the host at an address the
/// kernel chooses. The device process maps the same object at the device's
/// fixed address; both see the same bytes.
#[derive(Debug)]
pub struct SharedMemory {
    fd: OwnedFd,
    view: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; access
// goes through the copy functions, which take no references into it, so
// it may be used from any thread.
unsafe impl Send for SharedMemory {}
// SAFETY: as above; concurrent copies race only in the way device memory
// races on hardware (the caller orders them with streams).
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Creates a zero-filled object of `len` bytes named `name` (the name
    /// shows in `/proc/<pid>/fd`, nowhere else).
    pub fn create(name: &str, len: u64) -> io::Result<Self> {
        let cname = CString::new(name).map_err(io::Error::other)?;
        // The system call rather than glibc's wrapper, which only glibc 2.27
        // has: the library then runs on glibc 2.17 hosts (manylinux2014).
        // SAFETY: `cname` is a valid NUL-terminated string; the call takes
        // a name and flags and returns a descriptor or -1.
        let raw = unsafe {
            libc::syscall(
                libc::SYS_memfd_create,
                cname.as_ptr(),
                libc::MFD_CLOEXEC as libc::c_uint,
            )
        };
        let raw = libc::c_int::try_from(raw).map_err(io::Error::other)?;
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create returned a fresh descriptor we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let len_off = libc::off_t::try_from(len).map_err(io::Error::other)?;
        // SAFETY: `fd` is an open memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len_off) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let len = usize::try_from(len).map_err(io::Error::other)?;
        // SAFETY: a fresh shared mapping of an object at least `len` bytes
        // long; the kernel picks the address, so nothing is overwritten.
        let view = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if view == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let view =
            NonNull::new(view.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Self { fd, view, len })
    }

    /// The memfd, for handing to the device process.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    fn check(&self, off: u64, len: usize) {
        assert!(
            (off as usize)
                .checked_add(len)
                .is_some_and(|end| end <= self.len),
            "device memory access at offset {off:#x} of {len} bytes is out of bounds"
        );
    }

    /// Copies `src` to offset `off` (the allocator's bounds check keeps it
    /// inside; a copy that is not panics).
    pub fn write(&self, off: u64, src: &[u8]) {
        self.check(off, src.len());
        // SAFETY: the range lies inside the mapping (checked above), which
        // lives as long as `self`; `src` is a live slice. `ptr::copy`
        // tolerates overlap, which a host buffer inside the view could cause.
        unsafe {
            std::ptr::copy(
                src.as_ptr(),
                self.view.as_ptr().add(off as usize),
                src.len(),
            )
        }
    }

    /// Copies `dst.len()` bytes at offset `off` into `dst`.
    pub fn read(&self, off: u64, dst: &mut [u8]) {
        self.check(off, dst.len());
        // SAFETY: as in `write`, with `dst` a live, exclusive slice.
        unsafe {
            std::ptr::copy(
                self.view.as_ptr().add(off as usize),
                dst.as_mut_ptr(),
                dst.len(),
            )
        }
    }

    /// Copies `len` bytes inside the object (overlap allowed).
    pub fn copy_within(&self, src: u64, dst: u64, len: usize) {
        self.check(src, len);
        self.check(dst, len);
        // SAFETY: both ranges were just checked to lie inside the mapping.
        unsafe {
            std::ptr::copy(
                self.view.as_ptr().add(src as usize),
                self.view.as_ptr().add(dst as usize),
                len,
            )
        }
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: `view`/`len` describe the mapping made in `create`, which
        // nothing references any more.
        unsafe { libc::munmap(self.view.as_ptr().cast(), self.len) };
    }
}

/// An address window reserved with `PROT_NONE` for the life of the
/// process, so a host dereference of a device address faults (SIGSEGV) as
/// on hardware and no host allocation can land there.
#[derive(Debug)]
pub struct Reservation {
    base: u64,
    len: u64,
}

impl Reservation {
    /// Reserves `[base, base + len)`; fails if anything is mapped there.
    pub fn new(base: u64, len: u64) -> io::Result<Self> {
        let len_usize = usize::try_from(len).map_err(io::Error::other)?;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; an
        // anonymous PROT_NONE mapping has no other effect.
        let got = unsafe {
            libc::mmap(
                base as *mut c_void,
                len_usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | libc::MAP_NORESERVE
                    | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if got == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        if got as u64 != base {
            // A kernel older than 4.17 ignores the flag and picks elsewhere.
            // SAFETY: `got` is the mapping just made, referenced by nobody.
            unsafe { libc::munmap(got, len_usize) };
            return Err(io::Error::other(format!(
                "the kernel placed the reservation at {got:p}, not {base:#x} (MAP_FIXED_NOREPLACE unsupported?)"
            )));
        }
        Ok(Self { base, len })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: the range is exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base as *mut c_void, self.len as usize) };
    }
}

/// Path of the shared object this code was loaded from.
pub fn own_library_path() -> Option<PathBuf> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let addr = own_library_path as *const c_void;
    // SAFETY: `addr` is a code address of this library; `info` is writable.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr filled `dli_fname` with a NUL-terminated path that
    // lives as long as the library stays loaded.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    std::fs::canonicalize(&path).ok().or(Some(path))
}

/// The real user id of this process.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The C library's name of signal `sig` ("Segmentation fault").
pub fn signal_name(sig: i32) -> String {
    // SAFETY: strsignal returns a static or thread-local string for any
    // signal number, copied out at once.
    unsafe { CStr::from_ptr(libc::strsignal(sig)) }
        .to_string_lossy()
        .into_owned()
}

/// Makes the process `command` starts inherit exactly `fds` (their
/// close-on-exec flag cleared in the child) and die with `SIGKILL` when the
/// thread that spawns it exits; it exits at once if this process is already
/// gone by then.
pub fn inherit_and_die_with_parent(command: &mut Command, fds: [RawFd; 3]) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls on plain integers.
    unsafe {
        command.pre_exec(move || {
            for fd in fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}
