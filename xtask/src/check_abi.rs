//! `cargo xtask check-abi`: the rules a device SO must meet to load on an
//! AICPU image, checked on the built artifacts.
//!
//! Structural rules (64-bit ELF for the right machine, exactly the contract
//! exports, NEEDED within the allowed libraries) hold for every target. The
//! glibc ceiling is enforced on the aarch64 build only: host builds link the
//! build machine's glibc and serve the simulator on that machine, so for
//! them the highest version is reported, not judged.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use simpler_abi::artifacts::files;
use simpler_host::elf::GlibcVersion;
use simpler_host::{Machine, PreflightProblem, SoInfo};

use crate::flags::CheckAbiArgs;
use crate::target::{Target, GLIBC_CEILING};

/// What a file in the artifacts directory is, and so which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The dispatcher SO: contract exports, libc and libdl only.
    Dispatcher,
    /// The runtime SO: its exports; may also need libpthread, libm, libgcc_s.
    Runtime,
    /// A simulator piece: only its class and machine are checked.
    Simulator,
}

impl Role {
    /// The device SO role whose contract fixes exactly what it exports;
    /// `None` for simulator pieces.
    fn device_role(self) -> Option<simpler_host::Role> {
        match self {
            Role::Dispatcher => Some(simpler_host::Role::Dispatcher),
            Role::Runtime => Some(simpler_host::Role::Runtime),
            Role::Simulator => None,
        }
    }

    /// Whether it may need the library `name`; `None` when unchecked.
    fn may_need(self, name: &str) -> Option<bool> {
        let base = matches!(name, "libc.so.6" | "libdl.so.2") || is_dynamic_loader(name);
        match self {
            Role::Dispatcher => Some(base),
            Role::Runtime => {
                Some(base || matches!(name, "libpthread.so.0" | "libm.so.6" | "libgcc_s.so.1"))
            }
            Role::Simulator => None,
        }
    }

    /// Whether the glibc ceiling applies (to the device SOs only).
    fn is_device_so(self) -> bool {
        self.device_role().is_some()
    }
}

/// `ld-linux-x86-64.so.2`, `ld-linux-aarch64.so.1`, …
fn is_dynamic_loader(name: &str) -> bool {
    name.starts_with("ld-linux-") && name.contains(".so.")
}

/// The rules of one target.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Required machine.
    pub machine: Machine,
    /// Fail on glibc versions above [`GLIBC_CEILING`].
    pub enforce_glibc_ceiling: bool,
}

impl Rules {
    /// The rules for artifacts built for `target`.
    pub fn for_target(target: Target) -> Self {
        Self {
            machine: target.machine(),
            enforce_glibc_ceiling: target.enforces_glibc_ceiling(),
        }
    }
}

/// What `check-abi` finds in one file.
#[derive(Debug)]
struct Verdict {
    /// One line on what the file is, exports, needs and references.
    summary: String,
    /// Every rule it breaks, one specific message each.
    problems: Vec<String>,
}

/// Judges the file `bytes` as `role` under `rules`.
fn judge(role: Role, bytes: &[u8], rules: Rules) -> Verdict {
    match SoInfo::parse(bytes) {
        Ok(info) => Verdict {
            summary: summary(&info, role, rules),
            problems: violations(role, &info, rules),
        },
        Err(problem) => Verdict {
            summary: "unreadable".to_string(),
            problems: vec![unreadable(&problem)],
        },
    }
}

/// The rule broken by a file the ELF reader rejects.
fn unreadable(problem: &PreflightProblem) -> String {
    match problem {
        PreflightProblem::Not64Bit => "is a 32-bit ELF; device code is 64-bit".to_string(),
        other => format!("is not a readable 64-bit ELF shared object: {other}"),
    }
}

/// Every rule `info` breaks in `role`, one specific message each.
pub fn violations(role: Role, info: &SoInfo, rules: Rules) -> Vec<String> {
    let mut out = Vec::new();
    if info.machine != rules.machine {
        out.push(format!(
            "is built for {}, expected {}",
            info.machine, rules.machine
        ));
    }
    if let Some(device_role) = role.device_role() {
        for symbol in info.missing_exports(device_role) {
            out.push(format!("does not export contract symbol `{symbol}`"));
        }
        for symbol in &info.exports {
            if !device_role.contract().contains(&symbol.as_str()) {
                out.push(format!(
                    "exports `{symbol}`, which is not a contract symbol"
                ));
            }
        }
    }
    for lib in &info.needed {
        if role.may_need(lib) == Some(false) {
            out.push(format!("needs {lib}, which is not in the allowed list"));
        }
    }
    if rules.enforce_glibc_ceiling && role.is_device_so() {
        let (major, minor) = GLIBC_CEILING;
        let ceiling = GlibcVersion(major, minor, 0);
        for reference in &info.glibc_refs {
            match reference.glibc_version() {
                Some(version) if version <= ceiling => {}
                Some(_) => out.push(format!("references {reference}, above {ceiling}")),
                None => out.push(format!(
                    "references {reference}, which is not a numbered glibc version"
                )),
            }
        }
    }
    out
}

/// The files of an artifacts directory that `check-abi` reads, and whether
/// each must be there.
const CHECKED: [(&str, Role, bool); 4] = [
    (files::DISPATCHER, Role::Dispatcher, true),
    (files::RUNTIME, Role::Runtime, true),
    (files::SIM_LIB, Role::Simulator, false),
    (files::SIM_DEVICE_BIN, Role::Simulator, false),
];

/// Checks the artifacts of `args.target`; an error if any rule is broken.
pub fn run(root: &Path, args: &CheckAbiArgs) -> Result<()> {
    let dir = args.target.artifacts_dir(root);
    let rules = Rules::for_target(args.target);
    let mut failures = 0;
    for (name, role, required) in CHECKED {
        let path = dir.join(name);
        if !path.exists() {
            if required {
                failures += 1;
                println!(
                    "FAIL {name}: missing from {}; run `cargo xtask build --target {}`",
                    dir.display(),
                    args.target.flag()
                );
            }
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let Verdict { summary, problems } = judge(role, &bytes, rules);
        if problems.is_empty() {
            println!("ok   {name}: {summary}");
        } else {
            failures += problems.len();
            println!("FAIL {name}: {summary}");
            for problem in problems {
                println!("     - {name} {problem}");
            }
        }
    }
    if failures > 0 {
        bail!("check-abi: {failures} problem(s) in {}", dir.display());
    }
    println!("check-abi: {} passes", dir.display());
    Ok(())
}

/// One line on what a file is, exports, needs and references.
fn summary(info: &SoInfo, role: Role, rules: Rules) -> String {
    let mut line = info.machine.to_string();
    if role.is_device_so() {
        let _ = write!(line, ", {} exports", info.exports.len());
    }
    let _ = write!(line, ", needs [{}]", info.needed.join(", "));
    match info.max_glibc {
        Some(max) => {
            let _ = write!(line, ", glibc max {max}");
            if !rules.enforce_glibc_ceiling && role.is_device_so() {
                line.push_str(" (ceiling enforced on the aarch64 build only)");
            }
        }
        None => line.push_str(", no versioned glibc symbols"),
    }
    line
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use simpler_abi::artifacts::ARTIFACTS_DIR_ENV;
    use simpler_abi::names::{DISPATCHER_SYMBOLS, RUNTIME_SYMBOLS};
    use simpler_host::elf::GlibcRef;

    use super::*;
    use crate::build;

    const HOST: Rules = Rules {
        machine: Machine::host(),
        enforce_glibc_ceiling: false,
    };
    const AICPU: Rules = Rules {
        machine: Machine::AARCH64,
        enforce_glibc_ceiling: true,
    };

    fn read(path: &Path) -> SoInfo {
        SoInfo::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The host artifacts directory: `SIMPLER_ARTIFACTS_DIR` when set (as
    /// `cargo xtask test` sets it), else built now, as
    /// `cargo xtask build --target host` builds it.
    fn host_artifacts() -> PathBuf {
        let root = crate::project_root();
        match std::env::var_os(ARTIFACTS_DIR_ENV) {
            Some(dir) => root.join(dir),
            None => build::release(&root, Target::Host).expect("build the host artifacts"),
        }
    }

    /// Builds a shared object from C `source` with the host's C compiler,
    /// exporting exactly `exports` (through a version script).
    fn compile_so(
        dir: &Path,
        name: &str,
        source: &str,
        exports: &[&str],
        libs: &[&str],
    ) -> PathBuf {
        let c = dir.join(format!("{name}.c"));
        let map = dir.join(format!("{name}.map"));
        let so = dir.join(format!("{name}.so"));
        std::fs::write(&c, source).unwrap();
        let globals: String = exports.iter().map(|s| format!("{s}; ")).collect();
        std::fs::write(&map, format!("{{ global: {globals}local: *; }};")).unwrap();
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&so)
            .arg(&c)
            .arg(format!("-Wl,--version-script={}", map.display()))
            .arg("-Wl,--no-as-needed")
            .args(libs)
            .output()
            .expect("run the host C compiler (cc)");
        assert!(
            out.status.success(),
            "cc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        so
    }

    /// A dispatcher look-alike that calls `getrandom` (GLIBC_2.25: newer
    /// than the ceiling on every architecture).
    const LOOKALIKE: &str = r#"
        #include <string.h>
        #include <sys/random.h>
        int StaticTileFwkBackendKernelServer(void *a) { return 0; }
        int DynTileFwkBackendKernelServer(void *a) { return 0; }
        int DynTileFwkBackendKernelServerInit(void *a) {
            char buf[8];
            if (getrandom(buf, sizeof buf, 0) < 0) return 1;
            memcpy(a, buf, sizeof buf);
            return 0;
        }
    "#;

    #[test]
    fn host_rules_accept_a_well_formed_lookalike_and_aicpu_rules_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let so = compile_so(dir.path(), "lookalike", LOOKALIKE, &DISPATCHER_SYMBOLS, &[]);
        let info = read(&so);
        let mut expected: Vec<String> = DISPATCHER_SYMBOLS.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(info.exports, expected);
        assert!(
            info.needed.contains(&"libc.so.6".to_string()),
            "{:?}",
            info.needed
        );
        assert!(info
            .glibc_refs
            .iter()
            .any(|r| r.symbol == "getrandom" && r.version == "GLIBC_2.25"));
        assert_eq!(
            violations(Role::Dispatcher, &info, HOST),
            Vec::<String>::new()
        );

        let problems = violations(Role::Dispatcher, &info, AICPU);
        if cfg!(target_arch = "x86_64") {
            assert!(
                problems.contains(&"is built for x86_64, expected aarch64".to_string()),
                "{problems:?}"
            );
        }
        assert!(
            problems.contains(&"references getrandom@GLIBC_2.25, above GLIBC_2.17".to_string()),
            "{problems:?}"
        );
    }

    #[test]
    fn wrong_exports_and_libraries_are_each_reported() {
        let dir = tempfile::tempdir().unwrap();
        let source = r#"
            #include <math.h>
            int StaticTileFwkBackendKernelServer(void *a) { return 0; }
            int DynTileFwkBackendKernelServerInit(void *a) { return 0; }
            double helper(double x) { return cos(x); }
        "#;
        let exports = [
            "StaticTileFwkBackendKernelServer",
            "DynTileFwkBackendKernelServerInit",
            "helper",
        ];
        let so = compile_so(dir.path(), "wrong", source, &exports, &["-lm"]);
        let info = read(&so);
        let problems = violations(Role::Dispatcher, &info, HOST);
        assert_eq!(
            problems,
            [
                "does not export contract symbol `DynTileFwkBackendKernelServer`",
                "exports `helper`, which is not a contract symbol",
                "needs libm.so.6, which is not in the allowed list",
            ],
        );
        // The runtime SO may need libm, but its exports are different.
        let problems = violations(Role::Runtime, &info, HOST);
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems.iter().all(|p| p.contains("export")),
            "{problems:?}"
        );
    }

    #[test]
    fn glibc_private_is_a_violation_and_simulator_pieces_are_checked_for_machine_only() {
        let mut exports: Vec<String> = RUNTIME_SYMBOLS.iter().map(|s| s.to_string()).collect();
        exports.sort();
        let info = SoInfo {
            machine: Machine::AARCH64,
            size: 0,
            fingerprint: 0,
            exports,
            symbols: Vec::new(),
            interpreter: None,
            needed: vec!["libgcc_s.so.1".into(), "ld-linux-aarch64.so.1".into()],
            max_glibc: Some(GlibcVersion(2, 17, 0)),
            glibc_refs: vec![
                GlibcRef {
                    symbol: "memcpy".into(),
                    version: "GLIBC_2.17".into(),
                },
                GlibcRef {
                    symbol: "_dl_x".into(),
                    version: "GLIBC_PRIVATE".into(),
                },
            ],
        };
        assert_eq!(
            violations(Role::Runtime, &info, AICPU),
            ["references _dl_x@GLIBC_PRIVATE, which is not a numbered glibc version"]
        );
        // The dispatcher may not need libgcc_s.
        let problems = violations(Role::Dispatcher, &info, AICPU);
        assert!(
            problems.contains(&"needs libgcc_s.so.1, which is not in the allowed list".to_string())
        );
        assert_eq!(
            violations(Role::Simulator, &info, AICPU),
            Vec::<String>::new()
        );
        let x86 = SoInfo {
            machine: Machine::X86_64,
            ..info
        };
        assert_eq!(
            violations(Role::Simulator, &x86, AICPU),
            ["is built for x86_64, expected aarch64"]
        );
    }

    #[test]
    fn files_the_reader_rejects_break_a_rule_each() {
        let dir = tempfile::tempdir().unwrap();
        let so = compile_so(dir.path(), "ok", LOOKALIKE, &DISPATCHER_SYMBOLS, &[]);
        let mut elf32 = std::fs::read(&so).unwrap();
        elf32[4] = 1; // EI_CLASS: ELFCLASS32
        let verdict = judge(Role::Simulator, &elf32, HOST);
        assert_eq!(
            verdict.problems,
            ["is a 32-bit ELF; device code is 64-bit"],
            "{verdict:?}"
        );
        let verdict = judge(Role::Runtime, b"#!/bin/sh\n", HOST);
        assert_eq!(
            verdict.problems,
            ["is not a readable 64-bit ELF shared object: not an ELF file"],
            "{verdict:?}"
        );
        assert_eq!(verdict.summary, "unreadable");
    }

    #[test]
    fn the_built_host_artifacts_pass_and_are_told_apart() {
        let artifacts = host_artifacts();
        let dispatcher = read(&artifacts.join(files::DISPATCHER));
        let runtime = read(&artifacts.join(files::RUNTIME));
        assert_eq!(
            violations(Role::Dispatcher, &dispatcher, HOST),
            Vec::<String>::new()
        );
        assert_eq!(
            violations(Role::Runtime, &runtime, HOST),
            Vec::<String>::new()
        );
        // Each checked against the other's contract fails on its exports.
        assert!(!violations(Role::Runtime, &dispatcher, HOST).is_empty());
        assert!(!violations(Role::Dispatcher, &runtime, HOST).is_empty());
    }
}
