//! Times and zones as the `calendar` command reads and prints them: RFC 3339
//! instants, local date-times and dates read in a zone, and local spans.

use anyhow::bail;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use metaclaw_schedule::zone::{resolve_local, zone_by_name};
use metaclaw_schedule::Interval;

/// A zone named on the command line: an IANA name, or a Windows name as
/// Outlook writes it.
pub fn parse_zone(name: &str) -> anyhow::Result<Tz> {
    match zone_by_name(name) {
        Some(zone) => Ok(zone),
        None => bail!(
            "--tz: unknown time zone {name:?}; use an IANA name such as Europe/Berlin or America/New_York"
        ),
    }
}

/// Reads a time argument: RFC 3339 (`2026-03-16T09:00:00+01:00`, `…Z`, the
/// seconds may be left out), a local date-time without offset
/// (`2026-03-16T09:00`, `2026-03-16 09:00`) or a date (local midnight), both
/// read in `zone`, or `now`.
///
/// A local time that daylight saving skips moves to the end of the gap; one
/// that happens twice means the earlier instant.
pub fn parse_time(
    flag: &str,
    text: &str,
    zone: Tz,
    now: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M%#z", "%Y-%m-%d %H:%M%#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(resolve_local(zone, t));
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(resolve_local(zone, day.and_time(NaiveTime::MIN)));
    }
    bail!(
        "{flag}: cannot read {text:?} as a time; use RFC 3339 (2026-03-16T09:00:00+01:00 or \
         2026-03-16T08:00:00Z), a local date-time (2026-03-16 09:00, read in {zone}), a date \
         (2026-03-16) or `now`"
    )
}

/// An instant as JSON carries it: RFC 3339 in UTC, whole seconds, `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An instant as a local date and time ("Mon 2026-03-16 09:30").
pub fn local(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%a %Y-%m-%d %H:%M")
        .to_string()
}

/// A local time of day, with the date only when it differs from `day_of`'s.
pub fn local_after(t: DateTime<Utc>, day_of: DateTime<Utc>, zone: Tz) -> String {
    let (a, b) = (day_of.with_timezone(&zone), t.with_timezone(&zone));
    if a.date_naive() == b.date_naive() {
        b.format("%H:%M").to_string()
    } else {
        local(t, zone)
    }
}

/// An interval in local time: "Mon 2026-03-16 09:30–09:45", or both dates
/// when it spans midnight.
pub fn local_span(interval: &Interval, zone: Tz) -> String {
    let end = local_after(interval.end(), interval.start(), zone);
    let start = local(interval.start(), zone);
    if end.len() == 5 {
        format!("{start}–{end}")
    } else {
        format!("{start} – {end}")
    }
}

/// "45 s", "12 min", "3 h", "2 days": how old a cached copy is.
pub fn age(seconds: i64) -> String {
    match seconds {
        s if s < 90 => format!("{s} s"),
        s if s < 90 * 60 => format!("{} min", s / 60),
        s if s < 36 * 3600 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn read(text: &str) -> anyhow::Result<DateTime<Utc>> {
        parse_time("--at", text, BERLIN, utc(2000, 1, 1, 0, 0))
    }

    #[test]
    fn every_accepted_form() {
        let want = utc(2026, 3, 16, 8, 0);
        for text in [
            "2026-03-16T08:00:00Z",
            "2026-03-16t08:00:00z",
            "2026-03-16T09:00:00+01:00",
            "2026-03-16 09:00:00+01:00",
            "2026-03-16T09:00+01:00",
            "2026-03-16T08:00Z",
            "2026-03-16T09:00",
            "2026-03-16T09:00:00",
            "2026-03-16 09:00",
            " 2026-03-16 09:00:00 ",
        ] {
            assert_eq!(read(text).unwrap(), want, "{text}");
        }
        assert_eq!(read("2026-03-16").unwrap(), utc(2026, 3, 15, 23, 0));
        assert_eq!(read("now").unwrap(), utc(2000, 1, 1, 0, 0));
    }

    #[test]
    fn local_times_follow_daylight_saving() {
        // CEST from 2026-03-29: 09:00 local is 07:00 UTC.
        assert_eq!(read("2026-03-30 09:00").unwrap(), utc(2026, 3, 30, 7, 0));
        // 02:30 does not exist that night: the end of the gap.
        assert_eq!(read("2026-03-29 02:30").unwrap(), utc(2026, 3, 29, 1, 0));
    }

    #[test]
    fn bad_times_and_zones_name_the_problem() {
        let err = read("next tuesday").unwrap_err().to_string();
        assert!(
            err.starts_with("--at: cannot read \"next tuesday\""),
            "{err}"
        );
        assert!(err.contains("Europe/Berlin"), "{err}");
        assert!(read("2026-13-01").is_err());
        let err = parse_zone("Mars/Olympus").unwrap_err().to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
        assert_eq!(
            parse_zone("W. Europe Standard Time").unwrap(),
            chrono_tz::Europe::Berlin
        );
    }

    #[test]
    fn spans_and_ages_read_naturally() {
        let meeting = Interval::new(utc(2026, 3, 16, 8, 30), utc(2026, 3, 16, 8, 45)).unwrap();
        assert_eq!(local_span(&meeting, BERLIN), "Mon 2026-03-16 09:30–09:45");
        let trip = Interval::new(utc(2026, 3, 27, 23, 0), utc(2026, 3, 30, 22, 0)).unwrap();
        assert_eq!(
            local_span(&trip, BERLIN),
            "Sat 2026-03-28 00:00 – Tue 2026-03-31 00:00"
        );
        assert_eq!(rfc3339(utc(2026, 3, 16, 1, 30)), "2026-03-16T01:30:00Z");
        assert_eq!(
            [age(5), age(600), age(7200), age(3 * 86_400)],
            ["5 s", "10 min", "2 h", "3 days"]
        );
    }
}
