//! [`Module`]s of C kernel SOs on both launch paths: install and run,
//! kernel failures, refusals before upload, borrowed streams, the binary
//! path's one registration per (device, module) and what is left behind.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use simpler_host::abi::names::RUNTIME_SYMBOLS;
use simpler_host::abi::{PreinstallName, SimStats};
use simpler_host::elf::NotAFunction;
use simpler_host::{
    BorrowedStream, CacheStatus, Cann, DeviceRunner, Error, KernelStep, LaunchPath, Machine,
    Module, ModuleBuilder, PreflightProblem, Role, SoImage, Stream, SymbolKind,
};
use simpler_testkit::host::{builder, cann, stats};
use simpler_testkit::{compile_c, host_artifacts, in_sim, preinstalled, sim_root};

/// The kernels the tests run: one writes `count` words `value + i` to the
/// device address in its payload, one fails.
const KERNELS: &str = r#"
    #include <stdint.h>
    struct write_args { uint64_t dst; uint32_t value; uint32_t count; };
    uint32_t k_write(void *p) {
        struct write_args *a = p;
        uint32_t *dst = (uint32_t *)(uintptr_t)a->dst;
        for (uint32_t i = 0; i < a->count; i++) dst[i] = a->value + i;
        return 0;
    }
    uint32_t k_fail(void *p) { (void)p; return 7; }
"#;

/// The shapes the preflight refuses (an SO with an undefined symbol the
/// device could not even load), next to a good kernel.
const BAD_KERNELS: &str = r#"
    #include <stdint.h>
    uint32_t k_good(void *p) { (void)p; return 0; }
    uint32_t k_data[4] = {1, 2, 3, 4};
    extern uint32_t k_undefined(void *p);
    uint32_t k_calls_undefined(void *p) { return k_undefined(p); }
    __attribute__((visibility("hidden"))) uint32_t k_hidden(void *p) { (void)p; return 0; }
"#;

/// `struct write_args`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct WriteArgs {
    pub(crate) dst: u64,
    pub(crate) value: u32,
    pub(crate) count: u32,
}

/// The kernel SO, compiled once per process for this machine (the
/// simulator's device machine in these tests).
pub(crate) fn kernel_so() -> &'static Path {
    static SO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    compiled(&SO, KERNELS)
}

/// The SO of [`BAD_KERNELS`].
fn bad_so() -> &'static Path {
    static SO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    compiled(&SO, BAD_KERNELS)
}

fn compiled(cell: &'static OnceLock<(tempfile::TempDir, PathBuf)>, source: &str) -> &'static Path {
    &cell
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let so = compile_c(
                dir.path(),
                "libkernels.so",
                source,
                &["-shared", "-fPIC", "-O1"],
            );
            (dir, so)
        })
        .1
}

pub(crate) fn module(cann: &Cann, path: LaunchPath) -> ModuleBuilder {
    Module::builder(cann)
        .device_machine(Machine::host())
        .dispatcher_path(host_artifacts().dispatcher())
        .so_path(kernel_so())
        .kernels(["k_write", "k_fail"])
        .launch_path(path)
}

/// Runs `k_write` for `count` words and checks what it wrote.
fn write_and_check(module: &Module, stream: &mut Stream, threads: u32, value: u32) {
    let count = 64u32;
    let buf = module.device().alloc_zeroed(count as usize * 4).unwrap();
    let args = WriteArgs {
        dst: buf.device_addr(),
        value,
        count,
    };
    let kernel = module.kernel("k_write").unwrap();
    kernel.launch_pod(stream, threads, &args).unwrap();
    stream.sync(Some(Duration::from_secs(30))).unwrap();
    let got = buf.to_vec::<u32>().unwrap();
    let want: Vec<u32> = (0..count).map(|i| value + i).collect();
    assert_eq!(got, want);
}

fn nothing_on_device(st: &SimStats) {
    assert_eq!(
        (st.launches_kfc, st.launches_aicpu, st.launches_cpu_kernel),
        (0, 0, 0),
        "nothing may be launched before the checks pass"
    );
    assert_eq!(
        st.peak_bytes, 0,
        "nothing may be uploaded before the checks pass"
    );
}

#[test]
fn both_paths_install_and_run() {
    in_sim("module::both_paths_install_and_run", &[], || {
        let cann = cann();
        assert_eq!(cann.launch_paths(), LaunchPath::ALL.to_vec());
        let bytes = std::fs::read(kernel_so()).unwrap();
        let name = PreinstallName::of(&bytes);
        for (i, path) in LaunchPath::ALL.into_iter().enumerate() {
            let before = stats(&cann, 0);
            let m = module(&cann, path).build().unwrap();
            let info = m.info();
            assert_eq!(info.preinstall_name, name);
            assert_eq!(info.launch_path, path);
            assert_eq!(m.launch_path(), path);
            assert_eq!(info.so, kernel_so().display().to_string());
            assert_eq!(info.so_len, bytes.len() as u64);
            assert_eq!(info.kernels, ["k_write", "k_fail"]);
            // The first build installs; the second finds the install.
            if i == 0 {
                assert_eq!(info.cache, CacheStatus::Miss);
                assert!(info.bytes_uploaded >= bytes.len() as u64);
            } else {
                assert_eq!((info.cache, info.bytes_uploaded), (CacheStatus::Hit, 0));
            }
            assert!(Path::new(&info.installed_path).is_file());
            assert_eq!(
                info.registration,
                (path == LaunchPath::Binary).then_some(CacheStatus::Miss)
            );
            let mut stream = Stream::new(m.device()).unwrap();
            assert!(!stream.is_borrowed());
            write_and_check(&m, &mut stream, 1, 100);
            write_and_check(&m, &mut stream, 3, 7);
            let after = stats(&cann, 0);
            match path {
                LaunchPath::Type2 => {
                    assert_eq!(after.launches_aicpu - before.launches_aicpu, 2);
                    assert_eq!(after.launches_cpu_kernel, before.launches_cpu_kernel);
                }
                LaunchPath::Binary => {
                    assert_eq!(after.launches_cpu_kernel - before.launches_cpu_kernel, 2);
                    assert_eq!(after.launches_aicpu, before.launches_aicpu);
                    assert_eq!(after.binaries_live, 1);
                    assert_eq!(after.functions_live, 2);
                }
            }
            // Only declared kernels.
            let err = m.kernel("k_hidden").unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument(t) if t.contains("k_hidden")
                    && t.contains("k_write, k_fail")),
                "{err}"
            );
        }
        assert_eq!(preinstalled(&sim_root(), 0), [name.to_string()]);
        let st = stats(&cann, 0);
        assert_eq!((st.binaries_live, st.functions_live), (0, 0));
    });
}

#[test]
fn a_failing_kernel_names_itself_its_so_and_the_code() {
    in_sim(
        "module::a_failing_kernel_names_itself_its_so_and_the_code",
        &[],
        || {
            let cann = cann();
            for path in LaunchPath::ALL {
                let m = module(&cann, path).build().unwrap();
                let mut stream = Stream::new(m.device()).unwrap();
                let kernel = m.kernel("k_fail").unwrap();
                assert_eq!(kernel.name(), "k_fail");
                let err = kernel
                    .run(&mut stream, 1, &[1, 2, 3], Some(Duration::from_secs(30)))
                    .unwrap_err();
                let Error::Kernel(e) = &err else {
                    panic!("{err}")
                };
                assert_eq!((e.device, e.step), (0, KernelStep::Sync));
                assert!(e.kernel_failed());
                assert_eq!(err.cann().map(|c| c.code), Some(507018));
                let text = err.to_string();
                for part in [
                    "kernel k_fail of ",
                    &kernel_so().display().to_string(),
                    m.info().preinstall_name.as_str(),
                    "on device 0",
                    "507018",
                ] {
                    assert!(text.contains(part), "{part:?} missing from {text}");
                }
                // Launches since the last sync are all named.
                let write = m.kernel("k_write").unwrap();
                let buf = m.device().alloc_zeroed(4).unwrap();
                let args = WriteArgs {
                    dst: buf.device_addr(),
                    value: 1,
                    count: 1,
                };
                write.launch_pod(&mut stream, 1, &args).unwrap();
                kernel.launch(&mut stream, 1, &[]).unwrap();
                kernel.launch(&mut stream, 1, &[]).unwrap();
                let err = stream.sync(Some(Duration::from_secs(30))).unwrap_err();
                let text = err.to_string();
                assert!(
                    text.contains("one of the kernels k_write of ")
                        && text.contains("k_fail of ")
                        && text.contains("2 launches"),
                    "{text}"
                );
                // The next sync has nothing to name.
                stream.sync(Some(Duration::from_secs(30))).unwrap();
            }
        },
    );
}

#[test]
fn bad_kernels_are_refused_before_upload() {
    in_sim("module::bad_kernels_are_refused_before_upload", &[], || {
        let cann = cann();
        let so = bad_so().display().to_string();
        let refuse = |kernel: &str| -> PreflightProblem {
            let err = Module::builder(&cann)
                .device_machine(Machine::host())
                .dispatcher_path(host_artifacts().dispatcher())
                .so_path(bad_so())
                .kernels(["k_good", kernel, "k_calls_undefined"])
                .build()
                .unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&so), "{text}");
            match err {
                Error::Preflight(p) => {
                    assert_eq!((p.file.as_str(), p.role), (so.as_str(), Role::Kernels));
                    assert!(text.contains(kernel), "{text}");
                    p.problem
                }
                other => panic!("{other}"),
            }
        };
        assert_eq!(
            refuse("k_data"),
            PreflightProblem::KernelNotAFunction {
                kernel: "k_data".into(),
                found: NotAFunction::Kind(SymbolKind::Object)
            }
        );
        assert_eq!(
            refuse("k_undefined"),
            PreflightProblem::KernelNotAFunction {
                kernel: "k_undefined".into(),
                found: NotAFunction::Kind(SymbolKind::Undefined)
            }
        );
        for missing in ["k_hidden", "k_missing"] {
            assert_eq!(
                refuse(missing),
                PreflightProblem::KernelNotAFunction {
                    kernel: missing.into(),
                    found: NotAFunction::Missing
                }
            );
        }
        let long = "k".repeat(simpler_host::abi::launch::KERNEL_NAME_MAX + 1);
        assert!(matches!(
            refuse(&long),
            PreflightProblem::InvalidKernelName { .. }
        ));
        // No kernel, no SO, a negative device.
        let err = Module::builder(&cann)
            .so_path(kernel_so())
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("at least one kernel"), "{err}");
        let err = Module::builder(&cann)
            .kernel("k_write")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("no default kernel SO"), "{err}");
        let err = module(&cann, LaunchPath::Binary)
            .device(-1)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        // An SO for another machine.
        let other = if Machine::host() == Machine::AARCH64 {
            Machine::X86_64
        } else {
            Machine::AARCH64
        };
        let err = module(&cann, LaunchPath::Type2)
            .device_machine(other)
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Preflight(p)
                if matches!(p.problem, PreflightProblem::WrongMachine { .. })),
            "{err}"
        );
        nothing_on_device(&stats(&cann, 0));
        assert_eq!(preinstalled(&sim_root(), 0), Vec::<String>::new());
    });
}

#[test]
fn launches_check_their_arguments() {
    in_sim("module::launches_check_their_arguments", &[], || {
        let cann = cann();
        let m = module(&cann, LaunchPath::Type2).build().unwrap();
        let kernel = m.kernel("k_write").unwrap();
        let mut stream = Stream::new(m.device()).unwrap();
        let before = stats(&cann, 0);
        let err = kernel.launch(&mut stream, 0, &[0; 16]).unwrap_err();
        assert!(err.to_string().contains("block_dim"), "{err}");
        // A stream on another device.
        let other = cann.open_device(1).unwrap();
        let mut elsewhere = Stream::new(&other).unwrap();
        let err = kernel.launch(&mut elsewhere, 1, &[0; 16]).unwrap_err();
        assert!(err.to_string().contains("device 1"), "{err}");
        assert_eq!(stats(&cann, 0).launches_aicpu, before.launches_aicpu);
    });
}

#[test]
fn a_borrowed_stream_is_launched_on_and_never_destroyed() {
    in_sim(
        "module::a_borrowed_stream_is_launched_on_and_never_destroyed",
        &[],
        || {
            let cann = cann();
            // The application's own CANN calls: the same library, so the
            // same simulator.
            let api = simpler_cann_sys::Api::load(&[host_artifacts().sim_lib()]).unwrap();
            api.set_device(0).unwrap();
            let raw = api.create_stream().unwrap();
            for path in LaunchPath::ALL {
                let m = module(&cann, path).build().unwrap();
                // SAFETY: `raw` is a stream of the loaded simulator on device
                // 0, destroyed below, after every value made from it is gone.
                let borrowed = unsafe { BorrowedStream::new(raw.as_ptr()) }.unwrap();
                let mut stream = Stream::borrowed(m.device(), borrowed);
                assert!(stream.is_borrowed());
                write_and_check(&m, &mut stream, 2, 5);
                drop(stream);
                drop(m);
            }
            // Every simpler handle on device 0 is gone; the device the
            // application set stays set and its stream alive.
            api.stream_calls().sync(&raw, 10_000).unwrap();
            api.destroy_stream(raw).unwrap();
            api.reset_device(0).unwrap();
        },
    );
}

#[test]
fn the_binary_path_registers_once_per_device_and_module() {
    in_sim(
        "module::the_binary_path_registers_once_per_device_and_module",
        &[],
        || {
            let cann = cann();
            let first = module(&cann, LaunchPath::Binary).build().unwrap();
            assert_eq!(first.info().registration, Some(CacheStatus::Miss));
            // Clones, equal modules built again, concurrently too: shared.
            let again: Vec<Module> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| module(&cann, LaunchPath::Binary).build().unwrap()))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for m in &again {
                assert_ne!(m.info().registration, Some(CacheStatus::Miss));
            }
            let mut stream = Stream::new(first.device()).unwrap();
            for (i, m) in again.iter().chain([&first.clone()]).enumerate() {
                write_and_check(m, &mut stream, 1, i as u32);
            }
            // Another kernel set is another registration; another device too.
            let only_write = Module::builder(&cann)
                .device_machine(Machine::host())
                .dispatcher_path(host_artifacts().dispatcher())
                .so_path(kernel_so())
                .kernel("k_write")
                .launch_path(LaunchPath::Binary)
                .build()
                .unwrap();
            assert_eq!(only_write.info().registration, Some(CacheStatus::Miss));
            let on_1 = module(&cann, LaunchPath::Binary).device(1).build().unwrap();
            assert_eq!(on_1.info().registration, Some(CacheStatus::Miss));
            let st = stats(&cann, 0);
            assert_eq!((st.binary_loads, st.binaries_live), (2, 2));
            assert_eq!(stats(&cann, 1).binary_loads, 1);
            drop((first, again, only_write, on_1, stream));
            for device in [0, 1] {
                let st = stats(&cann, device);
                assert_eq!(
                    (st.binaries_live, st.functions_live, st.live_bytes),
                    (0, 0, 0),
                    "device {device}"
                );
            }
        },
    );
}

#[test]
fn runners_on_the_binary_path_share_one_registration() {
    in_sim(
        "module::runners_on_the_binary_path_share_one_registration",
        &[],
        || {
            let cann = cann();
            let b = builder(&cann)
                .launch_path(LaunchPath::Binary)
                .prepare()
                .unwrap();
            let mut runners: Vec<DeviceRunner> =
                (0..3).map(|_| b.clone().build().unwrap()).collect();
            // A module shared by runners, made from the same runtime SO.
            let shared = runners[0].module().clone();
            runners.push(
                builder(&cann)
                    .module(shared.clone())
                    .threads(2)
                    .build()
                    .unwrap(),
            );
            runners.push(builder(&cann).module(shared).build().unwrap());
            for runner in &mut runners {
                assert_eq!(runner.info().launch_path, LaunchPath::Binary);
                for _ in 0..5 {
                    let a = runner.upload(&[1.0f32, 2.0]).unwrap();
                    let out = runner.alloc(8).unwrap();
                    let mut batch = runner.batch();
                    batch.scale_f32(&out, &a, 3.0).unwrap();
                    batch.run().unwrap();
                    assert_eq!(out.to_vec::<f32>().unwrap(), [3.0, 6.0]);
                }
            }
            let st = stats(&cann, 0);
            assert_eq!(st.binary_loads, 1, "one registration for every runner");
            assert_eq!(
                st.launches_aicpu, 0,
                "init and exec through the function handles"
            );
            assert_eq!(st.launches_cpu_kernel, 5 * (1 + 5));
            // A module not declaring the runner's kernels is refused.
            let m = Module::builder(&cann)
                .so_path(simpler_testkit::device_artifacts().runtime())
                .kernel(RUNTIME_SYMBOLS[0])
                .build()
                .unwrap();
            let err = builder(&cann).module(m).build().unwrap_err();
            assert!(err.to_string().contains(RUNTIME_SYMBOLS[1]), "{err}");
            drop(runners);
            let st = stats(&cann, 0);
            assert_eq!(
                (st.binaries_live, st.functions_live, st.live_bytes),
                (0, 0, 0)
            );
        },
    );
}

/// Files this process's registrations would leave in the temp directory.
fn leftover_descriptors() -> Vec<PathBuf> {
    let prefix = format!("simpler-ops-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_thousand_module_cycles_per_path_leak_nothing() {
    in_sim(
        "module::a_thousand_module_cycles_per_path_leak_nothing",
        &[],
        || {
            let cann = cann();
            let dispatcher = SoImage::from_path(
                host_artifacts().dispatcher(),
                Role::Dispatcher,
                Machine::host(),
            )
            .unwrap();
            let so = SoImage::from_path(kernel_so(), Role::Kernels, Machine::host()).unwrap();
            let device = cann.open_device(0).unwrap();
            let mut stream = Stream::new(&device).unwrap();
            let build = |path| {
                Module::builder(&cann)
                    .device_machine(Machine::host())
                    .dispatcher_image(dispatcher.clone())
                    .so_image(so.clone())
                    .kernels(["k_write", "k_fail"])
                    .launch_path(path)
                    .build()
                    .unwrap()
            };
            // Warm: whatever the first build of each path opens for good.
            for path in LaunchPath::ALL {
                write_and_check(&build(path), &mut stream, 1, 1);
            }
            let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
            let fds = open_fds();
            for path in LaunchPath::ALL {
                for i in 0..1000 {
                    let m = build(path);
                    if i % 100 == 0 {
                        write_and_check(&m, &mut stream, 1, i);
                    }
                }
            }
            let st = stats(&cann, 0);
            assert_eq!(st.binary_loads, 1001);
            assert_eq!(open_fds(), fds, "file descriptors leaked");
            assert_eq!((st.binaries_live, st.functions_live), (0, 0));
            assert_eq!(st.live_allocations, 0);
            assert_eq!(leftover_descriptors(), Vec::<PathBuf>::new());
        },
    );
}

/// A registration that fails (at `fault`'s first call) leaves nothing
/// behind, and the next build registers.
fn failed_registration_leaks_nothing() {
    let cann = cann();
    let err = module(&cann, LaunchPath::Binary).build().unwrap_err();
    assert!(
        matches!(&err, Error::Cann(c) if c.context == Some("kernel registration")),
        "{err}"
    );
    let st = stats(&cann, 0);
    assert_eq!((st.binaries_live, st.functions_live), (0, 0));
    assert_eq!(st.live_allocations, 0);
    assert_eq!(leftover_descriptors(), Vec::<PathBuf>::new());
    let m = module(&cann, LaunchPath::Binary).build().unwrap();
    assert_eq!(m.info().registration, Some(CacheStatus::Miss));
    let mut stream = Stream::new(m.device()).unwrap();
    write_and_check(&m, &mut stream, 1, 9);
}

#[test]
fn a_failed_load_leaks_nothing() {
    in_sim(
        "module::a_failed_load_leaks_nothing",
        &[(simpler_host::abi::sim::env::FAIL_BINARY_LOAD, "1")],
        failed_registration_leaks_nothing,
    );
}

#[test]
fn a_failed_function_lookup_leaks_nothing() {
    in_sim(
        "module::a_failed_function_lookup_leaks_nothing",
        &[(simpler_host::abi::sim::env::FAIL_FUNC_GET, "1")],
        failed_registration_leaks_nothing,
    );
}
