-- +goose Up
-- The last event up to which the audit chain was verified, so a page can verify only what
-- was appended since instead of the whole chain. `portal audit verify` always checks it all.
CREATE TABLE audit_checkpoint (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    last_id     INTEGER NOT NULL,
    last_hash   TEXT    NOT NULL,
    verified_at TEXT    NOT NULL
);

-- +goose Down
DROP TABLE audit_checkpoint;
