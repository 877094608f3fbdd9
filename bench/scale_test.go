package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLatHist checks the histogram's quantiles against the exact ones of
// the same samples: each must be the low end of the exact value's bucket,
// so within one bucket width (1/32) below it.
func TestLatHist(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var h latHist
	var xs []int64
	for range 100_000 {
		// Log-uniform over 10 ns .. 100 ms, as call latencies spread.
		x := int64(10 * math.Pow(10, rnd.Float64()*7))
		xs = append(xs, x)
		h.add(x)
	}
	slices.Sort(xs)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999} {
		exact := float64(xs[int(q*float64(len(xs)))])
		got := h.quantile(q)
		if got > exact || got < exact*(1-1.0/32)-1 {
			t.Errorf("quantile(%v) = %.0f, exact %.0f", q, got, exact)
		}
	}
	if h.max != xs[len(xs)-1] || h.quantile(1) != float64(h.max) {
		t.Errorf("max %d, quantile(1) %.0f, want %d", h.max, h.quantile(1), xs[len(xs)-1])
	}
	var over int64
	for _, x := range xs {
		if float64(x) >= latLow(latBucket(10e6)+1) {
			over++
		}
	}
	if got := h.over(10e6); got != over || over == 0 {
		t.Errorf("over(10 ms) = %d, want %d", got, over)
	}
	if h.count() != int64(len(xs)) {
		t.Errorf("count %d, want %d", h.count(), len(xs))
	}
	for b := range latBucket(math.MaxUint64) { // the buckets in use
		if latLow(b) > latLow(b+1) || latBucket(uint64(latLow(b))) != b {
			t.Fatalf("bucket %d: low %.0f maps back to %d", b, latLow(b), latBucket(uint64(latLow(b))))
		}
	}
}

// TestScaleSmall runs the scale section on a few users and checks that
// every figure it reports was measured.
func TestScaleSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the scale section (about a second)")
	}
	var log bytes.Buffer
	tracePath := filepath.Join(t.TempDir(), "trace.out")
	r, err := measureScale(400, 8, 30*time.Millisecond, tracePath, &log)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(tracePath); err != nil || st.Size() == 0 {
		t.Errorf("no trace of the snapshot runs: %v", err)
	}
	if len(r.Mixed) != 2 || len(r.Durable) != 2 {
		t.Fatalf("%d mixed runs, %d durable runs; want 2 of each", len(r.Mixed), len(r.Durable))
	}
	for _, m := range append(r.Mixed, r.Idle, r.Busy, r.Stall1, r.Stall) {
		if m.Calls == 0 || m.OpsPerSec <= 0 || !(m.P50 <= m.P99 && m.P99 <= m.P999 && m.P999 <= m.Max) || m.P50 <= 0 {
			t.Errorf("mixed run %+v: no calls, or quantiles out of order", m)
		}
	}
	for i, d := range r.Durable {
		if d.Goroutines != i+1 || d.Changes == 0 || d.FsyncsPerChange <= 0 || d.FsyncsPerChange > 1.01 {
			t.Errorf("durable run %+v: no changes, or not one fsync at most per change", d)
		}
	}
	if r.SnapshotBytes < 400*presenceSize || r.EncodeSeconds <= 0 || r.RestoreSeconds <= 0 || r.CompactSeconds <= 0 {
		t.Errorf("snapshot %d bytes in %v s, restore %v s, compaction %v s", r.SnapshotBytes, r.EncodeSeconds, r.RestoreSeconds, r.CompactSeconds)
	}
	if r.MachineBytes < presenceSize || r.AuthBytes <= 0 {
		t.Errorf("memory per user: machine %.0f B (the presence alone is %d B), auth %.0f B", r.MachineBytes, presenceSize, r.AuthBytes)
	}
	var text, md bytes.Buffer
	r.writeText(&text)
	r.writeMarkdown(&md)
	for _, want := range []string{"while a snapshot runs", "durable acknowledged changes, 2 goroutine(s)", "authorisation facts"} {
		if !strings.Contains(text.String(), want) || !strings.Contains(md.String(), want) {
			t.Errorf("the report does not say %q:\n%s", want, md.String())
		}
	}
	if ts := r.targets(); len(ts) != 4 || !strings.Contains(ts[0].Status, "at 400 users") {
		t.Errorf("targets %+v: want 4, saying they ran at 400 users", ts)
	}
}
