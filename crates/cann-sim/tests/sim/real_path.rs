//! The real path through the C API: the real dispatcher bootstraps the real
//! runtime SO into the preinstall directory, which type-2 launches then run.

use std::path::Path;

use simpler_abi::bootstrap::REPORT_MAGIC;
use simpler_abi::work::WORK_MAGIC;
use simpler_abi::{
    fingerprint, OpCode, PreinstallName, ReportStage, ReportStatus, SimStats, Task, TaskStatus,
    WorkHeader, ABI_VERSION,
};
use simpler_testkit::{device_artifacts, host_artifacts};

use crate::common::*;

/// The device SOs: the host's, or the ones named by
/// `SIMPLER_DEVICE_ARTIFACTS_DIR` (aarch64 ones for a device process run
/// under qemu through `SIMPLER_SIM_AICPU_LAUNCHER`).
fn sos() -> (Vec<u8>, Vec<u8>) {
    let a = device_artifacts();
    (
        std::fs::read(a.dispatcher()).expect("read dispatcher"),
        std::fs::read(a.runtime()).expect("read runtime"),
    )
}

/// The environment that runs the device side from the device artifacts:
/// when `SIMPLER_DEVICE_ARTIFACTS_DIR` names another directory, its
/// `simpler-sim-aicpu` becomes the device process, and when that binary is
/// aarch64 on another host it runs under `qemu-aarch64 -L
/// /usr/aarch64-linux-gnu` (unless `SIMPLER_SIM_AICPU_BIN` /
/// `SIMPLER_SIM_AICPU_LAUNCHER` are set already).
fn device_env() -> Vec<(&'static str, String)> {
    let (host, device) = (host_artifacts(), device_artifacts());
    let mut vars = Vec::new();
    if host.dir() == device.dir() || std::env::var_os(env::AICPU_BIN).is_some() {
        return vars;
    }
    let bin = device.sim_device_bin();
    vars.push((env::AICPU_BIN, bin.display().to_string()));
    let machine = |path: &Path| {
        let bytes = std::fs::read(path).expect("read an ELF file");
        u16::from_le_bytes([bytes[18], bytes[19]])
    };
    const EM_AARCH64: u16 = 183;
    if machine(&bin) != machine(&host.sim_device_bin())
        && machine(&bin) == EM_AARCH64
        && std::env::var_os(env::AICPU_LAUNCHER).is_none()
    {
        vars.push((
            env::AICPU_LAUNCHER,
            "qemu-aarch64 -L /usr/aarch64-linux-gnu".into(),
        ));
    }
    vars
}

/// [`ran_in_child`] with [`device_env`] added.
fn ran_real_in_child(name: &str, envs: &[(&str, &str)]) -> bool {
    if child() {
        return false;
    }
    let device = device_env();
    let mut all: Vec<(&str, &str)> = device.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(envs);
    run_child(name, &all);
    true
}

/// `child_output` with [`device_env`] added.
fn real_output(
    name: &str,
    root: &simpler_testkit::SimRoot,
    envs: &[(&str, &str)],
) -> std::process::Output {
    let device = device_env();
    let mut all: Vec<(&str, &str)> = device.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(envs);
    child_output(name, root, &all)
}

fn device_log(root: &str) -> String {
    std::fs::read_to_string(layout::log_file(Path::new(root), 0)).unwrap_or_default()
}

fn root() -> String {
    std::env::var(env::ROOT).expect("child has a root")
}

/// Builds a batch using four ops, runs it on 4 threads and checks every
/// result against a host computation.
fn exec_batch(api: &Sim, stream: *mut std::ffi::c_void, so: &PreinstallName) {
    let n = 256usize;
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = (0..n).map(|i| 1000.0 - i as f32).collect();
    let src0 = api.alloc(n * 4);
    let src1 = api.alloc(n * 4);
    let add = api.alloc(n * 4);
    let copy = api.alloc(n * 4);
    let fill = api.alloc(1000);
    let hash = api.alloc(8);
    api.h2d(src0, bytemuck::cast_slice(&a));
    api.h2d(src1, bytemuck::cast_slice(&b));
    let task = |op: OpCode, dst, s0, s1, len, scalar| Task {
        op: op as u32,
        dst,
        src0: s0,
        src1: s1,
        len,
        scalar,
        ..Task::default()
    };
    let tasks = [
        task(OpCode::Fill, fill, 0, 0, 1000, 0x5a),
        task(OpCode::Copy, copy, src0, 0, (n * 4) as u64, 0),
        task(OpCode::AddF32, add, src0, src1, (n * 4) as u64, 0),
        task(OpCode::Fnv1a64, hash, src0, 0, (n * 4) as u64, 0),
    ];
    let header_len = std::mem::size_of::<WorkHeader>();
    let tasks_len = std::mem::size_of_val(&tasks);
    let work = api.alloc(header_len + tasks_len + 4 * tasks.len());
    let header = WorkHeader {
        magic: WORK_MAGIC,
        abi_version: ABI_VERSION,
        task_count: tasks.len() as u32,
        flags: 0,
        tasks: work + header_len as u64,
        statuses: work + (header_len + tasks_len) as u64,
        next_task: 0,
        done: 0,
        failed: 0,
    };
    api.h2d(work, bytemuck::bytes_of(&header));
    api.h2d(header.tasks, bytemuck::cast_slice(&tasks));
    api.h2d(header.statuses, &[0u8; 16]);

    api.ok("exec", runtime_exec(api, stream, so, work, 4));

    let back: WorkHeader = bytemuck::pod_read_unaligned(&api.d2h(work, header_len));
    assert_eq!((back.done, back.failed), (4, 0));
    let statuses: Vec<u32> = api
        .d2h(header.statuses, 16)
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(statuses, vec![TaskStatus::Ok as u32; 4]);
    assert_eq!(api.d2h(fill, 1000), vec![0x5a; 1000]);
    assert_eq!(api.d2h(copy, n * 4), bytemuck::cast_slice::<f32, u8>(&a));
    let sum: Vec<f32> = api
        .d2h(add, n * 4)
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(sum, want);
    let h = u64::from_le_bytes(api.d2h(hash, 8).try_into().unwrap());
    assert_eq!(h, fingerprint(bytemuck::cast_slice(&a)));
    for addr in [src0, src1, add, copy, fill, hash, work] {
        api.release(addr);
    }
}

#[test]
fn bootstrap_then_init_and_exec_with_the_real_sos() {
    if ran_real_in_child(
        "real_path::bootstrap_then_init_and_exec_with_the_real_sos",
        &[],
    ) {
        return;
    }
    let (dispatcher, runtime) = sos();
    let so = PreinstallName::of(&runtime);
    let (api, stream) = device0_stream();

    // Before the bootstrap the runtime is not on the device's filesystem.
    assert_eq!(
        runtime_init(&api, stream, &so, ABI_VERSION, 4),
        ACL_ERROR_RT_AICPU_EXCEPTION
    );
    let msg = api.last_error();
    assert!(msg.contains(so.as_str()), "{msg}");

    let b = bootstrap(&api, stream, &dispatcher, &runtime);
    assert_eq!(b.code, 0, "bootstrap: {}", b.message);
    assert_eq!(b.report.magic, REPORT_MAGIC);
    assert_eq!(
        ReportStatus::from_raw(b.report.status),
        Some(ReportStatus::Ok)
    );
    assert_eq!(b.report.fingerprint, fingerprint(&runtime));
    assert_eq!(b.report.bytes_written, runtime.len() as u64);
    let installed = layout::preinstall_dir(Path::new(&root()), 0).join(so.as_str());
    assert_eq!(b.report.path_str(), Some(installed.to_str().unwrap()));
    assert_eq!(
        std::fs::read(&installed).expect("installed runtime"),
        runtime
    );

    api.ok("init", runtime_init(&api, stream, &so, ABI_VERSION, 4));
    exec_batch(&api, stream, &so);
    // A host/runtime ABI skew fails loudly.
    assert_eq!(
        runtime_init(&api, stream, &so, ABI_VERSION + 1, 4),
        ACL_ERROR_RT_AICPU_EXCEPTION
    );

    let s = api.stats(0);
    assert_eq!(s.size as usize, std::mem::size_of::<SimStats>());
    assert_eq!((s.live_bytes, s.live_allocations), (0, 0));
    assert!(s.peak_bytes >= (dispatcher.len() + runtime.len()) as u64);
    assert_eq!(s.launches_kfc, 1);
    assert_eq!(s.launches_aicpu, 4, "failed init, init, exec, skewed init");
    assert_eq!(s.launches_other, 0);
    assert_eq!((s.kfc_calls, s.dispatcher_saves), (1, 1));
    // The dispatcher once; the runtime once (the failed first attempt found
    // no file and is not cached, so it counts too).
    assert_eq!(s.dlopens, 3);
    assert_eq!(s.device_restarts, 0);
    assert_eq!(Some(s.device_machine), api.sim_device_machine());
    // The device process runs the machine the device SOs are built for
    // (e_machine at byte 18 of an ELF header, little-endian here).
    assert_eq!(
        s.device_machine,
        u32::from(u16::from_le_bytes([runtime[18], runtime[19]]))
    );

    let log = device_log(&root());
    assert!(log.contains("KFC: dispatcher SO saved"), "{log}");
    // Nothing of the dispatcher stays in the device's tmp.
    let tmp: Vec<_> = std::fs::read_dir(layout::tmp_dir(Path::new(&root()), 0))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    api.reset(0);
}

#[test]
fn the_kfc_latch_reuses_the_first_dispatcher() {
    if ran_real_in_child("real_path::the_kfc_latch_reuses_the_first_dispatcher", &[]) {
        return;
    }
    let (dispatcher, runtime) = sos();
    let (api, stream) = device0_stream();
    let first = bootstrap(&api, stream, &dispatcher, &runtime);
    assert_eq!(first.code, 0, "{}", first.message);

    // Not an SO at all: hardware would still run the first dispatcher, and
    // so does the simulator; a second runtime gets its own file.
    let mut other_runtime = runtime.clone();
    other_runtime.extend_from_slice(b"trailing bytes change the fingerprint");
    let second = bootstrap(&api, stream, b"definitely not an ELF file", &other_runtime);
    assert_eq!(second.code, 0, "{}", second.message);
    assert_eq!(second.report.fingerprint, fingerprint(&other_runtime));
    let dir = layout::preinstall_dir(Path::new(&root()), 0);
    assert!(dir.join(PreinstallName::of(&runtime).as_str()).is_file());
    assert!(dir
        .join(PreinstallName::of(&other_runtime).as_str())
        .is_file());

    let s = api.stats(0);
    assert_eq!((s.launches_kfc, s.kfc_calls, s.dispatcher_saves), (2, 2, 1));
    let log = device_log(&root());
    assert!(log.contains("reusing the first one"), "{log}");
    api.reset(0);
}

#[test]
fn a_dispatcher_without_the_contract_symbols_is_an_aicpu_exception() {
    if ran_real_in_child(
        "real_path::a_dispatcher_without_the_contract_symbols_is_an_aicpu_exception",
        &[],
    ) {
        return;
    }
    let (_, runtime) = sos();
    let (api, stream) = device0_stream();
    // The runtime SO is a fine ELF SO but exports none of the three.
    let b = bootstrap(&api, stream, &runtime, &runtime);
    assert_eq!(b.code, ACL_ERROR_RT_AICPU_EXCEPTION);
    assert!(
        b.message.contains("DynTileFwkBackendKernelServerInit"),
        "{}",
        b.message
    );
    assert_eq!(b.report.magic, 0, "no dispatcher ran");
    let log = device_log(&root());
    assert!(log.contains("lacks the contract symbol(s) DynTileFwkBackendKernelServer, DynTileFwkBackendKernelServerInit, StaticTileFwkBackendKernelServer"), "{log}");
    let s = api.stats(0);
    assert_eq!((s.kfc_calls, s.dispatcher_saves, s.live_bytes), (0, 1, 0));
    api.reset(0);
}

#[test]
fn a_failing_dispatcher_write_surfaces_in_the_report() {
    if ran_real_in_child(
        "real_path::a_failing_dispatcher_write_surfaces_in_the_report",
        &[(env::FAIL_DISPATCHER_WRITE, "1")],
    ) {
        return;
    }
    let (dispatcher, runtime) = sos();
    let (api, stream) = device0_stream();
    let b = bootstrap(&api, stream, &dispatcher, &runtime);
    assert_eq!(b.code, ACL_ERROR_RT_AICPU_EXCEPTION, "{}", b.message);
    assert!(
        b.message
            .contains("DynTileFwkBackendKernelServerInit returned"),
        "{}",
        b.message
    );
    assert_eq!(b.report.magic, REPORT_MAGIC);
    assert_eq!(
        ReportStatus::from_raw(b.report.status),
        Some(ReportStatus::Failed)
    );
    assert_eq!(
        ReportStage::from_raw(b.report.stage),
        Some(ReportStage::Write)
    );
    assert_eq!(b.report.errno, libc::EFBIG);
    // The dispatcher removed its temp file; nothing is installed.
    let dir = layout::preinstall_dir(Path::new(&root()), 0);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != TEST_KERNELS)
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(api.stats(0).live_bytes, 0);
    // The device process itself can still write files (its log) afterwards.
    let log = device_log(&root());
    assert!(
        log.contains("DynTileFwkBackendKernelServerInit returned"),
        "{log}"
    );
    api.reset(0);
}

#[test]
fn two_host_processes_share_a_device_preinstall_directory() {
    if !child() {
        let name = "real_path::two_host_processes_share_a_device_preinstall_directory";
        let check = |phase: &str, out: std::process::Output| {
            assert!(
                out.status.success(),
                "phase {phase}:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // One host installs, a later one only uses what it finds.
        let sim_root = simpler_testkit::SimRoot::new();
        for phase in ["bootstrap", "use"] {
            check(
                phase,
                real_output(name, &sim_root, &[("SIM_TEST_PHASE", phase)]),
            );
        }
        // Two hosts bootstrapping the same runtime at the same time.
        let sim_root = simpler_testkit::SimRoot::new();
        std::thread::scope(|scope| {
            let hosts: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| real_output(name, &sim_root, &[("SIM_TEST_PHASE", "both")]))
                })
                .collect();
            for host in hosts {
                check("both", host.join().unwrap());
            }
        });
        return;
    }
    let (dispatcher, runtime) = sos();
    let so = PreinstallName::of(&runtime);
    let (api, stream) = device0_stream();
    let phase = std::env::var("SIM_TEST_PHASE").unwrap_or_default();
    if phase == "bootstrap" || phase == "both" {
        let b = bootstrap(&api, stream, &dispatcher, &runtime);
        assert_eq!(b.code, 0, "{}", b.message);
    }
    if phase == "both" {
        api.ok("init", runtime_init(&api, stream, &so, ABI_VERSION, 2));
        exec_batch(&api, stream, &so);
    } else if phase == "use" {
        // A second host process: no bootstrap, the file is already there.
        api.ok("init", runtime_init(&api, stream, &so, ABI_VERSION, 2));
        exec_batch(&api, stream, &so);
        assert_eq!(api.stats(0).launches_kfc, 0);
    }
    api.reset(0);
}

#[test]
fn a_c_program_bootstraps_and_runs_through_the_header() {
    let artifacts = host_artifacts();
    let lib_dir = artifacts.sim_lib().parent().unwrap().to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("c_api_test");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let include = format!("-I{}", manifest.join("include").display());
    let rpath = format!("-Wl,-rpath,{}", lib_dir.display());
    let libdir = format!("-L{}", lib_dir.display());
    cc(
        &["-std=c11", "-Wall", "-Wextra", "-Werror", &include, "-o"],
        &exe,
        &[&manifest.join("tests/c_api_test.c")],
        &[&libdir, &rpath, "-lsimpler_cann_sim"],
    );
    let root = simpler_testkit::SimRoot::new();
    let device = device_artifacts();
    let out = std::process::Command::new(&exe)
        .arg(device.dispatcher())
        .arg(device.runtime())
        // cargo's LD_LIBRARY_PATH (target/debug/deps) would win over the
        // rpath and load a debug build of the library instead.
        .env_remove("LD_LIBRARY_PATH")
        .env(env::ROOT, root.path())
        .envs(device_env())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("c_api_test: ok"), "{stdout}");
    let so = PreinstallName::of(&std::fs::read(device.runtime()).unwrap());
    assert!(layout::preinstall_dir(root.path(), 0)
        .join(so.as_str())
        .is_file());
}
