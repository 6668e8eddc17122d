//! The engine's side of the training scheduler: settings from the config,
//! the presence signals that work here, calendars loaded and refreshed in the
//! background, history to and from the store, and the day's timeline.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use metaclaw_schedule::scheduler::{
    self, Journal, Note, SchedulerHandle, Settings, Setup, SharedCalendar, Signals, SourceReport,
    Status, Stretch, SystemClock,
};
use metaclaw_schedule::signals::{detect_idle, detect_lock};
use metaclaw_schedule::{BusyCalendar, CalendarSet, Expanded, Interval, LoadContext, SourceStatus};
use metaclaw_store::{ScheduleRecord, Store, StoreError, StoreReader, WindowRow};
use serde::Serialize;
use tokio::sync::watch;

use crate::config::{Config, SchedulerConfig};
use crate::events::{EngineEvent, EventBus};
use crate::paths::AppPaths;

/// How much idle history informs the estimates: recent habits matter.
const HISTORY_WEEKS: i64 = 8;

/// "Pause until tomorrow": the next local midnight.
pub fn tomorrow(tz: chrono_tz::Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    metaclaw_schedule::zone::local_day(tz, today).end()
}

/// The scheduler's settings from `scheduler.*`.
pub fn settings(config: &SchedulerConfig) -> Settings {
    Settings {
        enabled: config.enabled,
        sleep: config.sleep_hours(),
        tz: config.zone(),
        idle_threshold: Duration::from_secs_f64(config.idle_threshold_minutes * 60.0),
        min_window: Duration::from_secs_f64(config.min_window_minutes * 60.0),
    }
}

/// Finds the idle and lock sources that answer on this machine. Blocking
/// (X11 and D-Bus round trips), so it runs off the async threads.
pub async fn detect_signals() -> Signals {
    let detected = tokio::task::spawn_blocking(|| (detect_idle(), detect_lock())).await;
    let Ok((idle, lock)) = detected else {
        return Signals::default();
    };
    let reasons = |errors: Vec<metaclaw_schedule::signals::SignalError>| {
        errors.iter().map(ToString::to_string).collect()
    };
    Signals {
        idle: idle.source.map(Arc::from),
        lock: lock.source.map(Arc::from),
        idle_unavailable: reasons(idle.unavailable),
        lock_unavailable: reasons(lock.unavailable),
    }
}

/// Loads every configured calendar now. Broken sources are reported in
/// their status and contribute nothing.
pub async fn load_calendars(
    config: &SchedulerConfig,
    paths: &AppPaths,
) -> (CalendarSet, Vec<SourceReport>) {
    let ctx = LoadContext::new(config.zone(), paths.calendar_cache_dir());
    let set = CalendarSet::load(&config.calendar_sources(), &ctx, Utc::now()).await;
    let reports = reports(&set);
    (set, reports)
}

fn reports(set: &CalendarSet) -> Vec<SourceReport> {
    set.sources()
        .iter()
        .map(|s| SourceReport {
            name: s.spec.to_string(),
            status: s.status.clone(),
            problems: s.problems().len(),
        })
        .collect()
}

/// What the store remembers for the scheduler.
struct Restored {
    paused_until: Option<DateTime<Utc>>,
    history: Vec<Stretch>,
    last_request: Option<DateTime<Utc>>,
}

fn restore(reader: &StoreReader, now: DateTime<Utc>) -> Result<Restored, StoreError> {
    let paused_until = reader
        .schedule_paused_until()?
        .and_then(DateTime::from_timestamp_millis)
        .filter(|until| *until > now);
    let since = now - chrono::Duration::weeks(HISTORY_WEEKS);
    let history = reader
        .idle_stretches(since.timestamp_millis(), now.timestamp_millis())?
        .into_iter()
        .filter_map(|(start, end)| {
            Some(Stretch {
                start: DateTime::from_timestamp_millis(start)?,
                end: DateTime::from_timestamp_millis(end)?,
            })
        })
        .collect();
    let last_request = reader
        .last_request_at_ms()?
        .and_then(DateTime::from_timestamp_millis);
    Ok(Restored {
        paused_until,
        history,
        last_request,
    })
}

/// Everything the scheduler starts from, with real signals and calendars.
async fn setup(
    config: &Config,
    restored: Restored,
    activity: watch::Receiver<Option<DateTime<Utc>>>,
    journal: Arc<dyn Journal>,
    (calendar, sources): (CalendarSet, Vec<SourceReport>),
) -> Setup {
    let signals = detect_signals().await;
    Setup {
        settings: settings(&config.scheduler),
        paused_until: restored.paused_until,
        signals,
        calendar: Arc::new(Expanded::around(calendar, Utc::now())),
        calendar_sources: sources,
        activity,
        history: restored.history,
        clock: Arc::new(SystemClock),
        journal,
        new_id: || uuid::Uuid::now_v7().simple().to_string(),
    }
}

/// Starts the scheduler for a serving engine: restores the pause and the
/// idle history, closes what a killed process left open, and keeps the
/// calendars fresh. The returned tasks run until aborted.
pub async fn start(
    config: &Config,
    live: Arc<arc_swap::ArcSwap<Config>>,
    paths: &AppPaths,
    store: &Store,
    events: &EventBus,
    activity: watch::Receiver<Option<DateTime<Utc>>>,
) -> Result<(SchedulerHandle, Vec<tokio::task::JoinHandle<()>>), StoreError> {
    let now = Utc::now();
    store.record_schedule(ScheduleRecord::Recover {
        at_ms: now.timestamp_millis(),
    });
    let restored = restore(&store.reader()?, now)?;
    let journal = Arc::new(StoreJournal {
        store: store.clone(),
        events: events.clone(),
    });
    // Calendars load in the background (a subscription may take seconds to
    // answer); until then the scheduler sees no meetings.
    let setup = setup(config, restored, activity, journal, Default::default()).await;
    tracing::info!(
        idle = setup.signals.idle.as_ref().map_or("none", |s| s.name()),
        lock = setup.signals.lock.as_ref().map_or("none", |s| s.name()),
        "scheduler signals"
    );
    let (handle, task) = scheduler::spawn(setup);
    // Runs even without calendars: the settings may add one later.
    let refresher = tokio::spawn(refresh_calendars(
        handle.clone(),
        live,
        events.clone(),
        paths.clone(),
    ));
    Ok((handle, vec![task, refresher]))
}

/// What the scheduler would say right now, for `metaclaw schedule status`
/// when no server is running: the real signals and calendars, and the pause
/// and last request from the store. Records nothing.
pub async fn status_once(config: &Config, paths: &AppPaths) -> Result<Status, StoreError> {
    let now = Utc::now();
    let restored = if paths.database().exists() {
        restore(&StoreReader::open(&paths.database())?, now)?
    } else {
        Restored {
            paused_until: None,
            history: Vec::new(),
            last_request: None,
        }
    };
    let (_requests, activity) = watch::channel(restored.last_request);
    let calendars = load_calendars(&config.scheduler, paths).await;
    let setup = setup(config, restored, activity, Arc::new(NoJournal), calendars).await;
    let (handle, task) = scheduler::spawn(setup);
    let mut updates = handle.subscribe();
    // The first update carries the first real reading of the signals.
    let _ = updates.changed().await;
    let status = updates.borrow().clone();
    task.abort();
    Ok(status)
}

struct NoJournal;

impl Journal for NoJournal {
    fn note(&self, _: &Note) {}
    fn idle_stretch(&self, _: &Stretch) {}
    fn paused_until(&self, _: Option<DateTime<Utc>>) {}
}

/// Loads the calendars now and again every `scheduler.calendar_refresh_minutes`,
/// and at once when the settings change them. Subscriptions use conditional
/// requests, so an unchanged feed costs one small round trip; a failing one
/// keeps its last good copy. A source that stops loading is announced once
/// (until it loads again), since only the user can fix it.
async fn refresh_calendars(
    handle: SchedulerHandle,
    live: Arc<arc_swap::ArcSwap<Config>>,
    events: EventBus,
    paths: AppPaths,
) {
    let mut changes = events.subscribe();
    let mut broken: std::collections::HashSet<String> = Default::default();
    loop {
        let config: SchedulerConfig = live.load().scheduler.clone();
        let (calendar, sources) = if config.calendars.is_empty() {
            Default::default()
        } else {
            load_calendars(&config, &paths).await
        };
        let mut now_broken = std::collections::HashSet::new();
        for source in &sources {
            if let SourceStatus::Broken { reason } = &source.status {
                tracing::warn!(source = %source.name, %reason, "calendar unusable");
                if !broken.contains(&source.name) {
                    events.publish(EngineEvent::ActionNeeded {
                        kind: "calendar".to_owned(),
                        message: format!("the calendar {} cannot be read: {reason}", source.name),
                    });
                }
                now_broken.insert(source.name.clone());
            }
        }
        broken = now_broken;
        let expanded = Expanded::around(calendar, Utc::now());
        handle.set_calendar(Arc::new(expanded) as SharedCalendar, sources);
        let period = Duration::from_secs_f64(config.calendar_refresh_minutes * 60.0);
        let next = tokio::time::sleep(period);
        tokio::pin!(next);
        loop {
            tokio::select! {
                () = &mut next => break,
                event = changes.recv() => match event {
                    Ok(EngineEvent::SettingsChanged { keys })
                        if crate::settings::touches_calendars(&keys) => break,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Writes the scheduler's history to the store and announces state changes.
struct StoreJournal {
    store: Store,
    events: EventBus,
}

impl Journal for StoreJournal {
    fn note(&self, note: &Note) {
        let record = match note {
            Note::State {
                at,
                state,
                reason,
                window_id,
            } => {
                self.events.publish(EngineEvent::ScheduleChanged {
                    state: state.as_str().to_owned(),
                    reason: reason.clone(),
                    window_id: window_id.clone(),
                });
                ScheduleRecord::State {
                    at_ms: at.timestamp_millis(),
                    state: state.as_str().to_owned(),
                    reason: reason.clone(),
                    window_id: window_id.clone(),
                }
            }
            Note::WindowOpened(w) => ScheduleRecord::WindowOpened {
                id: w.id.clone(),
                opened_at_ms: w.opened_at.timestamp_millis(),
                triggers: w
                    .triggers
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                expected_end_ms: w.expected_end.map(|t| t.timestamp_millis()),
            },
            Note::WindowClosed { id, at, reason } => ScheduleRecord::WindowClosed {
                id: id.clone(),
                closed_at_ms: at.timestamp_millis(),
                reason: reason.clone(),
            },
            Note::WorkStarted { work, window_id } => ScheduleRecord::WorkStarted {
                id: work.id.clone(),
                window_id: window_id.clone(),
                worker: work.worker.clone(),
                started_at_ms: work.started_at.timestamp_millis(),
            },
            Note::WorkEnded {
                id,
                at,
                outcome,
                summary,
            } => ScheduleRecord::WorkEnded {
                id: id.clone(),
                ended_at_ms: at.timestamp_millis(),
                outcome: outcome.as_str().to_owned(),
                summary: summary.clone(),
            },
            Note::Pause => return,
        };
        self.store.record_schedule(record);
    }

    fn idle_stretch(&self, stretch: &Stretch) {
        self.store.record_schedule(ScheduleRecord::IdleStretch {
            start_ms: stretch.start.timestamp_millis(),
            end_ms: stretch.end.timestamp_millis(),
        });
    }

    fn paused_until(&self, until: Option<DateTime<Utc>>) {
        self.store.record_schedule(ScheduleRecord::PausedUntil(
            until.map(|t| t.timestamp_millis()),
        ));
    }
}

/// One day of the schedule, local midnight to midnight.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub date: NaiveDate,
    pub timezone: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub sleep: Vec<Interval>,
    pub idle: Vec<Interval>,
    pub meetings: Vec<metaclaw_schedule::Busy>,
    pub windows: Vec<WindowRow>,
}

/// The day's sleep hours, recorded idle stretches, meetings, and windows
/// with what ran in them.
pub fn timeline(
    reader: &StoreReader,
    settings: &Settings,
    calendar: &dyn BusyCalendar,
    date: NaiveDate,
) -> Result<Timeline, StoreError> {
    let tz = settings.tz;
    let day = metaclaw_schedule::zone::local_day(tz, date);
    let (start, end) = (day.start(), day.end());
    let (from_ms, to_ms) = (start.timestamp_millis(), end.timestamp_millis());
    let idle: Vec<Interval> = reader
        .idle_stretches(from_ms, to_ms)?
        .into_iter()
        .filter_map(|(a, b)| {
            Interval::new(
                DateTime::from_timestamp_millis(a)?,
                DateTime::from_timestamp_millis(b)?,
            )
            .ok()
        })
        .collect();
    Ok(Timeline {
        date,
        timezone: tz.name().to_owned(),
        start,
        end,
        sleep: settings
            .sleep
            .map(|s| s.intervals(tz, day))
            .unwrap_or_default(),
        idle: metaclaw_schedule::interval::clip(idle, day),
        meetings: calendar.busy_in(day),
        windows: reader.schedule_windows(from_ms, to_ms)?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum TrainNowError {
    #[error("the scheduler is not running (it starts with `metaclaw serve` or the tray app)")]
    NotRunning,
    #[error(transparent)]
    Refused(#[from] metaclaw_schedule::scheduler::ScheduleError),
}

/// Opens a training window now, whatever the signals say: `metaclaw train
/// now`, the tray's "Train now" and the dashboard's button all land here.
pub async fn train_now(scheduler: Option<SchedulerHandle>) -> Result<(), TrainNowError> {
    let scheduler = scheduler.ok_or(TrainNowError::NotRunning)?;
    scheduler.train_now().await?;
    Ok(())
}
