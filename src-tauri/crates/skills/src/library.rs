//! The live skill library: a folder on disk and the snapshot every request reads.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::load::{load_dir, MAX_SKILL_BYTES, SKILL_FILE};
use crate::{atomic, validate_name, LibrarySnapshot, Skill, SkillError};

/// A cheap, cloneable handle on a skill folder.
///
/// Readers call [`SkillLibrary::snapshot`], a lock-free atomic load. Writers
/// (reload, write, delete, the watcher) build a whole new snapshot off to the
/// side and swap it in, so a request never sees a half-loaded library.
#[derive(Clone)]
pub struct SkillLibrary {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    current: ArcSwap<LibrarySnapshot>,
    /// Serialises reloads so a slow, older scan cannot replace a newer one.
    reload: Mutex<()>,
}

impl SkillLibrary {
    /// Opens the library in `dir`, creating the folder if missing, and loads it.
    ///
    /// Broken skills become [`LibrarySnapshot::problems`]; only failing to
    /// create or resolve the folder itself is an error.
    pub fn open(dir: &Path) -> Result<SkillLibrary, SkillError> {
        fs::create_dir_all(dir)
            .map_err(|e| SkillError::io("create the skill library folder", dir, e))?;
        // Absolute, so a later change of working directory cannot move the library.
        let dir = std::path::absolute(dir)
            .map_err(|e| SkillError::io("resolve the skill library folder", dir, e))?;
        let snapshot = load_dir(&dir);
        Ok(SkillLibrary {
            inner: Arc::new(Inner {
                dir,
                current: ArcSwap::from_pointee(snapshot),
                reload: Mutex::new(()),
            }),
        })
    }

    /// The library folder (absolute).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The current snapshot; lock-free, meant for every proxied request.
    pub fn snapshot(&self) -> Arc<LibrarySnapshot> {
        self.inner.current.load_full()
    }

    /// Rescans the folder, swaps the new snapshot in and returns it.
    pub fn reload(&self) -> Arc<LibrarySnapshot> {
        // A poisoned lock only means another reload panicked; the guarded data
        // is `()`, so carrying on is safe.
        let _guard = self
            .inner
            .reload
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let snapshot = Arc::new(load_dir(&self.inner.dir));
        self.inner.current.store(Arc::clone(&snapshot));
        snapshot
    }

    /// Writes `skill` to `<dir>/<name>/SKILL.md` atomically, reloads, and
    /// returns the file's path. `skill.path` is ignored.
    ///
    /// The rendered file is parsed again before writing, so a skill the loader
    /// would reject (empty description, over 256 KiB) is refused here instead.
    pub fn write_skill(&self, skill: &Skill) -> Result<PathBuf, SkillError> {
        validate_name(&skill.name)?;
        let folder = self.inner.dir.join(&skill.name);
        let file = folder.join(SKILL_FILE);
        let text = skill.to_markdown();
        if text.len() as u64 > MAX_SKILL_BYTES {
            return Err(SkillError::TooLarge {
                path: file,
                size: text.len() as u64,
                limit: MAX_SKILL_BYTES,
            });
        }
        Skill::parse(&text, &file)?;

        self.store_text(&folder, &file, &text)?;
        Ok(file)
    }

    /// Writes `text` as `<dir>/<name>/SKILL.md` exactly as given, so the
    /// user's own formatting survives, and reloads; returns the skill.
    ///
    /// The text must parse as a skill named `name` and fit the size limit;
    /// otherwise nothing is written. The write is atomic (temp file, rename).
    pub fn write_skill_text(&self, name: &str, text: &str) -> Result<Skill, SkillError> {
        validate_name(name)?;
        let folder = self.inner.dir.join(name);
        let file = folder.join(SKILL_FILE);
        if text.len() as u64 > MAX_SKILL_BYTES {
            return Err(SkillError::TooLarge {
                path: file,
                size: text.len() as u64,
                limit: MAX_SKILL_BYTES,
            });
        }
        let skill = Skill::parse(text, &file)?;
        if skill.name != name {
            return Err(SkillError::NameMismatch {
                path: file,
                name: skill.name,
                folder: name.to_owned(),
            });
        }
        self.store_text(&folder, &file, text)?;
        Ok(skill)
    }

    /// Writes an already validated SKILL.md (a new folder, or the file in
    /// place) and reloads the library.
    fn store_text(&self, folder: &Path, file: &Path, text: &str) -> Result<(), SkillError> {
        match fs::symlink_metadata(folder) {
            Err(err) if err.kind() == ErrorKind::NotFound => {
                atomic::create_folder_with_file(folder, SKILL_FILE, text.as_bytes())?;
            }
            Err(err) => return Err(SkillError::io("inspect", folder, err)),
            Ok(_) => {
                self.check_inside(folder)?;
                atomic::write_file(file, text.as_bytes())?;
            }
        }
        self.reload();
        Ok(())
    }

    /// Moves the skill's folder into `trash` (as `<name>-<suffix>`, which
    /// must be unique there) and reloads; returns where it went. Deleting
    /// this way loses nothing: the folder can be moved back by hand.
    pub fn move_skill_to(
        &self,
        name: &str,
        trash: &Path,
        suffix: &str,
    ) -> Result<PathBuf, SkillError> {
        validate_name(name)?;
        let folder = self.inner.dir.join(name);
        match fs::symlink_metadata(&folder) {
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(SkillError::NotFound {
                    name: name.to_owned(),
                    dir: self.inner.dir.clone(),
                })
            }
            Err(err) => return Err(SkillError::io("inspect", &folder, err)),
        }
        fs::create_dir_all(trash).map_err(|e| SkillError::io("create", trash, e))?;
        let target = trash.join(format!("{name}-{suffix}"));
        if let Err(err) = fs::rename(&folder, &target) {
            // Another disk: copy, then remove the original.
            if err.kind() != ErrorKind::CrossesDevices {
                return Err(SkillError::io("move", &folder, err));
            }
            copy_dir(&folder, &target)?;
            fs::remove_dir_all(&folder).map_err(|e| SkillError::io("remove", &folder, e))?;
        }
        self.reload();
        Ok(target)
    }

    /// Removes the skill's folder and reloads.
    ///
    /// The folder is first renamed to a hidden name, so the skill disappears
    /// in one step even if removing its files takes a while or fails.
    pub fn delete_skill(&self, name: &str) -> Result<(), SkillError> {
        validate_name(name)?;
        let folder = self.inner.dir.join(name);
        match fs::symlink_metadata(&folder) {
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(SkillError::NotFound {
                    name: name.to_owned(),
                    dir: self.inner.dir.clone(),
                })
            }
            Err(err) => return Err(SkillError::io("inspect", &folder, err)),
        }
        let trash = atomic::temp_path(&self.inner.dir, &format!("deleted-{name}"));
        fs::rename(&folder, &trash).map_err(|e| SkillError::io("remove", &folder, e))?;
        // Does not follow a symlinked folder: only the link goes.
        if let Err(err) = fs::remove_dir_all(&trash) {
            // The skill is already gone from the library (hidden names are
            // skipped); a leftover hidden folder is untidy, not wrong.
            tracing::warn!(path = %trash.display(), "could not remove a deleted skill's files: {err}");
        }
        self.reload();
        Ok(())
    }

    /// Refuses to write through a symlink that leads outside the library.
    fn check_inside(&self, path: &Path) -> Result<(), SkillError> {
        let root = fs::canonicalize(&self.inner.dir)
            .map_err(|e| SkillError::io("open the skill library", &self.inner.dir, e))?;
        let real = fs::canonicalize(path).map_err(|e| SkillError::io("resolve", path, e))?;
        if real.starts_with(&root) {
            Ok(())
        } else {
            Err(SkillError::OutsideLibrary {
                path: path.to_owned(),
                target: real,
            })
        }
    }
}

/// Copies a skill folder (files and subfolders; symlinks as the files they
/// point to) for a move across disks.
fn copy_dir(from: &Path, to: &Path) -> Result<(), SkillError> {
    fs::create_dir(to).map_err(|e| SkillError::io("create", to, e))?;
    let entries = fs::read_dir(from).map_err(|e| SkillError::io("list", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SkillError::io("list", from, e))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            fs::copy(&source, &target).map_err(|e| SkillError::io("copy", &source, e))?;
        }
    }
    Ok(())
}

impl std::fmt::Debug for SkillLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkillLibrary")
            .field("dir", &self.inner.dir)
            .field("skills", &self.snapshot().len())
            .finish()
    }
}

#[cfg(test)]
#[path = "library_tests.rs"]
mod tests;
