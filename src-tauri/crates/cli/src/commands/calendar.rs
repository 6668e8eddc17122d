//! `metaclaw calendar busy | list | add | remove`: what the calendars say
//! about a time or a range, and which calendars the scheduler reads.
//!
//! Source problems (a broken file, a feed served from its cached copy, an
//! event that could not be read) go to stderr and never stop the other
//! sources; stdout carries only the answer.

mod edit;
pub(crate) mod when;

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use clap::{Args, Subcommand};
use metaclaw_engine::config::ConfigStore;
use metaclaw_schedule::{
    Busy, BusyCalendar, CalendarSet, EventProblem, Interval, LoadContext, LoadedSource, SourceSpec,
    SourceStatus,
};
use serde::Serialize;

use crate::output::{outln, print_json, print_table};

const CALENDARS_KEY: &str = "scheduler.calendars";

#[derive(Subcommand)]
pub enum CalendarCommand {
    /// Busy times: whether a meeting covers one instant (--at), or every
    /// busy occurrence in a range (--from/--to).
    Busy(BusyArgs),
    /// The configured calendars, each read now: status, events and the
    /// events that had to be skipped.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a calendar: an .ics file, a folder of .ics files (vdir) or an
    /// http(s)/webcal subscription URL.
    Add { source: String },
    /// Stop reading a calendar (as added, or as `calendar list` shows it).
    Remove { source: String },
}

#[derive(Args)]
pub struct BusyArgs {
    /// .ics files, folders of .ics files or http(s)/webcal URLs (default:
    /// the configured calendars).
    #[arg(value_name = "SOURCE")]
    sources: Vec<String>,
    /// The instant to check: RFC 3339 (2026-03-16T09:00:00+01:00), a local
    /// date-time (2026-03-16 09:00), a date, or `now`.
    #[arg(
        long,
        value_name = "TIME",
        conflicts_with_all = ["from", "to"],
        required_unless_present_any = ["from", "to"]
    )]
    at: Option<String>,
    /// Start of the range to list (the same forms as --at).
    #[arg(long, value_name = "TIME", requires = "to")]
    from: Option<String>,
    /// End of the range (exclusive).
    #[arg(long, value_name = "TIME", requires = "from")]
    to: Option<String>,
    /// Zone for local times given here, floating times and all-day events
    /// (default: scheduler.timezone, else the system's).
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(command: CalendarCommand) -> anyhow::Result<ExitCode> {
    let store = super::load()?;
    match command {
        CalendarCommand::Busy(args) => busy(&store, args).await,
        CalendarCommand::List { json } => list(&store, json).await,
        CalendarCommand::Add { source } => edit::add(store, &source).await,
        CalendarCommand::Remove { source } => edit::remove(store, &source),
    }
}

/// What `busy` was asked about.
enum Query {
    At(DateTime<Utc>),
    Range(Interval),
}

/// One busy occurrence as `--json` prints it.
#[derive(Serialize)]
struct BusyJson<'a> {
    start: String,
    end: String,
    summary: Option<&'a str>,
    uid: Option<&'a str>,
}

impl<'a> From<&'a Busy> for BusyJson<'a> {
    fn from(busy: &'a Busy) -> Self {
        BusyJson {
            start: when::rfc3339(busy.interval.start()),
            end: when::rfc3339(busy.interval.end()),
            summary: busy.summary.as_deref(),
            uid: busy.uid.as_deref(),
        }
    }
}

async fn busy(store: &ConfigStore, args: BusyArgs) -> anyhow::Result<ExitCode> {
    // Every argument is checked before anything is read or fetched.
    let zone = match &args.tz {
        Some(name) => when::parse_zone(name)?,
        None => store.config().scheduler.zone(),
    };
    let now = now();
    let query = match (&args.at, &args.from, &args.to) {
        (Some(at), None, None) => Query::At(when::parse_time("--at", at, zone, now)?),
        (None, Some(from), Some(to)) => {
            let from = when::parse_time("--from", from, zone, now)?;
            let to = when::parse_time("--to", to, zone, now)?;
            let range = Interval::new(from, to).map_err(|_| {
                anyhow!(
                    "--from ({}) must be before --to ({})",
                    when::local(from, zone),
                    when::local(to, zone)
                )
            })?;
            Query::Range(range)
        }
        _ => bail!("give either --at TIME, or --from TIME and --to TIME"),
    };
    let specs: Vec<SourceSpec> = if args.sources.is_empty() {
        store.config().scheduler.calendar_sources()
    } else {
        args.sources.iter().map(|s| SourceSpec::parse(s)).collect()
    };
    if specs.is_empty() {
        bail!(
            "no calendar given and none configured: name an .ics file, folder or URL, or add one \
             with `metaclaw calendar add SOURCE`"
        );
    }
    let set = load(store, &specs, zone, now).await;
    report_problems(set.sources());
    let broken = set
        .sources()
        .iter()
        .filter(|s| matches!(s.status, SourceStatus::Broken { .. }))
        .count();
    if broken == specs.len() {
        bail!(
            "{}; no busy times could be read",
            if broken == 1 {
                "the only calendar source is broken".to_owned()
            } else {
                format!("every calendar source is broken ({broken} of {broken})")
            }
        );
    }
    match query {
        Query::At(t) => print_at(&set, t, zone, args.json),
        Query::Range(range) => print_range(&set, range, zone, args.json),
    }
}

fn print_at(set: &CalendarSet, t: DateTime<Utc>, zone: Tz, json: bool) -> anyhow::Result<ExitCode> {
    let events = set.busy_at(t);
    if json {
        let shown: Vec<BusyJson> = events.iter().map(BusyJson::from).collect();
        return print_json(&serde_json::json!({ "busy": !events.is_empty(), "events": shown }));
    }
    let at = when::local(t, zone);
    match set.busy_until(t) {
        Some(until) if !events.is_empty() => {
            outln!(
                "busy at {at} ({zone}) until {}",
                when::local_after(until, t, zone)
            );
            print_events(&events, zone);
        }
        _ => outln!("free at {at} ({zone})"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_range(
    set: &CalendarSet,
    range: Interval,
    zone: Tz,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let events = set.busy_in(range);
    if json {
        let shown: Vec<BusyJson> = events.iter().map(BusyJson::from).collect();
        return print_json(&shown);
    }
    let (from, to) = (
        when::local(range.start(), zone),
        when::local(range.end(), zone),
    );
    if events.is_empty() {
        outln!("no busy times from {from} to {to} ({zone})");
    } else {
        outln!("busy times from {from} to {to} ({zone}):");
        print_events(&events, zone);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_events(events: &[Busy], zone: Tz) {
    for event in events {
        outln!(
            "  {}  {}",
            when::local_span(&event.interval, zone),
            event.summary.as_deref().unwrap_or("(no title)")
        );
    }
}

/// The current time in whole seconds, as every time here is printed.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

async fn load(
    store: &ConfigStore,
    specs: &[SourceSpec],
    zone: Tz,
    now: DateTime<Utc>,
) -> CalendarSet {
    let ctx = LoadContext::new(zone, store.paths().calendar_cache_dir());
    CalendarSet::load(specs, &ctx, now).await
}

/// One line on stderr per broken or stale source and per skipped event.
fn report_problems(sources: &[LoadedSource]) {
    for source in sources {
        let name = source.spec.to_string();
        match &source.status {
            SourceStatus::Ok { .. } => {}
            SourceStatus::Stale {
                age_seconds,
                last_error,
                ..
            } => eprintln!(
                "{name}: stale: using the copy fetched {} ago; refreshing it failed: {}",
                when::age(*age_seconds),
                unnamed(&name, last_error)
            ),
            SourceStatus::Broken { reason } => {
                eprintln!("{name}: broken: {}", unnamed(&name, reason))
            }
        }
        for problem in source.problems() {
            eprintln!(
                "{name}: skipped{}: {}",
                event_label(problem),
                problem.reason
            );
        }
    }
}

/// An error text without the source name it starts with (it is shown
/// before it already).
fn unnamed<'a>(name: &str, text: &'a str) -> &'a str {
    text.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(text)
}

/// ` event "Standup" (uid)`, or nothing for a file that could not be read.
fn event_label(problem: &EventProblem) -> String {
    match (&problem.summary, &problem.uid) {
        (Some(summary), Some(uid)) => format!(" event {summary:?} ({uid})"),
        (Some(summary), None) => format!(" event {summary:?}"),
        (None, Some(uid)) => format!(" event {uid}"),
        (None, None) => String::new(),
    }
}

/// A configured source as `list --json` prints it.
#[derive(Serialize)]
struct SourceReport<'a> {
    /// As `Display` shows it: a subscription URL's secret part is hidden.
    source: String,
    #[serde(flatten)]
    status: &'a SourceStatus,
    skipped: &'a [EventProblem],
}

async fn list(store: &ConfigStore, json: bool) -> anyhow::Result<ExitCode> {
    let scheduler = &store.config().scheduler;
    let zone = scheduler.zone();
    let set = load(store, &scheduler.calendar_sources(), zone, now()).await;
    let reports: Vec<SourceReport> = set
        .sources()
        .iter()
        .map(|s| SourceReport {
            source: s.spec.to_string(),
            status: &s.status,
            skipped: s.problems(),
        })
        .collect();
    if json {
        return print_json(&reports);
    }
    if reports.is_empty() {
        outln!("no calendars configured; add one with `metaclaw calendar add FILE|FOLDER|URL`");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let (state, events, note) = match r.status {
                SourceStatus::Ok { events, .. } => ("ok", events.to_string(), String::new()),
                SourceStatus::Stale {
                    events,
                    age_seconds,
                    last_error,
                    ..
                } => (
                    "stale",
                    events.to_string(),
                    format!(
                        "cached copy {} old; last error: {}",
                        when::age(*age_seconds),
                        unnamed(&r.source, last_error)
                    ),
                ),
                SourceStatus::Broken { reason } => {
                    ("broken", "-".into(), unnamed(&r.source, reason).to_owned())
                }
            };
            vec![
                r.source.clone(),
                state.into(),
                events,
                r.skipped.len().to_string(),
                note,
            ]
        })
        .collect();
    print_table(&["SOURCE", "STATE", "EVENTS", "SKIPPED", "NOTE"], &rows);
    for report in &reports {
        for problem in report.skipped {
            outln!(
                "{}: skipped{}: {}",
                report.source,
                event_label(problem),
                problem.reason
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// "1 event", "3 events".
fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}
