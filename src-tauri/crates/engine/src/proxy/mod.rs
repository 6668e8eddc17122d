//! The learning proxy: an axum router over the engine's parts. Handlers are
//! thin; each endpoint's work lives in its own module.

mod chat;
mod error;
mod inject;
mod models;
pub mod policy;
mod policy_answer;
pub mod policy_hub;
mod recorder;
mod relay;
mod session_meta;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metaclaw_dialect::Dialect;
use metaclaw_skills::SkillLibrary;
use metaclaw_store::{SessionStart, Store};
use serde_json::json;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;

pub use error::ProxyError;
pub use policy::{PolicyLoadError, PolicyRegistry};
pub use policy_hub::{Hub, HubError, HubModel};

use crate::config::Config;
use crate::events::{EngineEvent, EventBus};
use crate::session::{EndedSession, SessionTracker, SessionTurn};
use crate::upstream::UpstreamClient;

/// Longest wait for a turn's commit before its answer is sent anyway.
const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How often the user is told that the upstream refuses the key.
const UPSTREAM_AUTH_ALERT_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Everything a request handler needs; shared by all requests.
pub struct ProxyState {
    /// The configuration the engine started with. Settings that apply
    /// without a restart are read from [`ProxyState::live_config`] instead.
    pub config: Config,
    /// The newest saved configuration: swapped by `PUT /api/settings`, read
    /// lock-free where a setting applies live (skills, notifications,
    /// scheduler, calendars).
    live: Arc<arc_swap::ArcSwap<Config>>,
    pub upstream: Option<UpstreamClient>,
    /// The policy being trained, which answers main turns in `rl`/`auto`.
    pub policy: Option<Arc<PolicyRegistry>>,
    pub library: SkillLibrary,
    pub store: Store,
    pub sessions: Arc<SessionTracker>,
    pub events: EventBus,
    skill_generation: AtomicI64,
    /// When the latest request came in: the scheduler keeps training
    /// windows closed while the agent is in use, and an open window is
    /// woken by every change.
    activity: tokio::sync::watch::Sender<Option<chrono::DateTime<chrono::Utc>>>,
    /// Guards `/api`; `None` when the token file could not be written.
    admin_token: Option<crate::api::AdminToken>,
    /// Set once serving starts the scheduler.
    scheduler: std::sync::OnceLock<metaclaw_schedule::scheduler::SchedulerHandle>,
    /// Where the config, secrets and trash live; `None` in tests that build
    /// the state by hand (the settings API then answers 503).
    paths: Option<crate::paths::AppPaths>,
    /// When the user was last told the upstream refused the key.
    upstream_auth_alerted: std::sync::Mutex<Option<Instant>>,
    started: Instant,
}

impl ProxyState {
    pub fn new(
        config: Config,
        upstream: Option<UpstreamClient>,
        library: SkillLibrary,
        store: Store,
        sessions: Arc<SessionTracker>,
        events: EventBus,
        skill_generation: i64,
    ) -> ProxyState {
        ProxyState {
            live: Arc::new(arc_swap::ArcSwap::from_pointee(config.clone())),
            config,
            upstream,
            policy: None,
            library,
            store,
            sessions,
            events,
            skill_generation: AtomicI64::new(skill_generation),
            activity: tokio::sync::watch::Sender::new(None),
            admin_token: None,
            scheduler: std::sync::OnceLock::new(),
            paths: None,
            upstream_auth_alerted: std::sync::Mutex::new(None),
            started: Instant::now(),
        }
    }

    /// The newest saved configuration (see the `live` field).
    pub fn live_config(&self) -> Arc<Config> {
        self.live.load_full()
    }

    /// Shares the live configuration with a background task that follows it.
    pub(crate) fn live_handle(&self) -> Arc<arc_swap::ArcSwap<Config>> {
        self.live.clone()
    }

    /// Makes `config` the live configuration (after it was saved).
    pub(crate) fn set_live_config(&self, config: Config) {
        self.live.store(Arc::new(config));
    }

    pub fn with_paths(mut self, paths: crate::paths::AppPaths) -> Self {
        self.paths = Some(paths);
        self
    }

    pub fn paths(&self) -> Option<&crate::paths::AppPaths> {
        self.paths.as_ref()
    }

    /// The upstream refused the key (401/403): tell the user, at most once
    /// every ten minutes, since every request will fail the same way.
    pub(crate) fn upstream_refused_key(&self, status: u16) {
        let now = Instant::now();
        let mut last = self
            .upstream_auth_alerted
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < UPSTREAM_AUTH_ALERT_EVERY) {
            return;
        }
        *last = Some(now);
        drop(last);
        self.events.publish(EngineEvent::ActionNeeded {
            kind: "upstream_auth".to_owned(),
            message: format!(
                "the upstream refused the API key ({status}); set a valid upstream.api_key in the settings"
            ),
        });
    }

    pub fn skill_generation(&self) -> i64 {
        self.skill_generation.load(Ordering::Relaxed)
    }

    /// New turns are tagged with `generation` from now on (the evolver calls
    /// this after it activates skills and stores the new generation).
    pub fn set_skill_generation(&self, generation: i64) {
        self.skill_generation.store(generation, Ordering::Relaxed);
    }

    pub fn with_admin_token(mut self, token: Option<crate::api::AdminToken>) -> Self {
        self.admin_token = token;
        self
    }

    /// Main turns are answered by `policy` (`rl`/`auto`).
    pub fn with_policy(mut self, policy: Option<Arc<PolicyRegistry>>) -> Self {
        self.policy = policy;
        self
    }

    pub fn admin_token(&self) -> Option<&crate::api::AdminToken> {
        self.admin_token.as_ref()
    }

    /// The training scheduler, once serving has started it.
    pub fn scheduler(&self) -> Option<metaclaw_schedule::scheduler::SchedulerHandle> {
        self.scheduler.get().cloned()
    }

    pub(crate) fn set_scheduler(&self, handle: metaclaw_schedule::scheduler::SchedulerHandle) {
        let _ = self.scheduler.set(handle);
    }

    /// Follows the time of the latest request.
    pub fn activity(&self) -> tokio::sync::watch::Receiver<Option<chrono::DateTime<chrono::Utc>>> {
        self.activity.subscribe()
    }

    fn note_request(&self) {
        self.activity.send_replace(Some(chrono::Utc::now()));
    }

    /// Waits until every turn recorded so far is committed. The final bytes
    /// of an answer wait for this (and only they: the first byte never
    /// does), so a turn the client has received survives a kill -9. Bounded,
    /// so a stuck disk delays an answer but never withholds it.
    pub async fn wait_for_commit(&self) {
        match tokio::time::timeout(COMMIT_WAIT, self.store.flush_turns()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "recording the turn failed"),
            Err(_) => tracing::warn!(
                "the database did not commit within {} s; answering anyway",
                COMMIT_WAIT.as_secs()
            ),
        }
    }

    /// Checks the client's key when `proxy.api_key` is set. Both SDK styles
    /// are accepted: `Authorization: Bearer K` (OpenAI) and `x-api-key: K`
    /// (Anthropic).
    fn check_auth(&self, headers: &HeaderMap) -> Result<(), ProxyError> {
        let expected = self.config.proxy.api_key.expose();
        if expected.is_empty() {
            return Ok(());
        }
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let x_api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        let matches = [bearer, x_api_key]
            .into_iter()
            .flatten()
            .any(|given| constant_time_eq(given.trim().as_bytes(), expected.as_bytes()));
        if matches {
            Ok(())
        } else {
            Err(ProxyError::Unauthorized)
        }
    }

    /// Places a request in its session, opening (and announcing) it if new.
    fn open_turn(&self, meta: &session_meta::SessionMeta) -> SessionTurn {
        let (turn, expired) = self
            .sessions
            .observe(&meta.key, meta.source, Instant::now());
        if let Some(ended) = expired {
            self.announce_end(ended, "idle");
        }
        if turn.is_new {
            self.store.session_started(SessionStart {
                id: turn.session_id.clone(),
                session_key: turn.key.clone(),
                key_source: turn.key_source.as_str().to_string(),
                started_at_ms: crate::now_ms(),
            });
            self.events.publish(EngineEvent::SessionStarted {
                session_id: turn.session_id.clone(),
            });
        }
        turn
    }

    fn end_session(&self, key: &str, reason: &str) {
        if let Some(ended) = self.sessions.end(key) {
            self.announce_end(ended, reason);
        }
    }

    /// Records a session's end and tells subscribers (the evolver learns here).
    pub fn announce_end(&self, ended: EndedSession, reason: &str) {
        tracing::info!(session = %ended.session_id, reason, "session ended");
        if let Some(policy) = &self.policy {
            policy.forget(&ended.session_id);
        }
        self.store
            .session_ended(&ended.session_id, crate::now_ms(), reason);
        self.events.publish(EngineEvent::SessionEnded {
            session_id: ended.session_id,
            reason: reason.to_string(),
        });
    }
}

pub fn router(state: Arc<ProxyState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(list_models))
        .route("/healthz", get(healthz))
        .route("/api/events", get(engine_events))
        .with_state(state.clone())
        .merge(crate::api::router(state))
}

async fn chat_completions(
    State(state): State<Arc<ProxyState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    chat::handle(state, Dialect::OpenAi, headers, body).await
}

async fn messages(
    State(state): State<Arc<ProxyState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    chat::handle(state, Dialect::Anthropic, headers, body).await
}

async fn list_models(State(state): State<Arc<ProxyState>>, headers: HeaderMap) -> Response {
    models::list(&state, headers).await
}

/// The engine's events as server-sent events, for the tray and the
/// dashboard: `event:` is the event type, `data:` its JSON.
async fn engine_events(State(state): State<Arc<ProxyState>>, headers: HeaderMap) -> Response {
    // The dashboard holds the admin token; an agent may listen with the
    // proxy key when one is set. Nobody listens without either.
    let admin = state
        .admin_token()
        .is_some_and(|token| token.accepts(&headers));
    let agent = !state.config.proxy.api_key.is_empty() && state.check_auth(&headers).is_ok();
    if !admin && !agent {
        return crate::api::ApiError::unauthorized(
            "missing or wrong admin token (Authorization: Bearer <contents of the admin-token file>)",
        )
        .into_response();
    }
    let events = state.events.subscribe();
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        let event = match events.recv().await {
            Ok(event) => {
                let data = serde_json::to_value(&event).unwrap_or_default();
                let kind = data
                    .get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("event")
                    .to_string();
                Event::default().event(kind).data(data.to_string())
            }
            // A slow reader missed events: say so, so it can reload its view.
            Err(RecvError::Lagged(missed)) => Event::default()
                .event("lagged")
                .data(json!({"missed": missed}).to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), events))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn healthz(State(state): State<Arc<ProxyState>>) -> Response {
    let snapshot = state.library.snapshot();
    let upstream = state.upstream.as_ref().map(|u| {
        json!({"api": u.api().to_string(), "base_url": u.target().base_url, "model": u.target().model})
    });
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "mode": state.config.mode.to_string(),
        "upstream": upstream,
        "skills": snapshot.len(),
        "skill_problems": snapshot.problems().len(),
        "skills_dir": state.library.dir(),
        "skill_generation": state.skill_generation(),
        "live_sessions": state.sessions.live_count(),
        "uptime_secs": state.started.elapsed().as_secs(),
    }))
    .into_response()
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
