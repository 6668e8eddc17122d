//! Real-shaped calendar files (Thunderbird, Outlook, Google, Apple, khal)
//! expanded into busy intervals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use metaclaw_schedule::{
    BusyCalendar, Calendar, CalendarSet, Interval, LoadContext, SourceSpec, SourceStatus,
};

const BERLIN: Tz = chrono_tz::Europe::Berlin;
const NEW_YORK: Tz = chrono_tz::America::New_York;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(name: &str, local: Tz) -> Calendar {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    Calendar::parse(&text, name, local).unwrap()
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn march_and_april() -> Interval {
    Interval::new(utc(2026, 3, 1, 0, 0), utc(2026, 5, 1, 0, 0)).unwrap()
}

fn spans(cal: &Calendar, range: Interval) -> Vec<(String, DateTime<Utc>, DateTime<Utc>)> {
    cal.busy_in(range)
        .into_iter()
        .map(|b| {
            (
                b.summary.unwrap_or_default(),
                b.interval.start(),
                b.interval.end(),
            )
        })
        .collect()
}

#[test]
fn recurrence_with_exdate_rdate_override_and_cancelled_instance() {
    let cal = load("recurring.ics", NEW_YORK);
    assert!(cal.problems().is_empty(), "{:?}", cal.problems());
    let got = spans(&cal, march_and_april());
    let standup = "Team standup".to_owned();
    assert_eq!(
        got,
        vec![
            // 09:30 CET.
            (
                standup.clone(),
                utc(2026, 3, 2, 8, 30),
                utc(2026, 3, 2, 8, 45)
            ),
            // 03-09 is an EXDATE; 03-11 (a Wednesday) is an RDATE.
            (
                standup.clone(),
                utc(2026, 3, 11, 8, 30),
                utc(2026, 3, 11, 8, 45)
            ),
            // 03-16 moved to 14:00–14:30.
            (
                "Team standup (moved to the afternoon)".to_owned(),
                utc(2026, 3, 16, 13, 0),
                utc(2026, 3, 16, 13, 30)
            ),
            // 03-23 cancelled; after 03-29 Berlin is on CEST, so 09:30 is 07:30 UTC.
            (
                standup.clone(),
                utc(2026, 3, 30, 7, 30),
                utc(2026, 3, 30, 7, 45)
            ),
            (standup, utc(2026, 4, 6, 7, 30), utc(2026, 4, 6, 7, 45)),
        ]
    );
}

#[test]
fn outlook_windows_zone_names_and_transparent_event() {
    let cal = load("outlook.ics", BERLIN);
    assert!(cal.problems().is_empty(), "{:?}", cal.problems());
    let got = spans(&cal, march_and_april());
    assert_eq!(
        got,
        vec![
            // Pacific Standard Time is already on PDT (UTC-7) from 03-08.
            (
                "Sync with Seattle".to_owned(),
                utc(2026, 3, 10, 16, 0),
                utc(2026, 3, 10, 17, 0)
            ),
            (
                "Sync with Seattle".to_owned(),
                utc(2026, 3, 11, 16, 0),
                utc(2026, 3, 11, 17, 0)
            ),
            (
                "Sync with Seattle".to_owned(),
                utc(2026, 3, 12, 16, 0),
                utc(2026, 3, 12, 17, 0)
            ),
            // W. Europe Standard Time in March before the switch: UTC+1.
            (
                "Quarterly review".to_owned(),
                utc(2026, 3, 17, 10, 0),
                utc(2026, 3, 17, 11, 0)
            ),
            // The TRANSP:TRANSPARENT lunch and learn is not busy.
        ]
    );
}

#[test]
fn google_utc_rrule_ignores_dst_and_floating_uses_local_zone() {
    let cal = load("google.ics", NEW_YORK);
    assert!(cal.problems().is_empty(), "{:?}", cal.problems());
    let got = spans(&cal, march_and_april());
    let one = "1:1 with manager".to_owned();
    assert_eq!(
        got,
        vec![
            (one.clone(), utc(2026, 3, 2, 15, 0), utc(2026, 3, 2, 16, 0)),
            (one.clone(), utc(2026, 3, 9, 15, 0), utc(2026, 3, 9, 16, 0)),
            (
                one.clone(),
                utc(2026, 3, 16, 15, 0),
                utc(2026, 3, 16, 16, 0)
            ),
            // Floating 13:00 in New York (EDT) with DURATION:PT2H.
            (
                "Focus block".to_owned(),
                utc(2026, 3, 18, 17, 0),
                utc(2026, 3, 18, 19, 0)
            ),
            (one, utc(2026, 3, 23, 15, 0), utc(2026, 3, 23, 16, 0)),
            // The STATUS:CANCELLED vendor call is not busy.
        ]
    );
}

#[test]
fn all_day_events_run_local_midnight_to_midnight_across_dst() {
    let cal = load("allday.ics", BERLIN);
    assert!(cal.problems().is_empty(), "{:?}", cal.problems());
    let got = spans(&cal, march_and_april());
    assert_eq!(
        got,
        vec![
            // 03-28 00:00 CET to 03-31 00:00 CEST: three days, one of them 23 hours.
            (
                "Conference in Lisbon".to_owned(),
                utc(2026, 3, 27, 23, 0),
                utc(2026, 3, 30, 22, 0)
            ),
            // Transparent 04-01 and cancelled 04-02 are left out; a date
            // without DTEND lasts one day.
            (
                "Review day".to_owned(),
                utc(2026, 4, 5, 22, 0),
                utc(2026, 4, 6, 22, 0)
            ),
        ]
    );
    // The same file read in New York puts the days in New York.
    let ny = load("allday.ics", NEW_YORK);
    assert_eq!(spans(&ny, march_and_april())[0].1, utc(2026, 3, 28, 4, 0));
}

#[test]
fn broken_events_are_reported_and_the_rest_kept() {
    let cal = load("partly_broken.ics", BERLIN);
    let problems = cal.problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].uid.as_deref(), Some("bad-date@example.org"));
    assert_eq!(problems[0].summary.as_deref(), Some("Meeting with a typo"));
    assert!(
        problems[0].reason.contains("DTSTART"),
        "{}",
        problems[0].reason
    );
    assert!(
        problems[1].reason.contains("Atlantis/Capital"),
        "{}",
        problems[1].reason
    );
    let got = spans(&cal, march_and_april());
    assert_eq!(
        got,
        vec![(
            "Planning".to_owned(),
            utc(2026, 3, 16, 12, 0),
            utc(2026, 3, 16, 13, 0)
        )]
    );
}

#[test]
fn broken_file_is_an_error_naming_the_source() {
    let text = std::fs::read_to_string(fixture("broken.ics")).unwrap();
    let err = Calendar::parse(&text, "broken.ics", BERLIN).unwrap_err();
    assert!(err.to_string().starts_with("broken.ics:"), "{err}");
}

fn ctx(dir: &tempfile::TempDir) -> LoadContext {
    LoadContext::new(BERLIN, dir.path())
}

#[tokio::test]
async fn vdir_folder_loads_every_event_file_and_reports_the_corrupt_one() {
    let cache = tempfile::tempdir().unwrap();
    let now = utc(2026, 3, 10, 0, 0);
    let set = CalendarSet::load(&[SourceSpec::Path(fixture("vdir"))], &ctx(&cache), now).await;
    let source = &set.sources()[0];
    assert_eq!(
        source.status,
        SourceStatus::Ok {
            events: 3,
            fetched_at: now
        }
    );
    assert_eq!(source.problems().len(), 1);
    assert!(
        source.problems()[0].reason.contains("9e9e9e9e-corrupt.ics"),
        "{:?}",
        source.problems()
    );

    let busy = set.busy_in(march_and_april());
    let summaries: Vec<_> = busy
        .iter()
        .map(|b| b.summary.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        summaries,
        [
            "Daily standup",
            "Daily standup",
            "Daily standup (late)",
            "Daily standup",
            "Dentist",
            "Daily standup"
        ]
    );
    // 09:15 EDT on 03-09 (New York switched on 03-08).
    assert_eq!(busy[0].interval.start(), utc(2026, 3, 9, 13, 15));
}

#[tokio::test]
async fn calendar_set_answers_busy_at_and_until_across_sources() {
    let cache = tempfile::tempdir().unwrap();
    let now = utc(2026, 3, 1, 0, 0);
    let specs = [
        SourceSpec::Path(fixture("recurring.ics")),
        SourceSpec::Path(fixture("outlook.ics")),
        SourceSpec::Path(fixture("broken.ics")),
        SourceSpec::Path(fixture("does-not-exist.ics")),
    ];
    let set = CalendarSet::load(&specs, &ctx(&cache), now).await;
    let states: Vec<_> = set
        .sources()
        .iter()
        .map(|s| matches!(s.status, SourceStatus::Ok { .. }))
        .collect();
    assert_eq!(states, [true, true, false, false]);
    match &set.sources()[2].status {
        SourceStatus::Broken { reason } => assert!(reason.contains("broken.ics"), "{reason}"),
        other => panic!("expected broken, got {other:?}"),
    }
    match &set.sources()[3].status {
        SourceStatus::Broken { reason } => {
            assert!(reason.contains("does-not-exist.ics"), "{reason}")
        }
        other => panic!("expected broken, got {other:?}"),
    }

    let t = utc(2026, 3, 17, 10, 30);
    assert!(set.is_busy(t));
    assert_eq!(
        set.busy_at(t)[0].summary.as_deref(),
        Some("Quarterly review")
    );
    assert_eq!(set.busy_until(t), Some(utc(2026, 3, 17, 11, 0)));
    assert!(!set.is_busy(utc(2026, 3, 17, 11, 0)));
    assert_eq!(set.busy_until(utc(2026, 3, 17, 11, 0)), None);
    // The moved standup.
    assert_eq!(
        set.busy_until(utc(2026, 3, 16, 13, 10)),
        Some(utc(2026, 3, 16, 13, 30))
    );
}

#[test]
fn busy_json_shape_is_rfc3339_utc() {
    let cal = load("google.ics", NEW_YORK);
    let range = Interval::new(utc(2026, 3, 2, 0, 0), utc(2026, 3, 3, 0, 0)).unwrap();
    let json = serde_json::to_value(cal.busy_in(range)).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "start": "2026-03-02T15:00:00Z",
            "end": "2026-03-02T16:00:00Z",
            "summary": "1:1 with manager",
            "uid": "5hq3v1s0d2k9a8b7c6e5f4g3h2@google.com"
        }])
    );
}
