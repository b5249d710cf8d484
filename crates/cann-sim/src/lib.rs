//! `libsimpler_cann_sim.so`: the subset of CANN's ACL/RT C API that simpler
//! uses, implemented over simulated devices. Each device is a separate
//! `simpler-sim-aicpu` process (the emulated AICPU OS, crate
//! `simpler-sim-aicpu`) that maps the device's memory at a fixed address,
//! emulates `libaicpu_extend_kernels` for KFC launches and the AICPU
//! scheduler for type-2 launches, and runs the real device SOs. See
//! `docs/simulator.md`.
//!
//! Layout: `ffi` (the exported C functions, checked against
//! `simpler-cann-sys`; the only place C pointers become references and
//! slices) → `sim` (process-wide state and every operation, safe) →
//! `device` (one device process: spawn, channel, streams, memory,
//! counters) → `alloc` (the device allocator); `binary` is the registry of
//! the binary-handle path (`rtsBinaryLoadFromFile` and friends). `sys` holds every libc call
//! and raw memory copy; `config`, `error` and `machine` are leaves.
//! Everything both processes share is in `simpler-sim-protocol`.

mod alloc;
mod binary;
mod config;
mod device;
mod error;
mod ffi;
mod machine;
mod sim;
mod sys;
