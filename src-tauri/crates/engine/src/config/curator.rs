//! `curator.*`: the background job that merges near-duplicate skills and
//! disables skills that clearly hurt.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// The skill curator. It runs in the training scheduler's windows (the user
/// is away), at most once per `interval_hours`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CuratorConfig {
    pub enabled: bool,
    /// A skill is judged for harm only after this many scored turns with it
    /// (and as many comparable turns without it).
    pub min_uses: u64,
    /// A skill whose turns score at least this much below comparable turns
    /// without it (scores are +1 / 0 / -1) is disabled.
    pub harm_margin: f64,
    /// Token-set Jaccard similarity (description and body) at or above
    /// which two active skills are near-duplicates.
    pub merge_similarity: f64,
    /// At most one run per this many hours.
    pub interval_hours: f64,
}

impl Default for CuratorConfig {
    fn default() -> Self {
        CuratorConfig {
            enabled: true,
            min_uses: 10,
            harm_margin: 0.3,
            // The evolver's own duplicate threshold: what it would have
            // refused to add twice, the curator merges.
            merge_similarity: crate::evolve::DUPLICATE_SIMILARITY,
            interval_hours: 24.0,
        }
    }
}

impl Config {
    pub(super) fn validate_curator(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, allowed: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                allowed: allowed.to_string(),
            })
        };
        let curator = &self.curator;
        if !(1..=1_000_000).contains(&curator.min_uses) {
            return invalid("curator.min_uses", "a whole number from 1 to 1000000");
        }
        if !(curator.harm_margin > 0.0 && curator.harm_margin <= 2.0) {
            return invalid(
                "curator.harm_margin",
                "a score difference greater than 0 and at most 2 (scores are +1, 0 or -1)",
            );
        }
        if !(0.5..=1.0).contains(&curator.merge_similarity) {
            return invalid(
                "curator.merge_similarity",
                "a similarity from 0.5 to 1 (1 merges only skills with the very same words)",
            );
        }
        if !(curator.interval_hours > 0.0 && curator.interval_hours <= 8_760.0) {
            return invalid(
                "curator.interval_hours",
                "a number of hours greater than 0 and at most 8760 (a year)",
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
        let curator = &config.curator;
        assert!(curator.enabled);
        assert_eq!((curator.min_uses, curator.harm_margin), (10, 0.3));
        assert_eq!(
            (curator.merge_similarity, curator.interval_hours),
            (0.8, 24.0)
        );
        config.validate().unwrap();
        for (key, edit) in [
            (
                "curator.min_uses",
                (|c: &mut Config| c.curator.min_uses = 0) as fn(&mut Config),
            ),
            ("curator.harm_margin", |c| c.curator.harm_margin = 0.0),
            ("curator.harm_margin", |c| c.curator.harm_margin = 2.5),
            ("curator.merge_similarity", |c| {
                c.curator.merge_similarity = 0.2
            }),
            ("curator.merge_similarity", |c| {
                c.curator.merge_similarity = 1.1
            }),
            ("curator.interval_hours", |c| c.curator.interval_hours = 0.0),
            ("curator.interval_hours", |c| {
                c.curator.interval_hours = f64::NAN
            }),
        ] {
            let mut bad = config.clone();
            edit(&mut bad);
            let message = bad.validate().unwrap_err().to_string();
            assert!(message.starts_with(key), "{message}");
        }
    }
}
