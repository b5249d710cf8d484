//! Launches of an empty `simpler_aicpu_exec` two ways: through the host's
//! [`DeviceRunner::exec`], and as bare C calls through the very function
//! pointers the host resolved, with an argument block built once.
//!
//! On the simulator both are launch→sync round trips. Through the launch
//! shim (`csrc/launch_shim.c`, see [`ShimMode`]) the sync can be taken out
//! of the timing, or the launch reduced to copying its block: the
//! difference between the two paths is then the host's own cost per launch.

use std::ffi::{c_char, c_void, CStr};
use std::path::Path;
use std::time::Duration;

use libloading::Library;
use simpler_abi::launch::{LAUNCH_KERNEL_NAME_OFFSET, LAUNCH_SO_NAME_OFFSET};
use simpler_abi::names::KERNEL_TYPE_AICPU;
use simpler_abi::work::WORK_MAGIC;
use simpler_abi::{AicpuArgsEx, ExecLaunchArgs, KernelArgs, WorkHeader, ABI_VERSION};
use simpler_host::{Cann, CannSource, DeviceBuffer, DeviceRunner};

use crate::setup::{BenchEnv, SHIM_DEVICE};

type DeviceFn = unsafe extern "C" fn(i32) -> i32;
type CreateStream = unsafe extern "C" fn(*mut *mut c_void) -> i32;
type DestroyStream = unsafe extern "C" fn(*mut c_void) -> i32;
type SyncStream = unsafe extern "C" fn(*mut c_void, i32) -> i32;
type Ping = unsafe extern "C" fn(u32) -> i32;
/// The C signature of `rtAicpuKernelLaunchExWithArgs`
/// (crates/cann-sim/include/simpler_cann_sim.h).
pub type Launch = unsafe extern "C" fn(
    u32,
    *const c_char,
    u32,
    *const AicpuArgsEx,
    *mut c_void,
    *mut c_void,
    u32,
) -> i32;
type ShimForward = unsafe extern "C" fn(Launch, SyncStream);
type SetShimMode = unsafe extern "C" fn(i32) -> i32;
type ShimSyncDeferred = unsafe extern "C" fn(i32) -> i32;

/// What the launch shim does with the two calls it exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum ShimMode {
    /// Both go to the simulator.
    Forward = 0,
    /// A launch only copies its block; a sync returns at once.
    Immediate = 1,
    /// Launches go to the simulator; syncs return at once, and the real
    /// sync is [`ShimLaunch::sync_deferred`].
    SyncDeferred = 2,
}

/// The `opName` the host gives exec launches.
const EXEC_OP_NAME: &CStr = c"simpler_aicpu_exec";
/// The host's default launch timeout (60 s), as the sync's argument.
const SYNC_TIMEOUT_MS: i32 = 60_000;

/// Resolves `name` (NUL-terminated) in `lib`.
///
/// # Safety
/// `T` is the function pointer type of the C symbol `name`.
unsafe fn symbol<T: Copy>(lib: &Library, name: &[u8]) -> T {
    // SAFETY: forwarded to the caller; the pointer is used only while the
    // owner of `lib` keeps it loaded.
    *unsafe { lib.get::<T>(name) }.unwrap_or_else(|e| {
        panic!(
            "{} is missing: {e}",
            String::from_utf8_lossy(&name[..name.len() - 1])
        )
    })
}

/// Resolves the launch shim's exports in `lib`: its launch, its sync, and
/// its `forward`, `mode` and `sync_deferred` controls.
///
/// # Safety
/// `lib` is the launch shim built from `csrc/launch_shim.c`.
unsafe fn shim_exports(
    lib: &Library,
) -> (
    Launch,
    SyncStream,
    ShimForward,
    SetShimMode,
    ShimSyncDeferred,
) {
    // SAFETY: the types are the signatures in csrc/launch_shim.c.
    unsafe {
        (
            symbol(lib, b"rtAicpuKernelLaunchExWithArgs\0"),
            symbol(lib, b"aclrtSynchronizeStreamWithTimeout\0"),
            symbol(lib, b"simpler_bench_shim_forward\0"),
            symbol(lib, b"simpler_bench_shim_mode\0"),
            symbol(lib, b"simpler_bench_shim_sync_deferred\0"),
        )
    }
}

/// The simulator's C API, loaded by path (the same handle the host has).
pub struct SimApi {
    set_device: DeviceFn,
    reset_device: DeviceFn,
    create_stream: CreateStream,
    destroy_stream: DestroyStream,
    sync: SyncStream,
    launch: Launch,
    ping: Ping,
    // Last: dropped after the pointers are gone.
    _lib: Library,
}

impl SimApi {
    /// Loads the simulator library at `path`.
    pub fn load(path: &Path) -> Self {
        // SAFETY: the simulator library has no initialisation requirements
        // (and the host loaded the same file already).
        let lib = unsafe { Library::new(path) }
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
        // SAFETY: each type is the C signature of its symbol
        // (crates/cann-sim/include/simpler_cann_sim.h).
        unsafe {
            Self {
                set_device: symbol(&lib, b"aclrtSetDevice\0"),
                reset_device: symbol(&lib, b"aclrtResetDevice\0"),
                create_stream: symbol(&lib, b"aclrtCreateStream\0"),
                destroy_stream: symbol(&lib, b"aclrtDestroyStream\0"),
                sync: symbol(&lib, b"aclrtSynchronizeStreamWithTimeout\0"),
                launch: symbol(&lib, b"rtAicpuKernelLaunchExWithArgs\0"),
                ping: symbol(&lib, b"simpler_sim_ping\0"),
                _lib: lib,
            }
        }
    }

    /// `count` round trips over the control channel of the calling
    /// thread's current device (`simpler_sim_ping`).
    pub fn ping(&self, count: u32) {
        // SAFETY: plain argument; the caller's thread has a current device.
        let rc = unsafe { (self.ping)(count) };
        assert_eq!(rc, 0, "simpler_sim_ping failed");
    }

    /// Sets `device` on the calling thread, so that [`SimApi::ping`] talks
    /// to it. Undo with [`SimApi::reset_device`].
    ///
    /// Call it only on a thread the host does not use: the host tracks
    /// which device is current on its threads, and would not see this.
    pub fn set_device(&self, device: i32) {
        // SAFETY: plain argument.
        let rc = unsafe { (self.set_device)(device) };
        assert_eq!(rc, 0, "aclrtSetDevice");
    }

    /// Drops the reference [`SimApi::set_device`] took.
    pub fn reset_device(&self, device: i32) {
        // SAFETY: plain argument; balances an earlier set.
        let rc = unsafe { (self.reset_device)(device) };
        assert_eq!(rc, 0, "aclrtResetDevice");
    }
}

/// A stream created with the bare C API on a thread of its own, so the
/// host's record of which device is current on the caller's thread stays
/// true. Destroyed, and its device reference dropped, on drop.
pub struct RawStream<'a> {
    api: &'a SimApi,
    device: i32,
    handle: usize,
}

impl<'a> RawStream<'a> {
    /// A new stream on `device`.
    pub fn new(api: &'a SimApi, device: i32) -> Self {
        let handle = std::thread::scope(|s| {
            s.spawn(|| {
                api.set_device(device);
                let mut raw = std::ptr::null_mut();
                // SAFETY: `raw` is a valid out-pointer.
                let rc = unsafe { (api.create_stream)(&mut raw) };
                assert!(rc == 0 && !raw.is_null(), "aclrtCreateStream: {rc}");
                raw as usize
            })
            .join()
            .expect("stream thread")
        });
        Self {
            api,
            device,
            handle,
        }
    }

    fn as_ptr(&self) -> *mut c_void {
        self.handle as *mut c_void
    }
}

impl Drop for RawStream<'_> {
    fn drop(&mut self) {
        let (api, device, handle) = (self.api, self.device, self.handle);
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: a live stream created by `new`, destroyed once.
                let rc = unsafe { (api.destroy_stream)(handle as *mut c_void) };
                assert_eq!(rc, 0, "aclrtDestroyStream");
                api.reset_device(device);
            });
        });
    }
}

/// A runner and a work description with no tasks: each exec is an empty
/// kernel, the runtime's whole fixed cost and nothing else.
pub struct EmptyExec {
    /// The runner (1 AICPU thread).
    pub runner: DeviceRunner,
    work: DeviceBuffer,
}

impl EmptyExec {
    /// Builds a runner with `builder` and uploads an empty work description.
    pub fn new(builder: simpler_host::DeviceRunnerBuilder) -> Result<Self, simpler_host::Error> {
        let runner = builder.threads(1).build()?;
        let header = WorkHeader {
            magic: WORK_MAGIC,
            abi_version: ABI_VERSION,
            ..WorkHeader::default()
        };
        let work = runner.upload(std::slice::from_ref(&header))?;
        Ok(Self { runner, work })
    }

    /// The exec payload naming the empty work description.
    pub fn args(&self) -> KernelArgs {
        KernelArgs {
            runtime_args: self.work.device_addr(),
            regs: 0,
        }
    }

    /// One [`DeviceRunner::exec`].
    pub fn exec(&mut self) {
        let args = self.args();
        if let Err(e) = self.runner.exec(args) {
            panic!("exec of the empty work description failed: {e}");
        }
    }

    /// A [`RawExec`] of the same launch through `launch` and `sync`.
    fn raw<'s>(&self, launch: Launch, sync: SyncStream, stream: &'s RawStream<'s>) -> RawExec<'s> {
        let block = Box::new(ExecLaunchArgs::new(
            self.args(),
            &self.runner.info().preinstall_name,
        ));
        let info = AicpuArgsEx {
            args: std::ptr::from_ref(block.as_ref()) as u64,
            args_size: size_of::<ExecLaunchArgs>() as u32,
            so_name_addr_offset: LAUNCH_SO_NAME_OFFSET,
            kernel_name_addr_offset: LAUNCH_KERNEL_NAME_OFFSET,
            ..AicpuArgsEx::default()
        };
        RawExec {
            launch,
            sync,
            block_dim: self.runner.info().threads,
            block,
            info,
            stream,
        }
    }
}

/// The exec launch and sync as bare C calls with a block built once.
pub struct RawExec<'s> {
    launch: Launch,
    sync: SyncStream,
    block_dim: u32,
    // `info.args` points into this box.
    block: Box<ExecLaunchArgs>,
    info: AicpuArgsEx,
    stream: &'s RawStream<'s>,
}

impl RawExec<'_> {
    /// `rtAicpuKernelLaunchExWithArgs` then
    /// `aclrtSynchronizeStreamWithTimeout`, as the host makes them.
    #[inline]
    pub fn call(&self) {
        self.launch();
        self.sync();
    }

    #[inline]
    fn launch(&self) {
        debug_assert_eq!(
            self.info.args,
            std::ptr::from_ref(self.block.as_ref()) as u64
        );
        // SAFETY: `info` describes the live `block` (boxed, so it does not
        // move); the op name is NUL-terminated; the stream is live.
        let rc = unsafe {
            (self.launch)(
                KERNEL_TYPE_AICPU,
                EXEC_OP_NAME.as_ptr(),
                self.block_dim,
                &self.info,
                std::ptr::null_mut(),
                self.stream.as_ptr(),
                0,
            )
        };
        assert_eq!(rc, 0, "rtAicpuKernelLaunchExWithArgs");
    }

    #[inline]
    fn sync(&self) {
        // SAFETY: a live stream.
        let rc = unsafe { (self.sync)(self.stream.as_ptr(), SYNC_TIMEOUT_MS) };
        assert_eq!(rc, 0, "aclrtSynchronizeStreamWithTimeout");
    }
}

/// An empty exec on the plain simulator, with its bare-call twin.
pub struct SimLaunch<'a> {
    /// The host's path.
    pub host: EmptyExec,
    stream: &'a RawStream<'a>,
    api: &'a SimApi,
}

impl<'a> SimLaunch<'a> {
    /// A runner on the simulator device of `env`; `stream` is on the same
    /// device.
    pub fn new(
        env: &BenchEnv,
        api: &'a SimApi,
        stream: &'a RawStream<'a>,
    ) -> Result<Self, simpler_host::Error> {
        Ok(Self {
            host: EmptyExec::new(env.builder())?,
            stream,
            api,
        })
    }

    /// The bare-call twin of `host`.
    pub fn raw(&self) -> RawExec<'a> {
        self.host.raw(self.api.launch, self.api.sync, self.stream)
    }
}

/// The CANN API loaded from [the launch shim, the simulator] and a runner
/// on [`SHIM_DEVICE`] built through it.
pub struct ShimLaunch<'a> {
    /// The host's path, through the shim.
    pub host: EmptyExec,
    launch: Launch,
    sync: SyncStream,
    set_mode: SetShimMode,
    sync_deferred: ShimSyncDeferred,
    stream: &'a RawStream<'a>,
    // Last: the pointers above come from it.
    _lib: Library,
}

impl<'a> ShimLaunch<'a> {
    /// Loads the shim, points it at the simulator's launch and sync, loads
    /// the CANN API through it and builds a runner (all forwarded, so the
    /// bootstrap and init are real). `stream` is on [`SHIM_DEVICE`].
    pub fn new(
        env: &BenchEnv,
        api: &SimApi,
        stream: &'a RawStream<'a>,
    ) -> Result<Self, simpler_host::Error> {
        let path = Path::new(env!("SIMPLER_BENCH_SHIM"));
        // SAFETY: the shim has no initialisers.
        let lib = unsafe { Library::new(path) }
            .unwrap_or_else(|e| panic!("cannot load the launch shim {}: {e}", path.display()));
        // SAFETY: `lib` is the launch shim.
        let (launch, sync, forward, set_mode, sync_deferred) = unsafe { shim_exports(&lib) };
        // SAFETY: the simulator's functions of the same signatures, loaded
        // for the life of the process (the host never unloads CANN).
        unsafe { forward(api.launch, api.sync) };
        let cann = Cann::load(&CannSource::Libraries(vec![
            path.to_path_buf(),
            env.artifacts().sim_lib(),
        ]))?;
        let builder = DeviceRunner::builder(&cann)
            .device(SHIM_DEVICE)
            .dispatcher_path(env.artifacts().dispatcher())
            .runtime_path(env.artifacts().runtime());
        Ok(Self {
            host: EmptyExec::new(builder)?,
            launch,
            sync,
            set_mode,
            sync_deferred,
            stream,
            _lib: lib,
        })
    }

    /// The bare-call twin of `host`, through the same shim pointers.
    pub fn raw(&self) -> RawExec<'a> {
        self.host.raw(self.launch, self.sync, self.stream)
    }

    /// Switches the shim to `mode`.
    pub fn set_mode(&self, mode: ShimMode) {
        // SAFETY: plain argument.
        let rc = unsafe { (self.set_mode)(mode as i32) };
        assert_eq!(rc, 0, "simpler_bench_shim_mode({mode:?})");
    }

    /// In [`ShimMode::SyncDeferred`], waits for the last launch for real.
    pub fn sync_deferred(&self) {
        // SAFETY: plain argument.
        let rc = unsafe { (self.sync_deferred)(SYNC_TIMEOUT_MS) };
        assert_eq!(rc, 0, "the deferred sync failed");
    }
}

impl Drop for ShimLaunch<'_> {
    fn drop(&mut self) {
        // Dropping the runner destroys its stream, which must reach the
        // simulator.
        self.set_mode(ShimMode::Forward);
    }
}

/// The time of `calls` calls of `f` (one call is too short for the clock).
pub fn time_batch(calls: u32, mut f: impl FnMut()) -> Duration {
    let started = std::time::Instant::now();
    for _ in 0..calls {
        f();
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

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
        // SAFETY: the shim has no initialisers.
        let lib = unsafe { Library::new(env!("SIMPLER_BENCH_SHIM")) }.unwrap();
        // SAFETY: `lib` is the launch shim.
        let (launch, sync, forward, set_mode, sync_deferred) = unsafe { shim_exports(&lib) };
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
            forward(counted_launch, counted_sync);
            assert_eq!((call(), sync(stream, 1)), (0, 0));
            assert_eq!(counts(), (1, 1));

            assert_eq!(set_mode(ShimMode::Immediate as i32), 0);
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

            assert_eq!(set_mode(ShimMode::SyncDeferred as i32), 0);
            assert_eq!((call(), sync(stream, 1)), (0, 0));
            assert_eq!(counts(), (2, 1), "the launch goes through, the sync waits");
            assert_eq!(sync_deferred(1), 0);
            assert_eq!(counts(), (2, 2));

            assert_eq!(set_mode(3), 107_000);
            assert_eq!(set_mode(ShimMode::Forward as i32), 0);
        }
    }
}
