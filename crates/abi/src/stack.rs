//! The CANN stack the bootstrap needs: the oldest toolkit and driver whose
//! `libaicpu_extend_kernels` serves the KFC launch (older ones fail it with
//! 507018), and the variable naming the driver's directory for
//! `simpler doctor`. See `docs/design.md` §2.

/// Oldest CANN toolkit version the bootstrap works with.
pub const MIN_CANN_VERSION: &str = "8.5.0";
/// Oldest NPU driver version the bootstrap works with.
pub const MIN_DRIVER_VERSION: &str = "25.2.0";

/// Environment variable naming the NPU driver's directory (the one holding
/// its `version.info`), read by `simpler doctor` instead of the directory
/// `/etc/ascend_install.info` names.
pub const DRIVER_DIR_ENV: &str = "SIMPLER_DRIVER_DIR";
