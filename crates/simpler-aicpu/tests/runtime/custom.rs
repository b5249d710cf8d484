//! A runtime of one's own on the glue: ops in the custom range, the
//! launch's register block, and the built-ins for everything else.

use simpler_aicpu::abi::{CustomOp, KernelArgs, OpCode, Task, TaskStatus};
use simpler_aicpu::glue::{code, TaskCtx};
use simpler_aicpu::ops;

use crate::common::{addr, addr_mut, init, run_one, task};
use crate::ffi::{glue_exec, Batch};

/// `dst[i] = src0[i] * regs[0] + regs[1]` over f32s.
const AFFINE: CustomOp = CustomOp::must(0x8000_0001);
/// Reads `regs[scalar]` as a u64 into `dst`.
const PEEK: CustomOp = CustomOp::must(0x8000_0002);

fn runner(ctx: &TaskCtx) -> Result<(), TaskStatus> {
    match ctx.custom_op() {
        Some(AFFINE) => {
            let len = ctx.task().len;
            let (dst, src) = (ctx.dst(len)?, ctx.src0(len)?);
            let (dst, src) = (dst.elements::<f32>()?, src.elements::<f32>()?);
            let (scale, offset) = (ctx.reg::<f32>(0)?, ctx.reg::<f32>(1)?);
            for i in 0..dst.len() {
                dst.set(i, src.get(i) * scale + offset);
            }
            Ok(())
        }
        Some(PEEK) => {
            let index = usize::try_from(ctx.task().scalar).map_err(|_| TaskStatus::BadLength)?;
            let value = ctx.reg::<u64>(index)?;
            ctx.dst(8)?.elements::<u64>()?.set(0, value);
            Ok(())
        }
        _ => ops::run(ctx),
    }
}

fn custom(op: CustomOp, dst: u64, src0: u64, len: u64, scalar: u64) -> Task {
    Task {
        op: op.code(),
        dst,
        src0,
        len,
        scalar,
        ..Task::default()
    }
}

#[test]
fn the_builtin_runtime_answers_every_custom_op_with_unknown_op() {
    let mut byte = 0u8;
    for code in [0x8000_0000, 0x8000_0001, 0xdead_beef, u32::MAX] {
        // Shaped like a valid Fill, so only the op code can refuse it.
        let t = Task {
            op: code,
            ..task(OpCode::Fill, addr_mut(&mut byte), 0, 0, 1, 9)
        };
        init();
        assert_eq!(run_one(t), (TaskStatus::UnknownOp, code::TASK_FAILED));
    }
    assert_eq!(byte, 0, "a refused task must not run");
}

#[test]
fn custom_ops_read_the_register_block_and_the_rest_are_builtins() {
    init();
    let src: Vec<f32> = (0..64).map(|i| i as f32 - 10.0).collect();
    let mut affine = vec![0f32; 64];
    let mut filled = [0u8; 5];
    let mut peeked = [0u64; 2];
    // Registers: two f32 coefficients, then u64s from offset 8.
    let regs: [u64; 3] = [
        u64::from(2.5f32.to_bits()) | u64::from((-1.0f32).to_bits()) << 32,
        0x0123_4567_89ab_cdef,
        7,
    ];
    let tasks = vec![
        custom(
            AFFINE,
            addr_mut(affine.as_mut_ptr()),
            addr(src.as_ptr()),
            256,
            0,
        ),
        task(OpCode::Fill, addr_mut(filled.as_mut_ptr()), 0, 0, 5, 0xa5),
        custom(PEEK, addr_mut(&mut peeked[0]), 0, 0, 1),
        custom(PEEK, addr_mut(&mut peeked[1]), 0, 0, 2),
        // A custom code this runtime does not define.
        custom(CustomOp::must(0x8000_00ff), 0, 0, 0, 0),
    ];
    let batch = Batch::new(tasks);
    let args = KernelArgs {
        regs: addr(regs.as_ptr()),
        ..batch.args()
    };
    assert_eq!(glue_exec(&args, runner), code::TASK_FAILED);
    use TaskStatus::{Ok as Done, UnknownOp};
    assert_eq!(batch.statuses(), [Done, Done, Done, Done, UnknownOp]);
    let want: Vec<f32> = src.iter().map(|x| x * 2.5 - 1.0).collect();
    assert_eq!(affine, want);
    assert_eq!(filled, [0xa5; 5]);
    assert_eq!(peeked, [0x0123_4567_89ab_cdef, 7]);
}

#[test]
fn register_reads_check_presence_alignment_and_range() {
    init();
    let regs = [0u64; 2];
    let mut out = 0u64;
    let out = addr_mut(&mut out);
    let peek = |index: u64| custom(PEEK, out, 0, 0, index);
    let statuses = |regs: u64, t: Task| {
        let batch = Batch::new(vec![t]);
        let args = KernelArgs {
            regs,
            ..batch.args()
        };
        glue_exec(&args, runner);
        batch.status(0)
    };
    assert_eq!(statuses(0, peek(0)), TaskStatus::NullPointer);
    assert_eq!(
        statuses(addr(regs.as_ptr()) + 4, peek(0)),
        TaskStatus::Misaligned
    );
    assert_eq!(
        statuses(addr(regs.as_ptr()), peek(u64::MAX / 8)),
        TaskStatus::BadLength
    );
    assert_eq!(statuses(addr(regs.as_ptr()), peek(1)), TaskStatus::Ok);
}
