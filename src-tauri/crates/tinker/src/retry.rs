//! Retry decisions as pure functions: which answers are worth another try,
//! and how long to wait before it (the server's `retry-after` when it gives a
//! sane one, else exponential back-off with jitter).

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// How one HTTP call is retried. The defaults are the official SDK's.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts).
    pub max_retries: u32,
    /// Back-off before retry k (from 0) is `min(initial · 2^k, max)`…
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// …shortened by up to this fraction at random, so clients that failed
    /// together do not retry together.
    pub jitter: f64,
    /// A server-sent `retry-after` is honoured when it is in `(0, this]`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 10,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            jitter: 0.25,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all (heartbeats: the next beat is the retry).
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// Exponential back-off for retry `attempt` (0-based); `random` in
    /// `[0, 1)` picks the jitter.
    pub fn backoff(&self, attempt: u32, random: f64) -> Duration {
        let factor = 2f64.powi(attempt.min(62) as i32);
        let raw = (self.initial_delay.as_secs_f64() * factor).min(self.max_delay.as_secs_f64());
        let jitter = 1.0 - self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        Duration::from_secs_f64((raw * jitter).max(0.0))
    }

    /// The wait before retry `attempt`: the server's hint when it is
    /// positive and at most `max_retry_after`, else [`Self::backoff`].
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, random: f64) -> Duration {
        match retry_after {
            Some(hint) if !hint.is_zero() && hint <= self.max_retry_after => hint,
            _ => self.backoff(attempt, random),
        }
    }
}

/// Whether an HTTP status is worth retrying: 408, 409, 429 and 5xx, unless
/// the server overrides with `x-should-retry: true|false`. A 400 with an
/// empty body is a proxy rejecting the connection, not the service judging
/// the request, so it is retried too.
pub fn status_is_retryable(status: u16, headers: &HeaderMap, body_is_empty: bool) -> bool {
    if let Some(hint) = headers
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
    {
        if hint == "true" {
            return true;
        }
        if hint == "false" {
            return false;
        }
    }
    matches!(status, 408 | 409 | 429 | 500..=599) || (status == 400 && body_is_empty)
}

/// The server's requested wait: `retry-after-ms` (milliseconds), else
/// `retry-after` as seconds or as an HTTP date (relative to `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A number in `[0, 1)` for jitter.
pub(crate) fn jitter_sample() -> f64 {
    rand::random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let secs: Vec<f64> = (0..7).map(|k| p.backoff(k, 0.0).as_secs_f64()).collect();
        assert_eq!(secs, vec![0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]);
        assert_eq!(p.backoff(200, 0.0), Duration::from_secs(10));
    }

    #[test]
    fn jitter_only_shortens_by_at_most_a_quarter() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(750));
        assert_eq!(p.backoff(1, 0.5), Duration::from_millis(875));
    }

    #[test]
    fn server_hint_wins_when_sane() {
        let p = RetryPolicy::default();
        let three = Some(Duration::from_secs(3));
        assert_eq!(p.delay(0, three, 0.9), Duration::from_secs(3));
        // Zero or absurd hints fall back to back-off.
        assert_eq!(
            p.delay(0, Some(Duration::ZERO), 0.0),
            Duration::from_millis(500)
        );
        assert_eq!(
            p.delay(2, Some(Duration::from_secs(3600)), 0.0),
            Duration::from_secs(2)
        );
        assert_eq!(p.delay(3, None, 0.0), Duration::from_secs(4));
    }

    #[test]
    fn retryable_statuses() {
        let none = HeaderMap::new();
        for s in [408, 409, 429, 500, 502, 503, 504, 599] {
            assert!(status_is_retryable(s, &none, false), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 410, 422] {
            assert!(!status_is_retryable(s, &none, false), "{s}");
        }
        assert!(status_is_retryable(400, &none, true));
        assert!(!status_is_retryable(
            503,
            &headers(&[("x-should-retry", "false")]),
            false
        ));
        assert!(status_is_retryable(
            400,
            &headers(&[("x-should-retry", "true")]),
            false
        ));
        assert!(status_is_retryable(
            500,
            &headers(&[("x-should-retry", "maybe")]),
            false
        ));
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:42 GMT")]),
                now
            ),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:30 GMT")]),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
