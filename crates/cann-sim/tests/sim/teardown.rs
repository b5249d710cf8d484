//! Teardown on a device that never answers: with the device process
//! stopped (`SIGSTOP`), every teardown call — `aclrtDestroyStream`,
//! `aclrtFree`, `aclrtResetDevice`, `aclFinalize` — returns, the stopped
//! process is gone once the device is reset, and the device works again.
//!
//! Each call runs under a watchdog that fails the test if the call has not
//! returned long after the documented bound: a hang is the failure.

use std::ffi::c_void;
use std::ptr::null_mut;
use std::time::Duration;

use simpler_testkit::{process_state, stop_process};

use crate::common::*;

/// Far beyond the documented teardown bound (a few seconds).
const WATCHDOG: Duration = Duration::from_secs(30);

/// [`simpler_testkit::within`] at [`WATCHDOG`].
fn within<T>(what: &str, f: impl FnOnce() -> T) -> T {
    simpler_testkit::within(what, WATCHDOG, f)
}

/// The pid of the current device's process, asked of the device itself.
fn device_pid(api: &Sim, stream: *mut c_void) -> u32 {
    let cell = api.alloc(8);
    api.launch_ok("getpid", "sim_getpid", &payload(cell, 0), 1, stream);
    api.sync_ok("sync getpid", stream);
    let pid = api.read_u64(cell) as u32;
    api.release(cell);
    pid
}

/// A launch on a stopped device is accepted and its sync times out: the
/// state every teardown below starts from.
fn wedge(api: &Sim, stream: *mut c_void) {
    api.launch_ok("launch", "sim_ok", &payload(0, 0), 1, stream);
    api.expect(
        "sync",
        api.sync_ms(stream, 200),
        ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
        "still running",
    );
}

#[test]
fn every_teardown_call_returns_on_a_stopped_device() {
    if ran_in_child(
        "teardown::every_teardown_call_returns_on_a_stopped_device",
        &[],
    ) {
        return;
    }
    let (api, stream) = device0_stream();
    let other = api.stream();
    let pid = device_pid(&api, stream);
    let buffer = api.alloc(64);
    stop_process(pid);
    wedge(&api, stream);

    let rc = within("aclrtDestroyStream", || api.destroy(stream));
    api.ok("aclrtDestroyStream", rc);
    // The device was found not answering: the next call says so.
    api.expect(
        "launch after the destroy",
        api.launch_type2(TEST_KERNELS, "sim_ok", &payload(0, 0), 1, other),
        ACL_ERROR_RT_DRV_INTERNAL_ERROR,
        "stopped answering",
    );
    let rc = within("aclrtFree", || code(api.free(buffer)));
    api.ok("aclrtFree", rc);
    let rc = within("aclrtDestroyStream (idle stream)", || api.destroy(other));
    api.ok("aclrtDestroyStream (idle stream)", rc);
    let rc = within("aclrtResetDevice", || code(api.reset_device(0)));
    api.ok("aclrtResetDevice", rc);
    assert_eq!(
        process_state(pid),
        None,
        "the stopped device process is gone"
    );

    // A fresh device process serves the device.
    api.set(0);
    let stream = api.stream();
    assert_ne!(device_pid(&api, stream), pid);
    api.launch_ok(
        "launch on the new process",
        "sim_ok",
        &payload(0, 0),
        2,
        stream,
    );
    api.sync_ok("sync on the new process", stream);
    api.ok("aclrtDestroyStream", api.destroy(stream));
    assert_eq!(api.stats(0).device_restarts, 1);
    api.reset(0);
}

#[test]
fn reset_and_finalize_return_with_launches_in_flight_on_stopped_devices() {
    if ran_in_child(
        "teardown::reset_and_finalize_return_with_launches_in_flight_on_stopped_devices",
        &[],
    ) {
        return;
    }
    install_test_kernels(&layout::preinstall_dir(&simpler_testkit::sim_root(), 1));
    let api = Sim::load();
    // Device 0: reset with its launch in flight and its stream never
    // destroyed.
    api.set(0);
    let stream = api.stream();
    let pid0 = device_pid(&api, stream);
    stop_process(pid0);
    wedge(&api, stream);
    let rc = within("aclrtResetDevice", || code(api.reset_device(0)));
    api.ok("aclrtResetDevice", rc);
    assert_eq!(
        process_state(pid0),
        None,
        "device 0's stopped process is gone"
    );
    api.expect(
        "aclrtDestroyStream after the reset",
        api.destroy(stream),
        ACL_ERROR_RT_PARAM_INVALID,
        "not a live stream",
    );

    // Devices 0 and 1 stopped at once, each with a launch in flight:
    // finalize stops both.
    let mut pids = Vec::new();
    for device in [0, 1] {
        api.set(device);
        let pid = device_pid(&api, null_mut());
        stop_process(pid);
        wedge(&api, null_mut());
        pids.push(pid);
    }
    let rc = within("aclFinalize", || api.finalize());
    api.ok("aclFinalize", rc);
    for pid in pids {
        assert_eq!(process_state(pid), None, "device process {pid} is gone");
    }

    // The simulator starts again from nothing.
    api.set(0);
    api.launch_ok(
        "launch after finalize",
        "sim_ok",
        &payload(0, 0),
        1,
        null_mut(),
    );
    api.sync_ok("sync after finalize", null_mut());
    api.ok("aclFinalize", api.finalize());
}
