//! Builds `csrc/launch_shim.c` as a shared library for the host-side launch
//! cost benchmark and tells the crate where it is (`BENCH_LAUNCH_SHIM`).

use std::path::PathBuf;

fn main() {
    let src = "csrc/launch_shim.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("libsimpler_bench_launch_shim.so");
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {:?}: {e}", compiler.path()));
    assert!(status.success(), "compiling {src} failed");
    println!("cargo:rustc-env=BENCH_LAUNCH_SHIM={}", out.display());
}
