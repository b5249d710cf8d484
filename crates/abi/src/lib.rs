//! Every byte layout shared by the simpler host, the device SOs and the CANN
//! simulator, plus the constants and the content fingerprint they agree on.
//!
//! `no_std` and allocation-free: the dispatcher SO links this crate without
//! `std`. Each layout is `#[repr(C)]`, `Pod`, and carries a compile-time
//! assertion for every field offset and for its size, so a change that moves
//! a byte fails to build instead of misreading device memory.
//!
//! See `docs/abi.md` for the same layouts as byte tables.

#![no_std]

pub mod artifacts;
pub mod bootstrap;
pub mod cann;
pub mod fingerprint;
pub mod launch;
pub mod log;
pub mod maintenance;
pub mod names;
pub mod rts;
pub mod sim;
pub mod stack;
pub mod test_env;
pub mod work;

pub use bootstrap::{BootstrapArgs, BootstrapReport, DeviceArgs, ReportStage, ReportStatus};
pub use cann::AicpuArgsEx;
pub use fingerprint::{fingerprint, PreinstallName};
pub use launch::{ExecLaunchArgs, InitArgs, InitLaunchArgs, KernelArgs};
pub use log::LogLevel;
pub use sim::SimStats;
pub use work::{CustomOp, OpCode, Task, TaskOp, TaskStatus, WorkHeader};

/// Version of the host ↔ runtime SO contract carried in [`InitArgs`] and
/// [`WorkHeader`]. A runtime SO rejects any other value with a non-zero return.
pub const ABI_VERSION: u32 = 1;

/// Asserts at compile time that `$field` of `$ty` sits at byte `$off`.
#[macro_export]
#[doc(hidden)]
macro_rules! assert_offsets {
    ($ty:ty, size $size:expr, { $($field:ident : $off:expr),* $(,)? }) => {
        const _: () = {
            assert!(::core::mem::size_of::<$ty>() == $size);
            $( assert!(::core::mem::offset_of!($ty, $field) == $off); )*
        };
    };
}
