//! Qwen3-family response markup → an assistant message the proxy can send
//! as OpenAI `tool_calls` or Anthropic `tool_use` blocks.
//!
//! Qwen3 writes its chain of thought as `<think>…</think>` (or only the
//! closing tag, when the chat template already opened the block) and each
//! tool call as `<tool_call>{"name": …, "arguments": {…}}</tool_call>`.
//! [`ResponseParser`] reads this incrementally; [`parse_response`] is the
//! same parser over a whole response, so a stream and a complete response
//! always agree. The OpenAI-shaped output feeds the dialect crate's
//! translations (`response_openai_to_anthropic`,
//! `OpenAiToAnthropicStream`) for Anthropic clients.

mod stream;

use std::fmt;

use serde_json::{json, Map, Value};

pub use stream::ResponseParser;

/// One function call the model made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// Always a JSON object.
    pub arguments: Value,
}

impl ToolCall {
    /// The arguments as the compact JSON string OpenAI's `arguments` holds.
    pub fn arguments_json(&self) -> String {
        self.arguments.to_string()
    }
}

/// What a piece of response text turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseEvent {
    /// Answer text to append.
    Text(String),
    /// Reasoning text to append.
    Reasoning(String),
    /// A tool call, complete; `index` counts calls from 0.
    ToolCall { index: usize, call: ToolCall },
}

/// Markup the parser could not use; its text went out as ordinary text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseWarning {
    pub problem: String,
    /// The markup as the model wrote it.
    pub raw: String,
}

impl fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)
    }
}

/// A parsed assistant turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssistantMessage {
    pub text: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub warnings: Vec<ParseWarning>,
}

/// Parses a whole decoded response. `opens_reasoning`: the prompt ended
/// with `<think>` (see [`crate::prompt_opens_reasoning`]).
pub fn parse_response(text: &str, opens_reasoning: bool) -> AssistantMessage {
    let mut parser = ResponseParser::new(opens_reasoning);
    let mut message = AssistantMessage::default();
    for event in parser.push(text).iter().chain(parser.finish().iter()) {
        message.apply(event);
    }
    message.warnings = parser.warnings().to_vec();
    message
}

impl AssistantMessage {
    /// Folds one event into the message.
    pub fn apply(&mut self, event: &ResponseEvent) {
        match event {
            ResponseEvent::Text(text) => self.text.push_str(text),
            ResponseEvent::Reasoning(text) => self.reasoning.push_str(text),
            ResponseEvent::ToolCall { call, .. } => self.tool_calls.push(call.clone()),
        }
    }

    /// The OpenAI `finish_reason`: `length` when the sampler hit the token
    /// limit, else `tool_calls` when there are calls, else `stop`.
    pub fn finish_reason(&self, hit_token_limit: bool) -> &'static str {
        if hit_token_limit {
            "length"
        } else if self.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    /// The OpenAI `choices[0].message`: `content` (null when empty and
    /// there are tool calls), `reasoning_content` when there is reasoning,
    /// `tool_calls` with ids from `call_id(index)`.
    pub fn to_openai_message(&self, call_id: impl Fn(usize) -> String) -> Value {
        let mut out = Map::new();
        out.insert("role".into(), json!("assistant"));
        let content = if self.text.is_empty() && !self.tool_calls.is_empty() {
            Value::Null
        } else {
            json!(self.text)
        };
        out.insert("content".into(), content);
        if !self.reasoning.is_empty() {
            out.insert("reasoning_content".into(), json!(self.reasoning));
        }
        if !self.tool_calls.is_empty() {
            let calls = self
                .tool_calls
                .iter()
                .enumerate()
                .map(|(i, call)| openai_tool_call(call, &call_id(i)))
                .collect();
            out.insert("tool_calls".into(), Value::Array(calls));
        }
        Value::Object(out)
    }

    /// The Anthropic `content` blocks: thinking, text, then `tool_use`
    /// blocks with ids from `call_id(index)`. Thinking blocks carry an
    /// empty signature (the policy is not Anthropic's model).
    pub fn to_anthropic_content(&self, call_id: impl Fn(usize) -> String) -> Vec<Value> {
        let mut out = Vec::with_capacity(self.tool_calls.len() + 2);
        if !self.reasoning.is_empty() {
            out.push(json!({"type": "thinking", "thinking": self.reasoning, "signature": ""}));
        }
        if !self.text.is_empty() {
            out.push(json!({"type": "text", "text": self.text}));
        }
        for (i, call) in self.tool_calls.iter().enumerate() {
            out.push(json!({
                "type": "tool_use",
                "id": call_id(i),
                "name": call.name,
                "input": call.arguments,
            }));
        }
        out
    }
}

impl ResponseEvent {
    /// The `delta` of an OpenAI `chat.completion.chunk` carrying this
    /// event; a tool call comes whole, with its id from `call_id(index)`.
    pub fn to_openai_delta(&self, call_id: impl Fn(usize) -> String) -> Value {
        match self {
            ResponseEvent::Text(text) => json!({"content": text}),
            ResponseEvent::Reasoning(text) => json!({"reasoning_content": text}),
            ResponseEvent::ToolCall { index, call } => {
                let mut call = openai_tool_call(call, &call_id(*index));
                if let Some(obj) = call.as_object_mut() {
                    obj.insert("index".into(), json!(index));
                }
                json!({"tool_calls": [call]})
            }
        }
    }
}

fn openai_tool_call(call: &ToolCall, id: &str) -> Value {
    json!({
        "id": id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json()},
    })
}

#[cfg(test)]
mod tests;
