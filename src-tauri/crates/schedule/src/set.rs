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
