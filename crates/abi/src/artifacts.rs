//! What `cargo xtask build` writes and everything else looks for: the
//! artifacts directory's file names, the environment variables naming
//! ready directories, and the target triples.

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

/// Environment variable naming the host triple's artifacts directory.
pub const ARTIFACTS_DIR_ENV: &str = "SIMPLER_ARTIFACTS_DIR";
/// Environment variable naming a directory of device-side SOs (for example
/// aarch64 ones run under qemu), searched first for them.
pub const DEVICE_ARTIFACTS_DIR_ENV: &str = "SIMPLER_DEVICE_ARTIFACTS_DIR";

/// The triple of an x86-64 Linux machine.
pub const TRIPLE_X86_64: &str = "x86_64-unknown-linux-gnu";
/// The triple of an AArch64 Linux machine (every Ascend AICPU).
pub const TRIPLE_AARCH64: &str = "aarch64-unknown-linux-gnu";

/// The triple of the machine this code was compiled for.
pub const fn host_triple() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        TRIPLE_AARCH64
    } else {
        TRIPLE_X86_64
    }
}
