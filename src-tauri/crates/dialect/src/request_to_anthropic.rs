//! OpenAI Chat Completions request → Anthropic Messages request.
//!
//! The structural differences: system and developer messages are lifted
//! into `system`; `role: "tool"` messages become `tool_result` blocks in a
//! user message; assistant `tool_calls` become `tool_use` blocks with parsed
//! input; and since Anthropic requires user and assistant turns to
//! alternate, consecutive messages of one role are merged (OpenClaw, for
//! one, follows every tool result with a user message of its own).

use serde_json::{json, Map, Value};

use crate::content::{array, kind, object, plain_text, present, required_str, Object};
use crate::TranslateError;

/// Anthropic requires `max_tokens`; OpenAI clients often leave it out.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Translate an OpenAI `/v1/chat/completions` body into an Anthropic
/// `/v1/messages` body.
pub fn request_openai_to_anthropic(req: &Value) -> Result<Value, TranslateError> {
    let body = object(req, || "body".into())?;
    let mut out = Map::new();
    if let Some(model) = body.get("model") {
        out.insert("model".into(), model.clone());
    }
    let source = present(body, "messages").ok_or_else(|| TranslateError::missing("messages"))?;
    let (system, turns) = conversation(array(source, || "messages".into())?)?;
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    out.insert(
        "messages".into(),
        Value::Array(turns.into_iter().map(Turn::into_value).collect()),
    );
    sampling(body, &mut out)?;
    tools(body, &mut out)?;
    Ok(Value::Object(out))
}

/// The system texts and the alternating user/assistant turns.
fn conversation(messages: &[Value]) -> Result<(Vec<String>, Vec<Turn>), TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    // The legacy `functions` API has no call ids; a result answers the
    // latest call.
    let mut legacy_call_id = String::new();
    for (i, message) in messages.iter().enumerate() {
        let path = || format!("messages[{i}]");
        let message = object(message, path)?;
        let content = present(message, "content");
        let turn = match required_str(message, "role", path)? {
            "system" | "developer" => {
                let text = content.map_or(Ok(String::new()), |c| {
                    plain_text(c, "\n\n").ok_or_else(|| {
                        TranslateError::wrong_type(
                            format!("messages[{i}].content"),
                            "a string or an array of text parts",
                        )
                    })
                })?;
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            "user" => Turn::user(user_content(i, content)?),
            "assistant" => match assistant_content(i, message, &mut legacy_call_id)? {
                Some(content) => Turn {
                    role: "assistant",
                    content,
                },
                // Anthropic rejects empty assistant turns.
                None => continue,
            },
            "tool" => {
                let id = required_str(message, "tool_call_id", path)?;
                Turn::user(Content::Blocks(vec![tool_result(i, id, content)?]))
            }
            "function" => Turn::user(Content::Blocks(vec![tool_result(
                i,
                &legacy_call_id,
                content,
            )?])),
            other => {
                return Err(TranslateError::invalid(
                    format!("messages[{i}].role"),
                    format!("invalid role \"{other}\""),
                ))
            }
        };
        match turns.last_mut() {
            Some(last) if last.role == turn.role => last.absorb(turn),
            _ => turns.push(turn),
        }
    }
    Ok((system, turns))
}

/// `max_tokens`, stop sequences, temperature, `top_p`, user and `stream`.
fn sampling(body: &Object, out: &mut Object) -> Result<(), TranslateError> {
    let max_tokens =
        match present(body, "max_completion_tokens").or_else(|| present(body, "max_tokens")) {
            None => DEFAULT_MAX_TOKENS,
            Some(v) => v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                let key = if body.contains_key("max_completion_tokens") {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                };
                TranslateError::wrong_type(key, "a positive integer")
            })?,
        };
    out.insert("max_tokens".into(), json!(max_tokens));

    match present(body, "stop") {
        None => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        Some(_) => {
            return Err(TranslateError::wrong_type(
                "stop",
                "a string or an array of strings",
            ))
        }
    }
    if let Some(t) = present(body, "temperature") {
        // OpenAI allows 0–2, Anthropic 0–1.
        let t = t
            .as_f64()
            .ok_or_else(|| TranslateError::wrong_type("temperature", "a number"))?;
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = present(body, "top_p") {
        out.insert("top_p".into(), p.clone());
    }
    if let Some(user) = present(body, "user") {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(stream) = present(body, "stream") {
        out.insert("stream".into(), stream.clone());
    }
    Ok(())
}

/// `tools` (or legacy `functions`), `tool_choice` (or legacy
/// `function_call`) and `parallel_tool_calls`.
fn tools(body: &Object, out: &mut Object) -> Result<(), TranslateError> {
    let tools = present(body, "tools")
        .map(|t| ("tools", t, false))
        .or_else(|| present(body, "functions").map(|t| ("functions", t, true)));
    if let Some((key, tools, legacy)) = tools {
        let converted = array(tools, || key.into())?
            .iter()
            .enumerate()
            .map(|(i, t)| tool(key, i, t, legacy))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert("tools".into(), Value::Array(converted));
    }
    let choice = match present(body, "tool_choice").or_else(|| present(body, "function_call")) {
        Some(choice) => Some(tool_choice(choice)?),
        None => None,
    };
    // Anthropic has no top-level switch; the flag lives on tool_choice.
    let serial = body.get("parallel_tool_calls") == Some(&Value::Bool(false));
    let choice = match choice {
        None if serial && out.contains_key("tools") => Some(json!({"type": "auto"})),
        other => other,
    };
    if let Some(mut choice) = choice {
        if serial && choice["type"] != "none" {
            if let Some(obj) = choice.as_object_mut() {
                obj.insert("disable_parallel_tool_use".into(), Value::Bool(true));
            }
        }
        out.insert("tool_choice".into(), choice);
    }
    Ok(())
}

/// A message's content while turns are being merged: kept as a plain string
/// as long as it is one, so simple conversations stay simple.
enum Content {
    Text(String),
    Blocks(Vec<Value>),
}

impl Content {
    fn into_blocks(self) -> Vec<Value> {
        match self {
            Content::Text(s) if s.is_empty() => Vec::new(),
            Content::Text(s) => vec![json!({"type": "text", "text": s})],
            Content::Blocks(b) => b,
        }
    }
}

struct Turn {
    role: &'static str,
    content: Content,
}

impl Turn {
    fn user(content: Content) -> Self {
        Turn {
            role: "user",
            content,
        }
    }

    fn absorb(&mut self, next: Turn) {
        let mut blocks =
            std::mem::replace(&mut self.content, Content::Blocks(Vec::new())).into_blocks();
        blocks.extend(next.content.into_blocks());
        if self.role == "user" {
            // Anthropic wants the tool results of a user turn before any
            // other content; a stable sort keeps each group's order.
            blocks.sort_by_key(|b| kind(b) != "tool_result");
        }
        self.content = Content::Blocks(blocks);
    }

    fn into_value(self) -> Value {
        let content = match self.content {
            Content::Text(s) => Value::String(s),
            Content::Blocks(b) => Value::Array(b),
        };
        json!({"role": self.role, "content": content})
    }
}

fn user_content(i: usize, content: Option<&Value>) -> Result<Content, TranslateError> {
    match content {
        None => Ok(Content::Text(String::new())),
        Some(Value::String(s)) => Ok(Content::Text(s.clone())),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let path = || format!("messages[{i}].content[{j}]");
                let part_obj = object(part, path)?;
                match kind(part) {
                    "text" => {
                        let text = required_str(part_obj, "text", path)?;
                        // Anthropic rejects empty text blocks.
                        if !text.is_empty() {
                            blocks.push(json!({"type": "text", "text": text}));
                        }
                    }
                    "image_url" => blocks.push(image_block(part_obj, &path)?),
                    other => {
                        return Err(TranslateError::unsupported(path(), "content part", other))
                    }
                }
            }
            Ok(Content::Blocks(blocks))
        }
        Some(_) => Err(TranslateError::wrong_type(
            format!("messages[{i}].content"),
            "a string or an array of content parts",
        )),
    }
}

/// `{"type":"image_url","image_url":{"url":…}}` (or the older bare-string
/// `image_url`) → an Anthropic image block with a base64 or url source.
fn image_block(part: &Object, path: &dyn Fn() -> String) -> Result<Value, TranslateError> {
    let url_path = || format!("{}.image_url.url", path());
    let url = match present(part, "image_url") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => required_str(o, "url", || format!("{}.image_url", path()))?,
        _ => return Err(TranslateError::missing(url_path())),
    };
    let source = if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest
            .split_once(',')
            .ok_or_else(|| TranslateError::invalid(url_path(), "data URL has no ','"))?;
        let media_type = header
            .strip_suffix(";base64")
            .ok_or_else(|| TranslateError::invalid(url_path(), "data URL is not base64-encoded"))?;
        json!({"type": "base64", "media_type": media_type, "data": data})
    } else if url.starts_with("https://") || url.starts_with("http://") {
        json!({"type": "url", "url": url})
    } else {
        return Err(TranslateError::invalid(
            url_path(),
            "expected a data: or http(s) URL",
        ));
    };
    Ok(json!({"type": "image", "source": source}))
}

/// An assistant message's text and tool calls as content; `None` when it
/// has neither.
fn assistant_content(
    i: usize,
    message: &Object,
    legacy_call_id: &mut String,
) -> Result<Option<Content>, TranslateError> {
    let mut blocks = Vec::new();
    match present(message, "content") {
        None => {}
        Some(Value::String(s)) => {
            if !message.contains_key("tool_calls") && !message.contains_key("function_call") {
                return Ok((!s.is_empty()).then(|| Content::Text(s.clone())));
            }
            if !s.is_empty() {
                blocks.push(json!({"type": "text", "text": s}));
            }
        }
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let path = || format!("messages[{i}].content[{j}]");
                let field = match kind(part) {
                    "text" => "text",
                    "refusal" => "refusal",
                    other => {
                        return Err(TranslateError::unsupported(path(), "content part", other))
                    }
                };
                let text = required_str(object(part, path)?, field, path)?;
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::wrong_type(
                format!("messages[{i}].content"),
                "a string, an array of content parts or null",
            ))
        }
    }
    if let Some(calls) = present(message, "tool_calls") {
        for (j, call) in array(calls, || format!("messages[{i}].tool_calls"))?
            .iter()
            .enumerate()
        {
            let path = || format!("messages[{i}].tool_calls[{j}]");
            let call = object(call, path)?;
            let id = required_str(call, "id", path)?;
            let function = object(
                present(call, "function")
                    .ok_or_else(|| TranslateError::missing(format!("{}.function", path())))?,
                || format!("{}.function", path()),
            )?;
            blocks.push(tool_use(id, function, &|| format!("{}.function", path()))?);
        }
    } else if let Some(call) = present(message, "function_call") {
        let path = || format!("messages[{i}].function_call");
        *legacy_call_id = format!("call_legacy_{i}");
        blocks.push(tool_use(legacy_call_id, object(call, path)?, &path)?);
    }
    Ok((!blocks.is_empty()).then_some(Content::Blocks(blocks)))
}

fn tool_use(
    id: &str,
    function: &Object,
    path: &dyn Fn() -> String,
) -> Result<Value, TranslateError> {
    let name = required_str(function, "name", path)?;
    let args_path = || format!("{}.arguments", path());
    let input = match present(function, "arguments") {
        None => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .map_err(|e| TranslateError::invalid_json(args_path(), &e))?,
        // Some clients replay arguments as an object rather than a string.
        Some(v) => v.clone(),
    };
    if !input.is_object() {
        return Err(TranslateError::wrong_type(args_path(), "a JSON object"));
    }
    Ok(json!({"type": "tool_use", "id": anthropic_tool_id(id), "name": name, "input": input}))
}

fn tool_result(i: usize, id: &str, content: Option<&Value>) -> Result<Value, TranslateError> {
    let text = match content {
        None => String::new(),
        Some(c) => plain_text(c, "\n").ok_or_else(|| {
            TranslateError::wrong_type(
                format!("messages[{i}].content"),
                "a string or an array of text parts",
            )
        })?,
    };
    Ok(json!({"type": "tool_result", "tool_use_id": anthropic_tool_id(id), "content": text}))
}

/// Anthropic only accepts tool ids matching `^[a-zA-Z0-9_-]+$`; other
/// providers' ids (Kimi's `functions.get_weather:0`) are rewritten the same
/// way in the `tool_use` and its `tool_result`, so they still pair up.
fn anthropic_tool_id(id: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(ok) {
        id.to_owned()
    } else if id.is_empty() {
        "toolu_missing".to_owned()
    } else {
        id.chars().map(|c| if ok(c) { c } else { '_' }).collect()
    }
}

/// An OpenAI function tool (or legacy `functions` entry) → an Anthropic tool.
fn tool(key: &str, i: usize, t: &Value, legacy: bool) -> Result<Value, TranslateError> {
    let path = || format!("{key}[{i}]");
    let t = object(t, path)?;
    let function = if legacy {
        t
    } else {
        match t.get("type").and_then(Value::as_str) {
            None | Some("function") => {}
            Some(other) => return Err(TranslateError::unsupported(path(), "tool", other)),
        }
        let f = present(t, "function")
            .ok_or_else(|| TranslateError::missing(format!("{}.function", path())))?;
        object(f, || format!("{}.function", path()))?
    };
    let fpath = || {
        if legacy {
            path()
        } else {
            format!("{}.function", path())
        }
    };
    let mut out = Map::new();
    out.insert("name".into(), json!(required_str(function, "name", fpath)?));
    if let Some(d) = present(function, "description") {
        out.insert("description".into(), d.clone());
    }
    let schema = present(function, "parameters")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    out.insert("input_schema".into(), schema);
    Ok(Value::Object(out))
}

fn tool_choice(choice: &Value) -> Result<Value, TranslateError> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"type": "auto"})),
            "required" => Ok(json!({"type": "any"})),
            "none" => Ok(json!({"type": "none"})),
            other => Err(TranslateError::invalid(
                "tool_choice",
                format!("unknown value \"{other}\""),
            )),
        },
        Value::Object(o) => {
            // {"type":"function","function":{"name"}} or legacy {"name"}.
            let named = match present(o, "function") {
                Some(f) => object(f, || "tool_choice.function".into())?,
                None => o,
            };
            let name = required_str(named, "name", || "tool_choice.function".into())?;
            Ok(json!({"type": "tool", "name": name}))
        }
        _ => Err(TranslateError::wrong_type(
            "tool_choice",
            "a string or an object",
        )),
    }
}

#[cfg(test)]
#[path = "request_to_anthropic_tests.rs"]
mod tests;
