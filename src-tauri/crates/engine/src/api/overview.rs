//! `GET /api/overview`: the engine at a glance, for the tray's status line
//! and icon and the dashboard's header.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use metaclaw_skills::SkillStatus;
use serde_json::{json, Value};

use super::ApiResult;
use crate::proxy::ProxyState;

pub(super) async fn get(State(state): State<Arc<ProxyState>>) -> ApiResult {
    let snapshot = state.library.snapshot();
    let count = |status: SkillStatus| {
        snapshot
            .skills()
            .iter()
            .filter(|s| s.status == status)
            .count()
    };
    let (scheduler_state, reason, paused_until) = match state.scheduler() {
        Some(scheduler) => {
            let status = scheduler.status();
            let name = if status.enabled {
                status.state.as_str()
            } else {
                "disabled"
            };
            (name, status.explanation, status.paused_until)
        }
        None => ("disabled", "the scheduler is not running".to_owned(), None),
    };
    let upstream = state.upstream.as_ref().map(|u| {
        json!({"api": u.api().to_string(), "base_url": u.target().base_url, "model": u.target().model})
    });
    let training = if state.config.trains() {
        let reader_state = state.clone();
        let summary =
            super::blocking(move || Ok(reader_state.store.reader()?.training_summary()?)).await?;
        json!({
            "policy_version": summary.policy_version,
            "steps": summary.steps,
            "pending_turns": summary.pending_turns.len(),
        })
    } else {
        Value::Null
    };
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "mode": state.config.mode.to_string(),
        "state": scheduler_state,
        "state_reason": reason,
        "paused_until": paused_until,
        "skills": {
            "active": count(SkillStatus::Active),
            "pending": count(SkillStatus::Pending),
            "disabled": count(SkillStatus::Disabled),
            "problems": snapshot.problems().len(),
        },
        "live_sessions": state.sessions.live_count(),
        "upstream": upstream,
        "last_event": state.events.last(),
        "training": training,
    })))
}
