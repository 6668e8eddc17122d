//! `metaclaw schedule`: the training scheduler's state and why, the day's
//! timeline, and pause / resume / train-now.
//!
//! A running server is asked through its admin API; without one, status is
//! worked out here from the same signals and calendars, and a pause is
//! written to the store for the next start.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use clap::Subcommand;
use metaclaw_engine::api::AdminToken;
use metaclaw_engine::config::Config;
use metaclaw_engine::paths::AppPaths;
use metaclaw_engine::schedule as engine_schedule;
use metaclaw_store::{ScheduleRecord, Store, StoreReader};
use serde_json::{json, Value};

use super::calendar::when::{local_after, parse_time};
use crate::output::{outln, print_json};

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// The state, each signal's value, and in words why a window is or is not open.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// A day's sleep hours, idle stretches, meetings, windows and what ran in them.
    Timeline {
        /// Local date (YYYY-MM-DD); default today.
        #[arg(long)]
        date: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Pause learning: for a while (default one hour), until a time, or until tomorrow.
    Pause {
        /// How long, e.g. 30m, 1h, 2h30m.
        #[arg(long = "for", value_name = "DURATION", conflicts_with_all = ["until", "tomorrow"])]
        duration: Option<String>,
        /// Until a time: RFC 3339, a local date-time (2026-03-16 09:00) or a date.
        #[arg(long, conflicts_with = "tomorrow")]
        until: Option<String>,
        /// Until local midnight.
        #[arg(long)]
        tomorrow: bool,
    },
    /// Lift a pause.
    Resume,
    /// Open a training window now, whatever the signals say.
    TrainNow,
}

pub async fn run(command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    let store = super::load()?;
    let config = store.config().clone();
    let paths = store.paths().clone();
    let server = Server::new(&config, &paths)?;
    match command {
        ScheduleCommand::Status { json } => status(&config, &paths, &server, json).await,
        ScheduleCommand::Timeline { date, json } => timeline(&config, &paths, date, json).await,
        ScheduleCommand::Pause {
            duration,
            until,
            tomorrow,
        } => {
            let tz = engine_schedule::settings(&config.scheduler).tz;
            let now = Utc::now();
            let until = match (duration, until, tomorrow) {
                (_, _, true) => engine_schedule::tomorrow(tz, now),
                (_, Some(text), _) => parse_time("--until", &text, tz, now)?,
                (Some(text), _, _) => now + parse_duration(&text)?,
                (None, None, false) => now + chrono::Duration::hours(1),
            };
            if until <= now {
                bail!("--until: {} is in the past", local_after(until, now, tz));
            }
            set_pause(&paths, &server, Some(until)).await?;
            outln!("learning paused until {}", local_after(until, now, tz));
            Ok(ExitCode::SUCCESS)
        }
        ScheduleCommand::Resume => {
            set_pause(&paths, &server, None).await?;
            outln!("learning resumed");
            Ok(ExitCode::SUCCESS)
        }
        ScheduleCommand::TrainNow => {
            let Some(answer) = server.post("/api/schedule/train-now", json!({})).await? else {
                bail!("metaclaw is not running; start it with `metaclaw serve` (or the tray app)");
            };
            let _ = answer;
            outln!("training window opened");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `30m`, `1h`, `2h30m`, `90s`, or a bare number of minutes.
fn parse_duration(text: &str) -> anyhow::Result<chrono::Duration> {
    let text = text.trim();
    let parsed = match text.parse::<f64>() {
        Ok(minutes) if minutes > 0.0 && minutes.is_finite() => {
            Some(Duration::from_secs_f64(minutes * 60.0))
        }
        _ => humantime::parse_duration(text).ok(),
    };
    match parsed.and_then(|d| chrono::Duration::from_std(d).ok()) {
        Some(d) if d > chrono::Duration::zero() => Ok(d),
        _ => bail!("--for: cannot read {text:?} as a duration; use e.g. 30m, 1h or 2h30m"),
    }
}

async fn set_pause(
    paths: &AppPaths,
    server: &Server,
    until: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    if server
        .post("/api/schedule/pause", json!({ "until": until }))
        .await?
        .is_some()
    {
        return Ok(());
    }
    // Not running: the next start reads the pause from the store.
    let store = Store::open(&paths.database())?;
    store.record_schedule(ScheduleRecord::PausedUntil(
        until.map(|t| t.timestamp_millis()),
    ));
    store.flush().await?;
    store.close();
    Ok(())
}

async fn status(
    config: &Config,
    paths: &AppPaths,
    server: &Server,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (status, running) = match server.get("/api/schedule").await? {
        Some(value) => (
            serde_json::from_value::<Value>(value).context("the server's answer")?,
            true,
        ),
        None => (
            serde_json::to_value(engine_schedule::status_once(config, paths).await?)?,
            false,
        ),
    };
    if json {
        return print_json(&json!({ "running": running, "status": status }));
    }
    let tz = engine_schedule::settings(&config.scheduler).tz;
    print_status(&status, running, tz);
    Ok(ExitCode::SUCCESS)
}

fn print_status(status: &Value, running: bool, tz: Tz) {
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let time = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| local_after(t.with_timezone(&Utc), Utc::now(), tz))
    };
    if !running {
        outln!("metaclaw is not running; this is what it would do now:");
    }
    let state = text(&status["state"]).replace('_', " ");
    let since = time(&status["since"]).unwrap_or_default();
    if running {
        outln!("state      {state} (since {since})");
    }
    outln!("why        {}", text(&status["explanation"]));
    if let Some(window) = status["window"].as_object() {
        let end = time(&window["expected_end"]).unwrap_or_else(|| "unknown".into());
        outln!(
            "window     opened {}, expected to end {end}",
            time(&window["opened_at"]).unwrap_or_default()
        );
    }
    if let Some(work) = status["work"].as_object() {
        outln!(
            "working    {} since {}",
            text(&work["worker"]),
            time(&work["started_at"]).unwrap_or_default()
        );
    }
    let signal = |name: &str, reading: &Value, show: &dyn Fn(&Value) -> String| match reading
        ["source"]
        .as_str()
    {
        Some(source) => match &reading["error"] {
            Value::String(e) => outln!("{name:<10} {source}: cannot read: {e}"),
            _ => outln!("{name:<10} {} ({source})", show(&reading["value"])),
        },
        None => {
            let why = reading["unavailable"]
                .as_array()
                .map(|a| a.iter().map(text).collect::<Vec<_>>().join("; "))
                .unwrap_or_default();
            outln!("{name:<10} unavailable ({why})");
        }
    };
    signal("idle", &status["idle_seconds"], &|v| {
        format!(
            "{:.0} s since the last keyboard or mouse input",
            v.as_f64().unwrap_or(0.0)
        )
    });
    signal("lock", &status["locked"], &|v| {
        if v.as_bool() == Some(true) {
            "locked"
        } else {
            "unlocked"
        }
        .into()
    });
    outln!(
        "requests   {}",
        time(&status["last_request"]).map_or("none yet".into(), |t| format!("last at {t}"))
    );
    let sleep = status["sleep_hours"]
        .as_str()
        .map_or("off".to_owned(), str::to_owned);
    let sleeping = match time(&status["assessment"]["sleep_ends"]) {
        Some(end) => format!(" — now, until {end}"),
        None => String::new(),
    };
    outln!(
        "sleep      {sleep} ({}){sleeping}",
        text(&status["timezone"])
    );
    match time(&status["assessment"]["busy_until"]) {
        Some(end) => outln!("calendar   busy until {end}"),
        None => outln!("calendar   free"),
    }
    for source in status["calendars"].as_array().into_iter().flatten() {
        let name = text(&source["name"]);
        match source["state"].as_str() {
            Some("ok") => outln!("           {name}: ok, {} events", source["events"]),
            Some("stale") => outln!(
                "           {name}: offline copy from {} ({})",
                time(&source["fetched_at"]).unwrap_or_default(),
                text(&source["last_error"])
            ),
            _ => outln!("           {name}: broken: {}", text(&source["reason"])),
        }
    }
    outln!(
        "settings   idle threshold {} min, min window {} min{}",
        status["idle_threshold_seconds"].as_u64().unwrap_or(0) / 60,
        status["min_window_seconds"].as_u64().unwrap_or(0) / 60,
        if status["enabled"].as_bool() == Some(false) {
            ", scheduler turned off"
        } else {
            ""
        }
    );
    if let Some(until) = time(&status["paused_until"]) {
        outln!("paused     until {until} (`metaclaw schedule resume` lifts it)");
    }
}

async fn timeline(
    config: &Config,
    paths: &AppPaths,
    date: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let settings = engine_schedule::settings(&config.scheduler);
    let tz = settings.tz;
    let date = match date {
        None => Utc::now().with_timezone(&tz).date_naive(),
        Some(text) => NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .with_context(|| format!("--date: {text:?} is not a date such as 2026-03-16"))?,
    };
    let (calendar, sources) = engine_schedule::load_calendars(&config.scheduler, paths).await;
    for source in &sources {
        if let metaclaw_schedule::SourceStatus::Broken { reason } = &source.status {
            eprintln!("warning: calendar {reason}");
        }
    }
    if !paths.database().exists() {
        // Nothing recorded yet; an empty store shows the plan for the day.
        Store::open(&paths.database())?.close();
    }
    let reader = StoreReader::open(&paths.database())?;
    let day = engine_schedule::timeline(&reader, &settings, &calendar, date)?;
    if json {
        return print_json(&day);
    }
    outln!("{} ({})", date.format("%A %Y-%m-%d"), day.timezone);
    let span = |a: DateTime<Utc>, b: DateTime<Utc>| {
        format!(
            "{}–{}",
            local_after(a, day.start, tz),
            local_after(b, day.start, tz)
        )
    };
    let mut rows: Vec<(DateTime<Utc>, String)> = Vec::new();
    for s in &day.sleep {
        rows.push((
            s.start(),
            format!("{:<13} sleep hours", span(s.start(), s.end())),
        ));
    }
    for m in &day.meetings {
        let what = m.summary.as_deref().unwrap_or("(busy)");
        rows.push((
            m.interval.start(),
            format!(
                "{:<13} meeting: {what}",
                span(m.interval.start(), m.interval.end())
            ),
        ));
    }
    for i in &day.idle {
        rows.push((
            i.start(),
            format!("{:<13} away from the keyboard", span(i.start(), i.end())),
        ));
    }
    for w in &day.windows {
        let (Some(opened), closed) = (
            DateTime::from_timestamp_millis(w.opened_at_ms),
            w.closed_at_ms.and_then(DateTime::from_timestamp_millis),
        ) else {
            continue;
        };
        let end = closed.map_or("now".into(), |c| local_after(c, day.start, tz));
        let why = w
            .close_reason
            .as_deref()
            .map(|r| format!("; closed: {r}"))
            .unwrap_or_default();
        rows.push((
            opened,
            format!(
                "{:<13} window ({}){why}",
                format!("{}–{end}", local_after(opened, day.start, tz)),
                w.triggers.join(", ")
            ),
        ));
        for work in &w.work {
            let outcome = work.outcome.as_deref().unwrap_or("running");
            let summary = work
                .summary
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            rows.push((
                opened,
                format!("{:<13}   {} {outcome}{summary}", "", work.worker),
            ));
        }
    }
    rows.sort_by_key(|(at, _)| *at);
    if rows.is_empty() {
        outln!("nothing scheduled or recorded");
    }
    for (_, line) in rows {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The running server's admin API, if a server is running.
struct Server {
    base: String,
    token: Option<AdminToken>,
    client: reqwest::Client,
}

impl Server {
    fn new(config: &Config, paths: &AppPaths) -> anyhow::Result<Server> {
        let host = match config.proxy.host.as_str() {
            "0.0.0.0" => "127.0.0.1",
            "::" => "::1",
            other => other,
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{}", config.proxy.port)
        } else {
            format!("{host}:{}", config.proxy.port)
        };
        Ok(Server {
            base: format!("http://{authority}"),
            token: AdminToken::read(paths),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Option<Value>> {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Option<Value>> {
        self.send(self.client.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    /// `None` when no server answers.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Option<Value>> {
        let Some(token) = &self.token else {
            // No server ever started with this home.
            return Ok(None);
        };
        let response = match request.bearer_auth(token.expose()).send().await {
            Ok(response) => response,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => bail!(
                "metaclaw at {} did not answer: {}",
                self.base,
                e.without_url()
            ),
        };
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("no details")
                .to_owned();
            bail!("metaclaw answered {status}: {message}");
        }
        Ok(Some(body))
    }
}
