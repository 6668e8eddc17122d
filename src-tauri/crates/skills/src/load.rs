//! Reading a library folder into a snapshot; each broken skill becomes a problem, never an error.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bundled::{content_hash, read_manifest, MANIFEST_FILE};
use crate::{LibrarySnapshot, Skill, SkillError, SkillOrigin, SkillProblem};

/// The file every skill folder holds.
pub const SKILL_FILE: &str = "SKILL.md";

/// The largest SKILL.md accepted. Skills are injected into prompts; anything
/// near this size is a mistake (a pasted log), not an instruction.
pub const MAX_SKILL_BYTES: u64 = 256 * 1024;

/// Loads every `<name>/SKILL.md` in `dir`.
///
/// Hidden entries (a leading `.`) and plain files such as a README are
/// skipped. A folder that cannot be loaded is reported in the snapshot's
/// problems; only the folder itself being unreadable leaves the snapshot empty
/// (with that as its one problem).
pub(crate) fn load_dir(dir: &Path) -> LibrarySnapshot {
    let mut problems = Vec::new();
    let root = match fs::canonicalize(dir) {
        Ok(root) => root,
        Err(err) => return unreadable(dir, SkillError::io("open the skill library", dir, err)),
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => return unreadable(dir, SkillError::io("list the skill library", dir, err)),
    };
    let manifest = read_manifest(dir).unwrap_or_else(|err| {
        problems.push(SkillProblem::from_error(&dir.join(MANIFEST_FILE), &err));
        BTreeMap::new()
    });

    let mut folders: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let err = SkillError::io("list the skill library", dir, err);
                problems.push(SkillProblem::from_error(dir, &err));
                continue;
            }
        };
        let file_name = entry.file_name();
        if file_name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let path = entry.path();
        // Follows symlinks: a symlinked folder is a folder (checked for
        // escaping the library below); a symlinked file is a stray file.
        match fs::metadata(&path) {
            Ok(meta) if !meta.is_dir() => continue,
            Ok(_) => {}
            Err(err) => {
                let err = SkillError::io("follow the symlink", &path, err);
                problems.push(SkillProblem::from_error(&path, &err));
                continue;
            }
        }
        match file_name.into_string() {
            Ok(name) => folders.push((name, path)),
            Err(_) => problems.push(SkillProblem {
                path,
                reason: "folder name is not valid UTF-8, so it cannot be a skill name".to_owned(),
            }),
        }
    }
    // Directory order is arbitrary; sorted folders give stable problem lists.
    folders.sort();

    let mut skills = Vec::with_capacity(folders.len());
    for (folder_name, folder) in folders {
        match load_skill(&root, &folder, &folder_name, &manifest) {
            Ok(skill) => skills.push(skill),
            Err((path, err)) => problems.push(SkillProblem::from_error(&path, &err)),
        }
    }
    LibrarySnapshot::from_parts(skills, problems)
}

fn unreadable(dir: &Path, err: SkillError) -> LibrarySnapshot {
    LibrarySnapshot::from_parts(Vec::new(), vec![SkillProblem::from_error(dir, &err)])
}

/// Loads one skill folder; the error carries the path the problem is about.
fn load_skill(
    root: &Path,
    folder: &Path,
    folder_name: &str,
    manifest: &BTreeMap<String, String>,
) -> Result<Skill, (PathBuf, SkillError)> {
    let file = folder.join(SKILL_FILE);
    let text = read_skill_file(root, folder, &file).map_err(|err| match err {
        SkillError::MissingSkillFile { .. } => (folder.to_owned(), err),
        err => (file.clone(), err),
    })?;
    let mut skill = Skill::parse(&text, &file).map_err(|err| (file.clone(), err))?;
    if skill.name != folder_name {
        let err = SkillError::NameMismatch {
            path: file.clone(),
            name: skill.name,
            folder: folder_name.to_owned(),
        };
        return Err((file, err));
    }
    // Bundled means "as shipped": an edited copy is the user's own.
    if skill.origin == SkillOrigin::User
        && manifest.get(&skill.name).map(String::as_str)
            == Some(content_hash(text.as_bytes()).as_str())
    {
        skill.origin = SkillOrigin::Bundled;
    }
    Ok(skill)
}

/// Reads a SKILL.md after checking that it stays inside the library, is a
/// regular file, is not too large and is UTF-8.
pub(crate) fn read_skill_file(
    root: &Path,
    folder: &Path,
    file: &Path,
) -> Result<String, SkillError> {
    if fs::symlink_metadata(file).is_err() {
        return Err(SkillError::MissingSkillFile {
            dir: folder.to_owned(),
        });
    }
    let real = fs::canonicalize(file).map_err(|e| SkillError::io("follow the symlink", file, e))?;
    if !real.starts_with(root) {
        return Err(SkillError::OutsideLibrary {
            path: file.to_owned(),
            target: real,
        });
    }
    // Checked before opening: opening a named pipe would block the loader.
    let meta = fs::metadata(&real).map_err(|e| SkillError::io("read", file, e))?;
    if !meta.is_file() {
        return Err(SkillError::NotAFile {
            path: file.to_owned(),
        });
    }
    let too_large = |size| SkillError::TooLarge {
        path: file.to_owned(),
        size,
        limit: MAX_SKILL_BYTES,
    };
    if meta.len() > MAX_SKILL_BYTES {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(&real)
        // The file may grow between the check and the read; never read more.
        .and_then(|f| f.take(MAX_SKILL_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| SkillError::io("read", file, e))?;
    if bytes.len() as u64 > MAX_SKILL_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|err| SkillError::NotUtf8 {
        path: file.to_owned(),
        offset: err.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
