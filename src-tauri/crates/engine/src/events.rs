//! The engine's internal event bus: other parts (the evolver, the tray, the
//! dashboard's live view) subscribe instead of being called directly.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    SessionStarted {
        session_id: String,
    },
    /// `reason`: `done` (the client said so), `idle` (quiet period) or `shutdown`.
    SessionEnded {
        session_id: String,
        reason: String,
    },
    TurnRecorded {
        session_id: String,
        request_id: String,
        status: String,
    },
    /// The PRM judge scored a main turn (`turn_id` is the store's turn id).
    TurnScored {
        turn_id: i64,
        session_id: String,
        score: i8,
    },
    /// The evolver wrote a new skill; `pending` when it waits for review
    /// (`skills.review = manual`) and is not injected yet.
    SkillAdded {
        name: String,
        description: String,
        pending: bool,
    },
    /// What was new in `from` (a proposed skill, or for the curator a
    /// near-duplicate skill, which is then disabled) was merged into the
    /// existing skill `name`.
    SkillMerged {
        name: String,
        from: String,
    },
    /// A skill stopped being injected; it stays on disk with `reason` in its
    /// front matter (the curator: it hurt, or it was merged into another).
    SkillDisabled {
        name: String,
        reason: String,
    },
    /// The training scheduler changed state (`waiting`, `window_open`,
    /// `working`, `pausing`); `reason` says why in words.
    ScheduleChanged {
        state: String,
        reason: String,
        window_id: Option<String>,
    },
    /// An evolution of `session_id` ended: what became of the model's
    /// proposals. Announced after its `skill_added` / `skill_merged`.
    EvolutionFinished {
        session_id: String,
        added: usize,
        pending: usize,
        merged: usize,
        dropped: usize,
    },
    /// An evolution of `session_id` failed; nothing was written.
    EvolutionFailed {
        session_id: String,
        reason: String,
    },
    /// The evolver started reading `session_id` for new skills.
    EvolutionStarted {
        session_id: String,
    },
    /// The trainer finished a step (the RL trainer publishes it).
    TrainingStep {
        step: i64,
        policy_version: i64,
        reward_mean: Option<f64>,
        turns: usize,
    },
    /// A training run (one window's steps) ended.
    TrainingFinished {
        steps: u32,
        reward_first: Option<f64>,
        reward_last: Option<f64>,
        policy_version: i64,
    },
    /// Something only the user can fix: `upstream_auth` (the upstream
    /// refused the key) or `calendar` (a calendar cannot be read).
    ActionNeeded {
        kind: String,
        message: String,
    },
    /// Settings were saved (dotted config keys).
    SettingsChanged {
        keys: Vec<String>,
    },
}

impl EngineEvent {
    /// The `type` field of the event's JSON (the SSE `event:` name).
    pub fn kind(&self) -> &'static str {
        match self {
            EngineEvent::SessionStarted { .. } => "session_started",
            EngineEvent::SessionEnded { .. } => "session_ended",
            EngineEvent::TurnRecorded { .. } => "turn_recorded",
            EngineEvent::TurnScored { .. } => "turn_scored",
            EngineEvent::SkillAdded { .. } => "skill_added",
            EngineEvent::SkillMerged { .. } => "skill_merged",
            EngineEvent::SkillDisabled { .. } => "skill_disabled",
            EngineEvent::ScheduleChanged { .. } => "schedule_changed",
            EngineEvent::EvolutionFailed { .. } => "evolution_failed",
            EngineEvent::EvolutionStarted { .. } => "evolution_started",
            EngineEvent::EvolutionFinished { .. } => "evolution_finished",
            EngineEvent::TrainingStep { .. } => "training_step",
            EngineEvent::TrainingFinished { .. } => "training_finished",
            EngineEvent::ActionNeeded { .. } => "action_needed",
            EngineEvent::SettingsChanged { .. } => "settings_changed",
        }
    }

    /// A short sentence for the tray's status line and the dashboard
    /// header; `None` for the per-request events, which would drown out
    /// what the learner did.
    pub fn summary(&self) -> Option<String> {
        Some(match self {
            EngineEvent::SessionStarted { .. }
            | EngineEvent::SessionEnded { .. }
            | EngineEvent::TurnRecorded { .. }
            | EngineEvent::TurnScored { .. } => return None,
            EngineEvent::SkillAdded { name, pending, .. } if *pending => {
                format!("new skill {name} waits for review")
            }
            EngineEvent::SkillAdded { name, .. } => format!("learned a new skill: {name}"),
            EngineEvent::SkillMerged { name, from } => format!("merged {from} into {name}"),
            EngineEvent::SkillDisabled { name, reason } => format!("disabled {name}: {reason}"),
            EngineEvent::ScheduleChanged { reason, .. } => reason.clone(),
            EngineEvent::EvolutionFailed { reason, .. } => format!("evolution failed: {reason}"),
            EngineEvent::EvolutionStarted { .. } => "learning from a session".to_owned(),
            // What it wrote was announced already; only "nothing" is news.
            EngineEvent::EvolutionFinished {
                added,
                pending,
                merged,
                ..
            } if added + pending + merged > 0 => return None,
            EngineEvent::EvolutionFinished { .. } => {
                "learned nothing new from a session".to_owned()
            }
            EngineEvent::TrainingStep {
                step, reward_mean, ..
            } => match reward_mean {
                Some(mean) => format!("training step {step}, mean reward {mean:+.2}"),
                None => format!("training step {step}"),
            },
            EngineEvent::TrainingFinished {
                steps,
                policy_version,
                ..
            } => format!("training finished: {steps} steps, policy v{policy_version}"),
            EngineEvent::ActionNeeded { message, .. } => message.clone(),
            EngineEvent::SettingsChanged { keys } => {
                format!("settings changed: {}", keys.join(", "))
            }
        })
    }
}

/// The newest notable event, for `GET /api/overview`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LastEvent {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub at: DateTime<Utc>,
    pub text: String,
}

/// Cheap to clone; publishing never blocks and never fails when nobody listens.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<EngineEvent>,
    last: Arc<Mutex<Option<LastEvent>>>,
}

impl EventBus {
    pub fn new() -> EventBus {
        // Slow subscribers lose the oldest events rather than slowing the proxy.
        let (sender, _) = broadcast::channel(1024);
        EventBus {
            sender,
            last: Arc::default(),
        }
    }

    pub fn publish(&self, event: EngineEvent) {
        if let Some(text) = event.summary() {
            let last = LastEvent {
                kind: event.kind(),
                at: Utc::now(),
                text,
            };
            // A poisoned lock only held the previous value; overwrite it.
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(last);
        }
        let _ = self.sender.send(event);
    }

    /// The newest event that says what the learner did (not per-request ones).
    pub fn last(&self) -> Option<LastEvent> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_json_type_and_the_last_notable_event_is_kept() {
        let events = [
            EngineEvent::SettingsChanged {
                keys: vec!["skills.top_k".into()],
            },
            EngineEvent::ActionNeeded {
                kind: "calendar".into(),
                message: "the calendar x cannot be read".into(),
            },
            EngineEvent::TrainingStep {
                step: 3,
                policy_version: 2,
                reward_mean: Some(0.5),
                turns: 4,
            },
            EngineEvent::TurnRecorded {
                session_id: "s".into(),
                request_id: "r".into(),
                status: "complete".into(),
            },
        ];
        let bus = EventBus::new();
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.kind());
            bus.publish(event);
        }
        // The turn is per-request noise: the training step stays the last.
        let last = bus.last().unwrap();
        assert_eq!(last.kind, "training_step");
        assert_eq!(last.text, "training step 3, mean reward +0.50");
    }
}
