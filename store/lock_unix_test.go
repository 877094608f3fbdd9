//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestLockedByNode: a lock file naming a live Node.js process (the Node
// store cannot flock) keeps the directory closed; a dead one does not.
func TestLockedByNode(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, lockName)
	if err := os.WriteFile(lock, []byte(fmt.Sprintf("node %d\n", os.Getppid())), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testConfig, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open with a live node holder: %v, want ErrLocked", err)
	}
	if err := os.WriteFile(lock, []byte("node 2147483646\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := open(t, dir, Options{})
	defer d.Shutdown()
	if b, _ := os.ReadFile(lock); string(b) != fmt.Sprintf("go %d\n", os.Getpid()) {
		t.Fatalf("lock file says %q", b)
	}
}
