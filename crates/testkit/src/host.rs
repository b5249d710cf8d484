//! The simulator through `simpler-host` (feature `host`).

use simpler_abi::SimStats;
use simpler_host::{Cann, CannSource, DeviceRunner, DeviceRunnerBuilder, Machine, SoInfo};

use crate::artifacts::{device_artifacts, host_artifacts};

/// The simulator library from the artifacts directory.
pub fn cann() -> Cann {
    Cann::load(&CannSource::Libraries(vec![host_artifacts().sim_lib()]))
        .expect("load the simulator")
}

/// A builder with the device artifacts named explicitly.
pub fn builder(cann: &Cann) -> DeviceRunnerBuilder {
    DeviceRunner::builder(cann)
        .dispatcher_path(device_artifacts().dispatcher())
        .runtime_path(device_artifacts().runtime())
}

/// The simulator's accounting for `device`.
pub fn stats(cann: &Cann, device: i32) -> SimStats {
    cann.sim_stats(device)
        .expect("simpler_sim_get_stats")
        .expect("the simulator exports its accounting")
}

/// The machine of the device artifacts (the simulator's device process
/// runs that code): the host's, or aarch64 in the qemu stage.
pub fn device_machine() -> Machine {
    let runtime = device_artifacts().runtime();
    let bytes = std::fs::read(&runtime).unwrap_or_else(|e| panic!("{}: {e}", runtime.display()));
    SoInfo::parse(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", runtime.display()))
        .machine
}
