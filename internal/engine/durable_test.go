package engine

import (
	"bytes"
	"errors"
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
)

// durableEngines adds the sharded wrapper to the engines: a snapshot must
// travel between all of them.
func durableEngines(t testing.TB) []namedFactory {
	return append([]namedFactory{{"sharded", func(testing.TB) scenario.Factory { return Sharded(5) }}}, engineList(t)...)
}

// feed puts some of everything into e: available and unavailable users,
// several resources, a hosted component.
func feed(t *testing.T, e scenario.Engine) {
	t.Helper()
	at := func(s string) clock.Time {
		v, err := clock.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps := []func() ([][]byte, error){
		func() ([][]byte, error) { return e.Up(at("2012-09-10T20:00:00Z"), "chat.montague.com") },
		func() ([][]byte, error) {
			return e.Client(at("2012-09-10T20:01:00Z"), "romeo@montague.com/balcony", []byte(`<presence xml:lang='en'><show>away</show><status>On the balcony</status></presence>`))
		},
		func() ([][]byte, error) {
			return e.Client(at("2012-09-10T20:02:00Z"), "romeo@montague.com/phone", []byte(`<presence id='x'><priority>5</priority></presence>`))
		},
		func() ([][]byte, error) {
			return e.Client(at("2012-09-10T20:03:00Z"), "benvolio@montague.com/street", []byte(`<presence type='unavailable'><status>Gone</status></presence>`))
		},
		func() ([][]byte, error) { return e.Down(at("2012-09-10T20:04:00Z"), "chat.montague.com") },
		func() ([][]byte, error) {
			return e.Client(at("2012-09-10T20:05:00Z"), "mercutio@montague.com/sword", []byte(`<presence/>`))
		},
		func() ([][]byte, error) { return e.Close(at("2012-09-10T20:06:00Z"), "mercutio@montague.com/sword") },
	}
	for i, s := range steps {
		if _, err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

// TestSnapshotTravelsBetweenEngines writes a snapshot on each engine and
// restores it on every engine: the bytes must round-trip exactly, and the
// restart rule must take the same resources offline everywhere.
func TestSnapshotTravelsBetweenEngines(t *testing.T) {
	served := []string{"montague.com"}
	var want []byte
	for _, src := range durableEngines(t) {
		t.Run(src.name, func(t *testing.T) {
			e, err := src.f(t)(served)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Release()
			feed(t, e)
			snap, err := e.(Durable).Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = snap
			} else if !bytes.Equal(want, snap) {
				t.Fatalf("%s writes a different snapshot for the same inputs", src.name)
			}
			for _, dst := range durableEngines(t) {
				d, err := dst.f(t)(served)
				if err != nil {
					t.Fatal(err)
				}
				dur := d.(Durable)
				if err := dur.Restore(snap); err != nil {
					t.Fatalf("%s -> %s: restore: %v", src.name, dst.name, err)
				}
				got, err := dur.Snapshot()
				if err != nil || !bytes.Equal(got, snap) {
					t.Errorf("%s -> %s: snapshot after restore differs (%v)", src.name, dst.name, err)
				}
				if n, err := dur.Restarted(); err != nil || n != 2 {
					t.Errorf("%s -> %s: Restarted = %d, %v; want 2 (romeo's two resources)", src.name, dst.name, n, err)
				}
				damaged := append([]byte(nil), snap[:len(snap)-3]...)
				if err := dur.Restore(damaged); err == nil {
					t.Errorf("%s: a truncated snapshot was accepted", dst.name)
				} else if !errors.Is(err, core.ErrCorrupt) {
					t.Errorf("%s: truncated snapshot: %v, want ErrCorrupt", dst.name, err)
				}
				d.Release()
			}
		})
	}
}
