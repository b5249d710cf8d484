//! The bootstrap on the simulator: the single-flight cache, one install per
//! (device, runtime SO), failures that carry the dispatcher's report, and
//! init's ABI check.

use std::sync::Barrier;
use std::thread;

use simpler_host::abi::{sim, InitArgs, ReportStage, ABI_VERSION};
use simpler_host::{BootstrapFailure, CacheStatus, Error, Role, SoImage};
use simpler_testkit::device_artifacts;
use simpler_testkit::host::{builder, cann, stats};
use simpler_testkit::{in_sim, layout, preinstall_dir, preinstalled, sim_root};

fn one_fill(runner: &mut simpler_host::DeviceRunner, value: u8) {
    let buf = runner.alloc(32).unwrap();
    let mut batch = runner.batch();
    batch.fill(&buf, value).unwrap();
    batch.run().unwrap();
    assert_eq!(buf.to_vec::<u8>().unwrap(), vec![value; 32]);
}

#[test]
fn sixteen_concurrent_runners_bootstrap_once() {
    in_sim(
        "bootstrap::sixteen_concurrent_runners_bootstrap_once",
        &[],
        || {
            let cann = cann();
            let barrier = Barrier::new(16);
            let statuses: Vec<CacheStatus> = thread::scope(|s| {
                let handles: Vec<_> = (0..16)
                    .map(|i| {
                        let (cann, barrier) = (&cann, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            let mut runner = builder(cann).threads(2).build().unwrap();
                            one_fill(&mut runner, i);
                            runner.info().cache
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let st = stats(&cann, 0);
            assert_eq!(st.launches_kfc, 1, "{st:?}");
            assert_eq!(st.kfc_calls, 1);
            assert_eq!(
                statuses.iter().filter(|s| **s == CacheStatus::Miss).count(),
                1,
                "{statuses:?}"
            );
            assert_eq!(st.launches_aicpu, 32, "16 inits and 16 execs");
            assert_eq!(preinstalled(&sim_root(), 0).len(), 1);
            // A later runner is a plain cache hit that uploads nothing.
            let runner = builder(&cann).build().unwrap();
            assert_eq!(runner.info().cache, CacheStatus::Hit);
            assert_eq!(runner.info().bytes_uploaded, 0);
            assert_eq!(stats(&cann, 0).launches_kfc, 1);
        },
    );
}

#[test]
fn two_devices_bootstrap_twice() {
    in_sim("bootstrap::two_devices_bootstrap_twice", &[], || {
        let cann = cann();
        let mut r0 = builder(&cann).device(0).build().unwrap();
        let mut r1 = builder(&cann).device(1).build().unwrap();
        assert_eq!(r0.info().cache, CacheStatus::Miss);
        assert_eq!(r1.info().cache, CacheStatus::Miss);
        assert_eq!(stats(&cann, 0).launches_kfc, 1);
        assert_eq!(stats(&cann, 1).launches_kfc, 1);
        let name = r0.info().preinstall_name.to_string();
        assert_eq!(preinstalled(&sim_root(), 0), std::slice::from_ref(&name));
        assert_eq!(preinstalled(&sim_root(), 1), [name]);
        // Interleaved use from one thread keeps each runner on its device.
        for i in 0..3 {
            one_fill(&mut r0, i);
            one_fill(&mut r1, i + 10);
        }
        drop((r0, r1));
        assert_eq!(stats(&cann, 0).live_bytes, 0);
        assert_eq!(stats(&cann, 1).live_bytes, 0);
    });
}

#[test]
fn two_runtime_sos_install_two_files() {
    in_sim("bootstrap::two_runtime_sos_install_two_files", &[], || {
        let cann = cann();
        let original = std::fs::read(device_artifacts().runtime()).unwrap();
        // Bytes appended after the last section leave a loadable ELF with
        // another fingerprint: a second, distinct runtime SO.
        let mut variant = original.clone();
        variant.extend_from_slice(b"simpler test: a different runtime SO");
        let mut a = builder(&cann).build().unwrap();
        let mut b = builder(&cann).runtime_bytes(variant).build().unwrap();
        assert_ne!(a.info().fingerprint, b.info().fingerprint);
        assert_eq!(b.info().cache, CacheStatus::Miss);
        assert_eq!(b.info().runtime, "<runtime SO bytes>");
        assert_eq!(stats(&cann, 0).launches_kfc, 2);
        let mut names = vec![
            a.info().preinstall_name.to_string(),
            b.info().preinstall_name.to_string(),
        ];
        names.sort();
        assert_eq!(preinstalled(&sim_root(), 0), names);
        assert_eq!(
            std::fs::read(preinstall_dir(&sim_root(), 0).join(b.info().preinstall_name.as_str()))
                .unwrap()[..original.len()],
            original[..]
        );
        one_fill(&mut a, 1);
        one_fill(&mut b, 2);
    });
}

#[test]
fn a_missing_preinstall_dir_fails_with_the_dispatchers_report() {
    in_sim(
        "bootstrap::a_missing_preinstall_dir_fails_with_the_dispatchers_report",
        &[],
        || {
            let cann = cann();
            // Keep the device up while its preinstall directory goes away.
            let device = cann.open_device(0).unwrap();
            std::fs::remove_dir_all(preinstall_dir(&sim_root(), 0)).unwrap();
            let err = builder(&cann).build().unwrap_err();
            let Error::Bootstrap(boot) = &err else {
                panic!("{err}")
            };
            let step = boot.report().unwrap_or_else(|| panic!("{err}"));
            assert_eq!(step.stage, ReportStage::Open);
            assert_eq!(step.errno, libc_enoent());
            assert!(
                step.path
                    .starts_with(&preinstall_dir(&sim_root(), 0).display().to_string()),
                "{}",
                step.path
            );
            let text = err.to_string();
            assert!(text.contains("stage `open`"), "{text}");
            assert!(text.contains("No such file or directory"), "{text}");
            assert_eq!(stats(&cann, 0).live_bytes, 0, "nothing left on the device");

            // Not cached: once the directory is back, the next runner
            // bootstraps again and succeeds.
            std::fs::create_dir_all(preinstall_dir(&sim_root(), 0)).unwrap();
            let runner = builder(&cann).build().unwrap();
            assert_eq!(runner.info().cache, CacheStatus::Miss);
            assert_eq!(stats(&cann, 0).launches_kfc, 2);
            drop((runner, device));
        },
    );
}

fn libc_enoent() -> i32 {
    std::io::Error::from(std::io::ErrorKind::NotFound)
        .raw_os_error()
        .unwrap_or(2)
}

#[test]
fn a_preinstall_path_that_is_a_file_fails_with_enotdir() {
    in_sim(
        "bootstrap::a_preinstall_path_that_is_a_file_fails_with_enotdir",
        &[],
        || {
            // Before the device starts: the device process cannot create its
            // preinstall directory, and the dispatcher must say why.
            std::fs::create_dir_all(layout::device_dir(&sim_root(), 0)).unwrap();
            std::fs::write(preinstall_dir(&sim_root(), 0), b"not a directory").unwrap();
            let cann = cann();
            let err = builder(&cann).build().unwrap_err();
            let Error::Bootstrap(boot) = &err else {
                panic!("{err}")
            };
            let step = boot.report().unwrap_or_else(|| panic!("{err}"));
            assert_eq!(step.stage, ReportStage::Open);
            assert_eq!(step.errno, 20, "ENOTDIR: {err}");
            assert!(step.path.contains("simpler_inner_") || step.path.contains("preinstall"));
            assert!(err.to_string().contains("Not a directory"), "{err}");
            assert_eq!(stats(&cann, 0).live_bytes, 0);
        },
    );
}

#[test]
fn a_failed_write_reports_the_write_stage() {
    in_sim(
        "bootstrap::a_failed_write_reports_the_write_stage",
        &[(sim::env::FAIL_DISPATCHER_WRITE, "1")],
        || {
            let cann = cann();
            let err = builder(&cann).build().unwrap_err();
            let Error::Bootstrap(boot) = &err else {
                panic!("{err}")
            };
            let step = boot.report().unwrap_or_else(|| panic!("{err}"));
            assert_eq!(step.stage, ReportStage::Write, "{err}");
            assert_ne!(step.errno, 0);
            assert!(
                preinstalled(&sim_root(), 0).is_empty(),
                "no file left behind"
            );
            assert_eq!(stats(&cann, 0).live_bytes, 0);
        },
    );
}

#[test]
fn a_failed_allocation_frees_what_was_allocated() {
    // The second aclrtMalloc of the process is the runtime SO's buffer.
    in_sim(
        "bootstrap::a_failed_allocation_frees_what_was_allocated",
        &[(sim::env::FAIL_MALLOC, "2")],
        || {
            let cann = cann();
            let err = builder(&cann).build().unwrap_err();
            let Error::Bootstrap(boot) = &err else {
                panic!("{err}")
            };
            let BootstrapFailure::Cann(cann_err) = &boot.failure else {
                panic!("{err}")
            };
            assert_eq!(cann_err.call, "aclrtMalloc");
            assert_eq!(cann_err.code, 207001);
            assert!(err.to_string().contains("out of memory"), "{err}");
            let st = stats(&cann, 0);
            assert_eq!(st.live_bytes, 0);
            assert_eq!(st.launches_kfc, 0);
            // The failure was not cached.
            let runner = builder(&cann).build().unwrap();
            assert_eq!(runner.info().cache, CacheStatus::Miss);
        },
    );
}

#[test]
fn init_with_a_foreign_abi_version_is_rejected_clearly() {
    in_sim(
        "bootstrap::init_with_a_foreign_abi_version_is_rejected_clearly",
        &[],
        || {
            let cann = cann();
            let mut runner = builder(&cann).threads(2).build().unwrap();
            let err = runner
                .launch_init(InitArgs {
                    abi_version: ABI_VERSION + 1,
                    device_id: 0,
                    log_level: 0,
                    thread_count: 2,
                })
                .unwrap_err();
            let Error::InitRejected {
                abi_version,
                source,
                ..
            } = &err
            else {
                panic!("{err}")
            };
            assert_eq!(*abi_version, ABI_VERSION + 1);
            assert_eq!(source.code, 507018);
            let text = err.to_string();
            assert!(
                text.contains("simpler_aicpu_init failed on device")
                    && text.contains("ABI version other than the one it was built with")
                    && text.contains(&format!("host ABI version {}", ABI_VERSION + 1)),
                "{text}"
            );
            // A rejected init leaves the runtime as it was: still usable.
            one_fill(&mut runner, 9);
        },
    );
}

#[test]
fn a_cached_install_survives_a_reset_and_a_lost_one_is_reinstalled() {
    in_sim(
        "bootstrap::a_cached_install_survives_a_reset_and_a_lost_one_is_reinstalled",
        &[],
        || {
            let cann = cann();
            let first = builder(&cann).build().unwrap();
            let name = first.info().preinstall_name;
            drop(first); // the last user: the device is reset
            let mut again = builder(&cann).build().unwrap();
            assert_eq!(again.info().cache, CacheStatus::Hit);
            one_fill(&mut again, 4);
            drop(again);
            assert_eq!(stats(&cann, 0).launches_kfc, 1);

            // The file vanishes behind the cache's back (as when a device
            // reset wipes the AICPU filesystem): init fails on the cached
            // install, and the builder installs it again.
            std::fs::remove_file(preinstall_dir(&sim_root(), 0).join(name.as_str())).unwrap();
            let mut healed = builder(&cann).build().unwrap();
            assert_eq!(healed.info().cache, CacheStatus::Miss);
            assert!(healed.info().bytes_uploaded > 0);
            assert_eq!(stats(&cann, 0).launches_kfc, 2);
            assert_eq!(preinstalled(&sim_root(), 0), [name.to_string()]);
            one_fill(&mut healed, 5);
        },
    );
}

#[test]
fn runners_from_one_image_share_one_bootstrap() {
    in_sim(
        "bootstrap::runners_from_one_image_share_one_bootstrap",
        &[],
        || {
            let cann = cann();
            let prepared = builder(&cann).threads(2).prepare().unwrap();
            let statuses: Vec<CacheStatus> = thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|i| {
                        let prepared = prepared.clone();
                        s.spawn(move || {
                            let mut runner = prepared.build().unwrap();
                            one_fill(&mut runner, i);
                            runner.info().cache
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(
                statuses.iter().filter(|s| **s == CacheStatus::Miss).count(),
                1,
                "{statuses:?}"
            );
            assert_eq!(stats(&cann, 0).launches_kfc, 1);
            let runner = prepared.clone().build().unwrap();
            assert_eq!(
                (runner.info().cache, runner.info().bytes_uploaded),
                (CacheStatus::Hit, 0)
            );
            assert_eq!(
                runner.info().runtime,
                device_artifacts().runtime().display().to_string()
            );
            let name = runner.info().preinstall_name;
            drop(runner);

            // A new image of the same content finds the install by its content
            // and learns the fingerprint from it instead of hashing.
            let fresh = SoImage::from_path(
                device_artifacts().runtime(),
                Role::Runtime,
                cann.device_machine(),
            )
            .unwrap();
            assert!(
                format!("{fresh:?}").contains("fingerprint: None"),
                "{fresh:?}"
            );
            let runner = builder(&cann).runtime_image(fresh.clone()).build().unwrap();
            assert_eq!(runner.info().cache, CacheStatus::Hit);
            assert!(format!("{fresh:?}").contains(&format!("{:016x}", runner.info().fingerprint)));
            assert_eq!(fresh.preinstall_name(), name);
            drop(runner);

            // An image holds the bytes, so a lost install is reinstalled from
            // it without reading the file again.
            std::fs::remove_file(preinstall_dir(&sim_root(), 0).join(name.as_str())).unwrap();
            let mut healed = prepared.build().unwrap();
            assert_eq!(healed.info().cache, CacheStatus::Miss);
            assert_eq!(stats(&cann, 0).launches_kfc, 2);
            assert_eq!(preinstalled(&sim_root(), 0), [name.to_string()]);
            one_fill(&mut healed, 7);
        },
    );
}
