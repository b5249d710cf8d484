//! A test re-run alone in a child process of its test binary, with an
//! environment of its own.

use std::ffi::OsStr;
use std::process::{Command, Output};

use simpler_abi::artifacts::ARTIFACTS_DIR_ENV;

use crate::artifacts::host_artifacts;

/// Set in a child started by [`in_child`]. A name private to this crate
/// (it sets and reads it), so it has no home in `simpler-abi`.
pub const CHILD_ENV: &str = simpler_abi::test_env::TESTKIT_CHILD;

/// Whether this process is a child started by [`in_child`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Re-runs the test `name` (its full path as libtest prints it, e.g.
/// `errors::bad_kind`) alone in a child process of the current test binary
/// with `envs` added, and returns the child's output. The child gets
/// `SIMPLER_ARTIFACTS_DIR` naming [`host_artifacts`], unless `envs` sets it.
///
/// The test body should branch on [`is_child`]: the child does the work, the
/// parent checks the output.
pub fn in_child<K, V>(name: &str, envs: impl IntoIterator<Item = (K, V)>) -> Output
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    child_command(name, envs)
        .output()
        .expect("spawn the test binary as a child")
}

/// The command [`in_child`] runs, for a test that must act on the child
/// while it runs (stop or kill it): spawn it yourself.
pub fn child_command<K, V>(name: &str, envs: impl IntoIterator<Item = (K, V)>) -> Command
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let exe = std::env::current_exe().expect("current test binary");
    // Resolved (and built if need be) here, once per test process: a child
    // must not build, both for speed and because some children restrict
    // themselves first (an RLIMIT_FSIZE, say) in ways a build cannot survive.
    let artifacts = host_artifacts().dir().to_path_buf();
    let mut command = Command::new(exe);
    command
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env(ARTIFACTS_DIR_ENV, artifacts)
        .envs(envs);
    command
}

/// [`in_child`], asserting that the child ran exactly the test `name` and
/// that it passed (a misspelt name runs no test, which would otherwise
/// pass unnoticed); returns the child's output.
pub fn run_child<K, V>(name: &str, envs: impl IntoIterator<Item = (K, V)>) -> Output
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let out = in_child(name, envs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    out
}
