//! Small file helpers the commands share.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes `path` atomically: `write` fills a temporary file next to it,
/// which is then renamed onto `path`; the temporary file is removed if
/// anything fails.
pub fn replace_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path.file_name().context("no file name")?.to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let result = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_with_swaps_the_whole_file_or_leaves_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"old").unwrap();
        replace_with(&path, |tmp| {
            assert_ne!(tmp, path, "written beside the file, not over it");
            std::fs::write(tmp, b"new").context("write")
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");

        let err = replace_with(&path, |tmp| {
            std::fs::write(tmp, b"partial").unwrap();
            anyhow::bail!("the writer failed")
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "the writer failed");
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"], "no temporary file left");
    }
}
