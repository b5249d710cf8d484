//! simpler's benchmarks: every performance goal (`docs/performance.md`)
//! measured against a floor measured in the same run, on the simulator with
//! host-architecture artifacts.
//!
//! `cargo run --release -p simpler-bench` (what `cargo xtask bench` runs)
//! prints one table of every metric ([`suite::run`]) and, with `--plots
//! DIR`, the growth curves' SVG plots; `cargo bench -p
//! simpler-bench` runs the latency metrics under criterion
//! (`benches/latency.rs`), and `cargo bench -p simpler-bench --bench
//! sim_latency` the simulator's own round trip against the same IPC floor
//! (`benches/sim_latency.rs`). They share these modules:
//!
//! - [`setup`]: private simulator root, artifacts, the CANN API;
//! - [`ipc`]: the IPC ping-pong floor (a forked echo child);
//! - [`launch`]: empty exec launches through the host and as bare C calls,
//!   on the simulator and through the immediate launch shim;
//! - [`bootstrap`]: runtime SOs padded to a size with a non-loaded
//!   section, cold bootstraps of them, their in-process floor, warm runner
//!   creation;
//! - [`tasks`]: the per-task cost of batches of 1 to 100,000 tasks;
//! - [`paths`]: an empty kernel on both launch paths of
//!   `simpler_host::Module`, the binary path's registration, module cycles;
//! - [`plot`]: the growth curves as SVG (`--plots DIR`);
//! - [`memory`]: device bytes left behind, host RSS over runner cycles;
//! - [`throughput`]: FNV-1a against the `fnv` crate;
//! - [`size`]: the aarch64 dispatcher's size from the build manifest;
//! - [`cpu`]: pinning the run to one CPU;
//! - [`stats`] and [`report`]: order statistics and the table.
//! - `sys` (private): every raw call outside the CANN API, which goes
//!   through `simpler-cann-sys` — sockets and the forked echo child, CPU
//!   affinity, `dlopen`, the launch shim's controls.

pub mod bootstrap;
pub mod cpu;
pub mod ipc;
pub mod launch;
pub mod memory;
pub mod paths;
pub mod plot;
pub mod report;
pub mod setup;
pub mod size;
pub mod stats;
pub mod suite;
mod sys;
pub mod tasks;
pub mod throughput;
