//! The fault matrix: every fault the simulator can
//! inject, at every phase of a runner's life — bootstrap, init, exec — must
//! give the documented typed error, leave no device memory, temp file or
//! process behind, and leave the device usable by a fresh runner.
//!
//! **Choosing N.** The counted faults (`SIMPLER_SIM_FAIL_MALLOC`, `_MEMCPY`,
//! `_LAUNCH`, `_SYNC`, `SIMPLER_SIM_KILL_AT_LAUNCH`) fail the Nth call of
//! the process. Rather than hard-coding how many calls each phase makes
//! (which changes whenever the host changes), the test sweeps N = 1, 2, …
//! for each fault, one child process per N, until two N in a row no longer
//! fail the scenario: every call the scenario makes is failed once, and the
//! count of N landing in a phase *is* that phase's number of such calls. A
//! cell with no N is shown as n/a with that count (0). Which phase an N
//! landed in is read from how far the device got — the simulator's KFC and
//! AICPU launch counters — not from the error, so the error is checked
//! against the phase independently. A "no failure" between two failing N
//! would be a fault the host swallowed, and fails the test.
//! `SIMPLER_SIM_FAIL_DISPATCHER_WRITE` is a switch, not a count: one cell.
//!
//! **The scenario** (child process, private `SIMPLER_SIM_ROOT`, one
//! device): hold a lease on device 0 (so the device, and its accounting,
//! outlive the runners); build a runner (bootstrap, then init); exec:
//! upload bytes, allocate two buffers, run a batch (fill, FNV-1a) and check
//! the results; drop it and build a second runner, whose runtime is cached,
//! so its build is an init alone (phase `init-cached`: a failed init there
//! makes the builder reinstall once, so it ends differently). After the
//! failure: the typed error, whether the device is poisoned (507899 on the
//! next call), live device bytes once the runners are gone, the preinstall
//! directory (no temp file, no torn file); then reset the device if
//! poisoned, build a fresh runner on it and run the batch again; then
//! release the device and count device processes left. The parent then
//! counts processes of that root left after the child exited, and runs a
//! second child, without faults, on the same root: a fresh host
//! process must find the device's filesystem usable too.

use std::collections::BTreeMap;
use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use simpler_abi::sim;
use simpler_host::abi::{fingerprint, ReportStage};
use simpler_host::{BootstrapFailure, CacheStatus, Cann, CannError, DeviceRunner, Error};
use simpler_testkit::host::{cann, stats};
use simpler_testkit::{child_env, in_child, is_child, preinstall_dir, sim_root, SimRoot};

use crate::support::{
    children, columns, describe, device_processes, device_side, print_record, records,
    scan_preinstall, FileHashes,
};

const NAME: &str = "fault_matrix::every_fault_at_every_phase";
/// Set in a child: the fault it runs under (`Fault::key`), or `recover`.
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
}

impl Fault {
    const ALL: [Fault; 6] = [
        Fault::Malloc,
        Fault::Memcpy,
        Fault::Launch,
        Fault::Sync,
        Fault::DispatcherWrite,
        Fault::KillAtLaunch,
    ];

    fn key(self) -> &'static str {
        match self {
            Fault::Malloc => "malloc",
            Fault::Memcpy => "memcpy",
            Fault::Launch => "launch",
            Fault::Sync => "sync",
            Fault::DispatcherWrite => "dispatcher-write",
            Fault::KillAtLaunch => "kill-at-launch",
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
        }
    }

    /// Whether the fault fails the Nth call (else it is a switch).
    fn counted(self) -> bool {
        self != Fault::DispatcherWrite
    }

    /// The calls it fails, for the n/a reason.
    fn calls(self) -> &'static str {
        match self {
            Fault::Malloc => "aclrtMalloc calls",
            Fault::Memcpy => "aclrtMemcpy calls",
            Fault::Launch | Fault::KillAtLaunch => "launches",
            Fault::Sync => "stream syncs",
            Fault::DispatcherWrite => "dispatcher writes",
        }
    }

    /// The CANN call that reports it and the code, per `docs/simulator.md`.
    fn reported_as(self) -> Option<(&'static str, i32)> {
        Some(match self {
            Fault::Malloc => ("aclrtMalloc", ACL_ERROR_RT_MEMORY_ALLOCATION),
            Fault::Memcpy => ("aclrtMemcpy", ACL_ERROR_RT_INTERNAL_ERROR),
            Fault::Launch => ("rtAicpuKernelLaunchExWithArgs", ACL_ERROR_RT_INTERNAL_ERROR),
            // A killed device process fails what was in flight with 507018
            // at the next sync.
            Fault::Sync | Fault::KillAtLaunch => (
                "aclrtSynchronizeStreamWithTimeout",
                ACL_ERROR_RT_AICPU_EXCEPTION,
            ),
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
    /// The first runner's bootstrap (uploads, KFC launch, report).
    Bootstrap,
    /// The first runner's `simpler_aicpu_init`.
    Init,
    /// The first runner's batch: buffers, launch, read-back.
    Exec,
    /// A second runner's init, on the install the first one cached: the
    /// builder retries a failed init with one reinstall (the file may be
    /// gone from the device), so this init fails differently.
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
fn check(fault: Fault, phase: Phase, outcome: &Outcome) -> Result<(), String> {
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
    check_error(fault, phase, err)
}

/// Whether `err` is what [`expected`] says; the mismatch if not.
fn check_error(fault: Fault, phase: Phase, err: &Error) -> Result<(), String> {
    let want = |c: &CannError| -> Result<(), String> {
        let (call, code) = fault.reported_as().expect("a counted fault");
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
        return match std::env::var(CELL_ENV).as_deref() {
            Ok(RECOVER) => recover_child(),
            Ok(key) => cell_child(Fault::from_key(key)),
            Err(_) => panic!("{CELL_ENV} is not set in a fault-matrix child"),
        };
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    for fault in Fault::ALL {
        if !fault.counted() {
            rows.push(run_cell(fault, None));
            continue;
        }
        let mut clean_in_a_row = 0;
        for n in 1..=MAX_N {
            let row = run_cell(fault, Some(n));
            clean_in_a_row = if row.phase.is_none() {
                clean_in_a_row + 1
            } else {
                0
            };
            rows.push(row);
            if clean_in_a_row == TRAILING_CLEAN {
                break;
            }
            assert!(n < MAX_N, "{} still fails at N = {MAX_N}", fault.env());
        }
    }
    let matrix = Matrix::new(rows);
    print!("{matrix}");
    println!("fault matrix: {:.1} s", started.elapsed().as_secs_f64());
    let failing: Vec<String> = matrix.failures();
    for line in &failing {
        println!("FAIL {line}");
    }
    assert!(failing.is_empty(), "failing cells:\n{}", failing.join("\n"));
}

/// One child run: a fault (with N when counted) and what came of it.
struct Row {
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

fn run_cell(fault: Fault, n: Option<u64>) -> Row {
    let root = SimRoot::new();
    let mut env = child_env(root.path());
    env.push((sim::env::DEVICE_COUNT.into(), "1".into()));
    let mut faulty = env.clone();
    faulty.push((CELL_ENV.into(), fault.key().into()));
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
        env.push((CELL_ENV.into(), RECOVER.into()));
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
        ("children_left", "0"),
        ("poisoned_as_expected", "yes"),
        ("recovery_ok", "yes"),
        ("recovery_live_bytes", "0"),
    ];
    if phase.is_some() {
        for (key, must) in must_hold {
            match cell.get(key) {
                Some(v) if v == must => {}
                Some(v) if key == "check" => problems.push(v.clone()),
                Some(v) => problems.push(format!("{key} = {v}, must be {must}")),
                None => problems.push(format!("the child did not report {key}")),
            }
        }
    }
    if let Some(rec) = &recover {
        for (key, must) in [("ok", "yes"), ("live_bytes", "0"), ("children_left", "0")] {
            if rec.get(key).map(String::as_str) != Some(must) {
                problems.push(format!(
                    "fresh process: {key} = {:?}, must be {must}",
                    rec.get(key)
                ));
            }
        }
    }
    let scan = scan_preinstall(&preinstall_dir(root.path(), 0), &mut FileHashes::default());
    if !scan.temp.is_empty() || !scan.torn.is_empty() {
        problems.push(format!("preinstall directory after the children: {scan:?}"));
    }
    if orphans > 0 {
        problems.push(format!("{orphans} device process(es) outlived their host"));
    }
    Row {
        fault,
        n,
        phase,
        cell,
        recover,
        orphans,
        problems,
    }
}

/// Every row, and the cells no N reached.
struct Matrix {
    rows: Vec<Row>,
}

impl Matrix {
    fn new(rows: Vec<Row>) -> Matrix {
        Matrix { rows }
    }

    /// Rows that failed, and clean runs followed by failing ones (a fault
    /// the host swallowed).
    fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            let label = format!("{} N={}", row.fault.key(), fmt_n(row.n));
            out.extend(row.problems.iter().map(|p| format!("{label}: {p}")));
            let later_fails = self.rows[i + 1..]
                .iter()
                .take_while(|r| r.fault == row.fault)
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
        const HEADER: [&str; 10] = [
            "fault",
            "phase",
            "N",
            "error (variant, CANN call, code)",
            "live B",
            "temp",
            "orphans",
            "poisoned",
            "recovery: same process; new process",
            "verdict",
        ];
        // A row is either the ten columns or a note spanning from the error
        // column on (n/a cells, the clean end of a sweep).
        let mut table: Vec<Result<[String; 10], [String; 4]>> = Vec::new();
        for fault in Fault::ALL {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.fault == fault).collect();
            for phase in Phase::ALL {
                let hits: Vec<&Row> = rows
                    .iter()
                    .copied()
                    .filter(|r| r.phase == Some(phase))
                    .collect();
                if hits.is_empty() {
                    let reason = if fault.counted() {
                        format!(
                            "n/a: the {} phase makes no {} (0 counted by the sweep)",
                            phase.key(),
                            fault.calls()
                        )
                    } else {
                        "n/a: the dispatcher runs only inside the bootstrap launch".into()
                    };
                    table.push(Err([
                        fault.key().into(),
                        phase.key().into(),
                        "-".into(),
                        reason,
                    ]));
                }
                for row in hits {
                    let get = |k: &str| row.cell.get(k).cloned().unwrap_or_else(|| "?".into());
                    let fresh = match &row.recover {
                        Some(r) if r.get("ok").map(String::as_str) == Some("yes") => "ok".into(),
                        Some(r) => r.get("ok").cloned().unwrap_or_else(|| "?".into()),
                        None => "FAILED".into(),
                    };
                    let orphans = row.orphans + get("children_left").parse::<usize>().unwrap_or(0);
                    let verdict = if row.problems.is_empty() {
                        "ok".to_string()
                    } else {
                        "FAIL (below)".to_string()
                    };
                    table.push(Ok([
                        fault.key().into(),
                        phase.key().into(),
                        fmt_n(row.n),
                        get("error"),
                        get("live_bytes"),
                        get("temp"),
                        orphans.to_string(),
                        get("poisoned"),
                        format!("{}; {fresh}", get("recovery")),
                        verdict,
                    ]));
                }
            }
            if fault.counted() {
                let clean: Vec<String> = rows
                    .iter()
                    .filter(|r| r.phase.is_none())
                    .map(|r| fmt_n(r.n))
                    .collect();
                table.push(Err([
                    fault.key().into(),
                    "-".into(),
                    "".into(),
                    format!(
                        "no failure for N = {}: past the scenario's last {}",
                        clean.join(", "),
                        fault.calls()
                    ),
                ]));
            }
        }
        let machine = self
            .rows
            .iter()
            .find_map(|r| r.cell.get("machine")?.parse().ok())
            .unwrap_or(0);
        writeln!(f, "\nfault matrix, device side: {}", device_side(machine))?;
        let rows: Vec<Vec<String>> = table
            .into_iter()
            .map(|row| match row {
                Ok(cells) => cells.to_vec(),
                Err(note) => note.to_vec(),
            })
            .collect();
        write!(f, "{}", columns(&HEADER, &rows))
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

fn builder(cann: &Cann) -> simpler_host::DeviceRunnerBuilder {
    DeviceRunner::builder(cann).device(0).threads(2)
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

/// Runs the scenario until its first failure: the phase it happened in and
/// how it ended, or `None` if nothing failed.
///
/// Bootstrap and init are told apart by the simulator's launch counters
/// (the init launch is the first AICPU launch), not by the error.
fn scenario(cann: &Cann) -> Option<(Phase, Outcome)> {
    let first = match builder(cann).build() {
        Ok(runner) => runner,
        Err(e) => {
            let phase = if stats(cann, 0).launches_aicpu == 0 {
                Phase::Bootstrap
            } else {
                Phase::Init
            };
            return Some((phase, Outcome::Failed(ExecFailure::Host(e))));
        }
    };
    if let Err(e) = exec(first) {
        return Some((Phase::Exec, Outcome::Failed(e)));
    }
    match builder(cann).build() {
        Err(e) => Some((Phase::InitCached, Outcome::Failed(ExecFailure::Host(e)))),
        Ok(second) if second.info().cache != CacheStatus::Hit => {
            Some((Phase::InitCached, Outcome::Reinstalled))
        }
        Ok(_) => None,
    }
}

/// The scenario under `fault`; prints one [`CELL_RECORD`].
fn cell_child(fault: Fault) {
    let n = std::env::var(N_ENV).ok();
    let cann = cann();
    let lease = cann.open_device(0).expect("open device 0");

    let mut fields: Vec<(&str, String)> = vec![
        ("fault", fault.key().into()),
        ("n", n.unwrap_or_else(|| "-".into())),
    ];
    let Some((phase, outcome)) = scenario(&cann) else {
        fields.push(("phase", "none".into()));
        return print_record(CELL_RECORD, &fields);
    };
    fields.push(("phase", phase.key().into()));
    match &outcome {
        Outcome::Failed(ExecFailure::Host(e)) => {
            fields.push(("error", short(e)));
            fields.push(("message", e.to_string()));
        }
        Outcome::Failed(ExecFailure::Wrong(what)) => {
            fields.push(("error", format!("wrong result: {what}")));
        }
        Outcome::Reinstalled => fields.push(("error", "none: built by reinstalling".into())),
    }
    fields.push((
        "check",
        check(fault, phase, &outcome)
            .err()
            .unwrap_or_else(|| "ok".into()),
    ));

    // The runner is gone; the lease keeps the device, so its accounting
    // is the device's, not an empty slot's.
    let poisoned = match lease.alloc(64) {
        Ok(_) => false,
        Err(e) => match e.cann() {
            Some(c) if c.code == ACL_ERROR_RT_DRV_INTERNAL_ERROR => true,
            _ => panic!("allocating after the fault: {e}"),
        },
    };
    fields.push(("poisoned", if poisoned { "yes" } else { "no" }.into()));
    fields.push((
        "poisoned_as_expected",
        if poisoned == fault.poisons() {
            "yes"
        } else {
            "no"
        }
        .into(),
    ));
    let st = stats(&cann, 0);
    fields.push(("machine", st.device_machine.to_string()));
    fields.push(("live_bytes", st.live_bytes.to_string()));
    let scan = scan_preinstall(&preinstall_dir(&sim_root(), 0), &mut FileHashes::default());
    fields.push(("temp", scan.temp.len().to_string()));
    fields.push(("torn", scan.torn.len().to_string()));

    // A fresh runner on the same device, after a reset if it is poisoned.
    let lease = if poisoned {
        drop(lease);
        cann.open_device(0)
            .expect("open device 0 again after its reset")
    } else {
        lease
    };
    let fresh = builder(&cann)
        .build()
        .map_err(|e| Outcome::Failed(ExecFailure::Host(e)));
    let (recovery, ok) = match (fault, fresh) {
        (Fault::DispatcherWrite, Err(again)) if check(fault, Phase::Bootstrap, &again).is_ok() => (
            "fails again: the fault is set for the process".to_string(),
            true,
        ),
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
    fields.push(("recovery", recovery));
    fields.push(("recovery_ok", if ok { "yes" } else { "no" }.into()));
    fields.push(("recovery_live_bytes", st.live_bytes.to_string()));
    fields.push(("restarts", st.device_restarts.to_string()));
    drop(lease);
    fields.push(("children_left", children_left().to_string()));
    print_record(CELL_RECORD, &fields);
}

/// A fresh host process on the same root, no fault: build, exec, release.
fn recover_child() {
    let cann = cann();
    let lease = cann.open_device(0).expect("open device 0");
    let ok = match builder(&cann).build() {
        Ok(runner) => match exec(runner) {
            Ok(()) => "yes".to_string(),
            Err(ExecFailure::Host(e)) => format!("exec failed: {e}"),
            Err(ExecFailure::Wrong(w)) => format!("exec failed: {w}"),
        },
        Err(e) => format!("build failed: {e}"),
    };
    let live = stats(&cann, 0).live_bytes;
    drop(lease);
    print_record(
        RECOVER_RECORD,
        &[
            ("ok", ok),
            ("live_bytes", live.to_string()),
            ("children_left", children_left().to_string()),
        ],
    );
}
