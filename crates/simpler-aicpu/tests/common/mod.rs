//! A work batch in this process's memory, built as a host would build it in
//! device memory, and run by calling the exports from real threads.

// Each test binary uses its own part of these helpers.
#![allow(dead_code)]

use std::thread;

use simpler_aicpu::abi::work::WORK_MAGIC;
use simpler_aicpu::abi::{InitArgs, KernelArgs, OpCode, Task, TaskStatus, WorkHeader, ABI_VERSION};
use simpler_aicpu::{simpler_aicpu_exec, simpler_aicpu_init};

/// The configuration every test that merely needs an initialised runtime
/// latches; identical in all of them, so concurrent tests do not disturb
/// one another.
pub const INIT: InitArgs = InitArgs {
    abi_version: ABI_VERSION,
    device_id: 0,
    log_level: 0,
    thread_count: 8,
};

/// Latches [`INIT`].
pub fn init() {
    // SAFETY: a valid InitArgs.
    assert_eq!(unsafe { simpler_aicpu_init(&INIT) }, 0);
}

/// The address of `p` as a device address (for an operand the runtime
/// only reads).
pub fn addr<T>(p: *const T) -> u64 {
    p as usize as u64
}

/// The address of `p` as a device address (for an operand the runtime
/// writes).
pub fn addr_mut<T>(p: *mut T) -> u64 {
    p as usize as u64
}

/// A task with the given op and operands, flags and reserved zero.
pub fn task(op: OpCode, dst: u64, src0: u64, src1: u64, len: u64, scalar: u64) -> Task {
    Task {
        op: op as u32,
        dst,
        src0,
        src1,
        len,
        scalar,
        ..Task::default()
    }
}

/// A header, task array and status array, owned through raw pointers so
/// the runtime's writes never alias a Rust reference.
pub struct Batch {
    header: *mut WorkHeader,
    tasks: *mut [Task],
    statuses: *mut [u32],
}

impl Batch {
    /// A ready batch of `tasks`: magic, version, count and arrays set,
    /// counters and statuses zero.
    pub fn new(tasks: Vec<Task>) -> Self {
        let count = tasks.len();
        let tasks = Box::into_raw(tasks.into_boxed_slice());
        let statuses = Box::into_raw(vec![0u32; count].into_boxed_slice());
        let header = Box::into_raw(Box::new(WorkHeader {
            magic: WORK_MAGIC,
            abi_version: ABI_VERSION,
            task_count: u32::try_from(count).unwrap(),
            tasks: addr(tasks as *const Task),
            statuses: addr(statuses as *const u32),
            ..WorkHeader::default()
        }));
        Self {
            header,
            tasks,
            statuses,
        }
    }

    /// The header as it is now.
    pub fn header(&self) -> WorkHeader {
        // SAFETY: owned, live, and no launch is running.
        unsafe { self.header.read() }
    }

    /// Rewrites header fields (to build a bad batch).
    pub fn edit_header(&mut self, edit: impl FnOnce(&mut WorkHeader)) {
        // SAFETY: owned, live, and no launch is running.
        edit(unsafe { &mut *self.header });
    }

    /// `KernelArgs` naming this batch.
    pub fn args(&self) -> KernelArgs {
        KernelArgs {
            runtime_args: addr(self.header as *const WorkHeader),
            regs: 0,
        }
    }

    /// Calls `simpler_aicpu_exec` on `threads` threads at once, as a launch
    /// with blockDim `threads` does; the threads' return values.
    pub fn exec(&self, threads: usize) -> Vec<i32> {
        exec_on(self.args(), threads)
    }

    /// The decoded status words.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        // SAFETY: owned, live, and no launch is running.
        let raw = unsafe { &*self.statuses };
        raw.iter()
            .map(|&s| TaskStatus::from_raw(s).unwrap_or_else(|| panic!("status word {s}")))
            .collect()
    }

    /// The status of task `i`.
    pub fn status(&self, i: usize) -> TaskStatus {
        self.statuses()[i]
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: each pointer came from Box::into_raw in `new` and is
        // freed exactly once, here.
        unsafe {
            drop(Box::from_raw(self.header));
            drop(Box::from_raw(self.tasks));
            drop(Box::from_raw(self.statuses));
        }
    }
}

/// `simpler_aicpu_exec(&args)` on `threads` threads at once.
pub fn exec_on(args: KernelArgs, threads: usize) -> Vec<i32> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    // SAFETY: `args` names a live batch (or is a bad one on
                    // purpose, which the runtime must refuse).
                    unsafe { simpler_aicpu_exec(&args) }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The OR of the threads' results, as a launch reports it.
pub fn or(results: &[i32]) -> i32 {
    results.iter().fold(0, |acc, r| acc | r)
}

/// Runs a single task on one thread; its status and the exec result.
pub fn run_one(t: Task) -> (TaskStatus, i32) {
    let batch = Batch::new(vec![t]);
    let results = batch.exec(1);
    let header = batch.header();
    assert_eq!(header.done, 1);
    let status = batch.status(0);
    assert_eq!(header.failed, u32::from(status != TaskStatus::Ok));
    (status, results[0])
}
