//! `metaclaw skills history NAME`: how a skill came to be and changed —
//! its provenance (front matter), the evolutions that wrote or extended it,
//! what the curator and the user did to it (store), and its use and mean
//! score by day and by skill generation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use metaclaw_engine::config::ConfigStore;
use metaclaw_engine::skill_actions::{history_events, HistoryEvent, SkillProvenance};
use metaclaw_skills::{LibrarySnapshot, Skill, SkillLibrary};
use metaclaw_store::{SkillTurn, SkillUsage, StoreReader};
use serde::Serialize;

use super::{mean_of, usage_lines, Effect};
use crate::output::{local_time, outln, print_json, print_table, truncate};

/// Uses and mean score in one local day.
#[derive(Serialize)]
struct DayUsage {
    day: String,
    uses: u64,
    scored: u64,
    mean_score: Option<f64>,
}

/// Uses and mean score in one skill generation.
#[derive(Serialize)]
struct GenerationUsage {
    skill_generation: i64,
    uses: u64,
    scored: u64,
    mean_score: Option<f64>,
}

#[derive(Serialize)]
struct History {
    name: String,
    in_library: bool,
    status: Option<String>,
    origin: Option<String>,
    disabled_reason: Option<String>,
    path: Option<PathBuf>,
    provenance: Option<SkillProvenance>,
    events: Vec<HistoryEvent>,
    usage: Effect,
    usage_by_day: Vec<DayUsage>,
    usage_by_generation: Vec<GenerationUsage>,
}

pub fn run(
    store: &ConfigStore,
    snapshot: &LibrarySnapshot,
    library: &SkillLibrary,
    name: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    metaclaw_skills::validate_name(name)?;
    let skill = snapshot.get(name).map(Arc::clone);
    let db = store.paths().database();
    let recorded = if db.exists() {
        Some(Recorded::read(&db, name)?)
    } else {
        None
    };
    let known = recorded.as_ref().is_some_and(Recorded::any);
    if skill.is_none() && !known {
        anyhow::bail!(
            "no skill named {name:?} in {}, and nothing recorded about one",
            library.dir().display()
        );
    }
    let history = history(name, skill.as_deref(), recorded.unwrap_or_default());
    if json {
        return print_json(&history);
    }
    print_text(&history);
    Ok(ExitCode::SUCCESS)
}

/// What the store knows about the skill.
#[derive(Default)]
struct Recorded {
    events: Vec<HistoryEvent>,
    turns: Vec<SkillTurn>,
    usage: Option<SkillUsage>,
}

impl Recorded {
    fn read(db: &Path, name: &str) -> anyhow::Result<Recorded> {
        let reader = StoreReader::open(db)?;
        Ok(Recorded {
            events: history_events(&reader, name)?,
            turns: reader.skill_turns(name)?,
            usage: reader.skill_usage()?.remove(name),
        })
    }

    fn any(&self) -> bool {
        !self.events.is_empty() || !self.turns.is_empty()
    }
}

fn history(name: &str, skill: Option<&Skill>, recorded: Recorded) -> History {
    let events = recorded.events;
    History {
        name: name.to_owned(),
        in_library: skill.is_some(),
        status: skill.map(|s| s.status.to_string()),
        origin: skill.map(|s| s.origin.to_string()),
        disabled_reason: skill.and_then(Skill::disabled_reason).map(str::to_owned),
        path: skill.map(|s| s.path.clone()),
        provenance: skill.map(SkillProvenance::of),
        events,
        usage: Effect::of(recorded.usage.as_ref()),
        usage_by_day: buckets(&recorded.turns, |t| local_day(t.started_at_ms))
            .into_iter()
            .map(|(day, uses, scored, mean_score)| DayUsage {
                day,
                uses,
                scored,
                mean_score,
            })
            .collect(),
        usage_by_generation: buckets(&recorded.turns, |t| t.skill_generation)
            .into_iter()
            .map(
                |(skill_generation, uses, scored, mean_score)| GenerationUsage {
                    skill_generation,
                    uses,
                    scored,
                    mean_score,
                },
            )
            .collect(),
    }
}

/// Groups turns by a key, in key order: (key, uses, scored, mean score).
fn buckets<K: Ord>(
    turns: &[SkillTurn],
    key: impl Fn(&SkillTurn) -> K,
) -> Vec<(K, u64, u64, Option<f64>)> {
    let mut groups: BTreeMap<K, (u64, u64, i64)> = BTreeMap::new();
    for turn in turns {
        let entry = groups.entry(key(turn)).or_default();
        entry.0 += 1;
        if let Some(score) = turn.score {
            entry.1 += 1;
            entry.2 += i64::from(score);
        }
    }
    groups
        .into_iter()
        .map(|(key, (uses, scored, sum))| {
            (
                key,
                uses,
                scored,
                (scored > 0).then(|| sum as f64 / scored as f64),
            )
        })
        .collect()
}

fn local_day(ms: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(ms).single() {
        Some(time) => time.format("%Y-%m-%d").to_string(),
        None => "-".to_string(),
    }
}

fn print_text(h: &History) {
    match (&h.status, &h.origin) {
        (Some(status), Some(origin)) => outln!("{}: {status}, {origin}", h.name),
        _ => outln!("{}: not in the skill library (deleted)", h.name),
    }
    if let Some(reason) = &h.disabled_reason {
        outln!("disabled: {reason}");
    }
    if let Some(provenance) = &h.provenance {
        outln!("origin: {}", provenance.describe());
    }
    if let Some(path) = &h.path {
        outln!("file: {}", path.display());
    }
    outln!();
    if h.events.is_empty() {
        outln!("history: nothing recorded (no evolution, merge or status change)");
    } else {
        outln!("history:");
        let rows: Vec<Vec<String>> = h
            .events
            .iter()
            .map(|e| {
                vec![
                    local_time(e.at_ms),
                    e.event.replace('_', " "),
                    e.by.clone(),
                    truncate(&e.detail, 110),
                ]
            })
            .collect();
        print_table(&["TIME", "EVENT", "BY", "DETAIL"], &rows);
    }
    outln!();
    for line in usage_lines(Some(&h.usage.usage)) {
        outln!("{line}");
    }
    if !h.usage_by_day.is_empty() {
        outln!();
        let rows: Vec<Vec<String>> = h
            .usage_by_day
            .iter()
            .map(|b| {
                vec![
                    b.day.clone(),
                    b.uses.to_string(),
                    mean_of(b.mean_score, b.scored),
                ]
            })
            .collect();
        print_table(&["DAY", "USES", "SCORE"], &rows);
        outln!();
        let rows: Vec<Vec<String>> = h
            .usage_by_generation
            .iter()
            .map(|b| {
                vec![
                    b.skill_generation.to_string(),
                    b.uses.to_string(),
                    mean_of(b.mean_score, b.scored),
                ]
            })
            .collect();
        print_table(&["GENERATION", "USES", "SCORE"], &rows);
    }
}
