//go:build unix

package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockDir takes an exclusive flock on path. The kernel drops it when the
// process dies, however it dies, so a crash never leaves the store locked.
//
// The Node.js store (bindings/node/durable.js) has no flock: it writes
// "node PID" into the same file and takes a lock over when that process
// no longer runs. So that the two exclude each other, lockDir refuses a
// file naming a live Node.js process and writes "go PID" under its flock.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, path, err)
	}
	holder, err := io.ReadAll(io.LimitReader(f, 64))
	if err == nil {
		if pid, ok := nodeHolder(string(holder)); ok && alive(pid) {
			f.Close()
			return nil, fmt.Errorf("%w: %s: held by node process %d", ErrLocked, path, pid)
		}
		err = f.Truncate(0)
	}
	if err == nil {
		_, err = f.WriteAt([]byte("go "+strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return f, nil
}

// nodeHolder reads the pid of a Node.js holder from a lock file's text.
func nodeHolder(s string) (int, bool) {
	rest, ok := strings.CutPrefix(s, "node ")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(rest))
	return pid, err == nil && pid > 0 && pid != os.Getpid()
}

// alive reports whether a process with this pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// syncDir fsyncs a directory, so that a rename or a new file in it is
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// unlockDir empties the lock file, so that no process reads a pid of a
// process that still runs but no longer holds the store, and closes it,
// which drops the flock.
func unlockDir(f *os.File) {
	f.Truncate(0)
	f.Close()
}
