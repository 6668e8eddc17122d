-- 0004_evolutions: one row per run of the skill evolver, and what became of
-- each skill it proposed.
--
-- `status`: `ok` or `failed` (`error` says why; nothing was written). The
-- turns an evolution read are its support set (table support_sets, keyed by
-- the same id). Like turns.status, `status`, `trigger` and `outcome` have no
-- CHECK list so a value can be added without rebuilding the table.

CREATE TABLE evolutions (
    id             TEXT    NOT NULL PRIMARY KEY,
    session_id     TEXT    NOT NULL,
    trigger        TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    error          TEXT,
    added          INTEGER NOT NULL DEFAULT 0 CHECK (added >= 0),
    merged         INTEGER NOT NULL DEFAULT 0 CHECK (merged >= 0),
    dropped        INTEGER NOT NULL DEFAULT 0 CHECK (dropped >= 0)
) STRICT;

CREATE INDEX evolutions_by_session ON evolutions (session_id, started_at_ms);

-- `outcome`: `added`, `pending` (added, waiting for review), `merged` (into
-- `skill_name`, an existing skill) or `dropped` (`detail` says why).
CREATE TABLE evolution_skills (
    evolution_id TEXT    NOT NULL REFERENCES evolutions (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL CHECK (position >= 0),
    skill_name   TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    detail       TEXT,
    PRIMARY KEY (evolution_id, position)
) STRICT, WITHOUT ROWID;
