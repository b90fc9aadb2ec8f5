-- +goose Up
-- The audit view filters by actor name (an email, or "system"/"cli" for actions without a
-- user), newest first.
CREATE INDEX audit_events_actor_name ON audit_events (actor, id);

-- +goose Down
DROP INDEX audit_events_actor_name;
