//! The whole suite runs end to end on the simulator (quick configuration):
//! every row is printed, and the rows whose goals are not timings — device
//! bytes left behind — hold. Timing goals are never asserted here.

use simpler_bench::setup::BenchEnv;
use simpler_bench::suite::{self, Config};

const TEST: &str = "the_quick_suite_prints_every_row";

#[test]
fn the_quick_suite_prints_every_row() {
    if !simpler_testkit::is_child() {
        // The suite sets SIMPLER_SIM_ROOT for the process: run it in a
        // process of its own.
        let out = simpler_testkit::in_child(TEST, std::iter::empty::<(&str, &str)>());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test:\n{stdout}"
        );
        return;
    }
    let env = BenchEnv::new().expect("load the simulator");
    let report = suite::run(&env, &Config::QUICK).expect("the suite runs");
    println!("{report}");
    let row = |metric: &str| {
        report
            .lines()
            .find(|line| line.starts_with(&format!("| {metric} ")))
            .unwrap_or_else(|| panic!("no row for {metric}:\n{report}"))
    };
    for metric in [
        "dispatcher SO, aarch64, stripped",
        "FNV-1a throughput",
        "cold bootstrap, 1 MiB runtime SO, simulator",
        "warm runner creation (bootstrap cached, prepared builder)",
        "empty-kernel launch→sync round trip",
        "host-side cost per launch, simulator launch call, sync excluded",
        "host-side cost per launch, launch that only copies the block",
    ] {
        row(metric);
    }
    let retained = row("device bytes retained after bootstrap");
    assert!(retained.contains("| 0 B "), "{retained}");
    assert!(retained.contains("after drop 0 B"), "{retained}");
    let cycles = row("20 runner create/drop cycles");
    assert!(cycles.contains("| 0 B live device;"), "{cycles}");
}
