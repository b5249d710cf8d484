//! Link settings for the dispatcher SO.
//!
//! Under `--cfg simpler_nostd` (the device build) the panic handler calls a
//! symbol that exists nowhere; `--no-undefined` turns any panic path that
//! survives optimisation into a link error instead of a shared object with
//! an unresolved reference. See the module comment in `src/lib.rs`.
//!
//! For the integration tests, `DlogRecord` defined in a test binary is
//! exported so the dispatcher's `dlsym(RTLD_DEFAULT, "DlogRecord")` finds it,
//! as it finds CANN's on a device.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_CFG_SIMPLER_NOSTD").is_some() {
        println!("cargo::rustc-link-arg-cdylib=-Wl,--no-undefined");
        // Every glibc since 2.5 reads the GNU hash table; the SysV one
        // would only add bytes to a size-bounded SO.
        println!("cargo::rustc-link-arg-cdylib=-Wl,--hash-style=gnu");
    }
    // `-rdynamic` rather than `--export-dynamic-symbol=DlogRecord`, which
    // zig's linker (the aarch64 cross build) does not accept.
    println!("cargo::rustc-link-arg-tests=-rdynamic");
}
