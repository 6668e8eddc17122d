//! Subscription URLs against a local HTTP server: ETag round trip, errors,
//! and the cached copy when the server is gone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use metaclaw_schedule::{
    source, BusyCalendar, CalendarSet, Interval, LoadContext, SourceSpec, SourceStatus,
};

const ICS: &str = include_str!("fixtures/google.ics");
const ETAG: &str = "\"v1-5hq3v1s0\"";

#[derive(Default)]
struct Hits {
    full: AtomicUsize,
    not_modified: AtomicUsize,
    /// Serve a login page instead of the calendar.
    garbage: AtomicBool,
}

async fn calendar(hits: Arc<Hits>, headers: HeaderMap) -> Response {
    if hits.garbage.load(Ordering::SeqCst) {
        return "<html><body>Please sign in</body></html>".into_response();
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v == ETAG)
    {
        hits.not_modified.fetch_add(1, Ordering::SeqCst);
        return StatusCode::NOT_MODIFIED.into_response();
    }
    hits.full.fetch_add(1, Ordering::SeqCst);
    (
        [
            (header::ETAG, ETAG),
            (header::CONTENT_TYPE, "text/calendar"),
        ],
        ICS,
    )
        .into_response()
}

struct Server {
    base: String,
    hits: Arc<Hits>,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Server {
    let hits = Arc::new(Hits::default());
    let h = hits.clone();
    let app = Router::new()
        .route(
            "/work.ics",
            get(move |headers: HeaderMap| calendar(h.clone(), headers)),
        )
        .route("/missing.ics", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/login.ics",
            get(|| async { "<html><body>Please sign in</body></html>" }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server {
        base: format!("http://{addr}"),
        hits,
        task,
    }
}

impl Server {
    /// Stops the server and waits until its port no longer accepts.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn march() -> Interval {
    Interval::new(utc(2026, 3, 1, 0, 0), utc(2026, 4, 1, 0, 0)).unwrap()
}

#[tokio::test]
async fn etag_round_trip_then_stale_copy_when_server_is_gone() {
    let server = start().await;
    let cache = tempfile::tempdir().unwrap();
    let ctx = LoadContext::new(chrono_tz::America::New_York, cache.path());
    let spec = SourceSpec::parse(&format!("{}/work.ics", server.base));

    // First load: full body, cached with its ETag.
    let t1 = utc(2026, 3, 10, 8, 0);
    let first = source::load(&spec, &ctx, t1).await;
    assert_eq!(
        first.status,
        SourceStatus::Ok {
            events: 2,
            fetched_at: t1
        }
    );
    assert_eq!(first.calendar.busy_in(march()).len(), 5);

    // Second load: If-None-Match → 304, events come from the cache.
    let t2 = utc(2026, 3, 10, 9, 0);
    let second = source::load(&spec, &ctx, t2).await;
    assert_eq!(
        second.status,
        SourceStatus::Ok {
            events: 2,
            fetched_at: t2
        }
    );
    assert_eq!(second.calendar.busy_in(march()).len(), 5);
    assert_eq!(server.hits.full.load(Ordering::SeqCst), 1);
    assert_eq!(server.hits.not_modified.load(Ordering::SeqCst), 1);

    // Server gone: the last good copy is used and its age reported.
    server.stop().await;
    let t3 = utc(2026, 3, 10, 12, 0);
    let set = CalendarSet::load(std::slice::from_ref(&spec), &ctx, t3).await;
    match &set.sources()[0].status {
        SourceStatus::Stale {
            events,
            fetched_at,
            age_seconds,
            last_error,
        } => {
            assert_eq!(*events, 2);
            assert_eq!(*fetched_at, t2);
            assert_eq!(*age_seconds, 3 * 3600);
            assert!(last_error.contains("request failed"), "{last_error}");
        }
        other => panic!("expected stale, got {other:?}"),
    }
    assert!(set.is_busy(utc(2026, 3, 16, 15, 30)));
    assert_eq!(
        set.busy_until(utc(2026, 3, 16, 15, 30)),
        Some(utc(2026, 3, 16, 16, 0))
    );
}

#[tokio::test]
async fn not_found_and_garbage_without_cache_are_broken() {
    let server = start().await;
    let cache = tempfile::tempdir().unwrap();
    let ctx = LoadContext::new(chrono_tz::UTC, cache.path());
    let now = utc(2026, 3, 10, 8, 0);

    let missing = source::load(
        &SourceSpec::parse(&format!("{}/missing.ics", server.base)),
        &ctx,
        now,
    )
    .await;
    match &missing.status {
        SourceStatus::Broken { reason } => assert!(reason.contains("404"), "{reason}"),
        other => panic!("expected broken, got {other:?}"),
    }
    let login = source::load(
        &SourceSpec::parse(&format!("{}/login.ics", server.base)),
        &ctx,
        now,
    )
    .await;
    match &login.status {
        SourceStatus::Broken { reason } => assert!(reason.contains("VCALENDAR"), "{reason}"),
        other => panic!("expected broken, got {other:?}"),
    }
    assert!(login.calendar.busy_in(march()).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn garbage_after_a_good_copy_keeps_the_copy() {
    let server = start().await;
    let cache = tempfile::tempdir().unwrap();
    let ctx = LoadContext::new(chrono_tz::UTC, cache.path());
    let spec = SourceSpec::parse(&format!("{}/work.ics", server.base));
    let t1 = utc(2026, 3, 10, 8, 0);
    assert!(matches!(
        source::load(&spec, &ctx, t1).await.status,
        SourceStatus::Ok { .. }
    ));

    // The feed starts answering with a login page instead of a calendar.
    server.hits.garbage.store(true, Ordering::SeqCst);
    let t2 = utc(2026, 3, 10, 8, 30);
    let again = source::load(&spec, &ctx, t2).await;
    match &again.status {
        SourceStatus::Stale {
            events,
            age_seconds,
            last_error,
            ..
        } => {
            assert_eq!((*events, *age_seconds), (2, 1800));
            assert!(last_error.contains("VCALENDAR"), "{last_error}");
        }
        other => panic!("expected stale, got {other:?}"),
    }
    assert_eq!(again.calendar.busy_in(march()).len(), 5);
    server.stop().await;
}

#[test]
fn webcal_becomes_https_and_display_hides_the_secret_path() {
    let spec = SourceSpec::parse("webcal://calendar.example.com/ical/secret-token-123/basic.ics");
    assert_eq!(
        spec,
        SourceSpec::Url("https://calendar.example.com/ical/secret-token-123/basic.ics".into())
    );
    let shown = spec.to_string();
    assert!(
        shown.starts_with("https://calendar.example.com/"),
        "{shown}"
    );
    assert!(!shown.contains("secret-token"), "{shown}");
}
