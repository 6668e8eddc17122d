//! Tests for the library handle: open, reload, write and delete.

use super::*;
use crate::{SkillOrigin, SkillStatus};

fn skill(name: &str) -> Skill {
    let mut skill = Skill::new(name, format!("Use when testing {name}."), "# Body\n");
    skill.category = Some("testing".to_owned());
    skill
}

#[test]
fn open_creates_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("skills");
    let library = SkillLibrary::open(&nested).unwrap();
    assert!(nested.is_dir());
    assert!(library.snapshot().is_empty());
    assert!(library.snapshot().problems().is_empty());
    assert!(library.dir().is_absolute());
}

#[test]
fn open_fails_when_the_folder_cannot_exist() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let err = SkillLibrary::open(&file.join("skills"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("could not create the skill library folder"),
        "{err}"
    );
}

#[test]
fn write_then_read_back_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let library = SkillLibrary::open(dir.path()).unwrap();
    let mut new = skill("fresh");
    new.status = SkillStatus::Pending;
    new.origin = SkillOrigin::Evolved;
    new.extra
        .insert("session".into(), serde_norway::Value::String("s-1".into()));

    let path = library.write_skill(&new).unwrap();
    assert_eq!(path, library.dir().join("fresh").join("SKILL.md"));
    let snapshot = library.snapshot();
    let loaded = snapshot.get("fresh").unwrap();
    assert_eq!(
        **loaded,
        Skill {
            path,
            ..new.clone()
        }
    );

    // Overwrite in place.
    new.description = "Use when testing rewrites.".to_owned();
    library.write_skill(&new).unwrap();
    assert_eq!(
        library.snapshot().get("fresh").unwrap().description,
        "Use when testing rewrites."
    );
    // No temporary files left behind.
    let leftovers: Vec<_> = fs::read_dir(library.dir())
        .unwrap()
        .chain(fs::read_dir(library.dir().join("fresh")).unwrap())
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    library.delete_skill("fresh").unwrap();
    assert!(library.snapshot().is_empty());
    assert!(!library.dir().join("fresh").exists());
    assert_eq!(fs::read_dir(library.dir()).unwrap().count(), 0);
}

#[test]
fn write_refuses_bad_skills() {
    let dir = tempfile::tempdir().unwrap();
    let library = SkillLibrary::open(dir.path()).unwrap();
    for name in ["../escape", "", "UPPER", "a/b", ".hidden"] {
        let err = library.write_skill(&skill(name)).unwrap_err();
        assert!(
            matches!(err, SkillError::InvalidName { .. }),
            "{name}: {err}"
        );
    }
    let mut empty = skill("empty");
    empty.description = " ".to_owned();
    let err = library.write_skill(&empty).unwrap_err().to_string();
    assert!(err.contains("`description` is empty"), "{err}");
    let mut huge = skill("huge");
    huge.body = "x".repeat(MAX_SKILL_BYTES as usize);
    assert!(matches!(
        library.write_skill(&huge),
        Err(SkillError::TooLarge { .. })
    ));
    assert_eq!(fs::read_dir(library.dir()).unwrap().count(), 0);
}

#[test]
fn delete_checks_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let library = SkillLibrary::open(dir.path()).unwrap();
    assert!(matches!(
        library.delete_skill(".."),
        Err(SkillError::InvalidName { .. })
    ));
    let err = library.delete_skill("missing").unwrap_err().to_string();
    assert!(err.contains("no skill named `missing`"), "{err}");
}

#[test]
fn reload_sees_hand_edits_and_old_snapshots_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let library = SkillLibrary::open(dir.path()).unwrap();
    library.write_skill(&skill("one")).unwrap();
    let before = library.snapshot();
    fs::create_dir(dir.path().join("two")).unwrap();
    fs::write(
        dir.path().join("two/SKILL.md"),
        "---\nname: two\ndescription: Use when two.\n---\n",
    )
    .unwrap();
    assert_eq!(library.snapshot().len(), 1);
    let after = library.reload();
    assert_eq!(after.len(), 2);
    assert_eq!(library.snapshot().len(), 2);
    assert_eq!(before.len(), 1);
    // Clones share the same library.
    let clone = library.clone();
    clone.delete_skill("one").unwrap();
    assert_eq!(library.snapshot().len(), 1);
}

#[cfg(unix)]
#[test]
fn write_does_not_follow_symlinks_out_of_the_library() {
    let outside = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
    let library = SkillLibrary::open(dir.path()).unwrap();
    let err = library.write_skill(&skill("escape")).unwrap_err();
    assert!(matches!(err, SkillError::OutsideLibrary { .. }), "{err}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    // Deleting removes only the link.
    library.delete_skill("escape").unwrap();
    assert!(outside.path().is_dir());
}

#[test]
fn concurrent_readers_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    let library = SkillLibrary::open(dir.path()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..2 {
            let library = library.clone();
            scope.spawn(move || {
                for i in 0..10 {
                    library.write_skill(&skill(&format!("t{t}-{i}"))).unwrap();
                }
            });
        }
        let library = library.clone();
        scope.spawn(move || {
            for _ in 0..200 {
                let snapshot = library.snapshot();
                assert!(snapshot.problems().is_empty(), "{:?}", snapshot.problems());
                let _ = snapshot.search("testing", 3);
            }
        });
    });
    assert_eq!(library.snapshot().len(), 20);
}

#[test]
fn text_is_written_as_given_only_when_it_parses_under_its_folder_name() {
    let dir = tempfile::tempdir().unwrap();
    let library = SkillLibrary::open(dir.path()).unwrap();
    library.write_skill(&skill("tidy")).unwrap();
    let file = dir.path().join("tidy").join("SKILL.md");
    // The user's own layout (a comment, key order) is kept byte for byte.
    let text = "---\n# mine\ndescription: Tidy things up\nname: tidy\n---\nKeep it short.\n";
    let written = library.write_skill_text("tidy", text).unwrap();
    assert_eq!(written.description, "Tidy things up");
    assert_eq!(fs::read_to_string(&file).unwrap(), text);
    assert_eq!(
        library.snapshot().get("tidy").unwrap().body,
        "Keep it short.\n"
    );

    for (bad, why) in [
        ("no front matter", "front matter"),
        ("---\nname: tidy\n---\nbody\n", "description"),
        ("---\nname: other\ndescription: d\n---\n", "other"),
    ] {
        let message = library
            .write_skill_text("tidy", bad)
            .unwrap_err()
            .to_string();
        assert!(message.contains(why), "{message}");
        assert_eq!(fs::read_to_string(&file).unwrap(), text);
    }
    assert!(library.write_skill_text("../tidy", text).is_err());
}

#[test]
fn a_skill_moved_to_the_trash_leaves_the_library_whole() {
    let dir = tempfile::tempdir().unwrap();
    let trash = tempfile::tempdir().unwrap();
    let library = SkillLibrary::open(dir.path()).unwrap();
    library.write_skill(&skill("old-habit")).unwrap();
    let moved = library
        .move_skill_to("old-habit", trash.path(), "20260101T000000Z")
        .unwrap();
    assert_eq!(moved, trash.path().join("old-habit-20260101T000000Z"));
    assert!(moved.join("SKILL.md").is_file());
    assert!(!dir.path().join("old-habit").exists());
    assert!(library.snapshot().get("old-habit").is_none());
    let err = library
        .move_skill_to("old-habit", trash.path(), "again")
        .unwrap_err();
    assert!(matches!(err, SkillError::NotFound { .. }), "{err}");
}
