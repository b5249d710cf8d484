//! Builds the device process's `DlogRecord` (a C variadic function, which
//! stable Rust cannot define) and exports it to the SOs the process dlopens.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    // Only the device binary links the archive; the cdylib must not carry
    // `DlogRecord`, so cargo's automatic link directives stay off.
    cc::Build::new()
        .file("src/device/dlog.c")
        .warnings(true)
        .cargo_metadata(false)
        .compile("simpler_sim_dlog");
    let bin = "simpler-sim-aicpu";
    println!(
        "cargo:rustc-link-arg-bin={bin}={}",
        out.join("libsimpler_sim_dlog.a").display()
    );
    // Put exactly DlogRecord in the executable's dynamic symbol table, so
    // dlopened device SOs resolve it and nothing else of ours leaks into
    // them: export dynamic symbols, limited by a version script. (zig cc,
    // used for aarch64 builds, rejects --dynamic-list and
    // --export-dynamic-symbol; this pair works with GNU ld, lld and zig.)
    let script = out.join("device-exports.map");
    std::fs::write(&script, "{ global: DlogRecord; local: *; };\n")
        .expect("write the version script");
    println!("cargo:rustc-link-arg-bin={bin}=-rdynamic");
    println!(
        "cargo:rustc-link-arg-bin={bin}=-Wl,--version-script={}",
        script.display()
    );
    println!("cargo:rerun-if-changed=src/device/dlog.c");
}
