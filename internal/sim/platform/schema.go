package platform

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations are applied in order, each once, tracked in platform_schema_version. The tables
// are shared by every environment in the same file, so each row carries its env. Forward-only:
// never edit an entry once released, append a new one.
var migrations = []string{
	`CREATE TABLE platform_apps (
		env          TEXT NOT NULL,
		org          TEXT NOT NULL,
		app          TEXT NOT NULL,
		title        TEXT NOT NULL,
		anchor_ticks INTEGER NOT NULL, -- seeding time; instance times are spread before it
		PRIMARY KEY (env, org, app)
	);
	CREATE TABLE platform_instances (
		id                 INTEGER PRIMARY KEY, -- Storage's internal id, part of continuation tokens
		env                TEXT NOT NULL,
		guid               TEXT NOT NULL,
		seq                INTEGER NOT NULL,    -- position in the app's seed sequence
		party_id           INTEGER NOT NULL,
		owner_ident        TEXT NOT NULL,       -- "Person:<fnr>" or "Organisation:<orgno>"
		org                TEXT NOT NULL,
		app_id             TEXT NOT NULL,
		created_ticks      INTEGER NOT NULL,
		last_changed_ticks INTEGER NOT NULL,
		current_task       TEXT,
		process_ended      TEXT,                -- as serialised; Storage compares these as strings
		due_before         TEXT,
		visible_after      TEXT,
		is_archived        INTEGER NOT NULL,
		is_soft_deleted    INTEGER NOT NULL,
		is_hard_deleted    INTEGER NOT NULL,
		confirmed_by       TEXT NOT NULL,       -- ",org1,org2," stakeholders that confirmed completion
		main_version       INTEGER NOT NULL,
		search_text        TEXT NOT NULL,
		body               TEXT NOT NULL        -- instance JSON without data and self links
	);
	CREATE UNIQUE INDEX platform_instances_guid ON platform_instances (env, guid);
	CREATE UNIQUE INDEX platform_instances_seq ON platform_instances (env, app_id, seq);
	CREATE INDEX platform_instances_org_changed ON platform_instances (env, org, last_changed_ticks, id);
	CREATE INDEX platform_instances_app_changed ON platform_instances (env, app_id, last_changed_ticks, id);
	CREATE INDEX platform_instances_owner ON platform_instances (env, owner_ident);
	CREATE TABLE platform_data_elements (
		id          INTEGER PRIMARY KEY,
		env         TEXT NOT NULL,
		instance_id INTEGER NOT NULL REFERENCES platform_instances (id) ON DELETE CASCADE,
		guid        TEXT NOT NULL,
		body        TEXT NOT NULL -- data element JSON without self links
	);
	CREATE UNIQUE INDEX platform_data_elements_guid ON platform_data_elements (env, guid);
	CREATE INDEX platform_data_elements_instance ON platform_data_elements (instance_id, id);`,
}

// migrate brings the platform tables up to date. BEGIN IMMEDIATE serialises the two
// environments' platforms when they start together on the same file.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS platform_schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("version table: %w", err)
	}
	var version int
	switch err := conn.QueryRowContext(ctx, `SELECT version FROM platform_schema_version`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := conn.ExecContext(ctx, `INSERT INTO platform_schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("version row: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read version: %w", err)
	}
	for i := version; i < len(migrations); i++ {
		if _, err := conn.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if version < len(migrations) {
		if _, err := conn.ExecContext(ctx, `UPDATE platform_schema_version SET version = ?`, len(migrations)); err != nil {
			return fmt.Errorf("set version: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
