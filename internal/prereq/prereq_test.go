package prereq

import (
	"errors"
	"testing"
)

// recorder is a testing.TB that records how a test ended instead of
// ending it.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = format
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = true
	r.msg = format
}

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		ci                 string
		wantFail, wantSkip bool
	}{
		{"true", true, false},
		{"", false, true},
		{"false", false, true},
	} {
		t.Setenv(CIEnv, tc.ci)
		r := &recorder{TB: t}
		Missing(r, "the node engine", errors.New("no node on PATH"))
		if r.failed != tc.wantFail || r.skipped != tc.wantSkip {
			t.Errorf("CI=%q: failed %v, skipped %v; want %v, %v", tc.ci, r.failed, r.skipped, tc.wantFail, tc.wantSkip)
		}
	}
}
