//! The whole suite runs end to end on the simulator (quick configuration):
//! every row is printed, and the rows whose goals are not timings — device
//! bytes left behind — hold, and both plots are written. Timing goals are
//! never asserted here.

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
    println!("{}", report.text);
    let report_text = &report.text;
    let row = |metric: &str| {
        report_text
            .lines()
            .find(|line| line.starts_with(&format!("| {metric} ")))
            .unwrap_or_else(|| panic!("no row for {metric}:\n{report_text}"))
    };
    for metric in [
        "dispatcher SO, aarch64, stripped",
        "FNV-1a throughput",
        "cold bootstrap, minimal runtime SO padded to 64 KiB, simulator",
        "cold bootstrap, minimal runtime SO padded to 1 MiB, simulator",
        "cold bootstrap, minimal runtime SO padded to 16 MiB, simulator",
        "cold bootstrap, minimal runtime SO padded to 64 MiB, simulator",
        "cold bootstrap, 1 MiB runtime SO, simulator",
        "warm runner creation (bootstrap cached, prepared builder)",
        "empty-kernel launch→sync round trip",
        "empty-kernel launch→sync round trip, `Module`, type2 path",
        "empty-kernel launch→sync round trip, `Module`, binary path",
        "binary path: one-time kernel registration",
        "host-side cost per launch, simulator launch call, sync excluded",
    ] {
        row(metric);
    }
    for tasks in ["1", "10", "100", "1,000", "10,000", "100,000"] {
        let task_row = row(&format!("per-task cost, {tasks} × `fill` 64 B in one exec"));
        assert!(
            task_row.contains(&format!("round trip / {tasks} = ")),
            "{task_row}"
        );
    }
    // The copy-only launch is a few nanoseconds a side: no ratio, no goal.
    let copy_only = row("host-side cost per launch, launch that only copies the block");
    let cells: Vec<&str> = copy_only.split('|').map(str::trim).collect();
    assert_eq!(cells[4..7], ["", "none (absolute)", "—"], "{copy_only}");
    assert_eq!(report.bootstrap.len(), 5);
    assert_eq!(report.tasks.len(), 6);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let written = simpler_bench::plot::write_curves(dir.path(), &report).expect("the plots");
    assert_eq!(written.len(), 2);
    for path in written {
        let svg = std::fs::read_to_string(&path).expect("read a plot");
        assert!(svg.starts_with("<svg"), "{}", path.display());
        // One marker per measured point on each of the two lines.
        // (the bootstrap plot: 4 sizes on two lines, and the real runtime).
        let points = if path.ends_with("perf-tasks.svg") {
            2 * 6
        } else {
            2 * 4 + 1
        };
        assert_eq!(
            svg.matches(r#"r="3""#).count(),
            points,
            "{}",
            path.display()
        );
    }
    let retained = row("device bytes retained after bootstrap");
    assert!(retained.contains("| 0 B "), "{retained}");
    assert!(retained.contains("after drop 0 B"), "{retained}");
    let cycles = row("20 runner create/drop cycles");
    assert!(cycles.contains("| 0 B live device;"), "{cycles}");
    let modules = row("20 module create/drop cycles per launch path");
    assert!(
        modules.contains("| 0 B live device; 0 live handles |") && modules.contains("**met**"),
        "{modules}"
    );
}
