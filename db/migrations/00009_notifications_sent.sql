-- +goose Up
-- Key-expiry warnings already sent: one row per key and threshold (30, 7 or 1 days before its
-- expiry), written before the warning is queued, so a restart never sends one twice.
CREATE TABLE notifications_sent (
    env       TEXT    NOT NULL,
    client_id TEXT    NOT NULL,
    kid       TEXT    NOT NULL,
    threshold INTEGER NOT NULL,
    sent_at   TEXT    NOT NULL,
    PRIMARY KEY (env, client_id, kid, threshold)
);

-- +goose Down
DROP TABLE notifications_sent;
