//! Every error path of the C API, with CANN's codes and a readable
//! `aclGetRecentErrMsg`, plus the asynchronous stream semantics they rest on.

use std::ffi::c_void;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use simpler_abi::launch::{LAUNCH_KERNEL_NAME_OFFSET, LAUNCH_SO_NAME_OFFSET};
use simpler_abi::names::KERNEL_TYPE_AICPU;
use simpler_abi::AicpuArgsEx;

use crate::common::*;

fn root() -> String {
    std::env::var(env::ROOT).expect("child has a root")
}

#[test]
fn bad_arguments_are_param_invalid_with_a_message() {
    if ran_in_child(
        "errors::bad_arguments_are_param_invalid_with_a_message",
        &[],
    ) {
        return;
    }
    let api = Sim::load();
    let p = ACL_ERROR_RT_PARAM_INVALID;
    assert_eq!(api.last_error(), "", "no failure yet on this thread");
    // SAFETY: every call passes values the C API must cope with: NULL,
    // stream handles, or live host buffers of the lengths given.

    unsafe {
        api.expect(
            "count",
            (api.get_device_count)(null_mut()),
            p,
            "count is NULL",
        );
        api.expect(
            "set",
            (api.set_device)(99),
            ACL_ERROR_RT_INVALID_DEVICEID,
            "out of range",
        );
        api.expect(
            "set",
            (api.set_device)(-1),
            ACL_ERROR_RT_INVALID_DEVICEID,
            "out of range",
        );
        api.expect("reset", (api.reset_device)(1), p, "not set");
        let mut ptr = null_mut();
        api.expect(
            "malloc",
            (api.malloc)(&mut ptr, 64, 0),
            ACL_ERROR_RT_CONTEXT_NULL,
            "aclrtSetDevice",
        );
        api.set(0);
        api.expect(
            "malloc",
            (api.malloc)(null_mut(), 64, 0),
            p,
            "devPtr is NULL",
        );
        api.expect("malloc", (api.malloc)(&mut ptr, 0, 0), p, "size is 0");
        api.expect(
            "stream",
            (api.create_stream)(null_mut()),
            p,
            "stream is NULL",
        );

        let buf = api.alloc(100);
        let mut host = [0u8; 256];
        let h = host.as_mut_ptr() as *mut c_void;
        let m = |dst: *mut c_void, max: usize, src: *const c_void, n: usize, kind: u32| {
            (api.memcpy)(dst, max, src, n, kind)
        };
        let d = buf as *mut c_void;
        api.expect("memcpy", m(null_mut(), 8, h, 8, 1), p, "dst is NULL");
        api.expect("memcpy", m(d, 8, std::ptr::null(), 8, 1), p, "src is NULL");
        api.expect("memcpy", m(d, 8, h, 8, 4), p, "unknown aclrtMemcpyKind 4");
        api.expect("memcpy", m(d, 8, h, 16, 1), p, "exceeds destMax");
        api.expect(
            "memcpy",
            m(d, 101, h, 101, 1),
            p,
            "runs past the allocation",
        );
        api.expect(
            "memcpy",
            m(h, 256, (buf + 50) as *const c_void, 51, 2),
            p,
            "by 1 bytes",
        );
        let beyond = (buf + (1 << 20)) as *mut c_void;
        api.expect(
            "memcpy",
            m(beyond, 8, h, 8, 1),
            p,
            "not inside a live allocation",
        );
        api.expect(
            "memcpy",
            m(d, 8, d, 8, 1),
            p,
            "is a device address but the copy kind",
        );
        api.expect("memcpy", m(h, 8, h, 8, 2), p, "is not a device address");
        api.expect(
            "memcpy",
            m(0x1000 as *mut c_void, 8, h, 8, 1),
            p,
            "not a device address",
        );
        // Device 1 is in the device range but not set.
        let dev1 = (0x2000_0000_0000u64 + (1u64 << 40)) as *mut c_void;
        api.expect("memcpy", m(dev1, 8, h, 8, 1), p, "not set");
        api.ok("memcpy in bounds", m(d, 100, h, 100, 1));
        api.ok("memcpy 0 bytes", m(d, 0, h, 0, 1));
        api.ok("memcpy host to host", m(h.add(8), 8, h, 8, 0));

        api.expect("free", (api.free)(null_mut()), p, "NULL");
        api.expect(
            "free",
            (api.free)((buf + 8) as *mut c_void),
            p,
            "inside the allocation",
        );
        api.release(buf);
        api.expect("free", (api.free)(d), p, "double free");
        api.expect(
            "memcpy",
            m(d, 8, h, 8, 1),
            p,
            "not inside a live allocation",
        );

        let stream = api.stream();
        api.expect("sync", api.sync_ms(stream, 0), p, "expected -1");
        api.expect(
            "sync",
            (api.sync)(0x1234 as *mut c_void),
            p,
            "not a live stream",
        );
        api.expect("destroy", (api.destroy_stream)(null_mut()), p, "NULL");

        let block = [0u8; 144];
        let good = args_ex(&block, LAUNCH_SO_NAME_OFFSET, LAUNCH_KERNEL_NAME_OFFSET);
        let l = |kt: u32, dim: u32, info: *const AicpuArgsEx, s: *mut c_void| {
            (api.launch)(kt, c"op".as_ptr(), dim, info, null_mut(), s, 0)
        };
        api.expect(
            "launch",
            l(2, 1, std::ptr::null(), stream),
            p,
            "argsInfo is NULL",
        );
        api.expect("launch", l(3, 1, &good, stream), p, "kernel type 3");
        api.expect("launch", l(2, 0, &good, stream), p, "blockDim is 0");
        let mut bad = good;
        bad.args = 0;
        api.expect("launch", l(2, 1, &bad, stream), p, "args is NULL");
        let mut bad = good;
        bad.args_size = 0;
        api.expect("launch", l(2, 1, &bad, stream), p, "argsSize 0");
        let mut bad = good;
        bad.so_name_addr_offset = 144;
        api.expect("launch", l(2, 1, &bad, stream), p, "soNameAddrOffset 144");
        let unterminated = [b'x'; 144];
        let bad = args_ex(
            &unterminated,
            LAUNCH_SO_NAME_OFFSET,
            LAUNCH_KERNEL_NAME_OFFSET,
        );
        api.expect("launch", l(2, 1, &bad, stream), p, "not NUL-terminated");
        let mut bad = good;
        bad.host_input_info_num = 1;
        api.expect("launch", l(2, 1, &bad, stream), p, "not supported");
        api.expect(
            "launch",
            l(2, 1, &good, 0x1234 as *mut c_void),
            p,
            "not a live stream",
        );
        let s = api.stats(0);
        assert_eq!((s.launches_aicpu, s.launches_other), (6, 1));

        // A stream dies with its device; a thread's device can be reset.
        api.reset(0);
        api.expect("launch", l(2, 1, &good, stream), p, "not a live stream");
        api.expect(
            "malloc",
            (api.malloc)(&mut ptr, 64, 0),
            ACL_ERROR_RT_CONTEXT_NULL,
            "was reset",
        );
        let mut stats = std::mem::zeroed();
        api.expect("stats", (api.get_stats)(0, null_mut()), p, "out is NULL");
        api.expect("stats", (api.get_stats)(42, &mut stats), p, "out of range");
    }
    // Messages not fetched accumulate, newest first; fetching clears them.
    // SAFETY: NULL out pointers, rejected before any write.
    unsafe {
        assert_ne!((api.malloc)(null_mut(), 8, 0), 0);
        assert_ne!((api.create_stream)(null_mut()), 0);
    }
    let both = api.last_error();
    let lines: Vec<&str> = both.lines().collect();
    assert_eq!(lines.len(), 2, "{both}");
    assert!(
        lines[0].starts_with("aclrtCreateStream:") && lines[1].starts_with("aclrtMalloc:"),
        "{both}"
    );
    assert_eq!(api.last_error(), "", "fetched messages are cleared");
    // The message is per thread.
    std::thread::spawn(|| {
        let api = Sim::load();
        assert_eq!(api.last_error(), "");
    })
    .join()
    .unwrap();
}

#[test]
fn init_twice_and_finalize() {
    if ran_in_child("errors::init_twice_and_finalize", &[]) {
        return;
    }
    let api = Sim::load();
    api.ok("init", code(api.init()));
    api.expect(
        "init",
        code(api.init()),
        ACL_ERROR_REPEAT_INITIALIZE,
        "already",
    );
    api.set(0);
    let pid = device_pid(&api);
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    api.ok("finalize", api.finalize());
    assert!(!alive(pid), "finalize reaps the device process");
    api.ok("init again", code(api.init()));
    api.ok("finalize", api.finalize());
    api.expect(
        "init",
        // SAFETY: a NUL-terminated path.
        unsafe { (api.acl_init)(c"/no/such/config.json".as_ptr()) },
        ACL_ERROR_RT_PARAM_INVALID,
        "does not exist",
    );
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// The pid of the current device's process, as a kernel sees it.
fn device_pid(api: &Sim) -> u64 {
    let cell = api.alloc(8);
    api.launch_ok("getpid", "sim_getpid", &payload(cell, 0), 1, null_mut());
    // NULL is the default stream.
    api.ok("sync", api.sync_forever(null_mut()));
    let pid = api.read_u64(cell);
    api.release(cell);
    pid
}

#[test]
fn out_of_device_memory_is_memory_allocation() {
    if ran_in_child(
        "errors::out_of_device_memory_is_memory_allocation",
        &[(env::DEVICE_MEM, "1048576")],
    ) {
        return;
    }
    let api = Sim::load();
    api.set(0);
    let a = api.alloc(512 * 1024);
    let rc = code(api.malloc(768 * 1024));
    api.expect(
        "malloc",
        rc,
        ACL_ERROR_RT_MEMORY_ALLOCATION,
        "no free block of 786432 bytes",
    );
    api.release(a);
    let b = api.alloc(768 * 1024);
    api.release(b);
    assert_eq!(api.stats(0).peak_bytes, 768 * 1024);
    api.reset(0);
}

#[test]
fn a_host_dereference_of_a_device_pointer_faults() {
    if !child() {
        let root = simpler_testkit::SimRoot::new();
        let out = child_output(
            "errors::a_host_dereference_of_a_device_pointer_faults",
            &root,
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGSEGV),
            "{}\n{stdout}",
            out.status
        );
        assert!(stdout.contains("about to dereference"), "{stdout}");
        assert!(!stdout.contains("survived"), "{stdout}");
        return;
    }
    let api = Sim::load();
    api.set(0);
    let buf = api.alloc(64);
    api.h2d(buf, &[7u8; 64]);
    println!("about to dereference {buf:#x}");
    // SAFETY: deliberately not: the point is that this faults.
    let value = unsafe { std::ptr::read_volatile(buf as *const u8) };
    println!("survived reading {value}");
}

#[test]
fn type2_runs_on_block_dim_threads_asynchronously() {
    if ran_in_child(
        "errors::type2_runs_on_block_dim_threads_asynchronously",
        &[(env::AICPU_THREADS, "3")],
    ) {
        return;
    }
    let (api, stream) = device0_stream();
    let counter = api.alloc(8);
    api.h2d(counter, &[0; 8]);
    // The argument block of `sim_count` on `counter`, built by hand with the
    // kernel and SO names at their per-task offsets.
    let count_block = || {
        let (k, s) = (
            LAUNCH_KERNEL_NAME_OFFSET as usize,
            LAUNCH_SO_NAME_OFFSET as usize,
        );
        let mut block = vec![0u8; 144];
        block[..16].copy_from_slice(&payload(counter, 0));
        block[k..k + 9].copy_from_slice(b"sim_count");
        block[s..s + TEST_KERNELS.len()].copy_from_slice(TEST_KERNELS.as_bytes());
        block
    };
    // More threads than AICPU workers: the rest queue.
    let mut block = count_block();
    let info = args_ex(&block, LAUNCH_SO_NAME_OFFSET, LAUNCH_KERNEL_NAME_OFFSET);
    api.ok(
        "launch",
        api.launch_raw(KERNEL_TYPE_AICPU, c"count", 8, &info, stream),
    );
    // The block was copied before the launch returned.
    block.fill(0xee);
    api.sync_ok("sync", stream);
    assert_eq!(api.read_u64(counter), 8);

    // isNoNeedH2DCopy: the block is already in device memory, used in place.
    let block = count_block();
    let on_device = api.alloc(block.len());
    api.h2d(on_device, &block);
    let mut info = args_ex(&block, LAUNCH_SO_NAME_OFFSET, LAUNCH_KERNEL_NAME_OFFSET);
    info.args = on_device;
    info.is_no_need_h2d_copy = 1;
    api.ok(
        "launch in place",
        api.launch_raw(KERNEL_TYPE_AICPU, c"count", 2, &info, stream),
    );
    api.sync_ok("sync", stream);
    assert_eq!(api.read_u64(counter), 10);
    info.args = on_device + 64;
    api.expect(
        "launch in place",
        api.launch_raw(KERNEL_TYPE_AICPU, c"count", 1, &info, stream),
        ACL_ERROR_RT_PARAM_INVALID,
        "runs past the allocation",
    );
    api.release(on_device);

    // Two streams are independent: a long kernel on one does not hold up
    // the other, and its sync times out with 507046 meanwhile.
    let slow = api.stream();
    api.launch_ok("slow", "sim_sleep_ms", &payload(1500, 0), 1, slow);
    let started = Instant::now();
    api.launch_ok("fast", "sim_count", &payload(counter, 0), 2, stream);
    api.sync_ok("sync fast", stream);
    assert_eq!(api.read_u64(counter), 12);
    api.expect(
        "sync slow",
        api.sync_ms(slow, 50),
        ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
        "still running after 50 ms",
    );
    api.ok("sync slow", api.sync_forever(slow));
    assert!(started.elapsed() >= Duration::from_millis(1400));
    api.ok("destroy", api.destroy(slow));
    api.expect(
        "destroy",
        api.destroy(slow),
        ACL_ERROR_RT_PARAM_INVALID,
        "not a live stream",
    );
    api.release(counter);
    api.reset(0);
}

#[test]
fn a_failing_kernel_is_an_aicpu_exception_at_sync() {
    if ran_in_child(
        "errors::a_failing_kernel_is_an_aicpu_exception_at_sync",
        &[],
    ) {
        return;
    }
    let (api, stream) = device0_stream();
    let counter = api.alloc(8);
    api.h2d(counter, &[0; 8]);
    api.launch_ok("launch", "sim_return", &payload(0, 7), 4, stream);
    // Queued behind the failure: aborted, never run.
    api.launch_ok("launch", "sim_count", &payload(counter, 0), 1, stream);
    api.sync_expect(
        "sync",
        stream,
        ACL_ERROR_RT_AICPU_EXCEPTION,
        "sim_return failed on 4 of 4 AICPU thread(s): block",
    );
    assert_eq!(
        api.read_u64(counter),
        0,
        "the launch behind the failure was aborted"
    );
    // The error was reported once; the stream runs again.
    api.launch_ok("launch", "sim_count", &payload(counter, 0), 1, stream);
    api.sync_ok("sync", stream);
    assert_eq!(api.read_u64(counter), 1);

    for (so, kernel, needle) in [
        ("libnot_there.so", "k", "cannot load"),
        (
            TEST_KERNELS,
            "no_such_kernel",
            "has no kernel \"no_such_kernel\"",
        ),
        ("../escape.so", "k", "so name \"../escape.so\" is invalid"),
    ] {
        api.ok(
            "launch",
            api.launch_type2(so, kernel, &payload(0, 0), 1, stream),
        );
        api.sync_expect("sync", stream, ACL_ERROR_RT_AICPU_EXCEPTION, needle);
    }
    let log = std::fs::read_to_string(layout::log_file(Path::new(&root()), 0)).unwrap();
    assert!(log.contains("has no kernel \"no_such_kernel\""), "{log}");
    api.release(counter);
    api.reset(0);
}

#[test]
fn a_kernel_past_the_op_timeout_is_an_aicpu_timeout() {
    if ran_in_child(
        "errors::a_kernel_past_the_op_timeout_is_an_aicpu_timeout",
        &[(env::OP_TIMEOUT_MS, "200")],
    ) {
        return;
    }
    let (api, stream) = device0_stream();
    api.launch_ok("launch", "sim_sleep_ms", &payload(1500, 0), 2, stream);
    api.sync_expect(
        "sync",
        stream,
        ACL_ERROR_RT_AICPU_TIMEOUT,
        "exceeded the op timeout of 200 ms with 2 of 2 thread(s) unfinished",
    );
    api.reset(0);
}

#[test]
fn a_device_crash_poisons_the_device_until_reset() {
    if ran_in_child("errors::a_device_crash_poisons_the_device_until_reset", &[]) {
        return;
    }
    let (api, stream) = device0_stream();
    let buf = api.alloc(64);
    let old_pid = device_pid(&api);
    // A store to an unmapped address kills the emulated AICPU OS process.
    api.launch_ok("launch", "sim_store", &payload(8, 0), 1, stream);
    api.sync_expect(
        "sync",
        stream,
        ACL_ERROR_RT_AICPU_EXCEPTION,
        "killed by signal 11",
    );
    let poisoned = ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    api.sync_expect("sync", stream, poisoned, "until aclrtResetDevice");
    api.expect(
        "malloc",
        code(api.malloc(8)),
        poisoned,
        "until aclrtResetDevice",
    );
    let (rc, _) = api.try_d2h(buf, 8);
    api.expect("memcpy", rc, poisoned, "killed by signal 11");
    api.expect(
        "launch",
        api.launch_type2(TEST_KERNELS, "sim_ok", &payload(0, 0), 1, stream),
        poisoned,
        "until aclrtResetDevice",
    );
    // Freeing still works, so a host can clean up before the reset.
    api.release(buf);
    api.reset(0);
    assert!(!alive(old_pid));
    api.set(0);
    let new_pid = device_pid(&api);
    assert_ne!(new_pid, old_pid);
    let s = api.stats(0);
    assert_eq!((s.device_restarts, s.live_bytes), (1, 0));
    api.reset(0);
}

#[test]
fn device_sos_see_dlog_record_and_their_preinstall_dir() {
    if ran_in_child(
        "errors::device_sos_see_dlog_record_and_their_preinstall_dir",
        &[],
    ) {
        return;
    }
    let api = Sim::load();
    api.set(0);
    api.launch_ok("log", "sim_log", &payload(0, 0), 1, null_mut());
    let text = api.alloc(4096);
    api.launch_ok(
        "env",
        "sim_preinstall_env",
        &payload(text, 4096),
        1,
        null_mut(),
    );
    // NULL is the default stream.
    api.ok("sync", api.sync_forever(null_mut()));
    let bytes = api.d2h(text, 4096);
    let dir =
        String::from_utf8_lossy(&bytes[..bytes.iter().position(|&b| b == 0).unwrap()]).into_owned();
    assert_eq!(
        Path::new(&dir),
        layout::preinstall_dir(Path::new(&root()), 0)
    );
    let log = std::fs::read_to_string(layout::log_file(Path::new(&root()), 0)).unwrap();
    assert!(
        log.contains("INFO module 7: hello from sim_log: 42"),
        "{log}"
    );
    api.release(text);
    api.reset(0);
}

#[test]
fn a_reset_wakes_a_sync_waiting_on_the_device() {
    if ran_in_child("errors::a_reset_wakes_a_sync_waiting_on_the_device", &[]) {
        return;
    }
    let api = std::sync::Arc::new(Sim::load());
    api.set(0);
    let stream = api.stream() as usize;
    api.launch_ok(
        "launch",
        "sim_sleep_ms",
        &payload(5000, 0),
        1,
        stream as *mut c_void,
    );
    let waiter = {
        let api = std::sync::Arc::clone(&api);
        std::thread::spawn(move || {
            let rc = api.sync_forever(stream as *mut c_void);
            (rc, api.last_error())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    api.reset(0);
    let (rc, msg) = waiter.join().unwrap();
    assert_eq!(rc, ACL_ERROR_RT_DEVICE_TASK_ABORT, "{msg}");
    assert!(
        msg.contains("device 0 was reset while this launch was in flight"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the sync was not held up by the kernel"
    );
}

#[test]
fn configuration_and_start_failures_are_clear() {
    let name = "errors::configuration_and_start_failures_are_clear";
    if child() {
        let api = Sim::load();
        let expect = std::env::var("SIM_EXPECT").unwrap();
        let (code, needle) = expect.split_once(':').unwrap();
        let rc = crate::common::code(api.set_device(0));
        api.expect("aclrtSetDevice", rc, code.parse().unwrap(), needle);
        let rc = crate::common::code(api.device_count());
        if code == ACL_ERROR_RT_PARAM_INVALID.to_string() {
            api.expect("count", rc, ACL_ERROR_RT_PARAM_INVALID, needle);
        } else {
            api.ok("count", rc);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let not_a_program = dir.path().join("not-a-program");
    std::fs::write(&not_a_program, "just text\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&not_a_program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let poisoned = ACL_ERROR_RT_DRV_INTERNAL_ERROR.to_string();
    let param = ACL_ERROR_RT_PARAM_INVALID.to_string();
    let cases: Vec<(&str, String, String)> = vec![
        (
            env::AICPU_BIN,
            "/no/such/simpler-sim-aicpu".into(),
            format!("{poisoned}:does not exist"),
        ),
        (
            env::AICPU_BIN,
            not_a_program.display().to_string(),
            format!("{poisoned}:is not an ELF file"),
        ),
        (
            env::AICPU_LAUNCHER,
            "false".into(),
            format!("{poisoned}:failed to start"),
        ),
        (
            env::DEVICE_MEM,
            "lots".into(),
            format!("{param}:SIMPLER_SIM_DEVICE_MEM=\"lots\" is not a number"),
        ),
        (
            env::DEVICE_COUNT,
            "17".into(),
            format!("{param}:SIMPLER_SIM_DEVICE_COUNT=17 is out of range"),
        ),
        (
            env::SPIN_US,
            "2000000".into(),
            format!("{param}:SIMPLER_SIM_SPIN_US=2000000 is out of range"),
        ),
        (
            env::FAIL_BINARY_LOAD,
            "0".into(),
            format!("{param}:SIMPLER_SIM_FAIL_BINARY_LOAD=0 is out of range"),
        ),
    ];
    for (var, value, expect) in &cases {
        run_child(
            name,
            &[(var, value.as_str()), ("SIM_EXPECT", expect.as_str())],
        );
    }
    // A root under a regular file: the device cannot create its directories.
    let root = a_file.join("root");
    let out = in_child_with_root(name, &root, &format!("{poisoned}:cannot create"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn in_child_with_root(name: &str, root: &Path, expect: &str) -> std::process::Output {
    simpler_testkit::in_child(
        name,
        [
            (env::ROOT, root.display().to_string()),
            (
                simpler_testkit::ARTIFACTS_DIR_ENV,
                simpler_testkit::host_artifacts()
                    .dir()
                    .display()
                    .to_string(),
            ),
            ("SIM_EXPECT", expect.to_owned()),
        ],
    )
}

#[test]
fn many_threads_and_streams_launch_concurrently() {
    if ran_in_child(
        "errors::many_threads_and_streams_launch_concurrently",
        &[(env::AICPU_THREADS, "2")],
    ) {
        return;
    }
    let api = std::sync::Arc::new(Sim::load());
    api.set(0);
    let counter = api.alloc(8);
    api.h2d(counter, &[0; 8]);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let api = std::sync::Arc::clone(&api);
            std::thread::spawn(move || {
                // CANN binds devices per thread.
                api.set(0);
                let stream = api.stream();
                for i in 0..50 {
                    let rc = api.launch_type2(
                        TEST_KERNELS,
                        "sim_count",
                        &payload(counter, 0),
                        3,
                        stream,
                    );
                    api.ok("launch", rc);
                    if i % 10 == 9 {
                        api.ok("sync", api.sync_ms(stream, 30_000));
                    }
                }
                api.ok("destroy", api.destroy(stream));
                api.reset(0);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(api.read_u64(counter), 8 * 50 * 3);
    let s = api.stats(0);
    assert_eq!(s.launches_aicpu, 8 * 50);
    assert_eq!(s.live_allocations, 1);
    api.release(counter);
    // Every argument copy was freed: the whole device memory is free again.
    let all = api.alloc(1 << 20);
    api.release(all);
    api.reset(0);
}
