-- +goose Up
-- One row per simulated environment: its persistent secrets (PEM) so tokens, certificates and
-- the admin credentials survive a restart.
CREATE TABLE sim_envs (
    env             TEXT PRIMARY KEY,
    mp_key_pem      TEXT NOT NULL,
    mp_kid          TEXT NOT NULL,
    ca_key_pem      TEXT NOT NULL,
    ca_cert_pem     TEXT NOT NULL,
    altinn_key_pem  TEXT NOT NULL,
    altinn_kid      TEXT NOT NULL,
    admin_client_id TEXT NOT NULL DEFAULT '',
    admin_key_pem   TEXT NOT NULL DEFAULT '',
    admin_cert_pem  TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL
);

-- Organisations known to the world; service_owner marks entries of Altinn's org registry.
CREATE TABLE sim_orgs (
    env           TEXT NOT NULL,
    orgno         TEXT NOT NULL,
    code          TEXT NOT NULL DEFAULT '',
    name          TEXT NOT NULL DEFAULT '',
    service_owner INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (env, orgno)
);

CREATE TABLE sim_scopes (
    env        TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL, -- JSON of the scope object as /scopes/all shows it
    PRIMARY KEY (env, name)
);

CREATE TABLE sim_scope_access (
    env            TEXT NOT NULL,
    scope          TEXT NOT NULL,
    consumer_orgno TEXT NOT NULL,
    state          TEXT NOT NULL,
    created        TEXT NOT NULL,
    last_updated   TEXT NOT NULL,
    PRIMARY KEY (env, scope, consumer_orgno)
);

-- Altinn API delegations: consumer lets supplier use scope on its behalf (consumer_org grants).
CREATE TABLE sim_delegations (
    env            TEXT NOT NULL,
    consumer_orgno TEXT NOT NULL,
    supplier_orgno TEXT NOT NULL,
    scope          TEXT NOT NULL,
    PRIMARY KEY (env, consumer_orgno, supplier_orgno, scope)
);

CREATE TABLE sim_clients (
    env          TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    client_orgno TEXT NOT NULL,
    active       INTEGER NOT NULL,
    body         TEXT NOT NULL, -- JSON of the client model without keys
    jwks_created TEXT NOT NULL DEFAULT '',
    jwks_updated TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (env, client_id)
);
CREATE INDEX sim_clients_org ON sim_clients (env, client_orgno);

-- kid is unique per environment, as Digdir demands across all customers.
CREATE TABLE sim_client_keys (
    env       TEXT NOT NULL,
    kid       TEXT NOT NULL,
    client_id TEXT NOT NULL,
    position  INTEGER NOT NULL,
    jwk       TEXT NOT NULL, -- public JWK as posted, without exp
    exp       INTEGER NOT NULL,
    PRIMARY KEY (env, kid),
    FOREIGN KEY (env, client_id) REFERENCES sim_clients (env, client_id)
);
CREATE INDEX sim_client_keys_client ON sim_client_keys (env, client_id);

CREATE TABLE sim_used_jtis (
    env       TEXT NOT NULL,
    client_id TEXT NOT NULL,
    jti       TEXT NOT NULL,
    exp       INTEGER NOT NULL,
    PRIMARY KEY (env, client_id, jti)
) WITHOUT ROWID;
CREATE INDEX sim_used_jtis_exp ON sim_used_jtis (env, exp);

-- +goose Down
DROP TABLE sim_used_jtis;
DROP TABLE sim_client_keys;
DROP TABLE sim_clients;
DROP TABLE sim_delegations;
DROP TABLE sim_scope_access;
DROP TABLE sim_scopes;
DROP TABLE sim_orgs;
DROP TABLE sim_envs;
