//! The curator's decisions on small libraries with chosen statistics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const RULES: Rules = Rules {
    min_uses: 3,
    harm_margin: 0.3,
    merge_similarity: 0.8,
};

const BODY: &str = "- Write every meeting time with its UTC offset such as 10:00+08:00.\n- Name the time zone of each attendee too.";

fn skill(name: &str, origin: SkillOrigin, description: &str, body: &str) -> Arc<Skill> {
    let mut skill = Skill::new(name, description, body);
    skill.origin = origin;
    Arc::new(skill)
}

fn evolved(name: &str, body: &str) -> Arc<Skill> {
    skill(
        name,
        SkillOrigin::Evolved,
        "Use when stating meeting times",
        body,
    )
}

fn with_status(skill: Arc<Skill>, status: SkillStatus) -> Arc<Skill> {
    let mut skill = (*skill).clone();
    skill.status = status;
    Arc::new(skill)
}

/// Usage with `uses` scored turns of mean `mean` against `baseline_uses`
/// turns of mean `baseline`; injected as often as scored.
fn stats(uses: u64, mean: f64, baseline_uses: u64, baseline: f64) -> SkillUsage {
    SkillUsage {
        injected: uses,
        first_used_ms: Some(1_000),
        last_used_ms: Some(9_000),
        scored: uses,
        mean_score: (uses > 0).then_some(mean),
        baseline_scored: baseline_uses,
        baseline_mean: (baseline_uses > 0).then_some(baseline),
    }
}

fn injected(times: u64) -> SkillUsage {
    SkillUsage {
        injected: times,
        ..SkillUsage::default()
    }
}

fn usage(entries: &[(&str, SkillUsage)]) -> HashMap<String, SkillUsage> {
    entries.iter().map(|(n, u)| (n.to_string(), *u)).collect()
}

fn disabled_names(actions: &[Action]) -> Vec<&str> {
    actions.iter().map(Action::disables).collect()
}

#[test]
fn a_skill_clearly_below_its_baseline_is_disabled_whatever_its_origin() {
    let skills = [
        skill("bundled-bad", SkillOrigin::Bundled, "a", "alpha"),
        skill("user-bad", SkillOrigin::User, "b", "beta"),
        evolved("evolved-bad", "gamma"),
        skill("fine", SkillOrigin::User, "d", "delta"),
    ];
    let usage = usage(&[
        ("bundled-bad", stats(3, -1.0, 3, 1.0)),
        ("user-bad", stats(10, 0.0, 20, 0.5)),
        ("evolved-bad", stats(4, -0.5, 8, 0.0)),
        ("fine", stats(30, 0.5, 30, 0.5)),
    ]);
    let actions = plan(&skills, &usage, &RULES);
    assert_eq!(
        disabled_names(&actions),
        ["bundled-bad", "user-bad", "evolved-bad"]
    );
    let Action::Disable { evidence, .. } = &actions[1] else {
        panic!("{actions:?}")
    };
    assert_eq!(
        *evidence,
        Evidence {
            uses: 10,
            mean: 0.0,
            baseline_uses: 20,
            baseline: 0.5
        }
    );
    assert_eq!(
        actions[1].disabled_reason(),
        "hurts: mean score +0.00 over 10 scored turns with it, +0.50 over 20 comparable turns without it"
    );
}

#[test]
fn harm_needs_enough_evidence_on_both_sides_and_the_whole_margin() {
    let judge = |s: SkillUsage| harm(&s, &RULES).is_some();
    // Exactly the margin counts (means are ratios: 0.7 - 0.4 is not 0.3 in floats).
    assert!(judge(stats(10, 0.4, 10, 0.7)));
    assert!(!judge(stats(10, 0.45, 10, 0.7)), "below the margin");
    assert!(!judge(stats(2, -1.0, 10, 1.0)), "too few uses");
    assert!(!judge(stats(10, -1.0, 2, 1.0)), "too small a baseline");
    assert!(!judge(stats(10, -1.0, 0, 0.0)), "no baseline at all");
    assert!(!judge(stats(0, 0.0, 10, 1.0)), "never scored");
    assert!(!judge(stats(10, 1.0, 10, -1.0)), "helps");
    assert!(!judge(SkillUsage::default()));
}

#[test]
fn only_active_skills_are_curated() {
    let skills = [
        with_status(
            skill("pending-bad", SkillOrigin::Evolved, "a", "alpha"),
            SkillStatus::Pending,
        ),
        with_status(
            skill("disabled-bad", SkillOrigin::User, "b", "beta"),
            SkillStatus::Disabled,
        ),
        with_status(evolved("pending-twin", BODY), SkillStatus::Pending),
        evolved("active-twin", BODY),
    ];
    let usage = usage(&[
        ("pending-bad", stats(10, -1.0, 10, 1.0)),
        ("disabled-bad", stats(10, -1.0, 10, 1.0)),
    ]);
    assert!(plan(&skills, &usage, &RULES).is_empty());
}

#[test]
fn of_two_evolved_near_duplicates_the_more_used_is_kept_and_gets_the_new_lines() {
    let skills = [
        evolved(
            "a-times",
            &format!("{BODY}\n- Ask which zone the user means."),
        ),
        evolved("b-times", BODY),
    ];
    let usage = usage(&[("a-times", injected(2)), ("b-times", injected(5))]);
    let actions = plan(&skills, &usage, &RULES);
    let [Action::Merge {
        from,
        into,
        similarity,
        addition,
    }] = actions.as_slice()
    else {
        panic!("{actions:?}")
    };
    assert_eq!((from.as_str(), into.as_str()), ("a-times", "b-times"));
    assert!(*similarity >= 0.8 && *similarity < 1.0, "{similarity}");
    assert_eq!(addition, "- Ask which zone the user means.");
    assert_eq!(actions[0].disabled_reason(), "merged into b-times");
}

#[test]
fn with_enough_evidence_the_better_effect_wins_over_more_uses() {
    let skills = [evolved("popular", BODY), evolved("better", BODY)];
    // Neither hurts; "better" helps more, on fewer (but enough) turns.
    let usage = usage(&[
        ("popular", stats(40, 0.2, 40, 0.2)),
        ("better", stats(5, 0.8, 40, 0.2)),
    ]);
    let actions = plan(&skills, &usage, &RULES);
    assert_eq!(disabled_names(&actions), ["popular"]);
    assert!(
        matches!(&actions[0], Action::Merge { into, addition, .. } if into == "better" && addition.is_empty())
    );

    // Without enough scored turns, "better" has no known effect: the
    // skill with one (and more uses) is kept.
    let usage = usage_with_few_scores();
    let actions = plan(&skills, &usage, &RULES);
    assert_eq!(disabled_names(&actions), ["better"]);
}

fn usage_with_few_scores() -> HashMap<String, SkillUsage> {
    usage(&[
        ("popular", stats(40, 0.2, 40, 0.2)),
        ("better", stats(2, 1.0, 40, 0.2)),
    ])
}

#[test]
fn equal_skills_keep_the_first_name() {
    let skills = [evolved("zz-times", BODY), evolved("aa-times", BODY)];
    let actions = plan(&skills, &HashMap::new(), &RULES);
    assert_eq!(disabled_names(&actions), ["zz-times"]);
    assert!(matches!(&actions[0], Action::Merge { into, .. } if into == "aa-times"));
}

#[test]
fn a_users_skill_is_never_edited_or_merged_away() {
    let mine = skill(
        "my-times",
        SkillOrigin::User,
        "Use when stating meeting times",
        BODY,
    );
    let starter = skill(
        "starter-times",
        SkillOrigin::Bundled,
        "Use when stating meeting times",
        BODY,
    );
    // Two hand-written or bundled twins: both stay, whatever their use.
    let usage_map = usage(&[("my-times", injected(1)), ("starter-times", injected(9))]);
    assert!(plan(&[mine.clone(), starter], &usage_map, &RULES).is_empty());

    // An evolved copy with nothing new goes, even when used more.
    let copy = evolved("copy-times", BODY);
    let usage_map = usage(&[("copy-times", injected(50))]);
    let actions = plan(&[copy, mine.clone()], &usage_map, &RULES);
    assert_eq!(
        actions,
        [Action::Merge {
            from: "copy-times".into(),
            into: "my-times".into(),
            similarity: 1.0,
            addition: String::new(),
        }]
    );

    // An evolved near-copy that adds something stays: the user's skill
    // cannot take the addition.
    let extended = evolved(
        "extended-times",
        &format!("{BODY}\n- Ask which zone the user means."),
    );
    assert!(plan(&[extended, mine], &HashMap::new(), &RULES).is_empty());
}

#[test]
fn several_duplicates_merge_into_one_without_repeating_lines() {
    let extra = "- Ask which zone the user means.";
    let skills = [
        evolved("times-1", BODY),
        evolved("times-2", &format!("{BODY}\n{extra}")),
        evolved("times-3", &format!("{BODY}\n{extra}")),
    ];
    let usage = usage(&[("times-1", injected(9))]);
    let actions = plan(&skills, &usage, &RULES);
    let merged: Vec<(&str, &str, &str)> = actions
        .iter()
        .map(|a| match a {
            Action::Merge {
                from,
                into,
                addition,
                ..
            } => (from.as_str(), into.as_str(), addition.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        merged,
        [("times-2", "times-1", extra), ("times-3", "times-1", "")]
    );
}

#[test]
fn a_harmful_skill_is_disabled_not_kept_as_a_merge_target() {
    let skills = [evolved("bad-times", BODY), evolved("good-times", BODY)];
    let usage = usage(&[
        ("bad-times", stats(20, -1.0, 20, 0.5)),
        ("good-times", stats(1, 1.0, 1, 0.0)),
    ]);
    let actions = plan(&skills, &usage, &RULES);
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert!(matches!(&actions[0], Action::Disable { name, .. } if name == "bad-times"));
}

#[test]
fn different_skills_are_left_alone() {
    let skills = [
        evolved("times", BODY),
        evolved(
            "sql",
            "- Read the EXPLAIN plan before adding an index.\n- Prefer joins on indexed keys.",
        ),
    ];
    assert!(plan(&skills, &HashMap::new(), &RULES).is_empty());
    // A stricter threshold leaves near-duplicates alone too.
    let near = [
        evolved("a", BODY),
        evolved("b", &format!("{BODY}\n- Ask which zone the user means.")),
    ];
    let strict = Rules {
        merge_similarity: 1.0,
        ..RULES
    };
    assert!(plan(&near, &HashMap::new(), &strict).is_empty());
    assert_eq!(plan(&near, &HashMap::new(), &RULES).len(), 1);
}

#[test]
fn the_plan_does_not_depend_on_the_order_skills_come_in() {
    let extra = "- Ask which zone the user means.";
    let mut skills = vec![
        evolved("t1", BODY),
        evolved("t2", &format!("{BODY}\n{extra}")),
        evolved("t3", BODY),
        evolved("t4", BODY),
        skill(
            "mine",
            SkillOrigin::User,
            "Use when stating meeting times",
            BODY,
        ),
        evolved("t5", BODY),
    ];
    let usage = usage(&[
        ("t1", stats(5, 0.5, 5, 0.0)),
        ("t2", stats(5, 0.9, 5, 0.0)),
        ("t3", injected(100)),
        ("t4", stats(2, 1.0, 9, 0.0)),
        ("t5", stats(7, 0.5, 5, 0.0)),
    ]);
    let first = plan(&skills, &usage, &RULES);
    for _ in 0..skills.len() {
        skills.rotate_left(1);
        assert_eq!(plan(&skills, &usage, &RULES), first);
        skills.reverse();
        assert_eq!(plan(&skills, &usage, &RULES), first);
    }
    // The user's skill is kept; each evolved copy is merged into it, best
    // first (known effect, then uses), except the one that adds a line,
    // which stays.
    assert_eq!(disabled_names(&first), ["t5", "t1", "t3", "t4"]);
}
