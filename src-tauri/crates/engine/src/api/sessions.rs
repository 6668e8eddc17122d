//! `/api/sessions*`: recorded conversations, newest first, and one
//! conversation with every turn (request, response, injected skills, score).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use metaclaw_store::{SessionSummary, StoreError, TurnRow, TurnType};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{rfc3339, ApiError, ApiResult};
use crate::proxy::ProxyState;

/// The most sessions one page holds.
const MAX_LIMIT: usize = 500;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    limit: Option<usize>,
    /// Only sessions started before this (`started_at_ms` of the last one
    /// of the previous page).
    before: Option<i64>,
}

fn session_json(
    s: &SessionSummary,
    main_turns: u32,
    mean_score: Option<f64>,
    model: Option<String>,
    policy_version: Option<i64>,
) -> Value {
    json!({
        "id": s.id,
        "started_at": rfc3339(s.started_at_ms),
        "started_at_ms": s.started_at_ms,
        "last_seen_at": rfc3339(s.last_seen_at_ms),
        "ended_at": s.ended_at_ms.and_then(rfc3339),
        "end_reason": s.end_reason,
        "key_source": s.key_source,
        "turns": s.turn_count,
        "main_turns": main_turns,
        "mean_score": mean_score,
        "model": model,
        "policy_version": policy_version,
    })
}

pub(super) async fn list(
    State(state): State<Arc<ProxyState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be from 1 to {MAX_LIMIT}"
        )));
    }
    super::blocking(move || {
        let sessions: Vec<Value> = state
            .store
            .reader()?
            .session_overviews(limit, query.before)?
            .into_iter()
            .map(|o| {
                session_json(
                    &o.session,
                    o.main_turns,
                    o.mean_score,
                    o.model,
                    o.policy_version,
                )
            })
            .collect();
        Ok(Json(json!({ "sessions": sessions })))
    })
    .await
}

fn turn_json(t: TurnRow, policy_version: Option<i64>) -> Value {
    json!({
        "id": t.id,
        "request_id": t.request_id,
        "turn_index": t.turn_index,
        "turn_type": t.turn_type,
        "started_at": rfc3339(t.started_at_ms),
        "status": t.status,
        "http_status": t.http_status,
        "error": t.error,
        "client_dialect": t.client_dialect,
        "upstream_api": t.upstream_api,
        "model": t.model,
        "stream": t.stream,
        "latency_ms": t.latency_ms,
        "ttfb_ms": t.ttfb_ms,
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "skill_generation": t.skill_generation,
        "request": t.request,
        "response": t.response,
        "injected_skills": t.injected_skills,
        "score": t.score,
        "judge_state": t.judge_state,
        "judge_reason": t.judge_reason,
        "votes": t.votes,
        "policy_version": policy_version,
    })
}

/// One session; `id` may be a unique prefix of at least four characters.
pub(super) async fn show(
    State(state): State<Arc<ProxyState>>,
    Path(id): Path<String>,
) -> ApiResult {
    super::blocking(move || {
        let reader = state.store.reader()?;
        let detail = match reader.session(&id) {
            Ok(Some(detail)) => detail,
            Ok(None) => return Err(ApiError::not_found(format!("no session with id `{id}`"))),
            Err(error @ StoreError::AmbiguousPrefix { .. }) => {
                return Err(ApiError::bad_request(error.to_string()))
            }
            Err(error) => return Err(error.into()),
        };
        let versions = reader.turn_policy_versions(&detail.session.id)?;
        let main: Vec<&TurnRow> = detail
            .turns
            .iter()
            .filter(|t| t.turn_type == TurnType::Main)
            .collect();
        let scores: Vec<f64> = detail
            .turns
            .iter()
            .filter_map(|t| t.score.map(f64::from))
            .collect();
        let mean_score =
            (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64);
        let model = detail.turns.last().and_then(|t| t.model.clone());
        let session = session_json(
            &detail.session,
            u32::try_from(main.len()).unwrap_or(u32::MAX),
            mean_score,
            model,
            versions.values().copied().max(),
        );
        let turns: Vec<Value> = detail
            .turns
            .into_iter()
            .map(|t| {
                let version = versions.get(&t.id).copied();
                turn_json(t, version)
            })
            .collect();
        Ok(Json(json!({"session": session, "turns": turns})))
    })
    .await
}
