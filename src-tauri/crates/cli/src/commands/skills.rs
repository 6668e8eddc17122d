//! `metaclaw skills list | show | search | check | approve | reject`.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Subcommand;
use metaclaw_skills::{Skill, SkillStatus};
use metaclaw_store::{SkillUsage, Store, StoreReader};
use serde::Serialize;

use crate::output::{local_time, outln, print_json, print_table, truncate};

#[derive(Subcommand)]
pub enum SkillsCommand {
    /// Every skill with its status, origin and how often it was injected.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One skill in full.
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
    /// Activate a pending (evolved) skill: it is injected from now on.
    Approve { name: String },
    /// Delete a pending (evolved) skill without activating it.
    Reject { name: String },
}

#[derive(Serialize)]
struct SkillSummary<'a> {
    name: &'a str,
    description: &'a str,
    category: Option<&'a str>,
    status: String,
    origin: String,
    injected: u64,
    last_used_ms: Option<i64>,
}

impl<'a> SkillSummary<'a> {
    fn new(skill: &'a Skill, usage: Option<&SkillUsage>) -> SkillSummary<'a> {
        SkillSummary {
            name: &skill.name,
            description: &skill.description,
            category: skill.category.as_deref(),
            status: skill.status.to_string(),
            origin: skill.origin.to_string(),
            injected: usage.map_or(0, |u| u.injected),
            last_used_ms: usage.and_then(|u| u.last_used_ms),
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
                    vec![
                        s.name.to_string(),
                        s.status.clone(),
                        s.origin.clone(),
                        s.injected.to_string(),
                        s.last_used_ms.map_or("-".into(), local_time),
                        truncate(s.description, 70),
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
                    "DESCRIPTION",
                ],
                &rows,
            );
            outln!("{} skills in {}", summaries.len(), library.dir().display());
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
        SkillsCommand::Approve { name } => {
            let skill = pending(&snapshot, &name, library.dir())?;
            let mut active: Skill = (**skill).clone();
            active.status = SkillStatus::Active;
            library.write_skill(&active)?;
            let generation = bump_generation(&store.paths().database())?;
            outln!("approved {name}: active from now on (skill generation {generation})");
        }
        SkillsCommand::Reject { name } => {
            pending(&snapshot, &name, library.dir())?;
            library.delete_skill(&name)?;
            outln!("rejected {name}: deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The pending skill `name`; approving or rejecting anything else is refused.
fn pending<'a>(
    snapshot: &'a metaclaw_skills::LibrarySnapshot,
    name: &str,
    dir: &std::path::Path,
) -> anyhow::Result<&'a std::sync::Arc<Skill>> {
    metaclaw_skills::validate_name(name)?;
    let skill = snapshot
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("no skill named {name:?} in {}", dir.display()))?;
    if skill.status != SkillStatus::Pending {
        anyhow::bail!(
            "the skill {name:?} is {}, not pending review; only pending skills can be approved or rejected",
            skill.status
        );
    }
    Ok(skill)
}

/// Starts a new skill generation in the store. A running server sees the
/// new skill through its folder watcher at once, and the new generation the
/// next time it reads it (its next evolution); turns until then keep the
/// generation it had.
fn bump_generation(database: &std::path::Path) -> anyhow::Result<i64> {
    let store = Store::open(database)?;
    let generation = store.reader()?.skill_generation()? + 1;
    store.set_skill_generation(generation);
    // Commits what was queued and waits for the writer.
    store.close();
    Ok(generation)
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
