//! Multi-process stress: 8 host processes × 4 runner
//! threads × 50 create/exec/drop cycles on 2 simulated devices whose
//! preinstall directories all processes share, mixing two runtime SOs.
//!
//! Every host process (a worker: this test binary re-run as a child with
//! [`WORKER_ENV`] set) uses the same `SIMPLER_SIM_ROOT`, so all of them
//! bootstrap into the same two preinstall directories, as processes sharing
//! a real device do. Each cycle builds a runner for one (device, runtime
//! SO), runs a small batch whose results the worker verifies, and drops the
//! runner. Odd workers hold both devices open for the whole run; even ones
//! do not, so their devices are reset and their device processes restarted
//! whenever their last runner drops. The parent meanwhile hashes every
//! installed runtime SO, and every runtime SO a device process has mapped
//! (what its `dlopen` loaded, through `/proc/<pid>/map_files`), again and
//! again, so bytes other than their name promises are caught while they
//! are in use.
//!
//! Counted and asserted (and printed as a table):
//! - failures: cycles that returned an error — 0;
//! - torn reads: installed files whose bytes do not hash to their name
//!   (parent, during the run and after it) plus batches whose results were
//!   wrong (a runtime that did not work) — 0;
//! - KFC launches per (process, device, fingerprint): `RunnerInfo::cache`
//!   misses per key in each worker — exactly 1 — and the simulator's
//!   `launches_kfc` per device in each worker — exactly 2, one per runtime;
//! - live device bytes in each worker after its last runner — 0;
//! - temp files left in the preinstall directories — 0;
//! - device processes left: children of a worker after it released its
//!   devices, and processes of this simulator root after every worker
//!   exited — 0.
//!
//! `SIMPLER_STRESS_CYCLES` overrides the 50 cycles per runner thread (the
//! qemu stage of `cargo xtask test` may use fewer).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use simpler_abi::artifacts::files;
use simpler_abi::sim;
use simpler_host::abi::fingerprint;
use simpler_host::{CacheStatus, Cann, Device, DeviceRunner, Error};
use simpler_testkit::host::{cann, stats};
use simpler_testkit::{child_env, in_child, is_child, layout, preinstall_dir, SimRoot};

use crate::support::{
    children, columns, describe, device_processes, device_side, dispatcher_bytes, print_record,
    records, runtime_pair, scan_mapped_runtimes, scan_preinstall, FileHashes,
};

const NAME: &str = "stress::eight_processes_share_two_devices";
/// Set in a worker process: its index.
const WORKER_ENV: &str = simpler_abi::test_env::STRESS_WORKER;
/// Cycles per runner thread.
const CYCLES_ENV: &str = simpler_abi::test_env::STRESS_CYCLES;
const DEFAULT_CYCLES: usize = 50;
const PROCESSES: usize = 8;
const RUNNERS: usize = 4;
const DEVICES: i32 = 2;
/// The runtime SO and its variant ([`runtime_pair`]).
const RUNTIMES: usize = 2;
const RECORD: &str = "stress-worker";

fn cycles() -> usize {
    match std::env::var(CYCLES_ENV) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{CYCLES_ENV}={v:?} is not a number")),
        Err(_) => DEFAULT_CYCLES,
    }
}

#[test]
fn eight_processes_share_two_devices() {
    if is_child() {
        return worker();
    }
    let root = SimRoot::new();
    // Builds the artifacts if needed, which is not part of the run.
    let mut env = child_env(root.path());
    let started = Instant::now();
    env.push((sim::env::DEVICE_COUNT.into(), DEVICES.to_string()));
    let fps = runtime_pair().map(|so| fingerprint(&so));

    let done = AtomicBool::new(false);
    let live = Watch::default();
    let outputs: Vec<_> = thread::scope(|s| {
        let watcher = s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                live.scan(root.path());
                thread::sleep(Duration::from_millis(5));
            }
        });
        let workers: Vec<_> = (0..PROCESSES)
            .map(|i| {
                let mut env = env.clone();
                env.push((WORKER_ENV.into(), i.to_string()));
                s.spawn(move || in_child(NAME, env))
            })
            .collect();
        let outputs = workers
            .into_iter()
            .map(|w| w.join().expect("worker thread"))
            .collect();
        done.store(true, Ordering::Release);
        watcher.join().expect("watcher thread");
        outputs
    });

    let mut workers = Vec::new();
    for (i, out) in outputs.iter().enumerate() {
        let mut recs = records(out, RECORD);
        assert!(
            out.status.success() && recs.len() == 1,
            "worker {i} did not finish: {}",
            describe(out)
        );
        workers.push(WorkerReport::parse(&recs.remove(0)));
    }
    let after = Watch::default();
    after.scan(root.path());
    let orphans = device_processes(root.path());
    let elapsed = started.elapsed();

    let summary = Summary::new(&workers, &live, &after, orphans.len());
    print_table(&workers, &fps, &summary, &live, elapsed);
    assert_eq!(summary.failures, 0, "failed cycles: {:?}", summary.errors);
    assert_eq!(
        summary.torn_reads,
        0,
        "torn: during {:?}, after {:?}",
        live.torn_names(),
        after.torn_names()
    );
    assert!(
        live.mapped_hashed.load(Ordering::Relaxed) > 0
            || live.mapped_refused.load(Ordering::Relaxed) > 0,
        "no scan during the run found a runtime SO mapped by a device process"
    );
    assert!(
        summary.kfc_per_key.iter().all(|&n| n == 1),
        "KFC launches per (process, device, fingerprint): {:?}",
        summary.kfc_per_key
    );
    assert!(
        summary.kfc_per_device.iter().all(|&n| n == RUNTIMES as u64),
        "simulator launches_kfc per (process, device): {:?}",
        summary.kfc_per_device
    );
    assert_eq!(summary.live_bytes, 0);
    assert_eq!(summary.temp_files, 0, "{:?}", after.temp_names());
    assert_eq!(summary.orphans, 0, "left behind: {orphans:?}");
    let expected: Vec<String> = fps
        .iter()
        .map(|fp| format!("simpler_inner_{fp:016x}.so"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for device in 0..DEVICES {
        let scan = scan_preinstall(
            &preinstall_dir(root.path(), device),
            &mut FileHashes::default(),
        );
        assert_eq!(scan.sound, expected, "device {device}: {scan:?}");
        assert!(scan.other.is_empty(), "device {device}: {scan:?}");
    }
}

/// The detectors the stress test counts with see what they look for: a
/// file whose bytes do not match its name, a temp file, a device process
/// of a root, and a child not yet reaped.
#[test]
fn the_detectors_detect() {
    let root = SimRoot::new();
    let dir = preinstall_dir(root.path(), 0);
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = b"\x7fELF: bytes of a runtime SO";
    let fp = fingerprint(bytes);
    let sound = format!("simpler_inner_{fp:016x}.so");
    let torn = format!("simpler_inner_{:016x}.so", fp ^ 1);
    let temp = format!(".{sound}.tmp.0.1.2.3.4.5");
    for name in [&sound, &torn, &temp, &"notes.txt".to_string()] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let scan = scan_preinstall(&dir, &mut FileHashes::default());
    assert_eq!(scan.sound, [sound]);
    assert_eq!(scan.torn, [torn]);
    assert_eq!(scan.temp, [temp]);
    assert_eq!(scan.other, ["notes.txt"]);

    // Something that looks like a device process of this root.
    let device_dir = layout::device_dir(root.path(), 0);
    let mut fake = std::process::Command::new("sh")
        .arg("-c")
        .arg("sleep 30; :")
        .arg(files::SIM_DEVICE_BIN)
        .arg("--root")
        .arg(&device_dir)
        .spawn()
        .unwrap();
    let pid = fake.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !device_processes(root.path()).iter().any(|p| p.pid == pid) {
        assert!(
            Instant::now() < deadline,
            "the fake device process was not seen"
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert!(device_processes(SimRoot::new().path()).is_empty());
    fake.kill().unwrap();
    // Killed but not yet waited for: no longer a device process, still a
    // child of this process.
    while device_processes(root.path()).iter().any(|p| p.pid == pid) {
        assert!(Instant::now() < deadline, "the killed process still runs");
        thread::sleep(Duration::from_millis(10));
    }
    assert!(children().iter().any(|p| p.pid == pid && p.state == 'Z'));
    fake.wait().unwrap();
    assert!(!children().iter().any(|p| p.pid == pid));
}

/// Preinstall-directory scans: what was checked and what was wrong.
#[derive(Default)]
struct Watch {
    scans: AtomicUsize,
    files_hashed: AtomicUsize,
    mapped_hashed: AtomicUsize,
    mapped_refused: AtomicUsize,
    temp_seen: AtomicUsize,
    torn: Mutex<Vec<String>>,
    temp: Mutex<Vec<String>>,
    hashes: Mutex<FileHashes>,
}

impl Watch {
    fn scan(&self, root: &std::path::Path) {
        self.scans.fetch_add(1, Ordering::Relaxed);
        let mut hashes = self.hashes.lock().unwrap();
        for device in 0..DEVICES {
            let scan = scan_preinstall(&preinstall_dir(root, device), &mut hashes);
            self.files_hashed
                .fetch_add(scan.sound.len() + scan.torn.len(), Ordering::Relaxed);
            self.temp_seen.fetch_add(scan.temp.len(), Ordering::Relaxed);
            let tag = |names: Vec<String>| {
                names
                    .into_iter()
                    .map(move |n| format!("device{device}/{n}"))
            };
            self.torn.lock().unwrap().extend(tag(scan.torn));
            self.temp.lock().unwrap().extend(tag(scan.temp));
        }
        let mapped = scan_mapped_runtimes(root, &mut hashes);
        self.mapped_hashed
            .fetch_add(mapped.checked, Ordering::Relaxed);
        self.mapped_refused
            .fetch_add(mapped.refused, Ordering::Relaxed);
        self.torn
            .lock()
            .unwrap()
            .extend(mapped.torn.into_iter().map(|t| format!("mapped by {t}")));
    }

    fn torn_names(&self) -> Vec<String> {
        self.torn.lock().unwrap().clone()
    }

    fn temp_names(&self) -> Vec<String> {
        self.temp.lock().unwrap().clone()
    }
}

/// What one worker process reported.
struct WorkerReport {
    index: usize,
    cycles_ok: usize,
    failures: usize,
    errors: Vec<String>,
    wrong_results: usize,
    /// Misses per (device, runtime index): bootstraps this process ran.
    misses: BTreeMap<(i32, usize), usize>,
    joined: usize,
    hits: usize,
    /// Per device: the simulator's `launches_kfc`, `kfc_calls`,
    /// `dispatcher_saves`, `live_bytes`.
    launches_kfc: Vec<u64>,
    kfc_calls: Vec<u64>,
    saves: Vec<u64>,
    live_bytes: Vec<u64>,
    restarts: Vec<u64>,
    leases: bool,
    machine: u64,
    children_left: usize,
    seconds: f64,
}

impl WorkerReport {
    fn parse(rec: &BTreeMap<String, String>) -> WorkerReport {
        let get = |k: &str| -> &str {
            rec.get(k)
                .unwrap_or_else(|| panic!("worker record lacks {k}: {rec:?}"))
        };
        let num = |k: &str| -> u64 { get(k).parse().unwrap_or_else(|_| panic!("{k}: {rec:?}")) };
        let per_device = |k: &str| (0..DEVICES).map(|d| num(&format!("{k}{d}"))).collect();
        let mut misses = BTreeMap::new();
        for d in 0..DEVICES {
            for r in 0..RUNTIMES {
                misses.insert((d, r), num(&format!("miss_d{d}_r{r}")) as usize);
            }
        }
        WorkerReport {
            index: num("worker") as usize,
            cycles_ok: num("cycles_ok") as usize,
            failures: num("failures") as usize,
            errors: get("errors")
                .split(" | ")
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            wrong_results: num("wrong_results") as usize,
            misses,
            joined: num("joined") as usize,
            hits: num("hits") as usize,
            launches_kfc: per_device("launches_kfc"),
            kfc_calls: per_device("kfc_calls"),
            saves: per_device("dispatcher_saves"),
            live_bytes: per_device("live_bytes"),
            restarts: per_device("restarts"),
            leases: get("leases") == "yes",
            machine: num("machine"),
            children_left: num("children_left") as usize,
            seconds: get("seconds").parse().unwrap_or(f64::NAN),
        }
    }
}

/// The asserted totals.
struct Summary {
    failures: usize,
    errors: Vec<String>,
    torn_reads: usize,
    kfc_per_key: Vec<usize>,
    kfc_per_device: Vec<u64>,
    live_bytes: u64,
    temp_files: usize,
    orphans: usize,
}

impl Summary {
    fn new(workers: &[WorkerReport], live: &Watch, after: &Watch, orphan_procs: usize) -> Summary {
        Summary {
            failures: workers.iter().map(|w| w.failures).sum(),
            errors: workers.iter().flat_map(|w| w.errors.clone()).collect(),
            torn_reads: live.torn_names().len()
                + after.torn_names().len()
                + workers.iter().map(|w| w.wrong_results).sum::<usize>(),
            kfc_per_key: workers
                .iter()
                .flat_map(|w| w.misses.values().copied())
                .collect(),
            kfc_per_device: workers
                .iter()
                .flat_map(|w| w.launches_kfc.iter().copied())
                .collect(),
            live_bytes: workers.iter().flat_map(|w| w.live_bytes.iter()).sum(),
            temp_files: after.temp_names().len(),
            orphans: orphan_procs + workers.iter().map(|w| w.children_left).sum::<usize>(),
        }
    }
}

fn print_table(
    workers: &[WorkerReport],
    fps: &[u64; RUNTIMES],
    summary: &Summary,
    live: &Watch,
    elapsed: Duration,
) {
    let cycles = cycles();
    println!(
        "\nstress: {PROCESSES} processes × {RUNNERS} runners × {cycles} cycles on {DEVICES} \
         devices, runtime SOs r0 = {:016x}, r1 = {:016x}",
        fps[0], fps[1]
    );
    let pair = |v: &[u64]| format!("{}/{}", v[0], v[1]);
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            let misses: Vec<String> = w.misses.values().map(|n| n.to_string()).collect();
            vec![
                w.index.to_string(),
                if w.leases { "held" } else { "none" }.into(),
                w.cycles_ok.to_string(),
                w.failures.to_string(),
                w.wrong_results.to_string(),
                misses.join("/"),
                pair(&w.launches_kfc),
                pair(&w.kfc_calls),
                pair(&w.saves),
                pair(&w.restarts),
                format!("{}/{}", w.hits, w.joined),
                pair(&w.live_bytes),
                w.children_left.to_string(),
                format!("{:.1}", w.seconds),
            ]
        })
        .collect();
    print!(
        "{}",
        columns(
            &[
                "worker",
                "leases",
                "cycles ok",
                "failures",
                "wrong",
                "bootstraps d0r0/d0r1/d1r0/d1r1",
                "kfc d0/d1",
                "kfc calls",
                "disp. saves",
                "restarts",
                "hit/joined",
                "live B d0/d1",
                "children left",
                "secs",
            ],
            &rows
        )
    );
    let kfc_min = summary.kfc_per_key.iter().min().copied().unwrap_or(0);
    let kfc_max = summary.kfc_per_key.iter().max().copied().unwrap_or(0);
    let mut totals = vec![vec![
        "device side".to_string(),
        device_side(workers[0].machine),
    ]];
    for (what, value) in [
        ("failures (must be 0)", summary.failures.to_string()),
        (
            "torn reads (must be 0)",
            format!(
                "{} ({} scans during the run checked {} installed files and {} files \
                 mapped by device processes, reading {} versions{})",
                summary.torn_reads,
                live.scans.load(Ordering::Relaxed),
                live.files_hashed.load(Ordering::Relaxed),
                live.mapped_hashed.load(Ordering::Relaxed),
                live.hashes.lock().unwrap().reads,
                match live.mapped_refused.load(Ordering::Relaxed) {
                    0 => String::new(),
                    n => format!("; {n} mapped files not readable without CAP_SYS_ADMIN"),
                }
            ),
        ),
        (
            "KFC launches per (process, device, fp) (must be 1)",
            format!(
                "min {kfc_min}, max {kfc_max} over {} keys",
                summary.kfc_per_key.len()
            ),
        ),
        (
            "live device bytes at the end (must be 0)",
            summary.live_bytes.to_string(),
        ),
        (
            "leftover temp files (must be 0)",
            format!(
                "{} ({} seen in flight)",
                summary.temp_files,
                live.temp_seen.load(Ordering::Relaxed)
            ),
        ),
        (
            "orphan device processes (must be 0)",
            summary.orphans.to_string(),
        ),
        ("wall time", format!("{:.1} s", elapsed.as_secs_f64())),
    ] {
        totals.push(vec![what.to_string(), value]);
    }
    print!("{}", columns(&["count", "value"], &totals));
}

/// One worker process: [`RUNNERS`] threads, each running [`cycles`]
/// create/exec/drop cycles over both devices and both runtime SOs.
fn worker() {
    let started = Instant::now();
    let index: usize = std::env::var(WORKER_ENV)
        .expect("a stress worker has an index")
        .parse()
        .expect("worker index");
    let cycles = cycles();
    let cann = cann();
    let dispatcher: &'static [u8] = dispatcher_bytes().leak();
    let runtimes: [&'static [u8]; RUNTIMES] = runtime_pair().map(|so| &*so.leak());
    // Odd workers hold a lease on both devices for the whole run: their
    // device processes stay up, and their live bytes at the end are counted
    // on a live device. Even workers hold none: whenever a device's last
    // runner drops, the device is reset and the next runner starts a fresh
    // device process, so device-process churn races the other workers'
    // installs too.
    let holds_leases = index % 2 == 1;
    let leases: Vec<Device> = if holds_leases {
        (0..DEVICES)
            .map(|d| cann.open_device(d).expect("open a device"))
            .collect()
    } else {
        Vec::new()
    };

    let tally = Mutex::new(Tally::default());
    thread::scope(|s| {
        for thread in 0..RUNNERS {
            let (cann, tally) = (&cann, &tally);
            s.spawn(move || {
                for cycle in 0..cycles {
                    let device = ((cycle + thread) % DEVICES as usize) as i32;
                    let runtime = (cycle / 2 + thread + index) % RUNTIMES;
                    let seed = (index * RUNNERS + thread) * cycles + cycle;
                    let outcome = one_cycle(cann, device, dispatcher, runtimes[runtime], seed);
                    tally.lock().unwrap().add(device, runtime, outcome);
                }
            });
        }
    });

    let tally = tally.into_inner().unwrap();
    let per_device: Vec<_> = (0..DEVICES).map(|d| stats(&cann, d)).collect();
    drop(leases);
    // Resetting a device stops and reaps its process; give a slow one the
    // simulator's own grace period before counting it as left behind.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let mut fields: Vec<(&str, String)> = vec![
        ("worker", index.to_string()),
        ("leases", if holds_leases { "yes" } else { "no" }.into()),
        ("machine", per_device[0].device_machine.to_string()),
        ("cycles_ok", tally.ok.to_string()),
        ("failures", tally.errors.len().to_string()),
        (
            "errors",
            tally
                .errors
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(" | "),
        ),
        ("wrong_results", tally.wrong.len().to_string()),
        ("joined", tally.joined.to_string()),
        ("hits", tally.hits.to_string()),
        ("children_left", children().len().to_string()),
        ("seconds", format!("{:.2}", started.elapsed().as_secs_f64())),
    ];
    let mut keyed = Vec::new();
    for d in 0..DEVICES {
        for r in 0..RUNTIMES {
            let n = tally.misses.get(&(d, r)).copied().unwrap_or(0);
            keyed.push((format!("miss_d{d}_r{r}"), n.to_string()));
        }
        let s = &per_device[d as usize];
        keyed.push((format!("launches_kfc{d}"), s.launches_kfc.to_string()));
        keyed.push((format!("kfc_calls{d}"), s.kfc_calls.to_string()));
        keyed.push((
            format!("dispatcher_saves{d}"),
            s.dispatcher_saves.to_string(),
        ));
        keyed.push((format!("live_bytes{d}"), s.live_bytes.to_string()));
        keyed.push((format!("restarts{d}"), s.device_restarts.to_string()));
    }
    fields.extend(keyed.iter().map(|(k, v)| (k.as_str(), v.clone())));
    if !tally.wrong.is_empty() {
        eprintln!("wrong results: {:?}", tally.wrong);
    }
    print_record(RECORD, &fields);
}

/// What a worker's cycles did.
#[derive(Default)]
struct Tally {
    ok: usize,
    errors: Vec<String>,
    wrong: Vec<String>,
    misses: BTreeMap<(i32, usize), usize>,
    joined: usize,
    hits: usize,
}

impl Tally {
    fn add(&mut self, device: i32, runtime: usize, outcome: Result<Cycle, Error>) {
        match outcome {
            Err(e) => self
                .errors
                .push(format!("device {device} runtime {runtime}: {e}")),
            Ok(cycle) => {
                match cycle.cache {
                    CacheStatus::Miss => *self.misses.entry((device, runtime)).or_default() += 1,
                    CacheStatus::Hit => self.hits += 1,
                    CacheStatus::Joined => self.joined += 1,
                }
                match cycle.wrong {
                    Some(what) => self
                        .wrong
                        .push(format!("device {device} runtime {runtime}: {what}")),
                    None => self.ok += 1,
                }
            }
        }
    }
}

/// One cycle's result: how the runner got its runtime, and what was wrong
/// with the batch's results, if anything.
struct Cycle {
    cache: CacheStatus,
    wrong: Option<String>,
}

/// Builds a runner, runs one small batch (a fill and an FNV-1a of fresh
/// bytes, both checked on the host), drops the runner.
fn one_cycle(
    cann: &Cann,
    device: i32,
    dispatcher: &'static [u8],
    runtime: &'static [u8],
    seed: usize,
) -> Result<Cycle, Error> {
    let mut runner = DeviceRunner::builder(cann)
        .device(device)
        .dispatcher_bytes(dispatcher)
        .runtime_bytes(runtime)
        .threads(2)
        .build()?;
    let cache = runner.info().cache;
    if runner.info().fingerprint != fingerprint(runtime) {
        return Ok(Cycle {
            cache,
            wrong: Some(format!(
                "runner fingerprint {:016x}, expected {:016x}",
                runner.info().fingerprint,
                fingerprint(runtime)
            )),
        });
    }
    let input = pseudo_random_bytes(seed);
    let value = (seed % 251) as u8 + 1;
    let src = runner.upload(&input)?;
    let filled = runner.alloc(input.len())?;
    let hash = runner.alloc(8)?;
    let mut batch = runner.batch();
    batch.fill(&filled, value)?.fnv1a64(&hash, &src)?;
    batch.run()?;
    let got_fill = filled.to_vec::<u8>()?;
    let got_hash = hash.to_vec::<u64>()?[0];
    let wrong = if got_fill.iter().any(|&b| b != value) {
        Some(format!(
            "fill of {} bytes with {value} came back wrong",
            input.len()
        ))
    } else if got_hash != fingerprint(&input) {
        Some(format!(
            "FNV-1a of {} bytes: device {got_hash:016x}, host {:016x}",
            input.len(),
            fingerprint(&input)
        ))
    } else {
        None
    };
    Ok(Cycle { cache, wrong })
}

/// 1..=2048 bytes from a xorshift generator seeded with `seed`.
fn pseudo_random_bytes(seed: usize) -> Vec<u8> {
    let mut x = (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = (next() % 2048) as usize + 1;
    (0..len).map(|_| next() as u8).collect()
}
