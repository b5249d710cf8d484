//! Support for the host crate's end-to-end tests on the simulator.
//!
//! The simulator reads its configuration from the environment when the
//! process first loads it, so every test body runs in a child process of
//! the test binary with its own `SIMPLER_SIM_ROOT` (and any extra
//! variables): [`in_sim`].

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;

use simpler_host::abi::SimStats;
use simpler_host::{Cann, CannSource, DeviceRunner, DeviceRunnerBuilder};
use simpler_testkit::{device_artifacts, host_artifacts, in_child, is_child, SimRoot};

/// Runs `body` in a child process with a fresh simulator root and `envs`;
/// in the parent, checks that the child ran exactly this test and passed.
pub fn in_sim(name: &str, envs: &[(&str, &str)], body: impl FnOnce()) {
    if is_child() {
        body();
        return;
    }
    let root = SimRoot::new();
    let artifacts = host_artifacts();
    let mut all: Vec<(String, String)> = vec![
        ("SIMPLER_SIM_ROOT".into(), root.path().display().to_string()),
        (
            "SIMPLER_ARTIFACTS_DIR".into(),
            artifacts.dir().display().to_string(),
        ),
    ];
    if std::env::var_os("SIMPLER_DEVICE_ARTIFACTS_DIR").is_none() {
        all.push((
            "SIMPLER_DEVICE_ARTIFACTS_DIR".into(),
            device_artifacts().dir().display().to_string(),
        ));
    }
    all.extend(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let out = in_child(name, all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// The simulator root of this (child) process.
pub fn sim_root() -> PathBuf {
    std::env::var_os("SIMPLER_SIM_ROOT")
        .expect("running inside in_sim")
        .into()
}

/// `<root>/device<N>/preinstall`.
pub fn preinstall_dir(device: i32) -> PathBuf {
    sim_root()
        .join(format!("device{device}"))
        .join("preinstall")
}

/// The preinstalled runtime SOs on `device`, sorted.
pub fn preinstalled(device: i32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(preinstall_dir(device))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("simpler_inner_"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The simulator, loaded from the artifacts directory.
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
