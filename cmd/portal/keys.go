package main

import (
	"crypto/hmac"
	"crypto/sha256"
)

// deriveKey derives a purpose-bound key from a master key, so one configured secret can sign
// several kinds of cookie without one being replayable as another.
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("portal/" + purpose))
	return m.Sum(nil)
}
