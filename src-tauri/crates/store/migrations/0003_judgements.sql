-- 0003_judgements: the PRM judge's verdict per turn, and support sets.
--
-- A main turn with status `complete` and no row here is pending: not judged
-- yet. `state`: `scored` (`score` is the majority of the successful votes:
-- +1, 0 or -1) or `failed_retry` (every vote failed; `score` stays NULL and
-- the judge tries again at `next_attempt_at_ms`). A failed attempt never
-- becomes a score of 0. Like turns.status, `state` has no CHECK list so a
-- state can be added without rebuilding the table.

CREATE TABLE judgements (
    turn_id            INTEGER NOT NULL PRIMARY KEY REFERENCES turns (id) ON DELETE CASCADE,
    state              TEXT    NOT NULL,
    score              INTEGER CHECK (score IN (-1, 0, 1)),
    reason             TEXT,
    judge_model        TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at_ms INTEGER,
    judged_at_ms       INTEGER
) STRICT;

-- One row per vote of the latest attempt: its score, or why it failed.
CREATE TABLE judgement_votes (
    turn_id    INTEGER NOT NULL REFERENCES judgements (turn_id) ON DELETE CASCADE,
    vote_index INTEGER NOT NULL CHECK (vote_index >= 0),
    score      INTEGER CHECK (score IN (-1, 0, 1)),
    failure    TEXT,
    CHECK ((score IS NULL) <> (failure IS NULL)),
    PRIMARY KEY (turn_id, vote_index)
) STRICT, WITHOUT ROWID;

-- The turns an evolution learned from (its support set). Training data is
-- selected from the other turns only, so the trainer never rewards a policy
-- for answers the new skills were written from.
CREATE TABLE support_sets (
    evolution_id TEXT    NOT NULL,
    turn_id      INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    PRIMARY KEY (evolution_id, turn_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX support_sets_by_turn ON support_sets (turn_id);

-- Training data is selected by generation.
CREATE INDEX turns_by_generation ON turns (skill_generation, turn_type, status);
