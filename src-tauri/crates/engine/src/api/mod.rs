//! The engine's JSON API under `/api` (see `API.md`): one axum router for
//! the CLI, the dashboard in a browser (HTTP on the proxy's loopback port)
//! and the tray app (in-process through [`call`], no network). It can edit
//! skills and settings, so every route takes an admin token that only the
//! user can read (a file, mode 0600), separate from the proxy's client key.
//!
//! Handlers are thin: each calls one engine function. Every failure is an
//! [`ApiError`], turned into the JSON error body in one place.

mod overview;
mod schedule;
mod sessions;
mod settings;
mod skills;
mod training;
pub mod ui;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

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

    /// Whether `headers` carry this token as `Authorization: Bearer …`.
    pub(crate) fn accepts(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .is_some_and(|given| {
                crate::proxy::constant_time_eq(given.trim().as_bytes(), self.0.as_bytes())
            })
    }
}

/// `/api/...` routes and the dashboard under `/ui`; merged into the proxy's
/// router.
pub fn router(state: Arc<ProxyState>) -> Router {
    let api = Router::new()
        .route("/api/overview", get(overview::get))
        .route("/api/skills", get(skills::list))
        .route(
            "/api/skills/{name}",
            get(skills::show).put(skills::edit).delete(skills::delete),
        )
        .route("/api/skills/{name}/disable", post(skills::disable))
        .route("/api/skills/{name}/enable", post(skills::enable))
        .route("/api/skills/{name}/approve", post(skills::approve))
        .route("/api/skills/{name}/reject", post(skills::reject))
        .route("/api/sessions", get(sessions::list))
        .route("/api/sessions/{id}", get(sessions::show))
        .route("/api/training", get(training::get))
        .route("/api/training/now", post(training::now))
        .route("/api/schedule", get(schedule::status))
        .route("/api/schedule/timeline", get(schedule::timeline))
        .route("/api/schedule/pause", post(schedule::pause))
        .route("/api/schedule/train-now", post(schedule::train_now))
        .route("/api/settings", get(settings::get).put(settings::put))
        .route("/api/{*rest}", axum::routing::any(unknown))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin))
        .with_state(state);
    api.merge(ui::router())
}

/// An API failure: a status, a stable `code`, a message for the user and,
/// for invalid input, a message per field.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422 with a message per field.
    pub fn invalid(message: impl Into<String>, fields: BTreeMap<String, String>) -> ApiError {
        ApiError {
            fields,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
        }
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "API request failed");
        }
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "fields": self.fields,
        }});
        (self.status, Json(body)).into_response()
    }
}

impl From<metaclaw_store::StoreError> for ApiError {
    fn from(error: metaclaw_store::StoreError) -> ApiError {
        ApiError::internal(format!("database: {error}"))
    }
}

/// A handler's answer.
pub type ApiResult = Result<Json<Value>, ApiError>;

/// Checks the admin token on every `/api` route.
async fn require_admin(
    State(state): State<Arc<ProxyState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = state.admin_token() else {
        return ApiError::unavailable(
            "the admin API is not available: the admin-token file could not be created",
        )
        .into_response();
    };
    if !token.accepts(request.headers()) {
        return ApiError::unauthorized(
            "missing or wrong admin token (Authorization: Bearer <contents of the admin-token file>; `metaclaw dashboard --print-url` shows a link with it)",
        )
        .into_response();
    }
    next.run(request).await
}

async fn unknown(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no API endpoint {method} {}", uri.path()))
}

/// Reads a JSON request body; an empty body reads as `{}`.
pub(crate) fn body<T: DeserializeOwned>(bytes: &Bytes, expected: &str) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("expected a JSON body {expected}: {e}")))
}

/// Runs blocking work (SQLite, files) off the async threads.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the request's work stopped: {e}")))?
}

/// `ms` since the epoch as an RFC 3339 time (UTC).
pub(crate) fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// What [`call`] answers: the status and the JSON body.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiReply {
    pub status: u16,
    pub body: Value,
}

/// Runs one API request in-process through the same router as HTTP, with
/// the admin token added: the tray app's transport (a Tauri command), so
/// the web view needs no network and never sees the token.
pub async fn call(
    state: &Arc<ProxyState>,
    method: &str,
    path_and_query: &str,
    body: Option<Value>,
) -> ApiReply {
    let refuse = |status: StatusCode, message: String| ApiReply {
        status: status.as_u16(),
        body: json!({"error": {"code": "bad_request", "message": message, "fields": {}}}),
    };
    if !path_and_query.starts_with("/api/") {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("`{path_and_query}` is not an API path (they start with /api/)"),
        );
    }
    if path_and_query.split('?').next() == Some("/api/events") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "/api/events is a stream; in the app, events arrive as `engine-event`".to_owned(),
        );
    }
    let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("`{method}` is not an HTTP method"),
        );
    };
    let Some(token) = state.admin_token() else {
        return ApiError::unavailable("the admin API is not available (no admin token)")
            .into_reply()
            .await;
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()));
    let body = match body {
        Some(value) => {
            request = request.header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    let request = match request.body(body) {
        Ok(request) => request,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("`{path_and_query}` is not a valid request path: {e}"),
            )
        }
    };
    let response = match tower::ServiceExt::oneshot(router(state.clone()), request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    reply(response).await
}

/// A response as an [`ApiReply`]; a body that is not JSON becomes a string.
async fn reply(response: Response) -> ApiReply {
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    ApiReply { status, body }
}

impl ApiError {
    async fn into_reply(self) -> ApiReply {
        reply(self.into_response()).await
    }
}

#[cfg(test)]
mod tests;
