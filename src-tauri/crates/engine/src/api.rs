//! The engine's JSON API under `/api` on the proxy's loopback port, for the
//! CLI, the tray and the dashboard. It can pause learning and will later
//! edit settings, so it takes an admin token that only the user can read
//! (a file, mode 0600), separate from the proxy's client key.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::paths::AppPaths;
use crate::proxy::ProxyState;

/// The admin token, created on first use.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// Reads the token file, creating it (0600) with a fresh random token
    /// when it does not exist yet.
    pub fn load_or_create(paths: &AppPaths) -> std::io::Result<AdminToken> {
        let path = paths.admin_token_file();
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => Ok(AdminToken(text.trim().to_owned())),
            Ok(_) => Self::create(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(&path),
            Err(e) => Err(e),
        }
    }

    /// Reads the token without creating one (the CLI, when no server has
    /// started yet, has nothing to talk to anyway).
    pub fn read(paths: &AppPaths) -> Option<AdminToken> {
        let text = std::fs::read_to_string(paths.admin_token_file()).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| AdminToken(text.to_owned()))
    }

    fn create(path: &Path) -> std::io::Result<AdminToken> {
        // Two v4 UUIDs: 244 random bits from the OS generator.
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        crate::fsutil::write_private(path, token.as_bytes())?;
        Ok(AdminToken(token))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn accepts(&self, headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                crate::proxy::constant_time_eq(given.trim().as_bytes(), self.0.as_bytes())
            })
    }
}

/// `/api/...` routes; merged into the proxy's router.
pub fn router(state: Arc<ProxyState>) -> Router {
    Router::new()
        .route("/api/schedule", get(schedule_status))
        .route("/api/schedule/timeline", get(schedule_timeline))
        .route("/api/schedule/pause", post(schedule_pause))
        .route("/api/schedule/train-now", post(schedule_train_now))
        .with_state(state)
}

/// An API failure: the status and a message for the user.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": {"message": self.1}}))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError(status, message.into()).into_response()
}

/// Checks the admin token and that the scheduler is running.
fn admin(
    state: &ProxyState,
    headers: &HeaderMap,
) -> Result<metaclaw_schedule::scheduler::SchedulerHandle, ApiError> {
    let unavailable = |what: &str| ApiError(StatusCode::SERVICE_UNAVAILABLE, what.to_owned());
    let token = state
        .admin_token()
        .ok_or_else(|| unavailable("the admin API is not available (no admin token)"))?;
    if !token.accepts(headers) {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (Authorization: Bearer <contents of the admin-token file>)"
                .to_owned(),
        ));
    }
    state
        .scheduler()
        .ok_or_else(|| unavailable("the scheduler is not running"))
}

async fn schedule_status(State(state): State<Arc<ProxyState>>, headers: HeaderMap) -> Response {
    match admin(&state, &headers) {
        Ok(scheduler) => Json(scheduler.status()).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct TimelineQuery {
    /// `YYYY-MM-DD`, local; default today.
    date: Option<String>,
}

async fn schedule_timeline(
    State(state): State<Arc<ProxyState>>,
    headers: HeaderMap,
    Query(query): Query<TimelineQuery>,
) -> Response {
    let scheduler = match admin(&state, &headers) {
        Ok(scheduler) => scheduler,
        Err(e) => return e.into_response(),
    };
    let settings = crate::schedule::settings(&state.config.scheduler);
    let date = match query.date.as_deref() {
        None => Utc::now().with_timezone(&settings.tz).date_naive(),
        Some(text) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => date,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("date: `{text}` is not a date such as 2026-03-16"),
                )
            }
        },
    };
    let reader = match state.store.reader() {
        Ok(reader) => reader,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let calendar = scheduler.calendar();
    match crate::schedule::timeline(&reader, &settings, calendar.as_ref(), date) {
        Ok(timeline) => Json(timeline).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseRequest {
    /// RFC 3339; `null` resumes.
    until: Option<DateTime<Utc>>,
}

async fn schedule_pause(
    State(state): State<Arc<ProxyState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let scheduler = match admin(&state, &headers) {
        Ok(scheduler) => scheduler,
        Err(e) => return e.into_response(),
    };
    let request: PauseRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"until\": \"<RFC 3339 time>\" | null}}: {e}"),
            )
        }
    };
    scheduler.pause_until(request.until);
    Json(json!({"paused_until": request.until})).into_response()
}

async fn schedule_train_now(State(state): State<Arc<ProxyState>>, headers: HeaderMap) -> Response {
    let scheduler = match admin(&state, &headers) {
        Ok(scheduler) => scheduler,
        Err(e) => return e.into_response(),
    };
    match scheduler.train_now().await {
        Ok(()) => Json(json!({"status": "window opened"})).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}
