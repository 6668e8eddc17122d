//! The judge's HTTP client: one non-streaming OpenAI chat completion per
//! vote, with a timeout on the whole exchange. Every failure becomes a short
//! text naming what went wrong, stored as the failed vote's reason.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::ResolvedPrm;

#[derive(Debug, thiserror::Error)]
#[error("cannot create the PRM judge's HTTP client for {url}: {reason}")]
pub struct JudgeClientError {
    url: String,
    reason: String,
}

#[derive(Clone)]
pub struct JudgeClient {
    http: reqwest::Client,
    target: ResolvedPrm,
    temperature: f64,
    timeout: Duration,
}

impl JudgeClient {
    pub fn new(
        target: ResolvedPrm,
        temperature: f64,
        timeout: Duration,
    ) -> Result<JudgeClient, JudgeClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("metaclaw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| JudgeClientError {
                url: target.base_url.clone(),
                reason: e.to_string(),
            })?;
        Ok(JudgeClient {
            http,
            target,
            temperature,
            timeout,
        })
    }

    pub fn model(&self) -> &str {
        &self.target.model
    }

    /// Asks the judge once; returns its reply text.
    pub async fn ask(&self, messages: &Value) -> Result<String, String> {
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
                "the judge answered HTTP {}: {snippet}",
                status.as_u16()
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the judge's answer is not JSON: {e}"))?;
        reply_text(&value)
            .ok_or_else(|| "the judge's answer has no choices[0].message.content text".to_string())
    }

    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            format!(
                "the judge did not answer within {} s",
                self.timeout.as_secs_f64()
            )
        } else if error.is_connect() {
            format!("cannot reach the judge at {}", self.target.base_url)
        } else {
            format!("the request to the judge failed: {error}")
        }
    }
}

/// The reply text: a string, or the text parts of a content array.
fn reply_text(value: &Value) -> Option<String> {
    let content = &value["choices"][0]["message"]["content"];
    match content {
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
