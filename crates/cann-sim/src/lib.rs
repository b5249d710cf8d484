//! `libsimpler_cann_sim.so`: the subset of CANN's ACL/RT C API that simpler
//! uses, implemented over simulated devices. Each device is a separate
//! `simpler-sim-aicpu` process (the emulated AICPU OS) that maps the
//! device's memory at a fixed address, emulates `libaicpu_extend_kernels`
//! for KFC launches and the AICPU scheduler for type-2 launches, and runs
//! the real device SOs. See `docs/simulator.md`.
//!
//! Layout: `ffi` (the exported C functions) → `sim` (process-wide state and
//! every operation) → `device` (one device process, its streams and
//! launches) → `memory` (all raw memory mapping) and `alloc`.

mod alloc;
mod config;
mod device;
mod error;
mod ffi;
mod machine;
mod memory;
// Shared with the device binary, which alone builds replies.
#[allow(dead_code)]
mod protocol;
mod sim;
