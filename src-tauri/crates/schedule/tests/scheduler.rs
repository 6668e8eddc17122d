//! The running scheduler under a virtual clock (tokio's paused time): every
//! transition, pause-until, train-now, min-window and restart state, with
//! scripted keyboard/mouse input and proxy requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use metaclaw_schedule::calendar::Busy;
use metaclaw_schedule::scheduler::{
    self, Clock, Journal, Note, Settings, Setup, Signals, State, Stretch, TokioClock, Trigger,
};
use metaclaw_schedule::signals::{IdleSource, SignalError};
use metaclaw_schedule::{BusyCalendar, Interval, SleepHours};
use tokio::sync::watch;

/// Keyboard and mouse, driven by the test: idle time is the virtual time
/// since the last scripted input.
struct FakeInput {
    clock: TokioClock,
    last_input: Mutex<DateTime<Utc>>,
}

impl FakeInput {
    fn touch(&self) {
        *self.last_input.lock().unwrap() = self.clock.now();
    }
}

impl IdleSource for FakeInput {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn idle(&self) -> Result<Duration, SignalError> {
        let last = *self.last_input.lock().unwrap();
        Ok((self.clock.now() - last).to_std().unwrap_or_default())
    }
}

#[derive(Default)]
struct Recorded {
    notes: Mutex<Vec<Note>>,
    stretches: Mutex<Vec<Stretch>>,
    pauses: Mutex<Vec<Option<DateTime<Utc>>>>,
}

struct SharedJournal(Arc<Recorded>);

impl Journal for SharedJournal {
    fn note(&self, note: &Note) {
        self.0.notes.lock().unwrap().push(note.clone());
    }
    fn idle_stretch(&self, stretch: &Stretch) {
        self.0.stretches.lock().unwrap().push(*stretch);
    }
    fn paused_until(&self, until: Option<DateTime<Utc>>) {
        self.0.pauses.lock().unwrap().push(until);
    }
}

struct Meetings(Vec<Interval>);

impl BusyCalendar for Meetings {
    fn busy_in(&self, range: Interval) -> Vec<Busy> {
        self.0
            .iter()
            .filter(|i| i.overlaps(&range))
            .map(|i| Busy {
                interval: *i,
                summary: Some("standup".into()),
                uid: Some("m1".into()),
            })
            .collect()
    }
}

fn id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("w{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Monday 2026-03-16 14:00 UTC: working hours, no sleep.
fn afternoon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 16, 14, 0, 0).unwrap()
}

struct Harness {
    handle: scheduler::SchedulerHandle,
    input: Arc<FakeInput>,
    requests: watch::Sender<Option<DateTime<Utc>>>,
    clock: TokioClock,
    recorded: Arc<Recorded>,
    _task: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start(
        settings: Settings,
        meetings: Vec<Interval>,
        paused_until: Option<DateTime<Utc>>,
    ) -> Self {
        Self::start_at(afternoon(), settings, meetings, paused_until, true)
    }

    fn start_at(
        now: DateTime<Utc>,
        settings: Settings,
        meetings: Vec<Interval>,
        paused_until: Option<DateTime<Utc>>,
        with_input: bool,
    ) -> Self {
        let clock = TokioClock::starting_at(now);
        let input = Arc::new(FakeInput {
            clock,
            last_input: Mutex::new(now),
        });
        let (requests, activity) = watch::channel(None);
        let recorded = Arc::new(Recorded::default());
        let signals = Signals {
            idle: with_input.then(|| input.clone() as Arc<dyn IdleSource>),
            ..Signals::default()
        };
        let (handle, task) = scheduler::spawn(Setup {
            settings,
            paused_until,
            signals,
            calendar: Arc::new(Meetings(meetings)),
            calendar_sources: vec![],
            activity,
            history: vec![],
            clock: Arc::new(clock),
            journal: Arc::new(SharedJournal(recorded.clone())),
            new_id: id,
        });
        Harness {
            handle,
            input,
            requests,
            clock,
            recorded,
            _task: task,
        }
    }

    async fn advance(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    fn state(&self) -> State {
        self.handle.status().state
    }

    fn states(&self) -> Vec<State> {
        self.recorded
            .notes
            .lock()
            .unwrap()
            .iter()
            .filter_map(|n| match n {
                Note::State { state, .. } => Some(*state),
                _ => None,
            })
            .collect()
    }
}

fn idle_settings() -> Settings {
    Settings {
        idle_threshold: Duration::from_secs(600),
        min_window: Duration::from_secs(300),
        ..Settings::default()
    }
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

#[tokio::test(start_paused = true)]
async fn idle_opens_a_window_at_the_threshold_and_input_pauses_the_worker() {
    let h = Harness::start(idle_settings(), vec![], None);
    let worker = h.handle.worker("trainer");
    h.advance(mins(9)).await;
    assert_eq!(h.state(), State::Waiting);

    let claim = tokio::spawn(async move {
        let lease = worker.wait_for_window(mins(1)).await.unwrap();
        (worker, lease)
    });
    h.advance(mins(1) + Duration::from_secs(1)).await;
    let (worker, mut lease) = claim.await.unwrap();
    assert_eq!(lease.window().triggers, [Trigger::Idle]);
    assert_eq!(h.state(), State::Working);
    assert!(!lease.pause_requested());

    // The user moves the mouse: the worker is told within one watch period.
    h.input.touch();
    let before = h.clock.now();
    tokio::time::timeout(Duration::from_secs(1), lease.pause_signal())
        .await
        .expect("pause within a second of input");
    assert!(h.clock.now() - before <= chrono::Duration::milliseconds(300));
    assert_eq!(h.state(), State::Pausing);

    lease.paused("stopped after 1 step");
    h.advance(Duration::from_millis(10)).await;
    assert_eq!(h.state(), State::Waiting);
    assert_eq!(
        h.states(),
        [
            State::WindowOpen,
            State::Working,
            State::Pausing,
            State::Waiting
        ]
    );
    // The window was recorded closed, and the work as paused.
    let notes = h.recorded.notes.lock().unwrap().clone();
    assert!(notes.iter().any(|n| matches!(n, Note::WindowClosed { .. })));
    assert!(notes.iter().any(|n| matches!(
        n,
        Note::WorkEnded { outcome: scheduler::Outcome::Paused, summary, .. } if summary == "stopped after 1 step"
    )));
    // The idle stretch that reached the threshold is in the history.
    let stretches = h.recorded.stretches.lock().unwrap().clone();
    assert_eq!(stretches.len(), 1);
    assert_eq!(stretches[0].start, afternoon());
    drop(worker);
}

#[tokio::test(start_paused = true)]
async fn a_proxy_request_closes_the_window_at_once() {
    let h = Harness::start(idle_settings(), vec![], None);
    let worker = h.handle.worker("trainer");
    h.advance(mins(11)).await;
    assert_eq!(h.state(), State::WindowOpen);
    let mut lease = worker.wait_for_window(mins(1)).await.unwrap();
    h.requests.send_replace(Some(h.clock.now()));
    tokio::time::timeout(Duration::from_millis(50), lease.pause_signal())
        .await
        .expect("a request wakes the scheduler");
    lease.paused("");
    // The request keeps windows closed for the idle threshold even though
    // the keyboard stays idle.
    h.advance(mins(9)).await;
    assert_eq!(h.state(), State::Waiting);
    h.advance(mins(1) + Duration::from_secs(1)).await;
    assert_eq!(h.state(), State::WindowOpen);
}

#[tokio::test(start_paused = true)]
async fn pause_until_blocks_windows_and_resume_lifts_it() {
    let h = Harness::start(idle_settings(), vec![], None);
    h.advance(mins(11)).await;
    assert_eq!(h.state(), State::WindowOpen);
    let until = h.clock.now() + chrono::Duration::hours(1);
    h.handle.pause_until(Some(until));
    h.advance(Duration::from_millis(10)).await;
    assert_eq!(h.state(), State::Waiting);
    assert_eq!(h.handle.status().paused_until, Some(until));
    assert!(h.handle.status().explanation.contains("paused until"));
    // It lifts by itself at the time.
    h.advance(mins(61)).await;
    assert_eq!(h.state(), State::WindowOpen);
    // And resume lifts it at once.
    h.handle
        .pause_until(Some(h.clock.now() + chrono::Duration::hours(5)));
    h.advance(Duration::from_millis(10)).await;
    assert_eq!(h.state(), State::Waiting);
    h.handle.pause_until(None);
    h.advance(Duration::from_millis(10)).await;
    assert_eq!(h.state(), State::WindowOpen);
    assert_eq!(h.recorded.pauses.lock().unwrap().last(), Some(&None));
}

#[tokio::test(start_paused = true)]
async fn pause_survives_a_restart() {
    let until = afternoon() + chrono::Duration::hours(2);
    let h = Harness::start(idle_settings(), vec![], Some(until));
    h.advance(mins(30)).await;
    assert_eq!(h.state(), State::Waiting);
    assert_eq!(h.handle.status().paused_until, Some(until));
}

#[tokio::test(start_paused = true)]
async fn train_now_opens_a_window_while_the_user_works_and_closes_after_the_work() {
    let h = Harness::start(idle_settings(), vec![], None);
    assert!(matches!(
        h.handle.train_now().await,
        Err(scheduler::ScheduleError::NoWorker)
    ));
    let worker = h.handle.worker("trainer");
    h.input.touch();
    h.handle.train_now().await.unwrap();
    let lease = tokio::time::timeout(Duration::from_secs(1), worker.wait_for_window(mins(30)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.window().triggers, [Trigger::Manual]);
    // Input does not pause work the user asked for.
    h.input.touch();
    h.advance(Duration::from_secs(2)).await;
    assert!(!lease.pause_requested());
    lease.finish("1 step");
    h.advance(Duration::from_millis(10)).await;
    assert_eq!(h.state(), State::Waiting);
}

#[tokio::test(start_paused = true)]
async fn meetings_too_short_are_skipped_and_workers_get_windows_that_fit() {
    let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 3, 16, h, m, 0).unwrap();
    let meetings = vec![
        Interval::new(t(14, 10), t(14, 14)).unwrap(), // 4 min: too short
        Interval::new(t(15, 0), t(15, 30)).unwrap(),
    ];
    // No input source: meetings open windows on their own.
    let h = Harness::start_at(afternoon(), idle_settings(), meetings, None, false);
    let long = h.handle.worker("long");
    let short = h.handle.worker("short");
    h.advance(mins(11)).await;
    assert_eq!(h.state(), State::Waiting);
    assert!(h.handle.status().explanation.contains("too soon"));

    let long_claim = tokio::spawn(async move { long.wait_for_window(mins(45)).await.map(|_| ()) });
    let short_claim = tokio::spawn(async move {
        let lease = short.wait_for_window(mins(10)).await.unwrap();
        let window = lease.window().clone();
        lease.finish("done");
        window
    });
    h.advance(mins(50)).await; // 15:01
    let window = short_claim.await.unwrap();
    assert_eq!(window.triggers, [Trigger::Calendar]);
    assert_eq!(window.opened_at, t(15, 0));
    assert_eq!(window.expected_end, Some(t(15, 30)));
    assert!(
        !long_claim.is_finished(),
        "a 45-minute job must not start in a 30-minute window"
    );
    h.advance(mins(30)).await;
    assert_eq!(h.state(), State::Waiting);
    long_claim.abort();
}

#[tokio::test(start_paused = true)]
async fn sleep_hours_open_and_close_on_the_minute() {
    let settings = Settings {
        sleep: Some(SleepHours::parse("23:00", "07:00").unwrap()),
        ..idle_settings()
    };
    let start = Utc.with_ymd_and_hms(2026, 3, 16, 22, 0, 0).unwrap();
    let h = Harness::start_at(start, settings, vec![], None, false);
    h.advance(mins(59)).await;
    assert_eq!(h.state(), State::Waiting);
    h.advance(mins(1) + Duration::from_millis(100)).await;
    assert_eq!(h.state(), State::WindowOpen);
    let status = h.handle.status();
    assert_eq!(
        status.window.unwrap().expected_end,
        Some(Utc.with_ymd_and_hms(2026, 3, 17, 7, 0, 0).unwrap())
    );
    h.advance(mins(8 * 60)).await;
    assert_eq!(h.state(), State::Waiting);
    let opened_at = h
        .recorded
        .notes
        .lock()
        .unwrap()
        .iter()
        .find_map(|n| match n {
            Note::WindowOpened(w) => Some(w.opened_at),
            _ => None,
        })
        .unwrap();
    assert!(
        opened_at - Utc.with_ymd_and_hms(2026, 3, 16, 23, 0, 0).unwrap()
            < chrono::Duration::seconds(1)
    );
}

#[tokio::test(start_paused = true)]
async fn disabling_the_scheduler_pauses_running_work() {
    let h = Harness::start(idle_settings(), vec![], None);
    let worker = h.handle.worker("trainer");
    h.advance(mins(11)).await;
    let mut lease = worker.wait_for_window(mins(1)).await.unwrap();
    h.handle.set_settings(Settings {
        enabled: false,
        ..idle_settings()
    });
    tokio::time::timeout(Duration::from_millis(50), lease.pause_signal())
        .await
        .unwrap();
    drop(lease); // a dropped lease after a pause request counts as paused
    h.advance(Duration::from_millis(10)).await;
    assert_eq!(h.state(), State::Waiting);
    assert!(h.handle.status().explanation.contains("turned off"));
}

#[tokio::test(start_paused = true)]
async fn a_gone_proxy_does_not_make_the_scheduler_spin() {
    let h = Harness::start(idle_settings(), vec![], None);
    h.advance(mins(11)).await;
    assert_eq!(h.state(), State::WindowOpen);
    let Harness {
        handle, requests, ..
    } = h;
    drop(requests);
    let mut updates = handle.subscribe();
    let start = tokio::time::Instant::now();
    let mut n = 0;
    while n < 1_000 && start.elapsed() < Duration::from_secs(10) {
        updates.changed().await.unwrap();
        n += 1;
    }
    // One update per watch period (250 ms), not one per loop turn.
    assert!(n <= 60, "{n} updates in {:?}", start.elapsed());
}
