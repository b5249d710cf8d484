//! The dispatcher SO called as CANN's `libaicpu_extend_kernels.so` calls
//! it: dlopen the host-arch artifact, resolve the three contract symbols,
//! build the bootstrap block, `DeviceArgs` and report in memory (host and
//! "device" share one address space here) and call Init.
//!
//! The dispatcher reads `SIMPLER_AICPU_PREINSTALL_DIR` from the process
//! environment, so every test that installs runs its body in a child
//! process with its own directory ([`common::preinstall_dir_or_spawn`]).
//!
//! This binary defines and exports `DlogRecord` (see `build.rs`), as the
//! AICPU process does; the dispatcher's unit tests run where there is none.

mod common;
mod concurrency;
mod dlog;
mod exports;
mod ffi;
mod install;
mod maintenance;
mod sweep;
