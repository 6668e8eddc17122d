//! Error bodies in each API's own format, and reading the human message out of an upstream's error body.
//!
//! Clients pick their exception class from the HTTP status, but show the
//! `message` to the user and sometimes branch on `type`, so both follow
//! what the real APIs send for each status.

use serde_json::{json, Value};

use crate::Dialect;

/// Longest plain-text upstream error passed on (an HTML error page from a
/// gateway is not a message).
const MAX_PLAIN_MESSAGE: usize = 500;

/// An error body for `status` in `dialect`:
/// OpenAI `{"error":{"message","type","param":null,"code"}}`,
/// Anthropic `{"type":"error","error":{"type","message"}}`.
pub fn error_body(dialect: Dialect, status: u16, message: &str) -> Value {
    match dialect {
        Dialect::OpenAi => {
            let (kind, code) = openai_type(status);
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Dialect::Anthropic => {
            json!({"type": "error", "error": {"type": anthropic_type(status), "message": message}})
        }
    }
}

/// OpenAI's `type` and `code` for a status. api.openai.com files nearly
/// every client error under `invalid_request_error` and tells them apart by
/// `code`; rate limits and server failures have types of their own.
fn openai_type(status: u16) -> (&'static str, Value) {
    match status {
        401 => ("invalid_request_error", json!("invalid_api_key")),
        429 => ("rate_limit_error", json!("rate_limit_exceeded")),
        500..=599 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    }
}

/// Anthropic's error `type` for a status.
fn anthropic_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// An OpenAI error `type` as the nearest Anthropic one (for in-stream
/// errors, which carry no status).
pub(crate) fn anthropic_type_from_openai(kind: &str) -> &'static str {
    match kind {
        "invalid_request_error" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "not_found_error" => "not_found_error",
        "rate_limit_error" | "requests" | "tokens" | "insufficient_quota" => "rate_limit_error",
        "overloaded_error" => "overloaded_error",
        _ => "api_error",
    }
}

/// The human-readable message of an upstream error body written in
/// `dialect`, or in any of the common shapes OpenAI-compatible servers use
/// (`{"error":"…"}`, `{"message":"…"}`, FastAPI's `{"detail":…}`), or the
/// body itself when it is short plain text. `None` when there is nothing.
pub fn error_message(dialect: Dialect, body: &[u8]) -> Option<String> {
    // Both APIs nest `error.message`; the dialect only says which API the
    // upstream claims to be, and compatible servers stray from both.
    let _ = dialect;
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return json_message(&v);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.len() <= MAX_PLAIN_MESSAGE {
        return Some(text.to_owned());
    }
    let mut end = MAX_PLAIN_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}…", &text[..end]))
}

fn json_message(v: &Value) -> Option<String> {
    let found = v
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .or_else(|| v.get("error").and_then(Value::as_str))
        .or_else(|| v.get("message").and_then(Value::as_str))
        .map(str::to_owned)
        .or_else(|| detail(v.get("detail")?));
    found.filter(|m| !m.trim().is_empty())
}

/// FastAPI's `detail`: a string, or a list of `{"msg":…}` validation errors.
fn detail(d: &Value) -> Option<String> {
    match d {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let msgs: Vec<&str> = items
                .iter()
                .filter_map(|i| i.get("msg").and_then(Value::as_str))
                .collect();
            (!msgs.is_empty()).then(|| msgs.join("; "))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_each_api() {
        assert_eq!(
            error_body(Dialect::OpenAi, 400, "bad"),
            json!({"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": null}})
        );
        assert_eq!(
            error_body(Dialect::OpenAi, 429, "slow")["error"]["type"],
            "rate_limit_error"
        );
        assert_eq!(
            error_body(Dialect::OpenAi, 502, "x")["error"]["type"],
            "server_error"
        );
        assert_eq!(
            error_body(Dialect::Anthropic, 413, "too big"),
            json!({"type": "error", "error": {"type": "request_too_large", "message": "too big"}})
        );
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "api_error"),
            (529, "overloaded_error"),
            (422, "invalid_request_error"),
        ] {
            assert_eq!(
                error_body(Dialect::Anthropic, status, "m")["error"]["type"],
                kind,
                "status {status}"
            );
        }
    }

    #[test]
    fn messages_are_extracted_from_many_shapes() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                br#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#,
                Some("Incorrect API key"),
            ),
            (
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                Some("Overloaded"),
            ),
            (br#"{"error":"model not found"}"#, Some("model not found")),
            (
                br#"{"object":"error","message":"context too long","code":400}"#,
                Some("context too long"),
            ),
            (
                br#"{"detail":[{"loc":["body"],"msg":"field required"}]}"#,
                Some("field required"),
            ),
            (b"Bad Gateway\n", Some("Bad Gateway")),
            (b"  ", None),
            (br#"{"ok":true}"#, None),
        ];
        for (body, want) in cases {
            assert_eq!(error_message(Dialect::OpenAi, body).as_deref(), *want);
        }
        let long = "x".repeat(2000);
        assert_eq!(
            error_message(Dialect::Anthropic, long.as_bytes())
                .unwrap()
                .chars()
                .count(),
            501
        );
    }
}
