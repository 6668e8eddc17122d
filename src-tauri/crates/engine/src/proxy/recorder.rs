//! Turns one proxied request into one stored turn, exactly once — also when
//! the client goes away first (the turn is then stored as aborted).

use std::sync::Arc;
use std::time::Instant;

use metaclaw_dialect::Usage;
use metaclaw_store::{TurnRecord, TurnStatus};

use super::ProxyState;
use crate::events::EngineEvent;

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
    /// The turn as known before the upstream answers; its outcome fields are
    /// filled in by `finish`. `None` once recorded.
    draft: Option<TurnRecord>,
    /// Set when the client said this is the session's last turn
    /// (`X-Session-Done`): the session key to end once the turn is recorded.
    ends_session: Option<String>,
    /// The request's span, so a turn finished by a stream (outside the
    /// handler) still logs with its request id.
    span: tracing::Span,
    started: Instant,
    state: Arc<ProxyState>,
}

impl TurnRecorder {
    pub fn new(
        draft: TurnRecord,
        ends_session: Option<String>,
        started: Instant,
        state: Arc<ProxyState>,
    ) -> TurnRecorder {
        TurnRecorder {
            draft: Some(draft),
            ends_session,
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
        let Some(mut turn) = self.draft.take() else {
            return;
        };
        turn.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        turn.status = outcome.status;
        turn.http_status = outcome.http_status;
        turn.ttfb_ms = outcome.ttfb_ms;
        turn.prompt_tokens = outcome.usage.prompt_tokens;
        turn.completion_tokens = outcome.usage.completion_tokens;
        turn.response_json = outcome.response_json;
        turn.error = outcome.error;
        let _entered = self.span.enter();
        tracing::info!(
            session = %turn.session_id,
            turn = turn.turn_index,
            status = %turn.status,
            http_status = turn.http_status,
            latency_ms = format_args!("{:.1}", turn.latency_ms),
            skills = turn.injected_skills.len(),
            "turn finished"
        );
        let event = EngineEvent::TurnRecorded {
            session_id: turn.session_id.clone(),
            request_id: turn.request_id.clone(),
            status: turn.status.to_string(),
        };
        self.state.store.record_turn(turn);
        self.state.events.publish(event);
        if let Some(key) = self.ends_session.take() {
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
