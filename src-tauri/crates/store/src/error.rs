//! The one error type of the store: every variant names the database file and what failed.

use std::path::PathBuf;

/// Everything that can go wrong opening, migrating, writing or reading the store.
///
/// Each message carries the database path and the underlying cause in its own
/// text (the cause is deliberately not also exposed through `source()`, so an
/// error chain printer does not repeat it): the CLI and the UI show `to_string()`
/// as is, and it must be enough to act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not create the directory {} for the store database: {cause}", path.display())]
    CreateDir {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("could not open the store database {}: {cause}", path.display())]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },

    #[error(
        "the store database {} does not exist (it is created when the proxy first starts)",
        path.display()
    )]
    NotFound { path: PathBuf },

    #[error("could not set PRAGMA {pragma} on the store database {}: {cause}", path.display())]
    Pragma {
        path: PathBuf,
        pragma: &'static str,
        cause: rusqlite::Error,
    },

    #[error(
        "the store database {} could not switch to WAL journaling (SQLite kept {mode:?}); \
         is it on a network or read-only file system?",
        path.display()
    )]
    WalUnavailable { path: PathBuf, mode: String },

    #[error(
        "{} is an SQLite database of another application (application_id {application_id:#x}), \
         not a MetaClaw store",
        path.display()
    )]
    NotMetaClaw { path: PathBuf, application_id: i32 },

    #[error(
        "the store database {} has schema version {found}, newer than version {supported} \
         that this MetaClaw understands; upgrade MetaClaw to use it",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error(
        "the store database {} has schema version {found} but version {expected} is needed; \
         start the proxy once (`metaclaw serve`) to upgrade it",
        path.display()
    )]
    OlderSchema {
        path: PathBuf,
        found: i64,
        expected: i64,
    },

    #[error("could not migrate the store database {} to version {version} ({name}): {cause}", path.display())]
    Migrate {
        path: PathBuf,
        version: i64,
        name: &'static str,
        cause: rusqlite::Error,
    },

    #[error("could not start the writer thread for the store database {}: {cause}", path.display())]
    SpawnWriter {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("the writer of the store database {} has stopped; nothing more can be recorded", path.display())]
    WriterGone { path: PathBuf },

    #[error(
        "{failed} write(s) to the store database {} failed since the previous flush; last error: {reason}",
        path.display()
    )]
    WriteFailed {
        path: PathBuf,
        failed: u64,
        reason: String,
    },

    #[error("could not {what} in the store database {}: {cause}", path.display())]
    Query {
        path: PathBuf,
        what: &'static str,
        cause: rusqlite::Error,
    },

    #[error("the store database {} holds an unexpected {column} value {value:?}", path.display())]
    InvalidValue {
        path: PathBuf,
        column: &'static str,
        value: String,
    },

    #[error(
        "the session id prefix {prefix:?} matches several sessions in {} ({}); give more characters",
        path.display(),
        matches.join(", ")
    )]
    AmbiguousPrefix {
        path: PathBuf,
        prefix: String,
        matches: Vec<String>,
    },
}
