//! The C side, as CANN's headers declare it: the function types of every
//! call simpler makes and the symbol each is exported under.
//!
//! These types are the one Rust statement of the API. The host resolves its
//! table with them, the simulator's exports are checked against them at
//! compile time (`const _: sys::Malloc = aclrtMalloc;`), and benches and
//! tests call through the same table.
//!
//! Signatures follow CANN 8.x/9.x (`acl/acl_rt.h`, `runtime/rt.h` and the
//! open-source `hicann/runtime`); `docs/design.md` lists them with the
//! argument conventions simpler relies on.

use std::ffi::{c_char, c_void, CStr};

use simpler_abi::rts::{CpuKernelArgs, KernelLaunchCfg, LoadBinaryConfig};
use simpler_abi::{AicpuArgsEx, SimStats};

/// `aclError` / `rtError_t`: 0 is success, anything else a CANN code.
pub type AclError = i32;

/// `aclrtStream`: an opaque handle.
pub type AclrtStream = *mut c_void;

/// `aclError aclInit(const char *configPath)`.
pub type AclInit = unsafe extern "C" fn(config_path: *const c_char) -> AclError;
/// `aclError aclrtGetDeviceCount(uint32_t *count)`.
pub type GetDeviceCount = unsafe extern "C" fn(count: *mut u32) -> AclError;
/// `aclError aclrtSetDevice(int32_t deviceId)`.
pub type SetDevice = unsafe extern "C" fn(device: i32) -> AclError;
/// `aclError aclrtResetDevice(int32_t deviceId)`.
pub type ResetDevice = unsafe extern "C" fn(device: i32) -> AclError;
/// `aclError aclrtCreateStream(aclrtStream *stream)`.
pub type CreateStream = unsafe extern "C" fn(stream: *mut AclrtStream) -> AclError;
/// `aclError aclrtDestroyStream(aclrtStream stream)`.
pub type DestroyStream = unsafe extern "C" fn(stream: AclrtStream) -> AclError;
/// `aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout)`;
/// a timeout of -1 waits without limit.
pub type SyncStream = unsafe extern "C" fn(stream: AclrtStream, timeout_ms: i32) -> AclError;
/// `aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy)`.
pub type Malloc =
    unsafe extern "C" fn(dev_ptr: *mut *mut c_void, size: usize, policy: u32) -> AclError;
/// `aclError aclrtFree(void *devPtr)`.
pub type Free = unsafe extern "C" fn(dev_ptr: *mut c_void) -> AclError;
/// `aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind)`.
pub type Memcpy = unsafe extern "C" fn(
    dst: *mut c_void,
    dest_max: usize,
    src: *const c_void,
    count: usize,
    kind: u32,
) -> AclError;
/// `const char *aclGetRecentErrMsg(void)`: this thread's last message, or null.
pub type RecentErrMsg = unsafe extern "C" fn() -> *const c_char;
/// `rtError_t rtAicpuKernelLaunchExWithArgs(uint32_t kernelType, const char *opName,
/// uint32_t blockDim, const rtAicpuArgsEx_t *argsInfo, rtSmDesc_t *smDesc,
/// rtStream_t stm, uint32_t flags)`.
pub type Launch = unsafe extern "C" fn(
    kernel_type: u32,
    op_name: *const c_char,
    block_dim: u32,
    args_info: *const AicpuArgsEx,
    sm_desc: *mut c_void,
    stream: AclrtStream,
    flags: u32,
) -> AclError;
/// The simulator's `int32_t simpler_sim_get_stats(int32_t device, SimStats *out)`.
pub type SimGetStats = unsafe extern "C" fn(device: i32, out: *mut SimStats) -> i32;
/// The simulator's `uint32_t simpler_sim_device_machine(void)`.
pub type SimDeviceMachine = unsafe extern "C" fn() -> u32;
/// `aclError aclFinalize(void)`.
pub type Finalize = unsafe extern "C" fn() -> AclError;
/// `aclError aclrtSynchronizeStream(aclrtStream stream)`: waits without limit.
pub type SyncStreamNoTimeout = unsafe extern "C" fn(stream: AclrtStream) -> AclError;
/// `rtBinHandle`: an opaque handle of a loaded binary (op descriptor).
pub type RtBinHandle = *mut c_void;
/// `rtFuncHandle`: an opaque handle of one kernel of a loaded binary.
pub type RtFuncHandle = *mut c_void;
/// `rtError_t rtsBinaryLoadFromFile(const char *binPath, const
/// rtLoadBinaryConfig_t *optionalCfg, rtBinHandle *handle)`.
pub type BinaryLoadFromFile = unsafe extern "C" fn(
    bin_path: *const c_char,
    optional_cfg: *const LoadBinaryConfig,
    handle: *mut RtBinHandle,
) -> AclError;
/// `rtError_t rtsBinaryUnload(const rtBinHandle binHandle)`.
pub type BinaryUnload = unsafe extern "C" fn(bin_handle: RtBinHandle) -> AclError;
/// `rtError_t rtsFuncGetByName(const rtBinHandle binHandle, const char
/// *kernelName, rtFuncHandle *funcHandle)`; for CPU kernels `kernelName` is
/// the op type (the descriptor's member name).
pub type FuncGetByName = unsafe extern "C" fn(
    bin_handle: RtBinHandle,
    kernel_name: *const c_char,
    func_handle: *mut RtFuncHandle,
) -> AclError;
/// `rtError_t rtsLaunchCpuKernel(const rtFuncHandle funcHandle, uint32_t
/// numBlocks, rtStream_t stm, const rtKernelLaunchCfg_t *cfg,
/// rtCpuKernelArgs_t *argsInfo)`.
pub type LaunchCpuKernel = unsafe extern "C" fn(
    func_handle: RtFuncHandle,
    num_blocks: u32,
    stream: AclrtStream,
    cfg: *const KernelLaunchCfg,
    args_info: *mut CpuKernelArgs,
) -> AclError;
/// The simulator's `int32_t simpler_sim_ping(uint32_t count)`: `count`
/// round trips over the control channel of the calling thread's current
/// device.
pub type SimPing = unsafe extern "C" fn(count: u32) -> i32;

/// The exported name of each function.
pub mod symbols {
    use super::CStr;

    /// [`super::AclInit`].
    pub const ACL_INIT: &CStr = c"aclInit";
    /// [`super::GetDeviceCount`].
    pub const GET_DEVICE_COUNT: &CStr = c"aclrtGetDeviceCount";
    /// [`super::SetDevice`].
    pub const SET_DEVICE: &CStr = c"aclrtSetDevice";
    /// [`super::ResetDevice`].
    pub const RESET_DEVICE: &CStr = c"aclrtResetDevice";
    /// [`super::CreateStream`].
    pub const CREATE_STREAM: &CStr = c"aclrtCreateStream";
    /// [`super::DestroyStream`].
    pub const DESTROY_STREAM: &CStr = c"aclrtDestroyStream";
    /// [`super::SyncStream`].
    pub const SYNC_STREAM: &CStr = c"aclrtSynchronizeStreamWithTimeout";
    /// [`super::Malloc`].
    pub const MALLOC: &CStr = c"aclrtMalloc";
    /// [`super::Free`].
    pub const FREE: &CStr = c"aclrtFree";
    /// [`super::Memcpy`].
    pub const MEMCPY: &CStr = c"aclrtMemcpy";
    /// [`super::RecentErrMsg`].
    pub const RECENT_ERR_MSG: &CStr = c"aclGetRecentErrMsg";
    /// [`super::Launch`].
    pub const LAUNCH: &CStr = c"rtAicpuKernelLaunchExWithArgs";
    /// [`super::SimGetStats`] (simulator only).
    pub const SIM_GET_STATS: &CStr = simpler_abi::sim::SIM_GET_STATS_SYMBOL_C;
    /// [`super::SimDeviceMachine`] (simulator only).
    pub const SIM_DEVICE_MACHINE: &CStr = simpler_abi::sim::SIM_DEVICE_MACHINE_SYMBOL_C;
    /// [`super::Finalize`].
    pub const FINALIZE: &CStr = c"aclFinalize";
    /// [`super::SyncStreamNoTimeout`].
    pub const SYNC_STREAM_NO_TIMEOUT: &CStr = c"aclrtSynchronizeStream";
    /// [`super::BinaryLoadFromFile`].
    pub const BINARY_LOAD_FROM_FILE: &CStr = c"rtsBinaryLoadFromFile";
    /// [`super::BinaryUnload`].
    pub const BINARY_UNLOAD: &CStr = c"rtsBinaryUnload";
    /// [`super::FuncGetByName`].
    pub const FUNC_GET_BY_NAME: &CStr = c"rtsFuncGetByName";
    /// [`super::LaunchCpuKernel`].
    pub const LAUNCH_CPU_KERNEL: &CStr = c"rtsLaunchCpuKernel";
    /// [`super::SimPing`] (simulator only).
    pub const SIM_PING: &CStr = simpler_abi::sim::SIM_PING_SYMBOL_C;
}
