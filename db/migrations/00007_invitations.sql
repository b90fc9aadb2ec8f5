-- +goose Up
-- Invitations to join a team. Only the SHA-256 of the link's token is stored, never the token.
-- An invitation is open while accepted_at and revoked_at are empty and expires_at lies ahead;
-- "revoked" covers both withdrawn by a person and replaced by a newer invitation of the same
-- address to the same team, so at most one invitation per team and address is ever open.
CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    team_id     INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    email       TEXT    NOT NULL COLLATE NOCASE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'member', 'viewer')),
    invited_by  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    accepted_at TEXT,
    accepted_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  TEXT,
    revoked_by  INTEGER REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX invitations_open ON invitations (team_id, email) WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- +goose Down
DROP TABLE invitations;
