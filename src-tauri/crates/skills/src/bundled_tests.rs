//! Tests for installing bundled skills and for the bundled skills themselves.

use std::collections::HashSet;

use super::*;
use crate::{Skill, SkillLibrary, SkillOrigin};

const V1: &[u8] = b"---\nname: tz\ndescription: Use when converting times (v1).\n---\nv1\n";
const V2: &[u8] = b"---\nname: tz\ndescription: Use when converting times (v2).\n---\nv2\n";
const OTHER: &[u8] = b"---\nname: other\ndescription: Use when other.\n---\nother\n";

fn read(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name).join(SKILL_FILE)).unwrap()
}

fn names(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

#[test]
fn first_run_installs_and_second_run_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let report = install_from(dir.path(), &[("tz", V1), ("other", OTHER)]).unwrap();
    assert_eq!(names(&report.installed), ["tz", "other"]);
    assert!(report.updated.is_empty() && report.kept_user_edits.is_empty());
    assert_eq!(read(dir.path(), "tz"), V1);
    let manifest = read_manifest(dir.path()).unwrap();
    assert_eq!(manifest.get("tz"), Some(&content_hash(V1)));

    let again = install_from(dir.path(), &[("tz", V1), ("other", OTHER)]).unwrap();
    assert_eq!(again, BundledReport::default());
}

#[test]
fn untouched_skill_is_updated_to_the_new_version() {
    let dir = tempfile::tempdir().unwrap();
    install_from(dir.path(), &[("tz", V1)]).unwrap();
    let report = install_from(dir.path(), &[("tz", V2)]).unwrap();
    assert_eq!(names(&report.updated), ["tz"]);
    assert_eq!(read(dir.path(), "tz"), V2);
    assert_eq!(
        read_manifest(dir.path()).unwrap().get("tz"),
        Some(&content_hash(V2))
    );
    let library = SkillLibrary::open(dir.path()).unwrap();
    assert_eq!(
        library.snapshot().get("tz").map(|s| s.origin),
        Some(SkillOrigin::Bundled)
    );
}

#[test]
fn user_edit_is_kept_across_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    install_from(dir.path(), &[("tz", V1)]).unwrap();
    let edited = b"---\nname: tz\ndescription: Use when converting times (mine).\n---\nmine\n";
    fs::write(dir.path().join("tz").join(SKILL_FILE), edited).unwrap();

    let report = install_from(dir.path(), &[("tz", V2)]).unwrap();
    assert_eq!(names(&report.kept_user_edits), ["tz"]);
    assert!(report.updated.is_empty());
    assert_eq!(read(dir.path(), "tz"), edited);
    // The manifest still records what was installed, so the edit stays an edit.
    assert_eq!(
        read_manifest(dir.path()).unwrap().get("tz"),
        Some(&content_hash(V1))
    );
    let library = SkillLibrary::open(dir.path()).unwrap();
    assert_eq!(
        library.snapshot().get("tz").map(|s| s.origin),
        Some(SkillOrigin::User)
    );
}

#[test]
fn deleted_skill_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    install_from(dir.path(), &[("tz", V1), ("other", OTHER)]).unwrap();
    fs::remove_dir_all(dir.path().join("tz")).unwrap();
    let report = install_from(dir.path(), &[("tz", V2), ("other", OTHER)]).unwrap();
    assert_eq!(report, BundledReport::default());
    assert!(!dir.path().join("tz").exists());
}

#[test]
fn existing_user_folder_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let mine = b"---\nname: tz\ndescription: Use when mine.\n---\n";
    fs::create_dir(dir.path().join("tz")).unwrap();
    fs::write(dir.path().join("tz").join(SKILL_FILE), mine).unwrap();
    let report = install_from(dir.path(), &[("tz", V1)]).unwrap();
    assert_eq!(names(&report.kept_user_edits), ["tz"]);
    assert_eq!(read(dir.path(), "tz"), mine);
    assert!(read_manifest(dir.path()).unwrap().is_empty());

    // An identical copy (a run that died before saving the manifest) is adopted.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("tz")).unwrap();
    fs::write(dir.path().join("tz").join(SKILL_FILE), V1).unwrap();
    let report = install_from(dir.path(), &[("tz", V1)]).unwrap();
    assert_eq!(report, BundledReport::default());
    assert_eq!(
        read_manifest(dir.path()).unwrap().get("tz"),
        Some(&content_hash(V1))
    );
}

#[test]
fn corrupt_manifest_is_an_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(MANIFEST_FILE), "[1, 2]").unwrap();
    let err = install_from(dir.path(), &[("tz", V1)])
        .unwrap_err()
        .to_string();
    assert!(err.contains(MANIFEST_FILE), "{err}");
    assert!(!dir.path().join("tz").exists());
}

#[test]
fn hash_is_lowercase_hex_sha256() {
    assert_eq!(
        content_hash(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn real_bundle_installs_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let report = install_bundled(dir.path()).unwrap();
    assert_eq!(report.installed.len(), bundled_skills().len());
    let library = SkillLibrary::open(dir.path()).unwrap();
    let snapshot = library.snapshot();
    assert!(snapshot.problems().is_empty(), "{:?}", snapshot.problems());
    assert_eq!(snapshot.len(), bundled_skills().len());
    assert!(snapshot
        .skills()
        .iter()
        .all(|s| s.origin == SkillOrigin::Bundled));
    assert_eq!(
        install_bundled(dir.path()).unwrap(),
        BundledReport::default()
    );
}

#[test]
fn bundled_skills_are_well_formed() {
    let skills = bundled_skills();
    assert!(skills.len() >= 22, "only {} bundled skills", skills.len());
    let mut categories = HashSet::new();
    for (name, bytes) in skills {
        let text = std::str::from_utf8(bytes).unwrap();
        let skill = Skill::parse(text, Path::new(name)).unwrap();
        assert_eq!(skill.name, name);
        assert!(
            skill.description.starts_with("Use when"),
            "{name}: description should start with \"Use when\""
        );
        let category = skill.category.clone().unwrap_or_default();
        assert!(!category.is_empty(), "{name}: needs a category");
        categories.insert(category);
        assert!(skill.extra.is_empty(), "{name}: unexpected keys");
        let lines = skill.body.trim().lines().count();
        assert!((15..=40).contains(&lines), "{name}: body has {lines} lines");
        assert!(!text.contains('\r'), "{name}: use LF line endings");
        assert_eq!(
            Skill::parse(&skill.to_markdown(), Path::new(name)).unwrap(),
            skill
        );
    }
    assert!(categories.len() >= 4, "{categories:?}");
}

#[test]
fn bundled_skills_are_found_by_typical_requests() {
    let skills: Vec<Skill> = bundled_skills()
        .into_iter()
        .map(|(name, bytes)| {
            Skill::parse(std::str::from_utf8(bytes).unwrap(), Path::new(name)).unwrap()
        })
        .collect();
    let snapshot = crate::LibrarySnapshot::from_skills(skills);
    let cases = [
        (
            "what time is 3pm in Tokyo for someone in New York?",
            "time-zone-conversions",
        ),
        (
            "I got this traceback, can you fix it? Traceback (most recent call last)",
            "read-errors-fully",
        ),
        (
            "write a regex that matches email addresses",
            "build-and-test-regexes",
        ),
        (
            "summarize this long PDF report for me",
            "summarize-long-documents",
        ),
        (
            "fetch all pages from the GitHub API, I keep getting 429 too many requests",
            "paginated-api-calls",
        ),
        (
            "delete all the .tmp files in this folder with rm",
            "safe-shell-commands",
        ),
        (
            "set up a virtualenv and pip install requests",
            "python-virtualenvs",
        ),
        (
            "why is this function so slow? profile it",
            "profile-before-optimizing",
        ),
    ];
    for (query, expected) in cases {
        let hits = snapshot.search(query, 3);
        let top: Vec<_> = hits.iter().map(|h| h.skill.name.as_str()).collect();
        assert_eq!(top.first().copied(), Some(expected), "{query}: {top:?}");
    }
}
