//! Every way a proxied request can fail, and the one place that turns a
//! failure into an HTTP response in the client's own API dialect.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use metaclaw_dialect::{error_body, error_message, Dialect};

use crate::upstream::UpstreamError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("missing or wrong API key for this proxy (send the proxy.api_key as a bearer token or x-api-key)")]
    Unauthorized,
    #[error("request body is larger than the limit of {limit_mb} MiB (proxy.max_body_mb)")]
    BodyTooLarge { limit_mb: f64 },
    #[error("request body is not valid JSON: {0}")]
    BadJson(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error(
        "no upstream LLM is configured: run `metaclaw config set upstream.base_url URL` \
         (and `metaclaw config set upstream.api_key KEY`), or set OPENAI_API_KEY / OPENAI_BASE_URL"
    )]
    NoUpstream,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The policy (`rl`/`auto`) could not sample: the service is down,
    /// refused the key, or failed the request.
    #[error("the training service is unavailable: {0}")]
    PolicyUnavailable(String),
    /// The policy's sampled tokens could not become an answer.
    #[error("the policy's answer could not be decoded: {0}")]
    PolicyInvalid(String),
    #[error("the upstream returned an invalid response: {0}")]
    UpstreamInvalid(String),
    /// The upstream answered with an error status: passed through.
    #[error("the upstream answered {status}: {message}")]
    UpstreamStatus {
        status: StatusCode,
        message: String,
        body: Bytes,
        from: Dialect,
        retry_after: Option<HeaderValue>,
    },
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Unauthorized => StatusCode::UNAUTHORIZED,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BadJson(_) | ProxyError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::NoUpstream | ProxyError::PolicyUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::PolicyInvalid(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Upstream(UpstreamError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(_) | ProxyError::UpstreamInvalid(_) => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamStatus { status, .. } => *status,
        }
    }

    /// The response for a client speaking `client`. An upstream error in the
    /// client's own dialect is passed through byte for byte; otherwise the
    /// message is carried over into the client's error format.
    pub fn into_response(self, client: Dialect) -> Response {
        let status = self.status();
        let (body, retry_after) = match self {
            ProxyError::UpstreamStatus {
                body,
                from,
                retry_after,
                message,
                ..
            } => {
                let body = if from == client
                    && serde_json::from_slice::<serde_json::Value>(&body).is_ok()
                {
                    body
                } else {
                    Bytes::from(error_body(client, status.as_u16(), &message).to_string())
                };
                (body, retry_after)
            }
            other => (
                Bytes::from(error_body(client, status.as_u16(), &other.to_string()).to_string()),
                None,
            ),
        };
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }

    /// Builds the pass-through error for an upstream's non-success answer.
    pub fn from_upstream_status(
        status: StatusCode,
        from: Dialect,
        body: Bytes,
        retry_after: Option<HeaderValue>,
    ) -> ProxyError {
        let message = error_message(from, &body).unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("upstream error")
                .to_string()
        });
        ProxyError::UpstreamStatus {
            status,
            message,
            body,
            from,
            retry_after,
        }
    }
}
