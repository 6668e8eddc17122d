//! Which credential goes in `X-API-Key`: the API key itself, or — when the
//! service's `client/config` enables it — a short-lived JWT obtained for it
//! from `auth/token` and refreshed at about half its lifetime.
//!
//! The exchange itself is an HTTP call and lives in [`crate::http`]; this
//! module holds the token, its schedule and the decision to refresh.

use std::time::Duration;

use base64::Engine;
use tokio::time::Instant;

use crate::config::ApiKey;

/// Refresh on demand once a token has less than this left.
const MIN_REMAINING: Duration = Duration::from_secs(60);

/// A JWT and when to replace it.
#[derive(Debug, Clone)]
pub(crate) struct Jwt {
    pub token: ApiKey,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
}

impl Jwt {
    /// Schedules a fresh token. `random` in `[0, 1)` spreads the refresh
    /// over ±10 % of half the lifetime so many clients do not refresh
    /// together.
    pub fn new(token: String, now: Instant, now_unix: u64, random: f64) -> Jwt {
        let (refresh_at, expires_at) = match claims(&token) {
            Some((iat, exp)) if exp > iat => {
                let lifetime = (exp - iat) as f64;
                let jitter = 0.9 + 0.2 * random.clamp(0.0, 1.0);
                let refresh_in = Duration::from_secs_f64(lifetime * 0.5 * jitter);
                // Trust the token's own lifetime, but never past its `exp`
                // by our clock (a slow clock would otherwise keep it too long).
                let left = exp.saturating_sub(now_unix).min(exp - iat);
                (
                    Some(now + refresh_in),
                    Some(now + Duration::from_secs(left)),
                )
            }
            _ => (None, None),
        };
        Jwt {
            token: ApiKey::new(token),
            refresh_at,
            expires_at,
        }
    }

    /// Whether the token should be replaced before the next request.
    pub fn needs_refresh(&self, now: Instant) -> bool {
        let due = self.refresh_at.is_some_and(|t| now >= t);
        let nearly_expired = self
            .expires_at
            .is_some_and(|t| t.saturating_duration_since(now) < MIN_REMAINING);
        due || nearly_expired
    }
}

/// `iat` and `exp` from an unverified JWT payload (the client only needs
/// them to schedule refreshes; the server verifies the signature).
pub(crate) fn claims(token: &str) -> Option<(u64, u64)> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let field = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
    };
    Some((field("iat")?, field("exp")?))
}

/// Whether a 401 says the token (not the key) is stale, so a fresh JWT and
/// one replay may fix it.
pub(crate) fn is_invalid_token(www_authenticate: Option<&str>) -> bool {
    www_authenticate.is_some_and(|v| v.contains("error=\"invalid_token\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            enc.encode(r#"{"alg":"none"}"#),
            enc.encode(payload)
        )
    }

    #[test]
    fn reads_iat_and_exp() {
        assert_eq!(
            claims(&token(r#"{"iat": 1000, "exp": 4600}"#)),
            Some((1000, 4600))
        );
        assert_eq!(claims(&token(r#"{"exp": 4600}"#)), None);
        assert_eq!(claims("not-a-jwt"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_at_half_life_with_jitter() {
        let now = Instant::now();
        let jwt = Jwt::new(token(r#"{"iat": 1000, "exp": 4600}"#), now, 1000, 0.5);
        // Lifetime 3600 s: refresh at 1800 s (±10 %), expiry at 3600 s.
        assert!(!jwt.needs_refresh(now + Duration::from_secs(1799)));
        assert!(jwt.needs_refresh(now + Duration::from_secs(1800)));
        let early = Jwt::new(token(r#"{"iat": 1000, "exp": 4600}"#), now, 1000, 0.0);
        assert!(early.needs_refresh(now + Duration::from_secs(1620)));
        assert!(!early.needs_refresh(now + Duration::from_secs(1619)));
    }

    #[tokio::test(start_paused = true)]
    async fn short_tokens_refresh_before_the_last_minute() {
        let now = Instant::now();
        // 100 s lifetime: half-life is 50 s, but under 60 s remain already at 41 s.
        let jwt = Jwt::new(token(r#"{"iat": 0, "exp": 100}"#), now, 0, 0.99);
        assert!(!jwt.needs_refresh(now + Duration::from_secs(40)));
        assert!(jwt.needs_refresh(now + Duration::from_secs(41)));
        // A token without claims is only replaced when the server says so.
        let opaque = Jwt::new("opaque".into(), now, 0, 0.0);
        assert!(!opaque.needs_refresh(now + Duration::from_secs(1_000_000)));
    }

    #[test]
    fn recognises_invalid_token_challenges() {
        assert!(is_invalid_token(Some(
            r#"Bearer error="invalid_token", error_description="expired""#
        )));
        assert!(!is_invalid_token(Some("Bearer")));
        assert!(!is_invalid_token(None));
    }
}
