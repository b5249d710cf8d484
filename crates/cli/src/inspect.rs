//! `simpler inspect`: what device SOs are built for, export and need.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use simpler_host::{PreflightProblem, Role, SoInfo, SymbolKind};

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
            Ok(info) => print_info(&info, path),
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

fn print_info(info: &SoInfo, path: &Path) {
    println!("  machine             {}", info.machine);
    println!("  size                {} bytes", info.size);
    println!("  fingerprint         {:016x}", info.fingerprint);
    println!("  preinstall name     {}", info.preinstall_name());
    if let Some(interpreter) = &info.interpreter {
        println!("  interpreter         {interpreter}");
    }
    println!("  exports             {}", list(&exports(info)));
    for role in [Role::Dispatcher, Role::Runtime] {
        // The preflight's own check, for a device of the file's machine:
        // "meets it" exactly when the preflight would accept the file.
        let verdict = match info.check(role, info.machine, &path.display().to_string()) {
            Ok(()) => "meets it".to_owned(),
            Err(err) => match err.problem {
                PreflightProblem::MissingExports { missing, .. } => {
                    format!("missing {}", missing.join(", "))
                }
                problem => problem.to_string(),
            },
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

/// The exported names, each one that is not a function tagged with its
/// ELF type.
fn exports(info: &SoInfo) -> Vec<String> {
    info.symbols
        .iter()
        .filter_map(|s| {
            let tag = match s.kind {
                SymbolKind::Undefined => return None,
                SymbolKind::Function | SymbolKind::Ifunc => return Some(s.name.clone()),
                SymbolKind::Object => "STT_OBJECT".to_owned(),
                SymbolKind::ThreadLocal => "STT_TLS".to_owned(),
                SymbolKind::Common => "STT_COMMON".to_owned(),
                SymbolKind::NoType => "STT_NOTYPE".to_owned(),
                SymbolKind::Other(t) => format!("type {t}"),
            };
            Some(format!("{} [{tag}]", s.name))
        })
        .collect()
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}
