//! Answers a main turn with the policy being trained (`rl`/`auto`): the
//! (skill-injected) request is rendered with the base model's chat
//! template and tokenized, sampled through the session's sampler, decoded
//! and parsed (Qwen3 `<think>` / `<tool_call>`), and answered in the
//! client's dialect, whole or as a stream. The turn is recorded as usual,
//! plus its prompt and response token ids, the sampler's log-probs and the
//! policy version: the trainer's training data.
//!
//! The client's sampling settings the service understands go with the
//! sample request: `max_tokens` / `max_completion_tokens`, `temperature`,
//! `top_p`, `top_k`, `seed` and stop strings (OpenAI `stop`, Anthropic
//! `stop_sequences`, also enforced here, so an answer never shows one).
//! One sample per request: `n` above 1 is refused.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use metaclaw_dialect::{encode_sse, Dialect, OpenAiToAnthropicStream, SseEvent, Usage};
use metaclaw_policy::ChatCodec;
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
            // A request the proxy refused is not the service's failure.
            let status = match error {
                ProxyError::InvalidRequest(_) => TurnStatus::ProxyError,
                _ => TurnStatus::UpstreamError,
            };
            recorder.finish(TurnOutcome::failed(
                status,
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
    let client = ClientSampling::read(request.body, policy.max_tokens)?;
    let prompt = codec.prompt(request.client, request.body).map_err(|e| {
        ProxyError::InvalidRequest(format!(
            "cannot render the conversation with the model's chat template: {e}"
        ))
    })?;
    let params = client.params(codec);
    let unavailable =
        |e: metaclaw_tinker::TinkerError| ProxyError::PolicyUnavailable(e.to_string());
    let sampler = policy
        .sampler_for(request.session_id)
        .await
        .map_err(unavailable)?;
    let mut sequence = sampler
        .sampler
        .sample(&prompt.token_ids, 1, &params)
        .await
        .map_err(unavailable)?
        .into_iter()
        .next()
        .ok_or_else(|| ProxyError::PolicyInvalid("the sampler returned no sequence".into()))?;
    let mut parser = codec
        .response_stream(&prompt)
        .with_stop_strings(&client.stop);
    let mut events = Vec::new();
    for &id in &sequence.tokens {
        events.extend(
            parser
                .push_token(id)
                .map_err(|e| ProxyError::PolicyInvalid(e.to_string()))?,
        );
    }
    // Tokens after the end (a service that sampled past a stop) were
    // never part of the answer: they are neither shown nor trained on.
    if let Some(end) = parser.stopped_after() {
        if end < sequence.tokens.len() {
            sequence.tokens.truncate(end);
            sequence.logprobs.truncate(end);
            sequence.stop_reason = StopReason::Stop;
        }
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

/// The sampling settings a client's request carries (both dialects use
/// the same names, except Anthropic's `stop_sequences`).
#[derive(Debug, Clone, PartialEq)]
struct ClientSampling {
    max_tokens: u32,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<i32>,
    seed: Option<i64>,
    stop: Vec<String>,
}

impl ClientSampling {
    /// Reads and checks them; `default_max` is `rl.max_tokens`. A value
    /// the service would refuse is the client's error (400), named here.
    fn read(body: &Value, default_max: u32) -> Result<ClientSampling, ProxyError> {
        let bad =
            |key: &str, what: &str| ProxyError::InvalidRequest(format!("{key}: must be {what}"));
        let present = |key: &str| body.get(key).filter(|v| !v.is_null());
        if let Some(n) = present("n") {
            if n.as_u64() != Some(1) {
                return Err(ProxyError::InvalidRequest(format!(
                    "n: is {n}, but the policy being trained answers with one sample per \
                     request in rl and auto modes (send n = 1 or leave it out)"
                )));
            }
        }
        let mut max_tokens = default_max;
        for key in ["max_tokens", "max_completion_tokens"] {
            if let Some(value) = present(key) {
                max_tokens = value
                    .as_u64()
                    .filter(|&n| n >= 1)
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                    .ok_or_else(|| bad(key, "a whole number of tokens of at least 1"))?;
            }
        }
        let number = |key: &str| -> Result<Option<f64>, ProxyError> {
            present(key)
                .map(|v| {
                    v.as_f64()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| bad(key, "a number"))
                })
                .transpose()
        };
        let temperature = number("temperature")?;
        if temperature.is_some_and(|t| t < 0.0) {
            return Err(bad("temperature", "a number of at least 0"));
        }
        let top_p = number("top_p")?;
        if top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
            return Err(bad("top_p", "a number greater than 0 and at most 1"));
        }
        let top_k = match present("top_k") {
            None => None,
            // 0 and -1 both mean "no top-k cut" (vLLM); the service wants -1.
            Some(v) => match v.as_i64() {
                Some(-1 | 0) => Some(-1),
                Some(k) if k > 0 => Some(i32::try_from(k).unwrap_or(i32::MAX)),
                _ => return Err(bad("top_k", "a whole number (0 or -1: no cut)")),
            },
        };
        let seed = present("seed")
            .map(|v| v.as_i64().ok_or_else(|| bad("seed", "a whole number")))
            .transpose()?;
        let mut stop = Vec::new();
        for key in ["stop", "stop_sequences"] {
            match present(key) {
                None => {}
                Some(Value::String(s)) => stop.push(s.clone()),
                Some(Value::Array(items)) => {
                    for item in items {
                        let s = item
                            .as_str()
                            .ok_or_else(|| bad(key, "a string or a list of strings"))?;
                        stop.push(s.to_owned());
                    }
                }
                Some(_) => return Err(bad(key, "a string or a list of strings")),
            }
        }
        stop.retain(|s| !s.is_empty());
        Ok(ClientSampling {
            max_tokens,
            temperature,
            top_p,
            top_k,
            seed,
            stop,
        })
    }

    /// The sample request's parameters. Without client stop strings the
    /// sampler stops at the model's stop tokens (ids); with them it is
    /// given strings, the client's and the stop tokens' texts (the wire
    /// takes one kind or the other).
    fn params(&self, codec: &ChatCodec) -> SamplingParams {
        let defaults = SamplingParams::default();
        let stop = if self.stop.is_empty() {
            let ids = codec.stop_token_ids();
            (!ids.is_empty()).then(|| Stop::Tokens(ids.to_vec()))
        } else {
            let mut strings = self.stop.clone();
            strings.extend(codec.stop_token_texts());
            Some(Stop::Strings(strings))
        };
        SamplingParams {
            max_tokens: Some(self.max_tokens),
            seed: self.seed,
            stop,
            temperature: self.temperature.unwrap_or(defaults.temperature),
            top_k: self.top_k.unwrap_or(defaults.top_k),
            top_p: self.top_p.unwrap_or(defaults.top_p),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> Result<ClientSampling, String> {
        ClientSampling::read(&body, 2048).map_err(|e| e.to_string())
    }

    #[test]
    fn client_sampling_settings_are_read_and_checked() {
        assert_eq!(
            read(json!({"messages": []})).unwrap(),
            ClientSampling {
                max_tokens: 2048,
                temperature: None,
                top_p: None,
                top_k: None,
                seed: None,
                stop: vec![],
            }
        );
        let openai = read(json!({"max_completion_tokens": 64, "temperature": 0.2,
            "top_p": 0.9, "top_k": 40, "seed": -7, "stop": ["\n\n", ""], "n": 1}))
        .unwrap();
        assert_eq!(
            (
                openai.max_tokens,
                openai.temperature,
                openai.top_p,
                openai.top_k,
                openai.seed
            ),
            (64, Some(0.2), Some(0.9), Some(40), Some(-7))
        );
        assert_eq!(openai.stop, ["\n\n"]);
        let anthropic =
            read(json!({"max_tokens": 10, "top_k": 0, "stop_sequences": ["END"]})).unwrap();
        assert_eq!(
            (anthropic.top_k, anthropic.stop),
            (Some(-1), vec!["END".to_owned()])
        );
        assert_eq!(read(json!({"stop": "###"})).unwrap().stop, ["###"]);
        for (body, message) in [
            (
                json!({"n": 2}),
                "n: is 2, but the policy being trained answers with one sample",
            ),
            (
                json!({"max_tokens": 0}),
                "max_tokens: must be a whole number",
            ),
            (
                json!({"temperature": -1}),
                "temperature: must be a number of at least 0",
            ),
            (
                json!({"temperature": "hot"}),
                "temperature: must be a number",
            ),
            (
                json!({"top_p": 0}),
                "top_p: must be a number greater than 0",
            ),
            (json!({"top_k": 1.5}), "top_k: must be a whole number"),
            (json!({"seed": "x"}), "seed: must be a whole number"),
            (
                json!({"stop": [1]}),
                "stop: must be a string or a list of strings",
            ),
        ] {
            let error = read(body).unwrap_err();
            assert!(error.contains(message), "{error}");
        }
    }
}
