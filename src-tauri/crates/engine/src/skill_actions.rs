//! The user's actions on skills (approve, reject, disable, enable, edit,
//! delete) and what is known about one skill (where it came from, what
//! happened to it). The CLI, the JSON API and the tray call these same
//! functions.
//!
//! Each action writes the SKILL.md (or moves its folder to the trash),
//! records the change in the store (`skills history` shows it) and, when
//! it changes what can be injected, starts a new skill generation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use metaclaw_skills::{Skill, SkillError, SkillLibrary, SkillOrigin, SkillStatus};
use metaclaw_store::{
    CurationAction, CurationActor, CurationRecord, EvolvedSkillOutcome, SkillEvolution, Store,
    StoreError, StoreReader,
};
use serde::Serialize;

use crate::proxy::ProxyState;

#[derive(Debug, thiserror::Error)]
pub enum SkillActionError {
    /// The name is not a slug.
    #[error(transparent)]
    InvalidName(SkillError),
    #[error("no skill named `{name}` in {}", dir.display())]
    NotFound { name: String, dir: PathBuf },
    /// The skill is not in a state the action applies to.
    #[error("{0}")]
    Conflict(String),
    /// The new SKILL.md text does not parse; nothing was written.
    #[error("{0}")]
    Invalid(String),
    #[error("skill library: {0}")]
    Skills(SkillError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// What an action did, for the CLI's line and the API's answer.
#[derive(Debug, Clone)]
pub struct SkillChange {
    pub name: String,
    pub action: CurationAction,
    /// The new skill generation, when the change altered what is injected.
    pub generation: Option<i64>,
    /// What happened, in words.
    pub message: String,
}

/// The skill library, the store and (inside a server) the proxy, on which
/// the actions work.
pub struct SkillActions<'a> {
    pub library: &'a SkillLibrary,
    pub store: &'a Store,
    /// Where deleted and rejected skills go (`AppPaths::skill_trash_dir`).
    pub trash: PathBuf,
    /// The serving proxy, so a new generation tags its next turns at once.
    pub proxy: Option<&'a ProxyState>,
}

impl SkillActions<'_> {
    /// Activates a pending skill.
    pub fn approve(&self, name: &str) -> Result<SkillChange, SkillActionError> {
        let skill = self.pending(name)?;
        let mut active = Skill::clone(&skill);
        active.status = SkillStatus::Active;
        self.library
            .write_skill(&active)
            .map_err(SkillActionError::Skills)?;
        let generation =
            self.record(name, CurationAction::Approved, "approved by the user", true)?;
        Ok(SkillChange {
            name: name.to_owned(),
            action: CurationAction::Approved,
            message: format!(
                "approved {name}: active from now on (skill generation {})",
                generation.unwrap_or_default()
            ),
            generation,
        })
    }

    /// Removes a pending skill without activating it (to the trash).
    pub fn reject(&self, name: &str) -> Result<SkillChange, SkillActionError> {
        self.pending(name)?;
        let moved = self.to_trash(name)?;
        // Never injected, so the generation stays.
        self.record(
            name,
            CurationAction::Rejected,
            "rejected by the user: deleted",
            false,
        )?;
        Ok(SkillChange {
            name: name.to_owned(),
            action: CurationAction::Rejected,
            generation: None,
            message: format!("rejected {name}: deleted (moved to {})", moved.display()),
        })
    }

    /// Stops injecting a skill; its file stays, with the reason.
    pub fn disable(
        &self,
        name: &str,
        reason: Option<&str>,
    ) -> Result<SkillChange, SkillActionError> {
        let skill = self.existing(name)?;
        if skill.status == SkillStatus::Disabled {
            return Err(SkillActionError::Conflict(format!(
                "the skill `{name}` is already disabled ({}); enabling it turns it back on",
                skill.disabled_reason().unwrap_or("no reason given")
            )));
        }
        let reason = reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or("disabled by the user");
        let mut disabled = Skill::clone(&skill);
        disabled.disable(reason, CurationActor::User.as_str(), &now_rfc3339());
        self.library
            .write_skill(&disabled)
            .map_err(SkillActionError::Skills)?;
        // A pending skill was never injected: nothing changes for requests.
        let generation = self.record(
            name,
            CurationAction::Disabled,
            reason,
            skill.status == SkillStatus::Active,
        )?;
        let message = match generation {
            Some(generation) => format!(
                "disabled {name}: kept on disk, no longer injected (skill generation {generation}); `metaclaw skills enable {name}` undoes it"
            ),
            None => format!("disabled {name}: kept on disk, never injected"),
        };
        Ok(SkillChange {
            name: name.to_owned(),
            action: CurationAction::Disabled,
            generation,
            message,
        })
    }

    /// Injects a disabled skill again.
    pub fn enable(&self, name: &str) -> Result<SkillChange, SkillActionError> {
        let skill = self.existing(name)?;
        match skill.status {
            SkillStatus::Active => {
                return Err(SkillActionError::Conflict(format!(
                    "the skill `{name}` is already active"
                )))
            }
            SkillStatus::Pending => {
                return Err(SkillActionError::Conflict(format!(
                "the skill `{name}` is pending review; `metaclaw skills approve {name}` activates it"
            )))
            }
            SkillStatus::Disabled => {}
        }
        let reason = match skill.disabled_reason() {
            Some(was) => format!("enabled by the user (it was disabled: {was})"),
            None => "enabled by the user".to_owned(),
        };
        let mut enabled = Skill::clone(&skill);
        enabled.enable();
        self.library
            .write_skill(&enabled)
            .map_err(SkillActionError::Skills)?;
        let generation = self.record(name, CurationAction::Enabled, &reason, true)?;
        Ok(SkillChange {
            name: name.to_owned(),
            action: CurationAction::Enabled,
            message: format!(
                "enabled {name}: injected again from now on (skill generation {})",
                generation.unwrap_or_default()
            ),
            generation,
        })
    }

    /// Replaces the skill's SKILL.md with `markdown`, which must parse as a
    /// skill of the same name; a skill whose file is broken on disk can be
    /// repaired this way too.
    pub fn edit(&self, name: &str, markdown: &str) -> Result<SkillChange, SkillActionError> {
        metaclaw_skills::validate_name(name).map_err(SkillActionError::InvalidName)?;
        let before = self.library.snapshot().get(name).cloned();
        if before.is_none() && !self.library.dir().join(name).is_dir() {
            return Err(self.not_found(name));
        }
        let written =
            self.library
                .write_skill_text(name, markdown)
                .map_err(|error| match error {
                    SkillError::InvalidName { .. } => SkillActionError::InvalidName(error),
                    SkillError::Io { .. } | SkillError::OutsideLibrary { .. } => {
                        SkillActionError::Skills(error)
                    }
                    other => SkillActionError::Invalid(other.to_string()),
                })?;
        // New text in an injectable skill changes what requests get.
        let injected = written.status == SkillStatus::Active
            || before.is_some_and(|b| b.status == SkillStatus::Active);
        let generation =
            self.record(name, CurationAction::Edited, "edited by the user", injected)?;
        Ok(SkillChange {
            name: name.to_owned(),
            action: CurationAction::Edited,
            message: match generation {
                Some(generation) => format!("saved {name} (skill generation {generation})"),
                None => format!("saved {name}"),
            },
            generation,
        })
    }

    /// Moves the skill's folder to the trash.
    pub fn delete(&self, name: &str) -> Result<SkillChange, SkillActionError> {
        metaclaw_skills::validate_name(name).map_err(SkillActionError::InvalidName)?;
        let was_active = self
            .library
            .snapshot()
            .get(name)
            .is_some_and(|s| s.status == SkillStatus::Active);
        let moved = self.to_trash(name)?;
        let generation = self.record(
            name,
            CurationAction::Deleted,
            &format!("deleted by the user (moved to {})", moved.display()),
            was_active,
        )?;
        Ok(SkillChange {
            name: name.to_owned(),
            action: CurationAction::Deleted,
            generation,
            message: format!("deleted {name} (moved to {})", moved.display()),
        })
    }

    fn to_trash(&self, name: &str) -> Result<PathBuf, SkillActionError> {
        // Millisecond time plus a random part: unique even for the same
        // name deleted twice in a row.
        let suffix = format!(
            "{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        self.library
            .move_skill_to(name, &self.trash, &suffix)
            .map_err(|error| match error {
                SkillError::NotFound { .. } => self.not_found(name),
                other => SkillActionError::Skills(other),
            })
    }

    fn existing(&self, name: &str) -> Result<Arc<Skill>, SkillActionError> {
        metaclaw_skills::validate_name(name).map_err(SkillActionError::InvalidName)?;
        self.library
            .snapshot()
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))
    }

    /// The pending skill `name`; approving or rejecting anything else is refused.
    fn pending(&self, name: &str) -> Result<Arc<Skill>, SkillActionError> {
        let skill = self.existing(name)?;
        if skill.status != SkillStatus::Pending {
            return Err(SkillActionError::Conflict(format!(
                "the skill `{name}` is {}, not pending review; only pending skills can be approved or rejected",
                skill.status
            )));
        }
        Ok(skill)
    }

    fn not_found(&self, name: &str) -> SkillActionError {
        SkillActionError::NotFound {
            name: name.to_owned(),
            dir: self.library.dir().to_path_buf(),
        }
    }

    /// Records the change and, with `bump`, starts a new skill generation
    /// (returned): past the store's and the serving proxy's, whichever is
    /// newer.
    fn record(
        &self,
        name: &str,
        action: CurationAction,
        reason: &str,
        bump: bool,
    ) -> Result<Option<i64>, SkillActionError> {
        let generation = if bump {
            let stored = self.store.reader()?.skill_generation()?;
            let live = self.proxy.map_or(0, ProxyState::skill_generation);
            let generation = stored.max(live) + 1;
            self.store.set_skill_generation(generation);
            if let Some(proxy) = self.proxy {
                proxy.set_skill_generation(generation);
            }
            Some(generation)
        } else {
            None
        };
        let mut change = CurationRecord::new(
            chrono::Utc::now().timestamp_millis(),
            name,
            action,
            CurationActor::User,
            reason,
        );
        change.skill_generation = generation;
        self.store.record_curation(change);
        Ok(generation)
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Where a skill came from, as its front matter says.
#[derive(Debug, Clone, Serialize)]
pub struct SkillProvenance {
    pub origin: SkillOrigin,
    pub evolution_id: Option<String>,
    pub session_id: Option<String>,
    pub turns: Vec<i64>,
    pub model: Option<String>,
    pub at: Option<String>,
}

impl SkillProvenance {
    pub fn of(skill: &Skill) -> SkillProvenance {
        // The front matter's other keys, read as JSON.
        let extra = serde_json::to_value(&skill.extra).unwrap_or_default();
        let text = |key: &str| extra.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let turns = extra
            .get("evolved_from_turns")
            .and_then(|v| v.as_array())
            .map(|ids| ids.iter().filter_map(|id| id.as_i64()).collect())
            .unwrap_or_default();
        SkillProvenance {
            origin: skill.origin,
            evolution_id: text("evolution_id"),
            session_id: text("evolved_from_session"),
            turns,
            model: text("evolver_model"),
            at: text("evolved_at"),
        }
    }

    pub fn describe(&self) -> String {
        match self.origin {
            SkillOrigin::Bundled => "a starter skill shipped with MetaClaw, unchanged".into(),
            SkillOrigin::User => "written or edited by hand".into(),
            SkillOrigin::Evolved => {
                let mut text = "evolved".to_string();
                if let Some(at) = &self.at {
                    text.push_str(&format!(" at {at}"));
                }
                if let Some(model) = &self.model {
                    text.push_str(&format!(" by {model}"));
                }
                if let Some(session) = &self.session_id {
                    text.push_str(&format!(" from session {session}"));
                }
                if !self.turns.is_empty() {
                    let turns: Vec<String> = self.turns.iter().map(i64::to_string).collect();
                    text.push_str(&format!(" (turns {})", turns.join(", ")));
                }
                if let Some(id) = &self.evolution_id {
                    text.push_str(&format!(", evolution {id}"));
                }
                text
            }
        }
    }
}

/// One thing that happened to a skill.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEvent {
    pub at_ms: i64,
    /// `created`, `extended`, `proposal_dropped` (evolver); `merged_into`,
    /// `merged_from`, `disabled`, `enabled`, `approved`, `rejected`,
    /// `edited`, `deleted`.
    pub event: &'static str,
    /// `evolver`, `curator` or `user`.
    pub by: String,
    pub detail: String,
    /// The other skill of a merge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_skill: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evolution_id: Option<String>,
    /// The skill generation the change took effect in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill_generation: Option<i64>,
}

impl HistoryEvent {
    fn from_evolution(e: SkillEvolution) -> HistoryEvent {
        let source = format!(
            "evolution {} of session {} ({}, {}, {} turns)",
            e.evolution_id,
            e.session_id,
            e.trigger,
            e.model,
            e.support_turns.len()
        );
        let (event, detail) = match e.outcome {
            EvolvedSkillOutcome::Added => ("created", source),
            EvolvedSkillOutcome::Pending => ("created", format!("{source}; pending review")),
            EvolvedSkillOutcome::Merged => (
                "extended",
                format!(
                    "{source} merged a proposal into it ({})",
                    e.detail.as_deref().unwrap_or("no detail")
                ),
            ),
            EvolvedSkillOutcome::Dropped => (
                "proposal_dropped",
                format!(
                    "{source} proposed it again, dropped: {}",
                    e.detail.as_deref().unwrap_or("no reason")
                ),
            ),
        };
        HistoryEvent {
            at_ms: e.finished_at_ms,
            event,
            by: "evolver".into(),
            detail,
            other_skill: None,
            evolution_id: Some(e.evolution_id),
            skill_generation: None,
        }
    }

    fn from_curation(name: &str, c: CurationRecord) -> HistoryEvent {
        let merged_in = c.skill_name != name;
        let event = match c.action {
            _ if merged_in => "merged_from",
            CurationAction::Merged => "merged_into",
            action => action.as_str(),
        };
        // What was merged in is told from the merged skill's side.
        let detail = if merged_in {
            format!("{}: {}", c.skill_name, c.reason)
        } else {
            c.reason
        };
        HistoryEvent {
            at_ms: c.at_ms,
            event,
            by: c.actor.to_string(),
            detail,
            other_skill: if merged_in {
                Some(c.skill_name)
            } else {
                c.into_skill
            },
            evolution_id: None,
            skill_generation: c.skill_generation,
        }
    }
}

/// What the evolver, the curator and the user did to `name`, oldest first.
pub fn history_events(reader: &StoreReader, name: &str) -> Result<Vec<HistoryEvent>, StoreError> {
    let mut events: Vec<HistoryEvent> = reader
        .skill_evolutions(name)?
        .into_iter()
        .map(HistoryEvent::from_evolution)
        .chain(
            reader
                .curations_of(name)?
                .into_iter()
                .map(|c| HistoryEvent::from_curation(name, c)),
        )
        .collect();
    // Stable: within one millisecond, evolutions come before curations.
    events.sort_by_key(|e| e.at_ms);
    Ok(events)
}

/// When the skill's file last changed, from the file system.
pub fn updated_at(path: &Path) -> Option<chrono::DateTime<chrono::Utc>> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(modified.into())
}
