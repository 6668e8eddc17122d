//! Turns one proxied request into one stored turn, exactly once — also when
//! the client goes away first (the turn is then stored as aborted).

use std::time::Instant;

use metaclaw_dialect::Usage;
use metaclaw_store::{Store, TurnRecord, TurnStatus, TurnType};

use crate::events::{EngineEvent, EventBus};
use crate::session::SessionTurn;

/// What is known about a turn before the upstream answers.
pub struct TurnDraft {
    pub request_id: String,
    pub session: SessionTurn,
    pub turn_type: TurnType,
    pub client_dialect: String,
    pub upstream_api: String,
    pub model: Option<String>,
    pub stream: bool,
    pub started_at_ms: i64,
    pub skill_generation: i64,
    pub injected_skills: Vec<String>,
    pub request_json: String,
}

/// How the turn ended.
pub struct TurnOutcome {
    pub status: TurnStatus,
    pub http_status: Option<u16>,
    pub response_json: Option<String>,
    pub usage: Usage,
    pub ttfb_ms: Option<f64>,
    pub error: Option<String>,
}

impl TurnOutcome {
    pub fn failed(status: TurnStatus, http_status: Option<u16>, error: String) -> TurnOutcome {
        TurnOutcome {
            status,
            http_status,
            response_json: None,
            usage: Usage::default(),
            ttfb_ms: None,
            error: Some(error),
        }
    }
}

pub struct TurnRecorder {
    draft: Option<TurnDraft>,
    /// The request's span, so a turn finished by a stream (outside the
    /// handler) still logs with its request id.
    span: tracing::Span,
    started: Instant,
    store: Store,
    events: EventBus,
}

impl TurnRecorder {
    pub fn new(draft: TurnDraft, started: Instant, store: Store, events: EventBus) -> TurnRecorder {
        TurnRecorder {
            draft: Some(draft),
            span: tracing::Span::current(),
            started,
            store,
            events,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.draft.is_some()
    }

    /// Hands the turn to the store's writer (never waits on disk). Later
    /// calls do nothing, so every path may call it without double counting.
    pub fn finish(&mut self, outcome: TurnOutcome) {
        let Some(draft) = self.draft.take() else { return };
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let status = outcome.status;
        let _entered = self.span.enter();
        tracing::info!(
            session = %draft.session.session_id,
            turn = draft.session.turn_index,
            status = %status,
            http_status = outcome.http_status,
            latency_ms = format_args!("{latency_ms:.1}"),
            skills = draft.injected_skills.len(),
            "turn finished"
        );
        self.events.publish(EngineEvent::TurnRecorded {
            session_id: draft.session.session_id.clone(),
            request_id: draft.request_id.clone(),
            status: status.to_string(),
        });
        self.store.record_turn(TurnRecord {
            request_id: draft.request_id,
            session_id: draft.session.session_id,
            session_key: draft.session.key,
            key_source: draft.session.key_source.as_str().to_string(),
            turn_index: draft.session.turn_index,
            turn_type: draft.turn_type,
            client_dialect: draft.client_dialect,
            upstream_api: draft.upstream_api,
            model: draft.model,
            stream: draft.stream,
            started_at_ms: draft.started_at_ms,
            latency_ms,
            ttfb_ms: outcome.ttfb_ms,
            status,
            http_status: outcome.http_status,
            prompt_tokens: outcome.usage.prompt_tokens,
            completion_tokens: outcome.usage.completion_tokens,
            skill_generation: draft.skill_generation,
            injected_skills: draft.injected_skills,
            request_json: draft.request_json,
            response_json: outcome.response_json,
            error: outcome.error,
        });
    }
}

impl Drop for TurnRecorder {
    /// The request future was dropped before the turn finished: the client
    /// disconnected. The turn is kept, marked aborted, never learned from.
    fn drop(&mut self) {
        if self.is_pending() {
            self.finish(TurnOutcome::failed(
                TurnStatus::Aborted,
                None,
                "the client disconnected before the response was complete".to_string(),
            ));
        }
    }
}
