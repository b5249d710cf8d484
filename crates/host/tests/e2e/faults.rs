//! Launch failures on the simulator: op timeouts, host-side sync timeouts
//! and a crashed device, each with CANN's code and a usable runner (or a
//! device that recovers) afterwards.

use std::time::Duration;

use simpler_host::abi::{sim, OpCode, Task};
use simpler_host::{CacheStatus, DeviceRunner, Error};
use simpler_testkit::host::{builder, cann, stats};
use simpler_testkit::in_sim;

fn sleep_task(micros: u64) -> Task {
    Task {
        op: OpCode::SleepUs as u32,
        scalar: micros,
        ..Task::default()
    }
}

fn fill_ok(runner: &mut DeviceRunner) {
    let buf = runner.alloc(16).unwrap();
    let mut batch = runner.batch();
    batch.fill(&buf, 7).unwrap();
    batch.run().unwrap();
    assert_eq!(buf.to_vec::<u8>().unwrap(), vec![7; 16]);
}

fn cann_code(err: &Error) -> i32 {
    err.cann()
        .unwrap_or_else(|| panic!("not a CANN error: {err}"))
        .code
}

#[test]
fn a_kernel_past_the_op_timeout_is_507017() {
    in_sim(
        "faults::a_kernel_past_the_op_timeout_is_507017",
        &[(sim::env::OP_TIMEOUT_MS, "200")],
        || {
            let cann = cann();
            let mut runner = builder(&cann).build().unwrap();
            let mut batch = runner.batch();
            batch.push_raw(sleep_task(1_000_000));
            let err = batch.run().unwrap_err();
            assert_eq!(cann_code(&err), 507017, "{err}");
            let text = err.to_string();
            assert!(
                text.contains("ACL_ERROR_RT_AICPU_TIMEOUT") && text.contains("op timeout"),
                "{text}"
            );
        },
    );
}

#[test]
fn the_host_stops_waiting_after_the_launch_timeout() {
    in_sim(
        "faults::the_host_stops_waiting_after_the_launch_timeout",
        &[],
        || {
            let cann = cann();
            let mut runner = builder(&cann)
                .launch_timeout(Duration::from_millis(100))
                .build()
                .unwrap();
            let mut batch = runner.batch();
            batch.push_raw(sleep_task(600_000));
            let err = batch.run().unwrap_err();
            assert_eq!(cann_code(&err), 507046, "{err}");
            assert!(
                err.to_string().contains("raise the runner's timeout"),
                "{err}"
            );
            drop(runner);
            assert_eq!(stats(&cann, 0).live_bytes, 0);
        },
    );
}

#[test]
fn a_crashed_device_is_poisoned_until_reset_then_recovers() {
    // Launch 1 is the bootstrap, 2 the init, 3 the first exec.
    in_sim(
        "faults::a_crashed_device_is_poisoned_until_reset_then_recovers",
        &[(sim::env::KILL_AT_LAUNCH, "3")],
        || {
            let cann = cann();
            let mut runner = builder(&cann).build().unwrap();
            let buf = runner.alloc(16).unwrap();
            let mut batch = runner.batch();
            batch.fill(&buf, 1).unwrap();
            let err = batch.run().unwrap_err();
            assert_eq!(cann_code(&err), 507018, "{err}");
            let mut batch = runner.batch();
            batch.fill(&buf, 1).unwrap();
            let err = batch.run().unwrap_err();
            assert_eq!(cann_code(&err), 507899, "{err}");
            assert!(err.to_string().contains("poisoned"), "{err}");

            // Dropping every user resets the device; the next runner gets a
            // fresh device process, and the install is still on its disk.
            drop((buf, runner));
            let mut runner = builder(&cann).build().unwrap();
            assert_eq!(runner.info().cache, CacheStatus::Hit);
            fill_ok(&mut runner);
            assert_eq!(stats(&cann, 0).device_restarts, 1);
        },
    );
}
