//! Where a contained panic goes: to the device log with its location, not
//! through the panic hook to stderr; a backtrace only when
//! `SIMPLER_AICPU_BACKTRACE` asks, whatever `RUST_BACKTRACE` says; and
//! every panic outside the glue still reaches the hook installed before.
//! Each test runs in a child process: the hook is process-wide.

use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

use simpler_aicpu::abi::log::dlog::ERROR;
use simpler_aicpu::abi::names::BACKTRACE_ENV;
use simpler_aicpu::abi::{OpCode, Task, TaskStatus};
use simpler_aicpu::glue::{code, TaskCtx};
use simpler_testkit::{in_child, is_child};

use crate::common::{init, task};
use crate::ffi::{glue_exec, take_dlog_lines, Batch};

/// Runs a batch whose one task panics; the error lines it logged.
fn panic_in_a_task() -> Vec<String> {
    init();
    take_dlog_lines();
    let batch = Batch::new(vec![task(OpCode::Panic, 0, 0, 0, 0, 0)]);
    assert_eq!(batch.exec(1), [code::TASK_FAILED]);
    assert_eq!(batch.status(0), TaskStatus::Panicked);
    take_dlog_lines()
        .into_iter()
        .filter(|(_, level, _)| *level == ERROR)
        .map(|(_, _, text)| text)
        .collect()
}

/// Runs test `name` in a child with `envs` and returns its output once it
/// passed.
fn child(name: &str, envs: &[(&str, &str)]) -> Output {
    let out = in_child(name, envs.iter().copied());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_contained_panic_goes_to_the_device_log_and_not_to_stderr() {
    const NAME: &str = "panics::a_contained_panic_goes_to_the_device_log_and_not_to_stderr";
    if !is_child() {
        for envs in [
            &[("RUST_BACKTRACE", "1")][..],
            &[("RUST_BACKTRACE", "full"), (BACKTRACE_ENV, "0")],
        ] {
            let out = child(NAME, envs);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("panicked") && !stderr.contains("backtrace"),
                "{envs:?}: the panic reached stderr:\n{stderr}"
            );
        }
        return;
    }
    let lines = panic_in_a_task();
    assert_eq!(lines.len(), 1, "no backtrace lines: {lines:?}");
    assert!(
        lines[0].starts_with("simpler_aicpu: task 0 panicked at crates/simpler-aicpu/src/ops.rs:")
            && lines[0].ends_with(": diagnostic Panic op in task 0"),
        "{lines:?}"
    );
}

#[test]
fn simpler_aicpu_backtrace_adds_the_backtrace_to_the_device_log() {
    const NAME: &str = "panics::simpler_aicpu_backtrace_adds_the_backtrace_to_the_device_log";
    if !is_child() {
        let out = child(NAME, &[("RUST_BACKTRACE", "0"), (BACKTRACE_ENV, "1")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        return;
    }
    let lines = panic_in_a_task();
    assert!(lines[0].contains("task 0 panicked at "), "{lines:?}");
    let backtrace: Vec<&String> = lines[1..]
        .iter()
        .filter(|l| l.starts_with("simpler_aicpu: task 0 backtrace: "))
        .collect();
    assert_eq!(backtrace.len(), lines.len() - 1, "{lines:?}");
    // A resolved frame of the panicking runner (the test binary has its
    // symbols).
    assert!(
        backtrace
            .iter()
            .any(|l| l.contains("simpler_aicpu::ops::run")),
        "{lines:?}"
    );
}

#[test]
fn panics_outside_the_glue_reach_the_previous_hook() {
    if !is_child() {
        child(
            "panics::panics_outside_the_glue_reach_the_previous_hook",
            &[],
        );
        return;
    }
    static CALLS: AtomicU32 = AtomicU32::new(0);
    // Before the runtime's first export call, which installs its hook.
    std::panic::set_hook(Box::new(|_| {
        CALLS.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(panic_in_a_task().len(), 1);
    assert_eq!(CALLS.load(Ordering::SeqCst), 0, "a contained panic");

    // This thread outside an export, and a thread a runner spawned.
    assert!(std::panic::catch_unwind(|| panic!("outside")).is_err());
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    fn spawns_a_panicking_thread(_: &TaskCtx) -> Result<(), TaskStatus> {
        assert!(std::thread::spawn(|| panic!("elsewhere")).join().is_err());
        Ok(())
    }
    let batch = Batch::new(vec![Task::default()]);
    assert_eq!(
        glue_exec(&batch.args(), spawns_a_panicking_thread),
        code::OK
    );
    assert_eq!(batch.status(0), TaskStatus::Ok);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);

    // Contained panics stay silent after that, too.
    assert_eq!(panic_in_a_task().len(), 1);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
}
