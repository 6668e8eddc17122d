//! Folds an Anthropic Messages stream into the equivalent non-streaming `message`, for recording.
//!
//! Lenient by design: the recorder must keep whatever the client saw, so
//! malformed events are skipped rather than failing the whole turn.

use serde_json::{json, Map, Value};

use crate::{SseEvent, TranslateError};

/// Most content blocks one message may carry; the index comes from the
/// upstream and an absurd one must not allocate.
const MAX_BLOCKS: usize = 4096;

/// Accumulates the events of one Anthropic stream.
#[derive(Debug, Default)]
pub struct AnthropicStreamAssembler {
    message: Option<Map<String, Value>>,
    /// Content blocks by their stream index.
    blocks: Vec<Option<Value>>,
    /// Concatenated `partial_json` of tool-use blocks, by stream index.
    tool_json: Vec<Option<String>>,
    error: Option<String>,
    done: bool,
}

impl AnthropicStreamAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one upstream event. An event that is not JSON is skipped (what
    /// arrived so far is still assembled) and reported, so the caller can
    /// decide whether the stream is still usable.
    pub fn push(&mut self, ev: &SseEvent) -> Result<(), TranslateError> {
        let v = serde_json::from_str::<Value>(ev.data.trim())
            .map_err(|e| TranslateError::invalid_json("stream event", &e))?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or("");
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        match kind {
            "message_start" => {
                if let Some(m) = v.get("message").and_then(Value::as_object) {
                    self.message = Some(m.clone());
                }
            }
            "content_block_start" if index < MAX_BLOCKS => {
                if let Some(block) = v.get("content_block") {
                    self.slot(index);
                    if block
                        .get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.ends_with("tool_use"))
                    {
                        self.tool_json[index] = Some(String::new());
                    }
                    self.blocks[index] = Some(block.clone());
                }
            }
            "content_block_delta" => self.delta(index, v.get("delta").unwrap_or(&Value::Null)),
            "content_block_stop" => self.settle_tool_input(index),
            "message_delta" => {
                let message = self.message.get_or_insert_with(Map::new);
                if let Some(delta) = v.get("delta").and_then(Value::as_object) {
                    for (k, val) in delta {
                        message.insert(k.clone(), val.clone());
                    }
                }
                if let Some(fields) = v.get("usage").and_then(Value::as_object) {
                    let usage = message.entry("usage").or_insert_with(|| json!({}));
                    if let Some(usage) = usage.as_object_mut() {
                        for (k, val) in fields.iter().filter(|(_, val)| !val.is_null()) {
                            usage.insert(k.clone(), val.clone());
                        }
                    }
                }
            }
            "message_stop" => self.done = true,
            "error" => {
                let message = v
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str);
                self.error = Some(message.unwrap_or("upstream stream error").to_owned());
            }
            _ => {}
        }
        Ok(())
    }

    fn slot(&mut self, index: usize) {
        if index >= self.blocks.len() {
            self.blocks.resize(index + 1, None);
            self.tool_json.resize(index + 1, None);
        }
    }

    fn delta(&mut self, index: usize, delta: &Value) {
        let Some(Some(block)) = self.blocks.get_mut(index) else {
            return;
        };
        let field = |key: &str| delta.get(key).and_then(Value::as_str).unwrap_or("");
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => append(block, "text", field("text")),
            Some("thinking_delta") => append(block, "thinking", field("thinking")),
            Some("signature_delta") => append(block, "signature", field("signature")),
            Some("input_json_delta") => {
                if let Some(Some(buf)) = self.tool_json.get_mut(index) {
                    buf.push_str(field("partial_json"));
                }
            }
            Some("citations_delta") => {
                if let (Some(c), Some(obj)) = (delta.get("citation"), block.as_object_mut()) {
                    let list = obj.entry("citations").or_insert_with(|| json!([]));
                    if let Some(list) = list.as_array_mut() {
                        list.push(c.clone());
                    }
                }
            }
            _ => {}
        }
    }

    /// Parse a tool block's accumulated JSON into its `input`. Input that
    /// does not parse (a stream cut mid-call) is kept as the raw string so
    /// the recording shows what arrived.
    fn settle_tool_input(&mut self, index: usize) {
        let Some(json_text) = self.tool_json.get_mut(index).and_then(Option::take) else {
            return;
        };
        let Some(Some(Value::Object(block))) = self.blocks.get_mut(index) else {
            return;
        };
        if json_text.trim().is_empty() {
            return; // keep the `input` from content_block_start (usually {})
        }
        let input = serde_json::from_str(&json_text).unwrap_or(Value::String(json_text));
        block.insert("input".into(), input);
    }

    /// `message_stop` has been seen: the stream ended normally.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The message of an in-stream `error` event, if one came.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The `message` the same request would have returned without
    /// streaming (as far as the stream got).
    pub fn finish(mut self) -> Value {
        for i in 0..self.tool_json.len() {
            self.settle_tool_input(i);
        }
        let mut message = self.message.take().unwrap_or_default();
        for (key, default) in [("type", json!("message")), ("role", json!("assistant"))] {
            message.entry(key).or_insert(default);
        }
        let content: Vec<Value> = self.blocks.into_iter().flatten().collect();
        message.insert("content".into(), Value::Array(content));
        message.entry("stop_reason").or_insert(Value::Null);
        Value::Object(message)
    }
}

fn append(block: &mut Value, key: &str, piece: &str) {
    if let Some(obj) = block.as_object_mut() {
        match obj.get_mut(key) {
            Some(Value::String(s)) => s.push_str(piece),
            _ => {
                obj.insert(key.into(), Value::String(piece.to_owned()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(a: &mut AnthropicStreamAssembler, v: Value) {
        let name = v["type"].as_str().unwrap_or("").to_owned();
        a.push(&SseEvent::new(Some(&name), v.to_string())).unwrap();
    }

    #[test]
    fn assembles_text_and_tool_use_with_merged_usage() {
        let mut a = AnthropicStreamAssembler::new();
        feed(
            &mut a,
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 50, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        );
        feed(&mut a, json!({"type": "ping"}));
        feed(
            &mut a,
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        feed(
            &mut a,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}}),
        );
        feed(
            &mut a,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "look."}}),
        );
        feed(&mut a, json!({"type": "content_block_stop", "index": 0}));
        feed(
            &mut a,
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "read", "input": {}}}),
        );
        feed(
            &mut a,
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"path\": "}}),
        );
        feed(
            &mut a,
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"a.txt\"}"}}),
        );
        feed(&mut a, json!({"type": "content_block_stop", "index": 1}));
        feed(
            &mut a,
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 33}}),
        );
        assert!(!a.is_done());
        feed(&mut a, json!({"type": "message_stop"}));
        assert!(a.is_done());
        assert_eq!(
            a.finish(),
            json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_9", "name": "read", "input": {"path": "a.txt"}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 50, "cache_read_input_tokens": 0, "output_tokens": 33}
            })
        );
    }

    #[test]
    fn keeps_thinking_errors_and_cut_tool_input() {
        let mut a = AnthropicStreamAssembler::new();
        feed(
            &mut a,
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        );
        feed(
            &mut a,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}),
        );
        feed(
            &mut a,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQ"}}),
        );
        feed(
            &mut a,
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}}),
        );
        feed(
            &mut a,
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\": 1"}}),
        );
        feed(
            &mut a,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        assert_eq!(a.error(), Some("Overloaded"));
        let out = a.finish();
        assert_eq!(
            out["content"][0],
            json!({"type": "thinking", "thinking": "hm", "signature": "EqQ"})
        );
        assert_eq!(out["content"][1]["input"], "{\"a\": 1");
        assert_eq!(out["stop_reason"], Value::Null);
    }
}
