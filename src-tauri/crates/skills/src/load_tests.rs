//! Tests for loading a library folder, one kind of broken skill at a time.

use std::fs;

use super::*;

fn write_skill(dir: &Path, folder: &str, text: &str) {
    fs::create_dir_all(dir.join(folder)).unwrap();
    fs::write(dir.join(folder).join(SKILL_FILE), text).unwrap();
}

fn good(name: &str) -> String {
    format!("---\nname: {name}\ndescription: Use when testing {name}.\n---\nBody of {name}.\n")
}

/// Loads `dir` and returns the single problem, asserting there is exactly one.
fn only_problem(dir: &Path) -> SkillProblem {
    let snapshot = load_dir(dir);
    assert_eq!(snapshot.problems().len(), 1, "{:?}", snapshot.problems());
    snapshot.problems()[0].clone()
}

#[test]
fn loads_skills_and_skips_hidden_and_stray_entries() {
    let dir = tempfile::tempdir().unwrap();
    write_skill(dir.path(), "beta", &good("beta"));
    write_skill(dir.path(), "alpha", &good("alpha"));
    write_skill(dir.path(), ".hidden", "not even a skill");
    fs::write(dir.path().join("README.md"), "# stray").unwrap();
    fs::write(dir.path().join(".DS_Store"), [0xff, 0xfe]).unwrap();
    // Extra files inside a skill folder (scripts, references) are allowed.
    fs::write(dir.path().join("alpha/notes.txt"), "extra").unwrap();

    let snapshot = load_dir(dir.path());
    assert!(snapshot.problems().is_empty(), "{:?}", snapshot.problems());
    let names: Vec<_> = snapshot.skills().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    let alpha = &snapshot.skills()[0];
    assert_eq!(alpha.path, dir.path().join("alpha").join(SKILL_FILE));
    assert_eq!(alpha.origin, SkillOrigin::User);
}

#[test]
fn folder_without_skill_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("empty")).unwrap();
    let problem = only_problem(dir.path());
    assert_eq!(problem.path, dir.path().join("empty"));
    assert!(problem.reason.contains("no SKILL.md"), "{}", problem.reason);
}

#[test]
fn broken_files_each_become_one_problem() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("no-front", b"# Title\n", "no front matter"),
        ("unclosed", b"---\nname: unclosed\n", "never closed"),
        ("bad-yaml", b"---\nname: [bad-yaml\n---\n", "invalid YAML"),
        (
            "no-name",
            b"---\ndescription: d\n---\n",
            "`name` is missing",
        ),
        (
            "no-desc",
            b"---\nname: no-desc\n---\n",
            "`description` is missing",
        ),
        (
            "bad-name",
            b"---\nname: Bad_Name\ndescription: d\n---\n",
            "`name` is not valid",
        ),
        (
            "mismatch",
            b"---\nname: other\ndescription: d\n---\n",
            "the folder is `mismatch`",
        ),
        (
            "binary",
            b"---\nname: binary\ndescription: \xff\xfe\n---\n",
            "not UTF-8",
        ),
    ];
    for (folder, content, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(folder)).unwrap();
        fs::write(dir.path().join(folder).join(SKILL_FILE), content).unwrap();
        write_skill(dir.path(), "fine", &good("fine"));
        let snapshot = load_dir(dir.path());
        assert_eq!(snapshot.len(), 1, "{folder}: the good skill still loads");
        assert_eq!(
            snapshot.problems().len(),
            1,
            "{folder}: {:?}",
            snapshot.problems()
        );
        let problem = &snapshot.problems()[0];
        assert_eq!(problem.path, dir.path().join(folder).join(SKILL_FILE));
        assert!(
            problem.reason.contains(expected),
            "{folder}: {}",
            problem.reason
        );
    }
}

#[test]
fn yaml_problem_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    write_skill(
        dir.path(),
        "y",
        "---\nname: y\ndescription: d\nlist: [a, b\n---\n",
    );
    let problem = only_problem(dir.path());
    assert!(problem.reason.contains("line"), "{}", problem.reason);
}

#[test]
fn oversized_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = good("big");
    text.push_str(&"x".repeat(MAX_SKILL_BYTES as usize));
    write_skill(dir.path(), "big", &text);
    let problem = only_problem(dir.path());
    assert!(
        problem.reason.contains("262144-byte limit"),
        "{}",
        problem.reason
    );
}

#[test]
fn crlf_and_bom_files_load() {
    let dir = tempfile::tempdir().unwrap();
    write_skill(
        dir.path(),
        "windows",
        "\u{feff}---\r\nname: windows\r\ndescription: Use when on Windows.\r\n---\r\n# Hi\r\n",
    );
    let snapshot = load_dir(dir.path());
    assert!(snapshot.problems().is_empty(), "{:?}", snapshot.problems());
    assert_eq!(snapshot.skills()[0].body, "# Hi\n");
}

#[test]
fn skill_file_that_is_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("odd").join(SKILL_FILE)).unwrap();
    let problem = only_problem(dir.path());
    assert!(
        problem.reason.contains("not a regular file"),
        "{}",
        problem.reason
    );
}

#[cfg(unix)]
#[test]
fn symlinks_must_stay_inside_the_library() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    write_skill(outside.path(), "secret", &good("secret"));
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path();

    // A folder symlink escaping the library.
    symlink(outside.path().join("secret"), lib.join("secret")).unwrap();
    let problem = only_problem(lib);
    assert!(
        problem.reason.contains("outside the skill library"),
        "{}",
        problem.reason
    );
    fs::remove_file(lib.join("secret")).unwrap();

    // A SKILL.md symlink escaping the library.
    fs::create_dir(lib.join("secret")).unwrap();
    symlink(
        outside.path().join("secret").join(SKILL_FILE),
        lib.join("secret").join(SKILL_FILE),
    )
    .unwrap();
    let problem = only_problem(lib);
    assert!(
        problem.reason.contains("outside the skill library"),
        "{}",
        problem.reason
    );
    fs::remove_dir_all(lib.join("secret")).unwrap();

    // A broken symlink.
    symlink(lib.join("nowhere"), lib.join("dangling")).unwrap();
    let problem = only_problem(lib);
    assert_eq!(problem.path, lib.join("dangling"));
    fs::remove_file(lib.join("dangling")).unwrap();

    // Symlinks within the library are fine.
    write_skill(lib, ".store", &good("shared"));
    symlink(lib.join(".store"), lib.join("shared")).unwrap();
    let snapshot = load_dir(lib);
    assert!(snapshot.problems().is_empty(), "{:?}", snapshot.problems());
    assert!(snapshot.get("shared").is_some());
}

#[test]
fn missing_library_folder_is_one_problem() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    let problem = only_problem(&gone);
    assert_eq!(problem.path, gone);
    assert!(load_dir(&gone).is_empty());
}

#[test]
fn manifest_marks_unchanged_bundled_skills() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = good("shipped");
    write_skill(dir.path(), "shipped", &shipped);
    write_skill(dir.path(), "edited", &good("edited"));
    let mut evolved = good("evolved");
    evolved = evolved.replace("---\nBody", "origin: evolved\n---\nBody");
    write_skill(dir.path(), "evolved", &evolved);
    let manifest = serde_json::json!({
        "shipped": content_hash(shipped.as_bytes()),
        "edited": content_hash(b"the text we once installed"),
    });
    fs::write(dir.path().join(MANIFEST_FILE), manifest.to_string()).unwrap();

    let snapshot = load_dir(dir.path());
    assert!(snapshot.problems().is_empty(), "{:?}", snapshot.problems());
    let origin = |name| snapshot.get(name).map(|s| s.origin);
    assert_eq!(origin("shipped"), Some(SkillOrigin::Bundled));
    assert_eq!(origin("edited"), Some(SkillOrigin::User));
    assert_eq!(origin("evolved"), Some(SkillOrigin::Evolved));
}

#[test]
fn corrupt_manifest_is_a_problem_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    write_skill(dir.path(), "a", &good("a"));
    fs::write(dir.path().join(MANIFEST_FILE), "{not json").unwrap();
    let snapshot = load_dir(dir.path());
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot.problems().len(), 1);
    assert_eq!(snapshot.problems()[0].path, dir.path().join(MANIFEST_FILE));
}
