-- 0005_schedule: the training scheduler's history, so the timeline can show
-- the day and the state survives a restart.
--
-- A window is a stretch in which background work was allowed; `triggers`
-- lists why it opened (comma-separated: sleep, idle, locked, calendar,
-- manual). `closed_at_ms` is NULL while it is open; a window still open when
-- the process died is closed at start-up with reason 'metaclaw stopped'.

CREATE TABLE schedule_windows (
    id              TEXT    NOT NULL PRIMARY KEY,
    opened_at_ms    INTEGER NOT NULL,
    triggers        TEXT    NOT NULL,
    expected_end_ms INTEGER,
    closed_at_ms    INTEGER,
    close_reason    TEXT,
    CHECK (closed_at_ms IS NULL OR closed_at_ms >= opened_at_ms)
) STRICT;

CREATE INDEX schedule_windows_by_time ON schedule_windows (opened_at_ms);

-- What ran in a window: one row per worker run. `outcome`: NULL while
-- running, then finished, paused or interrupted.
CREATE TABLE schedule_work (
    id            TEXT    NOT NULL PRIMARY KEY,
    window_id     TEXT    NOT NULL REFERENCES schedule_windows (id) ON DELETE CASCADE,
    worker        TEXT    NOT NULL,
    started_at_ms INTEGER NOT NULL,
    ended_at_ms   INTEGER,
    outcome       TEXT,
    summary       TEXT
) STRICT;

CREATE INDEX schedule_work_by_window ON schedule_work (window_id);

-- Every state change: waiting, window_open, working, pausing.
CREATE TABLE schedule_states (
    at_ms     INTEGER NOT NULL,
    state     TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    window_id TEXT
) STRICT;

CREATE INDEX schedule_states_by_time ON schedule_states (at_ms);

-- Keyboard-and-mouse idle stretches that reached the idle threshold; their
-- lengths by hour of the week estimate how long an idle window will last.
CREATE TABLE idle_stretches (
    start_ms INTEGER NOT NULL,
    end_ms   INTEGER NOT NULL CHECK (end_ms >= start_ms)
) STRICT;

CREATE INDEX idle_stretches_by_start ON idle_stretches (start_ms);
