//! The writer thread: owns the only write connection and applies queued commands with group commit.
//!
//! Callers never wait on disk: they push a [`Command`] into an unbounded
//! channel and return. The thread blocks for the first command, takes whatever
//! else is already queued (up to [`MAX_BATCH`]) and applies it all in one
//! transaction that is committed at once. There is deliberately no timed
//! batching: a turn is committed as soon as the writer gets to it, so every
//! turn recorded before a kill of the process is in the file afterwards, and
//! under load the batches grow by themselves because more is queued while the
//! previous commit runs.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::checkpoint::Checkpointer;
use crate::compact;
use crate::{
    EvolutionRecord, EvolvedSkillOutcome, JudgementRecord, JudgementState, SessionStart,
    StoreError, TurnRecord,
};

/// The most commands applied in one transaction. Large enough that a burst is
/// one commit, small enough that a flush queued behind a burst is not kept
/// waiting for an unbounded transaction.
pub(crate) const MAX_BATCH: usize = 256;

/// What the writer can be asked to do.
pub(crate) enum Command {
    SessionStarted(SessionStart),
    /// Boxed because a turn is much larger than every other command.
    Turn(Box<TurnRecord>),
    SessionEnded {
        id: String,
        ended_at_ms: i64,
        reason: String,
    },
    SetSkillGeneration(i64),
    Judgement(Box<JudgementRecord>),
    SupportSet {
        evolution_id: String,
        turn_ids: Vec<i64>,
    },
    Evolution(Box<EvolutionRecord>),
    Schedule(Box<crate::ScheduleRecord>),
    Curation(Box<crate::CurationRecord>),
    Training(Box<crate::TrainingRecord>),
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<Result<(), StoreError>>),
    /// Answered once every session and turn write queued before it is
    /// committed, without waiting for the learning loops' writes.
    FlushTurns(oneshot::Sender<Result<(), StoreError>>),
    /// Commit what is queued up to here, then stop.
    Shutdown,
}

impl Command {
    /// A short description for log lines about a lost command.
    pub(crate) fn describe(&self) -> String {
        match self {
            Command::SessionStarted(s) => format!("the start of session {}", s.id),
            Command::Turn(t) => format!("turn {} of session {}", t.request_id, t.session_id),
            Command::SessionEnded { id, .. } => format!("the end of session {id}"),
            Command::SetSkillGeneration(g) => format!("skill generation {g}"),
            Command::Judgement(j) => format!("the judgement of turn {}", j.turn_id),
            Command::SupportSet { evolution_id, .. } => {
                format!("the support set of evolution {evolution_id}")
            }
            Command::Evolution(e) => format!("evolution {} of session {}", e.id, e.session_id),
            Command::Schedule(r) => r.describe(),
            Command::Curation(c) => c.describe(),
            Command::Training(t) => t.describe(),
            Command::Flush(_) | Command::FlushTurns(_) => "a flush".to_owned(),
            Command::Shutdown => "a shutdown".to_owned(),
        }
    }

    fn is_write(&self) -> bool {
        !matches!(
            self,
            Command::Flush(_) | Command::FlushTurns(_) | Command::Shutdown
        )
    }

    /// The conversation's own writes, which answers wait for.
    fn is_conversation(&self) -> bool {
        matches!(
            self,
            Command::SessionStarted(_) | Command::Turn(_) | Command::SessionEnded { .. }
        )
    }
}

/// Writes that failed since the last flush, so the next flush can say so
/// instead of pretending everything was committed.
#[derive(Default)]
struct FailureTally {
    failed: u64,
    last_reason: Option<String>,
}

impl FailureTally {
    fn note(&mut self, path: &Path, what: &str, count: u64, reason: String) {
        tracing::error!(path = %path.display(), error = %reason, "store write failed; {what} was not recorded");
        self.failed += count;
        self.last_reason = Some(reason);
    }

    /// The answer for a turns-only flush; the failures stay for the next
    /// full flush to report.
    fn check(&self, path: &Path) -> Result<(), StoreError> {
        if self.failed == 0 {
            return Ok(());
        }
        Err(StoreError::WriteFailed {
            path: path.to_path_buf(),
            failed: self.failed,
            reason: self.last_reason.clone().unwrap_or_default(),
        })
    }

    /// The answer for a flush; resets the tally.
    fn take(&mut self, path: &Path) -> Result<(), StoreError> {
        let failed = std::mem::take(&mut self.failed);
        let reason = self.last_reason.take();
        if failed == 0 {
            return Ok(());
        }
        Err(StoreError::WriteFailed {
            path: path.to_path_buf(),
            failed,
            reason: reason.unwrap_or_default(),
        })
    }
}

/// What a writer did in its life, logged when it stops (and checked by tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WriterStats {
    /// Transactions, i.e. batches holding at least one write.
    pub(crate) transactions: u64,
    /// Write commands handed to those transactions.
    pub(crate) writes: u64,
}

/// Starts the writer thread; it owns `conn` until every sender is gone or a
/// shutdown command arrives.
pub(crate) fn spawn(
    conn: Connection,
    path: PathBuf,
    commands: Receiver<Command>,
    checkpointer: Checkpointer,
) -> Result<JoinHandle<WriterStats>, StoreError> {
    let thread_path = path.clone();
    std::thread::Builder::new()
        .name("metaclaw-store-writer".to_owned())
        .spawn(move || {
            let stats = run(conn, &thread_path, &commands, &checkpointer);
            checkpointer.stop();
            stats
        })
        .map_err(|cause| StoreError::SpawnWriter { path, cause })
}

fn run(
    mut conn: Connection,
    path: &Path,
    commands: &Receiver<Command>,
    checkpointer: &Checkpointer,
) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut tally = FailureTally::default();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // `recv` keeps handing out queued commands after the last sender is
    // dropped and fails only once the queue is empty: that is the drain on drop.
    while let Ok(first) = commands.recv() {
        let mut stop = matches!(first, Command::Shutdown);
        batch.push(first);
        while !stop && batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(next) => {
                    stop = matches!(next, Command::Shutdown);
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let (transactions, writes) = apply_batch(&mut conn, path, &mut tally, &mut batch);
        if writes > 0 {
            stats.transactions += transactions;
            stats.writes += writes;
            checkpointer.committed();
        }
        if stop {
            break;
        }
    }
    // Commands queued behind a shutdown are dropped with the receiver; their
    // flushes then report that the writer is gone.
    let lost = commands.try_iter().filter(Command::is_write).count();
    if lost > 0 {
        tracing::error!(path = %path.display(), lost, "the store was closed with writes still queued; they were not recorded");
    }
    tracing::debug!(
        path = %path.display(),
        transactions = stats.transactions,
        writes = stats.writes,
        "store writer stopped"
    );
    stats
}

/// Applies one batch and answers its flushes. The conversation's own writes
/// (sessions and turns) go first, in a transaction of their own, and the
/// answers waiting for them ([`Command::FlushTurns`]) are released before
/// the learning loops' writes (judgements, evolutions, schedule, training)
/// are applied: an answer never waits for learning. Learning writes only
/// refer to turns, so committing turns first keeps every reference valid.
/// Returns (transactions, write commands).
fn apply_batch(
    conn: &mut Connection,
    path: &Path,
    tally: &mut FailureTally,
    batch: &mut Vec<Command>,
) -> (u64, u64) {
    let mut conversation = Vec::new();
    let mut learning = Vec::new();
    let mut turn_flushes = Vec::new();
    let mut flushes = Vec::new();
    for command in batch.drain(..) {
        match command {
            Command::Flush(ack) => flushes.push(ack),
            Command::FlushTurns(ack) => turn_flushes.push(ack),
            Command::Shutdown => {}
            command if command.is_conversation() => conversation.push(command),
            command => learning.push(command),
        }
    }
    let mut transactions = 0;
    let first = commit(conn, path, tally, &conversation);
    transactions += u64::from(first > 0);
    for ack in turn_flushes {
        // The flusher may have given up waiting; nothing to tell it then.
        let _ = ack.send(tally.check(path));
    }
    let second = commit(conn, path, tally, &learning);
    transactions += u64::from(second > 0);
    for ack in flushes {
        let _ = ack.send(tally.take(path));
    }
    (transactions, first + second)
}

/// Applies `commands` in one transaction. Returns how many there were.
fn commit(
    conn: &mut Connection,
    path: &Path,
    tally: &mut FailureTally,
    commands: &[Command],
) -> u64 {
    let writes = commands.len() as u64;
    if writes == 0 {
        return 0;
    }
    // IMMEDIATE takes the write lock up front, so a busy database is
    // waited for (busy_timeout) here rather than failing half-way.
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tally.note(
                path,
                &format!("a batch of {writes} write(s)"),
                writes,
                format!("could not start a transaction: {e}"),
            );
            return writes;
        }
    };
    let mut applied = 0;
    for command in commands {
        // A savepoint per command: one bad command (say a duplicate request
        // id) is undone alone and does not take the rest of the batch with it.
        match apply_in_savepoint(&mut tx, command) {
            Ok(()) => applied += 1,
            Err(e) => tally.note(path, &command.describe(), 1, e.to_string()),
        }
    }
    if let Err(e) = tx.commit() {
        tally.note(
            path,
            &format!("a batch of {applied} write(s)"),
            applied,
            format!("could not commit: {e}"),
        );
    }
    writes
}

fn apply_in_savepoint(
    tx: &mut rusqlite::Transaction<'_>,
    command: &Command,
) -> rusqlite::Result<()> {
    let sp = tx.savepoint()?;
    apply(&sp, command)?;
    sp.commit()
}

fn apply(conn: &Connection, command: &Command) -> rusqlite::Result<()> {
    match command {
        Command::SessionStarted(s) => session_started(conn, s),
        Command::Turn(t) => record_turn(conn, t),
        Command::SessionEnded {
            id,
            ended_at_ms,
            reason,
        } => session_ended(conn, id, *ended_at_ms, reason),
        Command::SetSkillGeneration(generation) => set_skill_generation(conn, *generation),
        Command::Judgement(j) => record_judgement(conn, j),
        Command::SupportSet {
            evolution_id,
            turn_ids,
        } => mark_support_set(conn, evolution_id, turn_ids),
        Command::Evolution(e) => record_evolution(conn, e),
        Command::Schedule(r) => crate::schedule::apply(conn, r),
        Command::Curation(c) => crate::curation::apply(conn, c),
        Command::Training(t) => crate::training::apply(conn, t),
        Command::Flush(_) | Command::FlushTurns(_) | Command::Shutdown => Ok(()),
    }
}

fn session_started(conn: &Connection, s: &SessionStart) -> rusqlite::Result<()> {
    // A known id starting again (the client kept its X-Session-Id across a
    // quiet period or a proxy restart) continues the same session: keep its
    // first start and its turns, and mark it open again.
    conn.prepare_cached(
        "INSERT INTO sessions (id, session_key, key_source, started_at_ms, last_seen_at_ms, turn_count)
         VALUES (?1, ?2, ?3, ?4, ?4, 0)
         ON CONFLICT (id) DO UPDATE SET
             last_seen_at_ms = max(last_seen_at_ms, excluded.started_at_ms),
             ended_at_ms = NULL,
             end_reason = NULL",
    )?
    .execute(params![s.id, s.session_key, s.key_source, s.started_at_ms])?;
    Ok(())
}

fn record_turn(conn: &Connection, t: &TurnRecord) -> rusqlite::Result<()> {
    // The session row can be missing when its start was recorded by a process
    // that died, or never sent; the turn carries enough to recreate it.
    conn.prepare_cached(
        "INSERT INTO sessions (id, session_key, key_source, started_at_ms, last_seen_at_ms, turn_count)
         VALUES (?1, ?2, ?3, ?4, ?4, 0)
         ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![t.session_id, t.session_key, t.key_source, t.started_at_ms])?;

    // Here, not in `Store::record_turn`: the request path only queues the text.
    let (request_encoding, request) = compact::encode_request(conn, &t.request_json)?;
    conn.prepare_cached(
        "INSERT INTO turns (
             request_id, session_id, turn_index, turn_type, client_dialect, upstream_api,
             model, stream, started_at_ms, latency_ms, ttfb_ms, status, http_status,
             prompt_tokens, completion_tokens, skill_generation, request_json, response_json, error,
             request_encoding)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                 ?20)",
    )?
    .execute(params![
        t.request_id,
        t.session_id,
        t.turn_index,
        t.turn_type.as_str(),
        t.client_dialect,
        t.upstream_api,
        t.model,
        t.stream,
        t.started_at_ms,
        t.latency_ms,
        t.ttfb_ms,
        t.status.as_str(),
        t.http_status,
        t.prompt_tokens,
        t.completion_tokens,
        t.skill_generation,
        request,
        t.response_json,
        t.error,
        request_encoding.column_value(),
    ])?;
    let turn_id = conn.last_insert_rowid();

    let mut insert_skill = conn.prepare_cached(
        "INSERT INTO turn_skills (turn_id, skill_name, rank) VALUES (?1, ?2, ?3)",
    )?;
    for (rank, name) in t.injected_skills.iter().enumerate() {
        insert_skill.execute(params![turn_id, name, rank])?;
    }

    // Last seen is when the turn finished. Turns are recorded when their
    // response ends, so a long stream can arrive after a later short one:
    // max() keeps the value from going backwards.
    let finished_at_ms = t
        .started_at_ms
        .saturating_add(t.latency_ms.max(0.0).round() as i64);
    conn.prepare_cached(
        "UPDATE sessions
         SET last_seen_at_ms = max(last_seen_at_ms, ?2), turn_count = turn_count + 1
         WHERE id = ?1",
    )?
    .execute(params![t.session_id, finished_at_ms])?;
    Ok(())
}

fn session_ended(
    conn: &Connection,
    id: &str,
    ended_at_ms: i64,
    reason: &str,
) -> rusqlite::Result<()> {
    let changed = conn
        .prepare_cached("UPDATE sessions SET ended_at_ms = ?2, end_reason = ?3 WHERE id = ?1")?
        .execute(params![id, ended_at_ms, reason])?;
    if changed == 0 {
        // A session that ended before it recorded anything (or whose start
        // died with a previous process) has nothing worth a row.
        tracing::debug!(
            session = id,
            "ignored the end of a session the store has never seen"
        );
    }
    Ok(())
}

fn set_skill_generation(conn: &Connection, generation: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('skill_generation', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([generation])?;
    Ok(())
}

fn record_judgement(conn: &Connection, j: &JudgementRecord) -> rusqlite::Result<()> {
    // A scored turn has no next attempt; a failed one keeps no score, so it
    // can never be mistaken for a 0.
    let (state, next_attempt_at_ms) = match j.score {
        Some(_) => (JudgementState::Scored, None),
        None => (JudgementState::FailedRetry, Some(j.next_attempt_at_ms)),
    };
    let judged_at_ms = j.score.map(|_| j.judged_at_ms);
    // A score is final: a late or duplicate attempt never replaces it.
    let changed = conn
        .prepare_cached(
            "INSERT INTO judgements (turn_id, state, score, reason, judge_model, attempts,
                                 next_attempt_at_ms, judged_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7)
         ON CONFLICT (turn_id) DO UPDATE SET
             state = excluded.state, score = excluded.score, reason = excluded.reason,
             judge_model = excluded.judge_model, attempts = attempts + 1,
             next_attempt_at_ms = excluded.next_attempt_at_ms,
             judged_at_ms = excluded.judged_at_ms
         WHERE judgements.state <> 'scored'",
        )?
        .execute(params![
            j.turn_id,
            state.as_str(),
            j.score,
            j.reason,
            j.judge_model,
            next_attempt_at_ms,
            judged_at_ms,
        ])?;
    if changed == 0 {
        return Ok(());
    }
    // The votes shown are those of the latest attempt.
    conn.prepare_cached("DELETE FROM judgement_votes WHERE turn_id = ?1")?
        .execute([j.turn_id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO judgement_votes (turn_id, vote_index, score, failure) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (index, vote) in j.votes.iter().enumerate() {
        insert.execute(params![j.turn_id, index, vote.score, vote.failure])?;
    }
    Ok(())
}

fn mark_support_set(
    conn: &Connection,
    evolution_id: &str,
    turn_ids: &[i64],
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO support_sets (evolution_id, turn_id) VALUES (?1, ?2)
         ON CONFLICT DO NOTHING",
    )?;
    for turn_id in turn_ids {
        insert.execute(params![evolution_id, turn_id])?;
    }
    Ok(())
}

fn record_evolution(conn: &Connection, e: &EvolutionRecord) -> rusqlite::Result<()> {
    let count = |outcome: EvolvedSkillOutcome| e.count(outcome) as i64;
    conn.prepare_cached(
        "INSERT INTO evolutions (id, session_id, trigger, model, started_at_ms, finished_at_ms,
                                 status, error, added, merged, dropped)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        e.id,
        e.session_id,
        e.trigger,
        e.model,
        e.started_at_ms,
        e.finished_at_ms,
        e.status(),
        e.error,
        count(EvolvedSkillOutcome::Added) + count(EvolvedSkillOutcome::Pending),
        count(EvolvedSkillOutcome::Merged),
        count(EvolvedSkillOutcome::Dropped),
    ])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO evolution_skills (evolution_id, position, skill_name, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (position, skill) in e.skills.iter().enumerate() {
        insert.execute(params![
            e.id,
            position,
            skill.name,
            skill.outcome.as_str(),
            skill.detail
        ])?;
    }
    Ok(())
}

#[cfg(test)]
// Tests may fail loudly; the no-panic policy is for the store itself.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::testing::{session, turn};
    use crate::{schema, Store, StoreReader};

    fn count_turns(path: &Path) -> u64 {
        StoreReader::open(path).unwrap().counts().unwrap().turns
    }

    #[tokio::test]
    async fn flush_resolves_after_everything_before_it_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store = Store::open(&path).unwrap();
        // A reader opened before the writes sees them once flushed, without
        // the store being closed: the commit is visible to other connections.
        let reader = store.reader().unwrap();
        store.session_started(session("s1", 1_000));
        for i in 0..100 {
            store.record_turn(turn("s1", i, &["a"]));
        }
        store.flush().await.unwrap();
        assert_eq!(reader.counts().unwrap().turns, 100);

        store.record_turn(turn("s1", 100, &[]));
        store.flush().await.unwrap();
        assert_eq!(reader.counts().unwrap().turns, 101);
    }

    #[tokio::test]
    async fn a_failed_write_is_isolated_and_reported_by_the_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store = Store::open(&path).unwrap();
        store.record_turn(turn("s1", 0, &["a", "b"]));
        // Same request id: violates UNIQUE, must not undo its neighbours.
        let mut duplicate = turn("s1", 0, &["c"]);
        duplicate.turn_index = 9;
        store.record_turn(duplicate);
        store.record_turn(turn("s1", 1, &[]));

        let err = store.flush().await.unwrap_err();
        assert!(
            matches!(err, StoreError::WriteFailed { failed: 1, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("store.sqlite3") && text.contains("UNIQUE"),
            "{text}"
        );
        // The tally is reset: the next flush has nothing to report.
        store.flush().await.unwrap();

        let detail = store.reader().unwrap().session("s1").unwrap().unwrap();
        assert_eq!(
            detail.session.turn_count, 2,
            "the failed turn must not count"
        );
        let skills: Vec<_> = detail
            .turns
            .iter()
            .map(|t| t.injected_skills.clone())
            .collect();
        assert_eq!(skills, vec![vec!["a".to_owned(), "b".to_owned()], vec![]]);
    }

    #[tokio::test]
    async fn close_commits_what_was_queued_and_stops_every_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store = Store::open(&path).unwrap();
        let other = store.clone();
        for i in 0..500 {
            store.record_turn(turn("s1", i, &[]));
        }
        store.close();
        assert_eq!(count_turns(&path), 500);

        // The clone outlives the writer: recording is dropped quietly (and
        // logged), a flush says why.
        other.record_turn(turn("s1", 500, &[]));
        let err = other.flush().await.unwrap_err();
        assert!(matches!(err, StoreError::WriterGone { .. }), "{err:?}");
        other.close();
        assert_eq!(count_turns(&path), 500);
    }

    #[test]
    fn dropping_the_last_handle_drains_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store = Store::open(&path).unwrap();
        for i in 0..300 {
            store.record_turn(turn("s1", i, &[]));
        }
        drop(store);
        // Drop does not wait, so poll. The bound only keeps a broken drain
        // from hanging the suite; nothing here measures speed.
        let mut turns = 0;
        for _ in 0..6_000 {
            turns = count_turns(&path);
            if turns == 300 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(turns, 300);
    }

    #[test]
    fn turns_commit_before_learning_writes_and_their_flush_does_not_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let conn = schema::open_for_writing(&path).unwrap();
        let (commands, queue) = mpsc::channel();
        // Learning writes queued before and after a turn, then both kinds of
        // flush, all in one batch.
        commands.send(Command::SetSkillGeneration(3)).unwrap();
        commands
            .send(Command::Turn(Box::new(turn("s1", 0, &[]))))
            .unwrap();
        let (turns_ack, mut turns_done) = oneshot::channel();
        commands.send(Command::FlushTurns(turns_ack)).unwrap();
        commands.send(Command::SetSkillGeneration(4)).unwrap();
        let (ack, mut done) = oneshot::channel();
        commands.send(Command::Flush(ack)).unwrap();
        drop(commands);
        let stats = spawn(
            conn,
            path.clone(),
            queue,
            crate::checkpoint::spawn(&path).unwrap(),
        )
        .unwrap()
        .join()
        .unwrap();
        // One transaction for the conversation, one for learning.
        assert_eq!(
            stats,
            WriterStats {
                transactions: 2,
                writes: 3
            }
        );
        assert!(matches!(turns_done.try_recv(), Ok(Ok(()))));
        assert!(matches!(done.try_recv(), Ok(Ok(()))));
        assert_eq!(count_turns(&path), 1);
        // Learning writes keep their own order.
        let reader = crate::StoreReader::open(&path).unwrap();
        assert_eq!(reader.skill_generation().unwrap(), 4);
    }

    #[test]
    fn queued_commands_are_grouped_into_few_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let conn = schema::open_for_writing(&path).unwrap();
        let (commands, queue) = mpsc::channel();
        let total = 2 * MAX_BATCH + 10;
        for i in 0..total {
            commands
                .send(Command::Turn(Box::new(turn("s1", i as u32, &[]))))
                .unwrap();
        }
        let (ack, mut done) = oneshot::channel();
        commands.send(Command::Flush(ack)).unwrap();
        drop(commands);

        // Everything is queued before the writer starts, so it must take
        // full batches rather than one transaction per command.
        let stats = spawn(
            conn,
            path.clone(),
            queue,
            crate::checkpoint::spawn(&path).unwrap(),
        )
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(
            stats,
            WriterStats {
                transactions: 3,
                writes: total as u64
            }
        );
        assert!(matches!(done.try_recv(), Ok(Ok(()))));
        assert_eq!(count_turns(&path), total as u64);
    }

    #[test]
    fn a_shutdown_ends_the_batch_and_drops_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let conn = schema::open_for_writing(&path).unwrap();
        let (commands, queue) = mpsc::channel();
        commands
            .send(Command::Turn(Box::new(turn("s1", 0, &[]))))
            .unwrap();
        commands.send(Command::Shutdown).unwrap();
        commands
            .send(Command::Turn(Box::new(turn("s1", 1, &[]))))
            .unwrap();
        let (ack, mut done) = oneshot::channel();
        commands.send(Command::Flush(ack)).unwrap();

        let stats = spawn(
            conn,
            path.clone(),
            queue,
            crate::checkpoint::spawn(&path).unwrap(),
        )
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(stats.writes, 1);
        assert_eq!(count_turns(&path), 1);
        // The flush behind the shutdown is never answered: its sender is gone.
        assert!(done.try_recv().is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_tasks_record_concurrently() {
        const TASKS: u32 = 8;
        const TURNS: u32 = 50;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store = Store::open(&path).unwrap();

        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("task-{task}");
                store.session_started(session(&id, i64::from(task)));
                for i in 0..TURNS {
                    store.record_turn(turn(&id, i, &["shared", &id]));
                    if i % 10 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                store.flush().await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }

        let reader = store.reader().unwrap();
        let counts = reader.counts().unwrap();
        assert_eq!(counts.sessions, u64::from(TASKS));
        assert_eq!(counts.turns, u64::from(TASKS * TURNS));
        for task in 0..TASKS {
            let detail = reader.session(&format!("task-{task}")).unwrap().unwrap();
            assert_eq!(detail.session.turn_count, TURNS);
            let indexes: Vec<u32> = detail.turns.iter().map(|t| t.turn_index).collect();
            assert_eq!(indexes, (0..TURNS).collect::<Vec<_>>());
        }
        let usage = reader.skill_usage().unwrap();
        assert_eq!(usage["shared"].injected, u64::from(TASKS * TURNS));
        assert_eq!(usage["task-3"].injected, u64::from(TURNS));
        store.close();
    }
}
