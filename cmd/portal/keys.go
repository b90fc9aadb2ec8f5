package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"

	"portal/internal/keys"
)

// deriveKey derives a purpose-bound key from a master key, so one configured secret can sign
// several kinds of cookie without one being replayable as another.
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("portal/" + purpose))
	return m.Sum(nil)
}

// loadKEK returns the key-encryption key that seals the private keys the portal keeps: from
// PORTAL_KEK, from kek_file (PORTAL_KEK_FILE), or from data/kek, created with mode 0600 on
// first start in the embedded default.
func loadKEK(cfg Config, log *slog.Logger) (*keys.KEK, error) {
	if cfg.kek != "" {
		k, err := keys.ParseKEK(cfg.kek)
		if err != nil {
			return nil, fmt.Errorf("PORTAL_KEK: %w", err)
		}
		return k, nil
	}
	if cfg.KEKFile != "" {
		return keys.LoadKEKFile(cfg.KEKFile)
	}
	k, created, err := keys.LoadOrCreateKEKFile(cfg.dataPath("kek"))
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("created a key-encryption key for the private keys the portal keeps; back it up apart from the database",
			"path", cfg.dataPath("kek"), "kek_id", k.ID())
	}
	return k, nil
}
