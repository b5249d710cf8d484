//! `libsimpler.so`: the C ABI of `simpler-host`, declared in
//! `include/simpler.h` (generated from this crate by cbindgen; a test fails
//! when the committed header is stale).
//!
//! Conventions, for every function (`docs/c-api.md` has them for users):
//! - **Handles are opaque** (`simpler_cann`, `simpler_module`,
//!   `simpler_buffer`), made by one function and destroyed by its own
//!   (`simpler_cann_close`, `simpler_module_unload`, `simpler_buffer_free`),
//!   which accept NULL. They may be destroyed in any order: each holds
//!   what it needs of the others.
//! - **Return values**: `0` or a negative `SIMPLER_ERROR_*` code. After a
//!   failure, `simpler_last_error()` is this thread's message and
//!   `simpler_last_cann_code()` the CANN code behind it (0 when CANN did
//!   not fail). Every call that can fail clears both first, so they always
//!   describe the thread's latest call.
//! - **No panic crosses the boundary**: a panic is caught and reported as
//!   `SIMPLER_ERROR_INTERNAL`.
//!
//! Module map: [`status`] (codes, the last error, the panic guard),
//! [`handles`] (the handle types and their operations, safe Rust), `ffi`
//! (the exported functions: pointers in, codes out — the only `unsafe`).

pub mod handles;
pub mod status;

mod ffi;

pub use ffi::*;
pub use status::*;
