//! Deciding what the curator does with the library: which skills clearly
//! hurt and are disabled, and which near-duplicates are merged. Pure: the
//! worker applies the plan one action at a time.
//!
//! Only active skills are looked at: pending skills wait for the user's
//! review, disabled ones are already out.
//!
//! * **Harm**, any origin: a skill with at least `min_uses` scored turns,
//!   compared with at least `min_uses` scored turns without it since its
//!   first use, whose mean score is below theirs by `harm_margin` or more,
//!   is disabled. A starter or hand-written skill that measurably makes
//!   answers worse is switched off like any other; the file stays, and
//!   `metaclaw skills enable` brings it back.
//! * **Near-duplicates** (token-set Jaccard of description and body at or
//!   above `merge_similarity`, the evolver's measure): only evolved skills
//!   are merged away. Between two evolved skills the better one is kept:
//!   with enough evidence on both (`min_uses` scored turns and a baseline)
//!   the better effect, otherwise the more uses; the body lines of the other
//!   that the kept one lacks are appended to it, and the other is disabled
//!   ("merged into X"). A user's or bundled skill is never edited or merged
//!   away: an evolved near-duplicate of one is disabled only when it has
//!   nothing to add, and otherwise both stay.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use metaclaw_skills::{Skill, SkillOrigin, SkillStatus};
use metaclaw_store::SkillUsage;

use crate::evolve::{body_lines, jaccard, new_lines, tokens};

/// The thresholds from `curator.*`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rules {
    pub min_uses: u64,
    pub harm_margin: f64,
    pub merge_similarity: f64,
}

/// Why a skill counts as harmful: its turns against comparable turns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evidence {
    /// Scored turns with the skill and their mean score.
    pub uses: u64,
    pub mean: f64,
    /// Scored turns without it since its first use and their mean score.
    pub baseline_uses: u64,
    pub baseline: f64,
}

/// One step of a curator run.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Stop injecting `name`: its turns score clearly below those without it.
    Disable { name: String, evidence: Evidence },
    /// `from` is a near-duplicate of `into`: append `addition` (the lines of
    /// `from`'s body that `into` lacks; may be empty) to `into` and disable
    /// `from`.
    Merge {
        from: String,
        into: String,
        similarity: f64,
        addition: String,
    },
}

impl Action {
    /// The skill this action disables.
    pub fn disables(&self) -> &str {
        match self {
            Action::Disable { name, .. } => name,
            Action::Merge { from, .. } => from,
        }
    }

    /// The reason written into the disabled skill's front matter.
    pub fn disabled_reason(&self) -> String {
        match self {
            Action::Disable { evidence: e, .. } => format!(
                "hurts: mean score {:+.2} over {} scored turns with it, {:+.2} over {} comparable turns without it",
                e.mean, e.uses, e.baseline, e.baseline_uses
            ),
            Action::Merge { into, .. } => format!("merged into {into}"),
        }
    }
}

/// What the curator should do with `skills`, given their usage statistics:
/// harmful skills first, then merges among the rest.
pub fn plan(
    skills: &[Arc<Skill>],
    usage: &HashMap<String, SkillUsage>,
    rules: &Rules,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut survivors = Vec::new();
    for skill in skills.iter().filter(|s| s.status == SkillStatus::Active) {
        let stats = usage.get(&skill.name).copied().unwrap_or_default();
        match harm(&stats, rules) {
            Some(evidence) => actions.push(Action::Disable {
                name: skill.name.clone(),
                evidence,
            }),
            None => survivors.push(Candidate { skill, stats }),
        }
    }
    actions.extend(merges(survivors, rules));
    actions
}

/// The evidence that a skill clearly hurts, or `None`.
pub fn harm(stats: &SkillUsage, rules: &Rules) -> Option<Evidence> {
    let (mean, baseline) = (stats.mean_score?, stats.baseline_mean?);
    if stats.scored < rules.min_uses || stats.baseline_scored < rules.min_uses {
        return None;
    }
    // A hair of tolerance: means are ratios of small integers, and a margin
    // of exactly 0.3 must count as 0.3.
    (baseline - mean >= rules.harm_margin - 1e-9).then_some(Evidence {
        uses: stats.scored,
        mean,
        baseline_uses: stats.baseline_scored,
        baseline,
    })
}

struct Candidate<'a> {
    skill: &'a Arc<Skill>,
    stats: SkillUsage,
}

impl Candidate<'_> {
    fn evolved(&self) -> bool {
        self.skill.origin == SkillOrigin::Evolved
    }

    /// Enough scored turns on both sides for the effect to mean something.
    fn effect_known(&self, rules: &Rules) -> Option<f64> {
        (self.stats.scored >= rules.min_uses && self.stats.baseline_scored >= rules.min_uses)
            .then(|| self.stats.effect())
            .flatten()
    }
}

/// A skill that stays, and what merges into it.
struct Kept {
    name: String,
    evolved: bool,
    tokens: HashSet<String>,
    lines: HashSet<String>,
}

fn merges(mut candidates: Vec<Candidate<'_>>, rules: &Rules) -> Vec<Action> {
    candidates.sort_by(|a, b| keep_first(a, b, rules));
    let mut kept: Vec<Kept> = Vec::new();
    let mut actions = Vec::new();
    for candidate in candidates {
        let skill = candidate.skill;
        let skill_tokens = tokens(&format!("{} {}", skill.description, skill.body));
        // The most similar skill kept so far; on a tie the one kept first.
        let mut twin: Option<(usize, f64)> = None;
        for (at, k) in kept.iter().enumerate() {
            let similarity = jaccard(&k.tokens, &skill_tokens);
            if similarity >= rules.merge_similarity
                && twin.is_none_or(|(_, best)| similarity > best)
            {
                twin = Some((at, similarity));
            }
        }
        let merge = twin.and_then(|(at, similarity)| {
            if !candidate.evolved() {
                return None;
            }
            let target = kept.get_mut(at)?;
            let addition = new_lines(&target.lines, &skill.body);
            if !target.evolved && !addition.is_empty() {
                // The user's skill cannot take the addition; both stay.
                return None;
            }
            target
                .lines
                .extend(addition.lines().map(|l| l.trim().to_string()));
            Some(Action::Merge {
                from: skill.name.clone(),
                into: target.name.clone(),
                similarity,
                addition,
            })
        });
        match merge {
            Some(action) => actions.push(action),
            None => kept.push(Kept {
                name: skill.name.clone(),
                evolved: candidate.evolved(),
                tokens: skill_tokens,
                lines: body_lines(&skill.body),
            }),
        }
    }
    actions
}

/// The order skills are considered in, the one to keep first: skills that
/// are never merged away (user, bundled), then evolved skills with a known
/// effect, best first, then the rest by uses; names break ties. A total
/// order, as sorting requires.
fn keep_first(a: &Candidate<'_>, b: &Candidate<'_>, rules: &Rules) -> Ordering {
    let by_score = |x: Option<f64>, y: Option<f64>| {
        y.unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&x.unwrap_or(f64::NEG_INFINITY))
    };
    a.evolved()
        .cmp(&b.evolved())
        .then_with(|| match (a.effect_known(rules), b.effect_known(rules)) {
            (Some(x), Some(y)) => y
                .total_cmp(&x)
                .then_with(|| b.stats.injected.cmp(&a.stats.injected)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => b
                .stats
                .injected
                .cmp(&a.stats.injected)
                .then_with(|| by_score(a.stats.mean_score, b.stats.mean_score)),
        })
        .then_with(|| a.skill.name.cmp(&b.skill.name))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
