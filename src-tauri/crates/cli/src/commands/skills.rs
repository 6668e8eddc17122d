//! `metaclaw skills list | show | search | check`.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Subcommand;
use metaclaw_skills::Skill;
use metaclaw_store::{SkillUsage, StoreReader};
use serde::Serialize;

use crate::output::{local_time, print_json, print_table, truncate};

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
            println!("{} skills in {}", summaries.len(), library.dir().display());
            if !snapshot.problems().is_empty() {
                println!(
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
            print!("{}", skill.to_markdown());
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
                println!("no skill matches {query:?}");
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
                    println!("{}: {}", problem.path.display(), problem.reason);
                }
                println!(
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
    }
    Ok(ExitCode::SUCCESS)
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
