//! Writing files and folders so that readers see the old version or the new one, never half.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::SkillError;

/// A hidden, unique name in `dir` for a temporary file or folder. Hidden names
/// are skipped by the loader, so a crash never leaves a half-skill behind.
pub(crate) fn temp_path(dir: &Path, purpose: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{purpose}-{}-{n}.tmp", std::process::id()))
}

/// Writes `bytes` to a new file and flushes it to disk.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), SkillError> {
    let mut file = fs::File::create_new(path).map_err(|e| SkillError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| SkillError::io("write", path, e))
}

/// Replaces `path` with `bytes`: write a temporary file beside it, then rename.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SkillError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = temp_path(dir, "write");
    let result = write_new(&temp, bytes)
        .and_then(|()| fs::rename(&temp, path).map_err(|e| SkillError::io("replace", path, e)));
    if result.is_err() {
        // Best effort: the temp file is hidden, so a leftover is harmless.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Creates the folder `target` holding one file, `file_name`, in one step:
/// build it under a hidden name, then rename it into place. Fails if `target`
/// already exists.
pub(crate) fn create_folder_with_file(
    target: &Path,
    file_name: &str,
    bytes: &[u8],
) -> Result<(), SkillError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let temp = temp_path(parent, "new");
    let result = fs::create_dir(&temp)
        .map_err(|e| SkillError::io("create", &temp, e))
        .and_then(|()| write_new(&temp.join(file_name), bytes))
        .and_then(|()| {
            // `rename` would replace an empty folder on Unix; a folder that
            // appeared since the caller looked must be left alone.
            if fs::symlink_metadata(target).is_ok() {
                return Err(SkillError::io(
                    "create",
                    target,
                    std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                ));
            }
            fs::rename(&temp, target).map_err(|e| SkillError::io("create", target, e))
        });
    if result.is_err() {
        let _ = fs::remove_dir_all(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_file_reports_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("f.txt");
        let err = write_file(&path, b"x").unwrap_err().to_string();
        assert!(err.contains("could not create"), "{err}");
    }

    #[test]
    fn create_folder_with_file_refuses_existing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("skill");
        create_folder_with_file(&target, "SKILL.md", b"hello").unwrap();
        assert_eq!(fs::read(target.join("SKILL.md")).unwrap(), b"hello");
        assert!(create_folder_with_file(&target, "SKILL.md", b"again").is_err());
        assert_eq!(fs::read(target.join("SKILL.md")).unwrap(), b"hello");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
