//! A device process that stops answering, through `simpler-host`: with the
//! device process stopped (`SIGSTOP`), a batch fails at the runner's launch
//! timeout with 507046; dropping the runner (stream destroy, frees, device
//! reset) returns — a watchdog fails the test if it hangs far beyond the
//! simulator's documented bound — and kills the stopped process; new
//! runners on the same device then work: one on the install this process
//! cached (init only), and one on a runtime not installed yet, which
//! bootstraps through the fresh device process. No device process of the
//! simulator root is left.

use std::time::Duration;

use simpler_abi::cann::error::ACL_ERROR_RT_STREAM_SYNC_TIMEOUT;
use simpler_host::abi::fingerprint;
use simpler_host::{DeviceRunner, Error};
use simpler_testkit::host::{builder, cann, stats};
use simpler_testkit::{
    child_env, is_child, process_state, run_child, sim_root, stop_process, within, SimRoot,
};

use crate::support::{children, device_processes, runtime_pair};

const NAME: &str = "wedged::a_runner_on_a_stopped_device_drops_and_the_device_works_again";

/// Far beyond the documented teardown bound (a few seconds).
const WATCHDOG: Duration = Duration::from_secs(30);

/// One batch (fill, FNV-1a of uploaded bytes), its results checked.
fn batch(runner: &mut DeviceRunner) -> Result<(), Error> {
    let input: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 1) as u8).collect();
    let src = runner.upload(&input)?;
    let filled = runner.alloc(256)?;
    let hash = runner.alloc(8)?;
    let mut batch = runner.batch();
    batch.fill(&filled, 0xa5)?.fnv1a64(&hash, &src)?;
    batch.run()?;
    assert_eq!(filled.to_vec::<u8>()?, vec![0xa5; 256], "the fill");
    assert_eq!(hash.to_vec::<u64>()?[0], fingerprint(&input), "the hash");
    Ok(())
}

/// A runner on device 0 with a short launch timeout, on the artifacts'
/// runtime or on `runtime`.
fn runner(cann: &simpler_host::Cann, runtime: Option<Vec<u8>>) -> DeviceRunner {
    let b = builder(cann)
        .device(0)
        .threads(2)
        .launch_timeout(Duration::from_millis(500));
    let b = match runtime {
        Some(bytes) => b.runtime_bytes(bytes),
        None => b,
    };
    b.build().expect("a runner on device 0")
}

#[test]
fn a_runner_on_a_stopped_device_drops_and_the_device_works_again() {
    if is_child() {
        wedge_then_recover();
        return;
    }
    let root = SimRoot::new();
    run_child(NAME, child_env(root.path()));
    let left = device_processes(root.path());
    assert!(left.is_empty(), "device processes left: {left:?}");
}

fn wedge_then_recover() {
    let root = sim_root();
    let cann = cann();
    let mut first = runner(&cann, None);
    batch(&mut first).expect("a batch before the device is stopped");
    let procs = device_processes(&root);
    assert_eq!(procs.len(), 1, "one device process: {procs:?}");
    let pid = procs[0].pid;
    stop_process(pid);

    let err = batch(&mut first).expect_err("a batch on a stopped device");
    println!("batch on the stopped device: {err}");
    assert_eq!(
        err.cann().map(|c| c.code),
        Some(ACL_ERROR_RT_STREAM_SYNC_TIMEOUT),
        "{err}"
    );
    within(
        "dropping the runner of the stopped device",
        WATCHDOG,
        || drop(first),
    );
    assert_eq!(
        process_state(pid),
        None,
        "the reset killed the stopped device process"
    );

    // The runtime this process installed: the builder finds it cached and
    // only launches init, on a fresh device process.
    let mut cached = within("building a runner on the cached install", WATCHDOG, || {
        runner(&cann, None)
    });
    batch(&mut cached).expect("a batch on the new device process");
    let procs = device_processes(&root);
    assert!(
        procs.len() == 1 && procs[0].pid != pid,
        "a fresh device process serves the device: {procs:?}"
    );
    // A runtime not installed yet: a bootstrap through the new process.
    let kfc_before = stats(&cann, 0).kfc_calls;
    let [_, variant] = runtime_pair();
    let mut fresh = within("building a runner that bootstraps", WATCHDOG, || {
        runner(&cann, Some(variant))
    });
    batch(&mut fresh).expect("a batch on the newly installed runtime");
    let s = stats(&cann, 0);
    assert_eq!(
        s.kfc_calls,
        kfc_before + 1,
        "the second runtime bootstrapped"
    );
    assert_eq!(s.device_restarts, 1);
    within("dropping the new runners", WATCHDOG, || {
        drop(cached);
        drop(fresh);
    });
    let left = device_processes(&root);
    assert!(left.is_empty(), "device processes left: {left:?}");
    let kids = children();
    assert!(kids.is_empty(), "child processes left: {kids:?}");
}
