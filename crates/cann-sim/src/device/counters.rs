//! The accounting of one device for the whole host process.

use std::sync::atomic::AtomicU64;

/// Cumulative per-device counters of this host process; they outlive the
/// device processes (see `SimStats`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Launches of `KERNEL_TYPE_AICPU`.
    pub launches_aicpu: AtomicU64,
    /// Launches of `KERNEL_TYPE_AICPU_KFC`.
    pub launches_kfc: AtomicU64,
    /// Launches of any other kernel type.
    pub launches_other: AtomicU64,
    /// Calls of the dispatcher's init.
    pub kfc_calls: AtomicU64,
    /// Dispatcher SOs saved.
    pub dispatcher_saves: AtomicU64,
    /// `dlopen` calls in device processes.
    pub dlopens: AtomicU64,
    /// Device processes started.
    pub starts: AtomicU64,
    /// Highest live user bytes seen.
    pub peak_bytes: AtomicU64,
    /// Successful `rtsBinaryLoadFromFile` calls.
    pub binary_loads: AtomicU64,
    /// `rtsLaunchCpuKernel` calls naming a live function of this device.
    pub launches_cpu_kernel: AtomicU64,
}
