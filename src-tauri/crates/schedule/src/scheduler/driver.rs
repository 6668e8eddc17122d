//! The running scheduler: one task that reads the signals, applies the
//! policy and the state machine, grants windows to workers and tells them to
//! pause.
//!
//! It sleeps until the next instant the verdict can change (a sleep or
//! meeting boundary, the idle threshold, the end of a pause) rather than
//! polling. Only while a window is open does it read keyboard/mouse idle
//! time and the lock often ([`WATCH_PERIOD`]), and wake on every proxy
//! request, so a returning user is noticed within a fraction of a second.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use super::idle_history::{estimate_end, Stretch, StretchTracker};
use super::machine::{Machine, Note, Outcome, State, Window, Work};
use super::policy::{assess, Assessment, Control, Observation, Settings};
use crate::set::BusyCalendar;
use crate::signals::{IdleSource, LockSource};
use crate::source::SourceStatus;

/// How often idle time and the lock are read while a window is open.
pub const WATCH_PERIOD: StdDuration = StdDuration::from_millis(250);

/// How often the lock is read while waiting (locking is also noticed
/// through idle time, which the threshold timer covers).
const LOCK_PERIOD: StdDuration = StdDuration::from_secs(10);

/// Longest sleep between assessments. Timers run on the monotonic clock,
/// which stops while a laptop is suspended; this bounds how late a boundary
/// computed before a suspend or a wall-clock change can be noticed.
const MAX_SLEEP: StdDuration = StdDuration::from_secs(300);

/// The scheduler's clock. Tests use a virtual one.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall time that advances with tokio's clock, so a test with paused tokio
/// time runs hours of schedule in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base: DateTime<Utc>) -> Self {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + super::policy::to_chrono(self.start.elapsed())
    }
}

/// Where the scheduler's history goes (the store, in the engine).
pub trait Journal: Send + Sync + 'static {
    fn note(&self, note: &Note);
    fn idle_stretch(&self, stretch: &Stretch);
    fn paused_until(&self, until: Option<DateTime<Utc>>);
}

/// The presence signals that work on this machine, and why the others do not.
#[derive(Default)]
pub struct Signals {
    pub idle: Option<Arc<dyn IdleSource>>,
    pub lock: Option<Arc<dyn LockSource>>,
    pub idle_unavailable: Vec<String>,
    pub lock_unavailable: Vec<String>,
}

/// A calendar source as the status shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceReport {
    pub name: String,
    #[serde(flatten)]
    pub status: SourceStatus,
    /// Events skipped as unreadable.
    pub problems: usize,
}

/// The calendars the scheduler consults.
pub type SharedCalendar = Arc<dyn BusyCalendar + Send + Sync>;

/// One signal's current reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading<T> {
    /// The source in use; `None` when none works here.
    pub source: Option<&'static str>,
    pub value: Option<T>,
    /// Why the last read failed.
    pub error: Option<String>,
    /// Why the other candidates are not used.
    pub unavailable: Vec<String>,
}

/// Everything `schedule status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub state: State,
    pub since: DateTime<Utc>,
    pub explanation: String,
    pub window: Option<Window>,
    pub work: Option<Work>,
    pub assessment: Assessment,
    pub enabled: bool,
    pub paused_until: Option<DateTime<Utc>>,
    pub manual: bool,
    pub idle_seconds: Reading<f64>,
    pub locked: Reading<bool>,
    pub last_request: Option<DateTime<Utc>>,
    pub sleep_hours: Option<String>,
    pub idle_threshold_seconds: u64,
    pub min_window_seconds: u64,
    pub timezone: String,
    pub calendars: Vec<SourceReport>,
    pub checked_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("nothing to run in a window: the curator is off (curator.enabled = false), and the RL trainer waits for windows only in auto mode (in rl mode it steps as soon as a batch is full)")]
    NoWorker,
    #[error("the scheduler has stopped")]
    Stopped,
}

enum Command {
    Claim {
        worker: String,
        need: StdDuration,
        reply: oneshot::Sender<Grant>,
    },
    End {
        work_id: String,
        outcome: Outcome,
        summary: String,
    },
    PauseUntil(Option<DateTime<Utc>>),
    TrainNow(oneshot::Sender<Result<(), ScheduleError>>),
    Settings(Settings),
    Calendar(SharedCalendar, Vec<SourceReport>),
    Shutdown(oneshot::Sender<()>),
}

struct Grant {
    work: Work,
    window: Window,
    pause: watch::Receiver<bool>,
}

/// Talks to the running scheduler. Clones share it.
#[derive(Clone)]
pub struct SchedulerHandle {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<Status>,
    calendar: watch::Receiver<SharedCalendar>,
    workers: Arc<AtomicUsize>,
}

impl SchedulerHandle {
    /// The latest status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// The calendars in use (for the timeline).
    pub fn calendar(&self) -> SharedCalendar {
        self.calendar.borrow().clone()
    }

    /// Changes of the status, for the tray and the event stream.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Pauses learning until `until`; `None` resumes.
    pub fn pause_until(&self, until: Option<DateTime<Utc>>) {
        let _ = self.commands.send(Command::PauseUntil(until));
    }

    /// Opens a window now, whatever the signals say, for the registered
    /// workers' next piece of work.
    pub async fn train_now(&self) -> Result<(), ScheduleError> {
        if self.workers.load(Ordering::SeqCst) == 0 {
            return Err(ScheduleError::NoWorker);
        }
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::TrainNow(reply))
            .map_err(|_| ScheduleError::Stopped)?;
        answer.await.map_err(|_| ScheduleError::Stopped)?
    }

    /// Closes the open window (and records it) and stops the scheduler, so
    /// a clean exit leaves no window open for the next start to repair.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).is_ok() {
            let _ = done.await;
        }
    }

    pub fn set_settings(&self, settings: Settings) {
        let _ = self.commands.send(Command::Settings(settings));
    }

    pub fn set_calendar(&self, calendar: SharedCalendar, sources: Vec<SourceReport>) {
        let _ = self.commands.send(Command::Calendar(calendar, sources));
    }

    /// A worker of the scheduler, named in the history ("trainer").
    pub fn worker(&self, name: &str) -> Worker {
        self.workers.fetch_add(1, Ordering::SeqCst);
        Worker {
            name: name.to_owned(),
            commands: self.commands.clone(),
            workers: self.workers.clone(),
        }
    }
}

/// A heavy background job that runs only inside windows.
pub struct Worker {
    name: String,
    commands: mpsc::UnboundedSender<Command>,
    workers: Arc<AtomicUsize>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.workers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Worker {
    /// Waits for an open window expected to last at least `need` (a window
    /// of unknown length qualifies) with no other work in it, and starts
    /// work in it. Dropping the future gives up the claim.
    pub async fn wait_for_window(&self, need: StdDuration) -> Result<Lease, ScheduleError> {
        let (reply, grant) = oneshot::channel();
        self.commands
            .send(Command::Claim {
                worker: self.name.clone(),
                need,
                reply,
            })
            .map_err(|_| ScheduleError::Stopped)?;
        let grant = grant.await.map_err(|_| ScheduleError::Stopped)?;
        Ok(Lease {
            work: grant.work,
            window: grant.window,
            pause: grant.pause,
            commands: self.commands.clone(),
            ended: false,
        })
    }
}

/// Work running in a window. Report how it ended with [`Lease::finish`],
/// [`Lease::paused`] or [`Lease::stop`]; dropping it counts as stopped (or
/// paused, when a pause had been asked for).
pub struct Lease {
    work: Work,
    window: Window,
    pause: watch::Receiver<bool>,
    commands: mpsc::UnboundedSender<Command>,
    ended: bool,
}

impl Lease {
    pub fn window(&self) -> &Window {
        &self.window
    }

    pub fn work(&self) -> &Work {
        &self.work
    }

    /// Whether the worker should stop at its next safe point.
    pub fn pause_requested(&self) -> bool {
        *self.pause.borrow()
    }

    /// Resolves when the worker is told to pause (or the scheduler stops).
    pub async fn pause_signal(&mut self) {
        // An error means the scheduler is gone: stopping is right then too.
        let _ = self.pause.wait_for(|paused| *paused).await;
    }

    /// The work is done; the window stays open for other work.
    pub fn finish(mut self, summary: impl Into<String>) {
        self.end(Outcome::Finished, summary.into());
    }

    /// Stopped after a pause request, at a safe point.
    pub fn paused(mut self, summary: impl Into<String>) {
        self.end(Outcome::Paused, summary.into());
    }

    /// Stopped on its own before finishing.
    pub fn stop(mut self, summary: impl Into<String>) {
        self.end(Outcome::Stopped, summary.into());
    }

    fn end(&mut self, outcome: Outcome, summary: String) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let _ = self.commands.send(Command::End {
            work_id: self.work.id.clone(),
            outcome,
            summary,
        });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let outcome = if self.pause_requested() {
            Outcome::Paused
        } else {
            Outcome::Stopped
        };
        self.end(outcome, "the worker gave up its window".into());
    }
}

/// What the scheduler starts with.
pub struct Setup {
    pub settings: Settings,
    pub paused_until: Option<DateTime<Utc>>,
    pub signals: Signals,
    pub calendar: SharedCalendar,
    pub calendar_sources: Vec<SourceReport>,
    /// The time of the last proxy request; changes wake an open window.
    pub activity: watch::Receiver<Option<DateTime<Utc>>>,
    /// Recorded idle stretches, for estimating idle windows' length.
    pub history: Vec<Stretch>,
    pub clock: Arc<dyn Clock>,
    pub journal: Arc<dyn Journal>,
    pub new_id: fn() -> String,
}

/// Starts the scheduler task. It runs until every handle and worker is
/// dropped, or the task is aborted.
pub fn spawn(setup: Setup) -> (SchedulerHandle, tokio::task::JoinHandle<()>) {
    let (commands, receiver) = mpsc::unbounded_channel();
    let now = setup.clock.now();
    let mut driver = Driver {
        machine: Machine::new(now, setup.new_id),
        control: Control {
            paused_until: setup.paused_until,
            manual: false,
        },
        tracker: StretchTracker::default(),
        claims: Vec::new(),
        pause: None,
        calendar_tx: None,
        activity_open: true,
        setup,
    };
    let status = driver.initial_status(now);
    let (status_tx, status_rx) = watch::channel(status);
    let (calendar_tx, calendar_rx) = watch::channel(driver.setup.calendar.clone());
    driver.calendar_tx = Some(calendar_tx);
    let handle = SchedulerHandle {
        commands,
        status: status_rx,
        calendar: calendar_rx,
        workers: Arc::new(AtomicUsize::new(0)),
    };
    let task = tokio::spawn(async move { driver.run(receiver, status_tx).await });
    (handle, task)
}

struct Claim {
    worker: String,
    need: StdDuration,
    reply: oneshot::Sender<Grant>,
}

struct Driver {
    setup: Setup,
    machine: Machine,
    control: Control,
    tracker: StretchTracker,
    claims: Vec<Claim>,
    /// Tells the running work to pause.
    pause: Option<watch::Sender<bool>>,
    /// Publishes calendar changes to the handles.
    calendar_tx: Option<watch::Sender<SharedCalendar>>,
    /// Whether the proxy's activity feed still has a sender.
    activity_open: bool,
}

/// One reading of the presence signals.
struct Readings {
    idle: Option<StdDuration>,
    idle_error: Option<String>,
    locked: Option<bool>,
    lock_error: Option<String>,
}

impl Driver {
    async fn run(
        &mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        status: watch::Sender<Status>,
    ) {
        loop {
            let now = self.setup.clock.now();
            let readings = self.read_signals().await;
            let assessment = self.step(now, &readings);
            status.send_replace(self.status(now, &readings, &assessment));

            let wait = self.wait_after(now, &readings, &assessment);
            let watching = self.machine.state() != State::Waiting;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                command = commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        let now = self.setup.clock.now();
                        let notes = self.machine.stop(now, "metaclaw stopped");
                        self.apply(&notes);
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.handle(command),
                    None => return,
                },
                changed = self.setup.activity.changed(), if watching && self.activity_open => {
                    // The proxy is gone: its last request still counts.
                    self.activity_open = changed.is_ok();
                }
            }
        }
    }

    async fn read_signals(&self) -> Readings {
        let idle = self.setup.signals.idle.clone();
        let lock = self.setup.signals.lock.clone();
        // Both are blocking calls (X11, D-Bus) with their own timeouts.
        let read = tokio::task::spawn_blocking(move || {
            (
                idle.map(|s| s.idle().map_err(|e| e.to_string())),
                lock.map(|s| s.locked().map_err(|e| e.to_string())),
            )
        })
        .await;
        let (idle, lock) = read.unwrap_or((None, None));
        let (idle, idle_error) = split(idle);
        let (locked, lock_error) = split(lock);
        Readings {
            idle,
            idle_error,
            locked,
            lock_error,
        }
    }

    /// Applies one set of readings: idle history, the verdict, the state
    /// machine, and any claims that can now be granted.
    fn step(&mut self, now: DateTime<Utc>, readings: &Readings) -> Assessment {
        let settings = &self.setup.settings;
        if let Some(idle) = readings.idle {
            if let Some(stretch) = self.tracker.observe(now, idle, settings.idle_threshold) {
                self.setup.journal.idle_stretch(&stretch);
                self.setup.history.push(stretch);
            }
        }
        let idle_estimate = self
            .tracker
            .current_start()
            .and_then(|start| estimate_end(&self.setup.history, start, now, settings.tz));
        let obs = Observation {
            now,
            idle: readings.idle,
            locked: readings.locked,
            last_request: *self.setup.activity.borrow(),
            idle_estimate,
        };
        let assessment = assess(settings, &self.control, self.setup.calendar.as_ref(), &obs);
        let reason = assessment.explain(settings.tz);
        let notes = self.machine.assess(now, &assessment, &reason);
        self.apply(&notes);
        self.grant_claims(now);
        assessment
    }

    fn apply(&mut self, notes: &[Note]) {
        for note in notes {
            if *note == Note::Pause {
                if let Some(pause) = &self.pause {
                    pause.send_replace(true);
                }
            }
            self.setup.journal.note(note);
        }
    }

    fn grant_claims(&mut self, now: DateTime<Utc>) {
        self.claims.retain(|c| !c.reply.is_closed());
        while self.machine.state() == State::WindowOpen {
            let Some(window) = self.machine.window().cloned() else {
                return;
            };
            let fits = |need: StdDuration| {
                window
                    .expected_end
                    .is_none_or(|end| end - now >= super::policy::to_chrono(need))
            };
            let Some(at) = self.claims.iter().position(|c| fits(c.need)) else {
                return;
            };
            let claim = self.claims.remove(at);
            let Some((work, notes)) = self.machine.start_work(now, &claim.worker) else {
                return;
            };
            self.apply(&notes);
            let (pause, paused) = watch::channel(false);
            self.pause = Some(pause);
            let grant = Grant {
                work: work.clone(),
                window,
                pause: paused,
            };
            if claim.reply.send(grant).is_err() {
                // The worker stopped waiting between the check and now.
                let notes = self
                    .machine
                    .end_work(now, &work.id, Outcome::Stopped, "never started");
                self.apply(&notes);
            }
        }
    }

    fn handle(&mut self, command: Command) {
        let now = self.setup.clock.now();
        match command {
            Command::Claim {
                worker,
                need,
                reply,
            } => self.claims.push(Claim {
                worker,
                need,
                reply,
            }),
            Command::End {
                work_id,
                outcome,
                summary,
            } => {
                let notes = self.machine.end_work(now, &work_id, outcome, &summary);
                if !notes.is_empty() {
                    self.pause = None;
                    // Train-now asked for one piece of work; it is done.
                    if outcome == Outcome::Finished {
                        self.control.manual = false;
                    }
                }
                self.apply(&notes);
            }
            Command::PauseUntil(until) => {
                self.control.paused_until = until;
                self.control.manual = false;
                self.setup.journal.paused_until(until);
            }
            Command::TrainNow(reply) => {
                self.control.manual = true;
                self.control.paused_until = None;
                self.setup.journal.paused_until(None);
                let _ = reply.send(Ok(()));
            }
            Command::Settings(settings) => self.setup.settings = settings,
            // Handled by the loop, which ends with it.
            Command::Shutdown(reply) => {
                let _ = reply.send(());
            }
            Command::Calendar(calendar, sources) => {
                if let Some(tx) = &self.calendar_tx {
                    tx.send_replace(calendar.clone());
                }
                self.setup.calendar = calendar;
                self.setup.calendar_sources = sources;
            }
        }
    }

    /// How long to sleep before the next assessment.
    fn wait_after(&self, now: DateTime<Utc>, readings: &Readings, a: &Assessment) -> StdDuration {
        let mut wait = MAX_SLEEP;
        if let Some(next) = a.next_change {
            wait = wait.min((next - now).to_std().unwrap_or_default());
        }
        let watching = self.machine.state() != State::Waiting;
        if watching && (readings.idle.is_some() || readings.locked.is_some()) {
            wait = wait.min(WATCH_PERIOD);
        }
        if readings.locked.is_some() {
            wait = wait.min(LOCK_PERIOD);
        }
        // Never spin: boundaries are re-checked a moment after they pass.
        wait.max(StdDuration::from_millis(10))
    }

    fn initial_status(&self, now: DateTime<Utc>) -> Status {
        let readings = Readings {
            idle: None,
            idle_error: None,
            locked: None,
            lock_error: None,
        };
        let obs = Observation {
            now,
            idle: None,
            locked: None,
            last_request: *self.setup.activity.borrow(),
            idle_estimate: None,
        };
        let a = assess(
            &self.setup.settings,
            &self.control,
            self.setup.calendar.as_ref(),
            &obs,
        );
        self.status(now, &readings, &a)
    }

    fn status(&self, now: DateTime<Utc>, readings: &Readings, a: &Assessment) -> Status {
        let settings = &self.setup.settings;
        let signals = &self.setup.signals;
        Status {
            state: self.machine.state(),
            since: self.machine.since(),
            explanation: if self.machine.state() == State::Pausing {
                format!(
                    "waiting for the work to stop at a safe point; {}",
                    a.explain(settings.tz)
                )
            } else {
                a.explain(settings.tz)
            },
            window: self.machine.window().cloned(),
            work: self.machine.work().cloned(),
            assessment: a.clone(),
            enabled: settings.enabled,
            paused_until: self.control.paused_until.filter(|u| *u > now),
            manual: self.control.manual,
            idle_seconds: Reading {
                source: signals.idle.as_ref().map(|s| s.name()),
                value: readings.idle.map(|d| d.as_secs_f64()),
                error: readings.idle_error.clone(),
                unavailable: signals.idle_unavailable.clone(),
            },
            locked: Reading {
                source: signals.lock.as_ref().map(|s| s.name()),
                value: readings.locked,
                error: readings.lock_error.clone(),
                unavailable: signals.lock_unavailable.clone(),
            },
            last_request: *self.setup.activity.borrow(),
            sleep_hours: settings.sleep.map(|s| format!("{}–{}", s.start(), s.end())),
            idle_threshold_seconds: settings.idle_threshold.as_secs(),
            min_window_seconds: settings.min_window.as_secs(),
            timezone: settings.tz.name().to_owned(),
            calendars: self.setup.calendar_sources.clone(),
            checked_at: now,
        }
    }
}

fn split<T>(read: Option<Result<T, String>>) -> (Option<T>, Option<String>) {
    match read {
        Some(Ok(value)) => (Some(value), None),
        Some(Err(error)) => (None, Some(error)),
        None => (None, None),
    }
}
