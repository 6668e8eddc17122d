//! One training step and its bookkeeping.
//!
//! A step is a few requests to the service: forward-backward on the batch's
//! datums with `rl.loss`, Adam's step, a snapshot of the new weights for
//! sampling (the new policy version), and every `rl.save_every` policy
//! versions a resumable checkpoint plus named sampler weights. With
//! on-policy distillation the teacher is asked first, and its log-probs of
//! the batch's responses go into the datums' advantages. The pause
//! hook is asked before each request; a request once submitted is awaited
//! and its result kept, so a paused step goes on where it stopped when it is
//! next asked to (in this process; after a restart its batch is kept and the
//! step starts over, as the service's partial state went with the session).
//!
//! Every step ends as a row: `trained` (new policy version), `rejected`
//! (the batch could not become datums; its turns are dropped) or `failed`
//! (the service or the teacher failed; the batch stays pending; after a
//! service failure the connection is dropped and the next step reconnects
//! from the newest checkpoint).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use metaclaw_policy::{build_datums, AdvantageConfig, ScoredTurn};
use metaclaw_store::{
    CheckpointKind, CheckpointRecord, StepOutcome, Store, StoreReader, TrainingRecord,
    TrainingStepRecord,
};
use metaclaw_tinker::{
    AdamParams, CheckpointPath, Datum, Sampler, TinkerClient, TinkerError, TinkerSession,
    TrainingModel,
};

use super::teacher::Teacher;
use super::{
    select_batch, ExampleSource, PolicyPublisher, PolicySampler, TrainError, TrainSettings,
    TrainingExample,
};

/// The step metric holding the batch's mean reverse-KL estimate against the
/// teacher (sampler − teacher log-prob per response token).
pub const REVERSE_KL_METRIC: &str = "opd_reverse_kl:mean";

/// How a call to [`Trainer::try_step`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepReport {
    /// The batch is not full yet (the turns there are kept as pending).
    NotEnough {
        have: usize,
        need: usize,
    },
    /// Asked to pause before a request; the step goes on at the next call.
    Paused {
        step: i64,
        batch: Vec<i64>,
    },
    Trained {
        step: i64,
        policy_version: i64,
        /// The resumable checkpoint saved after it, when one was due.
        checkpoint: Option<String>,
        /// The batch's mean reward.
        reward_mean: Option<f64>,
        /// Turns in the batch.
        turns: usize,
    },
    Rejected {
        step: i64,
        error: String,
    },
    Failed {
        step: i64,
        error: String,
    },
}

impl StepReport {
    /// One line for the schedule's history and the log.
    pub fn summary(&self) -> String {
        match self {
            StepReport::NotEnough { have, need } => format!("batch {have}/{need}, waiting"),
            StepReport::Paused { step, batch } => {
                format!("step {step} paused with {} turns kept", batch.len())
            }
            StepReport::Trained {
                step,
                policy_version,
                checkpoint,
                ..
            } => match checkpoint {
                Some(path) => format!("step {step}: policy v{policy_version}, saved {path}"),
                None => format!("step {step}: policy v{policy_version}"),
            },
            StepReport::Rejected { step, error } => format!("step {step} rejected: {error}"),
            StepReport::Failed { step, error } => format!("step {step} failed: {error}"),
        }
    }
}

/// Whether the step that produced `policy_version` saves a checkpoint.
pub fn checkpoint_due(policy_version: i64, save_every: u64) -> bool {
    let every = i64::try_from(save_every.max(1)).unwrap_or(i64::MAX);
    policy_version > 0 && policy_version % every == 0
}

/// The service-side name of the weights of `policy_version`.
pub fn checkpoint_name(policy_version: i64) -> String {
    format!("metaclaw-policy-{policy_version:06}")
}

/// The next request of a step in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The teacher's log-probs (on-policy distillation), then the datums.
    Teacher,
    ForwardBackward,
    OptimStep,
    Sampler,
    Checkpoint,
    Done,
}

struct InFlight {
    id: i64,
    started_at_ms: i64,
    started: Instant,
    window_id: Option<String>,
    policy_before: i64,
    batch: Vec<i64>,
    /// The batch's turns, kept until the teacher has scored them.
    turns: Vec<ScoredTurn>,
    datums: Vec<Datum>,
    /// Whether the batch's rewards were computed (not for a rejected batch).
    rewards_known: bool,
    reward_mean: f64,
    reward_std: f64,
    metrics: BTreeMap<String, f64>,
    sampler_id: Option<String>,
    checkpoint: Option<String>,
    phase: Phase,
}

struct Connection {
    _session: TinkerSession,
    model: TrainingModel,
}

/// What the store says about training, read at the start of a step.
struct Ledger {
    examples: Vec<TrainingExample>,
    consumed: HashSet<i64>,
    pending: Vec<i64>,
    next_step: i64,
    policy_version: i64,
}

/// The trainer: the settings, the store it records to, where examples come
/// from, and (once a step has run) its connection to the service.
pub struct Trainer {
    settings: TrainSettings,
    store: Store,
    source: Arc<dyn ExampleSource>,
    connection: Option<Connection>,
    inflight: Option<InFlight>,
    sampler: Option<Sampler>,
    publisher: Option<PolicyPublisher>,
    teacher: Option<Teacher>,
}

/// Why a request of a step failed.
enum StepFailure {
    Service(TinkerError),
    Teacher(String),
}

impl Trainer {
    pub fn new(settings: TrainSettings, store: Store, source: Arc<dyn ExampleSource>) -> Trainer {
        Trainer {
            settings,
            store,
            source,
            connection: None,
            inflight: None,
            sampler: None,
            publisher: None,
            teacher: None,
        }
    }

    /// Distils from `teacher` (`opd.*`): its log-probs of each batch's
    /// responses add a per-token reverse-KL penalty to the advantages.
    pub fn with_teacher(mut self, teacher: Teacher) -> Trainer {
        self.teacher = Some(teacher);
        self
    }

    /// Announces each new policy's sampler on `publisher` (the proxy
    /// answers new sessions with it).
    pub fn with_publisher(mut self, publisher: PolicyPublisher) -> Trainer {
        self.publisher = Some(publisher);
        self
    }

    pub fn settings(&self) -> &TrainSettings {
        &self.settings
    }

    /// The sampler on the newest policy, once a step has trained.
    pub fn sampler(&self) -> Option<&Sampler> {
        self.sampler.as_ref()
    }

    /// Whether a paused step is waiting to go on.
    pub fn in_progress(&self) -> bool {
        self.inflight.is_some()
    }

    /// Whether a step could run now: one in progress, or a full batch of
    /// `generation`'s turns (taking new turns into the pending batch).
    pub async fn batch_ready(&self, generation: i64) -> Result<bool, TrainError> {
        if self.inflight.is_some() {
            return Ok(true);
        }
        let ledger = self.ledger(generation).await?;
        Ok(self.select(&ledger).len() >= self.settings.batch_size)
    }

    /// Runs (or goes on with) one step on `generation`'s training turns.
    /// `pause` is asked before each request to the service.
    pub async fn try_step(
        &mut self,
        generation: i64,
        window_id: Option<&str>,
        pause: &(dyn Fn() -> bool + Sync),
    ) -> Result<StepReport, TrainError> {
        let mut flight = match self.inflight.take() {
            Some(flight) => flight,
            None => {
                let ledger = self.ledger(generation).await?;
                let batch = self.select(&ledger);
                let need = self.settings.batch_size;
                if batch.len() < need {
                    return Ok(StepReport::NotEnough {
                        have: batch.len(),
                        need,
                    });
                }
                let by_id: HashMap<i64, &TrainingExample> =
                    ledger.examples.iter().map(|e| (e.turn_id, e)).collect();
                // Every batch turn is an example (the batch is chosen from them).
                let batch: Vec<i64> = batch
                    .into_iter()
                    .filter(|id| by_id.contains_key(id))
                    .collect();
                let turns: Vec<ScoredTurn> = batch
                    .iter()
                    .filter_map(|id| by_id.get(id).map(|e| e.scored_turn()))
                    .collect();
                let mut flight = InFlight {
                    id: ledger.next_step,
                    started_at_ms: now_ms(),
                    started: Instant::now(),
                    window_id: window_id.map(str::to_owned),
                    policy_before: ledger.policy_version,
                    batch,
                    turns,
                    datums: Vec::new(),
                    rewards_known: false,
                    reward_mean: 0.0,
                    reward_std: 0.0,
                    metrics: BTreeMap::new(),
                    sampler_id: None,
                    checkpoint: None,
                    phase: Phase::ForwardBackward,
                };
                // Checked (and, without a teacher, built) now: a turn that
                // cannot become a datum is rejected before any request.
                match build_datums(&flight.turns, AdvantageConfig::default()) {
                    Ok(built) => {
                        flight.rewards_known = true;
                        flight.reward_mean = built.reward_mean;
                        flight.reward_std = built.reward_std;
                        if self.teacher.is_some() {
                            flight.phase = Phase::Teacher;
                        } else {
                            flight.datums = built.datums;
                            flight.turns = Vec::new();
                        }
                    }
                    Err(error) => {
                        let error = error.to_string();
                        self.record(&flight, StepOutcome::Rejected, Some(error.clone()));
                        return Ok(StepReport::Rejected {
                            step: flight.id,
                            error,
                        });
                    }
                }
                flight
            }
        };
        while flight.phase != Phase::Done {
            if pause() {
                let report = StepReport::Paused {
                    step: flight.id,
                    batch: flight.batch.clone(),
                };
                self.inflight = Some(flight);
                return Ok(report);
            }
            if let Err(failure) = self.advance(&mut flight).await {
                let error = match failure {
                    StepFailure::Service(error) => {
                        // The service's state is unknown now: start over
                        // from the newest checkpoint at the next step.
                        self.connection = None;
                        format!("{} ({})", error, error.code())
                    }
                    StepFailure::Teacher(error) => error,
                };
                self.record(&flight, StepOutcome::Failed, Some(error.clone()));
                return Ok(StepReport::Failed {
                    step: flight.id,
                    error,
                });
            }
        }
        self.record(&flight, StepOutcome::Trained, None);
        if let (Some(publisher), Some(sampler)) = (&self.publisher, &self.sampler) {
            publisher.send_replace(Some(Arc::new(PolicySampler {
                version: flight.policy_before + 1,
                sampler: sampler.clone(),
            })));
        }
        Ok(StepReport::Trained {
            step: flight.id,
            policy_version: flight.policy_before + 1,
            checkpoint: flight.checkpoint,
            reward_mean: Some(flight.reward_mean),
            turns: flight.batch.len(),
        })
    }

    /// Asks the teacher for its log-probs and builds the datums with the
    /// reverse-KL penalty.
    async fn distil(&self, flight: &mut InFlight) -> Result<(), String> {
        let Some(teacher) = &self.teacher else {
            return Err("no teacher is configured".into());
        };
        teacher
            .score(&mut flight.turns)
            .await
            .map_err(|(i, error)| {
                let turn = flight.batch.get(i).copied().unwrap_or_default();
                format!("opd teacher, turn {turn}: {error}")
            })?;
        let config = AdvantageConfig {
            kl_coef: teacher.kl_coef,
            ..AdvantageConfig::default()
        };
        let built = build_datums(&flight.turns, config).map_err(|e| format!("opd teacher: {e}"))?;
        if let Some(kl) = built.reverse_kl_mean {
            flight.metrics.insert(REVERSE_KL_METRIC.to_owned(), kl);
        }
        flight.datums = built.datums;
        flight.turns = Vec::new();
        Ok(())
    }

    /// Submits the step's next request and awaits it.
    async fn advance(&mut self, flight: &mut InFlight) -> Result<(), StepFailure> {
        if flight.phase == Phase::Teacher {
            self.distil(flight).await.map_err(StepFailure::Teacher)?;
            flight.phase = Phase::ForwardBackward;
            return Ok(());
        }
        self.advance_service(flight)
            .await
            .map_err(StepFailure::Service)
    }

    /// The step's next request to the training service.
    async fn advance_service(&mut self, flight: &mut InFlight) -> Result<(), TinkerError> {
        let policy_after = flight.policy_before + 1;
        if self.connection.is_none() {
            self.connection = Some(self.connect().await?);
        }
        let Some(connection) = self.connection.as_ref() else {
            return Err(TinkerError::InvalidInput("not connected".into()));
        };
        let model = &connection.model;
        match flight.phase {
            Phase::ForwardBackward => {
                let out = model
                    .forward_backward(&flight.datums, self.settings.loss)
                    .await?;
                flight.metrics.extend(out.metrics);
                flight.phase = Phase::OptimStep;
            }
            Phase::OptimStep => {
                let out = model
                    .optim_step(AdamParams::new(self.settings.learning_rate))
                    .await?;
                flight.metrics.extend(out.metrics);
                flight.phase = Phase::Sampler;
            }
            Phase::Sampler => {
                let sampler = model.save_weights_and_get_sampler().await?;
                flight.sampler_id = Some(sampler.sampling_session_id().to_owned());
                self.sampler = Some(sampler);
                flight.phase = if checkpoint_due(policy_after, self.settings.save_every) {
                    Phase::Checkpoint
                } else {
                    Phase::Done
                };
            }
            Phase::Checkpoint => {
                let name = checkpoint_name(policy_after);
                let state = model.save_weights(&name).await?;
                let sampler = model.save_weights_for_sampler(&name).await?;
                let at = now_ms();
                for (path, kind) in [
                    (state.as_str(), CheckpointKind::State),
                    (sampler.as_str(), CheckpointKind::Sampler),
                ] {
                    self.store
                        .record_training(TrainingRecord::Checkpoint(CheckpointRecord {
                            path: path.to_owned(),
                            step: flight.id,
                            kind,
                            created_at_ms: at,
                        }));
                }
                flight.checkpoint = Some(state.as_str().to_owned());
                flight.phase = Phase::Done;
            }
            Phase::Teacher | Phase::Done => {}
        }
        Ok(())
    }

    /// A session, the LoRA model, and the weights to start from: the
    /// newest checkpoint the trainer saved, else `rl.resume_from`.
    async fn connect(&self) -> Result<Connection, TinkerError> {
        let session = TinkerClient::connect(self.settings.service.clone()).await?;
        let model = session
            .create_lora(&self.settings.base_model, self.settings.lora_rank)
            .await?;
        let database = self.store.path().to_path_buf();
        let saved = tokio::task::spawn_blocking(move || {
            StoreReader::open(&database).and_then(|r| r.latest_state_checkpoint())
        })
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
        let resume = match saved {
            Some(checkpoint) => Some(CheckpointPath::new(checkpoint.path)?),
            None => self.settings.resume_from.clone(),
        };
        if let Some(path) = resume {
            tracing::info!(%path, "the trainer resumes from a checkpoint");
            model.load_weights(&path, true).await?;
        }
        Ok(Connection {
            _session: session,
            model,
        })
    }

    /// Chooses the batch and records what changed in the pending batch.
    fn select(&self, ledger: &Ledger) -> Vec<i64> {
        let available: Vec<i64> = ledger.examples.iter().map(|e| e.turn_id).collect();
        let selection = select_batch(
            &available,
            &ledger.consumed,
            &ledger.pending,
            self.settings.batch_size,
        );
        if !selection.taken.is_empty() {
            self.store.record_training(TrainingRecord::PendingTaken {
                turn_ids: selection.taken,
                at_ms: now_ms(),
            });
        }
        if !selection.dropped.is_empty() {
            self.store.record_training(TrainingRecord::PendingDropped {
                turn_ids: selection.dropped,
            });
        }
        selection.batch
    }

    async fn ledger(&self, generation: i64) -> Result<Ledger, TrainError> {
        let source = self.source.clone();
        let database = self.store.path().to_path_buf();
        // What this process queued (pending turns, steps) must be visible.
        self.store.flush().await?;
        tokio::task::spawn_blocking(move || {
            let reader = StoreReader::open(&database)?;
            let summary = reader.training_summary()?;
            Ok(Ledger {
                examples: source.examples(generation)?,
                consumed: reader.consumed_training_turns()?.into_iter().collect(),
                pending: summary.pending_turns,
                next_step: summary.next_step,
                policy_version: summary.policy_version,
            })
        })
        .await
        .map_err(|e| TrainError::Task(e.to_string()))?
    }

    fn record(&self, flight: &InFlight, outcome: StepOutcome, error: Option<String>) {
        let trained = outcome == StepOutcome::Trained;
        let has_rewards = flight.rewards_known;
        self.store
            .record_training(TrainingRecord::Step(TrainingStepRecord {
                id: flight.id,
                started_at_ms: flight.started_at_ms,
                finished_at_ms: now_ms(),
                window_id: flight.window_id.clone(),
                policy_before: flight.policy_before,
                policy_after: trained.then_some(flight.policy_before + 1),
                sampler_id: flight.sampler_id.clone().filter(|_| trained),
                loss: self.settings.loss.to_string(),
                turn_ids: flight.batch.clone(),
                reward_mean: has_rewards.then_some(flight.reward_mean),
                reward_std: has_rewards.then_some(flight.reward_std),
                metrics: flight.metrics.clone(),
                duration_ms: u64::try_from(flight.started.elapsed().as_millis()).unwrap_or(0),
                outcome,
                error,
            }));
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_fall_on_multiples_of_save_every() {
        let due: Vec<i64> = (0..=11).filter(|v| checkpoint_due(*v, 5)).collect();
        assert_eq!(due, [5, 10]);
        assert!(checkpoint_due(1, 1) && checkpoint_due(2, 1));
        // A zero from a hand-made setting behaves as 1, not a division by zero.
        assert!(checkpoint_due(3, 0));
        assert!(!checkpoint_due(0, 1));
    }

    #[test]
    fn checkpoint_names_are_valid_weight_names_and_sort_by_version() {
        assert_eq!(checkpoint_name(5), "metaclaw-policy-000005");
        assert!(checkpoint_name(9) < checkpoint_name(10));
        assert!(checkpoint_name(5)
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')));
    }

    #[test]
    fn reports_summarise_in_one_line() {
        let trained = StepReport::Trained {
            step: 3,
            policy_version: 5,
            checkpoint: Some("tinker://m/weights/x".into()),
            reward_mean: Some(0.5),
            turns: 4,
        };
        assert_eq!(
            trained.summary(),
            "step 3: policy v5, saved tinker://m/weights/x"
        );
        assert_eq!(
            StepReport::NotEnough { have: 1, need: 4 }.summary(),
            "batch 1/4, waiting"
        );
        assert_eq!(
            StepReport::Paused {
                step: 2,
                batch: vec![1, 2]
            }
            .summary(),
            "step 2 paused with 2 turns kept"
        );
    }
}
