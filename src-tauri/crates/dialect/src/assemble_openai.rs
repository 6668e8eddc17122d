//! Folds an OpenAI chat-completion stream into the equivalent non-streaming `chat.completion`, for recording.
//!
//! Lenient by design: the recorder must keep whatever the client saw, so
//! malformed chunks are skipped rather than failing the whole turn.

use serde_json::{json, Map, Value};

use crate::{SseEvent, TranslateError};

/// Most choices one stream may carry; `n` is tiny in practice.
const MAX_INDEX: usize = 128;

/// Accumulates the chunks of one OpenAI stream.
#[derive(Debug, Default)]
pub struct OpenAiStreamAssembler {
    id: Option<Value>,
    created: Option<Value>,
    model: Option<Value>,
    system_fingerprint: Option<Value>,
    choices: Vec<ChoiceState>,
    usage: Option<Value>,
    error: Option<String>,
    done: bool,
}

#[derive(Debug, Default)]
struct ChoiceState {
    content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<ToolCallState>,
    finish_reason: Value,
}

#[derive(Debug, Default)]
struct ToolCallState {
    index: u64,
    id: String,
    name: String,
    arguments: String,
}

impl OpenAiStreamAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one upstream event. A chunk that is not JSON is skipped (what
    /// arrived so far is still assembled) and reported, so the caller can
    /// decide whether the stream is still usable.
    pub fn push(&mut self, ev: &SseEvent) -> Result<(), TranslateError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk = serde_json::from_str::<Value>(data)
            .map_err(|e| TranslateError::invalid_json("stream chunk", &e))?;
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| err.as_str());
            self.error = Some(message.unwrap_or("upstream stream error").to_owned());
            return Ok(());
        }
        for (slot, key) in [
            (&mut self.id, "id"),
            (&mut self.created, "created"),
            (&mut self.model, "model"),
            (&mut self.system_fingerprint, "system_fingerprint"),
        ] {
            if slot.is_none() {
                *slot = chunk.get(key).filter(|v| !v.is_null() && *v != "").cloned();
            }
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.choice(choice);
        }
        Ok(())
    }

    fn choice(&mut self, choice: &Value) {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        // The index comes from the upstream; an absurd one must not allocate.
        if index >= MAX_INDEX {
            return;
        }
        if index >= self.choices.len() {
            self.choices.resize_with(index + 1, ChoiceState::default);
        }
        let state = &mut self.choices[index];
        if let Some(delta) = choice.get("delta") {
            append(&mut state.content, delta.get("content"));
            append(&mut state.reasoning, delta.get("reasoning_content"));
            append(&mut state.reasoning, delta.get("reasoning"));
            append(&mut state.refusal, delta.get("refusal"));
            for (position, call) in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                merge_tool_call(&mut state.tool_calls, position as u64, call);
            }
        }
        if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
            state.finish_reason = reason.clone();
        }
    }

    /// `[DONE]` has been seen: the stream ended normally.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The message of an in-stream `{"error":…}` chunk, if one came.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The `chat.completion` the same request would have returned without
    /// streaming (as far as the stream got).
    pub fn finish(self) -> Value {
        let mut choices = self.choices;
        if choices.is_empty() {
            choices.push(ChoiceState::default());
        }
        let choices: Vec<Value> = choices
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut message = Map::new();
                message.insert("role".into(), json!("assistant"));
                message.insert("content".into(), c.content.map_or(Value::Null, Value::String));
                if let Some(r) = c.refusal {
                    message.insert("refusal".into(), Value::String(r));
                }
                if let Some(r) = c.reasoning {
                    message.insert("reasoning_content".into(), Value::String(r));
                }
                if !c.tool_calls.is_empty() {
                    let calls = c
                        .tool_calls
                        .into_iter()
                        .map(|t| json!({"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}))
                        .collect();
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                json!({"index": i, "message": message, "logprobs": null, "finish_reason": c.finish_reason})
            })
            .collect();
        let mut out = Map::new();
        out.insert("id".into(), self.id.unwrap_or_else(|| json!("")));
        out.insert("object".into(), json!("chat.completion"));
        out.insert("created".into(), self.created.unwrap_or_else(|| json!(0)));
        out.insert("model".into(), self.model.unwrap_or(Value::Null));
        if let Some(fp) = self.system_fingerprint {
            out.insert("system_fingerprint".into(), fp);
        }
        out.insert("choices".into(), Value::Array(choices));
        if let Some(u) = self.usage {
            out.insert("usage".into(), u);
        }
        Value::Object(out)
    }
}

fn append(slot: &mut Option<String>, piece: Option<&Value>) {
    if let Some(s) = piece.and_then(Value::as_str) {
        slot.get_or_insert_with(String::new).push_str(s);
    }
}

/// Tool-call fragments are keyed by `index`; `id`, `type` and `name` come
/// once (some servers repeat them, so they are set, not appended), the
/// `arguments` string is concatenated.
fn merge_tool_call(calls: &mut Vec<ToolCallState>, position: u64, call: &Value) {
    let index = call
        .get("index")
        .and_then(Value::as_u64)
        .unwrap_or(position);
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let existing = calls
        .iter()
        .rposition(|c| c.index == index)
        .filter(|&i| id.is_none_or(|id| calls[i].id.is_empty() || calls[i].id == id));
    let slot = match existing {
        Some(i) => i,
        None => {
            calls.push(ToolCallState {
                index,
                ..ToolCallState::default()
            });
            calls.len() - 1
        }
    };
    let state = &mut calls[slot];
    if let Some(id) = id {
        state.id = id.to_owned();
    }
    if let Some(f) = call.get("function") {
        if let Some(name) = f
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            state.name = name.to_owned();
        }
        if let Some(args) = f.get("arguments").and_then(Value::as_str) {
            state.arguments.push_str(args);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(a: &mut OpenAiStreamAssembler, v: Value) {
        a.push(&SseEvent::new(None, v.to_string())).unwrap();
    }

    #[test]
    fn merges_tool_calls_and_usage() {
        let mut a = OpenAiStreamAssembler::new();
        let base = |d: Value, f: Value| {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": d, "finish_reason": f}]})
        };
        feed(
            &mut a,
            base(json!({"role": "assistant", "content": ""}), Value::Null),
        );
        feed(&mut a, base(json!({"content": "Sure."}), Value::Null));
        feed(
            &mut a,
            base(
                json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
                Value::Null,
            ),
        );
        feed(
            &mut a,
            base(
                json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}),
                Value::Null,
            ),
        );
        feed(
            &mut a,
            base(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":"}}]}),
                Value::Null,
            ),
        );
        feed(
            &mut a,
            base(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
                Value::Null,
            ),
        );
        feed(&mut a, base(json!({}), json!("tool_calls")));
        feed(
            &mut a,
            json!({"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}),
        );
        assert!(a.push(&SseEvent::new(None, "not json")).is_err());
        assert!(!a.is_done());
        a.push(&SseEvent::new(None, "[DONE]")).unwrap();
        assert!(a.is_done());
        assert_eq!(a.error(), None);
        assert_eq!(
            a.finish(),
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "gpt-4o",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sure.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}
                ]}, "logprobs": null, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
            })
        );
    }

    #[test]
    fn records_errors_and_partial_streams() {
        let mut a = OpenAiStreamAssembler::new();
        feed(
            &mut a,
            json!({"id": "x", "choices": [{"index": 0, "delta": {"content": "par"}}]}),
        );
        feed(&mut a, json!({"error": {"message": "upstream timeout"}}));
        assert_eq!(a.error(), Some("upstream timeout"));
        let out = a.finish();
        assert_eq!(out["choices"][0]["message"]["content"], "par");
        assert_eq!(out["choices"][0]["finish_reason"], Value::Null);
        assert!(out.get("usage").is_none());
    }
}
