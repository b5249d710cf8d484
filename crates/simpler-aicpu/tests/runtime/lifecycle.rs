//! The process-wide state `simpler_aicpu_init` latches. Each test runs its
//! body in a fresh child process, where no init has happened yet.

use simpler_aicpu::abi::{InitArgs, LogLevel, OpCode, TaskStatus, ABI_VERSION};
use simpler_aicpu::glue::{self, code, Config};
use simpler_testkit::is_child;

use crate::common::{addr_mut, run_in_child, task, INIT};
use crate::ffi::{self, Batch};

fn init_with(args: InitArgs) -> i32 {
    ffi::init(&args)
}

#[test]
fn exec_before_init_is_refused() {
    if !is_child() {
        return run_in_child("lifecycle::exec_before_init_is_refused");
    }
    assert_eq!(glue::config(), None);
    let mut byte = 0u8;
    let batch = Batch::new(vec![task(OpCode::Fill, addr_mut(&mut byte), 0, 0, 1, 1)]);
    assert_eq!(batch.exec(2), [code::NOT_INITIALIZED; 2]);

    // A refused init does not count as one.
    let bad = InitArgs {
        abi_version: ABI_VERSION + 1,
        ..INIT
    };
    assert_eq!(init_with(bad), code::BAD_VERSION);
    assert_eq!(glue::config(), None);
    assert_eq!(batch.exec(1), [code::NOT_INITIALIZED]);
    assert_eq!(batch.status(0), TaskStatus::Pending);
    assert_eq!(batch.header().next_task, 0, "nothing claimed");
    assert_eq!(byte, 0);

    assert_eq!(init_with(INIT), code::OK);
    assert_eq!(batch.exec(1), [code::OK]);
    assert_eq!(batch.status(0), TaskStatus::Ok);
    assert_eq!(byte, 1);
}

#[test]
fn a_later_init_relatches_and_a_refused_one_changes_nothing() {
    if !is_child() {
        return run_in_child("lifecycle::a_later_init_relatches_and_a_refused_one_changes_nothing");
    }
    let first = InitArgs {
        abi_version: ABI_VERSION,
        device_id: 3,
        log_level: 1,
        thread_count: 4,
    };
    assert_eq!(init_with(first), code::OK);
    assert_eq!(
        glue::config(),
        Some(Config {
            device_id: 3,
            log_level: 1,
            thread_count: 4
        })
    );
    assert!(simpler_aicpu::log::enabled(LogLevel::Warn));
    assert!(!simpler_aicpu::log::enabled(LogLevel::Info));

    let second = InitArgs {
        abi_version: ABI_VERSION,
        device_id: 5,
        log_level: 9,
        thread_count: 1,
    };
    assert_eq!(init_with(second), code::OK);
    let latched = Some(Config {
        device_id: 5,
        log_level: 9,
        thread_count: 1,
    });
    assert_eq!(glue::config(), latched);
    assert!(simpler_aicpu::log::enabled(LogLevel::Debug));

    let refused = InitArgs {
        abi_version: 0,
        device_id: 7,
        log_level: 0,
        thread_count: 2,
    };
    assert_eq!(init_with(refused), code::BAD_VERSION);
    assert_eq!(glue::config(), latched);
    assert!(simpler_aicpu::log::enabled(LogLevel::Debug));
}
