//! `opd.*`: optional on-policy distillation for the slow loop. A teacher
//! model (an OpenAI-compatible completions endpoint such as vLLM serving a
//! larger model with the same tokenizer) scores the tokens the policy
//! sampled, and each training step pulls the policy towards the teacher
//! with a per-token reverse-KL penalty (`metaclaw_policy::reverse_kl_advantages`).

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};
use crate::secret::Secret;

/// On-policy distillation from a teacher model; off while `teacher_url` is
/// empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpdConfig {
    /// The teacher's OpenAI-compatible API root (requests go to
    /// `{teacher_url}/completions`); empty turns distillation off.
    pub teacher_url: String,
    /// The teacher model's name; required with `teacher_url`. It must use
    /// the policy's tokenizer: it is sent the policy's token ids.
    pub teacher_model: String,
    /// The weight of the reverse-KL penalty in the per-token advantages.
    pub kl_coef: f64,
    /// Longest wait for the teacher's log-probs of one turn.
    pub timeout_secs: f64,
    /// Kept in the secret store.
    #[serde(skip)]
    pub api_key: Secret,
}

impl Default for OpdConfig {
    fn default() -> Self {
        OpdConfig {
            teacher_url: String::new(),
            teacher_model: String::new(),
            kl_coef: 1.0,
            timeout_secs: 120.0,
            api_key: Secret::default(),
        }
    }
}

impl OpdConfig {
    /// Whether a teacher is configured.
    pub fn enabled(&self) -> bool {
        !self.teacher_url.trim().is_empty()
    }
}

impl Config {
    pub(super) fn validate_opd(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, allowed: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                allowed: allowed.to_string(),
            })
        };
        let opd = &self.opd;
        if opd.enabled() {
            match reqwest::Url::parse(opd.teacher_url.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => {
                    return invalid(
                        "opd.teacher_url",
                        "an http:// or https:// URL of an OpenAI-compatible API such as \
                         http://127.0.0.1:8000/v1, or empty to turn distillation off",
                    )
                }
            }
            if opd.teacher_model.trim().is_empty() {
                return invalid(
                    "opd.teacher_model",
                    "the teacher model's name when opd.teacher_url is set (set opd.teacher_model first)",
                );
            }
        }
        if !(opd.kl_coef.is_finite() && (0.0..=100.0).contains(&opd.kl_coef)) {
            return invalid("opd.kl_coef", "a number from 0 to 100");
        }
        if !(opd.timeout_secs > 0.0 && opd.timeout_secs <= 3_600.0) {
            return invalid(
                "opd.timeout_secs",
                "a number of seconds greater than 0 and at most 3600",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_validation_names_the_key() {
        let config = Config::default();
        assert!(!config.opd.enabled());
        assert_eq!(config.opd.kl_coef, 1.0);
        config.validate().unwrap();
        let mut on = config.clone();
        on.opd.teacher_url = "http://127.0.0.1:8000/v1".into();
        on.opd.teacher_model = "Qwen/Qwen3-32B".into();
        on.validate().unwrap();
        for (key, edit) in [
            (
                "opd.teacher_url",
                (|c: &mut Config| c.opd.teacher_url = "teacher.local".into()) as fn(&mut Config),
            ),
            ("opd.teacher_model", |c| c.opd.teacher_model = " ".into()),
            ("opd.kl_coef", |c| c.opd.kl_coef = -0.5),
            ("opd.kl_coef", |c| c.opd.kl_coef = f64::INFINITY),
            ("opd.timeout_secs", |c| c.opd.timeout_secs = 0.0),
        ] {
            let mut bad = on.clone();
            edit(&mut bad);
            let message = bad.validate().unwrap_err().to_string();
            assert!(message.starts_with(key), "{message}");
        }
        // Without a teacher the model may stay empty.
        let mut off = config;
        off.opd.teacher_model.clear();
        off.validate().unwrap();
    }
}
