//! Builds the two shared libraries the benchmarks load, and tells the crate
//! where they are:
//!
//! - `csrc/launch_shim.c`, for the host-side launch cost (`BENCH_LAUNCH_SHIM`);
//! - `csrc/empty_kernel.c`, the type-2 kernel of the simulator's launch
//!   latency bench (`BENCH_EMPTY_KERNEL`);
//! - `csrc/min_runtime.c`, the minimal runtime SO of the cold-bootstrap
//!   curve (`BENCH_MIN_RUNTIME`), built with only the contract exported.

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    shared_library(
        "csrc/launch_shim.c",
        &out.join("libsimpler_bench_launch_shim.so"),
        "BENCH_LAUNCH_SHIM",
        &[],
    );
    shared_library(
        "csrc/empty_kernel.c",
        &out.join("libsimpler_bench_empty_kernel.so"),
        "BENCH_EMPTY_KERNEL",
        &[],
    );
    let abi_version = format!("-DSIMPLER_ABI_VERSION={}u", simpler_abi::ABI_VERSION);
    shared_library(
        "csrc/min_runtime.c",
        &out.join("libsimpler_bench_min_runtime.so"),
        "BENCH_MIN_RUNTIME",
        &["-fvisibility=hidden", "-s", &abi_version],
    );
}

/// Compiles `src` into the shared library `out`, with `flags` besides the
/// common ones, and names it to the crate as the compile-time variable
/// `var`.
fn shared_library(src: &str, out: &Path, var: &str, flags: &[&str]) {
    println!("cargo:rerun-if-changed={src}");
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"])
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {:?}: {e}", compiler.path()));
    assert!(status.success(), "compiling {src} failed");
    println!("cargo:rustc-env={var}={}", out.display());
}
