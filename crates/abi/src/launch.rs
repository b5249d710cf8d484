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
