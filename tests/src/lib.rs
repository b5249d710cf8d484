//! Shared support for simpler's end-to-end tests.
//!
//! - [`host_artifacts`] / [`device_artifacts`]: the SOs and simulator pieces
//!   `cargo xtask build` puts in `target/artifacts/<triple>/`. Unless
//!   `SIMPLER_ARTIFACTS_DIR` names a ready directory (as `cargo xtask test`
//!   does), the first call in a test process runs
//!   `cargo xtask build --target host`, so a plain `cargo test` works and
//!   always tests the current sources.
//! - [`SimRoot`]: a private `SIMPLER_SIM_ROOT` removed on drop.
//! - [`in_child`]: the simulator reads its configuration from the process
//!   environment, so a test that needs its own configuration re-runs itself
//!   in a child process with that environment.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Environment variable naming a directory of ready host-triple artifacts.
pub const ARTIFACTS_DIR_ENV: &str = "SIMPLER_ARTIFACTS_DIR";
/// Environment variable naming a directory of ready device-side artifacts
/// (for example the aarch64 ones run under qemu); defaults to the host's.
pub const DEVICE_ARTIFACTS_DIR_ENV: &str = "SIMPLER_DEVICE_ARTIFACTS_DIR";
/// Set in a child started by [`in_child`].
pub const CHILD_ENV: &str = "SIMPLER_TESTKIT_CHILD";

/// File names inside an artifacts directory.
pub mod files {
    /// The dispatcher SO.
    pub const DISPATCHER: &str = "libsimpler_aicpu_dispatcher.so";
    /// The runtime SO.
    pub const RUNTIME: &str = "libsimpler_aicpu.so";
    /// The simulator's ACL/RT library.
    pub const SIM_LIB: &str = "libsimpler_cann_sim.so";
    /// The simulator's emulated AICPU OS process.
    pub const SIM_DEVICE_BIN: &str = "simpler-sim-aicpu";
    /// The build manifest.
    pub const MANIFEST: &str = "manifest.json";
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The Rust target triple of the machine running the tests.
pub fn host_triple() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "x86_64-unknown-linux-gnu"
    } else if cfg!(target_arch = "aarch64") {
        "aarch64-unknown-linux-gnu"
    } else {
        panic!("simpler supports x86_64 and aarch64 Linux hosts only")
    }
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

    /// `<root>/device<N>/preinstall`, the layout documented in
    /// `docs/simulator.md`.
    pub fn preinstall(&self, device: u32) -> PathBuf {
        self.path()
            .join(format!("device{device}"))
            .join("preinstall")
    }
}

impl Default for SimRoot {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether this process is a child started by [`in_child`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Re-runs the test `name` (its full path as libtest prints it, e.g.
/// `errors::bad_kind`) alone in a child process of the current test binary
/// with `envs` added, and returns the child's output. The child gets
/// `SIMPLER_ARTIFACTS_DIR` naming [`host_artifacts`], unless `envs` sets it.
///
/// The test body should branch on [`is_child`]: the child does the work, the
/// parent checks the output.
pub fn in_child<K, V>(name: &str, envs: impl IntoIterator<Item = (K, V)>) -> Output
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let exe = std::env::current_exe().expect("current test binary");
    // Resolved (and built if need be) here, once per test process: a child
    // must not build, both for speed and because some children restrict
    // themselves first (an RLIMIT_FSIZE, say) in ways a build cannot survive.
    let artifacts = host_artifacts().dir().to_path_buf();
    Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env(ARTIFACTS_DIR_ENV, artifacts)
        .envs(envs)
        .output()
        .expect("spawn the test binary as a child")
}
