//! The third-party skill bank in `shared/reference/metaclaw-skills` loads unchanged and round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use metaclaw_skills::{Skill, SkillLibrary, SkillOrigin, SkillStatus};

/// The bank sits in `shared/` beside the repository; `METACLAW_REFERENCE_SKILLS` overrides.
fn bank() -> PathBuf {
    if let Some(dir) = std::env::var_os("METACLAW_REFERENCE_SKILLS") {
        return PathBuf::from(dir);
    }
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/reference/metaclaw-skills");
    assert!(
        dir.is_dir(),
        "reference skill bank not found at {}; set METACLAW_REFERENCE_SKILLS",
        dir.display()
    );
    dir
}

#[test]
fn loads_unchanged_with_no_problems() {
    let dir = bank();
    let library = SkillLibrary::open(&dir).unwrap();
    let snapshot = library.snapshot();
    assert!(snapshot.problems().is_empty(), "{:?}", snapshot.problems());
    assert_eq!(snapshot.len(), 36);
    for skill in snapshot.skills() {
        assert_eq!(skill.path, library.dir().join(&skill.name).join("SKILL.md"));
        assert!(skill.description.len() > 20, "{}", skill.name);
        assert!(skill.category.is_some(), "{}", skill.name);
        assert_eq!(skill.status, SkillStatus::Active);
        assert_eq!(skill.origin, SkillOrigin::User);
        assert!(skill.body.contains("# "), "{}", skill.name);
    }
    let git = snapshot.get("git-workflow").unwrap();
    assert_eq!(git.category.as_deref(), Some("coding"));
    assert!(git.body.starts_with("\n# Git Workflow Best Practices\n"));
}

#[test]
fn round_trips_through_markdown_and_the_library() {
    let source = SkillLibrary::open(&bank()).unwrap().snapshot();
    let copy = tempfile::tempdir().unwrap();
    let library = SkillLibrary::open(copy.path()).unwrap();
    for skill in source.skills() {
        // The rendered text parses back to the same skill...
        let text = skill.to_markdown();
        assert_eq!(&Skill::parse(&text, &skill.path).unwrap(), &**skill);
        // ...and says the same as the original file, key for key.
        let original = fs::read_to_string(&skill.path).unwrap();
        assert_eq!(
            front_matter(&text),
            front_matter(&original),
            "{}",
            skill.name
        );
        assert!(original.ends_with(&skill.body));
        library.write_skill(skill).unwrap();
    }
    let copied = library.snapshot();
    assert!(copied.problems().is_empty(), "{:?}", copied.problems());
    assert_eq!(copied.len(), source.len());
    for (a, b) in source.skills().iter().zip(copied.skills()) {
        let moved = Skill {
            path: b.path.clone(),
            ..(**a).clone()
        };
        assert_eq!(moved, **b);
    }
}

fn front_matter(text: &str) -> serde_norway::Value {
    let yaml = text
        .strip_prefix("---\n")
        .and_then(|rest| rest.split("\n---\n").next())
        .unwrap();
    serde_norway::from_str(yaml).unwrap()
}

#[test]
fn relevant_skills_rank_first() {
    let snapshot = SkillLibrary::open(&bank()).unwrap().snapshot();
    let cases = [
        ("how should I write my git commit message", "git-workflow"),
        (
            "write a SQL query that joins the orders and customers tables",
            "sql-best-practices",
        ),
        (
            "where should I store the API keys and passwords for this service",
            "secrets-management",
        ),
        (
            "which chart should I use to show sales over time",
            "visualization-selection",
        ),
        (
            "draft a professional email to a client about the delayed delivery",
            "professional-email-drafting",
        ),
        (
            "implement login with JWT and OAuth2 refresh tokens",
            "auth-and-authorization-patterns",
        ),
    ];
    for (query, expected) in cases {
        let hits = snapshot.search(query, 5);
        let names: Vec<_> = hits.iter().map(|h| h.skill.name.as_str()).collect();
        assert_eq!(names.first().copied(), Some(expected), "{query}: {names:?}");
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
}

/// The bundled skills are our own words: no run of eight words appears in the bank.
#[test]
fn bundled_skills_do_not_copy_the_bank() {
    fn shingles(text: &str) -> HashSet<String> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        words.windows(8).map(|w| w.join(" ")).collect()
    }
    let bank = SkillLibrary::open(&bank()).unwrap().snapshot();
    let mut seen = HashSet::new();
    for skill in bank.skills() {
        seen.extend(shingles(&format!("{}\n{}", skill.description, skill.body)));
    }
    for (name, bytes) in metaclaw_skills::bundled_skills() {
        assert!(bank.get(name).is_none(), "{name} reuses a bank name");
        let text = std::str::from_utf8(bytes).unwrap();
        let copied: Vec<_> = shingles(text).intersection(&seen).cloned().collect();
        assert!(copied.is_empty(), "{name} repeats the bank: {copied:?}");
    }
}
