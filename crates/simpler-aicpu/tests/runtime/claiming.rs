//! All threads of a launch share one batch: each task runs exactly once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;

use simpler_aicpu::abi::{KernelArgs, OpCode, Task, TaskStatus};
use simpler_aicpu::glue::{code, TaskCtx};

use crate::common::{addr, init, or, task};
use crate::ffi::{exec_on, glue_exec, Batch};

/// Each task adds 1.0 in place to its own accumulator, so a task run twice
/// leaves 2.0 and a task never run leaves 0.0.
#[test]
fn eight_threads_run_ten_thousand_tasks_each_exactly_once() {
    init();
    const TASKS: usize = 10_000;
    let mut acc = vec![0f32; TASKS];
    let one = 1.0f32;
    let base = addr(acc.as_mut_ptr());
    let tasks = (0..TASKS as u64)
        .map(|i| task(OpCode::AddF32, base + 4 * i, base + 4 * i, addr(&one), 4, 0))
        .collect();
    let batch = Batch::new(tasks);
    let results = batch.exec(8);
    assert_eq!(results, [code::OK; 8]);
    let h = batch.header();
    assert_eq!((h.done, h.failed), (TASKS as u32, 0));
    // Every thread stops after one claim past the end.
    assert_eq!(h.next_task, (TASKS + 8) as u64);
    assert!(batch.statuses().iter().all(|&s| s == TaskStatus::Ok));
    let wrong: Vec<_> = acc.iter().enumerate().filter(|(_, &v)| v != 1.0).collect();
    assert!(wrong.is_empty(), "tasks run other than once: {wrong:?}");
}

#[test]
fn more_threads_than_tasks() {
    init();
    let mut bytes = [0u8; 3];
    let base = addr(bytes.as_mut_ptr());
    let tasks = (0..3)
        .map(|i| task(OpCode::Fill, base + i, 0, 0, 1, i + 1))
        .collect();
    let batch = Batch::new(tasks);
    assert_eq!(batch.exec(16), [code::OK; 16]);
    assert_eq!((batch.header().done, batch.header().failed), (3, 0));
    assert_eq!(bytes, [1, 2, 3]);
}

#[test]
fn an_empty_batch_needs_no_arrays() {
    init();
    let mut batch = Batch::new(Vec::new());
    batch.edit_header(|h| {
        h.tasks = 0;
        h.statuses = 0;
    });
    assert_eq!(batch.exec(4), [code::OK; 4]);
    assert_eq!(batch.header().done, 0);
}

/// A second runtime on the glue: a custom runner sees every index once,
/// across threads, and `Err` statuses are recorded as given.
#[test]
fn the_glue_runs_a_custom_runner() {
    init();
    const TASKS: usize = 5_000;
    static SEEN: Mutex<Option<HashSet<u32>>> = Mutex::new(None);
    static RUNS: AtomicU32 = AtomicU32::new(0);
    *SEEN.lock().unwrap() = Some(HashSet::new());

    fn runner(ctx: &TaskCtx) -> Result<(), TaskStatus> {
        RUNS.fetch_add(1, Ordering::Relaxed);
        let fresh = SEEN.lock().unwrap().as_mut().unwrap().insert(ctx.index());
        assert!(fresh, "task {} claimed twice", ctx.index());
        assert_eq!(ctx.regs(), 0xfeed);
        // Ops are whatever this runtime says: here, op 77 fails on purpose.
        match ctx.task().op {
            77 => Err(TaskStatus::BadLength),
            _ => Ok(()),
        }
    }

    let tasks: Vec<Task> = (0..TASKS)
        .map(|i| Task {
            op: if i % 1000 == 999 { 77 } else { 1 },
            ..Task::default()
        })
        .collect();
    let batch = Batch::new(tasks);
    let args = KernelArgs {
        regs: 0xfeed,
        ..batch.args()
    };
    let results: Vec<i32> = thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| s.spawn(move || glue_exec(&args, runner)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(or(&results), code::TASK_FAILED);
    assert_eq!(RUNS.load(Ordering::Relaxed), TASKS as u32);
    assert_eq!(SEEN.lock().unwrap().as_ref().unwrap().len(), TASKS);
    let h = batch.header();
    assert_eq!((h.done, h.failed), (TASKS as u32, 5));
    for (i, s) in batch.statuses().into_iter().enumerate() {
        let want = if i % 1000 == 999 {
            TaskStatus::BadLength
        } else {
            TaskStatus::Ok
        };
        assert_eq!(s, want, "task {i}");
    }
}

/// Two launches of the same batch memory: the host re-zeroes counters and
/// statuses in between, and the second launch runs everything again.
#[test]
fn a_batch_can_be_relaunched_after_the_host_resets_it() {
    init();
    let mut acc = [0f32; 64];
    let one = 1.0f32;
    let base = addr(acc.as_mut_ptr());
    let tasks = (0..64)
        .map(|i| task(OpCode::AddF32, base + 4 * i, base + 4 * i, addr(&one), 4, 0))
        .collect();
    let mut batch = Batch::new(tasks);
    assert_eq!(or(&batch.exec(3)), code::OK);
    batch.edit_header(|h| {
        h.next_task = 0;
        h.done = 0;
        h.failed = 0;
    });
    assert_eq!(or(&exec_on(batch.args(), 5)), code::OK);
    assert_eq!(batch.header().done, 64);
    assert!(acc.iter().all(|&v| v == 2.0), "{acc:?}");
}
