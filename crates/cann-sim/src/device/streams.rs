//! Streams and what runs on them: registering and destroying streams,
//! queueing a launch (its argument block copied into device memory first),
//! and waiting for a stream's launches with their first failure.

use std::time::{Duration, Instant};

use simpler_sim_protocol::{request, Request, LAUNCH_FLAG_DIE};

use super::{lock, order, Device, Inflight, State, StreamState};
use crate::error::*;

/// How long a stream destroy waits for the stream's launches before it
/// checks that the device still answers.
const PROBE_AFTER: Duration = Duration::from_secs(1);

/// What a launch asks of the device.
#[derive(Clone, Copy, Debug)]
pub struct LaunchSpec<'a> {
    /// Kernel type (2 or 5 for `rtAicpuKernelLaunchExWithArgs`; what the
    /// registration says for `rtsLaunchCpuKernel`).
    pub kernel_type: u32,
    /// AICPU threads.
    pub block_dim: u32,
    /// The argument block: host bytes to copy, or a device address of a
    /// block already in device memory (`isNoNeedH2DCopy`).
    pub args: LaunchArgs<'a>,
    /// Offset of the so name in the block.
    pub so_name_offset: u32,
    /// Offset of the kernel name in the block.
    pub kernel_name_offset: u32,
    /// Offset of the kernel's parameter in the block.
    pub param_offset: u32,
    /// Op timeout.
    pub timeout_ms: u32,
    /// Kill the device process on receipt (fault injection).
    pub die: bool,
}

/// Where a launch's argument block is.
#[derive(Clone, Copy, Debug)]
pub enum LaunchArgs<'a> {
    /// In host memory: copied to device memory before the launch returns.
    Host(&'a [u8]),
    /// Already in device memory at this address, this long.
    Device(u64, u32),
}

impl Device {
    /// Registers a new stream.
    pub fn add_stream(&self, handle: u64) -> AclResult<()> {
        let mut st = self.live_state()?;
        st.streams.insert(handle, StreamState::default());
        Ok(())
    }

    /// Waits for the stream's launches, then forgets it. A device whose
    /// launches do not finish within [`PROBE_AFTER`] is asked whether it
    /// still answers, and again after each further [`PROBE_AFTER`]; one that
    /// does not is given up ([`Device::lose`]), its launches abandoned, and
    /// the stream destroyed all the same. So this returns within about
    /// [`PROBE_AFTER`] + [`super::channel::ANSWER_WITHIN`] on a device that
    /// never answers, and waits for the launches of one that does (which
    /// end at their op timeout at the latest), as CANN's stream teardown
    /// waits while the device runs normally.
    pub fn destroy_stream(&self, handle: u64) -> AclResult<()> {
        let mut st = lock(&self.state);
        let mut missing = false;
        loop {
            let waited = self.wait_for(st, Some(Instant::now() + PROBE_AFTER), |st| {
                match st.streams.get(&handle) {
                    Some(s) => s.completed >= s.submitted || st.dead.is_some(),
                    None => {
                        missing = true;
                        true
                    }
                }
            });
            match waited {
                Ok(done) => {
                    st = done;
                    break;
                }
                Err(busy) => {
                    drop(busy);
                    self.heartbeat();
                    st = lock(&self.state);
                }
            }
        }
        if missing {
            return Err(AclError::param(format!(
                "stream {handle:#x} was already destroyed"
            )));
        }
        drop(st);
        let _order = order(&self.send_order);
        let mut st = lock(&self.state);
        if st.streams.remove(&handle).is_none() {
            return Err(AclError::param(format!(
                "stream {handle:#x} was already destroyed"
            )));
        }
        if st.dead.is_none() {
            drop(st);
            let req = Request {
                kind: request::DESTROY_STREAM,
                stream: handle,
                ..Request::default()
            };
            // A device that cannot hear it is dead; its streams are gone.
            let _ = self.send(&req);
        }
        Ok(())
    }

    /// Queues a launch on `stream`; the argument block is in device memory
    /// when this returns.
    pub fn launch(&self, stream: u64, spec: &LaunchSpec<'_>) -> AclResult<()> {
        let _order = order(&self.send_order);
        let mut st = self.live_state()?;
        if !st.streams.contains_key(&stream) {
            return Err(AclError::param(format!(
                "stream {stream:#x} does not exist on device {}",
                self.id
            )));
        }
        let (args, args_size, args_copy) = match spec.args {
            LaunchArgs::Host(bytes) => {
                let off = st.alloc.alloc(bytes.len() as u64, true).ok_or_else(|| {
                    AclError::new(
                        ACL_ERROR_RT_MEMORY_ALLOCATION,
                        format!(
                            "no device memory left for the {}-byte argument block",
                            bytes.len()
                        ),
                    )
                })?;
                // The block was just allocated with its length.
                self.mem.write(off, bytes);
                (self.base + off, bytes.len() as u32, Some(off))
            }
            LaunchArgs::Device(addr, len) => {
                self.check_range(&st, addr, len.into(), "args")?;
                (addr, len, None)
            }
        };
        // Another stream's launch may be running on the device's reader
        // (or this launch kills the device): ring so it is read at once.
        let ring = spec.die || st.inflight.values().any(|f| f.stream != stream);
        let seq = st.next_seq;
        st.next_seq += 1;
        let s = st.streams.get_mut(&stream).expect("checked above");
        s.submitted += 1;
        let ordinal = s.submitted;
        let req = Request {
            kind: request::LAUNCH,
            flags: if spec.die { LAUNCH_FLAG_DIE } else { 0 },
            seq,
            stream,
            kernel_type: spec.kernel_type,
            block_dim: spec.block_dim,
            args,
            args_size,
            so_name_offset: spec.so_name_offset,
            kernel_name_offset: spec.kernel_name_offset,
            timeout_ms: spec.timeout_ms,
            param_offset: spec.param_offset,
            reserved: 0,
        };
        st.inflight.insert(
            seq,
            Inflight {
                stream,
                ordinal,
                args_copy,
            },
        );
        // Sent without the state lock, so a thread waiting for replies can
        // take them meanwhile.
        drop(st);
        if let Err(e) = self.send(&req) {
            // Undo the launch: the caller gets the error instead. (If the
            // watcher already failed it as in flight, undo that too; no
            // later launch exists, `send_order` is still held.)
            let mut st = lock(&self.state);
            let settled = st.inflight.remove(&seq).is_none();
            if let Some(off) = args_copy {
                if !settled {
                    st.alloc.free(off);
                }
            }
            if let Some(s) = st.streams.get_mut(&stream) {
                s.submitted -= 1;
                if settled {
                    s.completed -= 1;
                    if s.error.as_ref().is_some_and(|(o, _)| *o == ordinal) {
                        s.error = None;
                    }
                }
            }
            return Err(e);
        }
        if ring {
            self.bell.ring();
        }
        Ok(())
    }

    /// Waits for every launch queued on `stream` so far; returns the first
    /// failure among them (and clears it), 507046 when `timeout` passes
    /// first, 507899 when the device process has died.
    pub fn sync(&self, stream: u64, timeout: Option<Duration>) -> AclResult<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let st = lock(&self.state);
        let target = match st.streams.get(&stream) {
            Some(s) => s.submitted,
            None => {
                return Err(AclError::param(format!(
                    "stream {stream:#x} does not exist on device {}",
                    self.id
                )))
            }
        };
        let mut gone = false;
        let waited = self.wait_for(st, deadline, |st| match st.streams.get(&stream) {
            Some(s) => s.completed >= target,
            None => {
                gone = true;
                true
            }
        });
        let mut st = match waited {
            Ok(st) => st,
            Err(st) => {
                let left = st
                    .streams
                    .get(&stream)
                    .map_or(0, |s| target.saturating_sub(s.completed));
                return Err(AclError::new(
                    ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
                    format!(
                        "{left} launch(es) on stream {stream:#x} still running after {} ms",
                        timeout.unwrap_or_default().as_millis()
                    ),
                ));
            }
        };
        if gone {
            return Err(AclError::param(format!(
                "stream {stream:#x} was destroyed during the sync"
            )));
        }
        let failed = |st: &State| {
            st.streams.get(&stream).is_some_and(|s| {
                s.error
                    .as_ref()
                    .is_some_and(|(ordinal, _)| *ordinal <= target)
            })
        };
        if !failed(&st) {
            return self.alive(&st);
        }
        // Take the error and tell the device in one step with respect to
        // launches, which hold `send_order` (taken before the state lock).
        drop(st);
        let _order = order(&self.send_order);
        st = lock(&self.state);
        if !failed(&st) {
            return self.alive(&st);
        }
        let s = st.streams.get_mut(&stream).expect("checked in failed()");
        let (_, err) = s.error.take().expect("checked in failed()");
        if st.dead.is_none() {
            drop(st);
            // Later launches were aborted device-side until the host saw
            // this error; let the stream run again.
            self.send(&Request {
                kind: request::CLEAR_STREAM_ERROR,
                stream,
                ..Request::default()
            })?;
        }
        Err(err)
    }
}
