//! Picking up hand edits: a debounced file watcher that reloads the library.

use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use crate::{SkillError, SkillLibrary};

/// Quiet time after the last change before reloading: an editor's save is
/// often several events (write temp, rename, chmod) and a `git pull` many.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Keeps the library in sync with its folder until dropped.
pub struct LibraryWatcher {
    debouncer: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
}

impl SkillLibrary {
    /// Starts watching the library folder: every change to it (edits, new
    /// skills, deletions, renames) triggers one reload after [`DEBOUNCE`] of
    /// quiet, logged as "skill library reloaded: N skills, M problems".
    ///
    /// The folder itself must stay: if it is removed and created again, watch
    /// it again.
    pub fn watch(&self) -> Result<LibraryWatcher, SkillError> {
        let library = self.clone();
        let handler = move |result: DebounceEventResult| {
            // Reindexing a large library takes real CPU; at the lowest
            // priority it never competes with the requests it serves.
            let _ =
                thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
            match result {
                Ok(events) => {
                    // Reading files is an event too (inotify reports opens);
                    // reloading on those would reload forever.
                    if events
                        .iter()
                        .all(|event| matches!(event.kind, EventKind::Access(_)))
                    {
                        return;
                    }
                }
                Err(errors) => {
                    // Events may have been lost (e.g. a queue overflow):
                    // reloading is the way to be sure nothing was missed.
                    for error in errors {
                        tracing::warn!("skill library watcher: {error}");
                    }
                }
            }
            let snapshot = library.reload();
            tracing::info!(
                "skill library reloaded: {} skills, {} problems",
                snapshot.len(),
                snapshot.problems().len()
            );
        };
        let watch_error = |source| SkillError::Watch {
            path: self.dir().to_owned(),
            source,
        };
        let mut debouncer = new_debouncer(DEBOUNCE, None, handler).map_err(watch_error)?;
        debouncer
            .watch(self.dir(), RecursiveMode::Recursive)
            .map_err(watch_error)?;
        Ok(LibraryWatcher {
            debouncer: Some(debouncer),
        })
    }
}

impl Drop for LibraryWatcher {
    fn drop(&mut self) {
        // `stop` waits for the debouncer thread, so no reload can start after
        // the watcher is gone (a plain drop would let one more run).
        if let Some(debouncer) = self.debouncer.take() {
            debouncer.stop();
        }
    }
}

impl std::fmt::Debug for LibraryWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibraryWatcher").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::time::Instant;

    use super::*;

    fn write(dir: &Path, name: &str, description: &str) {
        fs::create_dir_all(dir.join(name)).unwrap();
        fs::write(
            dir.join(name).join("SKILL.md"),
            format!("---\nname: {name}\ndescription: {description}\n---\nbody\n"),
        )
        .unwrap();
    }

    /// Waits up to five seconds for the library to satisfy `check`.
    fn eventually(
        library: &SkillLibrary,
        what: &str,
        check: impl Fn(&crate::LibrarySnapshot) -> bool,
    ) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if check(&library.snapshot()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for: {what}");
    }

    #[test]
    fn reloads_on_changes_and_stops_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let library = SkillLibrary::open(dir.path()).unwrap();
        let watcher = library.watch().unwrap();

        write(dir.path(), "first", "Use when testing one.");
        eventually(&library, "added skill", |s| s.get("first").is_some());

        write(dir.path(), "first", "Use when testing edits.");
        eventually(&library, "edited skill", |s| {
            s.get("first")
                .is_some_and(|k| k.description == "Use when testing edits.")
        });

        fs::write(dir.path().join("first/SKILL.md"), "broken").unwrap();
        eventually(&library, "broken skill", |s| {
            s.is_empty() && s.problems().len() == 1
        });

        write(dir.path(), "first", "Use when renaming.");
        eventually(&library, "fixed skill", |s| s.get("first").is_some());
        fs::rename(dir.path().join("first"), dir.path().join("moved")).unwrap();
        eventually(&library, "renamed folder", |s| {
            s.get("first").is_none() && s.problems().iter().any(|p| p.reason.contains("`moved`"))
        });

        fs::remove_dir_all(dir.path().join("moved")).unwrap();
        eventually(&library, "deleted skill", |s| {
            s.is_empty() && s.problems().is_empty()
        });

        drop(watcher);
        write(dir.path(), "after", "Use when the watcher is gone.");
        std::thread::sleep(Duration::from_millis(600));
        assert!(library.snapshot().get("after").is_none());
        assert!(library.reload().get("after").is_some());
    }
}
