//! Every way a task or a launch can fail gets its specific status or return
//! code, and nothing else in the batch is disturbed.

use std::mem::size_of;
use std::sync::atomic::{AtomicU32, Ordering};

use simpler_aicpu::abi::{InitArgs, KernelArgs, OpCode, Task, TaskStatus, WorkHeader, ABI_VERSION};
use simpler_aicpu::glue::{code, TaskCtx};

use crate::common::{addr, addr_mut, init, or, run_one, task, INIT};
use crate::ffi::{self, exec_on, Batch};

fn fails(t: Task, want: TaskStatus) {
    init();
    assert_eq!(run_one(t), (want, code::TASK_FAILED), "{t:?}");
}

#[test]
fn unknown_op_codes() {
    for op in [0, 7, 0xff, 0x102, u32::MAX] {
        let t = Task {
            op,
            ..Task::default()
        };
        fails(t, TaskStatus::UnknownOp);
    }
}

#[test]
fn task_flags_are_not_understood() {
    let mut byte = 0u8;
    let t = Task {
        flags: 1,
        ..task(OpCode::Fill, addr_mut(&mut byte), 0, 0, 1, 9)
    };
    fails(t, TaskStatus::UnknownOp);
    assert_eq!(byte, 0, "a refused task must not run");
}

/// The glue refuses flags for every runner: a custom one that accepts
/// anything never sees a task with flags.
#[test]
fn task_flags_are_refused_before_any_runner() {
    init();
    static RUNS: AtomicU32 = AtomicU32::new(0);
    fn accepts_anything(_: &TaskCtx) -> Result<(), TaskStatus> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    let tasks = [0, 1, 0x8000_0000, u32::MAX, 0]
        .map(|flags| Task {
            op: 1,
            flags,
            ..Task::default()
        })
        .into();
    let batch = Batch::new(tasks);
    assert_eq!(
        ffi::glue_exec(&batch.args(), accepts_anything),
        code::TASK_FAILED
    );
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        2,
        "only the tasks without flags"
    );
    use TaskStatus::{Ok as Done, UnknownOp};
    assert_eq!(
        batch.statuses(),
        [Done, UnknownOp, UnknownOp, UnknownOp, Done]
    );
    assert_eq!((batch.header().done, batch.header().failed), (5, 3));
}

#[test]
fn f32_ops_need_whole_elements() {
    let mut buf = [0f32; 4];
    let p = addr(buf.as_mut_ptr());
    for len in [1, 2, 3, 5, 15] {
        fails(task(OpCode::AddF32, p, p, p, len, 0), TaskStatus::BadLength);
        fails(
            task(OpCode::ScaleF32, p, p, 0, len, 0),
            TaskStatus::BadLength,
        );
        fails(task(OpCode::SumF32, p, p, 0, len, 0), TaskStatus::BadLength);
    }
    // The length is judged before the addresses.
    fails(task(OpCode::AddF32, 0, 0, 0, 6, 0), TaskStatus::BadLength);
}

#[test]
fn f32_operands_must_be_4_aligned() {
    let mut buf = [0u64; 8];
    let a = addr(buf.as_mut_ptr());
    let odd = a + 2;
    fails(
        task(OpCode::AddF32, odd, a, a, 8, 0),
        TaskStatus::Misaligned,
    );
    fails(
        task(OpCode::AddF32, a, odd, a, 8, 0),
        TaskStatus::Misaligned,
    );
    fails(
        task(OpCode::AddF32, a, a, odd, 8, 0),
        TaskStatus::Misaligned,
    );
    fails(
        task(OpCode::ScaleF32, a, a + 1, 0, 8, 0),
        TaskStatus::Misaligned,
    );
    fails(
        task(OpCode::ScaleF32, a + 3, a, 0, 8, 0),
        TaskStatus::Misaligned,
    );
    fails(
        task(OpCode::SumF32, a, odd, 0, 8, 0),
        TaskStatus::Misaligned,
    );
    fails(
        task(OpCode::SumF32, odd, a, 0, 8, 0),
        TaskStatus::Misaligned,
    );
    assert_eq!(buf, [0; 8], "refused tasks must not write");
}

#[test]
fn reduction_destinations_must_be_aligned_to_their_element() {
    let mut buf = [0u64; 4];
    let a = addr(buf.as_mut_ptr());
    let data = b"abcd";
    // u64 result: 4-aligned is not enough.
    fails(
        task(OpCode::Fnv1a64, a + 4, addr(data.as_ptr()), 0, 4, 0),
        TaskStatus::Misaligned,
    );
    fails(
        task(OpCode::Fnv1a64, a + 1, 0, 0, 0, 0),
        TaskStatus::Misaligned,
    );
    fails(
        task(OpCode::SumF32, a + 2, 0, 0, 0, 0),
        TaskStatus::Misaligned,
    );
    assert_eq!(buf, [0; 4]);
}

#[test]
fn required_addresses_must_not_be_null() {
    let mut buf = [0f32; 4];
    let p = addr(buf.as_mut_ptr());
    let cases = [
        task(OpCode::Copy, 0, p, 0, 4, 0),
        task(OpCode::Copy, p, 0, 0, 4, 0),
        task(OpCode::Fill, 0, 0, 0, 1, 0),
        task(OpCode::AddF32, 0, p, p, 4, 0),
        task(OpCode::AddF32, p, 0, p, 4, 0),
        task(OpCode::AddF32, p, p, 0, 4, 0),
        task(OpCode::ScaleF32, 0, p, 0, 4, 0),
        task(OpCode::ScaleF32, p, 0, 0, 4, 0),
        task(OpCode::SumF32, p, 0, 0, 4, 0),
        task(OpCode::Fnv1a64, p, 0, 0, 1, 0),
        // The reductions always write their result, even for len 0.
        task(OpCode::SumF32, 0, 0, 0, 0, 0),
        task(OpCode::Fnv1a64, 0, 0, 0, 0, 0),
        task(OpCode::SumF32, 0, p, 0, 4, 0),
        task(OpCode::Fnv1a64, 0, p, 0, 4, 0),
    ];
    for t in cases {
        fails(t, TaskStatus::NullPointer);
    }
}

#[test]
fn ranges_past_the_end_of_the_address_space() {
    let mut byte = 0u8;
    let p = addr_mut(&mut byte);
    fails(
        task(OpCode::Fill, u64::MAX - 3, 0, 0, 8, 0),
        TaskStatus::BadLength,
    );
    fails(
        task(OpCode::Copy, p, u64::MAX, 0, 2, 0),
        TaskStatus::BadLength,
    );
    fails(
        task(OpCode::Fill, 8, 0, 0, 1 << 63, 0),
        TaskStatus::BadLength,
    );
}

#[test]
fn a_panicking_task_is_contained_and_the_others_complete() {
    init();
    const TASKS: usize = 200;
    const PANICS: [usize; 3] = [0, 57, 199];
    let mut out = vec![0u8; TASKS];
    let base = addr(out.as_mut_ptr());
    let tasks = (0..TASKS)
        .map(|i| {
            if PANICS.contains(&i) {
                task(OpCode::Panic, 0, 0, 0, 0, 0)
            } else {
                task(OpCode::Fill, base + i as u64, 0, 0, 1, 0x5a)
            }
        })
        .collect();
    let batch = Batch::new(tasks);
    let results = batch.exec(4);
    assert_eq!(or(&results), code::TASK_FAILED);
    assert!(results
        .iter()
        .all(|&r| r == code::OK || r == code::TASK_FAILED));
    let h = batch.header();
    assert_eq!((h.done, h.failed), (TASKS as u32, PANICS.len() as u32));
    for (i, s) in batch.statuses().into_iter().enumerate() {
        if PANICS.contains(&i) {
            assert_eq!(s, TaskStatus::Panicked, "task {i}");
            assert_eq!(out[i], 0);
        } else {
            assert_eq!(s, TaskStatus::Ok, "task {i}");
            assert_eq!(out[i], 0x5a);
        }
    }
}

#[test]
fn a_failed_task_does_not_stop_the_batch() {
    init();
    let mut out = [0u8; 3];
    let base = addr(out.as_mut_ptr());
    let batch = Batch::new(vec![
        task(OpCode::Fill, base, 0, 0, 1, 1),
        Task::default(),
        task(OpCode::Fill, base + 2, 0, 0, 1, 3),
    ]);
    assert_eq!(batch.exec(1), [code::TASK_FAILED]);
    assert_eq!(
        batch.statuses(),
        [TaskStatus::Ok, TaskStatus::UnknownOp, TaskStatus::Ok]
    );
    assert_eq!(out, [1, 0, 3]);
}

/// A batch refused as a whole: every thread reports `want`, no task runs,
/// nothing in the batch changes.
fn refused(edit: impl FnOnce(&mut WorkHeader), want: i32) {
    init();
    let mut byte = 0u8;
    let mut batch = Batch::new(vec![task(OpCode::Fill, addr_mut(&mut byte), 0, 0, 1, 1)]);
    batch.edit_header(edit);
    let before = batch.header();
    assert_eq!(batch.exec(3), [want; 3]);
    assert_eq!(batch.header(), before);
    assert_eq!(batch.status(0), TaskStatus::Pending);
    assert_eq!(byte, 0);
}

#[test]
fn bad_magic() {
    refused(|h| h.magic = u32::from_le_bytes(*b"SWRJ"), code::BAD_HEADER);
    refused(|h| h.magic = 0, code::BAD_HEADER);
}

#[test]
fn bad_header_version() {
    refused(|h| h.abi_version = ABI_VERSION + 1, code::BAD_VERSION);
    refused(|h| h.abi_version = 0, code::BAD_VERSION);
}

#[test]
fn non_zero_header_flags() {
    refused(|h| h.flags = 1, code::BAD_HEADER);
}

#[test]
fn null_or_misaligned_arrays() {
    refused(|h| h.tasks = 0, code::BAD_HEADER);
    refused(|h| h.statuses = 0, code::BAD_HEADER);
    refused(|h| h.tasks += 4, code::BAD_HEADER);
    refused(|h| h.statuses += 2, code::BAD_HEADER);
}

#[test]
fn misaligned_header() {
    init();
    // A valid header copied to an address that is 4- but not 8-aligned.
    let batch = Batch::new(vec![Task::default()]);
    let mut space = [0u64; 8];
    let at = addr(space.as_mut_ptr()) + 4;
    let header = batch.header();
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut space);
    bytes[4..4 + size_of::<WorkHeader>()].copy_from_slice(bytemuck::bytes_of(&header));
    let args = KernelArgs {
        runtime_args: at,
        regs: 0,
    };
    assert_eq!(exec_on(args, 2), [code::BAD_HEADER; 2]);
    assert_eq!(batch.status(0), TaskStatus::Pending);
}

#[test]
fn null_kernel_args_and_null_runtime_args() {
    init();
    let result = ffi::exec_null();
    assert_eq!(result, code::NULL_ARGS);
    assert_eq!(exec_on(KernelArgs::default(), 2), [code::NULL_ARGS; 2]);
}

#[test]
fn kernel_args_need_no_alignment() {
    init();
    let mut byte = 0u8;
    let batch = Batch::new(vec![task(OpCode::Fill, addr_mut(&mut byte), 0, 0, 1, 4)]);
    let mut block = [0u8; 17];
    let args = batch.args();
    block[1..9].copy_from_slice(&args.runtime_args.to_le_bytes());
    // 16 readable bytes at an odd address.
    assert_eq!(ffi::exec_at(&block[1..]), code::OK);
    assert_eq!(byte, 4);
}

#[test]
fn init_refuses_null_and_unknown_versions() {
    let result = ffi::init_null();
    assert_eq!(result, code::NULL_ARGS);
    for abi_version in [0, ABI_VERSION + 1, u32::MAX] {
        let args = InitArgs {
            abi_version,
            ..INIT
        };
        assert_eq!(ffi::init(&args), code::BAD_VERSION);
    }
}
