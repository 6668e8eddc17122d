//! A stable session key for a request, from the agent's own session id or from the conversation's opening.
//!
//! Agents rarely send a session header, but a conversation's opening — the
//! system prompt and the first user message — is repeated unchanged on
//! every later request of it (tool loops, later turns with more history),
//! so hashing it groups the requests of one conversation and tells two
//! conversations apart.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::content::plain_text;
use crate::{openclaw, Dialect};

/// Where a session key came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionHint {
    /// The agent named its session (OpenClaw's `sessionId=` in the first
    /// user message). It survives OpenClaw's rewriting of retried requests.
    Explicit(String),
    /// Lowercase hex SHA-256 of the dialect, the system prompt text and the
    /// first user message's content as canonical JSON.
    Conversation(String),
}

/// The session hint of a request as the client sent it; `None` when it has
/// no user message.
pub fn session_hint(dialect: Dialect, req: &Value) -> Option<SessionHint> {
    let messages = req.get("messages")?.as_array()?;
    let first_user = messages
        .iter()
        .position(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    let content = messages[first_user].get("content").unwrap_or(&Value::Null);
    if let Some(id) = plain_text(content, "\n")
        .as_deref()
        .and_then(openclaw::session_id)
    {
        return Some(SessionHint::Explicit(id.to_owned()));
    }

    let system = match dialect {
        Dialect::OpenAi => messages[..first_user]
            .iter()
            .filter(|m| {
                matches!(
                    m.get("role").and_then(Value::as_str),
                    Some("system" | "developer")
                )
            })
            .filter_map(|m| plain_text(m.get("content")?, "\n\n"))
            .collect::<Vec<_>>()
            .join("\n\n"),
        Dialect::Anthropic => req
            .get("system")
            .and_then(|s| plain_text(s, "\n\n"))
            .unwrap_or_default(),
    };
    let mut canonical = Vec::with_capacity(256);
    write_canonical(content, &mut canonical);

    let mut hasher = Sha256::new();
    hasher.update(dialect.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(system.as_bytes());
    hasher.update([0]);
    hasher.update(&canonical);
    Some(SessionHint::Conversation(hex(&hasher.finalize())))
}

/// Compact JSON with object keys sorted, so the same content hashes the same
/// whatever key order the client serialised it in.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(val, out);
            }
            out.push(b'}');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    // Writing a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(d: Dialect, v: &Value) -> String {
        match session_hint(d, v) {
            Some(SessionHint::Conversation(k)) => k,
            other => panic!("expected a conversation key, got {other:?}"),
        }
    }

    #[test]
    fn explicit_openclaw_session_id() {
        let req = json!({"messages": [{"role": "system", "content": "s"},
            {"role": "user", "content": "[Wed 2026-11-25 03:11 UTC] hi\n\nRuntime: agent=main | sessionId=9f1c-77 | host=h"}]});
        assert_eq!(
            session_hint(Dialect::OpenAi, &req),
            Some(SessionHint::Explicit("9f1c-77".into()))
        );
    }

    #[test]
    fn same_conversation_same_key_different_conversations_differ() {
        let turn1 = json!({"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": [{"type": "text", "text": "hello"}]}]});
        let turn2 = json!({"messages": [{"role": "system", "content": "sys"},
            {"role": "user", "content": [{"text": "hello", "type": "text"}]},
            {"role": "assistant", "content": "hi"}, {"role": "user", "content": "more"}]});
        let k1 = key(Dialect::OpenAi, &turn1);
        assert_eq!(k1.len(), 64);
        assert_eq!(k1, key(Dialect::OpenAi, &turn2));
        let other = json!({"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "goodbye"}]});
        assert_ne!(k1, key(Dialect::OpenAi, &other));
        let other_system = json!({"messages": [{"role": "system", "content": "sys2"}, {"role": "user", "content": [{"type": "text", "text": "hello"}]}]});
        assert_ne!(k1, key(Dialect::OpenAi, &other_system));
        let anthropic = json!({"system": "sys", "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]});
        assert_ne!(k1, key(Dialect::Anthropic, &anthropic));
    }

    #[test]
    fn no_user_message_no_hint() {
        assert_eq!(
            session_hint(
                Dialect::OpenAi,
                &json!({"messages": [{"role": "system", "content": "s"}]})
            ),
            None
        );
        assert_eq!(session_hint(Dialect::Anthropic, &json!({})), None);
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let mut a = Vec::new();
        write_canonical(
            &json!({"b": [1, {"d": "é\"", "c": null}], "a": true}),
            &mut a,
        );
        assert_eq!(
            String::from_utf8(a).unwrap(),
            r#"{"a":true,"b":[1,{"c":null,"d":"é\""}]}"#
        );
    }
}
