//! The skill evolver: an OpenAI-compatible model reads a session's failed or
//! finished turns and writes new skills, in a background task that never
//! touches the request path.
//!
//! `trigger` decides when a session is worth an evolution, `prompt` builds
//! what the model reads, `client` asks it, `parse` reads its JSON answer,
//! `dedupe` turns proposals into safe additions or merges, `worker` runs
//! the loop and writes the outcome (SKILL.md files, the store, events).

mod dedupe;
mod parse;
mod prompt;
mod trigger;
mod worker;

use std::time::Duration;

use crate::model_client::{ModelClient, ModelClientError};
pub(crate) use dedupe::{body_lines, new_lines, with_addition};
pub use dedupe::{jaccard, plan, tokens, Decision, NewSkill, DUPLICATE_SIMILARITY};
pub use parse::{parse_reply, ProposedSkill};
pub use prompt::{build, repair, EvolvePrompt, TurnView, MAX_TURNS_BYTES, MAX_TURN_BYTES};
pub use trigger::{check, settled, Trigger};
pub use worker::run;
pub(crate) use worker::{bump_generation, now_rfc3339};

use crate::config::{Config, ResolvedUpstream};

/// The evolver with its settings, ready for [`run`].
#[derive(Clone)]
pub struct Evolver {
    client: ModelClient,
    every_n_turns: u32,
    max_new_skills: usize,
    failure_threshold: f64,
    /// The PRM judge runs, so a session's end waits for its scores.
    judging: bool,
}

impl Evolver {
    /// The evolver `config` asks for, or `None` when it is off or has no
    /// endpoint (logged, so a misconfiguration is visible).
    pub fn from_config(
        config: &Config,
        upstream: Option<&ResolvedUpstream>,
    ) -> Result<Option<Evolver>, ModelClientError> {
        if !config.evolver.enabled {
            return Ok(None);
        }
        let Some(target) = config.resolve_evolver(upstream) else {
            tracing::warn!("evolver.enabled is set but the evolver has no endpoint or model: set evolver.base_url and evolver.model (an Anthropic upstream cannot be reused as an OpenAI-format evolver)");
            return Ok(None);
        };
        tracing::info!(base_url = %target.base_url, model = %target.model, "skill evolver enabled");
        // Low but not zero: varied skills, yet the answer format kept.
        let client = ModelClient::new(
            "evolver",
            target,
            0.3,
            Duration::from_secs_f64(config.evolver.timeout_secs),
        )?;
        Ok(Some(Evolver {
            client,
            every_n_turns: config.evolver.every_n_turns,
            max_new_skills: config.evolver.max_new_skills,
            failure_threshold: config.evolver.failure_threshold,
            judging: config.prm.enabled,
        }))
    }

    pub fn model(&self) -> &str {
        self.client.model()
    }

    /// The skills the model proposes for `prompt`: one question, and one
    /// repair attempt when the answer is not a readable JSON array.
    pub async fn propose(&self, prompt: &EvolvePrompt) -> Result<Vec<ProposedSkill>, String> {
        let reply = self.client.ask(&prompt.messages).await?;
        match parse_reply(&reply) {
            Ok(skills) => Ok(skills),
            Err(problem) => {
                tracing::info!(%problem, "the evolver's answer is not valid JSON; asking once to repair it");
                let again = self
                    .client
                    .ask(&repair(&prompt.messages, &reply, &problem))
                    .await?;
                parse_reply(&again).map_err(|second| {
                    format!("the evolver's answer is not a JSON array of skills, even after one repair: {second}")
                })
            }
        }
    }
}
