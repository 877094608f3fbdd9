package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

var testConfig = core.Config{Served: []string{"montague.com"}}

// event is one input for a machine.
type event struct {
	Now  clock.Time
	Kind string // client, server, close, up, down
	Arg  string // session or domain; empty for server
	XML  string
}

var (
	testUsers     = []string{"romeo", "juliet", "nurse", "Tybalt", "benvolio"}
	testResources = []string{"balcony", "phone", "Laptop"}
)

// genEvents makes a reproducible stream of mostly valid, sometimes invalid
// events, with presence that keeps changing so that every change is
// visible in a probe reply.
func genEvents(r *rand.Rand, now clock.Time, n int) []event {
	evs := make([]event, 0, n)
	for i := 0; i < n; i++ {
		now += clock.Time(1+r.IntN(90)) * 1e9
		u := testUsers[r.IntN(len(testUsers))]
		session := fmt.Sprintf("%s@montague.com/%s", u, testResources[r.IntN(len(testResources))])
		switch k := r.IntN(20); {
		case k < 8:
			evs = append(evs, event{now, "client", session, fmt.Sprintf(`<presence id='a%d'><show>away</show><status>s%d</status></presence>`, i, r.IntN(1000))})
		case k < 13:
			evs = append(evs, event{now, "client", session, fmt.Sprintf(`<presence type='unavailable'><status>bye %d</status></presence>`, r.IntN(1000))})
		case k < 15:
			evs = append(evs, event{now, "close", session, ""})
		case k < 16:
			evs = append(evs, event{now, "client", session, `<presence><bad></presence>`})
		case k < 17:
			evs = append(evs, event{now, "server", "", fmt.Sprintf(`<presence from='juliet@capulet.com/x' to='%s@montague.com' type='probe'/>`, u)})
		case k < 18:
			evs = append(evs, event{now, "client", session, `<presence to='juliet@capulet.com' type='probe'/>`})
		case k < 19:
			evs = append(evs, event{now, "up", []string{"montague.com", "chat.montague.com"}[r.IntN(2)], ""})
		default:
			evs = append(evs, event{now, "down", "chat.montague.com", ""})
		}
	}
	return evs
}

type machine interface {
	Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error)
	Server(now clock.Time, raw []byte) ([]core.Output, error)
	Close(now clock.Time, session stanza.JID) ([]core.Output, error)
	Up(now clock.Time, jid stanza.JID) ([]core.Output, error)
	Down(now clock.Time, jid stanza.JID) ([]core.Output, error)
}

func apply(m machine, e event) ([]core.Output, error) {
	var j stanza.JID
	if e.Arg != "" {
		j = stanza.MustParse(e.Arg)
	}
	switch e.Kind {
	case "client":
		return m.Client(e.Now, j, []byte(e.XML))
	case "server":
		return m.Server(e.Now, []byte(e.XML))
	case "close":
		return m.Close(e.Now, j)
	case "up":
		return m.Up(e.Now, j)
	default:
		return m.Down(e.Now, j)
	}
}

func newRef(t testing.TB) *core.Machine {
	t.Helper()
	cfg := testConfig
	cfg.Journal = true
	m, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func open(t testing.TB, dir string, opts Options) *Durable {
	t.Helper()
	d, err := Open(dir, testConfig, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// stop ends d cleanly with Shutdown, or, when shutdown is false, as a crash
// would.
func stop(t testing.TB, d *Durable, shutdown bool) {
	t.Helper()
	if !shutdown {
		d.crash()
		return
	}
	if err := d.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

// crash drops the Durable as a killed process would: files closed, nothing
// pending written.
func (d *Durable) crash() {
	if d.journal != nil {
		d.journal.Close()
	}
	d.lock.Close()
	d.err = errors.New("crashed")
}

// restarted returns the snapshot ref would have after a restart.
func restarted(t testing.TB, ref *core.Machine) []byte {
	t.Helper()
	m := newRef(t)
	if err := m.Restore(ref.Snapshot(nil)); err != nil {
		t.Fatal(err)
	}
	m.Restarted()
	return m.Snapshot(nil)
}

func TestReopenGivesSameState(t *testing.T) {
	for _, shutdown := range []bool{true, false} {
		dir := t.TempDir()
		r := rand.New(rand.NewPCG(1, 2))
		d := open(t, dir, Options{CompactEvery: 17})
		ref := newRef(t)
		for _, e := range genEvents(r, clock.Epoch2000, 300) {
			_, err1 := apply(d, e)
			_, err2 := apply(ref, e)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("%v: store err %v, machine err %v", e, err1, err2)
			}
		}
		stop(t, d, shutdown)
		d2 := open(t, dir, Options{})
		if !bytes.Equal(d2.Machine().Snapshot(nil), restarted(t, ref)) {
			t.Fatalf("shutdown=%v: reopened state differs from the machine's after a restart", shutdown)
		}
		if rec := d2.Recovery(); rec.TornBytes != 0 || rec.Generation == 0 {
			t.Errorf("recovery = %+v", rec)
		}
		// A second reopen changes nothing more.
		snap := d2.Machine().Snapshot(nil)
		d2.Shutdown()
		d3 := open(t, dir, Options{})
		if !bytes.Equal(snap, d3.Machine().Snapshot(nil)) {
			t.Error("second reopen changed the state")
		}
		d3.Shutdown()
		if names, _ := filepath.Glob(filepath.Join(dir, journalPrefix+"*")); len(names) != 1 {
			t.Errorf("journals left: %v", names)
		}
	}
}

// journalFile returns the path of the store's only journal.
func journalFile(t *testing.T, dir string) string {
	names, _ := filepath.Glob(filepath.Join(dir, journalPrefix+"*"))
	if len(names) != 1 {
		t.Fatalf("journals: %v", names)
	}
	return names[0]
}

// storeWith runs n events on a fresh store that never compacts after Open
// and crashes it; it returns the directory, the reference machine and the
// byte length of the journal after each event.
func storeWith(t *testing.T, n int) (string, []event, []int64) {
	dir := t.TempDir()
	d := open(t, dir, Options{CompactEvery: 1 << 30})
	evs, sizes := journalSizes(t, dir, d, n)
	d.crash()
	return dir, evs, sizes
}

// journalSizes runs n events on m, a store in dir that does not compact,
// and returns them with the byte length of the journal after each.
func journalSizes(t *testing.T, dir string, m machine, n int) ([]event, []int64) {
	evs := genEvents(rand.New(rand.NewPCG(7, 7)), clock.Epoch2000, n)
	var sizes []int64
	for _, e := range evs {
		apply(m, e)
		fi, err := os.Stat(journalFile(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fi.Size())
	}
	return evs, sizes
}

func refAfter(t *testing.T, evs []event) *core.Machine {
	ref := newRef(t)
	for _, e := range evs {
		apply(ref, e)
	}
	return ref
}

func TestTornTail(t *testing.T) {
	tails := map[string]func(frame []byte) []byte{
		"header cut":         func(f []byte) []byte { return f[:5] },
		"record cut":         func(f []byte) []byte { return f[:len(f)-1] },
		"last frame bad crc": func(f []byte) []byte { c := bytes.Clone(f); c[len(c)-1] ^= 1; return c },
		"zeros":              func([]byte) []byte { return make([]byte, 300) },
		"length past end":    func([]byte) []byte { return binary.BigEndian.AppendUint32(nil, 1<<30) },
	}
	for name, cut := range tails {
		t.Run(name, func(t *testing.T) {
			dir, evs, sizes := storeWith(t, 60)
			path := journalFile(t, dir)
			full, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Replace the last event that wrote a record by a torn tail.
			last := len(evs) - 1
			for last > 0 && sizes[last] == sizes[last-1] {
				last--
			}
			before := sizes[last-1]
			tail := cut(full[before:sizes[last]])
			if err := os.WriteFile(path, append(full[:before:before], tail...), 0o600); err != nil {
				t.Fatal(err)
			}
			d := open(t, dir, Options{})
			defer d.Shutdown()
			if got := d.Recovery().TornBytes; got != len(tail) {
				t.Errorf("TornBytes = %d, want %d", got, len(tail))
			}
			want := restarted(t, refAfter(t, evs[:last]))
			if !bytes.Equal(d.Machine().Snapshot(nil), want) {
				t.Error("state after dropping the torn tail differs from the state before the last change")
			}
			if fi, _ := os.Stat(journalFile(t, dir)); fi.Size() != 0 {
				t.Error("the torn tail is still in the journal after Open")
			}
		})
	}
}

func TestCorruptJournalMiddleRefused(t *testing.T) {
	dir, _, sizes := storeWith(t, 40)
	path := journalFile(t, dir)
	b, _ := os.ReadFile(path)
	b[sizes[0]/2] ^= 0x40 // inside the first frame, with more after it
	os.WriteFile(path, b, 0o600)
	snapBefore, _ := os.ReadFile(filepath.Join(dir, snapshotName))
	_, err := Open(dir, testConfig, Options{})
	if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrCorrupt naming %s", err, path)
	}
	after, _ := os.ReadFile(path)
	snapAfter, _ := os.ReadFile(filepath.Join(dir, snapshotName))
	if !bytes.Equal(after, b) || !bytes.Equal(snapAfter, snapBefore) {
		t.Error("a refused Open changed the files")
	}
}

func TestCorruptSnapshotRefused(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{})
	for _, e := range genEvents(rand.New(rand.NewPCG(3, 3)), clock.Epoch2000, 80) {
		apply(d, e)
	}
	d.Compact()
	d.Shutdown()
	path := filepath.Join(dir, snapshotName)
	good, _ := os.ReadFile(path)
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 1
		return b
	}
	for name, bad := range map[string][]byte{
		"empty":          {},
		"truncated":      good[:len(good)/2],
		"last byte gone": good[:len(good)-1],
		"magic":          flip(0),
		"version":        flip(7),
		"generation":     flip(10),
		"body":           flip(len(good) / 2),
		"checksum":       flip(len(good) - 1),
	} {
		os.WriteFile(path, bad, 0o600)
		_, err := Open(dir, testConfig, Options{})
		if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want ErrCorrupt naming the file", name, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
			t.Errorf("%s: a refused Open changed the snapshot", name)
		}
	}
	os.WriteFile(path, good, 0o600)
	d = open(t, dir, Options{})
	d.Shutdown()
}

func TestSnapshotMissingWithJournal(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{}).Shutdown()
	os.Remove(filepath.Join(dir, snapshotName))
	if _, err := Open(dir, testConfig, Options{}); !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{})
	if _, err := Open(dir, testConfig, Options{}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: err = %v, want ErrLocked", err)
	}
	d.Shutdown()
	open(t, dir, Options{}).Shutdown()
}

func TestRefusedInputWritesNothing(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{})
	defer d.Shutdown()
	size := func() int64 { fi, _ := os.Stat(journalFile(t, dir)); return fi.Size() }
	before := size()
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	if _, err := d.Client(clock.Epoch2000, romeo, []byte(`<presence><!-- x --></presence>`)); !errors.Is(err, core.ErrBadInput) {
		t.Fatalf("err = %v", err)
	}
	if out, err := d.Client(clock.Epoch2000, romeo, []byte(`<presence to='juliet@capulet.com' type='probe'/>`)); err != nil || len(out) != 1 {
		t.Fatalf("probe: %v %v", out, err)
	}
	if size() != before {
		t.Error("refused input or a probe wrote to the journal")
	}
	if _, err := d.Client(clock.Epoch2000, romeo, []byte(`<presence/>`)); err != nil {
		t.Fatal(err)
	}
	if size() == before {
		t.Error("a broadcast wrote nothing")
	}
}

func TestManualSync(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{ManualSync: true})
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	nurse := stanza.MustParse("nurse@montague.com/kitchen")
	d.Client(clock.Epoch2000, romeo, []byte(`<presence type='unavailable'><status>synced</status></presence>`))
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Client(clock.Epoch2000+1e9, nurse, []byte(`<presence type='unavailable'><status>lost</status></presence>`))
	d.crash()
	d = open(t, dir, Options{})
	defer d.Shutdown()
	probe := func(u string) string {
		out, err := d.Server(clock.Epoch2000+9e9, []byte(`<presence from='`+u+`/x' to='`+u+`' type='probe'/>`))
		if err != nil || len(out) != 1 {
			t.Fatalf("probe %s: %v %v", u, out, err)
		}
		return string(out[0].Stanza)
	}
	if !strings.Contains(probe("romeo@montague.com"), "synced") {
		t.Error("a synced change was lost")
	}
	if strings.Contains(probe("nurse@montague.com"), "lost") {
		t.Error("an unsynced change survived a crash (the test's crash is wrong)")
	}
}

func TestFailedWriteIsSticky(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{})
	d.journal.Close() // every write now fails
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	if out, err := d.Client(clock.Epoch2000, romeo, []byte(`<presence/>`)); err == nil || out != nil {
		t.Fatalf("write to a closed journal: %v %v", out, err)
	}
	if _, err := d.Client(clock.Epoch2000, romeo, []byte(`<presence type='probe'/>`)); !errors.Is(err, ErrFailed) {
		t.Errorf("after a failed write: err = %v, want ErrFailed", err)
	}
	d.lock.Close()
}

func TestCompactBytes(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir, Options{CompactBytes: 1000})
	defer d.Shutdown()
	checkCompactBytes(t, dir, d, &d.dirStore)
}

// checkCompactBytes feeds m, a store in dir opened with CompactBytes 1000,
// changes until it must have compacted, and checks that the journal never
// reached 1000 bytes.
func checkCompactBytes(t *testing.T, dir string, m machine, ds *dirStore) {
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	gen := ds.gen
	for i := 0; i < 40; i++ {
		if _, err := m.Client(clock.Epoch2000, romeo, []byte(fmt.Sprintf(`<presence><status>%d %s</status></presence>`, i, strings.Repeat("x", 100)))); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(journalFile(t, dir)); fi.Size() >= 1000 {
			t.Fatalf("journal grew to %d bytes past CompactBytes", fi.Size())
		}
	}
	if ds.gen == gen {
		t.Error("never compacted")
	}
}

// TestRecoveryCountsResourcesTakenOffline checks that Recovery.TookOffline
// is the number of resources that were online when the store stopped and
// that the restart rule took offline: two of three here, as the third
// said goodbye.
func TestRecoveryCountsResourcesTakenOffline(t *testing.T) {
	for _, shutdown := range []bool{true, false} {
		dir := t.TempDir()
		d := open(t, dir, Options{})
		for _, session := range []string{"romeo@montague.com/balcony", "romeo@montague.com/orchard", "juliet@montague.com/chamber"} {
			if _, err := d.Client(clock.Epoch2000, stanza.MustParse(session), []byte(`<presence/>`)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.Client(clock.Epoch2000, stanza.MustParse("juliet@montague.com/chamber"), []byte(`<presence type='unavailable'/>`)); err != nil {
			t.Fatal(err)
		}
		stop(t, d, shutdown)
		d2 := open(t, dir, Options{})
		if got := d2.Recovery().TookOffline; got != 2 {
			t.Errorf("shutdown=%v: TookOffline = %d, want 2", shutdown, got)
		}
		d2.Shutdown()
	}
}
