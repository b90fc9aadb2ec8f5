-- +goose Up
-- People who sign in through an OpenID Provider are matched by (issuer, subject), never by
-- email. last_id_token is sent back as id_token_hint when the person signs out.
CREATE TABLE external_identities (
    issuer          TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      TEXT    NOT NULL,
    last_sign_in_at TEXT    NOT NULL,
    last_id_token   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX external_identities_user ON external_identities (user_id);

-- Where a membership or an administrator role comes from: '' by hand, else the provider's
-- name, which updates it at each sign-in and is the only one that may.
ALTER TABLE team_members ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN role_source TEXT NOT NULL DEFAULT '';

-- Sign-ins under way at a provider: state (its hash), nonce and PKCE verifier, single use.
CREATE TABLE oidc_flows (
    state_hash TEXT PRIMARY KEY,
    provider   TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    next       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX oidc_flows_expires ON oidc_flows (expires_at);

-- +goose Down
SELECT 'forward-only';
