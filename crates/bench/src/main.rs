//! Benchmarks of simpler against floors measured in the same run.

fn main() {}
