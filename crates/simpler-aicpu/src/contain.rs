//! Panic containment: the guard the glue runs every task and every export
//! body in, and the panic hook that keeps contained panics off stderr.
//!
//! A panic inside a guard is an outcome the glue reports (status
//! `Panicked`, or [`code::PANICKED`](crate::glue::code::PANICKED)) and logs
//! to the device log, so printing it to the AICPU process's stderr too,
//! with a backtrace when `RUST_BACKTRACE` happens to be set there, only
//! costs time: capturing and resolving a backtrace takes tens of
//! milliseconds per batch. The hook, installed once per runtime SO (each
//! links its own std), therefore only notes where such a panic happened,
//! and a backtrace if `SIMPLER_AICPU_BACKTRACE` asks for one; the guard
//! that catches it writes the device log line. A panic on a thread while
//! no guard runs there (a thread a runner spawned, the host's code in an
//! in-process test) goes to the hook that was installed before, unchanged.
//!
//! `SIMPLER_AICPU_BACKTRACE` rather than `RUST_BACKTRACE`: the AICPU
//! process inherits its environment from whoever started it (in the
//! simulator, the host process and so the user's shell or test runner),
//! where `RUST_BACKTRACE=1` is commonly set for the host's own sake. A
//! contained task panic is an expected result, not a crash; paying for a
//! backtrace and flooding the device log with it must be asked for by its
//! own name.

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::{Once, OnceLock};

use simpler_abi::names::BACKTRACE_ENV;

/// A panic a guard caught.
pub(crate) struct Caught {
    /// The panic message (`&str` and `String` payloads; a placeholder for
    /// any other payload).
    pub message: String,
    /// `file:line:column` of the panic, when the hook saw it.
    pub location: Option<String>,
    /// The captured backtrace, when `SIMPLER_AICPU_BACKTRACE` asked for one.
    pub backtrace: Option<String>,
}

thread_local! {
    /// Guards running on this thread (they nest: a task inside an export).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// What the hook noted of the panic now unwinding on this thread.
    static NOTED: RefCell<Option<Noted>> = const { RefCell::new(None) };
}

struct Noted {
    location: Option<String>,
    backtrace: Option<String>,
}

/// Runs `body`, catching a panic in it. The payload is dropped here.
pub(crate) fn guard<R>(body: impl FnOnce() -> R) -> Result<R, Caught> {
    install_hook();
    // A panic a runner caught itself may have left a note; it is not this one.
    let _ = NOTED.try_with(|noted| noted.borrow_mut().take());
    DEPTH.with(|depth| depth.set(depth.get().saturating_add(1)));
    // AssertUnwindSafe: after a panic, what `body` touched is reported as
    // failed (a task's memory is the host's to judge); the glue keeps no
    // state a panic could leave half-updated.
    let result = panic::catch_unwind(AssertUnwindSafe(body));
    DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
    result.map_err(|payload| {
        let noted = NOTED
            .try_with(|noted| noted.borrow_mut().take())
            .ok()
            .flatten();
        let (location, backtrace) = noted.map_or((None, None), |n| (n.location, n.backtrace));
        Caught {
            message: payload_text(payload.as_ref()).to_owned(),
            location,
            backtrace,
        }
    })
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

/// Whether `SIMPLER_AICPU_BACKTRACE` asks for backtraces: set, and neither
/// empty nor `0`. Read once per process.
fn backtraces_wanted() -> bool {
    static WANTED: OnceLock<bool> = OnceLock::new();
    *WANTED.get_or_init(|| {
        std::env::var_os(BACKTRACE_ENV).is_some_and(|value| !value.is_empty() && value != "0")
    })
}

/// Installs the hook on first use, chaining to the hook found then.
fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Read now, outside any panic, so the hook never touches the
        // environment.
        let backtraces = backtraces_wanted();
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if DEPTH.try_with(Cell::get).unwrap_or(0) == 0 {
                return previous(info);
            }
            note(info, backtraces);
        }));
    });
}

/// Keeps where the panic happened (and its backtrace) for the guard.
fn note(info: &PanicHookInfo<'_>, backtrace: bool) {
    let noted = Noted {
        location: info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
        backtrace: backtrace.then(|| Backtrace::force_capture().to_string()),
    };
    let _ = NOTED.try_with(|slot| *slot.borrow_mut() = Some(noted));
}
