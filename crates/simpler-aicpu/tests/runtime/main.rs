//! The runtime SO's code called in this process as the AICPU scheduler
//! calls it: a work batch built in this process's memory as a host builds
//! it in device memory, run by calling the exports from real threads.
//!
//! This binary defines and exports `DlogRecord` (see `build.rs`), as the
//! AICPU process does. The runtime's state is process-wide (the latched
//! configuration and log level), so the tests that need it untouched re-run
//! themselves alone in a child process ([`common::run_in_child`]).

mod claiming;
mod common;
mod custom;
mod dlog;
mod failures;
mod ffi;
mod lifecycle;
mod measure;
mod ops;
mod panics;
mod ranges;
