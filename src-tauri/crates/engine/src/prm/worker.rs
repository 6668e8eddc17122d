//! The background judging task: woken by the event bus when a turn is
//! recorded or a session ends, and by a timer for retries and turns whose
//! reply never came; judges settled turns a bounded number at a time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metaclaw_dialect::Dialect;
use metaclaw_store::{JudgementRecord, StoreReader, TurnToJudge};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Semaphore;

use super::{backoff, Judge, JudgeInput};
use crate::events::EngineEvent;
use crate::proxy::ProxyState;

/// How long a turn whose session is still open waits for the user's next
/// message (where corrections show up) before it is judged without one.
const GRACE: Duration = Duration::from_secs(10 * 60);

/// How often the store is checked without an event: retries and turns past
/// the grace period have no event of their own.
const TICK: Duration = Duration::from_secs(10);

/// Turns taken per look at the store; the rest are found on the next one.
const BATCH: usize = 64;

/// Runs until the task is aborted (at shutdown).
pub async fn run(state: Arc<ProxyState>, judge: Judge) {
    let mut events = state.events.subscribe();
    let permits = Arc::new(Semaphore::new(judge.concurrency.max(1)));
    // Turns being judged, so a look at the store while their votes run does
    // not start them again.
    let busy: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let mut reader: Option<Arc<Mutex<StoreReader>>> = None;
    loop {
        if let Some(turns) = settled_turns(&state, &mut reader).await {
            for turn in turns {
                if !lock(&busy).insert(turn.turn_id) {
                    continue;
                }
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (state, judge, busy) = (state.clone(), judge.clone(), busy.clone());
                tokio::spawn(async move {
                    let turn_id = turn.turn_id;
                    judge_one(&state, &judge, turn).await;
                    // Free the turn only once its judgement is on disk, so
                    // a selection made meanwhile cannot judge it again.
                    let _ = state.store.flush().await;
                    lock(&busy).remove(&turn_id);
                    drop(permit);
                });
            }
        }
        wait_for_work(&mut events).await;
    }
}

/// Waits for an event that can make a turn ready, or the next tick. Events
/// already queued behind it are taken too: one look at the store serves a
/// whole burst of turns.
async fn wait_for_work(events: &mut tokio::sync::broadcast::Receiver<EngineEvent>) {
    wait_for_event(events).await;
    while events.try_recv().is_ok() {}
}

async fn wait_for_event(events: &mut tokio::sync::broadcast::Receiver<EngineEvent>) {
    let deadline = tokio::time::sleep(TICK);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return,
            event = events.recv() => match event {
                Ok(EngineEvent::TurnRecorded { .. } | EngineEvent::SessionEnded { .. })
                | Err(RecvError::Lagged(_)) => return,
                Ok(_) => {}
                // The bus is gone: only the tick is left.
                Err(RecvError::Closed) => {
                    deadline.as_mut().await;
                    return;
                }
            }
        }
    }
}

/// Turns ready to judge, after the writer committed what it was given (the
/// events that woke us are sent before their turn is on disk).
async fn settled_turns(
    state: &Arc<ProxyState>,
    reader: &mut Option<Arc<Mutex<StoreReader>>>,
) -> Option<Vec<TurnToJudge>> {
    if let Err(error) = state.store.flush().await {
        tracing::warn!(%error, "the store reported a failed write before judging");
    }
    let shared = match reader {
        Some(shared) => shared.clone(),
        None => match state.store.reader() {
            Ok(opened) => reader.insert(Arc::new(Mutex::new(opened))).clone(),
            Err(error) => {
                tracing::error!(%error, "the PRM judge cannot read the store");
                return None;
            }
        },
    };
    let now = crate::now_ms();
    let grace = GRACE.as_millis() as i64;
    let found =
        tokio::task::spawn_blocking(move || lock(&shared).turns_to_judge(now, grace, BATCH)).await;
    match found {
        Ok(Ok(turns)) => Some(turns),
        Ok(Err(error)) => {
            tracing::error!(%error, "the PRM judge cannot select turns");
            None
        }
        Err(error) => {
            tracing::error!(%error, "the PRM judge's store query stopped");
            None
        }
    }
}

async fn judge_one(state: &ProxyState, judge: &Judge, turn: TurnToJudge) {
    // The stored request and response are in the upstream's dialect.
    let api = turn.upstream_api.parse().unwrap_or(Dialect::OpenAi);
    let input = JudgeInput::from_turn(
        api,
        &turn.request,
        turn.response.as_ref(),
        turn.next_instruction.clone(),
    );
    let outcome = judge.judge(&input).await;
    let now = crate::now_ms();
    let attempts = turn.attempts + 1;
    let (score, reason) = match outcome.score {
        Some((score, reason)) => (Some(score), Some(reason)),
        None => (None, None),
    };
    let retry_in = backoff(attempts).as_millis() as i64;
    match score {
        Some(score) => {
            tracing::info!(turn = turn.turn_id, session = %turn.session_id, score, "turn scored")
        }
        None => tracing::warn!(
            turn = turn.turn_id,
            attempts,
            retry_in_secs = retry_in / 1000,
            first_failure = outcome
                .votes
                .first()
                .and_then(|v| v.failure.as_deref())
                .unwrap_or(""),
            "every judge vote failed; the turn will be retried"
        ),
    }
    state.store.record_judgement(JudgementRecord {
        turn_id: turn.turn_id,
        score,
        votes: outcome.votes,
        reason,
        judge_model: judge.model().to_string(),
        judged_at_ms: now,
        next_attempt_at_ms: now.saturating_add(retry_in),
    });
    // Committed before the turn leaves the busy set, so the next look at the
    // store cannot pick it up again; subscribers then read the stored score.
    if let Err(error) = state.store.flush().await {
        tracing::error!(%error, turn = turn.turn_id, "recording the judgement failed");
        return;
    }
    if let Some(score) = score {
        state.events.publish(EngineEvent::TurnScored {
            turn_id: turn.turn_id,
            session_id: turn.session_id,
            score,
        });
    }
}

/// The guarded data is a set or a reader, both valid after a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
