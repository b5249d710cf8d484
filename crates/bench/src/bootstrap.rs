//! Cold bootstraps of a 1 MiB runtime SO, the in-process floor of the same
//! work, and warm runner creation.
//!
//! The runtime SO is the real one with bytes appended up to 1 MiB (data
//! past the last section is ignored by the loader, so it stays loadable).
//! Each cold iteration appends different bytes: a new fingerprint, so the
//! host's bootstrap cache misses and the device installs and loads a new
//! file, as a process bootstrapping a new runtime does.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use simpler_abi::PreinstallName;
use simpler_host::{CacheStatus, DeviceRunner, DeviceRunnerBuilder};

/// Size of the padded runtime SO.
pub const RUNTIME_SIZE: usize = 1 << 20;

/// `runtime` padded to [`RUNTIME_SIZE`] bytes with a pattern derived from
/// `seed`, so that every seed gives a different fingerprint.
pub fn padded(runtime: &[u8], seed: u64) -> Vec<u8> {
    assert!(
        runtime.len() + 8 <= RUNTIME_SIZE,
        "the runtime SO ({} B) does not fit {RUNTIME_SIZE} B with padding",
        runtime.len()
    );
    let mut bytes = Vec::with_capacity(RUNTIME_SIZE);
    bytes.extend_from_slice(runtime);
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while bytes.len() < RUNTIME_SIZE {
        // xorshift64: cheap bytes that do not compress to a pattern.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let take = (RUNTIME_SIZE - bytes.len()).min(8);
        bytes.extend_from_slice(&state.to_le_bytes()[..take]);
    }
    bytes
}

/// One runner build and what it reported.
#[derive(Clone, Copy, Debug)]
pub struct Build {
    /// Wall time of `build()`.
    pub total: Duration,
    /// Of which the bootstrap (or the cache lookup).
    pub bootstrap: Duration,
    /// Of which the `simpler_aicpu_init` launch.
    pub init: Duration,
}

/// Builds a runner from `builder` (its runtime SO set), checks that the
/// bootstrap cache did what `expect` says, and returns it with its timings.
pub fn build(builder: DeviceRunnerBuilder, expect: CacheStatus) -> (DeviceRunner, Build) {
    let started = Instant::now();
    let runner = builder
        .build()
        .unwrap_or_else(|e| panic!("building a runner failed: {e}"));
    let total = started.elapsed();
    let info = runner.info();
    assert_eq!(
        info.cache, expect,
        "the bootstrap cache did not do what the measurement needs"
    );
    let timings = Build {
        total,
        bootstrap: info.bootstrap_time,
        init: info.init_time,
    };
    (runner, timings)
}

/// A cold build: `runtime` is new to the device.
pub fn cold(builder: DeviceRunnerBuilder, runtime: Vec<u8>) -> (DeviceRunner, Build) {
    build(builder.runtime_bytes(runtime), CacheStatus::Miss)
}

/// Removes the installed file of `runner` from the simulated device's
/// filesystem (`preinstall` under the simulator root), so that a long run
/// does not fill the disk. Untimed.
pub fn remove_installed(preinstall: &Path, runner: &DeviceRunner) {
    let path = preinstall.join(runner.info().preinstall_name.as_str());
    // The device process keeps its mapping; the file is no longer needed.
    if let Err(e) = fs::remove_file(&path) {
        panic!("cannot remove {}: {e}", path.display());
    }
}

/// The floor of a cold bootstrap, in this process: what installing `bytes`
/// cannot avoid — hash them once (the file name), copy them once (to the
/// device), write a temp file in `dir`, make it 0755, rename it onto its
/// name, and `dlopen` it. Returns the time and removes the file after.
pub fn floor(dir: &Path, bytes: &[u8]) -> Duration {
    let started = Instant::now();
    let name = PreinstallName::of(bytes);
    let copy = bytes.to_vec();
    let target = dir.join(name.as_str());
    let temp: PathBuf = dir.join(format!(".{name}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", temp.display()));
    file.write_all(&copy)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", temp.display()));
    file.set_permissions(fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", temp.display()));
    drop(file);
    fs::rename(&temp, &target)
        .unwrap_or_else(|e| panic!("cannot rename onto {}: {e}", target.display()));
    let lib = crate::sys::dlopen_runtime(&target)
        .unwrap_or_else(|e| panic!("cannot dlopen {}: {e}", target.display()));
    let elapsed = started.elapsed();
    drop(lib);
    drop(copy);
    fs::remove_file(&target).unwrap_or_else(|e| panic!("cannot remove {}: {e}", target.display()));
    elapsed
}

/// A warm runner creation from a builder whose runtime SO is installed
/// already, so `build()` finds it in the cache. The runner is dropped
/// untimed.
pub fn warm(builder: DeviceRunnerBuilder) -> Build {
    build(builder, CacheStatus::Hit).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_keeps_the_prefix_and_varies_with_the_seed() {
        let so = b"\x7fELF-not-really";
        let (a, b) = (padded(so, 1), padded(so, 2));
        assert_eq!((a.len(), b.len()), (RUNTIME_SIZE, RUNTIME_SIZE));
        assert_eq!(&a[..so.len()], so);
        assert_ne!(PreinstallName::of(&a), PreinstallName::of(&b));
        assert_eq!(a, padded(so, 1));
    }
}
