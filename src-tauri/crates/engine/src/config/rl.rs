//! `rl.*`: the slow loop's LoRA training on a Tinker-compatible service,
//! active in `rl` and `auto` modes.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Mode};
use crate::secret::Secret;

/// The loss functions the service offers (`metaclaw_tinker::LossFn`).
pub const LOSSES: [&str; 3] = ["importance_sampling", "ppo", "cispo"];

/// RL training of a LoRA adapter on a Tinker-compatible service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RlConfig {
    /// The service root (without `/api/v1`); required in `rl`; `auto` trains once it and the others are set.
    pub base_url: String,
    /// The base model the adapter trains on; required in `rl`; `auto` trains once it and the others are set.
    pub model: String,
    pub lora_rank: u32,
    /// Scored turns per training step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// `importance_sampling`, `ppo` or `cispo`.
    pub loss: String,
    /// A resumable checkpoint every this many steps.
    pub save_every: u64,
    /// A checkpoint path (`tinker://…`) to start from; empty: the base
    /// model (or the newest checkpoint the trainer saved itself).
    pub resume_from: String,
    /// The base model's tokenizer and chat template; required in `rl`
    /// (`auto` trains once it and the others are set). Either a local folder with `tokenizer.json` and
    /// `tokenizer_config.json` (and optionally `chat_template.jinja` and
    /// `generation_config.json`), such as a Hugging Face snapshot, or a
    /// model id on the hub (`Qwen/Qwen3-4B-Instruct-2507`, optionally
    /// `@revision`), whose files are downloaded once into the cache folder
    /// and read from there ever after (offline too).
    pub tokenizer: String,
    /// The model hub `rl.tokenizer` model ids are downloaded from (its
    /// `/{model}/resolve/{revision}/{file}` URLs); empty: the `HF_ENDPOINT`
    /// environment variable, else https://huggingface.co.
    pub hub_url: String,
    /// The longest answer sampled from the policy when the client sets no
    /// `max_tokens`.
    pub max_tokens: u32,
    /// Kept in the secret store.
    #[serde(skip)]
    pub api_key: Secret,
    /// The hub's access token for gated or private models (kept in the
    /// secret store); empty: the `HF_TOKEN` environment variable, if set.
    #[serde(skip)]
    pub hub_token: Secret,
}

impl Default for RlConfig {
    fn default() -> Self {
        RlConfig {
            base_url: String::new(),
            model: String::new(),
            lora_rank: 32,
            batch_size: 4,
            learning_rate: 1e-4,
            loss: "importance_sampling".into(),
            save_every: 5,
            resume_from: String::new(),
            tokenizer: String::new(),
            hub_url: String::new(),
            max_tokens: 2048,
            api_key: Secret::default(),
            hub_token: Secret::default(),
        }
    }
}

impl Config {
    /// Whether the slow loop runs: always in `rl`, in `auto` once the
    /// training service is configured.
    pub fn trains(&self) -> bool {
        match self.mode {
            Mode::SkillsOnly => false,
            Mode::Rl => true,
            Mode::Auto => self.rl_configured(),
        }
    }

    /// `rl.base_url`, `rl.model` and `rl.tokenizer` are all set.
    pub fn rl_configured(&self) -> bool {
        let rl = &self.rl;
        [&rl.base_url, &rl.model, &rl.tokenizer]
            .iter()
            .all(|value| !value.trim().is_empty())
    }

    /// Why the slow loop does not run, in words; `None` when it does.
    pub fn why_not_training(&self) -> Option<&'static str> {
        match self.mode {
            _ if self.trains() => None,
            Mode::SkillsOnly => Some("off in skills_only mode (set mode to auto or rl)"),
            _ => {
                Some("waiting for the training service: set rl.base_url, rl.model and rl.tokenizer")
            }
        }
    }

    pub(super) fn validate_rl(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, allowed: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                allowed: allowed.to_string(),
            })
        };
        let rl = &self.rl;
        // Only `rl` demands them up front: `auto` starts training once all
        // three are set, so they can be set one at a time.
        let required = self.mode == Mode::Rl;
        if required && rl.base_url.trim().is_empty() {
            return invalid(
                "rl.base_url",
                "the training service's URL when mode is rl (set rl.base_url first)",
            );
        }
        if !rl.base_url.is_empty() {
            match reqwest::Url::parse(&rl.base_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => {
                    return invalid(
                        "rl.base_url",
                        "an http:// or https:// URL of a Tinker-compatible service",
                    )
                }
            }
        }
        if required && rl.model.trim().is_empty() {
            return invalid(
                "rl.model",
                "the base model's name (such as Qwen/Qwen3-4B-Instruct-2507) when mode is rl",
            );
        }
        if required && rl.tokenizer.trim().is_empty() {
            return invalid(
                "rl.tokenizer",
                "the base model's tokenizer when mode is rl: a local folder with \
                 tokenizer.json and tokenizer_config.json, or a model id such as \
                 Qwen/Qwen3-4B-Instruct-2507 (downloaded once from rl.hub_url)",
            );
        }
        if !rl.hub_url.is_empty() {
            match reqwest::Url::parse(&rl.hub_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => return invalid(
                    "rl.hub_url",
                    "an http:// or https:// URL of a model hub such as https://huggingface.co, \
                         or empty for HF_ENDPOINT or https://huggingface.co",
                ),
            }
        }
        if !(1..=1_000_000).contains(&rl.max_tokens) {
            return invalid(
                "rl.max_tokens",
                "a whole number of tokens from 1 to 1000000",
            );
        }
        if !(1..=512).contains(&rl.lora_rank) {
            return invalid("rl.lora_rank", "a whole number from 1 to 512");
        }
        if !(1..=1024).contains(&rl.batch_size) {
            return invalid("rl.batch_size", "a whole number from 1 to 1024");
        }
        if !(rl.learning_rate > 0.0 && rl.learning_rate <= 1.0) {
            return invalid("rl.learning_rate", "a number greater than 0 and at most 1");
        }
        if !LOSSES.contains(&rl.loss.as_str()) {
            return invalid("rl.loss", "one of importance_sampling, ppo, cispo");
        }
        if !(1..=1_000_000).contains(&rl.save_every) {
            return invalid("rl.save_every", "a whole number of steps from 1 to 1000000");
        }
        if !rl.resume_from.is_empty() && !rl.resume_from.starts_with("tinker://") {
            return invalid(
                "rl.resume_from",
                "a checkpoint path such as tinker://…/weights/step-000005, or empty",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation_naming_the_key() {
        let config = Config::default();
        let rl = &config.rl;
        assert_eq!((rl.lora_rank, rl.batch_size, rl.save_every), (32, 4, 5));
        assert_eq!(rl.learning_rate, 1e-4);
        assert_eq!(rl.loss, "importance_sampling");
        config.validate().unwrap();
        for loss in LOSSES {
            loss.parse::<metaclaw_tinker::LossFn>().unwrap();
        }
        // The default is auto, which trains only once the service is set.
        assert_eq!(config.mode, Mode::Auto);
        assert!(!config.trains() && config.why_not_training().is_some());
        let mut training = config.clone();
        training.mode = Mode::Rl;
        training.rl.base_url = "http://127.0.0.1:8000".into();
        training.rl.model = "Qwen/Qwen3-4B-Instruct-2507".into();
        training.rl.tokenizer = "/models/qwen3".into();
        training.validate().unwrap();
        assert_eq!(config.rl.max_tokens, 2048);
        for (key, edit) in [
            (
                "rl.base_url",
                (|c: &mut Config| c.rl.base_url.clear()) as fn(&mut Config),
            ),
            ("rl.base_url", |c| c.rl.base_url = "ftp://x".into()),
            ("rl.model", |c| c.rl.model = " ".into()),
            ("rl.tokenizer", |c| c.rl.tokenizer.clear()),
            ("rl.hub_url", |c| c.rl.hub_url = "huggingface.co".into()),
            ("rl.max_tokens", |c| c.rl.max_tokens = 0),
            ("rl.lora_rank", |c| c.rl.lora_rank = 0),
            ("rl.batch_size", |c| c.rl.batch_size = 0),
            ("rl.learning_rate", |c| c.rl.learning_rate = f64::NAN),
            ("rl.learning_rate", |c| c.rl.learning_rate = 0.0),
            ("rl.loss", |c| c.rl.loss = "sft".into()),
            ("rl.save_every", |c| c.rl.save_every = 0),
            ("rl.resume_from", |c| c.rl.resume_from = "/tmp/x".into()),
        ] {
            let mut bad = training.clone();
            edit(&mut bad);
            let message = bad.validate().unwrap_err().to_string();
            assert!(message.starts_with(key), "{message}");
        }
        // Auto trains once all three are set, and accepts them one at a time.
        let mut auto = training.clone();
        auto.mode = Mode::Auto;
        assert!(auto.trains() && auto.why_not_training().is_none());
        auto.rl.model.clear();
        auto.validate().unwrap();
        assert!(!auto.trains());
        let mut skills_only = training.clone();
        skills_only.mode = Mode::SkillsOnly;
        assert!(!skills_only.trains());
    }
}
