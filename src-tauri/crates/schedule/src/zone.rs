//! Time-zone helpers: turning local wall-clock times into UTC instants with
//! the daylight-saving rules the scheduler promises, and resolving the zone
//! names calendars write (IANA names, Outlook's Windows names).

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The UTC instant for a local wall-clock time in `tz`.
///
/// Daylight saving makes this a partial function, so the rules are:
/// * a time that happens twice (fall back) takes the earlier instant, so a
///   window never starts later than the user asked for;
/// * a time that never happens (spring forward) moves to the first valid
///   instant after the gap, which is the transition itself.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => first_after_gap(tz, local),
    }
}

/// Walks forward minute by minute to the end of a daylight-saving gap.
///
/// Zone transitions fall on whole minutes and gaps last at most a few hours,
/// so the first minute that exists is the transition instant.
fn first_after_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    // Truncate to the minute so "02:30:30" walks to "03:00:00", not "03:00:30".
    let base = local - Duration::seconds(i64::from(chrono::Timelike::second(&local)));
    for minute in 1..=(26 * 60) {
        let probe = base + Duration::minutes(minute);
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => return a.min(b).with_timezone(&Utc),
            LocalResult::None => {}
        }
    }
    // No real zone has a gap this long; reading the wall time as UTC keeps
    // the function total without inventing a panic path.
    Utc.from_utc_datetime(&local)
}

/// The user's zone: `TZ` when it names an IANA zone, else the operating
/// system's setting, else UTC (logged, since sleep hours would be off).
pub fn local_zone() -> Tz {
    let from_env = std::env::var("TZ")
        .ok()
        .and_then(|tz| zone_by_name(tz.trim_start_matches(':')));
    from_env
        .or_else(|| {
            iana_time_zone::get_timezone()
                .ok()
                .and_then(|name| zone_by_name(&name))
        })
        .unwrap_or(Tz::UTC)
}

/// A local calendar day in `tz`, midnight to midnight: 23 or 25 hours long
/// on daylight-saving days.
pub fn local_day(tz: Tz, date: chrono::NaiveDate) -> crate::Interval {
    let midnight = |d: chrono::NaiveDate| resolve_local(tz, d.and_time(chrono::NaiveTime::MIN));
    let start = midnight(date);
    let end = date.succ_opt().map_or(start + Duration::days(1), midnight);
    crate::Interval::lasting(start, end - start)
}

/// Resolves a TZID as calendars write it: an IANA name ("Europe/Berlin"),
/// an IANA name behind a vendor prefix ("/mozilla.org/20050126_1/Europe/Berlin"),
/// or a Windows zone name as Outlook and Exchange write it
/// ("W. Europe Standard Time").
///
/// ```
/// use metaclaw_schedule::zone::zone_by_name;
/// assert_eq!(zone_by_name("Europe/Berlin"), Some(chrono_tz::Europe::Berlin));
/// assert_eq!(zone_by_name("W. Europe Standard Time"), Some(chrono_tz::Europe::Berlin));
/// assert_eq!(zone_by_name("\"Pacific Standard Time\""), Some(chrono_tz::America::Los_Angeles));
/// assert_eq!(zone_by_name("Mars/Olympus_Mons"), None);
/// ```
pub fn zone_by_name(name: &str) -> Option<Tz> {
    let name = name.trim().trim_matches('"').trim();
    if let Ok(tz) = name.parse::<Tz>() {
        return Some(tz);
    }
    if let Some(iana) = crate::windows_zones::iana_for_windows(name) {
        return iana.parse::<Tz>().ok();
    }
    // Vendor-prefixed names end in an IANA name: try the last two or three
    // path segments ("America/Argentina/Buenos_Aires" has three).
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    for take in [3usize, 2] {
        if parts.len() > take {
            let tail = parts[parts.len() - take..].join("/");
            if let Ok(tz) = tail.parse::<Tz>() {
                return Some(tz);
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::{America::New_York, Europe::Berlin};

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }
    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn spring_forward_gap_moves_to_transition() {
        // Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        assert_eq!(
            resolve_local(Berlin, local(2026, 3, 29, 2, 30)),
            utc(2026, 3, 29, 1, 0)
        );
        // New York 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        assert_eq!(
            resolve_local(New_York, local(2026, 3, 8, 2, 15)),
            utc(2026, 3, 8, 7, 0)
        );
    }

    #[test]
    fn fall_back_ambiguity_takes_earlier() {
        // Berlin 2026-10-25: 02:30 happens at 00:30 UTC (CEST) and 01:30 UTC (CET).
        assert_eq!(
            resolve_local(Berlin, local(2026, 10, 25, 2, 30)),
            utc(2026, 10, 25, 0, 30)
        );
        // New York 2026-11-01: 01:30 happens at 05:30 UTC (EDT) and 06:30 UTC (EST).
        assert_eq!(
            resolve_local(New_York, local(2026, 11, 1, 1, 30)),
            utc(2026, 11, 1, 5, 30)
        );
    }

    #[test]
    fn vendor_prefixed_names_resolve() {
        assert_eq!(
            zone_by_name("/mozilla.org/20050126_1/Europe/Berlin"),
            Some(Berlin)
        );
        assert_eq!(zone_by_name("Eastern Standard Time"), Some(New_York));
    }
}
