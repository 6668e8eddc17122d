-- 0001_init: sessions, their turns, the skills injected into each turn, and
-- small key/value metadata. Tables are STRICT so a column holds only its
-- declared type. Enum-like text columns (turn_type, status) carry no CHECK
-- list on purpose: SQLite cannot alter a CHECK without rebuilding the table,
-- and adding a status later must not mean copying every recorded turn. The
-- writer only ever stores the enums' own spellings.

CREATE TABLE sessions (
    id              TEXT    NOT NULL PRIMARY KEY,
    session_key     TEXT    NOT NULL,
    key_source      TEXT    NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    last_seen_at_ms INTEGER NOT NULL,
    ended_at_ms     INTEGER,
    end_reason      TEXT,
    turn_count      INTEGER NOT NULL DEFAULT 0 CHECK (turn_count >= 0)
) STRICT;

-- The session list shows the newest sessions first.
CREATE INDEX sessions_by_start ON sessions (started_at_ms DESC, id);

CREATE TABLE turns (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT    NOT NULL UNIQUE,
    session_id        TEXT    NOT NULL REFERENCES sessions (id),
    turn_index        INTEGER NOT NULL CHECK (turn_index >= 0),
    turn_type         TEXT    NOT NULL,
    client_dialect    TEXT    NOT NULL,
    upstream_api      TEXT    NOT NULL,
    model             TEXT,
    stream            INTEGER NOT NULL CHECK (stream IN (0, 1)),
    started_at_ms     INTEGER NOT NULL,
    latency_ms        REAL    NOT NULL,
    ttfb_ms           REAL,
    status            TEXT    NOT NULL,
    http_status       INTEGER,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    skill_generation  INTEGER NOT NULL,
    request_json      TEXT    NOT NULL,
    response_json     TEXT,
    error             TEXT
) STRICT;

-- A session's turns are read in order; the trainer will select by generation.
CREATE INDEX turns_by_session ON turns (session_id, turn_index, id);

CREATE TABLE turn_skills (
    turn_id    INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    skill_name TEXT    NOT NULL,
    rank       INTEGER NOT NULL CHECK (rank >= 0),
    PRIMARY KEY (turn_id, rank)
) STRICT, WITHOUT ROWID;

-- Skill usage statistics group by name.
CREATE INDEX turn_skills_by_name ON turn_skills (skill_name);

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value ANY
) STRICT, WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('skill_generation', 0);
