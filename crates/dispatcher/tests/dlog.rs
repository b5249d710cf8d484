//! Device logging: with a `DlogRecord` in the process (as CANN has on a
//! device) the dispatcher logs what it installed, or what failed, where and
//! with which errno.
//!
//! `DlogRecord` is variadic, which stable Rust cannot define. On x86-64 and
//! AArch64 Linux integer and pointer arguments of a variadic call travel
//! exactly as those of a fixed one, so this test defines it with five
//! 64-bit slots and hands them to `snprintf` with the same format. The build
//! script exports the symbol from the test binary for `dlsym`.

mod common;

use std::ffi::{c_char, c_int, CStr};
use std::sync::Mutex;

use common::*;
use simpler_abi::PreinstallName;

/// (module, level, formatted message) of every call.
static RECORDS: Mutex<Vec<(c_int, c_int, String)>> = Mutex::new(Vec::new());

/// Stand-in for CANN's `void DlogRecord(int module, int level, const char *fmt, ...)`.
///
/// # Safety
///
/// `fmt` is a printf format whose conversions take at most five integer or
/// pointer arguments, passed in `a0..a4`.
#[no_mangle]
pub unsafe extern "C" fn DlogRecord(
    module: c_int,
    level: c_int,
    fmt: *const c_char,
    a0: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
) {
    let mut buf = [0u8; 1024];
    // SAFETY: `buf` is writable for its length; `fmt` and the arguments
    // come from the dispatcher's call, forwarded unchanged.
    unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), fmt, a0, a1, a2, a3, a4) };
    let text = CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    RECORDS.lock().unwrap().push((module, level, text));
}

const MODULE_AICPU: c_int = 36;
const DLOG_INFO: c_int = 1;
const DLOG_ERROR: c_int = 3;

fn take_records() -> Vec<(c_int, c_int, String)> {
    std::mem::take(&mut *RECORDS.lock().unwrap())
}

#[test]
fn logs_success_and_failure() {
    let Some(dir) = preinstall_dir_or_spawn("logs_success_and_failure") else {
        return;
    };
    let runtime = fake_elf(5000, 20);
    assert_eq!(Bootstrap::of(&runtime).run(), 0);
    let target = target_in(&dir, &runtime);
    let fp = simpler_abi::fingerprint(&runtime);
    assert_eq!(
        take_records(),
        [(
            MODULE_AICPU,
            DLOG_INFO,
            format!(
                "simpler dispatcher: installed {} (5000 bytes, fingerprint {fp:016x})",
                target.display()
            )
        )]
    );

    // A failing rename: stage, reason, errno and path all in one line.
    let other = fake_elf(64, 21);
    let squatter = dir.join(PreinstallName::of(&other).as_str());
    std::fs::create_dir(&squatter).unwrap();
    std::fs::write(squatter.join("keep"), b"x").unwrap();
    assert_eq!(
        Bootstrap::of(&other).run(),
        simpler_abi::ReportStage::Rename as i32
    );
    let records = take_records();
    assert_eq!(records.len(), 1, "{records:?}");
    let (module, level, text) = &records[0];
    assert_eq!((*module, *level), (MODULE_AICPU, DLOG_ERROR));
    assert_eq!(
        text,
        &format!(
            "simpler dispatcher: rename failed: cannot rename onto the target (errno {}), path '{}'",
            libc::EISDIR,
            squatter.display()
        )
    );

    // A validation failure without a report is still logged.
    assert_eq!(Bootstrap::of(b"nope").without_report().run(), 1);
    let records = take_records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0]
            .2
            .starts_with("simpler dispatcher: validate failed: not an ELF image (errno 8)"),
        "{records:?}"
    );
    assert_eq!(records[0].1, DLOG_ERROR);
}
