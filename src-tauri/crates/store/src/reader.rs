//! Read-only queries over the store, on a connection of their own.
//!
//! WAL lets this connection read while the writer thread (or a server in
//! another process) writes: a reader sees the last committed state and never
//! blocks the writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use metaclaw_dialect::{latest_instruction, Dialect};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::compact::{DecodeError, Decoder, Encoding};
use crate::schema::{self, query_error};
use crate::{
    EvolutionRecord, EvolvedSkill, JudgeVote, Judgement, JudgementState, SessionDetail,
    SessionSummary, SkillUsage, StoreCounts, StoreError, TrainingTurn, TurnRow, TurnStatus,
    TurnToJudge, TurnType,
};

/// The shortest id prefix accepted by [`StoreReader::session`]; shorter ones
/// match too much to be meant as one session.
pub const MIN_ID_PREFIX: usize = 4;

/// A read-only view of the store, usable from the CLI while a server writes.
pub struct StoreReader {
    pub(crate) conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader")
            .field("path", &self.path)
            .finish()
    }
}

const SESSION_COLUMNS: &str = "id, session_key, key_source, started_at_ms, last_seen_at_ms, \
                               ended_at_ms, end_reason, turn_count";

impl StoreReader {
    /// Opens an existing store read-only; fails clearly if the file does not
    /// exist or has a schema this build does not know.
    pub fn open(path: &Path) -> Result<StoreReader, StoreError> {
        let conn = schema::open_for_reading(path)?;
        Ok(StoreReader {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sessions, most recently started first.
    pub fn list_sessions(
        &self,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        let what = "list sessions";
        // SQLite takes signed limits; anything beyond i64::MAX means "all".
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions
                 ORDER BY started_at_ms DESC, id LIMIT ?1 OFFSET ?2"
            ))
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map(params![limit, offset], session_from_row)
            .map_err(|e| self.fail(what, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))
    }

    /// One session with its turns in order. `id` may also be a unique prefix
    /// of at least [`MIN_ID_PREFIX`] characters; an exact id always wins, and
    /// a prefix that fits several sessions is an error listing them.
    pub fn session(&self, id: &str) -> Result<Option<SessionDetail>, StoreError> {
        // One read transaction, so the session row and its turns come from
        // the same committed state even while the writer keeps going.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.fail("start a read transaction", e))?;
        let Some(session) = self.find_session(id)? else {
            return Ok(None);
        };
        let turns = self.turns_of(&session.id)?;
        drop(tx);
        Ok(Some(SessionDetail { session, turns }))
    }

    /// For every skill ever injected: how often and when, the mean score of
    /// the scored main turns it was injected into, and the baseline (see
    /// [`SkillUsage`]).
    pub fn skill_usage(&self) -> Result<HashMap<String, SkillUsage>, StoreError> {
        let what = "count skill usage";
        // Within one read transaction, so the counts and the baseline come
        // from the same committed state.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.fail("start a read transaction", e))?;
        // `turns CROSS JOIN turn_skills` makes SQLite walk the turns in
        // rowid order and find each one's skills by turn_skills' primary
        // key, so every page of the (wide) turns table is read once. Driven
        // from turn_skills by name instead, each injection looks up a turn
        // somewhere else in the file: with 10,000 turns and 60,000
        // injections that took twice as long, and this query is most of
        // `GET /api/skills` (tests/bench_dashboard.py).
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.skill_name, count(*), min(t.started_at_ms), max(t.started_at_ms),
                        count(j.score), coalesce(sum(j.score), 0)
                 FROM turns t CROSS JOIN turn_skills s ON s.turn_id = t.id
                 LEFT JOIN judgements j ON j.turn_id = t.id AND j.state = 'scored'
                      AND t.turn_type = 'main' AND t.status = 'complete'
                 GROUP BY s.skill_name",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, u64>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                    row.get::<_, u64>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })
            .map_err(|e| self.fail(what, e))?;
        let per_skill: Vec<_> = rows
            .collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))?;
        let scored = self.scored_timeline()?;
        drop(tx);
        Ok(per_skill
            .into_iter()
            .map(|(name, injected, first, last, n, sum)| {
                // Every scored turn with the skill is in its period, so the
                // baseline is the period's turns minus those.
                let (period_n, period_sum) = first.map_or((0, 0), |first| scored.since(first));
                let baseline_n = period_n.saturating_sub(n);
                let baseline_sum = period_sum - sum;
                let usage = SkillUsage {
                    injected,
                    first_used_ms: first,
                    last_used_ms: last,
                    scored: n,
                    mean_score: mean(sum, n),
                    baseline_scored: baseline_n,
                    baseline_mean: mean(baseline_sum, baseline_n),
                };
                (name, usage)
            })
            .collect())
    }

    /// Every scored main turn's start and score, oldest first, summed up so
    /// that "scored turns since t" is one binary search.
    fn scored_timeline(&self) -> Result<ScoredTimeline, StoreError> {
        let what = "read the scored turns";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.started_at_ms, j.score FROM turns t JOIN judgements j ON j.turn_id = t.id
                 WHERE t.turn_type = 'main' AND t.status = 'complete'
                   AND j.state = 'scored' AND j.score IS NOT NULL
                 ORDER BY t.started_at_ms",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
            .map_err(|e| self.fail(what, e))?;
        let mut timeline = ScoredTimeline::default();
        for row in rows {
            let (at, score) = row.map_err(|e| self.fail(what, e))?;
            let total = timeline.sums.last().copied().unwrap_or(0) + score;
            timeline.starts.push(at);
            timeline.sums.push(total);
        }
        Ok(timeline)
    }

    /// The skill generation last stored (0 in a new store).
    pub fn skill_generation(&self) -> Result<i64, StoreError> {
        let generation: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'skill_generation'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.fail("read the skill generation", e))?;
        Ok(generation.unwrap_or(0))
    }

    /// The size of the database in bytes, as this reader sees it: every
    /// committed page, including those still only in the write-ahead log.
    pub fn database_bytes(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.fail("measure the database", e))
    }

    /// How many sessions and turns are stored.
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM turns)",
                [],
                |row| {
                    Ok(StoreCounts {
                        sessions: row.get(0)?,
                        turns: row.get(1)?,
                    })
                },
            )
            .map_err(|e| self.fail("count sessions and turns", e))
    }

    fn find_session(&self, id: &str) -> Result<Option<SessionSummary>, StoreError> {
        let what = "look up a session";
        let exact = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([id], session_from_row).optional())
            .map_err(|e| self.fail(what, e))?;
        if exact.is_some() || id.chars().count() < MIN_ID_PREFIX {
            return Ok(exact);
        }
        // GLOB rather than LIKE: it is case-sensitive like ids are, and on the
        // primary key's binary collation SQLite turns a fixed prefix into an
        // index range. Three rows are enough to tell "one" from "several" and
        // to name a couple of the candidates.
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE id GLOB ?1 ORDER BY id LIMIT 3"
            ))
            .map_err(|e| self.fail(what, e))?;
        let mut found: Vec<SessionSummary> = stmt
            .query_map([format!("{}*", escape_glob(id))], session_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.fail(what, e))?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(StoreError::AmbiguousPrefix {
                path: self.path.clone(),
                prefix: id.to_owned(),
                matches: found.into_iter().map(|s| s.id).collect(),
            }),
        }
    }

    fn turns_of(&self, session_id: &str) -> Result<Vec<TurnRow>, StoreError> {
        let what = "read the turns of a session";
        let mut skills: HashMap<i64, Vec<String>> = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT s.turn_id, s.skill_name
                     FROM turn_skills s JOIN turns t ON t.id = s.turn_id
                     WHERE t.session_id = ?1
                     ORDER BY s.turn_id, s.rank",
                )
                .map_err(|e| self.fail(what, e))?;
            let mut rows = stmt.query([session_id]).map_err(|e| self.fail(what, e))?;
            while let Some(row) = rows.next().map_err(|e| self.fail(what, e))? {
                let turn_id: i64 = row.get(0).map_err(|e| self.fail(what, e))?;
                let name: String = row.get(1).map_err(|e| self.fail(what, e))?;
                skills.entry(turn_id).or_default().push(name);
            }
        }

        let mut votes = self.votes_of_session(session_id)?;

        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.id, t.request_id, t.turn_index, t.turn_type, t.client_dialect,
                        t.upstream_api, t.model, t.stream, t.started_at_ms, t.latency_ms,
                        t.ttfb_ms, t.status, t.http_status, t.prompt_tokens, t.completion_tokens,
                        t.skill_generation, t.request_json, t.response_json, t.error,
                        t.request_encoding, j.state, j.score, j.reason
                 FROM turns t LEFT JOIN judgements j ON j.turn_id = t.id
                 WHERE t.session_id = ?1
                 ORDER BY t.turn_index, t.id",
            )
            .map_err(|e| self.fail(what, e))?;
        let mut rows = stmt.query([session_id]).map_err(|e| self.fail(what, e))?;
        // One decoder for the whole session: its turns share most request parts.
        let mut decoder = Decoder::new(&self.conn);
        let mut turns = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.fail(what, e))? {
            let raw = turn_from_row(row).map_err(|e| self.fail(what, e))?;
            let turn_votes = votes.remove(&raw.id).unwrap_or_default();
            let mut turn = self.finish_turn(raw.turn, &mut skills, &mut decoder)?;
            turn.judge_state = match raw.judge_state {
                Some(text) => Some(self.judgement_state(text)?),
                None if turn.turn_type == TurnType::Main && turn.status == TurnStatus::Complete => {
                    Some(JudgementState::Pending)
                }
                None => None,
            };
            turn.score = raw.score;
            turn.judge_reason = raw.judge_reason;
            turn.votes = turn_votes;
            turns.push(turn);
        }
        Ok(turns)
    }

    /// The votes of every judged turn of a session, by turn id.
    fn votes_of_session(
        &self,
        session_id: &str,
    ) -> Result<HashMap<i64, Vec<JudgeVote>>, StoreError> {
        let what = "read the judge's votes";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT v.turn_id, v.score, v.failure
                 FROM judgement_votes v JOIN turns t ON t.id = v.turn_id
                 WHERE t.session_id = ?1
                 ORDER BY v.turn_id, v.vote_index",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([session_id], |row| {
                Ok((row.get::<_, i64>(0)?, vote_from_row(row, 1)?))
            })
            .map_err(|e| self.fail(what, e))?;
        let mut votes: HashMap<i64, Vec<JudgeVote>> = HashMap::new();
        for row in rows {
            let (turn_id, vote) = row.map_err(|e| self.fail(what, e))?;
            votes.entry(turn_id).or_default().push(vote);
        }
        Ok(votes)
    }

    /// A turn's stored judgement, or `None` while it has none.
    pub fn judgement(&self, turn_id: i64) -> Result<Option<Judgement>, StoreError> {
        let what = "read a judgement";
        let row = self
            .conn
            .prepare_cached(
                "SELECT state, score, reason, judge_model, attempts, next_attempt_at_ms,
                        judged_at_ms
                 FROM judgements WHERE turn_id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([turn_id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<i8>>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, u32>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        row.get::<_, Option<i64>>(6)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.fail(what, e))?;
        let Some((state, score, reason, judge_model, attempts, next_attempt_at_ms, judged_at_ms)) =
            row
        else {
            return Ok(None);
        };
        let votes = self
            .conn
            .prepare_cached(
                "SELECT score, failure FROM judgement_votes WHERE turn_id = ?1 ORDER BY vote_index",
            )
            .and_then(|mut stmt| {
                stmt.query_map([turn_id], |row| vote_from_row(row, 0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.fail(what, e))?;
        Ok(Some(Judgement {
            turn_id,
            state: self.judgement_state(state)?,
            score,
            votes,
            reason,
            judge_model,
            attempts,
            next_attempt_at_ms,
            judged_at_ms,
        }))
    }

    /// Main turns that completed and are ready to be judged, oldest first:
    /// not scored yet, not waiting for a retry after `now_ms`, and settled —
    /// their session has a later main turn (the user's reply, where
    /// corrections show up), has ended, or the turn finished more than
    /// `grace_ms` ago (the reply is not coming).
    pub fn turns_to_judge(
        &self,
        now_ms: i64,
        grace_ms: i64,
        limit: usize,
    ) -> Result<Vec<TurnToJudge>, StoreError> {
        let what = "select turns to judge";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "WITH candidates AS (
                     SELECT t.id, t.session_id, t.client_dialect, t.upstream_api, t.request_json,
                            t.request_encoding, t.response_json, t.started_at_ms, t.latency_ms,
                            coalesce(j.attempts, 0) AS attempts,
                            (SELECT n.id FROM turns n
                             WHERE n.session_id = t.session_id AND n.turn_type = 'main'
                               AND (n.turn_index > t.turn_index
                                    OR (n.turn_index = t.turn_index AND n.id > t.id))
                             ORDER BY n.turn_index, n.id LIMIT 1) AS next_id
                     FROM turns t LEFT JOIN judgements j ON j.turn_id = t.id
                     WHERE t.turn_type = 'main' AND t.status = 'complete'
                       AND (j.turn_id IS NULL
                            OR (j.state <> 'scored' AND coalesce(j.next_attempt_at_ms, 0) <= ?1))
                 )
                 SELECT c.id, c.session_id, c.client_dialect, c.upstream_api, c.request_json,
                        c.request_encoding, c.response_json, c.attempts,
                        n.upstream_api, n.request_json, n.request_encoding
                 FROM candidates c
                 JOIN sessions s ON s.id = c.session_id
                 LEFT JOIN turns n ON n.id = c.next_id
                 WHERE c.next_id IS NOT NULL OR s.ended_at_ms IS NOT NULL
                       OR c.started_at_ms + CAST(c.latency_ms AS INTEGER) <= ?1 - ?2
                 ORDER BY c.id LIMIT ?3",
            )
            .map_err(|e| self.fail(what, e))?;
        let mut rows = stmt
            .query(params![now_ms, grace_ms, limit])
            .map_err(|e| self.fail(what, e))?;
        let mut decoder = Decoder::new(&self.conn);
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.fail(what, e))? {
            let raw = (|| -> rusqlite::Result<_> {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, u32>(7)?,
                    row.get::<_, Option<String>>(8)?,
                    row.get::<_, Option<String>>(9)?,
                    row.get::<_, Option<i64>>(10)?,
                ))
            })()
            .map_err(|e| self.fail(what, e))?;
            let (
                turn_id,
                session_id,
                client_dialect,
                upstream_api,
                text,
                encoding,
                response,
                attempts,
                next_api,
                next_text,
                next_encoding,
            ) = raw;
            let request = self.request(encoding, text, &mut decoder)?;
            let next_instruction = match (next_api, next_text, next_encoding) {
                (Some(api), Some(text), Some(encoding)) => {
                    let next = self.request(encoding, text, &mut decoder)?;
                    // Requests are stored as the upstream received them.
                    api.parse::<Dialect>()
                        .ok()
                        .and_then(|dialect| latest_instruction(dialect, &next))
                }
                _ => None,
            };
            out.push(TurnToJudge {
                turn_id,
                session_id,
                client_dialect,
                upstream_api,
                request,
                response: response.map(parse_json),
                next_instruction,
                attempts,
            });
        }
        Ok(out)
    }

    /// The training data for `generation`: its scored main turns that are in
    /// no evolution's support set, oldest first. The trainer reads only
    /// this, so a policy is never trained on the turns a skill was written
    /// from (support / query separation).
    pub fn training_turns(&self, generation: i64) -> Result<Vec<TrainingTurn>, StoreError> {
        let what = "select training turns";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.id, t.session_id, t.skill_generation, j.score
                 FROM turns t JOIN judgements j ON j.turn_id = t.id
                 WHERE t.skill_generation = ?1 AND t.turn_type = 'main'
                   AND t.status = 'complete' AND j.state = 'scored' AND j.score IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM support_sets s WHERE s.turn_id = t.id)
                 ORDER BY t.id",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([generation], |row| {
                Ok(TrainingTurn {
                    turn_id: row.get(0)?,
                    session_id: row.get(1)?,
                    skill_generation: row.get(2)?,
                    score: row.get(3)?,
                })
            })
            .map_err(|e| self.fail(what, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))
    }

    /// The ids of a session's turns that some evolution already learned
    /// from (its support set); the evolver reads only the others.
    pub fn consumed_turns(&self, session_id: &str) -> Result<Vec<i64>, StoreError> {
        let what = "read the consumed turns of a session";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT s.turn_id FROM support_sets s JOIN turns t ON t.id = s.turn_id
                 WHERE t.session_id = ?1 ORDER BY s.turn_id",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([session_id], |row| row.get(0))
            .map_err(|e| self.fail(what, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))
    }

    /// The evolver's runs, newest first, with what became of each proposed skill.
    pub fn evolutions(&self, limit: usize) -> Result<Vec<EvolutionRecord>, StoreError> {
        let what = "read evolutions";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, session_id, trigger, model, started_at_ms, finished_at_ms, error
                 FROM evolutions ORDER BY started_at_ms DESC, id DESC LIMIT ?1",
            )
            .map_err(|e| self.fail(what, e))?;
        let rows = stmt
            .query_map([limit], |row| {
                Ok(EvolutionRecord {
                    id: row.get(0)?,
                    session_id: row.get(1)?,
                    trigger: row.get(2)?,
                    model: row.get(3)?,
                    started_at_ms: row.get(4)?,
                    finished_at_ms: row.get(5)?,
                    error: row.get(6)?,
                    skills: Vec::new(),
                })
            })
            .map_err(|e| self.fail(what, e))?;
        let mut out: Vec<EvolutionRecord> = rows
            .collect::<Result<_, _>>()
            .map_err(|e| self.fail(what, e))?;
        let mut skills = self
            .conn
            .prepare_cached(
                "SELECT skill_name, outcome, detail FROM evolution_skills
                 WHERE evolution_id = ?1 ORDER BY position",
            )
            .map_err(|e| self.fail(what, e))?;
        for evolution in &mut out {
            let rows = skills
                .query_map([&evolution.id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                    ))
                })
                .map_err(|e| self.fail(what, e))?;
            for row in rows {
                let (name, outcome, detail) = row.map_err(|e| self.fail(what, e))?;
                let outcome = outcome.parse().map_err(|value| StoreError::InvalidValue {
                    path: self.path.clone(),
                    column: "evolution_skills.outcome",
                    value,
                })?;
                evolution.skills.push(EvolvedSkill {
                    name,
                    outcome,
                    detail,
                });
            }
        }
        Ok(out)
    }

    fn judgement_state(&self, text: String) -> Result<JudgementState, StoreError> {
        text.parse().map_err(|value| StoreError::InvalidValue {
            path: self.path.clone(),
            column: "judgements.state",
            value,
        })
    }

    /// Parses the text columns of a raw row into typed values.
    fn finish_turn(
        &self,
        raw: RawTurn,
        skills: &mut HashMap<i64, Vec<String>>,
        decoder: &mut Decoder<'_>,
    ) -> Result<TurnRow, StoreError> {
        let turn_type = raw
            .turn_type
            .parse()
            .map_err(|value| StoreError::InvalidValue {
                path: self.path.clone(),
                column: "turns.turn_type",
                value,
            })?;
        let status = raw
            .status
            .parse()
            .map_err(|value| StoreError::InvalidValue {
                path: self.path.clone(),
                column: "turns.status",
                value,
            })?;
        let request = self.request(raw.request_encoding, raw.request_json, decoder)?;
        Ok(TurnRow {
            id: raw.id,
            request_id: raw.request_id,
            turn_index: raw.turn_index,
            turn_type,
            client_dialect: raw.client_dialect,
            upstream_api: raw.upstream_api,
            model: raw.model,
            stream: raw.stream,
            started_at_ms: raw.started_at_ms,
            latency_ms: raw.latency_ms,
            ttfb_ms: raw.ttfb_ms,
            status,
            http_status: raw.http_status,
            prompt_tokens: raw.prompt_tokens,
            completion_tokens: raw.completion_tokens,
            skill_generation: raw.skill_generation,
            injected_skills: skills.remove(&raw.id).unwrap_or_default(),
            request,
            response: raw.response_json.map(parse_json),
            error: raw.error,
            judge_state: None,
            score: None,
            votes: Vec::new(),
            judge_reason: None,
        })
    }

    /// A request as the client's upstream received it, from either encoding.
    fn request(
        &self,
        encoding: i64,
        text: String,
        decoder: &mut Decoder<'_>,
    ) -> Result<serde_json::Value, StoreError> {
        let invalid = |value: String| StoreError::InvalidValue {
            path: self.path.clone(),
            column: "turns.request_json",
            value,
        };
        match Encoding::from_column(encoding) {
            Some(Encoding::Verbatim) => Ok(parse_json(text)),
            Some(Encoding::Node) => decoder.request(&text).map_err(|e| match e {
                DecodeError::Query(cause) => self.fail("read the parts of a request", cause),
                DecodeError::Invalid(reason) => invalid(reason),
            }),
            None => Err(StoreError::InvalidValue {
                path: self.path.clone(),
                column: "turns.request_encoding",
                value: encoding.to_string(),
            }),
        }
    }

    pub(crate) fn fail(&self, what: &'static str, cause: rusqlite::Error) -> StoreError {
        query_error(&self.path, what, cause)
    }

    /// A stored value this build cannot read.
    pub(crate) fn invalid(&self, column: &'static str, value: String) -> StoreError {
        StoreError::InvalidValue {
            path: self.path.clone(),
            column,
            value,
        }
    }
}

/// Scored main turns by start time with running score sums.
#[derive(Default)]
struct ScoredTimeline {
    starts: Vec<i64>,
    /// `sums[i]`: the scores of turns `0..=i` added up.
    sums: Vec<i64>,
}

impl ScoredTimeline {
    /// How many scored turns started at or after `from_ms`, and their score sum.
    fn since(&self, from_ms: i64) -> (u64, i64) {
        let first = self.starts.partition_point(|&at| at < from_ms);
        let total = self.sums.last().copied().unwrap_or(0);
        let before = first
            .checked_sub(1)
            .and_then(|i| self.sums.get(i).copied())
            .unwrap_or(0);
        ((self.starts.len() - first) as u64, total - before)
    }
}

fn mean(sum: i64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum as f64 / n as f64)
}

/// A turn row before its enum and JSON columns are parsed.
struct RawTurn {
    id: i64,
    request_id: String,
    turn_index: u32,
    turn_type: String,
    client_dialect: String,
    upstream_api: String,
    model: Option<String>,
    stream: bool,
    started_at_ms: i64,
    latency_ms: f64,
    ttfb_ms: Option<f64>,
    status: String,
    http_status: Option<u16>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    skill_generation: i64,
    request_json: String,
    response_json: Option<String>,
    error: Option<String>,
    request_encoding: i64,
}

/// A turn row with its judgement columns.
struct JudgedRawTurn {
    turn: RawTurn,
    id: i64,
    judge_state: Option<String>,
    score: Option<i8>,
    judge_reason: Option<String>,
}

fn turn_from_row(row: &Row<'_>) -> rusqlite::Result<JudgedRawTurn> {
    let turn = raw_turn_from_row(row)?;
    Ok(JudgedRawTurn {
        id: turn.id,
        turn,
        judge_state: row.get(20)?,
        score: row.get(21)?,
        judge_reason: row.get(22)?,
    })
}

fn vote_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<JudgeVote> {
    Ok(JudgeVote {
        score: row.get(first)?,
        failure: row.get(first + 1)?,
    })
}

fn raw_turn_from_row(row: &Row<'_>) -> rusqlite::Result<RawTurn> {
    Ok(RawTurn {
        id: row.get(0)?,
        request_id: row.get(1)?,
        turn_index: row.get(2)?,
        turn_type: row.get(3)?,
        client_dialect: row.get(4)?,
        upstream_api: row.get(5)?,
        model: row.get(6)?,
        stream: row.get(7)?,
        started_at_ms: row.get(8)?,
        latency_ms: row.get(9)?,
        ttfb_ms: row.get(10)?,
        status: row.get(11)?,
        http_status: row.get(12)?,
        prompt_tokens: row.get(13)?,
        completion_tokens: row.get(14)?,
        skill_generation: row.get(15)?,
        request_json: row.get(16)?,
        response_json: row.get(17)?,
        error: row.get(18)?,
        request_encoding: row.get(19)?,
    })
}

pub(crate) fn session_from_row(row: &Row<'_>) -> rusqlite::Result<SessionSummary> {
    Ok(SessionSummary {
        id: row.get(0)?,
        session_key: row.get(1)?,
        key_source: row.get(2)?,
        started_at_ms: row.get(3)?,
        last_seen_at_ms: row.get(4)?,
        ended_at_ms: row.get(5)?,
        end_reason: row.get(6)?,
        turn_count: row.get(7)?,
    })
}

/// Stored bodies are JSON as sent and received. Should one not parse (an
/// upstream that answered with HTML, say), it is shown as a JSON string
/// rather than making the whole session unreadable.
fn parse_json(text: String) -> serde_json::Value {
    match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(_) => serde_json::Value::String(text),
    }
}

/// Makes `*`, `?` and `[` match themselves in a GLOB pattern.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
// Tests may fail loudly; the no-panic policy is for the store itself.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{session, turn};
    use crate::{JudgementRecord, Store, TurnStatus, TurnType};

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.sqlite3")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_session_reads_back_with_its_turns_and_skills() {
        let (_dir, store) = temp_store();
        store.session_started(session("sess-1", 1_000));
        store.record_turn(turn("sess-1", 0, &["verify-timezones", "cite-sources"]));
        let mut failed = turn("sess-1", 1, &[]);
        failed.turn_type = TurnType::Side;
        failed.status = TurnStatus::UpstreamError;
        failed.stream = false;
        failed.model = None;
        failed.ttfb_ms = None;
        failed.http_status = Some(502);
        failed.prompt_tokens = None;
        failed.completion_tokens = None;
        failed.response_json = None;
        failed.error = Some("connection refused".to_owned());
        store.record_turn(failed);
        store.session_ended("sess-1", 9_000, "done_header");
        store.flush().await.unwrap();

        let detail = store.reader().unwrap().session("sess-1").unwrap().unwrap();
        assert_eq!(
            detail.session,
            SessionSummary {
                id: "sess-1".to_owned(),
                session_key: "key-sess-1".to_owned(),
                key_source: "header".to_owned(),
                started_at_ms: 1_000,
                // The second turn started at 1100 and took 42.5 ms.
                last_seen_at_ms: 1_143,
                ended_at_ms: Some(9_000),
                end_reason: Some("done_header".to_owned()),
                turn_count: 2,
            }
        );
        let [first, second] = detail.turns.as_slice() else {
            panic!("expected two turns, got {:?}", detail.turns);
        };
        assert_eq!(
            *first,
            TurnRow {
                id: first.id,
                request_id: "sess-1-req-0".to_owned(),
                turn_index: 0,
                turn_type: TurnType::Main,
                client_dialect: "openai".to_owned(),
                upstream_api: "openai".to_owned(),
                model: Some("gpt-test".to_owned()),
                stream: true,
                started_at_ms: 1_000,
                latency_ms: 42.5,
                ttfb_ms: Some(7.25),
                status: TurnStatus::Complete,
                http_status: Some(200),
                prompt_tokens: Some(10),
                completion_tokens: Some(5),
                skill_generation: 3,
                injected_skills: vec!["verify-timezones".to_owned(), "cite-sources".to_owned()],
                request: json!({"messages": [{"role": "user", "content": "q0"}]}),
                response: Some(json!({"content": "a0"})),
                error: None,
                judge_state: Some(JudgementState::Pending),
                score: None,
                votes: Vec::new(),
                judge_reason: None,
            }
        );
        assert_eq!(second.turn_type, TurnType::Side);
        assert_eq!(second.status, TurnStatus::UpstreamError);
        assert!(!second.stream);
        assert_eq!(second.model, None);
        assert_eq!(second.http_status, Some(502));
        assert_eq!(second.response, None);
        assert_eq!(second.error.as_deref(), Some("connection refused"));
        assert!(second.injected_skills.is_empty());

        // What the dashboard and `metaclaw sessions --json` will see.
        let value = serde_json::to_value(&detail).unwrap();
        assert_eq!(value["turns"][1]["status"], "upstream_error");
        assert_eq!(value["turns"][0]["turn_type"], "main");
        assert_eq!(value["turns"][0]["request"]["messages"][0]["content"], "q0");
    }

    #[tokio::test]
    async fn a_turn_recreates_a_missing_session_row() {
        let (_dir, store) = temp_store();
        store.record_turn(turn("orphan", 4, &[]));
        store.flush().await.unwrap();
        let detail = store.reader().unwrap().session("orphan").unwrap().unwrap();
        assert_eq!(detail.session.session_key, "key-orphan");
        assert_eq!(detail.session.started_at_ms, 1_400);
        assert_eq!(detail.session.turn_count, 1);
        assert_eq!(detail.turns[0].turn_index, 4);
    }

    #[tokio::test]
    async fn a_restarted_session_is_open_again_and_an_unknown_end_is_ignored() {
        let (_dir, store) = temp_store();
        store.session_started(session("s", 1_000));
        store.session_ended("s", 2_000, "quiet");
        store.session_started(session("s", 5_000));
        store.session_ended("never-seen", 3_000, "quiet");
        store.flush().await.unwrap();
        let s = store
            .reader()
            .unwrap()
            .session("s")
            .unwrap()
            .unwrap()
            .session;
        assert_eq!((s.started_at_ms, s.last_seen_at_ms), (1_000, 5_000));
        assert_eq!((s.ended_at_ms, s.end_reason), (None, None));
        assert_eq!(store.reader().unwrap().counts().unwrap().sessions, 1);
    }

    #[tokio::test]
    async fn sessions_are_found_by_a_unique_prefix() {
        let (_dir, store) = temp_store();
        for id in [
            "abcdef-1", "abcdef-2", "abcxyz", "abcd", "a*b?c[d]", "axbycxd",
        ] {
            store.session_started(session(id, 1));
        }
        store.flush().await.unwrap();
        let reader = store.reader().unwrap();
        let found = |id: &str| reader.session(id).unwrap().map(|d| d.session.id);

        assert_eq!(found("abcx").as_deref(), Some("abcxyz"));
        assert_eq!(found("abcdef-2").as_deref(), Some("abcdef-2"));
        // An exact id wins over being a prefix of others.
        assert_eq!(found("abcd").as_deref(), Some("abcd"));
        // Too short to be taken as a prefix.
        assert_eq!(found("abc"), None);
        assert_eq!(found("nope"), None);
        // Glob characters in the prefix match only themselves.
        assert_eq!(found("a*b?").as_deref(), Some("a*b?c[d]"));
        assert_eq!(found("a*b?c[d").as_deref(), Some("a*b?c[d]"));

        let err = reader.session("abcde").unwrap_err();
        match &err {
            StoreError::AmbiguousPrefix {
                prefix, matches, ..
            } => {
                assert_eq!(prefix, "abcde");
                assert_eq!(matches, &["abcdef-1", "abcdef-2"]);
            }
            other => panic!("expected an ambiguous prefix, got {other:?}"),
        }
        assert!(err.to_string().contains("abcdef-1, abcdef-2"), "{err}");
    }

    #[tokio::test]
    async fn sessions_list_newest_first_in_pages() {
        let (_dir, store) = temp_store();
        for (id, at) in [("old", 1_000), ("new", 3_000), ("mid", 2_000)] {
            store.session_started(session(id, at));
        }
        store.flush().await.unwrap();
        let reader = store.reader().unwrap();
        let ids = |limit, offset| -> Vec<String> {
            reader
                .list_sessions(limit, offset)
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(ids(10, 0), ["new", "mid", "old"]);
        assert_eq!(ids(2, 0), ["new", "mid"]);
        assert_eq!(ids(2, 2), ["old"]);
        assert!(ids(2, 5).is_empty());
        assert_eq!(ids(usize::MAX, 0).len(), 3);
    }

    #[tokio::test]
    async fn skill_usage_generation_and_counts() {
        let (_dir, store) = temp_store();
        let reader = store.reader().unwrap();
        assert_eq!(reader.skill_generation().unwrap(), 0);
        assert!(reader.skill_usage().unwrap().is_empty());
        assert_eq!(reader.counts().unwrap(), StoreCounts::default());

        store.record_turn(turn("s1", 0, &["a", "b"]));
        store.record_turn(turn("s1", 1, &["a"]));
        store.record_turn(turn("s2", 5, &["a"]));
        store.set_skill_generation(4);
        store.flush().await.unwrap();

        assert_eq!(reader.skill_generation().unwrap(), 4);
        let usage = reader.skill_usage().unwrap();
        assert_eq!(
            (
                usage["a"].injected,
                usage["a"].first_used_ms,
                usage["a"].last_used_ms
            ),
            (3, Some(1_000), Some(1_500))
        );
        assert_eq!(
            (usage["b"].injected, usage["b"].last_used_ms),
            (1, Some(1_000))
        );
        // Nothing is scored yet: no means, no effect.
        assert_eq!((usage["a"].scored, usage["a"].mean_score), (0, None));
        assert_eq!(usage["a"].effect(), None);
        assert_eq!(
            reader.counts().unwrap(),
            StoreCounts {
                sessions: 2,
                turns: 3
            }
        );
    }

    #[tokio::test]
    async fn skill_effect_is_its_mean_score_against_turns_without_it_since_its_first_use() {
        let (_dir, store) = temp_store();
        // Turn i starts at 1000 + 100 i.
        let plan: [(&[&str], Option<i8>, TurnType); 8] = [
            (&["a"], Some(-1), TurnType::Main),      // 1000
            (&[], Some(1), TurnType::Main),          // 1100
            (&["a", "b"], Some(-1), TurnType::Main), // 1200: b's first use
            (&["b"], Some(1), TurnType::Main),       // 1300
            (&["a", "c"], None, TurnType::Main),     // 1400: not scored yet
            (&[], Some(1), TurnType::Main),          // 1500
            (&["a"], Some(-1), TurnType::Side),      // 1600: side turns never count
            (&[], Some(-1), TurnType::Side),         // 1700
        ];
        for (index, (skills, _, turn_type)) in plan.iter().enumerate() {
            let mut t = turn("s", index as u32, skills);
            t.turn_type = *turn_type;
            store.record_turn(t);
        }
        store.flush().await.unwrap();
        let reader = store.reader().unwrap();
        let ids = crate::testing::turn_ids(&reader, "s");
        for (id, (_, score, _)) in ids.iter().zip(plan.iter()) {
            if let Some(score) = score {
                store.record_judgement(crate::testing::scored(*id, *score));
            }
        }
        // A failed judging attempt is no score, not a 0.
        store.record_judgement(JudgementRecord {
            score: None,
            ..crate::testing::scored(ids[4], 0)
        });
        store.flush().await.unwrap();

        let usage = reader.skill_usage().unwrap();
        let a = usage["a"];
        assert_eq!(
            (a.injected, a.first_used_ms, a.last_used_ms),
            (4, Some(1_000), Some(1_600))
        );
        // With a: turns 0 and 2. Without it since 1000: turns 1, 3 and 5.
        assert_eq!((a.scored, a.mean_score), (2, Some(-1.0)));
        assert_eq!((a.baseline_scored, a.baseline_mean), (3, Some(1.0)));
        assert_eq!(a.effect(), Some(-2.0));
        let b = usage["b"];
        // With b: turns 2 and 3. Without it since 1200: turn 5 only (turn 1
        // came before b existed).
        assert_eq!((b.scored, b.mean_score), (2, Some(0.0)));
        assert_eq!((b.baseline_scored, b.baseline_mean), (1, Some(1.0)));
        assert_eq!(b.effect(), Some(-1.0));
        let c = usage["c"];
        assert_eq!((c.injected, c.scored, c.mean_score), (1, 0, None));
        assert_eq!((c.baseline_scored, c.baseline_mean), (1, Some(1.0)));
        assert_eq!(c.effect(), None);
        assert!(!usage.contains_key("never-injected"));
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_shown_as_a_string() {
        let (_dir, store) = temp_store();
        let mut t = turn("s1", 0, &[]);
        t.response_json = Some("<html>bad gateway</html>".to_owned());
        store.record_turn(t);
        store.flush().await.unwrap();
        let detail = store.reader().unwrap().session("s1").unwrap().unwrap();
        assert_eq!(
            detail.turns[0].response,
            Some(json!("<html>bad gateway</html>"))
        );
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such.sqlite3");
        let err = StoreReader::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("no-such.sqlite3"), "{err}");
    }

    #[test]
    fn glob_escaping() {
        assert_eq!(escape_glob("plain-id"), "plain-id");
        assert_eq!(escape_glob("a*b?c[d]"), "a[*]b[?]c[[]d]");
    }
}
