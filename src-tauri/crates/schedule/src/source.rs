//! Calendar sources: a `.ics` file, a vdir folder of `.ics` files, or an
//! `http(s)://` / `webcal://` subscription fetched with a disk cache and
//! conditional requests. Loading a source never fails: it yields a
//! [`LoadedSource`] whose [`SourceStatus`] says ok, stale or broken.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::calendar::{Calendar, EventProblem};
use crate::ics::IcsError;

/// Where a calendar comes from, as the user wrote it in the config.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceSpec {
    /// A `.ics` file or a folder of them; which one is decided when loading.
    Path(PathBuf),
    /// A subscription URL (`webcal://` already turned into `https://`).
    Url(String),
}

impl SourceSpec {
    /// Reads a config entry: URLs by scheme, anything else is a path.
    ///
    /// ```
    /// use metaclaw_schedule::SourceSpec;
    /// assert_eq!(
    ///     SourceSpec::parse("webcal://example.com/cal.ics"),
    ///     SourceSpec::Url("https://example.com/cal.ics".into()),
    /// );
    /// assert!(matches!(SourceSpec::parse("~/cal/work.ics"), SourceSpec::Path(_)));
    /// ```
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("webcal://") {
            // webcal is Apple's "subscribe" scheme for plain HTTPS.
            return SourceSpec::Url(format!("https://{}", &text["webcal://".len()..]));
        }
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return SourceSpec::Url(text.to_owned());
        }
        SourceSpec::Path(expand_home(text))
    }
}

/// `~` and `~/…` name the home folder, as in a shell: config entries are
/// written that way (`~/cal/work.ics`) and nothing else would expand them.
fn expand_home(text: &str) -> PathBuf {
    let rest = match text.strip_prefix('~') {
        Some("") => Some(""),
        Some(rest) => rest.strip_prefix(['/', std::path::MAIN_SEPARATOR]),
        None => None,
    };
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty());
    match (rest, home) {
        (Some(""), Some(home)) => PathBuf::from(home),
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        // `~user/…` and a missing home are left for the read error to name.
        _ => PathBuf::from(text),
    }
}

impl fmt::Display for SourceSpec {
    /// Private subscription URLs carry a secret in their path (Google's
    /// "secret address") or their user part (`https://me:pass@dav.example/…`),
    /// so only the host and a short hash are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Path(p) => write!(f, "{}", p.display()),
            SourceSpec::Url(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
                let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
                // `user:password@host` is a secret too.
                let host = authority.rsplit('@').next().unwrap_or(authority);
                write!(f, "{scheme}://{host}/…#{}", &cache_key(url)[..8])
            }
        }
    }
}

/// How a source stands after its last load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SourceStatus {
    /// Read or fetched now.
    Ok {
        /// Busy events (series) in the source.
        events: usize,
        /// When the content was read or confirmed fresh.
        fetched_at: DateTime<Utc>,
    },
    /// The URL could not be fetched; the last good copy is in use.
    Stale {
        /// Busy events (series) in the cached copy.
        events: usize,
        /// When the cached copy was last fetched or confirmed.
        fetched_at: DateTime<Utc>,
        /// How old the cached copy is, in seconds.
        age_seconds: i64,
        /// Why the refresh failed.
        last_error: String,
    },
    /// Nothing usable: no events from this source.
    Broken {
        /// Why.
        reason: String,
    },
}

/// What went wrong reading a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file or folder could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The request failed before a response (DNS, refused, timeout, TLS).
    #[error("{name}: request failed: {reason}")]
    Request {
        /// The source, with its secret part hidden.
        name: String,
        /// reqwest's explanation, without the URL.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{name}: server answered {status}")]
    Status {
        /// The source, with its secret part hidden.
        name: String,
        /// The HTTP status.
        status: StatusCode,
    },
    /// The content is not a calendar.
    #[error(transparent)]
    Ics(#[from] IcsError),
}

/// What loading needs besides the source: the zone for floating times, a
/// cache folder for subscriptions, and an HTTP client.
#[derive(Debug, Clone)]
pub struct LoadContext {
    /// Zone for floating times and all-day events.
    pub local: Tz,
    /// Folder for cached subscription copies (created when needed).
    pub cache_dir: PathBuf,
    /// Client for subscriptions.
    pub client: reqwest::Client,
}

impl LoadContext {
    /// A context with a client that gives up on a feed after 30 seconds.
    pub fn new(local: Tz, cache_dir: impl Into<PathBuf>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(30))
            .user_agent(concat!("metaclaw/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            local,
            cache_dir: cache_dir.into(),
            client,
        }
    }
}

/// A source after loading: its events (possibly none) and its status.
#[derive(Debug, Clone)]
pub struct LoadedSource {
    /// Where it came from.
    pub spec: SourceSpec,
    /// How the load went.
    pub status: SourceStatus,
    /// Its events; empty when broken.
    pub calendar: Calendar,
}

impl LoadedSource {
    /// Events in this source that were skipped, with reasons.
    pub fn problems(&self) -> &[EventProblem] {
        self.calendar.problems()
    }
}

/// Loads one source. `now` stamps the status and ages the cache.
pub async fn load(spec: &SourceSpec, ctx: &LoadContext, now: DateTime<Utc>) -> LoadedSource {
    let result = match spec {
        SourceSpec::Path(path) => load_path(path, ctx.local).await.map(|cal| {
            let status = SourceStatus::Ok {
                events: cal.event_count(),
                fetched_at: now,
            };
            (cal, status)
        }),
        SourceSpec::Url(url) => load_url(url, &spec.to_string(), ctx, now).await,
    };
    let (calendar, status) = match result {
        Ok(pair) => pair,
        Err(e) => (
            Calendar::empty(ctx.local),
            SourceStatus::Broken {
                reason: e.to_string(),
            },
        ),
    };
    LoadedSource {
        spec: spec.clone(),
        status,
        calendar,
    }
}

async fn load_path(path: &Path, local: Tz) -> Result<Calendar, SourceError> {
    let read_err = |source| SourceError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = tokio::fs::metadata(path).await.map_err(read_err)?;
    if !meta.is_dir() {
        let text = tokio::fs::read_to_string(path).await.map_err(read_err)?;
        return Ok(Calendar::parse(&text, &path.display().to_string(), local)?);
    }
    // vdir: one event (with its overrides) per `.ics` file. A bad file is
    // reported as a problem and the rest of the folder still counts.
    let mut files = Vec::new();
    let mut dir = tokio::fs::read_dir(path).await.map_err(read_err)?;
    while let Some(entry) = dir.next_entry().await.map_err(read_err)? {
        let p = entry.path();
        if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ics")) {
            files.push(p);
        }
    }
    files.sort();
    let mut parts = Vec::new();
    let mut broken = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let parsed = match tokio::fs::read_to_string(&file).await {
            Ok(text) => Calendar::parse(&text, &name, local).map_err(|e| e.to_string()),
            Err(e) => Err(format!("{name}: cannot read: {e}")),
        };
        match parsed {
            Ok(cal) => parts.push(cal),
            Err(reason) => broken.push(reason),
        }
    }
    let mut cal = Calendar::merged(parts, local);
    for reason in broken {
        cal.add_problem(EventProblem {
            uid: None,
            summary: None,
            reason,
        });
    }
    Ok(cal)
}

/// Validators and age of a cached subscription copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheMeta {
    etag: Option<String>,
    last_modified: Option<String>,
    fetched_at: DateTime<Utc>,
}

/// File names for a URL's cache: a hash, so secrets in URLs stay out of
/// directory listings.
fn cache_key(url: &str) -> String {
    Sha256::digest(url.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Cache {
    body: PathBuf,
    meta: PathBuf,
}

impl Cache {
    fn for_url(dir: &Path, url: &str) -> Self {
        let key = cache_key(url);
        Self {
            body: dir.join(format!("{key}.ics")),
            meta: dir.join(format!("{key}.json")),
        }
    }

    async fn read(&self) -> Option<(CacheMeta, String)> {
        let meta = tokio::fs::read(&self.meta).await.ok()?;
        let meta: CacheMeta = serde_json::from_slice(&meta).ok()?;
        let body = tokio::fs::read_to_string(&self.body).await.ok()?;
        Some((meta, body))
    }

    /// Writes the body (when new) and the metadata, each through a
    /// temporary file and a rename so a crash never leaves half a copy.
    async fn write(&self, meta: &CacheMeta, body: Option<&str>) -> std::io::Result<()> {
        if let Some(dir) = self.meta.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        if let Some(body) = body {
            write_atomic(&self.body, body.as_bytes()).await?;
        }
        let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        write_atomic(&self.meta, &json).await
    }
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

async fn load_url(
    url: &str,
    name: &str,
    ctx: &LoadContext,
    now: DateTime<Utc>,
) -> Result<(Calendar, SourceStatus), SourceError> {
    let cache = Cache::for_url(&ctx.cache_dir, url);
    let cached = cache.read().await;
    let mut request = ctx.client.get(url);
    if let Some((meta, _)) = &cached {
        if let Some(etag) = &meta.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &meta.last_modified {
            request = request.header(IF_MODIFIED_SINCE, modified);
        }
    }
    let failure: SourceError = match fetch(request, name).await {
        Ok(Fetched::NotModified) => match &cached {
            Some((meta, body)) => {
                let calendar = Calendar::parse(body, name, ctx.local)?;
                let meta = CacheMeta {
                    fetched_at: now,
                    ..meta.clone()
                };
                // A failed metadata write only makes the copy look older.
                let _ = cache.write(&meta, None).await;
                let status = SourceStatus::Ok {
                    events: calendar.event_count(),
                    fetched_at: now,
                };
                return Ok((calendar, status));
            }
            None => SourceError::Request {
                name: name.to_owned(),
                reason: "server answered 304 Not Modified but there is no cached copy".to_owned(),
            },
        },
        Ok(Fetched::Body {
            text,
            etag,
            last_modified,
        }) => match Calendar::parse(&text, name, ctx.local) {
            Ok(calendar) => {
                let meta = CacheMeta {
                    etag,
                    last_modified,
                    fetched_at: now,
                };
                // The events are good even if the cache cannot be written;
                // the next outage just has no copy to fall back on.
                let _ = cache.write(&meta, Some(&text)).await;
                let status = SourceStatus::Ok {
                    events: calendar.event_count(),
                    fetched_at: now,
                };
                return Ok((calendar, status));
            }
            Err(e) => e.into(),
        },
        Err(e) => e,
    };
    // The feed failed; fall back on the last good copy when there is one.
    // The error already names the source, so it is returned as it is.
    let Some((meta, body)) = cached else {
        return Err(failure);
    };
    let calendar = Calendar::parse(&body, name, ctx.local)?;
    let status = SourceStatus::Stale {
        events: calendar.event_count(),
        fetched_at: meta.fetched_at,
        age_seconds: (now - meta.fetched_at).num_seconds().max(0),
        last_error: failure.to_string(),
    };
    Ok((calendar, status))
}

/// An error and its causes: reqwest's own message ("error sending
/// request") says nothing about refused connections, DNS or TLS.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = inner.source();
    }
    text
}

enum Fetched {
    NotModified,
    Body {
        text: String,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

async fn fetch(request: reqwest::RequestBuilder, name: &str) -> Result<Fetched, SourceError> {
    // reqwest errors print the URL; drop it, it may hold a secret.
    let request_err = |e: reqwest::Error| SourceError::Request {
        name: name.to_owned(),
        reason: with_causes(&e.without_url()),
    };
    let response = request.send().await.map_err(request_err)?;
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(SourceError::Status {
            name: name.to_owned(),
            status,
        });
    }
    let header = |h| {
        response
            .headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header(ETAG);
    let last_modified = header(LAST_MODIFIED);
    let text = response.text().await.map_err(request_err)?;
    Ok(Fetched::Body {
        text,
        etag,
        last_modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_means_the_home_folder() {
        let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            return;
        };
        assert_eq!(
            SourceSpec::parse("~/cal/work.ics"),
            SourceSpec::Path(PathBuf::from(&home).join("cal/work.ics"))
        );
        assert_eq!(
            SourceSpec::parse("~"),
            SourceSpec::Path(PathBuf::from(&home))
        );
        // Another user's home and a tilde inside a name stay as written.
        assert_eq!(
            SourceSpec::parse("~bob/cal.ics"),
            SourceSpec::Path(PathBuf::from("~bob/cal.ics"))
        );
        assert_eq!(
            SourceSpec::parse("cal~/x.ics"),
            SourceSpec::Path(PathBuf::from("cal~/x.ics"))
        );
    }

    #[test]
    fn display_hides_credentials_in_the_url() {
        let shown = SourceSpec::parse("https://me:hunter2@dav.example.com/cal/me.ics").to_string();
        assert!(shown.starts_with("https://dav.example.com/…#"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("me:"),
            "{shown}"
        );
    }
}
