//! A skill's past as the store knows it: the evolutions that proposed or
//! extended it, and every turn it was injected into with its score.

use rusqlite::params;
use serde::Serialize;

use crate::{EvolvedSkillOutcome, StoreError, StoreReader};

/// One evolution that proposed a skill or merged something into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkillEvolution {
    pub evolution_id: String,
    pub session_id: String,
    pub trigger: String,
    pub model: String,
    pub finished_at_ms: i64,
    /// `added` or `pending` (it wrote the skill), `merged` (it added to it)
    /// or `dropped` (it proposed a skill of that name and wrote nothing).
    pub outcome: EvolvedSkillOutcome,
    pub detail: Option<String>,
    /// The turns the evolution read (its support set).
    pub support_turns: Vec<i64>,
}

/// One turn a skill was injected into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkillTurn {
    pub turn_id: i64,
    pub session_id: String,
    pub started_at_ms: i64,
    pub skill_generation: i64,
    /// The PRM score, for scored main turns that completed.
    pub score: Option<i8>,
}

impl StoreReader {
    /// The evolutions that named `name` in their outcome, oldest first.
    pub fn skill_evolutions(&self, name: &str) -> Result<Vec<SkillEvolution>, StoreError> {
        let what = "read the evolutions of a skill";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT e.id, e.session_id, e.trigger, e.model, e.finished_at_ms, s.outcome, s.detail
                 FROM evolution_skills s JOIN evolutions e ON e.id = s.evolution_id
                 WHERE s.skill_name = ?1
                 ORDER BY e.finished_at_ms, e.id, s.position",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([name], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(|e| self.fail(what, e))?;
        let mut support = self
            .conn
            .prepare_cached(
                "SELECT turn_id FROM support_sets WHERE evolution_id = ?1 ORDER BY turn_id",
            )
            .map_err(|e| self.fail(what, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (evolution_id, session_id, trigger, model, finished_at_ms, outcome, detail) =
                row.map_err(|e| self.fail(what, e))?;
            let outcome = outcome
                .parse()
                .map_err(|value| self.invalid("evolution_skills.outcome", value))?;
            let support_turns = support
                .query_map([&evolution_id], |row| row.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>())
                .map_err(|e| self.fail(what, e))?;
            out.push(SkillEvolution {
                evolution_id,
                session_id,
                trigger,
                model,
                finished_at_ms,
                outcome,
                detail,
                support_turns,
            });
        }
        Ok(out)
    }

    /// Every turn `name` was injected into, oldest first, with its score when
    /// it is a scored main turn.
    pub fn skill_turns(&self, name: &str) -> Result<Vec<SkillTurn>, StoreError> {
        let what = "read the turns of a skill";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.id, t.session_id, t.started_at_ms, t.skill_generation,
                        CASE WHEN t.turn_type = 'main' AND t.status = 'complete'
                                  AND j.state = 'scored' THEN j.score END
                 FROM turn_skills s JOIN turns t ON t.id = s.turn_id
                 LEFT JOIN judgements j ON j.turn_id = t.id
                 WHERE s.skill_name = ?1
                 ORDER BY t.started_at_ms, t.id",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map(params![name], |row| {
                Ok(SkillTurn {
                    turn_id: row.get(0)?,
                    session_id: row.get(1)?,
                    started_at_ms: row.get(2)?,
                    skill_generation: row.get(3)?,
                    score: row.get(4)?,
                })
            })
            .map_err(|e| self.fail(what, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::testing::{scored, turn, turn_ids};
    use crate::{EvolutionRecord, EvolvedSkill, EvolvedSkillOutcome, Store, TurnType};

    fn evolution(id: &str, at: i64, skills: Vec<EvolvedSkill>) -> EvolutionRecord {
        EvolutionRecord {
            id: id.into(),
            session_id: "s".into(),
            trigger: "session_end".into(),
            model: "evolver".into(),
            started_at_ms: at - 10,
            finished_at_ms: at,
            error: None,
            skills,
        }
    }

    fn outcome(name: &str, outcome: EvolvedSkillOutcome, detail: Option<&str>) -> EvolvedSkill {
        EvolvedSkill {
            name: name.into(),
            outcome,
            detail: detail.map(Into::into),
        }
    }

    #[tokio::test]
    async fn evolutions_that_wrote_or_extended_a_skill() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        store.record_turn(turn("s", 0, &[]));
        store.record_turn(turn("s", 1, &[]));
        store.flush().await.unwrap();
        let ids = turn_ids(&store.reader().unwrap(), "s");
        store.record_evolution(evolution(
            "e1",
            1_000,
            vec![
                outcome("tz", EvolvedSkillOutcome::Added, None),
                outcome("x", EvolvedSkillOutcome::Dropped, Some("no usable name")),
            ],
        ));
        store.mark_support_set("e1", ids.clone());
        store.record_evolution(evolution(
            "e2",
            2_000,
            vec![outcome(
                "tz",
                EvolvedSkillOutcome::Merged,
                Some("from tz-2"),
            )],
        ));
        store.flush().await.unwrap();

        let history = store.reader().unwrap().skill_evolutions("tz").unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            (history[0].evolution_id.as_str(), history[0].outcome),
            ("e1", EvolvedSkillOutcome::Added)
        );
        assert_eq!(history[0].support_turns, ids);
        assert_eq!(history[1].outcome, EvolvedSkillOutcome::Merged);
        assert_eq!(history[1].detail.as_deref(), Some("from tz-2"));
        assert!(history[1].support_turns.is_empty());
    }

    #[tokio::test]
    async fn turns_of_a_skill_carry_scores_only_when_scored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        store.record_turn(turn("s", 0, &["tz"]));
        store.record_turn(turn("s", 1, &["other"]));
        let mut side = turn("s", 2, &["tz"]);
        side.turn_type = TurnType::Side;
        store.record_turn(side);
        store.record_turn(turn("s", 3, &["tz", "other"]));
        store.flush().await.unwrap();
        let ids = turn_ids(&store.reader().unwrap(), "s");
        store.record_judgement(scored(ids[0], -1));
        // A side turn is never learned from, whatever a judgement says.
        store.record_judgement(scored(ids[2], 1));
        store.flush().await.unwrap();

        let turns = store.reader().unwrap().skill_turns("tz").unwrap();
        let seen: Vec<_> = turns.iter().map(|t| (t.turn_id, t.score)).collect();
        assert_eq!(seen, [(ids[0], Some(-1)), (ids[2], None), (ids[3], None)]);
        assert_eq!(turns[0].skill_generation, 3);
        assert_eq!(turns[0].started_at_ms, 1_000);
    }
}
