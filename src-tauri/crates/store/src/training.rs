//! The slow loop's records: the tokens the policy sampled for a turn, the
//! trainer's steps and the turns each one trained on, the batch it is
//! collecting (kept across pauses and restarts), and the checkpoints it
//! saved on the service. `metaclaw train status | history` and
//! `metaclaw checkpoints list` read them back.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::{StoreError, StoreReader};

/// What the policy sampled for one main turn, as the trainer needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnTokens {
    pub turn_id: i64,
    pub prompt_tokens: Vec<u32>,
    pub response_tokens: Vec<u32>,
    /// The sampler's log-prob of each response token.
    pub logprobs: Vec<f32>,
    /// The policy version that sampled the response.
    pub policy_version: i64,
}

/// The policy tokens of a turn named by its request id, for the proxy,
/// which hands its turn to the writer without knowing the row id. Sent
/// after the turn itself; the writer finds the turn and stores the tokens
/// as [`TurnTokens`] (nothing, if the turn was not stored).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTokens {
    pub request_id: String,
    pub prompt_tokens: Vec<u32>,
    pub response_tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
    pub policy_version: i64,
}

/// How a training step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The policy moved to a new version.
    Trained,
    /// The batch could not become datums; its turns are dropped.
    Rejected,
    /// The service failed; the batch stays pending and is tried again.
    Failed,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Trained => "trained",
            StepOutcome::Rejected => "rejected",
            StepOutcome::Failed => "failed",
        }
    }

    /// Whether the step's turns are used up (never taken again).
    pub fn consumes_turns(self) -> bool {
        !matches!(self, StepOutcome::Failed)
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trained" => Ok(StepOutcome::Trained),
            "rejected" => Ok(StepOutcome::Rejected),
            "failed" => Ok(StepOutcome::Failed),
            other => Err(other.to_owned()),
        }
    }
}

/// One attempted training step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingStepRecord {
    /// The step number, from 1.
    pub id: i64,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    /// The scheduler window it ran in (`auto`); `None` in `rl` mode.
    pub window_id: Option<String>,
    pub policy_before: i64,
    /// The new policy version, when trained.
    pub policy_after: Option<i64>,
    /// The service's sampling session on the new weights.
    pub sampler_id: Option<String>,
    /// The loss function (`importance_sampling`, `ppo`, `cispo`).
    pub loss: String,
    /// The batch, in order.
    pub turn_ids: Vec<i64>,
    pub reward_mean: Option<f64>,
    pub reward_std: Option<f64>,
    /// Loss and optimizer metrics, keyed `name:reduction`.
    pub metrics: BTreeMap<String, f64>,
    pub duration_ms: u64,
    pub outcome: StepOutcome,
    pub error: Option<String>,
}

/// What a saved checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// Weights and optimizer state, resumable with `load_weights`.
    State,
    /// Weights for sampling only.
    Sampler,
}

impl CheckpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointKind::State => "state",
            CheckpointKind::Sampler => "sampler",
        }
    }
}

impl fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CheckpointKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "state" => Ok(CheckpointKind::State),
            "sampler" => Ok(CheckpointKind::Sampler),
            other => Err(other.to_owned()),
        }
    }
}

/// Weights saved on the service after a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// The service's path (`tinker://…`).
    pub path: String,
    pub step: i64,
    pub kind: CheckpointKind,
    pub created_at_ms: i64,
}

/// The trainer at a glance, for `metaclaw train status`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub steps: u64,
    pub trained_steps: u64,
    pub failed_steps: u64,
    /// The newest policy version (0: the base model or the resumed weights).
    pub policy_version: i64,
    /// The number the next step gets.
    pub next_step: i64,
    /// The turns of the batch being collected.
    pub pending_turns: Vec<i64>,
    pub last_step: Option<TrainingStepRecord>,
    pub last_checkpoint: Option<CheckpointRecord>,
}

/// One change to the slow loop's records.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainingRecord {
    /// The policy's tokens for a turn (written by the proxy in `rl`/`auto`).
    TurnTokens(TurnTokens),
    /// The policy tokens of the turn with this request id.
    RequestTokens(RequestTokens),
    /// Turns taken into the batch being collected.
    PendingTaken {
        turn_ids: Vec<i64>,
        at_ms: i64,
    },
    /// Turns that left the batch being collected without a step (no longer
    /// training data, e.g. a new skill generation).
    PendingDropped {
        turn_ids: Vec<i64>,
    },
    /// A step ended; a step that used its turns up also takes them out of
    /// the batch being collected.
    Step(TrainingStepRecord),
    Checkpoint(CheckpointRecord),
}

impl TrainingRecord {
    pub(crate) fn describe(&self) -> String {
        match self {
            TrainingRecord::TurnTokens(t) => format!("the policy tokens of turn {}", t.turn_id),
            TrainingRecord::RequestTokens(t) => {
                format!("the policy tokens of request {}", t.request_id)
            }
            TrainingRecord::PendingTaken { turn_ids, .. } => {
                format!("{} turns taken into the training batch", turn_ids.len())
            }
            TrainingRecord::PendingDropped { turn_ids } => {
                format!("{} turns dropped from the training batch", turn_ids.len())
            }
            TrainingRecord::Step(s) => format!("training step {}", s.id),
            TrainingRecord::Checkpoint(c) => format!("checkpoint {}", c.path),
        }
    }
}

fn u32_blob(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32_blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn blob_u32(bytes: &[u8]) -> Option<Vec<u32>> {
    bytes.len().is_multiple_of(4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

fn blob_f32(bytes: &[u8]) -> Option<Vec<f32>> {
    bytes.len().is_multiple_of(4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

pub(crate) fn apply(conn: &Connection, record: &TrainingRecord) -> rusqlite::Result<()> {
    match record {
        TrainingRecord::TurnTokens(t) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO turn_tokens
                     (turn_id, prompt_tokens, response_tokens, logprobs, policy_version)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                t.turn_id,
                u32_blob(&t.prompt_tokens),
                u32_blob(&t.response_tokens),
                f32_blob(&t.logprobs),
                t.policy_version,
            ])?;
        }
        TrainingRecord::RequestTokens(t) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO turn_tokens
                     (turn_id, prompt_tokens, response_tokens, logprobs, policy_version)
                 SELECT id, ?2, ?3, ?4, ?5 FROM turns WHERE request_id = ?1",
            )?
            .execute(params![
                t.request_id,
                u32_blob(&t.prompt_tokens),
                u32_blob(&t.response_tokens),
                f32_blob(&t.logprobs),
                t.policy_version,
            ])?;
        }
        TrainingRecord::PendingTaken { turn_ids, at_ms } => {
            let mut stmt = conn.prepare_cached(
                "INSERT OR IGNORE INTO training_pending (turn_id, taken_at_ms) VALUES (?1, ?2)",
            )?;
            for id in turn_ids {
                stmt.execute(params![id, at_ms])?;
            }
        }
        TrainingRecord::PendingDropped { turn_ids } => {
            let mut stmt =
                conn.prepare_cached("DELETE FROM training_pending WHERE turn_id = ?1")?;
            for id in turn_ids {
                stmt.execute([id])?;
            }
        }
        TrainingRecord::Step(s) => record_step(conn, s)?,
        TrainingRecord::Checkpoint(c) => {
            conn.prepare_cached(
                "INSERT INTO training_checkpoints (path, step, kind, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![c.path, c.step, c.kind.as_str(), c.created_at_ms])?;
        }
    }
    Ok(())
}

fn record_step(conn: &Connection, s: &TrainingStepRecord) -> rusqlite::Result<()> {
    let metrics = serde_json::to_string(&s.metrics).unwrap_or_else(|_| "{}".to_owned());
    conn.prepare_cached(
        "INSERT OR REPLACE INTO training_steps
             (id, started_at_ms, finished_at_ms, window_id, policy_before, policy_after,
              sampler_id, loss, reward_mean, reward_std, metrics, duration_ms, outcome, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        s.id,
        s.started_at_ms,
        s.finished_at_ms,
        s.window_id,
        s.policy_before,
        s.policy_after,
        s.sampler_id,
        s.loss,
        s.reward_mean,
        s.reward_std,
        metrics,
        i64::try_from(s.duration_ms).unwrap_or(i64::MAX),
        s.outcome.as_str(),
        s.error,
    ])?;
    conn.prepare_cached("DELETE FROM training_step_turns WHERE step_id = ?1")?
        .execute([s.id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO training_step_turns (step_id, position, turn_id) VALUES (?1, ?2, ?3)",
    )?;
    let mut unpend = conn.prepare_cached("DELETE FROM training_pending WHERE turn_id = ?1")?;
    for (position, id) in s.turn_ids.iter().enumerate() {
        insert.execute(params![s.id, position as i64, id])?;
        if s.outcome.consumes_turns() {
            unpend.execute([id])?;
        }
    }
    Ok(())
}

type StepRow = (
    TrainingStepRecord,
    String, // outcome
    String, // metrics
);

impl StoreReader {
    /// The policy's tokens for a turn, if it was answered through the policy.
    pub fn turn_tokens(&self, turn_id: i64) -> Result<Option<TurnTokens>, StoreError> {
        let what = "read a turn's policy tokens";
        let row = self
            .conn
            .query_row(
                "SELECT prompt_tokens, response_tokens, logprobs, policy_version
                 FROM turn_tokens WHERE turn_id = ?1",
                [turn_id],
                |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.fail(what, e))?;
        let Some((prompt, response, logprobs, policy_version)) = row else {
            return Ok(None);
        };
        let bad = |column| self.invalid(column, format!("a blob of odd length (turn {turn_id})"));
        Ok(Some(TurnTokens {
            turn_id,
            prompt_tokens: blob_u32(&prompt).ok_or_else(|| bad("turn_tokens.prompt_tokens"))?,
            response_tokens: blob_u32(&response)
                .ok_or_else(|| bad("turn_tokens.response_tokens"))?,
            logprobs: blob_f32(&logprobs).ok_or_else(|| bad("turn_tokens.logprobs"))?,
            policy_version,
        }))
    }

    /// Turns a step already used up (trained on, or rejected), ascending.
    pub fn consumed_training_turns(&self) -> Result<Vec<i64>, StoreError> {
        self.ids(
            "read the turns already trained on",
            "SELECT DISTINCT st.turn_id FROM training_step_turns st
             JOIN training_steps s ON s.id = st.step_id
             WHERE s.outcome IN ('trained', 'rejected') ORDER BY st.turn_id",
        )
    }

    /// The batch being collected, in the order the turns were taken.
    pub fn pending_training_turns(&self) -> Result<Vec<i64>, StoreError> {
        self.ids(
            "read the training batch being collected",
            "SELECT turn_id FROM training_pending ORDER BY taken_at_ms, turn_id",
        )
    }

    fn ids(&self, what: &'static str, sql: &str) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([], |row| row.get(0))
            .map_err(|e| self.fail(what, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))
    }

    /// The newest `limit` steps, newest first, with their batches.
    pub fn training_steps(&self, limit: usize) -> Result<Vec<TrainingStepRecord>, StoreError> {
        let what = "read the training history";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, started_at_ms, finished_at_ms, window_id, policy_before, policy_after,
                        sampler_id, loss, reward_mean, reward_std, metrics, duration_ms, outcome,
                        error
                 FROM training_steps ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([limit], |row| {
                Ok((
                    TrainingStepRecord {
                        id: row.get(0)?,
                        started_at_ms: row.get(1)?,
                        finished_at_ms: row.get(2)?,
                        window_id: row.get(3)?,
                        policy_before: row.get(4)?,
                        policy_after: row.get(5)?,
                        sampler_id: row.get(6)?,
                        loss: row.get(7)?,
                        turn_ids: Vec::new(),
                        reward_mean: row.get(8)?,
                        reward_std: row.get(9)?,
                        metrics: BTreeMap::new(),
                        duration_ms: u64::try_from(row.get::<_, i64>(11)?).unwrap_or(0),
                        outcome: StepOutcome::Failed,
                        error: row.get(13)?,
                    },
                    row.get::<_, String>(12)?,
                    row.get::<_, String>(10)?,
                ))
            })
            .map_err(|e| self.fail(what, e))?;
        let rows: Vec<StepRow> = rows
            .collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))?;
        let mut turns = self
            .conn
            .prepare_cached(
                "SELECT turn_id FROM training_step_turns WHERE step_id = ?1 ORDER BY position",
            )
            .map_err(|e| self.fail(what, e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (mut step, outcome, metrics) in rows {
            step.outcome = outcome
                .parse()
                .map_err(|value| self.invalid("training_steps.outcome", value))?;
            step.metrics = serde_json::from_str(&metrics)
                .map_err(|_| self.invalid("training_steps.metrics", metrics.clone()))?;
            step.turn_ids = turns
                .query_map([step.id], |row| row.get(0))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(|e| self.fail(what, e))?;
            out.push(step);
        }
        Ok(out)
    }

    /// The newest `limit` checkpoints, newest first.
    pub fn checkpoints(&self, limit: usize) -> Result<Vec<CheckpointRecord>, StoreError> {
        let what = "read the checkpoints";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT path, step, kind, created_at_ms FROM training_checkpoints
                 ORDER BY step DESC, id DESC LIMIT ?1",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([limit], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.fail(what, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (path, step, kind, created_at_ms) = row.map_err(|e| self.fail(what, e))?;
            let kind = kind
                .parse()
                .map_err(|value| self.invalid("training_checkpoints.kind", value))?;
            out.push(CheckpointRecord {
                path,
                step,
                kind,
                created_at_ms,
            });
        }
        Ok(out)
    }

    /// The newest resumable (`state`) checkpoint.
    pub fn latest_state_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        Ok(self
            .checkpoints(usize::MAX)?
            .into_iter()
            .find(|c| c.kind == CheckpointKind::State))
    }

    /// The trainer at a glance.
    pub fn training_summary(&self) -> Result<TrainingSummary, StoreError> {
        let what = "summarise training";
        let (steps, trained, failed, version, last_id): (i64, i64, i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*),
                        coalesce(sum(outcome = 'trained'), 0),
                        coalesce(sum(outcome = 'failed'), 0),
                        coalesce(max(policy_after), 0),
                        coalesce(max(id), 0)
                 FROM training_steps",
                [],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )
            .map_err(|e| self.fail(what, e))?;
        Ok(TrainingSummary {
            steps: u64::try_from(steps).unwrap_or(0),
            trained_steps: u64::try_from(trained).unwrap_or(0),
            failed_steps: u64::try_from(failed).unwrap_or(0),
            policy_version: version,
            next_step: last_id + 1,
            pending_turns: self.pending_training_turns()?,
            last_step: self.training_steps(1)?.into_iter().next(),
            last_checkpoint: self.checkpoints(1)?.into_iter().next(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::testing::{session, turn, turn_ids};
    use crate::Store;

    fn step(id: i64, turn_ids: Vec<i64>, outcome: StepOutcome) -> TrainingStepRecord {
        let trained = outcome == StepOutcome::Trained;
        TrainingStepRecord {
            id,
            started_at_ms: id * 1_000,
            finished_at_ms: id * 1_000 + 500,
            window_id: Some("w1".into()),
            policy_before: id - 1,
            policy_after: trained.then_some(id),
            sampler_id: trained.then(|| format!("sampler-{id}")),
            loss: "importance_sampling".into(),
            turn_ids,
            reward_mean: Some(0.5),
            reward_std: Some(0.25),
            metrics: [("loss:sum".to_string(), 1.5)].into_iter().collect(),
            duration_ms: 500,
            outcome,
            error: (!trained).then(|| "boom".into()),
        }
    }

    #[tokio::test]
    async fn tokens_steps_pending_and_checkpoints_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        store.session_started(session("s1", 0));
        for i in 0..4 {
            store.record_turn(turn("s1", i, &[]));
        }
        store.flush().await.unwrap();
        let reader = store.reader().unwrap();
        let ids = turn_ids(&reader, "s1");
        let tokens = TurnTokens {
            turn_id: ids[0],
            prompt_tokens: vec![1, 2, u32::MAX],
            response_tokens: vec![7, 8],
            logprobs: vec![-0.5, -1.25],
            policy_version: 2,
        };
        store.record_training(TrainingRecord::TurnTokens(tokens.clone()));
        store.record_training(TrainingRecord::PendingTaken {
            turn_ids: vec![ids[2], ids[0], ids[1]],
            at_ms: 10,
        });
        store.record_training(TrainingRecord::PendingTaken {
            turn_ids: vec![ids[3]],
            at_ms: 20,
        });
        store.flush().await.unwrap();
        assert_eq!(reader.turn_tokens(ids[0]).unwrap(), Some(tokens));
        assert_eq!(reader.turn_tokens(ids[1]).unwrap(), None);
        // By request id (the proxy's way); an unknown request stores nothing.
        for request_id in ["s1-req-3", "no-such-request"] {
            store.record_training(TrainingRecord::RequestTokens(RequestTokens {
                request_id: request_id.into(),
                prompt_tokens: vec![4],
                response_tokens: vec![5, 6],
                logprobs: vec![-0.125, -2.0],
                policy_version: 1,
            }));
        }
        store.flush().await.unwrap();
        let by_request = reader.turn_tokens(ids[3]).unwrap().unwrap();
        assert_eq!(
            (
                by_request.response_tokens,
                by_request.logprobs,
                by_request.policy_version
            ),
            (vec![5, 6], vec![-0.125, -2.0], 1)
        );
        assert_eq!(
            reader.pending_training_turns().unwrap(),
            vec![ids[0], ids[1], ids[2], ids[3]]
        );

        // A failed step keeps its batch pending; a trained one uses it up.
        store.record_training(TrainingRecord::Step(step(
            1,
            vec![ids[0], ids[1]],
            StepOutcome::Failed,
        )));
        store.flush().await.unwrap();
        assert_eq!(reader.pending_training_turns().unwrap().len(), 4);
        assert!(reader.consumed_training_turns().unwrap().is_empty());
        let trained = step(2, vec![ids[1], ids[0]], StepOutcome::Trained);
        store.record_training(TrainingRecord::Step(trained.clone()));
        store.record_training(TrainingRecord::Checkpoint(CheckpointRecord {
            path: "tinker://m/weights/step-2".into(),
            step: 2,
            kind: CheckpointKind::State,
            created_at_ms: 3_000,
        }));
        store.record_training(TrainingRecord::Checkpoint(CheckpointRecord {
            path: "tinker://m/sampler_weights/step-2".into(),
            step: 2,
            kind: CheckpointKind::Sampler,
            created_at_ms: 3_000,
        }));
        store.record_training(TrainingRecord::PendingDropped {
            turn_ids: vec![ids[3]],
        });
        store.flush().await.unwrap();

        assert_eq!(reader.pending_training_turns().unwrap(), vec![ids[2]]);
        let mut consumed = vec![ids[0], ids[1]];
        consumed.sort();
        assert_eq!(reader.consumed_training_turns().unwrap(), consumed);
        let history = reader.training_steps(10).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0], trained);
        assert_eq!(history[1].outcome, StepOutcome::Failed);
        assert_eq!(history[1].error.as_deref(), Some("boom"));
        let checkpoints = reader.checkpoints(10).unwrap();
        assert_eq!(checkpoints.len(), 2);
        assert_eq!(
            reader.latest_state_checkpoint().unwrap().unwrap().path,
            "tinker://m/weights/step-2"
        );
        let summary = reader.training_summary().unwrap();
        assert_eq!(
            (summary.steps, summary.trained_steps, summary.failed_steps),
            (2, 1, 1)
        );
        assert_eq!((summary.policy_version, summary.next_step), (2, 3));
        assert_eq!(summary.pending_turns, vec![ids[2]]);
        assert_eq!(summary.last_step, Some(trained));
    }

    #[test]
    fn an_empty_store_has_an_empty_summary() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let summary = store.reader().unwrap().training_summary().unwrap();
        assert_eq!(summary.next_step, 1);
        assert_eq!(summary.policy_version, 0);
        assert!(summary.last_step.is_none() && summary.last_checkpoint.is_none());
    }

    #[test]
    fn outcome_and_kind_text_matches_serde() {
        for o in [
            StepOutcome::Trained,
            StepOutcome::Rejected,
            StepOutcome::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(o).unwrap(),
                serde_json::Value::from(o.as_str())
            );
            assert_eq!(o.as_str().parse::<StepOutcome>(), Ok(o));
        }
        for k in [CheckpointKind::State, CheckpointKind::Sampler] {
            assert_eq!(k.as_str().parse::<CheckpointKind>(), Ok(k));
        }
    }
}
