//! The scheduler against a real X server (Xvfb, input from xdotool): how
//! fast a worker is told to pause after the user touches the mouse, and how
//! much CPU the scheduler burns while it waits for a window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use metaclaw_schedule::scheduler::{
    self, Journal, Note, SchedulerHandle, Settings, Setup, Signals, State, Stretch, SystemClock,
};
use metaclaw_schedule::xvfb::Xvfb;
use metaclaw_schedule::CalendarSet;

use super::{show, Row, Section, Stats};

const TRIALS: usize = 20;
const WAITING: Duration = Duration::from_secs(60);

struct Discard;

impl Journal for Discard {
    fn note(&self, _: &Note) {}
    fn idle_stretch(&self, _: &Stretch) {}
    fn paused_until(&self, _: Option<DateTime<Utc>>) {}
}

fn start(
    source: metaclaw_schedule::signals::X11Idle,
    idle_threshold: Duration,
) -> (SchedulerHandle, tokio::task::JoinHandle<()>) {
    let (_requests, activity) = tokio::sync::watch::channel(None);
    scheduler::spawn(Setup {
        settings: Settings {
            idle_threshold,
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
        journal: Arc::new(Discard),
        new_id: || String::from("bench"),
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Input (xdotool under Xvfb) to the worker's pause signal, `TRIALS` times.
pub fn reaction_section() -> anyhow::Result<Section> {
    let (xvfb, source) = Xvfb::start().map_err(|e| anyhow!(e))?;
    let xvfb = Arc::new(xvfb);
    let rt = runtime()?;
    let samples = rt.block_on(async {
        let threshold = Duration::from_secs(1);
        let (handle, _task) = start(source, threshold);
        let worker = handle.worker("bench");
        let mut samples = Vec::with_capacity(TRIALS);
        for _ in 0..TRIALS {
            let mut lease = tokio::time::timeout(
                Duration::from_secs(30),
                worker.wait_for_window(Duration::ZERO),
            )
            .await
            .context("no window opened within 30 s of idle")??;
            // Input at a random point of the watch period, as a user's would be.
            let offset = Duration::from_millis(u64::from(rand::random::<u8>()));
            tokio::time::sleep(offset).await;
            // One relative move: the input event happens while xdotool
            // runs, so timing from its launch includes its start-up.
            let mover = xvfb.clone();
            let moved = Instant::now();
            tokio::task::spawn_blocking(move || {
                mover.xdotool(&["mousemove_relative", "--", "7", "7"])
            })
            .await?
            .map_err(|e| anyhow!(e))?;
            tokio::time::timeout(Duration::from_secs(10), lease.pause_signal())
                .await
                .context("no pause within 10 s of input")?;
            samples.push(moved.elapsed());
            lease.paused("bench");
            let mut status = handle.subscribe();
            status.wait_for(|s| s.state == State::Waiting).await?;
        }
        anyhow::Ok(samples)
    })?;
    let stats = Stats::of(samples.clone());
    let worst = samples.iter().max().copied().unwrap_or_default();
    Ok(Section {
        title: format!("scheduler reaction: input under Xvfb to the worker's pause signal ({TRIALS} trials)"),
        rows: vec![
            Row::new(
                "median",
                show(stats.median),
                "from launching `xdotool mousemove_relative` (its own start-up included) to `Lease::pause_signal()` resolving",
            ),
            Row::new(
                "worst",
                show(worst),
                format!("target < 1 s; idle is read every {} ms while a window is open", scheduler::WATCH_PERIOD.as_millis()),
            ),
        ],
    })
}

/// CPU time of this whole process (every thread) in nanoseconds, from the
/// scheduler statistics Linux keeps per thread (nanosecond resolution,
/// unlike the 10 ms ticks of `/proc/self/stat`).
fn process_cpu_ns() -> anyhow::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let stat = std::fs::read_to_string(task?.path().join("schedstat"))?;
        let on_cpu: u64 = stat
            .split_whitespace()
            .next()
            .context("empty schedstat")?
            .parse()?;
        total += on_cpu;
    }
    Ok(total)
}

/// CPU the scheduler uses over `WAITING` while no window can open: the
/// user is "at the desk" (pointer moved every few seconds), so it sleeps
/// until the idle threshold could be reached and wakes only to check.
pub fn waiting_cpu_section() -> anyhow::Result<Section> {
    let (xvfb, source) = Xvfb::start().map_err(|e| anyhow!(e))?;
    let rt = runtime()?;
    let used = rt.block_on(async {
        let (handle, _task) = start(source, Duration::from_secs(600));
        // Let detection and the first assessment settle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The "user" is a separate process that moves the pointer every
        // 5 s, so only the scheduler's own work is counted here.
        let script = format!(
            "i=0; while [ $i -lt {} ]; do sleep 5; xdotool mousemove $((i * 7 % 300)) 100; i=$((i+1)); done",
            WAITING.as_secs() / 5
        );
        let mut user = std::process::Command::new("sh")
            .args(["-c", &script])
            .env("DISPLAY", xvfb.display())
            .spawn()?;
        let before = process_cpu_ns()?;
        tokio::time::sleep(WAITING).await;
        let used = process_cpu_ns()? - before;
        let _ = user.kill();
        let _ = user.wait();
        anyhow::ensure!(
            handle.status().state == State::Waiting,
            "a window opened during the waiting benchmark"
        );
        anyhow::Ok(used)
    })?;
    Ok(Section {
        title: format!(
            "scheduler CPU while waiting ({} s, X11 idle source, threshold 10 min)",
            WAITING.as_secs()
        ),
        rows: vec![Row::new(
            "CPU time of the whole benchmark process",
            show(Duration::from_nanos(used)),
            "target: a few ms; the pointer moved every 5 s meanwhile (xdotool, another process)",
        )],
    })
}
