//! The bootstrap launch: the KFC argument block, the extended `DeviceArgs`
//! and the dispatcher's `BootstrapReport`.

use bytemuck::{Pod, Zeroable};

use crate::assert_offsets;
use crate::names::{KFC_KERNEL_NAME_FIELD, KFC_SO_NAME_FIELD, NAME_FIELD_LEN};

/// The argument block of the bootstrap launch (host memory; the runtime
/// copies it to device memory before the launch call returns).
///
/// Launched as `(KERNEL_TYPE_AICPU_KFC, "AST_DYN_AICPU", blockDim 1)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BootstrapArgs {
    /// Zero.
    pub reserved0: [u64; 5],
    /// Device address of the [`DeviceArgs`].
    pub device_args: u64,
    /// Zero.
    pub reserved1: [u64; 20],
    /// `"DynTileFwkKernelServerInit"`, NUL-padded.
    pub kernel_name: [u8; NAME_FIELD_LEN],
    /// `"libaicpu_extend_kernels.so"`, NUL-padded.
    pub so_name: [u8; NAME_FIELD_LEN],
    /// Empty.
    pub op_name: [u8; NAME_FIELD_LEN],
}

assert_offsets!(BootstrapArgs, size 400, {
    reserved0: 0, device_args: 40, reserved1: 48,
    kernel_name: 208, so_name: 272, op_name: 336,
});

/// `kernelNameAddrOffset` of the bootstrap launch: [`BootstrapArgs::kernel_name`].
pub const BOOTSTRAP_KERNEL_NAME_OFFSET: u32 = 208;
/// `soNameAddrOffset` of the bootstrap launch: [`BootstrapArgs::so_name`].
pub const BOOTSTRAP_SO_NAME_OFFSET: u32 = 272;
const _: () = {
    assert!(
        core::mem::offset_of!(BootstrapArgs, kernel_name) == BOOTSTRAP_KERNEL_NAME_OFFSET as usize
    );
    assert!(core::mem::offset_of!(BootstrapArgs, so_name) == BOOTSTRAP_SO_NAME_OFFSET as usize);
};

impl BootstrapArgs {
    /// The bootstrap block pointing at the `DeviceArgs` at `device_args`.
    pub const fn new(device_args: u64) -> Self {
        Self {
            reserved0: [0; 5],
            device_args,
            reserved1: [0; 20],
            kernel_name: KFC_KERNEL_NAME_FIELD,
            so_name: KFC_SO_NAME_FIELD,
            op_name: [0; NAME_FIELD_LEN],
        }
    }
}

/// `DeviceArgs` as `libaicpu_extend_kernels` reads it, extended with the
/// runtime SO (offsets 120/128, which it ignores) and the report address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DeviceArgs {
    /// Zero.
    pub reserved0: [u64; 12],
    /// Device address of the dispatcher SO bytes.
    pub aicpu_so_bin: u64,
    /// Length of the dispatcher SO in bytes.
    pub aicpu_so_len: u64,
    /// Logical device id.
    pub device_id: u64,
    /// Device address of the runtime SO bytes.
    pub inner_so_bin: u64,
    /// Length of the runtime SO in bytes.
    pub inner_so_len: u64,
    /// Device address of a [`BootstrapReport`], or 0 for none.
    pub report: u64,
    /// 0 for the install; a maintenance command word
    /// ([`Command::word`](crate::maintenance::Command::word)) for a command
    /// on the preinstall directory. A word without the
    /// [`COMMAND_TAG`](crate::maintenance::COMMAND_TAG) is an install.
    pub command: u64,
    /// With a maintenance command: device address of its
    /// [`MaintenanceArgs`](crate::maintenance::MaintenanceArgs). Zero
    /// otherwise.
    pub maintenance: u64,
}

assert_offsets!(DeviceArgs, size 160, {
    reserved0: 0, aicpu_so_bin: 96, aicpu_so_len: 104, device_id: 112,
    inner_so_bin: 120, inner_so_len: 128, report: 136, command: 144,
    maintenance: 152,
});

/// Value of [`BootstrapReport::magic`] once the dispatcher has written it
/// (`"SBRP"` little-endian).
pub const REPORT_MAGIC: u32 = u32::from_le_bytes(*b"SBRP");
/// Capacity of [`BootstrapReport::path`], NUL included.
pub const REPORT_PATH_LEN: usize = 256;

/// Outcome of the dispatcher's work, in [`BootstrapReport::status`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportStatus {
    /// The runtime SO is in place under its preinstall name.
    Ok = 0,
    /// The dispatcher failed at [`BootstrapReport::stage`].
    Failed = 1,
}

impl ReportStatus {
    /// Decodes a raw status word.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Ok),
            1 => Some(Self::Failed),
            _ => None,
        }
    }
}

/// The step of the dispatcher's work that failed, in
/// [`BootstrapReport::stage`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportStage {
    /// Nothing failed.
    None = 0,
    /// Argument validation (null pointer, bad length, not an ELF image,
    /// path too long).
    Validate = 1,
    /// Creating the temp file in the preinstall directory.
    Open = 2,
    /// Writing the bytes, setting mode 0755 or closing the temp file.
    Write = 3,
    /// Renaming the temp file onto the preinstall name.
    Rename = 4,
}

impl ReportStage {
    /// Decodes a raw stage word.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::None),
            1 => Some(Self::Validate),
            2 => Some(Self::Open),
            3 => Some(Self::Write),
            4 => Some(Self::Rename),
            _ => None,
        }
    }

    /// Lower-case name of the stage, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Validate => "validate",
            Self::Open => "open",
            Self::Write => "write",
            Self::Rename => "rename",
        }
    }
}

/// What the dispatcher did, written into device memory when
/// [`DeviceArgs::report`] is non-zero. The host zero-fills it before the
/// launch, so `magic == 0` afterwards means no dispatcher wrote it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BootstrapReport {
    /// [`REPORT_MAGIC`].
    pub magic: u32,
    /// The dispatcher's [`crate::ABI_VERSION`].
    pub abi_version: u32,
    /// A [`ReportStatus`].
    pub status: u32,
    /// A [`ReportStage`]: where it failed, [`ReportStage::None`] on success.
    pub stage: u32,
    /// 0 on success; the OS `errno` of the failing call, or for
    /// [`ReportStage::Validate`] the one naming the reason (`docs/abi.md`).
    pub errno: i32,
    /// Zero.
    pub reserved: u32,
    /// FNV-1a 64 of the runtime SO bytes as the dispatcher read them.
    pub fingerprint: u64,
    /// Bytes written to the temp file.
    pub bytes_written: u64,
    /// The target path (or the path that failed), NUL-terminated.
    pub path: [u8; REPORT_PATH_LEN],
}

assert_offsets!(BootstrapReport, size 296, {
    magic: 0, abi_version: 4, status: 8, stage: 12, errno: 16, reserved: 20,
    fingerprint: 24, bytes_written: 32, path: 40,
});

impl BootstrapReport {
    /// The path as text, if it is NUL-terminated UTF-8.
    pub fn path_str(&self) -> Option<&str> {
        crate::names::field_str(&self.path)
    }
}
