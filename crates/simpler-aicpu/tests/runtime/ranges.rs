//! Device memory through a task's operand views. Reads copy the bytes out
//! (no view hands out a reference into device memory), so a write through
//! one view is seen by the next read through another view of the same
//! bytes, and nothing is borrowed while it changes.

use simpler_aicpu::abi::{fingerprint, OpCode, Task, TaskStatus};
use simpler_aicpu::glue::{code, TaskCtx};

use crate::common::{addr, addr_mut, init, run_one, task};
use crate::ffi::{glue_exec, Batch};

/// Runs `runner` on the one task `t`; its status.
fn run_with(t: Task, runner: fn(&TaskCtx) -> Result<(), TaskStatus>) -> TaskStatus {
    init();
    let batch = Batch::new(vec![t]);
    glue_exec(&batch.args(), runner);
    batch.status(0)
}

/// `dst` and `src0` name the same bytes: a read after a write through the
/// other view sees the write; one before it does not.
#[test]
fn reads_see_writes_through_an_aliasing_view() {
    fn runner(ctx: &TaskCtx) -> Result<(), TaskStatus> {
        let len = ctx.task().len;
        let src = ctx.src0(len)?;
        let dst = ctx.dst(len)?.elements::<u32>()?;
        let before = src.to_vec();
        dst.set(1, 0xdead_beef);
        let mut word = [0u8; 4];
        src.read_at(4, &mut word);
        let after = src.to_vec();
        let ok = before == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
            && u32::from_le_bytes(word) == 0xdead_beef
            && after[..4] == before[..4]
            && after[4..8] == 0xdead_beef_u32.to_le_bytes()
            && after[8..] == before[8..];
        if ok {
            Ok(())
        } else {
            Err(TaskStatus::BadLength)
        }
    }
    let mut words = [0x0101_0101u32, 0x0202_0202, 0x0303_0303];
    let p = addr_mut(words.as_mut_ptr());
    let t = Task {
        op: 1,
        dst: p,
        src0: p,
        len: 12,
        ..Task::default()
    };
    assert_eq!(run_with(t, runner), TaskStatus::Ok);
    assert_eq!(words, [0x0101_0101, 0xdead_beef, 0x0303_0303]);
}

/// `read_at` stays inside the range: past the end is a contained panic,
/// not a read of someone else's memory; empty reads are fine anywhere up to
/// the end, and an empty range reads as nothing.
#[test]
fn read_at_stays_inside_the_range() {
    fn in_bounds(ctx: &TaskCtx) -> Result<(), TaskStatus> {
        let src = ctx.src0(ctx.task().len)?;
        let mut two = [0u8; 2];
        src.read_at(2, &mut two);
        src.read_at(4, &mut []);
        let empty = ctx.src1(0)?;
        empty.read_at(0, &mut []);
        if two == *b"cd" && empty.to_vec().is_empty() {
            Ok(())
        } else {
            Err(TaskStatus::BadLength)
        }
    }
    fn past_the_end(ctx: &TaskCtx) -> Result<(), TaskStatus> {
        let mut two = [0u8; 2];
        ctx.src0(ctx.task().len)?.read_at(3, &mut two);
        Ok(())
    }
    fn offset_overflow(ctx: &TaskCtx) -> Result<(), TaskStatus> {
        let mut one = [0u8; 1];
        ctx.src0(ctx.task().len)?.read_at(usize::MAX, &mut one);
        Ok(())
    }
    let data = *b"abcd";
    let t = Task {
        op: 1,
        src0: addr(data.as_ptr()),
        len: 4,
        ..Task::default()
    };
    assert_eq!(run_with(t, in_bounds), TaskStatus::Ok);
    assert_eq!(run_with(t, past_the_end), TaskStatus::Panicked);
    assert_eq!(run_with(t, offset_overflow), TaskStatus::Panicked);
}

/// `Fnv1a64` reads its source a chunk at a time: across chunk boundaries,
/// and with its result landing on the first bytes of its own source.
#[test]
fn fnv1a64_over_many_chunks_and_in_place() {
    let data: Vec<u8> = (0..10_001u32).map(|i| (i * 31 + 7) as u8).collect();
    let want = fingerprint(&data);
    let mut words: Vec<u64> = vec![0; data.len().div_ceil(8)];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    bytes[..data.len()].copy_from_slice(&data);
    let p = addr_mut(words.as_mut_ptr());
    init();
    let t = task(OpCode::Fnv1a64, p, p, 0, data.len() as u64, 0);
    assert_eq!(run_one(t), (TaskStatus::Ok, code::OK));
    assert_eq!(words[0], want);
}
