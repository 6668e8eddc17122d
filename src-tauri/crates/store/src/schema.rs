//! Opening the database file: connection settings and the numbered schema migrations.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::StoreError;

/// Marks the file as a MetaClaw store ("MCLW"), so another application's
/// SQLite file is refused instead of having our tables added to it.
pub(crate) const APPLICATION_ID: i32 = 0x4D43_4C57;

/// How long a connection waits for a lock before failing with SQLITE_BUSY.
/// Only the writer writes, but readers briefly lock during WAL recovery and
/// checkpoints, and a second process may open the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One numbered schema step. Steps are applied in order and never edited once
/// released: a change is always a new step.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "request_blobs",
        sql: include_str!("../migrations/0002_request_blobs.sql"),
    },
    Migration {
        version: 3,
        name: "judgements",
        sql: include_str!("../migrations/0003_judgements.sql"),
    },
    Migration {
        version: 4,
        name: "evolutions",
        sql: include_str!("../migrations/0004_evolutions.sql"),
    },
    Migration {
        version: 5,
        name: "schedule",
        sql: include_str!("../migrations/0005_schedule.sql"),
    },
    Migration {
        version: 6,
        name: "curation",
        sql: include_str!("../migrations/0006_curation.sql"),
    },
    Migration {
        version: 7,
        name: "training",
        sql: include_str!("../migrations/0007_training.sql"),
    },
];

/// The schema version this build writes and reads.
pub(crate) const LATEST_VERSION: i64 = 7;

/// Opens (creating if needed) the database for writing, applies the
/// connection settings and brings the schema up to date.
pub(crate) fn open_for_writing(path: &Path) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|cause| StoreError::CreateDir {
            path: parent.to_path_buf(),
            cause,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|cause| StoreError::Open {
        path: path.to_path_buf(),
        cause,
    })?;
    configure_writer(&conn, path)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens an existing database read-only and checks that its schema is the one
/// this build understands.
pub(crate) fn open_for_reading(path: &Path) -> Result<Connection, StoreError> {
    // Checked first because SQLite's own "unable to open database file" does
    // not say that the file is simply not there yet.
    if !path.is_file() {
        return Err(StoreError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|cause| StoreError::Open {
        path: path.to_path_buf(),
        cause,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|cause| pragma_error(path, "busy_timeout", cause))?;
    check_application_id(&conn, path)?;
    let found = user_version(&conn, path)?;
    if found > LATEST_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: LATEST_VERSION,
        });
    }
    // A reader cannot migrate, and queries against an older schema would fail
    // with confusing "no such column" errors.
    if found < LATEST_VERSION {
        return Err(StoreError::OlderSchema {
            path: path.to_path_buf(),
            found,
            expected: LATEST_VERSION,
        });
    }
    Ok(conn)
}

fn configure_writer(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    // WAL: readers (the CLI, the dashboard) never block the writer and the
    // writer never blocks them; a commit is one sequential append to the log.
    // The mode is persistent in the file, and SQLite answers with the mode it
    // actually chose, which is not WAL on file systems without shared memory.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|cause| pragma_error(path, "journal_mode", cause))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::WalUnavailable {
            path: path.to_path_buf(),
            mode,
        });
    }
    // NORMAL: in WAL mode a commit is written to the log before COMMIT returns
    // but not fsynced, so every committed turn survives a crash or kill of this
    // process; only an OS crash or power loss can drop the last commits. FULL
    // would fsync every commit, a cost per turn we do not want to pay.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|cause| pragma_error(path, "synchronous", cause))?;
    // No automatic checkpoint: it would run inside a commit, fsync included,
    // and an answer waiting for that commit would wait for the disk. The
    // checkpoint thread (checkpoint.rs) does it instead, off the commit path.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(|cause| pragma_error(path, "wal_autocheckpoint", cause))?;
    // After a checkpoint resets the log, keep at most this much of its file.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(|cause| pragma_error(path, "journal_size_limit", cause))?;
    // See BUSY_TIMEOUT: wait for a lock rather than fail a whole batch.
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|cause| pragma_error(path, "busy_timeout", cause))?;
    // SQLite does not enforce REFERENCES clauses unless asked, per connection.
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|cause| pragma_error(path, "foreign_keys", cause))?;
    Ok(())
}

/// Applies every step newer than the file's `user_version`, all in one
/// transaction, so the file is either fully upgraded or untouched.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    check_application_id(conn, path)?;
    // IMMEDIATE takes the write lock before reading the version, so two
    // processes opening a fresh file at once cannot both run step 1.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|cause| query_error(path, "start the migration transaction", cause))?;
    let found = user_version(&tx, path)?;
    if found > LATEST_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: LATEST_VERSION,
        });
    }
    if found == LATEST_VERSION {
        return Ok(());
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > found) {
        let fail = |cause| StoreError::Migrate {
            path: path.to_path_buf(),
            version: step.version,
            name: step.name,
            cause,
        };
        tx.execute_batch(step.sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", step.version)
            .map_err(fail)?;
        tracing::info!(path = %path.display(), version = step.version, name = step.name, "migrated the store");
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(|cause| pragma_error(path, "application_id", cause))?;
    tx.commit()
        .map_err(|cause| query_error(path, "commit the migration", cause))
}

/// Refuses files that another application has stamped with its own id. A
/// fresh file has id 0 and gets ours during the first migration.
fn check_application_id(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|cause| pragma_error(path, "application_id", cause))?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(StoreError::NotMetaClaw {
            path: path.to_path_buf(),
            application_id,
        });
    }
    Ok(())
}

fn user_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|cause| pragma_error(path, "user_version", cause))
}

fn pragma_error(path: &Path, pragma: &'static str, cause: rusqlite::Error) -> StoreError {
    StoreError::Pragma {
        path: path.to_path_buf(),
        pragma,
        cause,
    }
}

pub(crate) fn query_error(path: &Path, what: &'static str, cause: rusqlite::Error) -> StoreError {
    StoreError::Query {
        path: path.to_path_buf(),
        what,
        cause,
    }
}

#[cfg(test)]
// Tests may fail loudly; the no-panic policy is for the store itself.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order_up_to_latest() {
        for (i, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version, i as i64 + 1, "step {}", step.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST_VERSION));
    }

    #[test]
    fn fresh_file_is_migrated_with_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/store.sqlite3");
        let conn = open_for_writing(&path).unwrap();
        assert_eq!(user_version(&conn, &path).unwrap(), LATEST_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        // synchronous NORMAL is 1.
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1);
        let app: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(app, APPLICATION_ID);
        let generation: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'skill_generation'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(generation, 0);
        for table in ["sessions", "turns", "turn_skills", "meta", "blobs"] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "table {table}");
        }
    }

    #[test]
    fn reopening_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let conn = open_for_writing(&path).unwrap();
        conn.execute(
            "UPDATE meta SET value = 7 WHERE key = 'skill_generation'",
            [],
        )
        .unwrap();
        drop(conn);
        let conn = open_for_writing(&path).unwrap();
        assert_eq!(user_version(&conn, &path).unwrap(), LATEST_VERSION);
        let generation: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'skill_generation'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(generation, 7, "a re-open must not re-run step 1");
    }

    #[test]
    fn newer_schema_is_refused_by_writer_and_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let conn = open_for_writing(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);

        let err = open_for_writing(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NewerSchema {
                    found: 99,
                    supported: LATEST_VERSION,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("store.sqlite3") && text.contains("99"),
            "{text}"
        );

        let err = open_for_reading(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 99, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn foreign_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", 1234).unwrap();
        drop(conn);
        let err = open_for_writing(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NotMetaClaw {
                    application_id: 1234,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn reader_needs_an_existing_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.sqlite3");
        let err = open_for_reading(&path).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        assert!(!path.exists(), "a reader must not create the file");

        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        drop(conn);
        let err = open_for_reading(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::OlderSchema { found: 0, .. }),
            "{err:?}"
        );
    }
}
