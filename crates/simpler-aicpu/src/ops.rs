//! The built-in ops of `libsimpler_aicpu.so`, one per [`OpCode`].
//!
//! Checks run in a fixed order, so a task with several faults gets a
//! predictable status: the op code (`UnknownOp`; a task with non-zero
//! `flags` never gets here, the glue refuses it as `UnknownOp`), then the
//! length (`BadLength`), then each operand in the order dst, src0, src1
//! for a zero address (`NullPointer`) or a range past the end of the
//! address space (`BadLength`), then the alignment of each operand
//! (`Misaligned`). An operand the op does not touch because `len` is 0 is
//! not checked.

use std::hash::Hasher;
use std::time::Duration;

use fnv::FnvHasher;
use simpler_abi::{OpCode, TaskStatus};

use crate::glue::TaskCtx;

/// Runs one task with the built-in ops; the runner behind the SO's
/// `simpler_aicpu_exec`.
///
/// Any code that is not an [`OpCode`] ends `UnknownOp`, and that includes
/// every code of the custom range ([`simpler_abi::CustomOp`]): no built-in
/// will ever take one, so a runtime SO that handles its own custom ops and
/// passes every other task here keeps the built-ins of any later version.
pub fn run(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let task = ctx.task();
    let op = OpCode::from_raw(task.op).ok_or(TaskStatus::UnknownOp)?;
    match op {
        OpCode::Copy => copy(ctx),
        OpCode::Fill => fill(ctx),
        OpCode::AddF32 => add_f32(ctx),
        OpCode::ScaleF32 => scale_f32(ctx),
        OpCode::SumF32 => sum_f32(ctx),
        OpCode::Fnv1a64 => fnv1a64(ctx),
        OpCode::SleepUs => {
            std::thread::sleep(Duration::from_micros(task.scalar));
            Ok(())
        }
        OpCode::Panic => panic!("diagnostic Panic op in task {}", ctx.index()),
    }
}

const F32: u64 = size_of::<f32>() as u64;

fn f32_len(len: u64) -> Result<u64, TaskStatus> {
    if len.is_multiple_of(F32) {
        Ok(len)
    } else {
        Err(TaskStatus::BadLength)
    }
}

fn copy(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let len = ctx.task().len;
    let (dst, src) = (ctx.dst(len)?, ctx.src0(len)?);
    dst.copy_from(&src);
    Ok(())
}

fn fill(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let task = ctx.task();
    // The fill byte is the low 8 bits of `scalar` by definition.
    ctx.dst(task.len)?.fill(task.scalar as u8);
    Ok(())
}

fn add_f32(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let len = f32_len(ctx.task().len)?;
    let (dst, a, b) = (ctx.dst(len)?, ctx.src0(len)?, ctx.src1(len)?);
    let (dst, a, b) = (
        dst.elements::<f32>()?,
        a.elements::<f32>()?,
        b.elements::<f32>()?,
    );
    for i in 0..dst.len() {
        dst.set(i, a.get(i) + b.get(i));
    }
    Ok(())
}

fn scale_f32(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let task = ctx.task();
    let len = f32_len(task.len)?;
    // The factor is the f32 whose bits are the low 32 bits of `scalar`.
    let factor = f32::from_bits(task.scalar as u32);
    let (dst, src) = (ctx.dst(len)?, ctx.src0(len)?);
    let (dst, src) = (dst.elements::<f32>()?, src.elements::<f32>()?);
    for i in 0..dst.len() {
        dst.set(i, src.get(i) * factor);
    }
    Ok(())
}

fn sum_f32(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let len = f32_len(ctx.task().len)?;
    let (dst, src) = (ctx.dst(F32)?, ctx.src0(len)?);
    let (dst, src) = (dst.elements::<f32>()?, src.elements::<f32>()?);
    // Left to right from 0.0, exactly as specified: a tool recomputing the
    // sum in the same order gets the same bits.
    let sum = (0..src.len()).fold(0.0f32, |acc, i| acc + src.get(i));
    dst.set(0, sum);
    Ok(())
}

fn fnv1a64(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let len = ctx.task().len;
    let (dst, src) = (ctx.dst(size_of::<u64>() as u64)?, ctx.src0(len)?);
    let dst = dst.elements::<u64>()?;
    // Through a small copy at a time: device memory is never borrowed as
    // a slice (see `DeviceRange::read_at`).
    let mut hasher = FnvHasher::default();
    let mut chunk = [0u8; 4096];
    let mut offset = 0;
    while offset < src.len() {
        let n = chunk.len().min(src.len() - offset);
        src.read_at(offset, &mut chunk[..n]);
        hasher.write(&chunk[..n]);
        offset += n;
    }
    dst.set(0, hasher.finish());
    Ok(())
}
