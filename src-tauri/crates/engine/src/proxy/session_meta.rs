//! Reads MetaClaw's session controls from a request: the `X-Session-Id`,
//! `X-Turn-Type` and `X-Session-Done` headers, or the same as body fields,
//! which are removed so the upstream never sees them.

use axum::http::HeaderMap;
use metaclaw_dialect::{session_hint, Dialect, SessionHint};
use metaclaw_store::TurnType;
use serde_json::Value;

use super::error::ProxyError;
use crate::session::KeySource;

pub struct SessionMeta {
    pub key: String,
    pub source: KeySource,
    pub turn_type: TurnType,
    pub done: bool,
}

impl SessionMeta {
    /// Takes the controls out of `body` (headers win over body fields) and
    /// derives a session key when the client gave none.
    pub fn take(
        dialect: Dialect,
        headers: &HeaderMap,
        body: &mut Value,
    ) -> Result<SessionMeta, ProxyError> {
        let fields = body.as_object_mut();
        let (body_id, body_type, body_done) = match fields {
            Some(map) => (
                map.remove("session_id"),
                map.remove("turn_type"),
                map.remove("session_done"),
            ),
            None => (None, None, None),
        };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };

        let turn_type_text = header("x-turn-type").map(str::to_string).or_else(|| {
            body_type
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let turn_type = match turn_type_text
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("main") => TurnType::Main,
            Some("side") => TurnType::Side,
            Some(other) => {
                return Err(ProxyError::InvalidRequest(format!(
                "turn type must be \"main\" or \"side\", not {other:?} (X-Turn-Type / turn_type)"
            )))
            }
        };

        let done = match header("x-session-done") {
            Some(value) => truthy(value),
            None => match &body_done {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => truthy(s),
                Some(Value::Number(n)) => n.as_i64() == Some(1),
                _ => false,
            },
        };

        let (key, source) = if let Some(id) = header("x-session-id").filter(|v| !v.is_empty()) {
            (format!("id:{id}"), KeySource::Header)
        } else if let Some(id) = body_id
            .as_ref()
            .and_then(value_text)
            .filter(|v| !v.is_empty())
        {
            (format!("id:{id}"), KeySource::Body)
        } else {
            match session_hint(dialect, body) {
                Some(SessionHint::Explicit(id)) => (format!("agent:{id}"), KeySource::Agent),
                Some(SessionHint::Conversation(hash)) => {
                    (format!("conversation:{hash}"), KeySource::Conversation)
                }
                None => (
                    format!("request:{}", uuid::Uuid::new_v4().simple()),
                    KeySource::Request,
                ),
            }
        };
        Ok(SessionMeta {
            key,
            source,
            turn_type,
            done,
        })
    }
}

fn truthy(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_fields_are_stripped_and_headers_win() {
        let mut headers = HeaderMap::new();
        headers.insert("x-session-id", "from-header".parse().unwrap());
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "session_id": "from-body", "turn_type": "side", "session_done": true});
        let meta = SessionMeta::take(Dialect::OpenAi, &headers, &mut body).unwrap();
        assert_eq!(meta.key, "id:from-header");
        assert_eq!(meta.turn_type, TurnType::Side);
        assert!(meta.done);
        assert!(
            body.get("session_id").is_none()
                && body.get("turn_type").is_none()
                && body.get("session_done").is_none()
        );
    }

    #[test]
    fn conversations_without_ids_get_a_derived_key() {
        let mut a = json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "first"}]});
        let mut b = json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second"}]});
        let ka = SessionMeta::take(Dialect::OpenAi, &HeaderMap::new(), &mut a).unwrap();
        let kb = SessionMeta::take(Dialect::OpenAi, &HeaderMap::new(), &mut b).unwrap();
        assert_eq!(ka.key, kb.key);
        assert_eq!(ka.source, KeySource::Conversation);
    }

    #[test]
    fn an_unknown_turn_type_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("x-turn-type", "background".parse().unwrap());
        let mut body = json!({"messages": []});
        let err = SessionMeta::take(Dialect::OpenAi, &headers, &mut body)
            .err()
            .unwrap();
        assert!(err.to_string().contains("background"));
    }
}
