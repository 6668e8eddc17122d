//! RFC 5545 `DURATION` values (`PT1H30M`, `P2D`, `P1W`), which chrono does
//! not parse.

use chrono::Duration;

/// Parses an RFC 5545 duration: `P1W`, `P2D`, `PT1H30M`, `P1DT12H`, `-PT5M`.
///
/// ```
/// use metaclaw_schedule::duration::parse_duration;
/// assert_eq!(parse_duration("PT1H30M").unwrap(), chrono::Duration::minutes(90));
/// assert_eq!(parse_duration("P1W").unwrap(), chrono::Duration::days(7));
/// assert!(parse_duration("1H").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like PT1H30M");
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let t = t.strip_prefix('P').ok_or_else(bad)?;
    let mut total = Duration::zero();
    let mut number = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in t.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' if number.is_empty() && !in_time => in_time = true,
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                any = true;
                total += match (unit, in_time) {
                    ('W', false) => Duration::weeks(n),
                    ('D', false) => Duration::days(n),
                    ('H', true) => Duration::hours(n),
                    ('M', true) => Duration::minutes(n),
                    ('S', true) => Duration::seconds(n),
                    _ => return Err(bad()),
                };
            }
        }
    }
    if !number.is_empty() || !any {
        return Err(bad());
    }
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn combined_and_signed_durations() {
        assert_eq!(parse_duration("P1DT12H").unwrap(), Duration::hours(36));
        assert_eq!(parse_duration("-PT5M").unwrap(), Duration::minutes(-5));
        assert_eq!(parse_duration("PT90S").unwrap(), Duration::seconds(90));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for bad in ["P", "PT", "P1H", "PT1D", "P1", "PT1H30", "1D", "P1.5D"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
