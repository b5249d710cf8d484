//! Starting a device process and stopping it: the command line, the
//! descriptors it inherits, the watcher thread that spawns it (so that the
//! process dies with that thread), waiting for its `READY`, and reaping.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use simpler_abi::sim::env;
use simpler_sim_protocol::channel;
use simpler_sim_protocol::{reply, DeviceCommand, Doorbell, Reply};

use super::reap::{reap, EXIT_GRACE};
use super::{device_base, lock, Counters, Device, State};
use crate::config::Config;
use crate::error::*;
use crate::sys::{self, SharedMemory};

/// How long `aclrtSetDevice` waits for a device process to report ready
/// (generous: under qemu-user the start takes a few hundred milliseconds
/// on a quiet machine and much more on a loaded one).
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl Device {
    /// Starts device `id`'s process and waits until it is ready.
    pub fn start(
        id: u32,
        config: &Config,
        counters: Arc<Counters>,
        stream: u64,
    ) -> AclResult<Arc<Self>> {
        let internal = |what: String| AclError::new(ACL_ERROR_RT_DRV_INTERNAL_ERROR, what);
        let bin = config.device_bin()?;
        if !bin.is_file() {
            return Err(internal(format!(
                "device process binary {} does not exist (set {})",
                bin.display(),
                env::AICPU_BIN
            )));
        }
        if config.launcher.is_empty() {
            check_native(&bin)?;
        }
        let mem = SharedMemory::create(&format!("simpler-sim-device{id}"), config.device_mem)
            .map_err(|e| internal(format!("cannot create device {id}'s memory: {e}")))?;
        let (host_end, device_end) = channel::pair()
            .map_err(|e| internal(format!("cannot create the control channel: {e}")))?;
        let base = device_base(id);
        let mut command = match config.launcher.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let bell = Doorbell::new()
            .map_err(|e| internal(format!("cannot create the device's doorbell: {e}")))?;
        let line = DeviceCommand {
            device: id,
            mem_fd: mem.fd().as_raw_fd(),
            ctl_fd: device_end.as_raw_fd(),
            bell_fd: bell.as_fd().as_raw_fd(),
            base,
            size: config.device_mem,
            device_dir: config.device_dir(id),
            threads: config.aicpu_threads,
            fail_dispatcher_write: config.faults.dispatcher_write,
            old_cann: config.stack.old_cann,
            kill_during_write: config.faults.kill_during_write,
            spin_us: config.spin_us,
        };
        command.args(line.to_args());
        // Hand exactly these descriptors to the device process, and let it
        // die with the thread that starts it (the device's watcher thread,
        // which lives as long as the host process needs the device); the
        // closed channel is the second, portable path.
        sys::inherit_and_die_with_parent(&mut command, [line.mem_fd, line.ctl_fd, line.bell_fd]);

        let host_end = Arc::new(host_end);
        let (started_tx, started_rx) = mpsc::channel::<Result<u32, String>>();
        let (device_tx, device_rx) = mpsc::channel::<Arc<Device>>();
        let reader_fd = Arc::clone(&host_end);
        let bin_name = bin.display().to_string();
        let watcher = std::thread::Builder::new()
            .name(format!("simpler-sim-dev{id}"))
            .spawn(move || {
                let mut child = match command.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = started_tx.send(Err(format!("cannot start {bin_name}: {e}")));
                        return;
                    }
                };
                // Our copy of the device's end must close, or the device's
                // death would never read as end of file here.
                drop(device_end);
                let pid = child.id();
                match channel::recv::<Reply>(reader_fd.as_fd()) {
                    Ok(Some(r)) if r.kind == reply::READY => {
                        let _ = started_tx.send(Ok(pid));
                    }
                    other => {
                        let why = match other {
                            Ok(Some(r)) => r.message(),
                            Ok(None) => "it closed its control channel".to_owned(),
                            Err(e) => format!("control channel error: {e}"),
                        };
                        let status = reap(&mut child, EXIT_GRACE);
                        let _ = started_tx.send(Err(format!(
                            "device process {bin_name} failed to start: {why}; it {status}"
                        )));
                        return;
                    }
                }
                let Ok(device) = device_rx.recv() else {
                    reap(&mut child, EXIT_GRACE);
                    return;
                };
                device.watch(child);
            })
            .map_err(|e| internal(format!("cannot spawn the device watcher thread: {e}")))?;

        let pid = match started_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(pid)) => pid,
            Ok(Err(why)) => {
                let _ = watcher.join();
                return Err(internal(why));
            }
            Err(_) => {
                // Wakes the watcher, which then reaps the process.
                channel::shut_down(&host_end);
                let _ = watcher.join();
                return Err(internal(format!(
                    "device process {} did not report ready within {START_TIMEOUT:?}",
                    bin.display()
                )));
            }
        };
        counters.starts.fetch_add(1, Ordering::Relaxed);
        let device = Arc::new(Self {
            id,
            base,
            size: config.device_mem,
            default_stream: stream,
            pid,
            mem,
            ctl: host_end,
            bell,
            state: Mutex::new(State::new(config.device_mem, stream)),
            cond: Condvar::new(),
            send_order: Mutex::new(()),
            counters,
            watcher: Mutex::new(Some(watcher)),
            spin: Duration::from_micros(config.spin_us.into()),
        });
        // The watcher owns the only other reference until the device exits.
        device_tx
            .send(Arc::clone(&device))
            .map_err(|_| internal("the device watcher thread ended early".to_owned()))?;
        Ok(device)
    }

    /// Stops the device process (closing its channel) and waits until it is
    /// reaped. Launches still in flight are abandoned.
    pub fn stop(&self) {
        self.begin_stop();
        self.finish_stop();
    }

    /// The first half of [`Device::stop`]: closes the channel, so the
    /// process exits (or is killed by the watcher after its grace). Several
    /// devices begun at once are stopped in the time of one.
    pub fn begin_stop(&self) {
        lock(&self.state).closing = true;
        // The device process reads end of file and exits; our watcher sees
        // the hang-up.
        channel::shut_down(&self.ctl);
    }

    /// The second half of [`Device::stop`]: waits until the watcher has
    /// reaped the process.
    pub fn finish_stop(&self) {
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(watcher) = watcher {
            if watcher.thread().id() != std::thread::current().id() {
                let _ = watcher.join();
            }
        }
    }
}

/// ELF `e_machine` of the code running this library.
const HOST_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    62
} else if cfg!(target_arch = "aarch64") {
    183
} else {
    0
};

/// Refuses a device binary this machine cannot run without a launcher
/// (exec would fail, or hand it to /bin/sh, with a useless message).
fn check_native(bin: &Path) -> AclResult<()> {
    let fail = |why: String| Err(AclError::new(ACL_ERROR_RT_DRV_INTERNAL_ERROR, why));
    match crate::machine::elf_machine(bin) {
        None => fail(format!(
            "device process binary {} is not an ELF file",
            bin.display()
        )),
        Some(m) if m != HOST_MACHINE => fail(format!(
            "device process binary {} is for ELF machine {m}, this host is {HOST_MACHINE}: \
             set {} (e.g. \"qemu-aarch64 -L /usr/aarch64-linux-gnu\")",
            bin.display(),
            env::AICPU_LAUNCHER
        )),
        Some(_) => Ok(()),
    }
}
