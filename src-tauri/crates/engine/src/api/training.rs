//! `/api/training*`: the slow loop's steps (with rewards for the chart),
//! its checkpoints, and train now.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use metaclaw_store::TrainingStepRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{rfc3339, ApiError, ApiResult};
use crate::proxy::ProxyState;

#[derive(Deserialize)]
pub(super) struct TrainingQuery {
    /// How many steps, newest first (default 200).
    limit: Option<usize>,
}

fn step_json(step: &TrainingStepRecord) -> Value {
    // The loss value is one of the metrics (`loss:sum`, `loss:mean`, …).
    let loss = step
        .metrics
        .iter()
        .find(|(k, _)| k.split(':').next() == Some("loss"))
        .map(|(_, v)| *v);
    json!({
        "step": step.id,
        "at": rfc3339(step.finished_at_ms),
        "started_at": rfc3339(step.started_at_ms),
        "duration_ms": step.duration_ms,
        "outcome": step.outcome,
        "error": step.error,
        "reward_mean": step.reward_mean,
        "reward_std": step.reward_std,
        "turns": step.turn_ids.len(),
        "loss": loss,
        "loss_fn": step.loss,
        "metrics": step.metrics,
        "window_id": step.window_id,
        "policy_version": step.policy_after.unwrap_or(step.policy_before),
    })
}

pub(super) async fn get(
    State(state): State<Arc<ProxyState>>,
    query: Result<Query<TrainingQuery>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(200).clamp(1, 10_000);
    super::blocking(move || {
        let reader = state.store.reader()?;
        let summary = reader.training_summary()?;
        let steps: Vec<Value> = reader
            .training_steps(limit)?
            .iter()
            .map(step_json)
            .collect();
        let checkpoints: Vec<Value> = reader
            .checkpoints(limit)?
            .into_iter()
            .map(|c| {
                let name = c.path.rsplit('/').next().unwrap_or(&c.path).to_owned();
                json!({
                    "name": name,
                    "path": c.path,
                    "kind": c.kind,
                    "step": c.step,
                    "at": rfc3339(c.created_at_ms),
                })
            })
            .collect();
        let config = &state.config;
        Ok(Json(json!({
            "mode": config.mode.to_string(),
            "trains": config.trains(),
            "model": config.rl.model,
            "summary": {
                "steps": summary.steps,
                "trained_steps": summary.trained_steps,
                "failed_steps": summary.failed_steps,
                "policy_version": summary.policy_version,
                "pending_turns": summary.pending_turns.len(),
                "batch_size": config.rl.batch_size,
                "last_step_at": summary.last_step.as_ref().and_then(|s| rfc3339(s.finished_at_ms)),
            },
            "steps": steps,
            "checkpoints": checkpoints,
        })))
    })
    .await
}

/// The same engine function as `metaclaw train now` and the tray's item.
pub(super) async fn now(State(state): State<Arc<ProxyState>>) -> ApiResult {
    super::schedule::train_now_answer(&state).await
}
