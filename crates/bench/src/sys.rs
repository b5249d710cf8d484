//! Every raw call of the benchmarks outside the CANN API (which is
//! `simpler-cann-sys`'s): the socket pair and forked echo child of the IPC
//! floor, CPU affinity, the page size, the floor's `dlopen`, and the launch
//! shim's own controls.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use libloading::Library;
use simpler_cann_sys::{sys as cann, Api};

/// Forks a child that echoes every message of up to `MESSAGE` bytes
/// received on `socket` until end of file, and dies with this process.
/// Returns the child's pid.
///
/// The child runs only async-signal-safe calls (`prctl`, `recv`, `send`,
/// `_exit`), so this is sound in a process that already runs other threads
/// (the simulator's).
pub(crate) fn fork_echo<const MESSAGE: usize>(socket: &OwnedFd) -> io::Result<libc::pid_t> {
    let fd = socket.as_raw_fd();
    // SAFETY: the child branch below calls only async-signal-safe
    // functions and leaves with `_exit`, never returning into Rust.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls on a descriptor this process
        // owns; `_exit` skips every destructor and atexit handler.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            echo::<MESSAGE>(fd);
            libc::_exit(0);
        }
    }
    Ok(pid)
}

/// The child's loop: echo until end of file or an error.
///
/// # Safety
/// `fd` is a connected `SOCK_SEQPACKET` socket; only async-signal-safe
/// calls are made.
unsafe fn echo<const MESSAGE: usize>(fd: RawFd) {
    let mut buf = [0u8; MESSAGE];
    loop {
        // SAFETY: `buf` is writable for MESSAGE bytes.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), MESSAGE, 0) };
        if n <= 0 {
            return;
        }
        // SAFETY: `buf` holds `n` received bytes.
        if unsafe { libc::send(fd, buf.as_ptr().cast(), n as usize, libc::MSG_NOSIGNAL) } != n {
            return;
        }
    }
}

/// Sends `buf` on `socket` and receives the answer into it; whether both
/// moved the whole buffer.
pub(crate) fn send_and_receive(socket: &OwnedFd, buf: &mut [u8]) -> bool {
    let fd = socket.as_raw_fd();
    let len = buf.len();
    // SAFETY: `buf` is a live buffer of `len` bytes for both calls.
    unsafe {
        libc::send(fd, buf.as_ptr().cast(), len, libc::MSG_NOSIGNAL) == len as isize
            && libc::recv(fd, buf.as_mut_ptr().cast(), len, 0) == len as isize
    }
}

/// Shuts `socket` down both ways: the peer reads end of file.
pub(crate) fn shutdown(socket: &OwnedFd) {
    // SAFETY: shutting down a socket the caller owns.
    unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_RDWR) };
}

/// Waits for the child `pid` to end and reaps it.
pub(crate) fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: `pid` is a child of this process, not yet reaped; `status`
    // is writable.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Whether a process `pid` exists.
#[cfg(test)]
pub(crate) fn is_alive(pid: libc::pid_t) -> bool {
    // SAFETY: probing a pid with signal 0 sends nothing.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// The size of a CPU set: CPUs numbered from 0 to this, exclusive.
pub(crate) const CPU_SETSIZE: usize = libc::CPU_SETSIZE as usize;

/// Restricts this process, and every process and thread it starts from
/// now on, to `cpu` (below [`CPU_SETSIZE`]).
pub(crate) fn set_affinity(cpu: usize) -> io::Result<()> {
    assert!(cpu < CPU_SETSIZE, "CPU {cpu} is beyond the CPU set");
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it
    // (bounds checked above); sched_setaffinity reads it for the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CPUs this process may run on.
pub(crate) fn affinity() -> io::Result<Vec<usize>> {
    // SAFETY: sched_getaffinity fills the zeroed set; CPU_ISSET reads
    // inside it for every index below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..CPU_SETSIZE)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect())
    }
}

/// CPUs online on the machine (`_SC_NPROCESSORS_ONLN`), 0 if unknown.
pub(crate) fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(0)
}

/// The page size in bytes (`_SC_PAGESIZE`).
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).expect("a positive page size")
}

/// `dlopen(path, RTLD_NOW | RTLD_LOCAL)` of a runtime SO, as the device
/// process loads one.
pub(crate) fn dlopen_runtime(path: &Path) -> Result<libloading::os::unix::Library, String> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: the runtime SO is built to be loaded into any process: its
    // initialisers only set up Rust's runtime, and nothing here calls it.
    unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| e.to_string())
}

/// `void simpler_bench_shim_forward(launch, sync)`.
type Forward = unsafe extern "C" fn(cann::Launch, cann::SyncStream);
/// `int32_t simpler_bench_shim_mode(int32_t mode)`.
type SetMode = unsafe extern "C" fn(i32) -> i32;
/// `int32_t simpler_bench_shim_sync_deferred(int32_t timeout_ms)`.
type SyncDeferred = unsafe extern "C" fn(i32) -> i32;

const FORWARD: &CStr = c"simpler_bench_shim_forward";
const SET_MODE: &CStr = c"simpler_bench_shim_mode";
const SYNC_DEFERRED: &CStr = c"simpler_bench_shim_sync_deferred";

/// The launch shim's own controls (`csrc/launch_shim.c`). Its two CANN
/// exports are resolved like any CANN library's, by listing the shim first
/// in [`Api::load`].
pub(crate) struct Shim {
    forward: Forward,
    set_mode: SetMode,
    sync_deferred: SyncDeferred,
    // Last: dropped after the pointers above.
    _lib: Library,
}

impl Shim {
    /// Loads the shim at `path`.
    pub(crate) fn load(path: &Path) -> Shim {
        // SAFETY: the shim has no initialisers.
        let lib = unsafe { Library::new(path) }
            .unwrap_or_else(|e| panic!("cannot load the launch shim {}: {e}", path.display()));
        // SAFETY: each type is the signature of its symbol in
        // csrc/launch_shim.c.
        unsafe {
            Shim {
                forward: symbol(&lib, FORWARD),
                set_mode: symbol(&lib, SET_MODE),
                sync_deferred: symbol(&lib, SYNC_DEFERRED),
                _lib: lib,
            }
        }
    }

    /// Points the shim's launch and sync at `api`'s, which stay loaded for
    /// the rest of the process.
    pub(crate) fn forward_to(&self, api: &'static Api) {
        // SAFETY: functions of the signatures the shim calls, valid for as
        // long as the shim may call them (`api` is never dropped).
        unsafe { (self.forward)(api.launch, api.sync_stream) };
    }

    /// `simpler_bench_shim_mode(mode)`: 0, or 107000 for an unknown mode.
    pub(crate) fn set_mode(&self, mode: i32) -> i32 {
        // SAFETY: a plain integer argument.
        unsafe { (self.set_mode)(mode) }
    }

    /// `simpler_bench_shim_sync_deferred(timeout_ms)`: the real sync of the
    /// last launch made in the sync-deferred mode.
    pub(crate) fn sync_deferred(&self, timeout_ms: i32) -> i32 {
        // SAFETY: a plain integer argument.
        unsafe { (self.sync_deferred)(timeout_ms) }
    }
}

/// Resolves `name` in `lib`.
///
/// # Safety
/// `T` is the function pointer type of the C symbol `name`.
unsafe fn symbol<T: Copy>(lib: &Library, name: &CStr) -> T {
    // SAFETY: forwarded to the caller; the pointer is used only while the
    // owner of `lib` keeps it loaded.
    *unsafe { lib.get::<T>(name.to_bytes_with_nul()) }
        .unwrap_or_else(|e| panic!("{} is missing: {e}", name.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use std::ffi::{c_char, c_void};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use simpler_abi::AicpuArgsEx;
    use simpler_cann_sys::sys::symbols;

    use super::*;

    static LAUNCHES: AtomicUsize = AtomicUsize::new(0);
    static SYNCS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn counted_launch(
        _: u32,
        _: *const c_char,
        _: u32,
        _: *const AicpuArgsEx,
        _: *mut c_void,
        _: *mut c_void,
        _: u32,
    ) -> i32 {
        LAUNCHES.fetch_add(1, Ordering::SeqCst);
        0
    }

    unsafe extern "C" fn counted_sync(stream: *mut c_void, _: i32) -> i32 {
        SYNCS.fetch_add(1, Ordering::SeqCst);
        // The stream handed over is the one launched on.
        if stream as usize == 0x5eed {
            0
        } else {
            1
        }
    }

    #[test]
    fn the_shim_forwards_copies_or_defers_as_its_mode_says() {
        use crate::launch::ShimMode;

        let path = Path::new(env!("BENCH_LAUNCH_SHIM"));
        let shim = Shim::load(path);
        // SAFETY: the shim has no initialisers; this handle shares the one
        // loaded copy with `shim`.
        let lib = unsafe { Library::new(path) }.unwrap();
        // SAFETY: the shim exports both CANN calls with these signatures.
        let (launch, sync): (cann::Launch, cann::SyncStream) = unsafe {
            (
                symbol(&lib, symbols::LAUNCH),
                symbol(&lib, symbols::SYNC_STREAM),
            )
        };
        let block = [7u8; 144];
        let info = AicpuArgsEx {
            args: block.as_ptr() as u64,
            args_size: block.len() as u32,
            ..AicpuArgsEx::default()
        };
        let stream = 0x5eed as *mut c_void;
        let counts = || {
            (
                LAUNCHES.load(Ordering::SeqCst),
                SYNCS.load(Ordering::SeqCst),
            )
        };
        // SAFETY: `info` describes the live `block`; the stream is only
        // passed through to the counting functions above.
        unsafe {
            let call = || launch(2, c"op".as_ptr(), 1, &info, std::ptr::null_mut(), stream, 0);
            // Nothing to forward to yet.
            assert_eq!(call(), 107_000);
            (shim.forward)(counted_launch, counted_sync);
            assert_eq!((call(), sync(stream, 1)), (0, 0));
            assert_eq!(counts(), (1, 1));

            assert_eq!(shim.set_mode(ShimMode::Immediate as i32), 0);
            assert_eq!((call(), sync(stream, 1)), (0, 0));
            assert_eq!(counts(), (1, 1), "immediate mode forwarded a call");
            let empty = AicpuArgsEx::default();
            let bad = launch(
                2,
                c"op".as_ptr(),
                1,
                &empty,
                std::ptr::null_mut(),
                stream,
                0,
            );
            assert_eq!(bad, 107_000, "a block without bytes was accepted");

            assert_eq!(shim.set_mode(ShimMode::SyncDeferred as i32), 0);
            assert_eq!((call(), sync(stream, 1)), (0, 0));
            assert_eq!(counts(), (2, 1), "the launch goes through, the sync waits");
            assert_eq!(shim.sync_deferred(1), 0);
            assert_eq!(counts(), (2, 2));

            assert_eq!(shim.set_mode(3), 107_000);
            assert_eq!(shim.set_mode(ShimMode::Forward as i32), 0);
        }
    }
}
