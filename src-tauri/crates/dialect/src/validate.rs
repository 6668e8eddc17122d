//! Shape checks on a client's request body before it is forwarded or translated.
//!
//! Only what the proxy itself relies on is checked (roles, `messages`,
//! `max_tokens`, the types of `model` and `stream`); everything else is left
//! for the upstream to judge, so new API features keep working.

use serde_json::Value;

use crate::{Dialect, TranslateError};

const OPENAI_ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];
const ANTHROPIC_ROLES: &[&str] = &["user", "assistant"];

/// Check that `req` is a request body the proxy can handle in `dialect`.
pub fn validate_request(dialect: Dialect, req: &Value) -> Result<(), TranslateError> {
    let body = req
        .as_object()
        .ok_or_else(|| TranslateError::wrong_type("body", "a JSON object"))?;

    if let Some(model) = body.get("model") {
        if !model.is_string() {
            return Err(TranslateError::wrong_type("model", "a string"));
        }
    }
    if let Some(stream) = body.get("stream") {
        // `null` is what some SDKs send for "not set".
        if !stream.is_boolean() && !stream.is_null() {
            return Err(TranslateError::wrong_type("stream", "a boolean"));
        }
    }

    let messages = match body.get("messages") {
        None | Some(Value::Null) => return Err(TranslateError::missing("messages")),
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(_) => return Err(TranslateError::wrong_type("messages", "a non-empty array")),
    };
    let roles = match dialect {
        Dialect::OpenAi => OPENAI_ROLES,
        Dialect::Anthropic => ANTHROPIC_ROLES,
    };
    for (i, message) in messages.iter().enumerate() {
        let message = message
            .as_object()
            .ok_or_else(|| TranslateError::wrong_type(format!("messages[{i}]"), "a JSON object"))?;
        match message.get("role") {
            None | Some(Value::Null) => {
                return Err(TranslateError::missing(format!("messages[{i}].role")))
            }
            Some(Value::String(role)) if roles.contains(&role.as_str()) => {}
            Some(Value::String(role)) => {
                return Err(TranslateError::invalid(
                    format!("messages[{i}].role"),
                    format!(
                        "invalid role \"{role}\" (expected one of {})",
                        roles.join(", ")
                    ),
                ))
            }
            Some(_) => {
                return Err(TranslateError::wrong_type(
                    format!("messages[{i}].role"),
                    "a string",
                ))
            }
        }
    }

    if dialect == Dialect::Anthropic {
        match body.get("max_tokens") {
            None | Some(Value::Null) => return Err(TranslateError::missing("max_tokens")),
            Some(v) if v.as_u64().is_some_and(|n| n > 0) => {}
            Some(_) => {
                return Err(TranslateError::wrong_type(
                    "max_tokens",
                    "a positive integer",
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(d: Dialect, v: Value) -> String {
        validate_request(d, &v).unwrap_err().to_string()
    }

    #[test]
    fn accepts_typical_requests() {
        let o = json!({"model":"gpt-4o","stream":true,"messages":[
            {"role":"system","content":"s"},{"role":"developer","content":"d"},
            {"role":"user","content":"u"},{"role":"assistant","content":null,"tool_calls":[]},
            {"role":"tool","tool_call_id":"c","content":"r"},{"role":"function","name":"f","content":"r"}]});
        assert!(validate_request(Dialect::OpenAi, &o).is_ok());
        let a =
            json!({"model":"claude","max_tokens":1024,"messages":[{"role":"user","content":"hi"}]});
        assert!(validate_request(Dialect::Anthropic, &a).is_ok());
    }

    #[test]
    fn rejects_with_path_and_problem() {
        use Dialect::*;
        assert_eq!(err(OpenAi, json!([])), "body: expected a JSON object");
        assert_eq!(err(OpenAi, json!({})), "messages: missing required field");
        assert_eq!(
            err(OpenAi, json!({"messages":[]})),
            "messages: expected a non-empty array"
        );
        assert_eq!(
            err(OpenAi, json!({"messages":["hi"]})),
            "messages[0]: expected a JSON object"
        );
        assert_eq!(
            err(OpenAi, json!({"messages":[{"content":"x"}]})),
            "messages[0].role: missing required field"
        );
        assert_eq!(
            err(
                Anthropic,
                json!({"max_tokens":5,"messages":[{"role":"user"},{"role":"system","content":"x"}]})
            ),
            "messages[1].role: invalid role \"system\" (expected one of user, assistant)"
        );
        assert_eq!(
            err(Anthropic, json!({"messages":[{"role":"user"}]})),
            "max_tokens: missing required field"
        );
        assert_eq!(
            err(
                Anthropic,
                json!({"max_tokens":0,"messages":[{"role":"user"}]})
            ),
            "max_tokens: expected a positive integer"
        );
        assert_eq!(
            err(OpenAi, json!({"model":4,"messages":[{"role":"user"}]})),
            "model: expected a string"
        );
        assert_eq!(
            err(OpenAi, json!({"stream":"yes","messages":[{"role":"user"}]})),
            "stream: expected a boolean"
        );
    }
}
