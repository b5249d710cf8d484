//! Where a test finds the artifacts it runs: built on demand, or named by
//! the environment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use simpler_abi::artifacts::{files, host_triple, ARTIFACTS_DIR_ENV, DEVICE_ARTIFACTS_DIR_ENV};

/// The workspace root (two levels above this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit lies two levels below the workspace root")
        .to_path_buf()
}

/// A directory of build artifacts.
#[derive(Debug, Clone)]
pub struct Artifacts {
    dir: PathBuf,
}

impl Artifacts {
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `name` inside the directory; panics with a clear message if missing.
    pub fn file(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        assert!(
            path.exists(),
            "artifact {} is missing; run `cargo xtask build` (or set {ARTIFACTS_DIR_ENV})",
            path.display()
        );
        path
    }

    /// The dispatcher SO.
    pub fn dispatcher(&self) -> PathBuf {
        self.file(files::DISPATCHER)
    }

    /// The runtime SO.
    pub fn runtime(&self) -> PathBuf {
        self.file(files::RUNTIME)
    }

    /// The simulator library.
    pub fn sim_lib(&self) -> PathBuf {
        self.file(files::SIM_LIB)
    }

    /// The simulator's device process binary.
    pub fn sim_device_bin(&self) -> PathBuf {
        self.file(files::SIM_DEVICE_BIN)
    }
}

/// Host-triple artifacts, built once per test process unless
/// `SIMPLER_ARTIFACTS_DIR` is set.
pub fn host_artifacts() -> &'static Artifacts {
    static HOST: OnceLock<Artifacts> = OnceLock::new();
    HOST.get_or_init(|| {
        let root = workspace_root();
        if let Some(dir) = std::env::var_os(ARTIFACTS_DIR_ENV) {
            // Relative to the workspace, not to the test's working directory
            // (cargo runs each crate's tests in that crate's directory).
            return Artifacts {
                dir: root.join(dir),
            };
        }
        let status = Command::new(env!("CARGO"))
            .args([
                "run",
                "--quiet",
                "--package",
                "xtask",
                "--",
                "build",
                "--target",
                "host",
            ])
            .current_dir(&root)
            .status()
            .expect("failed to run `cargo xtask build --target host`");
        assert!(status.success(), "`cargo xtask build --target host` failed");
        Artifacts {
            dir: root.join("target/artifacts").join(host_triple()),
        }
    })
}

/// Device-side artifacts: `SIMPLER_DEVICE_ARTIFACTS_DIR` when set (the
/// aarch64 run under qemu), else the host's.
pub fn device_artifacts() -> &'static Artifacts {
    static DEVICE: OnceLock<Artifacts> = OnceLock::new();
    DEVICE.get_or_init(|| match std::env::var_os(DEVICE_ARTIFACTS_DIR_ENV) {
        Some(dir) => Artifacts {
            dir: workspace_root().join(dir),
        },
        None => host_artifacts().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"), "{manifest}");
    }
}
