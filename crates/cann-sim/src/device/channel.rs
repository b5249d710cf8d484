//! The control channel as the host side uses it: the watcher thread that
//! sleeps until the channel hangs up, the threads that read their own
//! replies while they wait, and sending requests without deadlocking
//! against a device that is itself blocked sending.

use std::os::fd::AsFd;
use std::process::Child;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use simpler_sim_protocol::channel::{self, Received};
use simpler_sim_protocol::{reply, request, Reply, Request};

use super::reap::{reap, EXIT_GRACE};
use super::{lock, order, Device, Inflight, State};
use crate::error::*;

/// How long a device process has to answer a heartbeat, or to make room in
/// the channel for a request, before it counts as not answering. A live
/// one answers within a tick or two of its main thread (about 1 ms) even
/// while every worker runs a kernel, so this only has to outlast a loaded
/// machine's scheduling delays.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);

impl Device {
    /// The watcher thread: it started the device process (so the process
    /// dies with it) and sleeps until the channel hangs up — the device
    /// process died, or the host shut the channel down. Replies are read by
    /// the threads that wait for them ([`Device::wait_for`]), not here, so a
    /// completion reaches its waiter without a hand-off between threads.
    /// The watcher then reads what is left, reaps the process and fails
    /// whatever was still in flight.
    pub(super) fn watch(self: std::sync::Arc<Self>, mut child: Child) {
        // POLLRDHUP alone: arriving replies do not wake this thread, a hang-up
        // (POLLHUP, POLLERR are always reported) does.
        while channel::wait(self.ctl.as_fd(), libc::POLLRDHUP, None) == 0 {}
        let mut st = lock(&self.state);
        while st.reading {
            st = self.wait_cond(st, None);
        }
        st.reading = true;
        // A process that did not answer will not exit on its own either (it
        // may be stopped): no grace.
        let grace = if st.unanswered {
            Duration::ZERO
        } else {
            EXIT_GRACE
        };
        drop(st);
        // Replies the device sent before it ended still count.
        while let Ok(Received::Msg(r)) = channel::try_recv::<Reply>(self.ctl.as_fd()) {
            let mut st = lock(&self.state);
            self.on_reply(&mut st, &r);
        }
        let status = reap(&mut child, grace);
        let mut st = lock(&self.state);
        st.reading = false;
        st.closed = true;
        // Whoever still waits on this device (a sync racing a reset, or
        // any call after a crash) must wake up with an answer.
        let (code, why, dead) = if st.closing {
            let why = format!("device {} was reset", self.id);
            (ACL_ERROR_RT_DEVICE_TASK_ABORT, why.clone(), why)
        } else {
            let why = format!("device process {} of device {} {status}", self.pid, self.id);
            let dead = format!(
                "device {} is unusable until aclrtResetDevice: {why}",
                self.id
            );
            (ACL_ERROR_RT_AICPU_EXCEPTION, why, dead)
        };
        let inflight: Vec<Inflight> = st.inflight.drain().map(|(_, f)| f).collect();
        for f in inflight {
            if let Some(off) = f.args_copy {
                st.alloc.free(off);
            }
            if let Some(s) = st.streams.get_mut(&f.stream) {
                s.completed += 1;
                s.error.get_or_insert((
                    f.ordinal,
                    AclError::new(code, format!("{why} while this launch was in flight")),
                ));
            }
        }
        st.dead = Some(dead);
        drop(st);
        self.cond.notify_all();
    }

    /// Waits on the condition variable (counted, so wakers know whether
    /// anyone listens), at most until `deadline`.
    fn wait_cond<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, State> {
        st.waiters += 1;
        let mut st = match deadline {
            None => self.cond.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.cond
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
        st.waiters -= 1;
        st
    }

    /// Wakes every thread waiting on the condition variable, if any.
    fn wake_waiters(&self, st: &State) {
        if st.waiters > 0 {
            self.cond.notify_all();
        }
    }

    /// Waits until `done` holds, or `deadline` passes (then `Err` with the
    /// guard). While no other thread reads the control channel, the caller
    /// reads it itself, applies each reply and wakes the other waiters; so
    /// the completion a sync waits for wakes that very thread, and only
    /// concurrent waiters pay a hand-off.
    pub(super) fn wait_for<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
        mut done: impl FnMut(&State) -> bool,
    ) -> Result<MutexGuard<'a, State>, MutexGuard<'a, State>> {
        loop {
            if done(&st) {
                return Ok(st);
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Err(st);
            }
            if st.reading || st.closed {
                st = self.wait_cond(st, deadline);
                continue;
            }
            st.reading = true;
            drop(st);
            let got = match self.spin_for_reply(deadline) {
                Some(got) => got,
                None => self.block_for_reply(deadline),
            };
            st = lock(&self.state);
            st.reading = false;
            match got {
                Ok(Received::Msg(r)) => self.on_reply(&mut st, &r),
                Ok(Received::Empty) => {}
                Ok(Received::Closed) => st.closed = true,
                Err(_) => {
                    // Not expected from a socket pair; treat the channel as
                    // broken and let the watcher settle the device.
                    st.closed = true;
                    channel::shut_down(&self.ctl);
                }
            }
            self.wake_waiters(&st);
        }
    }

    /// Polls the channel for a reply for at most the spin time (and not
    /// past `deadline`): the reply a sync waits for often arrives within a
    /// few microseconds, sooner than a blocked thread would wake up. Each
    /// turn yields the CPU, so a device thread sharing it runs at once (a
    /// pure spin held it off for the whole spin: see docs/simulator.md,
    /// "Waiting"). `None` when nothing came.
    fn spin_for_reply(
        &self,
        deadline: Option<Instant>,
    ) -> Option<std::io::Result<Received<Reply>>> {
        if self.spin.is_zero() {
            return None;
        }
        let start = Instant::now();
        let end = deadline.map_or(start + self.spin, |d| d.min(start + self.spin));
        loop {
            match channel::try_recv::<Reply>(self.ctl.as_fd()) {
                Ok(Received::Empty) => {}
                got => return Some(got),
            }
            if Instant::now() >= end {
                return None;
            }
            std::hint::spin_loop();
            std::thread::yield_now();
        }
    }

    /// Blocks until a reply comes, or `deadline` passes (then `Empty`).
    fn block_for_reply(&self, deadline: Option<Instant>) -> std::io::Result<Received<Reply>> {
        match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
            Some(left) if left.is_zero() => Ok(Received::Empty),
            None => channel::recv::<Reply>(self.ctl.as_fd()).map(|r| match r {
                Some(r) => Received::Msg(r),
                None => Received::Closed,
            }),
            Some(left) => {
                if channel::wait(self.ctl.as_fd(), libc::POLLIN, Some(left)) == 0 {
                    Ok(Received::Empty)
                } else {
                    channel::try_recv::<Reply>(self.ctl.as_fd())
                }
            }
        }
    }

    fn on_reply(&self, st: &mut State, r: &Reply) {
        match r.kind {
            reply::DONE => {
                let c = &self.counters;
                c.kfc_calls.fetch_add(r.kfc_calls.into(), Ordering::Relaxed);
                c.dispatcher_saves
                    .fetch_add(r.dispatcher_saves.into(), Ordering::Relaxed);
                c.dlopens.fetch_add(r.dlopens.into(), Ordering::Relaxed);
                if let Some(f) = st.inflight.remove(&r.seq) {
                    if let Some(off) = f.args_copy {
                        st.alloc.free(off);
                    }
                    if let Some(s) = st.streams.get_mut(&f.stream) {
                        s.completed += 1;
                        if r.code != ACL_SUCCESS && s.error.is_none() {
                            s.error = Some((f.ordinal, AclError::new(r.code, r.message())));
                        }
                    }
                }
            }
            reply::PONG => st.pongs += 1,
            _ => {}
        }
    }

    fn unreachable(&self, e: std::io::Error) -> AclError {
        AclError::new(
            ACL_ERROR_RT_DRV_INTERNAL_ERROR,
            format!("device {} process is unreachable: {e}", self.id),
        )
    }

    /// Sends a request, under `send_order`. When the channel is full (the
    /// device is blocked sending replies nobody reads), reads replies while
    /// waiting for room, so the two sides cannot wait for each other. A
    /// device that makes no room within [`ANSWER_WITHIN`] is not answering
    /// ([`Device::lose`]).
    pub(super) fn send(&self, req: &Request) -> AclResult<()> {
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            match channel::try_send(self.ctl.as_fd(), req) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.unreachable(e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.lose("made no room in its control channel for a request"));
            }
            let mut st = lock(&self.state);
            let read = !st.reading && !st.closed;
            st.reading |= read;
            drop(st);
            let events = if read {
                libc::POLLIN | libc::POLLOUT
            } else {
                libc::POLLOUT
            };
            let ready = channel::wait(self.ctl.as_fd(), events, Some(left));
            if read {
                let got = if ready & libc::POLLIN != 0 {
                    channel::try_recv::<Reply>(self.ctl.as_fd())
                } else {
                    Ok(Received::Empty)
                };
                let mut st = lock(&self.state);
                st.reading = false;
                match got {
                    Ok(Received::Msg(r)) => self.on_reply(&mut st, &r),
                    Ok(Received::Empty) => {}
                    Ok(Received::Closed) | Err(_) => st.closed = true,
                }
                self.wake_waiters(&st);
            }
        }
    }

    /// Whether the device process answers: one ping, and its pong within
    /// [`ANSWER_WITHIN`]. One that does not is lost ([`Device::lose`]).
    /// Teardown asks this of a device whose launches do not finish, since a
    /// live device always ends them (at the latest at their op timeout),
    /// while a stopped or hung process never would.
    pub(super) fn heartbeat(&self) {
        let order = order(&self.send_order);
        let want = {
            let st = lock(&self.state);
            if st.dead.is_some() {
                return;
            }
            st.pongs + 1
        };
        let sent = self.send(&Request {
            kind: request::PING,
            ..Request::default()
        });
        drop(order);
        if sent.is_err() {
            return;
        }
        let deadline = Instant::now() + ANSWER_WITHIN;
        let st = lock(&self.state);
        if let Err(st) = self.wait_for(st, Some(deadline), |st| {
            st.pongs >= want || st.dead.is_some()
        }) {
            drop(st);
            self.lose("did not answer a heartbeat");
        }
    }

    /// Gives the device up as not answering: what was in flight fails, and
    /// every later call fails with 507899 until `aclrtResetDevice`, which
    /// kills the process at once. The process is left as it is until then
    /// (someone may be inspecting it), and so are the argument copies of
    /// the launches abandoned here, which it may still read if it resumes.
    /// Returns the error of the call that found it so.
    pub(super) fn lose(&self, what: &str) -> AclError {
        let mut st = lock(&self.state);
        if let Some(why) = &st.dead {
            return AclError::new(ACL_ERROR_RT_DRV_INTERNAL_ERROR, why.clone());
        }
        let why = format!(
            "device {} stopped answering: its process {} {what} within {} s",
            self.id,
            self.pid,
            ANSWER_WITHIN.as_secs()
        );
        let inflight: Vec<Inflight> = st.inflight.drain().map(|(_, f)| f).collect();
        for f in inflight {
            if let Some(s) = st.streams.get_mut(&f.stream) {
                s.completed += 1;
                s.error.get_or_insert((
                    f.ordinal,
                    AclError::new(
                        ACL_ERROR_RT_DRV_INTERNAL_ERROR,
                        format!("{why} while this launch was in flight"),
                    ),
                ));
            }
        }
        let dead = format!(
            "device {} is unusable until aclrtResetDevice: {why}",
            self.id
        );
        st.unanswered = true;
        st.dead = Some(dead.clone());
        drop(st);
        self.cond.notify_all();
        AclError::new(ACL_ERROR_RT_DRV_INTERNAL_ERROR, dead)
    }

    /// One ping-pong with the device process.
    pub fn ping(&self) -> AclResult<()> {
        let order = order(&self.send_order);
        let want = self.live_state()?.pongs + 1;
        self.send(&Request {
            kind: request::PING,
            ..Request::default()
        })?;
        drop(order);
        let st = lock(&self.state);
        let st = self
            .wait_for(st, None, |st| st.pongs >= want || st.dead.is_some())
            .unwrap_or_else(|st| st);
        self.alive(&st)
    }
}
