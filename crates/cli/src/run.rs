//! `simpler run`: bootstrap, one self-checking batch with every built-in op,
//! verification on the host, a report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use simpler_host::abi::{fingerprint, OpCode, Task};
use simpler_host::{
    CacheStatus, Cann, CannSource, DeviceRunner, LaunchPath, Machine, Role, SoImage,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The CANN simulator from the artifacts directory.
    Sim,
    /// Real CANN: `$ASCEND_HOME_PATH/lib64`, or the `--cann-lib` libraries.
    Cann,
}

/// The CANN implementation, the device and the dispatcher SO: the flags
/// `simpler run` and `simpler device` share.
#[derive(Args, Debug)]
pub struct Target {
    /// Which CANN implementation to load.
    #[arg(long, value_enum, default_value_t = Backend::Sim)]
    pub backend: Backend,
    /// A library implementing the CANN API; repeat for several (replaces
    /// the default library search).
    #[arg(long = "cann-lib", value_name = "PATH")]
    pub cann_libs: Vec<PathBuf>,
    /// Device id.
    #[arg(long, default_value_t = 0)]
    pub device: i32,
    /// Dispatcher SO (default: from the artifacts directory for the device
    /// machine).
    #[arg(long, value_name = "PATH")]
    pub dispatcher: Option<PathBuf>,
    /// The machine the device side runs (default: aarch64 for `cann`, what
    /// the simulator reports for `sim`).
    #[arg(long, value_name = "aarch64|x86_64", value_parser = parse_machine)]
    pub device_machine: Option<Machine>,
}

impl Target {
    /// The CANN API these flags name and the device machine to check SOs
    /// against.
    pub fn load(&self) -> Result<(Cann, Machine)> {
        let source = if !self.cann_libs.is_empty() {
            CannSource::Libraries(self.cann_libs.clone())
        } else {
            match self.backend {
                Backend::Sim => CannSource::Simulator,
                Backend::Cann => CannSource::Toolkit,
            }
        };
        let cann = Cann::load(&source).context("loading the CANN API")?;
        let machine = self.device_machine.unwrap_or(match self.backend {
            Backend::Sim => cann.device_machine(),
            Backend::Cann => Machine::AARCH64,
        });
        Ok((cann, machine))
    }

    /// The dispatcher SO these flags name, read and checked.
    pub fn dispatcher_image(&self, machine: Machine) -> Result<SoImage> {
        image(self.dispatcher.as_ref(), Role::Dispatcher, machine)
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// AICPU threads per exec launch.
    #[arg(long, default_value_t = 4)]
    threads: u32,
    /// How the runtime's init and exec are launched.
    #[arg(long = "launch-path", value_name = "type2|binary", default_value_t = LaunchPath::Type2,
          value_parser = parse_launch_path)]
    launch_path: LaunchPath,
    /// Runtime SO (default: from the artifacts directory for the device
    /// machine).
    #[arg(long, value_name = "PATH")]
    runtime: Option<PathBuf>,
    /// f32 elements per operand of the self-check.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    elements: u32,
    /// How long the host waits for each exec launch, in milliseconds
    /// (default 60000). The bootstrap and init keep their own 60 s.
    #[arg(
        long = "timeout-ms",
        value_name = "MS",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX))
    )]
    timeout_ms: Option<u32>,
    /// Also run one diagnostic `SleepUs` task of this many microseconds in
    /// the batch: a stand-in for a slow or hung kernel, to try
    /// `--timeout-ms`.
    #[arg(long = "sleep-us", value_name = "US")]
    sleep_us: Option<u64>,
}

/// `type2` or `binary`.
pub fn parse_launch_path(name: &str) -> Result<LaunchPath, String> {
    name.parse().map_err(|e: simpler_host::Error| e.to_string())
}

fn parse_machine(name: &str) -> Result<Machine, String> {
    Machine::from_name(name)
        .ok_or_else(|| format!("unknown machine {name:?}; use aarch64 or x86_64"))
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let (cann, machine) = args.target.load()?;
    // The SOs are read, checked and hashed once, as images, the way an
    // application building several runners should; the report shows what
    // that costs apart from the bootstrap.
    let started = Instant::now();
    let dispatcher = args.target.dispatcher_image(machine)?;
    let runtime = image(args.runtime.as_ref(), Role::Runtime, machine)?;
    let preflight_time = started.elapsed();
    let mut builder = DeviceRunner::builder(&cann)
        .device(args.target.device)
        .threads(args.threads)
        .launch_path(args.launch_path)
        .device_machine(machine)
        .dispatcher_image(dispatcher)
        .runtime_image(runtime);
    if let Some(ms) = args.timeout_ms {
        builder = builder.launch_timeout(Duration::from_millis(u64::from(ms)));
    }
    let mut runner = builder.build().context("building the device runner")?;
    let info = runner.info().clone();

    println!(
        "simpler run: {} ({}), device {}, {} AICPU thread{}",
        match args.target.backend {
            Backend::Sim => "simulator",
            Backend::Cann => "CANN",
        },
        cann.libraries()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        info.device,
        info.threads,
        if info.threads == 1 { "" } else { "s" },
    );
    println!("  device machine  {}", info.device_machine);
    println!(
        "  dispatcher      {} ({} bytes)",
        info.dispatcher, info.dispatcher_len
    );
    println!(
        "  runtime         {} ({} bytes)",
        info.runtime, info.runtime_len
    );
    println!("  fingerprint     {:016x}", info.fingerprint);
    println!("  preinstall name {}", info.preinstall_name);
    println!(
        "  preflight       {} (read, ELF checks and fingerprint of both SOs)",
        ms(preflight_time)
    );
    print_install(
        &info.installed_path,
        info.cache,
        info.bootstrap_time,
        info.bytes_uploaded,
    );
    println!("  launch path     {}", info.launch_path);
    println!("  init            {}", ms(info.init_time));

    let check = self_check(&mut runner, args.elements as usize, args.sleep_us)?;
    println!(
        "  exec            {} tasks over {} f32 elements in {}",
        check.tasks,
        args.elements,
        ms(check.exec_time)
    );
    if check.mismatches.is_empty() {
        println!(
            "  verification    all {} ops correct ({})",
            check.ops.len(),
            check.ops.join(", ")
        );
        println!("OK");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("  verification    FAILED");
        for m in &check.mismatches {
            println!("    {m}");
        }
        bail!(
            "{} of {} ops gave wrong results",
            check.mismatches.len(),
            check.ops.len()
        )
    }
}

/// The `role` SO from `path`, or from the artifacts directories.
fn image(path: Option<&PathBuf>, role: Role, machine: Machine) -> Result<SoImage> {
    let image = match path {
        Some(path) => SoImage::from_path(path, role, machine),
        None => SoImage::artifact(role, machine),
    };
    image.with_context(|| format!("preparing the {role} SO"))
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

struct SelfCheck {
    tasks: usize,
    exec_time: Duration,
    ops: Vec<&'static str>,
    mismatches: Vec<String>,
}

/// One batch with one task per built-in op (the diagnostic `SleepUs` only
/// when asked for, `Panic` never), checked against the same computation on
/// the host.
fn self_check(runner: &mut DeviceRunner, n: usize, sleep_us: Option<u64>) -> Result<SelfCheck> {
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.25).collect();
    let b: Vec<f32> = (0..n).map(|i| (n - i) as f32 * 0.125 + 1.0).collect();
    let factor = -3.5f32;
    let fill = 0xa5u8;
    let bytes = n * 4;

    let dev_a = runner.upload(&a)?;
    let dev_b = runner.upload(&b)?;
    let copy = runner.alloc(bytes)?;
    let filled = runner.alloc(bytes)?;
    let added = runner.alloc(bytes)?;
    let scaled = runner.alloc(bytes)?;
    let sum = runner.alloc(4)?;
    let hash = runner.alloc(8)?;

    let mut batch = runner.batch();
    batch.copy(&copy, &dev_b)?;
    batch.fill(&filled, fill)?;
    batch.add_f32(&added, &dev_a, &dev_b)?;
    batch.scale_f32(&scaled, &dev_a, factor)?;
    batch.sum_f32(&sum, &dev_a)?;
    batch.fnv1a64(&hash, &dev_a)?;
    if let Some(micros) = sleep_us {
        batch.push_raw(Task {
            op: OpCode::SleepUs as u32,
            scalar: micros,
            ..Task::default()
        });
    }
    let tasks = batch.len();
    let started = Instant::now();
    batch.run().context("running the self-check batch")?;
    let exec_time = started.elapsed();

    let mut mismatches = Vec::new();
    let mut expect = |op: OpCode, ok: bool, detail: String| {
        if !ok {
            mismatches.push(format!("{op:?}: {detail}"));
        }
    };
    let got = copy.to_vec::<f32>()?;
    expect(OpCode::Copy, bits(&got) == bits(&b), first_diff(&got, &b));
    let got = filled.to_vec::<u8>()?;
    expect(
        OpCode::Fill,
        got.iter().all(|&x| x == fill),
        format!("expected every byte {fill:#04x}"),
    );
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    let got = added.to_vec::<f32>()?;
    expect(
        OpCode::AddF32,
        bits(&got) == bits(&want),
        first_diff(&got, &want),
    );
    let want: Vec<f32> = a.iter().map(|x| x * factor).collect();
    let got = scaled.to_vec::<f32>()?;
    expect(
        OpCode::ScaleF32,
        bits(&got) == bits(&want),
        first_diff(&got, &want),
    );
    let want = a.iter().fold(0.0f32, |acc, x| acc + x);
    let got = sum.to_vec::<f32>()?[0];
    expect(
        OpCode::SumF32,
        got.to_bits() == want.to_bits(),
        format!("device {got}, host {want}"),
    );
    let want = fingerprint(&le_bytes(&a));
    let got = hash.to_vec::<u64>()?[0];
    expect(
        OpCode::Fnv1a64,
        got == want,
        format!("device {got:016x}, host {want:016x}"),
    );

    Ok(SelfCheck {
        tasks,
        exec_time,
        ops: vec!["Copy", "Fill", "AddF32", "ScaleF32", "SumF32", "Fnv1a64"],
        mismatches,
    })
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn first_diff(got: &[f32], want: &[f32]) -> String {
    match got
        .iter()
        .zip(want)
        .position(|(g, w)| g.to_bits() != w.to_bits())
    {
        Some(i) => format!("element {i}: device {}, host {}", got[i], want[i]),
        None => format!("{} elements, expected {}", got.len(), want.len()),
    }
}

/// The report's `installed at` and `bootstrap` lines (`simpler run` and
/// `simpler launch` print them alike).
pub fn print_install(path: &str, cache: CacheStatus, took: Duration, bytes_uploaded: u64) {
    println!("  installed at    {path}");
    println!(
        "  bootstrap       {} in {}, {bytes_uploaded} bytes uploaded",
        match cache {
            CacheStatus::Miss => "performed",
            CacheStatus::Hit => "cache hit",
            CacheStatus::Joined => "joined a concurrent bootstrap",
        },
        ms(took),
    );
}
