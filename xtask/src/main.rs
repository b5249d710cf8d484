//! `cargo xtask`: build, check and test automation for simpler.

fn main() {}
