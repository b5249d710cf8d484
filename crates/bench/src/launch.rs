//! Launches of an empty `simpler_aicpu_exec` two ways: through the host's
//! [`DeviceRunner::exec`], and as bare C calls through the same kind of
//! CANN table the host resolves ([`Api`]), with an argument block built
//! once.
//!
//! On the simulator both are launch→sync round trips. Through the launch
//! shim (`csrc/launch_shim.c`, see [`ShimMode`]) the sync can be taken out
//! of the timing, or the launch reduced to copying its block: the
//! difference between the two paths is then the host's own cost per launch.

use std::path::Path;
use std::time::Duration;

use simpler_abi::launch::{LAUNCH_KERNEL_NAME_OFFSET, LAUNCH_SO_NAME_OFFSET};
use simpler_abi::names::{KERNEL_TYPE_AICPU, RUNTIME_EXEC_SYMBOL_C};
use simpler_abi::work::WORK_MAGIC;
use simpler_abi::{ExecLaunchArgs, KernelArgs, WorkHeader, ABI_VERSION};
use simpler_cann_sys::{Api, PreparedLaunch, StreamCalls};
use simpler_host::{Cann, CannSource, DeviceBuffer, DeviceRunner};

use crate::setup::{BenchEnv, SHIM_DEVICE};
use crate::sys::Shim;

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

/// The host's default launch timeout (60 s), as the sync's argument.
const SYNC_TIMEOUT_MS: i32 = 60_000;

/// The CANN API of `libraries` for the rest of the process: like the
/// host's tables, never unloaded, so the pointers copied out of it (its
/// [`StreamCalls`], the shim's forwarding) stay valid.
pub fn load_api(libraries: &[std::path::PathBuf]) -> anyhow::Result<&'static Api> {
    Ok(Box::leak(Box::new(Api::load(libraries)?)))
}

/// `count` round trips over the simulator's control channel to the calling
/// thread's current device (`simpler_sim_ping`).
pub fn ping(api: &Api, count: u32) {
    match api.sim_ping(count) {
        Some(Ok(())) => {}
        Some(Err(code)) => panic!("simpler_sim_ping failed with {code}"),
        None => panic!("the CANN library is not the simulator: no simpler_sim_ping"),
    }
}

/// A stream created with the bare C API on a thread of its own, so the
/// host's record of which device is current on the caller's thread stays
/// true. Destroyed, and its device reference dropped, on drop.
pub struct RawStream<'a> {
    api: &'a Api,
    device: i32,
    /// `None` only inside `drop`.
    raw: Option<simpler_cann_sys::RawStream>,
}

impl<'a> RawStream<'a> {
    /// A new stream on `device`.
    pub fn new(api: &'a Api, device: i32) -> Self {
        let raw = std::thread::scope(|s| {
            s.spawn(|| {
                api.set_device(device)
                    .unwrap_or_else(|code| panic!("aclrtSetDevice: {code}"));
                api.create_stream()
                    .unwrap_or_else(|code| panic!("aclrtCreateStream: {code}"))
            })
            .join()
            .expect("stream thread")
        });
        Self {
            api,
            device,
            raw: Some(raw),
        }
    }

    fn raw(&self) -> &simpler_cann_sys::RawStream {
        self.raw.as_ref().expect("taken only by drop")
    }
}

impl Drop for RawStream<'_> {
    fn drop(&mut self) {
        let (api, device) = (self.api, self.device);
        let Some(raw) = self.raw.take() else { return };
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(api.destroy_stream(raw), Ok(()), "aclrtDestroyStream");
                assert_eq!(api.reset_device(device), Ok(()), "aclrtResetDevice");
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

    /// A [`RawExec`] of the same launch through `calls`.
    fn raw<'s>(&self, calls: StreamCalls, stream: &'s RawStream<'s>) -> RawExec<'s> {
        let info = self.runner.info();
        RawExec {
            calls,
            launch: PreparedLaunch::new(
                KERNEL_TYPE_AICPU,
                RUNTIME_EXEC_SYMBOL_C,
                info.threads,
                ExecLaunchArgs::new(self.args(), &info.preinstall_name),
                LAUNCH_SO_NAME_OFFSET,
                LAUNCH_KERNEL_NAME_OFFSET,
            ),
            stream,
        }
    }
}

/// The exec launch and sync as bare C calls with a block built once.
pub struct RawExec<'s> {
    calls: StreamCalls,
    launch: PreparedLaunch<ExecLaunchArgs>,
    stream: &'s RawStream<'s>,
}

impl RawExec<'_> {
    /// `rtAicpuKernelLaunchExWithArgs` then
    /// `aclrtSynchronizeStreamWithTimeout`, as the host makes them.
    #[inline]
    pub fn call(&self) {
        let stream = self.stream.raw();
        let launched = self.calls.launch_prepared(&self.launch, stream);
        assert_eq!(launched, Ok(()), "rtAicpuKernelLaunchExWithArgs");
        let synced = self.calls.sync(stream, SYNC_TIMEOUT_MS);
        assert_eq!(synced, Ok(()), "aclrtSynchronizeStreamWithTimeout");
    }
}

/// An empty exec on the plain simulator, with its bare-call twin.
pub struct SimLaunch<'a> {
    /// The host's path.
    pub host: EmptyExec,
    stream: &'a RawStream<'a>,
    api: &'a Api,
}

impl<'a> SimLaunch<'a> {
    /// A runner on the simulator device of `env`; `stream` is on the same
    /// device.
    pub fn new(env: &'a BenchEnv, stream: &'a RawStream<'a>) -> Result<Self, simpler_host::Error> {
        Ok(Self {
            host: EmptyExec::new(env.builder())?,
            stream,
            api: env.sim_api(),
        })
    }

    /// The bare-call twin of `host`.
    pub fn raw(&self) -> RawExec<'a> {
        self.host.raw(self.api.stream_calls(), self.stream)
    }
}

/// The CANN API loaded from [the launch shim, the simulator] and a runner
/// on [`SHIM_DEVICE`] built through it.
pub struct ShimLaunch<'a> {
    /// The host's path, through the shim.
    pub host: EmptyExec,
    /// The shim's launch and sync, as the host resolves them.
    calls: StreamCalls,
    shim: Shim,
    stream: &'a RawStream<'a>,
}

impl<'a> ShimLaunch<'a> {
    /// Loads the shim, points it at the simulator's launch and sync, loads
    /// the CANN API through it and builds a runner (all forwarded, so the
    /// bootstrap and init are real). `stream` is on [`SHIM_DEVICE`].
    pub fn new(env: &BenchEnv, stream: &'a RawStream<'a>) -> anyhow::Result<Self> {
        let path = Path::new(env!("BENCH_LAUNCH_SHIM"));
        let shim = Shim::load(path);
        shim.forward_to(env.sim_api());
        let libraries = vec![path.to_path_buf(), env.artifacts().sim_lib()];
        let calls = load_api(&libraries)?.stream_calls();
        let cann = Cann::load(&CannSource::Libraries(libraries))?;
        let builder = DeviceRunner::builder(&cann)
            .device(SHIM_DEVICE)
            .dispatcher_path(env.artifacts().dispatcher())
            .runtime_path(env.artifacts().runtime());
        Ok(Self {
            host: EmptyExec::new(builder)?,
            calls,
            shim,
            stream,
        })
    }

    /// The bare-call twin of `host`, through the same shim functions.
    pub fn raw(&self) -> RawExec<'a> {
        self.host.raw(self.calls, self.stream)
    }

    /// Switches the shim to `mode`.
    pub fn set_mode(&self, mode: ShimMode) {
        let rc = self.shim.set_mode(mode as i32);
        assert_eq!(rc, 0, "simpler_bench_shim_mode({mode:?})");
    }

    /// In [`ShimMode::SyncDeferred`], waits for the last launch for real.
    pub fn sync_deferred(&self) {
        let rc = self.shim.sync_deferred(SYNC_TIMEOUT_MS);
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
