//! Measurements, not checks: ignored by default, each prints what it
//! measured. Run one alone, in the environment it is about:
//!
//! ```text
//! cargo test -p simpler-aicpu --test runtime -- --ignored --nocapture measure::
//! ```

use std::time::{Duration, Instant};

use simpler_aicpu::abi::names::BACKTRACE_ENV;
use simpler_aicpu::abi::{OpCode, Task};

use crate::common::{init, task};
use crate::ffi::{self, Batch};

/// Runs a one-task batch of `t` `rounds` times on this thread; the first
/// batch's time and the mean of the others.
fn batch_times(t: Task, rounds: u32) -> (Duration, Duration) {
    let mut times = (0..rounds).map(|_| {
        let batch = Batch::new(vec![t]);
        let args = batch.args();
        let start = Instant::now();
        ffi::exec(&args);
        start.elapsed()
    });
    let first = times.next().unwrap_or_default();
    let rest: Duration = times.sum();
    (first, rest / rounds.saturating_sub(1).max(1))
}

/// What a batch whose one task panics costs next to one whose task fills a
/// byte, under this process's `RUST_BACKTRACE` and `SIMPLER_AICPU_BACKTRACE`.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn panicking_task_batch_time() {
    init();
    const ROUNDS: u32 = 50;
    let mut byte = 0u8;
    let fill = task(OpCode::Fill, &raw mut byte as u64, 0, 0, 1, 1);
    let panic = task(OpCode::Panic, 0, 0, 0, 0, 0);
    let (fill_first, fill_rest) = batch_times(fill, ROUNDS);
    let (panic_first, panic_rest) = batch_times(panic, ROUNDS);
    let env = |key: &str| std::env::var(key).unwrap_or_else(|_| "(unset)".into());
    println!(
        "RUST_BACKTRACE={} {BACKTRACE_ENV}={}: one-task batch, first / mean of the next {}: \
         Fill {fill_first:?} / {fill_rest:?}, Panic {panic_first:?} / {panic_rest:?}",
        env("RUST_BACKTRACE"),
        env(BACKTRACE_ENV),
        ROUNDS - 1
    );
}
