//! `cargo xtask wheel`: the Python package as one wheel in `target/wheels/`
//! that carries everything a user needs besides numpy: the extension
//! module, the simulator (library and device process) and the device SOs
//! for this machine, and the device SOs and device process for aarch64.
//!
//! Everything that runs on this machine is linked by zig against an old
//! glibc ([`HOST_GLIBC`]), so the wheel's manylinux tag is true; the wheel
//! is read back and every ELF in it is checked against the tag. The
//! aarch64 files are those of `cargo xtask build --target aarch64`
//! (glibc 2.17).
//!
//! The `python` stage of `cargo xtask test` ([`test`]) installs the wheel
//! in a fresh venv and runs the pytest suite from a directory outside the
//! source tree, so a file missing from the wheel fails it.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use cargo_metadata::Message;
use object::elf;
use object::elf::FileHeader64;
use object::read::elf::FileHeader;
use object::Endianness;
use simpler_abi::artifacts::{files, TRIPLE_AARCH64};
use simpler_abi::sim;

use crate::build::{
    self, DISPATCHER_PACKAGE, RUNTIME_PACKAGE, SIM_DEVICE_PACKAGE, SIM_LIB_PACKAGE,
};
use crate::cargo::{cargo, Build};
use crate::run;
use crate::target::{host_triple, Target};
use crate::toolchain::{self, Need, AARCH64_SYSROOT, QEMU_AARCH64};

/// The maturin that builds the wheel, from PyPI.
const MATURIN: &str = "maturin==1.16.0";
/// The glibc the host-side files are linked against, and so the wheel's
/// `manylinux_2_17` (manylinux2014) tag: the glibc of the oldest host
/// systems Ascend servers run (EulerOS / CentOS 7 lineage).
pub const HOST_GLIBC: (u32, u32) = (2, 17);
/// The package's directory in the source tree, and the Python sources in it.
const PACKAGE_DIR: &str = "crates/python";
const PYTHON_PACKAGE: &str = "crates/python/python/simpler";
/// Where the wheel's files for one triple go inside the package.
const BUNDLE_DIR: &str = "_bundled";
/// Cargo's target directories for the zig-linked builds: apart from the
/// plain host build's and from each other (cargo-zigbuild and maturin set
/// the compiler environment differently, and build scripts that track it
/// would rebuild everything at each switch).
const ZIG_TARGET_DIR: &str = "target/wheel-build/zig";
const MATURIN_TARGET_DIR: &str = "target/wheel-build/maturin";

/// Builds the wheel; returns its path.
pub fn run(root: &Path) -> Result<PathBuf> {
    let tools = toolchain::ensure(root, &[Need::RustAarch64, Need::Zigbuild])?;
    let zigbuild = tools
        .zigbuild
        .context("cargo-zigbuild was provisioned but not found")?;
    ensure_maturin(root)?;

    let host = host_files(root, &zigbuild)?;
    let mut bundle = vec![(host_triple(), host)];
    if host_triple() != TRIPLE_AARCH64 {
        let dir = build::release(root, Target::Aarch64)?;
        let aarch64 = [files::DISPATCHER, files::RUNTIME, files::SIM_DEVICE_BIN]
            .map(|name| (name, dir.join(name)))
            .to_vec();
        bundle.push((TRIPLE_AARCH64, aarch64));
    }
    stage(root, &bundle)?;

    let out = root.join("target").join("wheels");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for old in wheels_in(&out)? {
        std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    let (major, minor) = HOST_GLIBC;
    run::run(
        Command::new("python3")
            .current_dir(root)
            .args(["-m", "maturin", "build", "--release", "--strip", "--zig"])
            .arg("--compatibility")
            .arg(format!("manylinux_{major}_{minor}"))
            .args(["--target", host_triple(), "--interpreter", "python3"])
            .arg("--manifest-path")
            .arg(root.join(PACKAGE_DIR).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(root.join(MATURIN_TARGET_DIR))
            .arg("--out")
            .arg(&out),
    )?;
    let wheel = match wheels_in(&out)?.as_slice() {
        [one] => one.clone(),
        other => bail!("maturin left {} wheels in {}", other.len(), out.display()),
    };
    let report = check(&wheel, &expected(&bundle))?;
    for line in &report {
        println!("  {line}");
    }
    println!(
        "wheel: {} ({} ELF files, each within the glibc of its tag)",
        wheel.display(),
        report.len()
    );
    Ok(wheel)
}

/// Installs [`MATURIN`] with pip unless `python3 -m maturin` is that version.
fn ensure_maturin(root: &Path) -> Result<()> {
    let want = MATURIN.trim_start_matches("maturin==");
    let found =
        run::probe(
            Command::new("python3")
                .current_dir(root)
                .args(["-m", "maturin", "--version"]),
        );
    if found.is_some_and(|v| v.split_whitespace().nth(1) == Some(want)) {
        return Ok(());
    }
    eprintln!("xtask: installing {MATURIN} (PyPI):");
    run::run(
        Command::new("python3")
            .current_dir(root)
            .args(["-m", "pip", "install", MATURIN]),
    )
}

/// One file of the host-side build: its package, profile, file name,
/// target selection and extra rustflags.
struct Part {
    package: &'static str,
    profile: &'static str,
    name: &'static str,
    select: Vec<&'static str>,
    rustflags: Vec<&'static str>,
}

/// The simulator and the device SOs for this machine, linked by zig
/// against [`HOST_GLIBC`], with the profiles `cargo xtask build` uses.
fn host_files(root: &Path, zigbuild: &Path) -> Result<Vec<(&'static str, PathBuf)>> {
    let (major, minor) = HOST_GLIBC;
    let zig_target = format!("{}.{major}.{minor}", host_triple());
    let target_dir = format!(
        "build.target-dir={:?}",
        root.join(ZIG_TARGET_DIR).display().to_string()
    );
    let parts = [
        Part {
            package: DISPATCHER_PACKAGE,
            profile: "device-dispatcher",
            name: files::DISPATCHER,
            select: vec!["--lib"],
            rustflags: vec!["--cfg", "simpler_nostd"],
        },
        Part {
            package: RUNTIME_PACKAGE,
            profile: "device",
            name: files::RUNTIME,
            select: vec!["--lib"],
            rustflags: vec![],
        },
        Part {
            package: SIM_LIB_PACKAGE,
            profile: "release",
            name: files::SIM_LIB,
            select: vec!["--lib"],
            rustflags: vec![],
        },
        Part {
            package: SIM_DEVICE_PACKAGE,
            profile: "release",
            name: files::SIM_DEVICE_BIN,
            select: vec!["--bin", files::SIM_DEVICE_BIN],
            rustflags: vec![],
        },
    ];
    let mut produced = Vec::new();
    for Part {
        package,
        profile,
        name,
        select,
        rustflags,
    } in parts
    {
        let outputs = Build {
            package,
            profile,
            triple: host_triple(),
            zig: Some((zigbuild, zig_target.clone())),
            select,
            config: vec![target_dir.clone()],
            rustflags,
        }
        .run(root)?;
        produced.push((name, build::pick(&outputs, package, name)?));
    }
    Ok(produced)
}

/// Replaces `simpler/_bundled/` in the source tree (git-ignored) with
/// `bundle`: one directory per triple.
fn stage(root: &Path, bundle: &[(&str, Vec<(&str, PathBuf)>)]) -> Result<()> {
    let dir = root.join(PYTHON_PACKAGE).join(BUNDLE_DIR);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
    }
    for (triple, parts) in bundle {
        let to = dir.join(triple);
        std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
        for (name, from) in parts {
            std::fs::copy(from, to.join(name))
                .with_context(|| format!("copying {} into {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

fn wheels_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("simpler-") && name.ends_with(".whl") {
            found.push(path);
        }
    }
    Ok(found)
}

/// A file the wheel must hold, and whether it must be executable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    path: String,
    executable: bool,
}

/// The package's own files and every bundled one.
fn expected(bundle: &[(&str, Vec<(&str, PathBuf)>)]) -> Vec<Expected> {
    let mut out: Vec<Expected> = [
        "__init__.py",
        "__main__.py",
        "demo.py",
        "_native.pyi",
        "py.typed",
        "_native.abi3.so",
    ]
    .iter()
    .map(|f| Expected {
        path: format!("simpler/{f}"),
        executable: false,
    })
    .collect();
    for (triple, parts) in bundle {
        for (name, _) in parts {
            out.push(Expected {
                path: format!("simpler/{BUNDLE_DIR}/{triple}/{name}"),
                executable: *name == files::SIM_DEVICE_BIN,
            });
        }
    }
    out
}

/// The highest glibc every tag in a wheel's file name allows: the
/// platform tags of `name-version-python-abi-platform.whl`.
fn glibc_ceiling(wheel_name: &str) -> Result<(u32, u32)> {
    let stem = wheel_name
        .strip_suffix(".whl")
        .with_context(|| format!("{wheel_name} is not a .whl"))?;
    let platforms = stem.rsplit('-').next().unwrap_or_default();
    let mut ceiling: Option<(u32, u32)> = None;
    for tag in platforms.split('.') {
        let version = if let Some(rest) = tag.strip_prefix("manylinux_") {
            let mut parts = rest.splitn(3, '_');
            let major = parts.next().and_then(|p| p.parse().ok());
            let minor = parts.next().and_then(|p| p.parse().ok());
            major.zip(minor)
        } else if tag.starts_with("manylinux2014_") {
            Some((2, 17))
        } else if tag.starts_with("manylinux2010_") {
            Some((2, 12))
        } else if tag.starts_with("manylinux1_") {
            Some((2, 5))
        } else {
            None
        };
        let version =
            version.with_context(|| format!("{wheel_name}: `{tag}` is not a manylinux tag"))?;
        ceiling = Some(ceiling.map_or(version, |c| c.min(version)));
    }
    ceiling.with_context(|| format!("{wheel_name} has no platform tag"))
}

/// The `GLIBC_x.y[.z]` versions an ELF file requires (its version needs).
fn glibc_needs(bytes: &[u8]) -> Result<Vec<(u32, u32, u32)>> {
    let header = FileHeader64::<Endianness>::parse(bytes).context("not a 64-bit ELF")?;
    let endian = header.endian().context("ELF byte order")?;
    let sections = header.sections(endian, bytes).context("ELF sections")?;
    let mut out = Vec::new();
    let Some((mut needs, link)) = sections
        .gnu_verneed(endian, bytes)
        .context("ELF version needs")?
    else {
        return Ok(out);
    };
    let strings = sections
        .strings(endian, bytes, link)
        .context("ELF version strings")?;
    while let Some((_, mut auxes)) = needs.next().context("ELF version need")? {
        while let Some(aux) = auxes.next().context("ELF version need entry")? {
            let name = aux.name(endian, strings).context("ELF version name")?;
            let name = String::from_utf8_lossy(name);
            if let Some(version) = name.strip_prefix("GLIBC_") {
                let mut parts = version.split('.').map(|p| p.parse::<u32>());
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(Ok(major)), Some(Ok(minor)), patch) => {
                        let patch = match patch {
                            Some(Ok(p)) => p,
                            None => 0,
                            Some(Err(_)) => bail!("unreadable glibc version {name}"),
                        };
                        out.push((major, minor, patch));
                    }
                    // GLIBC_PRIVATE and the like: no manylinux tag allows it.
                    _ => bail!("needs {name}, which is not a numbered glibc version"),
                }
            }
        }
    }
    Ok(out)
}

/// Reads `wheel` back: every expected file present (executables with an
/// executable mode), and no ELF in it needing a glibc newer than its tag
/// allows. Returns one line per ELF.
fn check(wheel: &Path, expected: &[Expected]) -> Result<Vec<String>> {
    let name = wheel.file_name().unwrap_or_default().to_string_lossy();
    let (major, minor) = glibc_ceiling(&name)?;
    let file =
        std::fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .with_context(|| format!("reading {} as a zip", wheel.display()))?;
    let mut problems = Vec::new();
    let mut report = Vec::new();
    let mut seen = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        let path = entry.name()?.to_string();
        let mode = entry.unix_mode().unwrap_or(0);
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {path} from {}", wheel.display()))?;
        seen.push((path.clone(), mode));
        if !bytes.starts_with(&elf::ELFMAG) {
            continue;
        }
        match glibc_needs(&bytes) {
            Ok(needs) => {
                let highest = needs.iter().max().copied();
                let too_new: Vec<String> = needs
                    .iter()
                    .filter(|&&(a, b, _)| (a, b) > (major, minor))
                    .map(|(a, b, c)| format!("GLIBC_{a}.{b}.{c}"))
                    .collect();
                let shown = highest.map_or("no glibc versions".to_string(), |(a, b, c)| {
                    format!("glibc up to {a}.{b}.{c}")
                });
                report.push(format!("{path}: {shown}"));
                if !too_new.is_empty() {
                    problems.push(format!(
                        "{path} needs {} (the tag allows {major}.{minor})",
                        too_new.join(", ")
                    ));
                }
            }
            Err(err) => problems.push(format!("{path}: {err:#}")),
        }
    }
    for want in expected {
        match seen.iter().find(|(path, _)| *path == want.path) {
            None => problems.push(format!("{} is missing", want.path)),
            Some((_, mode)) if want.executable && mode & 0o111 == 0 => {
                problems.push(format!("{} is not executable (mode {mode:o})", want.path))
            }
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} is not a sound wheel:\n  {}",
            wheel.display(),
            problems.join("\n  ")
        );
    }
    Ok(report)
}

/// The `python` stage of `cargo xtask test`: the wheel, a fresh venv with
/// it, pytest and numpy, and the suite run from a copy outside the source
/// tree. Each pytest summary is handed to `count` as a libtest result line.
pub fn test(root: &Path, count: impl Fn(&str)) -> Result<()> {
    let wheel = run(root)?;
    let cli = cli_binary(root)?;
    let scratch = tempfile::Builder::new()
        .prefix("simpler-python-test-")
        .tempdir()
        .context("creating a temporary directory")?;
    let venv = scratch.path().join("venv");
    run::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    let python = venv.join("bin").join("python");
    run::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .arg(&wheel)
            .args(["pytest", "numpy"]),
    )?;
    let tests = scratch.path().join("tests");
    std::fs::create_dir(&tests).with_context(|| format!("creating {}", tests.display()))?;
    let source = root.join(PACKAGE_DIR).join("tests");
    for entry in
        std::fs::read_dir(&source).with_context(|| format!("reading {}", source.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, tests.join(path.file_name().unwrap_or_default()))
                .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    let mut cmd = Command::new(&python);
    cmd.current_dir(scratch.path())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .arg("--simpler-cli")
        .arg(&cli)
        .arg("--aarch64-launcher")
        .arg(aarch64_launcher());
    // The package must find its bundled files by itself.
    for var in [
        simpler_abi::artifacts::ARTIFACTS_DIR_ENV,
        simpler_abi::artifacts::DEVICE_ARTIFACTS_DIR_ENV,
        sim::env::AICPU_BIN,
        sim::env::AICPU_LAUNCHER,
    ] {
        cmd.env_remove(var);
    }
    run::run_lines(&mut cmd, |line| {
        if let Some(result) = pytest_result(line) {
            count(&result);
        }
    })
}

/// The launcher the suite's aarch64 test runs the bundled aarch64 device
/// process with (qemu-user, as the qemu stage does).
fn aarch64_launcher() -> String {
    format!("{QEMU_AARCH64} -L {AARCH64_SYSROOT}")
}

/// pytest's closing line (`== 3 passed, 1 skipped in 2.1s ==`) as a libtest
/// result line, for the summed counts of `cargo xtask test`.
fn pytest_result(line: &str) -> Option<String> {
    let line = line.trim().trim_matches('=').trim();
    let (counts, time) = line.rsplit_once(" in ")?;
    if !time.ends_with('s') {
        return None;
    }
    let (mut passed, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    let mut any = false;
    for part in counts.split(", ") {
        let (n, what) = part.split_once(' ')?;
        let n: u64 = n.parse().ok()?;
        match what {
            "passed" => passed += n,
            "failed" | "error" | "errors" => failed += n,
            "skipped" | "xfailed" | "deselected" => skipped += n,
            "xpassed" | "warning" | "warnings" => {}
            _ => return None,
        }
        any = true;
    }
    any.then(|| format!("test result: pytest. {passed} passed; {failed} failed; {skipped} ignored"))
}

/// `simpler` (the CLI), built in the dev profile; the suite compares
/// `python -m simpler demo` with its `simpler run`.
fn cli_binary(root: &Path) -> Result<PathBuf> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["build", "-p", "simpler-cli", "--bin", "simpler"])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    eprintln!("$ {}", run::display(&cmd));
    let mut child = cmd.spawn().context("starting cargo build -p simpler-cli")?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut binary = None;
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::CompilerArtifact(artifact) = message.context("reading cargo's messages")? {
            if let Some(exe) = artifact.executable {
                binary = Some(PathBuf::from(exe));
            }
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!("building simpler-cli failed ({status})");
    }
    binary.context("cargo built simpler-cli but reported no executable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_sets_the_glibc_ceiling() {
        assert_eq!(
            glibc_ceiling("simpler-0.1.0-cp39-abi3-manylinux_2_28_x86_64.whl").unwrap(),
            (2, 28)
        );
        assert_eq!(
            glibc_ceiling("simpler-0.1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
                .unwrap(),
            (2, 17)
        );
        let err = glibc_ceiling("simpler-0.1.0-cp39-abi3-linux_x86_64.whl").unwrap_err();
        assert!(
            err.to_string()
                .contains("`linux_x86_64` is not a manylinux tag"),
            "{err}"
        );
    }

    #[test]
    fn glibc_needs_reads_this_machines_libraries() {
        // xtask itself is an ELF linked against this machine's glibc.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let needs = glibc_needs(&exe).unwrap();
        assert!(needs.iter().any(|&(major, _, _)| major == 2), "{needs:?}");
        assert!(glibc_needs(b"not an elf").is_err());
    }

    #[test]
    fn pytest_summaries_become_result_lines() {
        assert_eq!(
            pytest_result("==== 12 passed, 1 skipped, 2 warnings in 3.40s ====").as_deref(),
            Some("test result: pytest. 12 passed; 0 failed; 1 ignored")
        );
        assert_eq!(
            pytest_result("1 failed, 3 passed in 0.5s").as_deref(),
            Some("test result: pytest. 3 passed; 1 failed; 0 ignored")
        );
        assert_eq!(
            pytest_result("tests/test_x.py ....                [100%]"),
            None
        );
        assert_eq!(pytest_result("copied 3 files in 2s"), None);
    }

    #[test]
    fn a_wheel_without_its_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir
            .path()
            .join("simpler-0.1.0-cp39-abi3-manylinux_2_28_x86_64.whl");
        let file = std::fs::File::create(&wheel).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
        zip.start_file("simpler/_bundled/x/simpler-sim-aicpu", options)
            .unwrap();
        std::io::Write::write_all(&mut zip, b"#!/bin/sh\n").unwrap();
        zip.finish().unwrap();
        let expected = [
            Expected {
                path: "simpler/__init__.py".into(),
                executable: false,
            },
            Expected {
                path: "simpler/_bundled/x/simpler-sim-aicpu".into(),
                executable: true,
            },
        ];
        let err = check(&wheel, &expected).unwrap_err().to_string();
        assert!(err.contains("simpler/__init__.py is missing"), "{err}");
        assert!(err.contains("simpler-sim-aicpu is not executable"), "{err}");
    }
}
