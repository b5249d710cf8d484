//! `simpler-host` end to end on the simulator, one binary. Each test runs
//! its body in a child process with a fresh simulator root
//! (`simpler_testkit::in_sim`), named by its path in this binary
//! (`bootstrap::…`), as libtest names it.
//!
//! - [`bootstrap`]: the single-flight cache, installs, the dispatcher's
//!   report, init's ABI check;
//! - [`faults`]: op and launch timeouts, a crashed device;
//! - [`hot_path`]: `exec` allocates no host memory;
//! - [`module`]: modules of C kernel SOs on both launch paths, borrowed
//!   streams, registrations and what is left behind;
//! - [`ops`]: every built-in op against the host, per-task errors, memory
//!   accounting;
//! - [`preflight`]: every preflight failure, before anything reaches the
//!   device.

mod bootstrap;
mod faults;
mod hot_path;
mod module;
mod ops;
mod preflight;
