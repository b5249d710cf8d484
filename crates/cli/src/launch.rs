//! `simpler launch SO KERNEL`: install any AICPU SO through the
//! dispatcher and launch one of its kernels once, with a payload from a
//! file, then report what that took.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use simpler_host::{LaunchPath, Module, Role, SoImage, Stream};

use crate::run::{ms, parse_launch_path, print_install, Backend, Target};

#[derive(Args, Debug)]
pub struct LaunchArgs {
    /// The AICPU SO (any ELF shared object for the device's machine).
    #[arg(value_name = "SO")]
    so: PathBuf,
    /// The kernel to launch: a function the SO exports, `uint32_t
    /// KERNEL(void *param)`, returning 0 on success.
    #[arg(value_name = "KERNEL")]
    kernel: String,
    /// A file whose bytes are the start of the kernel's argument block
    /// (`param` points at them); default: no payload (8 zero bytes).
    #[arg(long = "payload-file", value_name = "FILE")]
    payload_file: Option<PathBuf>,
    /// AICPU threads the kernel runs on (its `blockDim`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    threads: u32,
    /// How the kernel is launched.
    #[arg(long = "launch-path", value_name = "type2|binary", default_value_t = LaunchPath::Type2,
          value_parser = parse_launch_path)]
    launch_path: LaunchPath,
    #[command(flatten)]
    target: Target,
    /// How long the host waits for the kernel, in milliseconds (default
    /// 60000).
    #[arg(
        long = "timeout-ms",
        value_name = "MS",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX))
    )]
    timeout_ms: Option<u32>,
}

pub fn launch(args: &LaunchArgs) -> Result<ExitCode> {
    let (cann, machine) = args.target.load()?;
    let payload = match &args.payload_file {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("reading the payload file {}", path.display()))?,
        None => Vec::new(),
    };
    let dispatcher = args.target.dispatcher_image(machine)?;
    let so =
        SoImage::from_path(&args.so, Role::Kernels, machine).context("preparing the kernel SO")?;
    let module = Module::builder(&cann)
        .device(args.target.device)
        .device_machine(machine)
        .dispatcher_image(dispatcher)
        .so_image(so)
        .kernel(args.kernel.as_str())
        .launch_path(args.launch_path)
        .build()
        .context("installing the kernel SO")?;
    let info = module.info();
    println!(
        "simpler launch: {} of {} on {} device {}, {} AICPU thread{}",
        args.kernel,
        info.so,
        match args.target.backend {
            Backend::Sim => "simulator",
            Backend::Cann => "CANN",
        },
        info.device,
        args.threads,
        if args.threads == 1 { "" } else { "s" },
    );
    println!("  fingerprint     {:016x}", info.fingerprint);
    println!("  preinstall name {}", info.preinstall_name);
    print_install(
        &info.installed_path,
        info.cache,
        info.bootstrap_time,
        info.bytes_uploaded,
    );
    match info.registration {
        None => println!("  launch path     {}", info.launch_path),
        Some(_) => println!(
            "  launch path     {} (kernel registered in {})",
            info.launch_path,
            ms(info.registration_time)
        ),
    }
    let kernel = module.kernel(&args.kernel)?;
    let mut stream = Stream::new(module.device()).context("creating a stream")?;
    let timeout = Duration::from_millis(u64::from(args.timeout_ms.unwrap_or(60_000)));
    let started = Instant::now();
    let result = kernel.run(&mut stream, args.threads, &payload, Some(timeout));
    let took = started.elapsed();
    println!(
        "  launch          {} bytes of payload, {} until the sync returned",
        payload.len(),
        ms(took)
    );
    result.with_context(|| format!("running kernel {}", args.kernel))?;
    println!("OK");
    Ok(ExitCode::SUCCESS)
}
