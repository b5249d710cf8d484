//! `simpler inspect`: what device SOs are built for, export and need.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use simpler_host::{Role, SoInfo};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Shared objects to inspect.
    #[arg(required = true, value_name = "SO")]
    files: Vec<PathBuf>,
}

pub fn inspect(args: &InspectArgs) -> Result<ExitCode> {
    let mut failed = false;
    for (i, path) in args.files.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", path.display());
        let info = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| SoInfo::parse(&bytes).map_err(|e| e.to_string()));
        match info {
            Ok(info) => print_info(&info),
            Err(problem) => {
                println!("  error               {problem}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_info(info: &SoInfo) {
    println!("  machine             {}", info.machine);
    println!("  size                {} bytes", info.size);
    println!("  fingerprint         {:016x}", info.fingerprint);
    println!("  preinstall name     {}", info.preinstall_name());
    println!("  exports             {}", list(&info.exports));
    for role in [Role::Dispatcher, Role::Runtime] {
        let missing = info.missing_exports(role);
        let verdict = if missing.is_empty() {
            "meets it".to_owned()
        } else {
            format!("missing {}", missing.join(", "))
        };
        println!("  {:<19} {verdict}", format!("{role} contract"));
    }
    println!("  needed              {}", list(&info.needed));
    println!(
        "  highest glibc       {}",
        info.max_glibc
            .map(|v| v.to_string())
            .unwrap_or_else(|| "none".into())
    );
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}
