//! KFC launches (kernel type 5), as CANN's `libaicpu_extend_kernels.so`
//! serves `DynTileFwkKernelServerInit`: the first dispatcher SO sent to this
//! device process is saved, opened and latched; every KFC launch then calls
//! its `DynTileFwkBackendKernelServerInit` with the argument block.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use simpler_abi::names::{
    DISPATCHER_INIT_SYMBOL, DISPATCHER_SYMBOLS, KFC_KERNEL_NAME, KFC_SO_NAME,
};
use simpler_abi::sim::env;
use simpler_abi::{fingerprint, BootstrapArgs, DeviceArgs};

use crate::faults;
use crate::ffi::{self, Kernel};
use crate::launch::{Outcome, Ready, Shape};
use crate::log;
use crate::memory::DeviceMemory;

/// `DynTileFwkBackendKernelServerInit` has the AICPU kernel shape: the
/// device address of the KFC argument block in, 0 for success out (an
/// `int`, read here as its 32 bits).
type Init = Kernel;

struct Latched {
    /// Fingerprint of the bytes that were saved.
    fingerprint: u64,
    /// The init entry point, or why the saved SO is unusable (sticky, as
    /// the latch is).
    init: Result<Init, String>,
}

/// How the KFC server misbehaves on purpose.
#[derive(Clone, Debug, Default)]
pub struct KfcFaults {
    /// `SIMPLER_SIM_FAIL_DISPATCHER_WRITE`.
    pub fail_dispatcher_write: bool,
    /// `SIMPLER_SIM_OLD_CANN`: this `libaicpu_extend_kernels` predates the
    /// KFC entry, so it serves no KFC launch.
    pub old_cann: bool,
    /// `SIMPLER_SIM_KILL_DURING_WRITE`: the preinstall directory to watch
    /// and the temp-file size at which the process kills itself.
    pub kill_during_write: Option<(PathBuf, u64)>,
}

/// The KFC server of this device process, with its one-shot latch.
pub struct Kfc {
    /// `<root>/device<N>/tmp`, where the dispatcher is saved.
    tmp: PathBuf,
    faults: KfcFaults,
    latched: Mutex<Option<Latched>>,
    /// Held across each init call: one at a time, as one latched
    /// dispatcher serves them (and the write fault's process-wide limit
    /// must not be restored under another call).
    calls: Mutex<()>,
}

impl Kfc {
    /// A server with nothing latched that saves dispatchers into `tmp`.
    pub fn new(tmp: PathBuf, faults: KfcFaults) -> Self {
        Self {
            tmp,
            faults,
            latched: Mutex::new(None),
            calls: Mutex::new(()),
        }
    }

    /// Saves, opens and resolves the dispatcher. Returns the latched state.
    fn save_and_open(&self, bytes: &[u8], outcome: &mut Outcome) -> Result<Latched, String> {
        let path = self.tmp.join(format!(
            "libaicpu_custom_dispatcher_{}.so",
            std::process::id()
        ));
        let saved = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
            .and_then(|mut f| f.write_all(bytes));
        if let Err(e) = saved {
            let _ = std::fs::remove_file(&path);
            return Err(format!(
                "cannot save the dispatcher SO to {}: {e}",
                path.display()
            ));
        }
        outcome.dispatcher_saves += 1;
        outcome.dlopens += 1;
        // Opening the dispatcher runs its initialisers, as CANN does.
        let opened = ffi::open(&path, ffi::Binding::Private);
        // The handle keeps the code mapped; the private file is not needed.
        let _ = std::fs::remove_file(&path);
        let fingerprint = fingerprint(bytes);
        let library = match opened {
            Ok(library) => library,
            Err(e) => {
                return Ok(Latched {
                    fingerprint,
                    init: Err(format!("cannot load the dispatcher SO: {e}")),
                })
            }
        };
        let missing: Vec<&str> = DISPATCHER_SYMBOLS
            .into_iter()
            .filter(|symbol| !ffi::exports(library, symbol))
            .collect();
        if !missing.is_empty() {
            return Ok(Latched {
                fingerprint,
                init: Err(format!(
                    "the dispatcher SO lacks the contract symbol(s) {}",
                    missing.join(", ")
                )),
            });
        }
        let init = ffi::kernel(library, DISPATCHER_INIT_SYMBOL).map_err(|e| e.to_string());
        log::note(
            log::INFO,
            &format!(
                "KFC: dispatcher SO saved ({} bytes, fingerprint {fingerprint:016x}) and loaded",
                bytes.len()
            ),
        );
        Ok(Latched { fingerprint, init })
    }

    /// Prepares one KFC launch of `so:kernel` with the argument block at
    /// `args`: checks it, saves and opens the dispatcher on the first one
    /// (the latch), and returns the latched init to call.
    pub fn prepare(
        &self,
        memory: &DeviceMemory,
        so: &str,
        kernel: &str,
        args: u64,
        args_size: u32,
    ) -> Result<Ready<Init>, Outcome> {
        let mut outcome = Outcome::default();
        if so != KFC_SO_NAME {
            return Err(outcome.exception(format!(
                "KFC launches are served by {KFC_SO_NAME}; so name {so:?} is not known"
            )));
        }
        if kernel != KFC_KERNEL_NAME {
            return Err(outcome.exception(format!("{KFC_SO_NAME} has no kernel {kernel:?}")));
        }
        if self.faults.old_cann {
            // The scheduler finds the SO but not the entry, before anything
            // of the launch is read: nothing is saved or latched.
            return Err(outcome.exception(format!(
                "Get KFC {KFC_KERNEL_NAME} api success, but func is nullptr ({}: the device's \
                 {KFC_SO_NAME} predates the KFC entry, which needs CANN 8.5.0 and driver 25.2.0)",
                env::OLD_CANN
            )));
        }
        let Some(block) = memory
            .read_pod::<BootstrapArgs>(args)
            .filter(|_| args_size >= 48)
        else {
            return Err(outcome.exception(format!(
                "the {args_size}-byte KFC argument block is too short"
            )));
        };
        let Some(device_args) = memory.read_pod::<DeviceArgs>(block.device_args) else {
            return Err(outcome.exception(format!(
                "device_args {:#x} (offset 40) is not inside device memory",
                block.device_args
            )));
        };
        let mut latch = self.latched.lock().unwrap_or_else(|e| e.into_inner());
        if latch.is_none() {
            let bytes = match memory
                .read(device_args.aicpu_so_bin, device_args.aicpu_so_len)
                .filter(|b| !b.is_empty())
            {
                Some(bytes) => bytes,
                None => {
                    return Err(outcome.exception(format!(
                    "the dispatcher SO at {:#x} ({} bytes) is empty or not inside device memory",
                    device_args.aicpu_so_bin, device_args.aicpu_so_len
                )))
                }
            };
            match self.save_and_open(&bytes, &mut outcome) {
                Ok(latched) => *latch = Some(latched),
                Err(why) => return Err(outcome.exception(why)),
            }
        } else if let Some(bytes) = memory.read(device_args.aicpu_so_bin, device_args.aicpu_so_len)
        {
            let sent = fingerprint(&bytes);
            let first = latch.as_ref().map_or(0, |l| l.fingerprint);
            if sent != first {
                log::note(
                    log::WARN,
                    &format!(
                        "KFC: this launch sent a different dispatcher SO (fingerprint {sent:016x}); \
                         reusing the first one ({first:016x}) as CANN's one-shot latch does"
                    ),
                );
            }
        }
        let init = match &latch.as_ref().expect("latched above").init {
            Ok(init) => *init,
            Err(why) => {
                log::note(log::ERROR, &format!("KFC: {why}"));
                return Err(outcome.exception(why.clone()));
            }
        };
        drop(latch);
        outcome.kfc_calls += 1;
        // On an AICPU worker like any kernel, so the op timeout applies.
        Ok(Ready {
            entry: init,
            shape: Shape::Single,
            label: DISPATCHER_INIT_SYMBOL,
            outcome,
        })
    }

    /// Calls the latched dispatcher's init on this AICPU worker, with the
    /// dispatcher-write faults around it when configured.
    pub fn call_init(&self, init: Init, args: u64) -> u32 {
        let _one = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        // Called with the device address of the KFC argument block, as CANN
        // calls it.
        let call = || {
            if self.faults.fail_dispatcher_write {
                faults::with_file_writes_failing(|| init.call(args))
            } else {
                init.call(args)
            }
        };
        match &self.faults.kill_during_write {
            Some((dir, bytes)) => faults::killed_when_a_temp_file_reaches(dir, *bytes, call),
            None => call(),
        }
    }
}
