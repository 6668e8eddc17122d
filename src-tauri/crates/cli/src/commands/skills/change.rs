//! `metaclaw skills approve | reject | disable | enable`: the user's changes
//! to a skill's status. Each writes the SKILL.md front matter, records the
//! change in the store (`skills history` shows it) and, when it changes
//! what can be injected, starts a new skill generation.
//!
//! A running server sees the file through its folder watcher at once, and
//! the new generation the next time it reads it (its next evolution or
//! curator run); turns until then keep the generation it had.

use std::path::Path;
use std::sync::Arc;

use anyhow::bail;
use metaclaw_engine::config::ConfigStore;
use metaclaw_skills::{LibrarySnapshot, Skill, SkillLibrary, SkillStatus};
use metaclaw_store::{CurationAction, CurationActor, CurationRecord, Store};

use crate::output::outln;

pub fn approve(store: &ConfigStore, library: &SkillLibrary, name: &str) -> anyhow::Result<()> {
    let skill = pending(&library.snapshot(), name, library.dir())?;
    let mut active: Skill = Skill::clone(&skill);
    active.status = SkillStatus::Active;
    library.write_skill(&active)?;
    let generation = record(
        &store.paths().database(),
        change(name, CurationAction::Approved, "approved by the user"),
        true,
    )?;
    outln!(
        "approved {name}: active from now on (skill generation {})",
        generation.unwrap_or_default()
    );
    Ok(())
}

pub fn reject(store: &ConfigStore, library: &SkillLibrary, name: &str) -> anyhow::Result<()> {
    pending(&library.snapshot(), name, library.dir())?;
    library.delete_skill(name)?;
    // Never injected, so the generation stays.
    record(
        &store.paths().database(),
        change(
            name,
            CurationAction::Rejected,
            "rejected by the user: deleted",
        ),
        false,
    )?;
    outln!("rejected {name}: deleted");
    Ok(())
}

pub fn disable(
    store: &ConfigStore,
    library: &SkillLibrary,
    name: &str,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let skill = existing(&library.snapshot(), name, library.dir())?;
    if skill.status == SkillStatus::Disabled {
        bail!(
            "the skill {name:?} is already disabled ({}); `metaclaw skills enable {name}` turns it back on",
            skill.disabled_reason().unwrap_or("no reason given")
        );
    }
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("disabled by the user");
    let mut disabled: Skill = Skill::clone(&skill);
    disabled.disable(reason, CurationActor::User.as_str(), &now_rfc3339());
    library.write_skill(&disabled)?;
    let generation = record(
        &store.paths().database(),
        change(name, CurationAction::Disabled, reason),
        // A pending skill was never injected: nothing changes for requests.
        skill.status == SkillStatus::Active,
    )?;
    match generation {
        Some(generation) => outln!(
            "disabled {name}: kept on disk, no longer injected (skill generation {generation}); `metaclaw skills enable {name}` undoes it"
        ),
        None => outln!("disabled {name}: kept on disk, never injected"),
    }
    Ok(())
}

pub fn enable(store: &ConfigStore, library: &SkillLibrary, name: &str) -> anyhow::Result<()> {
    let skill = existing(&library.snapshot(), name, library.dir())?;
    match skill.status {
        SkillStatus::Active => bail!("the skill {name:?} is already active"),
        SkillStatus::Pending => bail!(
            "the skill {name:?} is pending review; `metaclaw skills approve {name}` activates it"
        ),
        SkillStatus::Disabled => {}
    }
    let reason = match skill.disabled_reason() {
        Some(was) => format!("enabled by the user (it was disabled: {was})"),
        None => "enabled by the user".to_owned(),
    };
    let mut enabled: Skill = Skill::clone(&skill);
    enabled.enable();
    library.write_skill(&enabled)?;
    let generation = record(
        &store.paths().database(),
        change(name, CurationAction::Enabled, &reason),
        true,
    )?;
    outln!(
        "enabled {name}: injected again from now on (skill generation {})",
        generation.unwrap_or_default()
    );
    Ok(())
}

fn existing(snapshot: &LibrarySnapshot, name: &str, dir: &Path) -> anyhow::Result<Arc<Skill>> {
    metaclaw_skills::validate_name(name)?;
    snapshot
        .get(name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no skill named {name:?} in {}", dir.display()))
}

/// The pending skill `name`; approving or rejecting anything else is refused.
fn pending(snapshot: &LibrarySnapshot, name: &str, dir: &Path) -> anyhow::Result<Arc<Skill>> {
    let skill = existing(snapshot, name, dir)?;
    if skill.status != SkillStatus::Pending {
        bail!(
            "the skill {name:?} is {}, not pending review; only pending skills can be approved or rejected",
            skill.status
        );
    }
    Ok(skill)
}

fn change(name: &str, action: CurationAction, reason: &str) -> CurationRecord {
    CurationRecord::new(
        chrono::Utc::now().timestamp_millis(),
        name,
        action,
        CurationActor::User,
        reason,
    )
}

/// Records the change and, with `bump`, starts a new skill generation
/// (returned) in the store.
fn record(database: &Path, mut change: CurationRecord, bump: bool) -> anyhow::Result<Option<i64>> {
    let store = Store::open(database)?;
    let generation = if bump {
        let generation = store.reader()?.skill_generation()? + 1;
        store.set_skill_generation(generation);
        Some(generation)
    } else {
        None
    };
    change.skill_generation = generation;
    store.record_curation(change);
    // Commits what was queued and waits for the writer.
    store.close();
    Ok(generation)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
