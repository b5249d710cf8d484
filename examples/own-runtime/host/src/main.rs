//! The host side of the own-runtime example: bootstraps the example's
//! runtime SO (`libown_runtime.so`, built from `../device`) through
//! simpler's dispatcher, runs one batch mixing built-in ops with the SO's
//! custom ops, checks every result against the same arithmetic done here,
//! checks that bad custom tasks get their specific statuses, and prints a
//! short report.
//!
//! Exit status: 0 when every check passed, 1 on a wrong result, 2 when
//! something failed before the checks could run (the message says what).
//!
//! ```sh
//! own-runtime-host --runtime target/x86_64-unknown-linux-gnu/device/libown_runtime.so
//! ```
//!
//! On the simulator (the default), `SIMPLER_ARTIFACTS_DIR` names the
//! directory `cargo xtask build` filled (simulator library, dispatcher).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use own_runtime_ops::{POLY, REVERSE, SAXPY};
use simpler_host::abi::{fingerprint, CustomOp, TaskStatus};
use simpler_host::{Cann, CannSource, CustomTask, DeviceRunner};

/// Runs the example runtime SO's custom ops next to the built-ins and
/// checks the results.
#[derive(Debug, Parser)]
struct Args {
    /// The example runtime SO, built for the device's machine.
    #[arg(long)]
    runtime: PathBuf,
    /// The dispatcher SO (default: simpler's artifacts directories).
    #[arg(long)]
    dispatcher: Option<PathBuf>,
    /// Which CANN to load.
    #[arg(long, value_enum, default_value_t = Backend::Sim)]
    backend: Backend,
    /// The device id.
    #[arg(long, default_value_t = 0)]
    device: i32,
    /// AICPU threads the batch runs on.
    #[arg(long, default_value_t = 4)]
    threads: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    /// simpler's CANN simulator.
    Sim,
    /// The CANN toolkit of this machine ($ASCEND_HOME_PATH).
    Cann,
}

/// A code in the custom range that the example runtime does not define.
const UNDEFINED: CustomOp = CustomOp::must(0x8000_00ff);

/// Element count of the f32 vectors.
const N: usize = 1000;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(wrong) => {
            println!("{wrong} check(s) FAILED");
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The checks so far: how many ran, how many failed.
struct Report {
    wrong: usize,
    checks: usize,
}

impl Report {
    fn check(&mut self, what: &str, ok: bool) {
        self.checks += 1;
        if !ok {
            self.wrong += 1;
        }
        println!("  {:<44} {}", what, if ok { "ok" } else { "MISMATCH" });
    }
}

/// Runs everything; the number of failed checks.
fn run(args: &Args) -> Result<usize> {
    let source = match args.backend {
        Backend::Sim => CannSource::Simulator,
        Backend::Cann => CannSource::Toolkit,
    };
    let cann = Cann::load(&source).context("loading CANN")?;
    let mut builder = DeviceRunner::builder(&cann)
        .device(args.device)
        .threads(args.threads)
        .runtime_path(&args.runtime);
    if let Some(dispatcher) = &args.dispatcher {
        builder = builder.dispatcher_path(dispatcher);
    }
    let mut runner = builder
        .build()
        .context("bootstrapping the example runtime")?;
    let info = runner.info().clone();
    println!(
        "own-runtime: {} on device {} ({} device side), {} threads",
        args.runtime.display(),
        info.device,
        info.device_machine,
        info.threads
    );
    println!(
        "  installed as {} ({:?}, bootstrap {:.1} ms)",
        info.preinstall_name,
        info.cache,
        info.bootstrap_time.as_secs_f64() * 1e3
    );

    // Inputs. Every value is exact in f32 or rounds the same way here and
    // on the device: both sides do the same f32 operations in the same
    // order, without fused multiply-adds.
    let x: Vec<f32> = (0..N).map(|i| i as f32 * 0.25 - 100.0).collect();
    let y: Vec<f32> = (0..N).map(|i| 1.0 / (i as f32 + 1.0)).collect();
    let a = 2.5f32;
    let coeffs = [1.0f32, -0.5, 0.25, 0.125];
    let bytes: Vec<u8> = (0..3 * 256).map(|i| (i * 7 % 256) as u8).collect();

    let dev_x = runner.upload(&x)?;
    let dev_y = runner.upload(&y)?;
    let dev_bytes = runner.upload(&bytes)?;
    let regs = runner.upload(&coeffs)?;
    let filled = runner.alloc(100)?;
    let sum = runner.alloc(N * 4)?;
    let hash = runner.alloc(8)?;
    let saxpy = runner.alloc(N * 4)?;
    let poly = runner.alloc(N * 4)?;
    let reversed = runner.alloc(bytes.len())?;

    let mut batch = runner.batch();
    batch.regs(&regs)?;
    batch.fill(&filled, 0x3c)?;
    batch.add_f32(&sum, &dev_x, &dev_y)?;
    batch.fnv1a64(&hash, &dev_bytes)?;
    batch.custom(
        CustomTask::new(SAXPY)
            .dst(&saxpy)
            .src0(&dev_x)
            .src1(&dev_y)
            .scalar(a.to_bits().into()),
    )?;
    batch.custom(
        CustomTask::new(POLY)
            .dst(&poly)
            .src0(&dev_x)
            .scalar(coeffs.len() as u64),
    )?;
    batch.custom(CustomTask::new(REVERSE).dst(&reversed).src0(&dev_bytes))?;
    let tasks = batch.len();
    batch.run().context("the mixed batch")?;
    println!("  batch of {tasks} tasks (3 built-in, 3 custom, register block): all Ok");

    let mut report = Report {
        wrong: 0,
        checks: 0,
    };
    report.check("Fill", filled.to_vec::<u8>()? == vec![0x3c; 100]);
    let want: Vec<f32> = x.iter().zip(&y).map(|(x, y)| x + y).collect();
    report.check("AddF32", same_bits(&sum.to_vec::<f32>()?, &want));
    report.check("Fnv1a64", hash.to_vec::<u64>()? == [fingerprint(&bytes)]);
    let want: Vec<f32> = x.iter().zip(&y).map(|(x, y)| a * x + y).collect();
    report.check(
        &format!("SAXPY ({:#x}, {N} f32)", SAXPY.code()),
        same_bits(&saxpy.to_vec::<f32>()?, &want),
    );
    let want: Vec<f32> = x.iter().map(|&x| horner(&coeffs, x)).collect();
    report.check(
        &format!("POLY ({:#x}, coefficients in regs)", POLY.code()),
        same_bits(&poly.to_vec::<f32>()?, &want),
    );
    let want: Vec<u8> = bytes.iter().rev().copied().collect();
    report.check(
        &format!("REVERSE ({:#x}, {} bytes)", REVERSE.code(), bytes.len()),
        reversed.to_vec::<u8>()? == want,
    );

    // Bad custom tasks: each gets its own status, the good one still runs.
    let ok_out = runner.alloc(16)?;
    let mut batch = runner.batch();
    batch.regs(&regs)?;
    batch.custom(CustomTask::new(UNDEFINED))?;
    batch.custom(CustomTask::new(POLY).dst(&poly).src0(&dev_x))?; // zero coefficients
    batch.custom(
        CustomTask::new(SAXPY)
            .dst(&saxpy)
            .src0(&dev_x)
            .src1(&dev_y)
            .len(6),
    )?;
    batch.custom(
        CustomTask::new(REVERSE)
            .dst(&ok_out)
            .src0(dev_bytes.slice(0..16)?),
    )?;
    let outcome = batch.run_statuses()?;
    let statuses: Vec<_> = (0..outcome.len()).map(|i| outcome.status(i)).collect();
    report.check(
        "undefined custom op → UnknownOp",
        statuses[0] == Some(TaskStatus::UnknownOp),
    );
    report.check(
        "POLY without coefficients → BadLength",
        statuses[1] == Some(TaskStatus::BadLength),
    );
    report.check(
        "SAXPY over 6 bytes → BadLength",
        statuses[2] == Some(TaskStatus::BadLength),
    );
    let want: Vec<u8> = bytes[..16].iter().rev().copied().collect();
    report.check(
        "REVERSE next to them → Ok",
        statuses[3] == Some(TaskStatus::Ok) && ok_out.to_vec::<u8>()? == want,
    );

    if report.wrong == 0 {
        println!("all {} checks passed", report.checks);
    }
    Ok(report.wrong)
}

/// The device's evaluation order (see [`POLY`]).
fn horner(coeffs: &[f32], x: f32) -> f32 {
    let (last, rest) = coeffs.split_last().expect("at least one coefficient");
    rest.iter().rev().fold(*last, |acc, c| acc * x + c)
}

fn same_bits(got: &[f32], want: &[f32]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.to_bits() == w.to_bits())
}
