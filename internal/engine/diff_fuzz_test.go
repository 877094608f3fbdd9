package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
)

// FuzzNativeVsWazero runs mutated scenario scripts (FORMAT.md; expect lines
// are ignored) on the native core and on the WebAssembly module under
// wazero in lockstep. After every fact the two must agree on whether it was
// refused; after every input on the error text, on every output's kind,
// address and bytes, and on the state encoding. At the end each engine's
// snapshot must be byte-identical, load in the other, and give the same
// state after the restart rule on both. The seeds are the scenario corpus,
// so go test ./... runs them.
func FuzzNativeVsWazero(f *testing.F) {
	for _, s := range diffFuzzSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 16<<10 {
			return
		}
		script, err := scenario.Parse("fuzz", src)
		if err != nil {
			return
		}
		var served []string
		for _, l := range script.Lines {
			if l.Directive == "serve" {
				served = append(served, l.Args...)
			}
		}
		if len(served) == 0 {
			served = []string{"montague.com"}
		}
		native, nerr := Native()(served)
		wz, werr := Wazero()(served)
		if (nerr == nil) != (werr == nil) {
			t.Fatalf("serve %v: native %v, wazero %v", served, nerr, werr)
		}
		if nerr != nil {
			return
		}
		defer wz.Release()
		engs := []detailed{native.(detailed), wz.(detailed)}
		now := clock.Epoch2000
		for _, l := range script.Lines {
			switch l.Directive {
			case "at":
				now = l.Time
			case "roster", "block", "hide", "limit":
				var errs [2]error
				for i, e := range engs {
					switch l.Directive {
					case "roster":
						errs[i] = e.Roster(l.Args[0], l.Args[1], l.Args[2])
					case "block":
						errs[i] = e.Block(l.Args[0], l.Args[1])
					case "hide":
						errs[i] = e.Hide(l.Args[0])
					default:
						errs[i] = e.Limit(now, l.N, l.Per)
					}
				}
				if (errs[0] == nil) != (errs[1] == nil) {
					t.Fatalf("%s: native %v, wazero %v", l.Text, errs[0], errs[1])
				}
			case "client", "server", "close", "up", "down":
				var errs [2]string
				var states [2][]byte
				for i, e := range engs {
					var err error
					switch l.Directive {
					case "client":
						_, err = e.Client(now, l.Args[0], l.XML)
					case "server":
						_, err = e.Server(now, l.XML)
					case "close":
						_, err = e.Close(now, l.Args[0])
					case "up":
						_, err = e.Up(now, l.Args[0])
					default:
						_, err = e.Down(now, l.Args[0])
					}
					errs[i] = errText(err)
					if states[i], err = e.State(); err != nil {
						t.Fatalf("%s: %d: State: %v", l.Text, i, err)
					}
				}
				if errs[0] != errs[1] {
					t.Fatalf("%s: errors differ:\n  native: %s\n  wazero: %s", l.Text, errs[0], errs[1])
				}
				if d := diffOutputs(engs[0].lastOutputs(), engs[1].lastOutputs()); d != "" {
					t.Fatalf("%s: outputs differ, native vs wazero:\n%s", l.Text, d)
				}
				if !bytes.Equal(states[0], states[1]) {
					t.Fatalf("%s: state differs, native vs wazero:\n  %x\n  %x", l.Text, states[0], states[1])
				}
			}
		}
		crossRestore(t, native.(*hosted).m.(*core.Machine), wz.(*hosted).m.(*wazerohost.Engine))
	})
}

// crossRestore checks that the two engines write the same snapshot, that
// each loads the other's, and that the restart rule agrees.
func crossRestore(t *testing.T, m *core.Machine, w *wazerohost.Engine) {
	ns := m.Snapshot(nil)
	ws, err := w.SnapshotErr()
	if err != nil {
		t.Fatalf("wazero snapshot: %v", err)
	}
	if !bytes.Equal(ns, ws) {
		t.Fatalf("snapshots differ:\n  native %x\n  wazero %x", ns, ws)
	}
	if err := m.Restore(ws); err != nil {
		t.Fatalf("native does not load wazero's snapshot: %v", err)
	}
	if err := w.Restore(ns); err != nil {
		t.Fatalf("wazero does not load native's snapshot: %v", err)
	}
	if a, b := m.Restarted(), w.Restarted(); a != b {
		t.Fatalf("restart rule took %d offline on native, %d on wazero", a, b)
	}
	ws, err = w.SnapshotErr()
	if err != nil || !bytes.Equal(m.Snapshot(nil), ws) {
		t.Fatalf("after the restart rule snapshots differ (%v)", err)
	}
	// A damaged snapshot is refused by both, and changes neither.
	bad := append([]byte(nil), ns...)
	bad[len(bad)/2] ^= 0x08
	before := m.AppendState(nil)
	if err1, err2 := m.Restore(bad), w.Restore(bad); !errors.Is(err1, core.ErrCorrupt) || !errors.Is(err2, core.ErrCorrupt) {
		t.Fatalf("damaged snapshot: native %v, wazero %v; want ErrCorrupt from both", err1, err2)
	}
	if ws, _ := w.State(); !bytes.Equal(before, m.AppendState(nil)) || !bytes.Equal(before, ws) {
		t.Fatal("a refused snapshot changed an engine")
	}
}

// diffFuzzSeeds returns the scenario files without their expect lines.
func diffFuzzSeeds(tb testing.TB) []string {
	var seeds []string
	root := moduleRoot(tb)
	for _, dir := range []string{filepath.Join(root, "core", "testdata", "scenarios"), filepath.Join(root, "core", "testdata", "conformance"), filepath.Join(root, "..", "shared", "conformance", "cases")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				tb.Fatal(err)
			}
			seeds = append(seeds, scenario.Inputs(src))
		}
	}
	return seeds
}
