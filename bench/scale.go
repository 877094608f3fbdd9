package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/trace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"github.com/lastseen-xmpp/lastseen/store"
)

// The scale section (issue 11): many users on one core.Sharded, measured
// under a mixed load, while a snapshot runs, through Restore and through a
// durable store, all in the same process and run.

// Scale goals, from issue 11.
const (
	goalStallMs        = 10  // max call latency while a snapshot runs
	goalRestoreSeconds = 0.5 // Restore of 1 M users
	goalEncodeSeconds  = 0.5 // Snapshot of 1 M users
	goalAuthBytes      = 150 // MemoryAuth bytes per roster entry (22-byte contact)
	goalUsers          = 1_000_000
)

// The mix of the mixed load, in percent of calls; the rest are client
// probes.
const (
	mixServerProbes = 70
	mixUpdates      = 20
)

// ScaleResult is what the scale section measured.
type ScaleResult struct {
	Users int `json:"users"`
	// Shards is the shard count of every Sharded; 0 is NewSharded's
	// default (64 per GOMAXPROCS).
	Shards       int     `json:"shards"`
	Seconds      float64 `json:"seconds_per_run"`
	BuildSeconds float64 `json:"build_seconds"`
	// MachineBytes and AuthBytes are the heap in use after GC, per user,
	// of the Sharded's own state (each user offline with a 200-byte
	// presence) and of the MemoryAuth's facts (one roster entry per user,
	// a distinct 22-byte contact JID).
	MachineBytes float64 `json:"machine_bytes_per_user"`
	AuthBytes    float64 `json:"auth_bytes_per_user"`
	// Mixed holds the mixed-load runs, with 1 and 2 goroutines.
	Mixed []MixRun `json:"mixed"`
	// Idle is the 2-goroutine mixed load with nothing else, as long as an
	// unloaded snapshot; Busy is the same with a third goroutine that
	// computes for as long and takes no lock: the wait the scheduler alone
	// imposes when three goroutines share two cores (Go preempts a
	// goroutine after 10 ms). Stall1 and Stall are the load with 1 and 2
	// goroutines while a snapshot is taken; StallSnapshotSeconds is how
	// long Stall's snapshot took.
	Idle                 MixRun  `json:"idle"`
	Busy                 MixRun  `json:"busy"`
	Stall1               MixRun  `json:"stall_1"`
	Stall                MixRun  `json:"stall"`
	StallSnapshotSeconds float64 `json:"stall_snapshot_seconds"`
	// EncodeSeconds is Snapshot with no other load; SnapshotBytes its
	// length. RestoreSeconds is Restore of that snapshot into a new
	// Sharded. Both are the best of the tries (the quietest on a shared
	// machine).
	EncodeSeconds  float64 `json:"encode_seconds"`
	SnapshotBytes  int     `json:"snapshot_bytes"`
	RestoreSeconds float64 `json:"restore_seconds"`
	// CompactSeconds is the store's first compaction of the whole state
	// (snapshot, write, fsync); Durable holds the durable-change runs.
	CompactSeconds float64      `json:"compact_seconds"`
	Durable        []DurableRun `json:"durable"`
	Missing        string       `json:"missing,omitempty"`
}

// MixRun is one run of the mixed load: throughput and per-call latency
// (wall clock around each call, so it includes scheduling on a busy
// machine).
type MixRun struct {
	Goroutines int     `json:"goroutines"`
	Calls      int64   `json:"calls"`
	OpsPerSec  float64 `json:"calls_per_sec"`
	P50        float64 `json:"p50_ns"`
	P99        float64 `json:"p99_ns"`
	P999       float64 `json:"p999_ns"`
	Max        float64 `json:"max_ns"`
	// Over is how many calls took longer than the stall goal; GCs and
	// GCMaxPause are the collections that ended during the run and the
	// longest stop-the-world pause among them: what else a slow call can
	// have waited for.
	Over       int64   `json:"calls_over_goal"`
	GCs        uint32  `json:"gcs"`
	GCMaxPause float64 `json:"gc_max_pause_ns"`
}

// gcSince fills m's GC figures from the collections after before.
func (m *MixRun) gcSince(before *runtime.MemStats) {
	var now runtime.MemStats
	runtime.ReadMemStats(&now)
	m.GCs = now.NumGC - before.NumGC
	for i := before.NumGC; i < now.NumGC && now.NumGC-i <= uint32(len(now.PauseNs)); i++ {
		m.GCMaxPause = max(m.GCMaxPause, float64(now.PauseNs[i%uint32(len(now.PauseNs))]))
	}
}

// DurableRun is one run of durable changes through store.ShardedDurable.
type DurableRun struct {
	Goroutines      int     `json:"goroutines"`
	Changes         int64   `json:"changes"`
	ChangesPerSec   float64 `json:"acknowledged_changes_per_sec"`
	FsyncsPerChange float64 `json:"fsyncs_per_change"`
	MaxNs           float64 `json:"max_ns"`
}

// latHist is a log-linear histogram of call latencies in ns: 32 buckets
// per power of two (about 3 % wide), so that recording a call allocates
// nothing and costs a few instructions; max is kept exactly.
type latHist struct {
	n   [64 * 32]int64
	max int64
}

func (h *latHist) add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.max = max(h.max, ns)
	h.n[latBucket(uint64(ns))]++
}

func latBucket(v uint64) int {
	if v < 32 {
		return int(v)
	}
	e := bits.Len64(v) - 6 // v>>e is in [32, 64)
	return (e+1)*32 + int(v>>e) - 32
}

// latLow is the least value of bucket b.
func latLow(b int) float64 {
	if b < 32 {
		return float64(b)
	}
	e := b/32 - 1
	return float64(uint64(b%32+32) << e)
}

func (h *latHist) merge(o *latHist) {
	for i, c := range o.n {
		h.n[i] += c
	}
	h.max = max(h.max, o.max)
}

func (h *latHist) count() int64 {
	var t int64
	for _, c := range h.n {
		t += c
	}
	return t
}

// quantile returns the low end of the bucket holding quantile q, or the
// exact max for the last call.
func (h *latHist) quantile(q float64) float64 {
	t := h.count()
	if t == 0 {
		return 0
	}
	rank := int64(q * float64(t))
	if rank >= t {
		return float64(h.max)
	}
	var seen int64
	for i, c := range h.n {
		seen += c
		if seen > rank {
			return min(latLow(i), float64(h.max))
		}
	}
	return float64(h.max)
}

func (h *latHist) run(g int, elapsed time.Duration) MixRun {
	n := h.count()
	return MixRun{Goroutines: g, Calls: n, OpsPerSec: float64(n) / elapsed.Seconds(),
		P50: h.quantile(0.5), P99: h.quantile(0.99), P999: h.quantile(0.999), Max: float64(h.max), Over: h.over(goalStallMs * 1e6)}
}

// over counts the values in buckets wholly above ns.
func (h *latHist) over(ns uint64) int64 {
	var t int64
	for i := latBucket(ns) + 1; i < len(h.n); i++ {
		t += h.n[i]
	}
	return t
}

// scaleUsers holds what the load needs of each user; the stanzas are
// written per call from the index, so that the harness itself stays small
// next to the state it measures.
type scaleUsers struct {
	sessions []stanza.JID // userN@montague.com/phone
	online   []bool       // toggled by the goroutine that owns the user
	// epoch is where the clock of the next run starts: an hour after the
	// last run's, so that time never goes back (a run's calls move it by
	// 1 µs each, a few seconds in all).
	epoch   clock.Time
	avail   []byte // a 200-byte available presence
	unavail []byte // a 200-byte unavailable presence
}

func (us *scaleUsers) nextEpoch() { us.epoch = us.epoch.Add(time.Hour) }

func contactOf(i int) string { return fmt.Sprintf("j%09d@capulet.com", i) } // 22 bytes

func appendServerProbe(dst []byte, i int) []byte {
	dst = append(dst[:0], "<presence from='"...)
	dst = append(dst, contactOf(i)...)
	dst = append(dst, "/balcony' to='user"...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	return append(dst, "@montague.com' type='probe'/>"...)
}

func appendClientProbe(dst []byte, i int) []byte {
	dst = append(dst[:0], "<presence to='"...)
	dst = append(dst, contactOf(i)...)
	return append(dst, "' type='probe'/>"...)
}

// scaleConfig is the Config of every Sharded in the section: client probes
// are not rate limited (the load sends thousands per session), the rest is
// the default.
func scaleConfig(auth core.Authorizer) core.Config {
	return core.Config{Served: []string{domain}, Auth: auth, ProbeLimit: core.RateLimit{Burst: 1 << 20, Per: time.Millisecond}}
}

// measureScale runs the scale section with users users on shards shards
// (0: the default) and runs of d. With tracePath, it writes an execution
// trace (runtime/trace) of the two runs during a snapshot there, which
// tells what a slow call waited for: a lock, the scheduler or the GC.
func measureScale(users, shards int, d time.Duration, tracePath string, log io.Writer) (ScaleResult, error) {
	r := ScaleResult{Users: users, Shards: shards, Seconds: d.Seconds()}
	start := time.Now()
	us := scaleUsers{
		sessions: make([]stanza.JID, users),
		online:   make([]bool, users),
		epoch:    t0.Add(time.Hour),
		avail:    pad(nil, "<presence><show>away</show><status>", "</status></presence>"),
		unavail:  pad(nil, "<presence type='unavailable'><status>", "</status></presence>"),
	}
	for i := range us.sessions {
		us.sessions[i] = stanza.MustParse("user" + strconv.Itoa(i) + "@" + domain + "/phone")
	}
	// The authorisation facts first, then the machine's state, each
	// measured as the heap it adds. Every JID is parsed afresh, as a host
	// reading rosters does, so that the strings kept count.
	before := heapInuse()
	auth := core.NewMemoryAuth()
	for i := range users {
		auth.SetSubscription(stanza.MustParse("user"+strconv.Itoa(i)+"@"+domain), stanza.MustParse(contactOf(i)), core.SubBoth)
	}
	withAuth := heapInuse()
	s, err := core.NewSharded(scaleConfig(auth), r.Shards)
	if err != nil {
		return r, err
	}
	for i := range users {
		if _, err := s.Client(t0, us.sessions[i], us.unavail); err != nil {
			return r, fmt.Errorf("scale: building users: %w", err)
		}
	}
	withState := heapInuse()
	r.BuildSeconds = time.Since(start).Seconds()
	r.AuthBytes = float64(int64(withAuth)-int64(before)) / float64(users)
	r.MachineBytes = float64(int64(withState)-int64(withAuth)) / float64(users)

	for _, g := range []int{1, 2} {
		fmt.Fprintf(log, "bench: scale, mixed load, %d goroutine(s)\n", g)
		runtime.GC()
		run, err := mixedLoad(&us, s, g, func() { time.Sleep(d) })
		if err != nil {
			return r, err
		}
		r.Mixed = append(r.Mixed, run)
	}

	// The snapshot under load: first the same load with nothing else for
	// as long as an unloaded snapshot takes, for the floor the scheduler
	// and the collector set, then with the snapshot.
	fmt.Fprintln(log, "bench: scale, snapshot and restore")
	runtime.GC()
	t := time.Now()
	snap := s.Snapshot(nil)
	r.EncodeSeconds = time.Since(t).Seconds()
	r.SnapshotBytes = len(snap)
	took := max(time.Since(t), 100*time.Millisecond)
	runtime.GC()
	if r.Idle, err = mixedLoad(&us, s, 2, func() { time.Sleep(took) }); err != nil {
		return r, err
	}
	runtime.GC()
	if r.Busy, err = mixedLoad(&us, s, 2, func() { spinFor(took) }); err != nil {
		return r, err
	}
	runtime.GC()
	if tracePath != "" {
		f, err := os.Create(tracePath)
		if err == nil {
			err = trace.Start(f)
		}
		if err != nil {
			return r, err
		}
		defer f.Close()
		defer trace.Stop() // after both snapshot runs, or on an error
	}
	if r.Stall1, err = mixedLoad(&us, s, 1, func() { snap = s.Snapshot(snap[:0]) }); err != nil {
		return r, err
	}
	runtime.GC()
	if r.Stall, err = mixedLoad(&us, s, 2, func() {
		t := time.Now()
		snap = s.Snapshot(snap[:0])
		r.StallSnapshotSeconds = time.Since(t).Seconds()
	}); err != nil {
		return r, err
	}
	if tracePath != "" {
		trace.Stop()
	}
	for range 2 {
		runtime.GC()
		t = time.Now()
		snap = s.Snapshot(snap[:0])
		r.EncodeSeconds = min(r.EncodeSeconds, time.Since(t).Seconds())
		r.SnapshotBytes = len(snap)
	}
	for try := range 3 {
		s2, err := core.NewSharded(scaleConfig(auth), r.Shards)
		if err != nil {
			return r, err
		}
		runtime.GC()
		t = time.Now()
		if err := s2.Restore(snap); err != nil {
			return r, fmt.Errorf("scale: restore: %w", err)
		}
		if took := time.Since(t).Seconds(); try == 0 || took < r.RestoreSeconds {
			r.RestoreSeconds = took
		}
		// A fast Restore counts only if it restored everything: the
		// state must snapshot to the same bytes.
		if try == 0 && !bytes.Equal(s2.Snapshot(nil), snap) {
			return r, errors.New("scale: the restored Sharded does not snapshot to the snapshot it was restored from")
		}
	}
	runtime.GC() // s is dead: only the durable store's copy from here on

	fmt.Fprintln(log, "bench: scale, durable changes")
	if err := measureDurable(&r, &us, auth, snap, d); err != nil {
		return r, err
	}
	return r, nil
}

// measureDurable opens a store in a temporary directory, gives it the
// whole state (restored into its Sharded, then compacted so that it is on
// disk) and measures acknowledged presence changes with 1 and 2
// goroutines, each changing its own users.
func measureDurable(r *ScaleResult, us *scaleUsers, auth core.Authorizer, snap []byte, d time.Duration) error {
	dir, err := os.MkdirTemp("", "lastseen-bench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ds, err := store.OpenSharded(dir, scaleConfig(auth), r.Shards, store.Options{})
	if err != nil {
		return err
	}
	open := true
	defer func() {
		if open {
			ds.Shutdown() // after an error, which is the one to report
		}
	}()
	if err := ds.Sharded().Restore(snap); err != nil {
		return fmt.Errorf("scale: durable restore: %w", err)
	}
	t := time.Now()
	if err := ds.Compact(); err != nil {
		return fmt.Errorf("scale: compact: %w", err)
	}
	r.CompactSeconds = time.Since(t).Seconds()
	for _, g := range []int{1, 2} {
		fsyncs := ds.Fsyncs()
		h, elapsed, err := drive(g, func() { time.Sleep(d) }, func(k int) func(h *latHist) error {
			var o core.Outputs
			rnd := rand.New(rand.NewPCG(uint64(k), 11))
			now := us.epoch
			return func(h *latHist) error {
				i := ownUser(rnd, len(us.sessions), g, k)
				raw := us.avail
				if us.online[i] {
					raw = us.unavail
				}
				us.online[i] = !us.online[i]
				now += 1000
				c := time.Now()
				err := ds.ClientInto(&o, now, us.sessions[i], raw)
				h.add(int64(time.Since(c)))
				return err
			}
		})
		us.nextEpoch()
		if err != nil {
			return fmt.Errorf("scale: durable change: %w", err)
		}
		n := h.count()
		run := DurableRun{Goroutines: g, Changes: n, ChangesPerSec: float64(n) / elapsed.Seconds(), MaxNs: float64(h.max)}
		if n > 0 {
			run.FsyncsPerChange = float64(ds.Fsyncs()-fsyncs) / float64(n)
		}
		r.Durable = append(r.Durable, run)
	}
	open = false
	return ds.Shutdown()
}

// spinFor keeps the calling goroutine computing for d, in registers, with
// no lock and no allocation.
func spinFor(d time.Duration) {
	x := uint64(88172645463325252)
	for start := time.Now(); time.Since(start) < d; {
		for range 4096 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
	}
	spinSink.Add(x)
}

// ownUser picks a random user among those goroutine k of g owns, so that
// a user's online flag is only ever touched by one goroutine.
func ownUser(rnd *rand.Rand, users, g, k int) int {
	return rnd.IntN(users/g)*g + k
}

var errReplies = errors.New("scale: a server probe did not get exactly one reply")

// mixedLoad runs g goroutines of the mixed load (mixServerProbes % server
// probes, mixUpdates % presence updates, the rest client probes, each to
// a random user of the goroutine's own) until during returns, timing every
// call.
func mixedLoad(us *scaleUsers, s *core.Sharded, g int, during func()) (MixRun, error) {
	defer us.nextEpoch()
	var gcBefore runtime.MemStats
	runtime.ReadMemStats(&gcBefore)
	h, elapsed, err := drive(g, during, func(k int) func(h *latHist) error {
		var o core.Outputs
		var buf []byte
		rnd := rand.New(rand.NewPCG(uint64(k), 70))
		now := us.epoch
		return func(h *latHist) error {
			i := ownUser(rnd, len(us.sessions), g, k)
			now += 1000
			var err error
			switch p := rnd.IntN(100); {
			case p < mixServerProbes:
				buf = appendServerProbe(buf, i)
				c := time.Now()
				err = s.ServerInto(&o, now, buf)
				h.add(int64(time.Since(c)))
				if err == nil && len(o.List) != 1 {
					err = errReplies
				}
			case p < mixServerProbes+mixUpdates:
				raw := us.avail
				if us.online[i] {
					raw = us.unavail
				}
				us.online[i] = !us.online[i]
				c := time.Now()
				err = s.ClientInto(&o, now, us.sessions[i], raw)
				h.add(int64(time.Since(c)))
			default:
				buf = appendClientProbe(buf, i)
				c := time.Now()
				err = s.ClientInto(&o, now, us.sessions[i], buf)
				h.add(int64(time.Since(c)))
			}
			return err
		}
	})
	if err != nil {
		return MixRun{}, err
	}
	run := h.run(g, elapsed)
	run.gcSince(&gcBefore)
	return run, nil
}

// drive runs g goroutines until during returns, goroutine k calling the
// step newStep(k) made for it (holding that goroutine's own state) over
// and over with its own histogram. It returns the histograms merged and
// how long the goroutines ran, or the first error a step returned (which
// stops its goroutine).
func drive(g int, during func(), newStep func(k int) func(h *latHist) error) (latHist, time.Duration, error) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failed atomic.Value
	hs := make([]latHist, g)
	start := time.Now()
	for k := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := newStep(k)
			for !stop.Load() {
				if err := step(&hs[k]); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond) // every goroutine running first
	during()
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	var all latHist
	if err, _ := failed.Load().(error); err != nil {
		return all, elapsed, err
	}
	for k := range hs {
		all.merge(&hs[k])
	}
	return all, elapsed, nil
}

// atScale says at how many users a goal measured per user was checked,
// when that is not the goal's own size.
func (r ScaleResult) atScale(ok bool) string {
	st := status(ok)
	if r.Users != goalUsers {
		st += " (at " + fmtRate(float64(r.Users)) + " users)"
	}
	return st
}

// perMillion scales a time measured at r.Users users to 1 M users.
func (r ScaleResult) perMillion(s float64) float64 { return s * goalUsers / float64(r.Users) }

// targets are issue 11's goals against this run's figures; those set for
// 1 M users compare the time per million users when the run had fewer.
func (r ScaleResult) targets() []Target {
	if r.Users == 0 {
		return nil
	}
	if r.Missing != "" {
		return []Target{{Name: "scale section", Goal: "runs", Measured: "n/a (" + r.Missing + ")", Status: "n/a"}}
	}
	secs := func(s float64) string {
		m := fmt.Sprintf("%.3f s", s)
		if r.Users != goalUsers {
			m += fmt.Sprintf(" (%.3f s per 1 M users)", r.perMillion(s))
		}
		return m
	}
	return []Target{
		{"max call latency while a snapshot runs, 2 goroutines", fmt.Sprintf("≤ %d ms", goalStallMs),
			fmt.Sprintf("%s (1 goroutine: %s; same load with no snapshot: %s, beside a goroutine computing: %s)", fmtNs(r.Stall.Max), fmtNs(r.Stall1.Max), fmtNs(r.Idle.Max), fmtNs(r.Busy.Max)), r.atScale(r.Stall.Max <= goalStallMs*1e6)},
		{"Restore of 1 M users", fmt.Sprintf("≤ %.1f s", goalRestoreSeconds), secs(r.RestoreSeconds), r.atScale(r.perMillion(r.RestoreSeconds) <= goalRestoreSeconds)},
		{"Snapshot of 1 M users", fmt.Sprintf("≤ %.1f s", goalEncodeSeconds), secs(r.EncodeSeconds), r.atScale(r.perMillion(r.EncodeSeconds) <= goalEncodeSeconds)},
		{"MemoryAuth per roster entry (22-byte contact)", fmt.Sprintf("≤ %d B", goalAuthBytes), fmt.Sprintf("%.0f B", r.AuthBytes), r.atScale(r.AuthBytes <= goalAuthBytes)},
	}
}

// mixRows is the mixed-load table: the plain runs, then the pair that
// shows the snapshot's effect.
func (r ScaleResult) mixRows() [][]string {
	rows := [][]string{{"run", "goroutines", "calls/s", "p50", "p99", "p99.9", "max", fmt.Sprintf("calls > %d ms", goalStallMs), "GCs ended (longest pause)"}}
	add := func(name string, m MixRun) {
		rows = append(rows, []string{name, strconv.Itoa(m.Goroutines), fmtRate(m.OpsPerSec), fmtNs(m.P50), fmtNs(m.P99), fmtNs(m.P999), fmtNs(m.Max),
			strconv.FormatInt(m.Over, 10), fmt.Sprintf("%d (%s)", m.GCs, fmtNs(m.GCMaxPause))})
	}
	for _, m := range r.Mixed {
		add(fmt.Sprintf("mixed load, %.1f s", r.Seconds), m)
	}
	add("no snapshot (as long as one)", r.Idle)
	add("beside a goroutine computing, no lock (as long)", r.Busy)
	add("while a snapshot runs", r.Stall1)
	add("while a snapshot runs", r.Stall)
	return rows
}

// figureRows is every other figure of the section, with its goal.
func (r ScaleResult) figureRows() [][]string {
	rows := [][]string{{"figure", "measured", "goal"}}
	rows = append(rows,
		[]string{"users (offline, 200-byte presence, 1 roster entry each)", fmt.Sprintf("%d (built in %.1f s)", r.Users, r.BuildSeconds), ""},
		[]string{"Snapshot, no other load", fmt.Sprintf("%.3f s, %.1f MiB (%.0f B/user)", r.EncodeSeconds, float64(r.SnapshotBytes)/(1<<20), float64(r.SnapshotBytes)/float64(r.Users)), fmt.Sprintf("≤ %.1f s at 1 M", goalEncodeSeconds)},
		[]string{"Snapshot, under the 2-goroutine load", fmt.Sprintf("%.3f s; longest call meanwhile %s", r.StallSnapshotSeconds, fmtNs(r.Stall.Max)), fmt.Sprintf("call ≤ %d ms", goalStallMs)},
		[]string{"Restore into a new Sharded", fmt.Sprintf("%.3f s", r.RestoreSeconds), fmt.Sprintf("≤ %.1f s at 1 M", goalRestoreSeconds)},
		[]string{"store: first compaction (snapshot, write, fsync)", fmt.Sprintf("%.3f s", r.CompactSeconds), ""},
	)
	for _, d := range r.Durable {
		rows = append(rows, []string{fmt.Sprintf("store: durable acknowledged changes, %d goroutine(s)", d.Goroutines),
			fmt.Sprintf("%s/s (%.3f fsyncs/change, longest %s)", fmtRate(d.ChangesPerSec), d.FsyncsPerChange, fmtNs(d.MaxNs)), ""})
	}
	rows = append(rows,
		[]string{"memory per user: machine state (Sharded)", fmt.Sprintf("%.0f B (%.0f B beyond the presence)", r.MachineBytes, r.MachineBytes-presenceSize), ""},
		[]string{"memory per user: authorisation facts (MemoryAuth)", fmt.Sprintf("%.0f B", r.AuthBytes), fmt.Sprintf("≤ %d B", goalAuthBytes)},
	)
	return rows
}

func (r ScaleResult) shardsText() string {
	if r.Shards == 0 {
		return "default shards, 64 per GOMAXPROCS"
	}
	return fmt.Sprintf("%d shards", r.Shards)
}

// scaleIntro says what the section ran.
func (r ScaleResult) scaleIntro() string {
	return fmt.Sprintf("%d users on one core.Sharded (%s), each offline with a %d-byte presence and one roster entry (a distinct 22-byte contact) in a MemoryAuth. "+
		"The mixed load is %d %% server probes from the contact, %d %% presence updates (each user alternates available and unavailable) and %d %% client probes to the contact, "+
		"each to a random user of the goroutine's own share; latencies are wall-clock time around each call (a busy machine's scheduling included). "+
		"The snapshot rows run the load from 5 ms before a Snapshot until it returns. The two rows above them run the 2-goroutine load as long as an unloaded snapshot takes, with nothing else, then beside a third goroutine that computes and takes no lock: the floors that the machine, and then Go's scheduler sharing 2 cores among 3 goroutines (it preempts after 10 ms), set for the 2-goroutine snapshot row. "+
		"Durable changes go through store.OpenSharded (default options, so a compaction of the whole state every %d records) holding the same users.",
		r.Users, r.shardsText(), presenceSize, mixServerProbes, mixUpdates, 100-mixServerProbes-mixUpdates, store.DefaultCompactEvery)
}

func (r ScaleResult) writeText(w io.Writer) {
	if r.Users == 0 {
		return // not run
	}
	if r.Missing != "" {
		fmt.Fprintf(w, "scale: n/a (%s)\n", r.Missing)
		return
	}
	fmt.Fprintf(w, "scale (issue 11), %d users, %s\n", r.Users, r.shardsText())
	writeAligned(w, r.mixRows(), "  ")
	fmt.Fprintln(w)
	writeAligned(w, r.figureRows(), "  ")
}

func (r ScaleResult) writeMarkdown(w io.Writer) {
	if r.Users == 0 {
		return // not run
	}
	fmt.Fprintln(w, "## Scale: one Sharded with many users")
	fmt.Fprintln(w)
	if r.Missing != "" {
		fmt.Fprintf(w, "n/a (%s)\n", r.Missing)
		return
	}
	fmt.Fprintln(w, r.scaleIntro()+" `go run ./bench -scale` runs it at 1 M users.")
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.mixRows())
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.figureRows())
}
