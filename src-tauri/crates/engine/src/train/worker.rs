//! When the trainer steps. In `rl` mode a step runs as soon as a batch is
//! full; in `auto` the trainer is a worker of the training scheduler: it
//! waits for a full batch, then for a window, steps while the window lasts
//! and batches are full, and stops at the next safe point (before the next
//! request to the service) when told to pause, keeping the step's batch.

use std::sync::Arc;
use std::time::Duration;

use metaclaw_schedule::scheduler::Worker;
use tokio::sync::broadcast;

use super::{StepReport, Trainer};
use crate::events::EngineEvent;
use crate::proxy::ProxyState;

/// The worker's name in the schedule's history.
pub const WORKER: &str = "trainer";

/// A step takes a few minutes on the service; a shorter window is not
/// worth claiming.
const NEED: Duration = Duration::from_secs(120);

/// Longest wait for new scored turns before looking at the store again
/// (turns may be scored by another process, or the bus may lag).
const POLL: Duration = Duration::from_secs(300);

/// After a failed step, before the next try.
const RETRY: Duration = Duration::from_secs(60);

/// Runs until the task is aborted (at shutdown) or the scheduler stops.
/// `worker` is the scheduler's handle in `auto`, `None` in `rl`.
pub async fn run(state: Arc<ProxyState>, mut trainer: Trainer, worker: Option<Worker>) {
    let mut scored = state.events.subscribe();
    loop {
        let generation = state.skill_generation();
        match trainer.batch_ready(generation).await {
            Ok(true) => {}
            Ok(false) => {
                wait_for_turns(&mut scored).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "the trainer cannot read its training data");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        }
        let failed = match &worker {
            None => {
                let report = step(&mut trainer, generation, None, &|| false).await;
                matches!(report, None | Some(StepReport::Failed { .. }))
            }
            Some(worker) => match in_window(&state, &mut trainer, worker).await {
                Some(failed) => failed,
                None => return,
            },
        };
        if failed {
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// Claims a window and steps in it. `None`: the scheduler stopped;
/// otherwise whether the last step failed.
async fn in_window(state: &ProxyState, trainer: &mut Trainer, worker: &Worker) -> Option<bool> {
    let lease = match worker.wait_for_window(NEED).await {
        Ok(lease) => lease,
        Err(error) => {
            tracing::info!(%error, "the trainer stops: no more windows");
            return None;
        }
    };
    let window = lease.window().id.clone();
    let mut trained = 0u32;
    loop {
        let pause = || lease.pause_requested();
        let report = step(trainer, state.skill_generation(), Some(&window), &pause).await;
        match report {
            Some(StepReport::Trained { .. }) => trained += 1,
            Some(StepReport::Rejected { .. }) => {}
            Some(report @ StepReport::Paused { .. }) => {
                lease.paused(report.summary());
                return Some(false);
            }
            Some(report @ StepReport::NotEnough { .. }) => {
                lease.finish(format!("{trained} steps; {}", report.summary()));
                return Some(false);
            }
            Some(report @ StepReport::Failed { .. }) => {
                lease.stop(report.summary());
                return Some(true);
            }
            None => {
                lease.stop("cannot read the training data");
                return Some(true);
            }
        }
    }
}

async fn step(
    trainer: &mut Trainer,
    generation: i64,
    window: Option<&str>,
    pause: &(dyn Fn() -> bool + Sync),
) -> Option<StepReport> {
    match trainer.try_step(generation, window, pause).await {
        Ok(report) => {
            match &report {
                StepReport::Failed { .. } | StepReport::Rejected { .. } => {
                    tracing::warn!("{}", report.summary());
                }
                _ => tracing::info!("{}", report.summary()),
            }
            Some(report)
        }
        Err(error) => {
            tracing::warn!(%error, "the trainer cannot step");
            None
        }
    }
}

/// Until a turn is scored (a batch may be full now) or [`POLL`] passes.
async fn wait_for_turns(events: &mut broadcast::Receiver<EngineEvent>) {
    let scored = async {
        loop {
            match events.recv().await {
                Ok(EngineEvent::TurnScored { .. })
                | Err(broadcast::error::RecvError::Lagged(_)) => return,
                Ok(_) => {}
                // No publisher left: only the poll wakes us.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    };
    let _ = tokio::time::timeout(POLL, scored).await;
}
