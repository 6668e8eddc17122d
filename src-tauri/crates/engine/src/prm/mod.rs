//! The process reward model: an OpenAI-compatible judge scores each
//! completed main turn +1 / 0 / -1 by majority over concurrent votes, in a
//! background task that never touches the request path.
//!
//! `prompt` builds what the judge reads, `client` asks it once, `verdict`
//! reads one reply and combines the votes, `worker` finds settled turns in
//! the store and records the outcome.

mod prompt;
mod verdict;
mod worker;

use std::time::Duration;

use futures_util::future::join_all;
use metaclaw_store::JudgeVote;

use crate::model_client::{ModelClient, ModelClientError};
pub use prompt::{messages, render_response, truncate, JudgeInput, MAX_PART_BYTES};
pub use verdict::{backoff, majority, parse_reply, Verdict};
pub use worker::run;

use crate::config::{Config, ResolvedUpstream};

/// The judge with its settings, ready for [`run`].
#[derive(Clone)]
pub struct Judge {
    client: ModelClient,
    votes: u32,
    concurrency: usize,
}

/// One judging attempt: every vote, and the score when any vote succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub votes: Vec<JudgeVote>,
    /// `None` when every vote failed.
    pub score: Option<(i8, String)>,
}

impl Judge {
    /// The judge `config` asks for, or `None` when PRM is off or has no
    /// endpoint (logged, so a misconfiguration is visible).
    pub fn from_config(
        config: &Config,
        upstream: Option<&ResolvedUpstream>,
    ) -> Result<Option<Judge>, ModelClientError> {
        if !config.prm.enabled {
            return Ok(None);
        }
        let Some(target) = config.resolve_prm(upstream) else {
            tracing::warn!("prm.enabled is set but the judge has no endpoint: set prm.base_url (an Anthropic upstream cannot be reused as an OpenAI-format judge)");
            return Ok(None);
        };
        tracing::info!(base_url = %target.base_url, model = %target.model, votes = config.prm.votes, "PRM judge enabled");
        let client = ModelClient::new(
            "judge",
            target,
            config.prm.temperature,
            Duration::from_secs_f64(config.prm.timeout_secs),
        )?;
        Ok(Some(Judge {
            client,
            votes: config.prm.votes,
            concurrency: config.prm.concurrency,
        }))
    }

    pub fn model(&self) -> &str {
        self.client.model()
    }

    /// Runs every vote concurrently and combines the successful ones.
    pub async fn judge(&self, input: &JudgeInput) -> Outcome {
        let messages = messages(input);
        let replies = join_all((0..self.votes).map(|_| self.client.ask(&messages))).await;
        let verdicts: Vec<Result<Verdict, String>> = replies
            .into_iter()
            .map(|reply| reply.and_then(|text| parse_reply(&text)))
            .collect();
        let votes = verdicts
            .iter()
            .map(|v| match v {
                Ok(verdict) => JudgeVote::scored(verdict.score),
                Err(reason) => JudgeVote::failed(reason.clone()),
            })
            .collect();
        let ok: Vec<&Verdict> = verdicts.iter().filter_map(|v| v.as_ref().ok()).collect();
        Outcome {
            votes,
            score: majority(&ok),
        }
    }
}
