//! Where training examples come from.
//!
//! A turn can be trained on only with the token ids the policy saw and
//! produced and the sampler's log-probs of the response. Those exist only
//! for turns the proxy answered through the policy (`rl`/`auto`), which it
//! records in the store's `turn_tokens`. Turns answered by the upstream
//! (skills-only mode, or before the policy served) have none, and
//! [`StoreExamples`] skips them: they still count for skills, never for RL.

use std::path::PathBuf;

use metaclaw_policy::ScoredTurn;
use metaclaw_store::{StoreError, StoreReader};

/// One scored turn with everything a datum needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingExample {
    pub turn_id: i64,
    pub prompt_tokens: Vec<u32>,
    pub response_tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
    /// The judge's score (+1 / 0 / -1).
    pub reward: f32,
    /// The policy version that sampled the response.
    pub policy_version: i64,
}

impl TrainingExample {
    pub fn scored_turn(&self) -> ScoredTurn {
        ScoredTurn {
            prompt_tokens: self.prompt_tokens.clone(),
            response_tokens: self.response_tokens.clone(),
            logprobs: self.logprobs.clone(),
            reward: self.reward,
            // One group per batch: advantages are relative to the batch.
            group: None,
            loss_mask: None,
            teacher_logprobs: None,
        }
    }
}

/// The training examples of a skill generation.
pub trait ExampleSource: Send + Sync {
    /// The generation's training turns that can be trained on, ascending
    /// turn id. Blocking (it reads the disk).
    fn examples(&self, generation: i64) -> Result<Vec<TrainingExample>, StoreError>;
}

/// The store's training-data selection ([`StoreReader::training_turns`]:
/// scored main turns of the generation outside every support set) joined
/// with the policy tokens of each turn; turns without tokens are skipped.
#[derive(Debug, Clone)]
pub struct StoreExamples {
    pub database: PathBuf,
}

impl ExampleSource for StoreExamples {
    fn examples(&self, generation: i64) -> Result<Vec<TrainingExample>, StoreError> {
        let reader = StoreReader::open(&self.database)?;
        let mut out = Vec::new();
        for turn in reader.training_turns(generation)? {
            let Some(tokens) = reader.turn_tokens(turn.turn_id)? else {
                continue;
            };
            out.push(TrainingExample {
                turn_id: turn.turn_id,
                prompt_tokens: tokens.prompt_tokens,
                response_tokens: tokens.response_tokens,
                logprobs: tokens.logprobs,
                reward: f32::from(turn.score),
                policy_version: tokens.policy_version,
            });
        }
        Ok(out)
    }
}
