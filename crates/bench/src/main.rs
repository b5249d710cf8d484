//! Prints the benchmark table of issue 5: every metric with its same-run
//! floor, the ratio and the goal (see the crate documentation).
//!
//! `--quick` measures everything once or a few times, to check that the
//! suite runs; its numbers mean little.

use std::process::ExitCode;

use simpler_bench::suite::Config;

const USAGE: &str = "\
usage: simpler-bench [--quick]

Measures every benchmark goal of issue 5 against a floor measured in the
same run, on the simulator, and prints one Markdown table (docs/performance.md).
  --quick   every measurement once or a few times: checks that the suite runs
Artifacts: $SIMPLER_ARTIFACTS_DIR, else built with `cargo xtask build --target host`.";

fn main() -> ExitCode {
    let config = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => Config::FULL,
        [flag] if flag == "--quick" => Config::QUICK,
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // First, while this is the only thread: it sets SIMPLER_SIM_ROOT.
    let env = match simpler_bench::setup::BenchEnv::new() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("simpler-bench: cannot load the simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    match simpler_bench::suite::run(&env, &config) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("simpler-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
