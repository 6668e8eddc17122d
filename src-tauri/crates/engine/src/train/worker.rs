//! When the trainer steps. In `rl` mode steps run as soon as a batch is
//! full, for as long as batches are full; in `auto` the trainer is a worker
//! of the training scheduler: it waits for a full batch, then for a window,
//! steps while the window lasts and batches are full, and stops at the next
//! safe point (before the next request to the service) when told to pause,
//! keeping the step's batch.
//!
//! Each trained step is announced as `EngineEvent::TrainingStep`, and a
//! run (one window's steps in `auto`, one stretch of full batches in `rl`)
//! that trained at least once as `EngineEvent::TrainingFinished`.

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
            None => while_batches_are_full(&state, &mut trainer).await,
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

/// The steps of one run, announced as they happen and at the end.
#[derive(Debug, Default)]
struct Run {
    steps: u32,
    reward_first: Option<f64>,
    reward_last: Option<f64>,
    policy_version: i64,
}

impl Run {
    /// Counts `report` when it trained and announces the step.
    fn saw(&mut self, state: &ProxyState, report: &StepReport) {
        let StepReport::Trained {
            step,
            policy_version,
            reward_mean,
            turns,
            ..
        } = report
        else {
            return;
        };
        self.steps += 1;
        if self.steps == 1 {
            self.reward_first = *reward_mean;
        }
        self.reward_last = *reward_mean;
        self.policy_version = *policy_version;
        state.events.publish(EngineEvent::TrainingStep {
            step: *step,
            policy_version: *policy_version,
            reward_mean: *reward_mean,
            turns: *turns,
        });
    }

    /// Announces the end of a run that trained.
    fn finish(self, state: &ProxyState) {
        if self.steps == 0 {
            return;
        }
        state.events.publish(EngineEvent::TrainingFinished {
            steps: self.steps,
            reward_first: self.reward_first,
            reward_last: self.reward_last,
            policy_version: self.policy_version,
        });
    }
}

/// `rl`: steps until a batch is not full (or a step fails, which ends the
/// run too). Whether the run ended on a failure.
async fn while_batches_are_full(state: &ProxyState, trainer: &mut Trainer) -> bool {
    let mut run = Run::default();
    let failed = loop {
        let report = step(trainer, state.skill_generation(), None, &|| false).await;
        match &report {
            Some(report @ StepReport::Trained { .. }) => run.saw(state, report),
            Some(StepReport::Rejected { .. }) => {}
            Some(StepReport::NotEnough { .. } | StepReport::Paused { .. }) => break false,
            Some(StepReport::Failed { .. }) | None => break true,
        }
    };
    run.finish(state);
    failed
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
    let mut run = Run::default();
    let failed = loop {
        let pause = || lease.pause_requested();
        let report = step(trainer, state.skill_generation(), Some(&window), &pause).await;
        match report {
            Some(report @ StepReport::Trained { .. }) => run.saw(state, &report),
            Some(StepReport::Rejected { .. }) => {}
            Some(report @ StepReport::Paused { .. }) => {
                lease.paused(report.summary());
                break false;
            }
            Some(report @ StepReport::NotEnough { .. }) => {
                lease.finish(format!("{} steps; {}", run.steps, report.summary()));
                break false;
            }
            Some(report @ StepReport::Failed { .. }) => {
                lease.stop(report.summary());
                break true;
            }
            None => {
                lease.stop("cannot read the training data");
                break true;
            }
        }
    };
    run.finish(state);
    Some(failed)
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
