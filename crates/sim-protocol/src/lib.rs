//! What both sides of the CANN simulator agree on: the library
//! (`libsimpler_cann_sim.so`, in the host process) and each device process
//! (`simpler-sim-aicpu`), plus the tests and tools that look at a simulated
//! device from outside.
//!
//! - [`message`]: the records of the control channel, their kinds and flags;
//! - [`channel`]: sending and receiving them over the socket pair;
//! - [`doorbell`]: the eventfd that wakes a sleeping thread;
//! - [`command`]: the device process's command line;
//! - [`layout`]: where a simulated device keeps its files.
//!
//! Every `unsafe` of the crate is in its private `sys` module.

pub mod channel;
pub mod command;
pub mod doorbell;
pub mod layout;
pub mod message;
mod sys;

pub use command::DeviceCommand;
pub use doorbell::Doorbell;
pub use message::{reply, request, Record, Reply, Request, LAUNCH_FLAG_DIE, MSG_LEN};
