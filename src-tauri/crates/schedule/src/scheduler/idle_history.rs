//! Idle stretches: noticing when one ends from sparse idle readings, and
//! estimating how long the current one will last from those recorded at the
//! same hour of the week.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Tz;

/// Fewer comparable stretches than this say nothing useful.
const MIN_SAMPLES: usize = 3;

/// Stretches that began within this many hours of the same hour of the
/// week count as comparable.
const HOUR_SLACK: i64 = 1;

/// A recorded idle stretch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Stretch {
    fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// Follows the idle reading between polls and reports each stretch that
/// reached the threshold once input ends it.
///
/// Readings can be minutes apart while nothing is expected to happen, but
/// each reading says when the last input was (`now - idle`), so the start of
/// a stretch and its end (the input that broke it) are both exact.
#[derive(Debug, Default)]
pub struct StretchTracker {
    /// Start of the current stretch, once it has reached the threshold.
    start: Option<DateTime<Utc>>,
}

impl StretchTracker {
    pub fn observe(
        &mut self,
        now: DateTime<Utc>,
        idle: StdDuration,
        threshold: StdDuration,
    ) -> Option<Stretch> {
        let last_input = now - super::policy::to_chrono(idle);
        // Readings of one stretch agree on its start to within a second or
        // two of clock skew; a later last input means the stretch ended.
        let ended = match self.start {
            Some(start) if last_input > start + Duration::seconds(2) => {
                self.start = None;
                Some(Stretch {
                    start,
                    end: last_input,
                })
            }
            _ => None,
        };
        if idle >= threshold && self.start.is_none() {
            self.start = Some(last_input);
        }
        ended
    }

    /// When the current stretch began, if it reached the threshold.
    pub fn current_start(&self) -> Option<DateTime<Utc>> {
        self.start
    }
}

/// When an idle stretch that began at `start` and is still going at `now`
/// will probably end: the median end of past stretches that began near the
/// same local hour of the week and lasted at least as long as this one has
/// so far. Falls back to every such stretch, then to `None`.
pub fn estimate_end(
    history: &[Stretch],
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    let elapsed = now - start;
    let survivors: Vec<&Stretch> = history.iter().filter(|s| s.length() > elapsed).collect();
    let hour = hour_of_week(start, tz);
    let same_hour: Vec<Duration> = survivors
        .iter()
        .filter(|s| hour_distance(hour_of_week(s.start, tz), hour) <= HOUR_SLACK)
        .map(|s| s.length())
        .collect();
    let lengths = if same_hour.len() >= MIN_SAMPLES {
        same_hour
    } else {
        survivors.iter().map(|s| s.length()).collect()
    };
    median(lengths).map(|length| start + length)
}

fn hour_of_week(t: DateTime<Utc>, tz: Tz) -> i64 {
    let local = t.with_timezone(&tz);
    i64::from(local.weekday().num_days_from_monday()) * 24 + i64::from(local.hour())
}

/// Distance on the week's circle, so Sunday 23:00 is next to Monday 00:00.
fn hour_distance(a: i64, b: i64) -> i64 {
    let d = (a - b).rem_euclid(168);
    d.min(168 - d)
}

fn median(mut lengths: Vec<Duration>) -> Option<Duration> {
    if lengths.len() < MIN_SAMPLES {
        return None;
    }
    lengths.sort();
    Some(lengths[lengths.len() / 2])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap()
    }

    fn secs(s: u64) -> StdDuration {
        StdDuration::from_secs(s)
    }

    #[test]
    fn tracker_reports_a_stretch_with_its_exact_ends_from_sparse_readings() {
        let mut tracker = StretchTracker::default();
        let threshold = secs(600);
        // Idle 5 min at 12:05: below threshold, nothing tracked yet.
        assert_eq!(tracker.observe(at(2, 12, 5), secs(300), threshold), None);
        // 12:10: idle 10 min, the stretch began at 12:00.
        assert_eq!(tracker.observe(at(2, 12, 10), secs(600), threshold), None);
        assert_eq!(tracker.current_start(), Some(at(2, 12, 0)));
        assert_eq!(tracker.observe(at(2, 12, 40), secs(2_400), threshold), None);
        // 13:00: idle 5 min, so input at 12:55 ended it.
        let ended = tracker.observe(at(2, 13, 0), secs(300), threshold);
        assert_eq!(
            ended,
            Some(Stretch {
                start: at(2, 12, 0),
                end: at(2, 12, 55)
            })
        );
        assert_eq!(tracker.current_start(), None);
    }

    #[test]
    fn short_stretches_are_not_reported() {
        let mut tracker = StretchTracker::default();
        assert_eq!(tracker.observe(at(2, 12, 5), secs(100), secs(600)), None);
        assert_eq!(tracker.observe(at(2, 12, 6), secs(1), secs(600)), None);
    }

    #[test]
    fn estimate_uses_the_same_hour_of_the_week() {
        // Mondays at 12:00 the user takes an hour's lunch; other times,
        // 15-minute breaks.
        let mut history = Vec::new();
        for week in 0..4 {
            let monday = at(2 + 7 * week, 12, 0);
            history.push(Stretch {
                start: monday,
                end: monday + Duration::minutes(60),
            });
            let tuesday = at(3 + 7 * week, 15, 0);
            history.push(Stretch {
                start: tuesday,
                end: tuesday + Duration::minutes(15),
            });
        }
        let start = at(30, 12, 5); // a Monday
        let now = start + Duration::minutes(10);
        assert_eq!(
            estimate_end(&history, start, now, Tz::UTC),
            Some(start + Duration::minutes(60))
        );
        // At another hour, lunch-length stretches are the only ones still
        // longer than 10 minutes... but the 15-minute breaks count too.
        let start = at(31, 15, 2); // Tuesday
        let now = start + Duration::minutes(10);
        assert_eq!(
            estimate_end(&history, start, now, Tz::UTC),
            Some(start + Duration::minutes(15))
        );
    }

    #[test]
    fn too_little_history_gives_no_estimate() {
        let history = [Stretch {
            start: at(2, 12, 0),
            end: at(2, 13, 0),
        }];
        assert_eq!(
            estimate_end(&history, at(9, 12, 0), at(9, 12, 10), Tz::UTC),
            None
        );
    }

    #[test]
    fn week_wraps_around() {
        assert_eq!(hour_distance(167, 0), 1);
        assert_eq!(hour_distance(0, 167), 1);
    }
}
