package wazerohost_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"github.com/lastseen-xmpp/lastseen/store"
)

// durableEvents is a reproducible stream of presence changes, session
// ends, probes and domain announcements: every kind of event that journals.
func durableEvents(n int) []wazerohost.Event {
	r := rand.New(rand.NewPCG(11, 2))
	users := []string{"romeo", "juliet", "nurse", "benvolio"}
	now := t0
	evs := make([]wazerohost.Event, 0, n)
	for i := range n {
		now += clock.Time(1+r.IntN(60)) * 1e9
		session := stanza.MustParse(fmt.Sprintf("%s@montague.com/r%d", users[r.IntN(len(users))], r.IntN(3)))
		switch k := r.IntN(10); {
		case k < 5:
			evs = append(evs, wazerohost.Event{Kind: wazerohost.EventClient, Now: now, JID: session, Stanza: fmt.Appendf(nil, "<presence><status>s%d</status></presence>", i)})
		case k < 7:
			evs = append(evs, wazerohost.Event{Kind: wazerohost.EventClient, Now: now, JID: session, Stanza: []byte("<presence type='unavailable'/>")})
		case k < 8:
			evs = append(evs, wazerohost.Event{Kind: wazerohost.EventClose, Now: now, JID: session})
		case k < 9:
			evs = append(evs, wazerohost.Event{Kind: wazerohost.EventServer, Now: now, Stanza: []byte("<presence from='juliet@capulet.com/x' to='romeo@montague.com' type='probe'/>")})
		default:
			kind := wazerohost.EventUp
			if r.IntN(2) == 0 {
				kind = wazerohost.EventDown
			}
			evs = append(evs, wazerohost.Event{Kind: kind, Now: now, JID: stanza.MustParse("chat.montague.com")})
		}
	}
	return evs
}

// inputs is what call needs: a machine, an engine or a store.Durable
// have it.
type inputs interface {
	Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error)
	Server(now clock.Time, raw []byte) ([]core.Output, error)
	Close(now clock.Time, session stanza.JID) ([]core.Output, error)
	Up(now clock.Time, jid stanza.JID) ([]core.Output, error)
	Down(now clock.Time, jid stanza.JID) ([]core.Output, error)
}

var (
	_ store.Engine = (*core.Machine)(nil)
	_ store.Engine = (*wazerohost.Engine)(nil)
)

// call runs ev.
func call(m inputs, ev wazerohost.Event) ([]core.Output, error) {
	switch ev.Kind {
	case wazerohost.EventClient:
		return m.Client(ev.Now, ev.JID, ev.Stanza)
	case wazerohost.EventServer:
		return m.Server(ev.Now, ev.Stanza)
	case wazerohost.EventClose:
		return m.Close(ev.Now, ev.JID)
	case wazerohost.EventUp:
		return m.Up(ev.Now, ev.JID)
	default:
		return m.Down(ev.Now, ev.JID)
	}
}

func journalingNative(t *testing.T) *core.Machine {
	t.Helper()
	m, err := core.New(core.Config{Served: served, Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRecordsSameAsCore checks that the engine's journal records are the
// native machine's, byte for byte, event by event, and that replaying them
// with ApplyRecord gives the same state on either engine.
func TestRecordsSameAsCore(t *testing.T) {
	native := journalingNative(t)
	wasm := newEngine(t, core.Config{Served: served, Journal: true})
	replica := newEngine(t, core.Config{Served: served})
	total := 0
	for i, ev := range durableEvents(300) {
		_, nerr := call(native, ev)
		_, werr := call(wasm, ev)
		if (nerr == nil) != (werr == nil) {
			t.Fatalf("event %d: native error %v, wasm %v", i, nerr, werr)
		}
		want, got := native.Records(), wasm.Records()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("event %d: records differ (-native +wasm):\n%s", i, diff)
		}
		for _, r := range got {
			if err := replica.ApplyRecord(r); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
		total += len(got)
	}
	if total < 100 {
		t.Fatalf("only %d records in 300 events: the stream does not exercise the journal", total)
	}
	if !bytes.Equal(native.Snapshot(nil), replica.Snapshot(nil)) {
		t.Fatal("replaying the records gave another durable state")
	}
	// Batch results carry the same records.
	b := newEngine(t, core.Config{Served: served, Journal: true})
	rs, err := b.Batch(durableEvents(300))
	if err != nil {
		t.Fatal(err)
	}
	var batched [][]byte
	for _, r := range rs {
		batched = append(batched, r.Records...)
	}
	if len(batched) != total {
		t.Fatalf("batch gave %d records, calls %d", len(batched), total)
	}
}

// TestRecordsOffWithoutJournal: a machine that does not journal returns
// none, so the ABI costs nothing to hosts that do not keep state.
func TestRecordsOffWithoutJournal(t *testing.T) {
	e := newEngine(t, core.Config{Served: served})
	if _, err := e.Client(t0, romeo, onlineS); err != nil {
		t.Fatal(err)
	}
	if r := e.Records(); r != nil {
		t.Fatalf("records without Journal: %q", r)
	}
}

func TestApplyRecordRefusesDamage(t *testing.T) {
	src := newEngine(t, core.Config{Served: served, Journal: true})
	if _, err := src.Client(t0, romeo, onlineS); err != nil {
		t.Fatal(err)
	}
	rec := src.Records()[0]
	dst := newEngine(t, core.Config{Served: served})
	before := dst.AppendState(nil)
	for _, bad := range [][]byte{nil, rec[:len(rec)-1], append([]byte{99}, rec[1:]...)} {
		if err := dst.ApplyRecord(bad); !errors.Is(err, core.ErrCorrupt) {
			t.Errorf("ApplyRecord(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
	if !bytes.Equal(before, dst.AppendState(nil)) {
		t.Fatal("a refused record changed the state")
	}
}

// openStore opens the store in dir on the native machine or on wazero.
func openStore(engine, dir string) (*store.Durable, error) {
	if engine == "native" {
		return store.Open(dir, core.Config{Served: served}, store.Options{})
	}
	return wazerohost.OpenDurable(ctx, dir, core.Config{Served: served}, store.Options{})
}

// restartedState runs evs on a native machine, applies the restart rule
// and returns the machine (for more) and its state.
func restartedState(t *testing.T, evs []wazerohost.Event) (*core.Machine, []byte) {
	t.Helper()
	ref := journalingNative(t)
	for _, ev := range evs {
		call(ref, ev)
	}
	ref.Restarted()
	return ref, ref.AppendState(nil)
}

// writeStore runs evs through a new store in dir on engine and shuts it
// down, leaving the journal for the next open to replay.
func writeStore(t *testing.T, engine, dir string, evs []wazerohost.Event) {
	t.Helper()
	d, err := openStore(engine, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		call(d, ev)
	}
	if err := d.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

// TestDurableAcrossEngines writes a store through one engine, shuts it
// down without compacting (so the journal must be replayed) and opens it on
// the other: the state is the native run's after the restart rule.
func TestDurableAcrossEngines(t *testing.T) {
	evs := durableEvents(200)
	_, want := restartedState(t, evs)
	for _, pair := range [][2]string{{"native", "wazero"}, {"wazero", "native"}, {"wazero", "wazero"}} {
		t.Run(pair[0]+"-to-"+pair[1], func(t *testing.T) {
			dir := t.TempDir()
			writeStore(t, pair[0], dir, evs)
			r, err := openStore(pair[1], dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Shutdown()
			if rec := r.Recovery(); rec.Records == 0 || rec.TookOffline == 0 {
				t.Fatalf("recovery %+v: the journal was not replayed or nobody was online", rec)
			}
			if got := r.AppendState(nil); !bytes.Equal(got, want) {
				t.Fatalf("state after reopening differs from the native run's")
			}
		})
	}
}

// nodeStore runs the Node.js store (bindings/node/durable.js) on dir: it
// opens it, prints its state in hex, makes one change at now and shuts
// down. The test is skipped where node is not installed.
func nodeStore(t *testing.T, dir string, now clock.Time) []byte {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	mod, err := filepath.Abs("../node/durable.js")
	if err != nil {
		t.Fatal(err)
	}
	script := `
import { openDurable } from ` + strconv.Quote("file://"+mod) + `;
const d = openDurable(process.argv[1], { served: ['montague.com'] });
process.stdout.write(Buffer.from(d.state()).toString('hex'));
d.client(BigInt(process.argv[2]), 'nodeuser@montague.com/r', "<presence type='unavailable'><status>from node</status></presence>");
d.shutdown();
`
	out, err := exec.Command(node, "--input-type=module", "-e", script, dir, strconv.FormatInt(int64(now), 10)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	state, err := hex.DecodeString(string(out))
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// TestDurableAcrossGoAndNode: a directory written by the Go store opens in
// the Node.js store with the same state, and what Node.js adds opens in Go
// again, on wazero and natively.
func TestDurableAcrossGoAndNode(t *testing.T) {
	evs := durableEvents(150)
	ref, afterGo := restartedState(t, evs)
	nodeNow := evs[len(evs)-1].Now + 1e9
	nodeUser := stanza.MustParse("nodeuser@montague.com/r")
	if _, err := ref.Client(nodeNow, nodeUser, []byte("<presence type='unavailable'><status>from node</status></presence>")); err != nil {
		t.Fatal(err)
	}
	ref.Restarted()
	afterNode := ref.AppendState(nil)

	for _, engine := range []string{"native", "wazero"} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			writeStore(t, engine, dir, evs)
			if got := nodeStore(t, dir, nodeNow); !bytes.Equal(got, afterGo) {
				t.Fatal("Node.js opened the Go store with another state")
			}
			d, err := openStore(engine, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Shutdown()
			if d.Recovery().Records != 1 {
				t.Fatalf("recovery %+v: want the one record Node.js journaled", d.Recovery())
			}
			if got := d.AppendState(nil); !bytes.Equal(got, afterNode) {
				t.Fatal("Go opened the Node.js store with another state")
			}
		})
	}
}

// BenchmarkClientJournal is BenchmarkClient with the journal on: what the
// records cost to encode in the guest and decode in the host.
func BenchmarkClientJournal(b *testing.B) {
	e := newEngine(b, core.Config{Served: served, Journal: true})
	for i := 0; b.Loop(); i++ {
		if _, err := e.Client(t0.Add(time.Duration(i)), romeo, onlineS); err != nil {
			b.Fatal(err)
		}
		if len(e.Records()) != 1 {
			b.Fatal("no record")
		}
	}
}

// BenchmarkDurableClient is one journaled, fsynced change through
// OpenDurable: mostly the fsync.
func BenchmarkDurableClient(b *testing.B) {
	d, err := wazerohost.OpenDurable(ctx, b.TempDir(), core.Config{Served: served}, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Shutdown()
	for b.Loop() {
		if _, err := d.Client(t0, romeo, onlineS); err != nil {
			b.Fatal(err)
		}
	}
}
