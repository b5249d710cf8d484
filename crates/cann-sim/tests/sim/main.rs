//! The simulator's integration tests, one binary: every error path of the
//! C API (`errors`), fault injection and device-process lifetime
//! (`faults`), teardown on a device that never answers (`teardown`), the
//! stacks the bootstrap cannot work on, emulated (`stacks`),
//! scheduling on the emulated AICPU (`scheduling`), the real
//! device SOs through the C API (`real_path`, also run with the device side
//! under qemu), and the C header checked against the Rust layouts
//! (`header`), and the binary-handle path with the AICPU scheduler's side of
//! kernel SOs (`binary`). `common` is what they share.
//!
//! Tests that need their own simulator configuration re-run themselves in
//! a child process by their full name (`errors::…`).

mod binary;
mod common;
mod errors;
mod faults;
mod header;
mod real_path;
mod scheduling;
mod stacks;
mod teardown;
