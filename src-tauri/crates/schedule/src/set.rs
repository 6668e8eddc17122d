//! The user's calendars together: busy at an instant, until when, and the
//! busy occurrences in a range for the timeline.

use chrono::{DateTime, Duration, Utc};

use crate::calendar::Busy;
use crate::interval::{self, Interval};
use crate::source::{self, LoadContext, LoadedSource, SourceSpec};

/// Longest busy stretch [`BusyCalendar::busy_until`] follows; past this the
/// answer is "at least this long", which is all a scheduler needs.
const MAX_LOOKAHEAD_DAYS: i64 = 32;

/// The scheduler's view of calendars: busy occurrences in a range. Small
/// so the scheduler can be tested with a fake.
pub trait BusyCalendar {
    /// Busy occurrences overlapping `range`, sorted by start.
    fn busy_in(&self, range: Interval) -> Vec<Busy>;

    /// Occurrences covering `t`.
    fn busy_at(&self, t: DateTime<Utc>) -> Vec<Busy> {
        match Interval::new(t, t + Duration::seconds(1)) {
            Ok(range) => self
                .busy_in(range)
                .into_iter()
                .filter(|b| b.interval.contains(t))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Whether any occurrence covers `t`.
    fn is_busy(&self, t: DateTime<Utc>) -> bool {
        !self.busy_at(t).is_empty()
    }

    /// When the busy stretch covering `t` ends (back-to-back and
    /// overlapping meetings count as one stretch), or `None` when free.
    fn busy_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut days = 1;
        loop {
            let range = Interval::new(t, t + Duration::days(days)).ok()?;
            let end =
                interval::covered_until(self.busy_in(range).into_iter().map(|b| b.interval), t)?;
            // A stretch reaching the horizon may go on; look further.
            if end < range.end() || days >= MAX_LOOKAHEAD_DAYS {
                return Some(end);
            }
            days = (days * 4).min(MAX_LOOKAHEAD_DAYS);
        }
    }
}

/// A calendar's occurrences expanded once over a horizon and kept sorted,
/// so the scheduler's frequent questions (busy now? until when? what comes
/// next?) are a binary search instead of a walk through every recurrence
/// rule from its first date. Outside the horizon the calendar itself answers.
#[derive(Debug, Clone)]
pub struct Expanded<C> {
    inner: C,
    horizon: Interval,
    /// Sorted by start.
    busy: Vec<Busy>,
    /// The longest occurrence, which bounds how far before a range an
    /// overlapping occurrence can start.
    longest: Duration,
}

impl<C: BusyCalendar> Expanded<C> {
    pub fn new(inner: C, horizon: Interval) -> Self {
        let mut busy = inner.busy_in(horizon);
        busy.sort_by_key(|b| b.interval);
        let longest = busy
            .iter()
            .map(|b| b.interval.duration())
            .max()
            .unwrap_or_else(Duration::zero);
        Expanded {
            inner,
            horizon,
            busy,
            longest,
        }
    }

    /// The usual horizon for the scheduler: two days back (an occurrence
    /// under way) to 40 days ahead (past `busy_until`'s lookahead).
    pub fn around(inner: C, now: DateTime<Utc>) -> Self {
        let horizon = Interval::lasting(now - Duration::days(2), Duration::days(42));
        Self::new(inner, horizon)
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: BusyCalendar> BusyCalendar for Expanded<C> {
    fn busy_in(&self, range: Interval) -> Vec<Busy> {
        if range.start() < self.horizon.start() || range.end() > self.horizon.end() {
            return self.inner.busy_in(range);
        }
        let first = self
            .busy
            .partition_point(|b| b.interval.start() < range.start() - self.longest);
        let last = self
            .busy
            .partition_point(|b| b.interval.start() < range.end());
        self.busy[first..last.max(first)]
            .iter()
            .filter(|b| b.interval.overlaps(&range))
            .cloned()
            .collect()
    }
}

/// Every configured calendar source, loaded.
#[derive(Debug, Clone, Default)]
pub struct CalendarSet {
    sources: Vec<LoadedSource>,
}

impl CalendarSet {
    /// Loads every source concurrently. A broken source is kept with its
    /// status and contributes no events; it never stops the others.
    pub async fn load(specs: &[SourceSpec], ctx: &LoadContext, now: DateTime<Utc>) -> Self {
        let loads = specs.iter().map(|spec| source::load(spec, ctx, now));
        Self {
            sources: futures_util::future::join_all(loads).await,
        }
    }

    /// A set from sources loaded elsewhere.
    pub fn from_sources(sources: Vec<LoadedSource>) -> Self {
        Self { sources }
    }

    /// The sources with their statuses and skipped events.
    pub fn sources(&self) -> &[LoadedSource] {
        &self.sources
    }
}

impl<C: BusyCalendar + ?Sized> BusyCalendar for &C {
    fn busy_in(&self, range: Interval) -> Vec<Busy> {
        (**self).busy_in(range)
    }
}

impl BusyCalendar for CalendarSet {
    fn busy_in(&self, range: Interval) -> Vec<Busy> {
        let mut out: Vec<Busy> = self
            .sources
            .iter()
            .flat_map(|s| s.calendar.busy_in(range))
            .collect();
        out.sort_by(|a, b| a.interval.cmp(&b.interval).then_with(|| a.uid.cmp(&b.uid)));
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 16, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    /// Recurring work: a two-hour meeting every 5 hours and a 3-day trip.
    struct Pattern;

    impl BusyCalendar for Pattern {
        fn busy_in(&self, range: Interval) -> Vec<Busy> {
            let mut out: Vec<Busy> = (-100..400)
                .map(|i| Interval::new(t(i * 5), t(i * 5 + 2)).unwrap())
                .chain([Interval::new(t(30), t(102)).unwrap()])
                .filter(|i| i.overlaps(&range))
                .map(|interval| Busy {
                    interval,
                    summary: None,
                    uid: None,
                })
                .collect();
            out.sort_by_key(|b| b.interval);
            out
        }
    }

    #[test]
    fn expanded_answers_exactly_like_the_calendar() {
        let expanded = Expanded::new(Pattern, Interval::new(t(-48), t(24 * 40)).unwrap());
        for start in (-60..900).step_by(7) {
            for length in [1, 3, 50, 24 * 33] {
                let range = Interval::new(t(start), t(start + length)).unwrap();
                assert_eq!(expanded.busy_in(range), Pattern.busy_in(range), "{range:?}");
            }
            assert_eq!(expanded.busy_until(t(start)), Pattern.busy_until(t(start)));
        }
    }
}
