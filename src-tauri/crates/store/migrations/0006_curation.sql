-- 0006_curation: what was done to skills after they were written, by the
-- curator or by the user (`metaclaw skills disable | enable | approve |
-- reject`), so `metaclaw skills history` can tell how a skill changed and why.
--
-- `action`: `merged` (the skill was a near-duplicate of `into_skill`: what
-- was new in it went there, and it was disabled), `disabled`, `enabled`,
-- `approved` or `rejected`. `actor`: `curator` or `user`. `work_id` is the
-- scheduler's work row (schedule_work.id) of the curator run that did it,
-- NULL for the user's actions. `skill_generation` is the generation the
-- change took effect in. `uses`, `mean_score` and `baseline_score` are the
-- evidence the curator decided on: the scored turns the skill was injected
-- into, their mean score, and the mean score of the turns without it since
-- its first use. Like turns.status, `action` and `actor` have no CHECK list.

CREATE TABLE curations (
    id               INTEGER PRIMARY KEY,
    at_ms            INTEGER NOT NULL,
    skill_name       TEXT    NOT NULL,
    action           TEXT    NOT NULL,
    into_skill       TEXT,
    reason           TEXT    NOT NULL,
    actor            TEXT    NOT NULL,
    work_id          TEXT,
    skill_generation INTEGER,
    uses             INTEGER CHECK (uses >= 0),
    mean_score       REAL,
    baseline_score   REAL
) STRICT;

-- A skill's history reads what happened to it and what was merged into it.
CREATE INDEX curations_by_skill ON curations (skill_name, at_ms);
CREATE INDEX curations_by_target ON curations (into_skill, at_ms) WHERE into_skill IS NOT NULL;

-- A skill's history reads the evolutions that proposed or extended it.
CREATE INDEX evolution_skills_by_name ON evolution_skills (skill_name);
