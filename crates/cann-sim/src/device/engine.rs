//! The AICPU cores of one device process, the order launches run in, and
//! the op timeout.
//!
//! **Workers.** `threads` worker threads (`aicpu0…`) run kernels. An idle
//! worker sleeps on both the control channel and the job bell (an epoll set
//! with `EPOLLEXCLUSIVE`, so one event wakes one worker). The worker a
//! launch request wakes runs the launch's first block itself and queues the
//! other `blockDim - 1` as jobs for idle workers; the last block to finish
//! sends the reply from its own thread. An empty launch therefore costs the
//! device one wake-up, like an echo server, instead of a relay through
//! other threads.
//!
//! **Streams.** A launch starts when its stream has nothing running;
//! otherwise it waits in the stream's queue, and the thread that finishes
//! the running launch (after sending its reply) starts the next one. So a
//! stream runs its launches in order and different streams run at once.
//! After a failure the stream's queued launches end with 107022 until the
//! host clears the error (`CLEAR_STREAM_ERROR`, queued in order too).
//!
//! **Main thread.** It is the watchdog: a launch still running at its
//! deadline ends with 507017 from here (its threads cannot be stopped; the
//! results of their blocks are dropped and its queued blocks skipped). It
//! reads the control channel itself while no worker is listening, so
//! requests are read promptly even when every worker is busy, and it ends
//! the process when the channel hangs up.

use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use simpler_abi::cann::error::ACL_ERROR_RT_DEVICE_TASK_ABORT;
use simpler_abi::names::DISPATCHER_INIT_SYMBOL;

use crate::log::{self, level};
use crate::protocol::{self, reply, request, Received, Reply, Request};
use crate::wake::{self, Bell, WaitSet};
use crate::{Context, Outcome};

/// An AICPU kernel entry point: the device address of the argument block in,
/// 0 for success out.
pub type KernelFn = unsafe extern "C" fn(*mut c_void) -> u32;

/// What each block of a launch calls.
#[derive(Clone, Copy)]
pub enum Entry {
    /// A type-2 kernel.
    Kernel(KernelFn),
    /// The latched dispatcher's `DynTileFwkBackendKernelServerInit` (KFC).
    DispatcherInit(KernelFn),
}

/// A launch that passed its checks and only has to run.
pub struct Ready {
    /// What its blocks call.
    pub entry: Entry,
    /// `so:kernel`, for messages.
    pub label: String,
    /// Accounting so far (SO loads, dispatcher saves and calls).
    pub outcome: Outcome,
}

/// Something queued on a stream behind its running launch.
enum Item {
    Launch(Request),
    ClearError,
}

#[derive(Default)]
struct Stream {
    /// A launch of this stream is running (or being started or finished).
    busy: bool,
    /// A launch failed and no sync has reported it yet.
    failed: bool,
    /// The host destroyed the stream while it was busy.
    destroyed: bool,
    pending: VecDeque<Item>,
}

/// A started launch.
struct Running {
    stream: u64,
    entry: Entry,
    arg: u64,
    label: String,
    blocks: u32,
    /// Blocks not finished (running or queued).
    remaining: u32,
    /// Non-zero results: (block index, return value).
    failures: Vec<(u32, u32)>,
    deadline: Instant,
    timeout: Duration,
    outcome: Outcome,
}

impl Running {
    fn finished(self) -> Outcome {
        if self.failures.is_empty() {
            return self.outcome;
        }
        let message = match self.entry {
            Entry::DispatcherInit(_) => {
                format!(
                    "{DISPATCHER_INIT_SYMBOL} returned {}",
                    self.failures[0].1 as i32
                )
            }
            Entry::Kernel(_) => {
                let shown: Vec<String> = self
                    .failures
                    .iter()
                    .take(8)
                    .map(|(block, rc)| format!("block {block} returned {rc}"))
                    .collect();
                format!(
                    "{} failed on {} of {} AICPU thread(s): {}",
                    self.label,
                    self.failures.len(),
                    self.blocks,
                    shown.join(", ")
                )
            }
        };
        self.outcome.exception(message)
    }

    fn timed_out(self) -> Outcome {
        let ms = self.timeout.as_millis();
        let message = match self.entry {
            Entry::DispatcherInit(_) => {
                format!("{DISPATCHER_INIT_SYMBOL} exceeded the op timeout of {ms} ms")
            }
            Entry::Kernel(_) => format!(
                "{} exceeded the op timeout of {ms} ms with {} of {} thread(s) unfinished",
                self.label, self.remaining, self.blocks
            ),
        };
        self.outcome.timeout(message)
    }
}

/// One block waiting for a worker.
struct Job {
    seq: u64,
    block: u32,
}

#[derive(Default)]
struct Core {
    jobs: VecDeque<Job>,
    streams: HashMap<u64, Stream>,
    /// Started launches by sequence number.
    running: HashMap<u64, Running>,
    /// When the main thread next looks for launches past their deadline.
    /// Not moved later when launches finish early: the main thread only
    /// needs waking when a new deadline comes before it.
    watch_at: Option<Instant>,
}

/// What a thread does next.
enum Task {
    /// Start a launch its stream is ready for.
    Start { req: Request, aborted: bool },
    /// Run one block of a started launch.
    Block {
        seq: u64,
        block: u32,
        entry: Entry,
        arg: u64,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Worker,
    Main,
}

/// The shared state of the workers and the main thread.
pub struct Engine {
    core: Mutex<Core>,
    /// Held from receiving a request until it is entered in `core`, so
    /// requests take effect in the order they were sent.
    reading: Mutex<()>,
    /// Workers asleep on the channel and the job bell.
    listening: AtomicU32,
    threads: u32,
    jobs_bell: Bell,
    main_bell: Bell,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Leaves at once: kernels may still be running on worker threads and must
/// not observe destructors of the state they use.
fn exit_now() -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(0) }
}

/// Sends a reply; a host that cannot receive it is gone, and so are we.
pub fn send_reply(ctx: &Context, reply: &Reply) {
    if protocol::send(ctx.ctl.as_fd(), reply).is_err() {
        exit_now();
    }
}

impl Engine {
    /// The engine of a device with `threads` AICPU workers (started by
    /// [`Engine::spawn_workers`]).
    pub fn new(threads: u32) -> std::io::Result<Self> {
        Ok(Self {
            core: Mutex::default(),
            reading: Mutex::new(()),
            listening: AtomicU32::new(0),
            threads,
            jobs_bell: Bell::new()?,
            main_bell: Bell::new()?,
        })
    }

    /// Starts the AICPU worker threads.
    pub fn spawn_workers(ctx: &Arc<Context>) -> std::io::Result<()> {
        for n in 0..ctx.engine.threads {
            let set = WaitSet::new(ctx.ctl.as_fd(), &ctx.engine.jobs_bell)?;
            let ctx = Arc::clone(ctx);
            std::thread::Builder::new()
                .name(format!("aicpu{n}"))
                .spawn(move || ctx.engine.work(&ctx, &set))?;
        }
        Ok(())
    }

    /// A worker's life.
    fn work(&self, ctx: &Context, set: &WaitSet) -> ! {
        loop {
            if let Some(task) = self.next_job() {
                self.drive(ctx, task, Role::Worker);
                continue;
            }
            self.listening.fetch_add(1, Ordering::SeqCst);
            let woken = set.wait();
            if self.listening.fetch_sub(1, Ordering::SeqCst) == 1 {
                // Nobody listens now: the main thread reads meanwhile.
                self.main_bell.ring();
            }
            if woken.bell {
                self.jobs_bell.clear();
            }
            // Also after a ring: a ring may stand in for a channel wake-up
            // that went to a worker which had already woken.
            if let Some(task) = self.read(ctx, Role::Worker) {
                self.drive(ctx, task, Role::Worker);
            }
        }
    }

    /// The main thread's life: watchdog, reader while no worker listens,
    /// and the end of the process when the channel hangs up.
    pub fn watch(&self, ctx: &Context) -> ! {
        loop {
            let read = self.listening.load(Ordering::SeqCst) == 0;
            let timeout = lock(&self.core)
                .watch_at
                .map(|at| at.saturating_duration_since(Instant::now()));
            let events = libc::POLLRDHUP | if read { libc::POLLIN } else { 0 };
            let (ready, bell) = wake::poll_main(ctx.ctl.as_fd(), events, &self.main_bell, timeout);
            if ready & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
                // The host closed the channel (reset, finalize or death).
                exit_now();
            }
            if bell {
                self.main_bell.clear();
            }
            if read && ready & libc::POLLIN != 0 {
                if let Some(task) = self.read(ctx, Role::Main) {
                    self.drive(ctx, task, Role::Main);
                }
            }
            self.expire(ctx);
        }
    }

    /// Takes the next queued block, skipping those of launches that ended.
    fn next_job(&self) -> Option<Task> {
        let mut core = lock(&self.core);
        while let Some(job) = core.jobs.pop_front() {
            let Some(r) = core.running.get(&job.seq) else {
                continue;
            };
            let task = Task::Block {
                seq: job.seq,
                block: job.block,
                entry: r.entry,
                arg: r.arg,
            };
            let more = !core.jobs.is_empty();
            drop(core);
            if more {
                // Pass it on: another idle worker takes the next block.
                self.jobs_bell.ring();
            }
            return Some(task);
        }
        None
    }

    /// Reads one request, if one is there, and enters it.
    fn read(&self, ctx: &Context, role: Role) -> Option<Task> {
        let _reading = lock(&self.reading);
        let req = match protocol::try_recv::<Request>(ctx.ctl.as_fd()) {
            Ok(Received::Msg(req)) => req,
            Ok(Received::Empty) => return None,
            // The host closed the channel (reset, finalize or death).
            Ok(Received::Closed) => exit_now(),
            Err(e) => {
                log::note(level::ERROR, &format!("control channel failed: {e}"));
                exit_now()
            }
        };
        let task = self.accept(ctx, req);
        if task.is_some()
            && role == Role::Worker
            && (!lock(&self.core).jobs.is_empty()
                || protocol::wait(ctx.ctl.as_fd(), libc::POLLIN, Some(Duration::ZERO)) != 0)
        {
            // This thread is about to run a launch while other work waits
            // (queued blocks whose ring it may have taken, or requests whose
            // wake-up may have gone to it): wake another worker for them.
            self.jobs_bell.ring();
        }
        task
    }

    /// Enters one request; returns the launch to start now, if any.
    fn accept(&self, ctx: &Context, req: Request) -> Option<Task> {
        match req.kind {
            request::PING => {
                send_reply(ctx, &Reply::new(reply::PONG, 0, ""));
                None
            }
            request::LAUNCH => {
                if req.flags & protocol::LAUNCH_FLAG_DIE != 0 {
                    log::note(
                        level::ERROR,
                        "SIMPLER_SIM_KILL_AT_LAUNCH: killing the device process",
                    );
                    // SAFETY: signalling ourselves.
                    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                }
                let mut core = lock(&self.core);
                let s = core.streams.entry(req.stream).or_default();
                if s.busy {
                    s.pending.push_back(Item::Launch(req));
                    None
                } else {
                    s.busy = true;
                    Some(Task::Start {
                        req,
                        aborted: s.failed,
                    })
                }
            }
            request::CLEAR_STREAM_ERROR => {
                let mut core = lock(&self.core);
                let s = core.streams.entry(req.stream).or_default();
                if s.busy {
                    s.pending.push_back(Item::ClearError);
                } else {
                    s.failed = false;
                }
                None
            }
            request::DESTROY_STREAM => {
                let mut core = lock(&self.core);
                match core.streams.get_mut(&req.stream) {
                    Some(s) if s.busy => s.destroyed = true,
                    Some(_) => {
                        core.streams.remove(&req.stream);
                    }
                    None => {}
                }
                None
            }
            other => {
                log::note(
                    level::WARN,
                    &format!("unknown request kind {other} ignored"),
                );
                None
            }
        }
    }

    /// Runs `task` and whatever it leads to on this thread.
    fn drive(&self, ctx: &Context, mut task: Task, role: Role) {
        loop {
            let next = match task {
                Task::Start { req, aborted } => self.start(ctx, req, aborted, role),
                Task::Block {
                    seq,
                    block,
                    entry,
                    arg,
                } => self.run_block(ctx, seq, block, entry, arg),
            };
            match next {
                Some(next) => task = next,
                None => return,
            }
        }
    }

    /// Starts a launch: prepares it and queues its blocks. A worker keeps
    /// the first block for itself (returned); the main thread queues all.
    fn start(&self, ctx: &Context, req: Request, aborted: bool, role: Role) -> Option<Task> {
        let ready = if aborted {
            Err(Outcome::default().failed(
                ACL_ERROR_RT_DEVICE_TASK_ABORT,
                "aborted: an earlier launch on this stream failed and no sync has reported it yet"
                    .to_owned(),
            ))
        } else {
            crate::prepare(ctx, &req)
        };
        let ready = match ready {
            Ok(ready) => ready,
            Err(outcome) => return self.complete(ctx, req.seq, req.stream, outcome),
        };
        let blocks = match ready.entry {
            Entry::Kernel(_) => req.block_dim.max(1),
            Entry::DispatcherInit(_) => 1,
        };
        let timeout = Duration::from_millis(req.timeout_ms.into());
        let deadline = Instant::now() + timeout;
        let first_queued = u32::from(role == Role::Worker);
        let mut core = lock(&self.core);
        core.running.insert(
            req.seq,
            Running {
                stream: req.stream,
                entry: ready.entry,
                arg: req.args,
                label: ready.label,
                blocks,
                remaining: blocks,
                failures: Vec::new(),
                deadline,
                timeout,
                outcome: ready.outcome,
            },
        );
        for block in first_queued..blocks {
            core.jobs.push_back(Job {
                seq: req.seq,
                block,
            });
        }
        let earlier = core.watch_at.is_none_or(|at| deadline < at);
        if earlier {
            core.watch_at = Some(deadline);
        }
        drop(core);
        for _ in 0..(blocks - first_queued).min(self.threads) {
            self.jobs_bell.ring();
        }
        if earlier {
            self.main_bell.ring();
        }
        (role == Role::Worker).then_some(Task::Block {
            seq: req.seq,
            block: 0,
            entry: ready.entry,
            arg: req.args,
        })
    }

    /// Runs one block; the last one to finish completes the launch.
    fn run_block(
        &self,
        ctx: &Context,
        seq: u64,
        block: u32,
        entry: Entry,
        arg: u64,
    ) -> Option<Task> {
        let rc = match entry {
            // SAFETY: `func` was resolved from a loaded kernel SO with the
            // AICPU kernel signature; the argument is the device address of
            // the launch's argument block, as on hardware.
            Entry::Kernel(func) => unsafe { func(arg as *mut c_void) },
            Entry::DispatcherInit(init) => crate::kfc::call_init(ctx, init, arg),
        };
        let mut core = lock(&self.core);
        // Gone: the launch timed out meanwhile; this result is dropped.
        let r = core.running.get_mut(&seq)?;
        r.remaining -= 1;
        if rc != 0 {
            r.failures.push((block, rc));
        }
        if r.remaining > 0 {
            return None;
        }
        let r = core.running.remove(&seq).expect("looked up above");
        drop(core);
        let stream = r.stream;
        self.complete(ctx, seq, stream, r.finished())
    }

    /// Ends a launch: sends its reply, then returns the stream's next launch
    /// (this thread starts it, so the stream keeps its order).
    fn complete(&self, ctx: &Context, seq: u64, stream: u64, outcome: Outcome) -> Option<Task> {
        let mut core = lock(&self.core);
        let mut next = None;
        if let Some(s) = core.streams.get_mut(&stream) {
            s.failed |= outcome.code != 0;
            while let Some(item) = s.pending.pop_front() {
                match item {
                    Item::ClearError => s.failed = false,
                    Item::Launch(req) => {
                        next = Some(Task::Start {
                            req,
                            aborted: s.failed,
                        });
                        break;
                    }
                }
            }
            if next.is_none() {
                s.busy = false;
                if s.destroyed {
                    core.streams.remove(&stream);
                }
            }
        }
        drop(core);
        let mut reply = Reply::new(reply::DONE, outcome.code, &outcome.message);
        reply.seq = seq;
        reply.stream = stream;
        reply.kfc_calls = outcome.kfc_calls;
        reply.dispatcher_saves = outcome.dispatcher_saves;
        reply.dlopens = outcome.dlopens;
        send_reply(ctx, &reply);
        next
    }

    /// Ends every launch past its deadline with 507017.
    fn expire(&self, ctx: &Context) {
        let now = Instant::now();
        let expired: Vec<(u64, Running)> = {
            let mut core = lock(&self.core);
            if core.watch_at.is_none_or(|at| now < at) {
                return;
            }
            let due: Vec<u64> = core
                .running
                .iter()
                .filter(|(_, r)| r.deadline <= now)
                .map(|(&seq, _)| seq)
                .collect();
            let expired = due
                .into_iter()
                .filter_map(|seq| core.running.remove(&seq).map(|r| (seq, r)))
                .collect();
            core.watch_at = core.running.values().map(|r| r.deadline).min();
            expired
        };
        for (seq, r) in expired {
            let stream = r.stream;
            if let Some(task) = self.complete(ctx, seq, stream, r.timed_out()) {
                self.drive(ctx, task, Role::Main);
            }
        }
    }
}
