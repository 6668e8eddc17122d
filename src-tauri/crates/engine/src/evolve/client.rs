//! The evolver's HTTP client: one non-streaming OpenAI chat completion per
//! question, with a timeout on the whole exchange. Failures become a short
//! text naming what went wrong, stored as the evolution's error.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::ResolvedPrm;

/// Low but not zero: the evolver should write varied skills, yet stick to
/// the answer format.
const TEMPERATURE: f64 = 0.3;

#[derive(Debug, thiserror::Error)]
#[error("cannot create the skill evolver's HTTP client for {url}: {reason}")]
pub struct EvolverClientError {
    url: String,
    reason: String,
}

#[derive(Clone)]
pub struct EvolverClient {
    http: reqwest::Client,
    target: ResolvedPrm,
    timeout: Duration,
}

impl EvolverClient {
    pub fn new(
        target: ResolvedPrm,
        timeout: Duration,
    ) -> Result<EvolverClient, EvolverClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("metaclaw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EvolverClientError {
                url: target.base_url.clone(),
                reason: e.to_string(),
            })?;
        Ok(EvolverClient {
            http,
            target,
            timeout,
        })
    }

    pub fn model(&self) -> &str {
        &self.target.model
    }

    /// Asks the evolver model once; returns its reply text.
    pub async fn ask(&self, messages: &Value) -> Result<String, String> {
        let url = format!("{}/chat/completions", self.target.base_url);
        let body = json!({
            "model": self.target.model,
            "messages": messages,
            "temperature": TEMPERATURE,
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
                "the evolver answered HTTP {}: {snippet}",
                status.as_u16()
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the evolver's answer is not JSON: {e}"))?;
        reply_text(&value).ok_or_else(|| {
            "the evolver's answer has no choices[0].message.content text".to_string()
        })
    }

    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            format!(
                "the evolver did not answer within {} s",
                self.timeout.as_secs_f64()
            )
        } else if error.is_connect() {
            format!("cannot reach the evolver at {}", self.target.base_url)
        } else {
            format!("the request to the evolver failed: {error}")
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
