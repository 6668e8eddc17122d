//! `metaclaw skills list | show | search | check | history | approve |
//! reject | disable | enable`.

mod change;
mod history;

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Subcommand;
use metaclaw_skills::Skill;
use metaclaw_store::{SkillUsage, StoreReader};
use serde::Serialize;

use crate::output::{local_time, outln, print_json, print_table, truncate};

#[derive(Subcommand)]
pub enum SkillsCommand {
    /// Every skill with its status, origin, use and effect: the mean PRM
    /// score of the turns it was injected into against comparable turns
    /// without it (the baseline).
    List {
        #[arg(long)]
        json: bool,
    },
    /// One skill in full, with its use and effect.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The skills the proxy would inject for QUERY, best first.
    Search {
        query: String,
        /// How many to return (default: skills.top_k).
        #[arg(short = 'k', long)]
        top: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Report every broken SKILL.md with its file and reason (exit code 1 if any).
    Check {
        #[arg(long)]
        json: bool,
    },
    /// How a skill came to be and changed: where it came from, the
    /// evolutions and merges that shaped it, what the curator and you did to
    /// it, and its use and score by day and by skill generation.
    History {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Activate a pending (evolved) skill: it is injected from now on.
    Approve { name: String },
    /// Remove a pending (evolved) skill without activating it (its folder
    /// goes to the trash in the data directory).
    Reject { name: String },
    /// Stop injecting a skill; its file stays, with the reason.
    Disable {
        name: String,
        /// Why, kept in the skill's front matter and its history.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Inject a disabled skill again.
    Enable { name: String },
}

/// A skill as `skills list --json` shows it.
#[derive(Serialize)]
struct SkillSummary<'a> {
    name: &'a str,
    description: &'a str,
    category: Option<&'a str>,
    status: String,
    origin: String,
    disabled_reason: Option<&'a str>,
    #[serde(flatten)]
    usage: Effect,
}

/// Use and effect, with the effect spelled out for readers of the JSON.
#[derive(Serialize)]
struct Effect {
    #[serde(flatten)]
    usage: SkillUsage,
    /// `mean_score - baseline_mean`; `null` until both exist.
    effect: Option<f64>,
}

impl Effect {
    fn of(usage: Option<&SkillUsage>) -> Effect {
        let usage = usage.copied().unwrap_or_default();
        Effect {
            effect: usage.effect(),
            usage,
        }
    }
}

impl<'a> SkillSummary<'a> {
    fn new(skill: &'a Skill, usage: Option<&SkillUsage>) -> SkillSummary<'a> {
        SkillSummary {
            name: &skill.name,
            description: &skill.description,
            category: skill.category.as_deref(),
            status: skill.status.to_string(),
            origin: skill.origin.to_string(),
            disabled_reason: skill.disabled_reason(),
            usage: Effect::of(usage),
        }
    }
}

pub fn run(command: SkillsCommand) -> anyhow::Result<ExitCode> {
    let store = super::load()?;
    let library = metaclaw_engine::open_library(store.paths(), store.config())?;
    let snapshot = library.snapshot();
    match command {
        SkillsCommand::List { json } => {
            let usage = skill_usage(store.paths());
            let summaries: Vec<SkillSummary> = snapshot
                .skills()
                .iter()
                .map(|s| SkillSummary::new(s, usage.get(&s.name)))
                .collect();
            if json {
                return print_json(&summaries);
            }
            let rows: Vec<Vec<String>> = summaries
                .iter()
                .map(|s| {
                    let u = &s.usage.usage;
                    vec![
                        s.name.to_string(),
                        s.status.clone(),
                        s.origin.clone(),
                        u.injected.to_string(),
                        u.last_used_ms.map_or("-".into(), local_time),
                        mean_of(u.mean_score, u.scored),
                        mean_of(u.baseline_mean, u.baseline_scored),
                        s.usage.effect.map_or("-".into(), signed),
                        truncate(s.description, 60),
                    ]
                })
                .collect();
            print_table(
                &[
                    "NAME",
                    "STATUS",
                    "ORIGIN",
                    "USED",
                    "LAST USED",
                    "SCORE",
                    "BASELINE",
                    "EFFECT",
                    "DESCRIPTION",
                ],
                &rows,
            );
            outln!("{} skills in {}", summaries.len(), library.dir().display());
            outln!("SCORE: mean PRM score (scored turns) of the turns a skill was injected into; BASELINE: the same for turns without it since its first use; EFFECT: the difference");
            if !snapshot.problems().is_empty() {
                outln!(
                    "{} broken skill files skipped: run `metaclaw skills check`",
                    snapshot.problems().len()
                );
            }
        }
        SkillsCommand::Show { name, json } => {
            metaclaw_skills::validate_name(&name)?;
            let skill = snapshot.get(&name).ok_or_else(|| {
                anyhow::anyhow!("no skill named {name:?} in {}", library.dir().display())
            })?;
            let usage = skill_usage(store.paths());
            if json {
                #[derive(Serialize)]
                struct Full<'a> {
                    #[serde(flatten)]
                    summary: SkillSummary<'a>,
                    path: &'a std::path::Path,
                    body: &'a str,
                }
                return print_json(&Full {
                    summary: SkillSummary::new(skill, usage.get(&name)),
                    path: &skill.path,
                    body: &skill.body,
                });
            }
            outln!("{}", skill.to_markdown().trim_end());
            outln!();
            for line in usage_lines(usage.get(&name)) {
                outln!("{line}");
            }
        }
        SkillsCommand::Search { query, top, json } => {
            let k = top.unwrap_or(store.config().skills.top_k);
            let hits = snapshot.search(&query, k);
            if json {
                let ranked: Vec<_> = hits
                    .iter()
                    .map(|h| serde_json::json!({"name": h.skill.name, "score": h.score, "description": h.skill.description}))
                    .collect();
                return print_json(&ranked);
            }
            if hits.is_empty() {
                outln!("no skill matches {query:?}");
            }
            let rows: Vec<Vec<String>> = hits
                .iter()
                .map(|h| {
                    vec![
                        format!("{:.2}", h.score),
                        h.skill.name.clone(),
                        truncate(&h.skill.description, 80),
                    ]
                })
                .collect();
            print_table(&["SCORE", "NAME", "DESCRIPTION"], &rows);
        }
        SkillsCommand::Check { json } => {
            let problems = snapshot.problems();
            if json {
                print_json(&serde_json::json!({"skills": snapshot.len(), "problems": problems}))?;
            } else {
                for problem in problems {
                    outln!("{}: {}", problem.path.display(), problem.reason);
                }
                outln!(
                    "{} skills loaded, {} problems in {}",
                    snapshot.len(),
                    problems.len(),
                    library.dir().display()
                );
            }
            if !problems.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        SkillsCommand::History { name, json } => {
            return history::run(&store, &snapshot, &library, &name, json);
        }
        SkillsCommand::Approve { name } => change::approve(&store, &library, &name)?,
        SkillsCommand::Reject { name } => change::reject(&store, &library, &name)?,
        SkillsCommand::Disable { name, reason } => {
            change::disable(&store, &library, &name, reason.as_deref())?
        }
        SkillsCommand::Enable { name } => change::enable(&store, &library, &name)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `+0.50`, `-1.00`, `+0.00`.
fn signed(value: f64) -> String {
    format!("{value:+.2}")
}

/// A mean with its count, `+0.50 (8)`, or `-` without one.
fn mean_of(mean: Option<f64>, n: u64) -> String {
    mean.map_or("-".into(), |m| format!("{} ({n})", signed(m)))
}

/// The use and effect of a skill in words, for `skills show` and `history`.
fn usage_lines(usage: Option<&SkillUsage>) -> Vec<String> {
    let Some(u) = usage.filter(|u| u.injected > 0) else {
        return vec!["used: never injected".into()];
    };
    let mut lines = vec![format!(
        "used: {} times, first {}, last {}",
        u.injected,
        u.first_used_ms.map_or("-".into(), local_time),
        u.last_used_ms.map_or("-".into(), local_time)
    )];
    lines.push(match u.mean_score {
        Some(mean) => format!("score: {} over {} scored turns", signed(mean), u.scored),
        None => "score: no scored turns yet".into(),
    });
    lines.push(match u.baseline_mean {
        Some(mean) => format!(
            "baseline: {} over {} scored turns without it since its first use",
            signed(mean),
            u.baseline_scored
        ),
        None => "baseline: no scored turns without it since its first use".into(),
    });
    if let Some(effect) = u.effect() {
        lines.push(format!("effect: {}", signed(effect)));
    }
    lines
}

/// Usage counts from the database; none yet if the proxy never ran.
fn skill_usage(paths: &metaclaw_engine::paths::AppPaths) -> HashMap<String, SkillUsage> {
    let db = paths.database();
    if !db.exists() {
        return HashMap::new();
    }
    match StoreReader::open(&db).and_then(|reader| reader.skill_usage()) {
        Ok(usage) => usage,
        Err(error) => {
            tracing::warn!(%error, "cannot read skill usage");
            HashMap::new()
        }
    }
}
