//! Live stream translation: OpenAI `chat.completion.chunk` events in, Anthropic Messages events out.
//!
//! Anthropic clients expect a strict event grammar — `message_start`, then
//! for each content block `content_block_start`, its deltas and
//! `content_block_stop`, then one `message_delta` (stop reason and usage)
//! and one `message_stop`. OpenAI streams are flatter: text, reasoning and
//! tool-call fragments in any chunk, the finish reason on the last choice
//! chunk, the usage on a later chunk with `choices: []`, then `[DONE]`. This
//! state machine opens and closes blocks as the kind of delta changes and
//! holds the stop reason back until the usage is known.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::{encode_sse, error_body, ids, stop_reason, usage, SseEvent, TranslateError};

/// Translates one upstream OpenAI stream into Anthropic SSE bytes.
#[derive(Debug)]
pub struct OpenAiToAnthropicStream {
    model: String,
    started: bool,
    /// `message_stop` or `error` has been sent; nothing may follow.
    finished: bool,
    open: Option<OpenBlock>,
    next_block: usize,
    tools: Vec<ToolSlot>,
    finish_reason: Option<String>,
    /// The latest OpenAI `usage` object seen (some servers send one on
    /// every chunk; the last is the total).
    usage: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text(usize),
    Thinking(usize),
    Tool(usize),
}

/// A tool call of the upstream stream and the content block it became.
#[derive(Debug)]
struct ToolSlot {
    openai_index: u64,
    id: String,
    block: usize,
}

impl OpenAiToAnthropicStream {
    /// `model` is the name reported in `message_start`: the model the
    /// client asked for, or "" to report the upstream's.
    pub fn new(model: &str) -> Self {
        OpenAiToAnthropicStream {
            model: model.to_owned(),
            started: false,
            finished: false,
            open: None,
            next_block: 0,
            tools: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// Translate one upstream event into zero or more client events.
    pub fn push(&mut self, ev: &SseEvent) -> Result<Vec<Bytes>, TranslateError> {
        let data = ev.data.trim();
        if self.finished || data.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if data == "[DONE]" {
            self.close_message(&mut out);
            return Ok(out);
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| TranslateError::invalid_json("stream chunk", &e))?;
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            out.push(error_event(err));
            self.finished = true;
            return Ok(out);
        }
        self.start(&chunk, &mut out);
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
            });
        match choice {
            Some(choice) => self.choice(choice, &mut out),
            // `choices: []` with usage is the final usage chunk. (Azure also
            // sends an empty `choices` first, with filter results and no
            // usage; that one is not the end.)
            None if chunk.get("usage").is_some_and(Value::is_object) => {
                self.close_message(&mut out)
            }
            None => {}
        }
        Ok(out)
    }

    /// The upstream ended. If it did so without `[DONE]` or a usage chunk,
    /// close whatever is open so the client still sees a complete message.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.started {
            self.close_message(&mut out);
        }
        out
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = ids::anthropic_message_id(chunk.get("id").and_then(Value::as_str).unwrap_or(""));
        // An empty name (the proxy did not know the client's) falls back
        // to what the upstream reports.
        if self.model.is_empty() {
            if let Some(m) = chunk.get("model").and_then(Value::as_str) {
                self.model = m.to_owned();
            }
        }
        let input_tokens = chunk
            .get("usage")
            .and_then(|u| u.get("prompt_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        out.push(event(json!({
            "type": "message_start",
            "message": {
                "id": id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 0},
            },
        })));
    }

    fn choice(&mut self, choice: &Value, out: &mut Vec<Bytes>) {
        if let Some(delta) = choice.get("delta") {
            let reasoning = ["reasoning_content", "reasoning"].iter().find_map(|k| {
                delta
                    .get(*k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            });
            if let Some(thinking) = reasoning {
                let index = self.ensure_block(true, out);
                out.push(event(json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "thinking_delta", "thinking": thinking}})));
            }
            if let Some(text) = delta
                .get("content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                let index = self.ensure_block(false, out);
                out.push(event(json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}})));
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (position, call) in calls.iter().enumerate() {
                    self.tool_call_delta(position as u64, call, out);
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
            // The content is complete; the block can close now even though
            // message_delta waits for the usage chunk.
            self.close_block(out);
        }
    }

    /// Open a text or thinking block unless one of that kind is open.
    fn ensure_block(&mut self, thinking: bool, out: &mut Vec<Bytes>) -> usize {
        match self.open {
            Some(OpenBlock::Thinking(i)) if thinking => return i,
            Some(OpenBlock::Text(i)) if !thinking => return i,
            _ => {}
        }
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        let (block, open) = if thinking {
            (
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                OpenBlock::Thinking(index),
            )
        } else {
            (json!({"type": "text", "text": ""}), OpenBlock::Text(index))
        };
        out.push(event(
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        self.open = Some(open);
        index
    }

    fn tool_call_delta(&mut self, position: u64, call: &Value, out: &mut Vec<Bytes>) {
        let openai_index = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position);
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let function = call.get("function");
        // Some servers give every call index 0 and tell them apart by id.
        let existing = self
            .tools
            .iter()
            .rposition(|t| t.openai_index == openai_index)
            .filter(|&s| id.is_none_or(|id| self.tools[s].id == id));
        let block = match existing {
            Some(slot) => self.tools[slot].block,
            None => {
                self.close_block(out);
                let block = self.next_block;
                self.next_block += 1;
                let id = id.map_or_else(|| ids::generated("toolu_"), str::to_owned);
                let name = function
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                out.push(event(json!({"type": "content_block_start", "index": block,
                    "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})));
                self.tools.push(ToolSlot {
                    openai_index,
                    id,
                    block,
                });
                self.open = Some(OpenBlock::Tool(block));
                block
            }
        };
        // A fragment for a call whose block was already closed (upstreams
        // that interleave parallel calls) still goes to that call's index:
        // the SDKs accumulate by index.
        if let Some(args) = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            out.push(event(json!({"type": "content_block_delta", "index": block,
                "delta": {"type": "input_json_delta", "partial_json": args}})));
        }
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        if let Some(OpenBlock::Text(i) | OpenBlock::Thinking(i) | OpenBlock::Tool(i)) =
            self.open.take()
        {
            out.push(event(json!({"type": "content_block_stop", "index": i})));
        }
    }

    fn close_message(&mut self, out: &mut Vec<Bytes>) {
        if self.finished {
            return;
        }
        if !self.started {
            self.start(&Value::Null, out);
        }
        self.close_block(out);
        let reason = stop_reason::to_anthropic_with_tools(
            self.finish_reason.as_deref(),
            !self.tools.is_empty(),
        );
        let usage = self.usage.as_ref().map_or_else(
            || json!({"output_tokens": 0}),
            |u| Value::Object(usage::openai_to_anthropic(u)),
        );
        out.push(event(json!({"type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": usage})));
        out.push(event(json!({"type": "message_stop"})));
        self.finished = true;
    }
}

/// An Anthropic SSE event whose name is the payload's `type`.
fn event(payload: Value) -> Bytes {
    let name = payload
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    encode_sse(Some(&name), &payload.to_string())
}

/// An OpenAI in-stream `{"error":{…}}` as an Anthropic `error` event.
fn error_event(err: &Value) -> Bytes {
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| err.as_str())
        .unwrap_or("upstream stream error");
    let kind = err.get("type").and_then(Value::as_str).unwrap_or("");
    let payload = json!({"type": "error", "error": {
        "type": error_body::anthropic_type_from_openai(kind), "message": message}});
    encode_sse(Some("error"), &payload.to_string())
}

#[cfg(test)]
#[path = "stream_openai_to_anthropic_tests.rs"]
mod tests;
