//! `simpler_host::maintenance` on the simulator, through the real KFC path
//! and the device-side dispatcher (so also with the aarch64 device side
//! under qemu): a listing after an install shows it; remove then list;
//! gc keeps the newest runtimes and fresh temp files; files of other
//! namings stay; no device memory is left after any command; and a
//! process whose runtime was removed under it still builds runners.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use simpler_host::maintenance::{self, FileKind, Maintenance};
use simpler_host::{CacheStatus, Cann, DeviceRunner, Role, SoImage};
use simpler_testkit::host::{builder, cann, stats};
use simpler_testkit::{device_artifacts, in_sim, preinstall_dir, sim_root};

use crate::support::runtime_pair;

fn dispatcher(cann: &Cann) -> SoImage {
    SoImage::from_path(
        device_artifacts().dispatcher(),
        Role::Dispatcher,
        cann.device_machine(),
    )
    .expect("the dispatcher artifact")
}

/// A runner for `runtime`, which it checks with one batch.
fn runner(cann: &Cann, runtime: &[u8]) -> DeviceRunner {
    let mut runner = builder(cann)
        .runtime_bytes(runtime.to_vec())
        .build()
        .expect("build a runner");
    one_fill(&mut runner);
    runner
}

fn one_fill(runner: &mut DeviceRunner) {
    let buf = runner.alloc(64).unwrap();
    let mut batch = runner.batch();
    batch.fill(&buf, 0x5c).unwrap();
    batch.run().unwrap();
    assert_eq!(buf.to_vec::<u8>().unwrap(), vec![0x5c; 64]);
}

/// No device memory is left on device 0, and no device is open.
fn assert_nothing_left(cann: &Cann) {
    let st = stats(cann, 0);
    assert_eq!((st.live_bytes, st.live_allocations), (0, 0), "{st:?}");
}

fn preinstall() -> PathBuf {
    preinstall_dir(&sim_root(), 0)
}

/// Creates `name` in the preinstall directory, last written `age` ago.
fn plant(name: &str, len: usize, age: Duration) {
    let dir = preinstall();
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, vec![0xee; len]).unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

fn temp_name(fp: u64, pid: u32) -> String {
    format!(
        ".simpler_inner_{fp:016x}.so.tmp.0.{pid}.{pid}.0.{:016x}.{:016x}",
        u64::from(pid) << 32,
        !fp
    )
}

fn names_on_disk(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_listing_after_an_install_shows_it() {
    in_sim(
        "maintenance::a_listing_after_an_install_shows_it",
        &[],
        || {
            let cann = cann();
            let [runtime, _] = runtime_pair();
            let installed = runner(&cann, &runtime).info().clone();
            plant("libother.so", 10, Duration::from_secs(5));
            let temp = temp_name(0x77, 4242);
            plant(&temp, 3, Duration::from_secs(30));
            assert_nothing_left(&cann);

            let listing = maintenance::list(&cann, 0, &dispatcher(&cann)).unwrap();
            assert_nothing_left(&cann);
            assert_eq!(listing.device, 0);
            assert_eq!(Path::new(&listing.dir), preinstall());
            assert!(!listing.truncated);
            assert_eq!(listing.total, 2);
            let [first, second] = &listing.files[..] else {
                panic!("{listing:?}")
            };
            assert_eq!(first.kind, FileKind::Installed);
            assert_eq!(first.name, installed.preinstall_name.as_str());
            assert_eq!(first.fingerprint, Some(installed.fingerprint));
            assert_eq!(first.size, runtime.len() as u64);
            assert!(first.age < Duration::from_secs(60), "{first:?}");
            assert_eq!(second.kind, FileKind::Temp);
            assert_eq!(second.name, temp);
            assert_eq!(second.size, 3);
            assert!(
                (Duration::from_secs(29)..Duration::from_secs(90)).contains(&second.age),
                "{second:?}"
            );
            // Listing touched nothing.
            let mut want = vec![
                installed.preinstall_name.to_string(),
                "libother.so".to_owned(),
                temp,
            ];
            want.sort();
            assert_eq!(names_on_disk(&preinstall()), want);
        },
    );
}

#[test]
fn remove_then_list() {
    in_sim("maintenance::remove_then_list", &[], || {
        let cann = cann();
        let [a, b] = runtime_pair();
        let a = runner(&cann, &a).info().clone();
        let b = runner(&cann, &b).info().clone();
        let m = Maintenance::new(&cann, 0, dispatcher(&cann));
        let absent = 0x0123_4567_89ab_cdef;

        let removal = m.remove(&[a.fingerprint, absent, a.fingerprint]).unwrap();
        assert_nothing_left(&cann);
        let removed: Vec<&str> = removal.removed.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(removed, [a.preinstall_name.as_str()]);
        assert_eq!(removal.removed[0].size, a.runtime_len);
        assert_eq!(removal.missing, [absent]);
        assert!(removal.failed.is_empty());
        assert!(!removal.is_complete());

        let listing = m.list().unwrap();
        assert_nothing_left(&cann);
        let names: Vec<&str> = listing.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [b.preinstall_name.as_str()]);

        // Removed already: missing now.
        let again = m.remove(&[a.fingerprint]).unwrap();
        assert!(again.removed.is_empty());
        assert_eq!(again.missing, [a.fingerprint]);
        let all = m.remove(&[b.fingerprint]).unwrap();
        assert!(all.is_complete());
        assert!(m.list().unwrap().files.is_empty());
        assert_nothing_left(&cann);
    });
}

#[test]
fn gc_keeps_the_newest_runtimes_and_fresh_temp_files() {
    in_sim(
        "maintenance::gc_keeps_the_newest_runtimes_and_fresh_temp_files",
        &[],
        || {
            let cann = cann();
            let [a, b] = runtime_pair();
            let a = runner(&cann, &a).info().clone();
            let b = runner(&cann, &b).info().clone();
            // Three runtimes installed long ago (their bytes do not
            // matter here), a temp file a dead writer left, one a live
            // writer is working on, and a file of another naming.
            let old: Vec<String> = (1..=3u64)
                .map(|i| {
                    let name = format!("simpler_inner_{:016x}.so", 0xa0 + i);
                    plant(&name, 100, Duration::from_secs(3600 * i));
                    name
                })
                .collect();
            let stale = temp_name(0x51, 1001);
            let fresh = temp_name(0x52, 1002);
            plant(&stale, 7, Duration::from_secs(700));
            plant(&fresh, 7, Duration::from_secs(10));
            plant("libother.so", 1, Duration::from_secs(99_999));

            let m = Maintenance::new(&cann, 0, dispatcher(&cann));
            let removal = m.gc(2, Duration::from_secs(600)).unwrap();
            assert_nothing_left(&cann);
            assert!(removal.is_complete() && !removal.truncated, "{removal:?}");
            let mut removed: Vec<&str> = removal.removed.iter().map(|f| f.name.as_str()).collect();
            removed.sort();
            let mut want: Vec<&str> = old.iter().map(String::as_str).collect();
            want.push(&stale);
            want.sort();
            assert_eq!(removed, want);
            // Installed first, newest first, then the temp file.
            assert_eq!(removal.removed[0].name, old[0]);
            assert_eq!(removal.removed[3].kind, FileKind::Temp);

            let listing = m.list().unwrap();
            let kept: Vec<&str> = listing.files.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(
                kept,
                [
                    b.preinstall_name.as_str(),
                    a.preinstall_name.as_str(),
                    &fresh
                ]
            );
            // Keep 1: the older of the two real ones goes.
            let removal =
                maintenance::gc(&cann, 0, &dispatcher(&cann), 1, Duration::from_secs(600)).unwrap();
            let removed: Vec<&str> = removal.removed.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(removed, [a.preinstall_name.as_str()]);
            // Keep 0 and a stale age of 0: everything of simpler's naming.
            let removal = m.gc(0, Duration::ZERO).unwrap();
            assert_eq!(removal.removed.len(), 2, "{removal:?}");
            assert_eq!(names_on_disk(&preinstall()), ["libother.so"]);
            assert_nothing_left(&cann);
        },
    );
}

#[test]
fn a_runtime_removed_under_a_process_is_reinstalled_by_its_next_runner() {
    in_sim(
        "maintenance::a_runtime_removed_under_a_process_is_reinstalled_by_its_next_runner",
        &[],
        || {
            let cann = cann();
            let [runtime, _] = runtime_pair();
            let mut first = runner(&cann, &runtime);
            let fp = first.info().fingerprint;
            let m = Maintenance::new(&cann, 0, dispatcher(&cann));
            assert_eq!(m.remove(&[fp]).unwrap().removed.len(), 1);
            assert!(m.list().unwrap().files.is_empty());

            // The device process that loaded it keeps it: the runner goes
            // on, and a new one there is a cache hit that works.
            one_fill(&mut first);
            let mut second = runner(&cann, &runtime);
            assert_eq!(second.info().cache, CacheStatus::Hit);
            one_fill(&mut second);
            drop((first, second)); // the device is reset

            // A new device process does not have it: init fails on the
            // cached install and the builder installs it again.
            let kfc_before = stats(&cann, 0).launches_kfc;
            let mut third = runner(&cann, &runtime);
            assert_eq!(third.info().cache, CacheStatus::Miss);
            assert_eq!(stats(&cann, 0).launches_kfc, kfc_before + 1);
            one_fill(&mut third);
            let listing = m.list().unwrap();
            assert_eq!(listing.files.len(), 1);
            assert_eq!(listing.files[0].fingerprint, Some(fp));
            drop(third);
            assert_nothing_left(&cann);
        },
    );
}

#[test]
fn bad_arguments_are_refused_before_any_launch() {
    in_sim(
        "maintenance::bad_arguments_are_refused_before_any_launch",
        &[],
        || {
            let cann = cann();
            let d = dispatcher(&cann);
            let err = maintenance::list(&cann, -1, &d).unwrap_err();
            assert!(err.to_string().contains("negative"), "{err}");
            let err = Maintenance::new(&cann, 0, d.clone())
                .capacity(1 << 20)
                .list()
                .unwrap_err();
            assert!(err.to_string().contains("at most 65536"), "{err}");
            let runtime = SoImage::from_path(
                device_artifacts().runtime(),
                Role::Runtime,
                cann.device_machine(),
            )
            .unwrap();
            let err = maintenance::list(&cann, 0, &runtime).unwrap_err();
            assert!(err.to_string().contains("not a dispatcher"), "{err}");
            assert_eq!(stats(&cann, 0).launches_kfc, 0);
            // A device that does not exist is the CANN error of opening it.
            let err = maintenance::list(&cann, 99, &d).unwrap_err();
            assert!(err.to_string().contains("on device 99"), "{err}");
        },
    );
}
