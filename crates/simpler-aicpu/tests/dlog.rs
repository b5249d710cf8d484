//! Device log lines reach `DlogRecord` with CANN's AICPU module id and
//! level ids, filtered by the latched log level. This binary defines
//! `DlogRecord` and exports it (see build.rs), as the AICPU process does.
//! One test only: the log level is process-wide.

mod common;

use std::ffi::{c_char, c_int, CStr};
use std::sync::Mutex;

use common::{task, Batch, INIT};
use simpler_aicpu::abi::{InitArgs, OpCode, Task};
use simpler_aicpu::glue::code;
use simpler_aicpu::log::AICPU_MODULE_ID;
use simpler_aicpu::simpler_aicpu_init;

static LINES: Mutex<Vec<(c_int, c_int, String)>> = Mutex::new(Vec::new());

/// The runtime calls this as `DlogRecord(module, level, "%s", text)`
/// through a variadic pointer; on the x86-64 and AArch64 Linux calling
/// conventions a variadic pointer argument travels exactly like a fourth
/// fixed one, so this non-variadic definition receives it.
///
/// # Safety
///
/// `fmt` and `text` are NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DlogRecord(
    module: c_int,
    level: c_int,
    fmt: *const c_char,
    text: *const c_char,
) {
    // SAFETY: per this function's contract.
    let (fmt, text) = unsafe { (CStr::from_ptr(fmt), CStr::from_ptr(text)) };
    assert_eq!(fmt, c"%s", "messages must never be used as formats");
    let text = text.to_str().unwrap().to_owned();
    LINES.lock().unwrap().push((module, level, text));
}

fn take() -> Vec<(c_int, c_int, String)> {
    std::mem::take(&mut *LINES.lock().unwrap())
}

fn init(log_level: u32) {
    let args = InitArgs { log_level, ..INIT };
    // SAFETY: a valid InitArgs.
    assert_eq!(unsafe { simpler_aicpu_init(&args) }, code::OK);
}

const DLOG_DEBUG: c_int = 0;
const DLOG_INFO: c_int = 1;
const DLOG_WARN: c_int = 2;
const DLOG_ERROR: c_int = 3;

#[test]
fn lines_reach_dlog_record_filtered_by_the_latched_level() {
    let failing = || {
        Batch::new(vec![Task {
            op: 0xabc,
            ..Task::default()
        }])
    };

    // Before init only errors are written.
    assert_eq!(failing().exec(1), [code::NOT_INITIALIZED]);
    let lines = take();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let (module, level, text) = &lines[0];
    assert_eq!((*module, *level), (AICPU_MODULE_ID, DLOG_ERROR));
    assert_eq!(
        text,
        "simpler_aicpu: exec before a successful simpler_aicpu_init"
    );

    // Level 1 (warn): the init line (info) is filtered, a failed task is
    // written, the launch summary (debug) is not.
    init(1);
    assert_eq!(failing().exec(1), [code::TASK_FAILED]);
    let lines = take();
    assert_eq!(
        lines,
        [(
            AICPU_MODULE_ID,
            DLOG_WARN,
            "simpler_aicpu: task 0 (op 0xabc) failed: UnknownOp".to_owned()
        )]
    );

    // Level 3 (debug): everything.
    init(3);
    let lines = take();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].1, DLOG_INFO);
    assert!(
        lines[0]
            .2
            .starts_with("simpler_aicpu: init: Config { device_id: 0"),
        "{lines:?}"
    );
    let batch = Batch::new(vec![task(OpCode::Panic, 0, 0, 0, 0, 0)]);
    assert_eq!(batch.exec(1), [code::TASK_FAILED]);
    let lines: Vec<_> = take()
        .into_iter()
        .map(|(m, l, t)| {
            assert_eq!(m, AICPU_MODULE_ID);
            (l, t)
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                DLOG_ERROR,
                "simpler_aicpu: task 0 panicked: diagnostic Panic op in task 0".to_owned()
            ),
            (
                DLOG_WARN,
                "simpler_aicpu: task 0 (op 0x101) failed: Panicked".to_owned()
            ),
            (
                DLOG_DEBUG,
                "simpler_aicpu: exec: this thread ran 1 tasks, 1 failed".to_owned()
            ),
        ]
    );
}
