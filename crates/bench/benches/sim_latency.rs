//! The simulator's own launch→sync round trip, without the host library or
//! the runtime SO, next to two floors measured in the same run:
//!
//! - `ipc`: a raw `SOCK_SEQPACKET` ping-pong between this process and a
//!   child process blocked in `recv` (the transport alone), the same floor
//!   as `cargo xtask bench`'s ([`simpler_bench::ipc::EchoPeer`]);
//! - `channel`: `simpler_sim_ping`, a round trip over the simulator's own
//!   control channel, answered by the AICPU worker the request wakes
//!   (transport plus the library's and the device's bookkeeping);
//! - `launch`: `rtAicpuKernelLaunchExWithArgs` + a sync without timeout of
//!   an empty type-2 kernel (`csrc/empty_kernel.c`) on 1 AICPU thread (adds
//!   the argument copy into device memory, the stream bookkeeping and the
//!   kernel call).
//!
//! The three take turns in rounds, so a change in the machine's load during
//! the run hits all of them alike.
//!
//! Run: `cargo bench -p simpler-bench --bench sim_latency [-- ITERS]
//! [ipc|channel|launch] [--kernel SO]` (the artifacts of `cargo xtask
//! build`, or `SIMPLER_ARTIFACTS_DIR`; the simulator's environment applies,
//! e.g. `SIMPLER_SIM_AICPU_LAUNCHER`). Naming one part runs only that one
//! (for counting context switches or system calls of one path with perf or
//! strace); `--kernel` installs a prebuilt empty kernel instead of the one
//! built with this crate (an aarch64 build, for a device process under
//! qemu).

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use simpler_abi::launch::{LAUNCH_KERNEL_NAME_OFFSET, LAUNCH_SO_NAME_OFFSET};
use simpler_abi::names::{name_field, text, KERNEL_TYPE_AICPU};
use simpler_abi::sim::env as sim_env;
use simpler_abi::{ExecLaunchArgs, KernelArgs};
use simpler_bench::ipc::EchoPeer;
use simpler_cann_sys::{Api, PreparedLaunch};
use simpler_testkit::SimRoot;

/// The kernel of `csrc/empty_kernel.c`.
const KERNEL: &CStr = c"simpler_bench_empty";
/// The file name it is installed under on the simulated device.
const KERNEL_SO: &str = "libsimpler_bench_empty_kernel.so";

const WARMUP: usize = 200;
/// The parts take turns this many times, so a change in the machine's load
/// during the run hits all of them alike.
const ROUNDS: usize = 20;
/// Parts that can be run alone.
const PARTS: [&str; 3] = ["ipc", "channel", "launch"];

/// What the command line asks for.
struct Options {
    iters: usize,
    only: Option<String>,
    kernel: Option<PathBuf>,
}

/// `ITERS`, a part name and `--kernel SO`, in any order; anything else
/// (cargo passes `--bench`) is ignored.
fn options() -> Options {
    let mut options = Options {
        iters: 5000,
        only: None,
        kernel: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--kernel" {
            let path = args.next().expect("--kernel needs the path of an SO");
            options.kernel = Some(path.into());
        } else if PARTS.contains(&arg.as_str()) {
            options.only = Some(arg);
        } else if let Ok(iters) = arg.parse() {
            options.iters = iters;
        }
    }
    options
}

fn main() {
    let Options {
        iters,
        only,
        kernel,
    } = options();
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);

    let root = SimRoot::new();
    // Single-threaded still: the library reads this at first use.
    std::env::set_var(sim_env::ROOT, root.path());
    install_kernel(&root.preinstall(0), kernel.as_deref());

    let sim_lib = simpler_testkit::host_artifacts().sim_lib();
    let api = Api::load(&[sim_lib]).expect("load the simulator");
    api.set_device(0).expect("aclrtSetDevice");
    let stream = api.create_stream().expect("aclrtCreateStream");
    let calls = api.stream_calls();
    let launch = PreparedLaunch::new(
        KERNEL_TYPE_AICPU,
        KERNEL,
        1,
        block(),
        LAUNCH_SO_NAME_OFFSET,
        LAUNCH_KERNEL_NAME_OFFSET,
    );

    let mut echo = EchoPeer::spawn().expect("start the echo child");
    let mut parts: Vec<Part<'_>> = Vec::new();
    if runs("ipc") {
        parts.push(("ipc", Box::new(|| echo.round_trip())));
    }
    if runs("channel") {
        parts.push(("channel", Box::new(|| simpler_bench::launch::ping(&api, 1))));
    }
    if runs("launch") {
        parts.push((
            "launch",
            Box::new(|| {
                assert_eq!(calls.launch_prepared(&launch, &stream), Ok(()));
                assert_eq!(calls.sync(&stream, -1), Ok(()));
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
    assert_eq!(api.destroy_stream(stream), Ok(()), "aclrtDestroyStream");
    assert_eq!(api.reset_device(0), Ok(()), "aclrtResetDevice");
}

/// The launch block naming [`KERNEL`] in [`KERNEL_SO`]: the layout of
/// every type-2 launch of the project (an unused payload, then the two
/// names), the exec launch's.
fn block() -> ExecLaunchArgs {
    let field = |name: &str| name_field(name).expect("the name fits its field");
    ExecLaunchArgs {
        payload: KernelArgs::default(),
        kernel_name: field(text(KERNEL)),
        so_name: field(KERNEL_SO),
    }
}

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

/// Copies the empty kernel (`prebuilt`, else the one built with this
/// crate) into the simulated device's preinstall directory `dir`.
fn install_kernel(dir: &Path, prebuilt: Option<&Path>) {
    std::fs::create_dir_all(dir).expect("preinstall dir");
    let src = prebuilt.unwrap_or(Path::new(env!("BENCH_EMPTY_KERNEL")));
    std::fs::copy(src, dir.join(KERNEL_SO))
        .unwrap_or_else(|e| panic!("cannot install {}: {e}", src.display()));
}
