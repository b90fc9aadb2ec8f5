-- +goose Up
-- Digdir lists clients of every integration type; the portal mirrors only Maskinporten ones and
-- keeps how many of each other kind the last successful listing found, as JSON
-- ({"idporten": 12}); NULL until a sync has listed the environment.
ALTER TABLE integration_syncs ADD COLUMN other_kinds TEXT;

-- +goose Down
ALTER TABLE integration_syncs DROP COLUMN other_kinds;
