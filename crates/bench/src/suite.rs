//! The whole benchmark run behind `cargo xtask bench`: every metric with
//! its goal and its floor, measured in one process, one after another.

use std::fmt::Write as _;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use simpler_host::LaunchPath;

use crate::bootstrap::{self, CURVE_SIZES, RUNTIME_SIZE};
use crate::ipc::EchoPeer;
use crate::launch::{self, time_batch, RawStream, ShimLaunch, ShimMode, SimLaunch};
use crate::memory::{self, live_device};
use crate::paths;
use crate::report::{self, Row, Verdict};
use crate::setup::{BenchEnv, SHIM_DEVICE, SIM_DEVICE};
use crate::stats::Samples;
use crate::tasks::{self, TaskPoint, TASK_BYTES, TASK_COUNTS};
use crate::throughput;

/// How much of everything to measure.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Cold bootstraps timed (each with its floor) at up to 4 MiB; fewer
    /// above.
    pub cold_iters: usize,
    /// Warm runner creations timed.
    pub warm_iters: usize,
    /// Round trips (and simulator launch calls) per measured path.
    pub round_trips: usize,
    /// Untimed round trips per path first.
    pub warmup: usize,
    /// Round trips per path before switching to the next.
    pub round: usize,
    /// Batches of copy-only launches per path.
    pub host_batches: usize,
    /// Calls per batch.
    pub host_batch_calls: u32,
    /// Runner create/drop cycles counted.
    pub cycles: usize,
    /// Runner create/drop cycles before counting.
    pub cycles_warmup: usize,
    /// FNV-1a rounds over the 16 MiB buffer.
    pub fnv_rounds: usize,
    /// Batches timed per task count up to 1,000 tasks; fewer above.
    pub task_samples: usize,
    /// Binary-path registrations timed.
    pub registrations: usize,
    /// Module create/drop cycles per launch path.
    pub module_cycles: usize,
}

impl Config {
    /// What `cargo xtask bench` measures.
    pub const FULL: Config = Config {
        cold_iters: 50,
        warm_iters: 100,
        round_trips: 5000,
        warmup: 200,
        round: 50,
        host_batches: 400,
        host_batch_calls: 1000,
        cycles: 1000,
        cycles_warmup: 100,
        fnv_rounds: 15,
        task_samples: 200,
        registrations: 100,
        module_cycles: 1000,
    };

    /// Every measurement once or a few times: checks that the suite runs
    /// (`--quick`, and the crate's smoke test); its numbers mean little.
    pub const QUICK: Config = Config {
        cold_iters: 2,
        warm_iters: 2,
        round_trips: 20,
        warmup: 2,
        round: 5,
        host_batches: 4,
        host_batch_calls: 10,
        cycles: 20,
        cycles_warmup: 2,
        fnv_rounds: 2,
        task_samples: 3,
        registrations: 2,
        module_cycles: 20,
    };
}

/// What one section adds to the report.
struct Section {
    rows: Vec<Row>,
    notes: Vec<String>,
}

/// What a run measured: the text, and the data of the growth curves.
pub struct Report {
    /// The table, then the details behind each row.
    pub text: String,
    /// The cold-bootstrap curve, by size.
    pub bootstrap: Vec<BootstrapPoint>,
    /// The per-task curve, by task count.
    pub tasks: Vec<TaskPoint>,
    /// Where and how it ran, one line (for the plots' captions).
    pub machine: String,
}

/// Runs every measurement and returns the report.
pub fn run(env: &BenchEnv, cfg: &Config) -> anyhow::Result<Report> {
    let load_before = load_average();
    let device = env.open_device()?;
    let (bootstrap_section, bootstrap) = bootstrap(env, &device, cfg)?;
    let (round_trip_section, exec_round_trip) = round_trip(env, cfg)?;
    let (task_section, tasks) = task_curve(env, cfg, &exec_round_trip)?;
    let sections = [
        dispatcher_size(env),
        fnv(cfg),
        bootstrap_section,
        cycles(env, &device, cfg),
        round_trip_section,
        launch_paths(env, &device, cfg)?,
        task_section,
        host_launch_cost(env, cfg)?,
    ];
    let rows: Vec<Row> = sections.iter().flat_map(|s| s.rows.clone()).collect();
    let mut text = report::table(&rows);
    text.push_str("\nDetails (medians unless said otherwise):\n");
    let cpus = crate::cpu::allowed().unwrap_or_default();
    let _ = writeln!(
        text,
        "- machine: {} CPUs, this run on CPU(s) {cpus:?}; load average (1 min) {} before the \
         run, {} after",
        crate::cpu::online(),
        load_before,
        load_average()
    );
    for note in sections.iter().flat_map(|s| &s.notes) {
        let _ = writeln!(text, "- {note}");
    }
    let machine = format!(
        "{} CPUs, run on {}; medians, bars p10–p90",
        crate::cpu::online(),
        if cpus.len() == 1 {
            format!("CPU {} only", cpus[0])
        } else {
            format!("{} CPUs, not pinned", cpus.len())
        }
    );
    Ok(Report {
        text,
        bootstrap,
        tasks,
        machine,
    })
}

fn dispatcher_size(env: &BenchEnv) -> Section {
    const GOAL: u64 = 12 << 10;
    const ORIGINAL: i64 = 67_792;
    let manifest = crate::size::manifest_path(env.artifacts().dir());
    let metric = "dispatcher SO, aarch64, stripped".to_string();
    let goal = format!("≤ {}", report::bytes(GOAL as i64));
    let floor = format!("C++ original {}", report::bytes(ORIGINAL));
    let row = match crate::size::dispatcher_size(&manifest) {
        Ok(Some(size)) => Row {
            metric,
            measured: report::bytes(size as i64),
            floor,
            ratio: report::ratio(size as f64, ORIGINAL as f64),
            goal,
            verdict: Verdict::of(size <= GOAL),
        },
        Ok(None) => Row {
            metric,
            measured: "not built".into(),
            floor,
            ratio: String::new(),
            goal,
            verdict: Verdict::NotBuilt,
        },
        Err(e) => panic!("{e}"),
    };
    Section {
        rows: vec![row],
        notes: vec![format!(
            "dispatcher size from {}{}",
            manifest.display(),
            crate::size::age(&manifest)
                .map(|age| format!(", written {} min ago", age.as_secs() / 60))
                .unwrap_or_default()
        )],
    }
}

fn fnv(cfg: &Config) -> Section {
    let Config { fnv_rounds, .. } = *cfg;
    let buffer = throughput::buffer();
    let (ours, reference) = throughput::compare(&buffer, fnv_rounds);
    let gib = |s: &Samples| throughput::rate(buffer.len(), s.median()) / f64::from(1 << 30);
    let (ours_rate, reference_rate) = (gib(&ours), gib(&reference));
    Section {
        rows: vec![Row {
            metric: "FNV-1a throughput".into(),
            measured: format!("{ours_rate:.3} GiB/s"),
            floor: format!("`fnv` crate {reference_rate:.3} GiB/s"),
            ratio: report::ratio(ours_rate, reference_rate),
            goal: "≥ 0.9×".into(),
            verdict: Verdict::of(ours_rate >= 0.9 * reference_rate),
        }],
        notes: vec![format!(
            "FNV-1a: {fnv_rounds} alternating rounds over {} MiB each",
            buffer.len() >> 20
        )],
    }
}

/// Which runtime SO a cold bootstrap pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// The minimal runtime of `csrc/min_runtime.c`: the curve's.
    Minimal,
    /// The artifacts' runtime, at [`RUNTIME_SIZE`] only.
    Real,
}

/// One cold-bootstrap measurement: a point of the curve, or the real
/// runtime's.
#[derive(Clone, Debug)]
pub struct BootstrapPoint {
    /// What is padded.
    pub base: Base,
    /// The runtime SO's size in bytes.
    pub size: usize,
    /// Cold builds.
    pub cold: Samples,
    /// Their floor, timed alternately.
    pub floor: Samples,
}

/// Cold builds timed at `size` when `base` are timed at 1 MiB: as many up
/// to 4 MiB, then fewer (at least 5, at most `base`), as a 64 MiB one takes
/// a good part of a second.
fn cold_iters_at(size: usize, base: usize) -> usize {
    (base * (4 << 20) / size).max(5).min(base)
}

/// The row of `point`.
fn bootstrap_metric(point: &BootstrapPoint) -> String {
    match point.base {
        Base::Minimal => format!(
            "cold bootstrap, minimal runtime SO padded to {}, simulator",
            size_label(point.size)
        ),
        Base::Real => format!(
            "cold bootstrap, {} runtime SO, simulator",
            size_label(point.size)
        ),
    }
}

/// A size as `64 KiB` or `16 MiB`.
fn size_label(size: usize) -> String {
    if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else {
        format!("{} KiB", size >> 10)
    }
}

fn bootstrap(
    env: &BenchEnv,
    device: &simpler_host::Device,
    cfg: &Config,
) -> anyhow::Result<(Section, Vec<BootstrapPoint>)> {
    let Config {
        cold_iters,
        warm_iters,
        ..
    } = *cfg;
    let runtime = env.runtime_bytes();
    let minimal = env.min_runtime_bytes();
    let preinstall = env.root().preinstall(SIM_DEVICE as u32);
    let floor_dir = env.root().path().join("floor");
    std::fs::create_dir_all(&floor_dir)
        .with_context(|| format!("cannot create {}", floor_dir.display()))?;
    // Seeds: the size in the high bits, the run in the low ones, a bit
    // each for the floor's bytes and the minimal base: no two files share
    // a fingerprint.
    let seed = |base: Base, size: usize, floor: bool, i: u64| {
        (size as u64) << 24 | u64::from(floor) << 23 | u64::from(base == Base::Minimal) << 22 | i
    };

    // Warm-up, untimed: the first KFC launch of the device process saves
    // and loads the dispatcher (once per process), and the first floor
    // pays for this process's first dlopen of the runtime's libraries.
    let (first, _) = bootstrap::cold(
        env.builder(),
        bootstrap::padded(&runtime, RUNTIME_SIZE, seed(Base::Real, 0, false, 0)),
    );
    bootstrap::remove_installed(&preinstall, &first);
    drop(first);
    bootstrap::floor(
        &floor_dir,
        &bootstrap::padded(&runtime, RUNTIME_SIZE, seed(Base::Real, 0, true, 0)),
    );

    let (live_before, _) = live_device(device);
    let mut retained_alive = 0u64;
    let mut retained_dropped = 0u64;
    let mut points = Vec::new();
    let mut parts = Vec::new();
    let cases = CURVE_SIZES
        .map(|size| (Base::Minimal, size))
        .into_iter()
        .chain([(Base::Real, RUNTIME_SIZE)]);
    for (base, size) in cases {
        let so = match base {
            Base::Minimal => &minimal,
            Base::Real => &runtime,
        };
        let iters = cold_iters_at(size, cold_iters);
        let (mut cold, mut bootstraps, mut inits, mut rest, mut floors) =
            (vec![], vec![], vec![], vec![], vec![]);
        for i in 1..=iters as u64 {
            let bytes = bootstrap::padded(so, size, seed(base, size, false, i));
            let (runner, build) = bootstrap::cold(env.builder(), bytes);
            retained_alive = retained_alive.max(live_device(device).0 - live_before);
            bootstrap::remove_installed(&preinstall, &runner);
            drop(runner);
            retained_dropped = retained_dropped.max(live_device(device).0 - live_before);
            cold.push(build.total);
            bootstraps.push(build.bootstrap);
            inits.push(build.init);
            rest.push(build.total.saturating_sub(build.bootstrap + build.init));
            let bytes = bootstrap::padded(so, size, seed(base, size, true, i));
            floors.push(bootstrap::floor(&floor_dir, &bytes));
        }
        let hash_bytes = bootstrap::padded(so, size, seed(base, size, true, 0));
        let hash = Samples::collect(1, iters.min(30), || {
            std::hint::black_box(simpler_abi::fingerprint(std::hint::black_box(&hash_bytes)));
        });
        drop(hash_bytes);
        parts.push((
            iters,
            Samples::new(bootstraps),
            Samples::new(inits),
            Samples::new(rest),
            hash,
        ));
        points.push(BootstrapPoint {
            base,
            size,
            cold: Samples::new(cold),
            floor: Samples::new(floors),
        });
    }

    // Warm: one more cold build installs these bytes; then every build of
    // them is a cache hit. Timed the way the host documents for building
    // many runners (a prepared builder: both SOs checked and hashed once),
    // and, for comparison, from the bytes (checked and hashed every time).
    let warm_bytes = bootstrap::padded(&runtime, RUNTIME_SIZE, seed(Base::Real, 0, false, 1));
    drop(bootstrap::cold(env.builder(), warm_bytes.clone()));
    let prepared = env
        .builder()
        .runtime_bytes(warm_bytes.clone())
        .prepare()
        .context("preparing a builder")?;
    let (mut warm, mut warm_inits, mut warm_from_bytes) = (vec![], vec![], vec![]);
    for _ in 0..warm_iters {
        let build = bootstrap::warm(prepared.clone());
        warm.push(build.total);
        warm_inits.push(build.init);
        let from_bytes = env.builder().runtime_bytes(warm_bytes.clone());
        warm_from_bytes.push(bootstrap::warm(from_bytes).total);
    }
    let (warm, warm_inits, warm_from_bytes) = (
        Samples::new(warm),
        Samples::new(warm_inits),
        Samples::new(warm_from_bytes),
    );

    let reference = points
        .iter()
        .find(|p| p.base == Base::Real)
        .expect("the real runtime is measured");
    let reference_cold = reference.cold.median();
    let warm_ratio = warm.median().as_secs_f64() / reference_cold.as_secs_f64();
    let mut rows: Vec<Row> = points
        .iter()
        .map(|p| {
            let ratio = p.cold.median().as_secs_f64() / p.floor.median().as_secs_f64();
            Row {
                metric: bootstrap_metric(p),
                measured: report::duration(p.cold.median()),
                floor: format!(
                    "hash+copy+write+rename+dlopen {}",
                    report::duration(p.floor.median())
                ),
                ratio: report::ratio(ratio, 1.0),
                goal: "≤ 1.5×".into(),
                verdict: Verdict::of(ratio <= 1.5),
            }
        })
        .collect();
    let mib = RUNTIME_SIZE >> 20;
    rows.extend([
        Row {
            metric: "warm runner creation (bootstrap cached, prepared builder)".into(),
            measured: report::duration(warm.median()),
            floor: format!(
                "cold bootstrap, {mib} MiB {}",
                report::duration(reference_cold)
            ),
            ratio: format!("{:.1}%", warm_ratio * 100.0),
            goal: "≤ 2%".into(),
            verdict: Verdict::of(warm_ratio <= 0.02),
        },
        Row {
            metric: "device bytes retained after bootstrap".into(),
            measured: report::bytes(retained_alive as i64),
            floor: format!("after drop {}", report::bytes(retained_dropped as i64)),
            ratio: String::new(),
            goal: "0".into(),
            verdict: Verdict::of(retained_alive == 0 && retained_dropped == 0),
        },
    ]);
    let mut notes: Vec<String> = points
        .iter()
        .zip(&parts)
        .map(|(p, (iters, bootstraps, inits, rest, hash))| {
            format!(
                "{}: `build()` of a runner whose runtime SO is new to the \
                 device ({iters} runs, new padding each): {} total; bootstrap {}, \
                 `simpler_aicpu_init` (first dlopen of the SO) {}, the rest (checks, stream) \
                 {}; p90 {}; floor {}, p90 {}; FNV-1a of the SO alone {} (the device and the \
                 host each compute it; the floor once); cold less one FNV-1a is {:.2}× the floor",
                bootstrap_metric(p),
                report::duration(p.cold.median()),
                report::duration(bootstraps.median()),
                report::duration(inits.median()),
                report::duration(rest.median()),
                report::duration(p.cold.p90()),
                report::duration(p.floor.median()),
                report::duration(p.floor.p90()),
                report::duration(hash.median()),
                p.cold.median().saturating_sub(hash.median()).as_secs_f64()
                    / p.floor.median().as_secs_f64()
            )
        })
        .collect();
    notes.extend([
        format!(
            "warm runner creation ({warm_iters} runs, same {mib} MiB SO, builder prepared \
             once with `DeviceRunnerBuilder::prepare`): {} total, of which \
             `simpler_aicpu_init` {}; p90 {}; from the bytes instead (checked and hashed \
             by every build): {}",
            report::duration(warm.median()),
            report::duration(warm_inits.median()),
            report::duration(warm.p90()),
            report::duration(warm_from_bytes.median()),
        ),
        format!(
            "device bytes: live on the device beyond what was live before ({}), with each \
             cold runner alive and after its drop, worst of all cold runs",
            report::bytes(live_before as i64)
        ),
    ]);
    Ok((Section { rows, notes }, points))
}

/// Both launch paths of `Module`: the empty kernel's round trip on each
/// against the IPC floor, the binary path's registration, and module
/// cycles against what is left live.
fn launch_paths(
    env: &BenchEnv,
    device: &simpler_host::Device,
    cfg: &Config,
) -> anyhow::Result<Section> {
    let Config {
        round,
        round_trips,
        warmup,
        registrations,
        module_cycles,
        ..
    } = *cfg;
    let images = paths::Images::new(env)?;
    let trips = paths::round_trips(env, &images, warmup, round_trips / round, round)?;
    let (registering, builds) = paths::registrations(env, &images, registrations)?;
    let mut cycled = Vec::new();
    for path in LaunchPath::ALL {
        cycled.push((
            path,
            paths::cycles(env, &images, device, path, module_cycles)?,
        ));
    }
    let floor = trips.ipc.median();
    let mut rows: Vec<Row> = [
        (LaunchPath::Type2, &trips.type2),
        (LaunchPath::Binary, &trips.binary),
    ]
    .into_iter()
    .map(|(path, samples)| {
        let ratio = samples.median().as_secs_f64() / floor.as_secs_f64();
        Row {
            metric: format!("empty-kernel launch→sync round trip, `Module`, {path} path"),
            measured: report::duration(samples.median()),
            floor: format!("IPC ping-pong {}", report::duration(floor)),
            ratio: report::ratio(ratio, 1.0),
            goal: "≤ 1.5×".into(),
            verdict: Verdict::of(ratio <= 1.5),
        }
    })
    .collect();
    rows.push(Row {
        metric: "binary path: one-time kernel registration".into(),
        measured: report::duration(registering.median()),
        floor: format!(
            "launch→sync round trip, binary {}",
            report::duration(trips.binary.median())
        ),
        ratio: String::new(),
        goal: "none (one-time)".into(),
        verdict: Verdict::NoGoal,
    });
    let leaked = |(before, after): &(paths::Live, paths::Live)| {
        after.bytes != 0
            || after.allocations != 0
            || after.binaries != 0
            || after.functions != 0
            || after != before
    };
    let clean = cycled.iter().all(|(_, live)| !leaked(live));
    let worst = cycled
        .iter()
        .map(|(_, (_, after))| after)
        .fold((0, 0), |(b, h), a| {
            (b.max(a.bytes), h.max(a.binaries + a.functions))
        });
    rows.push(Row {
        metric: format!("{module_cycles} module create/drop cycles per launch path"),
        measured: format!(
            "{} live device; {} live handles",
            report::bytes(worst.0 as i64),
            worst.1
        ),
        floor: "before: the same".into(),
        ratio: String::new(),
        goal: "0 B live; 0 handles".into(),
        verdict: Verdict::of(clean),
    });
    let line = |name: &str, s: &Samples| {
        format!(
            "{name} median {}, p90 {}, p99 {}",
            report::duration(s.median()),
            report::duration(s.p90()),
            report::duration(s.quantile(0.99)),
        )
    };
    let cycles_line = cycled
        .iter()
        .map(|(path, (before, after))| {
            format!(
                "{path}: bytes {} → {}, allocations {} → {}, binary handles {} → {}, function \
                 handles {} → {}",
                report::bytes(before.bytes as i64),
                report::bytes(after.bytes as i64),
                before.allocations,
                after.allocations,
                before.binaries,
                after.binaries,
                before.functions,
                after.functions
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Section {
        rows,
        notes: vec![
            format!(
                "launch paths: `Kernel::run` (launch + `Stream::sync`) of `{}` on 1 AICPU thread \
                 with an 8-byte payload, one stream, {round_trips} each, in rounds of {round} \
                 alternating with a new IPC ping-pong pair: {}; {}; {}",
                paths::EMPTY_KERNEL,
                line("IPC ping-pong", &trips.ipc),
                line("type-2", &trips.type2),
                line("binary", &trips.binary),
            ),
            format!(
                "binary-path registration ({registrations} builds, each after the last module \
                 of the registration was dropped: the SO installed already, so the build is \
                 the registration and its checks): registration p90 {}; the whole build {} \
                 (p90 {})",
                report::duration(registering.p90()),
                report::duration(builds.median()),
                report::duration(builds.p90()),
            ),
            format!(
                "module cycles: one untimed cycle, then {module_cycles} `Module` builds and \
                 drops per path (an empty-kernel run every 100th) while the bench holds the \
                 device open; live on the device before → after: {cycles_line}"
            ),
        ],
    })
}

/// The per-task curve; `round_trip` is the empty exec's round trip of
/// [`round_trip`], on a runner built the same way (1 AICPU thread).
fn task_curve(
    env: &BenchEnv,
    cfg: &Config,
    round_trip: &Samples,
) -> anyhow::Result<(Section, Vec<TaskPoint>)> {
    let Config {
        task_samples,
        warmup,
        ..
    } = *cfg;
    let mut runner = env.builder().build().context("building the batch runner")?;
    let mut points = Vec::new();
    for tasks in TASK_COUNTS {
        let samples = tasks::samples_for(tasks, task_samples);
        let warmup = warmup.min(samples);
        points.push(tasks::measure(
            &mut runner,
            tasks,
            warmup,
            samples,
            round_trip,
        )?);
    }
    drop(runner);
    let count = |n: usize| report::count(n as i64);
    let rows = points
        .iter()
        .map(|p| Row {
            metric: format!(
                "per-task cost, {} × `fill` {TASK_BYTES} B in one exec",
                count(p.tasks)
            ),
            measured: report::seconds(p.per_task()),
            floor: format!(
                "round trip / {} = {}",
                count(p.tasks),
                report::seconds(p.floor_per_task())
            ),
            ratio: report::ratio(
                p.batch.median().as_secs_f64(),
                p.round_trip.median().as_secs_f64(),
            ),
            goal: "none (curve)".into(),
            verdict: Verdict::NoGoal,
        })
        .collect();
    let detail = points
        .iter()
        .map(|p| {
            format!(
                "{}: batch {} (p90 {}), of which queueing {}, {} samples",
                count(p.tasks),
                report::duration(p.batch.median()),
                report::duration(p.batch.p90()),
                report::duration(p.queue.median()),
                p.batch.len()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let marginal = match (points.iter().rev().nth(1), points.last()) {
        (Some(a), Some(b)) => {
            let extra = b.batch.median().saturating_sub(a.batch.median());
            format!(
                "; each task past {} costs {}",
                count(a.tasks),
                report::duration(extra / (b.tasks - a.tasks) as u32)
            )
        }
        _ => String::new(),
    };
    Ok((
        Section {
            rows,
            notes: vec![format!(
                "per-task cost: a batch of n `fill` tasks of {TASK_BYTES} B each (distinct \
                 targets), built, run (work description uploaded, one exec on 1 AICPU thread, \
                 statuses read back) and checked, over n; the floor is the empty-kernel \
                 launch→sync round trip above ({}), over n; the ratio is batch / round trip. \
                 {detail}{marginal}",
                report::duration(round_trip.median())
            )],
        },
        points,
    ))
}

fn cycles(env: &BenchEnv, device: &simpler_host::Device, cfg: &Config) -> Section {
    let Config {
        cycles,
        cycles_warmup,
        ..
    } = *cfg;
    let seen = memory::cycles(device, || env.builder(), cycles_warmup, cycles);
    let growth = seen.rss_growth();
    let live_after = seen.live_bytes.1;
    Section {
        rows: vec![Row {
            metric: format!("{cycles} runner create/drop cycles"),
            measured: format!(
                "{} live device; RSS {:+.1} KiB",
                report::bytes(live_after as i64),
                growth as f64 / 1024.0
            ),
            floor: format!(
                "RSS before {:.1} MiB",
                seen.rss_before as f64 / f64::from(1 << 20)
            ),
            ratio: String::new(),
            goal: "0 B live; RSS ≤ +1 MiB".into(),
            verdict: Verdict::of(live_after == 0 && growth <= 1 << 20),
        }],
        notes: vec![format!(
            "cycles: {cycles_warmup} warm-up then {} create/drop of a runner with the artifacts' \
             runtime SO (cache hit) while the test holds the device open; live device \
             allocations {} → {}, bytes {} → {}; RSS {} → {}",
            seen.count,
            seen.live_allocations.0,
            seen.live_allocations.1,
            report::bytes(seen.live_bytes.0 as i64),
            report::bytes(seen.live_bytes.1 as i64),
            report::bytes(seen.rss_before as i64),
            report::bytes(seen.rss_after as i64),
        )],
    }
}

/// The launch→sync round trip against its IPC floor; also returns the
/// host's round trips (`DeviceRunner::exec` of the empty work), the floor
/// of the per-task curve.
fn round_trip(env: &BenchEnv, cfg: &Config) -> anyhow::Result<(Section, Samples)> {
    let Config {
        round,
        round_trips,
        warmup,
        ..
    } = *cfg;
    let sim = env.sim_api();
    let stream = RawStream::new(sim, SIM_DEVICE);
    let mut launch = SimLaunch::new(env, &stream)?;
    let raw = launch.raw();
    let mut peer = EchoPeer::spawn().context("cannot start the IPC echo child")?;

    // In rounds, so that all four see the same load. The channel ping goes
    // to the calling thread's current device, which the host must not see
    // change under it: it runs on a thread of its own, asked for a round
    // at a time.
    let (mut ipc, mut bare, mut host) = (vec![], vec![], vec![]);
    let channel = std::thread::scope(|s| {
        let (ask, asked) = mpsc::channel::<usize>();
        let (answer, answers) = mpsc::channel::<Vec<Duration>>();
        s.spawn(move || {
            assert_eq!(sim.set_device(SIM_DEVICE), Ok(()), "aclrtSetDevice");
            for n in asked {
                let times = (0..n).map(|_| time(|| launch::ping(sim, 1))).collect();
                if answer.send(times).is_err() {
                    break;
                }
            }
            assert_eq!(sim.reset_device(SIM_DEVICE), Ok(()), "aclrtResetDevice");
        });
        let pings = |n| {
            ask.send(n).expect("the ping thread is running");
            answers.recv().expect("the ping thread answers")
        };
        for _ in 0..warmup {
            peer.round_trip();
            raw.call();
            launch.host.exec();
        }
        pings(warmup);
        let mut channel = Vec::with_capacity(round_trips);
        for _ in 0..round_trips / round {
            ipc.extend((0..round).map(|_| time(|| peer.round_trip())));
            bare.extend((0..round).map(|_| time(|| raw.call())));
            host.extend((0..round).map(|_| time(|| launch.host.exec())));
            channel.extend(pings(round));
        }
        // Returning drops `ask`, which ends the ping thread's loop.
        channel
    });
    let (ipc, bare, host, channel) = (
        Samples::new(ipc),
        Samples::new(bare),
        Samples::new(host),
        Samples::new(channel),
    );
    drop(raw);
    drop(launch);
    drop(stream);

    // The floor: the faster of the two ping-pongs over this transport (the
    // bare one, and the simulator's own channel answered by the device
    // process), so that a bad run of either cannot flatter the ratio.
    let (floor_name, floor) = if channel.median() < ipc.median() {
        ("simulator channel ping", channel.median())
    } else {
        ("IPC ping-pong", ipc.median())
    };
    let ratio = host.median().as_secs_f64() / floor.as_secs_f64();
    let line = |name: &str, s: &Samples| {
        format!(
            "{name}: median {}, p90 {}, p99 {}, mean {}",
            report::duration(s.median()),
            report::duration(s.p90()),
            report::duration(s.quantile(0.99)),
            report::duration(s.mean())
        )
    };
    let section = Section {
        rows: vec![Row {
            metric: "empty-kernel launch→sync round trip".into(),
            measured: report::duration(host.median()),
            floor: format!("{floor_name} {}", report::duration(floor)),
            ratio: report::ratio(host.median().as_secs_f64(), floor.as_secs_f64()),
            goal: "≤ 1.5×".into(),
            verdict: Verdict::of(ratio <= 1.5),
        }],
        notes: vec![format!(
            "round trips, {round_trips} each, in rounds of {round}; the floor is the faster \
             ping-pong: {}",
            [
                line("IPC ping-pong (SOCK_SEQPACKET, forked echo child)", &ipc),
                line("simulator channel ping (simpler_sim_ping)", &channel),
                line(
                    "bare rtAicpuKernelLaunchExWithArgs + sync, prebuilt block",
                    &bare
                ),
                line("host `DeviceRunner::exec`, empty work description", &host),
            ]
            .join("; ")
        )],
    };
    Ok((section, host))
}

/// The host's own cost per exec, two ways: with the simulator's launch
/// call (the device's work and the sync excluded), and with a launch that
/// does nothing but copy the block (the host's overhead alone).
fn host_launch_cost(env: &BenchEnv, cfg: &Config) -> anyhow::Result<Section> {
    let Config {
        host_batch_calls,
        host_batches,
        round_trips,
        warmup,
        ..
    } = *cfg;
    let stream = RawStream::new(env.sim_api(), SHIM_DEVICE);
    let mut shim = ShimLaunch::new(env, &stream)?;
    let raw = shim.raw();

    // Launch calls into the simulator, each waited for untimed.
    shim.set_mode(ShimMode::SyncDeferred);
    let (mut host_sim, mut bare_sim) = (vec![], vec![]);
    for i in 0..warmup + round_trips {
        // Which goes first alternates, so neither always follows the
        // other's completion.
        let (host, bare) = if i % 2 == 0 {
            let host = time(|| shim.host.exec());
            shim.sync_deferred();
            (host, time(|| raw.call()))
        } else {
            let bare = time(|| raw.call());
            shim.sync_deferred();
            (time(|| shim.host.exec()), bare)
        };
        shim.sync_deferred();
        if i >= warmup {
            host_sim.push(host);
            bare_sim.push(bare);
        }
    }
    let (host_sim, bare_sim) = (Samples::new(host_sim), Samples::new(bare_sim));

    // Batches, as one call is too short for the clock; the same number of
    // calls per batch on both sides, so batch times compare directly.
    shim.set_mode(ShimMode::Immediate);
    // Each call after the caches were flushed, as a thread that slept in a
    // sync finds them at worst.
    let mut flush = cache_flusher();
    let (mut host_cold, mut bare_cold) = (vec![], vec![]);
    for _ in 0..host_batches {
        flush();
        host_cold.push(time(|| shim.host.exec()));
        flush();
        bare_cold.push(time(|| raw.call()));
    }
    let (host_cold, bare_cold) = (Samples::new(host_cold), Samples::new(bare_cold));
    let (mut host, mut bare) = (vec![], vec![]);
    for _ in 0..host_batches {
        host.push(time_batch(host_batch_calls, || shim.host.exec()));
        bare.push(time_batch(host_batch_calls, || raw.call()));
    }
    shim.set_mode(ShimMode::Forward);
    drop(raw);
    drop(shim);
    drop(stream);
    let per_call = |s: &Samples| s.median().as_secs_f64() * 1e9 / f64::from(host_batch_calls);
    let (host, bare) = (Samples::new(host), Samples::new(bare));
    let (host_ns, bare_ns) = (per_call(&host), per_call(&bare));

    let sim_ratio = host_sim.median().as_secs_f64() / bare_sim.median().as_secs_f64();
    Ok(Section {
        rows: vec![
            Row {
                metric: "host-side cost per launch, simulator launch call, sync excluded".into(),
                measured: report::duration(host_sim.median()),
                floor: format!("bare FFI launch {}", report::duration(bare_sim.median())),
                ratio: report::ratio(
                    host_sim.median().as_secs_f64(),
                    bare_sim.median().as_secs_f64(),
                ),
                goal: "≤ 1.10×".into(),
                verdict: Verdict::of(sim_ratio <= 1.10),
            },
            // Both sides are a few nanoseconds: their ratio would be
            // noise, so this row gives the host's cost in nanoseconds.
            Row {
                metric: "host-side cost per launch, launch that only copies the block".into(),
                measured: format!("{host_ns:.1} ns (+{:.1} ns)", host_ns - bare_ns),
                floor: format!("bare FFI launch+sync {bare_ns:.1} ns"),
                ratio: String::new(),
                goal: "none (absolute)".into(),
                verdict: Verdict::NoGoal,
            },
        ],
        notes: vec![
            format!(
                "host-side cost: `DeviceRunner::exec` vs the same two C calls through the same \
                 function pointers with a block built once. Simulator launch call: the sync \
                 returns at once and the launch is waited for untimed after each call, \
                 {round_trips} each, alternating call by call, in alternating order; p90 {} vs {}. \
                 Copy-only launch: the launch copies the {}-byte block and returns, the sync \
                 returns at once ({host_batches} alternating batches of {host_batch_calls} \
                 calls): the host adds {:.1} ns per launch",
                report::duration(host_sim.p90()),
                report::duration(bare_sim.p90()),
                size_of::<simpler_abi::ExecLaunchArgs>(),
                host_ns - bare_ns
            ),
            format!(
                "copy-only launch with the CPU caches flushed before each call ({} MiB \
                 walked; {host_batches} calls each): host {} vs bare {} — the host's cost \
                 grows with the memory it touches",
                CACHE_FLUSH_BYTES >> 20,
                report::duration(host_cold.median()),
                report::duration(bare_cold.median()),
            ),
        ],
    })
}

/// The time `f` takes.
fn time(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

/// The 1-minute load average, from `/proc/loadavg`: how busy the shared
/// machine was, for reading the numbers.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Bytes walked to push everything else out of the CPU caches.
const CACHE_FLUSH_BYTES: usize = 16 << 20;

/// A function that writes one byte per cache line of a
/// [`CACHE_FLUSH_BYTES`] buffer, evicting what the caches held.
fn cache_flusher() -> impl FnMut() {
    let mut buffer = vec![0u8; CACHE_FLUSH_BYTES];
    let mut round = 0u8;
    move || {
        round = round.wrapping_add(1);
        for byte in buffer.iter_mut().step_by(64) {
            *byte = byte.wrapping_add(round);
        }
        std::hint::black_box(&buffer);
    }
}
