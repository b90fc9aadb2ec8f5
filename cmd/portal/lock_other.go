//go:build !unix

package main

import (
	"errors"
	"fmt"
	"os"
)

const lockFile = "portal.lock"

var errDataDirBusy = errors.New("the data directory is in use")

// lockDataDir does not lock on this platform: restore cannot tell that a portal serves the
// directory, so stop it first.
func lockDataDir(dir string, exclusive bool) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return func() {}, nil
}
