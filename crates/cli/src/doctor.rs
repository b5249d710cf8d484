//! `simpler doctor`: what a user needs to know when it does not work.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use simpler_host::artifacts::{self, files, Side};
use simpler_host::cann::{self, ResolvedSymbol};
use simpler_host::{Cann, CannSource, LaunchPath, Machine};

use crate::stack::{self, Verdict};

pub fn doctor() -> Result<ExitCode> {
    println!("simpler doctor");
    println!();
    println!("host: {}", artifacts::host_triple());

    println!();
    println!("artifacts search order (first directory holding the file wins):");
    print_search("simulator library", Side::Host, &[files::SIM_LIB]);
    for machine in [Machine::AARCH64, Machine::X86_64] {
        print_search(
            &format!("device SOs for {machine}"),
            Side::Device(machine),
            &[files::DISPATCHER, files::RUNTIME],
        );
    }

    println!();
    println!("CANN toolkit:");
    for var in cann::TOOLKIT_ENV {
        println!("  {var:<20} {}", env_or_unset(var));
    }
    for dir in cann::toolkit_dirs() {
        for lib in cann::TOOLKIT_LIBRARIES {
            println!(
                "  {:<40} {}",
                dir.join(lib).display(),
                exists(&dir.join(lib))
            );
        }
    }
    let toolkit_ok = report_backend("CANN toolkit", &CannSource::Toolkit);
    report_stack();

    println!();
    println!("simulator configuration:");
    for var in simpler_host::abi::sim::env::ALL {
        println!("  {var:<34} {}", env_or_unset(var));
    }
    let sim_ok = report_backend("simulator", &CannSource::Simulator);
    if sim_ok {
        println!(
            "  bootstrap (KFC) path: emulated by the simulator; no CANN or driver version applies"
        );
    }

    println!();
    Ok(if toolkit_ok || sim_ok {
        println!(
            "usable: {}",
            [
                ("CANN toolkit (--backend cann)", toolkit_ok),
                ("simulator (--backend sim)", sim_ok)
            ]
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
        );
        ExitCode::SUCCESS
    } else {
        println!("usable: nothing — build the simulator with `cargo xtask build`, or set ASCEND_HOME_PATH");
        ExitCode::FAILURE
    })
}

fn print_search(what: &str, side: Side, names: &[&str]) {
    println!("  {what}:");
    for (i, dir) in artifacts::search_dirs(side).iter().enumerate() {
        let found: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| dir.dir.join(n).is_file())
            .collect();
        println!(
            "    {}. {} ({}){}",
            i + 1,
            dir.dir.display(),
            dir.origin,
            if found.is_empty() {
                String::new()
            } else {
                format!(" — has {}", found.join(", "))
            }
        );
    }
}

/// Loads `source` and prints what resolved; whether it is usable.
fn report_backend(name: &str, source: &CannSource) -> bool {
    println!("  {name} libraries:");
    let cann = match Cann::load(source) {
        Ok(cann) => cann,
        Err(err) => {
            println!("    not usable: {err}");
            return false;
        }
    };
    for lib in cann.libraries() {
        println!("    loaded {}", lib.display());
    }
    let (found, missing): (Vec<&ResolvedSymbol>, Vec<&ResolvedSymbol>) =
        cann.symbols().iter().partition(|s| s.library.is_some());
    println!("    {} symbols resolved", found.len());
    for sym in found {
        if cann.libraries().len() > 1 {
            let lib = sym.library.as_deref().unwrap_or(Path::new("?"));
            println!("      {:<36} {}", sym.symbol, lib.display());
        }
    }
    for sym in missing {
        println!(
            "    optional {} absent ({})",
            sym.symbol,
            if sym.symbol.starts_with("rts") {
                "needed by the binary launch path"
            } else {
                "a simulator-only extra"
            }
        );
    }
    if cann.is_simulator() {
        println!("    device machine {}", cann.device_machine());
    }
    println!(
        "    launch paths   {}",
        LaunchPath::ALL
            .iter()
            .map(|p| format!(
                "{p} ({})",
                if cann.supports(*p) {
                    "supported"
                } else {
                    "unsupported: the rts* calls are missing"
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match cann.device_count() {
        Ok(n) => {
            println!("    devices        {n}");
            n > 0
        }
        Err(err) => {
            println!("    device count failed: {err}");
            false
        }
    }
}

/// The toolkit's and the driver's versions against the bootstrap's floors,
/// one line each, then what that means.
fn report_stack() {
    println!("  bootstrap (KFC) path:");
    let findings = [stack::toolkit(), stack::driver()];
    for finding in &findings {
        println!("    {finding}");
    }
    let too_old: Vec<String> = findings
        .iter()
        .filter(|f| f.verdict() == Verdict::TooOld)
        .map(|f| format!("{} ≥ {}", f.component(), f.required()))
        .collect();
    if !too_old.is_empty() {
        println!(
            "    fails here: the bootstrap ends in 507018 (\"Get KFC DynTileFwkKernelServerInit api success, but func is nullptr\")"
        );
        println!("      hint: install {}", too_old.join(" and "));
    } else if findings.iter().all(|f| f.verdict() == Verdict::Ok) {
        println!("    can work here, unless the task-scheduler firmware lacks KFC (then the first bootstrap is refused as not supported)");
    } else {
        println!("    cannot tell: a version above is unknown");
    }
}

fn env_or_unset(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| "(unset)".into())
}

fn exists(path: &Path) -> &'static str {
    if path.is_file() {
        "found"
    } else {
        "missing"
    }
}
