//! simpler's workspace-level end-to-end tests, one binary:
//!
//! - [`stress`]: several host processes sharing simulated devices;
//! - [`fault_matrix`]: every fault the simulator injects, at every phase of
//!   a runner's life;
//! - [`maintenance`]: listing and cleaning a device's preinstall directory
//!   through `simpler_host::maintenance`;
//! - [`prop_preflight`], [`prop_dispatcher`]: property tests of the two
//!   places that take bytes simpler did not make, with the oracles the fuzz
//!   targets use (`simpler-fuzz-cases`);
//! - [`support`]: what the first two share.
//!
//! A test that re-runs itself in a child process names itself by its path
//! in this binary (`stress::…`), as libtest does.

mod fault_matrix;
mod maintenance;
mod prop_dispatcher;
mod prop_preflight;
mod stress;
mod support;
