//! Live stream translation: Anthropic Messages events in, OpenAI `chat.completion.chunk` events out.
//!
//! Anthropic numbers content blocks across text and tools; OpenAI numbers
//! tool calls only, so each `tool_use` block gets the next tool-call index
//! and its `input_json_delta` fragments are routed there. The usage is
//! split over `message_start` (input) and `message_delta` (output), so the
//! optional usage chunk is sent at `message_stop`, once both are known.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::{encode_sse, ids, stop_reason, usage, SseEvent, TranslateError};

/// Translates one upstream Anthropic stream into OpenAI SSE bytes.
#[derive(Debug)]
pub struct AnthropicToOpenAiStream {
    include_usage: bool,
    id: String,
    created: u64,
    model: Value,
    started: bool,
    /// `[DONE]` has been sent; nothing may follow.
    done: bool,
    finish_sent: bool,
    /// (Anthropic block index, OpenAI tool-call index) per tool_use block.
    tools: Vec<(u64, usize)>,
    /// Anthropic usage fields merged from message_start and message_delta.
    usage: Map<String, Value>,
}

impl AnthropicToOpenAiStream {
    /// `include_usage`: the client asked for `stream_options.include_usage`
    /// and wants the final `choices: []` usage chunk.
    pub fn new(include_usage: bool) -> Self {
        AnthropicToOpenAiStream {
            include_usage,
            id: String::new(),
            created: ids::unix_now(),
            model: Value::Null,
            started: false,
            done: false,
            finish_sent: false,
            tools: Vec::new(),
            usage: Map::new(),
        }
    }

    /// Translate one upstream event into zero or more client events.
    pub fn push(&mut self, ev: &SseEvent) -> Result<Vec<Bytes>, TranslateError> {
        let data = ev.data.trim();
        if self.done || data.is_empty() {
            return Ok(Vec::new());
        }
        let name = ev.event.as_deref().unwrap_or("");
        let v: Value = serde_json::from_str(data)
            .map_err(|e| TranslateError::invalid_json(format!("stream event \"{name}\""), &e))?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(name);
        let mut out = Vec::new();
        match kind {
            "message_start" => {
                let message = v.get("message").unwrap_or(&Value::Null);
                self.id = ids::openai_completion_id(
                    message.get("id").and_then(Value::as_str).unwrap_or(""),
                );
                self.model = message.get("model").cloned().unwrap_or(Value::Null);
                self.merge_usage(message.get("usage"));
                self.start(&mut out);
            }
            "content_block_start" => {
                self.start(&mut out);
                let block = v.get("content_block").unwrap_or(&Value::Null);
                let text = |key: &str| {
                    block
                        .get(key)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                };
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = text("text") {
                            out.push(self.chunk(json!({"content": t}), Value::Null));
                        }
                    }
                    Some("thinking") => {
                        if let Some(t) = text("thinking") {
                            out.push(self.chunk(json!({"reasoning_content": t}), Value::Null));
                        }
                    }
                    Some("tool_use") => {
                        let k = self.tools.len();
                        self.tools
                            .push((v.get("index").and_then(Value::as_u64).unwrap_or(0), k));
                        // The API starts with `input: {}` and streams the JSON;
                        // some compatible servers send the whole input here.
                        let arguments = block
                            .get("input")
                            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                            .map_or_else(String::new, Value::to_string);
                        let call = json!({
                            "index": k,
                            "id": block.get("id").cloned().unwrap_or(Value::Null),
                            "type": "function",
                            "function": {
                                "name": block.get("name").cloned().unwrap_or(Value::Null),
                                "arguments": arguments,
                            },
                        });
                        out.push(self.chunk(json!({"tool_calls": [call]}), Value::Null));
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                self.start(&mut out);
                let delta = v.get("delta").unwrap_or(&Value::Null);
                let field = |key: &str| {
                    delta
                        .get(key)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                };
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(t) = field("text") {
                            out.push(self.chunk(json!({"content": t}), Value::Null));
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = field("thinking") {
                            out.push(self.chunk(json!({"reasoning_content": t}), Value::Null));
                        }
                    }
                    Some("input_json_delta") => {
                        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let tool = self
                            .tools
                            .iter()
                            .find(|(b, _)| *b == index)
                            .map(|(_, k)| *k);
                        if let (Some(k), Some(fragment)) = (tool, field("partial_json")) {
                            let call = json!({"index": k, "function": {"arguments": fragment}});
                            out.push(self.chunk(json!({"tool_calls": [call]}), Value::Null));
                        }
                    }
                    // signature_delta, citations_delta: nothing OpenAI shows.
                    _ => {}
                }
            }
            "message_delta" => {
                self.start(&mut out);
                self.merge_usage(v.get("usage"));
                let reason = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                    .map_or("stop", stop_reason::to_openai);
                out.push(self.chunk(json!({}), json!(reason)));
                self.finish_sent = true;
            }
            "message_stop" => {
                self.start(&mut out);
                if !self.finish_sent {
                    out.push(self.chunk(json!({}), json!("stop")));
                    self.finish_sent = true;
                }
                if self.include_usage {
                    out.push(self.usage_chunk());
                }
                out.push(self.end());
            }
            "error" => {
                let err = v.get("error").unwrap_or(&Value::Null);
                let payload = json!({"error": {
                    "message": err.get("message").and_then(Value::as_str).unwrap_or("upstream stream error"),
                    "type": err.get("type").and_then(Value::as_str).unwrap_or("api_error"),
                }});
                out.push(encode_sse(None, &payload.to_string()));
                out.push(self.end());
            }
            // ping, content_block_stop and event types added later.
            _ => {}
        }
        Ok(out)
    }

    /// The upstream ended: make sure the client sees `[DONE]`.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            Vec::new()
        } else {
            vec![self.end()]
        }
    }

    /// The first chunk carries the role, as OpenAI's does.
    fn start(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            if self.id.is_empty() {
                self.id = ids::generated("chatcmpl-");
            }
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
        }
    }

    fn merge_usage(&mut self, usage: Option<&Value>) {
        if let Some(fields) = usage.and_then(Value::as_object) {
            for (k, v) in fields {
                if !v.is_null() {
                    self.usage.insert(k.clone(), v.clone());
                }
            }
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Value) -> Bytes {
        let payload = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        encode_sse(None, &payload.to_string())
    }

    fn usage_chunk(&self) -> Bytes {
        let payload = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [], "usage": usage::anthropic_to_openai(&Value::Object(self.usage.clone())),
        });
        encode_sse(None, &payload.to_string())
    }

    fn end(&mut self) -> Bytes {
        self.done = true;
        encode_sse(None, "[DONE]")
    }
}

#[cfg(test)]
#[path = "stream_anthropic_to_openai_tests.rs"]
mod tests;
