//! The latency metrics of the benchmark table under criterion, next to
//! their floors:
//!
//! - `round_trip`: IPC ping-pong floor, bare launch→sync, host exec (empty
//!   kernel on the simulator);
//! - `host_launch_cost`: bare launch+sync vs host exec through the launch
//!   shim, with the simulator's launch call (sync untimed) and with a
//!   launch that only copies its block (host-side cost only);
//! - `fnv1a_16MiB`: `simpler_abi::fingerprint` vs the `fnv` crate;
//! - `runner`: cold bootstrap of a 1 MiB runtime SO, its in-process floor,
//!   warm runner creation (prepared builder).
//!
//! Run: `cargo bench -p simpler-bench` (the artifacts of `cargo xtask
//! build`, or `SIMPLER_ARTIFACTS_DIR`). `cargo run --release -p
//! simpler-bench` prints every metric, ratios included, in one table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use simpler_bench::bootstrap::{self, RUNTIME_SIZE};
use simpler_bench::ipc::EchoPeer;
use simpler_bench::launch::{RawStream, ShimLaunch, ShimMode, SimLaunch};
use simpler_bench::setup::{BenchEnv, SHIM_DEVICE, SIM_DEVICE};
use simpler_bench::throughput;

fn main() {
    // First, while this is the only thread: it sets SIMPLER_SIM_ROOT.
    let env = BenchEnv::new().expect("load the simulator");
    let device = env.open_device().expect("open the simulator device");
    let mut c = Criterion::default().configure_from_args();
    round_trip(&mut c, &env);
    host_launch_cost(&mut c, &env);
    fnv(&mut c);
    runner(&mut c, &env);
    drop(device);
    c.final_summary();
}

fn round_trip(c: &mut Criterion, env: &BenchEnv) {
    let stream = RawStream::new(env.sim_api(), SIM_DEVICE);
    let mut launch = SimLaunch::new(env, &stream).expect("build a runner");
    let raw = launch.raw();
    let mut peer = EchoPeer::spawn().expect("fork the echo child");
    let mut group = c.benchmark_group("round_trip");
    group.bench_function("ipc_floor", |b| b.iter(|| peer.round_trip()));
    group.bench_function("bare_launch_sync", |b| b.iter(|| raw.call()));
    group.bench_function("host_exec", |b| b.iter(|| launch.host.exec()));
    group.finish();
}

fn host_launch_cost(c: &mut Criterion, env: &BenchEnv) {
    let stream = RawStream::new(env.sim_api(), SHIM_DEVICE);
    let mut shim = ShimLaunch::new(env, &stream).expect("build a runner through the shim");
    let raw = shim.raw();
    let mut group = c.benchmark_group("host_launch_cost");

    // The simulator's launch call, each launch waited for untimed.
    shim.set_mode(ShimMode::SyncDeferred);
    group.bench_function("bare_ffi_sim_call", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let started = Instant::now();
                    raw.call();
                    let elapsed = started.elapsed();
                    shim.sync_deferred();
                    elapsed
                })
                .sum()
        })
    });
    group.bench_function("host_exec_sim_call", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                shim.host.exec();
                total += started.elapsed();
                shim.sync_deferred();
            }
            total
        })
    });

    // A launch that only copies its block.
    shim.set_mode(ShimMode::Immediate);
    group.bench_function("bare_ffi_copy_only", |b| b.iter(|| raw.call()));
    group.bench_function("host_exec_copy_only", |b| b.iter(|| shim.host.exec()));
    group.finish();
    shim.set_mode(ShimMode::Forward);
}

fn fnv(c: &mut Criterion) {
    let buffer = throughput::buffer();
    let mut group = c.benchmark_group("fnv1a_16MiB");
    group.throughput(Throughput::Bytes(buffer.len() as u64));
    group.sample_size(10);
    group.bench_function("simpler_abi_fingerprint", |b| {
        b.iter(|| throughput::simpler(&buffer))
    });
    group.bench_function("fnv_crate", |b| b.iter(|| throughput::fnv_crate(&buffer)));
    group.finish();
}

fn runner(c: &mut Criterion, env: &BenchEnv) {
    let runtime = env.runtime_bytes();
    let preinstall = env.root().preinstall(SIM_DEVICE as u32);
    let floor_dir = env.root().path().join("criterion-floor");
    std::fs::create_dir_all(&floor_dir).expect("floor directory");
    // Every cold build installs and loads a new 1 MiB SO in the device
    // process for good, so keep their number near a hundred: flat
    // sampling, few samples, a short measurement time.
    let mut group = c.benchmark_group(format!("runner_{}MiB", RUNTIME_SIZE >> 20));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(500));
    let mut seed = 10u64 << 32;
    group.bench_function("cold_bootstrap", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                seed += 1;
                let (runner, build) = bootstrap::cold(
                    env.builder(),
                    bootstrap::padded(&runtime, RUNTIME_SIZE, seed),
                );
                total += build.total;
                bootstrap::remove_installed(&preinstall, &runner);
            }
            total
        })
    });
    group.bench_function("bootstrap_floor", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    seed += 1;
                    bootstrap::floor(&floor_dir, &bootstrap::padded(&runtime, RUNTIME_SIZE, seed))
                })
                .sum()
        })
    });
    seed += 1;
    let warm_bytes = bootstrap::padded(&runtime, RUNTIME_SIZE, seed);
    drop(bootstrap::cold(env.builder(), warm_bytes.clone()));
    let prepared = env
        .builder()
        .runtime_bytes(warm_bytes.clone())
        .prepare()
        .expect("prepare a builder");
    group.bench_function("warm_creation", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| bootstrap::warm(prepared.clone()).total)
                .sum()
        })
    });
    group.bench_function("fingerprint_only", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                black_box(simpler_abi::fingerprint(black_box(&warm_bytes)));
            }
            started.elapsed()
        })
    });
    group.finish();
}
