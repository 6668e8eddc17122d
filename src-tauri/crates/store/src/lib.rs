//! The MetaClaw store: one SQLite file recording every session and turn, written off the request path.
//!
//! [`Store`] is a cheap, cloneable handle to a single writer thread that owns
//! the write connection; recording through it never blocks and never fails
//! loudly. [`StoreReader`] reads the same file on a connection of its own, from
//! this process or another one (the CLI while a server runs).
//!
//! Agents resend the whole conversation with every request, so requests are
//! not stored as sent: the writer keeps each distinct part once and a turn
//! refers to its parts (module `compact`), and the reader puts them back
//! together. Storage grows with what is new in each request, not its size.
//!
//! ```no_run
//! # async fn example() -> Result<(), metaclaw_store::StoreError> {
//! use metaclaw_store::{SessionStart, Store};
//!
//! let store = Store::open(std::path::Path::new("/tmp/metaclaw/store.sqlite3"))?;
//! store.session_started(SessionStart {
//!     id: "0193b7c2".into(),
//!     session_key: "0193b7c2".into(),
//!     key_source: "header".into(),
//!     started_at_ms: 1_700_000_000_000,
//! });
//! // ...store.record_turn(turn) after each response...
//! store.flush().await?; // everything above is now committed
//! let sessions = store.reader()?.list_sessions(20, 0)?;
//! # Ok(()) }
//! ```

mod checkpoint;
mod chunk;
mod compact;
mod curation;
mod error;
mod reader;
mod records;
mod schedule;
mod schema;
mod session_overview;
mod skill_history;
mod training;
mod writer;

#[cfg(test)]
mod judgement_tests;
#[cfg(test)]
mod testing;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use curation::{CurationAction, CurationActor, CurationRecord};
pub use error::StoreError;
pub use reader::{StoreReader, MIN_ID_PREFIX};
pub use records::{
    EvolutionRecord, EvolvedSkill, EvolvedSkillOutcome, JudgeVote, Judgement, JudgementRecord,
    JudgementState, SessionDetail, SessionStart, SessionSummary, SkillUsage, StoreCounts,
    TrainingTurn, TurnRecord, TurnRow, TurnStatus, TurnToJudge, TurnType,
};
pub use schedule::{ScheduleRecord, StateRow, WindowRow, WorkRow};
pub use session_overview::SessionOverview;
pub use skill_history::{SkillEvolution, SkillTurn};
pub use training::{
    CheckpointKind, CheckpointRecord, RequestTokens, StepOutcome, TrainingRecord,
    TrainingStepRecord, TrainingSummary, TurnTokens,
};

use writer::Command;

/// A handle to the store's writer thread. Clones share the one writer.
///
/// Every recording method only queues a command and returns. When the last
/// handle is dropped the writer commits everything still queued and exits on
/// its own; [`Store::close`] does the same and waits for it.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    commands: Sender<Command>,
    /// Taken by the first `close`, which joins the thread.
    writer: Mutex<Option<JoinHandle<writer::WriterStats>>>,
    /// Set once a send found the writer gone, so a stopped writer is reported
    /// loudly once and not again for every later request.
    gone_reported: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl Store {
    /// Opens the database at `path`, creating its directory and the file if
    /// needed, brings the schema up to date and starts the writer thread.
    /// This blocks on the disk, once, at start-up.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = schema::open_for_writing(path)?;
        // Unbounded on purpose: the request path must never wait for the
        // disk. The queue only grows if the disk is slower than the request
        // rate, and each entry is one turn that would otherwise be lost.
        let (commands, queue) = mpsc::channel();
        let checkpointer = checkpoint::spawn(path)?;
        let handle = writer::spawn(conn, path.to_path_buf(), queue, checkpointer)?;
        Ok(Store {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                commands,
                writer: Mutex::new(Some(handle)),
                gone_reported: AtomicBool::new(false),
            }),
        })
    }

    /// The database file this store writes.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Records that a session began. Does not wait.
    pub fn session_started(&self, s: SessionStart) {
        self.send(Command::SessionStarted(s));
    }

    /// Records a finished turn with its injected skills and updates its
    /// session (creating the session row if it is missing). Does not wait.
    pub fn record_turn(&self, t: TurnRecord) {
        self.send(Command::Turn(Box::new(t)));
    }

    /// Records that a session ended and why. Does not wait.
    pub fn session_ended(&self, id: &str, ended_at_ms: i64, reason: &str) {
        self.send(Command::SessionEnded {
            id: id.to_owned(),
            ended_at_ms,
            reason: reason.to_owned(),
        });
    }

    /// Stores the current skill generation, read back by
    /// [`StoreReader::skill_generation`]. Does not wait.
    pub fn set_skill_generation(&self, generation: i64) {
        self.send(Command::SetSkillGeneration(generation));
    }

    /// Records a judging attempt on a turn: its score, or (every vote
    /// failed) a retry at `next_attempt_at_ms`. Does not wait.
    pub fn record_judgement(&self, j: JudgementRecord) {
        self.send(Command::Judgement(Box::new(j)));
    }

    /// Marks turns as the support set of an evolution: the turns it learned
    /// from, which training data then leaves out. Does not wait.
    pub fn mark_support_set(&self, evolution_id: &str, turn_ids: Vec<i64>) {
        self.send(Command::SupportSet {
            evolution_id: evolution_id.to_owned(),
            turn_ids,
        });
    }

    /// Records one run of the skill evolver and its proposed skills. Does not wait.
    pub fn record_evolution(&self, e: EvolutionRecord) {
        self.send(Command::Evolution(Box::new(e)));
    }

    /// Records an action on a skill (the curator's or the user's). Does not wait.
    pub fn record_curation(&self, c: CurationRecord) {
        self.send(Command::Curation(Box::new(c)));
    }

    /// Records a scheduler event (window, work, state, idle stretch, pause).
    /// Does not wait.
    pub fn record_schedule(&self, record: ScheduleRecord) {
        self.send(Command::Schedule(Box::new(record)));
    }

    /// Records a change to the slow loop's records (policy tokens of a
    /// turn, the batch being collected, a step, a checkpoint). Does not wait.
    pub fn record_training(&self, record: TrainingRecord) {
        self.send(Command::Training(Box::new(record)));
    }

    /// Resolves once every command sent through any handle before this call
    /// is committed. Fails if the writer has stopped, or if any write failed
    /// since the previous flush (the failures are also logged as they happen).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.wait(Command::Flush).await
    }

    /// Resolves once every session and turn sent before this call is
    /// committed, without waiting for the learning loops' writes queued
    /// alongside: what an answer waits for before its last bytes go out.
    pub async fn flush_turns(&self) -> Result<(), StoreError> {
        self.wait(Command::FlushTurns).await
    }

    async fn wait(
        &self,
        command: fn(oneshot::Sender<Result<(), StoreError>>) -> Command,
    ) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        if self.shared.commands.send(command(ack)).is_err() {
            return Err(self.writer_gone());
        }
        match done.await {
            Ok(result) => result,
            Err(_) => Err(self.writer_gone()),
        }
    }

    /// Opens a read-only view of the same file.
    pub fn reader(&self) -> Result<StoreReader, StoreError> {
        StoreReader::open(&self.shared.path)
    }

    /// Commits everything sent before this call, stops the writer and waits
    /// for it. Blocks the calling thread (in async code, call it from
    /// `spawn_blocking`). Other handles stay valid, but what they send
    /// afterwards is not recorded and is reported as an error in the log.
    pub fn close(self) {
        // A failed send means the writer has already stopped.
        let _ = self.shared.commands.send(Command::Shutdown);
        let handle = match self.shared.writer.lock() {
            Ok(mut guard) => guard.take(),
            // The lock only guards the handle; a panic elsewhere while it was
            // held leaves nothing half-done.
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!(path = %self.shared.path.display(), "the store writer thread panicked");
            }
        }
    }

    fn send(&self, command: Command) {
        if let Err(mpsc::SendError(command)) = self.shared.commands.send(command) {
            let path = self.shared.path.display();
            let what = command.describe();
            if self.shared.gone_reported.swap(true, Ordering::Relaxed) {
                tracing::debug!(path = %path, "store writer has stopped; {what} was not recorded");
            } else {
                tracing::error!(path = %path, "store writer has stopped; {what} was not recorded, nor will anything after it be");
            }
        }
    }

    fn writer_gone(&self) -> StoreError {
        StoreError::WriterGone {
            path: self.shared.path.clone(),
        }
    }
}

#[cfg(test)]
// Tests may fail loudly; the no-panic policy is for the store itself.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::testing::{session, turn};

    #[tokio::test]
    async fn a_reopened_store_keeps_everything_and_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/store.sqlite3");

        let store = Store::open(&path).unwrap();
        assert_eq!(store.path(), path);
        store.session_started(session("s1", 1_000));
        store.record_turn(turn("s1", 0, &["a"]));
        store.set_skill_generation(2);
        store.close();

        let store = Store::open(&path).unwrap();
        // The session continues across the restart without a new start.
        store.record_turn(turn("s1", 1, &["b"]));
        store.session_ended("s1", 5_000, "quiet");
        store.flush().await.unwrap();
        drop(store);

        let reader = StoreReader::open(&path).unwrap();
        assert_eq!(reader.skill_generation().unwrap(), 2);
        let detail = reader.session("s1").unwrap().unwrap();
        assert_eq!(detail.session.turn_count, 2);
        assert_eq!(detail.session.ended_at_ms, Some(5_000));
        let skills: Vec<_> = detail
            .turns
            .iter()
            .map(|t| t.injected_skills.clone())
            .collect();
        assert_eq!(skills, vec![vec!["a".to_owned()], vec!["b".to_owned()]]);
    }

    #[test]
    fn an_unusable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let err = Store::open(&blocker.join("store.sqlite3")).unwrap_err();
        assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    #[test]
    fn the_handle_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Store>();
        fn assert_send<T: Send>() {}
        assert_send::<StoreReader>();
    }
}
