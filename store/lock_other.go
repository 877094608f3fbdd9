//go:build !unix

package store

import (
	"fmt"
	"os"
)

// lockDir opens path without locking it: on systems without flock the host
// must make sure one process at a time opens the store.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return f, nil
}

// syncDir is a no-op where directories cannot be fsynced (Windows makes
// renames durable through the file system's own journal).
func syncDir(string) error { return nil }

// unlockDir closes the lock file.
func unlockDir(f *os.File) { f.Close() }
