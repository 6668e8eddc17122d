//! Deciding what to do with each proposed skill: add it under a safe slug
//! name, merge what is new into a near-duplicate the evolver wrote earlier,
//! or drop it. Pure: the worker writes what this decides.

use std::collections::HashSet;
use std::sync::Arc;

use metaclaw_skills::{slugify, validate_name, Skill, SkillOrigin};

use super::parse::ProposedSkill;

/// Token-set Jaccard similarity (description + body) at or above which two
/// skills are the same skill.
pub const DUPLICATE_SIMILARITY: f64 = 0.8;
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_BODY_BYTES: usize = 16 * 1024;

/// A proposed skill made safe: slug name, one-line description, bounded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSkill {
    pub name: String,
    pub description: String,
    pub category: Option<String>,
    pub body: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Add(NewSkill),
    /// Append `addition` (lines of the proposal the skill lacks) to `into`.
    Merge {
        into: String,
        from: String,
        addition: String,
    },
    Drop {
        name: String,
        reason: String,
    },
}

/// Decides each proposal in order against `existing` and the ones already
/// accepted; at most `max_new` are added.
pub fn plan(
    proposals: Vec<ProposedSkill>,
    existing: &[Arc<Skill>],
    max_new: usize,
) -> Vec<Decision> {
    // Name, origin, tokens and body lines of every skill a proposal could
    // duplicate, growing as proposals are accepted.
    let mut known: Vec<Known> = existing.iter().map(|s| Known::of(s)).collect();
    let mut added = 0;
    let mut out = Vec::new();
    for proposal in proposals {
        let skill = match sanitize(proposal) {
            Ok(skill) => skill,
            Err((name, reason)) => {
                out.push(Decision::Drop { name, reason });
                continue;
            }
        };
        let tokens = tokens(&format!("{} {}", skill.description, skill.body));
        let twin = known.iter().position(|k| {
            k.name == skill.name || jaccard(&k.tokens, &tokens) >= DUPLICATE_SIMILARITY
        });
        if let Some(at) = twin {
            let target = &mut known[at];
            if !target.evolved {
                // A user's or bundled skill is theirs: never edited by the evolver.
                out.push(Decision::Drop {
                    name: skill.name,
                    reason: format!("duplicates the skill {}", target.name),
                });
                continue;
            }
            let addition = new_lines(&target.lines, &skill.body);
            if addition.is_empty() {
                out.push(Decision::Drop {
                    name: skill.name,
                    reason: format!("nothing new for the skill {}", target.name),
                });
                continue;
            }
            target
                .lines
                .extend(addition.lines().map(|l| l.trim().to_string()));
            target.tokens.extend(tokens);
            out.push(Decision::Merge {
                into: target.name.clone(),
                from: skill.name,
                addition,
            });
            continue;
        }
        if added >= max_new {
            out.push(Decision::Drop {
                name: skill.name,
                reason: format!("over the limit of {max_new} new skills"),
            });
            continue;
        }
        added += 1;
        known.push(Known {
            name: skill.name.clone(),
            evolved: true,
            tokens,
            lines: body_lines(&skill.body),
        });
        out.push(Decision::Add(skill));
    }
    out
}

struct Known {
    name: String,
    evolved: bool,
    tokens: HashSet<String>,
    lines: HashSet<String>,
}

impl Known {
    fn of(skill: &Skill) -> Known {
        Known {
            name: skill.name.clone(),
            evolved: skill.origin == SkillOrigin::Evolved,
            tokens: tokens(&format!("{} {}", skill.description, skill.body)),
            lines: body_lines(&skill.body),
        }
    }
}

/// A safe skill, or the name to report and why it was dropped.
fn sanitize(p: ProposedSkill) -> Result<NewSkill, (String, String)> {
    let name = slugify(&p.name)
        .or_else(|| slugify(&p.description))
        .filter(|n| validate_name(n).is_ok())
        .ok_or_else(|| {
            (
                p.name.chars().take(64).collect::<String>(),
                "no usable name".to_string(),
            )
        })?;
    let description: String = p
        .description
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
    let body = p.body.trim().replace("\r\n", "\n");
    if body.len() > MAX_BODY_BYTES {
        return Err((name, format!("its body is over {MAX_BODY_BYTES} bytes")));
    }
    Ok(NewSkill {
        name,
        description,
        category: p.category.as_deref().and_then(slugify),
        body,
    })
}

/// Lowercase words of letters and digits.
pub fn tokens(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

pub fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// The trimmed, non-empty lines of a skill's body.
pub(crate) fn body_lines(body: &str) -> HashSet<String> {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `body` with `addition` appended under a dated heading: how a merge
/// (the evolver's or the curator's) extends an existing skill.
pub(crate) fn with_addition(body: &str, addition: &str, at: &str) -> String {
    format!(
        "{}\n\n## Also learned ({at})\n\n{addition}\n",
        body.trim_end()
    )
}

/// The lines of `body` that `known` lacks; empty when only headings are new.
pub(crate) fn new_lines(known: &HashSet<String>, body: &str) -> String {
    let fresh: Vec<&str> = body
        .lines()
        .filter(|l| !l.trim().is_empty() && !known.contains(l.trim()))
        .collect();
    if fresh.iter().all(|l| l.trim_start().starts_with('#')) {
        return String::new();
    }
    fresh.join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn proposal(name: &str, description: &str, body: &str) -> ProposedSkill {
        ProposedSkill {
            name: name.into(),
            description: description.into(),
            category: Some("Time Zones!".into()),
            body: body.into(),
        }
    }

    fn existing(name: &str, description: &str, body: &str, origin: SkillOrigin) -> Arc<Skill> {
        let mut skill = Skill::new(name, description, body);
        skill.origin = origin;
        Arc::new(skill)
    }

    #[test]
    fn names_become_slugs_and_unusable_ones_are_dropped() {
        let decisions = plan(
            vec![
                proposal("../../Etc Passwd", "Use when dates", "Add offsets."),
                proposal("!!!", "???", "body"),
            ],
            &[],
            3,
        );
        let Decision::Add(skill) = &decisions[0] else {
            panic!("{decisions:?}")
        };
        assert_eq!(skill.name, "etc-passwd");
        assert_eq!(skill.category.as_deref(), Some("time-zones"));
        assert!(
            matches!(&decisions[1], Decision::Drop { reason, .. } if reason == "no usable name")
        );
    }

    #[test]
    fn at_most_max_new_are_added() {
        let proposals = (0..5)
            .map(|i| {
                proposal(
                    &format!("skill {i}"),
                    &format!("topic{i} alpha{i}"),
                    &format!("body{i} beta{i}"),
                )
            })
            .collect();
        let decisions = plan(proposals, &[], 2);
        assert_eq!(
            decisions
                .iter()
                .filter(|d| matches!(d, Decision::Add(_)))
                .count(),
            2
        );
        assert!(
            matches!(&decisions[4], Decision::Drop { reason, .. } if reason.contains("limit of 2"))
        );
    }

    #[test]
    fn a_same_name_evolved_skill_gets_only_the_new_lines() {
        let old = existing(
            "check-offsets",
            "Use when dates",
            "- Add +08:00.\n- Use ISO 8601.",
            SkillOrigin::Evolved,
        );
        let decisions = plan(
            vec![proposal(
                "Check offsets",
                "Use when dates",
                "- Add +08:00.\n- Name the zone too.",
            )],
            &[old],
            3,
        );
        assert_eq!(
            decisions,
            vec![Decision::Merge {
                into: "check-offsets".into(),
                from: "check-offsets".into(),
                addition: "- Name the zone too.".into()
            }]
        );
    }

    #[test]
    fn near_duplicates_are_merged_or_dropped_never_added_twice() {
        let body = "When a user asks for meeting times always include the UTC offset such as +08:00 and the zone name";
        let evolved = existing(
            "meeting-times",
            "Use for meeting times with offsets",
            body,
            SkillOrigin::Evolved,
        );
        let user = existing(
            "my-times",
            "Use for meeting times with offsets",
            body,
            SkillOrigin::User,
        );
        // Same content, different name: nothing new → dropped.
        let same = plan(
            vec![proposal(
                "times",
                "Use for meeting times with offsets",
                body,
            )],
            &[evolved],
            3,
        );
        assert!(
            matches!(&same[0], Decision::Drop { reason, .. } if reason.contains("nothing new"))
        );
        // A user's skill is never edited.
        let theirs = plan(
            vec![proposal(
                "times",
                "Use for meeting times with offsets",
                body,
            )],
            &[user],
            3,
        );
        assert!(
            matches!(&theirs[0], Decision::Drop { reason, .. } if reason.contains("duplicates the skill my-times"))
        );
        // Two copies in one answer: the second is not added again.
        let twice = plan(
            vec![
                proposal("a", "Use for meeting times", body),
                proposal("b", "Use for meeting times", body),
            ],
            &[],
            3,
        );
        assert!(matches!(&twice[0], Decision::Add(_)));
        assert!(matches!(&twice[1], Decision::Drop { .. }), "{twice:?}");
    }

    #[test]
    fn jaccard_of_token_sets() {
        let a = tokens("Add the +08:00 offset");
        let b = tokens("add THE offset 08 00");
        assert!((jaccard(&a, &b) - 1.0).abs() < f64::EPSILON);
        assert!(jaccard(&tokens("a b"), &tokens("c d")) < 0.01);
    }
}
