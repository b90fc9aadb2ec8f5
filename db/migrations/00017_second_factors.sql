-- +goose Up
-- Second factors of local accounts: TOTP (the secret sealed under the key-encryption key) and
-- passkeys (WebAuthn credentials: public key and sign counter only).
CREATE TABLE second_factors (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('totp', 'passkey')),
    name         TEXT    NOT NULL,
    confirmed    INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT    NOT NULL,
    last_used_at TEXT    NOT NULL DEFAULT '',
    -- TOTP: the sealed secret and the last time step accepted, so a code is used once.
    totp_sealed  BLOB,
    totp_step    INTEGER NOT NULL DEFAULT 0,
    -- Passkeys: the credential id, the credential as go-webauthn keeps it, its sign counter.
    cred_id      BLOB UNIQUE,
    cred_json    TEXT    NOT NULL DEFAULT '',
    sign_count   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX second_factors_user ON second_factors (user_id, kind);

-- The WebAuthn user handle: random, so a passkey names no email or row id.
CREATE TABLE webauthn_handles (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle  BLOB    NOT NULL UNIQUE
);

-- Single-use recovery codes, only their SHA-256.
CREATE TABLE recovery_codes (
    id      INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT    NOT NULL,
    used_at TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Half-finished sign-ins and WebAuthn ceremonies, keyed by the hash of a random id held in a
-- cookie (sign-ins) or by the person (registrations). A half sign-in is no session.
CREATE TABLE factor_challenges (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX factor_challenges_user ON factor_challenges (user_id, purpose);

-- +goose Down
DROP TABLE factor_challenges;
DROP TABLE recovery_codes;
DROP TABLE webauthn_handles;
DROP TABLE second_factors;
