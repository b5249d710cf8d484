//! One simulated device as the host library sees it: the device process
//! (`simpler-sim-aicpu`), its memory, its streams and the launches in
//! flight on them.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::alloc::Allocator;
use crate::config::{Config, DEVICE_BASE, DEVICE_STRIDE};
use crate::error::*;
use crate::memory::SharedMemory;
use crate::protocol::{self, reply, request, Reply, Request};

/// How long `aclrtSetDevice` waits for a device process to report ready
/// (generous: under qemu-user the start takes a few hundred milliseconds
/// on a quiet machine and much more on a loaded one).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a device process may take to exit once its channel is closed
/// before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Cumulative per-device counters of this host process; they outlive the
/// device processes (see `SimStats`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Launches of `KERNEL_TYPE_AICPU`.
    pub launches_aicpu: AtomicU64,
    /// Launches of `KERNEL_TYPE_AICPU_KFC`.
    pub launches_kfc: AtomicU64,
    /// Launches of any other kernel type.
    pub launches_other: AtomicU64,
    /// Calls of the dispatcher's init.
    pub kfc_calls: AtomicU64,
    /// Dispatcher SOs saved.
    pub dispatcher_saves: AtomicU64,
    /// `dlopen` calls in device processes.
    pub dlopens: AtomicU64,
    /// Device processes started.
    pub starts: AtomicU64,
    /// Highest live user bytes seen.
    pub peak_bytes: AtomicU64,
}

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
pub struct State {
    /// The device's memory allocator (offsets from the window base).
    pub alloc: Allocator,
    streams: HashMap<u64, StreamState>,
    inflight: HashMap<u64, Inflight>,
    next_seq: u64,
    pongs: u64,
    /// The message of every call once the device process is gone.
    dead: Option<String>,
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
    bell: OwnedFd,
    state: Mutex<State>,
    cond: Condvar,
    /// Held from taking a launch's sequence number until its request is on
    /// the channel, so requests leave in sequence order.
    send_order: Mutex<()>,
    counters: Arc<Counters>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

/// What a launch asks of the device.
#[derive(Clone, Copy, Debug)]
pub struct LaunchSpec<'a> {
    /// Kernel type (2 or 5).
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

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the counters half
    // updated in a way that matters more than refusing every later call.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (_, Some(sig)) => {
            // SAFETY: strsignal returns a static or thread-local string for
            // any signal number.
            let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(sig)) };
            format!("was killed by signal {sig} ({})", name.to_string_lossy())
        }
        _ => "ended".to_owned(),
    }
}

impl Device {
    /// Starts device `id`'s process and waits until it is ready.
    pub fn start(
        id: u32,
        config: &Config,
        counters: Arc<Counters>,
        stream: u64,
    ) -> AclResult<Arc<Self>> {
        let internal = |what: String| AclError::new(ACL_ERROR_RT_DRV_INTERNAL_ERROR, what);
        let bin = config.device_bin()?;
        if !bin.is_file() {
            return Err(internal(format!(
                "device process binary {} does not exist (set SIMPLER_SIM_AICPU_BIN)",
                bin.display()
            )));
        }
        if config.launcher.is_empty() {
            check_native(&bin)?;
        }
        let mem = SharedMemory::create(&format!("simpler-sim-device{id}"), config.device_mem)
            .map_err(|e| internal(format!("cannot create device {id}'s memory: {e}")))?;
        let (host_end, device_end) = protocol::pair()
            .map_err(|e| internal(format!("cannot create the control channel: {e}")))?;
        let base = device_base(id);
        let mut command = match config.launcher.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let bell = protocol::bell()
            .map_err(|e| internal(format!("cannot create the device's doorbell: {e}")))?;
        let mem_fd = mem.fd().as_raw_fd();
        let ctl_fd = device_end.as_raw_fd();
        let bell_fd = bell.as_raw_fd();
        command
            .arg("--device")
            .arg(id.to_string())
            .arg("--mem-fd")
            .arg(mem_fd.to_string())
            .arg("--ctl-fd")
            .arg(ctl_fd.to_string())
            .arg("--bell-fd")
            .arg(bell_fd.to_string())
            .arg("--base")
            .arg(format!("{base:#x}"))
            .arg("--size")
            .arg(config.device_mem.to_string())
            .arg("--root")
            .arg(config.device_dir(id))
            .arg("--threads")
            .arg(config.aicpu_threads.to_string());
        if config.faults.dispatcher_write {
            command.arg("--fail-dispatcher-write");
        }
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls on plain integers.
        unsafe {
            command.pre_exec(move || {
                // Hand exactly these descriptors to the device process.
                for fd in [mem_fd, ctl_fd, bell_fd] {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // Die with the thread that started us (the device's watcher
                // thread, which lives as long as the host process needs the
                // device); the closed channel is the second, portable path.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }

        let host_end = Arc::new(host_end);
        let (started_tx, started_rx) = mpsc::channel::<Result<u32, String>>();
        let (device_tx, device_rx) = mpsc::channel::<Arc<Device>>();
        let reader_fd = Arc::clone(&host_end);
        let bin_name = bin.display().to_string();
        let watcher = std::thread::Builder::new()
            .name(format!("simpler-sim-dev{id}"))
            .spawn(move || {
                let mut child = match command.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = started_tx.send(Err(format!("cannot start {bin_name}: {e}")));
                        return;
                    }
                };
                // Our copy of the device's end must close, or the device's
                // death would never read as end of file here.
                drop(device_end);
                let pid = child.id();
                match protocol::recv::<Reply>(reader_fd.as_fd()) {
                    Ok(Some(r)) if r.kind == reply::READY => {
                        let _ = started_tx.send(Ok(pid));
                    }
                    other => {
                        let why = match other {
                            Ok(Some(r)) => r.message(),
                            Ok(None) => "it closed its control channel".to_owned(),
                            Err(e) => format!("control channel error: {e}"),
                        };
                        let status = reap(&mut child);
                        let _ = started_tx.send(Err(format!(
                            "device process {bin_name} failed to start: {why}; it {status}"
                        )));
                        return;
                    }
                }
                let Ok(device) = device_rx.recv() else {
                    reap(&mut child);
                    return;
                };
                device.watch(child);
            })
            .map_err(|e| internal(format!("cannot spawn the device watcher thread: {e}")))?;

        let pid = match started_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(pid)) => pid,
            Ok(Err(why)) => {
                let _ = watcher.join();
                return Err(internal(why));
            }
            Err(_) => {
                // Wakes the watcher, which then reaps the process.
                protocol::shut_down(&host_end);
                let _ = watcher.join();
                return Err(internal(format!(
                    "device process {} did not report ready within {START_TIMEOUT:?}",
                    bin.display()
                )));
            }
        };
        counters.starts.fetch_add(1, Ordering::Relaxed);
        let mut streams = HashMap::new();
        streams.insert(stream, StreamState::default());
        let device = Arc::new(Self {
            id,
            base,
            size: config.device_mem,
            default_stream: stream,
            pid,
            mem,
            ctl: host_end,
            bell,
            state: Mutex::new(State {
                alloc: Allocator::new(config.device_mem),
                streams,
                inflight: HashMap::new(),
                next_seq: 1,
                pongs: 0,
                dead: None,
                closing: false,
                reading: false,
                closed: false,
                waiters: 0,
            }),
            cond: Condvar::new(),
            send_order: Mutex::new(()),
            counters,
            watcher: Mutex::new(Some(watcher)),
        });
        // The watcher owns the only other reference until the device exits.
        device_tx
            .send(Arc::clone(&device))
            .map_err(|_| internal("the device watcher thread ended early".to_owned()))?;
        Ok(device)
    }

    /// The watcher thread: it started the device process (so the process
    /// dies with it) and sleeps until the channel hangs up — the device
    /// process died, or the host shut the channel down. Replies are read by
    /// the threads that wait for them ([`Device::wait_for`]), not here, so a
    /// completion reaches its waiter without a hand-off between threads.
    /// The watcher then reads what is left, reaps the process and fails
    /// whatever was still in flight.
    fn watch(self: Arc<Self>, mut child: Child) {
        // POLLRDHUP alone: arriving replies do not wake this thread, a hang-up
        // (POLLHUP, POLLERR are always reported) does.
        while protocol::wait(self.ctl.as_fd(), libc::POLLRDHUP, None) == 0 {}
        let mut st = lock(&self.state);
        while st.reading {
            st = self.wait_cond(st, None);
        }
        st.reading = true;
        drop(st);
        // Replies the device sent before it ended still count.
        while let Ok(protocol::Received::Msg(r)) = protocol::try_recv::<Reply>(self.ctl.as_fd()) {
            let mut st = lock(&self.state);
            self.on_reply(&mut st, &r);
        }
        let status = reap(&mut child);
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
    fn wait_for<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
        mut done: impl FnMut(&State) -> bool,
    ) -> Result<MutexGuard<'a, State>, MutexGuard<'a, State>> {
        loop {
            if done(&st) {
                return Ok(st);
            }
            let left = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(st),
                },
            };
            if st.reading || st.closed {
                st = self.wait_cond(st, deadline);
                continue;
            }
            st.reading = true;
            drop(st);
            let got = match left {
                None => protocol::recv::<Reply>(self.ctl.as_fd()).map(|r| match r {
                    Some(r) => protocol::Received::Msg(r),
                    None => protocol::Received::Closed,
                }),
                Some(left) => {
                    if protocol::wait(self.ctl.as_fd(), libc::POLLIN, Some(left)) == 0 {
                        Ok(protocol::Received::Empty)
                    } else {
                        protocol::try_recv::<Reply>(self.ctl.as_fd())
                    }
                }
            };
            st = lock(&self.state);
            st.reading = false;
            match got {
                Ok(protocol::Received::Msg(r)) => self.on_reply(&mut st, &r),
                Ok(protocol::Received::Empty) => {}
                Ok(protocol::Received::Closed) => st.closed = true,
                Err(_) => {
                    // Not expected from a socket pair; treat the channel as
                    // broken and let the watcher settle the device.
                    st.closed = true;
                    protocol::shut_down(&self.ctl);
                }
            }
            self.wake_waiters(&st);
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
    /// waiting for room, so the two sides cannot wait for each other.
    fn send(&self, req: &Request) -> AclResult<()> {
        loop {
            match protocol::try_send(self.ctl.as_fd(), req) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.unreachable(e)),
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
            let ready = protocol::wait(self.ctl.as_fd(), events, None);
            if read {
                let got = if ready & libc::POLLIN != 0 {
                    protocol::try_recv::<Reply>(self.ctl.as_fd())
                } else {
                    Ok(protocol::Received::Empty)
                };
                let mut st = lock(&self.state);
                st.reading = false;
                match got {
                    Ok(protocol::Received::Msg(r)) => self.on_reply(&mut st, &r),
                    Ok(protocol::Received::Empty) => {}
                    Ok(protocol::Received::Closed) | Err(_) => st.closed = true,
                }
                self.wake_waiters(&st);
            }
        }
    }

    fn alive<'a>(&'a self, st: &MutexGuard<'a, State>) -> AclResult<()> {
        match &st.dead {
            Some(why) => Err(AclError::new(ACL_ERROR_RT_DRV_INTERNAL_ERROR, why.clone())),
            None => Ok(()),
        }
    }

    /// Locks the state and fails with 507899 if the device process died.
    pub fn live_state(&self) -> AclResult<MutexGuard<'_, State>> {
        let st = lock(&self.state);
        self.alive(&st)?;
        Ok(st)
    }

    /// Locks the state whether or not the device process is alive.
    pub fn any_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Checks that `[addr, addr + len)` lies inside one live user block and
    /// returns its offset in the window.
    pub fn check_range(&self, st: &State, addr: u64, len: u64, what: &str) -> AclResult<u64> {
        let off = addr - self.base;
        let Some((start, block)) = st.alloc.containing(off).filter(|(_, b)| !b.internal) else {
            return Err(AclError::param(format!(
                "{what} {addr:#x} is not inside a live allocation of device {}",
                self.id
            )));
        };
        if off + len > start + block.len {
            return Err(AclError::param(format!(
                "{what} {addr:#x} + {len} bytes runs past the allocation at {:#x} of {} bytes by {} bytes",
                self.base + start,
                block.len,
                off + len - start - block.len
            )));
        }
        Ok(off)
    }

    /// This device's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The shared memory object, for copies (offsets from the checks above).
    pub fn memory(&self) -> &SharedMemory {
        &self.mem
    }

    /// Updates the peak after an allocation.
    pub fn note_usage(&self, st: &State) {
        let (_, bytes) = st.alloc.user_usage();
        self.counters.peak_bytes.fetch_max(bytes, Ordering::Relaxed);
    }

    /// Registers a new stream.
    pub fn add_stream(&self, handle: u64) -> AclResult<()> {
        let mut st = self.live_state()?;
        st.streams.insert(handle, StreamState::default());
        Ok(())
    }

    /// Waits for the stream's launches, then forgets it.
    pub fn destroy_stream(&self, handle: u64) -> AclResult<()> {
        let st = lock(&self.state);
        let mut missing = false;
        let st = self
            .wait_for(st, None, |st| match st.streams.get(&handle) {
                Some(s) => s.completed >= s.submitted,
                None => {
                    missing = true;
                    true
                }
            })
            .unwrap_or_else(|st| st);
        if missing {
            return Err(AclError::param(format!(
                "stream {handle:#x} was already destroyed"
            )));
        }
        drop(st);
        let _order = self.send_order.lock().unwrap_or_else(|p| p.into_inner());
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
        let _order = self.send_order.lock().unwrap_or_else(|p| p.into_inner());
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
                // SAFETY: `bytes` is a live slice; the block was just
                // allocated with its length.
                unsafe { self.mem.write(off, bytes.as_ptr(), bytes.len()) };
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
            flags: if spec.die {
                protocol::LAUNCH_FLAG_DIE
            } else {
                0
            },
            seq,
            stream,
            kernel_type: spec.kernel_type,
            block_dim: spec.block_dim,
            args,
            args_size,
            so_name_offset: spec.so_name_offset,
            kernel_name_offset: spec.kernel_name_offset,
            timeout_ms: spec.timeout_ms,
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
            protocol::ring(self.bell.as_fd());
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
        let _order = self.send_order.lock().unwrap_or_else(|p| p.into_inner());
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

    /// One ping-pong with the device process.
    pub fn ping(&self) -> AclResult<()> {
        let order = self.send_order.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Stops the device process (closing its channel) and waits until it is
    /// reaped. Launches still in flight are abandoned.
    pub fn stop(&self) {
        lock(&self.state).closing = true;
        // The device process reads end of file and exits; our watcher sees
        // the hang-up.
        protocol::shut_down(&self.ctl);
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(watcher) = watcher {
            if watcher.thread().id() != std::thread::current().id() {
                let _ = watcher.join();
            }
        }
    }
}

/// ELF `e_machine` of the code running this library.
const HOST_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    62
} else if cfg!(target_arch = "aarch64") {
    183
} else {
    0
};

/// Refuses a device binary this machine cannot run without a launcher
/// (exec would fail, or hand it to /bin/sh, with a useless message).
fn check_native(bin: &std::path::Path) -> AclResult<()> {
    let fail = |why: String| Err(AclError::new(ACL_ERROR_RT_DRV_INTERNAL_ERROR, why));
    match crate::machine::elf_machine(bin) {
        None => fail(format!(
            "device process binary {} is not an ELF file",
            bin.display()
        )),
        Some(m) if m != HOST_MACHINE => fail(format!(
            "device process binary {} is for ELF machine {m}, this host is {HOST_MACHINE}: \
             set SIMPLER_SIM_AICPU_LAUNCHER (e.g. \"qemu-aarch64 -L /usr/aarch64-linux-gnu\")",
            bin.display()
        )),
        Some(_) => Ok(()),
    }
}

/// Waits for the child, killing it if it does not exit within
/// [`EXIT_GRACE`]; returns a description of how it ended.
fn reap(child: &mut Child) -> String {
    let deadline = Instant::now() + EXIT_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return describe(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                return match child.wait() {
                    Ok(status) => format!("{} (killed after not exiting)", describe(status)),
                    Err(e) => format!("could not be reaped: {e}"),
                };
            }
            Err(e) => return format!("could not be reaped: {e}"),
        }
    }
}
