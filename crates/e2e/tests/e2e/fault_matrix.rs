//! The fault matrix: every fault the simulator can inject (but the
//! kill-during-write, which [`crate::killed_writes`] covers), at every
//! phase of a runner's life — bootstrap, init, exec — on both launch paths
//! ([`LaunchPath::Type2`] and [`LaunchPath::Binary`]) must give the
//! documented typed error, leave no device memory, kernel registration,
//! temp file or process behind, and leave the device usable by a fresh
//! runner.
//!
//! **Cells.** A cell is a launch path, a fault and an N. Each child builds
//! its runners with the cell's launch path. The binary path's own faults
//! (`SIMPLER_SIM_FAIL_BINARY_LOAD`, `_FUNC_GET`) are swept on the type-2
//! path too: it makes no such call, so the sweep finds no N there and the
//! cells are n/a with 0 calls.
//!
//! **Choosing N.** The counted faults (`SIMPLER_SIM_FAIL_MALLOC`, `_MEMCPY`,
//! `_LAUNCH`, `_SYNC`, `_BINARY_LOAD`, `_FUNC_GET`,
//! `SIMPLER_SIM_KILL_AT_LAUNCH`) fail the Nth call of the process. Rather
//! than hard-coding how many calls each phase makes (which changes whenever
//! the host changes), the test sweeps N = 1, 2, … for each fault, one child
//! process per N, until two N in a row no longer fail the scenario: every
//! call the scenario makes is failed once, and the count of N landing in a
//! phase *is* that phase's number of such calls. A cell with no N is shown
//! as n/a with that count (0). Which phase an N landed in is read from how
//! far the device got — the simulator's KFC, AICPU and CPU-kernel launch
//! counters — not from the error, so the error is checked against the
//! phase independently. On the binary path the kernels are registered
//! after the install and before the init launch, so a registration fault
//! lands in `bootstrap` (first runner) or `init-cached` (second runner: the
//! first one's registration went with it). A "no failure" between two
//! failing N would be a fault the host swallowed, and fails the test.
//! `SIMPLER_SIM_FAIL_DISPATCHER_WRITE` is a switch, not a count: one cell.
//! The sweeps (one per path and fault) run on two threads.
//!
//! **The scenario** (child process, private `SIMPLER_SIM_ROOT` and
//! `TMPDIR`, one device): hold a lease on device 0 (so the device, and its
//! accounting, outlive the runners); build a runner (bootstrap, then init);
//! exec: upload bytes, allocate two buffers, run a batch (fill, FNV-1a) and
//! check the results; drop it and build a second runner, whose runtime is
//! cached, so its build is an init alone (phase `init-cached`: a failed
//! init there makes the builder reinstall once, so it ends differently).
//! After the failure: the typed error, whether the device is poisoned
//! (507899 on the next call), live device bytes, binary and function
//! handles once the runners are gone, files left in `TMPDIR` (the binary
//! path's op descriptor is a temp file there), the preinstall directory (no
//! temp file, no torn file); then reset the device if poisoned, build a
//! fresh runner on it, run the batch again and count handles again; then
//! release the device and count device processes left. The parent then
//! counts processes of that root left after the child exited, and runs a
//! second child, without faults, on the same root: a fresh host process
//! must find the device's filesystem usable too, with two runners at once.
//!
//! **Registrations.** The scenario's runners never overlap, so on the
//! binary path each runner's build registers its kernels itself (its
//! module's `registration` is a miss: no live module shares one) and the
//! registration is unloaded when it drops. A clean run therefore counts
//! exactly two `binary_loads` (one per runner built), and no launch of the
//! runtime goes through `rtAicpuKernelLaunchExWithArgs` (`launches_aicpu`
//! 0). The fresh process's two runners are alive together, so the second
//! shares the first's registration (a hit): one `binary_loads`, one binary
//! and its two functions live while both are, none after. On the type-2
//! path there is no `rts*` call at all (`binary_loads` and
//! `launches_cpu_kernel` 0), faults or not.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use simpler_abi::{sim, SimStats};
use simpler_host::abi::{fingerprint, ReportStage};
use simpler_host::{
    BootstrapFailure, CacheStatus, Cann, CannError, DeviceRunner, Error, LaunchPath,
};
use simpler_testkit::host::{cann, stats};
use simpler_testkit::{child_env, in_child, is_child, preinstall_dir, sim_root, SimRoot};

use crate::support::{
    children, columns, describe, device_processes, device_side, print_record, records,
    scan_preinstall, FileHashes,
};

const NAME: &str = "fault_matrix::every_fault_at_every_phase";
/// Set in a child: `<launch path>:<cell>`, the cell being the fault it runs
/// under (`Fault::key`) or `recover`.
const CELL_ENV: &str = simpler_abi::test_env::FAULT_CELL;
/// Set in a child: N for a counted fault.
const N_ENV: &str = simpler_abi::test_env::FAULT_N;
const RECOVER: &str = "recover";
const CELL_RECORD: &str = "fault-cell";
const RECOVER_RECORD: &str = "fault-recover";
/// Sweeping stops after this many N in a row that do not fail.
const TRAILING_CLEAN: usize = 2;
/// No phase makes anywhere near this many calls of one kind.
const MAX_N: u64 = 64;
/// Sweeps run at once (each child is a host and a device process).
const SWEEP_THREADS: usize = 2;

const ACL_ERROR_RT_INTERNAL_ERROR: i32 = 507000;
const ACL_ERROR_RT_MEMORY_ALLOCATION: i32 = 207001;
const ACL_ERROR_RT_AICPU_EXCEPTION: i32 = 507018;
const ACL_ERROR_RT_DRV_INTERNAL_ERROR: i32 = 507899;
const EFBIG: i32 = 27;

/// What the simulator can inject (`docs/simulator.md`, "Fault injection").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Malloc,
    Memcpy,
    Launch,
    Sync,
    DispatcherWrite,
    KillAtLaunch,
    BinaryLoad,
    FuncGet,
}

impl Fault {
    const ALL: [Fault; 8] = [
        Fault::Malloc,
        Fault::Memcpy,
        Fault::Launch,
        Fault::Sync,
        Fault::DispatcherWrite,
        Fault::KillAtLaunch,
        Fault::BinaryLoad,
        Fault::FuncGet,
    ];

    fn key(self) -> &'static str {
        match self {
            Fault::Malloc => "malloc",
            Fault::Memcpy => "memcpy",
            Fault::Launch => "launch",
            Fault::Sync => "sync",
            Fault::DispatcherWrite => "dispatcher-write",
            Fault::KillAtLaunch => "kill-at-launch",
            Fault::BinaryLoad => "binary-load",
            Fault::FuncGet => "func-get",
        }
    }

    fn from_key(key: &str) -> Fault {
        *Fault::ALL
            .iter()
            .find(|f| f.key() == key)
            .unwrap_or_else(|| panic!("unknown fault {key:?}"))
    }

    fn env(self) -> &'static str {
        match self {
            Fault::Malloc => sim::env::FAIL_MALLOC,
            Fault::Memcpy => sim::env::FAIL_MEMCPY,
            Fault::Launch => sim::env::FAIL_LAUNCH,
            Fault::Sync => sim::env::FAIL_SYNC,
            Fault::DispatcherWrite => sim::env::FAIL_DISPATCHER_WRITE,
            Fault::KillAtLaunch => sim::env::KILL_AT_LAUNCH,
            Fault::BinaryLoad => sim::env::FAIL_BINARY_LOAD,
            Fault::FuncGet => sim::env::FAIL_FUNC_GET,
        }
    }

    /// Whether the fault fails the Nth call (else it is a switch).
    fn counted(self) -> bool {
        self != Fault::DispatcherWrite
    }

    /// Whether only the binary launch path makes the calls it fails.
    fn binary_only(self) -> bool {
        matches!(self, Fault::BinaryLoad | Fault::FuncGet)
    }

    /// The calls it fails, for the n/a reason.
    fn calls(self) -> &'static str {
        match self {
            Fault::Malloc => "aclrtMalloc calls",
            Fault::Memcpy => "aclrtMemcpy calls",
            Fault::Launch | Fault::KillAtLaunch => "launches",
            Fault::Sync => "stream syncs",
            Fault::DispatcherWrite => "dispatcher writes",
            Fault::BinaryLoad => "rtsBinaryLoadFromFile calls",
            Fault::FuncGet => "rtsFuncGetByName calls",
        }
    }

    /// The CANN call that reports it and the code, per `docs/simulator.md`:
    /// the bootstrap's KFC launch is a type-2 launch on either path, the
    /// runtime's launches are `rtsLaunchCpuKernel` on the binary path.
    fn reported_as(self, path: LaunchPath, phase: Phase) -> Option<(&'static str, i32)> {
        Some(match self {
            Fault::Malloc => ("aclrtMalloc", ACL_ERROR_RT_MEMORY_ALLOCATION),
            Fault::Memcpy => ("aclrtMemcpy", ACL_ERROR_RT_INTERNAL_ERROR),
            Fault::Launch if path == LaunchPath::Binary && phase != Phase::Bootstrap => {
                ("rtsLaunchCpuKernel", ACL_ERROR_RT_INTERNAL_ERROR)
            }
            Fault::Launch => ("rtAicpuKernelLaunchExWithArgs", ACL_ERROR_RT_INTERNAL_ERROR),
            // A killed device process fails what was in flight with 507018
            // at the next sync.
            Fault::Sync | Fault::KillAtLaunch => (
                "aclrtSynchronizeStreamWithTimeout",
                ACL_ERROR_RT_AICPU_EXCEPTION,
            ),
            Fault::BinaryLoad => ("rtsBinaryLoadFromFile", ACL_ERROR_RT_INTERNAL_ERROR),
            Fault::FuncGet => ("rtsFuncGetByName", ACL_ERROR_RT_INTERNAL_ERROR),
            Fault::DispatcherWrite => return None,
        })
    }

    /// Whether the device must be poisoned (507899) afterwards.
    fn poisons(self) -> bool {
        self == Fault::KillAtLaunch
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// The first runner's bootstrap (uploads, KFC launch, report) and, on
    /// the binary path, its kernels' registration: all it does before the
    /// runtime's first launch.
    Bootstrap,
    /// The first runner's `simpler_aicpu_init`.
    Init,
    /// The first runner's batch: buffers, launch, read-back.
    Exec,
    /// A second runner's build on the install the first one cached: on the
    /// binary path its registration (the first runner's was unloaded with
    /// it), then its init. The builder retries a failed init with one
    /// reinstall (the file may be gone from the device), so this init
    /// fails differently.
    InitCached,
}

impl Phase {
    const ALL: [Phase; 4] = [
        Phase::Bootstrap,
        Phase::Init,
        Phase::Exec,
        Phase::InitCached,
    ];

    fn key(self) -> &'static str {
        match self {
            Phase::Bootstrap => "bootstrap",
            Phase::Init => "init",
            Phase::Exec => "exec",
            Phase::InitCached => "init-cached",
        }
    }

    fn from_key(key: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.key() == key)
    }
}

/// What the host must do for `fault` in `phase`, as text for the matrix.
fn expected(fault: Fault, phase: Phase) -> &'static str {
    match (fault, phase) {
        (Fault::DispatcherWrite, _) => {
            "Bootstrap(Dispatcher { stage: write, errno: EFBIG, cann: 507018 })"
        }
        (Fault::BinaryLoad | Fault::FuncGet, Phase::Bootstrap | Phase::InitCached) => {
            "Cann(<call>, 507000): the registration fails, before any launch of the runtime"
        }
        (Fault::BinaryLoad | Fault::FuncGet, _) => {
            "no failure: the kernels are registered before the runtime's first launch"
        }
        (_, Phase::Bootstrap) => "Bootstrap(Cann(<call>, <code>))",
        (Fault::Sync, Phase::InitCached) => {
            "a runner, reinstalled: a 507018 from init on a cached install is taken for a lost \
             file, and the builder installs once more (docs/architecture.md)"
        }
        (Fault::Sync | Fault::KillAtLaunch, Phase::Init | Phase::InitCached) => {
            "InitRejected { source: <call>, <code> }"
        }
        _ => "Cann(<call>, <code>)",
    }
}

/// How a scenario that hit its fault ended.
enum Outcome {
    /// An error, or a batch whose results were wrong.
    Failed(ExecFailure),
    /// The second runner was built, but by installing the runtime again
    /// instead of using the cached install.
    Reinstalled,
}

/// Whether `outcome` is what [`expected`] says; the mismatch if not.
fn check(path: LaunchPath, fault: Fault, phase: Phase, outcome: &Outcome) -> Result<(), String> {
    if path == LaunchPath::Type2 && fault.binary_only() {
        return Err(format!(
            "the type2 path made {}: it has no kernel registration",
            fault.calls()
        ));
    }
    let err = match outcome {
        Outcome::Failed(ExecFailure::Host(err)) => err,
        Outcome::Failed(ExecFailure::Wrong(what)) => {
            return Err(format!("the batch ran but {what}"))
        }
        Outcome::Reinstalled if (fault, phase) == (Fault::Sync, Phase::InitCached) => return Ok(()),
        Outcome::Reinstalled => {
            return Err(format!(
                "expected {}, got a runner built by reinstalling",
                expected(fault, phase)
            ))
        }
    };
    check_error(path, fault, phase, err)
}

/// Whether `err` is what [`expected`] says; the mismatch if not.
fn check_error(path: LaunchPath, fault: Fault, phase: Phase, err: &Error) -> Result<(), String> {
    let want = |c: &CannError| -> Result<(), String> {
        let (call, code) = fault.reported_as(path, phase).expect("a counted fault");
        if c.call == call && c.code == code {
            Ok(())
        } else {
            Err(format!(
                "expected {call} → {code}, got {} → {}",
                c.call, c.code
            ))
        }
    };
    let wrong = || {
        Err(format!(
            "expected {}, got {}",
            expected(fault, phase),
            short(err)
        ))
    };
    match (fault, phase, err) {
        (Fault::DispatcherWrite, Phase::Bootstrap, Error::Bootstrap(b)) => match &b.failure {
            BootstrapFailure::Dispatcher(step)
                if step.stage == ReportStage::Write
                    && step.errno == EFBIG
                    && step.cann.as_ref().map(|c| c.code) == Some(ACL_ERROR_RT_AICPU_EXCEPTION) =>
            {
                Ok(())
            }
            _ => wrong(),
        },
        (Fault::DispatcherWrite, ..) => wrong(),
        // The registration's own error, not a bootstrap's: the install
        // succeeded.
        (
            Fault::BinaryLoad | Fault::FuncGet,
            Phase::Bootstrap | Phase::InitCached,
            Error::Cann(_),
        ) => want(err.cann().expect("a CANN error")),
        (Fault::BinaryLoad | Fault::FuncGet, ..) => wrong(),
        (_, Phase::Bootstrap, Error::Bootstrap(b)) => match &b.failure {
            BootstrapFailure::Cann(c) => want(c),
            _ => wrong(),
        },
        (
            Fault::Sync | Fault::KillAtLaunch,
            Phase::Init | Phase::InitCached,
            Error::InitRejected { source, .. },
        ) => want(source),
        (Fault::Sync | Fault::KillAtLaunch, Phase::Init | Phase::InitCached, _) => wrong(),
        (_, Phase::Init | Phase::Exec | Phase::InitCached, Error::Cann(c)) => want(c),
        _ => wrong(),
    }
}

/// The error's variant, CANN call and code, in a few words.
fn short(err: &Error) -> String {
    let cann = |c: &CannError| format!("{} {} {}", c.call, c.code, c.name().unwrap_or("?"));
    match err {
        Error::Cann(c) => format!("Cann({})", cann(c)),
        Error::InitRejected { source, .. } => format!("InitRejected({})", cann(source)),
        Error::Bootstrap(b) => match &b.failure {
            BootstrapFailure::Cann(c) => format!("Bootstrap(Cann({}))", cann(c)),
            BootstrapFailure::Dispatcher(step) => format!(
                "Bootstrap(Dispatcher(stage {}, errno {}, {}))",
                step.stage.name(),
                step.errno,
                step.cann
                    .as_ref()
                    .map(|c| c.code.to_string())
                    .unwrap_or_else(|| "no CANN error".into())
            ),
            other => format!("Bootstrap({other:?})"),
        },
        other => format!("{other:?}"),
    }
}

#[test]
fn every_fault_at_every_phase() {
    if is_child() {
        let cell = std::env::var(CELL_ENV)
            .unwrap_or_else(|_| panic!("{CELL_ENV} is not set in a fault-matrix child"));
        let (path, what) = cell
            .split_once(':')
            .unwrap_or_else(|| panic!("{CELL_ENV}={cell:?} is not <launch path>:<cell>"));
        let path: LaunchPath = path.parse().expect("a launch path");
        return match what {
            RECOVER => recover_child(path),
            key => cell_child(path, Fault::from_key(key)),
        };
    }
    let started = Instant::now();
    let sweeps: Vec<(LaunchPath, Fault)> = LaunchPath::ALL
        .into_iter()
        .flat_map(|path| Fault::ALL.map(|fault| (path, fault)))
        .collect();
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..SWEEP_THREADS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(path, fault)) = sweeps.get(i) else {
                    break;
                };
                let rows = sweep(path, fault);
                done.lock().unwrap().push((i, rows));
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(i, _)| *i);
    let matrix = Matrix::new(done.into_iter().flat_map(|(_, rows)| rows).collect());
    print!("{matrix}");
    println!(
        "fault matrix: {} children in {:.1} s",
        matrix.children(),
        started.elapsed().as_secs_f64()
    );
    let failing: Vec<String> = matrix.failures();
    for line in &failing {
        println!("FAIL {line}");
    }
    assert!(failing.is_empty(), "failing cells:\n{}", failing.join("\n"));
}

/// Every N of `fault` on `path` (one cell for a switch).
fn sweep(path: LaunchPath, fault: Fault) -> Vec<Row> {
    if !fault.counted() {
        return vec![run_cell(path, fault, None)];
    }
    let mut rows = Vec::new();
    let mut clean_in_a_row = 0;
    for n in 1..=MAX_N {
        let row = run_cell(path, fault, Some(n));
        clean_in_a_row = if row.phase.is_none() {
            clean_in_a_row + 1
        } else {
            0
        };
        rows.push(row);
        if clean_in_a_row == TRAILING_CLEAN {
            return rows;
        }
    }
    panic!("{} still fails at N = {MAX_N} on {path}", fault.env());
}

/// One child run: a launch path, a fault (with N when counted) and what
/// came of it.
struct Row {
    path: LaunchPath,
    fault: Fault,
    n: Option<u64>,
    /// Where the fault hit; `None` when the scenario ran clean.
    phase: Option<Phase>,
    cell: BTreeMap<String, String>,
    recover: Option<BTreeMap<String, String>>,
    /// Device processes of the root after the children exited.
    orphans: usize,
    /// Why the row fails, if it does.
    problems: Vec<String>,
}

/// The fields of a record `rec` that differ from `must`, as problems.
fn mismatches(rec: &BTreeMap<String, String>, must: &[(&str, &str)], prefix: &str) -> Vec<String> {
    must.iter()
        .filter(|(key, want)| rec.get(*key).map(String::as_str) != Some(*want))
        .map(|(key, want)| format!("{prefix}{key} = {:?}, must be {want}", rec.get(*key)))
        .collect()
}

/// What a scenario's record must say about the binary path's calls and
/// handles (module doc, "Registrations"); `clean` for a scenario that ran
/// to its end.
fn registration_problems(
    path: LaunchPath,
    clean: bool,
    rec: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut must = vec![("binaries_live", "0"), ("functions_live", "0")];
    match path {
        LaunchPath::Type2 => must.extend([("binary_loads", "0"), ("launches_cpu_kernel", "0")]),
        LaunchPath::Binary if clean => must.extend([
            ("binary_loads", "2"),
            ("registrations", "miss,miss"),
            ("launches_aicpu", "0"),
        ]),
        LaunchPath::Binary => {}
    }
    let mut out = mismatches(rec, &must, "");
    // A runner of the scenario never shares a registration: none is alive
    // when the next one is built.
    let want = match path {
        LaunchPath::Type2 => "-",
        LaunchPath::Binary => "miss",
    };
    match rec.get("registrations") {
        Some(list) if list.is_empty() || list.split(',').all(|r| r == want) => {}
        other => out.push(format!(
            "registrations = {other:?}: each runner's must be {want}"
        )),
    }
    out
}

/// What the fresh process's record must say: two runners alive at once
/// share one registration on the binary path (the second's is a hit, one
/// binary and its two functions live), unloaded with the last of them.
fn recover_problems(path: LaunchPath, rec: &BTreeMap<String, String>) -> Vec<String> {
    let mut must = vec![
        ("ok", "yes"),
        ("live_bytes", "0"),
        ("children_left", "0"),
        ("binaries_live", "0"),
        ("functions_live", "0"),
    ];
    must.extend(match path {
        LaunchPath::Type2 => [
            ("registrations", "-,-"),
            ("binary_loads", "0"),
            ("launches_cpu_kernel", "0"),
            ("shared_binaries_live", "0"),
            ("shared_functions_live", "0"),
        ],
        LaunchPath::Binary => [
            ("registrations", "miss,hit"),
            ("binary_loads", "1"),
            ("launches_aicpu", "0"),
            ("shared_binaries_live", "1"),
            ("shared_functions_live", "2"),
        ],
    });
    mismatches(rec, &must, "fresh process: ")
}

fn run_cell(path: LaunchPath, fault: Fault, n: Option<u64>) -> Row {
    let root = SimRoot::new();
    let tmp = tempfile::tempdir().expect("create the children's TMPDIR");
    let mut env = child_env(root.path());
    env.push((sim::env::DEVICE_COUNT.into(), "1".into()));
    env.push(("TMPDIR".into(), tmp.path().display().to_string()));
    let mut faulty = env.clone();
    faulty.push((CELL_ENV.into(), format!("{path}:{}", fault.key())));
    faulty.push((
        fault.env().into(),
        n.map_or_else(|| "1".into(), |n| n.to_string()),
    ));
    if let Some(n) = n {
        faulty.push((N_ENV.into(), n.to_string()));
    }
    let out = in_child(NAME, faulty);
    let mut problems = Vec::new();
    let cell = match records(&out, CELL_RECORD).pop() {
        Some(cell) if out.status.success() => cell,
        _ => {
            problems.push(format!("the child failed: {}", describe(&out)));
            BTreeMap::new()
        }
    };
    let phase = cell.get("phase").and_then(|p| Phase::from_key(p));
    let mut orphans = device_processes(root.path()).len();
    let recover = if phase.is_some() {
        env.push((CELL_ENV.into(), format!("{path}:{RECOVER}")));
        let out = in_child(NAME, env);
        orphans += device_processes(root.path()).len();
        match records(&out, RECOVER_RECORD).pop() {
            Some(rec) if out.status.success() => Some(rec),
            _ => {
                problems.push(format!(
                    "a fresh process on the same device failed: {}",
                    describe(&out)
                ));
                None
            }
        }
    } else {
        None
    };
    let must_hold = [
        ("check", "ok"),
        ("live_bytes", "0"),
        ("temp", "0"),
        ("torn", "0"),
        ("host_temp", "0"),
        ("children_left", "0"),
        ("poisoned_as_expected", "yes"),
        ("recovery_ok", "yes"),
        ("recovery_live_bytes", "0"),
        ("recovery_binaries_live", "0"),
        ("recovery_functions_live", "0"),
    ];
    // A clean run reports only what it left behind.
    let clean_must_hold = [("live_bytes", "0"), ("host_temp", "0")];
    if !cell.is_empty() {
        let must: &[(&str, &str)] = if phase.is_some() {
            &must_hold
        } else {
            &clean_must_hold
        };
        for &(key, must) in must {
            match cell.get(key) {
                Some(v) if v == must => {}
                Some(v) if key == "check" => problems.push(v.clone()),
                Some(v) => problems.push(format!("{key} = {v}, must be {must}")),
                None => problems.push(format!("the child did not report {key}")),
            }
        }
    }
    if !cell.is_empty() {
        problems.extend(registration_problems(path, phase.is_none(), &cell));
    }
    if let Some(rec) = &recover {
        problems.extend(recover_problems(path, rec));
    }
    let scan = scan_preinstall(&preinstall_dir(root.path(), 0), &mut FileHashes::default());
    if !scan.temp.is_empty() || !scan.torn.is_empty() {
        problems.push(format!("preinstall directory after the children: {scan:?}"));
    }
    let left = dir_entries(tmp.path());
    if !left.is_empty() {
        problems.push(format!("the children left in their TMPDIR: {left:?}"));
    }
    if orphans > 0 {
        problems.push(format!("{orphans} device process(es) outlived their host"));
    }
    Row {
        path,
        fault,
        n,
        phase,
        cell,
        recover,
        orphans,
        problems,
    }
}

/// The names in `dir` (none if it cannot be read).
fn dir_entries(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every row, and the cells no N reached.
struct Matrix {
    rows: Vec<Row>,
}

impl Matrix {
    fn new(rows: Vec<Row>) -> Matrix {
        Matrix { rows }
    }

    /// Child processes started.
    fn children(&self) -> usize {
        self.rows
            .iter()
            .map(|r| 1 + usize::from(r.phase.is_some()))
            .sum()
    }

    /// Rows that failed, and clean runs followed by failing ones (a fault
    /// the host swallowed).
    fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            let label = format!("{} {} N={}", row.path, row.fault.key(), fmt_n(row.n));
            out.extend(row.problems.iter().map(|p| format!("{label}: {p}")));
            let later_fails = self.rows[i + 1..]
                .iter()
                .take_while(|r| (r.path, r.fault) == (row.path, row.fault))
                .any(|r| r.phase.is_some());
            if row.phase.is_none() && later_fails {
                out.push(format!(
                    "{label}: the scenario succeeded although the Nth call was failed (a later N \
                     fails): the host swallowed an error"
                ));
            }
            if row.phase.is_none() && !row.fault.counted() {
                out.push(format!("{label}: the fault did not make the scenario fail"));
            }
        }
        out
    }
}

fn fmt_n(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

impl fmt::Display for Matrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEADER: [&str; 12] = [
            "path",
            "fault",
            "phase",
            "N",
            "error (variant, CANN call, code)",
            "live B",
            "handles",
            "temp",
            "orphans",
            "poisoned",
            "recovery: same process; new process",
            "verdict",
        ];
        // A row is either the twelve columns or a note spanning from the
        // error column on (n/a cells, the clean end of a sweep).
        let mut table: Vec<Vec<String>> = Vec::new();
        for path in LaunchPath::ALL {
            for fault in Fault::ALL {
                let rows: Vec<&Row> = self
                    .rows
                    .iter()
                    .filter(|r| (r.path, r.fault) == (path, fault))
                    .collect();
                let note = |phase: &str, reason: String| {
                    vec![
                        path.to_string(),
                        fault.key().into(),
                        phase.into(),
                        "-".into(),
                        reason,
                    ]
                };
                for phase in Phase::ALL {
                    let hits: Vec<&Row> = rows
                        .iter()
                        .copied()
                        .filter(|r| r.phase == Some(phase))
                        .collect();
                    if hits.is_empty() {
                        let reason = if fault.counted() {
                            format!(
                                "n/a: the {} phase makes no {} on this path (0 counted by the \
                                 sweep)",
                                phase.key(),
                                fault.calls()
                            )
                        } else {
                            "n/a: the dispatcher runs only inside the bootstrap launch".into()
                        };
                        table.push(note(phase.key(), reason));
                    }
                    for row in hits {
                        table.push(row.columns());
                    }
                }
                if fault.counted() {
                    let clean: Vec<String> = rows
                        .iter()
                        .filter(|r| r.phase.is_none())
                        .map(|r| fmt_n(r.n))
                        .collect();
                    table.push(note(
                        "-",
                        format!(
                            "no failure for N = {}: past the scenario's last {}",
                            clean.join(", "),
                            fault.calls()
                        ),
                    ));
                }
            }
            // The clean runs of a path, which every sweep ends with, agree;
            // one stands for them.
            if let Some(clean) = self
                .rows
                .iter()
                .find(|r| r.path == path && r.phase.is_none() && r.fault.counted())
            {
                let get = |k: &str| clean.cell.get(k).cloned().unwrap_or_else(|| "?".into());
                table.push(vec![
                    path.to_string(),
                    "clean".into(),
                    "-".into(),
                    "-".into(),
                    format!(
                        "a clean run: registrations {}, binary_loads {}, launches: {} type-2 \
                         AICPU, {} rtsLaunchCpuKernel; handles left {}",
                        get("registrations"),
                        get("binary_loads"),
                        get("launches_aicpu"),
                        get("launches_cpu_kernel"),
                        handles(&clean.cell, "")
                    ),
                ]);
            }
        }
        let machine = self
            .rows
            .iter()
            .find_map(|r| r.cell.get("machine")?.parse().ok())
            .unwrap_or(0);
        writeln!(f, "\nfault matrix, device side: {}", device_side(machine))?;
        write!(f, "{}", columns(&HEADER, &table))
    }
}

/// `<binaries>/<functions>` live, from a record's fields under `prefix`.
fn handles(rec: &BTreeMap<String, String>, prefix: &str) -> String {
    let get = |k: &str| {
        rec.get(&format!("{prefix}{k}"))
            .cloned()
            .unwrap_or_else(|| "?".into())
    };
    format!("{}/{}", get("binaries_live"), get("functions_live"))
}

impl Row {
    /// The row's cells in the matrix.
    fn columns(&self) -> Vec<String> {
        let get = |k: &str| self.cell.get(k).cloned().unwrap_or_else(|| "?".into());
        let fresh = match &self.recover {
            Some(r) if r.get("ok").map(String::as_str) == Some("yes") => "ok".into(),
            Some(r) => r.get("ok").cloned().unwrap_or_else(|| "?".into()),
            None => "FAILED".into(),
        };
        let orphans = self.orphans + get("children_left").parse::<usize>().unwrap_or(0);
        let temp = get("temp").parse::<usize>().unwrap_or(0)
            + get("host_temp").parse::<usize>().unwrap_or(0);
        let verdict = if self.problems.is_empty() {
            "ok"
        } else {
            "FAIL (below)"
        };
        vec![
            self.path.to_string(),
            self.fault.key().into(),
            get("phase"),
            fmt_n(self.n),
            get("error"),
            get("live_bytes"),
            handles(&self.cell, ""),
            temp.to_string(),
            orphans.to_string(),
            get("poisoned"),
            format!("{}; {fresh}", get("recovery")),
            verdict.into(),
        ]
    }
}

/// The exec phase: buffers, one batch, results checked on the host. A wrong
/// result is reported apart from a host error.
enum ExecFailure {
    Host(Error),
    Wrong(String),
}

impl From<Error> for ExecFailure {
    fn from(e: Error) -> Self {
        ExecFailure::Host(e)
    }
}

fn exec(mut runner: DeviceRunner) -> Result<(), ExecFailure> {
    let input: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    let src = runner.upload(&input)?;
    let filled = runner.alloc(256)?;
    let hash = runner.alloc(8)?;
    let mut batch = runner.batch();
    batch.fill(&filled, 0x5a)?.fnv1a64(&hash, &src)?;
    batch.run()?;
    if filled.to_vec::<u8>()? != vec![0x5a; 256] {
        return Err(ExecFailure::Wrong("the fill came back wrong".into()));
    }
    let got = hash.to_vec::<u64>()?[0];
    if got != fingerprint(&input) {
        return Err(ExecFailure::Wrong(format!(
            "FNV-1a: device {got:016x}, host {:016x}",
            fingerprint(&input)
        )));
    }
    Ok(())
}

fn builder(cann: &Cann, path: LaunchPath) -> simpler_host::DeviceRunnerBuilder {
    DeviceRunner::builder(cann)
        .device(0)
        .threads(2)
        .launch_path(path)
}

/// Waits until the device processes this host started are gone (a reset
/// stops and reaps them; allow the simulator's 5 s grace), then counts
/// what is left.
fn children_left() -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    children().len()
}

/// A built runner's registration as a record shows it: `-` on the type-2
/// path, else how its module got one.
fn registration(runner: &DeviceRunner) -> &'static str {
    match runner.module().info().registration {
        None => "-",
        Some(CacheStatus::Miss) => "miss",
        Some(CacheStatus::Hit) => "hit",
        Some(CacheStatus::Joined) => "joined",
    }
}

/// The binary path's accounting, as record fields under `prefix`.
fn binary_fields(st: &SimStats, prefix: &str) -> Vec<(String, String)> {
    [
        ("binaries_live", st.binaries_live),
        ("functions_live", st.functions_live),
        ("binary_loads", st.binary_loads),
        ("launches_aicpu", st.launches_aicpu),
        ("launches_cpu_kernel", st.launches_cpu_kernel),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{prefix}{k}"), v.to_string()))
    .collect()
}

/// Runs the scenario until its first failure: the phase it happened in and
/// how it ended, or `None` if nothing failed. Each runner built pushes its
/// registration to `built`.
///
/// Bootstrap and init are told apart by the simulator's launch counters
/// (the init launch is the runtime's first launch: type-2 AICPU or
/// `rtsLaunchCpuKernel`), not by the error.
fn scenario(
    cann: &Cann,
    path: LaunchPath,
    built: &mut Vec<&'static str>,
) -> Option<(Phase, Outcome)> {
    let first = match builder(cann, path).build() {
        Ok(runner) => runner,
        Err(e) => {
            let st = stats(cann, 0);
            let phase = if st.launches_aicpu + st.launches_cpu_kernel == 0 {
                Phase::Bootstrap
            } else {
                Phase::Init
            };
            return Some((phase, Outcome::Failed(ExecFailure::Host(e))));
        }
    };
    built.push(registration(&first));
    if let Err(e) = exec(first) {
        return Some((Phase::Exec, Outcome::Failed(e)));
    }
    match builder(cann, path).build() {
        Err(e) => Some((Phase::InitCached, Outcome::Failed(ExecFailure::Host(e)))),
        Ok(second) => {
            built.push(registration(&second));
            (second.info().cache != CacheStatus::Hit)
                .then_some((Phase::InitCached, Outcome::Reinstalled))
        }
    }
}

/// Entries in this process's temp directory (the cell's own `TMPDIR`).
fn host_temp() -> String {
    dir_entries(&std::env::temp_dir()).len().to_string()
}

/// The scenario under `fault` on `path`; prints one [`CELL_RECORD`].
fn cell_child(path: LaunchPath, fault: Fault) {
    let n = std::env::var(N_ENV).ok();
    let cann = cann();
    let lease = cann.open_device(0).expect("open device 0");

    let mut fields: Vec<(String, String)> = vec![
        ("path".into(), path.to_string()),
        ("fault".into(), fault.key().into()),
        ("n".into(), n.unwrap_or_else(|| "-".into())),
    ];
    let mut field = |k: &str, v: String| fields.push((k.into(), v));
    let mut built = Vec::new();
    let result = scenario(&cann, path, &mut built);
    field("registrations", built.join(","));
    let Some((phase, outcome)) = result else {
        field("phase", "none".into());
        field("host_temp", host_temp());
        let st = stats(&cann, 0);
        field("machine", st.device_machine.to_string());
        field("live_bytes", st.live_bytes.to_string());
        fields.extend(binary_fields(&st, ""));
        return print(&fields);
    };
    field("phase", phase.key().into());
    match &outcome {
        Outcome::Failed(ExecFailure::Host(e)) => {
            field("error", short(e));
            field("message", e.to_string());
        }
        Outcome::Failed(ExecFailure::Wrong(what)) => {
            field("error", format!("wrong result: {what}"));
        }
        Outcome::Reinstalled => field("error", "none: built by reinstalling".into()),
    }
    field(
        "check",
        check(path, fault, phase, &outcome)
            .err()
            .unwrap_or_else(|| "ok".into()),
    );

    // The runner is gone; the lease keeps the device, so its accounting
    // is the device's, not an empty slot's (a reset would forget its
    // handles).
    let poisoned = match lease.alloc(64) {
        Ok(_) => false,
        Err(e) => match e.cann() {
            Some(c) if c.code == ACL_ERROR_RT_DRV_INTERNAL_ERROR => true,
            _ => panic!("allocating after the fault: {e}"),
        },
    };
    field("poisoned", if poisoned { "yes" } else { "no" }.into());
    field(
        "poisoned_as_expected",
        if poisoned == fault.poisons() {
            "yes"
        } else {
            "no"
        }
        .into(),
    );
    let st = stats(&cann, 0);
    field("machine", st.device_machine.to_string());
    field("live_bytes", st.live_bytes.to_string());
    field("host_temp", host_temp());
    let scan = scan_preinstall(&preinstall_dir(&sim_root(), 0), &mut FileHashes::default());
    field("temp", scan.temp.len().to_string());
    field("torn", scan.torn.len().to_string());
    fields.extend(binary_fields(&st, ""));

    // A fresh runner on the same device, after a reset if it is poisoned.
    let lease = if poisoned {
        drop(lease);
        cann.open_device(0)
            .expect("open device 0 again after its reset")
    } else {
        lease
    };
    let fresh = builder(&cann, path)
        .build()
        .map_err(|e| Outcome::Failed(ExecFailure::Host(e)));
    let (recovery, ok) = match (fault, fresh) {
        (Fault::DispatcherWrite, Err(Outcome::Failed(ExecFailure::Host(again))))
            if check_error(path, fault, Phase::Bootstrap, &again).is_ok() =>
        {
            (
                "fails again: the fault is set for the process".to_string(),
                true,
            )
        }
        (_, Err(Outcome::Failed(ExecFailure::Host(e)))) => (format!("FAILED: {e}"), false),
        (_, Err(_)) => unreachable!("building fails only with an error"),
        (_, Ok(runner)) => {
            let cache = runner.info().cache;
            match exec(runner) {
                Ok(()) => {
                    let how = match cache {
                        CacheStatus::Miss => "bootstrapped again",
                        CacheStatus::Hit | CacheStatus::Joined => "cached install",
                    };
                    let reset = if poisoned { "reset, " } else { "" };
                    (format!("ok ({reset}{how})"), true)
                }
                Err(ExecFailure::Host(e)) => (format!("FAILED: {e}"), false),
                Err(ExecFailure::Wrong(w)) => (format!("FAILED: {w}"), false),
            }
        }
    };
    let st = stats(&cann, 0);
    let mut field = |k: &str, v: String| fields.push((k.into(), v));
    field("recovery", recovery);
    field("recovery_ok", if ok { "yes" } else { "no" }.into());
    field("recovery_live_bytes", st.live_bytes.to_string());
    field("restarts", st.device_restarts.to_string());
    fields.extend(binary_fields(&st, "recovery_"));
    drop(lease);
    fields.push(("children_left".into(), children_left().to_string()));
    print(&fields);
}

/// Prints `fields` as one [`CELL_RECORD`].
fn print(fields: &[(String, String)]) {
    let fields: Vec<(&str, String)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    print_record(CELL_RECORD, &fields);
}

/// A fresh host process on the same root, no fault: two runners at once
/// (the second shares the first's install and registration), both exec,
/// release.
fn recover_child(path: LaunchPath) {
    let cann = cann();
    let lease = cann.open_device(0).expect("open device 0");
    let mut fields: Vec<(String, String)> = Vec::new();
    let ok = (|| {
        let first = builder(&cann, path).build()?;
        let second = builder(&cann, path).build()?;
        let st = stats(&cann, 0);
        fields.push((
            "registrations".into(),
            format!("{},{}", registration(&first), registration(&second)),
        ));
        fields.extend(binary_fields(&st, "shared_"));
        exec(first)?;
        exec(second)
    })();
    let ok = match ok {
        Ok(()) => "yes".to_string(),
        Err(ExecFailure::Host(e)) => format!("failed: {e}"),
        Err(ExecFailure::Wrong(w)) => format!("failed: {w}"),
    };
    let st = stats(&cann, 0);
    drop(lease);
    fields.push(("ok".into(), ok));
    fields.push(("live_bytes".into(), st.live_bytes.to_string()));
    fields.extend(binary_fields(&st, ""));
    fields.push(("children_left".into(), children_left().to_string()));
    let fields: Vec<(&str, String)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    print_record(RECOVER_RECORD, &fields);
}
