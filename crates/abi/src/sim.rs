//! The simulator's accounting record, filled by the sim-only export
//! `simpler_sim_get_stats`. Never needed on hardware; the host treats the
//! export as an optional extra.

use core::ffi::CStr;

use bytemuck::{Pod, Zeroable};

use crate::assert_offsets;

/// Name of the sim-only export
/// `int32_t simpler_sim_get_stats(int32_t device, SimStats *out)`:
/// 0 on success, 107000 for a null `out` or a device id out of range.
pub const SIM_GET_STATS_SYMBOL_C: &CStr = c"simpler_sim_get_stats";
/// [`SIM_GET_STATS_SYMBOL_C`] as text.
pub const SIM_GET_STATS_SYMBOL: &str = crate::names::text(SIM_GET_STATS_SYMBOL_C);
/// Name of the sim-only export `uint32_t simpler_sim_device_machine(void)`:
/// the ELF `e_machine` of the configured device process (62 = x86-64,
/// 183 = AArch64), 0 when it cannot be read.
pub const SIM_DEVICE_MACHINE_SYMBOL_C: &CStr = c"simpler_sim_device_machine";
/// [`SIM_DEVICE_MACHINE_SYMBOL_C`] as text.
pub const SIM_DEVICE_MACHINE_SYMBOL: &str = crate::names::text(SIM_DEVICE_MACHINE_SYMBOL_C);
/// Name of the sim-only export `int32_t simpler_sim_ping(uint32_t count)`:
/// `count` round trips over the control channel of the calling thread's
/// current device, answered by the device process; 0 on success.
pub const SIM_PING_SYMBOL_C: &CStr = c"simpler_sim_ping";
/// [`SIM_PING_SYMBOL_C`] as text.
pub const SIM_PING_SYMBOL: &str = crate::names::text(SIM_PING_SYMBOL_C);

/// The simulator's environment variables, all documented in
/// `docs/simulator.md`; read by the simulator, listed by `simpler doctor`.
pub mod env {
    /// Root of the per-device filesystems.
    pub const ROOT: &str = "SIMPLER_SIM_ROOT";
    /// Number of simulated devices.
    pub const DEVICE_COUNT: &str = "SIMPLER_SIM_DEVICE_COUNT";
    /// AICPU worker threads per device process.
    pub const AICPU_THREADS: &str = "SIMPLER_SIM_AICPU_THREADS";
    /// Device memory per device, in bytes.
    pub const DEVICE_MEM: &str = "SIMPLER_SIM_DEVICE_MEM";
    /// Default op timeout in milliseconds.
    pub const OP_TIMEOUT_MS: &str = "SIMPLER_SIM_OP_TIMEOUT_MS";
    /// Path of the device process binary.
    pub const AICPU_BIN: &str = "SIMPLER_SIM_AICPU_BIN";
    /// Command prefix for the device process (split on whitespace).
    pub const AICPU_LAUNCHER: &str = "SIMPLER_SIM_AICPU_LAUNCHER";
    /// Fail the Nth `aclrtMalloc`.
    pub const FAIL_MALLOC: &str = "SIMPLER_SIM_FAIL_MALLOC";
    /// Fail the Nth `aclrtMemcpy`.
    pub const FAIL_MEMCPY: &str = "SIMPLER_SIM_FAIL_MEMCPY";
    /// Fail the Nth launch.
    pub const FAIL_LAUNCH: &str = "SIMPLER_SIM_FAIL_LAUNCH";
    /// Fail the Nth stream sync.
    pub const FAIL_SYNC: &str = "SIMPLER_SIM_FAIL_SYNC";
    /// Make the dispatcher's file write fail (`1`).
    pub const FAIL_DISPATCHER_WRITE: &str = "SIMPLER_SIM_FAIL_DISPATCHER_WRITE";
    /// Kill the device process at the Nth launch.
    pub const KILL_AT_LAUNCH: &str = "SIMPLER_SIM_KILL_AT_LAUNCH";
    /// Kill the device process once a temp file the dispatcher is writing
    /// in the preinstall directory has reached this many bytes.
    pub const KILL_DURING_WRITE: &str = "SIMPLER_SIM_KILL_DURING_WRITE";
    /// Emulate a CANN older than the KFC path needs (`1`): the KFC launch
    /// fails because `libaicpu_extend_kernels` lacks its entry.
    pub const OLD_CANN: &str = "SIMPLER_SIM_OLD_CANN";
    /// Emulate task-scheduler firmware without the AICPU KFC feature (`1`):
    /// the KFC launch call itself is refused.
    pub const NO_KFC_FIRMWARE: &str = "SIMPLER_SIM_NO_KFC_FIRMWARE";
    /// Fault: the N-th `rtsBinaryLoadFromFile` call (1-based, per host
    /// process) fails with 507000.
    pub const FAIL_BINARY_LOAD: &str = "SIMPLER_SIM_FAIL_BINARY_LOAD";
    /// Fault: the N-th `rtsFuncGetByName` call (1-based, per host process)
    /// fails with 507000.
    pub const FAIL_FUNC_GET: &str = "SIMPLER_SIM_FAIL_FUNC_GET";
    /// Microseconds a waiting thread (the host's wait for a reply, an AICPU
    /// worker that just finished work) spins, yielding, before it blocks;
    /// 0 blocks at once. Unset: 50 when the process may use more than one
    /// CPU, else 0.
    pub const SPIN_US: &str = "SIMPLER_SIM_SPIN_US";
    /// Every variable above.
    pub const ALL: [&str; 19] = [
        ROOT,
        DEVICE_COUNT,
        AICPU_THREADS,
        DEVICE_MEM,
        OP_TIMEOUT_MS,
        AICPU_BIN,
        AICPU_LAUNCHER,
        FAIL_MALLOC,
        FAIL_MEMCPY,
        FAIL_LAUNCH,
        FAIL_SYNC,
        FAIL_DISPATCHER_WRITE,
        KILL_AT_LAUNCH,
        KILL_DURING_WRITE,
        OLD_CANN,
        NO_KFC_FIRMWARE,
        FAIL_BINARY_LOAD,
        FAIL_FUNC_GET,
        SPIN_US,
    ];
}

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
    /// Binary handles (`rtsBinaryLoadFromFile`) live on this device.
    pub binaries_live: u64,
    /// Function handles (`rtsFuncGetByName`) live on this device; a
    /// binary's go when it is unloaded.
    pub functions_live: u64,
    /// Successful `rtsBinaryLoadFromFile` calls on this device (every
    /// registration, unloaded or not).
    pub binary_loads: u64,
    /// `rtsLaunchCpuKernel` calls that named a live function of this
    /// device, accepted or not.
    pub launches_cpu_kernel: u64,
}

assert_offsets!(SimStats, size 120, {
    size: 0, device_machine: 4, live_bytes: 8, peak_bytes: 16, live_allocations: 24,
    launches_aicpu: 32, launches_kfc: 40, launches_other: 48, kfc_calls: 56,
    dispatcher_saves: 64, dlopens: 72, device_restarts: 80,
    binaries_live: 88, functions_live: 96, binary_loads: 104, launches_cpu_kernel: 112,
});
