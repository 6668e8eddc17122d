//! What the learning side reads from and writes into a client's request: the latest instruction and the system prompt.
//!
//! Both work on the request as the client sent it, in the client's dialect,
//! before any translation.

use serde_json::{json, Value};

use crate::content::plain_text;
use crate::{openclaw, Dialect};

/// The user's latest actual instruction: the text of the last user message
/// that has some once agent envelopes are removed. Messages holding only
/// tool results and OpenClaw's trailing internal-context message have none,
/// so they are passed over. OpenClaw's timestamp prefix and `Runtime:` line
/// are stripped from the text returned.
pub fn latest_instruction(dialect: Dialect, req: &Value) -> Option<String> {
    // Both dialects keep user text in `content` as a string or as
    // `{"type":"text"}` items; tool results are never text items (Anthropic
    // `tool_result` blocks; OpenAI uses role "tool").
    let _ = dialect;
    let messages = req.get("messages")?.as_array()?;
    messages
        .iter()
        .rev()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .filter_map(|m| plain_text(m.get("content")?, "\n"))
        .map(|text| openclaw::user_instruction(&text))
        .find(|text| !text.is_empty())
}

/// Append `text` to the system prompt, after a blank line. Appending (not
/// prepending) keeps the client's prompt a stable prefix, so upstream
/// prompt caches still hit.
///
/// OpenAI: the first `system` or `developer` message gets it (a string is
/// extended, a parts array gets a new text part); without one, a system
/// message is inserted first. Anthropic: `system` is extended the same way,
/// or set. A body that is not an object is left alone.
pub fn inject_system_text(dialect: Dialect, req: &mut Value, text: &str) {
    let Some(body) = req.as_object_mut() else {
        return;
    };
    match dialect {
        Dialect::OpenAi => {
            let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else {
                return;
            };
            let system = messages.iter_mut().find(|m| {
                matches!(
                    m.get("role").and_then(Value::as_str),
                    Some("system" | "developer")
                )
            });
            match system.and_then(Value::as_object_mut) {
                Some(message) => {
                    let content = message.entry("content").or_insert(Value::Null);
                    append(content, text);
                }
                None => messages.insert(0, json!({"role": "system", "content": text})),
            }
        }
        Dialect::Anthropic => append(body.entry("system").or_insert(Value::Null), text),
    }
}

/// Extend a string or block/part array with `text`; anything else becomes
/// `text`.
fn append(content: &mut Value, text: &str) {
    match content {
        Value::String(s) if !s.is_empty() => {
            s.push_str("\n\n");
            s.push_str(text);
        }
        Value::Array(items) => items.push(json!({"type": "text", "text": text})),
        _ => *content = Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERNAL: &str = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nActive processes: none\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>";

    #[test]
    fn latest_instruction_skips_tool_results_and_internal_context() {
        let openai = json!({"messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "[Wed 2026-11-25 03:11 UTC] first ask\n\nRuntime: agent=main | sessionId=abc"},
            {"role": "assistant", "content": "done"},
            {"role": "user", "content": "[Wed 2026-11-25 03:15 UTC] second ask"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "result"},
            {"role": "user", "content": [{"type": "text", "text": INTERNAL}]}
        ]});
        assert_eq!(
            latest_instruction(Dialect::OpenAi, &openai).as_deref(),
            Some("second ask")
        );

        let anthropic = json!({"messages": [
            {"role": "user", "content": [{"type": "text", "text": "[Wed 2026-11-25 03:11 UTC] fix the bug\n\nRuntime: sessionId=x"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}
        ]});
        assert_eq!(
            latest_instruction(Dialect::Anthropic, &anthropic).as_deref(),
            Some("fix the bug")
        );

        let nothing = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": INTERNAL}]}]});
        assert_eq!(latest_instruction(Dialect::OpenAi, &nothing), None);
        assert_eq!(latest_instruction(Dialect::OpenAi, &json!({})), None);
    }

    #[test]
    fn internal_context_inside_a_real_message_is_stripped() {
        let req = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "deploy it"}, {"type": "text", "text": INTERNAL}]}]});
        assert_eq!(
            latest_instruction(Dialect::OpenAi, &req).as_deref(),
            Some("deploy it")
        );
    }

    #[test]
    fn inject_into_openai_system_messages() {
        let mut req = json!({"messages": [{"role": "system", "content": "base"}, {"role": "user", "content": "u"}]});
        inject_system_text(Dialect::OpenAi, &mut req, "SKILL");
        assert_eq!(req["messages"][0]["content"], "base\n\nSKILL");

        let mut parts = json!({"messages": [{"role": "user", "content": "u"}, {"role": "developer", "content": [{"type": "text", "text": "d"}]}]});
        inject_system_text(Dialect::OpenAi, &mut parts, "SKILL");
        assert_eq!(
            parts["messages"][1]["content"],
            json!([{"type": "text", "text": "d"}, {"type": "text", "text": "SKILL"}])
        );

        let mut none = json!({"messages": [{"role": "user", "content": "u"}]});
        inject_system_text(Dialect::OpenAi, &mut none, "SKILL");
        assert_eq!(
            none["messages"],
            json!([{"role": "system", "content": "SKILL"}, {"role": "user", "content": "u"}])
        );
    }

    #[test]
    fn inject_into_anthropic_system() {
        let mut s = json!({"system": "base", "messages": []});
        inject_system_text(Dialect::Anthropic, &mut s, "SKILL");
        assert_eq!(s["system"], "base\n\nSKILL");
        let mut blocks = json!({"system": [{"type": "text", "text": "base", "cache_control": {"type": "ephemeral"}}]});
        inject_system_text(Dialect::Anthropic, &mut blocks, "SKILL");
        assert_eq!(
            blocks["system"][1],
            json!({"type": "text", "text": "SKILL"})
        );
        let mut absent = json!({"messages": []});
        inject_system_text(Dialect::Anthropic, &mut absent, "SKILL");
        assert_eq!(absent["system"], "SKILL");
        let mut not_object = json!([1]);
        inject_system_text(Dialect::Anthropic, &mut not_object, "SKILL");
        assert_eq!(not_object, json!([1]));
    }
}
