//! One curator run: read the usage statistics, plan, and apply the plan one
//! action at a time (each a safe point to stop at), then start a new skill
//! generation and record and announce what was done.

use std::collections::HashMap;
use std::sync::Arc;

use metaclaw_skills::{Skill, SkillLibrary, SkillOrigin, SkillStatus};
use metaclaw_store::{CurationAction, CurationActor, CurationRecord, SkillUsage};
use serde_norway::Value as Yaml;

use super::plan::{plan, Action, Rules};
use crate::events::EngineEvent;
use crate::evolve::{body_lines, bump_generation, new_lines, now_rfc3339, with_addition};
use crate::proxy::ProxyState;

/// Front matter key on a kept skill: the skills merged into it.
pub const MERGED_FROM_KEY: &str = "merged_from";

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunReport {
    pub merged: usize,
    pub disabled: usize,
    /// Planned actions not applied because the skill changed meanwhile (or
    /// its file could not be written; logged).
    pub skipped: usize,
    /// Stopped at a pause request with this many actions left.
    pub paused: bool,
    pub left: usize,
    /// The run could not start (the store could not be read).
    pub error: Option<String>,
    /// The skill generation the changes took effect in.
    pub generation: Option<i64>,
}

impl RunReport {
    /// The line the schedule timeline shows, e.g. "merged 1, disabled 2".
    pub fn summary(&self) -> String {
        if let Some(error) = &self.error {
            return format!("could not curate: {error}");
        }
        let mut text = format!("merged {}, disabled {}", self.merged, self.disabled);
        if self.skipped > 0 {
            text.push_str(&format!(", skipped {}", self.skipped));
        }
        if self.paused {
            text.push_str(&format!("; paused with {} left", self.left));
        }
        text
    }
}

/// Curates the library once. `pause` is asked before each action; when it
/// says so, the run stops there (what was done so far stays done).
/// `work_id` ties the records to the scheduler's work row.
pub async fn run_once(
    state: &ProxyState,
    rules: &Rules,
    work_id: Option<&str>,
    pause: &(dyn Fn() -> bool + Sync),
) -> RunReport {
    let mut report = RunReport::default();
    // Scores and turns queued before now count.
    if let Err(error) = state.store.flush().await {
        tracing::warn!(%error, "the store reported a failed write before curating");
    }
    let usage = match read_usage(state).await {
        Ok(usage) => usage,
        Err(error) => {
            tracing::error!(%error, "the curator cannot read skill usage");
            report.error = Some(error);
            return report;
        }
    };
    let actions = plan(state.library.snapshot().skills(), &usage, rules);
    let mut records = Vec::new();
    let mut events = Vec::new();
    for (done, action) in actions.iter().enumerate() {
        if pause() {
            report.paused = true;
            report.left = actions.len() - done;
            break;
        }
        let library = state.library.clone();
        let step = action.clone();
        let applied = tokio::task::spawn_blocking(move || apply(&library, &step))
            .await
            .unwrap_or_else(|e| Err(format!("the curator's step stopped: {e}")));
        match applied {
            Ok(addition_lines) => {
                match action {
                    Action::Disable { .. } => report.disabled += 1,
                    Action::Merge { .. } => report.merged += 1,
                }
                let stats = usage.get(action.disables()).copied();
                records.push(record(action, addition_lines, stats, work_id));
                events.extend(announce(action));
            }
            Err(reason) => {
                tracing::warn!(skill = action.disables(), %reason, "curator action skipped");
                report.skipped += 1;
            }
        }
    }
    if !records.is_empty() {
        let generation = bump_generation(state).await;
        report.generation = Some(generation);
        for mut record in records {
            record.skill_generation = Some(generation);
            state.store.record_curation(record);
        }
        if let Err(error) = state.store.flush().await {
            tracing::error!(%error, "recording the curator's actions failed");
        }
    }
    tracing::info!(summary = %report.summary(), "curator run ended");
    // Last, so whoever reacts sees the files, the generation and the records.
    for event in events {
        state.events.publish(event);
    }
    report
}

async fn read_usage(state: &ProxyState) -> Result<HashMap<String, SkillUsage>, String> {
    let reader = state.store.reader();
    tokio::task::spawn_blocking(move || reader.and_then(|r| r.skill_usage()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Writes one action against the library as it is now; the number of lines
/// added to the kept skill, or why nothing was done.
fn apply(library: &SkillLibrary, action: &Action) -> Result<usize, String> {
    let snapshot = library.snapshot();
    let active = |name: &str| -> Result<Arc<Skill>, String> {
        match snapshot.get(name) {
            Some(skill) if skill.status == SkillStatus::Active => Ok(Arc::clone(skill)),
            Some(skill) => Err(format!("{name} is {} now", skill.status)),
            None => Err(format!("{name} is gone")),
        }
    };
    let now = now_rfc3339();
    let mut added = 0;
    if let Action::Merge { from, into, .. } = action {
        let target = active(into)?;
        let source = active(from)?;
        // Against the kept skill as it is now: an earlier merge of this run
        // (or the user) may have added some of these lines already.
        let addition = new_lines(&body_lines(&target.body), &source.body);
        if !addition.is_empty() {
            if target.origin != SkillOrigin::Evolved {
                return Err(format!(
                    "{into} is not an evolved skill; it is never edited"
                ));
            }
            let mut kept = (*target).clone();
            kept.body = with_addition(&kept.body, &addition, &now);
            let mut merged_from = match kept.extra.get(MERGED_FROM_KEY) {
                Some(Yaml::Sequence(names)) => names.clone(),
                _ => Vec::new(),
            };
            merged_from.push(from.as_str().into());
            kept.extra
                .insert(MERGED_FROM_KEY.into(), Yaml::Sequence(merged_from));
            kept.extra.insert("updated_at".into(), now.as_str().into());
            library.write_skill(&kept).map_err(|e| e.to_string())?;
            added = addition.lines().count();
        }
    }
    let mut skill = (*active(action.disables())?).clone();
    skill.disable(
        &action.disabled_reason(),
        CurationActor::Curator.as_str(),
        &now,
    );
    library.write_skill(&skill).map_err(|e| e.to_string())?;
    Ok(added)
}

fn record(
    action: &Action,
    added_lines: usize,
    stats: Option<SkillUsage>,
    work_id: Option<&str>,
) -> CurationRecord {
    let (kind, into, reason) = match action {
        Action::Disable { .. } => (CurationAction::Disabled, None, action.disabled_reason()),
        Action::Merge {
            into, similarity, ..
        } => {
            let what = match added_lines {
                0 => "nothing new to add".to_string(),
                1 => format!("1 new line added to {into}"),
                n => format!("{n} new lines added to {into}"),
            };
            (
                CurationAction::Merged,
                Some(into.clone()),
                format!("near-duplicate of {into} (similarity {similarity:.2}); {what}"),
            )
        }
    };
    let mut record = CurationRecord::new(
        crate::now_ms(),
        action.disables(),
        kind,
        CurationActor::Curator,
        reason,
    );
    record.into_skill = into;
    record.work_id = work_id.map(str::to_owned);
    if let Some(stats) = stats {
        record.uses = Some(stats.scored);
        record.mean_score = stats.mean_score;
        record.baseline_score = stats.baseline_mean;
    }
    record
}

fn announce(action: &Action) -> Vec<EngineEvent> {
    let disabled = EngineEvent::SkillDisabled {
        name: action.disables().to_owned(),
        reason: action.disabled_reason(),
    };
    match action {
        Action::Disable { .. } => vec![disabled],
        Action::Merge { from, into, .. } => vec![
            EngineEvent::SkillMerged {
                name: into.clone(),
                from: from.clone(),
            },
            disabled,
        ],
    }
}
