//! Where the build artifacts are: the dispatcher and runtime SOs for the
//! device's machine, and the simulator library for the host's.
//!
//! `cargo xtask build` writes `target/artifacts/<triple>/`. The directories
//! tried for a file, first match wins:
//!
//! 1. device SOs only: `$SIMPLER_DEVICE_ARTIFACTS_DIR`;
//! 2. `$SIMPLER_ARTIFACTS_DIR` — the host triple's directory; for another
//!    triple, its sibling `$SIMPLER_ARTIFACTS_DIR/../<triple>`;
//! 3. `<ancestor>/artifacts/<triple>` for the directory of the running
//!    executable and its two parents (so `target/debug/simpler` and
//!    `target/debug/deps/<test>` both find `target/artifacts/<triple>`).
//!
//! Nothing else: no path of the machine this crate was built on is kept in
//! it. A program run from elsewhere names its artifacts with an explicit
//! path (the builders' `*_path` methods, [`CannSource::Libraries`]) or with
//! the variables.
//!
//! [`CannSource::Libraries`]: crate::CannSource::Libraries

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crate::elf::Machine;
use crate::error::Error;

// Declared in simpler-abi, which the build (xtask) and the tests share;
// re-exported here under the paths they have always had.
pub use simpler_abi::artifacts::{files, host_triple, ARTIFACTS_DIR_ENV, DEVICE_ARTIFACTS_DIR_ENV};

/// [`SearchDir::origin`] of the `$SIMPLER_DEVICE_ARTIFACTS_DIR` entry.
static DEVICE_DIR_ORIGIN: LazyLock<String> =
    LazyLock::new(|| format!("${DEVICE_ARTIFACTS_DIR_ENV}"));
/// [`SearchDir::origin`] of the `$SIMPLER_ARTIFACTS_DIR` entry.
static DIR_ORIGIN: LazyLock<String> = LazyLock::new(|| format!("${ARTIFACTS_DIR_ENV}"));
/// One directory of the search, and why it is searched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchDir {
    /// The directory.
    pub dir: PathBuf,
    /// Where it comes from, e.g. `$SIMPLER_ARTIFACTS_DIR`.
    pub origin: &'static str,
}

/// What is looked for: device SOs for a machine, or a host-side file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Dispatcher and runtime SOs for a device running this machine's code.
    Device(Machine),
    /// Files that run in the host process (the simulator library).
    Host,
}

/// The directories searched for `side`'s artifacts, in order (see the
/// module documentation). Directories that do not exist are included, so
/// a report can show what was tried.
pub fn search_dirs(side: Side) -> Vec<SearchDir> {
    let triple = match side {
        Side::Device(machine) => machine.triple(),
        Side::Host => Some(host_triple()),
    };
    let mut dirs = Vec::new();
    if let Side::Device(_) = side {
        if let Some(dir) = env_dir(DEVICE_ARTIFACTS_DIR_ENV) {
            dirs.push(SearchDir {
                dir,
                origin: &DEVICE_DIR_ORIGIN,
            });
        }
    }
    // Without a triple (a machine the project does not build for) only the
    // explicit device directory can hold a match.
    let Some(triple) = triple else {
        return dirs;
    };
    if let Some(dir) = env_dir(ARTIFACTS_DIR_ENV) {
        let dir = if triple == host_triple() {
            dir
        } else {
            dir.parent().map(|p| p.join(triple)).unwrap_or(dir)
        };
        dirs.push(SearchDir {
            dir,
            origin: &DIR_ORIGIN,
        });
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        for ancestor in exe_dir.ancestors().take(3) {
            dirs.push(SearchDir {
                dir: ancestor.join("artifacts").join(triple),
                origin: "next to the running executable",
            });
        }
    }
    // Keep the first occurrence of each directory (`$SIMPLER_ARTIFACTS_DIR`
    // may name one next to the executable).
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.dir.clone()));
    dirs
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The first `file` found in [`search_dirs`]`(side)`.
pub fn find(file: &'static str, side: Side) -> Result<PathBuf, Error> {
    let dirs = search_dirs(side);
    dirs.iter()
        .map(|d| d.dir.join(file))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::ArtifactNotFound {
            file,
            searched: dirs.into_iter().map(|d| d.dir).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_search_reaches_the_workspace_target() {
        // Not necessarily last: with $SIMPLER_ARTIFACTS_DIR naming the same
        // directory, the duplicate is dropped and the earlier entry stays.
        let dirs = search_dirs(Side::Device(Machine::AARCH64));
        assert!(
            dirs.iter().any(|d| d
                .dir
                .ends_with("target/artifacts/aarch64-unknown-linux-gnu")),
            "{dirs:?}"
        );
        assert!(dirs
            .iter()
            .any(|d| d.origin == "next to the running executable"));
    }

    #[test]
    fn unknown_machines_have_no_default_dirs() {
        let dirs = search_dirs(Side::Device(Machine(243)));
        assert!(dirs
            .iter()
            .all(|d| d.origin == "$SIMPLER_DEVICE_ARTIFACTS_DIR"));
    }

    #[test]
    fn missing_files_list_every_dir() {
        let err = find("no-such-artifact.so", Side::Host).unwrap_err();
        let Error::ArtifactNotFound { file, searched } = err else {
            panic!("{err}")
        };
        assert_eq!(file, "no-such-artifact.so");
        assert_eq!(searched.len(), search_dirs(Side::Host).len());
    }
}
