//! `simpler.Batch`: built-in operations recorded in Python, checked by
//! `simpler_host::Batch` as each is added, run in one launch.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use simpler_host::abi::{OpCode, Task};
use simpler_host::{BatchOutcome, DeviceBuffer as HostBuffer, Error};

use crate::buffer::{self, DeviceBuffer, Shared};
use crate::errors::IntoPy;
use crate::runner::{self, SharedRunner};

/// One recorded operation; operands are indices into [`State::buffers`].
#[derive(Clone, Copy, Debug)]
enum Op {
    Copy { dst: usize, src: usize },
    Fill { dst: usize, value: u8 },
    AddF32 { dst: usize, a: usize, b: usize },
    ScaleF32 { dst: usize, src: usize, factor: f32 },
    SumF32 { dst: usize, src: usize },
    Fnv1a64 { dst: usize, src: usize },
    SleepUs(u64),
    Panic,
}

/// What a batch holds until it runs: the memory of every buffer it names
/// (each once, so one lock per buffer) and its operations.
#[derive(Default)]
struct State {
    buffers: Vec<Shared>,
    ops: Vec<Op>,
}

impl State {
    /// The index of `buffer` in `buffers`, added if new.
    fn operand(&mut self, buffer: &DeviceBuffer) -> usize {
        match self
            .buffers
            .iter()
            .position(|b| Arc::ptr_eq(b, &buffer.shared))
        {
            Some(i) => i,
            None => {
                self.buffers.push(buffer.shared.clone());
                self.buffers.len() - 1
            }
        }
    }
}

/// Adds `op` to `batch` over the locked buffers `bufs`.
fn replay<'b>(
    batch: &mut simpler_host::Batch<'_, 'b>,
    op: Op,
    bufs: &[&'b HostBuffer],
) -> Result<(), Error> {
    match op {
        Op::Copy { dst, src } => batch.copy(bufs[dst], bufs[src]).map(drop),
        Op::Fill { dst, value } => batch.fill(bufs[dst], value).map(drop),
        Op::AddF32 { dst, a, b } => batch.add_f32(bufs[dst], bufs[a], bufs[b]).map(drop),
        Op::ScaleF32 { dst, src, factor } => {
            batch.scale_f32(bufs[dst], bufs[src], factor).map(drop)
        }
        Op::SumF32 { dst, src } => batch.sum_f32(bufs[dst], bufs[src]).map(drop),
        Op::Fnv1a64 { dst, src } => batch.fnv1a64(bufs[dst], bufs[src]).map(drop),
        Op::SleepUs(micros) => {
            batch.push_raw(Task {
                op: OpCode::SleepUs as u32,
                scalar: micros,
                ..Task::default()
            });
            Ok(())
        }
        Op::Panic => {
            batch.push_raw(Task {
                op: OpCode::Panic as u32,
                ..Task::default()
            });
            Ok(())
        }
    }
}

/// Locks the runner and every buffer in `buffers` (call with the GIL
/// released) and hands them to `then`.
fn with_locked<T>(
    runner: &SharedRunner,
    buffers: &[Shared],
    then: impl FnOnce(&mut simpler_host::DeviceRunner, &[&HostBuffer]) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut guard = runner::lock(runner);
    let runner = guard.as_mut().ok_or_else(runner::closed)?;
    let guards: Vec<_> = buffers.iter().map(buffer::read).collect();
    let bufs = guards
        .iter()
        .map(|g| g.as_ref().ok_or_else(buffer::freed))
        .collect::<Result<Vec<&HostBuffer>, Error>>()?;
    then(runner, &bufs)
}

/// Operations to run in one `simpler_aicpu_exec` launch; made by
/// `DeviceRunner.batch()`.
///
/// Each method checks its operands as the runtime will (same device,
/// lengths, alignment) and raises `ArgumentError` instead of queueing a
/// task that cannot succeed. Tasks run in any order, on all the runner's
/// threads. The batch keeps the memory of every buffer it names until it
/// has run; it runs once.
#[pyclass(module = "simpler", frozen)]
pub struct Batch {
    runner: SharedRunner,
    /// `None` once run.
    state: Mutex<Option<State>>,
}

impl Batch {
    pub(crate) fn new(runner: SharedRunner) -> Self {
        Batch {
            runner,
            state: Mutex::new(Some(State::default())),
        }
    }

    /// Records the op `make` builds from the operands' indices, after the
    /// host batch accepted it. The state lock is only held for moments in
    /// which nothing is waited for, never across the check (which waits
    /// for the runner), so taking it with the GIL held is safe.
    fn add(
        &self,
        py: Python<'_>,
        operands: &[&DeviceBuffer],
        make: impl Fn(&[usize]) -> Op + Send + Sync,
    ) -> PyResult<()> {
        let earlier = match self.lock_state().as_ref() {
            Some(state) => state.ops.len(),
            None => return Err(ran_already()),
        };
        // The check: the op alone over its own operands; an error names
        // the index the task gets in this batch.
        let mut trial = State::default();
        let indices: Vec<usize> = operands.iter().map(|b| trial.operand(b)).collect();
        let op = make(&indices);
        let runner = &self.runner;
        py.detach(|| {
            with_locked(runner, &trial.buffers, |runner, bufs| {
                let mut batch = runner.batch();
                replay(&mut batch, op, bufs).map_err(|err| match err {
                    Error::InvalidTask { op, reason, .. } => Error::InvalidTask {
                        index: earlier,
                        op,
                        reason,
                    },
                    other => other,
                })
            })
        })
        .py_err()?;
        let mut state = self.lock_state();
        let state = state.as_mut().ok_or_else(ran_already)?;
        let indices: Vec<usize> = operands.iter().map(|b| state.operand(b)).collect();
        state.ops.push(make(&indices));
        Ok(())
    }

    fn lock_state(&self) -> MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn ran_already() -> PyErr {
    crate::errors::argument("this batch has run already; make a new one with runner.batch()")
}

#[pymethods]
impl Batch {
    /// `dst = src` (equal lengths).
    fn copy(&self, py: Python<'_>, dst: &DeviceBuffer, src: &DeviceBuffer) -> PyResult<()> {
        self.add(py, &[dst, src], |i| Op::Copy {
            dst: i[0],
            src: i[1],
        })
    }

    /// Every byte of `dst` = `value`.
    fn fill(&self, py: Python<'_>, dst: &DeviceBuffer, value: u8) -> PyResult<()> {
        self.add(py, &[dst], |i| Op::Fill { dst: i[0], value })
    }

    /// `dst[i] = a[i] + b[i]` over float32 (equal lengths).
    fn add_f32(
        &self,
        py: Python<'_>,
        dst: &DeviceBuffer,
        a: &DeviceBuffer,
        b: &DeviceBuffer,
    ) -> PyResult<()> {
        self.add(py, &[dst, a, b], |i| Op::AddF32 {
            dst: i[0],
            a: i[1],
            b: i[2],
        })
    }

    /// `dst[i] = src[i] * factor` over float32 (equal lengths).
    fn scale_f32(
        &self,
        py: Python<'_>,
        dst: &DeviceBuffer,
        src: &DeviceBuffer,
        factor: f32,
    ) -> PyResult<()> {
        self.add(py, &[dst, src], |i| Op::ScaleF32 {
            dst: i[0],
            src: i[1],
            factor,
        })
    }

    /// `dst` (one float32) = the sum of `src`'s float32s, left to right
    /// from 0.0.
    fn sum_f32(&self, py: Python<'_>, dst: &DeviceBuffer, src: &DeviceBuffer) -> PyResult<()> {
        self.add(py, &[dst, src], |i| Op::SumF32 {
            dst: i[0],
            src: i[1],
        })
    }

    /// `dst` (one uint64) = FNV-1a 64 of `src`'s bytes.
    fn fnv1a64(&self, py: Python<'_>, dst: &DeviceBuffer, src: &DeviceBuffer) -> PyResult<()> {
        self.add(py, &[dst, src], |i| Op::Fnv1a64 {
            dst: i[0],
            src: i[1],
        })
    }

    /// Diagnostic: a task that sleeps `micros` microseconds (a stand-in for
    /// a slow kernel, to try the launch timeout).
    fn sleep_us(&self, py: Python<'_>, micros: u64) -> PyResult<()> {
        self.add(py, &[], |_| Op::SleepUs(micros))
    }

    /// Diagnostic: a task that panics on the device (contained there; the
    /// batch raises `TaskError`).
    fn panic(&self, py: Python<'_>) -> PyResult<()> {
        self.add(py, &[], |_| Op::Panic)
    }

    fn __len__(&self) -> usize {
        self.lock_state().as_ref().map_or(0, |s| s.ops.len())
    }

    /// Runs the batch; raises `TaskError` naming the failed tasks unless
    /// every task succeeded. Releases the GIL while the device works.
    fn run(&self, py: Python<'_>) -> PyResult<()> {
        self.execute(py, |batch| batch.run()).map(drop)
    }

    /// Runs the batch and returns every task's status name ("Ok",
    /// "BadLength", ...; None for a word the runtime does not define),
    /// failed tasks included.
    fn run_statuses(&self, py: Python<'_>) -> PyResult<Vec<Option<String>>> {
        let outcome = self.execute(py, |batch| batch.run_statuses())?;
        Ok((0..outcome.len())
            .map(|i| outcome.status(i).map(|s| format!("{s:?}")))
            .collect())
    }
}

impl Batch {
    /// Takes the recorded state (the batch runs once, whatever the
    /// outcome), runs it with the GIL released and drops it there: the last
    /// reference to a buffer's memory may be this batch's.
    fn execute(
        &self,
        py: Python<'_>,
        run: impl FnOnce(simpler_host::Batch<'_, '_>) -> Result<BatchOutcome, Error> + Send,
    ) -> PyResult<BatchOutcome> {
        let state = self.lock_state().take().ok_or_else(ran_already)?;
        let runner = &self.runner;
        py.detach(move || {
            let result = with_locked(runner, &state.buffers, |runner, bufs| {
                let mut batch = runner.batch();
                for &op in &state.ops {
                    replay(&mut batch, op, bufs)?;
                }
                run(batch)
            });
            drop(state);
            result
        })
        .py_err()
    }
}
