//! Reading iCalendar text into typed events: the `icalendar` crate's parser
//! gives the component tree, this module turns VEVENTs into [`Event`]s with
//! their times resolved to zones (TZID with VTIMEZONE, IANA and Windows
//! names, UTC, floating, all-day dates).
//!
//! A broken event becomes an [`EventProblem`] and the rest of the file is
//! kept; only text that is not a calendar at all is an [`IcsError`].

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use icalendar::parser::{self, Component, Property};
use serde::Serialize;

use crate::duration::parse_duration;
use crate::zone::{resolve_local, zone_by_name};

/// A date or date-time value as an event states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An all-day `VALUE=DATE`, read in the calendar's local zone.
    Date(NaiveDate),
    /// A UTC time (`...Z`).
    Utc(DateTime<Utc>),
    /// A local time in a named zone (`TZID=...`).
    Zoned(NaiveDateTime, Tz),
    /// A floating time, read in the calendar's local zone.
    Floating(NaiveDateTime),
}

impl When {
    /// The zone this value's wall-clock time is read in.
    pub fn zone(&self, local: Tz) -> Tz {
        match self {
            When::Date(_) | When::Floating(_) => local,
            When::Utc(_) => chrono_tz::UTC,
            When::Zoned(_, tz) => *tz,
        }
    }

    /// The instant this value names; a date means local midnight.
    pub fn instant(&self, local: Tz) -> DateTime<Utc> {
        match self {
            When::Date(d) => resolve_local(local, d.and_time(chrono::NaiveTime::MIN)),
            When::Utc(t) => *t,
            When::Zoned(t, tz) => resolve_local(*tz, *t),
            When::Floating(t) => resolve_local(local, *t),
        }
    }
}

/// How long each occurrence of an event lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Whole local days (all-day events), so a day across a daylight-saving
    /// change still runs midnight to midnight.
    Days(u32),
    /// An exact span of time.
    Exact(Duration),
}

/// One VEVENT, with its values typed but its recurrence not yet expanded.
#[derive(Debug, Clone)]
pub struct Event {
    /// `UID`, when present.
    pub uid: Option<String>,
    /// `SUMMARY`, when present.
    pub summary: Option<String>,
    /// `DTSTART`.
    pub start: When,
    /// From `DTEND` or `DURATION`, or the RFC 5545 defaults.
    pub length: Length,
    /// The `RRULE` value, unparsed (it needs the start to be validated).
    pub rrule: Option<String>,
    /// Every `RDATE` value.
    pub rdates: Vec<When>,
    /// Every `EXDATE` value.
    pub exdates: Vec<When>,
    /// `RECURRENCE-ID`: this event overrides one instance of a series.
    pub recurrence_id: Option<When>,
    /// `TRANSP:TRANSPARENT`: the user marked the time as free.
    pub transparent: bool,
    /// `STATUS:CANCELLED`.
    pub cancelled: bool,
}

impl Event {
    /// Whether occurrences of this event make the user busy.
    pub fn is_busy(&self) -> bool {
        !self.transparent && !self.cancelled
    }
}

/// An event that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventProblem {
    /// The event's `UID`, when it had one.
    pub uid: Option<String>,
    /// The event's `SUMMARY`, when it had one.
    pub summary: Option<String>,
    /// What was wrong with it.
    pub reason: String,
}

/// Text that could not be read as a calendar at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcsError {
    /// The iCalendar syntax is broken.
    #[error("{source_name}: not valid iCalendar text: {reason}")]
    Syntax {
        /// The file or URL the text came from.
        source_name: String,
        /// The parser's explanation.
        reason: String,
    },
    /// The text parsed but holds no `VCALENDAR`.
    #[error("{source_name}: no BEGIN:VCALENDAR found (is this an iCalendar file?)")]
    NotCalendar {
        /// The file or URL the text came from.
        source_name: String,
    },
}

/// Events read from one iCalendar text.
#[derive(Debug, Clone, Default)]
pub struct ParsedIcs {
    /// The events that could be read.
    pub events: Vec<Event>,
    /// The events that could not, with reasons.
    pub problems: Vec<EventProblem>,
}

/// Reads every VEVENT in `text`. `local` is the zone for floating times and
/// all-day dates; `source_name` names the text in errors.
pub fn parse(text: &str, source_name: &str, local: Tz) -> Result<ParsedIcs, IcsError> {
    let unfolded = parser::unfold(text);
    let roots = parser::read_components(&unfolded).map_err(|reason| IcsError::Syntax {
        source_name: source_name.to_owned(),
        reason: short_reason(&reason),
    })?;
    let calendars: Vec<&Component> = roots
        .iter()
        .filter(|c| is(c.name.as_str(), "VCALENDAR"))
        .collect();
    if calendars.is_empty() {
        return Err(IcsError::NotCalendar {
            source_name: source_name.to_owned(),
        });
    }
    let mut out = ParsedIcs::default();
    for cal in calendars {
        let zones = Zones::from_calendar(cal, local);
        for comp in cal
            .components
            .iter()
            .filter(|c| is(c.name.as_str(), "VEVENT"))
        {
            match read_event(comp, &zones) {
                Ok(event) => out.events.push(event),
                Err(reason) => out.problems.push(EventProblem {
                    uid: text_prop(comp, "UID"),
                    summary: text_prop(comp, "SUMMARY"),
                    reason,
                }),
            }
        }
    }
    Ok(out)
}

/// The zones a calendar's TZIDs refer to.
struct Zones {
    local: Tz,
    /// TZID → zone, from the calendar's VTIMEZONE blocks.
    defined: HashMap<String, Tz>,
}

impl Zones {
    fn from_calendar(cal: &Component, local: Tz) -> Self {
        let mut defined = HashMap::new();
        for vtz in cal
            .components
            .iter()
            .filter(|c| is(c.name.as_str(), "VTIMEZONE"))
        {
            let Some(tzid) = text_prop(vtz, "TZID") else {
                continue;
            };
            if let Some(tz) = vtimezone_zone(vtz, &tzid) {
                defined.insert(unquote(&tzid).to_owned(), tz);
            }
        }
        Self { local, defined }
    }

    fn resolve(&self, tzid: &str) -> Result<Tz, String> {
        let key = unquote(tzid);
        self.defined
            .get(key)
            .copied()
            .or_else(|| zone_by_name(key))
            .ok_or_else(|| format!("unknown time zone {key:?}"))
    }
}

/// The zone a VTIMEZONE stands for.
///
/// Real-world VTIMEZONEs describe a known zone, so its name (IANA or
/// Windows) or Lotus/Mozilla's `X-LIC-LOCATION` is trusted over the rules
/// written in it. A custom name with neither falls back to the fixed offset
/// of its STANDARD part, which is right outside daylight saving only.
fn vtimezone_zone(vtz: &Component, tzid: &str) -> Option<Tz> {
    if let Some(tz) = zone_by_name(tzid) {
        return Some(tz);
    }
    if let Some(tz) = text_prop(vtz, "X-LIC-LOCATION").and_then(|n| zone_by_name(&n)) {
        return Some(tz);
    }
    let standard = vtz
        .components
        .iter()
        .find(|c| is(c.name.as_str(), "STANDARD"))?;
    let offset = text_prop(standard, "TZOFFSETTO")?;
    fixed_offset_zone(&offset)
}

/// "+0100" → Etc/GMT-1 (POSIX names invert the sign); whole hours only,
/// because only those exist as zones.
fn fixed_offset_zone(offset: &str) -> Option<Tz> {
    let (sign, digits) = offset.split_at_checked(1)?;
    let hours: i32 = digits.get(0..2)?.parse().ok()?;
    let minutes: i32 = digits.get(2..4).unwrap_or("00").parse().ok()?;
    if minutes != 0 {
        return None;
    }
    let name = match (sign, hours) {
        (_, 0) => "Etc/UTC".to_owned(),
        ("+", h) => format!("Etc/GMT-{h}"),
        ("-", h) => format!("Etc/GMT+{h}"),
        _ => return None,
    };
    name.parse().ok()
}

fn read_event(comp: &Component, zones: &Zones) -> Result<Event, String> {
    let start_prop = prop(comp, "DTSTART").ok_or("no DTSTART")?;
    let start = when(start_prop, zones).map_err(|e| format!("DTSTART: {e}"))?;
    let length = match (prop(comp, "DTEND"), prop(comp, "DURATION")) {
        (Some(end), _) => {
            let end = when(end, zones).map_err(|e| format!("DTEND: {e}"))?;
            length_between(start, end, zones.local)?
        }
        (None, Some(dur)) => {
            let d = parse_duration(dur.val.as_str()).map_err(|e| format!("DURATION: {e}"))?;
            duration_length(start, d)?
        }
        // RFC 5545 3.6.1: a date start alone lasts one day, a time start
        // alone lasts no time at all.
        (None, None) if matches!(start, When::Date(_)) => Length::Days(1),
        (None, None) => Length::Exact(Duration::zero()),
    };
    let mut rdates = Vec::new();
    let mut exdates = Vec::new();
    for p in &comp.properties {
        let list = if is(p.name.as_str(), "RDATE") {
            &mut rdates
        } else if is(p.name.as_str(), "EXDATE") {
            &mut exdates
        } else {
            continue;
        };
        for value in p.val.as_str().split(',') {
            // An RDATE period "start/end" contributes its start; the event's
            // own length applies.
            let value = value.split('/').next().unwrap_or(value);
            let w = when_value(value.trim(), p, zones)
                .map_err(|e| format!("{}: {e}", p.name.as_str()))?;
            list.push(w);
        }
    }
    let recurrence_id = prop(comp, "RECURRENCE-ID")
        .map(|p| when(p, zones).map_err(|e| format!("RECURRENCE-ID: {e}")))
        .transpose()?;
    Ok(Event {
        uid: text_prop(comp, "UID"),
        summary: text_prop(comp, "SUMMARY"),
        start,
        length,
        rrule: prop(comp, "RRULE").map(|p| p.val.as_str().trim().to_owned()),
        rdates,
        exdates,
        recurrence_id,
        transparent: text_prop(comp, "TRANSP")
            .is_some_and(|v| v.eq_ignore_ascii_case("TRANSPARENT")),
        cancelled: text_prop(comp, "STATUS").is_some_and(|v| v.eq_ignore_ascii_case("CANCELLED")),
    })
}

fn length_between(start: When, end: When, local: Tz) -> Result<Length, String> {
    match (start, end) {
        (When::Date(a), When::Date(b)) => {
            let days = (b - a).num_days();
            u32::try_from(days)
                .ok()
                .filter(|d| *d > 0)
                .map(Length::Days)
                .ok_or_else(|| format!("DTEND {b} is not after DTSTART {a}"))
        }
        _ => {
            let span = end.instant(local) - start.instant(local);
            if span < Duration::zero() {
                return Err("DTEND is before DTSTART".to_owned());
            }
            Ok(Length::Exact(span))
        }
    }
}

fn duration_length(start: When, d: Duration) -> Result<Length, String> {
    if d < Duration::zero() {
        return Err("negative DURATION".to_owned());
    }
    match start {
        When::Date(_) if d.num_seconds() % 86_400 == 0 => u32::try_from(d.num_days())
            .ok()
            .filter(|n| *n > 0)
            .map(Length::Days)
            .ok_or_else(|| "all-day DURATION must be at least one day".to_owned()),
        _ => Ok(Length::Exact(d)),
    }
}

fn when(p: &Property, zones: &Zones) -> Result<When, String> {
    when_value(p.val.as_str().trim(), p, zones)
}

fn when_value(value: &str, p: &Property, zones: &Zones) -> Result<When, String> {
    let is_date =
        param(p, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || value.len() == 8;
    if is_date {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .map(When::Date)
            .map_err(|e| format!("bad date {value:?}: {e}"));
    }
    if let Some(utc) = value.strip_suffix('Z').or_else(|| value.strip_suffix('z')) {
        return NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .map(|t| When::Utc(t.and_utc()))
            .map_err(|e| format!("bad UTC time {value:?}: {e}"));
    }
    let local = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S")
        .map_err(|e| format!("bad date-time {value:?}: {e}"))?;
    match param(p, "TZID") {
        Some(tzid) => Ok(When::Zoned(local, zones.resolve(tzid)?)),
        None => Ok(When::Floating(local)),
    }
}

fn is(name: &str, want: &str) -> bool {
    name.eq_ignore_ascii_case(want)
}

fn prop<'a>(comp: &'a Component, name: &str) -> Option<&'a Property<'a>> {
    comp.properties.iter().find(|p| is(p.name.as_str(), name))
}

fn param<'a>(p: &'a Property, key: &str) -> Option<&'a str> {
    p.params
        .iter()
        .find(|q| is(q.key.as_str(), key))
        .and_then(|q| q.val.as_ref())
        .map(|v| v.as_str())
}

/// A text property with RFC 5545 escapes undone.
fn text_prop(comp: &Component, name: &str) -> Option<String> {
    prop(comp, name).map(|p| unescape(p.val.as_str().trim()))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

/// The parser's message quotes the offending lines; the first few are
/// enough to find the spot without flooding a status line.
fn short_reason(s: &str) -> String {
    s.lines()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn one(body: &str) -> Result<Event, String> {
        let text = format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n{body}END:VEVENT\r\nEND:VCALENDAR\r\n");
        let parsed = parse(&text, "test.ics", BERLIN).unwrap();
        match (
            parsed.events.into_iter().next(),
            parsed.problems.into_iter().next(),
        ) {
            (Some(e), _) => Ok(e),
            (None, Some(p)) => Err(p.reason),
            (None, None) => Err("nothing".into()),
        }
    }

    #[test]
    fn duration_and_defaults() {
        let e = one("UID:a\r\nDTSTART:20260316T100000Z\r\nDURATION:PT45M\r\n").unwrap();
        assert_eq!(e.length, Length::Exact(Duration::minutes(45)));
        let e = one("UID:b\r\nDTSTART;VALUE=DATE:20260316\r\n").unwrap();
        assert_eq!(e.length, Length::Days(1));
        let e = one("UID:c\r\nDTSTART;VALUE=DATE:20260316\r\nDURATION:P3D\r\n").unwrap();
        assert_eq!(e.length, Length::Days(3));
    }

    #[test]
    fn broken_values_are_reported() {
        let err = one("UID:a\r\nDTSTART;TZID=Nowhere/Else:20260316T100000\r\nDURATION:PT1H\r\n")
            .unwrap_err();
        assert!(err.contains("Nowhere/Else"), "{err}");
        let err = one("UID:a\r\nDTSTART:2026-03-16\r\n").unwrap_err();
        assert!(err.contains("DTSTART"), "{err}");
        assert!(one("UID:a\r\nSUMMARY:x\r\n")
            .unwrap_err()
            .contains("no DTSTART"));
    }

    #[test]
    fn escapes_are_undone() {
        let e =
            one("UID:a\r\nSUMMARY:Plan\\, review\\; ship\r\nDTSTART:20260316T100000Z\r\n").unwrap();
        assert_eq!(e.summary.as_deref(), Some("Plan, review; ship"));
    }

    #[test]
    fn custom_vtimezone_falls_back_to_location_then_offset() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Custom A\r\nX-LIC-LOCATION:America/New_York\r\nEND:VTIMEZONE\r\n\
BEGIN:VTIMEZONE\r\nTZID:Custom B\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Custom A:20260316T100000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b\r\nDTSTART;TZID=\"Custom B\":20260316T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let parsed = parse(text, "t", BERLIN).unwrap();
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(
            parsed.events[0].start.zone(BERLIN),
            chrono_tz::America::New_York
        );
        assert_eq!(
            parsed.events[1].start.instant(BERLIN).to_rfc3339(),
            "2026-03-16T01:00:00+00:00"
        );
    }

    #[test]
    fn not_a_calendar_is_an_error_naming_the_source() {
        let err = parse("<html>nope</html>", "https://example.test/cal", BERLIN).unwrap_err();
        assert!(
            err.to_string().contains("https://example.test/cal"),
            "{err}"
        );
    }
}
