//! Device bytes left behind and host memory growth over runner cycles.

use simpler_host::{Device, DeviceRunnerBuilder};

/// Resident set size of this process in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("/proc/self/statm has a resident field");
    pages * crate::sys::page_size()
}

/// Device bytes and allocations live on `device`, from the simulator.
pub fn live_device(device: &Device) -> (u64, u64) {
    let stats = device
        .sim_stats()
        .unwrap_or_else(|e| panic!("simpler_sim_get_stats failed: {e}"))
        .expect("the simulator's accounting is loaded");
    (stats.live_bytes, stats.live_allocations)
}

/// What [`cycles`] saw.
#[derive(Clone, Copy, Debug)]
pub struct Cycles {
    /// Cycles counted (after the warm-up).
    pub count: usize,
    /// Host RSS after the warm-up, bytes.
    pub rss_before: u64,
    /// Host RSS after the counted cycles, bytes.
    pub rss_after: u64,
    /// Device bytes live before and after the counted cycles.
    pub live_bytes: (u64, u64),
    /// Device allocations live before and after the counted cycles.
    pub live_allocations: (u64, u64),
}

impl Cycles {
    /// RSS growth in bytes (negative when it shrank).
    pub fn rss_growth(&self) -> i64 {
        self.rss_after as i64 - self.rss_before as i64
    }
}

/// Creates and drops `warmup` then `count` runners from `builder` on
/// `device` (which the caller keeps open, so that leaked device memory
/// would still be counted live rather than vanish with a device reset).
pub fn cycles(
    device: &Device,
    builder: impl Fn() -> DeviceRunnerBuilder,
    warmup: usize,
    count: usize,
) -> Cycles {
    let cycle = || {
        let runner = builder()
            .build()
            .unwrap_or_else(|e| panic!("building a runner failed: {e}"));
        drop(runner);
    };
    for _ in 0..warmup {
        cycle();
    }
    let (bytes_before, allocations_before) = live_device(device);
    let rss_before = rss_bytes();
    for _ in 0..count {
        cycle();
    }
    let rss_after = rss_bytes();
    let (bytes_after, allocations_after) = live_device(device);
    Cycles {
        count,
        rss_before,
        rss_after,
        live_bytes: (bytes_before, bytes_after),
        live_allocations: (allocations_before, allocations_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_sees_touched_memory() {
        let before = rss_bytes();
        let block = vec![1u8; 8 << 20];
        let after = rss_bytes();
        assert!(after >= before + (4 << 20), "{before} -> {after}");
        drop(block);
    }
}
