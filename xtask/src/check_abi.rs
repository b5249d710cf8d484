//! `cargo xtask check-abi`: the rules a device SO must meet to load on an
//! AICPU image (DESIGN §5), checked on the built artifacts.
//!
//! Structural rules (64-bit ELF for the right machine, exactly the contract
//! exports, NEEDED within the allowed libraries) hold for every target. The
//! glibc ceiling is enforced on the aarch64 build only: host builds link the
//! build machine's glibc and serve the simulator on that machine, so for
//! them the highest version is reported, not judged.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};
use simpler_abi::names::{DISPATCHER_SYMBOLS, RUNTIME_SYMBOLS};
use simpler_testkit::files;

use crate::elf::{machine_name, ElfInfo, GlibcVersion};
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
    /// Exactly the symbols it must export, when that is fixed.
    fn exports(self) -> Option<&'static [&'static str]> {
        match self {
            Role::Dispatcher => Some(&DISPATCHER_SYMBOLS),
            Role::Runtime => Some(&RUNTIME_SYMBOLS),
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
        self != Role::Simulator
    }
}

/// `ld-linux-x86-64.so.2`, `ld-linux-aarch64.so.1`, …
fn is_dynamic_loader(name: &str) -> bool {
    name.starts_with("ld-linux-") && name.contains(".so.")
}

/// The rules of one target.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Required `e_machine`.
    pub machine: u16,
    /// Fail on glibc versions above [`GLIBC_CEILING`].
    pub enforce_glibc_ceiling: bool,
}

impl Rules {
    /// The rules for artifacts built for `target`.
    pub fn for_target(target: Target) -> Self {
        Self {
            machine: target.elf_machine(),
            enforce_glibc_ceiling: target.enforces_glibc_ceiling(),
        }
    }
}

/// Every rule `info` breaks in `role`, one specific message each.
pub fn violations(role: Role, info: &ElfInfo, rules: Rules) -> Vec<String> {
    let mut out = Vec::new();
    if !info.class64 {
        out.push("is a 32-bit ELF; device code is 64-bit".to_string());
    }
    if info.machine != rules.machine {
        out.push(format!(
            "is built for {}, expected {}",
            machine_name(info.machine),
            machine_name(rules.machine)
        ));
    }
    if let Some(expected) = role.exports() {
        for symbol in expected {
            if !info.exports.contains(*symbol) {
                out.push(format!("does not export contract symbol `{symbol}`"));
            }
        }
        for symbol in &info.exports {
            if !expected.contains(&symbol.as_str()) {
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
        let info = ElfInfo::read(&path)?;
        let problems = violations(role, &info, rules);
        let summary = summary(&info, role, rules);
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
fn summary(info: &ElfInfo, role: Role, rules: Rules) -> String {
    let mut line = machine_name(info.machine);
    if role.exports().is_some() {
        let _ = write!(line, ", {} exports", info.exports.len());
    }
    let _ = write!(line, ", needs [{}]", info.needed.join(", "));
    match info.glibc_max() {
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

    use object::elf;

    use super::*;

    const HOST: Rules = Rules {
        machine: if cfg!(target_arch = "aarch64") {
            elf::EM_AARCH64
        } else {
            elf::EM_X86_64
        },
        enforce_glibc_ceiling: false,
    };
    const AICPU: Rules = Rules {
        machine: elf::EM_AARCH64,
        enforce_glibc_ceiling: true,
    };

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
        let info = ElfInfo::read(&so).unwrap();
        let expected: std::collections::BTreeSet<String> =
            DISPATCHER_SYMBOLS.iter().map(|s| s.to_string()).collect();
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
        let info = ElfInfo::read(&so).unwrap();
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
    fn glibc_private_and_32_bit_are_violations() {
        let info = ElfInfo {
            class64: false,
            machine: elf::EM_AARCH64,
            exports: RUNTIME_SYMBOLS.iter().map(|s| s.to_string()).collect(),
            needed: vec!["libgcc_s.so.1".into(), "ld-linux-aarch64.so.1".into()],
            glibc_refs: vec![
                crate::elf::VersionedRef {
                    symbol: "memcpy".into(),
                    version: "GLIBC_2.17".into(),
                },
                crate::elf::VersionedRef {
                    symbol: "_dl_x".into(),
                    version: "GLIBC_PRIVATE".into(),
                },
            ],
        };
        assert_eq!(
            violations(Role::Runtime, &info, AICPU),
            [
                "is a 32-bit ELF; device code is 64-bit",
                "references _dl_x@GLIBC_PRIVATE, which is not a numbered glibc version",
            ]
        );
        // The dispatcher may not need libgcc_s; simulator pieces are only
        // checked for class and machine.
        let problems = violations(Role::Dispatcher, &info, AICPU);
        assert!(
            problems.contains(&"needs libgcc_s.so.1, which is not in the allowed list".to_string())
        );
        assert_eq!(violations(Role::Simulator, &info, AICPU).len(), 1);
    }

    #[test]
    fn the_built_host_artifacts_pass_and_are_told_apart() {
        let artifacts = simpler_testkit::host_artifacts();
        let dispatcher = ElfInfo::read(&artifacts.dispatcher()).unwrap();
        let runtime = ElfInfo::read(&artifacts.runtime()).unwrap();
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
