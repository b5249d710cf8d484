//! Launch→sync round trip of an empty AICPU kernel on the simulator, next to
//! two floors measured in the same run:
//!
//! - `ipc`: a raw `SOCK_SEQPACKET` ping-pong between this process and a
//!   child process blocked in `recv` (the transport alone): the same floor
//!   as `cargo xtask bench`'s, [`simpler_bench::ipc::EchoPeer`];
//! - `channel`: `simpler_sim_ping`, a round trip over the simulator's own
//!   control channel, answered by the AICPU worker the request wakes
//!   (transport plus the library's and the device's bookkeeping);
//! - `launch`: `rtAicpuKernelLaunchExWithArgs` + `aclrtSynchronizeStream`
//!   of an empty kernel on 1 AICPU thread (adds the argument copy into
//!   device memory, the stream bookkeeping and the kernel call).
//!
//! The three take turns in rounds, so a change in the machine's load during
//! the run hits all of them alike.
//!
//! Run: `cargo bench -p simpler-cann-sim --bench launch_latency [-- ITERS]`
//! (uses the artifacts of `cargo xtask build`, or `SIMPLER_ARTIFACTS_DIR`;
//! the simulator's environment applies, e.g. `SIMPLER_SIM_AICPU_LAUNCHER`).

use std::ffi::c_void;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use simpler_abi::AicpuArgsEx;
use simpler_bench::ipc::EchoPeer;
use simpler_bench::launch::Launch;

type SetDevice = unsafe extern "C" fn(i32) -> i32;
type CreateStream = unsafe extern "C" fn(*mut *mut c_void) -> i32;
type Sync = unsafe extern "C" fn(*mut c_void) -> i32;
type Ping = unsafe extern "C" fn(u32) -> i32;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iters: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    // `ipc`, `channel` or `launch` as an argument runs only that part (for
    // counting context switches or syscalls of one path with perf/strace).
    let only = args.iter().skip(1).find(|a| PARTS.contains(&a.as_str()));
    let runs = |part: &str| only.is_none_or(|o| o == part);

    let root = tempfile::tempdir().expect("temp root");
    // Single-threaded still: the library reads this at first use.
    std::env::set_var("SIMPLER_SIM_ROOT", root.path());
    install_empty_kernel(&root.path().join("device0/preinstall"));

    let lib_path = simpler_testkit::host_artifacts().sim_lib();
    // SAFETY: loading the simulator library has no preconditions.
    let lib = unsafe { libloading::Library::new(&lib_path) }.expect("load the simulator");
    // SAFETY: the symbols have these C signatures (simpler_cann_sim.h).
    let (set_device, create_stream, sync, ping, launch) = unsafe {
        (
            *lib.get::<SetDevice>(b"aclrtSetDevice\0").unwrap(),
            *lib.get::<CreateStream>(b"aclrtCreateStream\0").unwrap(),
            *lib.get::<Sync>(b"aclrtSynchronizeStream\0").unwrap(),
            *lib.get::<Ping>(b"simpler_sim_ping\0").unwrap(),
            *lib.get::<Launch>(b"rtAicpuKernelLaunchExWithArgs\0")
                .unwrap(),
        )
    };
    let mut stream = std::ptr::null_mut();
    // SAFETY: plain arguments; `stream` is writable.
    unsafe {
        assert_eq!(set_device(0), 0);
        assert_eq!(create_stream(&mut stream), 0);
    }

    let mut block = [0u8; 144];
    block[16..22].copy_from_slice(b"sim_ok");
    block[80..80 + 22].copy_from_slice(b"libsim_test_kernels.so");
    let info = AicpuArgsEx {
        args: block.as_ptr() as u64,
        args_size: block.len() as u32,
        so_name_addr_offset: 80,
        kernel_name_addr_offset: 16,
        ..AicpuArgsEx::default()
    };

    let mut echo = EchoPeer::spawn().expect("start the echo child");
    let mut parts: Vec<Part<'_>> = Vec::new();
    if runs("ipc") {
        parts.push(("ipc", Box::new(|| echo.round_trip())));
    }
    if runs("channel") {
        parts.push((
            "channel",
            // SAFETY: the current device is set.
            Box::new(|| assert_eq!(unsafe { ping(1) }, 0)),
        ));
    }
    if runs("launch") {
        parts.push((
            "launch",
            Box::new(|| {
                // SAFETY: `info` describes the live `block`; `stream` is live.
                unsafe {
                    assert_eq!(
                        launch(
                            2,
                            c"empty".as_ptr(),
                            1,
                            &info,
                            std::ptr::null_mut(),
                            stream,
                            0
                        ),
                        0
                    );
                    assert_eq!(sync(stream), 0);
                }
            }),
        ));
    }
    let stats = measure(iters, &mut parts);

    println!(
        "launch→sync of an empty kernel vs IPC floors, {iters} round trips each \
         (after {WARMUP} warm-up), interleaved in {ROUNDS} rounds:"
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10}",
        "", "median", "p90", "p99", "mean"
    );
    for ((name, _), d) in parts.iter().zip(&stats) {
        println!(
            "{name:<10} {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>8.1}µs",
            d.median, d.p90, d.p99, d.mean
        );
    }
    if let [ipc, channel, kernel] = &stats[..] {
        println!(
            "launch / ipc median: {:.2}x; channel / ipc median: {:.2}x",
            kernel.median / ipc.median,
            channel.median / ipc.median
        );
    }
    if simpler_bench::cpu::allowed().map_or(0, |cpus| cpus.len()) > 1 {
        println!(
            "note: not pinned to one CPU. Where waking a thread on an idle CPU is slow (VMs \
             with halted vCPUs), results depend on where each pair of threads landed; \
             `taskset -c N` compares all parts on one CPU (docs/simulator.md)."
        );
    }
    drop(parts);
    drop(echo);
    drop(lib);
}

const WARMUP: usize = 200;
/// The parts take turns this many times, so a change in the machine's load
/// during the run hits all of them alike.
const ROUNDS: usize = 20;
/// Parts that can be run alone.
const PARTS: [&str; 3] = ["ipc", "channel", "launch"];

/// A named round trip to time.
type Part<'a> = (&'static str, Box<dyn FnMut() + 'a>);

struct Stats {
    median: f64,
    p90: f64,
    p99: f64,
    mean: f64,
}

/// Times `iters` calls of each part, the parts taking turns in rounds.
fn measure(iters: usize, parts: &mut [Part<'_>]) -> Vec<Stats> {
    for (_, f) in parts.iter_mut() {
        for _ in 0..WARMUP {
            f();
        }
    }
    let mut times: Vec<Vec<Duration>> = parts.iter().map(|_| Vec::with_capacity(iters)).collect();
    for round in 0..ROUNDS {
        let n = iters / ROUNDS + usize::from(round < iters % ROUNDS);
        for ((_, f), times) in parts.iter_mut().zip(&mut times) {
            for _ in 0..n {
                let t = Instant::now();
                f();
                times.push(t.elapsed());
            }
        }
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    times
        .into_iter()
        .map(|mut times| {
            times.sort();
            let at = |q: f64| us(times[((times.len() as f64 * q) as usize).min(times.len() - 1)]);
            Stats {
                median: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                mean: times.iter().map(|&d| us(d)).sum::<f64>() / times.len() as f64,
            }
        })
        .collect()
}

/// Compiles `tests/kernels.c` (its `sim_ok` is the empty kernel), or copies
/// a prebuilt one named by `SIMPLER_BENCH_KERNELS` (an aarch64 build for a
/// device process under qemu).
fn install_empty_kernel(dir: &Path) {
    std::fs::create_dir_all(dir).expect("preinstall dir");
    if let Some(prebuilt) = std::env::var_os("SIMPLER_BENCH_KERNELS") {
        std::fs::copy(prebuilt, dir.join("libsim_test_kernels.so")).expect("copy the kernels");
        return;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernels.c");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(dir.join("libsim_test_kernels.so"))
        .arg(src)
        .status()
        .expect("run cc");
    assert!(status.success());
}
