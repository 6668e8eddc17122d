//! One calendar's events expanded into busy occurrences: recurrence
//! (RRULE through the `rrule` crate, RDATE, EXDATE), overridden and
//! cancelled instances (RECURRENCE-ID), and free or cancelled events left
//! out.

use chrono::{DateTime, Days, Duration, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

pub use crate::ics::EventProblem;
use crate::ics::{self, Event, IcsError, Length, When};
use crate::interval::Interval;
use crate::zone::resolve_local;

/// Caps one series' expansion in one query, so a `FREQ=MINUTELY` rule
/// cannot stall the scheduler.
const MAX_OCCURRENCES: u16 = 5_000;

/// One busy occurrence of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Busy {
    /// When the occurrence starts and ends.
    #[serde(flatten)]
    pub interval: Interval,
    /// The event's `SUMMARY`.
    pub summary: Option<String>,
    /// The event's `UID`.
    pub uid: Option<String>,
}

/// A calendar's events, ready to answer "busy when?".
#[derive(Debug, Clone)]
pub struct Calendar {
    local: Tz,
    series: Vec<Series>,
    problems: Vec<EventProblem>,
}

/// A busy event and the instances it does not have.
#[derive(Debug, Clone)]
struct Series {
    uid: Option<String>,
    summary: Option<String>,
    start: When,
    length: Length,
    rule: Option<rrule::RRuleSet>,
    rdates: Vec<When>,
    /// EXDATEs plus the RECURRENCE-IDs of overriding events: instances that
    /// the master no longer produces.
    skipped: Vec<When>,
}

impl Calendar {
    /// Reads iCalendar text. `local` is the zone for floating times and
    /// all-day events; `source_name` names the text in errors.
    pub fn parse(text: &str, source_name: &str, local: Tz) -> Result<Self, IcsError> {
        let parsed = ics::parse(text, source_name, local)?;
        Ok(Self::from_events(parsed.events, parsed.problems, local))
    }

    /// Several calendars' worth of events as one (a vdir folder).
    pub fn merged(parts: impl IntoIterator<Item = Calendar>, local: Tz) -> Self {
        let mut out = Calendar {
            local,
            series: Vec::new(),
            problems: Vec::new(),
        };
        for part in parts {
            out.series.extend(part.series);
            out.problems.extend(part.problems);
        }
        out
    }

    /// An empty calendar (for a source that could not be read).
    pub fn empty(local: Tz) -> Self {
        Self::merged([], local)
    }

    fn from_events(events: Vec<Event>, mut problems: Vec<EventProblem>, local: Tz) -> Self {
        // Overrides first: each removes one instance from its master.
        let overridden: Vec<(Option<String>, When)> = events
            .iter()
            .filter_map(|e| e.recurrence_id.map(|rid| (e.uid.clone(), rid)))
            .collect();
        let mut series = Vec::new();
        for event in events {
            if !event.is_busy() {
                continue;
            }
            let mut skipped = event.exdates.clone();
            if event.recurrence_id.is_none() {
                skipped.extend(
                    overridden
                        .iter()
                        .filter(|(uid, _)| uid.is_some() && *uid == event.uid)
                        .map(|(_, rid)| *rid),
                );
            }
            // An override is a single instance even if it repeats the RRULE.
            let rule_text = event
                .rrule
                .as_deref()
                .filter(|_| event.recurrence_id.is_none());
            let rule = match rule_text
                .map(|r| build_rule(r, event.start, local))
                .transpose()
            {
                Ok(rule) => rule,
                Err(reason) => {
                    problems.push(EventProblem {
                        uid: event.uid.clone(),
                        summary: event.summary.clone(),
                        reason,
                    });
                    continue;
                }
            };
            series.push(Series {
                uid: event.uid,
                summary: event.summary,
                start: event.start,
                length: event.length,
                rule,
                rdates: event.rdates,
                skipped,
            });
        }
        Self {
            local,
            series,
            problems,
        }
    }

    pub(crate) fn add_problem(&mut self, problem: EventProblem) {
        self.problems.push(problem);
    }

    /// Events that were skipped, with reasons.
    pub fn problems(&self) -> &[EventProblem] {
        &self.problems
    }

    /// How many busy events (series, not occurrences) the calendar holds.
    pub fn event_count(&self) -> usize {
        self.series.len()
    }

    /// Busy occurrences that overlap `range`, sorted by start. Intervals are
    /// not clipped: a meeting that began before the range keeps its start.
    pub fn busy_in(&self, range: Interval) -> Vec<Busy> {
        let mut out: Vec<Busy> = self
            .series
            .iter()
            .flat_map(|s| s.busy_in(range, self.local))
            .collect();
        out.sort_by(|a, b| a.interval.cmp(&b.interval).then_with(|| a.uid.cmp(&b.uid)));
        out
    }
}

impl Series {
    fn busy_in(&self, range: Interval, local: Tz) -> Vec<Busy> {
        // An occurrence overlaps the range if it starts before the range
        // ends and after the range start minus its own length.
        let reach = match self.length {
            Length::Days(n) => Duration::days(i64::from(n) + 1),
            Length::Exact(d) => d,
        };
        let from = range.start() - reach - Duration::seconds(1);
        let to = range.end();
        let mut starts: Vec<DateTime<Utc>> = match &self.rule {
            Some(rule) => {
                let zone = rrule::Tz::UTC;
                rule.clone()
                    .after(from.with_timezone(&zone))
                    .before(to.with_timezone(&zone))
                    .all(MAX_OCCURRENCES)
                    .dates
                    .into_iter()
                    .map(|d| d.with_timezone(&Utc))
                    .collect()
            }
            None => Vec::new(),
        };
        // DTSTART is always an instance (RFC 5545 3.8.5.3), even when it
        // does not match the rule's pattern.
        starts.push(self.start.instant(local));
        starts.extend(self.rdates.iter().map(|w| w.instant(local)));
        starts.sort();
        starts.dedup();
        let zone = self.start.zone(local);
        starts
            .into_iter()
            .filter(|s| {
                !self
                    .skipped
                    .iter()
                    .any(|w| same_instance(w, *s, zone, local))
            })
            .filter_map(|s| self.occurrence(s, local))
            .filter(|i| i.overlaps(&range))
            .map(|interval| Busy {
                interval,
                summary: self.summary.clone(),
                uid: self.uid.clone(),
            })
            .collect()
    }

    fn occurrence(&self, start: DateTime<Utc>, local: Tz) -> Option<Interval> {
        match self.length {
            // Midnight to midnight in local dates, so a day across a
            // daylight-saving change is 23 or 25 hours long.
            Length::Days(n) => {
                let day = start.with_timezone(&local).date_naive();
                let first = resolve_local(local, day.and_time(NaiveTime::MIN));
                let last = resolve_local(
                    local,
                    (day + Days::new(u64::from(n))).and_time(NaiveTime::MIN),
                );
                Interval::new(first, last).ok()
            }
            // Zero-length events (a start and no end) block no time.
            Length::Exact(d) => Interval::new(start, start + d).ok(),
        }
    }
}

/// Whether an EXDATE or RECURRENCE-ID value names the instance starting at
/// `start`. A date names the whole local day of the series' zone.
fn same_instance(w: &When, start: DateTime<Utc>, zone: Tz, local: Tz) -> bool {
    match w {
        When::Date(d) => start.with_timezone(&zone).date_naive() == *d,
        other => other.instant(local) == start,
    }
}

/// Builds the recurrence set for an RRULE with its DTSTART.
///
/// The `rrule` crate demands a UTC `UNTIL` whenever DTSTART is zoned, but
/// files write dates and floating times there too, so UNTIL is rewritten to
/// UTC first (an UNTIL date includes its whole day).
fn build_rule(rule: &str, start: When, local: Tz) -> Result<rrule::RRuleSet, String> {
    let zone = start.zone(local);
    let rule = rule.strip_prefix("RRULE:").unwrap_or(rule);
    let mut parts = Vec::new();
    for part in rule.split(';').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((key, value)) if key.eq_ignore_ascii_case("UNTIL") => {
                let until =
                    until_utc(value, zone).ok_or_else(|| format!("RRULE: bad UNTIL {value:?}"))?;
                parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
            }
            _ => parts.push(part.to_owned()),
        }
    }
    let parsed: rrule::RRule<rrule::Unvalidated> = parts
        .join(";")
        .parse()
        .map_err(|e| format!("RRULE {rule:?}: {e}"))?;
    let dtstart = start.instant(local).with_timezone(&rrule::Tz::Tz(zone));
    parsed
        .build(dtstart)
        .map_err(|e| format!("RRULE {rule:?}: {e}"))
}

fn until_utc(value: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Some(utc) = value.strip_suffix('Z') {
        return chrono::NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .ok()
            .map(|t| t.and_utc());
    }
    if value.len() == 8 {
        let day = chrono::NaiveDate::parse_from_str(value, "%Y%m%d").ok()?;
        let end = NaiveTime::from_hms_opt(23, 59, 59)?;
        return Some(resolve_local(zone, day.and_time(end)));
    }
    chrono::NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S")
        .ok()
        .map(|t| resolve_local(zone, t))
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
    fn cal(events: &str) -> Calendar {
        let text = format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{events}END:VCALENDAR\r\n");
        Calendar::parse(&text, "test.ics", BERLIN).unwrap()
    }
    fn range(a: DateTime<Utc>, b: DateTime<Utc>) -> Interval {
        Interval::new(a, b).unwrap()
    }

    #[test]
    fn weekly_rule_keeps_local_time_across_dst() {
        let c = cal("BEGIN:VEVENT\r\nUID:w\r\nDTSTART;TZID=Europe/Berlin:20260323T100000\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n");
        let busy = c.busy_in(range(utc(2026, 3, 1, 0, 0), utc(2026, 5, 1, 0, 0)));
        let starts: Vec<_> = busy.iter().map(|b| b.interval.start()).collect();
        // 10:00 CET = 09:00 UTC; after 2026-03-29, 10:00 CEST = 08:00 UTC.
        assert_eq!(
            starts,
            vec![
                utc(2026, 3, 23, 9, 0),
                utc(2026, 3, 30, 8, 0),
                utc(2026, 4, 6, 8, 0)
            ]
        );
    }

    #[test]
    fn floating_until_date_is_inclusive() {
        let c = cal("BEGIN:VEVENT\r\nUID:d\r\nDTSTART:20260316T090000\r\nDURATION:PT30M\r\nRRULE:FREQ=DAILY;UNTIL=20260318\r\nEND:VEVENT\r\n");
        let busy = c.busy_in(range(utc(2026, 3, 1, 0, 0), utc(2026, 4, 1, 0, 0)));
        assert_eq!(busy.len(), 3, "{busy:?}");
    }

    #[test]
    fn bad_rrule_is_a_problem_not_an_error() {
        let c = cal("BEGIN:VEVENT\r\nUID:bad\r\nSUMMARY:Broken\r\nDTSTART:20260316T090000Z\r\nRRULE:FREQ=SOMETIMES\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:good\r\nDTSTART:20260316T090000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\n");
        assert_eq!(c.problems().len(), 1);
        assert_eq!(c.problems()[0].uid.as_deref(), Some("bad"));
        assert_eq!(c.event_count(), 1);
    }

    #[test]
    fn occurrences_overlapping_the_range_start_are_included() {
        let c = cal("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260316T090000Z\r\nDTEND:20260316T110000Z\r\nEND:VEVENT\r\n");
        let busy = c.busy_in(range(utc(2026, 3, 16, 10, 0), utc(2026, 3, 16, 10, 30)));
        assert_eq!(busy.len(), 1);
        assert_eq!(busy[0].interval.start(), utc(2026, 3, 16, 9, 0));
    }
}
