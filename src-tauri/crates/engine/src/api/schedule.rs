//! `/api/schedule*`: the training scheduler's status, the day's timeline,
//! pause and resume, train now.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use metaclaw_schedule::scheduler::{ScheduleError, SchedulerHandle};
use serde::Deserialize;
use serde_json::json;

use super::{body, ApiError, ApiResult};
use crate::proxy::ProxyState;
use crate::schedule::TrainNowError;

fn scheduler(state: &ProxyState) -> Result<SchedulerHandle, ApiError> {
    state
        .scheduler()
        .ok_or_else(|| ApiError::unavailable("the scheduler is not running"))
}

pub(super) async fn status(State(state): State<Arc<ProxyState>>) -> ApiResult {
    Ok(Json(json!(scheduler(&state)?.status())))
}

#[derive(Deserialize)]
pub(super) struct TimelineQuery {
    /// `YYYY-MM-DD`, local; default today.
    date: Option<String>,
}

pub(super) async fn timeline(
    State(state): State<Arc<ProxyState>>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let scheduler = scheduler(&state)?;
    let settings = crate::schedule::settings(&state.live_config().scheduler);
    let date = match query.date.as_deref() {
        None => Utc::now().with_timezone(&settings.tz).date_naive(),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request(format!("date: `{text}` is not a date such as 2026-03-16"))
        })?,
    };
    let calendar = scheduler.calendar();
    super::blocking(move || {
        let reader = state.store.reader()?;
        let day = crate::schedule::timeline(&reader, &settings, calendar.as_ref(), date)?;
        Ok(Json(json!(day)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseRequest {
    /// RFC 3339; `null` resumes.
    until: Option<DateTime<Utc>>,
}

pub(super) async fn pause(State(state): State<Arc<ProxyState>>, bytes: Bytes) -> ApiResult {
    let scheduler = scheduler(&state)?;
    let request: PauseRequest = body(&bytes, "{\"until\": \"<RFC 3339 time>\" | null}")?;
    scheduler.pause_until(request.until);
    Ok(Json(json!({"paused_until": request.until})))
}

pub(super) async fn train_now(State(state): State<Arc<ProxyState>>) -> ApiResult {
    train_now_answer(&state).await
}

/// `{status}` for train-now here and under `/api/training/now`.
pub(super) async fn train_now_answer(state: &ProxyState) -> ApiResult {
    match crate::schedule::train_now(state.scheduler()).await {
        Ok(()) => Ok(Json(json!({"status": "window opened"}))),
        Err(error @ TrainNowError::NotRunning)
        | Err(error @ TrainNowError::Refused(ScheduleError::Stopped)) => {
            Err(ApiError::unavailable(error.to_string()))
        }
        Err(error @ TrainNowError::Refused(_)) => Err(ApiError::conflict(error.to_string())),
    }
}
