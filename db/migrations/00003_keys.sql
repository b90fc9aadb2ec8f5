-- +goose Up
-- What the portal knows about each key beyond Digdir's JWK: who holds the private half, and
-- for keys the portal keeps, that half sealed under the key-encryption key (never the KEK).
CREATE TABLE integration_keys (
    env          TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    kid          TEXT    NOT NULL,
    custody      TEXT    NOT NULL,               -- kept, handed_out, uploaded
    sealed       BLOB,                           -- AES-256-GCM sealed PKCS#8, kept keys only
    kek_id       TEXT,                           -- the key-encryption key that sealed it
    certificate  TEXT,                           -- PEM of an uploaded certificate, if any
    created_by   INTEGER,
    created_at   TEXT    NOT NULL,
    PRIMARY KEY (env, client_id, kid)
) WITHOUT ROWID;
CREATE INDEX integration_keys_kek ON integration_keys (kek_id) WHERE sealed IS NOT NULL;

-- +goose Down
DROP TABLE integration_keys;
