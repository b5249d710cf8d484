//! `simpler-sim-aicpu`: the emulated AICPU OS of one simulated device, one
//! process per (host process, device). Started by `libsimpler_cann_sim.so`
//! on `aclrtSetDevice` with the device memory (a memfd) and the control
//! socket as inherited descriptors; exits when the control socket closes.
//!
//! Threads: the `aicpu<N>` workers read requests and run kernels; the main
//! thread is the op-timeout watchdog (see `engine`).
//!
//! Layout: `main` starts the device and hands the `engine` (workers,
//! streams, timeouts, the channel) a `router`, which serves each kernel
//! type — `kfc` (type 5) and `scheduler` (type 2) — over the device
//! `memory`; `launch` is the leaf they all speak (`Ready`, `Outcome`).
//! `ffi` holds the calls into C (kernel SOs, `DlogRecord`), `sys` the libc
//! calls and the raw mapping; `log`, `sink`, `wake` and `faults` are
//! small helpers. What the process shares with the library (messages,
//! command line, filesystem layout) is `simpler-sim-protocol`.

mod engine;
mod faults;
mod ffi;
mod kfc;
mod launch;
mod log;
mod memory;
mod router;
mod scheduler;
mod sink;
mod sys;
mod wake;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use simpler_abi::artifacts::files;
use simpler_abi::names::PREINSTALL_DIR_ENV;
use simpler_sim_protocol::channel;
use simpler_sim_protocol::layout;
use simpler_sim_protocol::{reply, DeviceCommand, Doorbell, Reply};

use crate::engine::Engine;
use crate::kfc::{Kfc, KfcFaults};
use crate::memory::DeviceMemory;
use crate::scheduler::Scheduler;

/// The engine of this device process, over its kernel types.
type DeviceEngine = Engine<router::Device>;

/// Creates the device filesystem, maps memory and builds the engine.
fn start(cmd: &DeviceCommand, ctl: OwnedFd) -> Result<DeviceEngine, (OwnedFd, String)> {
    let preinstall = layout::preinstall_in(&cmd.device_dir);
    let tmp = layout::tmp_in(&cmd.device_dir);
    let log_dir = layout::log_in(&cmd.device_dir);
    for dir in [&tmp, &log_dir] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Err((ctl, format!("cannot create {}: {e}", dir.display())));
        }
    }
    let log_file = layout::log_file_in(&cmd.device_dir);
    if let Err(e) = log::open(&log_file) {
        eprintln!(
            "{}: cannot open {}: {e}; logging to stderr",
            files::SIM_DEVICE_BIN,
            log_file.display()
        );
    }
    // A preinstall directory that cannot be created is the dispatcher's
    // error to report (with its stage and errno), as on a broken device.
    if let Err(e) = std::fs::create_dir_all(&preinstall) {
        log::note(
            log::ERROR,
            &format!(
                "cannot create the preinstall directory {}: {e}",
                preinstall.display()
            ),
        );
    }
    // Single-threaded still: no other thread reads the environment.
    std::env::set_var(PREINSTALL_DIR_ENV, &preinstall);
    let window = match sys::Mapping::map(sys::adopt(cmd.mem_fd), cmd.base, cmd.size) {
        Ok(window) => window,
        Err(e) => {
            return Err((
                ctl,
                format!(
                    "cannot map device memory at {:#x} ({} bytes): {e}",
                    cmd.base, cmd.size
                ),
            ))
        }
    };
    let host_bell = Doorbell::from(sys::adopt(cmd.bell_fd));
    let device = router::Device {
        memory: DeviceMemory::new(window),
        kfc: Kfc::new(
            tmp,
            KfcFaults {
                fail_dispatcher_write: cmd.fail_dispatcher_write,
                old_cann: cmd.old_cann,
                kill_during_write: cmd
                    .kill_during_write
                    .map(|bytes| (preinstall.clone(), bytes)),
            },
        ),
        scheduler: Scheduler::new(preinstall.clone()),
    };
    let spin = std::time::Duration::from_micros(cmd.spin_us.into());
    let engine = match Engine::new(cmd.threads, spin, host_bell, ctl, device) {
        Ok(engine) => engine,
        Err((ctl, e)) => return Err((ctl, format!("cannot create the AICPU engine: {e}"))),
    };
    log::note(
        log::INFO,
        &format!(
            "device {} up: memory {:#x}+{:#x}, {} AICPU threads, preinstall {}",
            cmd.device,
            cmd.base,
            cmd.size,
            cmd.threads,
            preinstall.display()
        ),
    );
    Ok(engine)
}

/// Tells the host the device could not start, and ends.
fn start_failed(ctl: &OwnedFd, why: &str) -> ! {
    log::note(log::ERROR, why);
    let _ = channel::send(ctl.as_fd(), &Reply::new(reply::START_FAILED, 0, why));
    std::process::exit(1);
}

fn main() {
    let cmd = match DeviceCommand::parse(std::env::args_os().skip(1)) {
        Ok(cmd) => cmd,
        Err(why) => {
            eprintln!(
                "{}: {why}\nThis program is started by {}; see docs/simulator.md.",
                files::SIM_DEVICE_BIN,
                files::SIM_LIB
            );
            std::process::exit(2);
        }
    };
    let ctl = sys::adopt(cmd.ctl_fd);
    let engine = match start(&cmd, ctl) {
        Ok(engine) => Arc::new(engine),
        Err((ctl, why)) => start_failed(&ctl, &why),
    };
    if let Err(e) = engine.spawn_workers() {
        let why = format!("cannot start {} AICPU threads: {e}", cmd.threads);
        start_failed(engine.channel(), &why);
    }
    engine.send_reply(&Reply::new(reply::READY, 0, ""));
    engine.watch()
}
