//! The HTTP client for upstream LLM APIs: one shared connection pool, URLs
//! and auth headers per API kind, and errors classified for the proxy.

use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use metaclaw_dialect::Dialect;

use crate::config::ResolvedUpstream;

/// The `anthropic-version` sent when the client did not choose one.
const ANTHROPIC_VERSION: &str = "2023-06-01";

#[derive(Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    target: ResolvedUpstream,
    /// Longest wait for response headers, and between stream chunks.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the upstream at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the upstream at {url} did not answer within {secs} s")]
    Timeout { url: String, secs: f64 },
    #[error("the request to the upstream at {url} failed: {reason}")]
    Failed { url: String, reason: String },
}

impl UpstreamClient {
    pub fn new(
        target: ResolvedUpstream,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<UpstreamClient, UpstreamError> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("metaclaw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UpstreamError::Failed {
                url: target.base_url.clone(),
                reason: error_chain(&e),
            })?;
        Ok(UpstreamClient {
            http,
            target,
            timeout,
        })
    }

    pub fn target(&self) -> &ResolvedUpstream {
        &self.target
    }

    pub fn api(&self) -> Dialect {
        self.target.api
    }

    pub fn chat_url(&self) -> String {
        match self.target.api {
            Dialect::OpenAi => format!("{}/chat/completions", self.target.base_url),
            Dialect::Anthropic => format!("{}/messages", anthropic_v1(&self.target.base_url)),
        }
    }

    pub fn models_url(&self) -> String {
        match self.target.api {
            Dialect::OpenAi => format!("{}/models", self.target.base_url),
            Dialect::Anthropic => format!("{}/models", anthropic_v1(&self.target.base_url)),
        }
    }

    /// Sends a chat request; resolves when the response headers arrive.
    /// `client_headers` contributes only the Anthropic version and beta
    /// flags a same-dialect client asked for; nothing else is forwarded.
    pub async fn send_chat(
        &self,
        body: Bytes,
        stream: bool,
        client_headers: &HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = self.chat_url();
        let request = self
            .authorized(self.http.post(&url), client_headers)
            .header("content-type", "application/json")
            .header(
                "accept",
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(body);
        self.send(url, request).await
    }

    pub async fn get_models(
        &self,
        client_headers: &HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = self.models_url();
        let request = self.authorized(self.http.get(&url), client_headers);
        self.send(url, request).await
    }

    fn authorized(
        &self,
        request: reqwest::RequestBuilder,
        client_headers: &HeaderMap,
    ) -> reqwest::RequestBuilder {
        let key = self.target.api_key.expose();
        match self.target.api {
            Dialect::OpenAi if key.is_empty() => request,
            Dialect::OpenAi => request.bearer_auth(key),
            Dialect::Anthropic => {
                let version = client_headers
                    .get("anthropic-version")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(ANTHROPIC_VERSION);
                let mut request = request.header("anthropic-version", version);
                if let Some(beta) = client_headers.get("anthropic-beta") {
                    request = request.header("anthropic-beta", beta);
                }
                if key.is_empty() {
                    request
                } else {
                    request.header("x-api-key", key)
                }
            }
        }
    }

    async fn send(
        &self,
        url: String,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UpstreamError> {
        match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => Err(UpstreamError::Timeout {
                url,
                secs: self.timeout.as_secs_f64(),
            }),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Unreachable {
                url,
                reason: error_chain(&e),
            }),
            Ok(Err(e)) if e.is_timeout() => Err(UpstreamError::Timeout {
                url,
                secs: self.timeout.as_secs_f64(),
            }),
            Ok(Err(e)) => Err(UpstreamError::Failed {
                url,
                reason: error_chain(&e),
            }),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// Anthropic's base URL is documented without `/v1`, but users paste both.
fn anthropic_v1(base_url: &str) -> String {
    if base_url.ends_with("/v1") {
        base_url.to_string()
    } else {
        format!("{base_url}/v1")
    }
}

/// reqwest's top-level message hides the cause ("error sending request");
/// the chain says what actually happened ("Connection refused").
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn client(api: Dialect, base_url: &str) -> UpstreamClient {
        let target = ResolvedUpstream {
            api,
            base_url: base_url.into(),
            api_key: Secret::new("k"),
            model: None,
        };
        UpstreamClient::new(target, Duration::from_secs(1), Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn urls_per_api_kind() {
        assert_eq!(
            client(Dialect::OpenAi, "http://h/v1").chat_url(),
            "http://h/v1/chat/completions"
        );
        assert_eq!(
            client(Dialect::OpenAi, "http://h/v1").models_url(),
            "http://h/v1/models"
        );
        assert_eq!(
            client(Dialect::Anthropic, "http://h").chat_url(),
            "http://h/v1/messages"
        );
        assert_eq!(
            client(Dialect::Anthropic, "http://h/v1").chat_url(),
            "http://h/v1/messages"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let upstream = client(Dialect::OpenAi, &format!("http://127.0.0.1:{port}/v1"));
        let err = upstream
            .send_chat(Bytes::from_static(b"{}"), false, &HeaderMap::new())
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::Unreachable { .. }), "{err}");
    }
}
