//! Builds the device process's `DlogRecord` (a C variadic function, which
//! stable Rust cannot define) and exports it to the SOs the process dlopens.

use std::path::PathBuf;

use simpler_abi::log::dlog;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    cc::Build::new()
        .file("src/dlog.c")
        .warnings(true)
        .compile("simpler_sim_dlog");
    // Put exactly DlogRecord in the executable's dynamic symbol table, so
    // dlopened device SOs resolve it and nothing else of ours leaks into
    // them: export dynamic symbols, limited by a version script. (zig cc,
    // used for aarch64 builds, rejects --dynamic-list and
    // --export-dynamic-symbol; this pair works with GNU ld, lld and zig.)
    let symbol = dlog::SYMBOL_C.to_str().expect("an ASCII symbol name");
    let script = out.join("device-exports.map");
    std::fs::write(&script, format!("{{ global: {symbol}; local: *; }};\n"))
        .expect("write the version script");
    println!("cargo:rustc-link-arg-bins=-rdynamic");
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--version-script={}",
        script.display()
    );
    println!("cargo:rerun-if-changed=src/dlog.c");
}
