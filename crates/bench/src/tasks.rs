//! The per-task cost of a batch: `n` built-in `fill` tasks of
//! [`TASK_BYTES`] each, queued, uploaded and run in one exec, their
//! statuses read back, against the empty-kernel launch→sync round trip of
//! the same run (what one launch costs, whatever it runs) shared by the
//! `n` tasks.

use std::time::Instant;

use anyhow::{ensure, Context as _};

use simpler_host::DeviceRunner;

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
    /// Of which queueing the tasks (the host's checks and the task list),
    /// before the run.
    pub queue: Samples,
    /// The empty-kernel launch→sync round trip (the same for every point).
    pub round_trip: Samples,
}

impl TaskPoint {
    /// The median batch time per task, in seconds (a `Duration` would
    /// round a fraction of a nanosecond away).
    pub fn per_task(&self) -> f64 {
        self.batch.median().as_secs_f64() / self.tasks as f64
    }

    /// The floor per task, in seconds: the median round trip shared by the
    /// tasks.
    pub fn floor_per_task(&self) -> f64 {
        self.round_trip.median().as_secs_f64() / self.tasks as f64
    }
}

/// Batches timed for `tasks` tasks when `base` are timed for 1,000 or
/// fewer: fewer for larger batches (at least 10, at most `base`).
pub fn samples_for(tasks: usize, base: usize) -> usize {
    (base * 1_000 / tasks.max(1)).max(10).min(base)
}

/// Times `samples` batches of `tasks` fills on `runner` (after `warmup`
/// untimed ones), then checks that the last batch wrote every byte;
/// `round_trip` is the floor's measurement.
pub fn measure(
    runner: &mut DeviceRunner,
    tasks: usize,
    warmup: usize,
    samples: usize,
    round_trip: &Samples,
) -> anyhow::Result<TaskPoint> {
    let target = runner
        .alloc(tasks * TASK_BYTES)
        .with_context(|| format!("allocating {} B for {tasks} fills", tasks * TASK_BYTES))?;
    let mut value = 0u8;
    let (mut batches, mut queues) = (vec![], vec![]);
    for i in 0..warmup + samples {
        // A new value each batch, so the check below sees the last one.
        value = (i % 255) as u8 + 1;
        let started = Instant::now();
        let mut batch = runner.batch();
        for t in 0..tasks {
            let dst = target.slice(t * TASK_BYTES..(t + 1) * TASK_BYTES)?;
            batch.fill(dst, value)?;
        }
        let queue_time = started.elapsed();
        let outcome = batch.run().context("running a batch of fills")?;
        let batch_time = started.elapsed();
        ensure!(
            outcome.len() == tasks,
            "{} statuses for {tasks} tasks",
            outcome.len()
        );
        if i >= warmup {
            batches.push(batch_time);
            queues.push(queue_time);
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
        queue: Samples::new(queues),
        round_trip: round_trip.clone(),
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
