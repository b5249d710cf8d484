//! The tools beyond a plain Rust toolchain that some commands need, how to
//! tell whether they are present, and how to install them.
//!
//! Deciding ([`plan`]) is separate from looking ([`Probe::of_this_machine`])
//! and from acting ([`ensure`]), so the decision is tested with made-up
//! machines. Nothing is ever skipped: a missing tool is installed (and the
//! command echoed) or the run stops with the exact command to run.

use std::env;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};
use simpler_abi::artifacts::TRIPLE_AARCH64;

use crate::cargo::cargo;
use crate::flags::ToolchainArgs;
use crate::run;
use crate::target::Target;

/// PyPI packages that provide cargo-zigbuild and the zig it links with,
/// pinned to versions known to build the aarch64 SOs.
const PIP_PACKAGES: [&str; 2] = ["ziglang==0.17.1", "cargo-zigbuild==0.24.0"];
/// Debian packages that run aarch64 Linux programs on another machine.
const APT_PACKAGES: [&str; 2] = ["qemu-user", "libc6-arm64-cross"];
/// The aarch64 glibc sysroot `libc6-arm64-cross` installs (qemu's `-L`).
pub const AARCH64_SYSROOT: &str = "/usr/aarch64-linux-gnu";
/// The dynamic loader inside [`AARCH64_SYSROOT`]; its presence is the probe.
const AARCH64_LOADER: &str = "lib/ld-linux-aarch64.so.1";
/// The qemu-user binary for aarch64.
pub const QEMU_AARCH64: &str = "qemu-aarch64";

/// Something a command needs beyond the host Rust toolchain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// rustfmt and clippy for the active toolchain.
    Lints,
    /// The Rust standard library for aarch64-unknown-linux-gnu.
    RustAarch64,
    /// cargo-zigbuild and zig, to link aarch64 code against glibc 2.17.
    Zigbuild,
    /// qemu-aarch64 and an aarch64 glibc, to run aarch64 programs here.
    Qemu,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Need::Lints => "rustfmt and clippy",
            Need::RustAarch64 => "Rust standard library for aarch64-unknown-linux-gnu",
            Need::Zigbuild => "cargo-zigbuild and zig",
            Need::Qemu => "qemu-aarch64 and the aarch64 glibc in /usr/aarch64-linux-gnu",
        })
    }
}

/// What a command targeting `target` needs (`qemu`: it also runs aarch64
/// programs).
pub fn needs(target: Target, qemu: bool) -> Vec<Need> {
    let mut needs = Vec::new();
    if target == Target::Aarch64 {
        needs.extend([Need::RustAarch64, Need::Zigbuild]);
    }
    if qemu {
        needs.push(Need::Qemu);
    }
    needs
}

/// What was found on the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// `cargo fmt` and `cargo clippy` run.
    pub lints: bool,
    /// The aarch64 standard library is installed for the active toolchain.
    pub rust_aarch64: bool,
    /// `rustup` runs.
    pub rustup: bool,
    /// A working `cargo-zigbuild` executable.
    pub zigbuild: Option<PathBuf>,
    /// zig runs (`zig` on PATH or the `ziglang` Python package).
    pub zig: bool,
    /// `python3 -m pip` runs.
    pub pip: bool,
    /// `qemu-aarch64` runs.
    pub qemu: bool,
    /// The aarch64 sysroot's dynamic loader exists.
    pub aarch64_sysroot: bool,
    /// `apt-get` is on PATH.
    pub apt: bool,
    /// xtask runs as root (so apt-get may install).
    pub root: bool,
}

impl Probe {
    /// Looks at this machine, from the workspace `root` (so that rustup
    /// picks the pinned toolchain).
    pub fn of_this_machine(root: &Path) -> Self {
        let ok = |cmd: &mut Command| run::probe(cmd.current_dir(root)).is_some();
        Probe {
            lints: ok(Command::new(cargo()).args(["fmt", "--version"]))
                && ok(Command::new(cargo()).args(["clippy", "--version"])),
            rust_aarch64: rust_target_installed(root, TRIPLE_AARCH64),
            rustup: ok(Command::new("rustup").arg("--version")),
            zigbuild: find_zigbuild(root),
            zig: ok(Command::new("zig").arg("version"))
                || ok(Command::new("python3").args(["-m", "ziglang", "version"])),
            pip: ok(Command::new("python3").args(["-m", "pip", "--version"])),
            qemu: ok(Command::new(QEMU_AARCH64).arg("--version")),
            aarch64_sysroot: Path::new(AARCH64_SYSROOT).join(AARCH64_LOADER).exists(),
            apt: find_on_path("apt-get").is_some(),
            root: std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0),
        }
    }

    fn has(&self, need: Need) -> bool {
        match need {
            Need::Lints => self.lints,
            Need::RustAarch64 => self.rust_aarch64,
            Need::Zigbuild => self.zigbuild.is_some() && self.zig,
            Need::Qemu => self.qemu && self.aarch64_sysroot,
        }
    }
}

/// A command line, with the environment it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    env: Vec<(&'static str, &'static str)>,
    argv: Vec<String>,
}

impl Cmd {
    fn new<I: IntoIterator<Item = S>, S: Into<String>>(argv: I) -> Self {
        Self {
            env: Vec::new(),
            argv: argv.into_iter().map(Into::into).collect(),
        }
    }

    fn env(mut self, key: &'static str, value: &'static str) -> Self {
        self.env.push((key, value));
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]).envs(self.env.iter().copied());
        cmd
    }

    /// The shell line.
    pub fn line(&self) -> String {
        run::display(&self.command())
    }
}

/// One thing to do about a missing tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// xtask can install it by running these commands.
    Run {
        /// What gets installed.
        what: &'static str,
        /// The commands, in order.
        commands: Vec<Cmd>,
    },
    /// A person has to: xtask cannot, for `reason`.
    Manual {
        /// What is missing.
        what: &'static str,
        /// Why xtask cannot install it.
        reason: &'static str,
        /// The commands to run.
        commands: Vec<Cmd>,
    },
}

/// What to do so that every one of `needs` is present on `probe`'s machine.
pub fn plan(needs: &[Need], probe: &Probe) -> Vec<Step> {
    let mut steps = Vec::new();
    for &need in needs {
        if probe.has(need) {
            continue;
        }
        steps.push(match need {
            Need::Lints => {
                let what = "rustfmt and clippy";
                let commands = vec![Cmd::new([
                    "rustup",
                    "component",
                    "add",
                    "rustfmt",
                    "clippy",
                ])];
                if probe.rustup {
                    Step::Run { what, commands }
                } else {
                    Step::Manual {
                        what,
                        reason: "rustup is not installed; add the components to this toolchain",
                        commands,
                    }
                }
            }
            Need::RustAarch64 => {
                let what = "the Rust standard library for aarch64-unknown-linux-gnu";
                let commands = vec![Cmd::new(["rustup", "target", "add", TRIPLE_AARCH64])];
                if probe.rustup {
                    Step::Run { what, commands }
                } else {
                    Step::Manual {
                        what,
                        reason: "rustup is not installed; add the target to this toolchain",
                        commands,
                    }
                }
            }
            Need::Zigbuild => {
                let what = "cargo-zigbuild and zig (PyPI: ziglang, cargo-zigbuild)";
                let mut argv = vec!["python3", "-m", "pip", "install"];
                argv.extend(PIP_PACKAGES);
                let commands = vec![Cmd::new(argv)];
                if probe.pip {
                    Step::Run { what, commands }
                } else {
                    Step::Manual {
                        what,
                        reason: "`python3 -m pip` does not run",
                        commands,
                    }
                }
            }
            Need::Qemu => {
                let what =
                    "qemu-aarch64 and the aarch64 glibc (Debian: qemu-user, libc6-arm64-cross)";
                let mut install = vec!["apt-get", "install", "-y", "--no-install-recommends"];
                install.extend(APT_PACKAGES);
                let frontend = ("DEBIAN_FRONTEND", "noninteractive");
                let apt = |argv: Vec<&str>| Cmd::new(argv).env(frontend.0, frontend.1);
                match (probe.apt, probe.root) {
                    (true, true) => Step::Run {
                        what,
                        commands: vec![apt(vec!["apt-get", "update"]), apt(install)],
                    },
                    (true, false) => Step::Manual {
                        what,
                        reason: "installing Debian packages needs root",
                        commands: vec![
                            Cmd::new(["sudo", "apt-get", "update"]),
                            Cmd::new([vec!["sudo"], install].concat()),
                        ],
                    },
                    (false, _) => Step::Manual {
                        what,
                        reason: "there is no apt-get; install the equivalent packages \
                                 (qemu-aarch64, and an aarch64 glibc under /usr/aarch64-linux-gnu)",
                        commands: vec![Cmd::new(install)],
                    },
                }
            }
        });
    }
    steps
}

/// The tools found or installed.
#[derive(Debug)]
pub struct Tools {
    /// The cargo-zigbuild executable, when it was needed.
    pub zigbuild: Option<PathBuf>,
}

/// Makes sure every one of `needs` is present: installs what it can (echoing
/// each command), then stops with the exact commands for the rest.
pub fn ensure(root: &Path, needs: &[Need]) -> Result<Tools> {
    if needs.is_empty() {
        return Ok(Tools { zigbuild: None });
    }
    let probe = Probe::of_this_machine(root);
    let steps = plan(needs, &probe);
    if steps.is_empty() {
        return Ok(Tools {
            zigbuild: probe.zigbuild,
        });
    }
    let mut manual = String::new();
    for step in &steps {
        match step {
            Step::Run { what, commands } => {
                eprintln!("xtask: installing {what}:");
                for cmd in commands {
                    run::run(cmd.command().current_dir(root))?;
                }
            }
            Step::Manual {
                what,
                reason,
                commands,
            } => {
                manual.push_str(&format!("\n  {what} is missing ({reason}); run:"));
                for cmd in commands {
                    manual.push_str(&format!("\n    {}", cmd.line()));
                }
            }
        }
    }
    if !manual.is_empty() {
        bail!("missing tools xtask cannot install:{manual}");
    }
    let probe = Probe::of_this_machine(root);
    let still: Vec<String> = needs
        .iter()
        .filter(|n| !probe.has(**n))
        .map(Need::to_string)
        .collect();
    if !still.is_empty() {
        bail!(
            "installed, but still not usable: {} (see the output above)",
            still.join("; ")
        );
    }
    Ok(Tools {
        zigbuild: probe.zigbuild,
    })
}

/// `cargo xtask toolchain`: report, and unless `--dry-run`, install.
pub fn run(root: &Path, args: &ToolchainArgs) -> Result<()> {
    let mut needs = vec![Need::Lints];
    needs.extend(self::needs(args.target, args.qemu));
    let probe = Probe::of_this_machine(root);
    for need in &needs {
        let state = if probe.has(*need) {
            "present"
        } else {
            "missing"
        };
        println!("{state:8} {need}");
    }
    if let Some(path) = &probe.zigbuild {
        println!("cargo-zigbuild: {}", path.display());
    }
    let steps = plan(&needs, &probe);
    if args.dry_run {
        if steps.is_empty() {
            println!("nothing to install");
        }
        for step in &steps {
            let (verb, commands) = match step {
                Step::Run { commands, .. } => ("would run", commands),
                Step::Manual { commands, .. } => ("cannot install; run by hand", commands),
            };
            println!("{verb}:");
            for cmd in commands {
                println!("  {}", cmd.line());
            }
        }
        return Ok(());
    }
    ensure(root, &needs)?;
    println!("all present");
    Ok(())
}

/// Whether the standard library for `triple` is installed for the toolchain
/// that `rustc` in `root` resolves to.
fn rust_target_installed(root: &Path, triple: &str) -> bool {
    let Some(libdir) = run::probe(
        Command::new("rustc")
            .args(["--print", "target-libdir", "--target", triple])
            .current_dir(root),
    ) else {
        return false;
    };
    std::fs::read_dir(libdir.trim()).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    })
}

/// `cargo-zigbuild` on PATH, else in Python's script directories (where
/// `pip install` puts it, which need not be on PATH); only if it runs.
fn find_zigbuild(root: &Path) -> Option<PathBuf> {
    let scripts = run::probe(Command::new("python3").args([
        "-c",
        "import os, sysconfig\n\
         print(sysconfig.get_path('scripts'))\n\
         print(sysconfig.get_path('scripts', os.name + '_user'))",
    ]))
    .unwrap_or_default();
    find_on_path("cargo-zigbuild")
        .into_iter()
        .chain(
            scripts
                .lines()
                .map(|dir| Path::new(dir).join("cargo-zigbuild")),
        )
        .find(|path| {
            is_executable(path)
                && run::probe(Command::new(path).arg("--version").current_dir(root)).is_some()
        })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everything() -> Probe {
        Probe {
            lints: true,
            rust_aarch64: true,
            rustup: true,
            zigbuild: Some("/x/cargo-zigbuild".into()),
            zig: true,
            pip: true,
            qemu: true,
            aarch64_sysroot: true,
            apt: true,
            root: true,
        }
    }

    fn lines(step: &Step) -> Vec<String> {
        let commands = match step {
            Step::Run { commands, .. } | Step::Manual { commands, .. } => commands,
        };
        commands.iter().map(Cmd::line).collect()
    }

    #[test]
    fn nothing_to_do_when_everything_is_present() {
        let all = needs(Target::Aarch64, true);
        assert_eq!(all, [Need::RustAarch64, Need::Zigbuild, Need::Qemu]);
        assert!(plan(&all, &everything()).is_empty());
        assert!(needs(Target::Host, false).is_empty());
    }

    #[test]
    fn a_fresh_root_machine_gets_everything_installed() {
        let fresh = Probe {
            rustup: true,
            pip: true,
            apt: true,
            root: true,
            ..Probe::default()
        };
        let steps = plan(&needs(Target::Aarch64, true), &fresh);
        assert!(
            steps.iter().all(|s| matches!(s, Step::Run { .. })),
            "{steps:?}"
        );
        let all: Vec<String> = steps.iter().flat_map(lines).collect();
        assert_eq!(
            all,
            [
                "rustup target add aarch64-unknown-linux-gnu",
                "python3 -m pip install ziglang==0.17.1 cargo-zigbuild==0.24.0",
                "DEBIAN_FRONTEND=noninteractive apt-get update",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                 qemu-user libc6-arm64-cross",
            ]
        );
    }

    #[test]
    fn zig_missing_alone_still_installs_the_pip_packages() {
        let probe = Probe {
            zig: false,
            ..everything()
        };
        let steps = plan(&[Need::Zigbuild], &probe);
        assert_eq!(steps.len(), 1);
        assert!(matches!(steps[0], Step::Run { .. }));
        let probe = Probe {
            aarch64_sysroot: false,
            ..everything()
        };
        assert_eq!(plan(&[Need::Qemu], &probe).len(), 1);
    }

    #[test]
    fn without_the_means_to_install_it_says_what_to_run() {
        let bare = Probe::default();
        let steps = plan(&needs(Target::Aarch64, true), &bare);
        assert_eq!(steps.len(), 3);
        assert!(
            steps.iter().all(|s| matches!(s, Step::Manual { .. })),
            "{steps:?}"
        );
        assert_eq!(
            lines(&steps[0]),
            ["rustup target add aarch64-unknown-linux-gnu"]
        );

        let not_root = Probe {
            apt: true,
            ..everything()
        };
        let not_root = Probe {
            root: false,
            qemu: false,
            ..not_root
        };
        let steps = plan(&[Need::Qemu], &not_root);
        assert_eq!(
            lines(&steps[0]),
            [
                "sudo apt-get update",
                "sudo apt-get install -y --no-install-recommends qemu-user libc6-arm64-cross",
            ]
        );
        assert!(matches!(steps[0], Step::Manual { .. }));
    }

    #[test]
    fn this_machine_probe_is_consistent() {
        // Whatever this machine has, a tool reported present must be usable.
        let probe = Probe::of_this_machine(&crate::project_root());
        if let Some(path) = &probe.zigbuild {
            assert!(is_executable(path));
        }
        assert!(rust_target_installed(
            &crate::project_root(),
            crate::target::host_triple()
        ));
        assert!(!rust_target_installed(
            &crate::project_root(),
            "no-such-target"
        ));
    }
}
