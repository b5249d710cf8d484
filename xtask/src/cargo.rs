//! Running cargo (or cargo-zigbuild) for one package and finding the files
//! it produced from cargo's JSON messages rather than guessing paths.

use std::env;
use std::ffi::OsString;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use cargo_metadata::Message;

use crate::run;

/// The cargo that runs xtask (so the pinned toolchain), else `cargo`.
pub fn cargo() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A `cargo build` of some targets of one package for one target triple.
#[derive(Debug)]
pub struct Build<'a> {
    /// The package (`-p`).
    pub package: &'a str,
    /// The cargo profile (`--profile`).
    pub profile: &'a str,
    /// The Rust target triple.
    pub triple: &'a str,
    /// Link with cargo-zigbuild: its executable and the `--target` it takes
    /// (the triple plus a glibc version).
    pub zig: Option<(&'a Path, String)>,
    /// Target selection, e.g. `["--lib"]` or `["--bin", "name"]`.
    pub select: Vec<&'a str>,
    /// `--config` overrides (used for the debug profiles).
    pub config: Vec<String>,
    /// Flags appended to the user's RUSTFLAGS for this build only.
    pub rustflags: Vec<&'a str>,
}

impl Build<'_> {
    /// The command line this build runs in the workspace `root`.
    pub fn command(&self, root: &Path) -> Command {
        let mut cmd = match &self.zig {
            Some((zigbuild, zig_target)) => {
                let mut cmd = Command::new(zigbuild);
                cmd.args(["zigbuild", "--target", zig_target]);
                cmd
            }
            None => {
                let mut cmd = Command::new(cargo());
                cmd.args(["build", "--target", self.triple]);
                cmd
            }
        };
        cmd.current_dir(root)
            .args(["-p", self.package, "--profile", self.profile])
            .args(&self.select)
            .arg("--message-format=json-render-diagnostics");
        for config in &self.config {
            cmd.arg("--config").arg(config);
        }
        if !self.rustflags.is_empty() {
            // With an explicit --target these reach only target code, not
            // build scripts or proc macros.
            cmd.env(
                "CARGO_ENCODED_RUSTFLAGS",
                encoded_rustflags(user_rustflags(), &self.rustflags),
            )
            .env_remove("RUSTFLAGS");
        }
        cmd
    }

    /// Runs the build; returns every file cargo reports producing.
    pub fn run(&self, root: &Path) -> Result<Vec<PathBuf>> {
        let mut cmd = self.command(root);
        let line = run::display(&cmd);
        eprintln!("$ {line}");
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{line}`"))?;
        let stdout = child.stdout.take().context("cargo's stdout")?;
        let mut files = Vec::new();
        let mut read = Ok(());
        for message in Message::parse_stream(BufReader::new(stdout)) {
            match message {
                Ok(Message::CompilerArtifact(artifact)) => {
                    files.extend(artifact.filenames.into_iter().map(PathBuf::from));
                }
                Ok(Message::TextLine(text)) => println!("{text}"),
                Ok(_) => {}
                Err(err) => {
                    // Not waiting for a build whose output is unreadable;
                    // it is stopped and reaped below.
                    let _ = child.kill();
                    read = Err(err).context("reading cargo's JSON messages");
                    break;
                }
            }
        }
        let status = child
            .wait()
            .with_context(|| format!("waiting for `{line}`"))?;
        read?;
        if !status.success() {
            bail!("`{line}` failed ({status})");
        }
        Ok(files)
    }
}

/// The flags cargo would take from the environment, as cargo reads them:
/// `CARGO_ENCODED_RUSTFLAGS` if set, else `RUSTFLAGS` split on whitespace.
fn user_rustflags() -> Vec<String> {
    if let Some(encoded) = env::var_os("CARGO_ENCODED_RUSTFLAGS") {
        let encoded = encoded.to_string_lossy();
        return encoded
            .split('\x1f')
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect();
    }
    env::var("RUSTFLAGS")
        .map(|flags| flags.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// `user` followed by `extra`, in `CARGO_ENCODED_RUSTFLAGS` form.
fn encoded_rustflags(user: Vec<String>, extra: &[&str]) -> String {
    let mut flags = user;
    flags.extend(extra.iter().map(|f| f.to_string()));
    flags.join("\x1f")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_rustflags_follow_the_users() {
        let user = vec!["-C".to_string(), "target-cpu=native".to_string()];
        assert_eq!(
            encoded_rustflags(user, &["--cfg", "simpler_nostd"]),
            "-C\x1ftarget-cpu=native\x1f--cfg\x1fsimpler_nostd"
        );
        assert_eq!(encoded_rustflags(Vec::new(), &["--cfg", "x"]), "--cfg\x1fx");
    }

    #[test]
    fn zig_builds_name_the_glibc_and_plain_ones_the_triple() {
        let mut build = Build {
            package: "p",
            profile: "device",
            triple: "aarch64-unknown-linux-gnu",
            zig: Some((
                Path::new("/z/cargo-zigbuild"),
                "aarch64-unknown-linux-gnu.2.17".into(),
            )),
            select: vec!["--lib"],
            config: vec!["profile.device.strip=false".into()],
            rustflags: vec!["--cfg", "simpler_nostd"],
        };
        let line = run::display(&build.command(Path::new("/")));
        assert!(line.starts_with("CARGO_ENCODED_RUSTFLAGS="), "{line}");
        assert!(
            line.ends_with(
                "/z/cargo-zigbuild zigbuild --target aarch64-unknown-linux-gnu.2.17 -p p \
             --profile device --lib --message-format=json-render-diagnostics \
             --config profile.device.strip=false"
            ),
            "{line}"
        );
        build.zig = None;
        build.rustflags.clear();
        let line = run::display(&build.command(Path::new("/")));
        assert!(
            line.contains(" build --target aarch64-unknown-linux-gnu -p p"),
            "{line}"
        );
        assert!(!line.contains("RUSTFLAGS"), "{line}");
    }
}
