package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Key custodies: who holds a key's private half.
const (
	CustodyKept      = "kept"       // the portal, sealed under the KEK
	CustodyHandedOut = "handed_out" // the person it was shown to once; the portal forgot it
	CustodyUploaded  = "uploaded"   // only the public key was ever here
)

// KeyRecord is the portal's record of one key on a client.
type KeyRecord struct {
	Env         string
	ClientID    string
	KID         string
	Custody     string
	Sealed      []byte // kept keys only
	KEKID       string
	Certificate string // PEM
	CreatedBy   int64
	CreatedAt   time.Time
}

const keyRecordColumns = "env, client_id, kid, custody, sealed, coalesce(kek_id, ''), coalesce(certificate, ''), coalesce(created_by, 0), created_at"

func scanKeyRecord(row interface{ Scan(...any) error }) (KeyRecord, error) {
	var k KeyRecord
	var at string
	if err := row.Scan(&k.Env, &k.ClientID, &k.KID, &k.Custody, &k.Sealed, &k.KEKID, &k.Certificate, &k.CreatedBy, &at); err != nil {
		return k, err
	}
	k.CreatedAt = mustTime(at)
	return k, nil
}

// PutKeyRecord inserts or replaces the record of a key.
func PutKeyRecord(ctx context.Context, tx *sql.Tx, k KeyRecord) error {
	var sealed, kekID, cert, by any
	if len(k.Sealed) > 0 {
		sealed, kekID = k.Sealed, k.KEKID
	}
	if k.Certificate != "" {
		cert = k.Certificate
	}
	if k.CreatedBy != 0 {
		by = k.CreatedBy
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO integration_keys (env, client_id, kid, custody, sealed, kek_id, certificate, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (env, client_id, kid) DO UPDATE SET custody = excluded.custody,
		sealed = excluded.sealed, kek_id = excluded.kek_id, certificate = excluded.certificate, created_by = excluded.created_by,
		created_at = excluded.created_at`,
		k.Env, k.ClientID, k.KID, k.Custody, sealed, kekID, cert, by, FormatTime(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("put key record %s/%s/%s: %w", k.Env, k.ClientID, k.KID, err)
	}
	return nil
}

// DeleteKeyRecord forgets a key, sealed private half included.
func DeleteKeyRecord(ctx context.Context, tx *sql.Tx, env, clientID, kid string) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM integration_keys WHERE env = ? AND client_id = ? AND kid = ?", env, clientID, kid); err != nil {
		return fmt.Errorf("delete key record %s/%s/%s: %w", env, clientID, kid, err)
	}
	return nil
}

// KeyRecords returns the records of a client's keys by kid.
func (d *DB) KeyRecords(ctx context.Context, env, clientID string) (map[string]KeyRecord, error) {
	rows, err := d.read.QueryContext(ctx, "SELECT "+keyRecordColumns+" FROM integration_keys WHERE env = ? AND client_id = ?", env, clientID)
	if err != nil {
		return nil, fmt.Errorf("key records of %s/%s: %w", env, clientID, err)
	}
	defer rows.Close()
	out := map[string]KeyRecord{}
	for rows.Next() {
		k, err := scanKeyRecord(rows)
		if err != nil {
			return nil, err
		}
		out[k.KID] = k
	}
	return out, rows.Err()
}

// SealedKeysTx lists every kept key's record inside a write transaction, for re-sealing.
func SealedKeysTx(ctx context.Context, tx *sql.Tx) ([]KeyRecord, error) {
	rows, err := tx.QueryContext(ctx, "SELECT "+keyRecordColumns+" FROM integration_keys WHERE sealed IS NOT NULL ORDER BY env, client_id, kid")
	if err != nil {
		return nil, fmt.Errorf("sealed keys: %w", err)
	}
	defer rows.Close()
	var out []KeyRecord
	for rows.Next() {
		k, err := scanKeyRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// ResealKey replaces a kept key's sealed private half.
func ResealKey(ctx context.Context, tx *sql.Tx, env, clientID, kid string, sealed []byte, kekID string) error {
	return updateOne(ctx, tx, fmt.Sprintf("reseal key %s/%s/%s", env, clientID, kid),
		"UPDATE integration_keys SET sealed = ?, kek_id = ? WHERE env = ? AND client_id = ? AND kid = ? AND sealed IS NOT NULL",
		sealed, kekID, env, clientID, kid)
}
