//! The environment every measurement runs in: a private simulator root, the
//! host-architecture artifacts, and the CANN API loaded from the simulator.

use std::path::PathBuf;

use simpler_abi::artifacts::DEVICE_ARTIFACTS_DIR_ENV;
use simpler_abi::sim::env as sim_env;
use simpler_cann_sys::Api;
use simpler_host::{Cann, CannSource, Device, DeviceRunner, DeviceRunnerBuilder};
use simpler_testkit::{Artifacts, SimRoot};

/// The device the simulator measurements use.
pub const SIM_DEVICE: i32 = 0;
/// The device the launch-shim measurements use, so that their CANN
/// instance never shares a device with the plain simulator's.
pub const SHIM_DEVICE: i32 = 1;

/// The measurement environment. Create it first thing in `main`, before
/// any other thread starts: it sets process environment variables.
pub struct BenchEnv {
    root: SimRoot,
    artifacts: &'static Artifacts,
    cann: Cann,
    sim: &'static Api,
}

impl BenchEnv {
    /// Builds the artifacts if needed (`SIMPLER_ARTIFACTS_DIR` names ready
    /// ones), points `SIMPLER_SIM_ROOT` at a fresh temporary directory,
    /// clears the variables that would change the simulator's behaviour,
    /// and loads the simulator: through the host, and as a bare table for
    /// the measurements that call it directly.
    pub fn new() -> anyhow::Result<Self> {
        let artifacts = simpler_testkit::host_artifacts();
        let root = SimRoot::new();
        // Another device binary or launcher (qemu), device artifacts, fault
        // injection, and the device's size, threads and timeout would all
        // change what is measured: the defaults are.
        for var in sim_env::ALL.into_iter().filter(|v| *v != sim_env::ROOT) {
            std::env::remove_var(var);
        }
        std::env::remove_var(DEVICE_ARTIFACTS_DIR_ENV);
        std::env::set_var(sim_env::ROOT, root.path());
        let cann = Cann::load(&CannSource::Libraries(vec![artifacts.sim_lib()]))?;
        let sim = crate::launch::load_api(&[artifacts.sim_lib()])?;
        Ok(Self {
            root,
            artifacts,
            cann,
            sim,
        })
    }

    /// The artifacts measured.
    pub fn artifacts(&self) -> &'static Artifacts {
        self.artifacts
    }

    /// The private simulator root.
    pub fn root(&self) -> &SimRoot {
        &self.root
    }

    /// The simulator's CANN API, as the host uses it.
    pub fn cann(&self) -> &Cann {
        &self.cann
    }

    /// The simulator's CANN API as a bare table (the same library the host
    /// loaded), for the measurements that call it directly.
    pub fn sim_api(&self) -> &'static Api {
        self.sim
    }

    /// Opens [`SIM_DEVICE`]; holding the handle keeps the device process
    /// running between runners, so no measurement pays for starting it.
    pub fn open_device(&self) -> Result<Device, simpler_host::Error> {
        self.cann.open_device(SIM_DEVICE)
    }

    /// A runner builder on [`SIM_DEVICE`] with the artifacts' dispatcher
    /// and runtime SOs.
    pub fn builder(&self) -> DeviceRunnerBuilder {
        DeviceRunner::builder(&self.cann)
            .device(SIM_DEVICE)
            .dispatcher_path(self.artifacts.dispatcher())
            .runtime_path(self.artifacts.runtime())
    }

    /// The runtime SO's bytes.
    pub fn runtime_bytes(&self) -> Vec<u8> {
        read(self.artifacts.runtime())
    }

    /// The minimal runtime SO's bytes (`csrc/min_runtime.c`).
    pub fn min_runtime_bytes(&self) -> Vec<u8> {
        min_runtime_bytes()
    }
}

/// The minimal runtime SO's bytes (`csrc/min_runtime.c`, built by
/// build.rs): the base of the cold-bootstrap curve.
pub fn min_runtime_bytes() -> Vec<u8> {
    read(PathBuf::from(env!("BENCH_MIN_RUNTIME")))
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
