//! Every preflight failure: a bad SO is a specific error naming the file,
//! found before anything reaches the device.

use std::path::Path;

use simpler_host::abi::names::{DISPATCHER_SYMBOLS, MAX_DISPATCHER_SO_LEN, RUNTIME_SYMBOLS};
use simpler_host::{
    Cann, DeviceRunner, Error, Machine, PreflightProblem, Role, SoImage, SymbolKind,
};
use simpler_testkit::host::{builder, cann, stats};
use simpler_testkit::{
    child_env, compile_c, device_artifacts, files, host_artifacts, in_sim, is_child, preinstalled,
    run_child, sim_root, SimRoot, DEVICE_ARTIFACTS_DIR_ENV,
};

/// Builds with the given SO sources and returns the preflight error,
/// checking that the device saw nothing.
fn preflight_error(
    cann: &Cann,
    b: simpler_host::DeviceRunnerBuilder,
) -> (String, Role, PreflightProblem) {
    let err = b.build().unwrap_err();
    let st = stats(cann, 0);
    assert_eq!(
        (st.launches_kfc, st.launches_aicpu, st.peak_bytes),
        (0, 0, 0),
        "nothing may reach the device before preflight passes"
    );
    match err {
        Error::Preflight(p) => (p.file, p.role, p.problem),
        other => panic!("expected a preflight error, got {other}"),
    }
}

/// Whether a problem is the one a case expects.
type Expect = fn(&PreflightProblem) -> bool;

fn runtime_bytes() -> Vec<u8> {
    std::fs::read(device_artifacts().runtime()).unwrap()
}

fn other_machine(m: Machine) -> Machine {
    if m == Machine::AARCH64 {
        Machine::X86_64
    } else {
        Machine::AARCH64
    }
}

#[test]
fn every_preflight_failure_is_specific() {
    in_sim(
        "preflight::every_preflight_failure_is_specific",
        &[],
        || {
            let cann = cann();
            let dispatcher = device_artifacts().dispatcher();
            let runtime = device_artifacts().runtime();

            // The runtime given as dispatcher: the three contract symbols missing.
            let (file, role, problem) =
                preflight_error(&cann, builder(&cann).dispatcher_path(&runtime));
            assert_eq!(file, runtime.display().to_string());
            assert_eq!(role, Role::Dispatcher);
            assert_eq!(
                problem,
                PreflightProblem::MissingExports {
                    role: Role::Dispatcher,
                    missing: DISPATCHER_SYMBOLS.to_vec(),
                }
            );

            // The dispatcher given as runtime.
            let (file, role, problem) =
                preflight_error(&cann, builder(&cann).runtime_path(&dispatcher));
            assert_eq!(
                (file.as_str(), role),
                (dispatcher.to_str().unwrap(), Role::Runtime)
            );
            assert!(
                matches!(&problem, PreflightProblem::MissingExports { missing, .. }
                if missing == &RUNTIME_SYMBOLS),
                "{problem}"
            );

            // Another machine than the device's.
            let device = cann.device_machine();
            let (_, _, problem) =
                preflight_error(&cann, builder(&cann).device_machine(other_machine(device)));
            assert_eq!(
                problem,
                PreflightProblem::WrongMachine {
                    found: device,
                    expected: other_machine(device)
                }
            );

            // Not ELF, empty, 32-bit, big-endian, not a shared object, truncated.
            let mut cases: Vec<(Vec<u8>, Expect)> = vec![
                (b"#!/bin/sh\necho hi\n".to_vec(), |p| {
                    *p == PreflightProblem::NotElf
                }),
                (Vec::new(), |p| *p == PreflightProblem::Empty),
            ];
            let mut elf32 = runtime_bytes();
            elf32[4] = 1;
            cases.push((elf32, |p| *p == PreflightProblem::Not64Bit));
            let mut big = runtime_bytes();
            big[5] = 2;
            cases.push((big, |p| *p == PreflightProblem::BigEndian));
            let mut exec = runtime_bytes();
            exec[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
            cases.push((exec, |p| matches!(p, PreflightProblem::NotSharedObject(_))));
            cases.push((runtime_bytes()[..200].to_vec(), |p| {
                matches!(p, PreflightProblem::Malformed(_))
            }));
            for (bytes, expected) in cases {
                let (file, role, problem) =
                    preflight_error(&cann, builder(&cann).runtime_bytes(bytes));
                assert_eq!((file.as_str(), role), ("<runtime SO bytes>", Role::Runtime));
                assert!(expected(&problem), "unexpected {problem}");
            }

            // Larger than the dispatcher may be.
            let (_, _, problem) = preflight_error(
                &cann,
                builder(&cann).dispatcher_bytes(vec![0x7f; MAX_DISPATCHER_SO_LEN as usize + 1]),
            );
            assert!(
                matches!(problem, PreflightProblem::TooLarge { .. }),
                "{problem}"
            );

            // A file that is not there.
            let err = builder(&cann)
                .runtime_path("/nonexistent/libsimpler_aicpu.so")
                .build()
                .unwrap_err();
            assert!(
                matches!(&err, Error::Io { path, .. } if path.ends_with("libsimpler_aicpu.so")),
                "{err}"
            );
            assert!(err
                .to_string()
                .starts_with("cannot read /nonexistent/libsimpler_aicpu.so"));
        },
    );
}

#[test]
fn bad_builder_arguments_are_rejected() {
    in_sim("preflight::bad_builder_arguments_are_rejected", &[], || {
        let cann = cann();
        for b in [builder(&cann).threads(0), builder(&cann).device(-1)] {
            assert!(matches!(b.build(), Err(Error::InvalidArgument(_))));
        }
        // A device the simulator does not have: CANN's own error.
        let err = builder(&cann).device(1000).build().unwrap_err();
        let cann_err = err.cann().unwrap_or_else(|| panic!("{err}"));
        assert_eq!(cann_err.call, "aclrtSetDevice");
    });
}

#[test]
fn default_sos_come_from_the_artifacts_directory() {
    in_sim(
        "preflight::default_sos_come_from_the_artifacts_directory",
        &[],
        || {
            let cann = cann();
            let runner = DeviceRunner::builder(&cann).build().unwrap();
            assert_eq!(
                std::fs::canonicalize(&runner.info().runtime).unwrap(),
                std::fs::canonicalize(device_artifacts().runtime()).unwrap()
            );
            assert_eq!(runner.info().device_machine, cann.device_machine());
        },
    );
}

#[test]
fn images_are_checked_again_against_each_use() {
    in_sim(
        "preflight::images_are_checked_again_against_each_use",
        &[],
        || {
            let cann = cann();
            let machine = cann.device_machine();
            let runtime =
                SoImage::from_path(device_artifacts().runtime(), Role::Runtime, machine).unwrap();
            let dispatcher =
                SoImage::from_path(device_artifacts().dispatcher(), Role::Dispatcher, machine)
                    .unwrap();
            assert_eq!(runtime.bytes(), runtime_bytes());
            assert_eq!(
                runtime.preinstall_name(),
                simpler_host::abi::PreinstallName::of(&runtime_bytes())
            );
            assert_eq!(
                (runtime.role(), runtime.machine()),
                (Role::Runtime, machine)
            );

            // An image in the other role's place: its exports are checked again.
            let (file, role, problem) =
                preflight_error(&cann, builder(&cann).runtime_image(dispatcher.clone()));
            assert_eq!((file.as_str(), role), (dispatcher.label(), Role::Runtime));
            assert!(
                matches!(&problem, PreflightProblem::MissingExports { missing, .. }
                if missing == &RUNTIME_SYMBOLS),
                "{problem}"
            );
            // A device of another machine than the one the image was made for.
            let (file, _, problem) = preflight_error(
                &cann,
                builder(&cann)
                    .dispatcher_image(dispatcher.clone())
                    .runtime_image(runtime.clone())
                    .device_machine(other_machine(machine)),
            );
            assert_eq!(file, dispatcher.label());
            assert_eq!(
                problem,
                PreflightProblem::WrongMachine {
                    found: machine,
                    expected: other_machine(machine)
                }
            );
            // Making an image runs the whole preflight.
            let err =
                SoImage::from_bytes(b"#!/bin/sh\n".as_slice(), Role::Runtime, machine).unwrap_err();
            assert!(
                matches!(&err, Error::Preflight(p) if p.problem == PreflightProblem::NotElf
                && p.file == "<runtime SO bytes>"),
                "{err}"
            );
            // `prepare` fails as `build` would, before anything reaches the device.
            let err = builder(&cann)
                .runtime_path("/nonexistent/libsimpler_aicpu.so")
                .prepare()
                .unwrap_err();
            assert!(matches!(&err, Error::Io { .. }), "{err}");
            let (_, _, problem) = preflight_error(
                &cann,
                builder(&cann)
                    .prepare()
                    .unwrap()
                    .device_machine(other_machine(machine)),
            );
            assert!(matches!(problem, PreflightProblem::WrongMachine { .. }));
        },
    );
}

/// The process's peak resident set (`VmHWM` of `/proc/self/status`), in
/// bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kib * 1024
}

/// Whether `err` is the size error for `file`, `len` bytes long, as `role`.
fn is_too_large(err: &Error, file: &Path, len: u64, role: Role) -> bool {
    matches!(err, Error::Preflight(p)
        if p.file == file.display().to_string() && p.role == role
        && p.problem == PreflightProblem::TooLarge { len, max: role.max_len(), role })
}

#[test]
fn oversized_files_are_refused_by_their_size_before_any_read() {
    const NAME: &str = "preflight::oversized_files_are_refused_by_their_size_before_any_read";
    if !is_child() {
        // Sparse files one byte over each cap, named as the artifacts are:
        // reading one would fault in every page of it.
        let dir = tempfile::tempdir().unwrap();
        for (file, role) in [
            (files::RUNTIME, Role::Runtime),
            (files::DISPATCHER, Role::Dispatcher),
        ] {
            let f = std::fs::File::create(dir.path().join(file)).unwrap();
            f.set_len(role.max_len() + 1).unwrap();
        }
        // The real dispatcher where the child finds it, for the one build
        // that must reach the runtime SO.
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::copy(
            device_artifacts().dispatcher(),
            dir.path().join("real").join(files::DISPATCHER),
        )
        .unwrap();
        let root = SimRoot::new();
        let mut env = child_env(root.path());
        env.push((
            DEVICE_ARTIFACTS_DIR_ENV.into(),
            dir.path().display().to_string(),
        ));
        run_child(NAME, env);
        return;
    }
    let big = |role: Role| {
        let file = match role {
            Role::Runtime => files::RUNTIME,
            Role::Dispatcher => files::DISPATCHER,
            Role::Kernels => unreachable!("no kernel SO artifact"),
        };
        let dir = std::env::var_os(DEVICE_ARTIFACTS_DIR_ENV).unwrap();
        (Path::new(&dir).join(file), role.max_len() + 1)
    };
    let (runtime, runtime_len) = big(Role::Runtime);
    let (dispatcher, dispatcher_len) = big(Role::Dispatcher);
    let cann = cann();
    let machine = cann.device_machine();

    // An image from a path, and from the artifacts directories.
    let err = SoImage::from_path(&runtime, Role::Runtime, machine).unwrap_err();
    assert!(
        is_too_large(&err, &runtime, runtime_len, Role::Runtime),
        "{err}"
    );
    for role in [Role::Runtime, Role::Dispatcher] {
        let (file, len) = big(role);
        let err = SoImage::artifact(role, machine).unwrap_err();
        assert!(is_too_large(&err, &file, len, role), "{err}");
    }
    // A builder's path sources, and its default (the artifacts).
    let real_dispatcher = dispatcher
        .parent()
        .unwrap()
        .join("real")
        .join(files::DISPATCHER);
    let b = DeviceRunner::builder(&cann)
        .dispatcher_path(&real_dispatcher)
        .runtime_path(&runtime);
    let (file, role, problem) = preflight_error(&cann, b);
    assert_eq!((file, role), (runtime.display().to_string(), Role::Runtime));
    assert!(matches!(problem, PreflightProblem::TooLarge { len, .. } if len == runtime_len));
    let (file, _, problem) = preflight_error(&cann, DeviceRunner::builder(&cann));
    assert_eq!(file, dispatcher.display().to_string());
    assert!(matches!(problem, PreflightProblem::TooLarge { len, .. } if len == dispatcher_len));

    // Nothing of the 256 MiB was read: the peak stays far below it.
    let peak = peak_rss();
    assert!(
        peak < runtime_len / 4,
        "peak RSS {peak} bytes after refusing a {runtime_len}-byte file"
    );
    println!("peak RSS {} MiB", peak >> 20);
}

#[test]
fn contract_symbols_must_be_functions_and_executables_are_refused() {
    in_sim(
        "preflight::contract_symbols_must_be_functions_and_executables_are_refused",
        &[],
        || {
            let cann = cann();
            let dir = tempfile::tempdir().unwrap();
            let functions = "
                int simpler_aicpu_init(void *a) { return 0; }
                int simpler_aicpu_exec(void *a) { return 0; }
            ";
            let data = "
                int simpler_aicpu_init(void *a) { return 0; }
                int simpler_aicpu_exec[4] = {1, 2, 3, 4};
            ";
            let so = compile_c(dir.path(), "data.so", data, &["-shared", "-fPIC"]);
            let main = format!("{functions} int main(void) {{ return 0; }}");
            let pie = compile_c(dir.path(), "pie", &main, &["-fPIE", "-pie", "-rdynamic"]);
            // Built for this machine, so checked against a device running it,
            // with a dispatcher for it.
            let b = || {
                DeviceRunner::builder(&cann)
                    .device_machine(Machine::host())
                    .dispatcher_path(host_artifacts().dispatcher())
            };

            let (file, role, problem) = preflight_error(&cann, b().runtime_path(&so));
            assert_eq!((file, role), (so.display().to_string(), Role::Runtime));
            assert_eq!(
                problem,
                PreflightProblem::NotAFunction {
                    role: Role::Runtime,
                    symbol: "simpler_aicpu_exec",
                    kind: SymbolKind::Object
                }
            );
            let (file, _, problem) = preflight_error(&cann, b().runtime_path(&pie));
            assert_eq!(file, pie.display().to_string());
            assert!(
                matches!(&problem, PreflightProblem::Executable { interpreter }
                    if !interpreter.is_empty()),
                "{problem}"
            );
            // Nothing was installed.
            assert_eq!(preinstalled(&sim_root(), 0), Vec::<String>::new());
        },
    );
}
