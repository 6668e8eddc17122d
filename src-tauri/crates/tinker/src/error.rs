//! The one error type of this crate, with messages a user can act on and a
//! stable machine code for the UI's `{code, message}`.

use std::fmt;
use std::time::Duration;

use crate::datum::DatumError;

/// How the service classified a failed request (`category` in its error body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCategory {
    /// The request itself was wrong (bad shapes, unknown loss, bad path…).
    User,
    /// The service failed while running it.
    Server,
    /// The service did not say.
    Unknown,
}

impl FailureCategory {
    /// Parses the lower-case wire value; anything unrecognised is `Unknown`.
    pub fn from_wire(value: &str) -> FailureCategory {
        match value.to_ascii_lowercase().as_str() {
            "user" => FailureCategory::User,
            "server" => FailureCategory::Server,
            _ => FailureCategory::Unknown,
        }
    }
}

impl fmt::Display for FailureCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureCategory::User => "a problem with the request",
            FailureCategory::Server => "a server-side failure",
            FailureCategory::Unknown => "an unspecified failure",
        })
    }
}

/// Everything that can go wrong talking to a Tinker service.
///
/// Transient conditions (429, 5xx, dropped connections) are retried inside
/// the client and only become errors once retries run out; each retry is a
/// log line, not an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TinkerError {
    /// The client configuration cannot work (empty key, bad URL…).
    #[error("invalid Tinker settings: {0}")]
    Config(String),

    /// An argument the caller passed is out of range.
    #[error("invalid argument: {0}")]
    InvalidInput(String),

    /// A training example has inconsistent shapes or non-finite values.
    #[error("invalid training datum #{index}: {source}")]
    Datum {
        index: usize,
        #[source]
        source: DatumError,
    },

    /// 401/403: the key is wrong, revoked, or lacks access.
    #[error("the Tinker API key was rejected ({status}); check rl.api_key: {detail}")]
    Unauthorized { status: u16, detail: String },

    /// 402: the account has no credit or hit a spending limit.
    #[error("the Tinker account has a billing or quota problem (402): {detail}")]
    Billing { detail: String },

    /// 429 after every retry: the account's rate limit or quota is exhausted.
    #[error(
        "the Tinker service kept rate-limiting requests (429) after {attempts} attempts: {detail}"
    )]
    RateLimited { attempts: u32, detail: String },

    /// 5xx, 408/409 or a network failure after every retry.
    #[error("the Tinker service is unavailable after {attempts} attempts: {detail}")]
    ServiceUnavailable { attempts: u32, detail: String },

    /// Any other 4xx: the service refused the request as malformed.
    #[error("the Tinker service rejected the request ({status}): {detail}")]
    BadRequest { status: u16, detail: String },

    /// 410 on a request: the session ended on the server, usually after
    /// missed heartbeats.
    #[error("the Tinker session is gone on the server (410): {detail}")]
    SessionGone { detail: String },

    /// 410 from `retrieve_future`: the server dropped the result.
    #[error(
        "the result of Tinker request {request_id} expired on the server (410) before it was read"
    )]
    FutureExpired { request_id: String },

    /// The operation ran and failed on the service.
    #[error("Tinker {operation} failed ({category}): {message}")]
    RequestFailed {
        operation: &'static str,
        category: FailureCategory,
        message: String,
    },

    /// The result did not arrive within `TinkerConfig::future_timeout`.
    #[error(
        "gave up waiting for the Tinker {operation} result (request {request_id}) after {waited:?}"
    )]
    FutureTimeout {
        operation: &'static str,
        request_id: String,
        waited: Duration,
    },

    /// A submission to this model failed, so the server may be waiting for a
    /// `seq_id` that will never arrive; the model handle must be recreated
    /// (e.g. from the last checkpoint).
    #[error("this Tinker training model can no longer be used: submitting request seq_id {seq_id} failed earlier; create it again from the last checkpoint")]
    ModelPoisoned { seq_id: u64 },

    /// The service answered with something this client cannot interpret.
    #[error("unexpected response from the Tinker service: {0}")]
    Protocol(String),
}

impl TinkerError {
    /// A stable code for the UI and logs, e.g. `tinker.unauthorized`.
    pub fn code(&self) -> &'static str {
        match self {
            TinkerError::Config(_) => "tinker.config",
            TinkerError::InvalidInput(_) => "tinker.invalid_input",
            TinkerError::Datum { .. } => "tinker.invalid_datum",
            TinkerError::Unauthorized { .. } => "tinker.unauthorized",
            TinkerError::Billing { .. } => "tinker.billing",
            TinkerError::RateLimited { .. } => "tinker.rate_limited",
            TinkerError::ServiceUnavailable { .. } => "tinker.unavailable",
            TinkerError::BadRequest { .. } => "tinker.bad_request",
            TinkerError::SessionGone { .. } => "tinker.session_gone",
            TinkerError::FutureExpired { .. } => "tinker.future_expired",
            TinkerError::RequestFailed { .. } => "tinker.request_failed",
            TinkerError::FutureTimeout { .. } => "tinker.future_timeout",
            TinkerError::ModelPoisoned { .. } => "tinker.model_poisoned",
            TinkerError::Protocol(_) => "tinker.protocol",
        }
    }

    /// Whether trying the whole operation again later may succeed (the
    /// trainer uses this to keep a batch for the next window).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TinkerError::RateLimited { .. }
                | TinkerError::ServiceUnavailable { .. }
                | TinkerError::FutureExpired { .. }
                | TinkerError::FutureTimeout { .. }
                | TinkerError::RequestFailed {
                    category: FailureCategory::Server | FailureCategory::Unknown,
                    ..
                }
        )
    }

    /// Maps a final (not retried) HTTP status and its body to an error.
    pub(crate) fn from_status(status: u16, body: &[u8], attempts: u32) -> TinkerError {
        let detail = error_detail(body);
        match status {
            401 | 403 => TinkerError::Unauthorized { status, detail },
            402 => TinkerError::Billing { detail },
            410 => TinkerError::SessionGone { detail },
            429 => TinkerError::RateLimited { attempts, detail },
            408 | 409 | 500..=599 => TinkerError::ServiceUnavailable {
                attempts,
                detail: format!("HTTP {status}: {detail}"),
            },
            _ => TinkerError::BadRequest { status, detail },
        }
    }
}

/// Longest error detail kept from a response body.
const MAX_DETAIL_CHARS: usize = 400;

/// The human part of an error body: FastAPI's `detail`, the futures API's
/// `error`, or the text itself, shortened.
pub(crate) fn error_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty response body)".to_string();
    }
    let parsed = serde_json::from_str::<serde_json::Value>(text).ok();
    let picked = parsed.as_ref().and_then(|v| {
        ["detail", "error", "message"]
            .iter()
            .find_map(|k| v.get(k))
            .map(|d| match d {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    });
    shorten(picked.as_deref().unwrap_or(text))
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_DETAIL_CHARS {
        return text.to_string();
    }
    let mut out: String = text.chars().take(MAX_DETAIL_CHARS).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_categories() {
        let e = TinkerError::from_status(401, br#"{"detail":"Invalid API key"}"#, 1);
        assert_eq!(e.code(), "tinker.unauthorized");
        assert_eq!(
            e.to_string(),
            "the Tinker API key was rejected (401); check rl.api_key: Invalid API key"
        );
        assert_eq!(
            TinkerError::from_status(403, b"", 1).code(),
            "tinker.unauthorized"
        );
        assert_eq!(
            TinkerError::from_status(402, b"", 1).code(),
            "tinker.billing"
        );
        assert_eq!(
            TinkerError::from_status(429, b"", 11).code(),
            "tinker.rate_limited"
        );
        assert_eq!(
            TinkerError::from_status(503, b"", 11).code(),
            "tinker.unavailable"
        );
        assert_eq!(
            TinkerError::from_status(408, b"", 11).code(),
            "tinker.unavailable"
        );
        assert_eq!(
            TinkerError::from_status(410, b"", 1).code(),
            "tinker.session_gone"
        );
        assert_eq!(
            TinkerError::from_status(422, b"", 1).code(),
            "tinker.bad_request"
        );
        assert_eq!(
            TinkerError::from_status(404, b"", 1).code(),
            "tinker.bad_request"
        );
    }

    #[test]
    fn transient_errors_are_the_retry_later_ones() {
        assert!(TinkerError::from_status(429, b"", 3).is_transient());
        assert!(TinkerError::from_status(502, b"", 3).is_transient());
        assert!(!TinkerError::from_status(401, b"", 1).is_transient());
        assert!(!TinkerError::from_status(400, b"", 1).is_transient());
        let user = TinkerError::RequestFailed {
            operation: "forward_backward",
            category: FailureCategory::User,
            message: "bad".into(),
        };
        assert!(!user.is_transient());
    }

    #[test]
    fn detail_prefers_structured_fields() {
        assert_eq!(error_detail(br#"{"detail": "nope"}"#), "nope");
        assert_eq!(error_detail(br#"{"error": "x", "category": "user"}"#), "x");
        assert_eq!(error_detail(br#"{"detail": {"a": 1}}"#), r#"{"a":1}"#);
        assert_eq!(error_detail(b"plain text\n"), "plain text");
        assert_eq!(error_detail(b""), "(empty response body)");
        let long = "x".repeat(1000);
        assert_eq!(
            error_detail(long.as_bytes()).chars().count(),
            MAX_DETAIL_CHARS + 1
        );
    }

    #[test]
    fn categories_parse_leniently() {
        assert_eq!(FailureCategory::from_wire("user"), FailureCategory::User);
        assert_eq!(
            FailureCategory::from_wire("Server"),
            FailureCategory::Server
        );
        assert_eq!(
            FailureCategory::from_wire("weird"),
            FailureCategory::Unknown
        );
    }
}
