//! Per-task (Mode A type 2) argument blocks: the payload at offset 0, then
//! `kernel_name[64]` and `so_name[64]`.

use bytemuck::{Pod, Zeroable};

use crate::assert_offsets;
use crate::names::{NAME_FIELD_LEN, RUNTIME_EXEC_FIELD, RUNTIME_INIT_FIELD};
use crate::PreinstallName;

/// Payload of a `simpler_aicpu_init` launch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct InitArgs {
    /// The host's [`crate::ABI_VERSION`]; the runtime rejects any other.
    pub abi_version: u32,
    /// Logical device id.
    pub device_id: u32,
    /// Log level for the runtime's device log (0 = error … 3 = debug).
    pub log_level: u32,
    /// AICPU threads the host will launch `simpler_aicpu_exec` on.
    pub thread_count: u32,
}

assert_offsets!(InitArgs, size 16, {
    abi_version: 0, device_id: 4, log_level: 8, thread_count: 12,
});

/// Payload of a `simpler_aicpu_exec` launch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct KernelArgs {
    /// Device address of the runtime's work description
    /// ([`crate::WorkHeader`]).
    pub runtime_args: u64,
    /// Device address of an optional register block, 0 when unused.
    pub regs: u64,
}

assert_offsets!(KernelArgs, size 16, { runtime_args: 0, regs: 8 });

/// The whole argument block of a `simpler_aicpu_init` launch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct InitLaunchArgs {
    /// The payload the runtime receives a pointer to.
    pub payload: InitArgs,
    /// `"simpler_aicpu_init"`, NUL-padded.
    pub kernel_name: [u8; NAME_FIELD_LEN],
    /// The runtime's preinstall name, NUL-padded.
    pub so_name: [u8; NAME_FIELD_LEN],
}

assert_offsets!(InitLaunchArgs, size 144, { payload: 0, kernel_name: 16, so_name: 80 });

/// The whole argument block of a `simpler_aicpu_exec` launch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ExecLaunchArgs {
    /// The payload the runtime receives a pointer to.
    pub payload: KernelArgs,
    /// `"simpler_aicpu_exec"`, NUL-padded.
    pub kernel_name: [u8; NAME_FIELD_LEN],
    /// The runtime's preinstall name, NUL-padded.
    pub so_name: [u8; NAME_FIELD_LEN],
}

assert_offsets!(ExecLaunchArgs, size 144, { payload: 0, kernel_name: 16, so_name: 80 });

/// Offset of `kernel_name` in both launch blocks (`kernelNameAddrOffset`).
pub const LAUNCH_KERNEL_NAME_OFFSET: u32 = 16;
/// Offset of `so_name` in both launch blocks (`soNameAddrOffset`).
pub const LAUNCH_SO_NAME_OFFSET: u32 = 80;

impl InitLaunchArgs {
    /// The init block for the runtime installed as `so`.
    pub const fn new(payload: InitArgs, so: &PreinstallName) -> Self {
        Self {
            payload,
            kernel_name: RUNTIME_INIT_FIELD,
            so_name: so.to_field(),
        }
    }
}

impl ExecLaunchArgs {
    /// The exec block for the runtime installed as `so`.
    pub const fn new(payload: KernelArgs, so: &PreinstallName) -> Self {
        Self {
            payload,
            kernel_name: RUNTIME_EXEC_FIELD,
            so_name: so.to_field(),
        }
    }
}

/// Longest kernel name CANN's AICPU scheduler accepts in a type-2 launch.
pub const KERNEL_NAME_MAX: usize = 200;
/// Longest SO name CANN's AICPU scheduler accepts in a type-2 launch; the
/// name must also pass [`is_valid_so_name`].
pub const SO_NAME_MAX: usize = 100;

/// Whether CANN's AICPU scheduler accepts `name` as the SO of a type-2
/// launch: 1 to [`SO_NAME_MAX`] characters of `[A-Za-z0-9-_.]`.
pub const fn is_valid_so_name(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > SO_NAME_MAX {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        let c = name[i];
        if !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.') {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether CANN's AICPU scheduler accepts `name` as a type-2 kernel name:
/// 1 to [`KERNEL_NAME_MAX`] bytes, no NUL.
pub const fn is_valid_kernel_name(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > KERNEL_NAME_MAX {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        if name[i] == 0 {
            return false;
        }
        i += 1;
    }
    true
}

/// Where the parts of a general per-task argument block go: the caller's
/// payload at offset 0, padded with zeros to a multiple of 8 (at least 8:
/// CANN refuses an empty block), then the NUL-terminated kernel name, then
/// the NUL-terminated SO name. The runtime SO's blocks above are the case
/// of a 16-byte payload with 64-byte name fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelBlock {
    /// Bytes the payload occupies, padding included.
    pub payload_len: usize,
    /// `kernelNameAddrOffset`.
    pub kernel_name_offset: u32,
    /// `soNameAddrOffset`.
    pub so_name_offset: u32,
    /// Size of the whole block (`argsSize`).
    pub len: usize,
}

impl KernelBlock {
    /// The layout for a payload of `payload` bytes and names of `kernel`
    /// and `so` bytes (without their NULs).
    pub const fn new(payload: usize, kernel: usize, so: usize) -> Self {
        let padded = if payload == 0 {
            8
        } else {
            payload.div_ceil(8) * 8
        };
        let so_name_offset = padded + kernel + 1;
        Self {
            payload_len: padded,
            kernel_name_offset: padded as u32,
            so_name_offset: so_name_offset as u32,
            len: so_name_offset + so + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_block_pads_the_payload_and_ends_each_name_with_nul() {
        let b = KernelBlock::new(12, 5, 30);
        assert_eq!((b.payload_len, b.kernel_name_offset), (16, 16));
        assert_eq!((b.so_name_offset, b.len), (22, 53));
        assert_eq!(KernelBlock::new(0, 1, 1).payload_len, 8);
        assert_eq!(KernelBlock::new(8, 1, 1).payload_len, 8);
    }

    #[test]
    fn so_and_kernel_names_follow_the_schedulers_rules() {
        assert!(is_valid_so_name(b"simpler_inner_0123456789abcdef.so"));
        assert!(is_valid_so_name(b"lib-x_1.2.so"));
        assert!(!is_valid_so_name(b"../x.so"));
        assert!(!is_valid_so_name(b"a b.so"));
        assert!(!is_valid_so_name(&[b'a'; SO_NAME_MAX + 1]));
        assert!(is_valid_so_name(&[b'a'; SO_NAME_MAX]));
        assert!(is_valid_kernel_name(&[b'k'; KERNEL_NAME_MAX]));
        assert!(!is_valid_kernel_name(&[b'k'; KERNEL_NAME_MAX + 1]));
        assert!(!is_valid_kernel_name(b""));
    }
}
