//! Teardown on a device that never answers: every call that tears a runner
//! down returns in bounded time, and the device works again after its reset.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use simpler_host::abi::cann::error::ACL_ERROR_RT_STREAM_SYNC_TIMEOUT;
use simpler_host::Error;
use simpler_testkit::host::{builder, cann};
use simpler_testkit::{in_sim, sim_root};

use crate::support::device_processes;

/// Far beyond the documented bound (the simulator's destroy waits 5 s, its
/// reset gives a device process 5 s to exit before killing it): a drop
/// still running after this is a hang.
const WATCHDOG: Duration = Duration::from_secs(60);

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid}");
}

#[test]
fn dropping_a_runner_on_a_stopped_device_returns_and_the_device_works_after() {
    in_sim(
        "teardown::dropping_a_runner_on_a_stopped_device_returns_and_the_device_works_after",
        &[],
        || {
            let cann = cann();
            let mut runner = builder(&cann)
                .threads(2)
                .launch_timeout(Duration::from_millis(500))
                .build()
                .expect("build a runner");
            let buf = runner.alloc(64).expect("alloc");
            let root = sim_root();
            let stopped = device_processes(&root);
            assert!(
                !stopped.is_empty(),
                "no device process under {}",
                root.display()
            );
            for p in &stopped {
                signal(p.pid, "-STOP");
            }

            let mut batch = runner.batch();
            batch.fill(&buf, 7).expect("queue a fill");
            match batch.run() {
                Err(Error::Cann(e)) => assert_eq!(e.code, ACL_ERROR_RT_STREAM_SYNC_TIMEOUT, "{e}"),
                other => panic!("a stopped device must time the sync out, got {other:?}"),
            }

            // Drop everything on another thread, under a watchdog.
            let (done, finished) = mpsc::channel();
            let teardown = thread::spawn(move || {
                drop(buf);
                drop(runner);
                let _ = done.send(());
            });
            if finished.recv_timeout(WATCHDOG).is_err() {
                for p in &stopped {
                    signal(p.pid, "-CONT");
                }
                panic!(
                    "dropping the runner on a stopped device did not return within {WATCHDOG:?}"
                );
            }
            teardown.join().expect("the teardown thread");
            let left: Vec<_> = device_processes(&root)
                .into_iter()
                .filter(|p| stopped.iter().any(|s| s.pid == p.pid))
                .collect();
            assert!(
                left.is_empty(),
                "stopped device processes outlived the reset: {left:?}"
            );

            // A new runner on the same device bootstraps (or reuses) and runs.
            let mut runner = builder(&cann).threads(2).build().expect("a new runner");
            let buf = runner.alloc(64).expect("alloc");
            let mut batch = runner.batch();
            batch.fill(&buf, 9).expect("queue a fill");
            batch.run().expect("a batch after the reset");
            assert_eq!(buf.to_vec::<u8>().expect("read back"), vec![9u8; 64]);
        },
    );
}
