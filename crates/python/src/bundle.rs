//! The files an installed wheel carries next to the package: the
//! simulator and the device SOs, under `simpler/_bundled/<triple>/`.
//!
//! An explicit environment variable (the artifacts directories of
//! `simpler_host::artifacts`) still wins over them; without either, the
//! host library's own search runs, and its error lists what it tried.

use std::path::PathBuf;

use pyo3::prelude::*;
use simpler_host::abi::artifacts::{ARTIFACTS_DIR_ENV, DEVICE_ARTIFACTS_DIR_ENV};

/// The directory, inside the package, holding one triple's files.
pub const BUNDLE_DIR: &str = "_bundled";

/// `simpler/_bundled`, from where the `simpler` package was imported.
pub fn root(py: Python<'_>) -> PyResult<PathBuf> {
    let file: PathBuf = py.import("simpler")?.getattr("__file__")?.extract()?;
    let package = file
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(package.join(BUNDLE_DIR))
}

/// Whether the user named an artifacts directory for `device` files (or
/// host files when `device` is false) in the environment.
pub fn env_overrides(device: bool) -> bool {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    set(ARTIFACTS_DIR_ENV) || (device && set(DEVICE_ARTIFACTS_DIR_ENV))
}

/// The bundled `file` for `triple`, if the package carries it and no
/// environment variable overrides the bundle.
pub fn file(py: Python<'_>, triple: &str, file: &str, device: bool) -> PyResult<Option<PathBuf>> {
    if env_overrides(device) {
        return Ok(None);
    }
    let path = root(py)?.join(triple).join(file);
    Ok(path.is_file().then_some(path))
}
