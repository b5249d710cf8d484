//! Simulator roots: a private one per test, the one a child was given,
//! and the files of its devices.

use std::path::{Path, PathBuf};

use simpler_abi::artifacts::{ARTIFACTS_DIR_ENV, DEVICE_ARTIFACTS_DIR_ENV};
use simpler_abi::names::PREINSTALL_PREFIX;
use simpler_abi::sim::env;
use simpler_sim_protocol::layout;

use crate::artifacts::{device_artifacts, host_artifacts};
use crate::child::{is_child, run_child};

/// A private simulator root (`SIMPLER_SIM_ROOT`), removed on drop.
#[derive(Debug)]
pub struct SimRoot {
    dir: tempfile::TempDir,
}

impl SimRoot {
    /// A fresh, empty root under the system temp directory.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("simpler-sim-")
            .tempdir()
            .expect("create a simulator root");
        Self { dir }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<root>/device<N>/preinstall` ([`layout::preinstall_dir`]).
    pub fn preinstall(&self, device: u32) -> PathBuf {
        layout::preinstall_dir(self.path(), device)
    }
}

impl Default for SimRoot {
    fn default() -> Self {
        Self::new()
    }
}

/// The variables every child on the simulator needs besides its own: its
/// simulator root and the artifacts directories, so that children neither
/// build nor search.
pub fn child_env(root: &Path) -> Vec<(String, String)> {
    vec![
        (env::ROOT.into(), root.display().to_string()),
        (
            ARTIFACTS_DIR_ENV.into(),
            host_artifacts().dir().display().to_string(),
        ),
        (
            DEVICE_ARTIFACTS_DIR_ENV.into(),
            device_artifacts().dir().display().to_string(),
        ),
    ]
}

/// Runs `body` in a child process of the test `name` (see
/// [`crate::in_child`]) with a fresh simulator root, the artifacts
/// ([`child_env`]) and `envs`; in the parent, checks that the child ran
/// exactly this test and passed. The simulator reads its configuration
/// when the process first loads it, hence a process per configuration.
pub fn in_sim(name: &str, envs: &[(&str, &str)], body: impl FnOnce()) {
    if is_child() {
        body();
        return;
    }
    let root = SimRoot::new();
    let mut all = child_env(root.path());
    all.extend(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    run_child(name, all);
}

/// The simulator root of this (child) process.
pub fn sim_root() -> PathBuf {
    std::env::var_os(env::ROOT)
        .unwrap_or_else(|| panic!("a child process gets {} from its parent", env::ROOT))
        .into()
}

/// `<root>/device<N>/preinstall` ([`layout::preinstall_dir`]) for a CANN
/// device id.
pub fn preinstall_dir(root: &Path, device: i32) -> PathBuf {
    let device = u32::try_from(device).expect("a device id is not negative");
    layout::preinstall_dir(root, device)
}

/// The preinstalled runtime SOs (`simpler_inner_*`) of `device` under
/// `root`, sorted; none if the directory is missing.
pub fn preinstalled(root: &Path, device: i32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(preinstall_dir(root, device))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(PREINSTALL_PREFIX))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preinstalled_lists_runtime_sos_only_sorted() {
        let root = SimRoot::new();
        assert!(preinstalled(root.path(), 0).is_empty(), "no directory yet");
        let dir = preinstall_dir(root.path(), 0);
        assert_eq!(dir, root.preinstall(0));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["simpler_inner_b.so", "notes.txt", "simpler_inner_a.so"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        assert_eq!(
            preinstalled(root.path(), 0),
            ["simpler_inner_a.so", "simpler_inner_b.so"]
        );
    }
}
