//! CANN facts: `rtAicpuArgsEx_t`, memcpy kinds and the error codes the
//! project names (CANN 8.x/9.x headers).

use bytemuck::{Pod, Zeroable};

use crate::assert_offsets;

/// `rtAicpuArgsEx_t` as CANN 8.x/9.x lays it out. Pointers are carried as
/// `u64` so the type is `Pod`; the layout is the C one on 64-bit targets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AicpuArgsEx {
    /// Host address of the argument block.
    pub args: u64,
    /// NULL.
    pub host_input_info_ptr: u64,
    /// NULL.
    pub kernel_offset_info_ptr: u64,
    /// Size of the argument block in bytes.
    pub args_size: u32,
    /// 0.
    pub host_input_info_num: u16,
    /// 0.
    pub kernel_offset_info_num: u16,
    /// Offset of the NUL-terminated so name inside the argument block.
    pub so_name_addr_offset: u32,
    /// Offset of the NUL-terminated kernel name inside the argument block.
    pub kernel_name_addr_offset: u32,
    /// C `bool`; 0: the runtime copies `args` to device memory.
    pub is_no_need_h2d_copy: u8,
    /// Padding before `timeout`.
    pub pad0: u8,
    /// Op timeout in seconds, 0 for the default.
    pub timeout: u16,
    /// Reserved.
    pub reserved: u8,
    /// Tail padding to the C size of 48.
    pub pad1: [u8; 3],
}

assert_offsets!(AicpuArgsEx, size 48, {
    args: 0, host_input_info_ptr: 8, kernel_offset_info_ptr: 16, args_size: 24,
    host_input_info_num: 28, kernel_offset_info_num: 30,
    so_name_addr_offset: 32, kernel_name_addr_offset: 36,
    is_no_need_h2d_copy: 40, timeout: 42, reserved: 44,
});

/// The part of CANN's message that tells the bootstrap's 507018 on a stack
/// older than the KFC path (CANN < 8.5.0 or driver < 25.2.0) apart:
/// `libaicpu_extend_kernels` there loads the dispatcher but finds no
/// function to call ("Get KFC DynTileFwkKernelServerInit api success, but
/// func is nullptr"). The host recognises the case by it, the simulator
/// emulates it with it.
pub const KFC_FUNC_NULLPTR: &str = "func is nullptr";

/// `aclrtMemcpyKind` values.
pub mod memcpy_kind {
    /// `ACL_MEMCPY_HOST_TO_HOST`.
    pub const HOST_TO_HOST: u32 = 0;
    /// `ACL_MEMCPY_HOST_TO_DEVICE`.
    pub const HOST_TO_DEVICE: u32 = 1;
    /// `ACL_MEMCPY_DEVICE_TO_HOST`.
    pub const DEVICE_TO_HOST: u32 = 2;
    /// `ACL_MEMCPY_DEVICE_TO_DEVICE`.
    pub const DEVICE_TO_DEVICE: u32 = 3;
}

/// `ACL_MEM_MALLOC_HUGE_FIRST`, the `aclrtMemMallocPolicy` the host uses.
pub const ACL_MEM_MALLOC_HUGE_FIRST: u32 = 0;

/// `aclError` / `rtError_t` codes the project names.
pub mod error {
    /// Success.
    pub const ACL_SUCCESS: i32 = 0;
    /// `aclInit` called again without `aclFinalize`.
    pub const ACL_ERROR_REPEAT_INITIALIZE: i32 = 100002;
    /// Bad argument.
    pub const ACL_ERROR_RT_PARAM_INVALID: i32 = 107000;
    /// Device id out of range.
    pub const ACL_ERROR_RT_INVALID_DEVICEID: i32 = 107001;
    /// No current device (context) on the calling thread: it never called
    /// `aclrtSetDevice`, or the device was reset.
    pub const ACL_ERROR_RT_CONTEXT_NULL: i32 = 107002;
    /// A handle that is not (or no longer) valid: a binary or function
    /// handle after `rtsBinaryUnload`, say.
    pub const ACL_ERROR_RT_INVALID_HANDLE: i32 = 107017;
    /// Task aborted after an earlier fault.
    pub const ACL_ERROR_RT_DEVICE_TASK_ABORT: i32 = 107022;
    /// The driver, firmware or chip does not support the call (a KFC launch
    /// on task-scheduler firmware without the AICPU KFC feature, say).
    pub const ACL_ERROR_RT_FEATURE_NOT_SUPPORT: i32 = 207000;
    /// Device out of memory.
    pub const ACL_ERROR_RT_MEMORY_ALLOCATION: i32 = 207001;
    /// Internal error; an AICPU op timeout on some chips.
    pub const ACL_ERROR_RT_INTERNAL_ERROR: i32 = 507000;
    /// AICPU task exceeded its timeout.
    pub const ACL_ERROR_RT_AICPU_TIMEOUT: i32 = 507017;
    /// AICPU task failed — the generic one.
    pub const ACL_ERROR_RT_AICPU_EXCEPTION: i32 = 507018;
    /// Host timed out waiting on a stream.
    pub const ACL_ERROR_RT_STREAM_SYNC_TIMEOUT: i32 = 507046;
    /// Sticky error on a poisoned device.
    pub const ACL_ERROR_RT_DRV_INTERNAL_ERROR: i32 = 507899;

    /// CANN's name for `code`, if it is one the project names.
    pub const fn name(code: i32) -> Option<&'static str> {
        Some(match code {
            ACL_SUCCESS => "ACL_SUCCESS",
            ACL_ERROR_REPEAT_INITIALIZE => "ACL_ERROR_REPEAT_INITIALIZE",
            ACL_ERROR_RT_PARAM_INVALID => "ACL_ERROR_RT_PARAM_INVALID",
            ACL_ERROR_RT_INVALID_DEVICEID => "ACL_ERROR_RT_INVALID_DEVICEID",
            ACL_ERROR_RT_CONTEXT_NULL => "ACL_ERROR_RT_CONTEXT_NULL",
            ACL_ERROR_RT_INVALID_HANDLE => "ACL_ERROR_RT_INVALID_HANDLE",
            ACL_ERROR_RT_DEVICE_TASK_ABORT => "ACL_ERROR_RT_DEVICE_TASK_ABORT",
            ACL_ERROR_RT_FEATURE_NOT_SUPPORT => "ACL_ERROR_RT_FEATURE_NOT_SUPPORT",
            ACL_ERROR_RT_MEMORY_ALLOCATION => "ACL_ERROR_RT_MEMORY_ALLOCATION",
            ACL_ERROR_RT_INTERNAL_ERROR => "ACL_ERROR_RT_INTERNAL_ERROR",
            ACL_ERROR_RT_AICPU_TIMEOUT => "ACL_ERROR_RT_AICPU_TIMEOUT",
            ACL_ERROR_RT_AICPU_EXCEPTION => "ACL_ERROR_RT_AICPU_EXCEPTION",
            ACL_ERROR_RT_STREAM_SYNC_TIMEOUT => "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT",
            ACL_ERROR_RT_DRV_INTERNAL_ERROR => "ACL_ERROR_RT_DRV_INTERNAL_ERROR",
            _ => return None,
        })
    }
}
