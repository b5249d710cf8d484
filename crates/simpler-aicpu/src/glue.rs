//! The export glue of a runtime SO: everything `simpler_aicpu_init` and
//! `simpler_aicpu_exec` do besides running a task.
//!
//! - [`init`] checks the `InitArgs` and latches a process-wide [`Config`];
//! - [`exec`] checks the `KernelArgs` and the work description, claims
//!   tasks with the other threads of the launch, runs each through a task
//!   runner inside its own panic guard, and publishes statuses and
//!   counters;
//! - both contain every panic, so none crosses the C boundary;
//! - [`export_runtime!`](crate::export_runtime) defines the two exports
//!   around a task runner.
//!
//! A task runner is any `Fn(&TaskCtx) -> Result<(), TaskStatus>`: `Ok(())`
//! records [`TaskStatus::Ok`], `Err(status)` records `status` and counts as
//! a failure. Runners must not return `Err(TaskStatus::Pending)` (the host
//! would read the task as never run); `Err(TaskStatus::Ok)` is recorded as
//! a success. A task with non-zero `flags` never reaches a runner: no op
//! defines a flag, so the glue records it as [`TaskStatus::UnknownOp`].
//!
//! # Panics
//!
//! A panic in a runner ends its task as [`TaskStatus::Panicked`], and one
//! in the glue ends the export with [`code::PANICKED`]; the other tasks run
//! on. Either goes to the device log at error level as `<what> panicked at
//! <file:line:col>: <message>`, and not to the process's stderr: the
//! runtime installs a panic hook (once, on its first export call) that
//! stays silent for the panics it contains and hands every other panic to
//! the hook installed before it. A backtrace is captured and logged, a
//! line per record, only when `SIMPLER_AICPU_BACKTRACE` is set to anything
//! but `0` or the empty string in the AICPU process; `RUST_BACKTRACE` is
//! not consulted for contained panics. A panic a runner catches itself is
//! not logged.
//!
//! Containment needs unwinding. A runtime SO built with `panic = "abort"`
//! turns any panic into the death of the AICPU process: see
//! `docs/abi.md` for what the host sees then.
//!
//! Return values are bit sets (see [`code`]) so that the bitwise OR of all
//! threads' results, which is what a launch reports, still names every
//! kind of failure that happened.

use std::sync::{PoisonError, RwLock};

use simpler_abi::{InitArgs, KernelArgs, LogLevel, TaskStatus, ABI_VERSION};

use crate::contain::{guard, Caught};
use crate::dlog;
use crate::ffi::{read_payload, HeaderError, Launch};
use crate::log;

pub use crate::ffi::{DeviceRange, DeviceSlice, TaskCtx};

/// Return values of the two exports: 0, or an OR of the bits below.
pub mod code {
    /// Success.
    pub const OK: i32 = 0;
    /// A task this thread ran did not end [`Ok`](simpler_abi::TaskStatus::Ok);
    /// its status word says why.
    pub const TASK_FAILED: i32 = 1 << 0;
    /// The argument pointer is null, or `KernelArgs::runtime_args` is 0.
    pub const NULL_ARGS: i32 = 1 << 1;
    /// The work header is unusable: misaligned, bad magic, non-zero flags,
    /// or a null or misaligned task or status array with `task_count > 0`.
    pub const BAD_HEADER: i32 = 1 << 2;
    /// `InitArgs::abi_version` or `WorkHeader::abi_version` is not
    /// [`ABI_VERSION`](simpler_abi::ABI_VERSION).
    pub const BAD_VERSION: i32 = 1 << 3;
    /// `simpler_aicpu_exec` before any successful `simpler_aicpu_init` in
    /// this process.
    pub const NOT_INITIALIZED: i32 = 1 << 4;
    /// The glue itself panicked (outside any task); the panic was contained.
    pub const PANICKED: i32 = 1 << 5;
}

/// What the last successful `simpler_aicpu_init` latched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// `InitArgs::device_id`.
    pub device_id: u32,
    /// `InitArgs::log_level` as given (values above 3 log as debug).
    pub log_level: u32,
    /// `InitArgs::thread_count`: informational; a launch works with any
    /// number of threads.
    pub thread_count: u32,
}

// Per SO: every runtime SO links its own copy of this static.
static CONFIG: RwLock<Option<Config>> = RwLock::new(None);

/// The latched configuration, `None` before the first successful init.
pub fn config() -> Option<Config> {
    // No code panics while holding the lock, so poisoning cannot happen;
    // recovering the value keeps that reasoning local.
    *CONFIG.read().unwrap_or_else(PoisonError::into_inner)
}

/// The body of `simpler_aicpu_init`.
///
/// Null `args` → [`code::NULL_ARGS`]; an `abi_version` other than
/// [`ABI_VERSION`] → [`code::BAD_VERSION`]. Either failure leaves the
/// latched configuration as it was. Success replaces it whole: a later init
/// re-latches device id, log level and thread count.
///
/// # Safety
///
/// `args` is null or valid for reading an [`InitArgs`] (any alignment).
pub unsafe fn init(args: *const InitArgs) -> i32 {
    contain(|| {
        // SAFETY: forwarded from this function's contract.
        let Some(args) = (unsafe { read_payload(args) }) else {
            dlog!(LogLevel::Error, "init: null InitArgs");
            return code::NULL_ARGS;
        };
        if args.abi_version != ABI_VERSION {
            dlog!(
                LogLevel::Error,
                "init: host speaks ABI version {}, this runtime {ABI_VERSION}",
                args.abi_version
            );
            return code::BAD_VERSION;
        }
        let config = Config {
            device_id: args.device_id,
            log_level: args.log_level,
            thread_count: args.thread_count,
        };
        {
            // Level and config change under one lock, so racing inits
            // cannot leave the level of one with the config of the other.
            let mut latched = CONFIG.write().unwrap_or_else(PoisonError::into_inner);
            *latched = Some(config);
            log::set_level(LogLevel::from_raw(config.log_level));
        }
        dlog!(LogLevel::Info, "init: {config:?}");
        code::OK
    })
}

/// The body of `simpler_aicpu_exec`: runs tasks of the batch at
/// `KernelArgs::runtime_args` through `run` until none is left unclaimed.
///
/// Every thread of a launch calls this with the same arguments. Each
/// claims task indices with an atomic fetch-add on `next_task`, runs the
/// task under its own panic guard (a panic records
/// [`TaskStatus::Panicked`] and the thread goes on with the next task),
/// stores the status word, then bumps `failed` (unless `Ok`) and `done`.
///
/// Returns [`code::OK`] when every task *this thread* ran succeeded,
/// [`code::TASK_FAILED`] otherwise: the thread that ran a failing task
/// reports it, so the OR over the launch is non-zero exactly when some task
/// failed. Before any task: [`code::NULL_ARGS`], [`code::NOT_INITIALIZED`],
/// [`code::BAD_VERSION`] or [`code::BAD_HEADER`], with nothing written.
///
/// # Safety
///
/// `args` is null or valid for reading a [`KernelArgs`] (any alignment),
/// and the host keeps the contract of `docs/abi.md` for the work
/// description it names.
pub unsafe fn exec<F>(args: *const KernelArgs, run: F) -> i32
where
    F: Fn(&TaskCtx) -> Result<(), TaskStatus>,
{
    contain(|| {
        // SAFETY: forwarded from this function's contract.
        let Some(launch) = (unsafe { Launch::read(args) }) else {
            dlog!(LogLevel::Error, "exec: null KernelArgs");
            return code::NULL_ARGS;
        };
        if config().is_none() {
            dlog!(
                LogLevel::Error,
                "exec before a successful simpler_aicpu_init"
            );
            return code::NOT_INITIALIZED;
        }
        let work = match launch.open() {
            Ok(work) => work,
            Err(err) => {
                dlog!(LogLevel::Error, "exec: {err}");
                return match err {
                    HeaderError::Null => code::NULL_ARGS,
                    HeaderError::BadVersion(_) => code::BAD_VERSION,
                    _ => code::BAD_HEADER,
                };
            }
        };
        let (mut ran, mut failed) = (0u32, 0u32);
        while let Some(task) = work.claim(launch.regs()) {
            let status = run_one(&task, &run);
            if status != TaskStatus::Ok {
                failed += 1;
                dlog!(
                    LogLevel::Warn,
                    "task {} (op {:#x}) failed: {status:?}",
                    task.index(),
                    task.task().op
                );
            }
            work.finish(task.index(), status);
            ran += 1;
        }
        dlog!(
            LogLevel::Debug,
            "exec: this thread ran {ran} tasks, {failed} failed"
        );
        if failed == 0 {
            code::OK
        } else {
            code::TASK_FAILED
        }
    })
}

fn run_one<F>(task: &TaskCtx, run: &F) -> TaskStatus
where
    F: Fn(&TaskCtx) -> Result<(), TaskStatus>,
{
    // No op defines a flag: a set one asks for a variant no runner has, so
    // the task is refused before any runner sees it.
    if task.task().flags != 0 {
        return TaskStatus::UnknownOp;
    }
    match guard(|| run(task)) {
        Ok(Ok(())) => TaskStatus::Ok,
        Ok(Err(status)) => status,
        Err(caught) => {
            log_panic(&format_args!("task {}", task.index()), &caught);
            TaskStatus::Panicked
        }
    }
}

/// Runs an export body, turning a panic into [`code::PANICKED`].
fn contain(body: impl FnOnce() -> i32) -> i32 {
    guard(body).unwrap_or_else(|caught| {
        log_panic(&format_args!("the glue"), &caught);
        code::PANICKED
    })
}

/// Logs a contained panic of `what` at error level: where and why, then
/// the backtrace line by line if one was asked for.
fn log_panic(what: &std::fmt::Arguments<'_>, caught: &Caught) {
    match &caught.location {
        Some(at) => dlog!(
            LogLevel::Error,
            "{what} panicked at {at}: {}",
            caught.message
        ),
        None => dlog!(LogLevel::Error, "{what} panicked: {}", caught.message),
    }
    for line in caught.backtrace.iter().flat_map(|bt| bt.lines()) {
        dlog!(LogLevel::Error, "{what} backtrace: {line}");
    }
}

/// Defines a runtime SO's two exports around a task runner, a
/// `fn(&TaskCtx) -> Result<(), TaskStatus>` given by path:
/// `simpler_aicpu::export_runtime!(run);` in a `cdylib` crate that depends
/// on this one without its `exports` feature (`examples/own-runtime/device`
/// in the repository is one).
///
/// It expands to `#[no_mangle] unsafe extern "C" fn simpler_aicpu_init(*const
/// InitArgs) -> i32` and `simpler_aicpu_exec(*const KernelArgs) -> i32`
/// calling [`init`] and [`exec`].
#[macro_export]
macro_rules! export_runtime {
    ($run:path) => {
        /// Runtime SO export: latches the `InitArgs` (see
        /// `simpler_aicpu::glue::init`).
        ///
        /// # Safety
        ///
        /// `args` is null or valid for reading an `InitArgs`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn simpler_aicpu_init(args: *const $crate::abi::InitArgs) -> i32 {
            // SAFETY: this function's contract is `init`'s.
            unsafe { $crate::glue::init(args) }
        }

        /// Runtime SO export: runs a work batch (see
        /// `simpler_aicpu::glue::exec`).
        ///
        /// # Safety
        ///
        /// `args` is null or valid for reading a `KernelArgs`, and the work
        /// description it names keeps the contract of `docs/abi.md`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn simpler_aicpu_exec(args: *const $crate::abi::KernelArgs) -> i32 {
            // SAFETY: this function's contract is `exec`'s.
            unsafe { $crate::glue::exec(args, $run) }
        }
    };
}
