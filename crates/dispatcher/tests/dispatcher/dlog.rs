//! Device logging: with a `DlogRecord` in the process (as CANN has on a
//! device) the dispatcher logs what it installed, or what failed, where and
//! with which errno.

use simpler_abi::log::dlog::{ERROR, INFO, MODULE_AICPU};
use simpler_abi::PreinstallName;

use crate::common::*;
use crate::ffi::{take_records, Bootstrap};

#[test]
fn logs_success_and_failure() {
    let Some(dir) = preinstall_dir_or_spawn("dlog::logs_success_and_failure") else {
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
            INFO,
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
    assert_eq!((*module, *level), (MODULE_AICPU, ERROR));
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
    assert_eq!(records[0].1, ERROR);
}
