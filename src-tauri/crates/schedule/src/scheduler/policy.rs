//! Whether a training window may be open right now, and why or why not.
//! Pure: every input, the clock included, is a parameter.

use std::fmt;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::interval::Interval;
use crate::set::BusyCalendar;
use crate::sleep::SleepHours;

/// How long keyboard and mouse must have been still before sleep hours or a
/// meeting open a window: typing through a meeting keeps it closed, and the
/// user who just walked away from the desk is away after one quiet minute.
pub const AWAY_CONFIRM: StdDuration = StdDuration::from_secs(60);

/// How far ahead the next sleep or meeting boundary is looked for; the
/// driver re-assesses at least this often anyway.
const LOOKAHEAD: Duration = Duration::hours(36);

/// The scheduler's settings, from `scheduler.*`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub enabled: bool,
    pub sleep: Option<SleepHours>,
    pub tz: Tz,
    pub idle_threshold: StdDuration,
    pub min_window: StdDuration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            sleep: None,
            tz: Tz::UTC,
            idle_threshold: StdDuration::from_secs(600),
            min_window: StdDuration::from_secs(300),
        }
    }
}

/// Why a window is (or would be) open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Sleep,
    Locked,
    Calendar,
    Idle,
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Sleep => "sleep",
            Trigger::Locked => "locked",
            Trigger::Calendar => "calendar",
            Trigger::Idle => "idle",
            Trigger::Manual => "manual",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Sleep => "sleep hours",
            Trigger::Locked => "screen locked",
            Trigger::Calendar => "calendar busy",
            Trigger::Idle => "keyboard and mouse idle",
            Trigger::Manual => "train now",
        })
    }
}

/// What the signals read at `now`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub now: DateTime<Utc>,
    /// `None` when no idle source works.
    pub idle: Option<StdDuration>,
    /// `None` when no lock source works.
    pub locked: Option<bool>,
    /// The last request through the proxy.
    pub last_request: Option<DateTime<Utc>>,
    /// When the current idle stretch is expected to end, from history.
    pub idle_estimate: Option<DateTime<Utc>>,
}

/// What the user asked for: pause until a time, or a window now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    pub paused_until: Option<DateTime<Utc>>,
    pub manual: bool,
}

/// Why no window is open.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blocker {
    Disabled,
    Paused { until: DateTime<Utc> },
    NoTrigger,
    RecentRequest { at: DateTime<Utc> },
    UserActive { idle_seconds: u64 },
    TooShort { ends_at: DateTime<Utc> },
}

/// The verdict at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// Triggers that hold (whether or not something blocks them).
    pub triggers: Vec<Trigger>,
    /// `None`: a window may be open.
    pub blocker: Option<Blocker>,
    /// When the window would end, where that is known.
    pub expected_end: Option<DateTime<Utc>>,
    /// When the sleep hours covering now end.
    pub sleep_ends: Option<DateTime<Utc>>,
    /// When the current busy stretch of the calendar ends.
    pub busy_until: Option<DateTime<Utc>>,
    /// The next instant at which the verdict can change with no new input.
    pub next_change: Option<DateTime<Utc>>,
}

impl Assessment {
    pub fn is_open(&self) -> bool {
        self.blocker.is_none()
    }

    /// In words, for `schedule status` and the tray.
    pub fn explain(&self, tz: Tz) -> String {
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
        let reasons = self
            .triggers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let until = self
            .expected_end
            .map(|t| format!(" until about {}", local(t)))
            .unwrap_or_default();
        match &self.blocker {
            None => format!("a window is open ({reasons}){until}"),
            Some(Blocker::Disabled) => "the scheduler is turned off (scheduler.enabled)".into(),
            Some(Blocker::Paused { until }) => {
                format!("learning is paused until {}", local(*until))
            }
            Some(Blocker::NoTrigger) => {
                "you are here: not sleep hours, no meeting, screen unlocked, keyboard or mouse used recently".into()
            }
            Some(Blocker::RecentRequest { at }) => format!(
                "{reasons}, but your agent made a request at {} (within the idle threshold)",
                local(*at)
            ),
            Some(Blocker::UserActive { idle_seconds }) => format!(
                "{reasons}, but the keyboard or mouse was used {idle_seconds} s ago"
            ),
            Some(Blocker::TooShort { ends_at }) => format!(
                "{reasons}, but it ends at {}, too soon for scheduler.min_window_minutes",
                local(*ends_at)
            ),
        }
    }
}

/// Decides whether a window may be open at `obs.now`.
///
/// A window opens when any trigger holds — sleep hours, keyboard and mouse
/// idle for the threshold, a locked screen, a busy calendar, or "train now"
/// — and nothing blocks it: the proxy served a request within the idle
/// threshold, or (for sleep hours and meetings) the keyboard or mouse was
/// used within [`AWAY_CONFIRM`]. "Train now" overrides both: the user asked.
pub fn assess(
    settings: &Settings,
    control: &Control,
    calendar: &dyn BusyCalendar,
    obs: &Observation,
) -> Assessment {
    let now = obs.now;
    let threshold = to_chrono(settings.idle_threshold);
    let sleep = settings.sleep.and_then(|s| s.covering(settings.tz, now));
    let busy_until = calendar.busy_until(now);
    let idle = obs.idle.map(to_chrono);
    let idle_trigger = idle.is_some_and(|i| i >= threshold);
    let locked = obs.locked == Some(true);

    let mut triggers = Vec::new();
    if sleep.is_some() {
        triggers.push(Trigger::Sleep);
    }
    if locked {
        triggers.push(Trigger::Locked);
    }
    if busy_until.is_some() {
        triggers.push(Trigger::Calendar);
    }
    if idle_trigger {
        triggers.push(Trigger::Idle);
    }
    if control.manual {
        triggers.push(Trigger::Manual);
    }

    // Sleep hours and meetings end at known times; idle and lock are
    // estimated from history. The window lasts while any trigger does.
    let scheduled_end = [sleep.map(|s| s.end()), busy_until]
        .into_iter()
        .flatten()
        .max();
    let estimated_end = (idle_trigger || locked)
        .then_some(obs.idle_estimate)
        .flatten();
    let expected_end = if control.manual {
        None
    } else {
        match (scheduled_end, estimated_end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    };

    let recent_request = obs.last_request.filter(|at| now - *at < threshold);
    let away_confirm = to_chrono(AWAY_CONFIRM).min(threshold);
    let user_active = idle.filter(|i| *i < away_confirm);
    let blocker = if control.manual {
        None
    } else if !settings.enabled {
        Some(Blocker::Disabled)
    } else if let Some(until) = control.paused_until.filter(|u| *u > now) {
        Some(Blocker::Paused { until })
    } else if triggers.is_empty() {
        Some(Blocker::NoTrigger)
    } else if let Some(at) = recent_request {
        Some(Blocker::RecentRequest { at })
    } else if let (Some(i), false, false) = (user_active, locked, idle_trigger) {
        Some(Blocker::UserActive {
            idle_seconds: i.num_seconds().max(0) as u64,
        })
    } else {
        match expected_end {
            Some(end) if end - now < to_chrono(settings.min_window) => {
                Some(Blocker::TooShort { ends_at: end })
            }
            _ => None,
        }
    };

    let mut changes = Vec::new();
    if let Some(i) = idle {
        // Idle time only grows until input, which the driver watches for.
        for mark in [threshold, away_confirm] {
            if i < mark {
                changes.push(now + (mark - i));
            }
        }
    }
    if let Some(at) = recent_request {
        changes.push(at + threshold);
    }
    if let Some(until) = control.paused_until.filter(|u| *u > now) {
        changes.push(until);
    }
    changes.extend(sleep.map(|s| s.end()));
    changes.extend(busy_until);
    if let Ok(ahead) = Interval::new(now, now + LOOKAHEAD) {
        if let Some(s) = settings.sleep {
            changes.extend(
                s.intervals(settings.tz, ahead)
                    .iter()
                    .map(|i| i.start())
                    .find(|t| *t > now),
            );
        }
        changes.extend(
            calendar
                .busy_in(ahead)
                .iter()
                .map(|b| b.interval.start())
                .find(|t| *t > now),
        );
    }
    // A too-short window may become long enough when a later trigger
    // extends it, which one of the boundaries above already covers.
    let next_change = changes.into_iter().filter(|t| *t > now).min();

    Assessment {
        triggers,
        blocker,
        expected_end,
        sleep_ends: sleep.map(|s| s.end()),
        busy_until,
        next_change,
    }
}

pub(crate) fn to_chrono(d: StdDuration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::calendar::Busy;
    use chrono::TimeZone;

    /// Meetings as plain intervals.
    struct Meetings(Vec<Interval>);

    impl BusyCalendar for Meetings {
        fn busy_in(&self, range: Interval) -> Vec<Busy> {
            self.0
                .iter()
                .filter(|i| i.overlaps(&range))
                .map(|i| Busy {
                    interval: *i,
                    summary: Some("meeting".into()),
                    uid: None,
                })
                .collect()
        }
    }

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 16, h, m, 0).unwrap()
    }

    fn settings() -> Settings {
        Settings {
            sleep: Some(SleepHours::parse("23:00", "07:00").unwrap()),
            ..Settings::default()
        }
    }

    fn obs(now: DateTime<Utc>, idle_secs: u64) -> Observation {
        Observation {
            now,
            idle: Some(StdDuration::from_secs(idle_secs)),
            locked: Some(false),
            last_request: None,
            idle_estimate: None,
        }
    }

    fn none() -> Meetings {
        Meetings(vec![])
    }

    #[test]
    fn at_the_desk_nothing_opens_and_the_next_check_is_the_idle_threshold() {
        let a = assess(&settings(), &Control::default(), &none(), &obs(t(14, 0), 5));
        assert_eq!(a.blocker, Some(Blocker::NoTrigger));
        assert!(a.triggers.is_empty());
        // 55 s until away-confirm is the nearest change.
        assert_eq!(a.next_change, Some(t(14, 0) + Duration::seconds(55)));
    }

    #[test]
    fn idle_past_threshold_opens_with_an_estimated_end() {
        let mut o = obs(t(14, 0), 600);
        o.idle_estimate = Some(t(15, 0));
        let a = assess(&settings(), &Control::default(), &none(), &o);
        assert!(a.is_open());
        assert_eq!(a.triggers, [Trigger::Idle]);
        assert_eq!(a.expected_end, Some(t(15, 0)));
    }

    #[test]
    fn sleep_hours_open_once_input_has_been_still_for_a_minute() {
        let typing = assess(
            &settings(),
            &Control::default(),
            &none(),
            &obs(t(23, 30), 10),
        );
        assert_eq!(
            typing.blocker,
            Some(Blocker::UserActive { idle_seconds: 10 })
        );
        assert_eq!(typing.next_change, Some(t(23, 30) + Duration::seconds(50)));
        let away = assess(
            &settings(),
            &Control::default(),
            &none(),
            &obs(t(23, 30), 61),
        );
        assert!(away.is_open());
        assert_eq!(away.triggers, [Trigger::Sleep]);
        assert_eq!(
            away.expected_end,
            Some(Utc.with_ymd_and_hms(2026, 3, 17, 7, 0, 0).unwrap())
        );
    }

    #[test]
    fn a_recent_request_keeps_every_window_closed_until_the_threshold_passes() {
        let mut o = obs(t(23, 30), 3_000);
        o.last_request = Some(t(23, 25));
        let a = assess(&settings(), &Control::default(), &none(), &o);
        assert_eq!(a.blocker, Some(Blocker::RecentRequest { at: t(23, 25) }));
        assert_eq!(a.next_change, Some(t(23, 35)));
    }

    #[test]
    fn locked_screen_opens_even_right_after_input() {
        let mut o = obs(t(14, 0), 2);
        o.locked = Some(true);
        let a = assess(&settings(), &Control::default(), &none(), &o);
        assert!(a.is_open());
        assert_eq!(a.triggers, [Trigger::Locked]);
    }

    #[test]
    fn meeting_ending_too_soon_is_not_a_window() {
        let cal = Meetings(vec![Interval::new(t(10, 0), t(10, 4)).unwrap()]);
        let a = assess(&settings(), &Control::default(), &cal, &obs(t(10, 0), 120));
        assert_eq!(a.blocker, Some(Blocker::TooShort { ends_at: t(10, 4) }));
        let cal = Meetings(vec![Interval::new(t(10, 0), t(11, 0)).unwrap()]);
        let a = assess(&settings(), &Control::default(), &cal, &obs(t(10, 0), 120));
        assert!(a.is_open());
        assert_eq!(a.expected_end, Some(t(11, 0)));
    }

    #[test]
    fn back_to_back_meetings_and_sleep_end_at_the_latest() {
        let cal = Meetings(vec![
            Interval::new(t(6, 0), t(7, 30)).unwrap(),
            Interval::new(t(7, 30), t(8, 0)).unwrap(),
        ]);
        let a = assess(&settings(), &Control::default(), &cal, &obs(t(6, 30), 300));
        assert_eq!(a.triggers, [Trigger::Sleep, Trigger::Calendar]);
        assert_eq!(a.expected_end, Some(t(8, 0)));
    }

    #[test]
    fn next_change_finds_the_next_meeting_and_sleep_start() {
        let cal = Meetings(vec![Interval::new(t(15, 0), t(16, 0)).unwrap()]);
        let mut o = obs(t(14, 0), 0);
        o.idle = None; // no idle source: only boundaries matter
        let a = assess(&settings(), &Control::default(), &cal, &o);
        assert_eq!(a.next_change, Some(t(15, 0)));
        let a = assess(&settings(), &Control::default(), &none(), &o);
        assert_eq!(a.next_change, Some(t(23, 0)));
    }

    #[test]
    fn pause_and_disable_block_but_train_now_overrides() {
        let paused = Control {
            paused_until: Some(t(15, 0)),
            manual: false,
        };
        let a = assess(&settings(), &paused, &none(), &obs(t(14, 0), 5_000));
        assert_eq!(a.blocker, Some(Blocker::Paused { until: t(15, 0) }));
        assert_eq!(a.next_change, Some(t(15, 0)));
        let off = Settings {
            enabled: false,
            ..settings()
        };
        let a = assess(&off, &Control::default(), &none(), &obs(t(14, 0), 5_000));
        assert_eq!(a.blocker, Some(Blocker::Disabled));
        let manual = Control {
            paused_until: None,
            manual: true,
        };
        let mut o = obs(t(14, 0), 1);
        o.last_request = Some(t(14, 0));
        let a = assess(&off, &manual, &none(), &o);
        assert!(a.is_open());
        assert_eq!(a.triggers, [Trigger::Manual]);
        assert_eq!(a.expected_end, None);
    }

    #[test]
    fn explanations_name_the_reason() {
        let mut o = obs(t(23, 30), 3_000);
        o.last_request = Some(t(23, 25));
        let a = assess(&settings(), &Control::default(), &none(), &o);
        let text = a.explain(Tz::UTC);
        assert!(text.contains("sleep hours"), "{text}");
        assert!(text.contains("23:25"), "{text}");
    }
}
