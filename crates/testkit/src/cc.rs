//! Test inputs built from C with the host's C compiler: ELF files of a
//! shape no artifact has (a contract symbol exported as data, an
//! executable exporting the contract, …).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles C `source` with `cc` and `args` (e.g. `["-shared", "-fPIC"]`)
/// into `dir/name`, and returns that path; panics with the compiler's
/// output if it fails.
pub fn compile_c(dir: &Path, name: &str, source: &str, args: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let out = dir.join(name);
    std::fs::write(&c, source).unwrap_or_else(|e| panic!("{}: {e}", c.display()));
    let result = Command::new("cc")
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(&c)
        .output()
        .expect("run the host C compiler (cc)");
    assert!(
        result.status.success(),
        "cc {args:?} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}
