//! `manifest.json`: what is in an artifacts directory, so consumers (tests,
//! benchmarks, people) need not re-derive it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use simpler_abi::artifacts::files;
use simpler_host::SoInfo;

/// The whole manifest.
#[derive(Debug, Serialize)]
pub struct Manifest {
    /// The Rust target triple the files are built for.
    pub target: String,
    /// Built with `--debug`.
    pub debug: bool,
    /// One entry per file, in build order.
    pub files: Vec<FileEntry>,
}

/// One artifact.
#[derive(Debug, Serialize)]
pub struct FileEntry {
    /// File name inside the directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents, lower-case hex.
    pub sha256: String,
    /// Exported (defined, visible) dynamic symbols, sorted.
    pub exports: Vec<String>,
    /// `DT_NEEDED` libraries, in order.
    pub needed: Vec<String>,
    /// Highest versioned glibc symbol referenced, e.g. `GLIBC_2.17`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub glibc_max: Option<String>,
    /// Runtime SO only: FNV-1a 64 of the contents, 16 lower-case hex digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Runtime SO only: the name it is preinstalled under on the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preinstall_name: Option<String>,
}

impl FileEntry {
    /// Describes the file `name` in `dir`.
    pub fn of(dir: &Path, name: &str) -> Result<Self> {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let info = SoInfo::parse(&bytes)
            .with_context(|| format!("{} is not a readable ELF file", path.display()))?;
        let is_runtime = name == files::RUNTIME;
        Ok(Self {
            name: name.to_string(),
            size: bytes.len() as u64,
            sha256: hex(&Sha256::digest(&bytes)),
            fingerprint: is_runtime.then(|| format!("{:016x}", info.fingerprint)),
            preinstall_name: is_runtime.then(|| info.preinstall_name().to_string()),
            glibc_max: info.max_glibc.map(|v| v.to_string()),
            exports: info.exports,
            needed: info.needed,
        })
    }
}

/// Describes `names` in `dir` and writes `dir/manifest.json`.
pub fn write(dir: &Path, target: &str, debug: bool, names: &[&str]) -> Result<Manifest> {
    let manifest = Manifest {
        target: target.to_string(),
        debug,
        files: names
            .iter()
            .map(|name| FileEntry::of(dir, name))
            .collect::<Result<_>>()?,
    };
    let path = dir.join(files::MANIFEST);
    let mut json = serde_json::to_string_pretty(&manifest)?;
    json.push('\n');
    crate::util::replace_with(&path, |tmp| {
        std::fs::write(tmp, json).with_context(|| format!("writing {}", tmp.display()))
    })?;
    Ok(manifest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use simpler_abi::fingerprint;

    use super::*;

    #[test]
    fn the_runtime_entry_carries_its_fingerprint_and_preinstall_name() {
        // Any ELF will do for the manifest; the test binary itself is one.
        let exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for name in [files::RUNTIME, files::SIM_DEVICE_BIN] {
            std::fs::copy(&exe, dir.path().join(name)).unwrap();
        }
        let bytes = std::fs::read(&exe).unwrap();
        let manifest = write(
            dir.path(),
            "t",
            false,
            &[files::RUNTIME, files::SIM_DEVICE_BIN],
        )
        .unwrap();

        let runtime = &manifest.files[0];
        assert_eq!(runtime.size, bytes.len() as u64);
        assert_eq!(runtime.sha256, hex(&Sha256::digest(&bytes)));
        let fp = runtime.fingerprint.as_deref().unwrap();
        assert_eq!(fp.len(), 16);
        assert_eq!(u64::from_str_radix(fp, 16).unwrap(), fingerprint(&bytes));
        assert_eq!(
            runtime.preinstall_name.as_deref(),
            Some(format!("simpler_inner_{fp}.so").as_str())
        );
        assert!(
            runtime.needed.iter().any(|n| n == "libc.so.6"),
            "{:?}",
            runtime.needed
        );
        let other = &manifest.files[1];
        assert_eq!(
            (other.fingerprint.as_ref(), other.preinstall_name.as_ref()),
            (None, None)
        );

        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(files::MANIFEST)).unwrap())
                .unwrap();
        assert_eq!(json["files"][0]["fingerprint"], fp);
        assert!(json["files"][1].get("fingerprint").is_none());
    }

    #[test]
    fn a_file_that_is_not_elf_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(files::RUNTIME), b"not an elf").unwrap();
        let err = FileEntry::of(dir.path(), files::RUNTIME).unwrap_err();
        assert!(
            format!("{err:#}").contains("libsimpler_aicpu.so is not a readable ELF file"),
            "{err:#}"
        );
    }

    #[test]
    fn sha256_is_lower_case_hex() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
