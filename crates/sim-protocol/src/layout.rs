//! The on-disk layout of the simulated devices under one root
//! (`SIMPLER_SIM_ROOT`): each device `N` has its own directory, playing the
//! device's filesystem.
//!
//! ```text
//! <root>/device<N>/preinstall/   the AICPU scheduler's preinstall directory
//! <root>/device<N>/tmp/          where the KFC server saves the dispatcher
//! <root>/device<N>/log/device.log   the device log (DlogRecord)
//! ```
//!
//! Every party names these paths through the functions below.

use std::path::{Path, PathBuf};

/// `<root>/device<N>`.
pub fn device_dir(root: &Path, device: u32) -> PathBuf {
    root.join(format!("device{device}"))
}

/// `<root>/device<N>/preinstall`: the directory the dispatcher installs
/// runtime SOs into and the scheduler opens them from.
pub fn preinstall_dir(root: &Path, device: u32) -> PathBuf {
    preinstall_in(&device_dir(root, device))
}

/// `<root>/device<N>/tmp`.
pub fn tmp_dir(root: &Path, device: u32) -> PathBuf {
    tmp_in(&device_dir(root, device))
}

/// `<root>/device<N>/log`.
pub fn log_dir(root: &Path, device: u32) -> PathBuf {
    log_in(&device_dir(root, device))
}

/// `<root>/device<N>/log/device.log`.
pub fn log_file(root: &Path, device: u32) -> PathBuf {
    log_file_in(&device_dir(root, device))
}

/// The preinstall directory of the device whose directory is `device_dir`.
pub fn preinstall_in(device_dir: &Path) -> PathBuf {
    device_dir.join("preinstall")
}

/// The tmp directory of the device whose directory is `device_dir`.
pub fn tmp_in(device_dir: &Path) -> PathBuf {
    device_dir.join("tmp")
}

/// The log directory of the device whose directory is `device_dir`.
pub fn log_in(device_dir: &Path) -> PathBuf {
    device_dir.join("log")
}

/// The log file of the device whose directory is `device_dir`.
pub fn log_file_in(device_dir: &Path) -> PathBuf {
    log_in(device_dir).join("device.log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_under_the_device_directory() {
        let root = Path::new("/r");
        assert_eq!(device_dir(root, 3), Path::new("/r/device3"));
        assert_eq!(preinstall_dir(root, 0), Path::new("/r/device0/preinstall"));
        assert_eq!(tmp_dir(root, 1), Path::new("/r/device1/tmp"));
        assert_eq!(log_file(root, 2), Path::new("/r/device2/log/device.log"));
    }
}
