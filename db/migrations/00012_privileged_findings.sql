-- +goose Up
-- An administrator may change an integration that has no owning team yet: its intents then
-- carry no team (NULL) and are the administrator's own, by actor_id.
CREATE TABLE integration_intents_new (
    id              INTEGER PRIMARY KEY,
    env             TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    actor_id        INTEGER NOT NULL,
    team_id         INTEGER REFERENCES teams (id),   -- NULL for an unowned integration
    request         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    client_id       TEXT,
    message         TEXT    NOT NULL DEFAULT '',
    created_at      TEXT    NOT NULL,
    completed_at    TEXT,
    UNIQUE (env, idempotency_key)
);
INSERT INTO integration_intents_new SELECT id, env, idempotency_key, action, actor_id, team_id, request, state,
    client_id, message, created_at, completed_at FROM integration_intents;
DROP TABLE integration_intents;
ALTER TABLE integration_intents_new RENAME TO integration_intents;
CREATE INDEX integration_intents_open ON integration_intents (env, state);

-- Clients that hold a privileged scope (Digdir's self-service admin scopes and the like) without
-- being the portal's own admin client: one row per client, with the privileged scopes it held
-- when the sync found it. A new row or a changed scope set is audited once and told to the
-- administrators once (notified_at).
CREATE TABLE privileged_findings (
    env         TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,                   -- space-separated, sorted
    found_at    TEXT NOT NULL,
    notified_at TEXT,
    PRIMARY KEY (env, client_id)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE privileged_findings;
CREATE TABLE integration_intents_old (
    id              INTEGER PRIMARY KEY,
    env             TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    actor_id        INTEGER NOT NULL,
    team_id         INTEGER NOT NULL REFERENCES teams (id),
    request         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    client_id       TEXT,
    message         TEXT    NOT NULL DEFAULT '',
    created_at      TEXT    NOT NULL,
    completed_at    TEXT,
    UNIQUE (env, idempotency_key)
);
INSERT INTO integration_intents_old SELECT * FROM integration_intents WHERE team_id IS NOT NULL;
DROP TABLE integration_intents;
ALTER TABLE integration_intents_old RENAME TO integration_intents;
CREATE INDEX integration_intents_open ON integration_intents (env, state);
