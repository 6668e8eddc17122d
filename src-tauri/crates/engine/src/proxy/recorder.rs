//! Turns one proxied request into one stored turn, exactly once — also when
//! the client goes away first (the turn is then stored as aborted).

use std::sync::Arc;
use std::time::Instant;

use metaclaw_dialect::Usage;
use metaclaw_store::{TurnRecord, TurnStatus, TurnType};

use super::ProxyState;
use crate::events::EngineEvent;
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
    /// The client said this is the session's last turn (`X-Session-Done`).
    pub ends_session: bool,
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
    state: Arc<ProxyState>,
}

impl TurnRecorder {
    pub fn new(draft: TurnDraft, started: Instant, state: Arc<ProxyState>) -> TurnRecorder {
        TurnRecorder {
            draft: Some(draft),
            span: tracing::Span::current(),
            started,
            state,
        }
    }

    /// When the request arrived.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn state(&self) -> &ProxyState {
        &self.state
    }

    pub fn is_pending(&self) -> bool {
        self.draft.is_some()
    }

    /// Hands the turn to the store's writer (never waits on disk), then ends
    /// the session if the client asked, so whoever reacts to the end (the
    /// evolver) finds every turn recorded. Later calls do nothing, so every
    /// path may call it without double counting.
    pub fn finish(&mut self, outcome: TurnOutcome) {
        let Some(draft) = self.draft.take() else {
            return;
        };
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
        let session_id = draft.session.session_id.clone();
        let end_key = draft.ends_session.then(|| draft.session.key.clone());
        let request_id = draft.request_id.clone();
        self.state.store.record_turn(TurnRecord {
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
        self.state.events.publish(EngineEvent::TurnRecorded {
            session_id,
            request_id,
            status: status.to_string(),
        });
        if let Some(key) = end_key {
            self.state.end_session(&key, "done");
        }
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
