//! Real keyboard/mouse idle time from a real X server (Xvfb, with xdotool
//! moving the pointer as a user would): the idle source alone, then the
//! whole scheduler opening a window and pausing its worker on input.
#![cfg(all(unix, not(target_os = "macos")))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use metaclaw_schedule::scheduler::{
    self, Journal, Note, Settings, Setup, Signals, State, Stretch, SystemClock, Trigger,
};
use metaclaw_schedule::signals::{IdleSource, X11Idle};
use metaclaw_schedule::xvfb::{unused_display, Xvfb};
use metaclaw_schedule::CalendarSet;

fn xvfb() -> (Xvfb, X11Idle) {
    Xvfb::start().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn idle_grows_while_untouched_and_resets_on_pointer_motion() {
    let (server, source) = xvfb();
    assert_eq!(source.name(), "x11-screensaver");

    sleep(Duration::from_millis(1500));
    let before = source.idle().unwrap();
    assert!(
        before >= Duration::from_secs(1),
        "idle after 1.5 s: {before:?}"
    );

    server.wiggle().unwrap();
    let after = source.idle().unwrap();
    assert!(after < before, "idle {after:?} not below {before:?}");
    assert!(
        after < Duration::from_secs(1),
        "idle after input: {after:?}"
    );
}

#[test]
fn a_display_without_a_server_is_named_in_the_error() {
    let display = format!(":{}", unused_display());
    let error = match X11Idle::connect(Some(&display)) {
        Ok(_) => panic!("connected to {display}, where no server runs"),
        Err(error) => error,
    };
    assert_eq!(error.source_name, "x11-screensaver");
    assert!(
        error
            .reason
            .starts_with(&format!("no X server at {display}: ")),
        "{error}"
    );
}

#[derive(Default, Clone)]
struct Notes(Arc<Mutex<Vec<Note>>>);

impl Journal for Notes {
    fn note(&self, note: &Note) {
        self.0.lock().unwrap().push(note.clone());
    }
    fn idle_stretch(&self, _: &Stretch) {}
    fn paused_until(&self, _: Option<DateTime<Utc>>) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_opens_a_window_on_real_idle_and_pauses_the_worker_on_input() {
    let (server, source) = xvfb();
    server.wiggle().unwrap();
    let notes = Notes::default();
    let (_requests, activity) = tokio::sync::watch::channel(None);
    let (handle, _task) = scheduler::spawn(Setup {
        settings: Settings {
            idle_threshold: Duration::from_secs(2),
            min_window: Duration::ZERO,
            ..Settings::default()
        },
        paused_until: None,
        signals: Signals {
            idle: Some(Arc::new(source)),
            ..Signals::default()
        },
        calendar: Arc::new(CalendarSet::default()),
        calendar_sources: vec![],
        activity,
        history: vec![],
        clock: Arc::new(SystemClock),
        journal: Arc::new(notes.clone()),
        new_id: uuid_like,
    });
    let worker = handle.worker("test-worker");
    let mut lease = tokio::time::timeout(
        Duration::from_secs(20),
        worker.wait_for_window(Duration::from_secs(1)),
    )
    .await
    .expect("a window within 20 s of leaving the pointer alone")
    .unwrap();
    assert_eq!(lease.window().triggers, [Trigger::Idle]);
    // The status follows the grant as soon as the scheduler's step ends.
    let mut status = handle.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.state == State::Working),
    )
    .await
    .expect("the status shows the work")
    .unwrap();

    let server = Arc::new(server);
    let mover = server.clone();
    let moved = tokio::task::spawn_blocking(move || {
        mover.wiggle().unwrap();
        Instant::now()
    })
    .await
    .unwrap();
    // Generous bound; the benchmark measures the real reaction time.
    tokio::time::timeout(Duration::from_secs(5), lease.pause_signal())
        .await
        .expect("the worker is told to pause after input");
    let reaction = moved.elapsed();
    assert!(reaction < Duration::from_secs(5), "{reaction:?}");
    lease.paused("test worker stopped");
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.state == State::Waiting),
    )
    .await
    .expect("back to waiting once the worker stopped")
    .unwrap();
    let states: Vec<State> = notes
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|n| match n {
            Note::State { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            State::WindowOpen,
            State::Working,
            State::Pausing,
            State::Waiting
        ]
    );
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("x{}", N.fetch_add(1, Ordering::Relaxed))
}
