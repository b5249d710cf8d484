//! Many bootstraps of the same bytes at once — 16 threads in each of 4
//! processes sharing one preinstall directory — while readers in every
//! process keep opening the target and hashing what they read. A reader
//! must only ever see no file or the complete one, and afterwards the
//! directory holds the target alone: no temp file survives.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use simpler_abi::names::PREINSTALL_DIR_ENV;
use simpler_abi::PreinstallName;

use crate::common::*;
use crate::ffi::Bootstrap;

const PROCESSES: usize = 4;
const THREADS: usize = 16;
const ROUNDS: usize = 3;
const SIZE: usize = 512 * 1024 + 13;

fn runtime() -> Vec<u8> {
    fake_elf(SIZE, 42)
}

/// Keeps reading `target` until `stop` is set and at least one complete
/// read happened; every read must hash to the name's fingerprint. Returns
/// the number of complete reads.
fn read_until(target: &Path, stop: &AtomicBool) -> u64 {
    let want = PreinstallName::parse(target.file_name().unwrap().to_str().unwrap()).unwrap();
    let mut reads = 0;
    while !stop.load(Ordering::Acquire) || reads == 0 {
        match std::fs::read(target) {
            Ok(bytes) => {
                assert_eq!(bytes.len(), SIZE, "a reader saw a partial file");
                assert_eq!(
                    simpler_abi::fingerprint(&bytes),
                    want,
                    "a reader saw a torn file"
                );
                reads += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => thread::yield_now(),
            Err(e) => panic!("reading {}: {e}", target.display()),
        }
    }
    reads
}

#[test]
fn concurrent_bootstraps_never_expose_a_partial_file() {
    let runtime = runtime();
    if simpler_testkit::is_child() {
        let dir = std::path::PathBuf::from(std::env::var_os(PREINSTALL_DIR_ENV).unwrap());
        let target = target_in(&dir, &runtime);
        let stop = AtomicBool::new(false);
        let installs = AtomicU64::new(0);
        thread::scope(|s| {
            let reader = s.spawn(|| read_until(&target, &stop));
            let writers: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..ROUNDS {
                            let mut call = Bootstrap::of(&runtime);
                            assert_eq!(call.run(), 0, "{:?}", call.report);
                            assert_report_ok(&call.report, &runtime, &target);
                            installs.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            stop.store(true, Ordering::Release);
            assert!(reader.join().unwrap() > 0);
        });
        assert_eq!(installs.into_inner(), (THREADS * ROUNDS) as u64);
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let target = target_in(dir.path(), &runtime);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (target, stop) = (target.clone(), stop.clone());
            thread::spawn(move || read_until(&target, &stop))
        })
        .collect();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let dir = dir.path().to_owned();
            thread::spawn(move || {
                run_child(
                    "concurrency::concurrent_bootstraps_never_expose_a_partial_file",
                    &[(PREINSTALL_DIR_ENV, dir.as_os_str())],
                )
            })
        })
        .collect();
    for child in children {
        child.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    assert_installed(&target, &runtime);
    assert_entries(dir.path(), &[PreinstallName::of(&runtime).as_str()]);
}
