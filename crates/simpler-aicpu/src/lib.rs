//! The simpler runtime SO, `libsimpler_aicpu.so`, and the glue to write
//! other runtime SOs.
//!
//! The SO exports exactly two C functions, which the AICPU scheduler calls
//! on a `KERNEL_TYPE_AICPU` launch once the dispatcher has installed the SO
//! as `simpler_inner_<fp>.so`:
//!
//! - `int32_t simpler_aicpu_init(const InitArgs *)` — checks the ABI
//!   version and latches device id, log level and thread count;
//! - `int32_t simpler_aicpu_exec(const KernelArgs *)` — runs the batch of
//!   tasks (a [`WorkHeader`](abi::WorkHeader) in device memory) that
//!   `runtime_args` points at; every thread of the launch calls it and the
//!   threads share the tasks.
//!
//! The byte layouts, op codes, status codes, return codes and the claim
//! protocol are specified in `docs/abi.md`.
//!
//! # Modules
//!
//! - [`glue`]: argument and header checks, the latched configuration, task
//!   claiming, status publishing and panic containment — the part every
//!   runtime SO shares;
//! - [`ops`]: the built-in ops ([`abi::OpCode`]);
//! - [`log`]: the device log through CANN's `DlogRecord`, resolved at run
//!   time.
//!
//! Raw pointers and C calls stay in two private modules: `ffi` (launch
//! payloads and device memory) and `sys` (`DlogRecord`).
//!
//! # Writing another runtime SO on the glue
//!
//! A runtime SO with its own ops is a `cdylib` crate that depends on this
//! one **without its default `exports` feature** (which defines this SO's
//! two symbols; linking both definitions would collide) and hands its task
//! runner to [`export_runtime!`]:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! simpler-aicpu = { path = "…/crates/simpler-aicpu", default-features = false }
//! ```
//!
//! `simpler_aicpu::export_runtime!(run);` then defines the two exports
//! around `run`, a `fn(&glue::TaskCtx) -> Result<(), abi::TaskStatus>`.
//! Give your ops codes
//! in the custom range ([`abi::CustomOp`], `0x8000_0000..=0xFFFF_FFFF`),
//! which no built-in will ever use, match on [`glue::TaskCtx::custom_op`],
//! and pass every other task to [`ops::run`] to keep the built-ins.
//!
//! `examples/own-runtime/` in the repository is a complete, built and run
//! example: a runtime SO with three custom ops (one reading the launch's
//! register block through [`glue::TaskCtx::reg`]) on top of the built-ins,
//! in a workspace of its own, and a host program that bootstraps it and
//! checks a batch mixing both kinds of task (`cargo xtask test` runs it on
//! the simulator, natively and with the device side as aarch64 under qemu).
//!
//! The runner sees one claimed task at a time ([`glue::TaskCtx`]) and
//! reaches device memory only through the task's own operands
//! ([`glue::DeviceRange`], [`glue::DeviceSlice`]) and the launch's
//! register block, read only ([`glue::TaskCtx::reg`]); these check null
//! addresses, lengths and alignment and report them as the matching
//! [`abi::TaskStatus`].
//!
//! Reads copy the bytes out ([`glue::DeviceRange::read_at`],
//! [`to_vec`](glue::DeviceRange::to_vec), [`glue::DeviceSlice::get`]):
//! no view lends a reference into device memory, because another view of
//! the same task may write those bytes.
//!
//! The glue does the rest: ABI checks, the process-wide configuration
//! ([`glue::config`]), claiming, refusing tasks with `flags`, statuses,
//! counters, return codes ([`glue::code`]), and catching a panic per task
//! (status `Panicked`) and per export, logged to the device log rather
//! than printed (see [`glue`]). The new SO keeps the same export names and
//! work description, so the host runs it unchanged. Build it like this one
//! (`panic = "unwind"`, as the workspace's `device` profile does): with
//! `panic = "abort"` a panicking task kills the AICPU process, and every
//! runner on that device fails until all of them are dropped
//! (`docs/abi.md`, "Panics"). A second runtime crate inside this workspace
//! would get this crate's `exports` feature switched back on by feature
//! unification under `cargo build --workspace`; build it with `-p` or keep
//! it in a workspace of its own.

pub mod glue;
pub mod log;
pub mod ops;

mod contain;
mod ffi;
mod sys;

/// The shared layouts and constants, re-exported for runtime SO crates.
pub use simpler_abi as abi;

#[cfg(feature = "exports")]
export_runtime!(ops::run);
