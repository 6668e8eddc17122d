//! The HTTP client the learning models share (the PRM judge, the skill
//! evolver): one non-streaming OpenAI chat completion per question, with a
//! timeout on the whole exchange. Every failure becomes a short text naming
//! the model's role and what went wrong, stored with the judgement or the
//! evolution it spoiled.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::ResolvedPrm;

#[derive(Debug, thiserror::Error)]
#[error("cannot create the {role}'s HTTP client for {url}: {reason}")]
pub struct ModelClientError {
    role: &'static str,
    url: String,
    reason: String,
}

#[derive(Clone)]
pub struct ModelClient {
    /// Who this model is in messages: "judge", "evolver".
    role: &'static str,
    http: reqwest::Client,
    target: ResolvedPrm,
    temperature: f64,
    timeout: Duration,
}

impl ModelClient {
    pub fn new(
        role: &'static str,
        target: ResolvedPrm,
        temperature: f64,
        timeout: Duration,
    ) -> Result<ModelClient, ModelClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("metaclaw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ModelClientError {
                role,
                url: target.base_url.clone(),
                reason: e.to_string(),
            })?;
        Ok(ModelClient {
            role,
            http,
            target,
            temperature,
            timeout,
        })
    }

    pub fn model(&self) -> &str {
        &self.target.model
    }

    /// Asks the model once; returns its reply text.
    pub async fn ask(&self, messages: &Value) -> Result<String, String> {
        let role = self.role;
        let url = format!("{}/chat/completions", self.target.base_url);
        let body = json!({
            "model": self.target.model,
            "messages": messages,
            "temperature": self.temperature,
            "stream": false,
        });
        let mut request = self.http.post(&url).json(&body);
        if !self.target.api_key.is_empty() {
            request = request.bearer_auth(self.target.api_key.expose());
        }
        let response = request.send().await.map_err(|e| self.describe(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.describe(&e))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let snippet: String = text.chars().take(200).collect();
            return Err(format!(
                "the {role} answered HTTP {}: {snippet}",
                status.as_u16()
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the {role}'s answer is not JSON: {e}"))?;
        reply_text(&value)
            .ok_or_else(|| format!("the {role}'s answer has no choices[0].message.content text"))
    }

    fn describe(&self, error: &reqwest::Error) -> String {
        let role = self.role;
        if error.is_timeout() {
            format!(
                "the {role} did not answer within {} s",
                self.timeout.as_secs_f64()
            )
        } else if error.is_connect() {
            format!("cannot reach the {role} at {}", self.target.base_url)
        } else {
            format!("the request to the {role} failed: {error}")
        }
    }
}

/// The reply text: a string, or the text parts of a content array.
fn reply_text(value: &Value) -> Option<String> {
    match &value["choices"][0]["message"]["content"] {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
        ),
        _ => None,
    }
}

/// `text` cut to at most about `max` bytes, keeping its head and tail: an
/// instruction's request and an answer's conclusion are at the ends.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let head_end = floor_boundary(text, max * 3 / 4);
    let tail_start = ceil_boundary(text, text.len() - max / 4);
    format!(
        "{}\n[… {} bytes cut …]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while at < text.len() && !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::reply_text;
    use serde_json::json;

    #[test]
    fn reads_string_and_part_replies() {
        let plain = json!({"choices": [{"message": {"content": "Score: 1"}}]});
        assert_eq!(reply_text(&plain).as_deref(), Some("Score: 1"));
        let parts = json!({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]});
        assert_eq!(reply_text(&parts).as_deref(), Some("ab"));
        assert_eq!(reply_text(&json!({"choices": []})), None);
    }
}
