//! The simulator's accounting record, filled by the sim-only export
//! `simpler_sim_get_stats`. Never needed on hardware; the host treats the
//! export as an optional extra.

use bytemuck::{Pod, Zeroable};

use crate::assert_offsets;

/// Name of the sim-only export
/// `int32_t simpler_sim_get_stats(int32_t device, SimStats *out)`:
/// 0 on success, 107000 for a null `out` or a device id out of range.
pub const SIM_GET_STATS_SYMBOL: &str = "simpler_sim_get_stats";
/// Name of the sim-only export `uint32_t simpler_sim_device_machine(void)`:
/// the ELF `e_machine` of the configured device process (62 = x86-64,
/// 183 = AArch64), 0 when it cannot be read.
pub const SIM_DEVICE_MACHINE_SYMBOL: &str = "simpler_sim_device_machine";

/// Per-device counters of one host process, cumulative over its lifetime
/// (they survive `aclrtResetDevice`, so restarts can be counted).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SimStats {
    /// `size_of::<SimStats>()` as the simulator knows it.
    pub size: u32,
    /// ELF `e_machine` of this device's process.
    pub device_machine: u32,
    /// Device bytes currently allocated by `aclrtMalloc`.
    pub live_bytes: u64,
    /// Highest `live_bytes` seen.
    pub peak_bytes: u64,
    /// Allocations currently live.
    pub live_allocations: u64,
    /// `rtAicpuKernelLaunchExWithArgs` calls with `KERNEL_TYPE_AICPU`.
    pub launches_aicpu: u64,
    /// `rtAicpuKernelLaunchExWithArgs` calls with `KERNEL_TYPE_AICPU_KFC`.
    pub launches_kfc: u64,
    /// Launches with any other kernel type (rejected).
    pub launches_other: u64,
    /// Calls of the dispatcher's `DynTileFwkBackendKernelServerInit`.
    pub kfc_calls: u64,
    /// Dispatcher SOs saved to the device's tmp (the one-shot latch: at
    /// most one per device process).
    pub dispatcher_saves: u64,
    /// `dlopen` calls made by the device process (dispatcher and runtime
    /// SOs; cached handles are not counted again).
    pub dlopens: u64,
    /// Device processes started after the first one (crash recovery).
    pub device_restarts: u64,
}

assert_offsets!(SimStats, size 88, {
    size: 0, device_machine: 4, live_bytes: 8, peak_bytes: 16, live_allocations: 24,
    launches_aicpu: 32, launches_kfc: 40, launches_other: 48, kfc_calls: 56,
    dispatcher_saves: 64, dlopens: 72, device_restarts: 80,
});
