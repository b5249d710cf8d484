//! Fault injection and device-process lifetime: each injected fault gives
//! its documented code and leaves no device memory behind, a killed device
//! process poisons the device until reset, and no device process outlives
//! its host.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use simpler_abi::PreinstallName;
use simpler_testkit::{host_artifacts, SimRoot, ARTIFACTS_DIR_ENV, CHILD_ENV};

use crate::common::*;

/// A fixed sequence of calls; prints each call's code, cleans up whatever
/// succeeded and checks that no device memory is left.
fn fault_sequence() {
    let (api, stream) = device0_stream();
    let mut codes: Vec<(&str, i32)> = Vec::new();
    let mut live = Vec::new();
    for _ in 0..3 {
        let got = api.malloc(256);
        codes.push(("malloc", code(got)));
        if let Ok(addr) = got {
            live.push(addr);
        }
    }
    for &addr in &live {
        codes.push(("memcpy", api.try_h2d(addr, &[1u8; 256])));
    }
    for _ in 0..2 {
        let rc = api.launch_type2(TEST_KERNELS, "sim_ok", &payload(0, 0), 2, stream);
        codes.push(("launch", rc));
    }
    for _ in 0..2 {
        codes.push(("sync", api.sync_ms(stream, 10_000)));
    }
    for &addr in &live {
        api.release(addr);
    }
    let s = api.stats(0);
    assert_eq!((s.live_bytes, s.live_allocations), (0, 0));
    let text: Vec<String> = codes
        .iter()
        .map(|(call, rc)| format!("{call}={rc}"))
        .collect();
    println!("codes: {}", text.join(" "));
    api.reset(0);
}

fn codes_of(stdout: &str) -> String {
    stdout
        .lines()
        // libtest may print "test <name> ... " on the same line first.
        .find_map(|l| l.split_once("codes: ").map(|(_, codes)| codes))
        .expect("the child printed its codes")
        .to_owned()
}

#[test]
fn injected_faults_give_their_codes_and_leave_no_device_memory() {
    if child() {
        fault_sequence();
        return;
    }
    let name = "faults::injected_faults_give_their_codes_and_leave_no_device_memory";
    let clean =
        "malloc=0 malloc=0 malloc=0 memcpy=0 memcpy=0 memcpy=0 launch=0 launch=0 sync=0 sync=0";
    let (_root, out) = run_child(name, &[]);
    assert_eq!(codes_of(&String::from_utf8_lossy(&out.stdout)), clean);
    for (var, value, want) in [
        (
            env::FAIL_MALLOC,
            "2",
            "malloc=0 malloc=207001 malloc=0 memcpy=0 memcpy=0 launch=0 launch=0 sync=0 sync=0",
        ),
        (
            env::FAIL_MEMCPY,
            "2",
            "malloc=0 malloc=0 malloc=0 memcpy=0 memcpy=507000 memcpy=0 launch=0 launch=0 sync=0 sync=0",
        ),
        (
            env::FAIL_LAUNCH,
            "1",
            "malloc=0 malloc=0 malloc=0 memcpy=0 memcpy=0 memcpy=0 launch=507000 launch=0 sync=0 sync=0",
        ),
        (
            env::FAIL_SYNC,
            "2",
            "malloc=0 malloc=0 malloc=0 memcpy=0 memcpy=0 memcpy=0 launch=0 launch=0 sync=0 sync=507018",
        ),
    ] {
        let (_root, out) = run_child(name, &[(var, value)]);
        assert_eq!(codes_of(&String::from_utf8_lossy(&out.stdout)), want, "{var}={value}");
    }
}

#[test]
fn injected_fault_messages_name_the_variable() {
    if ran_in_child(
        "faults::injected_fault_messages_name_the_variable",
        &[(env::FAIL_MALLOC, "1"), (env::FAIL_LAUNCH, "1")],
    ) {
        return;
    }
    let api = Sim::load();
    api.set(0);
    let rc = code(api.malloc(8));
    api.expect(
        "malloc",
        rc,
        ACL_ERROR_RT_MEMORY_ALLOCATION,
        "call #1 (SIMPLER_SIM_FAIL_MALLOC)",
    );
    let rc = api.launch_type2(TEST_KERNELS, "sim_ok", &payload(0, 0), 1, null_mut());
    api.expect(
        "launch",
        rc,
        ACL_ERROR_RT_INTERNAL_ERROR,
        "launch #1 (SIMPLER_SIM_FAIL_LAUNCH)",
    );
    api.reset(0);
}

#[test]
fn a_bootstrap_under_faults_frees_every_buffer() {
    if !child() {
        for (var, value) in [(env::FAIL_LAUNCH, "1"), (env::FAIL_SYNC, "1")] {
            run_child(
                "faults::a_bootstrap_under_faults_frees_every_buffer",
                &[(var, value)],
            );
        }
        return;
    }
    let a = host_artifacts();
    let dispatcher = std::fs::read(a.dispatcher()).unwrap();
    let runtime = std::fs::read(a.runtime()).unwrap();
    let (api, stream) = device0_stream();
    let b = bootstrap(&api, stream, &dispatcher, &runtime);
    assert!(
        [ACL_ERROR_RT_INTERNAL_ERROR, ACL_ERROR_RT_AICPU_EXCEPTION].contains(&b.code),
        "{} {}",
        b.code,
        b.message
    );
    assert!(b.message.contains("SIMPLER_SIM_FAIL_"), "{}", b.message);
    let s = api.stats(0);
    assert_eq!((s.live_bytes, s.live_allocations), (0, 0));
    api.reset(0);
}

#[test]
fn kill_at_launch_fails_in_flight_work_then_poisons_until_reset() {
    if ran_in_child(
        "faults::kill_at_launch_fails_in_flight_work_then_poisons_until_reset",
        &[(env::KILL_AT_LAUNCH, "2")],
    ) {
        return;
    }
    let (api, stream) = device0_stream();
    api.launch_ok("launch 1", "sim_ok", &payload(0, 0), 1, stream);
    api.sync_ok("sync 1", stream);
    api.launch_ok("launch 2", "sim_ok", &payload(0, 0), 1, stream);
    api.sync_expect(
        "sync 2",
        stream,
        ACL_ERROR_RT_AICPU_EXCEPTION,
        "killed by signal 9",
    );
    api.expect(
        "launch 3",
        api.launch_type2(TEST_KERNELS, "sim_ok", &payload(0, 0), 1, stream),
        ACL_ERROR_RT_DRV_INTERNAL_ERROR,
        "until aclrtResetDevice",
    );
    api.sync_expect(
        "sync 3",
        stream,
        ACL_ERROR_RT_DRV_INTERNAL_ERROR,
        "until aclrtResetDevice",
    );
    api.reset(0);
    api.set(0);
    let stream = api.stream();
    api.launch_ok("launch 4", "sim_ok", &payload(0, 0), 1, stream);
    api.sync_ok("sync 4", stream);
    assert_eq!(api.stats(0).device_restarts, 1);
    api.reset(0);
}

/// Kills its child on drop, so a failing test leaves no host behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn alive(pid: u32) -> bool {
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

#[test]
fn no_device_process_outlives_its_host() {
    let name = "faults::no_device_process_outlives_its_host";
    if child() {
        // The host: start device 0 and 1, report their processes, wait.
        let api = Sim::load();
        for device in [0, 1] {
            api.set(device);
            let cell = api.alloc(8);
            api.launch_ok("getpid", "sim_getpid", &payload(cell, 0), 1, null_mut());
            api.sync_ok("sync", null_mut());
            let pid = api.read_u64(cell);
            println!("device pid {pid}");
        }
        println!("ready");
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let root = SimRoot::new();
    for device in [0, 1] {
        install_test_kernels(&layout::preinstall_dir(root.path(), device));
    }
    let exe = std::env::current_exe().unwrap();
    let mut host = KillOnDrop(
        Command::new(exe)
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env(env::ROOT, root.path())
            .env(ARTIFACTS_DIR_ENV, host_artifacts().dir())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut pids = Vec::new();
    for line in BufReader::new(host.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // libtest may print "test <name> ... " on the same line first.
        if let Some((_, pid)) = line.split_once("device pid ") {
            pids.push(pid.parse::<u32>().unwrap());
        }
        if line.ends_with("ready") {
            break;
        }
    }
    assert_eq!(pids.len(), 2, "the host reported its device processes");
    assert!(pids.iter().all(|&p| alive(p)));
    // kill -9: no chance for the host to clean up.
    // SAFETY: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(host.0.id() as i32, libc::SIGKILL) }, 0);
    let _ = host.0.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "device processes {pids:?} outlived their host"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The dispatcher's temp files in device 0's preinstall directory, with
/// their lengths.
fn temp_files() -> Vec<(String, u64)> {
    let dir = layout::preinstall_dir(&simpler_testkit::sim_root(), 0);
    let mut found: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let temp = name.starts_with(&format!(".{}", simpler_abi::names::PREINSTALL_PREFIX))
                && name.contains(simpler_abi::names::PREINSTALL_TEMP_INFIX);
            temp.then(|| (name, e.metadata().unwrap().len()))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn kill_during_write_kills_the_device_part_way_through_the_dispatchers_write() {
    const AT: u64 = 1 << 20;
    if ran_in_child(
        "faults::kill_during_write_kills_the_device_part_way_through_the_dispatchers_write",
        &[(env::KILL_DURING_WRITE, &AT.to_string())],
    ) {
        return;
    }
    let a = host_artifacts();
    let dispatcher = std::fs::read(a.dispatcher()).unwrap();
    let small = std::fs::read(a.runtime()).unwrap();
    assert!((small.len() as u64) < AT);
    // An SO smaller than the threshold installs as usual.
    let (api, stream) = device0_stream();
    let b = bootstrap(&api, stream, &dispatcher, &small);
    assert_eq!(b.code, 0, "{}", b.message);
    assert!(temp_files().is_empty());
    // A large one (the same ELF with a blob appended): the device process
    // dies while the dispatcher writes it.
    let mut large = small.clone();
    large.resize(small.len() + (32 << 20), 0x5a);
    let b = bootstrap(&api, stream, &dispatcher, &large);
    assert_eq!(b.code, ACL_ERROR_RT_AICPU_EXCEPTION, "{}", b.message);
    assert!(b.message.contains("killed by signal 9"), "{}", b.message);
    let temps = temp_files();
    println!("left behind: {temps:?}");
    assert_eq!(temps.len(), 1, "one temp file for the one write: {temps:?}");
    let len = temps[0].1;
    assert!(
        (AT..large.len() as u64).contains(&len),
        "the temp file has {len} bytes: at least {AT}, less than the {} of the SO",
        large.len()
    );
    let name = PreinstallName::of(&large);
    assert!(
        !layout::preinstall_dir(&simpler_testkit::sim_root(), 0)
            .join(name.as_str())
            .exists(),
        "nothing was installed"
    );
    let log = std::fs::read_to_string(layout::log_file(&simpler_testkit::sim_root(), 0)).unwrap();
    assert!(
        log.contains(&format!(
            "SIMPLER_SIM_KILL_DURING_WRITE={AT}: {}",
            temps[0].0
        )),
        "{log}"
    );
    api.expect(
        "launch after the kill",
        api.launch_type2(TEST_KERNELS, "sim_ok", &payload(0, 0), 1, stream),
        ACL_ERROR_RT_DRV_INTERNAL_ERROR,
        "until aclrtResetDevice",
    );
    api.reset(0);
    // On a fresh device process the leftover is not this write's: the
    // process dies at the new write's threshold, not at once.
    api.set(0);
    let stream = api.stream();
    large[small.len()] ^= 1;
    let b = bootstrap(&api, stream, &dispatcher, &large);
    assert_eq!(b.code, ACL_ERROR_RT_AICPU_EXCEPTION, "{}", b.message);
    let now = temp_files();
    println!("left behind then: {now:?}");
    assert_eq!(now.len(), 2, "{now:?}");
    let new: Vec<_> = now.iter().filter(|t| **t != temps[0]).collect();
    assert!(
        new.len() == 1 && new[0].1 >= AT,
        "the second write reached {AT} bytes: {now:?}"
    );
    api.reset(0);
}
