//! Samples of a repeated measurement and their order statistics.

use std::time::{Duration, Instant};

/// Durations of repeated runs of one thing, sorted.
#[derive(Clone, Debug)]
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    /// Samples from `durations` (in any order); at least one.
    pub fn new(mut durations: Vec<Duration>) -> Self {
        assert!(!durations.is_empty(), "no samples");
        durations.sort_unstable();
        Self { sorted: durations }
    }

    /// Times `iters` calls of `f`, one by one, after `warmup` untimed ones.
    pub fn collect(warmup: usize, iters: usize, mut f: impl FnMut()) -> Self {
        for _ in 0..warmup {
            f();
        }
        let durations = (0..iters)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed()
            })
            .collect();
        Self::new(durations)
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Never: there is at least one sample.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The `q` quantile (0 ≤ q ≤ 1), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        let last = self.sorted.len() - 1;
        let rank = (q.clamp(0.0, 1.0) * last as f64).round() as usize;
        self.sorted[rank]
    }

    /// The median: the statistic every ratio uses, as it is the one a
    /// shared machine's stalls move least.
    pub fn median(&self) -> Duration {
        self.quantile(0.5)
    }

    /// The 90th percentile.
    pub fn p90(&self) -> Duration {
        self.quantile(0.9)
    }

    /// The arithmetic mean.
    pub fn mean(&self) -> Duration {
        self.sorted.iter().sum::<Duration>() / self.sorted.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_over_sorted_samples() {
        let s = Samples::new((1..=11).rev().map(Duration::from_micros).collect());
        assert_eq!(s.median(), Duration::from_micros(6));
        assert_eq!(s.quantile(0.0), Duration::from_micros(1));
        assert_eq!(s.quantile(1.0), Duration::from_micros(11));
        assert_eq!(s.p90(), Duration::from_micros(10));
        assert_eq!(s.mean(), Duration::from_micros(6));
    }
}
