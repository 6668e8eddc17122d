//! The scheduler's history: windows, what ran in them, state changes, idle
//! stretches and the pause-until setting. The scheduler owns the ids, so
//! every write is fire-and-forget like the rest of the store.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::{StoreError, StoreReader};

/// A scheduler event to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleRecord {
    State {
        at_ms: i64,
        state: String,
        reason: String,
        window_id: Option<String>,
    },
    WindowOpened {
        id: String,
        opened_at_ms: i64,
        triggers: String,
        expected_end_ms: Option<i64>,
    },
    WindowClosed {
        id: String,
        closed_at_ms: i64,
        reason: String,
    },
    WorkStarted {
        id: String,
        window_id: String,
        worker: String,
        started_at_ms: i64,
    },
    WorkEnded {
        id: String,
        ended_at_ms: i64,
        outcome: String,
        summary: String,
    },
    IdleStretch {
        start_ms: i64,
        end_ms: i64,
    },
    /// `None` clears it.
    PausedUntil(Option<i64>),
    /// At start-up: closes what a stopped process left open.
    Recover {
        at_ms: i64,
    },
}

impl ScheduleRecord {
    pub(crate) fn describe(&self) -> String {
        match self {
            ScheduleRecord::State { state, .. } => format!("scheduler state {state}"),
            ScheduleRecord::WindowOpened { id, .. } => format!("the opening of window {id}"),
            ScheduleRecord::WindowClosed { id, .. } => format!("the closing of window {id}"),
            ScheduleRecord::WorkStarted { id, .. } => format!("the start of work {id}"),
            ScheduleRecord::WorkEnded { id, .. } => format!("the end of work {id}"),
            ScheduleRecord::IdleStretch { .. } => "an idle stretch".to_owned(),
            ScheduleRecord::PausedUntil(_) => "the scheduler's pause".to_owned(),
            ScheduleRecord::Recover { .. } => "the scheduler's restart recovery".to_owned(),
        }
    }
}

const PAUSED_UNTIL_KEY: &str = "schedule_paused_until";

pub(crate) fn apply(conn: &Connection, record: &ScheduleRecord) -> rusqlite::Result<()> {
    match record {
        ScheduleRecord::State {
            at_ms,
            state,
            reason,
            window_id,
        } => {
            conn.prepare_cached(
                "INSERT INTO schedule_states (at_ms, state, reason, window_id) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![at_ms, state, reason, window_id])?;
        }
        ScheduleRecord::WindowOpened {
            id,
            opened_at_ms,
            triggers,
            expected_end_ms,
        } => {
            conn.prepare_cached(
                "INSERT INTO schedule_windows (id, opened_at_ms, triggers, expected_end_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, opened_at_ms, triggers, expected_end_ms])?;
        }
        ScheduleRecord::WindowClosed {
            id,
            closed_at_ms,
            reason,
        } => {
            conn.prepare_cached(
                "UPDATE schedule_windows SET closed_at_ms = max(?2, opened_at_ms), close_reason = ?3
                 WHERE id = ?1 AND closed_at_ms IS NULL",
            )?
            .execute(params![id, closed_at_ms, reason])?;
        }
        ScheduleRecord::WorkStarted {
            id,
            window_id,
            worker,
            started_at_ms,
        } => {
            conn.prepare_cached(
                "INSERT INTO schedule_work (id, window_id, worker, started_at_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, window_id, worker, started_at_ms])?;
        }
        ScheduleRecord::WorkEnded {
            id,
            ended_at_ms,
            outcome,
            summary,
        } => {
            conn.prepare_cached(
                "UPDATE schedule_work SET ended_at_ms = max(?2, started_at_ms), outcome = ?3, summary = ?4
                 WHERE id = ?1 AND outcome IS NULL",
            )?
            .execute(params![id, ended_at_ms, outcome, summary])?;
        }
        ScheduleRecord::IdleStretch { start_ms, end_ms } => {
            conn.prepare_cached("INSERT INTO idle_stretches (start_ms, end_ms) VALUES (?1, ?2)")?
                .execute(params![start_ms, end_ms])?;
        }
        ScheduleRecord::PausedUntil(Some(until)) => {
            conn.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![PAUSED_UNTIL_KEY, until])?;
        }
        ScheduleRecord::PausedUntil(None) => {
            conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?
                .execute([PAUSED_UNTIL_KEY])?;
        }
        ScheduleRecord::Recover { at_ms } => recover(conn, *at_ms)?,
    }
    Ok(())
}

/// Closes windows and work a stopped process left open. The end is the last
/// moment the old process is known to have been alive for that window (its
/// last state change or work start), since nothing was recorded after it.
fn recover(conn: &Connection, at_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE schedule_work SET outcome = 'interrupted',
             summary = 'metaclaw stopped while this was running',
             ended_at_ms = started_at_ms
         WHERE outcome IS NULL",
        [],
    )?;
    conn.execute(
        "UPDATE schedule_windows SET close_reason = 'metaclaw stopped',
             closed_at_ms = min(?1, max(opened_at_ms,
                 coalesce((SELECT max(at_ms) FROM schedule_states s WHERE s.window_id = schedule_windows.id), opened_at_ms),
                 coalesce((SELECT max(started_at_ms) FROM schedule_work w WHERE w.window_id = schedule_windows.id), opened_at_ms)))
         WHERE closed_at_ms IS NULL",
        params![at_ms],
    )?;
    Ok(())
}

/// A window as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRow {
    pub id: String,
    pub opened_at_ms: i64,
    pub triggers: Vec<String>,
    pub expected_end_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    pub close_reason: Option<String>,
    pub work: Vec<WorkRow>,
}

/// One worker run inside a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkRow {
    pub id: String,
    pub worker: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    /// `None` while running; then finished, paused or interrupted.
    pub outcome: Option<String>,
    pub summary: Option<String>,
}

/// A recorded state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRow {
    pub at_ms: i64,
    pub state: String,
    pub reason: String,
    pub window_id: Option<String>,
}

impl StoreReader {
    /// Windows overlapping `[from_ms, to_ms)`, oldest first, with their work.
    pub fn schedule_windows(&self, from_ms: i64, to_ms: i64) -> Result<Vec<WindowRow>, StoreError> {
        let fail = |e| self.fail("read the scheduler's windows", e);
        let mut windows = self
            .conn
            .prepare_cached(
                "SELECT id, opened_at_ms, triggers, expected_end_ms, closed_at_ms, close_reason
                 FROM schedule_windows
                 WHERE opened_at_ms < ?2 AND coalesce(closed_at_ms, ?2) >= ?1
                 ORDER BY opened_at_ms, id",
            )
            .map_err(fail)?
            .query_map(params![from_ms, to_ms], |row| {
                let triggers: String = row.get(2)?;
                Ok(WindowRow {
                    id: row.get(0)?,
                    opened_at_ms: row.get(1)?,
                    triggers: triggers
                        .split(',')
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    expected_end_ms: row.get(3)?,
                    closed_at_ms: row.get(4)?,
                    close_reason: row.get(5)?,
                    work: Vec::new(),
                })
            })
            .map_err(fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let mut work = self
            .conn
            .prepare_cached(
                "SELECT id, worker, started_at_ms, ended_at_ms, outcome, summary
                 FROM schedule_work WHERE window_id = ?1 ORDER BY started_at_ms, id",
            )
            .map_err(fail)?;
        for window in &mut windows {
            window.work = work
                .query_map([&window.id], |row| {
                    Ok(WorkRow {
                        id: row.get(0)?,
                        worker: row.get(1)?,
                        started_at_ms: row.get(2)?,
                        ended_at_ms: row.get(3)?,
                        outcome: row.get(4)?,
                        summary: row.get(5)?,
                    })
                })
                .map_err(fail)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
        }
        Ok(windows)
    }

    /// Idle stretches overlapping `[from_ms, to_ms)`, oldest first.
    pub fn idle_stretches(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let fail = |e| self.fail("read the idle history", e);
        self.conn
            .prepare_cached(
                "SELECT start_ms, end_ms FROM idle_stretches
                 WHERE start_ms < ?2 AND end_ms > ?1 ORDER BY start_ms",
            )
            .map_err(fail)?
            .query_map(params![from_ms, to_ms], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)
    }

    /// State changes in `[from_ms, to_ms)`, oldest first.
    pub fn schedule_states(&self, from_ms: i64, to_ms: i64) -> Result<Vec<StateRow>, StoreError> {
        let fail = |e| self.fail("read the scheduler's states", e);
        self.conn
            .prepare_cached(
                "SELECT at_ms, state, reason, window_id FROM schedule_states
                 WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms, rowid",
            )
            .map_err(fail)?
            .query_map(params![from_ms, to_ms], state_row)
            .map_err(fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)
    }

    /// The most recent state change, if the scheduler ever ran.
    pub fn last_schedule_state(&self) -> Result<Option<StateRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT at_ms, state, reason, window_id FROM schedule_states
                 ORDER BY at_ms DESC, rowid DESC LIMIT 1",
                [],
                state_row,
            )
            .optional()
            .map_err(|e| self.fail("read the scheduler's state", e))
    }

    /// When the latest request through the proxy started, if any.
    pub fn last_request_at_ms(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT max(started_at_ms) FROM turns", [], |row| row.get(0))
            .map_err(|e| self.fail("read the latest request time", e))
    }

    /// Until when learning is paused (ms since the epoch), if it is.
    pub fn schedule_paused_until(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [PAUSED_UNTIL_KEY],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.fail("read the scheduler's pause", e))
    }
}

fn state_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StateRow> {
    Ok(StateRow {
        at_ms: row.get(0)?,
        state: row.get(1)?,
        reason: row.get(2)?,
        window_id: row.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn opened(id: &str, at: i64) -> ScheduleRecord {
        ScheduleRecord::WindowOpened {
            id: id.into(),
            opened_at_ms: at,
            triggers: "sleep,calendar".into(),
            expected_end_ms: Some(at + 3_600_000),
        }
    }

    #[tokio::test]
    async fn windows_work_and_states_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        store.record_schedule(opened("w1", 1_000));
        store.record_schedule(ScheduleRecord::WorkStarted {
            id: "k1".into(),
            window_id: "w1".into(),
            worker: "trainer".into(),
            started_at_ms: 2_000,
        });
        store.record_schedule(ScheduleRecord::WorkEnded {
            id: "k1".into(),
            ended_at_ms: 3_000,
            outcome: "paused".into(),
            summary: "2 steps".into(),
        });
        store.record_schedule(ScheduleRecord::WindowClosed {
            id: "w1".into(),
            closed_at_ms: 3_500,
            reason: "keyboard or mouse used".into(),
        });
        store.record_schedule(ScheduleRecord::State {
            at_ms: 3_500,
            state: "waiting".into(),
            reason: "keyboard or mouse used".into(),
            window_id: None,
        });
        store.record_schedule(ScheduleRecord::IdleStretch {
            start_ms: 500,
            end_ms: 3_400,
        });
        store.record_schedule(ScheduleRecord::PausedUntil(Some(9_000)));
        store.flush().await.unwrap();

        let reader = store.reader().unwrap();
        let windows = reader.schedule_windows(0, 10_000).unwrap();
        assert_eq!(windows.len(), 1);
        let w = &windows[0];
        assert_eq!(w.triggers, ["sleep", "calendar"]);
        assert_eq!(w.closed_at_ms, Some(3_500));
        assert_eq!(w.work.len(), 1);
        assert_eq!(w.work[0].outcome.as_deref(), Some("paused"));
        assert_eq!(w.work[0].summary.as_deref(), Some("2 steps"));
        // Outside the range: nothing.
        assert!(reader.schedule_windows(4_000, 10_000).unwrap().is_empty());
        assert_eq!(reader.idle_stretches(0, 10_000).unwrap(), [(500, 3_400)]);
        assert_eq!(
            reader.last_schedule_state().unwrap().unwrap().state,
            "waiting"
        );
        assert_eq!(reader.schedule_paused_until().unwrap(), Some(9_000));

        store.record_schedule(ScheduleRecord::PausedUntil(None));
        store.flush().await.unwrap();
        assert_eq!(reader.schedule_paused_until().unwrap(), None);
    }

    #[tokio::test]
    async fn recovery_closes_what_a_killed_process_left_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        store.record_schedule(opened("w1", 1_000));
        store.record_schedule(ScheduleRecord::State {
            at_ms: 1_000,
            state: "window_open".into(),
            reason: "sleep hours".into(),
            window_id: Some("w1".into()),
        });
        store.record_schedule(ScheduleRecord::WorkStarted {
            id: "k1".into(),
            window_id: "w1".into(),
            worker: "trainer".into(),
            started_at_ms: 5_000,
        });
        store.flush().await.unwrap();
        // A new process starts at 60 s.
        store.record_schedule(ScheduleRecord::Recover { at_ms: 60_000 });
        store.flush().await.unwrap();
        let reader = store.reader().unwrap();
        let w = &reader.schedule_windows(0, 100_000).unwrap()[0];
        assert_eq!(w.closed_at_ms, Some(5_000));
        assert_eq!(w.close_reason.as_deref(), Some("metaclaw stopped"));
        assert_eq!(w.work[0].outcome.as_deref(), Some("interrupted"));
    }
}
