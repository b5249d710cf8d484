//! KFC launches (kernel type 5), as CANN's `libaicpu_extend_kernels.so`
//! serves `DynTileFwkKernelServerInit`: the first dispatcher SO sent to this
//! device process is saved, opened and latched; every KFC launch then calls
//! its `DynTileFwkBackendKernelServerInit` with the argument block.

use std::ffi::c_void;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use simpler_abi::names::{
    DISPATCHER_INIT_SYMBOL, DISPATCHER_SYMBOLS, KFC_KERNEL_NAME, KFC_SO_NAME,
};
use simpler_abi::{fingerprint, BootstrapArgs, DeviceArgs};

use crate::engine::{Entry, KernelFn, Ready};
use crate::log::{self, level};
use crate::{Context, Outcome};

/// `DynTileFwkBackendKernelServerInit` has the AICPU kernel shape: the
/// device address of the KFC argument block in, 0 for success out (an
/// `int`, read here as its 32 bits).
type InitFn = KernelFn;

struct Latched {
    /// Fingerprint of the bytes that were saved.
    fingerprint: u64,
    /// The init entry point, or why the saved SO is unusable (sticky, as
    /// the latch is).
    init: Result<InitFn, String>,
}

/// The one-shot latch of this device process.
#[derive(Default)]
pub struct Latch {
    latched: Mutex<Option<Latched>>,
    /// Held across each init call: one at a time, as one latched
    /// dispatcher serves them (and the write fault's process-wide limit
    /// must not be restored under another call).
    calls: Mutex<()>,
}

/// Saves, opens and resolves the dispatcher. Returns the latched state.
fn save_and_open(ctx: &Context, bytes: &[u8], outcome: &mut Outcome) -> Result<Latched, String> {
    let path = ctx.tmp.join(format!(
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
    // SAFETY: opening the dispatcher runs its initialisers, as CANN does.
    let opened = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_LOCAL) };
    // The handle keeps the code mapped; the private file is not needed.
    let _ = std::fs::remove_file(&path);
    let fingerprint = fingerprint(bytes);
    let library = match opened {
        Ok(library) => &*Box::leak(Box::new(library)),
        Err(e) => {
            return Ok(Latched {
                fingerprint,
                init: Err(format!("cannot load the dispatcher SO: {e}")),
            })
        }
    };
    // SAFETY: only addresses are looked up here.
    let missing: Vec<&str> = DISPATCHER_SYMBOLS
        .into_iter()
        .filter(|symbol| unsafe { library.get::<*const c_void>(symbol.as_bytes()) }.is_err())
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
    // SAFETY: the contract gives DynTileFwkBackendKernelServerInit this
    // signature.
    let init = unsafe { library.get::<InitFn>(DISPATCHER_INIT_SYMBOL.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| e.to_string());
    log::note(
        level::INFO,
        &format!(
            "KFC: dispatcher SO saved ({} bytes, fingerprint {fingerprint:016x}) and loaded",
            bytes.len()
        ),
    );
    Ok(Latched { fingerprint, init })
}

/// Prepares one KFC launch: checks it, saves and opens the dispatcher on
/// the first one (the latch), and returns the latched init to call.
pub fn prepare(
    ctx: &Context,
    so: &str,
    kernel: &str,
    args: u64,
    args_size: u32,
) -> Result<Ready, Outcome> {
    let mut outcome = Outcome::default();
    if so != KFC_SO_NAME {
        return Err(outcome.exception(format!(
            "KFC launches are served by {KFC_SO_NAME}; so name {so:?} is not known"
        )));
    }
    if kernel != KFC_KERNEL_NAME {
        return Err(outcome.exception(format!("{KFC_SO_NAME} has no kernel {kernel:?}")));
    }
    let Some(block) = ctx
        .memory
        .read_pod::<BootstrapArgs>(args)
        .filter(|_| args_size >= 48)
    else {
        return Err(outcome.exception(format!(
            "the {args_size}-byte KFC argument block is too short"
        )));
    };
    let Some(device_args) = ctx.memory.read_pod::<DeviceArgs>(block.device_args) else {
        return Err(outcome.exception(format!(
            "device_args {:#x} (offset 40) is not inside device memory",
            block.device_args
        )));
    };
    let mut latch = ctx.latch.latched.lock().unwrap_or_else(|e| e.into_inner());
    if latch.is_none() {
        let bytes = match ctx
            .memory
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
        match save_and_open(ctx, &bytes, &mut outcome) {
            Ok(latched) => *latch = Some(latched),
            Err(why) => return Err(outcome.exception(why)),
        }
    } else if let Some(bytes) = ctx
        .memory
        .read(device_args.aicpu_so_bin, device_args.aicpu_so_len)
    {
        let sent = fingerprint(&bytes);
        let first = latch.as_ref().map_or(0, |l| l.fingerprint);
        if sent != first {
            log::note(
                level::WARN,
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
            log::note(level::ERROR, &format!("KFC: {why}"));
            return Err(outcome.exception(why.clone()));
        }
    };
    drop(latch);
    outcome.kfc_calls += 1;
    // On an AICPU worker like any kernel, so the op timeout applies.
    Ok(Ready {
        entry: Entry::DispatcherInit(init),
        label: DISPATCHER_INIT_SYMBOL,
        outcome,
    })
}

/// Calls the latched dispatcher's init on this AICPU worker, with the
/// dispatcher-write fault around it when configured.
pub fn call_init(ctx: &Context, init: InitFn, args: u64) -> u32 {
    let _one = ctx.latch.calls.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: `init` is the dispatcher's DynTileFwkBackendKernelServerInit,
    // called with the device address of the KFC argument block, as CANN
    // calls it.
    let call = || unsafe { init(args as *mut c_void) };
    if ctx.fail_dispatcher_write {
        crate::faults::with_file_writes_failing(call)
    } else {
        call()
    }
}
