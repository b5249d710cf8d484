//! The two launch paths of [`simpler_host::Module`]: an empty kernel's
//! launch→sync round trip on each, the binary path's one-time kernel
//! registration, and module create/drop cycles against what the simulator
//! counts live afterwards.
//!
//! The kernel is `csrc/empty_kernel.c`'s `simpler_bench_empty`, which
//! returns at once.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use simpler_host::{CacheStatus, Device, LaunchPath, Machine, Module, Role, SoImage, Stream};

use crate::ipc::EchoPeer;
use crate::setup::{BenchEnv, SIM_DEVICE};
use crate::stats::Samples;

/// The empty kernel's symbol in `csrc/empty_kernel.c`.
pub const EMPTY_KERNEL: &str = "simpler_bench_empty";

/// The payload each launch carries (the kernel ignores it).
const PAYLOAD: [u8; 8] = [0; 8];

/// How long a launch may take before the bench gives up on it.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The SOs every module here is built from, checked once.
pub struct Images {
    dispatcher: SoImage,
    kernels: SoImage,
}

impl Images {
    /// The artifacts' dispatcher and the empty kernel's SO.
    pub fn new(env: &BenchEnv) -> anyhow::Result<Self> {
        let machine = Machine::host();
        Ok(Self {
            dispatcher: SoImage::from_path(
                env.artifacts().dispatcher(),
                Role::Dispatcher,
                machine,
            )?,
            kernels: SoImage::from_path(env!("BENCH_EMPTY_KERNEL"), Role::Kernels, machine)?,
        })
    }

    /// A module of the empty kernel on [`SIM_DEVICE`], launched on `path`.
    pub fn module(&self, env: &BenchEnv, path: LaunchPath) -> anyhow::Result<Module> {
        Module::builder(env.cann())
            .device(SIM_DEVICE)
            .device_machine(Machine::host())
            .dispatcher_image(self.dispatcher.clone())
            .so_image(self.kernels.clone())
            .kernel(EMPTY_KERNEL)
            .launch_path(path)
            .build()
            .with_context(|| format!("building the empty kernel's module on the {path} path"))
    }
}

/// Round trips of both paths and of the IPC floor.
pub struct RoundTrips {
    /// The bare `SOCK_SEQPACKET` ping-pong.
    pub ipc: Samples,
    /// `Kernel::run` on the type-2 path.
    pub type2: Samples,
    /// `Kernel::run` on the binary path.
    pub binary: Samples,
}

/// `rounds × round` round trips of each, in turn a round at a time, after
/// `warmup` of each; one stream for both paths.
pub fn round_trips(
    env: &BenchEnv,
    images: &Images,
    warmup: usize,
    rounds: usize,
    round: usize,
) -> anyhow::Result<RoundTrips> {
    let type2 = images.module(env, LaunchPath::Type2)?;
    let binary = images.module(env, LaunchPath::Binary)?;
    let (type2, binary) = (type2.kernel(EMPTY_KERNEL)?, binary.kernel(EMPTY_KERNEL)?);
    let mut stream = Stream::new(type2.module().device())?;
    let mut peer = EchoPeer::spawn().context("cannot start the IPC echo child")?;
    let mut run = |kernel: &simpler_host::Kernel| -> anyhow::Result<Duration> {
        let started = Instant::now();
        kernel.run(&mut stream, 1, &PAYLOAD, Some(TIMEOUT))?;
        Ok(started.elapsed())
    };
    for _ in 0..warmup {
        peer.round_trip();
        run(&type2)?;
        run(&binary)?;
    }
    let (mut ipc, mut on_type2, mut on_binary) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        for _ in 0..round {
            let started = Instant::now();
            peer.round_trip();
            ipc.push(started.elapsed());
        }
        for _ in 0..round {
            on_type2.push(run(&type2)?);
        }
        for _ in 0..round {
            on_binary.push(run(&binary)?);
        }
    }
    Ok(RoundTrips {
        ipc: Samples::new(ipc),
        type2: Samples::new(on_type2),
        binary: Samples::new(on_binary),
    })
}

/// The binary path's registration, `count` times: each build registers
/// anew, as the last module of the registration was dropped. Returns the
/// registration times and the builds' whole times.
pub fn registrations(
    env: &BenchEnv,
    images: &Images,
    count: usize,
) -> anyhow::Result<(Samples, Samples)> {
    let (mut registering, mut builds) = (vec![], vec![]);
    for _ in 0..count {
        let started = Instant::now();
        let module = images.module(env, LaunchPath::Binary)?;
        builds.push(started.elapsed());
        let info = module.info();
        ensure!(
            info.cache == CacheStatus::Hit && info.registration == Some(CacheStatus::Miss),
            "a build meant to register anew found bootstrap {:?}, registration {:?}",
            info.cache,
            info.registration
        );
        registering.push(info.registration_time);
    }
    Ok((Samples::new(registering), Samples::new(builds)))
}

/// What the simulator counts live on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    /// Device bytes allocated.
    pub bytes: u64,
    /// Device allocations.
    pub allocations: u64,
    /// Binary handles.
    pub binaries: u64,
    /// Function handles.
    pub functions: u64,
}

impl Live {
    /// What is live on `device` now.
    pub fn of(device: &Device) -> anyhow::Result<Self> {
        let stats = device
            .sim_stats()?
            .context("the CANN library is not the simulator: no simpler_sim_get_stats")?;
        Ok(Self {
            bytes: stats.live_bytes,
            allocations: stats.live_allocations,
            binaries: stats.binaries_live,
            functions: stats.functions_live,
        })
    }
}

/// `count` create/drop cycles of a module on `path` while `device` is held
/// open (so a leak stays counted), one empty-kernel run every hundredth to
/// show the modules work; what is live before and after.
pub fn cycles(
    env: &BenchEnv,
    images: &Images,
    device: &Device,
    path: LaunchPath,
    count: usize,
) -> anyhow::Result<(Live, Live)> {
    // One cycle first: whatever the first module of a path opens for good.
    drop(images.module(env, path)?);
    let before = Live::of(device)?;
    let mut stream = Stream::new(device)?;
    for i in 0..count {
        let module = images.module(env, path)?;
        if i % 100 == 0 {
            module
                .kernel(EMPTY_KERNEL)?
                .run(&mut stream, 1, &PAYLOAD, Some(TIMEOUT))?;
        }
    }
    drop(stream);
    Ok((before, Live::of(device)?))
}
