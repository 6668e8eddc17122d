//! The judge's prompt: the user's instruction, the assistant's response
//! (text and tool calls) and the user's next message, each cut to a size a
//! judge reads well, with the answer format the verdict parser expects.

use metaclaw_dialect::{latest_instruction, Dialect};
use serde_json::{json, Value};

use crate::model_client::cut;

/// The most bytes kept of each part. Long parts keep their head and tail:
/// an instruction's request and an answer's conclusion are at the ends.
pub const MAX_PART_BYTES: usize = 6 * 1024;

const SYSTEM: &str = "You are a strict process reward model. You judge whether an AI \
assistant's response accomplished what the user asked. The user's next message, when \
given, is strong evidence: a correction, complaint or repeated request means the \
response failed; moving on to a new task means it was probably fine.";

const ANSWER_FORMAT: &str = "Explain your judgement in one to three sentences, then end \
with a final line that is exactly one of:\nScore: +1   (the response did what was asked)\n\
Score: 0    (partly, or impossible to tell)\nScore: -1   (wrong, unhelpful, or corrected by the user)";

/// What one turn shows the judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JudgeInput {
    pub instruction: Option<String>,
    pub response: String,
    pub next_message: Option<String>,
}

impl JudgeInput {
    /// Reads a stored turn; `api` is the dialect the request and response
    /// are stored in (the upstream's).
    pub fn from_turn(
        api: Dialect,
        request: &Value,
        response: Option<&Value>,
        next_message: Option<String>,
    ) -> JudgeInput {
        JudgeInput {
            instruction: latest_instruction(api, request),
            response: response
                .map(|r| render_response(api, r))
                .unwrap_or_default(),
            next_message,
        }
    }
}

/// The chat messages sent to the judge.
pub fn messages(input: &JudgeInput) -> Value {
    let instruction = input
        .instruction
        .as_deref()
        .map_or("(no user text found in the request)".to_string(), truncate);
    let response = if input.response.trim().is_empty() {
        "(the response was empty)".to_string()
    } else {
        truncate(&input.response)
    };
    let next = input.next_message.as_deref().map_or(
        "(none: the conversation ended or the user has not replied)".to_string(),
        truncate,
    );
    let user = format!(
        "## The user's instruction\n{instruction}\n\n## The assistant's response\n{response}\n\n\
         ## The user's next message\n{next}\n\n{ANSWER_FORMAT}"
    );
    json!([
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": user},
    ])
}

/// The response's text and tool calls, in either dialect.
pub fn render_response(api: Dialect, response: &Value) -> String {
    let mut parts = Vec::new();
    match api {
        Dialect::OpenAi => {
            let message = &response["choices"][0]["message"];
            push_text(&mut parts, &message["content"]);
            for call in message["tool_calls"].as_array().into_iter().flatten() {
                let function = &call["function"];
                parts.push(tool_call(
                    function["name"].as_str().unwrap_or("?"),
                    function["arguments"]
                        .as_str()
                        .map_or_else(|| function["arguments"].to_string(), str::to_string),
                ));
            }
        }
        Dialect::Anthropic => {
            for block in response["content"].as_array().into_iter().flatten() {
                match block["type"].as_str() {
                    Some("text") => push_text(&mut parts, &block["text"]),
                    Some("tool_use") => parts.push(tool_call(
                        block["name"].as_str().unwrap_or("?"),
                        block["input"].to_string(),
                    )),
                    _ => {}
                }
            }
        }
    }
    parts.join("\n")
}

fn push_text(parts: &mut Vec<String>, content: &Value) {
    match content {
        Value::String(text) if !text.is_empty() => parts.push(text.clone()),
        Value::Array(items) => {
            for item in items {
                if let Some(text) = item["text"].as_str().filter(|t| !t.is_empty()) {
                    parts.push(text.to_string());
                }
            }
        }
        _ => {}
    }
}

fn tool_call(name: &str, arguments: String) -> String {
    format!("[tool call] {name}({arguments})")
}

/// `text` cut to [`MAX_PART_BYTES`], keeping its head and tail.
pub fn truncate(text: &str) -> String {
    cut(text, MAX_PART_BYTES)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_holds_all_three_parts_and_the_format() {
        let request = json!({"messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "List the meetings with +08:00 offsets"},
        ]});
        let response = json!({"choices": [{"message": {"role": "assistant",
            "content": "Here they are", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "calendar", "arguments": "{\"day\":\"mon\"}"}}]}}]});
        let input = JudgeInput::from_turn(
            Dialect::OpenAi,
            &request,
            Some(&response),
            Some("no, the dates must include the +08:00 offset".into()),
        );
        let messages = messages(&input);
        let user = messages[1]["content"].as_str().unwrap();
        assert!(user.contains("List the meetings with +08:00 offsets"));
        assert!(user.contains("Here they are\n[tool call] calendar({\"day\":\"mon\"})"));
        assert!(user.contains("## The user's next message\nno, the dates must include"));
        assert!(user.ends_with("Score: -1   (wrong, unhelpful, or corrected by the user)"));
        assert_eq!(messages[0]["role"], "system");
    }

    #[test]
    fn missing_parts_are_said_plainly() {
        let input = JudgeInput::from_turn(Dialect::OpenAi, &json!({}), None, None);
        let user = messages(&input)[1]["content"].as_str().unwrap().to_string();
        assert!(user.contains("(no user text found in the request)"));
        assert!(user.contains("(the response was empty)"));
        assert!(user.contains("(none: the conversation ended"));
    }

    #[test]
    fn anthropic_responses_render_text_and_tool_use() {
        let response = json!({"content": [
            {"type": "thinking", "thinking": "hidden"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "t1", "name": "search", "input": {"q": "tz"}},
        ]});
        assert_eq!(
            render_response(Dialect::Anthropic, &response),
            "Checking.\n[tool call] search({\"q\":\"tz\"})"
        );
        let parts = json!({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]});
        assert_eq!(render_response(Dialect::OpenAi, &parts), "a\nb");
    }

    #[test]
    fn long_parts_keep_head_and_tail_on_char_boundaries() {
        assert_eq!(truncate("short"), "short");
        let text = format!("START{}END", "é".repeat(10_000));
        let cut = truncate(&text);
        assert!(cut.starts_with("START") && cut.ends_with("END"), "{cut}");
        assert!(cut.len() <= MAX_PART_BYTES + 40, "{}", cut.len());
        assert!(cut.contains("bytes cut"));
    }
}
