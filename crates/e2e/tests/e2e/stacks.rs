//! The stacks simpler's bootstrap cannot work on, through `simpler-host`:
//! on the simulator's emulated old CANN (`SIMPLER_SIM_OLD_CANN`) and
//! no-KFC firmware (`SIMPLER_SIM_NO_KFC_FIRMWARE`), building a runner fails
//! with an error that carries CANN's code and message, and leaves no
//! device memory or device process behind.

use simpler_abi::cann::error::{ACL_ERROR_RT_AICPU_EXCEPTION, ACL_ERROR_RT_FEATURE_NOT_SUPPORT};
use simpler_abi::sim::env;
use simpler_host::Error;
use simpler_testkit::host::{builder, cann, stats};
use simpler_testkit::{in_sim, sim_root};

use crate::support::device_processes;

/// Builds a runner on device 0, expecting it to fail; checks what is left.
fn build_fails() -> Error {
    let cann = cann();
    let device = cann.open_device(0).expect("device 0");
    let err = builder(&cann)
        .device(0)
        .build()
        .expect_err("a runner on a stack that cannot bootstrap");
    println!("build failed: {err}");
    let s = stats(&cann, 0);
    assert_eq!((s.live_bytes, s.live_allocations), (0, 0), "{s:?}");
    assert_eq!(s.kfc_calls, 0, "the dispatcher never ran");
    drop(device);
    let left = device_processes(&sim_root());
    assert!(left.is_empty(), "device processes left: {left:?}");
    err
}

#[test]
fn old_cann_fails_the_bootstrap_with_its_code_and_message() {
    in_sim(
        "stacks::old_cann_fails_the_bootstrap_with_its_code_and_message",
        &[(env::OLD_CANN, "1")],
        || {
            let err = build_fails();
            let cann = err.cann().unwrap_or_else(|| panic!("a CANN error: {err}"));
            assert_eq!(cann.code, ACL_ERROR_RT_AICPU_EXCEPTION, "{err}");
            let needle = "Get KFC DynTileFwkKernelServerInit api success, but func is nullptr";
            let message = cann.message.as_deref().unwrap_or_default();
            assert!(message.contains(needle), "{err}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.to_string().contains("507018"), "{err}");
        },
    );
}

#[test]
fn no_kfc_firmware_refuses_the_bootstrap_with_its_code_and_message() {
    in_sim(
        "stacks::no_kfc_firmware_refuses_the_bootstrap_with_its_code_and_message",
        &[(env::NO_KFC_FIRMWARE, "1")],
        || {
            let err = build_fails();
            let cann = err.cann().unwrap_or_else(|| panic!("a CANN error: {err}"));
            assert_eq!(cann.code, ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "{err}");
            assert_eq!(
                cann.name(),
                Some("ACL_ERROR_RT_FEATURE_NOT_SUPPORT"),
                "{err}"
            );
            let needle = "Current ts version does not support aicpu kfc kernel launch";
            let message = cann.message.as_deref().unwrap_or_default();
            assert!(message.contains(needle), "{err}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.to_string().contains("207000"), "{err}");
        },
    );
}
