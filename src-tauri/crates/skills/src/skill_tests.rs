//! Tests for parsing and rendering a single SKILL.md.

use super::*;

const PATH: &str = "lib/check-units/SKILL.md";

fn parse(text: &str) -> Result<Skill, SkillError> {
    Skill::parse(text, Path::new(PATH))
}

fn parse_err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn parses_required_and_optional_fields() {
    let skill = parse(
        "---\nname: check-units\ndescription: Use when converting units.\ncategory: math\n---\n\n# Units\nBody.\n",
    )
    .unwrap();
    assert_eq!(skill.name, "check-units");
    assert_eq!(skill.description, "Use when converting units.");
    assert_eq!(skill.category.as_deref(), Some("math"));
    assert_eq!(skill.status, SkillStatus::Active);
    assert_eq!(skill.origin, SkillOrigin::User);
    assert_eq!(skill.body, "\n# Units\nBody.\n");
    assert!(skill.extra.is_empty());
    assert_eq!(skill.path, Path::new(PATH));
}

#[test]
fn status_origin_and_unknown_keys() {
    let text = "---\nname: a\ndescription: d\nzeta: 1\nstatus: pending\norigin: evolved\n\
                session: s-42\nalpha: [x, y]\n---\nbody\n";
    let skill = parse(text).unwrap();
    assert_eq!(skill.status, SkillStatus::Pending);
    assert_eq!(skill.origin, SkillOrigin::Evolved);
    let keys: Vec<_> = skill.extra.keys().filter_map(|k| k.as_str()).collect();
    assert_eq!(keys, ["zeta", "session", "alpha"]);

    let other_origin = parse("---\nname: a\ndescription: d\norigin: imported\n---\n").unwrap();
    assert_eq!(other_origin.origin, SkillOrigin::User);
    assert_eq!(
        other_origin.extra.get("origin").and_then(Value::as_str),
        Some("imported")
    );
}

#[test]
fn round_trips_through_markdown() {
    let text = "---\nname: a\ndescription: \"Use when: colons, quotes ' and #hashes\"\n\
                category: c\nstatus: disabled\norigin: evolved\nz: {nested: [1, 2]}\n\
                b: multi\n---\n\n# Title\n\n---\nrule above\n";
    let skill = parse(text).unwrap();
    let rendered = skill.to_markdown();
    assert_eq!(parse(&rendered).unwrap(), skill);
    // Fixed key order, extra keys after in their order.
    let order: Vec<&str> = rendered
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
        .take(7)
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        order,
        [
            "name",
            "description",
            "category",
            "status",
            "origin",
            "z",
            "b"
        ]
    );
}

#[test]
fn renders_defaults_compactly() {
    let skill = Skill::new("a", "Use when testing.", "Body\n");
    assert_eq!(
        skill.to_markdown(),
        "---\nname: a\ndescription: Use when testing.\n---\nBody\n"
    );
    let mut multi = Skill::new("a", "line one\nline two\n", "");
    multi.category = Some(String::new());
    let back = parse(&multi.to_markdown()).unwrap();
    assert_eq!(back.description, multi.description);
    assert_eq!(back.category.as_deref(), Some(""));
}

#[test]
fn extra_keys_never_override_fields() {
    let mut skill = Skill::new("a", "d", "");
    skill
        .extra
        .insert("name".into(), Value::String("other".into()));
    let back = parse(&skill.to_markdown()).unwrap();
    assert_eq!(back.name, "a");
}

#[test]
fn crlf_and_bom() {
    let skill = parse("\u{feff}---\r\nname: a\r\ndescription: d\r\n---\r\nline\r\n").unwrap();
    assert_eq!(skill.name, "a");
    assert_eq!(skill.description, "d");
    assert_eq!(skill.body, "line\n");
}

#[test]
fn missing_fields_are_named() {
    let err = parse_err("---\ndescription: d\n---\n");
    assert!(
        err.contains(PATH) && err.contains("`name` is missing"),
        "{err}"
    );
    let err = parse_err("---\nname: a\n---\n");
    assert!(err.contains("`description` is missing"), "{err}");
    let err = parse_err("---\nname: a\ndescription: '  '\n---\n");
    assert!(err.contains("`description` is empty"), "{err}");
    let err = parse_err("---\nname: a\ndescription:\n---\n");
    assert!(err.contains("`description` is empty"), "{err}");
}

#[test]
fn wrong_types_are_named() {
    let err = parse_err("---\nname: 12\ndescription: d\n---\n");
    assert!(
        err.contains("`name` must be a string, not a number"),
        "{err}"
    );
    let err = parse_err("---\nname: a\ndescription: [d]\n---\n");
    assert!(
        err.contains("`description` must be a string, not a list"),
        "{err}"
    );
    let err = parse_err("---\nname: a\ndescription: d\ncategory: {x: 1}\n---\n");
    assert!(
        err.contains("`category` must be a string, not a mapping"),
        "{err}"
    );
    let err = parse_err("---\nname: a\ndescription: d\nstatus: maybe\n---\n");
    assert!(err.contains("`status`") && err.contains("`maybe`"), "{err}");
    assert!(err.contains("active"), "{err}");
}

#[test]
fn invalid_name() {
    let err = parse_err("---\nname: ../../etc\ndescription: d\n---\n");
    assert!(err.contains("`name` is not valid"), "{err}");
    assert!(err.contains("lowercase letters"), "{err}");
}

#[test]
fn yaml_errors_report_the_file_line() {
    let err = parse("---\nname: a\ndescription: d\nbad: [unclosed\n---\n").unwrap_err();
    match &err {
        SkillError::Yaml { line, .. } => assert!(matches!(line, Some(4..=5)), "{line:?}"),
        other => panic!("expected a YAML error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(PATH) && text.contains("invalid YAML"),
        "{text}"
    );

    let err = parse("---\nname: a\n\tdescription: d\n---\n").unwrap_err();
    match err {
        SkillError::Yaml { line, .. } => assert_eq!(line, Some(3)),
        other => panic!("expected a YAML error, got {other:?}"),
    }
    let err = parse_err("---\nname: a\nname: b\ndescription: d\n---\n");
    assert!(err.contains("duplicate"), "{err}");
}

#[test]
fn unquoted_colons_are_forgiven() {
    let skill = parse("---\nname: a\ndescription: Use when working on git and sql: commit query\ncategory: git\n---\nbody\n").unwrap();
    assert_eq!(
        skill.description,
        "Use when working on git and sql: commit query"
    );
    assert_eq!(skill.category.as_deref(), Some("git"));
    // Rewritten, the file is valid YAML.
    let rendered = skill.to_markdown();
    assert!(serde_norway::from_str::<Value>(rendered.split("---\n").nth(1).unwrap()).is_ok());
    assert_eq!(parse(&rendered).unwrap(), skill);
}

#[test]
fn front_matter_must_be_a_mapping() {
    let err = parse_err("---\n---\nbody\n");
    assert!(err.contains("front matter is empty"), "{err}");
    let err = parse_err("---\n- a\n- b\n---\n");
    assert!(err.contains("not a list"), "{err}");
    let err = parse_err("---\njust text\n---\n");
    assert!(err.contains("not a string"), "{err}");
}

#[test]
fn status_and_origin_words() {
    for status in [
        SkillStatus::Active,
        SkillStatus::Pending,
        SkillStatus::Disabled,
    ] {
        assert_eq!(status.to_string().parse::<SkillStatus>().unwrap(), status);
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{status}\"")
        );
    }
    for origin in [
        SkillOrigin::Bundled,
        SkillOrigin::User,
        SkillOrigin::Evolved,
    ] {
        assert_eq!(
            serde_json::to_string(&origin).unwrap(),
            format!("\"{origin}\"")
        );
    }
}

#[test]
fn a_disabled_skill_keeps_its_reason_in_the_front_matter_until_enabled() {
    let mut skill = parse(
        "---\nname: check-units\ndescription: Use when converting units.\nauthor: me\n---\nBody.\n",
    )
    .unwrap();
    assert_eq!(skill.disabled_reason(), None);
    skill.disable("merged into other-skill", "curator", "2026-03-16T14:00:00Z");
    let text = skill.to_markdown();
    assert!(text.contains("status: disabled\n"), "{text}");
    assert!(
        text.contains("disabled_reason: merged into other-skill\n"),
        "{text}"
    );
    assert!(text.contains("disabled_by: curator\n"), "{text}");
    let back = parse(&text).unwrap();
    assert_eq!(back.status, SkillStatus::Disabled);
    assert_eq!(back.disabled_reason(), Some("merged into other-skill"));
    assert_eq!(back, skill);

    let mut enabled = back;
    enabled.enable();
    assert_eq!(enabled.status, SkillStatus::Active);
    assert_eq!(enabled.disabled_reason(), None);
    let text = enabled.to_markdown();
    assert!(!text.contains("disabled"), "{text}");
    // Keys that are not about disabling stay.
    assert!(text.contains("author: me"), "{text}");
}

#[test]
fn a_reason_left_on_an_active_skill_is_not_its_reason() {
    let skill = parse(
        "---\nname: check-units\ndescription: Use when converting units.\ndisabled_reason: old\n---\nBody.\n",
    )
    .unwrap();
    assert_eq!(skill.status, SkillStatus::Active);
    assert_eq!(skill.disabled_reason(), None);
}
