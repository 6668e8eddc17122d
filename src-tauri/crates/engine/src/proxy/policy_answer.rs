//! Answers a main turn with the policy being trained (`rl`/`auto`): the
//! (skill-injected) request is rendered with the base model's chat
//! template and tokenized, sampled through the session's sampler, decoded
//! and parsed (Qwen3 `<think>` / `<tool_call>`), and answered in the
//! client's dialect, whole or as a stream. The turn is recorded as usual,
//! plus its prompt and response token ids, the sampler's log-probs and the
//! policy version: the trainer's training data.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use metaclaw_dialect::{encode_sse, Dialect, OpenAiToAnthropicStream, SseEvent, Usage};
use metaclaw_policy::{AssistantMessage, ResponseEvent};
use metaclaw_store::{RequestTokens, TrainingRecord, TurnStatus};
use metaclaw_tinker::{SamplingParams, Sequence, Stop, StopReason};
use serde_json::{json, Value};

use super::error::ProxyError;
use super::policy::PolicyRegistry;
use super::recorder::{TurnOutcome, TurnRecorder};
use super::ProxyState;

/// What the client asked for, besides the conversation.
pub(super) struct PolicyRequest<'a> {
    pub client: Dialect,
    /// The request as the policy sees it (skills injected).
    pub body: &'a Value,
    /// The model name reported back to the client.
    pub model: &'a str,
    pub stream: bool,
    pub include_usage: bool,
    pub session_id: &'a str,
    pub request_id: &'a str,
}

/// The sampled answer, parsed.
struct Sampled {
    prompt_tokens: Vec<u32>,
    sequence: Sequence,
    events: Vec<ResponseEvent>,
    message: AssistantMessage,
    policy_version: i64,
}

pub(super) async fn answer(
    state: &Arc<ProxyState>,
    policy: &PolicyRegistry,
    request: PolicyRequest<'_>,
    mut recorder: TurnRecorder,
) -> Result<Response, ProxyError> {
    let sampled = match sample(policy, &request).await {
        Ok(sampled) => sampled,
        Err(error) => {
            recorder.finish(TurnOutcome::failed(
                TurnStatus::UpstreamError,
                Some(error.status().as_u16()),
                error.to_string(),
            ));
            return Err(error);
        }
    };
    let whole = whole_response(&request, &sampled);
    let usage = Usage {
        prompt_tokens: Some(sampled.prompt_tokens.len() as u64),
        completion_tokens: Some(sampled.sequence.tokens.len() as u64),
    };
    let ttfb_ms = Some(recorder.started().elapsed().as_secs_f64() * 1000.0);
    let outcome = TurnOutcome {
        status: TurnStatus::Complete,
        http_status: Some(200),
        usage,
        response_json: Some(whole.to_string()),
        ttfb_ms,
        error: None,
    };
    let tokens = RequestTokens {
        request_id: request.request_id.to_string(),
        prompt_tokens: sampled.prompt_tokens.clone(),
        response_tokens: sampled.sequence.tokens.clone(),
        logprobs: sampled.sequence.logprobs.clone(),
        policy_version: sampled.policy_version,
    };

    if !request.stream {
        record(&mut recorder, outcome, tokens);
        state.wait_for_commit().await;
        let headers = [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )];
        return Ok((StatusCode::OK, headers, whole.to_string()).into_response());
    }

    // `asample` is not incremental: the whole completion is sampled first,
    // then its parsed events go out as a stream. The last event waits for
    // the turn's commit; a client that leaves before it gets the turn
    // recorded as aborted (by the recorder's drop), without tokens.
    let mut chunks = stream_chunks(&request, &sampled);
    let last = chunks.pop().unwrap_or_default();
    let state = state.clone();
    let tail = futures_util::stream::once(async move {
        record(&mut recorder, outcome, tokens);
        state.wait_for_commit().await;
        Ok::<Bytes, Infallible>(last)
    });
    let body =
        futures_util::stream::iter(chunks.into_iter().map(Ok::<Bytes, Infallible>)).chain(tail);
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    Ok((StatusCode::OK, headers, Body::from_stream(body)).into_response())
}

/// Records the turn, then its tokens (the store finds the turn by its
/// request id, so the tokens go second).
fn record(recorder: &mut TurnRecorder, outcome: TurnOutcome, tokens: RequestTokens) {
    recorder.finish(outcome);
    recorder
        .state()
        .store
        .record_training(TrainingRecord::RequestTokens(tokens));
}

async fn sample(
    policy: &PolicyRegistry,
    request: &PolicyRequest<'_>,
) -> Result<Sampled, ProxyError> {
    let codec = policy.codec();
    let prompt = codec.prompt(request.client, request.body).map_err(|e| {
        ProxyError::InvalidRequest(format!(
            "cannot render the conversation with the model's chat template: {e}"
        ))
    })?;
    let params = sampling_params(policy, codec.stop_token_ids(), request.body);
    let unavailable =
        |e: metaclaw_tinker::TinkerError| ProxyError::PolicyUnavailable(e.to_string());
    let sampler = policy
        .sampler_for(request.session_id)
        .await
        .map_err(unavailable)?;
    let sequence = sampler
        .sampler
        .sample(&prompt.token_ids, 1, &params)
        .await
        .map_err(unavailable)?
        .into_iter()
        .next()
        .ok_or_else(|| ProxyError::PolicyInvalid("the sampler returned no sequence".into()))?;
    let mut parser = codec.response_stream(&prompt);
    let mut events = Vec::new();
    for &id in &sequence.tokens {
        events.extend(
            parser
                .push_token(id)
                .map_err(|e| ProxyError::PolicyInvalid(e.to_string()))?,
        );
    }
    let (last, message) = parser.finish();
    events.extend(last);
    for warning in &message.warnings {
        tracing::warn!(problem = %warning.problem, "the policy's answer has malformed markup");
    }
    Ok(Sampled {
        prompt_tokens: prompt.token_ids,
        sequence,
        events,
        message,
        policy_version: sampler.version,
    })
}

/// The client's `max_tokens` (else `rl.max_tokens`), temperature and
/// top-p; sampling stops at the model's stop tokens.
fn sampling_params(policy: &PolicyRegistry, stop_ids: &[u32], body: &Value) -> SamplingParams {
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|key| body.get(*key).and_then(Value::as_u64))
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(policy.max_tokens);
    let mut params = SamplingParams {
        max_tokens: Some(max_tokens),
        stop: (!stop_ids.is_empty()).then(|| Stop::Tokens(stop_ids.to_vec())),
        ..SamplingParams::default()
    };
    if let Some(t) = body.get("temperature").and_then(Value::as_f64) {
        params.temperature = t;
    }
    if let Some(p) = body.get("top_p").and_then(Value::as_f64) {
        params.top_p = p;
    }
    params
}

fn hit_limit(sampled: &Sampled) -> bool {
    sampled.sequence.stop_reason == StopReason::Length
}

fn call_id(request: &PolicyRequest<'_>, index: usize) -> String {
    match request.client {
        Dialect::OpenAi => format!("call_{}_{index}", request.request_id),
        Dialect::Anthropic => format!("toolu_{}_{index}", request.request_id),
    }
}

fn created() -> i64 {
    crate::now_ms() / 1000
}

fn openai_usage(sampled: &Sampled) -> Value {
    let (prompt, completion) = (sampled.prompt_tokens.len(), sampled.sequence.tokens.len());
    json!({"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": prompt + completion})
}

/// The complete answer in the client's dialect.
fn whole_response(request: &PolicyRequest<'_>, sampled: &Sampled) -> Value {
    let message = &sampled.message;
    let ids = |i| call_id(request, i);
    match request.client {
        Dialect::OpenAi => json!({
            "id": format!("chatcmpl-{}", request.request_id),
            "object": "chat.completion",
            "created": created(),
            "model": request.model,
            "choices": [{
                "index": 0,
                "message": message.to_openai_message(ids),
                "finish_reason": message.finish_reason(hit_limit(sampled)),
                "logprobs": null,
            }],
            "usage": openai_usage(sampled),
        }),
        Dialect::Anthropic => {
            let stop_reason = match message.finish_reason(hit_limit(sampled)) {
                "length" => "max_tokens",
                "tool_calls" => "tool_use",
                _ => "end_turn",
            };
            json!({
                "id": format!("msg_{}", request.request_id),
                "type": "message",
                "role": "assistant",
                "model": request.model,
                "content": message.to_anthropic_content(ids),
                "stop_reason": stop_reason,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": sampled.prompt_tokens.len(),
                    "output_tokens": sampled.sequence.tokens.len(),
                },
            })
        }
    }
}

/// The answer as the SSE events of the client's dialect: OpenAI
/// `chat.completion.chunk`s (translated to Anthropic's events for an
/// Anthropic client), one per parsed event.
fn stream_chunks(request: &PolicyRequest<'_>, sampled: &Sampled) -> Vec<Bytes> {
    let id = format!("chatcmpl-{}", request.request_id);
    let created = created();
    let chunk = |choices: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created,
               "model": request.model, "choices": choices})
    };
    let mut openai = vec![chunk(json!([{
        "index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null
    }]))];
    for event in &sampled.events {
        let delta = event.to_openai_delta(|i| call_id(request, i));
        openai.push(chunk(
            json!([{"index": 0, "delta": delta, "finish_reason": null}]),
        ));
    }
    let finish_reason = sampled.message.finish_reason(hit_limit(sampled));
    openai.push(chunk(
        json!([{"index": 0, "delta": {}, "finish_reason": finish_reason}]),
    ));
    // The Anthropic translation takes its token counts from the usage chunk.
    if request.include_usage || request.client == Dialect::Anthropic {
        let mut last = chunk(json!([]));
        last["usage"] = openai_usage(sampled);
        openai.push(last);
    }
    let mut data: Vec<String> = openai.iter().map(Value::to_string).collect();
    data.push("[DONE]".to_string());
    match request.client {
        Dialect::OpenAi => data.iter().map(|d| encode_sse(None, d)).collect(),
        Dialect::Anthropic => {
            let mut translate = OpenAiToAnthropicStream::new(request.model);
            let mut out = Vec::new();
            for d in &data {
                // Our own chunks: they always translate.
                out.extend(
                    translate
                        .push(&SseEvent::new(None, d.as_str()))
                        .unwrap_or_default(),
                );
            }
            out.extend(translate.finish());
            out
        }
    }
}
