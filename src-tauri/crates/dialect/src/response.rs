//! Non-streaming responses: OpenAI `chat.completion` ⇄ Anthropic `message`.
//!
//! Only the first choice is translated: Anthropic has no `n`, and a request
//! that came in as Anthropic never asks for more than one.

use serde_json::{json, Map, Value};

use crate::content::{array, kind, object, present, required_str};
use crate::{ids, stop_reason, usage, TranslateError};

/// Translate an OpenAI `chat.completion` into an Anthropic `message`.
pub fn response_openai_to_anthropic(resp: &Value) -> Result<Value, TranslateError> {
    let body = object(resp, || "body".into())?;
    let choices = array(
        present(body, "choices").ok_or_else(|| TranslateError::missing("choices"))?,
        || "choices".into(),
    )?;
    let choice = object(
        choices
            .first()
            .ok_or_else(|| TranslateError::wrong_type("choices", "a non-empty array"))?,
        || "choices[0]".into(),
    )?;
    let message = object(
        present(choice, "message").ok_or_else(|| TranslateError::missing("choices[0].message"))?,
        || "choices[0].message".into(),
    )?;

    let mut content = Vec::new();
    // DeepSeek, Qwen and vLLM reasoning parsers put the chain of thought here.
    for key in ["reasoning_content", "reasoning"] {
        if let Some(thinking) = message
            .get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            content.push(json!({"type": "thinking", "thinking": thinking, "signature": ""}));
            break;
        }
    }
    match present(message, "content") {
        None => {}
        Some(Value::String(s)) => push_text(&mut content, s),
        Some(Value::Array(parts)) => {
            for part in parts {
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    push_text(&mut content, t);
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::wrong_type(
                "choices[0].message.content",
                "a string, an array of content parts or null",
            ))
        }
    }
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
        push_text(&mut content, refusal);
    }
    let mut has_tools = false;
    if let Some(calls) = present(message, "tool_calls") {
        for (j, call) in array(calls, || "choices[0].message.tool_calls".into())?
            .iter()
            .enumerate()
        {
            let path = || format!("choices[0].message.tool_calls[{j}]");
            let call = object(call, path)?;
            let function = object(
                present(call, "function")
                    .ok_or_else(|| TranslateError::missing(format!("{}.function", path())))?,
                || format!("{}.function", path()),
            )?;
            let id = match call.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => ids::generated("toolu_"),
            };
            content.push(tool_use(id, function, &|| format!("{}.function", path()))?);
            has_tools = true;
        }
    } else if let Some(call) = present(message, "function_call") {
        let path = || "choices[0].message.function_call".to_owned();
        content.push(tool_use(
            ids::generated("toolu_"),
            object(call, path)?,
            &path,
        )?);
        has_tools = true;
    }

    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let usage = body.get("usage").filter(|u| u.is_object()).map_or_else(
        || json!({"input_tokens": 0, "output_tokens": 0}),
        |u| Value::Object(usage::openai_to_anthropic(u)),
    );
    Ok(json!({
        "id": ids::anthropic_message_id(body.get("id").and_then(Value::as_str).unwrap_or("")),
        "type": "message",
        "role": "assistant",
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": stop_reason::to_anthropic_with_tools(finish, has_tools),
        "stop_sequence": null,
        "usage": usage,
    }))
}

fn push_text(content: &mut Vec<Value>, text: &str) {
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
}

fn tool_use(
    id: String,
    function: &Map<String, Value>,
    path: &dyn Fn() -> String,
) -> Result<Value, TranslateError> {
    let name = required_str(function, "name", path)?;
    let input = match present(function, "arguments") {
        None => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|e| TranslateError::invalid_json(format!("{}.arguments", path()), &e))?,
        Some(v) => v.clone(),
    };
    Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
}

/// Translate an Anthropic `message` into an OpenAI `chat.completion`.
pub fn response_anthropic_to_openai(resp: &Value) -> Result<Value, TranslateError> {
    let body = object(resp, || "body".into())?;
    let blocks = array(
        present(body, "content").ok_or_else(|| TranslateError::missing("content"))?,
        || "content".into(),
    )?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let path = || format!("content[{j}]");
        let block_obj = object(block, path)?;
        match kind(block) {
            "text" => text.push_str(required_str(block_obj, "text", path)?),
            "thinking" => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            "tool_use" => {
                let arguments =
                    present(block_obj, "input").map_or_else(|| "{}".to_owned(), Value::to_string);
                tool_calls.push(json!({
                    "id": required_str(block_obj, "id", path)?,
                    "type": "function",
                    "function": {"name": required_str(block_obj, "name", path)?, "arguments": arguments},
                }));
            }
            // Server-side tool blocks and redacted thinking have no OpenAI
            // form; the answer itself is still worth delivering.
            _ => {}
        }
    }

    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    let content = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let finish = body
        .get("stop_reason")
        .and_then(Value::as_str)
        .map_or("stop", stop_reason::to_openai);
    let usage = body.get("usage").map_or_else(
        || json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
        usage::anthropic_to_openai,
    );
    Ok(json!({
        "id": ids::openai_completion_id(body.get("id").and_then(Value::as_str).unwrap_or("")),
        "object": "chat.completion",
        "created": ids::unix_now(),
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_completion_with_tool_calls_to_anthropic() {
        let resp = json!({
            "id": "chatcmpl-9x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Checking.", "reasoning_content": "hmm",
                "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
            }}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
        });
        assert_eq!(
            response_openai_to_anthropic(&resp).unwrap(),
            json!({
                "id": "msg_9x", "type": "message", "role": "assistant", "model": "gpt-4o",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": ""},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 20, "output_tokens": 5}
            })
        );
    }

    #[test]
    fn finish_reasons_and_errors() {
        let mk = |finish: &str| json!({"id": "x", "model": "m", "choices": [{"finish_reason": finish, "message": {"role": "assistant", "content": "hi"}}]});
        assert_eq!(
            response_openai_to_anthropic(&mk("length")).unwrap()["stop_reason"],
            "max_tokens"
        );
        assert_eq!(
            response_openai_to_anthropic(&mk("content_filter")).unwrap()["stop_reason"],
            "refusal"
        );
        assert_eq!(
            response_openai_to_anthropic(&mk("stop")).unwrap()["stop_reason"],
            "end_turn"
        );
        let err = response_openai_to_anthropic(&json!({"choices": []})).unwrap_err();
        assert_eq!(err.to_string(), "choices: expected a non-empty array");
        let bad = json!({"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}}]});
        assert!(response_openai_to_anthropic(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("choices[0].message.tool_calls[0].function.arguments: invalid JSON"));
    }

    #[test]
    fn anthropic_message_to_openai_completion() {
        let resp = json!({
            "id": "msg_01A", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [
                {"type": "thinking", "thinking": "plan", "signature": "s"},
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "id": "toolu_1", "name": "exec", "input": {"cmd": "ls -la"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 3, "cache_read_input_tokens": 100, "output_tokens": 9}
        });
        let mut out = response_anthropic_to_openai(&resp).unwrap();
        assert!(out["created"].as_u64().unwrap() > 1_700_000_000);
        out["created"] = json!(0);
        assert_eq!(
            out,
            json!({
                "id": "chatcmpl-msg_01A", "object": "chat.completion", "created": 0, "model": "claude-sonnet-4-5",
                "choices": [{"index": 0, "message": {
                    "role": "assistant", "content": "On it.", "reasoning_content": "plan",
                    "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "exec", "arguments": "{\"cmd\":\"ls -la\"}"}}]
                }, "logprobs": null, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 103, "completion_tokens": 9, "total_tokens": 112, "prompt_tokens_details": {"cached_tokens": 100}}
            })
        );
        let back = response_openai_to_anthropic(&out).unwrap();
        assert_eq!(back["id"], "msg_01A");
        assert_eq!(
            back["usage"],
            json!({"input_tokens": 3, "cache_read_input_tokens": 100, "output_tokens": 9})
        );
        assert_eq!(back["content"][2], resp["content"][2]);
    }

    #[test]
    fn stop_reasons_to_openai() {
        for (a, o) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("pause_turn", "stop"),
            ("refusal", "content_filter"),
        ] {
            let resp =
                json!({"id": "m", "content": [{"type": "text", "text": "x"}], "stop_reason": a});
            assert_eq!(
                response_anthropic_to_openai(&resp).unwrap()["choices"][0]["finish_reason"],
                o
            );
        }
        assert_eq!(
            response_anthropic_to_openai(&json!({}))
                .unwrap_err()
                .to_string(),
            "content: missing required field"
        );
    }
}
