//! The skill curator: a background job that keeps the library healthy. It
//! disables skills whose turns score clearly below comparable turns without
//! them, and merges near-duplicate evolved skills, in the training
//! scheduler's windows, at most once per `curator.interval_hours`.
//!
//! `plan` decides (pure, and where the rules are documented), `run` applies
//! a plan one safe step at a time and records it, `worker` waits for the
//! scheduler's windows. Disabled skills stay on disk with the reason in
//! their front matter (`status: disabled`, `disabled_reason`), are never
//! injected, and come back with `metaclaw skills enable`.

mod plan;
mod run;
mod worker;

use std::time::Duration;

pub use plan::{harm, plan, Action, Evidence, Rules};
pub use run::{run_once, RunReport, MERGED_FROM_KEY};
pub use worker::{run, WORKER};

use crate::config::CuratorConfig;

/// The curator with its settings, ready for [`run`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Curator {
    pub rules: Rules,
    /// Rest between runs.
    pub interval: Duration,
}

impl Curator {
    pub fn from_config(config: &CuratorConfig) -> Curator {
        Curator {
            rules: Rules {
                min_uses: config.min_uses,
                harm_margin: config.harm_margin,
                merge_similarity: config.merge_similarity,
            },
            interval: Duration::try_from_secs_f64(config.interval_hours * 3600.0)
                .unwrap_or(Duration::from_secs(24 * 3600)),
        }
    }
}
