//! Half-open UTC time intervals and pure functions over sets of them: merge,
//! clip, "is this instant covered" and "when does the covering stretch end".
//!
//! Every signal the scheduler combines (sleep hours, meetings, idle
//! stretches) becomes a list of [`Interval`]s, so window logic is plain set
//! arithmetic that tests can check without a clock.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// A half-open stretch of time `[start, end)` in UTC.
///
/// Half-open so that back-to-back meetings (10:00–11:00, 11:00–12:00) touch
/// without overlapping, and merge into one stretch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Interval {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// An interval whose end is not after its start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interval end {end} is not after its start {start}")]
pub struct IntervalError {
    /// The rejected start.
    pub start: DateTime<Utc>,
    /// The rejected end.
    pub end: DateTime<Utc>,
}

impl Interval {
    /// An interval from `start` (inclusive) to `end` (exclusive).
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use metaclaw_schedule::Interval;
    /// let a = Utc.with_ymd_and_hms(2026, 3, 16, 10, 0, 0).unwrap();
    /// let b = Utc.with_ymd_and_hms(2026, 3, 16, 11, 0, 0).unwrap();
    /// assert!(Interval::new(a, b).is_ok());
    /// assert!(Interval::new(b, a).is_err());
    /// assert!(Interval::new(a, a).is_err());
    /// ```
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, IntervalError> {
        if end > start {
            Ok(Self { start, end })
        } else {
            Err(IntervalError { start, end })
        }
    }

    /// An interval of `length` from `start`; never empty (at least one
    /// nanosecond), so it cannot fail.
    pub fn lasting(start: DateTime<Utc>, length: Duration) -> Self {
        Self {
            start,
            end: start + length.max(Duration::nanoseconds(1)),
        }
    }

    /// Where the interval begins (inclusive).
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Where the interval ends (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// How long the interval lasts.
    pub fn duration(&self) -> Duration {
        self.end - self.start
    }

    /// Whether `t` falls inside `[start, end)`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// Whether the two intervals share at least one instant.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The part of `self` inside `range`, if any.
    pub fn intersect(&self, range: &Interval) -> Option<Interval> {
        Interval::new(self.start.max(range.start), self.end.min(range.end)).ok()
    }
}

/// Sorts intervals and merges the ones that overlap or touch, giving a
/// sorted list of disjoint stretches.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use metaclaw_schedule::{interval::merge, Interval};
/// let h = |h| Utc.with_ymd_and_hms(2026, 3, 16, h, 0, 0).unwrap();
/// let merged = merge([
///     Interval::new(h(11), h(12)).unwrap(),
///     Interval::new(h(9), h(10)).unwrap(),
///     Interval::new(h(10), h(11)).unwrap(), // touches both: one stretch
///     Interval::new(h(14), h(15)).unwrap(),
/// ]);
/// assert_eq!(merged, vec![
///     Interval::new(h(9), h(12)).unwrap(),
///     Interval::new(h(14), h(15)).unwrap(),
/// ]);
/// ```
pub fn merge(intervals: impl IntoIterator<Item = Interval>) -> Vec<Interval> {
    let mut sorted: Vec<Interval> = intervals.into_iter().collect();
    sorted.sort();
    let mut out: Vec<Interval> = Vec::with_capacity(sorted.len());
    for next in sorted {
        match out.last_mut() {
            Some(last) if next.start <= last.end => last.end = last.end.max(next.end),
            _ => out.push(next),
        }
    }
    out
}

/// The parts of `intervals` that fall inside `range`, merged.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use metaclaw_schedule::{interval::clip, Interval};
/// let h = |h| Utc.with_ymd_and_hms(2026, 3, 16, h, 0, 0).unwrap();
/// let day = Interval::new(h(8), h(18)).unwrap();
/// let clipped = clip([Interval::new(h(6), h(9)).unwrap()], day);
/// assert_eq!(clipped, vec![Interval::new(h(8), h(9)).unwrap()]);
/// ```
pub fn clip(intervals: impl IntoIterator<Item = Interval>, range: Interval) -> Vec<Interval> {
    merge(intervals.into_iter().filter_map(|i| i.intersect(&range)))
}

/// The merged stretch that covers `t`, if any.
///
/// Merging first matters: a meeting 10–11 followed by one 11–12 means the
/// window at 10:30 lasts until 12:00, not 11:00.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use metaclaw_schedule::{interval::covering, Interval};
/// let h = |h| Utc.with_ymd_and_hms(2026, 3, 16, h, 0, 0).unwrap();
/// let set = [Interval::new(h(10), h(11)).unwrap(), Interval::new(h(11), h(12)).unwrap()];
/// assert_eq!(covering(set, h(10)), Some(Interval::new(h(10), h(12)).unwrap()));
/// assert_eq!(covering(set, h(12)), None);
/// ```
pub fn covering(
    intervals: impl IntoIterator<Item = Interval>,
    t: DateTime<Utc>,
) -> Option<Interval> {
    merge(intervals).into_iter().find(|i| i.contains(t))
}

/// Whether any interval covers `t`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use metaclaw_schedule::{interval::covers, Interval};
/// let h = |h| Utc.with_ymd_and_hms(2026, 3, 16, h, 0, 0).unwrap();
/// let set = [Interval::new(h(10), h(11)).unwrap()];
/// assert!(covers(&set, h(10)));
/// assert!(!covers(&set, h(11))); // half-open
/// ```
pub fn covers<'a>(intervals: impl IntoIterator<Item = &'a Interval>, t: DateTime<Utc>) -> bool {
    intervals.into_iter().any(|i| i.contains(t))
}

/// When the stretch covering `t` ends, or `None` when `t` is not covered.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use metaclaw_schedule::{interval::covered_until, Interval};
/// let h = |h| Utc.with_ymd_and_hms(2026, 3, 16, h, 0, 0).unwrap();
/// let set = [Interval::new(h(9), h(11)).unwrap(), Interval::new(h(10), h(13)).unwrap()];
/// assert_eq!(covered_until(set, h(9)), Some(h(13)));
/// assert_eq!(covered_until(set, h(14)), None);
/// ```
pub fn covered_until(
    intervals: impl IntoIterator<Item = Interval>,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    covering(intervals, t).map(|i| i.end)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn h(hour: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 16, hour, min, 0).unwrap()
    }
    fn iv(a: (u32, u32), b: (u32, u32)) -> Interval {
        Interval::new(h(a.0, a.1), h(b.0, b.1)).unwrap()
    }

    #[test]
    fn merge_handles_nested_and_empty() {
        assert!(merge([]).is_empty());
        let merged = merge([iv((9, 0), (12, 0)), iv((10, 0), (10, 30))]);
        assert_eq!(merged, vec![iv((9, 0), (12, 0))]);
    }

    #[test]
    fn clip_drops_outside_and_trims_edges() {
        let range = iv((10, 0), (11, 0));
        let out = clip([iv((8, 0), (9, 0)), iv((10, 30), (12, 0))], range);
        assert_eq!(out, vec![iv((10, 30), (11, 0))]);
    }

    #[test]
    fn covering_stretch_spans_chained_overlaps() {
        let set = [
            iv((9, 0), (9, 45)),
            iv((9, 30), (10, 15)),
            iv((10, 15), (11, 0)),
        ];
        assert_eq!(covered_until(set, h(9, 10)), Some(h(11, 0)));
        assert_eq!(covered_until(set, h(8, 59)), None);
    }

    #[test]
    fn overlap_is_half_open() {
        assert!(!iv((9, 0), (10, 0)).overlaps(&iv((10, 0), (11, 0))));
        assert!(iv((9, 0), (10, 1)).overlaps(&iv((10, 0), (11, 0))));
    }
}
