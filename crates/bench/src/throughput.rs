//! FNV-1a throughput: the project's fingerprint against a plain loop over
//! the `fnv` crate's hasher.

use std::hash::Hasher;
use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::stats::Samples;

/// Bytes hashed per timed call: large enough that call overhead vanishes.
pub const BUFFER: usize = 16 << 20;

/// A buffer of [`BUFFER`] non-constant bytes.
pub fn buffer() -> Vec<u8> {
    (0..BUFFER)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect()
}

/// `simpler_abi::fingerprint`.
pub fn simpler(bytes: &[u8]) -> u64 {
    simpler_abi::fingerprint(black_box(bytes))
}

/// The reference: the `fnv` crate's hasher over the whole buffer.
pub fn fnv_crate(bytes: &[u8]) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(black_box(bytes));
    hasher.finish()
}

/// Times both over `bytes` in `rounds` alternating rounds; checks that
/// they agree.
pub fn compare(bytes: &[u8], rounds: usize) -> (Samples, Samples) {
    assert_eq!(simpler(bytes), fnv_crate(bytes), "the two FNV-1a disagree");
    let time = |f: fn(&[u8]) -> u64| {
        let started = Instant::now();
        black_box(f(bytes));
        started.elapsed()
    };
    let (mut a, mut b): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(time(simpler));
        b.push(time(fnv_crate));
    }
    (Samples::new(a), Samples::new(b))
}

/// Bytes per second.
pub fn rate(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64()
}
