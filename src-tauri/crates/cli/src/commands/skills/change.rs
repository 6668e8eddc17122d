//! `metaclaw skills approve | reject | disable | enable`: the user's changes
//! to a skill's status, through the engine's skill actions (the same ones
//! the dashboard and the tray use).
//!
//! A running server sees the file through its folder watcher at once, and
//! the new generation the next time it reads it (its next evolution or
//! curator run); turns until then keep the generation it had.

use metaclaw_engine::config::ConfigStore;
use metaclaw_engine::skill_actions::{SkillActionError, SkillActions, SkillChange};
use metaclaw_skills::SkillLibrary;
use metaclaw_store::Store;

use crate::output::outln;

pub fn approve(store: &ConfigStore, library: &SkillLibrary, name: &str) -> anyhow::Result<()> {
    act(store, library, |actions| actions.approve(name))
}

pub fn reject(store: &ConfigStore, library: &SkillLibrary, name: &str) -> anyhow::Result<()> {
    act(store, library, |actions| actions.reject(name))
}

pub fn disable(
    store: &ConfigStore,
    library: &SkillLibrary,
    name: &str,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    act(store, library, |actions| actions.disable(name, reason))
}

pub fn enable(store: &ConfigStore, library: &SkillLibrary, name: &str) -> anyhow::Result<()> {
    act(store, library, |actions| actions.enable(name))
}

/// Runs one action with the store open, prints what it did.
fn act(
    config: &ConfigStore,
    library: &SkillLibrary,
    action: impl FnOnce(&SkillActions<'_>) -> Result<SkillChange, SkillActionError>,
) -> anyhow::Result<()> {
    let store = Store::open(&config.paths().database())?;
    let result = action(&SkillActions {
        library,
        store: &store,
        trash: config.paths().skill_trash_dir(),
        proxy: None,
    });
    // Commits what was queued and waits for the writer.
    store.close();
    outln!("{}", result?.message);
    Ok(())
}
