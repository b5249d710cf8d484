//! What both sides of the CANN simulator agree on: the library
//! (`libsimpler_cann_sim.so`, in the host process) and each device process
//! (`simpler-sim-aicpu`), plus the tests and tools that look at a simulated
//! device from outside.
//!
//! - [`layout`]: where a simulated device keeps its files.

pub mod layout;
