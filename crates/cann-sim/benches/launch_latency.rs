//! Launch→sync round trip of an empty AICPU kernel on the simulator, next to
//! two floors measured in the same run:
//!
//! - `ipc`: a raw `SOCK_SEQPACKET` ping-pong between this process and a
//!   child process blocked in `recv` (the transport alone);
//! - `channel`: `simpler_sim_ping`, a round trip over the simulator's own
//!   control channel, answered by the device process's receiving thread
//!   (transport plus the library's reader thread and wake-up);
//! - `launch`: `rtAicpuKernelLaunchExWithArgs` + `aclrtSynchronizeStream`
//!   of an empty kernel on 1 AICPU thread (adds the argument copy, the
//!   stream executor and a pool worker hand-off).
//!
//! Run: `cargo bench -p simpler-cann-sim --bench launch_latency [-- ITERS]`
//! (uses the artifacts of `cargo xtask build`, or `SIMPLER_ARTIFACTS_DIR`;
//! the simulator's environment applies, e.g. `SIMPLER_SIM_AICPU_LAUNCHER`).

use std::ffi::{c_char, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use simpler_abi::AicpuArgsEx;

const ECHO_ARG: &str = "--echo-fd";
const MSG: usize = 64;

type SetDevice = unsafe extern "C" fn(i32) -> i32;
type CreateStream = unsafe extern "C" fn(*mut *mut c_void) -> i32;
type Sync = unsafe extern "C" fn(*mut c_void) -> i32;
type Ping = unsafe extern "C" fn(u32) -> i32;
type Launch = unsafe extern "C" fn(
    u32,
    *const c_char,
    u32,
    *const AicpuArgsEx,
    *mut c_void,
    *mut c_void,
    u32,
) -> i32;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == ECHO_ARG) {
        echo(args[pos + 1].parse().expect("fd"));
        return;
    }
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

    let ipc = runs("ipc").then(|| ipc_floor(iters));

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

    let channel = runs("channel").then(|| {
        measure(iters, |_| {
            // SAFETY: the current device is set.
            assert_eq!(unsafe { ping(1) }, 0);
        })
    });

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
    let launch_once = |_| {
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
    };
    let kernel = runs("launch").then(|| measure(iters, launch_once));

    println!("launch→sync of an empty kernel vs IPC floors, {iters} round trips each (after {WARMUP} warm-up):");
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10}",
        "", "median", "p90", "p99", "mean"
    );
    for (name, d) in [("ipc", &ipc), ("channel", &channel), ("launch", &kernel)] {
        if let Some(d) = d {
            println!(
                "{name:<10} {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>8.1}µs",
                d.median, d.p90, d.p99, d.mean
            );
        }
    }
    if let (Some(ipc), Some(channel), Some(kernel)) = (&ipc, &channel, &kernel) {
        println!(
            "launch / ipc median: {:.2}x; channel / ipc median: {:.2}x",
            kernel.median / ipc.median,
            channel.median / ipc.median
        );
    }
    drop(lib);
}

const WARMUP: usize = 200;
/// Parts that can be run alone.
const PARTS: [&str; 3] = ["ipc", "channel", "launch"];

struct Stats {
    median: f64,
    p90: f64,
    p99: f64,
    mean: f64,
}

fn measure(iters: usize, mut f: impl FnMut(usize)) -> Stats {
    for i in 0..WARMUP {
        f(i);
    }
    let mut times: Vec<Duration> = (0..iters)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| us(times[((times.len() as f64 * q) as usize).min(times.len() - 1)]);
    Stats {
        median: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        mean: times.iter().map(|&d| us(d)).sum::<f64>() / times.len() as f64,
    }
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

fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is writable.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: fresh descriptors we own.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn send_recv(fd: RawFd, buf: &mut [u8; MSG]) -> bool {
    // SAFETY: `buf` is a live buffer of MSG bytes.
    unsafe {
        libc::send(fd, buf.as_ptr().cast(), MSG, libc::MSG_NOSIGNAL) == MSG as isize
            && libc::recv(fd, buf.as_mut_ptr().cast(), MSG, 0) == MSG as isize
    }
}

/// Ping-pong with an echo child over a fresh socket pair.
fn ipc_floor(iters: usize) -> Stats {
    let (ours, theirs) = seqpacket_pair();
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.arg(ECHO_ARG).arg(fd.to_string());
    // SAFETY: only fcntl between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn the echo child");
    drop(theirs);
    let mut buf = [0u8; MSG];
    let stats = measure(iters, |_| assert!(send_recv(ours.as_raw_fd(), &mut buf)));
    // End of file ends the child.
    drop(ours);
    child.wait().expect("reap the echo child");
    stats
}

fn echo(fd: RawFd) {
    let mut buf = [0u8; MSG];
    loop {
        // SAFETY: `buf` is writable for MSG bytes; `fd` was handed to us.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), MSG, 0) };
        if n <= 0 {
            return;
        }
        // SAFETY: as above.
        if unsafe { libc::send(fd, buf.as_ptr().cast(), n as usize, libc::MSG_NOSIGNAL) } != n {
            return;
        }
    }
}
