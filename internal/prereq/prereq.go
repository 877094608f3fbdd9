// Package prereq decides what a test does when something it needs from
// outside Go is missing (Node.js for the node engine, Chromium for the
// browser test): in CI it is a failure, because a green run must mean that
// every engine ran; on a developer's machine it is one skip that says what
// was not run, not a skip per test.
package prereq

import (
	"os"
	"testing"
)

// CIEnv is the environment variable that marks a CI run when it is "true"
// (as .ci/run and most CI services set it).
const CIEnv = "CI"

// InCI reports whether the tests run in CI.
func InCI() bool { return os.Getenv(CIEnv) == "true" }

// Missing stops t because what (an engine or a tool) cannot run, for the
// reason err: t fails in CI and is skipped elsewhere, with one line that
// names what was not run.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s cannot run, and %s=true requires it: %v", what, CIEnv, err)
		return
	}
	t.Skipf("NOT RUN: %s (%v); with %s=true this is a failure", what, err, CIEnv)
}
