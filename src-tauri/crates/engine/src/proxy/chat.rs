//! The chat endpoints (`/v1/chat/completions`, `/v1/messages`): read and
//! check the request, place it in a session, inject skills, translate when
//! the upstream speaks the other dialect, forward, and relay the answer.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use metaclaw_dialect::{
    inject_system_text, latest_instruction, request_anthropic_to_openai,
    request_openai_to_anthropic, response_anthropic_to_openai, response_openai_to_anthropic, usage,
    validate_request, Dialect,
};
use metaclaw_store::{TurnRecord, TurnStatus, TurnType};
use serde_json::Value;
use tracing::Instrument;

use super::error::ProxyError;
use super::inject::render_skills;
use super::policy::PolicyRegistry;
use super::policy_answer::{self, PolicyRequest};
use super::recorder::{TurnOutcome, TurnRecorder};
use super::relay::StreamRelay;
use super::session_meta::SessionMeta;
use super::ProxyState;
use crate::session::SessionTurn;
use crate::upstream::{error_chain, UpstreamClient, UpstreamError};

pub async fn handle(
    state: Arc<ProxyState>,
    client: Dialect,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let span = tracing::info_span!("request", id = %&request_id[20..], api = %client);
    let result = forward(&state, client, &headers, body, started, &request_id)
        .instrument(span.clone())
        .await;
    let mut response = result.unwrap_or_else(|error| {
        span.in_scope(
            || tracing::warn!(status = error.status().as_u16(), %error, "request failed"),
        );
        error.into_response(client)
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Who answers a request.
enum Route<'s> {
    Upstream(&'s UpstreamClient),
    /// A main turn in `rl`/`auto`: the policy being trained.
    Policy(Arc<PolicyRegistry>),
}

/// A client request that passed every check, ready to forward.
struct CheckedRequest {
    body: Value,
    meta: SessionMeta,
    model: String,
    stream: bool,
    include_usage: bool,
}

/// Authenticates, reads and checks the request; nothing is recorded for a
/// request refused here, since it never reached the upstream.
async fn check_request<'s>(
    state: &'s ProxyState,
    client: Dialect,
    headers: &HeaderMap,
    body: Body,
) -> Result<(CheckedRequest, Route<'s>), ProxyError> {
    state.check_auth(headers)?;
    let bytes = read_body(body, headers, state.config.proxy.max_body_mb).await?;
    let mut body: Value =
        serde_json::from_slice(&bytes).map_err(|e| ProxyError::BadJson(e.to_string()))?;
    validate_request(client, &body).map_err(|e| ProxyError::InvalidRequest(e.to_string()))?;
    let meta = SessionMeta::take(client, headers, &mut body)?;
    // Side turns (and every turn outside rl/auto) go to the upstream.
    let policy = match &state.policy {
        Some(policy) if meta.turn_type == TurnType::Main => Some(policy.clone()),
        _ => None,
    };
    let route = match policy {
        Some(policy) => Route::Policy(policy),
        None => {
            let upstream = state.upstream.as_ref().ok_or(ProxyError::NoUpstream)?;
            if let Some(model) = &upstream.target().model {
                body["model"] = Value::String(model.clone());
            }
            Route::Upstream(upstream)
        }
    };
    let model = match (&route, body.get("model").and_then(Value::as_str)) {
        (_, Some(model)) => model.to_string(),
        (Route::Policy(_), None) => state.config.rl.model.clone(),
        (Route::Upstream(_), None) => {
            return Err(ProxyError::InvalidRequest(
                "model: required (or set upstream.model to choose one for every request)".into(),
            ))
        }
    };
    let flag = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let (stream, include_usage) = (flag("/stream"), flag("/stream_options/include_usage"));
    let checked = CheckedRequest {
        body,
        meta,
        model,
        stream,
        include_usage,
    };
    Ok((checked, route))
}

async fn forward(
    state: &Arc<ProxyState>,
    client: Dialect,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
    request_id: &str,
) -> Result<Response, ProxyError> {
    let (checked, route) = check_request(state, client, headers, body).await?;
    let CheckedRequest {
        body: mut request,
        meta,
        model,
        stream,
        include_usage,
    } = checked;

    state.note_request();
    let session = state.open_turn(&meta);
    let injected_skills = if meta.turn_type == TurnType::Main && state.live_config().skills.enabled
    {
        inject_skills(state, client, &mut request)
    } else {
        Vec::new()
    };
    let upstream = match route {
        Route::Upstream(upstream) => upstream,
        Route::Policy(policy) => {
            let recorder = draft_recorder(
                state,
                DraftTurn {
                    client,
                    upstream_api: client,
                    request_json: request.to_string(),
                    model: &model,
                    stream,
                    started,
                    request_id,
                    injected_skills,
                },
                &meta,
                &session,
            );
            let request = PolicyRequest {
                client,
                body: &request,
                model: &model,
                stream,
                include_usage,
                session_id: &session.session_id,
                request_id,
            };
            return policy_answer::answer(state, &policy, request, recorder).await;
        }
    };
    let upstream_api = upstream.api();
    let upstream_request = match (client, upstream_api) {
        (Dialect::Anthropic, Dialect::OpenAi) => request_anthropic_to_openai(&request),
        (Dialect::OpenAi, Dialect::Anthropic) => request_openai_to_anthropic(&request),
        _ => Ok(request),
    }
    .map_err(|e| ProxyError::InvalidRequest(e.to_string()))?;
    let request_json = upstream_request.to_string();
    let upstream_bytes = Bytes::from(request_json.clone());
    let mut recorder = draft_recorder(
        state,
        DraftTurn {
            client,
            upstream_api,
            request_json,
            model: &model,
            stream,
            started,
            request_id,
            injected_skills,
        },
        &meta,
        &session,
    );

    let response = match upstream.send_chat(upstream_bytes, stream, headers).await {
        Ok(response) => response,
        Err(e) => return Err(fail(&mut recorder, e.into())),
    };
    let status = response.status();
    if !status.is_success() {
        if matches!(status.as_u16(), 401 | 403) {
            state.upstream_refused_key(status.as_u16());
        }
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let body = tokio::time::timeout(upstream.timeout, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        return Err(fail(
            &mut recorder,
            ProxyError::from_upstream_status(status, upstream_api, body, retry_after),
        ));
    }

    if stream {
        let relay = StreamRelay::new(
            response,
            upstream_api,
            client,
            include_usage,
            &model,
            recorder,
            upstream.timeout,
        );
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ];
        return Ok((
            StatusCode::OK,
            headers,
            Body::from_stream(relay.into_stream()),
        )
            .into_response());
    }

    let whole = match read_whole_answer(upstream, client, response).await {
        Ok(whole) => whole,
        Err(error) => return Err(fail(&mut recorder, error)),
    };
    recorder.finish(TurnOutcome {
        status: TurnStatus::Complete,
        http_status: Some(status.as_u16()),
        usage: usage(upstream_api, &whole.parsed),
        response_json: Some(String::from_utf8_lossy(&whole.received).into_owned()),
        ttfb_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
        error: None,
    });
    state.wait_for_commit().await;
    let headers = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    Ok((StatusCode::OK, headers, whole.for_client).into_response())
}

/// What the turn record needs beyond the session.
struct DraftTurn<'a> {
    client: Dialect,
    upstream_api: Dialect,
    request_json: String,
    model: &'a str,
    stream: bool,
    started: Instant,
    request_id: &'a str,
    injected_skills: Vec<String>,
}

/// The turn's recorder. The turn is stored as aborted unless it gets
/// further: `finish` fills in the outcome, and a dropped request (the
/// client left) keeps this.
fn draft_recorder(
    state: &Arc<ProxyState>,
    turn: DraftTurn<'_>,
    meta: &SessionMeta,
    session: &SessionTurn,
) -> TurnRecorder {
    let draft = TurnRecord {
        request_id: turn.request_id.to_string(),
        session_id: session.session_id.clone(),
        key_source: session.key_source.as_str().to_string(),
        turn_index: session.turn_index,
        turn_type: meta.turn_type,
        client_dialect: turn.client.to_string(),
        upstream_api: turn.upstream_api.to_string(),
        model: Some(turn.model.to_string()),
        stream: turn.stream,
        started_at_ms: crate::now_ms(),
        latency_ms: 0.0,
        ttfb_ms: None,
        status: TurnStatus::Aborted,
        http_status: None,
        prompt_tokens: None,
        completion_tokens: None,
        skill_generation: state.skill_generation(),
        injected_skills: turn.injected_skills,
        request_json: turn.request_json,
        response_json: None,
        error: None,
        session_key: session.key.clone(),
    };
    let ends_session = meta.done.then(|| meta.key.clone());
    TurnRecorder::new(draft, ends_session, turn.started, state.clone())
}

/// A non-streamed answer: as received, parsed, and as the client gets it.
struct WholeAnswer {
    received: Bytes,
    parsed: Value,
    for_client: Bytes,
}

async fn read_whole_answer(
    upstream: &UpstreamClient,
    client: Dialect,
    response: reqwest::Response,
) -> Result<WholeAnswer, ProxyError> {
    let received = tokio::time::timeout(upstream.timeout, response.bytes())
        .await
        .map_err(|_| UpstreamError::Timeout {
            url: upstream.chat_url(),
            secs: upstream.timeout.as_secs_f64(),
        })?
        .map_err(|e| {
            ProxyError::UpstreamInvalid(format!("reading the body failed: {}", error_chain(&e)))
        })?;
    let parsed: Value = serde_json::from_slice(&received)
        .map_err(|e| ProxyError::UpstreamInvalid(format!("not JSON: {e}")))?;
    let translated = match (upstream.api(), client) {
        (Dialect::OpenAi, Dialect::Anthropic) => Some(response_openai_to_anthropic(&parsed)),
        (Dialect::Anthropic, Dialect::OpenAi) => Some(response_anthropic_to_openai(&parsed)),
        _ => None,
    };
    let for_client = match translated {
        Some(result) => Bytes::from(
            result
                .map_err(|e| ProxyError::UpstreamInvalid(e.to_string()))?
                .to_string(),
        ),
        None => received.clone(),
    };
    Ok(WholeAnswer {
        received,
        parsed,
        for_client,
    })
}

/// Records the turn as an upstream failure and hands the error back.
fn fail(recorder: &mut TurnRecorder, error: ProxyError) -> ProxyError {
    recorder.finish(TurnOutcome::failed(
        TurnStatus::UpstreamError,
        Some(error.status().as_u16()),
        error.to_string(),
    ));
    error
}

/// Adds the skills that match the user's latest instruction to the system
/// prompt; returns their names, best first.
fn inject_skills(state: &ProxyState, client: Dialect, request: &mut Value) -> Vec<String> {
    let Some(instruction) = latest_instruction(client, request) else {
        return Vec::new();
    };
    let snapshot = state.library.snapshot();
    let hits = snapshot.search(&instruction, state.live_config().skills.top_k);
    if hits.is_empty() {
        return Vec::new();
    }
    inject_system_text(client, request, &render_skills(&hits));
    hits.iter().map(|hit| hit.skill.name.clone()).collect()
}

async fn read_body(body: Body, headers: &HeaderMap, limit_mb: f64) -> Result<Bytes, ProxyError> {
    let limit = (limit_mb * 1024.0 * 1024.0) as usize;
    let too_large = ProxyError::BodyTooLarge { limit_mb };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large);
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let is_limit = std::error::Error::source(&e)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if is_limit {
                Err(too_large)
            } else {
                Err(ProxyError::InvalidRequest(format!(
                    "could not read the request body: {e}"
                )))
            }
        }
    }
}
