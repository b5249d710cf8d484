//! Builders and checks shared by the tests: the configuration they latch,
//! tasks, single-task runs, and re-running a test in a fresh process.

use std::process::Output;

use simpler_aicpu::abi::{InitArgs, OpCode, Task, TaskStatus, ABI_VERSION};
use simpler_testkit::in_child;

use crate::ffi::{self, Batch};

/// The configuration every test that merely needs an initialised runtime
/// latches; identical in all of them, so concurrent tests do not disturb
/// one another.
pub const INIT: InitArgs = InitArgs {
    abi_version: ABI_VERSION,
    device_id: 0,
    log_level: 0,
    thread_count: 8,
};

/// Latches [`INIT`].
pub fn init() {
    assert_eq!(ffi::init(&INIT), 0);
}

/// The address of `p` as a device address (for an operand the runtime
/// only reads).
pub fn addr<T>(p: *const T) -> u64 {
    p as usize as u64
}

/// The address of `p` as a device address (for an operand the runtime
/// writes).
pub fn addr_mut<T>(p: *mut T) -> u64 {
    p as usize as u64
}

/// A task with the given op and operands, flags and reserved zero.
pub fn task(op: OpCode, dst: u64, src0: u64, src1: u64, len: u64, scalar: u64) -> Task {
    Task {
        op: op as u32,
        dst,
        src0,
        src1,
        len,
        scalar,
        ..Task::default()
    }
}

/// The OR of the threads' results, as a launch reports it.
pub fn or(results: &[i32]) -> i32 {
    results.iter().fold(0, |acc, r| acc | r)
}

/// Runs a single task on one thread; its status and the exec result.
pub fn run_one(t: Task) -> (TaskStatus, i32) {
    let batch = Batch::new(vec![t]);
    let results = batch.exec(1);
    let header = batch.header();
    assert_eq!(header.done, 1);
    let status = batch.status(0);
    assert_eq!(header.failed, u32::from(status != TaskStatus::Ok));
    (status, results[0])
}

/// Runs test `name` (module-qualified, as libtest names it) alone in a
/// child process, where no init has happened yet, and checks that it ran
/// and passed.
pub fn run_in_child(name: &str) {
    let Output {
        status,
        stdout,
        stderr,
    } = in_child(name, std::iter::empty::<(&str, &str)>());
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(
        status.success() && stdout.contains("1 passed"),
        "child {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
}
