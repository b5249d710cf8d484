//! The binary-handle launch path: CANN's `rts*` kernel API layouts
//! (`pkg_inc/runtime/runtime/rts/rts_kernel.h`, `kernel.h` and
//! `rt_external_kernel.h` of CANN's open runtime), the JSON op descriptor
//! its binary loader reads for CPU kernels, and the rules simpler follows
//! when it writes one.
//!
//! Pointers are carried as `u64` so the types are `Pod`; the layouts are the
//! C ones on 64-bit targets. `docs/abi.md` has them as byte tables with the
//! sources.

use bytemuck::{Pod, Zeroable};

use crate::assert_offsets;
use crate::cann::AicpuArgsEx;

/// `rtLoadBinaryOption` value selecting how a CPU-kernel binary loads
/// (`RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE`).
pub const RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE: u32 = 3;

/// `cpuKernelMode` values of [`RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE`].
pub mod cpu_kernel_mode {
    /// Only the JSON descriptor is read; the SOs it names are already on
    /// the device (simpler's case: the dispatcher installed them).
    pub const JSON_ONLY: i32 = 0;
    /// The SO at the given path is uploaded too, with its same-named JSON.
    pub const SO_AND_JSON: i32 = 1;
    /// `rtsBinaryLoadFromData` of an SO image (custom kernels).
    pub const FROM_DATA: i32 = 2;
}

/// `rtLoadBinaryOption_t`: `{rtLoadBinaryOption optionId; union { …;
/// int32_t cpuKernelMode; uint32_t rsv[4]; } value;}`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct LoadBinaryOption {
    /// `optionId` (an `rtLoadBinaryOption` enum value).
    pub option_id: u32,
    /// The 16-byte value union; `cpuKernelMode` is its first word.
    pub value: [u32; 4],
}

assert_offsets!(LoadBinaryOption, size 20, { option_id: 0, value: 4 });

impl LoadBinaryOption {
    /// `RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE` = `mode`.
    pub const fn cpu_kernel_mode(mode: i32) -> Self {
        Self {
            option_id: RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE,
            value: [mode as u32, 0, 0, 0],
        }
    }
}

/// `rtLoadBinaryConfig_t`: `{rtLoadBinaryOption_t *options; size_t numOpt;}`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct LoadBinaryConfig {
    /// Host address of `num_opt` [`LoadBinaryOption`]s.
    pub options: u64,
    /// Number of options.
    pub num_opt: u64,
}

assert_offsets!(LoadBinaryConfig, size 16, { options: 0, num_opt: 8 });

/// `rtLaunchKernelAttr_t`: `{rtLaunchKernelAttrId id; rtLaunchKernelAttrVal_t
/// value;}`, the value a 16-byte union of at most 4-byte members.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct LaunchKernelAttr {
    /// `id` (an `rtLaunchKernelAttrId`; 0 is none).
    pub id: u32,
    /// The value union.
    pub value: [u32; 4],
}

assert_offsets!(LaunchKernelAttr, size 20, { id: 0, value: 4 });

/// `rtKernelLaunchCfg_t`: `{rtLaunchKernelAttr_t *attrs; size_t numAttrs;}`.
///
/// CANN refuses a config whose `attrs` is NULL even with `numAttrs` 0, so
/// simpler passes one zeroed attribute and a count of 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct KernelLaunchCfg {
    /// Host address of `num_attrs` [`LaunchKernelAttr`]s; must not be 0.
    pub attrs: u64,
    /// Number of attributes.
    pub num_attrs: u64,
}

assert_offsets!(KernelLaunchCfg, size 16, { attrs: 0, num_attrs: 8 });

/// `rtCpuKernelArgs_t`: `{rtAicpuArgsEx_t baseArgs; size_t
/// cpuParamHeadOffset; uint32_t rsv[4];}`.
///
/// The launch copies `base_args.args` (`args_size` bytes) to the device;
/// the kernel's parameter is that copy plus `cpu_param_head_offset`. The SO
/// and kernel names come from the registration (the JSON descriptor)
/// unless a name offset in `base_args` is non-zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CpuKernelArgs {
    /// The argument block, as for a type-2 launch.
    pub base_args: AicpuArgsEx,
    /// Offset of the kernel's parameter inside the copied block.
    pub cpu_param_head_offset: u64,
    /// Reserved, zero.
    pub rsv: [u32; 4],
}

assert_offsets!(CpuKernelArgs, size 72, {
    base_args: 0, cpu_param_head_offset: 48, rsv: 56,
});

/// The JSON op descriptor `rtsBinaryLoadFromFile` reads for CPU kernels.
///
/// The file read is the given path with everything from its last `.`
/// replaced by `.json` (a path without a `.` becomes `".json"`). Each
/// top-level member whose value holds [`OP_INFO`] registers one kernel,
/// **keyed by the member's name — the op type**, which is what
/// `rtsFuncGetByName` looks up; [`FUNCTION_NAME`] is the symbol the
/// scheduler calls in [`KERNEL_SO`]. A missing or unparsable file is
/// `ACL_ERROR_RT_PARAM_INVALID`; with [`super::cpu_kernel_mode::JSON_ONLY`]
/// nothing checks that the SO exists until a launch runs it.
pub mod json {
    /// The member holding a kernel's description.
    pub const OP_INFO: &str = "opInfo";
    /// The symbol called in the SO.
    pub const FUNCTION_NAME: &str = "functionName";
    /// The SO's file name, looked up in the AICPU scheduler's directories.
    pub const KERNEL_SO: &str = "kernelSo";
    /// The kernel library, which decides the kernel type.
    pub const OP_KERNEL_LIB: &str = "opKernelLib";
    /// `"True"` makes an [`AICPU_KERNEL`] kernel a custom one (type 4).
    pub const USER_DEFINED: &str = "userDefined";
    /// The engine upstream writes ([`ENGINE_AICPU`]); not read by CANN's
    /// binary loader.
    pub const ENGINE: &str = "engine";

    /// `opKernelLib` of a type-2 (`KERNEL_TYPE_AICPU`) kernel: what
    /// simpler writes.
    pub const AICPU_KERNEL: &str = "AICPUKernel";
    /// `opKernelLib` of a custom AICPU kernel (type 4).
    pub const CUST_AICPU_KERNEL: &str = "CUSTAICPUKernel";
    /// `opKernelLib` of a TensorFlow kernel (type 1).
    pub const TF_KERNEL: &str = "TFKernel";
    /// `opKernelLib` of a KFC kernel (type 5).
    pub const KFC_KERNEL: &str = "KFCKernel";
    /// `opKernelLib` of a custom KFC kernel (type 6).
    pub const CUST_KFC_KERNEL: &str = "CUSTKFCKernel";
    /// The `engine` value simpler writes, as upstream does.
    pub const ENGINE_AICPU: &str = "DNN_VM_AICPU";

    /// The kernel type CANN's loader gives a kernel of `op_kernel_lib`
    /// (`None`: CANN registers it as `KERNEL_TYPE_RESERVED`, which no
    /// launch accepts).
    pub fn kernel_type(op_kernel_lib: &str, user_defined: bool) -> Option<u32> {
        Some(match op_kernel_lib {
            AICPU_KERNEL if user_defined => 4,
            AICPU_KERNEL => crate::names::KERNEL_TYPE_AICPU,
            CUST_AICPU_KERNEL => 4,
            TF_KERNEL => 1,
            KFC_KERNEL => crate::names::KERNEL_TYPE_AICPU_KFC,
            CUST_KFC_KERNEL => 6,
            _ => return None,
        })
    }
}

/// Length of the op type simpler registers for a symbol: the symbol, `_`
/// and the SO fingerprint as 16 lowercase hex digits.
pub const fn op_type_len(symbol_len: usize) -> usize {
    symbol_len + 1 + 16
}

/// Writes the op type simpler registers `symbol` of the SO with
/// `fingerprint` under — `<symbol>_<fingerprint as 16 hex digits>`, unique
/// per (symbol, SO content) so that two SOs exporting the same symbol never
/// collide in CANN's process-wide op registry — into `out`, returning the
/// bytes written. `out` must hold [`op_type_len`] bytes.
pub fn write_op_type(symbol: &str, fingerprint: u64, out: &mut [u8]) -> usize {
    let len = op_type_len(symbol.len());
    let out = &mut out[..len];
    out[..symbol.len()].copy_from_slice(symbol.as_bytes());
    out[symbol.len()] = b'_';
    let hex = &mut out[symbol.len() + 1..];
    for (i, digit) in hex.iter_mut().enumerate() {
        let nibble = (fingerprint >> (60 - 4 * i)) & 0xf;
        *digit = b"0123456789abcdef"[nibble as usize];
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_types_append_the_fingerprint_in_hex() {
        let mut buf = [0u8; 64];
        let n = write_op_type("k_add", 0x0123_4567_89ab_cdef, &mut buf);
        assert_eq!(&buf[..n], b"k_add_0123456789abcdef");
        assert_eq!(n, op_type_len(5));
    }

    #[test]
    fn kernel_libraries_map_to_cann_kernel_types() {
        assert_eq!(json::kernel_type(json::AICPU_KERNEL, false), Some(2));
        assert_eq!(json::kernel_type(json::AICPU_KERNEL, true), Some(4));
        assert_eq!(json::kernel_type("NoSuchKernel", false), None);
    }
}
