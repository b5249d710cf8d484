//! `cargo xtask examples` (and the `examples` stage of `cargo xtask test`):
//! builds `examples/own-runtime` and `examples/c-kernels` for this machine
//! and for aarch64, then runs them on the simulator, natively and with the
//! device side as aarch64 code under qemu-user:
//!
//! - own-runtime's host program bootstraps the example runtime SO and
//!   checks a batch of built-in and custom tasks (it exits non-zero on any
//!   wrong result);
//! - the C kernel SO goes through `simpler launch` on both launch paths:
//!   `k_touch` must write its file from the device process, `k_fail` must
//!   fail the launch, and `not_a_kernel` and `k_hidden` must be refused
//!   before anything is installed;
//! - `examples/cpp`, a C++ program that includes only `include/simpler.h`
//!   and links only `libsimpler.so`, loads the C kernel SO and runs
//!   `k_add` and `k_fail` on both launch paths.
//!
//! Outputs go to `target/examples/<triple>/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};
use simpler_abi::artifacts::{files, ARTIFACTS_DIR_ENV, DEVICE_ARTIFACTS_DIR_ENV};
use simpler_abi::fingerprint::{is_temp_name, PreinstallName};
use simpler_abi::sim;
use simpler_host::SoInfo;

use crate::cargo::{cargo, Build};
use crate::check_abi::{self, Role, Rules};
use crate::target::{Target, GLIBC_CEILING};
use crate::toolchain::{self, AARCH64_SYSROOT, QEMU_AARCH64};
use crate::{build, run};

/// The own-runtime example's workspace, under the project root.
const OWN_RUNTIME_DIR: &str = "examples/own-runtime";
/// Its runtime SO's package, and the file it builds.
const OWN_RUNTIME_DEVICE: &str = "own-runtime-device";
const OWN_RUNTIME_SO: &str = "libown_runtime.so";
/// Its host program's package and binary.
const OWN_RUNTIME_HOST: &str = "own-runtime-host";
/// The C kernels' source, and the SO built from it.
const C_KERNELS_SOURCE: &str = "examples/c-kernels/kernels.c";
const C_KERNELS_SO: &str = "libc_kernels.so";
/// The flags of both C builds (warnings are errors: an example must build
/// clean wherever it is copied to).
const C_FLAGS: [&str; 7] = [
    "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
];
/// The C++ example's source, and the program built from it.
const CPP_SOURCE: &str = "examples/cpp/main.cpp";
const CPP_PROGRAM: &str = "cpp-example";
/// The launch paths `simpler launch` is run on.
const LAUNCH_PATHS: [&str; 2] = ["type2", "binary"];

/// The SOs built for one target.
struct Built {
    target: Target,
    own_runtime: PathBuf,
    c_kernels: PathBuf,
}

/// Builds and runs both examples for both targets.
pub fn run(root: &Path) -> Result<()> {
    toolchain::ensure(root, &toolchain::needs(Target::Aarch64, true))?;
    lint_own_runtime(root)?;
    // The simulator and the dispatcher for both device sides (incremental:
    // a no-op when `cargo xtask test` built them a moment ago).
    let host_artifacts = build::release(root, Target::Host)?;
    build::release(root, Target::Aarch64)?;

    let built = [Target::Host, Target::Aarch64]
        .into_iter()
        .map(|target| build_for(root, target))
        .collect::<Result<Vec<_>>>()?;
    let host_program = build_host_program(root)?;
    let cli = Cli::build(root)?;
    let cpp = build_cpp(root)?;

    for b in &built {
        let env = SimEnv::new(root, &host_artifacts, b.target)?;
        eprintln!(
            "\n-- examples: own-runtime, {} device side",
            b.target.flag()
        );
        let mut cmd = Command::new(&host_program);
        cmd.arg("--runtime").arg(&b.own_runtime);
        env.apply(&mut cmd);
        run::run(&mut cmd).context("the own-runtime example")?;
        if b.target == Target::Host {
            // The checks can fail: against simpler's own runtime SO, which
            // has none of the custom ops, the program must exit non-zero.
            let env = SimEnv::new(root, &host_artifacts, b.target)?;
            let mut cmd = Command::new(&host_program);
            cmd.arg("--runtime")
                .arg(host_artifacts.join(files::RUNTIME));
            env.apply(&mut cmd);
            let out = output(&mut cmd)?;
            if out.status.success() {
                bail!("own-runtime-host passed with the built-in runtime SO, which lacks its ops");
            }
            println!("own-runtime-host with the built-in runtime SO fails, as it must");
        }

        eprintln!(
            "\n-- examples: c-kernels through `simpler launch`, {} device side",
            b.target.flag()
        );
        c_kernels(root, &cli, &host_artifacts, b)?;

        eprintln!(
            "\n-- examples: the C++ program on libsimpler.so, {} device side",
            b.target.flag()
        );
        let env = SimEnv::new(root, &host_artifacts, b.target)?;
        let mut cmd = Command::new(&cpp);
        cmd.arg(&b.c_kernels);
        env.apply(&mut cmd);
        run::run(&mut cmd).context("the C++ example")?;
    }
    Ok(())
}

/// Builds `libsimpler.so` (dev profile, as `cargo test` did) and the C++
/// example against it and `include/simpler.h` only.
fn build_cpp(root: &Path) -> Result<PathBuf> {
    run::run(Command::new(cargo()).current_dir(root).args([
        "build",
        "--quiet",
        "-p",
        "simpler-capi",
    ]))?;
    let lib_dir = root.join("target").join("debug");
    let program = out_dir(root, Target::Host).join(CPP_PROGRAM);
    std::fs::create_dir_all(out_dir(root, Target::Host))?;
    let mut cxx = Command::new("c++");
    cxx.current_dir(root)
        .args([
            "-std=c++17",
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            "include",
        ])
        .arg(CPP_SOURCE)
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lsimpler")
        .arg("-o")
        .arg(&program);
    run::run(&mut cxx).context("compiling the C++ example")?;
    Ok(program)
}

/// rustfmt and clippy on the example's workspace, which the workspace-wide
/// stages of `cargo xtask test` do not see.
fn lint_own_runtime(root: &Path) -> Result<()> {
    let manifest = format!("{OWN_RUNTIME_DIR}/Cargo.toml");
    let cargo_in = |args: &[&str]| run::run(Command::new(cargo()).current_dir(root).args(args));
    cargo_in(&["fmt", "--manifest-path", &manifest, "--all", "--check"])?;
    cargo_in(&[
        "clippy",
        "--manifest-path",
        &manifest,
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])
}

/// `target/examples/<triple>/`.
fn out_dir(root: &Path, target: Target) -> PathBuf {
    root.join("target").join("examples").join(target.triple())
}

/// Builds the example runtime SO and the C kernel SO for `target`, and
/// checks the runtime SO like `check-abi` checks simpler's own.
fn build_for(root: &Path, target: Target) -> Result<Built> {
    let out = out_dir(root, target);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let tools = toolchain::ensure(root, &toolchain::needs(target, false))?;
    let zig = match target.zig_target() {
        Some(zig_target) => Some((
            tools
                .zigbuild
                .context("cargo-zigbuild was provisioned but not found")?,
            zig_target,
        )),
        None => None,
    };
    let build = Build {
        package: OWN_RUNTIME_DEVICE,
        // The example's workspace defines `device` exactly as simpler's
        // root does (unwinding, LTO, stripped).
        profile: "device",
        triple: target.triple(),
        zig: zig.as_ref().map(|(path, t)| (path.as_path(), t.clone())),
        select: vec!["--lib"],
        config: Vec::new(),
        rustflags: Vec::new(),
    };
    let outputs = build.run(&root.join(OWN_RUNTIME_DIR))?;
    let so = outputs
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == OWN_RUNTIME_SO))
        .with_context(|| format!("building `{OWN_RUNTIME_DEVICE}` produced no {OWN_RUNTIME_SO}"))?;
    let own_runtime = out.join(OWN_RUNTIME_SO);
    copy(so, &own_runtime)?;
    check_runtime(&own_runtime, target)?;

    let c_kernels = out.join(C_KERNELS_SO);
    let mut cc = c_compiler(target);
    cc.current_dir(root)
        .args(C_FLAGS)
        .arg("-o")
        .arg(&c_kernels)
        .arg(C_KERNELS_SOURCE);
    run::run(&mut cc).context("compiling the C kernels")?;
    Ok(Built {
        target,
        own_runtime,
        c_kernels,
    })
}

/// The C compiler for `target`: the machine's `cc`, or for aarch64 the zig
/// the aarch64 build already provisions, linking against glibc 2.17 like
/// simpler's own device SOs.
fn c_compiler(target: Target) -> Command {
    match target {
        Target::Host => Command::new("cc"),
        Target::Aarch64 => {
            let (major, minor) = GLIBC_CEILING;
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "ziglang", "cc", "-target"])
                .arg(format!("aarch64-linux-gnu.{major}.{minor}"));
            cmd
        }
    }
}

/// The example's runtime SO meets the rules simpler's own runtime SO does
/// (machine, exactly the two exports, allowed libraries, glibc ceiling).
fn check_runtime(so: &Path, target: Target) -> Result<()> {
    let bytes = std::fs::read(so).with_context(|| format!("reading {}", so.display()))?;
    let info =
        SoInfo::parse(&bytes).map_err(|problem| anyhow::anyhow!("{}: {problem}", so.display()))?;
    let problems = check_abi::violations(Role::Runtime, &info, Rules::for_target(target));
    if !problems.is_empty() {
        bail!("{} {}", so.display(), problems.join("; "));
    }
    println!(
        "{}: {} B, meets the runtime SO rules",
        so.display(),
        bytes.len()
    );
    Ok(())
}

/// The own-runtime host program, for this machine.
fn build_host_program(root: &Path) -> Result<PathBuf> {
    let build = Build {
        package: OWN_RUNTIME_HOST,
        profile: "release",
        triple: Target::Host.triple(),
        zig: None,
        select: vec!["--bin", OWN_RUNTIME_HOST],
        config: Vec::new(),
        rustflags: Vec::new(),
    };
    let outputs = build.run(&root.join(OWN_RUNTIME_DIR))?;
    executable(&outputs, OWN_RUNTIME_HOST)
}

/// The `simpler` command-line tool of this workspace, run through
/// `cargo run` with the dev profile: the build `cargo test` made already.
struct Cli {
    root: PathBuf,
}

impl Cli {
    /// Builds it (compile errors show here, not in the first launch).
    fn build(root: &Path) -> Result<Self> {
        run::run(Command::new(cargo()).current_dir(root).args([
            "build",
            "--quiet",
            "-p",
            "simpler-cli",
            "--bin",
            "simpler",
        ]))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// `simpler <args>`.
    fn command(&self) -> Command {
        let mut cmd = Command::new(cargo());
        cmd.current_dir(&self.root).args([
            "run",
            "--quiet",
            "-p",
            "simpler-cli",
            "--bin",
            "simpler",
            "--",
        ]);
        cmd
    }
}

fn executable(outputs: &[PathBuf], name: &str) -> Result<PathBuf> {
    outputs
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .cloned()
        .with_context(|| format!("the build produced no executable `{name}`"))
}

/// The simulator environment of one run: a fresh simulator root, the host
/// artifacts, and for the aarch64 device side its artifacts, device
/// process and qemu.
struct SimEnv {
    root: tempfile::TempDir,
    host_artifacts: PathBuf,
    device: Option<(PathBuf, PathBuf)>,
}

impl SimEnv {
    fn new(project: &Path, host_artifacts: &Path, target: Target) -> Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("simpler-examples-")
            .tempdir()
            .context("creating a private simulator root")?;
        let device = match target {
            Target::Host => None,
            Target::Aarch64 => {
                let dir = Target::Aarch64.artifacts_dir(project);
                let bin = dir.join(files::SIM_DEVICE_BIN);
                if !bin.is_file() {
                    bail!(
                        "{} is missing: the aarch64 build did not run",
                        bin.display()
                    );
                }
                Some((dir, bin))
            }
        };
        Ok(Self {
            root,
            host_artifacts: host_artifacts.to_path_buf(),
            device,
        })
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env(ARTIFACTS_DIR_ENV, &self.host_artifacts)
            .env(sim::env::ROOT, self.root.path());
        if let Some((dir, bin)) = &self.device {
            cmd.env(DEVICE_ARTIFACTS_DIR_ENV, dir)
                .env(sim::env::AICPU_BIN, bin)
                .env(
                    sim::env::AICPU_LAUNCHER,
                    format!("{QEMU_AARCH64} -L {AARCH64_SYSROOT}"),
                );
        }
    }
}

/// The C kernel SO through `simpler launch`, on both launch paths.
fn c_kernels(root: &Path, cli: &Cli, host_artifacts: &Path, built: &Built) -> Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix("simpler-c-kernels-")
        .tempdir()
        .context("creating a scratch directory")?;
    let empty = scratch.path().join("empty");
    std::fs::write(&empty, b"").context("writing an empty payload")?;
    // `simpler launch <SO> <kernel> [--payload-file <f>] …` in `env`.
    let launch = |env: &SimEnv, kernel: &str, path: &str, payload: Option<&Path>| {
        let mut cmd = cli.command();
        cmd.arg("launch").arg(&built.c_kernels).arg(kernel);
        if let Some(payload) = payload {
            cmd.arg("--payload-file").arg(payload);
        }
        cmd.args(["--launch-path", path, "--backend", "sim"]);
        if built.target == Target::Aarch64 {
            cmd.args(["--device-machine", "aarch64"]);
        }
        env.apply(&mut cmd);
        output(&mut cmd)
    };
    for path in LAUNCH_PATHS {
        let env = SimEnv::new(root, host_artifacts, built.target)?;

        // k_touch writes "ok" to the file its payload names.
        let touched = scratch.path().join(format!("touched-{path}"));
        let payload = scratch.path().join(format!("touch-{path}.payload"));
        let mut bytes = touched.as_os_str().as_encoded_bytes().to_vec();
        bytes.push(0);
        std::fs::write(&payload, &bytes).context("writing the k_touch payload")?;
        let out = launch(&env, "k_touch", path, Some(&payload))?;
        expect(out.status.success(), "k_touch", path, &out)?;
        let content = std::fs::read_to_string(&touched)
            .with_context(|| format!("k_touch ({path}) did not write {}", touched.display()))?;
        if content != "ok" {
            bail!(
                "k_touch ({path}) wrote {content:?} to {}, expected \"ok\"",
                touched.display()
            );
        }
        println!("k_touch ({path}): launched, wrote \"ok\" from the device process");

        let out = launch(&env, "k_fail", path, Some(&empty))?;
        expect(!out.status.success(), "k_fail", path, &out)?;
        // Failed as a kernel failure (CANN's AICPU exception, naming the
        // kernel), not for some other reason.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !(stderr.contains("k_fail") && stderr.contains("507018")) {
            bail!("`simpler launch … k_fail` ({path}) did not report the kernel's failure (507018):\n{stderr}");
        }
        println!(
            "k_fail ({path}): the launch failed, as it must ({})",
            out.status
        );

        // Refusals: in a fresh simulator root, so that any installed file
        // would show.
        for symbol in ["not_a_kernel", "k_hidden"] {
            let fresh = SimEnv::new(root, host_artifacts, built.target)?;
            let out = launch(&fresh, symbol, path, None)?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            expect(!out.status.success(), symbol, path, &out)?;
            if !stderr.contains(symbol) {
                bail!("`simpler launch … {symbol}` ({path}) failed without naming {symbol}:\n{stderr}");
            }
            if let Some(installed) = find_installed(fresh.root.path())? {
                bail!(
                    "`simpler launch … {symbol}` ({path}) was refused, but only after installing {}",
                    installed.display()
                );
            }
            println!("{symbol} ({path}): refused before anything was installed");
        }
    }
    Ok(())
}

/// Runs `cmd` (echoed), capturing its output, which is shown too.
fn output(cmd: &mut Command) -> Result<Output> {
    let line = run::display(cmd);
    eprintln!("$ {line}");
    let out = cmd
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    Ok(out)
}

/// Fails unless `ok`, the expected outcome of launching `kernel`.
fn expect(ok: bool, kernel: &str, path: &str, out: &Output) -> Result<()> {
    if !ok {
        let expected = if out.status.success() {
            "to fail"
        } else {
            "to succeed"
        };
        bail!(
            "`simpler launch … {kernel}` ({path}) was expected {expected}, but exited with {}",
            out.status
        );
    }
    Ok(())
}

/// A runtime SO (or the temp file of one) the dispatcher installed
/// anywhere under `dir`.
fn find_installed(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if let Some(found) = find_installed(&path)? {
                return Ok(Some(found));
            }
        } else {
            let name = entry.file_name();
            let name = name.as_encoded_bytes();
            if PreinstallName::parse_bytes(name).is_some() || is_temp_name(name) {
                return Ok(Some(path));
            }
        }
    }
    Ok(None)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installed_runtime_is_found_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_installed(dir.path()).unwrap(), None);
        assert_eq!(find_installed(&dir.path().join("absent")).unwrap(), None);
        let deep = dir.path().join("device0/usr/lib64/aicpu_kernels");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("libother.so"), b"").unwrap();
        std::fs::write(deep.join("simpler_inner_.so"), b"").unwrap();
        assert_eq!(find_installed(dir.path()).unwrap(), None);
        let name = PreinstallName::new(0x0123_4567_89ab_cdef);
        std::fs::write(deep.join(name.as_str()), b"").unwrap();
        assert_eq!(
            find_installed(dir.path()).unwrap(),
            Some(deep.join(name.as_str()))
        );
    }

    #[test]
    fn the_aarch64_c_compiler_links_against_the_glibc_ceiling() {
        let line = run::display(&c_compiler(Target::Aarch64));
        assert_eq!(line, "python3 -m ziglang cc -target aarch64-linux-gnu.2.17");
        assert_eq!(run::display(&c_compiler(Target::Host)), "cc");
    }
}
