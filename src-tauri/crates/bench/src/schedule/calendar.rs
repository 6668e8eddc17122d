//! Calendar expansion: parse a year of 5,000 events, expand every busy
//! occurrence of the year, and answer the scheduler's two questions (busy
//! now? busy until when?) at random instants.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use metaclaw_schedule::{
    BusyCalendar, Calendar, CalendarSet, Expanded, Interval, LoadedSource, SourceSpec, SourceStatus,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::synth::{self, Mix};
use super::{show, thousands, timed, Row, Section, Stats};

const YEAR: i32 = 2026;
const EVENTS: usize = 5_000;
const PARSES: usize = 10;
const EXPANSIONS: usize = 10;
const QUERIES: usize = 1_000;

pub fn section() -> anyhow::Result<Section> {
    let local = chrono_tz::Europe::Berlin;
    let mix = Mix::for_total(EVENTS);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("year.ics");
    std::fs::write(&path, synth::calendar(YEAR, mix, 42))?;
    let size = std::fs::metadata(&path)?.len();

    // Parse: read the file and build the calendar, as a reload does.
    let (parse_times, parsed) = timed(PARSES, || {
        let text = std::fs::read_to_string(&path)?;
        Calendar::parse(&text, "year.ics", local).map_err(anyhow::Error::from)
    });
    let calendar = parsed.context("no parse ran")??;
    anyhow::ensure!(
        calendar.problems().is_empty(),
        "the synthetic calendar has broken events: {:?}",
        &calendar.problems()[..calendar.problems().len().min(3)]
    );
    let series = calendar.event_count();
    let set = CalendarSet::from_sources(vec![LoadedSource {
        spec: SourceSpec::Path(path.clone()),
        status: SourceStatus::Ok {
            events: series,
            fetched_at: Utc::now(),
        },
        calendar,
    }]);

    // Every busy occurrence of the year, as the dashboard's timeline asks.
    let year = Interval::new(utc(YEAR, 1, 1), utc(YEAR + 1, 1, 1))?;
    let (expand_times, occurrences) = timed(EXPANSIONS, || set.busy_in(year).len());
    let occurrences = occurrences.unwrap_or_default();

    // The scheduler's questions at random instants of the year.
    let mut rng = StdRng::seed_from_u64(7);
    let span = (year.end() - year.start()).num_seconds();
    let instants: Vec<DateTime<Utc>> = (0..QUERIES)
        .map(|_| year.start() + chrono::Duration::seconds(rng.random_range(0..span)))
        .collect();
    let mut busy_times = Vec::with_capacity(QUERIES);
    let mut busy_count = 0;
    for t in &instants {
        let (sample, busy) = timed(1, || set.is_busy(*t));
        busy_times.extend(sample);
        busy_count += usize::from(busy.unwrap_or_default());
    }
    let mut until_times = Vec::with_capacity(QUERIES);
    for t in &instants {
        let (sample, _) = timed(1, || set.busy_until(*t));
        until_times.extend(sample);
    }

    // What the scheduler really queries: the occurrences of the next weeks,
    // expanded once per calendar refresh, at instants inside that horizon.
    let mid_year = utc(YEAR, 6, 1);
    let (horizon_times, expanded) = timed(EXPANSIONS, || Expanded::around(&set, mid_year));
    let expanded = expanded.context("no expansion ran")?;
    let near: Vec<DateTime<Utc>> = (0..QUERIES)
        .map(|_| mid_year + chrono::Duration::seconds(rng.random_range(0..30 * 86_400)))
        .collect();
    let mut near_busy_times = Vec::with_capacity(QUERIES);
    let mut near_until_times = Vec::with_capacity(QUERIES);
    for t in &near {
        let (busy_sample, busy) = timed(1, || expanded.is_busy(*t));
        let (until_sample, until) = timed(1, || expanded.busy_until(*t));
        anyhow::ensure!(
            busy == Some(set.is_busy(*t)) && until == Some(set.busy_until(*t)),
            "the expanded calendar disagrees with the calendar at {t}"
        );
        near_busy_times.extend(busy_sample);
        near_until_times.extend(until_sample);
    }
    let horizon = Stats::of(horizon_times);
    let near_busy = Stats::of(near_busy_times);
    let near_until = Stats::of(near_until_times);

    let parse = Stats::of(parse_times);
    let expand = Stats::of(expand_times);
    let busy = Stats::of(busy_times);
    let until = Stats::of(until_times);
    let per_query = |s: &Stats| format!("{} / {}", show(s.median), show(s.p99));
    let total = |s: &Stats| {
        format!(
            "{} queries in {} in total",
            thousands(s.count),
            show(s.total)
        )
    };
    let occurrence_cost =
        Duration::from_secs_f64(expand.median.as_secs_f64() / occurrences.max(1) as f64);
    Ok(Section {
        title: format!(
            "calendar: {} events over {YEAR} ({} KB .ics, {} busy series)",
            thousands(mix.total()),
            size / 1024,
            thousands(series)
        ),
        rows: vec![
            Row::new(
                "read + parse the file, median / p99",
                format!("{} / {}", show(parse.median), show(parse.p99)),
                format!(
                    "{} runs; {} one-off, {} weekly, {} daily, {} monthly, {} overrides, {} all-day, {} free, {} cancelled",
                    parse.count,
                    thousands(mix.one_off),
                    mix.weekly,
                    mix.daily,
                    mix.monthly,
                    mix.overrides,
                    mix.all_day,
                    mix.free,
                    mix.cancelled
                ),
            ),
            Row::new(
                "`busy_in` over the whole year, median / p99",
                format!("{} / {}", show(expand.median), show(expand.p99)),
                format!(
                    "{} runs; {} busy occurrences ({} each)",
                    expand.count,
                    thousands(occurrences),
                    show(occurrence_cost)
                ),
            ),
            Row::new(
                "`is_busy(t)` per query, median / p99",
                per_query(&busy),
                format!(
                    "{}; busy at {busy_count} of {QUERIES} random instants",
                    total(&busy)
                ),
            ),
            Row::new(
                "`busy_until(t)` per query, median / p99",
                per_query(&until),
                total(&until),
            ),
            Row::new(
                "expand the scheduler's 42-day horizon (once per calendar refresh), median / p99",
                format!("{} / {}", show(horizon.median), show(horizon.p99)),
                format!("{} runs", horizon.count),
            ),
            Row::new(
                "`is_busy(t)` on the expanded horizon, median / p99",
                per_query(&near_busy),
                format!("{}; same answers as the calendar (checked)", total(&near_busy)),
            ),
            Row::new(
                "`busy_until(t)` on the expanded horizon, median / p99",
                per_query(&near_until),
                total(&near_until),
            ),
        ],
    })
}

fn utc(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, 0, 0, 0)
        .single()
        .unwrap_or_default()
}
