//! Prints the benchmark table of issue 5: every metric with its same-run
//! floor, the ratio and the goal (see the crate documentation).

use std::process::ExitCode;

fn main() -> ExitCode {
    // First, while this is the only thread: it sets SIMPLER_SIM_ROOT.
    let env = match simpler_bench::setup::BenchEnv::new() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("simpler-bench: cannot load the simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    match simpler_bench::suite::run(&env) {
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
