//! Run your own AICPU code on a Huawei Ascend NPU, with no install step.
//!
//! `simpler-host` loads the CANN API at run time ([`Cann`]), sends a
//! dispatcher SO and your runtime SO to the device in one bootstrap launch
//! that installs the runtime under a content-addressed name, then launches
//! the runtime's `simpler_aicpu_exec` by that name for every batch of work
//! ([`DeviceRunner`]). The same code drives real CANN and the CANN
//! simulator; only the libraries loaded differ ([`CannSource`]).
//!
//! Module map:
//! - [`cann`]: the CANN API, devices, device memory, over the table and
//!   thin wrappers of `simpler-cann-sys`, the one binding of the C API.
//! - [`elf`]: reading device SOs and the preflight made before upload;
//!   [`SoImage`]: an SO checked once, for building many runners.
//! - [`artifacts`]: where `cargo xtask build` put the SOs and the simulator.
//! - [`Module`] / [`Kernel`] / [`Stream`]: any AICPU SO installed through
//!   the dispatcher and its kernels launched by name, on either
//!   [`LaunchPath`].
//! - [`DeviceRunner`] / [`Batch`]: the runtime SO as a module (its init and
//!   exec kernels), typed batches.
//! - [`maintenance`]: list and clean what simpler installed on a device.
//! - [`Error`]: the one error type.
//!
//! The crate has no `unsafe` code: every C call and its safety argument is
//! in `simpler-cann-sys`.

#![forbid(unsafe_code)]

pub mod artifacts;
mod batch;
mod bootstrap;
pub mod cann;
pub mod elf;
mod error;
mod image;
pub mod maintenance;
mod module;
mod runner;
mod single_flight;

pub use batch::{Batch, BatchOutcome, CustomTask};
pub use cann::{BorrowedStream, Cann, CannSource, Device, DeviceBuffer, DeviceSlice, Stream};
pub use elf::{
    DynSymbol, Machine, NotAFunction, PreflightError, PreflightProblem, Role, SoInfo, SymbolKind,
};
pub use error::{
    BootstrapError, BootstrapFailure, CannError, Error, FailedStep, KernelError, KernelStep,
    LaunchedKernel, LoadError, Result, TaskFailure,
};
pub use image::SoImage;
pub use module::{Kernel, LaunchPath, Module, ModuleBuilder, ModuleInfo};
pub use runner::{DeviceRunner, DeviceRunnerBuilder, LogLevel, RunnerInfo};
pub use single_flight::CacheStatus;

/// The layouts and constants shared with the device side, re-exported so
/// users need not depend on `simpler-abi` separately.
pub use simpler_abi as abi;

// Runners move between threads and CANN handles are shared; keep it so.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Cann>();
    send_sync::<Device>();
    send_sync::<DeviceBuffer>();
    send_sync::<DeviceRunner>();
    send_sync::<Error>();
    send_sync::<SoImage>();
    send_sync::<Module>();
    send_sync::<Kernel>();
    send_sync::<Stream>();
};
