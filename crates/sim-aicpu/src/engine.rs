//! The AICPU cores of one device process, the order launches run in, and
//! the op timeout.
//!
//! **Workers and the channel.** `threads` worker threads (`aicpu0…`) run
//! kernels. One of them at a time is the *reader*: it sleeps on the control
//! channel (and a bell), reads each request and, when the request starts a
//! launch, runs the launch's first block itself — keeping the reader role
//! meanwhile — queues the other `blockDim - 1` blocks for idle workers, and
//! sends the reply from its own thread when the last block is done. So an
//! empty launch costs the device one wake-up of one thread, as an echo
//! server does, and a request that arrives while the reader is finishing
//! up simply waits in the channel instead of waking another thread. The
//! other workers wait on a condition variable for queued blocks.
//!
//! The reader does not read while it runs a launch. The host library rings
//! the device's *host bell* (an eventfd it passed at start) when it sends a
//! launch while launches of other streams are in flight, or one that kills
//! the device; the main thread then hands the channel at once to an idle
//! worker (or reads it itself when none is idle). Any other request waits
//! at most about one [`TICK`]: a reader busy for a whole tick loses the
//! channel the same way.
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
//! takes the channel as above, and it ends the process when the channel
//! hangs up.
//!
//! **Spinning.** A worker that has just finished work does not go to sleep
//! at once: for `SIMPLER_SIM_SPIN_US` it keeps looking (the reader polls
//! the channel, a follower the block queue), yielding the CPU each turn, so
//! a host that syncs and launches again costs no wake-up. A worker that
//! did no work sleeps at once.
//!
//! **Router.** What a launch runs is not the engine's business: it hands
//! each launch request to its [`Router`], which checks it and says what
//! its blocks call, and calls that on the AICPU thread of each block.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use simpler_abi::cann::error::ACL_ERROR_RT_DEVICE_TASK_ABORT;
use simpler_abi::sim::env;
use simpler_sim_protocol::channel::{self, Received};
use simpler_sim_protocol::{reply, request, Doorbell, Reply, Request, LAUNCH_FLAG_DIE};

use crate::launch::{Outcome, Ready, Shape};
use crate::log;
use crate::sys;
use crate::wake;

/// What the engine runs: the kernel types a device serves.
pub trait Router: Send + Sync + 'static {
    /// What a block calls.
    type Entry: Copy + Send + 'static;

    /// Checks a launch and finds what its blocks call; `Err` is a launch
    /// that ends without running anything.
    fn prepare(&self, req: &Request) -> Result<Ready<Self::Entry>, Outcome>;

    /// Runs one block of a launch on the calling AICPU thread; `arg` is the
    /// device address of its parameter (the argument block plus the
    /// request's `param_offset`).
    fn run(&self, entry: Self::Entry, arg: u64) -> u32;
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
struct Running<E> {
    seq: u64,
    stream: u64,
    entry: E,
    shape: Shape,
    arg: u64,
    label: &'static str,
    blocks: u32,
    /// Blocks not finished (running or queued).
    remaining: u32,
    /// Non-zero results: (block index, return value).
    failures: Vec<(u32, u32)>,
    deadline: Instant,
    timeout: Duration,
    outcome: Outcome,
}

impl<E> Running<E> {
    fn finished(self) -> Outcome {
        if self.failures.is_empty() {
            return self.outcome;
        }
        let message = match self.shape {
            Shape::Single => {
                format!("{} returned {}", self.label, self.failures[0].1 as i32)
            }
            Shape::Blocks => {
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
        let message = match self.shape {
            Shape::Single => format!("{} exceeded the op timeout of {ms} ms", self.label),
            Shape::Blocks => format!(
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

/// Who reads the control channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Reader {
    /// Nobody yet: the next idle worker takes it.
    #[default]
    Nobody,
    /// The worker with this index.
    Worker(u32),
    /// The main thread, while no worker is idle.
    Main,
}

/// How long the reader may run a launch before the channel goes to
/// someone else.
const TICK: Duration = Duration::from_millis(1);

struct Core<E> {
    jobs: VecDeque<Job>,
    reader: Reader,
    /// The reading worker is running a launch it read (not listening).
    reader_busy: bool,
    /// Counts the reader's busy spells, so the main thread can tell one
    /// that lasted a whole tick.
    busy_spell: u64,
    /// Workers waiting on `followers`.
    idle: u32,
    /// The main thread sleeps without ticking (nothing to watch).
    main_dozing: bool,
    /// A launch started since the main thread's last tick.
    active: bool,
    streams: BTreeMap<u64, Stream>,
    /// Started launches (few at a time: one per busy stream).
    running: Vec<Running<E>>,
    /// When the main thread next looks for launches past their deadline.
    /// Not moved later when launches finish early: the main thread only
    /// needs waking when a new deadline comes before it.
    watch_at: Option<Instant>,
}

impl<E> Core<E> {
    /// Nobody reads the channel yet; the main thread dozes until a launch
    /// starts.
    fn new() -> Self {
        Self {
            jobs: VecDeque::new(),
            reader: Reader::default(),
            reader_busy: false,
            busy_spell: 0,
            idle: 0,
            main_dozing: true,
            active: false,
            streams: BTreeMap::new(),
            running: Vec::new(),
            watch_at: None,
        }
    }
}

/// What a thread does next.
enum Task<E> {
    /// Start a launch its stream is ready for.
    Start { req: Request, aborted: bool },
    /// Run one block of a started launch.
    Block {
        seq: u64,
        block: u32,
        entry: E,
        arg: u64,
    },
}

/// Which thread reads a request or starts a launch: a worker runs the
/// launch's first block itself, the main thread queues every block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// An AICPU worker.
    Worker,
    /// The main thread.
    Main,
}

/// The shared state of the workers and the main thread.
pub struct Engine<R: Router> {
    router: R,
    /// The control channel to the host library.
    ctl: OwnedFd,
    core: Mutex<Core<R::Entry>>,
    /// Idle workers wait here for queued blocks or the reader role.
    followers: Condvar,
    /// Held from receiving a request until it is entered in `core`, so
    /// requests take effect in the order they were sent even while the
    /// reader role changes hands.
    reading: Mutex<()>,
    threads: u32,
    /// Pulls an idle reader off the channel to run queued blocks.
    reader_bell: Doorbell,
    /// Wakes the main thread (a new deadline, the channel changing hands,
    /// ticking to start).
    main_bell: Doorbell,
    /// Rung by the host library: a request waits that should not wait for
    /// the busy reader.
    host_bell: Doorbell,
    /// How long a worker that just finished work keeps looking for more
    /// before it sleeps (`SIMPLER_SIM_SPIN_US`).
    spin: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<R: Router> Engine<R> {
    /// The engine of a device with `threads` AICPU workers (started by
    /// [`Engine::spawn_workers`]) that answers on `ctl` and runs what
    /// `router` prepares. On failure the channel is handed back, to report
    /// it on.
    pub fn new(
        threads: u32,
        spin: Duration,
        host_bell: Doorbell,
        ctl: OwnedFd,
        router: R,
    ) -> Result<Self, (OwnedFd, std::io::Error)> {
        let (reader_bell, main_bell) = match (Doorbell::new(), Doorbell::new()) {
            (Ok(reader), Ok(main)) => (reader, main),
            (Err(e), _) | (_, Err(e)) => return Err((ctl, e)),
        };
        Ok(Self {
            router,
            ctl,
            core: Mutex::new(Core::new()),
            followers: Condvar::new(),
            reading: Mutex::new(()),
            threads,
            reader_bell,
            main_bell,
            host_bell,
            spin,
        })
    }

    /// The control channel to the host library.
    pub fn channel(&self) -> &OwnedFd {
        &self.ctl
    }

    /// Sends a reply; a host that cannot receive it is gone, and so are we.
    pub fn send_reply(&self, reply: &Reply) {
        if channel::send(self.ctl.as_fd(), reply).is_err() {
            sys::exit_now();
        }
    }

    /// Starts the AICPU worker threads.
    pub fn spawn_workers(self: &Arc<Self>) -> std::io::Result<()> {
        for n in 0..self.threads {
            let engine = Arc::clone(self);
            std::thread::Builder::new()
                .name(format!("aicpu{n}"))
                .spawn(move || engine.work(n))?;
        }
        Ok(())
    }

    /// A worker's life: queued blocks first, then the channel if nobody
    /// reads it, else wait. Right after finishing work a worker spins for
    /// a while before it sleeps (see [`Engine::listen`], [`Engine::linger`]).
    fn work(&self, me: u32) -> ! {
        let mut core = lock(&self.core);
        let mut worked = false;
        loop {
            if let Some(task) = self.next_job(&mut core) {
                if !core.jobs.is_empty() && core.idle > 0 {
                    // Pass it on: an idle worker takes the next block.
                    self.followers.notify_one();
                }
                if core.reader == Reader::Worker(me) {
                    // Leaving the channel to run blocks: hand it on.
                    self.release_reader(&mut core);
                }
                drop(core);
                self.drive(task, Role::Worker);
                core = lock(&self.core);
                worked = true;
                continue;
            }
            match core.reader {
                Reader::Worker(r) if r == me => {
                    drop(core);
                    (core, worked) = self.listen(me, worked);
                }
                Reader::Nobody | Reader::Main => {
                    if core.reader == Reader::Main {
                        // Take the channel back; the main thread stops
                        // reading when it wakes.
                        self.main_bell.ring();
                    }
                    core.reader = Reader::Worker(me);
                }
                Reader::Worker(_) if worked && !self.spin.is_zero() => {
                    drop(core);
                    self.linger();
                    core = lock(&self.core);
                    worked = false;
                }
                Reader::Worker(_) => {
                    core.idle += 1;
                    core = self.followers.wait(core).unwrap_or_else(|e| e.into_inner());
                    core.idle -= 1;
                }
            }
        }
    }

    /// A follower that just finished a block: spins until a block is
    /// queued or the channel is free, for at most the spin time, so the
    /// next launch's blocks need no wake-up. Each turn yields the CPU (as
    /// the reader's spin does), so the thread it waits for runs even on
    /// the same CPU.
    fn linger(&self) {
        let end = Instant::now() + self.spin;
        loop {
            {
                let core = lock(&self.core);
                if !core.jobs.is_empty() || !matches!(core.reader, Reader::Worker(_)) {
                    return;
                }
            }
            if Instant::now() >= end {
                return;
            }
            std::hint::spin_loop();
            std::thread::yield_now();
        }
    }

    /// Gives up the reader role: to an idle worker, or to the main thread
    /// when none is idle.
    fn release_reader(&self, core: &mut Core<R::Entry>) {
        core.reader_busy = false;
        if core.idle > 0 {
            core.reader = Reader::Nobody;
            self.followers.notify_one();
        } else {
            core.reader = Reader::Main;
            self.main_bell.ring();
        }
    }

    /// The reader's turn: sleeps until a request (or the bell) comes, reads
    /// it and, when it starts a launch, runs that launch here. A reader
    /// that just finished work (`spin`) polls without sleeping for the spin
    /// time first, yielding the CPU each turn: a host that syncs and
    /// launches again sends the next request within microseconds, and may
    /// need this CPU to do it. Returns whether it ran a launch.
    fn listen(&self, me: u32, spin: bool) -> (MutexGuard<'_, Core<R::Entry>>, bool) {
        let poll = |timeout| {
            wake::poll_channel(self.ctl.as_fd(), libc::POLLIN, [&self.reader_bell], timeout)
        };
        let mut woke = (0, [false]);
        if spin && !self.spin.is_zero() {
            let end = Instant::now() + self.spin;
            loop {
                woke = poll(Some(Duration::ZERO));
                if woke.0 != 0 || woke.1[0] || Instant::now() >= end {
                    break;
                }
                std::hint::spin_loop();
                std::thread::yield_now();
            }
        }
        if woke.0 == 0 && !woke.1[0] {
            woke = poll(None);
        }
        let (ready, [bell]) = woke;
        if bell {
            // Blocks wait and no other worker is idle: run them first (the
            // work loop hands the channel on).
            self.reader_bell.clear();
            return (lock(&self.core), false);
        }
        if ready == 0 {
            return (lock(&self.core), false);
        }
        let Some(task) = self.read(Role::Worker) else {
            return (lock(&self.core), false);
        };
        self.drive(task, Role::Worker);
        let mut core = lock(&self.core);
        // Unless the main thread gave the channel to someone else meanwhile.
        if core.reader == Reader::Worker(me) {
            core.reader_busy = false;
        }
        (core, true)
    }

    /// The main thread's life: watchdog, channel hand-over (and reader
    /// while no worker is idle), and the end of the process when the
    /// channel hangs up.
    pub fn watch(&self) -> ! {
        let mut last_tick = Instant::now();
        let mut busy_at_tick: Option<u64> = None;
        loop {
            let (read, timeout) = {
                let mut core = lock(&self.core);
                if core.reader == Reader::Main && core.idle > 0 {
                    core.reader = Reader::Nobody;
                    self.followers.notify_one();
                }
                let tick = match core.reader {
                    Reader::Worker(_) if core.reader_busy || core.active => {
                        Some(TICK.saturating_sub(last_tick.elapsed()))
                    }
                    _ => None,
                };
                core.main_dozing = tick.is_none();
                let deadline = core
                    .watch_at
                    .map(|at| at.saturating_duration_since(Instant::now()));
                let timeout = match (tick, deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (core.reader == Reader::Main, timeout)
            };
            let events = libc::POLLRDHUP | if read { libc::POLLIN } else { 0 };
            let (ready, [bell, host]) = wake::poll_channel(
                self.ctl.as_fd(),
                events,
                [&self.main_bell, &self.host_bell],
                timeout,
            );
            if ready & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
                // The host closed the channel (reset, finalize or death).
                sys::exit_now();
            }
            if bell {
                self.main_bell.clear();
            }
            if host {
                self.host_bell.clear();
                let mut core = lock(&self.core);
                if core.reader_busy {
                    // A request waits behind the reader's kernel that
                    // should not (another stream's launch, a kill).
                    self.release_reader(&mut core);
                }
            }
            if read && ready & libc::POLLIN != 0 {
                // Only while the channel is still ours (a worker may have
                // taken it back meanwhile).
                if lock(&self.core).reader == Reader::Main {
                    if let Some(task) = self.read(Role::Main) {
                        self.drive(task, Role::Main);
                    }
                }
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                let mut core = lock(&self.core);
                let busy = core.reader_busy.then_some(core.busy_spell);
                if busy.is_some() && busy == busy_at_tick {
                    // The reader has run one launch for a whole tick: let
                    // someone else read meanwhile.
                    self.release_reader(&mut core);
                }
                busy_at_tick = busy;
                core.active = false;
            }
            self.expire();
        }
    }

    /// Takes the next queued block, skipping those of launches that ended.
    fn next_job(&self, core: &mut Core<R::Entry>) -> Option<Task<R::Entry>> {
        while let Some(job) = core.jobs.pop_front() {
            let Some(r) = core.running.iter().find(|r| r.seq == job.seq) else {
                continue;
            };
            return Some(Task::Block {
                seq: job.seq,
                block: job.block,
                entry: r.entry,
                arg: r.arg,
            });
        }
        None
    }

    /// Reads one request, if one is there, and enters it; returns the
    /// launch it lets start now, if any. A reading worker that gets one is
    /// busy with it from then on.
    fn read(&self, role: Role) -> Option<Task<R::Entry>> {
        let _reading = lock(&self.reading);
        let req = match channel::try_recv::<Request>(self.ctl.as_fd()) {
            Ok(Received::Msg(req)) => req,
            Ok(Received::Empty) => return None,
            // The host closed the channel (reset, finalize or death).
            Ok(Received::Closed) => sys::exit_now(),
            Err(e) => {
                log::note(log::ERROR, &format!("control channel failed: {e}"));
                sys::exit_now()
            }
        };
        self.accept(req, role)
    }

    /// Enters one request; returns the launch to start now, if any.
    fn accept(&self, req: Request, role: Role) -> Option<Task<R::Entry>> {
        match req.kind {
            request::PING => {
                self.send_reply(&Reply::new(reply::PONG, 0, ""));
                None
            }
            request::LAUNCH => {
                if req.flags & LAUNCH_FLAG_DIE != 0 {
                    log::note(
                        log::ERROR,
                        &format!("{}: killing the device process", env::KILL_AT_LAUNCH),
                    );
                    sys::kill_self();
                }
                let mut core = lock(&self.core);
                let s = core.streams.entry(req.stream).or_default();
                if s.busy {
                    s.pending.push_back(Item::Launch(req));
                    None
                } else {
                    s.busy = true;
                    let aborted = s.failed;
                    if role == Role::Worker {
                        core.reader_busy = true;
                        core.busy_spell += 1;
                        core.active = true;
                        if core.main_dozing {
                            // Somebody must notice if this launch keeps the
                            // channel waiting.
                            core.main_dozing = false;
                            self.main_bell.ring();
                        }
                    }
                    Some(Task::Start { req, aborted })
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
                log::note(log::WARN, &format!("unknown request kind {other} ignored"));
                None
            }
        }
    }

    /// Runs `task` and whatever it leads to on this thread.
    fn drive(&self, mut task: Task<R::Entry>, role: Role) {
        loop {
            let next = match task {
                Task::Start { req, aborted } => self.start(req, aborted, role),
                Task::Block {
                    seq,
                    block,
                    entry,
                    arg,
                } => self.run_block(seq, block, entry, arg),
            };
            match next {
                Some(next) => task = next,
                None => return,
            }
        }
    }

    /// Starts a launch: prepares it and queues its blocks. A worker keeps
    /// the first block for itself (returned); the main thread queues all.
    fn start(&self, req: Request, aborted: bool, role: Role) -> Option<Task<R::Entry>> {
        let ready = if aborted {
            Err(Outcome::default().failed(
                ACL_ERROR_RT_DEVICE_TASK_ABORT,
                "aborted: an earlier launch on this stream failed and no sync has reported it yet"
                    .to_owned(),
            ))
        } else {
            self.router.prepare(&req)
        };
        let ready = match ready {
            Ok(ready) => ready,
            Err(outcome) => return self.complete(lock(&self.core), req.seq, req.stream, outcome),
        };
        let blocks = match ready.shape {
            Shape::Blocks => req.block_dim.max(1),
            Shape::Single => 1,
        };
        let timeout = Duration::from_millis(req.timeout_ms.into());
        let deadline = Instant::now() + timeout;
        // The kernel's parameter: the block itself, or a header inside it.
        let arg = req.args + u64::from(req.param_offset);
        let first_queued = u32::from(role == Role::Worker);
        let mut core = lock(&self.core);
        core.running.push(Running {
            seq: req.seq,
            stream: req.stream,
            entry: ready.entry,
            shape: ready.shape,
            arg,
            label: ready.label,
            blocks,
            remaining: blocks,
            failures: Vec::new(),
            deadline,
            timeout,
            outcome: ready.outcome,
        });
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
        self.wake_for_jobs(&core, blocks - first_queued);
        drop(core);
        if earlier {
            self.main_bell.ring();
        }
        (role == Role::Worker).then_some(Task::Block {
            seq: req.seq,
            block: 0,
            entry: ready.entry,
            arg,
        })
    }

    /// Wakes workers for `queued` new blocks: idle ones, and an idle reader
    /// when there are not enough.
    fn wake_for_jobs(&self, core: &Core<R::Entry>, queued: u32) {
        for _ in 0..queued.min(core.idle) {
            self.followers.notify_one();
        }
        if queued > core.idle && matches!(core.reader, Reader::Worker(_)) && !core.reader_busy {
            self.reader_bell.ring();
        }
    }

    /// Runs one block; the last one to finish completes the launch.
    fn run_block(&self, seq: u64, block: u32, entry: R::Entry, arg: u64) -> Option<Task<R::Entry>> {
        let rc = self.router.run(entry, arg);
        let mut core = lock(&self.core);
        // Gone: the launch timed out meanwhile; this result is dropped.
        let at = core.running.iter().position(|r| r.seq == seq)?;
        let r = &mut core.running[at];
        r.remaining -= 1;
        if rc != 0 {
            r.failures.push((block, rc));
        }
        if r.remaining > 0 {
            return None;
        }
        let r = core.running.swap_remove(at);
        let stream = r.stream;
        self.complete(core, seq, stream, r.finished())
    }

    /// Ends a launch: sends its reply, then returns the stream's next launch
    /// (this thread starts it, so the stream keeps its order).
    fn complete(
        &self,
        mut core: MutexGuard<'_, Core<R::Entry>>,
        seq: u64,
        stream: u64,
        outcome: Outcome,
    ) -> Option<Task<R::Entry>> {
        let mut next = None;
        if let Some(s) = core.streams.get_mut(&stream) {
            s.failed |= outcome.is_failure();
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
        self.send_reply(&outcome.reply(seq, stream));
        next
    }

    /// Ends every launch past its deadline with 507017.
    fn expire(&self) {
        let now = Instant::now();
        let expired: Vec<Running<R::Entry>> = {
            let mut core = lock(&self.core);
            if core.watch_at.is_none_or(|at| now < at) {
                return;
            }
            let (expired, running): (Vec<_>, Vec<_>) = std::mem::take(&mut core.running)
                .into_iter()
                .partition(|r| r.deadline <= now);
            core.running = running;
            core.watch_at = core.running.iter().map(|r| r.deadline).min();
            expired
        };
        for r in expired {
            let (seq, stream) = (r.seq, r.stream);
            if let Some(task) = self.complete(lock(&self.core), seq, stream, r.timed_out()) {
                self.drive(task, Role::Main);
            }
        }
    }
}
