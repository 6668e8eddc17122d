//! Moves committed pages from the write-ahead log into the database file, on
//! a thread of its own.
//!
//! SQLite's automatic checkpoint runs inside whichever commit crosses its
//! threshold, fsync of the database file included; that can take
//! milliseconds, and an answer waiting for its turn's commit would wait for
//! it too. So the writer turns the automatic checkpoint off and nudges this
//! thread after it commits; the thread checkpoints at most once per
//! [`INTERVAL`] and sleeps while nothing is written.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;

/// Longest time committed pages stay only in the log while writes go on.
const INTERVAL: Duration = Duration::from_secs(1);

/// The writer's handle to the checkpoint thread.
pub(crate) struct Checkpointer {
    nudge: SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Something was committed. Never blocks: one pending nudge is as good
    /// as many.
    pub(crate) fn committed(&self) {
        let _ = self.nudge.try_send(());
    }

    /// Runs a last checkpoint and waits for the thread to end.
    pub(crate) fn stop(self) {
        drop(self.nudge);
        if self.thread.join().is_err() {
            tracing::error!("the store checkpoint thread panicked");
        }
    }
}

/// Starts the checkpoint thread for the database at `path`.
pub(crate) fn spawn(path: &Path) -> Result<Checkpointer, StoreError> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(|cause| {
            StoreError::Open {
                path: path.to_path_buf(),
                cause,
            }
        })?;
    // A checkpoint may meet a reader's lock; waiting a moment beats skipping.
    conn.busy_timeout(Duration::from_millis(200))
        .map_err(|cause| {
            crate::schema::query_error(path, "setting the checkpoint busy timeout", cause)
        })?;
    let (nudge, nudges) = mpsc::sync_channel(1);
    let thread_path = path.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("metaclaw-store-checkpoint".to_owned())
        .spawn(move || run(&conn, &thread_path, &nudges))
        .map_err(|cause| StoreError::SpawnWriter {
            path: path.to_path_buf(),
            cause,
        })?;
    Ok(Checkpointer { nudge, thread })
}

fn run(conn: &Connection, path: &Path, nudges: &Receiver<()>) {
    while nudges.recv().is_ok() {
        // Let a burst of commits gather, then move them all at once.
        let deadline = Instant::now() + INTERVAL;
        loop {
            match nudges.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    checkpoint(conn, path);
                    return;
                }
            }
        }
        checkpoint(conn, path);
    }
    checkpoint(conn, path);
}

fn checkpoint(conn: &Connection, path: &Path) {
    // PASSIVE never blocks the writer or readers; pages a reader still needs
    // are moved by a later checkpoint.
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(path = %path.display(), %error, "checkpoint failed; the log keeps growing until one succeeds");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_pages_reach_the_database_file_after_a_nudge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (zeroblob(100000));")
            .unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let checkpointer = spawn(&path).unwrap();
        checkpointer.committed();
        checkpointer.stop();
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(
            after >= before + 100_000,
            "the data stayed in the log: {before} -> {after} bytes"
        );
    }
}
