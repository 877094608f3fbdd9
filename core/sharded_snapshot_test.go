package core_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// snapshotBenchUsers is how many users BenchmarkShardedSnapshot builds;
// LASTSEEN_SNAPSHOT_USERS overrides it (building a million takes a few
// seconds and about 1 GB).
func snapshotBenchUsers(b *testing.B) int {
	if s := os.Getenv("LASTSEEN_SNAPSHOT_USERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("LASTSEEN_SNAPSHOT_USERS=%q", s)
		}
		return n
	}
	return 1_000_000
}

type snapUser struct {
	session stanza.JID
	probe   []byte
}

// buildSnapshotUsers makes the state of issue 11's measurement: n users,
// each with one contact and a last unavailable presence of about 200 bytes.
func buildSnapshotUsers(b *testing.B, n int) (*core.Sharded, []snapUser) {
	s, err := core.NewSharded(core.Config{Served: []string{benchDomain}}, 0)
	if err != nil {
		b.Fatal(err)
	}
	prober := benchJID(b, benchProber)
	unavail := []byte(`<presence type='unavailable'><status>` + strings.Repeat("Gone to Mantua. ", 10) + `</status></presence>`)
	us := make([]snapUser, n)
	for i := range us {
		bare := benchJID(b, "user"+strconv.Itoa(i)+"@"+benchDomain)
		us[i].session = benchJID(b, bare.String()+"/phone")
		us[i].probe = []byte("<presence from='juliet@capulet.com/balcony' to='" + bare.String() + "' type='probe'/>")
		if err := s.SetRoster(bare, prober, core.SubBoth); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Client(benchT0, us[i].session, unavail); err != nil {
			b.Fatal(err)
		}
	}
	return s, us
}

// BenchmarkShardedSnapshot measures, at snapshotBenchUsers users, how long
// Snapshot and Restore take (ns/op of encode and restore) and the longest
// a call waits while a snapshot runs (stall: concurrent callers send
// presence updates and server probes as fast as they can during each
// snapshot; max-call-ms is the slowest call seen, calls the number made).
// The callers first run as long again with no snapshot: idle-max-call-ms
// is the slowest call then, the floor set by the scheduler and the
// garbage collector on a busy machine.
func BenchmarkShardedSnapshot(b *testing.B) {
	n := snapshotBenchUsers(b)
	s, us := buildSnapshotUsers(b, n)
	snap := s.Snapshot(nil)
	b.Run("encode", func(b *testing.B) {
		buf := make([]byte, 0, len(snap)+1024)
		b.ReportMetric(float64(n), "users")
		var cut, med, cp time.Duration
		for i := 0; i < b.N; i++ {
			var c, m, p time.Duration
			buf, c, m, p = core.SnapshotLockHolds(s, buf[:0])
			cut, med, cp = max(cut, c), max(med, m), max(cp, p)
		}
		b.ReportMetric(float64(len(buf))/float64(n), "B/user")
		// What a call can wait for, scheduling aside: the cut, or the
		// copy of its shard.
		b.ReportMetric(float64(cut)/1e6, "cut-hold-ms")
		b.ReportMetric(float64(med)/1e6, "median-shard-copy-ms")
		b.ReportMetric(float64(cp)/1e6, "max-shard-copy-ms")
	})
	for _, callers := range []int{1, 2} {
		b.Run("stall/callers="+strconv.Itoa(callers), func(b *testing.B) {
			var worst, idle, calls atomic.Int64
			buf := make([]byte, 0, len(snap)+1024)
			took := time.Second
			run := func(i int, worst *atomic.Int64, during func()) {
				var stop atomic.Bool
				var wg sync.WaitGroup
				for c := 0; c < callers; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r := rand.New(rand.NewPCG(uint64(c), uint64(i)))
						var o core.Outputs
						now := benchT0.Add(time.Hour)
						avail := [][]byte{[]byte(benchAvailA), []byte(benchAvailB)}
						for k := 0; !stop.Load(); k++ {
							u := &us[r.IntN(len(us))]
							now += clock.Time(time.Microsecond)
							t0 := time.Now()
							var err error
							if k%2 == 0 {
								err = s.ClientInto(&o, now, u.session, avail[k/2%2])
							} else {
								err = s.ServerInto(&o, now, u.probe)
							}
							d := int64(time.Since(t0))
							if err != nil {
								b.Error(err)
								return
							}
							calls.Add(1)
							for w := worst.Load(); d > w && !worst.CompareAndSwap(w, d); w = worst.Load() {
							}
						}
					}()
				}
				time.Sleep(5 * time.Millisecond) // callers running before it starts
				during()
				stop.Store(true)
				wg.Wait()
			}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				run(i, &idle, func() { time.Sleep(took) })
				b.StartTimer()
				run(i, &worst, func() {
					t0 := time.Now()
					buf = s.Snapshot(buf[:0])
					took = time.Since(t0)
				})
			}
			b.ReportMetric(float64(idle.Load())/1e6, "idle-max-call-ms")
			b.ReportMetric(float64(worst.Load())/1e6, "max-call-ms")
			b.ReportMetric(float64(calls.Load())/float64(b.N), "calls/op")
		})
	}
	b.Run("restore", func(b *testing.B) {
		r, err := core.NewSharded(core.Config{Served: []string{benchDomain}}, 0)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			if err := r.Restore(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestShardedSnapshotCutConcurrent takes snapshots while concurrent
// writers change the state, and checks each against the journal: the
// snapshot plus the records after its cut replay to the final state, as
// do the snapshot before the writers plus all of them. The per-shard
// copies are made by the snapshot and by the writers, in any order, so
// this fails if a copy misses a change before the cut or holds one after.
func TestShardedSnapshotCutConcurrent(t *testing.T) {
	s := newSharded(t, 8)
	var j journal
	s.SetJournal(j.add)
	type cut struct {
		snap []byte
		at   int
	}
	var cuts []cut
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; k < 20; k++ {
			var c cut
			c.snap = s.SnapshotCut(nil, func() {
				j.mu.Lock()
				c.at = len(j.recs)
				j.mu.Unlock()
			})
			cuts = append(cuts, c)
		}
	}()
	for u := 0; u < 12; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			session := stanza.MustParse("user" + strconv.Itoa(u) + "@montague.com/r" + strconv.Itoa(u%3))
			for r := 0; r < 200; r++ {
				now := t0 + clock.Time(r)*1e9
				x := `<presence><status>` + strconv.Itoa(r%7) + `</status></presence>`
				if r%4 == 3 {
					x = `<presence type='unavailable'/>`
				}
				if _, err := s.Client(now, session, []byte(x)); err != nil {
					t.Error(err)
				}
				if r%37 == 0 {
					s.Up(now, stanza.MustParse("chat.montague.com"))
				}
			}
		}()
	}
	wg.Wait()
	<-done
	want := s.Snapshot(nil)
	for i, c := range cuts {
		m := newMachine(t, false)
		if err := m.Restore(c.snap); err != nil {
			t.Fatal(err)
		}
		for _, r := range j.recs[c.at:] {
			if err := m.ApplyRecord(r); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(m.Snapshot(nil), want) {
			t.Fatalf("snapshot %d (cut after %d of %d records) + the rest of the journal differs from the final state", i, c.at, len(j.recs))
		}
	}
}

// TestShardedSnapshotKeyOrder gives a Sharded users whose keys share long
// prefixes (localparts of a few letters, 1 to 24 of them, half of them
// after the same 16 letters, so that many keys agree on their first 8 or
// 16 bytes, or are a prefix of another):
// its snapshot, which sorts each shard by the keys' first bytes and then
// merges the shards, must equal a Machine's, which sorts whole keys.
func TestShardedSnapshotKeyOrder(t *testing.T) {
	unavail := []byte(`<presence type='unavailable'/>`)
	for _, n := range []int{1, 3, 8, 64} {
		for seed := uint64(1); seed <= 5; seed++ {
			r := rand.New(rand.NewPCG(seed, uint64(n)))
			m := newMachine(t, false)
			s := newSharded(t, n)
			for range 2000 {
				local := make([]byte, 1+r.IntN(24))
				for i := range local {
					local[i] = "ab."[r.IntN(3)]
				}
				local[0], local[len(local)-1] = 'a', 'b' // no dot at either end
				if r.IntN(2) == 0 {                      // the first 16 bytes equal, then a tail
					local = append([]byte("abababababababab"), local[:r.IntN(len(local)+1)]...)
				}
				jid := stanza.MustParse(string(local) + "@montague.com/r")
				_, err1 := m.Client(benchT0, jid, unavail)
				_, err2 := s.Client(benchT0, jid, unavail)
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: Machine %v, Sharded %v", jid, err1, err2)
				}
			}
			want := m.Snapshot(nil)
			for round := range 2 { // the second reuses the first's buffers
				if got := s.Snapshot(nil); !bytes.Equal(got, want) {
					t.Fatalf("n=%d seed %d round %d: Sharded snapshot (%d bytes) differs from Machine's (%d bytes)", n, seed, round, len(got), len(want))
				}
			}
		}
	}
}
