//! A client's request as the `messages` and `tools` a Hugging Face chat
//! template expects.
//!
//! The pivot is the OpenAI Chat Completions shape the dialect crate already
//! translates to: an Anthropic request goes through
//! [`metaclaw_dialect::request_anthropic_to_openai`] first (tool results
//! become `tool` messages, `tool_use` blocks become `tool_calls`). Then the
//! same clean-up vLLM does before rendering: text parts joined into one
//! string, `developer` read as `system`, tool-call arguments parsed from
//! their JSON string into an object (templates print them with `tojson`),
//! and each tool message given the `name` of the call it answers.

use std::collections::HashMap;

use metaclaw_dialect::{request_anthropic_to_openai, Dialect, TranslateError};
use serde_json::{json, Map, Value};

use crate::PolicyError;

/// What a chat template renders: the conversation, the tool definitions
/// (OpenAI `{"type": "function", "function": {…}}` objects, as
/// `transformers` passes JSON-schema tools) and extra template variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatInput {
    pub messages: Vec<Value>,
    pub tools: Option<Vec<Value>>,
    /// Extra template variables: the request's `chat_template_kwargs` (the
    /// vLLM extension, e.g. `{"enable_thinking": false}`), or
    /// `enable_thinking` from an Anthropic `thinking` setting.
    pub kwargs: Map<String, Value>,
}

impl ChatInput {
    /// The conversation of a request body in `dialect`.
    pub fn from_request(dialect: Dialect, request: &Value) -> Result<ChatInput, PolicyError> {
        match dialect {
            Dialect::OpenAi => ChatInput::from_openai(request),
            Dialect::Anthropic => {
                let openai = request_anthropic_to_openai(request)?;
                let mut input = ChatInput::from_openai(&openai)?;
                let thinking = request
                    .get("thinking")
                    .and_then(|t| t.get("type"))
                    .and_then(Value::as_str);
                match thinking {
                    Some("enabled") => {
                        input.kwargs.insert("enable_thinking".into(), json!(true));
                    }
                    Some("disabled") => {
                        input.kwargs.insert("enable_thinking".into(), json!(false));
                    }
                    _ => {}
                }
                Ok(input)
            }
        }
    }

    /// The conversation of an OpenAI Chat Completions body.
    pub fn from_openai(request: &Value) -> Result<ChatInput, PolicyError> {
        let messages = request
            .get("messages")
            .filter(|m| !m.is_null())
            .ok_or_else(|| TranslateError::Missing {
                path: "messages".into(),
            })?
            .as_array()
            .ok_or_else(|| wrong_type("messages", "an array"))?;
        let mut out = Vec::with_capacity(messages.len());
        // Tool call id → function name, for tool messages that lack `name`.
        let mut call_names: HashMap<String, String> = HashMap::new();
        for (i, message) in messages.iter().enumerate() {
            out.push(message_for_template(i, message, &mut call_names)?);
        }
        let tools = match request.get("tools").filter(|t| !t.is_null()) {
            Some(tools) => Some(
                tools
                    .as_array()
                    .ok_or_else(|| wrong_type("tools", "an array"))?
                    .clone(),
            ),
            // The legacy `functions` list, wrapped like `tools`.
            None => request
                .get("functions")
                .and_then(Value::as_array)
                .map(|functions| {
                    functions
                        .iter()
                        .map(|f| json!({"type": "function", "function": f}))
                        .collect()
                }),
        };
        let kwargs = match request.get("chat_template_kwargs") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(wrong_type("chat_template_kwargs", "a JSON object").into()),
        };
        Ok(ChatInput {
            messages: out,
            tools,
            kwargs,
        })
    }
}

fn message_for_template(
    i: usize,
    message: &Value,
    call_names: &mut HashMap<String, String>,
) -> Result<Value, PolicyError> {
    let path = |field: &str| format!("messages[{i}]{field}");
    let obj = message
        .as_object()
        .ok_or_else(|| wrong_type(path(""), "a JSON object"))?;
    let role = obj
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing {
            path: path(".role"),
        })?;
    let role = match role {
        "developer" => "system",
        "system" | "user" | "assistant" | "tool" => role,
        other => {
            return Err(TranslateError::Invalid {
                path: path(".role"),
                problem: format!(
                    "invalid role \"{other}\" (expected system, developer, user, assistant or tool)"
                ),
            }
            .into())
        }
    };
    let mut out = Map::new();
    out.insert("role".into(), json!(role));
    out.insert(
        "content".into(),
        json!(text_content(obj.get("content"), &path(".content"))?),
    );
    match role {
        "assistant" => {
            for key in ["reasoning_content", "reasoning"] {
                if let Some(reasoning) = obj.get(key).and_then(Value::as_str) {
                    out.insert("reasoning_content".into(), json!(reasoning));
                    break;
                }
            }
            if let Some(calls) = obj.get("tool_calls").filter(|c| !c.is_null()) {
                let calls = calls
                    .as_array()
                    .ok_or_else(|| wrong_type(path(".tool_calls"), "an array"))?;
                let mut converted = Vec::with_capacity(calls.len());
                for (j, call) in calls.iter().enumerate() {
                    let call = tool_call(call, &format!("messages[{i}].tool_calls[{j}]"))?;
                    if let (Some(id), Some(name)) = (
                        call.get("id").and_then(Value::as_str),
                        call.pointer("/function/name").and_then(Value::as_str),
                    ) {
                        call_names.insert(id.to_owned(), name.to_owned());
                    }
                    converted.push(call);
                }
                if !converted.is_empty() {
                    out.insert("tool_calls".into(), Value::Array(converted));
                }
            }
        }
        "tool" => {
            let id = obj.get("tool_call_id").and_then(Value::as_str);
            if let Some(id) = id {
                out.insert("tool_call_id".into(), json!(id));
            }
            let name = obj
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| id.and_then(|id| call_names.get(id).cloned()));
            if let Some(name) = name {
                out.insert("name".into(), json!(name));
            }
        }
        _ => {
            if let Some(name) = obj.get("name").and_then(Value::as_str) {
                out.insert("name".into(), json!(name));
            }
        }
    }
    Ok(Value::Object(out))
}

/// `{"id", "type", "function": {"name", "arguments"}}` with `arguments`
/// parsed into JSON when it is a JSON string (kept as the string when not).
fn tool_call(call: &Value, path: &str) -> Result<Value, PolicyError> {
    let function = call
        .get("function")
        .and_then(Value::as_object)
        .ok_or_else(|| TranslateError::Missing {
            path: format!("{path}.function"),
        })?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing {
            path: format!("{path}.function.name"),
        })?;
    let arguments = match function.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
        Some(other) => other.clone(),
    };
    let mut out = Map::new();
    if let Some(id) = call.get("id").filter(|id| id.is_string()) {
        out.insert("id".into(), id.clone());
    }
    out.insert("type".into(), json!("function"));
    out.insert(
        "function".into(),
        json!({"name": name, "arguments": arguments}),
    );
    Ok(Value::Object(out))
}

/// Message content as one string: a string as it is, text parts joined by
/// newlines, `null` as "". Images, audio and files have no place in a
/// text-only policy's prompt, so they are refused rather than dropped.
fn text_content(content: Option<&Value>, path: &str) -> Result<String, PolicyError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (k, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                match (kind, part.get("text").and_then(Value::as_str)) {
                    ("text" | "input_text" | "output_text", Some(text)) => texts.push(text),
                    _ => {
                        return Err(TranslateError::Unsupported {
                            path: format!("{path}[{k}]"),
                            what: "content part (the policy model reads text only)",
                            kind: kind.to_owned(),
                        }
                        .into())
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(wrong_type(path, "a string, an array of content parts or null").into()),
    }
}

fn wrong_type(path: impl Into<String>, expected: &'static str) -> TranslateError {
    TranslateError::WrongType {
        path: path.into(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_messages_are_normalized_for_templates() {
        let req = json!({
            "messages": [
                {"role": "developer", "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": "Weather?", "name": "ann"},
                {"role": "assistant", "content": null, "reasoning_content": "need tool", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                    {"id": "c2", "type": "function", "function": {"name": "raw", "arguments": "not json"}}
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "18C"},
                {"role": "tool", "tool_call_id": "c2", "name": "raw_tool", "content": [{"type": "text", "text": "ok"}]}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "chat_template_kwargs": {"enable_thinking": false}
        });
        let input = ChatInput::from_request(Dialect::OpenAi, &req).unwrap();
        assert_eq!(
            input.messages,
            vec![
                json!({"role": "system", "content": "Be brief.\nUse tools."}),
                json!({"role": "user", "content": "Weather?", "name": "ann"}),
                json!({"role": "assistant", "content": "", "reasoning_content": "need tool", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"id": "c2", "type": "function", "function": {"name": "raw", "arguments": "not json"}}
                ]}),
                json!({"role": "tool", "content": "18C", "tool_call_id": "c1", "name": "get_weather"}),
                json!({"role": "tool", "content": "ok", "tool_call_id": "c2", "name": "raw_tool"}),
            ]
        );
        assert_eq!(input.tools.as_ref().map(Vec::len), Some(1));
        assert_eq!(input.kwargs.get("enable_thinking"), Some(&json!(false)));
    }

    #[test]
    fn anthropic_requests_go_through_the_dialect_translation() {
        let req = json!({
            "max_tokens": 100,
            "system": "sys",
            "thinking": {"type": "enabled", "budget_tokens": 1000},
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]}
            ],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]
        });
        let input = ChatInput::from_request(Dialect::Anthropic, &req).unwrap();
        assert_eq!(
            input.messages,
            vec![
                json!({"role": "system", "content": "sys"}),
                json!({"role": "user", "content": "Weather in Paris?"}),
                json!({"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ]}),
                json!({"role": "tool", "content": "18C", "tool_call_id": "toolu_1", "name": "get_weather"}),
            ]
        );
        assert_eq!(
            input.tools,
            Some(vec![
                json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}})
            ])
        );
        assert_eq!(input.kwargs.get("enable_thinking"), Some(&json!(true)));
    }

    #[test]
    fn bad_requests_name_the_field() {
        let cases = [
            (json!({}), "messages: missing required field"),
            (
                json!({"messages": [{"role": "critic", "content": "x"}]}),
                "messages[0].role: invalid role \"critic\" (expected system, developer, user, assistant or tool)",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
                "messages[0].content[0]: unsupported content part (the policy model reads text only) type \"image_url\"",
            ),
            (
                json!({"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "x"}]}]}),
                "messages[0].tool_calls[0].function: missing required field",
            ),
            (
                json!({"messages": [], "chat_template_kwargs": 3}),
                "chat_template_kwargs: expected a JSON object",
            ),
        ];
        for (req, message) in cases {
            let err = ChatInput::from_request(Dialect::OpenAi, &req).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
        let legacy = json!({"messages": [], "functions": [{"name": "f"}]});
        assert_eq!(
            ChatInput::from_openai(&legacy).unwrap().tools,
            Some(vec![json!({"type": "function", "function": {"name": "f"}})])
        );
    }
}
