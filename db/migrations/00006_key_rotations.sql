-- +goose Up
-- Guided key rotations: replace old_kid on a client by new_kid without downtime, step by step
-- (started -> added -> proved -> switched -> done, or cancelled). Each row is resumable; at
-- most one rotation per client is open. Finished rotations stay as history. No key material
-- and no tokens are stored here: proof_result is the last attempt's outcome in words.
CREATE TABLE key_rotations (
    id             INTEGER PRIMARY KEY,
    env            TEXT    NOT NULL,
    client_id      TEXT    NOT NULL,
    old_kid        TEXT    NOT NULL,
    new_kid        TEXT    NOT NULL DEFAULT '',
    state          TEXT    NOT NULL,
    started_by     INTEGER,
    started_at     TEXT    NOT NULL,
    updated_by     INTEGER,
    updated_at     TEXT    NOT NULL,
    proved_at      TEXT,
    switched_at    TEXT,
    finished_at    TEXT,
    proof_how      TEXT    NOT NULL DEFAULT '', -- portal (kept key) or browser
    proof_attempts INTEGER NOT NULL DEFAULT 0,  -- attempts of the latest proof
    proof_at       TEXT,                        -- the latest attempt
    proof_result   TEXT    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX key_rotations_open ON key_rotations (env, client_id) WHERE state NOT IN ('done', 'cancelled');

-- +goose Down
DROP TABLE key_rotations;
