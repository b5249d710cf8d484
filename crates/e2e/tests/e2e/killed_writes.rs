//! Bootstraps killed while the dispatcher writes the runtime SO: each
//! leaves at most one temp file in the device's preinstall directory (the
//! one of its own write, never a torn installed file), and the next
//! bootstrap once the age bound has passed leaves none.
//!
//! The runtime SO is the real one with a 32 MiB blob appended after its
//! last byte (still a valid ELF the preflight accepts), different in each
//! run so that every run writes a new file. Twenty runs, one host process
//! (a child of the test) each, on one simulator root, killed two ways:
//!
//! - [`host_killed_mid_write`]: the test `SIGKILL`s the host process as soon
//!   as its device's temp file has reached 1 MiB; the device process dies
//!   with its host (`PR_SET_PDEATHSIG`), part-way through the write;
//! - [`device_killed_mid_write`]: the simulator kills the device process
//!   itself at 1 MiB (`SIMPLER_SIM_KILL_DURING_WRITE`), and the host sees
//!   the bootstrap fail with 507018.
//!
//! The kills run with the dispatcher's default age bound (600 s), so each
//! run's leftovers stay and are counted; the last bootstrap runs with the
//! bound shortened to 1 s (`SIMPLER_AICPU_TEMP_STALE_SECS`, read in the
//! device process, which inherits the host's environment) after every
//! leftover is older than that, and must remove them all.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use simpler_abi::cann::error::ACL_ERROR_RT_AICPU_EXCEPTION;
use simpler_abi::names::TEMP_STALE_SECS_ENV;
use simpler_abi::sim::env;
use simpler_testkit::host::{builder, cann};
use simpler_testkit::{child_command, child_env, is_child, run_child, SimRoot};

use crate::support::{device_processes, scan_preinstall, FileHashes, PreinstallScan};

const HOST_KILLED: &str = "killed_writes::host_killed_mid_write";
const DEVICE_KILLED: &str = "killed_writes::device_killed_mid_write";
/// Set in a child: which padded runtime SO to bootstrap.
const RUN_ENV: &str = simpler_abi::test_env::KILLED_WRITE_RUN;
/// Set in a child: it is the last, clean bootstrap.
const CLEAN_ENV: &str = simpler_abi::test_env::KILLED_WRITE_CLEAN;
const RUNS: usize = 20;
/// Bytes appended to the runtime SO.
const PAD: usize = 32 << 20;
/// The temp file's length at which a run is killed.
const KILL_AT: u64 = 1 << 20;
/// The age bound of the last bootstrap, in seconds.
const STALE_SECS: u64 = 1;
/// Far beyond what one run takes; a run past it has hung.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The device's runtime SO with a blob appended that is different for each
/// `run`, so that every run has its own fingerprint and writes a new file.
fn padded_runtime(run: usize) -> Vec<u8> {
    let mut bytes =
        fs::read(simpler_testkit::device_artifacts().runtime()).expect("read the runtime SO");
    let mark = format!("\0simpler e2e killed write, run {run}\0");
    bytes.extend_from_slice(mark.as_bytes());
    bytes.resize(bytes.len() + PAD, (run % 251) as u8);
    bytes
}

/// A child's body: bootstrap the padded runtime of its run on device 0.
fn bootstrap_in_child() {
    let run: usize = std::env::var(RUN_ENV)
        .expect("the run")
        .parse()
        .expect("a number");
    let cann = cann();
    let built = builder(&cann)
        .device(0)
        .threads(2)
        .runtime_bytes(padded_runtime(run))
        .build();
    if std::env::var_os(CLEAN_ENV).is_some() {
        built.expect("the last bootstrap installs");
        return;
    }
    match built {
        Err(err) if std::env::var_os(env::KILL_DURING_WRITE).is_some() => {
            println!("bootstrap failed: {err}");
            assert_eq!(
                err.cann().map(|c| c.code),
                Some(ACL_ERROR_RT_AICPU_EXCEPTION),
                "{err}"
            );
            assert!(err.to_string().contains("killed by signal 9"), "{err}");
        }
        Err(err) => panic!("the bootstrap failed: {err}"),
        // The write finished before the kill (the simulator's watcher or
        // the test looked too late); the test counts that.
        Ok(_) => println!("the bootstrap finished before the kill"),
    }
}

/// Temp files' names and lengths.
fn temp_lengths(dir: &Path, scan: &PreinstallScan) -> Vec<(String, u64)> {
    scan.temp
        .iter()
        .filter_map(|n| Some((n.clone(), fs::metadata(dir.join(n)).ok()?.len())))
        .collect()
}

/// What the runs left, checked run by run.
#[derive(Default)]
struct Tally {
    /// Runs whose write was cut part-way (they left their temp file).
    left_one: usize,
    /// Runs whose write finished before the kill (nothing left).
    left_none: usize,
    /// Bytes in the temp files left.
    bytes: u64,
}

/// Checks one run: at most one new temp file, no torn file.
fn check_run(run: usize, dir: &Path, before: &PreinstallScan, tally: &mut Tally) {
    let after = scan_preinstall(dir, &mut FileHashes::default());
    assert!(after.torn.is_empty(), "run {run}: torn files {after:?}");
    let old: BTreeSet<&String> = before.temp.iter().collect();
    let new: Vec<(String, u64)> = temp_lengths(dir, &after)
        .into_iter()
        .filter(|(n, _)| !old.contains(n))
        .collect();
    assert!(
        new.len() <= 1,
        "run {run}: one write in flight left {} temp files: {new:?}",
        new.len()
    );
    match new.first() {
        Some((_, len)) => {
            tally.left_one += 1;
            tally.bytes += len;
        }
        None => tally.left_none += 1,
    }
    println!("run {run}: left {new:?}");
}

/// Waits until no device process of `root` is left (one whose host was
/// killed dies with it).
fn device_processes_gone(root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !device_processes(root).is_empty() {
        assert!(
            Instant::now() < deadline,
            "device processes outlived their host: {:?}",
            device_processes(root)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until every temp file in `dir` is older than the last
/// bootstrap's age bound as the dispatcher measures it (whole seconds of
/// its mtime against the clock).
fn leftovers_stale(dir: &Path) {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs()
    };
    let scan = scan_preinstall(dir, &mut FileHashes::default());
    for name in &scan.temp {
        let mtime = fs::metadata(dir.join(name))
            .and_then(|m| m.modified())
            .expect("a temp file's mtime")
            .duration_since(UNIX_EPOCH)
            .expect("an mtime after 1970")
            .as_secs();
        while mtime + STALE_SECS >= now() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The last, clean bootstrap with the age bound shortened, and what it must
/// leave: no temp file, nothing torn, its runtime installed.
fn last_bootstrap(root: &SimRoot, tally: &Tally) {
    let dir = root.preinstall(0);
    leftovers_stale(&dir);
    let mut envs = child_env(root.path());
    envs.push((RUN_ENV.into(), RUNS.to_string()));
    envs.push((CLEAN_ENV.into(), "1".into()));
    envs.push((TEMP_STALE_SECS_ENV.into(), STALE_SECS.to_string()));
    run_child(HOST_KILLED, envs);
    let scan = scan_preinstall(&dir, &mut FileHashes::default());
    println!(
        "{RUNS} kills: {} left a temp file ({} bytes in all), {} none; after the last \
         bootstrap: {scan:?}",
        tally.left_one, tally.bytes, tally.left_none
    );
    assert!(scan.temp.is_empty(), "temp files left: {:?}", scan.temp);
    assert!(scan.torn.is_empty(), "torn files: {:?}", scan.torn);
    // The last runtime, and those whose write finished before its kill.
    assert_eq!(
        scan.sound.len(),
        1 + tally.left_none,
        "installed runtimes: {scan:?}"
    );
    assert!(device_processes(root.path()).is_empty());
}

#[test]
fn host_killed_mid_write() {
    if is_child() {
        bootstrap_in_child();
        return;
    }
    let root = SimRoot::new();
    let dir = root.preinstall(0);
    let mut tally = Tally::default();
    for run in 0..RUNS {
        let before = scan_preinstall(&dir, &mut FileHashes::default());
        let mut envs = child_env(root.path());
        envs.push((RUN_ENV.into(), run.to_string()));
        let mut host = child_command(HOST_KILLED, envs)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn a host");
        let started = Instant::now();
        loop {
            if host.try_wait().expect("wait for the host").is_some() {
                break;
            }
            let now = scan_preinstall(&dir, &mut FileHashes::default());
            let growing = temp_lengths(&dir, &now)
                .into_iter()
                .any(|(n, len)| !before.temp.contains(&n) && len >= KILL_AT);
            if growing {
                // SIGKILL: the host gets no chance to clean up.
                host.kill().expect("kill the host");
                host.wait().expect("reap the host");
                break;
            }
            assert!(started.elapsed() < RUN_LIMIT, "run {run} hung");
            std::thread::sleep(Duration::from_micros(200));
        }
        device_processes_gone(root.path());
        check_run(run, &dir, &before, &mut tally);
    }
    assert!(
        tally.left_one > 0,
        "no kill landed during a write: the test proved nothing"
    );
    last_bootstrap(&root, &tally);
}

#[test]
fn device_killed_mid_write() {
    if is_child() {
        bootstrap_in_child();
        return;
    }
    let root = SimRoot::new();
    let dir = root.preinstall(0);
    let mut tally = Tally::default();
    for run in 0..RUNS {
        let before = scan_preinstall(&dir, &mut FileHashes::default());
        let mut envs = child_env(root.path());
        envs.push((RUN_ENV.into(), run.to_string()));
        envs.push((env::KILL_DURING_WRITE.into(), KILL_AT.to_string()));
        run_child(DEVICE_KILLED, envs);
        device_processes_gone(root.path());
        check_run(run, &dir, &before, &mut tally);
    }
    assert!(
        tally.left_one > 0,
        "no kill landed during a write: the test proved nothing"
    );
    last_bootstrap(&root, &tally);
}
