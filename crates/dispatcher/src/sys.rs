//! The libc calls the dispatcher makes, each failure returned as the OS
//! errno. Only symbols that glibc 2.17 on aarch64 already has are used:
//! `getrandom(2)` and `gettid(2)` go through `syscall` because their glibc
//! wrappers are newer (2.25, 2.30).
//!
//! Also the `no_std` build's panic handler, which links only when no panic
//! path survives optimisation ("No panic path" in the crate docs).

use core::ffi::{c_int, c_void, CStr};

use crate::cbuf::CBuf;

/// An OS `errno` value.
pub type Errno = c_int;

/// The calling thread's `errno`.
pub fn errno() -> Errno {
    // SAFETY: glibc returns a valid pointer to the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// The value of environment variable `key`, or `None` when it is unset.
///
/// The result borrows the environment: copy it before anything can call
/// `setenv` (the dispatcher copies it at once).
pub fn getenv(key: &CStr) -> Option<&'static [u8]> {
    // SAFETY: `key` is NUL-terminated.
    let value = unsafe { libc::getenv(key.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a non-null getenv result is a NUL-terminated string that stays
    // valid until the environment is modified (see above).
    Some(unsafe { CStr::from_ptr(value) }.to_bytes())
}

/// Creates `path`, which must not exist, for writing with `mode` (before
/// the umask). Retries on `EINTR`.
pub fn create_new<const N: usize>(path: &CBuf<N>, mode: libc::mode_t) -> Result<c_int, Errno> {
    loop {
        // SAFETY: `path` is NUL-terminated; the mode argument is passed as
        // the promoted unsigned int open(2) reads for O_CREAT.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                libc::c_uint::from(mode),
            )
        };
        if fd >= 0 {
            return Ok(fd);
        }
        let err = errno();
        if err != libc::EINTR {
            return Err(err);
        }
    }
}

/// Writes all of `bytes` to `fd`, adding each chunk to `written` as it
/// lands. Short writes continue where they stopped; `EINTR` is retried.
pub fn write_all(fd: c_int, bytes: &[u8], written: &mut u64) -> Result<(), Errno> {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a live slice of `rest.len()` readable bytes.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast::<c_void>(), rest.len()) };
        match usize::try_from(n) {
            // A regular file never accepts 0 of a non-empty write unless
            // something is badly wrong; fail rather than spin.
            Ok(0) => return Err(libc::EIO),
            Ok(n) => {
                *written = written.saturating_add(n as u64);
                rest = rest.get(n..).unwrap_or_default();
            }
            Err(_) => {
                let err = errno();
                if err != libc::EINTR {
                    return Err(err);
                }
            }
        }
    }
    Ok(())
}

/// `fchmod(fd, mode)`.
pub fn fchmod(fd: c_int, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: plain syscall wrapper on a descriptor we own.
    if unsafe { libc::fchmod(fd, mode) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Closes `fd`. Linux releases the descriptor even when close reports an
/// error, so it is never retried; `EINTR` (nothing lost) counts as success.
pub fn close(fd: c_int) -> Result<(), Errno> {
    // SAFETY: closes a descriptor we own exactly once.
    if unsafe { libc::close(fd) } == 0 {
        return Ok(());
    }
    match errno() {
        libc::EINTR => Ok(()),
        err => Err(err),
    }
}

/// `rename(from, to)`: atomically replaces `to`.
pub fn rename<const N: usize, const M: usize>(from: &CBuf<N>, to: &CBuf<M>) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated.
    if unsafe { libc::rename(from.as_ptr(), to.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Removes `path`, ignoring failure (cleanup after another error, which is
/// the one worth reporting).
pub fn unlink<const N: usize>(path: &CBuf<N>) {
    // SAFETY: `path` is NUL-terminated.
    unsafe { libc::unlink(path.as_ptr()) };
}

/// An open directory stream, closed on drop.
pub struct Dir {
    // Non-null: only `open_dir` makes one.
    stream: *mut libc::DIR,
}

/// Opens the directory `path` for listing.
pub fn open_dir<const N: usize>(path: &CBuf<N>) -> Result<Dir, Errno> {
    // SAFETY: `path` is NUL-terminated.
    let stream = unsafe { libc::opendir(path.as_ptr()) };
    if stream.is_null() {
        Err(errno())
    } else {
        Ok(Dir { stream })
    }
}

/// What `lstat` says of a directory entry.
#[derive(Clone, Copy, Default)]
pub struct EntryStat {
    /// A regular file (not a symlink, directory or anything else).
    pub regular: bool,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, `CLOCK_REALTIME` seconds.
    pub mtime: i64,
    /// And its nanoseconds.
    pub mtime_nsec: i64,
}

impl Dir {
    /// Calls `each` with the name of every entry, `.` and `..` included,
    /// until the end of the listing or the first error reading it.
    pub fn for_each(&mut self, mut each: impl FnMut(&Self, &CStr)) {
        loop {
            // SAFETY: `stream` is an open stream that only this value uses.
            let entry = unsafe { libc::readdir64(self.stream) };
            if entry.is_null() {
                return;
            }
            // SAFETY: a non-null readdir result points to an entry whose
            // `d_name` is NUL-terminated and valid until the next readdir
            // on this stream, which comes after `each` returns.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            each(self, name);
        }
    }

    /// `lstat` of entry `name`: never follows a symlink.
    pub fn lstat(&self, name: &CStr) -> Result<EntryStat, Errno> {
        // SAFETY: an all-zero `stat` is a valid value of the plain struct.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // `fstatat` has no glibc symbol before 2.33 (only `__fxstatat`), so
        // the syscall is made directly; both targets' kernels fill the
        // `struct stat` of their glibc.
        // SAFETY: the stream's descriptor is open, `name` NUL-terminated,
        // `st` a writable `struct stat`.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_newfstatat,
                libc::dirfd(self.stream),
                name.as_ptr(),
                &raw mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if ret != 0 {
            return Err(errno());
        }
        Ok(EntryStat {
            regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
            size: u64::try_from(st.st_size).unwrap_or_default(),
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec,
        })
    }

    /// Removes entry `name`, which must not be a directory. A symlink is
    /// removed itself, never what it points to.
    pub fn unlink(&self, name: &CStr) -> Result<(), Errno> {
        // SAFETY: the stream's descriptor is open, `name` NUL-terminated.
        if unsafe { libc::unlinkat(libc::dirfd(self.stream), name.as_ptr(), 0) } == 0 {
            Ok(())
        } else {
            Err(errno())
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: closes the stream `open_dir` opened, exactly once.
        unsafe { libc::closedir(self.stream) };
    }
}

/// The process id.
pub fn pid() -> u64 {
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    u64::try_from(pid).unwrap_or_default()
}

/// The kernel thread id of the caller.
pub fn tid() -> u64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    u64::try_from(tid).unwrap_or_default()
}

/// `CLOCK_REALTIME` in nanoseconds (wrapping; only used to tell names apart).
pub fn clock_ns() -> u64 {
    let ts = realtime();
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// `CLOCK_REALTIME` in whole seconds, the clock file times are kept in.
pub fn realtime_secs() -> i64 {
    realtime().tv_sec
}

/// `CLOCK_REALTIME` (zero if the clock cannot be read, which Linux never
/// does for this clock).
fn realtime() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts
}

/// 64 random bits from `getrandom(2)`, else `/dev/urandom` (kernels before
/// 3.17, or entropy not yet initialised), else `None`.
pub fn random_u64() -> Option<u64> {
    let mut value = 0u64;
    let dst = (&raw mut value).cast::<c_void>();
    let len = core::mem::size_of::<u64>();
    // SAFETY: `dst` addresses `len` writable bytes.
    let got = unsafe { libc::syscall(libc::SYS_getrandom, dst, len, libc::GRND_NONBLOCK) };
    if usize::try_from(got) == Ok(len) {
        return Some(value);
    }
    // SAFETY: a NUL-terminated literal path.
    let fd = unsafe { libc::open(c"/dev/urandom".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `dst` addresses `len` writable bytes; `fd` is ours to close.
    let got = unsafe { libc::read(fd, dst, len) };
    // A close failure on a read-only descriptor loses nothing.
    let _ = close(fd);
    (usize::try_from(got) == Ok(len)).then_some(value)
}

#[cfg(simpler_nostd)]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    extern "C" {
        // Defined nowhere on purpose: see "No panic path" in the crate docs.
        fn simpler_dispatcher_panic_path_survived_linking() -> !;
    }
    // SAFETY: never executed. A build in which this call is reachable does
    // not link, because of `-Wl,--no-undefined`.
    unsafe { simpler_dispatcher_panic_path_survived_linking() }
}
