//! Where the service is, the key to reach it, and how long to wait.

use std::fmt;
use std::time::Duration;

use crate::error::TinkerError;
use crate::retry::RetryPolicy;

/// The hosted service the official SDK talks to by default.
pub const DEFAULT_BASE_URL: &str = "https://tinker.thinkingmachines.dev/services/tinker-prod";

/// The SDK release whose wire behaviour this client implements. The service
/// resolves feature flags from this string, so it must name a version whose
/// protocol we actually speak.
pub const PROTOCOL_SDK_VERSION: &str = "0.38.0";

/// An API key (or a JWT obtained for it). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(value: impl Into<String>) -> ApiKey {
        ApiKey(value.into())
    }

    /// The raw value, for the one place that sends it: the `X-API-Key` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Settings for one connection to a Tinker-compatible service. Defaults
/// follow the official SDK.
#[derive(Debug, Clone)]
pub struct TinkerConfig {
    /// Service root without `/api/v1`, e.g. `https://…/services/tinker-prod`.
    pub base_url: String,
    pub api_key: ApiKey,
    /// Sent as `create_session.project_id` when set.
    pub project_id: Option<String>,
    /// Sent as `create_session.tags`.
    pub tags: Vec<String>,
    /// Timeout of one ordinary request (60 s).
    pub request_timeout: Duration,
    /// Timeout for establishing a connection (5 s).
    pub connect_timeout: Duration,
    /// Timeout of one `retrieve_future` long-poll (45 s; the server holds
    /// the request for less than that).
    pub poll_timeout: Duration,
    /// Period of the session heartbeat (10 s; the service ends sessions that
    /// stop sending it).
    pub heartbeat_interval: Duration,
    /// Retries of one HTTP call.
    pub retry: RetryPolicy,
    /// Longest wait for one request's result; `None` waits as long as the
    /// service keeps answering.
    pub future_timeout: Option<Duration>,
}

impl TinkerConfig {
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> TinkerConfig {
        TinkerConfig {
            base_url: base_url.into(),
            api_key,
            project_id: None,
            tags: Vec::new(),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            poll_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            future_timeout: Some(Duration::from_secs(30 * 60)),
        }
    }

    /// `TINKER_BASE_URL` (else the hosted service) and `TINKER_API_KEY`, the
    /// variables the official SDK reads.
    pub fn from_env() -> Result<TinkerConfig, TinkerError> {
        let base =
            std::env::var("TINKER_BASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.to_string());
        let key = std::env::var("TINKER_API_KEY")
            .map_err(|_| TinkerError::Config("TINKER_API_KEY is not set".into()))?;
        let mut config = TinkerConfig::new(base, ApiKey::new(key));
        if let Ok(project) = std::env::var("TINKER_PROJECT_ID") {
            config.project_id = Some(project);
        }
        if let Ok(tags) = std::env::var("TINKER_TAGS") {
            config.tags = tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
        }
        Ok(config)
    }

    /// `{base_url}/api/v1`, checked: an http(s) URL without a trailing slash.
    pub(crate) fn api_root(&self) -> Result<String, TinkerError> {
        let base = self.base_url.trim().trim_end_matches('/');
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(TinkerError::Config(format!(
                "rl.base_url must start with http:// or https:// (got {base:?})"
            )));
        }
        if base.len() <= "https://".len() {
            return Err(TinkerError::Config(format!(
                "rl.base_url has no host (got {base:?})"
            )));
        }
        Ok(format!("{base}/api/v1"))
    }

    pub(crate) fn validate(&self) -> Result<String, TinkerError> {
        if self.api_key.is_empty() {
            return Err(TinkerError::Config("rl.api_key is empty".into()));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(TinkerError::Config(
                "the heartbeat interval must be positive".into(),
            ));
        }
        self.api_root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_never_prints() {
        let key = ApiKey::new("tml-very-secret-value");
        assert_eq!(format!("{key}"), "***");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        let config = TinkerConfig::new("http://x", key);
        assert!(!format!("{config:?}").contains("very-secret"));
    }

    #[test]
    fn api_root_strips_slashes_and_checks_scheme() {
        let mut c = TinkerConfig::new("http://127.0.0.1:9/", ApiKey::new("tml-k"));
        assert_eq!(
            c.validate().ok().as_deref(),
            Some("http://127.0.0.1:9/api/v1")
        );
        c.base_url = "ftp://x".into();
        assert!(matches!(c.validate(), Err(TinkerError::Config(_))));
        c.base_url = "https://".into();
        assert!(matches!(c.validate(), Err(TinkerError::Config(_))));
        let empty = TinkerConfig::new("http://x", ApiKey::new("  "));
        assert!(matches!(empty.validate(), Err(TinkerError::Config(m)) if m.contains("api_key")));
    }
}
