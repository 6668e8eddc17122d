//! The engine's internal event bus: other parts (the evolver, the tray, the
//! dashboard's live view) subscribe instead of being called directly.

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
    /// An evolution of `session_id` failed; nothing was written.
    EvolutionFailed {
        session_id: String,
        reason: String,
    },
}

/// Cheap to clone; publishing never blocks and never fails when nobody listens.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<EngineEvent>,
}

impl EventBus {
    pub fn new() -> EventBus {
        // Slow subscribers lose the oldest events rather than slowing the proxy.
        let (sender, _) = broadcast::channel(1024);
        EventBus { sender }
    }

    pub fn publish(&self, event: EngineEvent) {
        let _ = self.sender.send(event);
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
