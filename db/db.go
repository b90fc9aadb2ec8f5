// Package db holds the portal's SQL migrations, embedded so the binary carries its schema.
package db

import "embed"

// Migrations are goose migrations, applied in order at start-up.
//
//go:embed migrations/*.sql
var Migrations embed.FS
