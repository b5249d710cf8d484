//! Device log lines reach `DlogRecord` with CANN's AICPU module id and
//! level ids, filtered by the latched log level. The test runs alone in a
//! child process: the log level is process-wide, and the first lines must
//! come before any init.

use simpler_aicpu::abi::log::dlog::{DEBUG, ERROR, INFO, MODULE_AICPU, WARN};
use simpler_aicpu::abi::{InitArgs, OpCode, Task};
use simpler_aicpu::glue::code;
use simpler_testkit::is_child;

use crate::common::{run_in_child, task, INIT};
use crate::ffi::{self, take_dlog_lines as take, Batch};

fn init(log_level: u32) {
    let args = InitArgs { log_level, ..INIT };
    assert_eq!(ffi::init(&args), code::OK);
}

#[test]
fn lines_reach_dlog_record_filtered_by_the_latched_level() {
    if !is_child() {
        return run_in_child("dlog::lines_reach_dlog_record_filtered_by_the_latched_level");
    }
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
    assert_eq!((*module, *level), (MODULE_AICPU, ERROR));
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
            MODULE_AICPU,
            WARN,
            "simpler_aicpu: task 0 (op 0xabc) failed: UnknownOp".to_owned()
        )]
    );

    // Level 3 (debug): everything.
    init(3);
    let lines = take();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].1, INFO);
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
            assert_eq!(m, MODULE_AICPU);
            (l, t)
        })
        .collect();
    // The panic line names where it happened: the Panic op in ops.rs.
    let (level, text) = &lines[0];
    assert_eq!(*level, ERROR);
    let (line_col, message) = text
        .strip_prefix("simpler_aicpu: task 0 panicked at crates/simpler-aicpu/src/ops.rs:")
        .and_then(|rest| rest.split_once(": "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line_col.split(':').all(|n| n.parse::<u32>().is_ok()),
        "{text}"
    );
    assert_eq!(message, "diagnostic Panic op in task 0");
    assert_eq!(
        lines[1..],
        [
            (
                WARN,
                "simpler_aicpu: task 0 (op 0x101) failed: Panicked".to_owned()
            ),
            (
                DEBUG,
                "simpler_aicpu: exec: this thread ran 1 tasks, 1 failed".to_owned()
            ),
        ]
    );
}
