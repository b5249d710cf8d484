//! Lets the integration test binary stand in for CANN's log library: the
//! runtime finds `DlogRecord` with `dlsym(RTLD_DEFAULT)`, which sees only
//! symbols in a dynamic symbol table, and an executable exports none by
//! default. (The unit-test binary defines none, so it runs without one.)

fn main() {
    println!("cargo::rustc-link-arg-tests=-Wl,--export-dynamic-symbol=DlogRecord");
    println!("cargo::rerun-if-changed=build.rs");
}
