//! The starter skills shipped inside the binary, and installing them without overwriting user edits.
//!
//! `<library>/.bundled.json` maps each installed bundled skill to the SHA-256
//! of the SKILL.md text that was installed. Comparing a file against that hash
//! tells "untouched since we installed it" (safe to update) from "edited by
//! the user" (never touched again), and a name in the manifest without a
//! folder means the user deleted it (never reinstalled).

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use include_dir::{include_dir, Dir};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::atomic;
use crate::load::{read_skill_file, SKILL_FILE};
use crate::SkillError;

/// The manifest file, hidden so the loader skips it.
pub const MANIFEST_FILE: &str = ".bundled.json";

static BUNDLED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/bundled");

/// What [`install_bundled`] did, by skill name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BundledReport {
    /// Bundled skills written for the first time.
    pub installed: Vec<String>,
    /// Untouched bundled skills replaced by this version's text.
    pub updated: Vec<String>,
    /// Bundled skills whose file the user changed (or wrote first): left as they are.
    pub kept_user_edits: Vec<String>,
}

/// The bundled skills as `(name, SKILL.md bytes)`, sorted by name.
pub fn bundled_skills() -> Vec<(&'static str, &'static [u8])> {
    let mut skills: Vec<_> = BUNDLED
        .dirs()
        .filter_map(|dir| {
            let name = dir.path().file_name()?.to_str()?;
            let file = dir.get_file(dir.path().join(SKILL_FILE))?;
            Some((name, file.contents()))
        })
        .collect();
    skills.sort_unstable_by_key(|(name, _)| *name);
    skills
}

/// Copies the bundled skills into the library folder `dir` (created if
/// missing) without overwriting anything the user changed.
///
/// For each bundled skill: not in the manifest → written only if its folder
/// does not exist; in the manifest and the file still has the recorded hash →
/// replaced when the bundled text changed; in the manifest but edited →
/// kept; in the manifest but deleted → stays deleted. An unreadable or
/// corrupt manifest is an error and nothing is written.
pub fn install_bundled(dir: &Path) -> Result<BundledReport, SkillError> {
    install_from(dir, &bundled_skills())
}

/// [`install_bundled`] over any set of skills, so tests can play app upgrades.
pub(crate) fn install_from(
    dir: &Path,
    skills: &[(&str, &[u8])],
) -> Result<BundledReport, SkillError> {
    fs::create_dir_all(dir).map_err(|e| SkillError::io("create the skill library", dir, e))?;
    let root =
        fs::canonicalize(dir).map_err(|e| SkillError::io("open the skill library", dir, e))?;
    let mut manifest = read_manifest(dir)?;
    let before = manifest.clone();
    let mut report = BundledReport::default();
    let mut result = Ok(());
    for &(name, content) in skills {
        result = install_one(&root, dir, name, content, &mut manifest, &mut report);
        if result.is_err() {
            break;
        }
    }
    // Record what was done even when a later skill failed, so the next run
    // does not mistake this run's installs for user files.
    if manifest != before {
        write_manifest(dir, &manifest)?;
    }
    result.map(|()| report)
}

fn install_one(
    root: &Path,
    dir: &Path,
    name: &str,
    content: &[u8],
    manifest: &mut BTreeMap<String, String>,
    report: &mut BundledReport,
) -> Result<(), SkillError> {
    let folder = dir.join(name);
    let file = folder.join(SKILL_FILE);
    let new_hash = content_hash(content);
    let folder_exists = match fs::symlink_metadata(&folder) {
        Ok(_) => true,
        Err(err) if err.kind() == ErrorKind::NotFound => false,
        Err(err) => return Err(SkillError::io("inspect", &folder, err)),
    };
    // The hash of what is on disk; None when it is missing, unreadable or
    // outside the library, all of which count as the user's doing.
    let current_hash = || {
        read_skill_file(root, &folder, &file)
            .ok()
            .map(|text| content_hash(text.as_bytes()))
    };
    match manifest.get(name).cloned() {
        None if !folder_exists => {
            atomic::create_folder_with_file(&folder, SKILL_FILE, content)?;
            manifest.insert(name.to_owned(), new_hash);
            report.installed.push(name.to_owned());
        }
        None => {
            // A folder of that name predates the bundled skill. Adopt it if it
            // is byte-identical (a previous run died before saving the
            // manifest); otherwise it is the user's.
            if current_hash().as_deref() == Some(new_hash.as_str()) {
                manifest.insert(name.to_owned(), new_hash);
            } else {
                report.kept_user_edits.push(name.to_owned());
            }
        }
        Some(_) if !folder_exists => {} // deleted by the user: stays deleted
        Some(recorded) => match current_hash() {
            Some(current) if current == new_hash => {
                if recorded != new_hash {
                    manifest.insert(name.to_owned(), new_hash);
                }
            }
            Some(current) if current == recorded => {
                atomic::write_file(&file, content)?;
                manifest.insert(name.to_owned(), new_hash);
                report.updated.push(name.to_owned());
            }
            _ => report.kept_user_edits.push(name.to_owned()),
        },
    }
    Ok(())
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The manifest of `dir`, empty when there is none yet.
pub(crate) fn read_manifest(dir: &Path) -> Result<BTreeMap<String, String>, SkillError> {
    let path = dir.join(MANIFEST_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(SkillError::io("read", path, err)),
    };
    serde_json::from_str(&text).map_err(|err| SkillError::Manifest {
        path,
        reason: format!("not a JSON object of skill name to SHA-256 ({err})"),
    })
}

fn write_manifest(dir: &Path, manifest: &BTreeMap<String, String>) -> Result<(), SkillError> {
    let path = dir.join(MANIFEST_FILE);
    let mut json = serde_json::to_string_pretty(manifest).map_err(|err| SkillError::Manifest {
        path: path.clone(),
        reason: format!("cannot be encoded ({err})"),
    })?;
    json.push('\n');
    atomic::write_file(&path, json.as_bytes())
}

#[cfg(test)]
#[path = "bundled_tests.rs"]
mod tests;
