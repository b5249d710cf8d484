//! The dispatcher SO's size, from the aarch64 build manifest that
//! `cargo xtask build --target aarch64` writes.

use std::path::{Path, PathBuf};

use simpler_abi::artifacts::{files, TRIPLE_AARCH64};

/// The triple whose dispatcher has the size goal.
pub const DEVICE_TRIPLE: &str = TRIPLE_AARCH64;

/// `<artifacts>/../aarch64-unknown-linux-gnu/manifest.json`: the aarch64
/// directory beside the host's.
pub fn manifest_path(host_artifacts: &Path) -> PathBuf {
    host_artifacts
        .parent()
        .unwrap_or(host_artifacts)
        .join(DEVICE_TRIPLE)
        .join(files::MANIFEST)
}

/// The dispatcher's size in bytes as the manifest records it; `Ok(None)`
/// when there is no aarch64 manifest (not built).
pub fn dispatcher_size(manifest: &Path) -> Result<Option<u64>, String> {
    let text = match std::fs::read_to_string(manifest) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", manifest.display())),
    };
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not JSON: {e}", manifest.display()))?;
    json["files"]
        .as_array()
        .and_then(|list| list.iter().find(|f| f["name"] == files::DISPATCHER))
        .and_then(|f| f["size"].as_u64())
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{} has no size for {}",
                manifest.display(),
                files::DISPATCHER
            )
        })
}

/// How long ago `manifest` was written, when it exists: a size read from
/// an old aarch64 build may not be the current sources' (`cargo xtask
/// bench` builds only the host's artifacts).
pub fn age(manifest: &Path) -> Option<std::time::Duration> {
    let modified = std::fs::metadata(manifest).ok()?.modified().ok()?;
    modified.elapsed().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_dispatcher_entry_or_reports_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        assert_eq!(dispatcher_size(&path), Ok(None));
        std::fs::write(
            &path,
            r#"{"files":[{"name":"libsimpler_aicpu.so","size":5},
                {"name":"libsimpler_aicpu_dispatcher.so","size":7696}]}"#,
        )
        .unwrap();
        assert_eq!(dispatcher_size(&path), Ok(Some(7696)));
        std::fs::write(&path, r#"{"files":[]}"#).unwrap();
        assert!(dispatcher_size(&path).unwrap_err().contains("no size"));
        std::fs::write(&path, "{").unwrap();
        assert!(dispatcher_size(&path).unwrap_err().contains("not JSON"));
    }
}
