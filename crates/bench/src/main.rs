//! Prints the benchmark table: every metric with its same-run floor, the
//! ratio and the goal (see the crate documentation).
//!
//! `--quick` measures everything once or a few times, to check that the
//! suite runs; its numbers mean little. `--cpu N` pins the whole run to one
//! CPU (see [`simpler_bench::cpu`]). `--plots DIR` writes the growth
//! curves' SVG plots into DIR (what `cargo xtask bench` does with docs/).

use std::path::PathBuf;
use std::process::ExitCode;

use simpler_bench::suite::Config;

const USAGE: &str = "\
usage: simpler-bench [--quick] [--cpu N] [--plots DIR]

Measures every performance goal against a floor measured in the same run,
on the simulator, and prints one Markdown table (docs/performance.md).
  --quick      every measurement once or a few times: checks that the suite
               runs
  --cpu N      run everything (this process, the simulator's device process,
               the IPC echo child) on CPU N only
  --plots DIR  write the growth curves as DIR/perf-bootstrap.svg and
               DIR/perf-tasks.svg
Artifacts: $SIMPLER_ARTIFACTS_DIR, else built with `cargo xtask build --target host`.";

/// What the command line asks for.
struct Options {
    config: Config,
    cpu: Option<usize>,
    plots: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        config: Config::FULL,
        cpu: None,
        plots: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.config = Config::QUICK,
            "--cpu" => {
                let value = args.next().ok_or("--cpu needs a CPU number")?;
                let cpu = value
                    .parse()
                    .map_err(|_| format!("--cpu {value}: not a CPU number"))?;
                options.cpu = Some(cpu);
            }
            "--plots" => {
                let dir = args.next().ok_or("--plots needs a directory")?;
                options.plots = Some(PathBuf::from(dir));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let Options { config, cpu, plots } = match parse(&args) {
        Ok(options) => options,
        Err(why) => {
            eprintln!("simpler-bench: {why}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &plots {
        // Checked before minutes of measuring, not after.
        if !dir.is_dir() {
            eprintln!("simpler-bench: --plots {}: not a directory", dir.display());
            return ExitCode::from(2);
        }
    }
    if let Some(cpu) = cpu {
        if let Err(e) = simpler_bench::cpu::pin_to(cpu) {
            eprintln!("simpler-bench: cannot run on CPU {cpu}: {e}");
            return ExitCode::FAILURE;
        }
    }
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
            print!("{}", report.text);
            let Some(dir) = plots else {
                return ExitCode::SUCCESS;
            };
            match simpler_bench::plot::write_curves(&dir, &report) {
                Ok(paths) => {
                    for path in paths {
                        eprintln!("simpler-bench: wrote {}", path.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("simpler-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("simpler-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
