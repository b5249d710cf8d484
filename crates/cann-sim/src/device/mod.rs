//! One simulated device as the host library sees it: the device process
//! (`simpler-sim-aicpu`), its memory, its streams and the launches in
//! flight on them.
//!
//! The state is defined here; each concern adds its methods in its own
//! file: `spawn` (start and stop the process), `channel` (the watcher
//! thread, reading replies, sending requests), `streams` (launches and
//! syncs), `memory` (allocations and bounds-checked copies), `counters`
//! (the accounting that outlives the process), `reap` (how a process
//! ended).

mod channel;
mod counters;
mod memory;
mod reap;
mod spawn;
mod streams;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use simpler_sim_protocol::Doorbell;

pub use self::counters::Counters;
pub use self::streams::{LaunchArgs, LaunchSpec};
use crate::alloc::Allocator;
use crate::config::{DEVICE_BASE, DEVICE_STRIDE};
use crate::error::*;
use crate::sys::SharedMemory;

/// Address of device `id`'s memory window.
pub fn device_base(id: u32) -> u64 {
    DEVICE_BASE + u64::from(id) * DEVICE_STRIDE
}

#[derive(Debug, Default)]
struct StreamState {
    /// Launches submitted so far.
    submitted: u64,
    /// Launches finished so far (they finish in submission order).
    completed: u64,
    /// The first failure not yet reported by a sync, with the ordinal of
    /// the launch that failed.
    error: Option<(u64, AclError)>,
}

#[derive(Debug)]
struct Inflight {
    stream: u64,
    ordinal: u64,
    /// Offset of the simulator's copy of the argument block, freed when
    /// the launch finishes.
    args_copy: Option<u64>,
}

/// Mutable state of a device, under [`Device::state`].
#[derive(Debug)]
struct State {
    /// The device's memory allocator (offsets from the window base).
    alloc: Allocator,
    streams: HashMap<u64, StreamState>,
    inflight: HashMap<u64, Inflight>,
    next_seq: u64,
    pongs: u64,
    /// The message of every call once the device process is gone (or was
    /// found not answering).
    dead: Option<String>,
    /// The device process did not answer in time ([`Device::lose`]): the
    /// reset kills it without waiting for it to exit.
    unanswered: bool,
    /// The host is shutting the device process down on purpose.
    closing: bool,
    /// A thread is reading the control channel (see [`Device::wait_for`]).
    reading: bool,
    /// The channel reads as closed: nobody reads it again; the watcher
    /// thread settles what was in flight.
    closed: bool,
    /// Threads waiting on `cond`.
    waiters: u32,
}

impl State {
    /// A device with `mem` bytes of free memory and one stream.
    fn new(mem: u64, stream: u64) -> Self {
        Self {
            alloc: Allocator::new(mem),
            streams: HashMap::from([(stream, StreamState::default())]),
            inflight: HashMap::new(),
            next_seq: 1,
            pongs: 0,
            dead: None,
            unanswered: false,
            closing: false,
            reading: false,
            closed: false,
            waiters: 0,
        }
    }
}

/// A running device process and everything the host tracks for it.
#[derive(Debug)]
pub struct Device {
    /// Logical device id.
    pub id: u32,
    /// Device address of the memory window.
    pub base: u64,
    /// Bytes of device memory.
    pub size: u64,
    /// The stream used when a call passes a NULL stream.
    pub default_stream: u64,
    /// Process id of the device process (of qemu under a launcher).
    pub pid: u32,
    mem: SharedMemory,
    ctl: Arc<OwnedFd>,
    /// The device's doorbell: rung after sending a launch that should not
    /// wait until the device's reading worker finishes its current one.
    bell: Doorbell,
    state: Mutex<State>,
    cond: Condvar,
    /// Held from taking a launch's sequence number until its request is on
    /// the channel, so requests leave in sequence order.
    send_order: Mutex<()>,
    counters: Arc<Counters>,
    watcher: Mutex<Option<JoinHandle<()>>>,
    /// How long the thread reading replies polls for one before it blocks
    /// (`SIMPLER_SIM_SPIN_US`).
    spin: std::time::Duration,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the counters half
    // updated in a way that matters more than refusing every later call.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks `send_order` (nothing it guards can be left half done).
fn order(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Device {
    fn alive(&self, st: &State) -> AclResult<()> {
        match &st.dead {
            Some(why) => Err(AclError::new(ACL_ERROR_RT_DRV_INTERNAL_ERROR, why.clone())),
            None => Ok(()),
        }
    }

    /// Locks the state and fails with 507899 if the device process died.
    fn live_state(&self) -> AclResult<MutexGuard<'_, State>> {
        let st = lock(&self.state);
        self.alive(&st)?;
        Ok(st)
    }

    /// This device's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}
