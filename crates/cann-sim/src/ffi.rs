//! The exported C functions: CANN's signatures, as `simpler-cann-sys`
//! declares them, plus the simulator-only extras. Each one checks its
//! pointers, turns those it may read or write into references and slices
//! (this is the only place that does), calls the safe code of `sim`, turns
//! the result into a code and never lets a panic cross into C.

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use simpler_abi::rts::{CpuKernelArgs, KernelLaunchCfg, LaunchKernelAttr, LoadBinaryConfig};
use simpler_abi::{AicpuArgsEx, SimStats};
use simpler_cann_sys::sys::{self as cann, symbols};

use crate::binary::LoadConfig;
use crate::error::{to_code, AclError, AclResult, ACL_ERROR_RT_INTERNAL_ERROR};
use crate::sim::{self, Block, CpuLaunch, LaunchArgs, Route};

/// `aclError`.
type AclErrorCode = cann::AclError;

// Every export has the type the one binding declares for its symbol.
const _: cann::AclInit = aclInit;
const _: cann::Finalize = aclFinalize;
const _: cann::GetDeviceCount = aclrtGetDeviceCount;
const _: cann::SetDevice = aclrtSetDevice;
const _: cann::ResetDevice = aclrtResetDevice;
const _: cann::CreateStream = aclrtCreateStream;
const _: cann::DestroyStream = aclrtDestroyStream;
const _: cann::SyncStreamNoTimeout = aclrtSynchronizeStream;
const _: cann::SyncStream = aclrtSynchronizeStreamWithTimeout;
const _: cann::Malloc = aclrtMalloc;
const _: cann::Free = aclrtFree;
const _: cann::Memcpy = aclrtMemcpy;
const _: cann::RecentErrMsg = aclGetRecentErrMsg;
const _: cann::Launch = rtAicpuKernelLaunchExWithArgs;
const _: cann::SimGetStats = simpler_sim_get_stats;
const _: cann::SimDeviceMachine = simpler_sim_device_machine;
const _: cann::SimPing = simpler_sim_ping;
const _: cann::BinaryLoadFromFile = rtsBinaryLoadFromFile;
const _: cann::BinaryUnload = rtsBinaryUnload;
const _: cann::FuncGetByName = rtsFuncGetByName;
const _: cann::LaunchCpuKernel = rtsLaunchCpuKernel;

fn guard(call: &CStr, f: impl FnOnce() -> AclResult<()>) -> AclErrorCode {
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(AclError::new(
            ACL_ERROR_RT_INTERNAL_ERROR,
            format!("simulator bug (panic): {what}"),
        ))
    });
    to_code(call.to_str().unwrap_or("?"), result)
}

fn non_null<T>(ptr: *const T, what: &str) -> AclResult<()> {
    if ptr.is_null() {
        Err(AclError::param(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

/// `aclError aclInit(const char *configPath)`; the file, when given, must
/// exist; its content is not used.
///
/// # Safety
/// `config_path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn aclInit(config_path: *const c_char) -> AclErrorCode {
    guard(symbols::ACL_INIT, || {
        if config_path.is_null() {
            return sim::init(None);
        }
        // SAFETY: the caller passes a NUL-terminated string.
        let path = unsafe { CStr::from_ptr(config_path) };
        let path = path
            .to_str()
            .map_err(|_| AclError::param("configPath is not UTF-8"))?;
        sim::init(if path.is_empty() {
            None
        } else {
            Some(Path::new(path))
        })
    })
}

/// `aclError aclFinalize(void)`.
#[no_mangle]
pub extern "C" fn aclFinalize() -> AclErrorCode {
    guard(symbols::FINALIZE, sim::finalize)
}

/// `aclError aclrtGetDeviceCount(uint32_t *count)`.
///
/// # Safety
/// `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn aclrtGetDeviceCount(count: *mut u32) -> AclErrorCode {
    guard(symbols::GET_DEVICE_COUNT, || {
        non_null(count, "count")?;
        let n = sim::device_count()?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { count.write(n) };
        Ok(())
    })
}

/// `aclError aclrtSetDevice(int32_t deviceId)`.
#[no_mangle]
pub extern "C" fn aclrtSetDevice(device_id: i32) -> AclErrorCode {
    guard(symbols::SET_DEVICE, || sim::set_device(device_id))
}

/// `aclError aclrtResetDevice(int32_t deviceId)`.
#[no_mangle]
pub extern "C" fn aclrtResetDevice(device_id: i32) -> AclErrorCode {
    guard(symbols::RESET_DEVICE, || sim::reset_device(device_id))
}

/// `aclError aclrtCreateStream(aclrtStream *stream)`.
///
/// # Safety
/// `stream` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn aclrtCreateStream(stream: *mut cann::AclrtStream) -> AclErrorCode {
    guard(symbols::CREATE_STREAM, || {
        non_null(stream, "stream")?;
        let handle = sim::create_stream()?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { stream.write(handle as cann::AclrtStream) };
        Ok(())
    })
}

/// `aclError aclrtDestroyStream(aclrtStream stream)`.
#[no_mangle]
pub extern "C" fn aclrtDestroyStream(stream: cann::AclrtStream) -> AclErrorCode {
    guard(symbols::DESTROY_STREAM, || {
        sim::destroy_stream(stream as u64)
    })
}

/// `aclError aclrtSynchronizeStream(aclrtStream stream)`: no timeout.
#[no_mangle]
pub extern "C" fn aclrtSynchronizeStream(stream: cann::AclrtStream) -> AclErrorCode {
    guard(symbols::SYNC_STREAM_NO_TIMEOUT, || {
        sim::synchronize(stream as u64, None)
    })
}

/// `aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t
/// timeout)`: `timeout` in ms, -1 waits forever.
#[no_mangle]
pub extern "C" fn aclrtSynchronizeStreamWithTimeout(
    stream: cann::AclrtStream,
    timeout: i32,
) -> AclErrorCode {
    guard(symbols::SYNC_STREAM, || {
        let timeout = match timeout {
            -1 => None,
            ms if ms > 0 => Some(Duration::from_millis(ms as u64)),
            other => {
                return Err(AclError::param(format!(
                    "timeout {other} ms: expected -1 (forever) or a positive number"
                )))
            }
        };
        sim::synchronize(stream as u64, timeout)
    })
}

/// `aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy
/// policy)`; every policy behaves the same.
///
/// # Safety
/// `dev_ptr` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn aclrtMalloc(
    dev_ptr: *mut *mut c_void,
    size: usize,
    _policy: u32,
) -> AclErrorCode {
    guard(symbols::MALLOC, || {
        non_null(dev_ptr, "devPtr")?;
        let addr = sim::malloc(size)?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { dev_ptr.write(addr as *mut c_void) };
        Ok(())
    })
}

/// `aclError aclrtFree(void *devPtr)`.
#[no_mangle]
pub extern "C" fn aclrtFree(dev_ptr: *mut c_void) -> AclErrorCode {
    guard(symbols::FREE, || sim::free(dev_ptr as u64))
}

/// `aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t
/// count, aclrtMemcpyKind kind)`. `sim` checks the arguments and says which
/// sides are host memory; only those become slices here.
///
/// # Safety
/// Host-side buffers must be valid for `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn aclrtMemcpy(
    dst: *mut c_void,
    dest_max: usize,
    src: *const c_void,
    count: usize,
    kind: u32,
) -> AclErrorCode {
    guard(symbols::MEMCPY, || {
        match sim::memcpy_route(dst as u64, dest_max, src as u64, count, kind)? {
            Route::HostToHost => {
                // SAFETY: both pointers are non-NULL host addresses (checked
                // by `memcpy_route`) that the caller guarantees for `count`
                // bytes; `ptr::copy` allows them to overlap.
                unsafe { std::ptr::copy(src.cast::<u8>(), dst.cast::<u8>(), count) };
                Ok(())
            }
            Route::ToDevice(device) => {
                // SAFETY: `src` is a non-NULL host address (checked) that the
                // caller guarantees readable for `count` bytes.
                let src = unsafe { std::slice::from_raw_parts(src.cast::<u8>(), count) };
                device.copy_in(dst as u64, src)
            }
            Route::FromDevice(device) => {
                // SAFETY: `dst` is a non-NULL host address (checked) that the
                // caller guarantees writable for `count` bytes, and no other
                // reference to it exists during the call.
                let dst = unsafe { std::slice::from_raw_parts_mut(dst.cast::<u8>(), count) };
                device.copy_out(dst, src as u64)
            }
            Route::OnDevice(device) => device.copy_within(dst as u64, src as u64, count),
        }
    })
}

/// `const char *aclGetRecentErrMsg(void)`: the calling thread's last
/// failure, or NULL when none of its calls failed.
#[no_mangle]
pub extern "C" fn aclGetRecentErrMsg() -> *const c_char {
    crate::error::recent_message()
}

/// `rtError_t rtAicpuKernelLaunchExWithArgs(uint32_t kernelType, const char
/// *opName, uint32_t blockDim, const rtAicpuArgsEx_t *argsInfo, rtSmDesc_t
/// *smDesc, rtStream_t stream, uint32_t flags)`. `opName`, `smDesc` and
/// `flags` are accepted and not used.
///
/// # Safety
/// `args_info` is NULL or points to an `rtAicpuArgsEx_t` whose `args` (when
/// copied) is readable for `argsSize` bytes.
#[no_mangle]
pub unsafe extern "C" fn rtAicpuKernelLaunchExWithArgs(
    kernel_type: u32,
    _op_name: *const c_char,
    block_dim: u32,
    args_info: *const AicpuArgsEx,
    _sm_desc: *mut c_void,
    stream: cann::AclrtStream,
    _flags: u32,
) -> AclErrorCode {
    guard(symbols::LAUNCH, || {
        non_null(args_info, "argsInfo")?;
        // SAFETY: non-NULL; the caller guarantees a readable struct. It is
        // read unaligned because C callers need not align it to 8.
        let info = unsafe { args_info.read_unaligned() };
        let args = sim::check_launch(kernel_type, block_dim, &info).map(|block| match block {
            Block::Host { addr, len } => {
                // SAFETY: a non-NULL host address outside every device
                // window with a length in range (checked); the caller
                // guarantees `argsSize` readable bytes there.
                LaunchArgs::Host(unsafe { std::slice::from_raw_parts(addr as *const u8, len) })
            }
            Block::Device { addr, len } => LaunchArgs::Device(addr, len),
        });
        sim::launch(kernel_type, block_dim, &info, args, stream as u64)
    })
}

/// `count` `T`s at `ptr`, each read unaligned (C callers need not align
/// the arrays CANN takes).
///
/// # Safety
/// `ptr` is readable for `count` `T`s.
unsafe fn read_array<T: Copy>(ptr: *const T, count: usize) -> Vec<T> {
    (0..count)
        // SAFETY: within the `count` elements the caller guarantees.
        .map(|i| unsafe { ptr.add(i).read_unaligned() })
        .collect()
}

/// `rtError_t rtsBinaryLoadFromFile(const char *binPath, const
/// rtLoadBinaryConfig_t *optionalCfg, rtBinHandle *handle)`: registers the
/// CPU kernels of the JSON op descriptor that belongs to `binPath` on the
/// current device.
///
/// # Safety
/// `bin_path` is NULL or NUL-terminated; `optional_cfg` is NULL or points
/// to a config whose `options` (when not NULL) holds `numOpt` options;
/// `handle` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rtsBinaryLoadFromFile(
    bin_path: *const c_char,
    optional_cfg: *const LoadBinaryConfig,
    handle: *mut cann::RtBinHandle,
) -> AclErrorCode {
    guard(symbols::BINARY_LOAD_FROM_FILE, || {
        non_null(bin_path, "binPath")?;
        non_null(handle, "handle")?;
        // SAFETY: non-NULL; the caller passes a NUL-terminated string.
        let path = unsafe { CStr::from_ptr(bin_path) }.to_bytes();
        let config = if optional_cfg.is_null() {
            LoadConfig::None
        } else {
            // SAFETY: non-NULL; the caller guarantees a readable struct.
            let cfg = unsafe { optional_cfg.read_unaligned() };
            if cfg.options == 0 {
                LoadConfig::NullOptions
            } else {
                let options = cfg.options as *const simpler_abi::rts::LoadBinaryOption;
                // SAFETY: the caller guarantees `numOpt` readable options.
                LoadConfig::Options(unsafe { read_array(options, cfg.num_opt as usize) })
            }
        };
        let bin = sim::binary_load(path, &config)?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { handle.write(bin as cann::RtBinHandle) };
        Ok(())
    })
}

/// `rtError_t rtsBinaryUnload(const rtBinHandle binHandle)`: the binary and
/// its function handles are stale afterwards (107017).
#[no_mangle]
pub extern "C" fn rtsBinaryUnload(bin_handle: cann::RtBinHandle) -> AclErrorCode {
    guard(symbols::BINARY_UNLOAD, || {
        sim::binary_unload(bin_handle as u64)
    })
}

/// `rtError_t rtsFuncGetByName(const rtBinHandle binHandle, const char
/// *kernelName, rtFuncHandle *funcHandle)`: `kernelName` is the op type
/// (the descriptor's member name). `*funcHandle` is NULL after a failure.
///
/// # Safety
/// `kernel_name` is NULL or NUL-terminated; `func_handle` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn rtsFuncGetByName(
    bin_handle: cann::RtBinHandle,
    kernel_name: *const c_char,
    func_handle: *mut cann::RtFuncHandle,
) -> AclErrorCode {
    guard(symbols::FUNC_GET_BY_NAME, || {
        if bin_handle.is_null() {
            return Err(crate::error::AclError::param("binHandle is NULL"));
        }
        non_null(kernel_name, "kernelName")?;
        non_null(func_handle, "funcHandle")?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { func_handle.write(std::ptr::null_mut()) };
        // SAFETY: non-NULL; the caller passes a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(kernel_name) }.to_bytes();
        let func = sim::func_get(bin_handle as u64, name)?;
        // SAFETY: as above.
        unsafe { func_handle.write(func as cann::RtFuncHandle) };
        Ok(())
    })
}

/// `rtError_t rtsLaunchCpuKernel(const rtFuncHandle funcHandle, uint32_t
/// numBlocks, rtStream_t stm, const rtKernelLaunchCfg_t *cfg,
/// rtCpuKernelArgs_t *argsInfo)`: a launch of a registered CPU kernel;
/// `sim::launch_cpu_kernel` says what the device gets.
///
/// # Safety
/// `cfg` is NULL or points to a config whose `attrs` (when not NULL)
/// holds `numAttrs` attributes; `args_info` is NULL or points to an
/// `rtCpuKernelArgs_t` whose `baseArgs.args` is readable for `argsSize`
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn rtsLaunchCpuKernel(
    func_handle: cann::RtFuncHandle,
    num_blocks: u32,
    stream: cann::AclrtStream,
    cfg: *const KernelLaunchCfg,
    args_info: *mut CpuKernelArgs,
) -> AclErrorCode {
    guard(symbols::LAUNCH_CPU_KERNEL, || {
        let cfg = if cfg.is_null() {
            None
        } else {
            // SAFETY: non-NULL; the caller guarantees a readable struct.
            Some(unsafe { cfg.read_unaligned() })
        };
        let attrs = match cfg {
            Some(c) if c.attrs != 0 => {
                // SAFETY: the caller guarantees `numAttrs` readable attributes.
                unsafe { read_array(c.attrs as *const LaunchKernelAttr, c.num_attrs as usize) }
            }
            _ => Vec::new(),
        };
        let args = if args_info.is_null() {
            None
        } else {
            // SAFETY: non-NULL; the caller guarantees a readable struct.
            Some(unsafe { args_info.cast_const().read_unaligned() })
        };
        let launch = CpuLaunch {
            func: func_handle as u64,
            num_blocks,
            stream: stream as u64,
            cfg,
            attrs: &attrs,
            args,
        };
        sim::launch_cpu_kernel(&launch, |addr, len| {
            // SAFETY: called with `baseArgs.args` and `argsSize` once they
            // are checked: a non-NULL host address outside every device
            // window, a length in range; the caller guarantees that many
            // readable bytes there for the call.
            unsafe { std::slice::from_raw_parts(addr as *const u8, len) }
        })
    })
}

/// Simulator only: `int32_t simpler_sim_get_stats(int32_t device, SimStats
/// *out)`; 0, or 107000 for a NULL `out` or a device id out of range.
///
/// # Safety
/// `out` is NULL or writable for a `SimStats`.
#[no_mangle]
pub unsafe extern "C" fn simpler_sim_get_stats(device: i32, out: *mut SimStats) -> i32 {
    guard(symbols::SIM_GET_STATS, || {
        non_null(out, "out")?;
        let stats = sim::stats(device)?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write_unaligned(stats) };
        Ok(())
    })
}

/// Simulator only: `uint32_t simpler_sim_device_machine(void)`, the ELF
/// `e_machine` of the device process binary, 0 when it cannot be read.
#[no_mangle]
pub extern "C" fn simpler_sim_device_machine() -> u32 {
    catch_unwind(sim::device_machine).unwrap_or(0)
}

/// Simulator only: `int32_t simpler_sim_ping(uint32_t count)`: `count`
/// round trips over the current device's control channel, answered by the
/// AICPU worker that reads the device's channel — the floor under
/// launch→sync.
#[no_mangle]
pub extern "C" fn simpler_sim_ping(count: u32) -> i32 {
    guard(symbols::SIM_PING, || sim::ping(count))
}
