//! The background evolution task: woken by the event bus (a turn recorded or
//! scored, a session ended), it checks the sessions concerned, runs one
//! evolution at a time, writes the skills through the skill library, and
//! records the outcome in the store and on the bus.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metaclaw_skills::{Skill, SkillOrigin, SkillStatus};
use metaclaw_store::{EvolutionRecord, EvolvedSkill, EvolvedSkillOutcome};
use serde_norway::{Mapping, Value as Yaml};
use tokio::sync::broadcast::error::TryRecvError;

use super::{build, check, plan, settled, Decision, Evolver, NewSkill, Trigger, TurnView};
use crate::config::ReviewMode;
use crate::events::EngineEvent;
use crate::proxy::ProxyState;

/// How long a session's end waits for the judge to score its last turns.
const END_SETTLE: Duration = Duration::from_secs(120);

/// How often ended sessions are looked at again while they wait for scores.
const SETTLE_TICK: Duration = Duration::from_millis(500);

/// After a failed evolution, a session's turn-count and success-rate
/// triggers rest this long, so a broken evolver is not asked on every turn.
const FAILURE_COOLDOWN: Duration = Duration::from_secs(5 * 60);

/// Runs until the task is aborted (at shutdown).
pub async fn run(state: Arc<ProxyState>, evolver: Evolver) {
    let mut events = state.events.subscribe();
    // Ended sessions waiting for their scores, with the time they stop waiting.
    let mut ending: HashMap<String, Instant> = HashMap::new();
    let mut cooling: HashMap<String, Instant> = HashMap::new();
    loop {
        let mut touched: HashSet<String> = HashSet::new();
        let first = if ending.is_empty() {
            events.recv().await.map_err(|e| e.to_string())
        } else {
            match tokio::time::timeout(SETTLE_TICK, events.recv()).await {
                Ok(event) => event.map_err(|e| e.to_string()),
                Err(_) => Err("tick".to_string()),
            }
        };
        let mut next = first;
        loop {
            match next {
                Ok(EngineEvent::SessionEnded { session_id, .. }) => {
                    ending.insert(session_id, Instant::now() + END_SETTLE);
                }
                Ok(
                    EngineEvent::TurnRecorded { session_id, .. }
                    | EngineEvent::TurnScored { session_id, .. },
                ) => {
                    touched.insert(session_id);
                }
                Ok(_) | Err(_) => {}
            }
            next = match events.try_recv() {
                Ok(event) => Ok(event),
                Err(TryRecvError::Empty) => break,
                // Lost events only delay an evolution to the next trigger.
                Err(TryRecvError::Lagged(_)) => Err("lagged".to_string()),
                Err(TryRecvError::Closed) => return,
            };
        }
        // The events are sent before their rows are committed.
        if let Err(error) = state.store.flush().await {
            tracing::warn!(%error, "the store reported a failed write before evolving");
        }
        let now = Instant::now();
        cooling.retain(|_, until| *until > now);
        for session_id in touched {
            if ending.contains_key(&session_id) || cooling.contains_key(&session_id) {
                continue;
            }
            let Some(turns) = unconsumed(&state, &session_id).await else {
                continue;
            };
            let trigger = check(
                &turns,
                false,
                evolver.every_n_turns,
                evolver.failure_threshold,
            );
            if let Some(trigger) = trigger {
                if !evolve(&state, &evolver, &session_id, trigger, &turns).await {
                    cooling.insert(session_id, Instant::now() + FAILURE_COOLDOWN);
                }
            }
        }
        let waiting: Vec<(String, Instant)> = ending.iter().map(|(s, d)| (s.clone(), *d)).collect();
        for (session_id, deadline) in waiting {
            let Some(turns) = unconsumed(&state, &session_id).await else {
                ending.remove(&session_id);
                continue;
            };
            if !settled(&turns, evolver.judging) && Instant::now() < deadline {
                continue;
            }
            ending.remove(&session_id);
            cooling.remove(&session_id);
            if let Some(trigger) = check(&turns, true, evolver.every_n_turns, 0.0) {
                evolve(&state, &evolver, &session_id, trigger, &turns).await;
            }
        }
    }
}

/// The session's complete main turns no evolution has read, oldest first;
/// `None` when the store cannot say (logged).
async fn unconsumed(state: &ProxyState, session_id: &str) -> Option<Vec<TurnView>> {
    let reader = state.store.reader();
    let id = session_id.to_string();
    let found = tokio::task::spawn_blocking(move || {
        let reader = reader?;
        let consumed = reader.consumed_turns(&id)?;
        Ok::<_, metaclaw_store::StoreError>(
            reader
                .session(&id)?
                .map(|detail| TurnView::from_session(&detail.turns, &consumed)),
        )
    })
    .await;
    match found {
        Ok(Ok(turns)) => turns,
        Ok(Err(error)) => {
            tracing::error!(%error, session = session_id, "the evolver cannot read the session");
            None
        }
        Err(error) => {
            tracing::error!(%error, "the evolver's store query stopped");
            None
        }
    }
}

/// Runs one evolution of `turns`; `false` when it failed.
async fn evolve(
    state: &ProxyState,
    evolver: &Evolver,
    session_id: &str,
    trigger: Trigger,
    turns: &[TurnView],
) -> bool {
    let id = uuid::Uuid::now_v7().to_string();
    let started_at_ms = crate::now_ms();
    tracing::info!(
        session = session_id,
        trigger = trigger.as_str(),
        turns = turns.len(),
        "evolving skills"
    );
    state.events.publish(EngineEvent::EvolutionStarted {
        session_id: session_id.to_string(),
    });
    let snapshot = state.library.snapshot();
    let prompt = build(turns, snapshot.skills(), evolver.max_new_skills);
    let mut record = EvolutionRecord {
        id: id.clone(),
        session_id: session_id.to_string(),
        trigger: trigger.as_str().to_string(),
        model: evolver.model().to_string(),
        started_at_ms,
        finished_at_ms: started_at_ms,
        error: None,
        skills: Vec::new(),
    };
    let proposals = match evolver.propose(&prompt).await {
        Ok(proposals) => proposals,
        Err(reason) => {
            tracing::warn!(session = session_id, %reason, "evolution failed; nothing was written");
            record.finished_at_ms = crate::now_ms();
            record.error = Some(reason.clone());
            state.store.record_evolution(record);
            if let Err(error) = state.store.flush().await {
                tracing::error!(%error, "recording the failed evolution failed");
            }
            state.events.publish(EngineEvent::EvolutionFailed {
                session_id: session_id.to_string(),
                reason,
            });
            return false;
        }
    };
    let provenance = Provenance {
        evolution_id: &id,
        session_id,
        turn_ids: &prompt.turn_ids,
        model: evolver.model(),
    };
    let mut activated = false;
    // Decided against the library as it is now: a skill written by the user
    // while the model was thinking is seen here.
    let decisions = plan(
        proposals,
        state.library.snapshot().skills(),
        evolver.max_new_skills,
    );
    let mut announcements = Vec::new();
    // Read now, not at start: the settings may switch review on or off.
    let review = state.live_config().skills.review;
    for decision in decisions {
        let (skill, event, active) = apply(state, review, &provenance, decision);
        activated |= active;
        record.skills.push(skill);
        announcements.extend(event);
    }
    if activated {
        bump_generation(state).await;
    }
    // The turns shown are consumed even when nothing was added: the model
    // found nothing in them, and asking again would find nothing either.
    state.store.mark_support_set(&id, prompt.turn_ids.clone());
    record.finished_at_ms = crate::now_ms();
    let finished = EngineEvent::EvolutionFinished {
        session_id: session_id.to_string(),
        added: record.count(EvolvedSkillOutcome::Added),
        pending: record.count(EvolvedSkillOutcome::Pending),
        merged: record.count(EvolvedSkillOutcome::Merged),
        dropped: record.count(EvolvedSkillOutcome::Dropped),
    };
    tracing::info!(session = session_id, outcome = ?finished, "evolution finished");
    state.store.record_evolution(record);
    if let Err(error) = state.store.flush().await {
        tracing::error!(%error, "recording the evolution failed");
    }
    // Last, so whoever reacts sees the new generation and the stored record.
    for event in announcements {
        state.events.publish(event);
    }
    state.events.publish(finished);
    true
}

/// Where an evolved skill came from, written into its front matter.
struct Provenance<'a> {
    evolution_id: &'a str,
    session_id: &'a str,
    turn_ids: &'a [i64],
    model: &'a str,
}

impl Provenance<'_> {
    fn front_matter(&self) -> Mapping {
        let mut extra = Mapping::new();
        extra.insert("evolution_id".into(), self.evolution_id.into());
        extra.insert("evolved_from_session".into(), self.session_id.into());
        extra.insert(
            "evolved_from_turns".into(),
            Yaml::Sequence(self.turn_ids.iter().map(|id| Yaml::from(*id)).collect()),
        );
        extra.insert("evolved_at".into(), now_rfc3339().into());
        extra.insert("evolver_model".into(), self.model.into());
        extra
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Writes what `decision` says; returns its record, its event and whether it
/// changed what requests get injected.
fn apply(
    state: &ProxyState,
    review: ReviewMode,
    provenance: &Provenance<'_>,
    decision: Decision,
) -> (EvolvedSkill, Option<EngineEvent>, bool) {
    let dropped = |name: String, reason: String| {
        tracing::info!(skill = %name, %reason, "proposed skill dropped");
        (
            EvolvedSkill {
                name,
                outcome: EvolvedSkillOutcome::Dropped,
                detail: Some(reason),
            },
            None,
            false,
        )
    };
    match decision {
        Decision::Drop { name, reason } => dropped(name, reason),
        Decision::Add(new) => {
            let pending = review == ReviewMode::Manual;
            let skill = evolved_skill(new, pending, provenance);
            match state.library.write_skill(&skill) {
                Ok(path) => {
                    tracing::info!(skill = %skill.name, path = %path.display(), pending, "evolved a new skill");
                    (
                        EvolvedSkill {
                            name: skill.name.clone(),
                            outcome: if pending {
                                EvolvedSkillOutcome::Pending
                            } else {
                                EvolvedSkillOutcome::Added
                            },
                            detail: None,
                        },
                        Some(EngineEvent::SkillAdded {
                            name: skill.name,
                            description: skill.description,
                            pending,
                        }),
                        !pending,
                    )
                }
                Err(error) => dropped(skill.name, format!("cannot write it: {error}")),
            }
        }
        Decision::Merge {
            into,
            from,
            addition,
        } => {
            let Some(existing) = state.library.snapshot().get(&into).cloned() else {
                return dropped(from, format!("the skill {into} is gone"));
            };
            let mut skill = (*existing).clone();
            skill.body = super::dedupe::with_addition(&skill.body, &addition, &now_rfc3339());
            skill.extra.insert(
                "updated_by_evolution".into(),
                provenance.evolution_id.into(),
            );
            skill
                .extra
                .insert("updated_at".into(), now_rfc3339().into());
            match state.library.write_skill(&skill) {
                Ok(_) => {
                    tracing::info!(skill = %into, from = %from, "merged an evolved skill into an existing one");
                    (
                        EvolvedSkill {
                            name: into.clone(),
                            outcome: EvolvedSkillOutcome::Merged,
                            detail: Some(format!("from {from}")),
                        },
                        Some(EngineEvent::SkillMerged { name: into, from }),
                        skill.status == SkillStatus::Active,
                    )
                }
                Err(error) => dropped(from, format!("cannot merge it into {into}: {error}")),
            }
        }
    }
}

fn evolved_skill(new: NewSkill, pending: bool, provenance: &Provenance<'_>) -> Skill {
    let mut skill = Skill::new(new.name, new.description, format!("{}\n", new.body));
    skill.category = new.category;
    skill.origin = SkillOrigin::Evolved;
    skill.status = if pending {
        SkillStatus::Pending
    } else {
        SkillStatus::Active
    };
    skill.extra = provenance.front_matter();
    skill
}

/// Starts a new skill generation: in the store (turns are tagged with it,
/// training data is selected by it) and in the proxy. Past the store's
/// value too, which `metaclaw skills approve` may have raised meanwhile.
/// Returns the new generation.
pub(crate) async fn bump_generation(state: &ProxyState) -> i64 {
    let reader = state.store.reader();
    let stored = tokio::task::spawn_blocking(move || reader.and_then(|r| r.skill_generation()))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    let generation = stored.max(state.skill_generation()) + 1;
    state.store.set_skill_generation(generation);
    state.set_skill_generation(generation);
    tracing::info!(generation, "skill generation bumped");
    generation
}
