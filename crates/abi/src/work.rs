//! The runtime SO's work description: what `KernelArgs::runtime_args`
//! points at. The host (or any tool) builds it in device memory; every
//! thread of a `simpler_aicpu_exec` launch claims tasks from it.

use bytemuck::{Pod, Zeroable};

use crate::assert_offsets;

/// Value of [`WorkHeader::magic`] (`"SWRK"` little-endian).
pub const WORK_MAGIC: u32 = u32::from_le_bytes(*b"SWRK");

/// Head of a work batch, 8-byte aligned in device memory.
///
/// `next_task`, `done` and `failed` are updated atomically by the runtime;
/// the host sets them to 0 before each launch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct WorkHeader {
    /// [`WORK_MAGIC`].
    pub magic: u32,
    /// [`crate::ABI_VERSION`].
    pub abi_version: u32,
    /// Number of entries in `tasks` and `statuses`.
    pub task_count: u32,
    /// Zero.
    pub flags: u32,
    /// Device address of `task_count` [`Task`]s (8-byte aligned).
    pub tasks: u64,
    /// Device address of `task_count` `u32` [`TaskStatus`] words
    /// (4-byte aligned), 0 ([`TaskStatus::Pending`]) before the launch.
    pub statuses: u64,
    /// Claim counter: each thread takes the next task index with an atomic
    /// fetch-add until it passes `task_count`.
    pub next_task: u64,
    /// Tasks finished (any status), counted atomically.
    pub done: u32,
    /// Tasks finished with a status other than [`TaskStatus::Ok`].
    pub failed: u32,
}

assert_offsets!(WorkHeader, size 48, {
    magic: 0, abi_version: 4, task_count: 8, flags: 12,
    tasks: 16, statuses: 24, next_task: 32, done: 40, failed: 44,
});

/// One task of a batch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Task {
    /// An [`OpCode`], or a [`CustomOp`] code for a runtime that has it.
    pub op: u32,
    /// Zero.
    pub flags: u32,
    /// Device address of the destination.
    pub dst: u64,
    /// Device address of the first source.
    pub src0: u64,
    /// Device address of the second source (`AddF32` only).
    pub src1: u64,
    /// Length of the operation in bytes.
    pub len: u64,
    /// Immediate operand: the fill byte (low 8 bits), the f32 scale factor
    /// (bits, low 32 bits), or microseconds for `SleepUs`.
    pub scalar: u64,
    /// Zero.
    pub reserved: [u64; 2],
}

assert_offsets!(Task, size 64, {
    op: 0, flags: 4, dst: 8, src0: 16, src1: 24, len: 32, scalar: 40, reserved: 48,
});

/// Built-in operations of the runtime SO. f32 operands are little-endian
/// IEEE 754 and must be 4-byte aligned with `len` a multiple of 4.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `dst[..len] = src0[..len]` (overlap allowed, memmove semantics).
    Copy = 1,
    /// `dst[..len] = scalar as u8`.
    Fill = 2,
    /// `dst[i] = src0[i] + src1[i]` over `len / 4` f32 elements.
    AddF32 = 3,
    /// `dst[i] = src0[i] * f32::from_bits(scalar as u32)`.
    ScaleF32 = 4,
    /// `*dst = Σ src0[i]` as f32, accumulated left to right from `0.0`.
    SumF32 = 5,
    /// `*dst = FNV-1a 64 of src0[..len]` as a u64 (dst 8-byte aligned).
    Fnv1a64 = 6,
    /// Diagnostic: sleep `scalar` microseconds (op-timeout tests).
    SleepUs = 0x100,
    /// Diagnostic: panic inside the task (panic-containment tests).
    Panic = 0x101,
}

impl OpCode {
    /// Every op code, in declaration order.
    pub const ALL: [OpCode; 8] = [
        Self::Copy,
        Self::Fill,
        Self::AddF32,
        Self::ScaleF32,
        Self::SumF32,
        Self::Fnv1a64,
        Self::SleepUs,
        Self::Panic,
    ];

    /// Decodes a raw op word.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|op| *op as u32 == raw)
    }
}

/// First code of the custom-op range: `0x8000_0000..=0xFFFF_FFFF`, every
/// code with bit 31 set.
///
/// Built-in ops count up from 1 and diagnostics sit at `0x100`; neither will
/// ever take a code with bit 31 set, so a runtime SO's own ops (see
/// [`CustomOp`]) can never collide with a built-in of a newer simpler, and
/// one bit test tells the two apart.
pub const CUSTOM_OP_FIRST: u32 = 0x8000_0000;
/// Last code of the custom-op range.
pub const CUSTOM_OP_LAST: u32 = u32::MAX;

/// An op code in the custom range ([`CUSTOM_OP_FIRST`]..=[`CUSTOM_OP_LAST`]):
/// an op that a runtime SO of your own defines. The built-in runtime answers
/// every one of them with [`TaskStatus::UnknownOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomOp(u32);

impl CustomOp {
    /// The custom op with this code, or [`NotCustomOp`] for a code outside
    /// the range.
    pub const fn new(code: u32) -> Result<Self, NotCustomOp> {
        if code >= CUSTOM_OP_FIRST {
            Ok(Self(code))
        } else {
            Err(NotCustomOp(code))
        }
    }

    /// [`new`](Self::new) for constants: a code outside the range is a
    /// compile error there (and a panic anywhere else).
    ///
    /// ```
    /// use simpler_abi::work::CustomOp;
    /// const SAXPY: CustomOp = CustomOp::must(0x8000_0001);
    /// assert_eq!(SAXPY.code(), 0x8000_0001);
    /// ```
    pub const fn must(code: u32) -> Self {
        match Self::new(code) {
            Ok(op) => op,
            Err(_) => panic!("custom op codes have bit 31 set (0x8000_0000..=0xFFFF_FFFF)"),
        }
    }

    /// The op code, as it goes into [`Task::op`].
    pub const fn code(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for CustomOp {
    type Error = NotCustomOp;

    fn try_from(code: u32) -> Result<Self, NotCustomOp> {
        Self::new(code)
    }
}

/// A code given as a [`CustomOp`] lies outside the custom range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotCustomOp(pub u32);

impl core::fmt::Display for NotCustomOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "op code {:#x} is not in the custom range {CUSTOM_OP_FIRST:#x}..={CUSTOM_OP_LAST:#x}",
            self.0
        )
    }
}

impl core::error::Error for NotCustomOp {}

/// What a task's op word names: a built-in or diagnostic [`OpCode`], or a
/// [`CustomOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskOp {
    /// An op of the built-in runtime.
    Builtin(OpCode),
    /// An op in the custom range.
    Custom(CustomOp),
}

impl TaskOp {
    /// Decodes a raw op word; `None` for a code that is neither a built-in
    /// nor in the custom range.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match CustomOp::new(raw) {
            Ok(custom) => Some(Self::Custom(custom)),
            Err(_) => OpCode::from_raw(raw).map(Self::Builtin),
        }
    }

    /// The raw op word.
    pub fn code(self) -> u32 {
        match self {
            Self::Builtin(op) => op as u32,
            Self::Custom(op) => op.code(),
        }
    }
}

impl From<OpCode> for TaskOp {
    fn from(op: OpCode) -> Self {
        Self::Builtin(op)
    }
}

impl From<CustomOp> for TaskOp {
    fn from(op: CustomOp) -> Self {
        Self::Custom(op)
    }
}

/// A built-in by its name (`AddF32`), a custom op as `custom op 0x80000001`.
impl core::fmt::Display for TaskOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Builtin(op) => write!(f, "{op:?}"),
            Self::Custom(op) => write!(f, "custom op {:#x}", op.code()),
        }
    }
}

/// Per-task outcome written by the runtime into the status array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Not run (the host's initial value).
    Pending = 0,
    /// Completed.
    Ok = 1,
    /// `op` is not an op this runtime has (for the built-in runtime: not
    /// an [`OpCode`], so every [`CustomOp`]), or `flags` is not 0.
    UnknownOp = 2,
    /// `len` is invalid for the op (not a multiple of the element size).
    BadLength = 3,
    /// An f32 or u64 operand is not aligned to its element size.
    Misaligned = 4,
    /// A required address is 0.
    NullPointer = 5,
    /// The task panicked; the panic was contained.
    Panicked = 6,
}

impl TaskStatus {
    /// Every status, in declaration order.
    pub const ALL: [TaskStatus; 7] = [
        Self::Pending,
        Self::Ok,
        Self::UnknownOp,
        Self::BadLength,
        Self::Misaligned,
        Self::NullPointer,
        Self::Panicked,
    ];

    /// Decodes a raw status word.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u32 == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::from_raw(op as u32), Some(op));
        }
        assert_eq!(OpCode::from_raw(0), None);
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::from_raw(s as u32), Some(s));
        }
        assert_eq!(TaskStatus::from_raw(99), None);
    }

    #[test]
    fn no_builtin_code_is_in_the_custom_range() {
        for op in OpCode::ALL {
            assert!(CustomOp::new(op as u32).is_err(), "{op:?}");
            assert_eq!(TaskOp::from_raw(op as u32), Some(TaskOp::Builtin(op)));
        }
    }

    #[test]
    fn custom_ops_are_exactly_the_codes_with_bit_31_set() {
        for code in [CUSTOM_OP_FIRST, 0x8000_0001, 0xdead_beef, CUSTOM_OP_LAST] {
            let op = CustomOp::new(code).unwrap();
            assert_eq!(op.code(), code);
            assert_eq!(CustomOp::try_from(code), Ok(op));
            assert_eq!(TaskOp::from_raw(code), Some(TaskOp::Custom(op)));
            assert_eq!(TaskOp::from_raw(code).unwrap().code(), code);
        }
        for code in [0, 1, 0x101, 0x7fff_ffff] {
            assert_eq!(CustomOp::new(code), Err(NotCustomOp(code)));
        }
        assert_eq!(TaskOp::from_raw(0x7fff_ffff), None);
        assert_eq!(TaskOp::from_raw(0), None);
    }

    #[test]
    fn ops_and_refusals_read_well() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(TaskOp::from(OpCode::AddF32).to_string(), "AddF32");
        let custom = TaskOp::from(CustomOp::must(0x8000_0002));
        assert_eq!(custom.to_string(), "custom op 0x80000002");
        assert_eq!(
            CustomOp::new(7).unwrap_err().to_string(),
            "op code 0x7 is not in the custom range 0x80000000..=0xffffffff"
        );
    }

    #[test]
    #[should_panic(expected = "bit 31")]
    fn must_refuses_a_code_outside_the_range() {
        let _ = CustomOp::must(0x100);
    }
}
