//! A typed batch of the runtime SO's operations over device buffers — the
//! built-ins, and the custom ops of a runtime SO of your own — checked on
//! the host, uploaded as one work description, run by one
//! `simpler_aicpu_exec` launch.

use std::marker::PhantomData;
use std::mem::size_of;

use simpler_abi::cann::error::ACL_ERROR_RT_AICPU_EXCEPTION;
use simpler_abi::work::WORK_MAGIC;
use simpler_abi::{
    CustomOp, KernelArgs, OpCode, Task, TaskOp, TaskStatus, WorkHeader, ABI_VERSION,
};

use crate::cann::{Device, DeviceSlice};
use crate::error::{Error, TaskFailure};
use crate::runner::DeviceRunner;

/// Tasks to run in one `simpler_aicpu_exec` launch; made by
/// [`DeviceRunner::batch`].
///
/// Each method checks its operands the way the runtime will (same device,
/// lengths, alignment) and returns [`Error::InvalidTask`] instead of
/// queueing a task that cannot succeed. Tasks run in any order, on all the
/// runner's threads: make them independent of each other.
///
/// Every buffer a task or [`regs`](Self::regs) names is borrowed for `'b`,
/// so none can be freed before the batch has run.
pub struct Batch<'r, 'b> {
    runner: &'r mut DeviceRunner,
    tasks: Vec<Task>,
    regs: u64,
    buffers: PhantomData<DeviceSlice<'b>>,
}

impl std::fmt::Debug for Batch<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("tasks", &self.tasks)
            .field("regs", &format_args!("{:#x}", self.regs))
            .finish()
    }
}

/// A task of a [`CustomOp`], for a runtime SO that defines it: which
/// operands it names, its length and its immediate operand, queued with
/// [`Batch::custom`].
///
/// What the op does with them is the runtime's business, so the host
/// checks only what holds for every op: the operands live on the runner's
/// device. An operand left out is address 0.
#[derive(Clone, Copy, Debug)]
#[must_use = "a custom task does nothing until it is queued with Batch::custom"]
pub struct CustomTask<'b> {
    op: CustomOp,
    dst: Option<DeviceSlice<'b>>,
    src0: Option<DeviceSlice<'b>>,
    src1: Option<DeviceSlice<'b>>,
    len: Option<u64>,
    scalar: u64,
}

impl<'b> CustomTask<'b> {
    /// A task of `op` with no operands and `scalar` 0; `len` is the length
    /// of `dst` unless [`len`](Self::len) sets it.
    pub fn new(op: CustomOp) -> Self {
        Self {
            op,
            dst: None,
            src0: None,
            src1: None,
            len: None,
            scalar: 0,
        }
    }

    /// The destination, `Task::dst`.
    pub fn dst(mut self, dst: impl Into<DeviceSlice<'b>>) -> Self {
        self.dst = Some(dst.into());
        self
    }

    /// The first source, `Task::src0`.
    pub fn src0(mut self, src0: impl Into<DeviceSlice<'b>>) -> Self {
        self.src0 = Some(src0.into());
        self
    }

    /// The second source, `Task::src1`.
    pub fn src1(mut self, src1: impl Into<DeviceSlice<'b>>) -> Self {
        self.src1 = Some(src1.into());
        self
    }

    /// `Task::len`, in bytes (default: the length of `dst`, else 0).
    pub fn len(mut self, len: u64) -> Self {
        self.len = Some(len);
        self
    }

    /// `Task::scalar`, the immediate operand (default 0).
    pub fn scalar(mut self, scalar: u64) -> Self {
        self.scalar = scalar;
        self
    }
}

/// The per-task outcome of a batch that ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOutcome {
    ops: Vec<u32>,
    raw: Vec<u32>,
}

impl BatchOutcome {
    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The status of task `index`; `None` for an index out of range or a
    /// status word the runtime does not define.
    pub fn status(&self, index: usize) -> Option<TaskStatus> {
        self.raw.get(index).copied().and_then(TaskStatus::from_raw)
    }

    /// The raw status word of every task, in order.
    pub fn raw_statuses(&self) -> &[u32] {
        &self.raw
    }

    /// The tasks that did not end [`TaskStatus::Ok`].
    pub fn failures(&self) -> Vec<TaskFailure> {
        self.raw
            .iter()
            .zip(&self.ops)
            .enumerate()
            .filter(|(_, (raw, _))| **raw != TaskStatus::Ok as u32)
            .map(|(index, (&raw, &op))| TaskFailure {
                index,
                op,
                status: TaskStatus::from_raw(raw),
                raw_status: raw,
            })
            .collect()
    }

    /// `Ok(self)` when every task ended [`TaskStatus::Ok`], else
    /// [`Error::TasksFailed`] naming the others.
    pub fn check(self) -> Result<Self, Error> {
        let failures = self.failures();
        if failures.is_empty() {
            Ok(self)
        } else {
            Err(Error::TasksFailed {
                total: self.len(),
                failures,
            })
        }
    }
}

const F32: usize = size_of::<f32>();

impl DeviceRunner {
    /// A new, empty batch of built-in operations.
    pub fn batch<'b>(&mut self) -> Batch<'_, 'b> {
        Batch {
            runner: self,
            tasks: Vec::new(),
            regs: 0,
            buffers: PhantomData,
        }
    }
}

impl<'r, 'b> Batch<'r, 'b> {
    /// Number of tasks queued.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is queued.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// `dst = src` (equal lengths).
    pub fn copy(
        &mut self,
        dst: impl Into<DeviceSlice<'b>>,
        src: impl Into<DeviceSlice<'b>>,
    ) -> Result<&mut Self, Error> {
        let (dst, src) = (dst.into(), src.into());
        let check = Check::new(self, OpCode::Copy);
        check.device(&[dst, src])?;
        check.same_len(dst, src, "dst and src")?;
        self.push_task(OpCode::Copy, dst, Some(src), None, src.len(), 0);
        Ok(self)
    }

    /// Every byte of `dst` = `value`.
    pub fn fill(&mut self, dst: impl Into<DeviceSlice<'b>>, value: u8) -> Result<&mut Self, Error> {
        let dst = dst.into();
        Check::new(self, OpCode::Fill).device(&[dst])?;
        self.push_task(OpCode::Fill, dst, None, None, dst.len(), value.into());
        Ok(self)
    }

    /// `dst[i] = a[i] + b[i]` over f32s (equal lengths, 4-byte aligned).
    pub fn add_f32(
        &mut self,
        dst: impl Into<DeviceSlice<'b>>,
        a: impl Into<DeviceSlice<'b>>,
        b: impl Into<DeviceSlice<'b>>,
    ) -> Result<&mut Self, Error> {
        let (dst, a, b) = (dst.into(), a.into(), b.into());
        let check = Check::new(self, OpCode::AddF32);
        check.device(&[dst, a, b])?;
        check.same_len(dst, a, "dst and a")?;
        check.same_len(dst, b, "dst and b")?;
        check.elements(&[dst, a, b], F32)?;
        self.push_task(OpCode::AddF32, dst, Some(a), Some(b), dst.len(), 0);
        Ok(self)
    }

    /// `dst[i] = src[i] * factor` over f32s (equal lengths, 4-byte aligned).
    pub fn scale_f32(
        &mut self,
        dst: impl Into<DeviceSlice<'b>>,
        src: impl Into<DeviceSlice<'b>>,
        factor: f32,
    ) -> Result<&mut Self, Error> {
        let (dst, src) = (dst.into(), src.into());
        let check = Check::new(self, OpCode::ScaleF32);
        check.device(&[dst, src])?;
        check.same_len(dst, src, "dst and src")?;
        check.elements(&[dst, src], F32)?;
        let bits = factor.to_bits().into();
        self.push_task(OpCode::ScaleF32, dst, Some(src), None, src.len(), bits);
        Ok(self)
    }

    /// `dst` (one f32) = the sum of the f32s of `src`, added left to right
    /// from 0.0.
    pub fn sum_f32(
        &mut self,
        dst: impl Into<DeviceSlice<'b>>,
        src: impl Into<DeviceSlice<'b>>,
    ) -> Result<&mut Self, Error> {
        let (dst, src) = (dst.into(), src.into());
        let check = Check::new(self, OpCode::SumF32);
        check.device(&[dst, src])?;
        check.exact_len(dst, F32)?;
        check.elements(&[dst, src], F32)?;
        self.push_task(OpCode::SumF32, dst, Some(src), None, src.len(), 0);
        Ok(self)
    }

    /// `dst` (one u64, 8-byte aligned) = FNV-1a 64 of `src`'s bytes.
    pub fn fnv1a64(
        &mut self,
        dst: impl Into<DeviceSlice<'b>>,
        src: impl Into<DeviceSlice<'b>>,
    ) -> Result<&mut Self, Error> {
        let (dst, src) = (dst.into(), src.into());
        let check = Check::new(self, OpCode::Fnv1a64);
        check.device(&[dst, src])?;
        check.exact_len(dst, size_of::<u64>())?;
        check.elements(&[dst], size_of::<u64>())?;
        self.push_task(OpCode::Fnv1a64, dst, Some(src), None, src.len(), 0);
        Ok(self)
    }

    /// Queues a task of a custom op ([`CustomOp`]), for a runtime SO that
    /// defines it; the built-in runtime ends it `UnknownOp`. Its operands
    /// must live on the runner's device. `examples/own-runtime` in the
    /// repository is a runtime SO with custom ops and a program using this.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), simpler_host::Error> {
    /// use simpler_host::abi::CustomOp;
    /// use simpler_host::{Cann, CannSource, CustomTask, DeviceRunner};
    ///
    /// /// `dst[i] = a * src0[i] + src1[i]`, `a` the f32 in `scalar`.
    /// const SAXPY: CustomOp = CustomOp::must(0x8000_0001);
    ///
    /// let cann = Cann::load(&CannSource::Simulator)?;
    /// let mut runner = DeviceRunner::builder(&cann)
    ///     .runtime_path("libmy_runtime.so")
    ///     .build()?;
    /// let x = runner.upload(&[1.0f32, 2.0])?;
    /// let y = runner.upload(&[10.0f32, 20.0])?;
    /// let out = runner.alloc(8)?;
    /// let mut batch = runner.batch();
    /// batch.custom(
    ///     CustomTask::new(SAXPY)
    ///         .dst(&out)
    ///         .src0(&x)
    ///         .src1(&y)
    ///         .scalar(3.0f32.to_bits().into()),
    /// )?;
    /// batch.run()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn custom(&mut self, task: CustomTask<'b>) -> Result<&mut Self, Error> {
        let check = Check::new(self, task.op);
        let operands = [task.dst, task.src0, task.src1];
        check.device(&operands.iter().flatten().copied().collect::<Vec<_>>())?;
        let addr = |s: Option<DeviceSlice<'_>>| s.map_or(0, |s| s.device_addr());
        self.tasks.push(Task {
            op: task.op.code(),
            dst: addr(task.dst),
            src0: addr(task.src0),
            src1: addr(task.src1),
            len: task
                .len
                .unwrap_or_else(|| task.dst.map_or(0, |d| d.len() as u64)),
            scalar: task.scalar,
            ..Task::default()
        });
        Ok(self)
    }

    /// Names `block` as the launch's register block, `KernelArgs::regs`:
    /// parameters every task of the batch shares, which a runtime on the
    /// glue reads with `TaskCtx::reg` (the built-in runtime ignores it).
    /// The block must live on the runner's device; no task of the batch may
    /// write it. A later call replaces the block; without one, `regs` is 0.
    pub fn regs(&mut self, block: impl Into<DeviceSlice<'b>>) -> Result<&mut Self, Error> {
        let block = block.into();
        let (on, runner) = (block.buffer().device(), self.runner.device());
        if device_key(on) != device_key(runner) {
            return Err(Error::InvalidArgument(format!(
                "the register block lives on device {}, the runner runs on device {}",
                on.id(),
                runner.id()
            )));
        }
        self.regs = block.device_addr();
        Ok(self)
    }

    /// Queues `task` as it is, unchecked: the runtime validates it and
    /// reports a bad one in its status (for the diagnostic ops, or to test a
    /// runtime). The addresses in it must stay allocated until the batch has
    /// run.
    pub fn push_raw(&mut self, task: Task) -> &mut Self {
        self.tasks.push(task);
        self
    }

    fn push_task(
        &mut self,
        op: OpCode,
        dst: DeviceSlice<'_>,
        src0: Option<DeviceSlice<'_>>,
        src1: Option<DeviceSlice<'_>>,
        len: usize,
        scalar: u64,
    ) {
        self.tasks.push(Task {
            op: op as u32,
            dst: dst.device_addr(),
            src0: src0.map_or(0, |s| s.device_addr()),
            src1: src1.map_or(0, |s| s.device_addr()),
            len: len as u64,
            scalar,
            ..Task::default()
        });
    }

    /// Runs the batch and fails with [`Error::TasksFailed`] unless every
    /// task ended [`TaskStatus::Ok`].
    pub fn run(self) -> Result<BatchOutcome, Error> {
        self.run_statuses()?.check()
    }

    /// Runs the batch and returns every task's status, failed ones
    /// included. An empty batch returns at once without a launch.
    ///
    /// The work description (header, tasks, status words) goes to device
    /// memory the runner keeps between batches, grown when a batch needs
    /// more; so does the host staging buffer.
    pub fn run_statuses(self) -> Result<BatchOutcome, Error> {
        let Batch {
            runner,
            tasks,
            regs,
            ..
        } = self;
        if tasks.is_empty() {
            return Ok(BatchOutcome {
                ops: Vec::new(),
                raw: Vec::new(),
            });
        }
        let count = u32::try_from(tasks.len())
            .map_err(|_| Error::InvalidArgument(format!("{} tasks in one batch", tasks.len())))?;
        let tasks_offset = size_of::<WorkHeader>();
        let statuses_offset = tasks_offset + tasks.len() * size_of::<Task>();
        let total = statuses_offset + tasks.len() * size_of::<u32>();

        // Header, tasks, then the status words (zero: pending).
        let base = runner.stage_work(total, |base, staging| {
            let header = WorkHeader {
                magic: WORK_MAGIC,
                abi_version: ABI_VERSION,
                task_count: count,
                flags: 0,
                tasks: base + tasks_offset as u64,
                statuses: base + statuses_offset as u64,
                next_task: 0,
                done: 0,
                failed: 0,
            };
            staging.extend_from_slice(bytemuck::bytes_of(&header));
            staging.extend_from_slice(bytemuck::cast_slice(&tasks));
        })?;

        // A failed task makes its thread return non-zero, which CANN reports
        // as 507018 at the sync; the status words then say which task and
        // why, so they are read back in that case too.
        let launch_error = match runner.exec(KernelArgs {
            runtime_args: base,
            regs,
        }) {
            Ok(()) => None,
            Err(Error::Cann(e)) if e.code == ACL_ERROR_RT_AICPU_EXCEPTION => Some(e),
            Err(other) => return Err(other),
        };

        let mut header = WorkHeader::default();
        let mut raw = vec![0u32; tasks.len()];
        let read = runner
            .read_work(0, bytemuck::bytes_of_mut(&mut header))
            .and_then(|()| runner.read_work(statuses_offset, bytemuck::cast_slice_mut(&mut raw)));
        match (read, &launch_error) {
            (Ok(()), _) => {}
            // A device that crashed cannot be read; the launch's own error
            // says what happened first.
            (Err(_), Some(e)) => return Err(Error::Cann(e.clone())),
            (Err(e), None) => return Err(e),
        }
        let all_ok = raw.iter().all(|&s| s == TaskStatus::Ok as u32);
        match launch_error {
            // Refused as a whole (all tasks still pending), or a failure
            // the statuses do not show: the CANN error is the best account.
            Some(e) if header.done != count || all_ok => return Err(Error::Cann(e)),
            None if header.done != count => {
                return Err(Error::IncompleteBatch {
                    done: header.done,
                    total: count,
                })
            }
            _ => {}
        }
        Ok(BatchOutcome {
            ops: tasks.iter().map(|t| t.op).collect(),
            raw,
        })
    }
}

/// Which device of which loaded CANN: buffers of two CANN instances may
/// share a device id.
fn device_key(device: &Device) -> (u64, i32) {
    (device.cann().instance_id(), device.id())
}

/// Host-side operand checks for the task about to be queued.
struct Check {
    index: usize,
    op: TaskOp,
    device: (u64, i32),
}

impl Check {
    fn new(batch: &Batch<'_, '_>, op: impl Into<TaskOp>) -> Check {
        Check {
            index: batch.tasks.len(),
            op: op.into(),
            device: device_key(batch.runner.device()),
        }
    }

    fn fail(&self, reason: String) -> Error {
        Error::InvalidTask {
            index: self.index,
            op: self.op,
            reason,
        }
    }

    fn device(&self, slices: &[DeviceSlice<'_>]) -> Result<(), Error> {
        for s in slices {
            let d = s.buffer().device();
            if device_key(d) != self.device {
                return Err(self.fail(format!(
                    "an operand lives on device {}, the runner runs on device {}",
                    d.id(),
                    self.device.1
                )));
            }
        }
        Ok(())
    }

    fn same_len(&self, a: DeviceSlice<'_>, b: DeviceSlice<'_>, what: &str) -> Result<(), Error> {
        if a.len() != b.len() {
            return Err(self.fail(format!(
                "{what} differ in length ({} and {} bytes)",
                a.len(),
                b.len()
            )));
        }
        Ok(())
    }

    fn exact_len(&self, dst: DeviceSlice<'_>, len: usize) -> Result<(), Error> {
        if dst.len() != len {
            return Err(self.fail(format!("dst must be {len} bytes, not {}", dst.len())));
        }
        Ok(())
    }

    fn elements(&self, slices: &[DeviceSlice<'_>], size: usize) -> Result<(), Error> {
        for s in slices {
            if !s.len().is_multiple_of(size) {
                return Err(self.fail(format!(
                    "{} bytes is not a whole number of {size}-byte elements",
                    s.len()
                )));
            }
            if !s.device_addr().is_multiple_of(size as u64) {
                return Err(self.fail(format!(
                    "device address {:#x} is not {size}-byte aligned",
                    s.device_addr()
                )));
            }
        }
        Ok(())
    }
}
