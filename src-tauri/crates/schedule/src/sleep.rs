//! Sleep hours: a daily local wall-clock stretch ("23:00"–"07:00") turned
//! into UTC intervals for a date range, correct across daylight saving.

use std::fmt;
use std::str::FromStr;

use chrono::{Days, NaiveTime};
use chrono_tz::Tz;

use crate::interval::{self, Interval};
use crate::zone::resolve_local;

/// A local wall-clock time of day, written "HH:MM" (24-hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallTime(NaiveTime);

/// Why sleep hours could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SleepError {
    /// The text is not a "HH:MM" time.
    #[error("sleep time {text:?} is not a 24-hour \"HH:MM\" time (for example \"23:00\")")]
    BadTime {
        /// The text that was given.
        text: String,
    },
    /// Start and end are the same, which would mean either no sleep or all day.
    #[error("sleep hours start and end are both {time}: give two different times")]
    Empty {
        /// The repeated time.
        time: WallTime,
    },
}

impl FromStr for WallTime {
    type Err = SleepError;

    /// ```
    /// use metaclaw_schedule::WallTime;
    /// assert!("07:00".parse::<WallTime>().is_ok());
    /// assert!("7:30".parse::<WallTime>().is_ok());
    /// assert!("24:00".parse::<WallTime>().is_err());
    /// assert!("7pm".parse::<WallTime>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || SleepError::BadTime {
            text: text.to_owned(),
        };
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        // Exactly "H:MM" or "HH:MM": rejects "07:00:00" and "7:5".
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(bad());
        }
        let hour: u32 = h.parse().map_err(|_| bad())?;
        let minute: u32 = m.parse().map_err(|_| bad())?;
        NaiveTime::from_hms_opt(hour, minute, 0)
            .map(WallTime)
            .ok_or_else(bad)
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

/// Daily sleep hours in local time. When `end` is earlier than `start` the
/// stretch wraps midnight and ends on the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepHours {
    start: WallTime,
    end: WallTime,
}

impl SleepHours {
    /// Sleep hours from `start` to `end`.
    pub fn new(start: WallTime, end: WallTime) -> Result<Self, SleepError> {
        if start == end {
            return Err(SleepError::Empty { time: start });
        }
        Ok(Self { start, end })
    }

    /// Reads `"HH:MM"` start and end, as the config keys hold them.
    pub fn parse(start: &str, end: &str) -> Result<Self, SleepError> {
        Self::new(start.parse()?, end.parse()?)
    }

    /// Where sleep begins, local time.
    pub fn start(&self) -> WallTime {
        self.start
    }

    /// Where sleep ends, local time.
    pub fn end(&self) -> WallTime {
        self.end
    }

    /// Sleep stretches in `tz` that overlap `range`, clipped to it, merged
    /// and sorted.
    ///
    /// Each night is computed from local dates and then resolved to UTC, so
    /// a night that crosses a daylight-saving change is an hour shorter or
    /// longer, as the wall clock says.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use metaclaw_schedule::{Interval, SleepHours};
    /// let sleep = SleepHours::parse("23:00", "07:00").unwrap();
    /// let day = Interval::new(
    ///     Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap(),
    ///     Utc.with_ymd_and_hms(2026, 1, 11, 0, 0, 0).unwrap(),
    /// ).unwrap();
    /// let nights = sleep.intervals(chrono_tz::UTC, day);
    /// assert_eq!(nights.len(), 2); // 00:00–07:00 and 23:00–24:00
    /// ```
    pub fn intervals(&self, tz: Tz, range: Interval) -> Vec<Interval> {
        let wraps = self.end < self.start;
        // One extra local day on each side covers zones far from UTC and a
        // night that began the evening before the range.
        let first = range.start().with_timezone(&tz).date_naive() - Days::new(1);
        let last = range.end().with_timezone(&tz).date_naive() + Days::new(1);
        let mut nights = Vec::new();
        let mut day = first;
        while day <= last {
            let end_day = if wraps { day + Days::new(1) } else { day };
            let start = resolve_local(tz, day.and_time(self.start.0));
            let end = resolve_local(tz, end_day.and_time(self.end.0));
            // A night swallowed whole by a gap has no length; skip it.
            if let Ok(night) = Interval::new(start, end) {
                nights.push(night);
            }
            day = day + Days::new(1);
        }
        interval::clip(nights, range)
    }

    /// Whether `t` falls inside sleep hours.
    pub fn contains(&self, tz: Tz, t: chrono::DateTime<chrono::Utc>) -> bool {
        self.covering(tz, t).is_some()
    }

    /// The sleep stretch covering `t`, so the scheduler knows when it ends.
    pub fn covering(&self, tz: Tz, t: chrono::DateTime<chrono::Utc>) -> Option<Interval> {
        // Two days either side holds any single night in full.
        let range =
            Interval::new(t - chrono::Duration::days(2), t + chrono::Duration::days(2)).ok()?;
        interval::covering(self.intervals(tz, range), t)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use chrono_tz::{America::New_York, Europe::Berlin};

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }
    fn range(a: DateTime<Utc>, b: DateTime<Utc>) -> Interval {
        Interval::new(a, b).unwrap()
    }

    #[test]
    fn parse_errors_name_the_text() {
        let err = SleepHours::parse("23:00", "7am").unwrap_err();
        assert!(err.to_string().contains("\"7am\""), "{err}");
        assert!(SleepHours::parse("23:00", "23:00").is_err());
        assert!("12:60".parse::<WallTime>().is_err());
        assert!("-1:00".parse::<WallTime>().is_err());
    }

    #[test]
    fn wrapping_night_in_winter_berlin() {
        let sleep = SleepHours::parse("23:00", "07:00").unwrap();
        let nights = sleep.intervals(
            Berlin,
            range(utc(2026, 1, 12, 12, 0), utc(2026, 1, 13, 12, 0)),
        );
        // 23:00 CET = 22:00 UTC; 07:00 CET = 06:00 UTC.
        assert_eq!(
            nights,
            vec![range(utc(2026, 1, 12, 22, 0), utc(2026, 1, 13, 6, 0))]
        );
    }

    #[test]
    fn spring_forward_night_is_an_hour_shorter_in_berlin() {
        let sleep = SleepHours::parse("23:00", "07:00").unwrap();
        let nights = sleep.intervals(
            Berlin,
            range(utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0)),
        );
        // 23:00 CET (22:00 UTC) to 07:00 CEST (05:00 UTC): 7 hours.
        assert_eq!(
            nights,
            vec![range(utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 5, 0))]
        );
        assert_eq!(nights[0].duration(), chrono::Duration::hours(7));
    }

    #[test]
    fn fall_back_night_is_an_hour_longer_in_new_york() {
        let sleep = SleepHours::parse("23:00", "07:00").unwrap();
        let nights = sleep.intervals(
            New_York,
            range(utc(2026, 10, 31, 12, 0), utc(2026, 11, 1, 18, 0)),
        );
        // 23:00 EDT (03:00 UTC) to 07:00 EST (12:00 UTC): 9 hours.
        assert_eq!(
            nights,
            vec![range(utc(2026, 11, 1, 3, 0), utc(2026, 11, 1, 12, 0))]
        );
    }

    #[test]
    fn start_inside_the_gap_moves_to_transition() {
        // Berlin 2026-03-29 02:30 does not exist: sleep starts at 03:00 CEST.
        let sleep = SleepHours::parse("02:30", "06:00").unwrap();
        let nights = sleep.intervals(
            Berlin,
            range(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 12, 0)),
        );
        assert_eq!(
            nights,
            vec![range(utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 4, 0))]
        );
    }

    #[test]
    fn ambiguous_start_takes_the_earlier_instant() {
        // New York 2026-11-01 01:30 happens twice; take EDT (05:30 UTC).
        let sleep = SleepHours::parse("01:30", "05:00").unwrap();
        let nights = sleep.intervals(
            New_York,
            range(utc(2026, 11, 1, 0, 0), utc(2026, 11, 1, 12, 0)),
        );
        assert_eq!(
            nights,
            vec![range(utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 10, 0))]
        );
    }

    #[test]
    fn covering_reports_when_sleep_ends() {
        let sleep = SleepHours::parse("23:00", "07:00").unwrap();
        let t = utc(2026, 1, 13, 2, 0); // 03:00 in Berlin
        assert_eq!(
            sleep.covering(Berlin, t).map(|i| i.end()),
            Some(utc(2026, 1, 13, 6, 0))
        );
        assert!(!sleep.contains(Berlin, utc(2026, 1, 13, 12, 0)));
    }

    #[test]
    fn daytime_sleep_does_not_wrap() {
        let sleep = SleepHours::parse("13:00", "14:00").unwrap();
        let nights = sleep.intervals(
            chrono_tz::UTC,
            range(utc(2026, 1, 1, 0, 0), utc(2026, 1, 2, 0, 0)),
        );
        assert_eq!(
            nights,
            vec![range(utc(2026, 1, 1, 13, 0), utc(2026, 1, 1, 14, 0))]
        );
    }
}
