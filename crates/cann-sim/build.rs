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
    let list = out.join("device-exports.list");
    std::fs::write(&list, "{ DlogRecord; };\n").expect("write the dynamic list");
    let bin = "simpler-sim-aicpu";
    println!(
        "cargo:rustc-link-arg-bin={bin}={}",
        out.join("libsimpler_sim_dlog.a").display()
    );
    // Dynamic symbols of the executable: exactly DlogRecord, so dlopened
    // device SOs can resolve it and nothing else of ours leaks into them.
    println!(
        "cargo:rustc-link-arg-bin={bin}=-Wl,--dynamic-list={}",
        list.display()
    );
    println!("cargo:rerun-if-changed=src/device/dlog.c");
}
