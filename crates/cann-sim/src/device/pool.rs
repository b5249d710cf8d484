//! The AICPU cores: a fixed pool of worker threads that run one kernel call
//! per job. A launch of `blockDim` puts `blockDim` jobs in the queue; with
//! fewer workers the rest wait for a free one.

use std::ffi::c_void;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// An AICPU kernel entry point: the device address of the argument block in,
/// 0 for success out.
pub type KernelFn = unsafe extern "C" fn(*mut c_void) -> u32;

struct Job {
    func: KernelFn,
    arg: u64,
    launch: Arc<Launch>,
}

#[derive(Default)]
struct Progress {
    remaining: u32,
    /// Non-zero results: (block index, return value).
    failures: Vec<(u32, u32)>,
    /// Timed out: jobs not yet started are skipped.
    cancelled: bool,
}

#[derive(Default)]
struct Launch {
    progress: Mutex<Progress>,
    done: Condvar,
}

/// How a launch ended.
pub enum Finish {
    /// Every thread returned; the non-zero returns as (block, value).
    Done(Vec<(u32, u32)>),
    /// The timeout passed with this many threads still running or queued.
    TimedOut(u32),
}

/// The worker pool.
pub struct Pool {
    queue: Mutex<mpsc::Sender<(u32, Job)>>,
}

impl Pool {
    /// Starts `threads` workers.
    pub fn new(threads: u32) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<(u32, Job)>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("aicpu{n}"))
                .spawn(move || loop {
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((block, job)) = next else { return };
                    if job
                        .launch
                        .progress
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .cancelled
                    {
                        continue;
                    }
                    // SAFETY: `func` was resolved from a loaded kernel SO with
                    // the AICPU kernel signature; the argument is the device
                    // address of the launch's argument block, as on hardware.
                    let rc = unsafe { (job.func)(job.arg as *mut c_void) };
                    let mut p = job
                        .launch
                        .progress
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    p.remaining -= 1;
                    if rc != 0 {
                        p.failures.push((block, rc));
                    }
                    drop(p);
                    job.launch.done.notify_all();
                })?;
        }
        Ok(Self {
            queue: Mutex::new(tx),
        })
    }

    /// Runs `func(arg)` on `block_dim` workers and waits at most `timeout`.
    pub fn run(&self, func: KernelFn, arg: u64, block_dim: u32, timeout: Duration) -> Finish {
        let launch = Arc::new(Launch::default());
        launch
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remaining = block_dim;
        {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            for block in 0..block_dim {
                let job = Job {
                    func,
                    arg,
                    launch: Arc::clone(&launch),
                };
                // The workers never drop the receiver while we live.
                let _ = queue.send((block, job));
            }
        }
        let deadline = Instant::now() + timeout;
        let mut p = launch.progress.lock().unwrap_or_else(|e| e.into_inner());
        while p.remaining > 0 {
            let now = Instant::now();
            if now >= deadline {
                p.cancelled = true;
                return Finish::TimedOut(p.remaining);
            }
            p = launch
                .done
                .wait_timeout(p, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Finish::Done(std::mem::take(&mut p.failures))
    }
}
