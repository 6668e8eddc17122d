//! Sessions as the dashboard lists them: each with what its turns add up
//! to (main turns, mean score, model, policy version), in one query.

use std::collections::HashMap;

use rusqlite::params;
use serde::Serialize;

use crate::reader::session_from_row;
use crate::{SessionSummary, StoreError, StoreReader};

/// One session with the totals of its turns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionOverview {
    #[serde(flatten)]
    pub session: SessionSummary,
    pub main_turns: u32,
    /// The mean PRM score of its scored turns.
    pub mean_score: Option<f64>,
    /// The model of its latest turn.
    pub model: Option<String>,
    /// The newest policy version that answered it (`rl`/`auto`).
    pub policy_version: Option<i64>,
}

impl StoreReader {
    /// At most `limit` sessions started before `before_ms` (all when
    /// `None`), newest first.
    pub fn session_overviews(
        &self,
        limit: usize,
        before_ms: Option<i64>,
    ) -> Result<Vec<SessionOverview>, StoreError> {
        let what = "list sessions with their totals";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let before = before_ms.unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.id, s.session_key, s.key_source, s.started_at_ms, s.last_seen_at_ms,
                        s.ended_at_ms, s.end_reason, s.turn_count,
                        (SELECT count(*) FROM turns t
                          WHERE t.session_id = s.id AND t.turn_type = 'main'),
                        (SELECT avg(j.score) FROM turns t JOIN judgements j ON j.turn_id = t.id
                          WHERE t.session_id = s.id AND j.score IS NOT NULL),
                        (SELECT t.model FROM turns t WHERE t.session_id = s.id
                          ORDER BY t.turn_index DESC, t.id DESC LIMIT 1),
                        (SELECT max(k.policy_version) FROM turns t
                          JOIN turn_tokens k ON k.turn_id = t.id WHERE t.session_id = s.id)
                 FROM sessions s WHERE s.started_at_ms < ?2
                 ORDER BY s.started_at_ms DESC, s.id LIMIT ?1",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map(params![limit, before], |row| {
                Ok(SessionOverview {
                    session: session_from_row(row)?,
                    main_turns: row.get(8)?,
                    mean_score: row.get(9)?,
                    model: row.get(10)?,
                    policy_version: row.get(11)?,
                })
            })
            .map_err(|e| self.fail(what, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))
    }

    /// The policy version that answered each turn of the session the
    /// policy answered, by turn id (empty outside `rl`/`auto`).
    pub fn turn_policy_versions(&self, session_id: &str) -> Result<HashMap<i64, i64>, StoreError> {
        let what = "read the policy versions of a session's turns";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT k.turn_id, k.policy_version FROM turn_tokens k
                 JOIN turns t ON t.id = k.turn_id WHERE t.session_id = ?1",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([session_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| self.fail(what, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{scored, session, turn, turn_ids};
    use crate::{Store, TurnType};

    #[tokio::test]
    async fn sessions_come_with_their_totals_newest_first_and_page_by_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        store.session_started(session("old", 1_000));
        store.session_started(session("new", 2_000));
        store.record_turn(turn("new", 0, &[]));
        let mut side = turn("new", 1, &[]);
        side.turn_type = TurnType::Side;
        side.model = Some("side-model".into());
        store.record_turn(side);
        let mut last = turn("new", 2, &[]);
        last.model = Some("gpt-last".into());
        store.record_turn(last);
        store.flush().await.unwrap();
        let ids = turn_ids(&store.reader().unwrap(), "new");
        store.record_judgement(scored(ids[0], 1));
        store.record_judgement(scored(ids[2], 0));
        store.flush().await.unwrap();

        let reader = store.reader().unwrap();
        let all = reader.session_overviews(10, None).unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.session.id.as_str()).collect();
        assert_eq!(names, ["new", "old"]);
        assert_eq!(all[0].main_turns, 2);
        assert_eq!(all[0].mean_score, Some(0.5));
        assert_eq!(all[0].model.as_deref(), Some("gpt-last"));
        assert_eq!(all[0].policy_version, None);
        assert_eq!((all[1].main_turns, all[1].mean_score), (0, None));
        let older = reader.session_overviews(10, Some(2_000)).unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].session.id, "old");
        assert!(reader.turn_policy_versions("new").unwrap().is_empty());
    }
}
