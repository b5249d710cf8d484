//! Shared support for simpler's end-to-end tests.
//!
//! - [`host_artifacts`] / [`device_artifacts`]: the SOs and simulator pieces
//!   `cargo xtask build` puts in `target/artifacts/<triple>/`. Unless
//!   `SIMPLER_ARTIFACTS_DIR` names a ready directory (as `cargo xtask test`
//!   does), the first call in a test process runs
//!   `cargo xtask build --target host`, so a plain `cargo test` works and
//!   always tests the current sources.
//! - [`SimRoot`]: a private `SIMPLER_SIM_ROOT` removed on drop, and the
//!   paths of the devices under a root ([`preinstall_dir`], [`layout`]).
//! - [`in_child`] / [`run_child`] / [`in_sim`] / [`child_command`]: the simulator reads its
//!   configuration from the process environment, so a test that needs its
//!   own configuration re-runs itself in a child process with that
//!   environment.
//! - [`compile_c`]: ELF files of shapes no artifact has, built from C with
//!   the host's `cc`.
//! - [`within`]: a watchdog that ends a child whose call hangs far beyond
//!   the bound under test; [`stop_process`] / [`process_state`]: a process
//!   stopped as a wedged device process is, and its state.
//! - [`host`] (feature `host`): the simulator loaded through
//!   `simpler-host`, its accounting, and a runner builder naming the device
//!   artifacts.
//!
//! The names the artifacts and the simulator agree on come from
//! `simpler-abi` and `simpler-sim-protocol`; this crate re-exports the ones
//! its API is written in.

mod artifacts;
mod cc;
mod child;
#[cfg(feature = "host")]
pub mod host;
mod process;
mod sim;
mod sys;
mod watchdog;

pub use artifacts::{device_artifacts, host_artifacts, workspace_root, Artifacts};
pub use cc::{compile_c, compile_device_c};
pub use child::{child_command, in_child, is_child, run_child, CHILD_ENV};
pub use process::{process_state, stop_process};
pub use sim::{child_env, in_sim, preinstall_dir, preinstalled, sim_root, SimRoot};
pub use simpler_abi::artifacts::{files, host_triple, ARTIFACTS_DIR_ENV, DEVICE_ARTIFACTS_DIR_ENV};
pub use simpler_sim_protocol::layout;
pub use watchdog::within;
