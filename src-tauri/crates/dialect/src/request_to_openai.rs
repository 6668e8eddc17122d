//! Anthropic Messages request → OpenAI Chat Completions request.
//!
//! The structural differences: the system prompt moves into a `system`
//! message; `tool_result` blocks become separate `role: "tool"` messages
//! (placed before the rest of the user message, because OpenAI wants each
//! tool result right after the assistant message that called it);
//! `tool_use` blocks become `tool_calls` with JSON-string arguments. Thinking
//! blocks are dropped (OpenAI-compatible servers cannot verify their
//! signatures) and Anthropic-only fields (`top_k`, `thinking`,
//! `service_tier`, …) are left out.

use serde_json::{json, Map, Value};

use crate::content::{array, kind, object, present, required_str, Object};
use crate::TranslateError;

/// Translate an Anthropic `/v1/messages` body into an OpenAI
/// `/v1/chat/completions` body.
pub fn request_anthropic_to_openai(req: &Value) -> Result<Value, TranslateError> {
    let body = object(req, || "body".into())?;
    let mut out = Map::new();
    if let Some(model) = body.get("model") {
        out.insert("model".into(), model.clone());
    }

    let mut messages = Vec::new();
    if let Some(system) = present(body, "system") {
        let text = system_text(system)?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let source = present(body, "messages").ok_or_else(|| TranslateError::missing("messages"))?;
    for (i, message) in array(source, || "messages".into())?.iter().enumerate() {
        let path = || format!("messages[{i}]");
        let message = object(message, path)?;
        let content = present(message, "content").unwrap_or(&Value::Null);
        match required_str(message, "role", path)? {
            "user" => push_user(i, content, &mut messages)?,
            "assistant" => messages.push(assistant(i, content)?),
            other => {
                return Err(TranslateError::invalid(
                    format!("messages[{i}].role"),
                    format!("invalid role \"{other}\" (expected one of user, assistant)"),
                ))
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));

    tools(body, &mut out)?;
    for key in ["max_tokens", "temperature", "top_p"] {
        if let Some(v) = present(body, key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = present(body, "stop_sequences") {
        out.insert("stop".into(), stop.clone());
    }
    if let Some(user) = body
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .filter(|u| u.is_string())
    {
        out.insert("user".into(), user.clone());
    }
    if let Some(stream) = present(body, "stream") {
        out.insert("stream".into(), stream.clone());
        if stream == &Value::Bool(true) {
            // Without this OpenAI sends no usage at all in a stream, and the
            // Anthropic client's final message_delta needs output_tokens.
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    Ok(Value::Object(out))
}

/// `tools` and `tool_choice` (whose `disable_parallel_tool_use` is OpenAI's
/// top-level `parallel_tool_calls: false`).
fn tools(body: &Object, out: &mut Object) -> Result<(), TranslateError> {
    if let Some(tools) = present(body, "tools") {
        let tools = array(tools, || "tools".into())?;
        let converted = tools
            .iter()
            .enumerate()
            .map(|(i, t)| tool(i, t))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert("tools".into(), Value::Array(converted));
    }
    if let Some(choice) = present(body, "tool_choice") {
        let choice = object(choice, || "tool_choice".into())?;
        let mapped = match required_str(choice, "type", || "tool_choice".into())? {
            "auto" => json!("auto"),
            "any" => json!("required"),
            "none" => json!("none"),
            "tool" => {
                let name = required_str(choice, "name", || "tool_choice".into())?;
                json!({"type": "function", "function": {"name": name}})
            }
            other => {
                return Err(TranslateError::unsupported(
                    "tool_choice",
                    "tool_choice",
                    other,
                ))
            }
        };
        out.insert("tool_choice".into(), mapped);
        if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    Ok(())
}

/// `system` as one string: a string, or its text blocks joined by blank lines.
fn system_text(system: &Value) -> Result<String, TranslateError> {
    match system {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                match kind(block) {
                    "text" => parts.push(required_str(
                        object(block, || format!("system[{i}]"))?,
                        "text",
                        || format!("system[{i}]"),
                    )?),
                    other => {
                        return Err(TranslateError::unsupported(
                            format!("system[{i}]"),
                            "content block",
                            other,
                        ))
                    }
                }
            }
            Ok(parts.join("\n\n"))
        }
        _ => Err(TranslateError::wrong_type(
            "system",
            "a string or an array of text blocks",
        )),
    }
}

/// One Anthropic user message → its tool messages, then (if anything else
/// is left) one OpenAI user message.
fn push_user(i: usize, content: &Value, messages: &mut Vec<Value>) -> Result<(), TranslateError> {
    let blocks = match content {
        Value::String(s) => {
            messages.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(TranslateError::wrong_type(
                format!("messages[{i}].content"),
                "a string or an array of content blocks",
            ))
        }
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let path = || format!("messages[{i}].content[{j}]");
        let block_obj = object(block, path)?;
        match kind(block) {
            "text" => {
                let text = required_str(block_obj, "text", path)?;
                parts.push(json!({"type": "text", "text": text}));
            }
            "image" => parts.push(image_part(block_obj, &path)?),
            "tool_result" => messages.push(tool_message(block_obj, &path, &mut parts)?),
            "thinking" | "redacted_thinking" => {}
            other => return Err(TranslateError::unsupported(path(), "content block", other)),
        }
    }
    if !parts.is_empty() || blocks.is_empty() {
        let content = if parts.is_empty() {
            json!("")
        } else {
            Value::Array(parts)
        };
        messages.push(json!({"role": "user", "content": content}));
    }
    Ok(())
}

/// A `tool_result` block → a `role: "tool"` message. OpenAI tool messages
/// carry text only, so images a tool returned go into `images`, which ends
/// up in the user message that follows.
fn tool_message(
    block: &Object,
    path: &dyn Fn() -> String,
    images: &mut Vec<Value>,
) -> Result<Value, TranslateError> {
    let id = required_str(block, "tool_use_id", path)?;
    let mut text = String::new();
    match present(block, "content") {
        None => {}
        Some(Value::String(s)) => text.push_str(s),
        Some(Value::Array(items)) => {
            for (k, item) in items.iter().enumerate() {
                let item_path = || format!("{}.content[{k}]", path());
                let item_obj = object(item, item_path)?;
                match kind(item) {
                    "text" => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(required_str(item_obj, "text", item_path)?);
                    }
                    "image" => images.push(image_part(item_obj, &item_path)?),
                    other => {
                        return Err(TranslateError::unsupported(
                            item_path(),
                            "content block",
                            other,
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::wrong_type(
                format!("{}.content", path()),
                "a string or an array of content blocks",
            ))
        }
    }
    // OpenAI has no error flag on tool results; the model has to read it.
    if block.get("is_error") == Some(&Value::Bool(true)) {
        text.insert_str(0, "Error: ");
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

/// An Anthropic image block → an OpenAI `image_url` part.
fn image_part(block: &Object, path: &dyn Fn() -> String) -> Result<Value, TranslateError> {
    let source_path = || format!("{}.source", path());
    let source = object(
        present(block, "source").ok_or_else(|| TranslateError::missing(source_path()))?,
        source_path,
    )?;
    let url = match source.get("type").and_then(Value::as_str).unwrap_or("") {
        "base64" => {
            let media_type = required_str(source, "media_type", source_path)?;
            let data = required_str(source, "data", source_path)?;
            format!("data:{media_type};base64,{data}")
        }
        "url" => required_str(source, "url", source_path)?.to_owned(),
        other => {
            return Err(TranslateError::unsupported(
                source_path(),
                "image source",
                other,
            ))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// An Anthropic assistant message → an OpenAI assistant message with text
/// content and `tool_calls`.
fn assistant(i: usize, content: &Value) -> Result<Value, TranslateError> {
    let blocks = match content {
        Value::String(s) => return Ok(json!({"role": "assistant", "content": s})),
        Value::Array(blocks) => blocks,
        _ => {
            return Err(TranslateError::wrong_type(
                format!("messages[{i}].content"),
                "a string or an array of content blocks",
            ))
        }
    };
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let path = || format!("messages[{i}].content[{j}]");
        let block_obj = object(block, path)?;
        match kind(block) {
            // Citations split one answer into many text blocks; they read
            // as one text when concatenated.
            "text" => text.push_str(required_str(block_obj, "text", path)?),
            "tool_use" => {
                let id = required_str(block_obj, "id", path)?;
                let name = required_str(block_obj, "name", path)?;
                let arguments = match present(block_obj, "input") {
                    None => "{}".to_owned(),
                    Some(input) => input.to_string(),
                };
                tool_calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }));
            }
            "thinking" | "redacted_thinking" => {}
            other => return Err(TranslateError::unsupported(path(), "content block", other)),
        }
    }
    let mut out = Map::new();
    out.insert("role".into(), json!("assistant"));
    let content = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    out.insert("content".into(), content);
    if !tool_calls.is_empty() {
        out.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    Ok(Value::Object(out))
}

/// An Anthropic tool definition → an OpenAI function tool. Server tools
/// (`web_search_…`, `bash_…`, `computer_…`) run on Anthropic's side and have
/// no OpenAI equivalent.
fn tool(i: usize, t: &Value) -> Result<Value, TranslateError> {
    let path = || format!("tools[{i}]");
    let t = object(t, path)?;
    match t.get("type").and_then(Value::as_str) {
        None | Some("custom") => {}
        Some(other) => return Err(TranslateError::unsupported(path(), "tool", other)),
    }
    let name = required_str(t, "name", path)?;
    let mut function = Map::new();
    function.insert("name".into(), json!(name));
    if let Some(description) = present(t, "description") {
        function.insert("description".into(), description.clone());
    }
    let parameters = present(t, "input_schema")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    function.insert("parameters".into(), parameters);
    Ok(json!({"type": "function", "function": function}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_a_tool_loop_request() {
        let req = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "need tool", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "18C"}]},
                    {"type": "text", "text": "And Rome?"}
                ]}
            ],
            "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"], "temperature": 0.2, "top_p": 0.9, "top_k": 5,
            "metadata": {"user_id": "u-1"}, "stream": true, "thinking": {"type": "enabled", "budget_tokens": 1000}
        });
        let out = request_anthropic_to_openai(&req).unwrap();
        assert_eq!(
            out,
            json!({
                "model": "claude-sonnet-4-5",
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Weather in Paris?"},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "toolu_01", "content": "18C"},
                    {"role": "user", "content": [{"type": "text", "text": "And Rome?"}]}
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "tool_choice": "required",
                "parallel_tool_calls": false,
                "max_tokens": 1024, "temperature": 0.2, "top_p": 0.9,
                "stop": ["END"], "user": "u-1",
                "stream": true, "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn images_errors_and_tool_only_turns() {
        let req = json!({"max_tokens": 10, "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "is_error": true, "content": [
                    {"type": "text", "text": "blurry"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}
                ]},
                {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}}
            ]}
        ]});
        let out = request_anthropic_to_openai(&req).unwrap();
        assert_eq!(
            out["messages"],
            json!([
                {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "Error: blurry"},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}
                ]}
            ])
        );

        let bad = json!({"max_tokens": 1, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "read"}, {"type": "document", "source": {}}]}]});
        assert_eq!(
            request_anthropic_to_openai(&bad).unwrap_err().to_string(),
            "messages[0].content[1]: unsupported content block type \"document\""
        );
        let server_tool = json!({"messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
        assert_eq!(
            request_anthropic_to_openai(&server_tool)
                .unwrap_err()
                .to_string(),
            "tools[0]: unsupported tool type \"web_search_20250305\""
        );
        let missing_id = json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]});
        assert_eq!(
            request_anthropic_to_openai(&missing_id)
                .unwrap_err()
                .to_string(),
            "messages[0].content[0].tool_use_id: missing required field"
        );
    }

    #[test]
    fn tool_choice_variants() {
        for (a, o) in [
            (json!({"type": "auto"}), json!("auto")),
            (json!({"type": "none"}), json!("none")),
            (
                json!({"type": "tool", "name": "f"}),
                json!({"type": "function", "function": {"name": "f"}}),
            ),
        ] {
            let out =
                request_anthropic_to_openai(&json!({"messages": [], "tool_choice": a})).unwrap();
            assert_eq!(out["tool_choice"], o);
            assert!(out.get("parallel_tool_calls").is_none());
        }
    }
}
