//! One module per top-level command.

pub mod calendar;
pub mod config;
pub mod dashboard;
pub mod schedule;
pub mod serve;
pub mod sessions;
pub mod skills;
pub mod status;
pub mod train;

use metaclaw_engine::config::ConfigStore;
use metaclaw_engine::paths::AppPaths;

/// Resolves the paths and loads the configuration every command starts from.
pub fn load() -> anyhow::Result<ConfigStore> {
    let paths = AppPaths::resolve()?;
    Ok(ConfigStore::open(&paths)?)
}
