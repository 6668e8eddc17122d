//! The slow loop's trainer: RL steps on a LoRA adapter hosted by a
//! Tinker-compatible service, from the user's own scored turns.
//!
//! * `source`: the training examples (scored turns with policy tokens).
//! * `batch`: which turns the next step takes (pure).
//! * `step`: one step (datums → forward-backward → optimizer step → new
//!   sampler → every `rl.save_every` steps a checkpoint), recorded in the
//!   store, pausable before each request to the service.
//! * `teacher`: with on-policy distillation (`opd.*`), the teacher model's
//!   log-probs of the sampled tokens, which the step folds into the
//!   advantages as a reverse-KL penalty.
//! * `worker`: when steps run: in `auto` inside the scheduler's windows, in
//!   `rl` as soon as a batch is full; it announces each step and each run's
//!   end on the event bus.
//!
//! After each trained step the new sampler is published on a
//! [`PolicyPublisher`]; the proxy (`proxy::policy`) gives it to new
//! sessions and records the tokens it samples, which become training data.

mod batch;
mod source;
mod step;
pub mod teacher;
mod worker;

pub use batch::{select_batch, Selection};
pub use source::{ExampleSource, StoreExamples, TrainingExample};
pub use step::{checkpoint_due, checkpoint_name, StepReport, Trainer, REVERSE_KL_METRIC};
pub use teacher::{Teacher, TeacherError};
pub use worker::{run, WORKER};

use std::sync::Arc;

use metaclaw_tinker::{ApiKey, CheckpointPath, LossFn, Sampler, TinkerConfig, TinkerError};

use crate::config::RlConfig;

/// A sampler on one policy version (0: the base model or `rl.resume_from`).
#[derive(Debug, Clone)]
pub struct PolicySampler {
    pub version: i64,
    pub sampler: Sampler,
}

/// Where the trainer announces the newest policy after each trained step.
pub type PolicyPublisher = tokio::sync::watch::Sender<Option<Arc<PolicySampler>>>;

/// The trainer's settings, checked.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub service: TinkerConfig,
    pub base_model: String,
    pub lora_rank: u32,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub loss: LossFn,
    pub save_every: u64,
    /// Loaded at connection when the store has no checkpoint of its own.
    pub resume_from: Option<CheckpointPath>,
}

impl TrainSettings {
    pub fn from_config(rl: &RlConfig) -> Result<TrainSettings, TrainError> {
        let loss = rl.loss.parse().map_err(TrainError::Setting)?;
        let resume_from = if rl.resume_from.trim().is_empty() {
            None
        } else {
            Some(CheckpointPath::new(rl.resume_from.trim()).map_err(TrainError::Setting)?)
        };
        Ok(TrainSettings {
            service: TinkerConfig::new(&rl.base_url, ApiKey::new(rl.api_key.expose())),
            base_model: rl.model.clone(),
            lora_rank: rl.lora_rank,
            batch_size: rl.batch_size.max(1),
            learning_rate: rl.learning_rate,
            loss,
            save_every: rl.save_every.max(1),
            resume_from,
        })
    }
}

/// Why the trainer could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("rl settings: {0}")]
    Setting(#[source] TinkerError),
    #[error("database: {0}")]
    Store(#[from] metaclaw_store::StoreError),
    #[error("the store reader task failed: {0}")]
    Task(String),
}

/// The newest sampler weights saved as a checkpoint and the policy version
/// they hold (the version after the step that saved them), so the proxy can
/// answer with the trained policy after a restart.
pub fn newest_saved_sampler(
    reader: &metaclaw_store::StoreReader,
) -> Result<Option<(i64, String)>, metaclaw_store::StoreError> {
    let newest = reader
        .checkpoints(usize::MAX)?
        .into_iter()
        .find(|c| c.kind == metaclaw_store::CheckpointKind::Sampler);
    let Some(checkpoint) = newest else {
        return Ok(None);
    };
    let version = reader
        .training_steps(usize::MAX)?
        .into_iter()
        .find(|s| s.id == checkpoint.step)
        .and_then(|s| s.policy_after)
        .unwrap_or(checkpoint.step);
    Ok(Some((version, checkpoint.path)))
}
