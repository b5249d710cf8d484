//! The two kinds of build target and what follows from each.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use simpler_abi::artifacts::{self, TRIPLE_AARCH64};
use simpler_host::Machine;

/// Oldest glibc an AICPU image may carry (the first aarch64 glibc). Every
/// versioned glibc symbol a device SO references must be at or below it.
pub const GLIBC_CEILING: (u32, u32) = (2, 17);

/// Which machine a build is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The machine xtask runs on, built with plain cargo: the device SOs the
    /// simulator loads in-process here, plus the simulator itself.
    Host,
    /// The AICPU: aarch64 Linux, linked by cargo-zigbuild against glibc 2.17.
    Aarch64,
}

impl Target {
    /// The Rust target triple, also the artifacts directory's name.
    pub fn triple(self) -> &'static str {
        match self {
            Target::Host => host_triple(),
            Target::Aarch64 => TRIPLE_AARCH64,
        }
    }

    /// The `--target` cargo-zigbuild is given (the triple with the glibc
    /// version to link against), or `None` for a plain cargo build.
    pub fn zig_target(self) -> Option<String> {
        match self {
            Target::Host => None,
            Target::Aarch64 => {
                let (major, minor) = GLIBC_CEILING;
                Some(format!("{TRIPLE_AARCH64}.{major}.{minor}"))
            }
        }
    }

    /// The C compiler for device SOs of this target, as words: the
    /// machine's `cc`, or for aarch64 the zig the aarch64 build provisions,
    /// linking against [`GLIBC_CEILING`] like simpler's own device SOs.
    pub fn c_compiler_words(self) -> Vec<String> {
        match self {
            Target::Host => vec!["cc".into()],
            Target::Aarch64 => {
                let (major, minor) = GLIBC_CEILING;
                ["python3", "-m", "ziglang", "cc", "-target"]
                    .map(String::from)
                    .into_iter()
                    .chain([format!("aarch64-linux-gnu.{major}.{minor}")])
                    .collect()
            }
        }
    }

    /// [`Target::c_compiler_words`] as a command.
    pub fn c_compiler(self) -> std::process::Command {
        let words = self.c_compiler_words();
        let mut cmd = std::process::Command::new(&words[0]);
        cmd.args(&words[1..]);
        cmd
    }

    /// The `--target` value that selects it.
    pub fn flag(self) -> &'static str {
        match self {
            Target::Host => "host",
            Target::Aarch64 => "aarch64",
        }
    }

    /// The machine its binaries are built for.
    pub fn machine(self) -> Machine {
        if self.triple().starts_with("aarch64") {
            Machine::AARCH64
        } else {
            Machine::X86_64
        }
    }

    /// Whether the glibc ceiling is enforced on its artifacts. Only on the
    /// aarch64 build: that is the one linked for the AICPU image; host
    /// builds link the build machine's glibc and only serve the simulator.
    pub fn enforces_glibc_ceiling(self) -> bool {
        self == Target::Aarch64
    }

    /// `target/artifacts/<triple>/` under the workspace `root`.
    pub fn artifacts_dir(self, root: &Path) -> PathBuf {
        root.join("target").join("artifacts").join(self.triple())
    }
}

/// The triple of the machine xtask itself was built for.
pub fn host_triple() -> &'static str {
    if cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) {
        artifacts::host_triple()
    } else {
        // Device SOs are Linux ELF; neither the simulator nor the build
        // scripts support other hosts.
        panic!("simpler builds on x86_64 or aarch64 Linux only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aarch64_c_compiler_links_against_the_glibc_ceiling() {
        assert_eq!(
            Target::Aarch64.c_compiler_words().join(" "),
            "python3 -m ziglang cc -target aarch64-linux-gnu.2.17"
        );
        assert_eq!(Target::Host.c_compiler_words(), ["cc"]);
    }

    #[test]
    fn aarch64_links_against_the_ceiling_glibc() {
        assert_eq!(
            Target::Aarch64.zig_target().as_deref(),
            Some("aarch64-unknown-linux-gnu.2.17")
        );
        assert_eq!(Target::Aarch64.machine(), Machine::AARCH64);
        assert!(Target::Aarch64.enforces_glibc_ceiling());
        assert!(!Target::Host.enforces_glibc_ceiling());
        assert_eq!(Target::Host.zig_target(), None);
    }
}
