package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// testShards is small so that the users of the tests share shards and
// their records interleave in the journal.
const testShards = 4

func openSharded(t testing.TB, dir string, opts Options) *ShardedDurable {
	t.Helper()
	d, err := OpenSharded(dir, testConfig, testShards, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// crash drops the ShardedDurable as a killed process would: files closed,
// nothing pending written.
func (d *ShardedDurable) crash() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.busy || d.compacting {
		d.cond.Wait()
	}
	d.journal.Close()
	d.lock.Close()
	d.err = errors.New("crashed")
	d.failed.Store(true)
}

// idle waits until no write and no compaction runs, and returns the
// generation of the store's snapshot.
func (d *ShardedDurable) idle() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.busy || d.compacting {
		d.cond.Wait()
	}
	return d.gen
}

// groupEvents is genEvents for writer g of several: its users are its own
// (romeo becomes romeo-g2), so that writers never touch the same user, and
// only writer 0 brings hosted domains up and down. The state after all the
// writers' events is then the same in any interleaving.
func groupEvents(r *rand.Rand, now clock.Time, n, g int) []event {
	evs := genEvents(r, now, n)
	out := evs[:0]
	for _, e := range evs {
		if g > 0 && (e.Kind == "up" || e.Kind == "down") {
			continue
		}
		for _, u := range testUsers {
			from, to := u+"@montague.com", fmt.Sprintf("%s-g%d@montague.com", u, g)
			e.Arg = strings.ReplaceAll(e.Arg, from, to)
			e.XML = strings.ReplaceAll(e.XML, from, to)
		}
		out = append(out, e)
	}
	return out
}

// runWriters applies each writer's events to m, one goroutine per writer.
func runWriters(m machine, groups [][]event) {
	var wg sync.WaitGroup
	for _, evs := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range evs {
				apply(m, e)
			}
		}()
	}
	wg.Wait()
}

// TestShardedConcurrentReplay runs concurrent writers on a store that
// compacts often, crashes it, and checks that snapshot + journal replay
// gives what a single Machine fed every writer's events in turn holds.
func TestShardedConcurrentReplay(t *testing.T) {
	for _, every := range []int{7, 1 << 30} {
		t.Run(fmt.Sprintf("CompactEvery=%d", every), func(t *testing.T) {
			dir := t.TempDir()
			r := rand.New(rand.NewPCG(3, uint64(every)))
			var groups [][]event
			for g := 0; g < 4; g++ {
				groups = append(groups, groupEvents(r, clock.Epoch2000, 150, g))
			}
			d := openSharded(t, dir, Options{CompactEvery: every})
			runWriters(d, groups)
			ref := newRef(t)
			for _, evs := range groups {
				for _, e := range evs {
					apply(ref, e)
				}
			}
			if !bytes.Equal(d.Sharded().Snapshot(nil), ref.Snapshot(nil)) {
				t.Fatal("state in memory differs from the sequential run")
			}
			// Open makes generation 1; the first compaction due starts
			// for sure, though how many more start while the writers
			// run depends on how fast each one's snapshot is written.
			if gen := d.idle(); every < 100 && gen < 2 {
				t.Errorf("generation %d: the run did not compact", gen)
			}
			d.crash()
			d = openSharded(t, dir, Options{})
			defer d.Shutdown()
			if !bytes.Equal(d.Sharded().Snapshot(nil), restarted(t, ref)) {
				t.Error("snapshot + journal replay differs from the full run, restarted")
			}
		})
	}
}

// TestShardedAndMachineShareFormat opens a Durable's store as a
// ShardedDurable and the other way round.
func TestShardedAndMachineShareFormat(t *testing.T) {
	dir := t.TempDir()
	evs := genEvents(rand.New(rand.NewPCG(5, 5)), clock.Epoch2000, 80)
	d := open(t, dir, Options{CompactEvery: 1 << 30})
	for _, e := range evs[:40] {
		apply(d, e)
	}
	d.crash()
	s := openSharded(t, dir, Options{CompactEvery: 1 << 30})
	want := restarted(t, refAfter(t, evs[:40]))
	if !bytes.Equal(s.Sharded().Snapshot(nil), want) {
		t.Fatal("a ShardedDurable does not load a Durable's store")
	}
	ref := newRef(t)
	if err := ref.Restore(want); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs[40:] {
		apply(s, e)
		apply(ref, e)
	}
	s.crash()
	d = open(t, dir, Options{})
	defer d.Shutdown()
	if !bytes.Equal(d.Machine().Snapshot(nil), restarted(t, ref)) {
		t.Error("a Durable does not load a ShardedDurable's store")
	}
}

func TestShardedTornTail(t *testing.T) {
	dir := t.TempDir()
	d := openSharded(t, dir, Options{CompactEvery: 1 << 30})
	evs, sizes := journalSizes(t, dir, d, 60)
	d.crash()
	last := len(evs) - 1
	for last > 0 && sizes[last] == sizes[last-1] {
		last--
	}
	path := journalFile(t, dir)
	full, _ := os.ReadFile(path)
	if err := os.WriteFile(path, full[:sizes[last]-1], 0o600); err != nil {
		t.Fatal(err)
	}
	d = openSharded(t, dir, Options{})
	defer d.Shutdown()
	if got, want := d.Recovery().TornBytes, int(sizes[last]-1-sizes[last-1]); got != want {
		t.Errorf("TornBytes = %d, want %d", got, want)
	}
	if !bytes.Equal(d.Sharded().Snapshot(nil), restarted(t, refAfter(t, evs[:last]))) {
		t.Error("state after dropping the torn tail differs from the state before the last change")
	}
	if fi, _ := os.Stat(journalFile(t, dir)); fi.Size() != 0 {
		t.Error("the torn tail is still in the journal after Open")
	}
}

func TestShardedCorruptRefused(t *testing.T) {
	dir := t.TempDir()
	d := openSharded(t, dir, Options{CompactEvery: 1 << 30})
	for _, e := range genEvents(rand.New(rand.NewPCG(8, 8)), clock.Epoch2000, 40) {
		apply(d, e)
	}
	d.crash()
	path := journalFile(t, dir)
	b, _ := os.ReadFile(path)
	b[10] ^= 0x40 // inside the first frame, with more after it
	os.WriteFile(path, b, 0o600)
	if _, err := OpenSharded(dir, testConfig, testShards, Options{}); !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want ErrCorrupt naming %s", err, path)
	}
	os.Remove(filepath.Join(dir, snapshotName))
	if _, err := OpenSharded(dir, testConfig, testShards, Options{}); !errors.Is(err, core.ErrCorrupt) {
		t.Errorf("journal without a snapshot: err = %v, want ErrCorrupt", err)
	}
}

func TestShardedLocked(t *testing.T) {
	dir := t.TempDir()
	d := openSharded(t, dir, Options{})
	if _, err := OpenSharded(dir, testConfig, testShards, Options{}); !errors.Is(err, ErrLocked) {
		t.Errorf("second OpenSharded: err = %v, want ErrLocked", err)
	}
	if _, err := Open(dir, testConfig, Options{}); !errors.Is(err, ErrLocked) {
		t.Errorf("Open while a ShardedDurable has it: err = %v, want ErrLocked", err)
	}
	d.Shutdown()
	openSharded(t, dir, Options{}).Shutdown()
}

func TestShardedManualSyncRefused(t *testing.T) {
	if _, err := OpenSharded(t.TempDir(), testConfig, testShards, Options{ManualSync: true}); !errors.Is(err, errManualSync) {
		t.Errorf("err = %v, want errManualSync", err)
	}
}

func TestShardedRefusedInputWritesNothing(t *testing.T) {
	dir := t.TempDir()
	d := openSharded(t, dir, Options{})
	defer d.Shutdown()
	size := func() int64 { fi, _ := os.Stat(journalFile(t, dir)); return fi.Size() }
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	var o core.Outputs
	if err := d.ClientInto(&o, clock.Epoch2000, romeo, []byte(`<presence><!-- x --></presence>`)); !errors.Is(err, core.ErrBadInput) || len(o.List) != 0 {
		t.Fatalf("err = %v, outputs %d", err, len(o.List))
	}
	if err := d.ClientInto(&o, clock.Epoch2000, romeo, []byte(`<presence to='juliet@capulet.com' type='probe'/>`)); err != nil || len(o.List) != 1 {
		t.Fatalf("probe: %v %v", o.List, err)
	}
	if size() != 0 || d.Fsyncs() != 0 {
		t.Errorf("refused input or a probe wrote to the journal (%d bytes, %d fsyncs)", size(), d.Fsyncs())
	}
	if err := d.ClientInto(&o, clock.Epoch2000, romeo, []byte(`<presence/>`)); err != nil {
		t.Fatal(err)
	}
	if size() == 0 || d.Fsyncs() != 1 {
		t.Errorf("a broadcast wrote %d bytes with %d fsyncs, want some bytes and 1 fsync", size(), d.Fsyncs())
	}
}

func TestShardedFailedWriteIsSticky(t *testing.T) {
	dir := t.TempDir()
	d := openSharded(t, dir, Options{})
	d.journal.Close() // every write now fails
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	if out, err := d.Client(clock.Epoch2000, romeo, []byte(`<presence/>`)); !errors.Is(err, ErrFailed) || out != nil {
		t.Fatalf("write to a closed journal: %v %v", out, err)
	}
	var o core.Outputs
	if err := d.ServerInto(&o, clock.Epoch2000, []byte(`<presence from='juliet@capulet.com/x' to='romeo@montague.com' type='probe'/>`)); !errors.Is(err, ErrFailed) || len(o.List) != 0 {
		t.Errorf("after a failed write: err = %v, outputs %d, want ErrFailed and none", err, len(o.List))
	}
	d.lock.Close()
}

// TestShardedCompactBytes: past CompactBytes, the store compacts by
// itself, in the background, and the journal it ends with is small again.
func TestShardedCompactBytes(t *testing.T) {
	dir := t.TempDir()
	d := openSharded(t, dir, Options{CompactBytes: 1000})
	defer d.Shutdown()
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	gen := d.idle()
	change := func(i int) {
		if _, err := d.Client(clock.Epoch2000, romeo, []byte(fmt.Sprintf(`<presence><status>%d %s</status></presence>`, i, strings.Repeat("x", 100)))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 40; i++ {
		change(i)
	}
	if d.idle() == gen {
		t.Error("never compacted")
	}
	// Changes made while the last compaction ran went to its new journal,
	// which may have passed the limit since; the next change compacts it.
	change(40)
	d.idle()
	if fi, _ := os.Stat(journalFile(t, dir)); fi.Size() >= 1000+200 {
		t.Errorf("journal holds %d bytes, more than CompactBytes and a change", fi.Size())
	}
}

// TestShardedCompactionBlocksNoCaller holds a compaction just before it
// installs its snapshot: callers must go on being acknowledged meanwhile,
// the directory must then hold the old snapshot and two journals, and a
// copy of it, opened as after a crash, must hold every acknowledged
// change. Released, the compaction ends with one snapshot and one journal
// that hold them too.
func TestShardedCompactionBlocksNoCaller(t *testing.T) {
	dir := t.TempDir()
	d := openSharded(t, dir, Options{CompactEvery: 5})
	gen := d.idle()
	held, release := make(chan struct{}), make(chan struct{})
	d.mu.Lock()
	d.beforeInstall = func() {
		close(held)
		<-release
	}
	d.mu.Unlock()
	evs := genEvents(rand.New(rand.NewPCG(11, 11)), clock.Epoch2000, 120)
	ref := newRef(t)
	acked := make(chan error, 1)
	go func() {
		for _, e := range evs {
			if _, err := apply(d, e); err != nil {
				if _, rerr := apply(ref, e); rerr == nil {
					acked <- fmt.Errorf("%v refused by the store, accepted by the reference: %w", e, err)
					return
				}
				continue
			}
			apply(ref, e)
		}
		acked <- nil
	}()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("no compaction started within 30 s")
	}
	select {
	case err := <-acked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("callers waited for the compaction: not all changes acknowledged within 30 s")
	}
	names, _ := filepath.Glob(filepath.Join(dir, journalPrefix+"*"))
	if want := []string{journalName(gen), journalName(gen + 1)}; !slices.Equal(baseNames(names), want) {
		t.Errorf("journals while the compaction is held: %v, want %v", baseNames(names), want)
	}
	// What a crash now would leave: the old snapshot and both journals.
	image := map[string][]byte{}
	for _, name := range append(names, filepath.Join(dir, snapshotName)) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		image[filepath.Base(name)] = b
	}
	materialise := func() string {
		dir := t.TempDir()
		for name, b := range image {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	c := openSharded(t, materialise(), Options{})
	if r := c.Recovery(); r.Generation != gen || r.Records == 0 {
		t.Errorf("recovery of the crash image: %+v, want generation %d and records from both journals", r, gen)
	}
	if !bytes.Equal(c.Sharded().Snapshot(nil), restarted(t, ref)) {
		t.Error("old snapshot + both journals differ from every acknowledged change, restarted")
	}
	c.Shutdown()
	// The older journal torn while the newer one holds records is damage
	// (a writer fsyncs the older one first), not a tail to drop.
	if b := image[journalName(gen)]; len(b) < 3 || len(image[journalName(gen+1)]) == 0 {
		t.Fatalf("journals of %d and %d bytes: cannot tear the first", len(b), len(image[journalName(gen+1)]))
	}
	image[journalName(gen)] = image[journalName(gen)][:len(image[journalName(gen)])-3]
	if _, err := OpenSharded(materialise(), testConfig, testShards, Options{}); !errors.Is(err, core.ErrCorrupt) {
		t.Errorf("a torn journal before another: %v, want ErrCorrupt", err)
	}
	close(release)
	if err := d.Shutdown(); err != nil {
		t.Fatal(err)
	}
	names, _ = filepath.Glob(filepath.Join(dir, journalPrefix+"*"))
	if len(names) != 1 {
		t.Errorf("journals after the compaction: %v, want one", baseNames(names))
	}
	d = openSharded(t, dir, Options{})
	defer d.Shutdown()
	if !bytes.Equal(d.Sharded().Snapshot(nil), restarted(t, ref)) {
		t.Error("after the compaction, the store differs from every acknowledged change, restarted")
	}
}

func baseNames(paths []string) []string {
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	return names
}

// TestShardedGroupCommit checks that concurrent writers share fsyncs: with
// eight of them, fewer fsyncs than changes.
func TestShardedGroupCommit(t *testing.T) {
	d := openSharded(t, t.TempDir(), Options{CompactEvery: 1 << 30})
	defer d.Shutdown()
	const writers, each = 8, 40
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := stanza.MustParse(fmt.Sprintf("u%d@montague.com/r", w))
			for i := 0; i < each; i++ {
				if _, err := d.Client(clock.Epoch2000+clock.Time(i), j, []byte(`<presence/>`)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := d.Fsyncs(); n >= writers*each {
		t.Errorf("%d fsyncs for %d changes: no group commit", n, writers*each)
	} else {
		t.Logf("%d fsyncs for %d changes", n, writers*each)
	}
}

// BenchmarkShardedDurableChanges measures durable, acknowledged presence
// changes through a ShardedDurable with 1, 2 and 8 concurrent goroutines,
// each changing its own users' presence; an op is one acknowledged change.
// It reports the changes per second and the fsyncs per change (below 1
// when the group commit shares fsyncs).
func BenchmarkShardedDurableChanges(b *testing.B) {
	for _, g := range []int{1, 2, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			d := openSharded(b, b.TempDir(), Options{})
			defer d.Shutdown()
			raw := [][]byte{[]byte(`<presence><show>away</show></presence>`), []byte(`<presence/>`)}
			fsyncs := d.Fsyncs()
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := 0; w < g; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var o core.Outputs
					jids := make([]stanza.JID, 64)
					for i := range jids {
						jids[i] = stanza.MustParse(fmt.Sprintf("u%d-%d@montague.com/r", w, i))
					}
					for i := w; i < b.N; i += g {
						if err := d.ClientInto(&o, clock.Epoch2000+clock.Time(i), jids[i%len(jids)], raw[i/len(jids)%2]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
			b.ReportMetric(float64(d.Fsyncs()-fsyncs)/float64(b.N), "fsyncs/change")
		})
	}
}
