package core_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

func newSharded(t testing.TB, n int) *core.Sharded {
	t.Helper()
	s, err := core.NewSharded(core.Config{Served: []string{"montague.com"}}, n)
	if err != nil {
		t.Fatal(err)
	}
	s.SetRoster(stanza.MustParse("romeo@montague.com"), stanza.MustParse("juliet@capulet.com"), core.SubBoth)
	return s
}

// journal collects records from SetJournal, safe for concurrent use.
type journal struct {
	mu   sync.Mutex
	recs [][]byte
}

func (j *journal) add(recs [][]byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range recs {
		j.recs = append(j.recs, bytes.Clone(r))
	}
	return nil
}

// TestShardedDurableMatchesMachine feeds the same random events to a
// Machine and to Sharded machines of several sizes: snapshots, journals,
// restores and the restart rule must agree byte for byte.
func TestShardedDurableMatchesMachine(t *testing.T) {
	for _, n := range []int{1, 3, 8} {
		for seed := uint64(1); seed <= 10; seed++ {
			m := newMachine(t, true)
			s := newSharded(t, n)
			var sj journal
			s.SetJournal(sj.add)
			var mj [][]byte
			for _, e := range randomEvents(seed, 200) {
				_, err1 := apply(m, e)
				_, err2 := apply(s, e)
				if (err1 == nil) != (err2 == nil) {
					t.Fatalf("n=%d seed %d: Machine err %v, Sharded err %v", n, seed, err1, err2)
				}
				for _, r := range m.Records() {
					mj = append(mj, bytes.Clone(r))
				}
			}
			snap := m.Snapshot(nil)
			if !bytes.Equal(snap, s.Snapshot(nil)) {
				t.Fatalf("n=%d seed %d: Sharded snapshot differs from Machine's", n, seed)
			}
			// The Sharded journal replays on a Machine, and the Machine's
			// on a Sharded with another number of shards.
			rm := newMachine(t, false)
			for _, r := range sj.recs {
				if err := rm.ApplyRecord(r); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(snap, rm.Snapshot(nil)) {
				t.Fatalf("n=%d seed %d: Sharded journal replayed on a Machine differs", n, seed)
			}
			rs := newSharded(t, n+2)
			for _, r := range mj {
				if err := rs.ApplyRecord(r); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(snap, rs.Snapshot(nil)) {
				t.Fatalf("n=%d seed %d: Machine journal replayed on a Sharded differs", n, seed)
			}
			// Restore a Machine's snapshot into a Sharded and restart both.
			rs2 := newSharded(t, n+1)
			if err := rs2.Restore(snap); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(snap, rs2.Snapshot(nil)) {
				t.Fatalf("n=%d seed %d: restored Sharded differs", n, seed)
			}
			if a, b := rs.Restarted(), rm.Restarted(); a != b {
				t.Fatalf("n=%d seed %d: Restarted took %d offline on Sharded, %d on Machine", n, seed, a, b)
			}
			if !bytes.Equal(rm.Snapshot(nil), rs.Snapshot(nil)) {
				t.Fatalf("n=%d seed %d: restart rule differs between Sharded and Machine", n, seed)
			}
			// Both go on the same way after the restart.
			for _, e := range randomEvents(seed+100, 50) {
				o1, err1 := apply(rm, e)
				o2, err2 := apply(rs, e)
				if (err1 == nil) != (err2 == nil) || len(o1) != len(o2) {
					t.Fatalf("n=%d seed %d: after restart, Machine %v %v, Sharded %v %v", n, seed, o1, err1, o2, err2)
				}
				for i := range o1 {
					if !bytes.Equal(o1[i].Stanza, o2[i].Stanza) {
						t.Fatalf("n=%d seed %d: after restart, Machine %s, Sharded %s", n, seed, o1[i].Stanza, o2[i].Stanza)
					}
				}
			}
			if !bytes.Equal(rm.AppendState(nil), rs.AppendState(nil)) {
				t.Fatalf("n=%d seed %d: state after restart and more events differs", n, seed)
			}
		}
	}
}

// TestShardedRestartStampsGlobalLastChange: the restart rule stamps every
// user with the latest change on any shard, as a Machine would.
func TestShardedRestartStampsGlobalLastChange(t *testing.T) {
	m := newMachine(t, false)
	s := newSharded(t, 16)
	for i, e := range []struct{ session, xml string }{
		{"romeo@montague.com/balcony", `<presence/>`},
		{"user1@montague.com/a", `<presence/>`},
		{"user2@montague.com/a", `<presence/>`},
		{"user3@montague.com/a", `<presence type='unavailable'/>`},
	} {
		now := t0 + 3600e9*clock.Time(i)
		for _, x := range []stepper{m, s} {
			if _, err := x.Client(now, stanza.MustParse(e.session), []byte(e.xml)); err != nil {
				t.Fatal(err)
			}
		}
	}
	m.Restarted()
	s.Restarted()
	if !bytes.Equal(m.Snapshot(nil), s.Snapshot(nil)) {
		t.Fatal("restart rule on Sharded differs from Machine")
	}
	out, err := s.Server(t0+1e13, []byte(`<presence from='juliet@capulet.com/x' to='romeo@montague.com' type='probe'/>`))
	if err != nil || len(out) != 1 || !bytes.Contains(out[0].Stanza, []byte("stamp='2000-01-01T03:00:00Z'")) {
		t.Fatalf("romeo after restart: %s %v; want stamped with the last change anywhere, 03:00", out, err)
	}
}

func TestShardedRestoreRefusesDamage(t *testing.T) {
	src := newMachine(t, false)
	for _, e := range randomEvents(5, 200) {
		apply(src, e)
	}
	snap := src.Snapshot(nil)
	s := newSharded(t, 4)
	for _, e := range randomEvents(6, 100) {
		apply(s, e)
	}
	before := s.AppendState(nil)
	for i := 0; i < len(snap); i += 1 + len(snap)/50 {
		c := bytes.Clone(snap)
		c[i] ^= 0x10
		if err := s.Restore(c); !errors.Is(err, core.ErrCorrupt) {
			t.Fatalf("byte %d flipped: err = %v", i, err)
		}
		if err := s.Restore(c[:i]); !errors.Is(err, core.ErrCorrupt) {
			t.Fatalf("truncated at %d: err = %v", i, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, {9}, {1, 200}} {
		if err := s.ApplyRecord(bad); !errors.Is(err, core.ErrCorrupt) {
			t.Errorf("ApplyRecord(%v) = %v, want ErrCorrupt", bad, err)
		}
	}
	if !bytes.Equal(before, s.AppendState(nil)) {
		t.Fatal("a refused Restore or ApplyRecord changed the state")
	}
}

// TestShardedJournalError: a failing journal fails the call.
func TestShardedJournalError(t *testing.T) {
	s := newSharded(t, 2)
	boom := errors.New("disk full")
	s.SetJournal(func([][]byte) error { return boom })
	if out, err := s.Client(t0, stanza.MustParse("romeo@montague.com/a"), []byte(`<presence/>`)); !errors.Is(err, boom) || out != nil {
		t.Fatalf("got %v %v, want the journal's error", out, err)
	}
	if _, err := s.Up(t0, stanza.MustParse("chat.montague.com")); !errors.Is(err, boom) {
		t.Fatalf("up: %v", err)
	}
	if out, err := s.Client(t0, stanza.MustParse("romeo@montague.com/a"), []byte(`<presence type='probe' to='juliet@capulet.com'/>`)); err != nil || len(out) != 1 {
		t.Fatalf("a probe writes no record and must not fail: %v %v", out, err)
	}
}

// TestShardedJournalConcurrent: records written by concurrent calls, in
// whatever order they reached the journal, replay to the Sharded's state.
func TestShardedJournalConcurrent(t *testing.T) {
	s := newSharded(t, 8)
	var j journal
	s.SetJournal(j.add)
	var wg sync.WaitGroup
	for u := 0; u < 12; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			session := stanza.MustParse("user" + string(rune('a'+u)) + "@montague.com/r")
			for r := 0; r < 60; r++ {
				now := t0 + clock.Time(r)*1e9
				x := `<presence><status>` + string(rune('0'+r%5)) + `</status></presence>`
				if r%4 == 3 {
					x = `<presence type='unavailable'/>`
				}
				if _, err := s.Client(now, session, []byte(x)); err != nil {
					t.Error(err)
				}
				if r%17 == 0 {
					s.Up(now, stanza.MustParse("chat.montague.com"))
				}
			}
		}()
	}
	wg.Wait()
	m := newMachine(t, false)
	for _, r := range j.recs {
		if err := m.ApplyRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(m.Snapshot(nil), s.Snapshot(nil)) {
		t.Fatal("journal of concurrent calls does not replay to the Sharded's state")
	}
}
