//! The stacks simpler's bootstrap cannot work on, emulated by
//! configuration: an old CANN whose `libaicpu_extend_kernels` lacks the
//! KFC entry (the KFC launch fails at its sync with 507018), and
//! task-scheduler firmware without the AICPU KFC feature (the KFC launch
//! call itself is refused with 207000). Type-2 launches work on both.

use std::ptr::null_mut;

use simpler_abi::names::{KERNEL_TYPE_AICPU_KFC, KFC_OP_NAME_C};
use simpler_abi::BootstrapArgs;
use simpler_testkit::sim_root;

use crate::common::*;

const OLD_CANN_MESSAGE: &str =
    "Get KFC DynTileFwkKernelServerInit api success, but func is nullptr";
const NO_KFC_MESSAGE: &str = "Current ts version does not support aicpu kfc kernel launch";

fn device_sos() -> (Vec<u8>, Vec<u8>) {
    let a = simpler_testkit::host_artifacts();
    (
        std::fs::read(a.dispatcher()).unwrap(),
        std::fs::read(a.runtime()).unwrap(),
    )
}

/// Type-2 launches are not affected.
fn type2_still_works(api: &Sim, stream: *mut std::ffi::c_void) {
    api.launch_ok("type-2 launch", "sim_ok", &payload(0, 0), 2, stream);
    api.sync_ok("type-2 sync", stream);
}

/// Nothing the KFC server would have saved or installed is on the device.
fn nothing_saved(device: u32) {
    let root = sim_root();
    let tmp: Vec<_> = std::fs::read_dir(layout::tmp_dir(&root, device))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "the device's tmp holds {tmp:?}");
    let installed: Vec<_> = std::fs::read_dir(layout::preinstall_dir(&root, device))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != TEST_KERNELS)
        .collect();
    assert!(
        installed.is_empty(),
        "the preinstall directory holds {installed:?}"
    );
}

#[test]
fn old_cann_fails_the_kfc_launch_at_its_sync() {
    if ran_in_child(
        "stacks::old_cann_fails_the_kfc_launch_at_its_sync",
        &[(env::OLD_CANN, "1")],
    ) {
        return;
    }
    let (dispatcher, runtime) = device_sos();
    let (api, stream) = device0_stream();
    let b = bootstrap(&api, stream, &dispatcher, &runtime);
    assert_eq!(b.code, ACL_ERROR_RT_AICPU_EXCEPTION, "{}", b.message);
    assert!(b.message.contains(OLD_CANN_MESSAGE), "{}", b.message);
    assert!(b.message.contains("SIMPLER_SIM_OLD_CANN"), "{}", b.message);
    println!("old CANN: {}", b.message);
    // The dispatcher never ran: its report is as the host zeroed it.
    assert_eq!(b.report.status, 0);
    let s = api.stats(0);
    assert_eq!(
        (s.launches_kfc, s.kfc_calls, s.dispatcher_saves),
        (1, 0, 0),
        "{s:?}"
    );
    assert_eq!((s.live_bytes, s.live_allocations), (0, 0));
    nothing_saved(0);
    type2_still_works(&api, stream);
    // Every KFC launch fails alike, not only the first.
    let again = bootstrap(&api, stream, &dispatcher, &runtime);
    assert_eq!(
        again.code, ACL_ERROR_RT_AICPU_EXCEPTION,
        "{}",
        again.message
    );
    assert!(
        again.message.contains(OLD_CANN_MESSAGE),
        "{}",
        again.message
    );
    api.reset(0);
}

#[test]
fn no_kfc_firmware_refuses_the_kfc_launch_call() {
    if ran_in_child(
        "stacks::no_kfc_firmware_refuses_the_kfc_launch_call",
        &[(env::NO_KFC_FIRMWARE, "1")],
    ) {
        return;
    }
    let (api, stream) = device0_stream();
    // The launch is refused before its argument block is looked at.
    let block = BootstrapArgs::new(0);
    let info = args_ex(
        bytemuck::bytes_of(&block),
        simpler_abi::bootstrap::BOOTSTRAP_SO_NAME_OFFSET,
        simpler_abi::bootstrap::BOOTSTRAP_KERNEL_NAME_OFFSET,
    );
    let rc = api.launch_raw(KERNEL_TYPE_AICPU_KFC, KFC_OP_NAME_C, 1, &info, stream);
    api.expect(
        "KFC launch",
        rc,
        ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
        NO_KFC_MESSAGE,
    );
    // So is the whole bootstrap, and it leaves nothing behind.
    let (dispatcher, runtime) = device_sos();
    let b = bootstrap(&api, stream, &dispatcher, &runtime);
    assert_eq!(b.code, ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "{}", b.message);
    assert!(b.message.contains(NO_KFC_MESSAGE), "{}", b.message);
    assert!(
        b.message.contains("SIMPLER_SIM_NO_KFC_FIRMWARE"),
        "{}",
        b.message
    );
    assert!(
        b.message
            .contains("ACL_ERROR_RT_FEATURE_NOT_SUPPORT 207000"),
        "{}",
        b.message
    );
    let s = api.stats(0);
    assert_eq!(
        (s.launches_kfc, s.kfc_calls, s.dispatcher_saves),
        (2, 0, 0),
        "{s:?}"
    );
    assert_eq!((s.live_bytes, s.live_allocations), (0, 0));
    nothing_saved(0);
    // Nothing was queued: the stream syncs at once, and type 2 works.
    api.sync_ok("sync after the refusal", stream);
    type2_still_works(&api, null_mut());
    api.reset(0);
}

#[test]
fn a_stack_switch_other_than_0_or_1_is_refused_naming_it() {
    let name = "stacks::a_stack_switch_other_than_0_or_1_is_refused_naming_it";
    if child() {
        let api = Sim::load();
        let var = std::env::var(simpler_abi::test_env::STACK_SWITCH).unwrap();
        api.expect(
            "aclrtGetDeviceCount",
            code(api.device_count()),
            ACL_ERROR_RT_PARAM_INVALID,
            &format!("{var}=\"yes\": expected 0 or 1"),
        );
        return;
    }
    for var in [env::OLD_CANN, env::NO_KFC_FIRMWARE] {
        run_child(
            name,
            &[(var, "yes"), (simpler_abi::test_env::STACK_SWITCH, var)],
        );
    }
}
