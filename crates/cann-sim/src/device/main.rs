//! `simpler-sim-aicpu`: the emulated AICPU OS of one simulated device, one
//! process per (host process, device). Started by `libsimpler_cann_sim.so`
//! on `aclrtSetDevice` with the device memory (a memfd) and the control
//! socket as inherited descriptors; exits when the control socket closes.
//!
//! Threads: the `aicpu<N>` workers read requests and run kernels; the main
//! thread is the op-timeout watchdog (see `engine`).

// Shared with the library, which alone reads reply messages.
#[allow(dead_code)]
#[path = "../protocol.rs"]
mod protocol;

mod engine;
mod faults;
mod kfc;
mod log;
mod memory;
mod scheduler;
mod wake;

use std::borrow::Cow;
use std::collections::HashMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use simpler_abi::cann::error::{ACL_ERROR_RT_AICPU_EXCEPTION, ACL_ERROR_RT_AICPU_TIMEOUT};
use simpler_abi::names::{KERNEL_TYPE_AICPU, KERNEL_TYPE_AICPU_KFC, PREINSTALL_DIR_ENV};

use crate::engine::{send_reply, Engine, Ready};
use crate::log::level;
use crate::memory::DeviceMemory;
use crate::protocol::{reply, Reply, Request};

/// Everything the device's threads share.
pub struct Context {
    /// The device memory window.
    pub memory: DeviceMemory,
    /// `<root>/preinstall`.
    pub preinstall: PathBuf,
    /// `<root>/tmp`.
    pub tmp: PathBuf,
    /// The AICPU workers, streams and op timeouts.
    pub engine: Engine,
    /// Kernel SOs opened by type-2 launches.
    pub so_cache: scheduler::SoCache,
    /// The KFC dispatcher latch.
    pub latch: kfc::Latch,
    /// `SIMPLER_SIM_FAIL_DISPATCHER_WRITE`.
    pub fail_dispatcher_write: bool,
    /// The control channel to the host library.
    pub ctl: OwnedFd,
}

/// The result of one launch, with what it did for the accounting.
#[derive(Debug, Default)]
pub struct Outcome {
    code: i32,
    message: String,
    kfc_calls: u32,
    dispatcher_saves: u32,
    dlopens: u32,
}

impl Outcome {
    /// Fails with `code` and `message` (logged).
    pub fn failed(mut self, code: i32, message: String) -> Self {
        log::note(level::ERROR, &message);
        self.code = code;
        self.message = message;
        self
    }

    /// 507018: the AICPU task failed.
    pub fn exception(self, message: String) -> Self {
        self.failed(ACL_ERROR_RT_AICPU_EXCEPTION, message)
    }

    /// 507017: the AICPU task exceeded its timeout.
    pub fn timeout(self, message: String) -> Self {
        self.failed(ACL_ERROR_RT_AICPU_TIMEOUT, message)
    }
}

/// Command line, written by the host library.
struct Args {
    device: u32,
    mem_fd: i32,
    ctl_fd: i32,
    bell_fd: i32,
    base: u64,
    size: u64,
    root: PathBuf,
    threads: u32,
    fail_dispatcher_write: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut values: HashMap<String, String> = HashMap::new();
    let mut fail_dispatcher_write = false;
    while let Some(flag) = args.next() {
        if flag == "--fail-dispatcher-write" {
            fail_dispatcher_write = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        values.insert(flag, value);
    }
    let get = |name: &str| values.get(name).ok_or_else(|| format!("missing {name}"));
    let num = |name: &str| -> Result<u64, String> {
        let text = get(name)?;
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        parsed.map_err(|_| format!("{name} {text:?} is not a number"))
    };
    let small = |name: &str| -> Result<u32, String> {
        u32::try_from(num(name)?).map_err(|_| format!("{name} is too large"))
    };
    Ok(Args {
        device: small("--device")?,
        mem_fd: small("--mem-fd")? as i32,
        ctl_fd: small("--ctl-fd")? as i32,
        bell_fd: small("--bell-fd")? as i32,
        base: num("--base")?,
        size: num("--size")?,
        root: PathBuf::from(get("--root")?),
        threads: small("--threads")?.max(1),
        fail_dispatcher_write,
    })
}

/// Creates the device filesystem, maps memory and builds the context.
fn start(args: &Args, ctl: OwnedFd) -> Result<Context, (OwnedFd, String)> {
    let preinstall = args.root.join("preinstall");
    let tmp = args.root.join("tmp");
    let log_dir = args.root.join("log");
    for dir in [&tmp, &log_dir] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Err((ctl, format!("cannot create {}: {e}", dir.display())));
        }
    }
    let log_file = log_dir.join("device.log");
    if let Err(e) = log::open(&log_file) {
        eprintln!(
            "simpler-sim-aicpu: cannot open {}: {e}; logging to stderr",
            log_file.display()
        );
    }
    // A preinstall directory that cannot be created is the dispatcher's
    // error to report (with its stage and errno), as on a broken device.
    if let Err(e) = std::fs::create_dir_all(&preinstall) {
        log::note(
            level::ERROR,
            &format!(
                "cannot create the preinstall directory {}: {e}",
                preinstall.display()
            ),
        );
    }
    // Single-threaded still: no other thread reads the environment.
    std::env::set_var(PREINSTALL_DIR_ENV, &preinstall);
    let memory = match DeviceMemory::map(args.mem_fd, args.base, args.size) {
        Ok(memory) => memory,
        Err(e) => {
            return Err((
                ctl,
                format!(
                    "cannot map device memory at {:#x} ({} bytes): {e}",
                    args.base, args.size
                ),
            ))
        }
    };
    // SAFETY: the memfd was handed to us and is now mapped; the mapping
    // keeps the object alive without the descriptor.
    drop(unsafe { OwnedFd::from_raw_fd(args.mem_fd) });
    // SAFETY: the host library passed this eventfd to us; we own it.
    let host_bell = wake::Bell::from_fd(unsafe { OwnedFd::from_raw_fd(args.bell_fd) });
    let engine = match Engine::new(args.threads, host_bell) {
        Ok(engine) => engine,
        Err(e) => return Err((ctl, format!("cannot create the AICPU engine: {e}"))),
    };
    log::note(
        level::INFO,
        &format!(
            "device {} up: memory {:#x}+{:#x}, {} AICPU threads, preinstall {}",
            args.device,
            args.base,
            args.size,
            args.threads,
            preinstall.display()
        ),
    );
    Ok(Context {
        memory,
        preinstall,
        tmp,
        engine,
        so_cache: scheduler::SoCache::default(),
        latch: kfc::Latch::default(),
        fail_dispatcher_write: args.fail_dispatcher_write,
        ctl,
    })
}

/// Checks a launch and finds what its blocks call; `Err` is a launch that
/// ends without running anything.
pub fn prepare(ctx: &Context, req: &Request) -> Result<Ready, Outcome> {
    let mut so_buf = [0u8; NAME_BUF];
    let mut kernel_buf = [0u8; NAME_BUF];
    fn name<'b>(
        ctx: &Context,
        req: &Request,
        offset: u32,
        buf: &'b mut [u8; NAME_BUF],
    ) -> Option<Cow<'b, str>> {
        ctx.memory.read_name(
            req.args + u64::from(offset),
            u64::from(req.args_size.saturating_sub(offset)),
            buf,
        )
    }
    let (Some(so), Some(kernel)) = (
        name(ctx, req, req.so_name_offset, &mut so_buf),
        name(ctx, req, req.kernel_name_offset, &mut kernel_buf),
    ) else {
        return Err(Outcome::default().exception(format!(
            "the so/kernel names at offsets {}/{} of the argument block at {:#x} are not NUL-terminated UTF-8",
            req.so_name_offset, req.kernel_name_offset, req.args
        )));
    };
    match req.kernel_type {
        KERNEL_TYPE_AICPU_KFC => kfc::prepare(ctx, &so, &kernel, req.args, req.args_size),
        KERNEL_TYPE_AICPU => scheduler::prepare(ctx, &so, &kernel),
        other => Err(Outcome::default().exception(format!("kernel type {other} is not served"))),
    }
}

/// Room for a so or kernel name read without allocating (the argument
/// block's name fields are 64 bytes; longer names take the slow path).
const NAME_BUF: usize = 128;

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            eprintln!("simpler-sim-aicpu: {why}\nThis program is started by libsimpler_cann_sim.so; see docs/simulator.md.");
            std::process::exit(2);
        }
    };
    // SAFETY: the host library passed this descriptor to us; we own it.
    let ctl = unsafe { OwnedFd::from_raw_fd(args.ctl_fd) };
    let ctx = match start(&args, ctl) {
        Ok(ctx) => Arc::new(ctx),
        Err((ctl, why)) => {
            log::note(level::ERROR, &why);
            let _ = protocol::send(ctl.as_fd(), &Reply::new(reply::START_FAILED, 0, &why));
            std::process::exit(1);
        }
    };
    if let Err(e) = Engine::spawn_workers(&ctx) {
        let why = format!("cannot start {} AICPU threads: {e}", args.threads);
        log::note(level::ERROR, &why);
        let _ = protocol::send(ctx.ctl.as_fd(), &Reply::new(reply::START_FAILED, 0, &why));
        std::process::exit(1);
    }
    send_reply(&ctx, &Reply::new(reply::READY, 0, ""));
    ctx.engine.watch(&ctx)
}
