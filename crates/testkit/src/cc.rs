//! Test inputs built from C with the host's C compiler: ELF files of a
//! shape no artifact has (a contract symbol exported as data, an
//! executable exporting the contract, …).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles C `source` with `cc` and `args` (e.g. `["-shared", "-fPIC"]`)
/// into `dir/name`, and returns that path; panics with the compiler's
/// output if it fails.
pub fn compile_c(dir: &Path, name: &str, source: &str, args: &[&str]) -> PathBuf {
    compile_with(Command::new("cc"), dir, name, source, args)
}

/// [`compile_c`] for the device side: with the compiler
/// `$SIMPLER_TEST_DEVICE_CC` names (the aarch64 end-to-end stage sets it),
/// else the host's `cc` — so a kernel SO suits the simulator's device
/// process either way.
pub fn compile_device_c(dir: &Path, name: &str, source: &str, args: &[&str]) -> PathBuf {
    let cc = std::env::var(simpler_abi::test_env::DEVICE_CC).unwrap_or_default();
    let mut words = cc.split_whitespace();
    let compiler = match words.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(words);
            cmd
        }
        None => Command::new("cc"),
    };
    compile_with(compiler, dir, name, source, args)
}

fn compile_with(
    mut compiler: Command,
    dir: &Path,
    name: &str,
    source: &str,
    args: &[&str],
) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let out = dir.join(name);
    std::fs::write(&c, source).unwrap_or_else(|e| panic!("{}: {e}", c.display()));
    let result = compiler
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(&c)
        .output()
        .expect("run the C compiler");
    assert!(
        result.status.success(),
        "cc {args:?} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}
