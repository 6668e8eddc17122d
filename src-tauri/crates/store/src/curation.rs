//! What was done to skills after they were written: the curator's merges
//! and disables, and the user's disable, enable, approve, reject, edit and
//! delete. Each
//! action is one row; `metaclaw skills history` reads them back.

use std::fmt;
use std::str::FromStr;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::{StoreError, StoreReader};

/// What happened to a skill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurationAction {
    /// A near-duplicate of `into_skill`: what was new in it went there, and
    /// it was disabled.
    Merged,
    Disabled,
    Enabled,
    /// A pending skill became active.
    Approved,
    /// A pending skill was deleted.
    Rejected,
    /// The user rewrote the SKILL.md.
    Edited,
    /// The user deleted the skill (its folder went to the trash).
    Deleted,
}

impl CurationAction {
    /// The text stored in the database and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CurationAction::Merged => "merged",
            CurationAction::Disabled => "disabled",
            CurationAction::Enabled => "enabled",
            CurationAction::Approved => "approved",
            CurationAction::Rejected => "rejected",
            CurationAction::Edited => "edited",
            CurationAction::Deleted => "deleted",
        }
    }
}

impl fmt::Display for CurationAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CurationAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "merged" => Ok(CurationAction::Merged),
            "disabled" => Ok(CurationAction::Disabled),
            "enabled" => Ok(CurationAction::Enabled),
            "approved" => Ok(CurationAction::Approved),
            "rejected" => Ok(CurationAction::Rejected),
            "edited" => Ok(CurationAction::Edited),
            "deleted" => Ok(CurationAction::Deleted),
            other => Err(other.to_owned()),
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurationActor {
    Curator,
    User,
}

impl CurationActor {
    pub fn as_str(self) -> &'static str {
        match self {
            CurationActor::Curator => "curator",
            CurationActor::User => "user",
        }
    }
}

impl fmt::Display for CurationActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CurationActor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "curator" => Ok(CurationActor::Curator),
            "user" => Ok(CurationActor::User),
            other => Err(other.to_owned()),
        }
    }
}

/// One action on one skill, as recorded and read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurationRecord {
    pub at_ms: i64,
    pub skill_name: String,
    pub action: CurationAction,
    /// For `merged`: the skill it was merged into.
    pub into_skill: Option<String>,
    /// Why, in words.
    pub reason: String,
    pub actor: CurationActor,
    /// The scheduler work row of the curator run; `None` for the user.
    pub work_id: Option<String>,
    /// The skill generation the change took effect in.
    pub skill_generation: Option<i64>,
    /// The evidence decided on: scored turns with the skill, their mean
    /// score, and the mean score of comparable turns without it.
    pub uses: Option<u64>,
    pub mean_score: Option<f64>,
    pub baseline_score: Option<f64>,
}

impl CurationRecord {
    /// A record with no work id, generation or evidence.
    pub fn new(
        at_ms: i64,
        skill_name: impl Into<String>,
        action: CurationAction,
        actor: CurationActor,
        reason: impl Into<String>,
    ) -> CurationRecord {
        CurationRecord {
            at_ms,
            skill_name: skill_name.into(),
            action,
            into_skill: None,
            reason: reason.into(),
            actor,
            work_id: None,
            skill_generation: None,
            uses: None,
            mean_score: None,
            baseline_score: None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "the curation `{}` of skill {}",
            self.action, self.skill_name
        )
    }
}

pub(crate) fn apply(conn: &Connection, c: &CurationRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO curations (at_ms, skill_name, action, into_skill, reason, actor, work_id,
                                skill_generation, uses, mean_score, baseline_score)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        c.at_ms,
        c.skill_name,
        c.action.as_str(),
        c.into_skill,
        c.reason,
        c.actor.as_str(),
        c.work_id,
        c.skill_generation,
        c.uses,
        c.mean_score,
        c.baseline_score,
    ])?;
    Ok(())
}

impl StoreReader {
    /// What was done to `name` and what was merged into it, oldest first.
    pub fn curations_of(&self, name: &str) -> Result<Vec<CurationRecord>, StoreError> {
        let what = "read a skill's curation history";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT at_ms, skill_name, action, into_skill, reason, actor, work_id,
                        skill_generation, uses, mean_score, baseline_score
                 FROM curations WHERE skill_name = ?1 OR into_skill = ?1
                 ORDER BY at_ms, id",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([name], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, Option<i64>>(7)?,
                    row.get::<_, Option<u64>>(8)?,
                    row.get::<_, Option<f64>>(9)?,
                    row.get::<_, Option<f64>>(10)?,
                ))
            })
            .map_err(|e| self.fail(what, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (
                at_ms,
                skill_name,
                action,
                into_skill,
                reason,
                actor,
                work_id,
                generation,
                uses,
                mean,
                baseline,
            ) = row.map_err(|e| self.fail(what, e))?;
            let action = action
                .parse()
                .map_err(|value| self.invalid("curations.action", value))?;
            let actor = actor
                .parse()
                .map_err(|value| self.invalid("curations.actor", value))?;
            out.push(CurationRecord {
                at_ms,
                skill_name,
                action,
                into_skill,
                reason,
                actor,
                work_id,
                skill_generation: generation,
                uses,
                mean_score: mean,
                baseline_score: baseline,
            });
        }
        Ok(out)
    }

    /// When `worker` last finished a run in a scheduler window (ms since the
    /// epoch), so a periodic job keeps its period across restarts.
    pub fn last_finished_work(&self, worker: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT max(ended_at_ms) FROM schedule_work WHERE worker = ?1 AND outcome = 'finished'",
                [worker],
                |row| row.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.fail("read when a worker last finished", e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::{ScheduleRecord, Store};

    #[test]
    fn action_and_actor_text_matches_serde() {
        for action in [
            CurationAction::Merged,
            CurationAction::Disabled,
            CurationAction::Enabled,
            CurationAction::Approved,
            CurationAction::Rejected,
        ] {
            assert_eq!(
                serde_json::to_value(action).unwrap(),
                serde_json::Value::from(action.as_str())
            );
            assert_eq!(action.as_str().parse::<CurationAction>(), Ok(action));
        }
        for actor in [CurationActor::Curator, CurationActor::User] {
            assert_eq!(actor.as_str().parse::<CurationActor>(), Ok(actor));
        }
        assert!("Merged".parse::<CurationAction>().is_err());
    }

    #[tokio::test]
    async fn curations_read_back_for_the_skill_and_its_merge_target() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let mut merged = CurationRecord::new(
            2_000,
            "dates-b",
            CurationAction::Merged,
            CurationActor::Curator,
            "near-duplicate of dates-a",
        );
        merged.into_skill = Some("dates-a".into());
        merged.work_id = Some("work-1".into());
        merged.skill_generation = Some(3);
        let mut hurt = CurationRecord::new(
            3_000,
            "dates-a",
            CurationAction::Disabled,
            CurationActor::Curator,
            "hurts",
        );
        hurt.uses = Some(12);
        hurt.mean_score = Some(-0.5);
        hurt.baseline_score = Some(0.25);
        store.record_curation(CurationRecord::new(
            1_000,
            "dates-a",
            CurationAction::Approved,
            CurationActor::User,
            "approved by the user",
        ));
        store.record_curation(hurt.clone());
        store.record_curation(merged.clone());
        store.record_curation(CurationRecord::new(
            4_000,
            "other",
            CurationAction::Disabled,
            CurationActor::User,
            "not needed",
        ));
        store.flush().await.unwrap();

        let reader = store.reader().unwrap();
        let history = reader.curations_of("dates-a").unwrap();
        let actions: Vec<_> = history.iter().map(|c| (c.at_ms, c.action)).collect();
        assert_eq!(
            actions,
            [
                (1_000, CurationAction::Approved),
                (2_000, CurationAction::Merged),
                (3_000, CurationAction::Disabled)
            ]
        );
        assert_eq!(history[1], merged);
        assert_eq!(history[2], hurt);
        assert_eq!(reader.curations_of("dates-b").unwrap(), [merged]);
        assert!(reader.curations_of("none").unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_last_finished_run_of_a_worker() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let reader = store.reader().unwrap();
        assert_eq!(reader.last_finished_work("curator").unwrap(), None);
        store.record_schedule(ScheduleRecord::WindowOpened {
            id: "w".into(),
            opened_at_ms: 0,
            triggers: "manual".into(),
            expected_end_ms: None,
        });
        for (id, worker, start, outcome) in [
            ("k1", "curator", 1_000, "finished"),
            ("k2", "curator", 5_000, "paused"),
            ("k3", "trainer", 9_000, "finished"),
        ] {
            store.record_schedule(ScheduleRecord::WorkStarted {
                id: id.into(),
                window_id: "w".into(),
                worker: worker.into(),
                started_at_ms: start,
            });
            store.record_schedule(ScheduleRecord::WorkEnded {
                id: id.into(),
                ended_at_ms: start + 100,
                outcome: outcome.into(),
                summary: String::new(),
            });
        }
        store.flush().await.unwrap();
        assert_eq!(reader.last_finished_work("curator").unwrap(), Some(1_100));
        assert_eq!(reader.last_finished_work("trainer").unwrap(), Some(9_100));
    }
}
