//! `cargo xtask build`: the device SOs and the simulator, copied into
//! `target/artifacts/<triple>/` with a `manifest.json`.
//!
//! The two device SOs need different panic strategies (see
//! docs/building.md), so each is its own cargo invocation with its own
//! profile; the dispatcher additionally gets `--cfg simpler_nostd`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use simpler_abi::artifacts::files;

use crate::cargo::Build;
use crate::flags::BuildArgs;
use crate::manifest;
use crate::target::Target;
use crate::toolchain;
use crate::util::replace_with;

pub(crate) const DISPATCHER_PACKAGE: &str = "simpler-aicpu-dispatcher";
pub(crate) const RUNTIME_PACKAGE: &str = "simpler-aicpu";
pub(crate) const SIM_LIB_PACKAGE: &str = "simpler-cann-sim";
pub(crate) const SIM_DEVICE_PACKAGE: &str = "simpler-sim-aicpu";

/// The cargo profile of each piece, and the `--config` that defines the
/// `--debug` variants (the root Cargo.toml declares only the release ones).
struct Profiles {
    dispatcher: &'static str,
    runtime: &'static str,
    simulator: &'static str,
    config: Vec<String>,
}

impl Profiles {
    fn new(debug: bool) -> Self {
        if !debug {
            return Self {
                dispatcher: "device-dispatcher",
                runtime: "device",
                simulator: "release",
                config: Vec::new(),
            };
        }
        // The device SOs: the very code that ships (same optimisation, LTO
        // and panic strategy; debug assertions would add panic paths the
        // dispatcher's link refuses), plus symbols and debug info. The
        // simulator, a development tool, gets the ordinary dev profile.
        let mut config = Vec::new();
        for (name, base) in [
            ("device-dispatcher-debug", "device-dispatcher"),
            ("device-debug", "device"),
        ] {
            config.extend([
                format!("profile.{name}.inherits=\"{base}\""),
                format!("profile.{name}.debug=\"full\""),
                format!("profile.{name}.strip=\"none\""),
            ]);
        }
        Self {
            dispatcher: "device-dispatcher-debug",
            runtime: "device-debug",
            simulator: "dev",
            config,
        }
    }
}

/// The release artifacts for `target` (what demo, bench and test need);
/// returns the artifacts directory.
pub fn release(root: &Path, target: Target) -> Result<PathBuf> {
    run(
        root,
        &BuildArgs {
            target,
            debug: false,
        },
    )
}

/// Builds everything for `args.target`; returns the artifacts directory.
pub fn run(root: &Path, args: &BuildArgs) -> Result<PathBuf> {
    let target = args.target;
    let triple = target.triple();
    let tools = toolchain::ensure(root, &toolchain::needs(target, false))?;
    let zig = match target.zig_target() {
        Some(zig_target) => {
            let zigbuild = tools
                .zigbuild
                .as_deref()
                .context("cargo-zigbuild was provisioned but not found")?;
            Some((zigbuild, zig_target))
        }
        None => None,
    };
    let profiles = Profiles::new(args.debug);
    let build = |package, profile, select: Vec<&'static str>, rustflags| Build {
        package,
        profile,
        triple,
        zig: zig.clone(),
        select,
        config: profiles.config.clone(),
        rustflags,
    };

    let mut produced: Vec<(&str, PathBuf)> = Vec::new();
    let outputs = build(
        DISPATCHER_PACKAGE,
        profiles.dispatcher,
        vec!["--lib"],
        vec!["--cfg", "simpler_nostd"],
    )
    .run(root)?;
    produced.push((
        files::DISPATCHER,
        pick(&outputs, DISPATCHER_PACKAGE, files::DISPATCHER)?,
    ));
    let outputs = build(RUNTIME_PACKAGE, profiles.runtime, vec!["--lib"], vec![]).run(root)?;
    produced.push((
        files::RUNTIME,
        pick(&outputs, RUNTIME_PACKAGE, files::RUNTIME)?,
    ));

    // The simulator's library is loaded by the host process, so it is only
    // built for the host; its device process binary is built for the target.
    let mut sim_parts = vec![(
        SIM_DEVICE_PACKAGE,
        vec!["--bin", files::SIM_DEVICE_BIN],
        files::SIM_DEVICE_BIN,
    )];
    if let Target::Host = target {
        sim_parts.insert(0, (SIM_LIB_PACKAGE, vec!["--lib"], files::SIM_LIB));
    }
    for (package, select, name) in sim_parts {
        let outputs = build(package, profiles.simulator, select, vec![]).run(root)?;
        produced.push((name, pick(&outputs, package, name)?));
    }

    let dir = target.artifacts_dir(root);
    install(&dir, &produced)?;
    let names: Vec<&str> = produced.iter().map(|(name, _)| *name).collect();
    let manifest = manifest::write(&dir, triple, args.debug, &names)?;

    println!("{}:", dir.display());
    for file in &manifest.files {
        println!("  {:<32} {:>10} B", file.name, file.size);
    }
    Ok(dir)
}

/// The output of `package` named `name` among the files cargo reported.
pub(crate) fn pick(outputs: &[PathBuf], package: &str, name: &str) -> Result<PathBuf> {
    outputs
        .iter()
        .find(|path| path.file_name().is_some_and(|n| n == name))
        .cloned()
        .with_context(|| {
            format!("building `{package}` produced no {name} (is its crate-type cdylib?)")
        })
}

/// Replaces the artifacts in `dir` with `produced`. Files of earlier builds
/// that this build did not produce are removed, so the directory never mixes
/// builds. Each file is copied under a temporary name and renamed into
/// place, so a process loading an artifact while another build runs (tests
/// build on demand) sees the old file or the new one, never a partial one.
fn install(dir: &Path, produced: &[(&str, PathBuf)]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in [
        files::DISPATCHER,
        files::RUNTIME,
        files::SIM_LIB,
        files::SIM_DEVICE_BIN,
    ] {
        if produced.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }
    for (name, from) in produced {
        let to = dir.join(name);
        replace_with(&to, |tmp| {
            std::fs::copy(from, tmp)
                .map(drop)
                .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_replaces_every_earlier_artifact() {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("artifacts");
        std::fs::create_dir(&dir).unwrap();
        for stale in [files::SIM_LIB, files::RUNTIME] {
            std::fs::write(dir.join(stale), b"old").unwrap();
        }
        let new = out.path().join("new.so");
        std::fs::write(&new, b"new").unwrap();

        install(&dir, &[(files::RUNTIME, new.clone())]).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [files::RUNTIME]);
        assert_eq!(std::fs::read(dir.join(files::RUNTIME)).unwrap(), b"new");

        let missing = out.path().join("missing.so");
        let err = install(&dir, &[(files::RUNTIME, missing)]).unwrap_err();
        assert!(format!("{err:#}").contains("missing.so"), "{err:#}");
        // A failed copy leaves the previous file and no temporary file.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [files::RUNTIME]);
        assert_eq!(std::fs::read(dir.join(files::RUNTIME)).unwrap(), b"new");
    }

    #[test]
    fn pick_finds_the_file_by_name_or_says_what_is_missing() {
        let outputs = [
            PathBuf::from("/t/device/libsimpler_aicpu.rlib"),
            PathBuf::from("/t/device/libsimpler_aicpu.so"),
        ];
        assert_eq!(pick(&outputs, "p", files::RUNTIME).unwrap(), outputs[1]);
        let err = pick(&outputs, "simpler-cann-sim", files::SIM_LIB).unwrap_err();
        assert!(
            err.to_string()
                .contains("`simpler-cann-sim` produced no libsimpler_cann_sim.so"),
            "{err}"
        );
    }
}
