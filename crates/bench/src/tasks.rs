//! The per-task cost of a batch: `n` built-in `fill` tasks of
//! [`TASK_BYTES`] each, queued, uploaded and run in one exec, their
//! statuses read back, against the empty exec's round trip on the same
//! runner (what one launch costs, whatever it runs), shared by the `n`
//! tasks.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};

use crate::launch::EmptyExec;
use crate::stats::Samples;

/// Task counts of the curve.
pub const TASK_COUNTS: [usize; 6] = [1, 10, 100, 1_000, 10_000, 100_000];

/// Bytes each `fill` task writes: a cheap task, so that what grows with
/// the count is the cost of a task, not of its work.
pub const TASK_BYTES: usize = 64;

/// One point of the curve.
#[derive(Clone, Debug)]
pub struct TaskPoint {
    /// Tasks in the batch.
    pub tasks: usize,
    /// Wall time of one batch: queued, run (the work description
    /// uploaded, one exec, the statuses read back) and checked.
    pub batch: Samples,
    /// Wall time of an empty exec on the same runner, timed alternately.
    pub round_trip: Samples,
}

impl TaskPoint {
    /// The median batch time per task.
    pub fn per_task(&self) -> Duration {
        self.batch.median() / self.tasks as u32
    }

    /// The floor per task: the median round trip shared by the tasks.
    pub fn floor_per_task(&self) -> Duration {
        self.round_trip.median() / self.tasks as u32
    }
}

/// Batches timed for `tasks` tasks when `base` are timed for 1,000 or
/// fewer: fewer for larger batches (at least 10, at most `base`).
pub fn samples_for(tasks: usize, base: usize) -> usize {
    (base * 1_000 / tasks.max(1)).max(10).min(base)
}

/// Times `samples` batches of `tasks` fills (after `warmup` untimed ones),
/// each followed by an empty exec of `exec`'s runner, then checks that
/// the last batch wrote every byte.
pub fn measure(
    exec: &mut EmptyExec,
    tasks: usize,
    warmup: usize,
    samples: usize,
) -> anyhow::Result<TaskPoint> {
    let target = exec
        .runner
        .alloc(tasks * TASK_BYTES)
        .with_context(|| format!("allocating {} B for {tasks} fills", tasks * TASK_BYTES))?;
    let mut value = 0u8;
    let (mut batches, mut round_trips) = (vec![], vec![]);
    for i in 0..warmup + samples {
        // A new value each batch, so the check below sees the last one.
        value = (i % 255) as u8 + 1;
        let started = Instant::now();
        let mut batch = exec.runner.batch();
        for t in 0..tasks {
            let dst = target.slice(t * TASK_BYTES..(t + 1) * TASK_BYTES)?;
            batch.fill(dst, value)?;
        }
        let outcome = batch.run().context("running a batch of fills")?;
        let batch_time = started.elapsed();
        ensure!(
            outcome.len() == tasks,
            "{} statuses for {tasks} tasks",
            outcome.len()
        );
        let started = Instant::now();
        exec.exec();
        let round_trip = started.elapsed();
        if i >= warmup {
            batches.push(batch_time);
            round_trips.push(round_trip);
        }
    }
    let written: Vec<u8> = target.to_vec()?;
    let wrong = written.iter().position(|&b| b != value);
    ensure!(
        wrong.is_none(),
        "after {tasks} fills with {value}, byte {} is {}",
        wrong.unwrap_or_default(),
        written[wrong.unwrap_or_default()]
    );
    Ok(TaskPoint {
        tasks,
        batch: Samples::new(batches),
        round_trip: Samples::new(round_trips),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_batches_get_fewer_samples_within_bounds() {
        assert_eq!(samples_for(1, 200), 200);
        assert_eq!(samples_for(1_000, 200), 200);
        assert_eq!(samples_for(10_000, 200), 20);
        assert_eq!(samples_for(100_000, 200), 10);
        assert_eq!(samples_for(100_000, 3), 3);
    }
}
