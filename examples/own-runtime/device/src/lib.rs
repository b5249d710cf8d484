//! A runtime SO of one's own on simpler's glue: the three custom ops of
//! [`own_runtime_ops`], with every other op code handed to the built-in
//! ops, so the SO keeps `Copy`, `Fill`, `AddF32` and the rest.
//!
//! The glue does everything around a task (the ABI checks, claiming tasks
//! across the launch's threads, statuses, counters, catching panics); this
//! crate only says what each op does. Operands are reached through the
//! task's [`TaskCtx`], which checks null addresses, lengths and alignment
//! and answers a bad task with the matching [`TaskStatus`].

use own_runtime_ops::{POLY, POLY_MAX_COEFFS, REVERSE, SAXPY};
use simpler_aicpu::abi::TaskStatus;
use simpler_aicpu::glue::TaskCtx;
use simpler_aicpu::ops;

/// The task runner behind `simpler_aicpu_exec`.
fn run(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    match ctx.custom_op() {
        Some(SAXPY) => saxpy(ctx),
        Some(POLY) => poly(ctx),
        Some(REVERSE) => reverse(ctx),
        // A built-in, or a code nobody defines: the built-in ops answer the
        // latter (and any custom code this SO lacks) with `UnknownOp`.
        _ => ops::run(ctx),
    }
}

simpler_aicpu::export_runtime!(run);

fn f32_len(len: u64) -> Result<u64, TaskStatus> {
    if len.is_multiple_of(4) {
        Ok(len)
    } else {
        Err(TaskStatus::BadLength)
    }
}

fn saxpy(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let task = ctx.task();
    let len = f32_len(task.len)?;
    let a = f32::from_bits(task.scalar as u32);
    let (dst, x, y) = (ctx.dst(len)?, ctx.src0(len)?, ctx.src1(len)?);
    let (dst, x, y) = (
        dst.elements::<f32>()?,
        x.elements::<f32>()?,
        y.elements::<f32>()?,
    );
    for i in 0..dst.len() {
        dst.set(i, a * x.get(i) + y.get(i));
    }
    Ok(())
}

fn poly(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let task = ctx.task();
    let len = f32_len(task.len)?;
    if !(1..=POLY_MAX_COEFFS).contains(&task.scalar) {
        return Err(TaskStatus::BadLength);
    }
    let (dst, x) = (ctx.dst(len)?, ctx.src0(len)?);
    let (dst, x) = (dst.elements::<f32>()?, x.elements::<f32>()?);
    // The register block is shared by every task of the launch: read the
    // coefficients once per task, not once per element.
    let mut coeffs = [0f32; POLY_MAX_COEFFS as usize];
    let coeffs = &mut coeffs[..task.scalar as usize];
    for (k, c) in coeffs.iter_mut().enumerate() {
        *c = ctx.reg::<f32>(k)?;
    }
    let (last, rest) = coeffs.split_last().ok_or(TaskStatus::BadLength)?;
    for i in 0..dst.len() {
        let x = x.get(i);
        dst.set(i, rest.iter().rev().fold(*last, |acc, c| acc * x + c));
    }
    Ok(())
}

fn reverse(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    let len = ctx.task().len;
    let (dst, src) = (ctx.dst(len)?, ctx.src0(len)?);
    let (dst, src) = (dst.elements::<u8>()?, src.elements::<u8>()?);
    let n = dst.len();
    for i in 0..n {
        dst.set(i, src.get(n - 1 - i));
    }
    Ok(())
}
