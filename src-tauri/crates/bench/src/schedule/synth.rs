//! A synthetic but realistic busy calendar: a year of a busy person's
//! meetings as Outlook, Google and Thunderbird would export them.
//!
//! The mix: one-off meetings in several zones (IANA and Windows names, UTC,
//! floating), weekly, weekday-daily and monthly series ending by COUNT or
//! UNTIL, EXDATEs, overridden and cancelled instances, all-day events (most
//! marked free, as exporters write holidays), and events marked free or
//! cancelled. The same seed gives the same file.
//!
//! 5,000 events in a year is a heavy calendar (a person's own plus a few
//! shared team calendars), so most working hours are booked.

use std::fmt::Write;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// How many VEVENTs of each kind; they add up to [`Mix::total`].
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    pub one_off: usize,
    pub weekly: usize,
    pub daily: usize,
    pub monthly: usize,
    pub overrides: usize,
    pub all_day: usize,
    pub free: usize,
    pub cancelled: usize,
}

impl Mix {
    /// A realistic share of each kind for `total` events.
    pub fn for_total(total: usize) -> Mix {
        let share = |per_mille: usize| total * per_mille / 1000;
        let mut mix = Mix {
            one_off: 0,
            weekly: share(140),
            daily: share(40),
            monthly: share(10),
            overrides: share(30),
            all_day: share(80),
            free: share(20),
            cancelled: share(10),
        };
        mix.one_off = total - mix.total();
        mix
    }

    pub fn total(&self) -> usize {
        self.one_off
            + self.weekly
            + self.daily
            + self.monthly
            + self.overrides
            + self.all_day
            + self.free
            + self.cancelled
    }
}

/// How an event's times are written.
#[derive(Clone, Copy)]
enum Zone {
    Tzid(&'static str),
    Utc,
    Floating,
}

/// Weighted toward the user's own zone, as real calendars are.
const ZONES: [Zone; 8] = [
    Zone::Tzid("Europe/Berlin"),
    Zone::Tzid("Europe/Berlin"),
    Zone::Tzid("W. Europe Standard Time"),
    Zone::Tzid("W. Europe Standard Time"),
    Zone::Tzid("Pacific Standard Time"),
    Zone::Tzid("America/New_York"),
    Zone::Utc,
    Zone::Floating,
];

const TOPICS: [&str; 12] = [
    "Standup",
    "1:1",
    "Design review",
    "Sprint planning",
    "Customer call",
    "Interview",
    "Architecture sync",
    "Budget review",
    "Retro",
    "Hiring debrief",
    "Roadmap",
    "Incident review",
];

const VTIMEZONES: &str = "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n\
BEGIN:STANDARD\r\nDTSTART:16011028T030000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n\
TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:16010325T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n\
TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n\
BEGIN:VTIMEZONE\r\nTZID:Pacific Standard Time\r\n\
BEGIN:STANDARD\r\nDTSTART:16011104T020000\r\nRRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\n\
TZOFFSETFROM:-0700\r\nTZOFFSETTO:-0800\r\nEND:STANDARD\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:16010311T020000\r\nRRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\n\
TZOFFSETFROM:-0800\r\nTZOFFSETTO:-0700\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nX-LIC-LOCATION:Europe/Berlin\r\n\
BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n\
DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n\
BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n\
DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n\
END:VTIMEZONE\r\n";

/// A weekly series that overrides may point into.
struct Weekly {
    uid: String,
    start: NaiveDateTime,
    zone: Zone,
    instances: u32,
}

/// A calendar of `mix.total()` events across `year`, as iCalendar text.
pub fn calendar(year: i32, mix: Mix, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//MetaClaw//bench synthetic//EN\r\n",
    );
    out.push_str(VTIMEZONES);
    let mut n = 0usize;
    let mut uid = |kind: &str| {
        n += 1;
        format!("{kind}-{n:05}@bench.metaclaw")
    };

    for _ in 0..mix.one_off {
        let zone = *ZONES.choose(&mut rng).unwrap_or(&Zone::Utc);
        let start = work_slot(&mut rng, year);
        let event = Event::timed(uid("meeting"), topic(&mut rng), start, zone, &mut rng);
        event.write(&mut out);
    }

    let mut weekly = Vec::with_capacity(mix.weekly);
    for _ in 0..mix.weekly {
        let zone = *ZONES.choose(&mut rng).unwrap_or(&Zone::Utc);
        let start = work_slot(&mut rng, year);
        let mut event = Event::timed(uid("weekly"), topic(&mut rng), start, zone, &mut rng);
        // Most series run a quarter or so; some all year.
        let instances = *[4u32, 6, 8, 10, 13, 13, 26, 52]
            .choose(&mut rng)
            .unwrap_or(&13);
        let day = byday(start.weekday());
        event.rrule = Some(if rng.random_bool(0.5) {
            format!("FREQ=WEEKLY;BYDAY={day};COUNT={instances}")
        } else {
            // Outlook writes UNTIL in UTC, Google often as a date.
            let last = start + Duration::weeks(i64::from(instances) - 1);
            if rng.random_bool(0.5) {
                format!(
                    "FREQ=WEEKLY;BYDAY={day};UNTIL={}",
                    last.date().format("%Y%m%d")
                )
            } else {
                format!(
                    "FREQ=WEEKLY;BYDAY={day};UNTIL={}T235959Z",
                    last.date().format("%Y%m%d")
                )
            }
        });
        if rng.random_bool(0.3) {
            for _ in 0..rng.random_range(1..=3) {
                let k = rng.random_range(1..instances);
                event.exdates.push(start + Duration::weeks(i64::from(k)));
            }
        }
        weekly.push(Weekly {
            uid: event.uid.clone(),
            start,
            zone,
            instances,
        });
        event.write(&mut out);
    }

    for _ in 0..mix.daily {
        let zone = *ZONES.choose(&mut rng).unwrap_or(&Zone::Utc);
        let start = work_slot(&mut rng, year);
        let mut event = Event::timed(uid("daily"), "Daily standup".into(), start, zone, &mut rng);
        event.rrule = Some(if rng.random_bool(0.5) {
            format!(
                "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT={}",
                rng.random_range(5..=60)
            )
        } else {
            let last = start.date() + Duration::days(rng.random_range(7..=90));
            format!(
                "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;UNTIL={}",
                last.format("%Y%m%d")
            )
        });
        event.write(&mut out);
    }

    for _ in 0..mix.monthly {
        let zone = *ZONES.choose(&mut rng).unwrap_or(&Zone::Utc);
        let start = work_slot(&mut rng, year);
        let mut event = Event::timed(
            uid("monthly"),
            "Monthly business review".into(),
            start,
            zone,
            &mut rng,
        );
        let nth = (start.day() - 1) / 7 + 1;
        event.rrule = Some(format!(
            "FREQ=MONTHLY;BYDAY={nth}{};COUNT={}",
            byday(start.weekday()),
            rng.random_range(3..=12)
        ));
        event.write(&mut out);
    }

    // Overrides: one instance of a weekly series moved by an hour or two,
    // or cancelled.
    for i in 0..mix.overrides {
        let Some(series) = weekly.get(i % weekly.len().max(1)) else {
            break;
        };
        let k = i64::from(rng.random_range(0..series.instances));
        let original = series.start + Duration::weeks(k);
        let moved = original + Duration::hours(rng.random_range(1..=3));
        let mut event = Event::timed(
            series.uid.clone(),
            "Moved meeting".into(),
            moved,
            series.zone,
            &mut rng,
        );
        event.recurrence_id = Some(original);
        event.cancelled = rng.random_bool(0.2);
        event.write(&mut out);
    }

    // Most all-day entries are reminders that Google and Outlook export as
    // free (holidays, birthdays, "release week"); a few block the day.
    for _ in 0..mix.all_day {
        let day = random_day(&mut rng, year);
        let days = *[1i64, 1, 1, 2, 3].choose(&mut rng).unwrap_or(&1);
        let (summary, transp) = if rng.random_bool(0.1) {
            ("Offsite", "OPAQUE")
        } else {
            ("Public holiday", "TRANSPARENT")
        };
        let _ = write!(
            out,
            "BEGIN:VEVENT\r\nUID:{}\r\nSUMMARY:{summary}\r\nDTSTAMP:{year}0101T000000Z\r\n\
             DTSTART;VALUE=DATE:{}\r\nDTEND;VALUE=DATE:{}\r\nTRANSP:{transp}\r\nEND:VEVENT\r\n",
            uid("allday"),
            day.format("%Y%m%d"),
            (day + Duration::days(days)).format("%Y%m%d")
        );
    }

    for _ in 0..mix.free {
        let start = work_slot(&mut rng, year);
        let mut event = Event::timed(uid("free"), "Focus time".into(), start, Zone::Utc, &mut rng);
        event.transparent = true;
        event.write(&mut out);
    }

    for _ in 0..mix.cancelled {
        let start = work_slot(&mut rng, year);
        let mut event = Event::timed(
            uid("cancelled"),
            "Vendor call".into(),
            start,
            Zone::Tzid("Europe/Berlin"),
            &mut rng,
        );
        event.cancelled = true;
        event.write(&mut out);
    }

    out.push_str("END:VCALENDAR\r\n");
    out
}

struct Event {
    uid: String,
    summary: String,
    start: NaiveDateTime,
    zone: Zone,
    /// Written as DTEND or as DURATION, as different exporters do.
    minutes: i64,
    as_duration: bool,
    rrule: Option<String>,
    exdates: Vec<NaiveDateTime>,
    recurrence_id: Option<NaiveDateTime>,
    transparent: bool,
    cancelled: bool,
}

impl Event {
    fn timed(
        uid: String,
        summary: String,
        start: NaiveDateTime,
        zone: Zone,
        rng: &mut StdRng,
    ) -> Event {
        Event {
            uid,
            summary,
            start,
            zone,
            minutes: *[15i64, 30, 30, 45, 60, 60, 90].choose(rng).unwrap_or(&30),
            as_duration: rng.random_bool(0.3),
            rrule: None,
            exdates: Vec::new(),
            recurrence_id: None,
            transparent: false,
            cancelled: false,
        }
    }

    fn write(&self, out: &mut String) {
        let _ = write!(
            out,
            "BEGIN:VEVENT\r\nUID:{}\r\nSUMMARY:{}\r\nDTSTAMP:20260101T000000Z\r\n",
            self.uid, self.summary
        );
        if let Some(rid) = self.recurrence_id {
            let _ = write!(out, "RECURRENCE-ID{}\r\n", stamp(self.zone, rid));
        }
        let _ = write!(out, "DTSTART{}\r\n", stamp(self.zone, self.start));
        if self.as_duration {
            let _ = write!(out, "DURATION:PT{}M\r\n", self.minutes);
        } else {
            let end = self.start + Duration::minutes(self.minutes);
            let _ = write!(out, "DTEND{}\r\n", stamp(self.zone, end));
        }
        if let Some(rule) = &self.rrule {
            let _ = write!(out, "RRULE:{rule}\r\n");
        }
        for exdate in &self.exdates {
            let _ = write!(out, "EXDATE{}\r\n", stamp(self.zone, *exdate));
        }
        if self.transparent {
            out.push_str("TRANSP:TRANSPARENT\r\n");
        }
        if self.cancelled {
            out.push_str("STATUS:CANCELLED\r\n");
        }
        out.push_str("END:VEVENT\r\n");
    }
}

/// `;TZID=…:20260316T093000`, `:20260316T093000Z` or floating
/// `:20260316T093000` (a UTC event keeps its wall time as UTC).
fn stamp(zone: Zone, t: NaiveDateTime) -> String {
    let text = t.format("%Y%m%dT%H%M%S");
    match zone {
        Zone::Tzid(name) if name.contains(' ') => format!(";TZID=\"{name}\":{text}"),
        Zone::Tzid(name) => format!(";TZID={name}:{text}"),
        Zone::Utc => format!(":{text}Z"),
        Zone::Floating => format!(":{text}"),
    }
}

fn random_day(rng: &mut StdRng, year: i32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default();
    first + Duration::days(rng.random_range(0..365))
}

/// A weekday between 08:00 and 17:45 on the quarter hour.
fn work_slot(rng: &mut StdRng, year: i32) -> NaiveDateTime {
    let mut day = random_day(rng, year);
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day = day.succ_opt().unwrap_or(day);
    }
    let time = NaiveTime::from_hms_opt(rng.random_range(8..18), 15 * rng.random_range(0..4), 0)
        .unwrap_or_default();
    day.and_time(time)
}

fn topic(rng: &mut StdRng) -> String {
    TOPICS.choose(rng).copied().unwrap_or("Meeting").to_owned()
}

fn byday(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MO",
        Weekday::Tue => "TU",
        Weekday::Wed => "WE",
        Weekday::Thu => "TH",
        Weekday::Fri => "FR",
        Weekday::Sat => "SA",
        Weekday::Sun => "SU",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_adds_up_and_the_text_has_every_event() {
        let mix = Mix::for_total(5_000);
        assert_eq!(mix.total(), 5_000);
        let text = calendar(2026, mix, 1);
        assert_eq!(text.matches("BEGIN:VEVENT").count(), 5_000);
        assert!(text.contains("TZID=\"W. Europe Standard Time\""));
        assert!(text.contains("RECURRENCE-ID"));
        assert!(text.contains("EXDATE"));
        assert!(text.contains("VALUE=DATE"));
        assert_eq!(
            text,
            calendar(2026, mix, 1),
            "the same seed gives the same file"
        );
    }
}
