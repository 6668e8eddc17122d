//! The curator as a worker of the training scheduler: it waits for a window
//! (the user is away, or asked to train now), curates once, and rests for
//! `curator.interval_hours` before claiming the next window. A run that was
//! told to pause resumes in the next window.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metaclaw_schedule::scheduler::{SchedulerHandle, Status, Worker};
use tokio::sync::watch;

use super::{run_once, Curator};
use crate::proxy::ProxyState;

/// The worker's name in the schedule's history.
pub const WORKER: &str = "curator";

/// Any window will do: each step takes moments and the run stops at the
/// next step when the user comes back.
const NEED: Duration = Duration::ZERO;

/// Longest single sleep while resting: timers stop while a laptop is
/// suspended, so the wall clock is looked at again at least this often.
const MAX_NAP: Duration = Duration::from_secs(3600);

/// Runs until the task is aborted (at shutdown) or the scheduler stops.
pub async fn run(
    state: Arc<ProxyState>,
    curator: Curator,
    worker: Worker,
    scheduler: SchedulerHandle,
) {
    // The period holds across restarts: the last finished run is in the store.
    let mut last_run = last_finished(&state).await;
    let mut last_window: Option<String> = None;
    let mut status = scheduler.subscribe();
    loop {
        if let Some(last) = last_run {
            let due = last + chrono::Duration::from_std(curator.interval).unwrap_or_default();
            rest_until(due, &mut status, last_window.as_deref()).await;
        }
        let lease = match worker.wait_for_window(NEED).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::info!(%error, "the curator stops: no more windows");
                return;
            }
        };
        last_window = Some(lease.window().id.clone());
        let work_id = lease.work().id.clone();
        tracing::info!(window = %lease.window().id, "curating the skill library");
        let report = run_once(&state, &curator.rules, Some(&work_id), &|| {
            lease.pause_requested()
        })
        .await;
        let summary = report.summary();
        if report.error.is_some() {
            lease.stop(summary);
            last_run = Some(Utc::now());
        } else if report.paused {
            // Not done: the rest waits for the next window, not the interval.
            lease.paused(summary);
        } else {
            lease.finish(summary);
            last_run = Some(Utc::now());
        }
    }
}

/// Sleeps until `due`, or until the user asks to train now in a window the
/// curator has not run in yet.
async fn rest_until(
    due: DateTime<Utc>,
    status: &mut watch::Receiver<Status>,
    last_window: Option<&str>,
) {
    loop {
        let now = Utc::now();
        let Ok(left) = (due - now).to_std() else {
            return;
        };
        if left.is_zero() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(left.min(MAX_NAP)) => {}
            // An error means the scheduler stopped; claiming a window then
            // fails and ends the task.
            _ = status.wait_for(|s| asked_to_train(s, last_window)) => return,
        }
    }
}

/// Train-now was asked for, and not for the window the curator last ran in
/// (that request was its own, still being cleared).
fn asked_to_train(status: &Status, last_window: Option<&str>) -> bool {
    status.manual && status.window.as_ref().map(|w| w.id.as_str()) != last_window
}

async fn last_finished(state: &ProxyState) -> Option<DateTime<Utc>> {
    let reader = state.store.reader();
    let found =
        tokio::task::spawn_blocking(move || reader.and_then(|r| r.last_finished_work(WORKER)))
            .await;
    match found {
        Ok(Ok(at)) => at.and_then(DateTime::from_timestamp_millis),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot read when the curator last ran; running at the next window");
            None
        }
        Err(_) => None,
    }
}
