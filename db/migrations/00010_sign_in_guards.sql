-- +goose Up
-- How each account came to be (setup, cli, admin, invitation; '' for accounts made before this
-- was recorded) and by whom; an account made through a team owner's invitation without email
-- delivery waits for an administrator's approval before it can sign in.
ALTER TABLE users ADD COLUMN created_via TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN created_by INTEGER REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE users ADD COLUMN pending_approval INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invitations ADD COLUMN needs_approval INTEGER NOT NULL DEFAULT 0;

-- Sign-in attempts are reserved here before the password is checked (a failed one stays, a
-- successful one is cleared); pruning goes by age.
CREATE INDEX login_failures_at ON login_failures (at);

-- Uses of single-use links (set-password, invitation, setup) per address, for throttling.
CREATE TABLE link_attempts (
    id      INTEGER PRIMARY KEY,
    address TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX link_attempts_address ON link_attempts (address, at);
CREATE INDEX link_attempts_at ON link_attempts (at);

-- Refused (throttled) sign-ins counted per address or account and window; each row becomes
-- one audit event with its count once its window has ended.
CREATE TABLE sign_in_throttled (
    key          TEXT    NOT NULL,
    window_start TEXT    NOT NULL,
    window_end   TEXT    NOT NULL,
    count        INTEGER NOT NULL,
    address      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (key, window_start)
);
CREATE INDEX sign_in_throttled_end ON sign_in_throttled (window_end);

-- +goose Down
SELECT 'forward-only';
