-- +goose Up
-- The mirror of each environment's Maskinporten clients, plus what Digdir does not keep:
-- the owning team, who created it, when each key was first seen, and drift findings.
CREATE TABLE integrations (
    env             TEXT    NOT NULL,
    client_id       TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    scopes          TEXT    NOT NULL,            -- space-separated, sorted
    active          INTEGER NOT NULL,
    team_id         INTEGER REFERENCES teams (id),
    created_by      INTEGER,
    key_count       INTEGER NOT NULL,
    next_key_expiry TEXT,                        -- the nearest key exp, NULL without keys
    drifted         INTEGER NOT NULL,            -- changed outside the portal since the last acknowledged version
    search          TEXT    NOT NULL,            -- lower-cased name, client id, description and scopes
    first_seen      TEXT    NOT NULL,
    last_change     TEXT    NOT NULL,
    synced_at       TEXT    NOT NULL,
    PRIMARY KEY (env, client_id)
) WITHOUT ROWID;
CREATE INDEX integrations_name ON integrations (env, name COLLATE NOCASE, client_id);
CREATE INDEX integrations_team ON integrations (env, team_id, name COLLATE NOCASE);
CREATE INDEX integrations_expiry ON integrations (env, next_key_expiry);
CREATE INDEX integrations_changed ON integrations (env, last_change);

-- The documents behind each row, kept apart so that list queries scan only narrow rows.
CREATE TABLE integration_docs (
    env       TEXT NOT NULL,
    client_id TEXT NOT NULL,
    raw       TEXT NOT NULL,                     -- the client JSON as Digdir last returned it
    jwks      TEXT NOT NULL,                     -- the key set JSON as last read
    drift     TEXT,                              -- JSON of changes made outside the portal, NULL when none
    PRIMARY KEY (env, client_id)
) WITHOUT ROWID;

-- A key's "created" time is when the mirror first saw its kid on the client.
CREATE TABLE integration_keys_seen (
    env        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    kid        TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (env, client_id, kid)
) WITHOUT ROWID;

-- An intent is recorded before a create goes upstream, so a double submit creates one client
-- and a crash between the upstream create and the local write still ends with the right owner.
CREATE TABLE integration_intents (
    id              INTEGER PRIMARY KEY,
    env             TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    actor_id        INTEGER NOT NULL,
    team_id         INTEGER NOT NULL REFERENCES teams (id),
    request         TEXT    NOT NULL,            -- JSON of what was asked
    state           TEXT    NOT NULL,            -- open, done, failed
    client_id       TEXT,
    message         TEXT    NOT NULL DEFAULT '',
    created_at      TEXT    NOT NULL,
    completed_at    TEXT,
    UNIQUE (env, idempotency_key)
);
CREATE INDEX integration_intents_open ON integration_intents (env, state);

CREATE TABLE integration_syncs (
    env          TEXT PRIMARY KEY,
    started_at   TEXT    NOT NULL,
    finished_at  TEXT    NOT NULL,
    ok           INTEGER NOT NULL,
    message      TEXT    NOT NULL,
    clients      INTEGER NOT NULL,
    last_ok_at   TEXT
);

-- +goose Down
DROP TABLE integration_syncs;
DROP TABLE integration_intents;
DROP TABLE integration_keys_seen;
DROP TABLE integration_docs;
DROP TABLE integrations;
