-- 0007_training: the slow loop (RL on a Tinker-compatible LoRA service).
--
-- `turn_tokens`: what the policy sampled for a main turn, when the proxy
-- answered through the policy (`rl`/`auto`): the prompt and response token
-- ids (little-endian u32), the sampler's log-prob of each response token
-- (little-endian f32) and the policy version that produced it. Turns
-- answered by the upstream have no row here and are never trained on.
--
-- `training_steps`: one row per attempted step. `id` is the step number.
-- `outcome`: `trained` (the policy moved to `policy_after`), `rejected` (the
-- batch could not become datums; its turns are dropped) or `failed` (the
-- service failed; the batch stays pending and is tried again). `metrics` is
-- the service's loss metrics (`name:reduction` → number) as a JSON object:
-- their names depend on the loss and the service.
--
-- `training_step_turns`: the turns of each step's batch, in batch order.
-- A turn of a `trained` or `rejected` step is never taken again.
--
-- `training_pending`: the batch being collected (the turns already taken),
-- so a restart or a pause keeps it.
--
-- `training_checkpoints`: weights saved on the service: `state` (weights
-- and optimizer, resumable with load_weights) or `sampler` (weights for
-- sampling only), after step `step`.

CREATE TABLE turn_tokens (
    turn_id         INTEGER PRIMARY KEY REFERENCES turns (id) ON DELETE CASCADE,
    prompt_tokens   BLOB    NOT NULL,
    response_tokens BLOB    NOT NULL,
    logprobs        BLOB    NOT NULL,
    policy_version  INTEGER NOT NULL CHECK (policy_version >= 0)
) STRICT;

CREATE TABLE training_steps (
    id             INTEGER PRIMARY KEY,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER NOT NULL,
    window_id      TEXT,
    policy_before  INTEGER NOT NULL CHECK (policy_before >= 0),
    policy_after   INTEGER CHECK (policy_after >= 0),
    sampler_id     TEXT,
    loss           TEXT    NOT NULL,
    reward_mean    REAL,
    reward_std     REAL,
    metrics        TEXT    NOT NULL DEFAULT '{}',
    duration_ms    INTEGER NOT NULL CHECK (duration_ms >= 0),
    outcome        TEXT    NOT NULL,
    error          TEXT
) STRICT;

CREATE TABLE training_step_turns (
    step_id  INTEGER NOT NULL REFERENCES training_steps (id) ON DELETE CASCADE,
    position INTEGER NOT NULL CHECK (position >= 0),
    turn_id  INTEGER NOT NULL,
    PRIMARY KEY (step_id, position)
) STRICT;

CREATE INDEX training_step_turns_by_turn ON training_step_turns (turn_id);

CREATE TABLE training_pending (
    turn_id     INTEGER PRIMARY KEY,
    taken_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE training_checkpoints (
    id            INTEGER PRIMARY KEY,
    path          TEXT    NOT NULL,
    step          INTEGER NOT NULL CHECK (step >= 0),
    kind          TEXT    NOT NULL CHECK (kind IN ('state', 'sampler')),
    created_at_ms INTEGER NOT NULL
) STRICT;
