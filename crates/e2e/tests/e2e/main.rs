//! simpler's workspace-level end-to-end tests, one binary:
//!
//! - [`stress`]: several host processes sharing simulated devices;
//! - [`fault_matrix`]: every fault the simulator injects, at every phase of
//!   a runner's life;
//! - [`killed_writes`]: bootstraps killed mid-write leave at most one temp
//!   file each, and the next one past the age bound none;
//! - [`maintenance`]: listing and cleaning a device's preinstall directory
//!   through `simpler_host::maintenance`;
//! - [`prop_preflight`], [`prop_dispatcher`]: property tests of the two
//!   places that take bytes simpler did not make, with the oracles the fuzz
//!   targets use (`simpler-fuzz-cases`);
//! - [`stacks`]: the stacks the bootstrap cannot work on, emulated by the
//!   simulator, give errors with CANN's code and message;
//! - [`wedged`]: a runner on a device process that stops answering drops
//!   in bounded time, and the device works again;
//! - [`support`]: what they share.
//!
//! A test that re-runs itself in a child process names itself by its path
//! in this binary (`stress::…`), as libtest does.

mod fault_matrix;
mod killed_writes;
mod maintenance;
mod prop_dispatcher;
mod prop_preflight;
mod stacks;
mod stress;
mod support;
mod wedged;
