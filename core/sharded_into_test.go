package core_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

type outText struct {
	Kind       core.Kind
	To, Stanza string
}

func texts(out []core.Output) []outText {
	var r []outText
	for _, o := range out {
		r = append(r, outText{o.Kind, string(o.To), string(o.Stanza)})
	}
	return r
}

// intoPair is a Sharded and a Machine fed the same events: romeo and
// juliet see each other, and romeo came online then left with a status.
func intoPair(t *testing.T) (*core.Sharded, *core.Machine) {
	t.Helper()
	cfg := core.Config{Served: []string{"montague.com"}}
	s, err := core.NewSharded(cfg, 16)
	if err != nil {
		t.Fatal(err)
	}
	m, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	romeo, juliet := stanza.MustParse("romeo@montague.com"), stanza.MustParse("juliet@montague.com")
	session := stanza.MustParse("romeo@montague.com/balcony")
	type engine interface {
		SetRoster(owner, contact stanza.JID, sub core.Subscription) error
	}
	for _, e := range []engine{s, m} {
		if err := e.SetRoster(romeo, juliet, core.SubBoth); err != nil {
			t.Fatal(err)
		}
		if err := e.SetRoster(juliet, romeo, core.SubBoth); err != nil {
			t.Fatal(err)
		}
	}
	for i, x := range []string{`<presence><status>here</status></presence>`, `<presence type='unavailable'><status>gone</status></presence>`} {
		if _, err := s.Client(t0.Add(time.Duration(i)*time.Second), session, []byte(x)); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Client(t0.Add(time.Duration(i)*time.Second), session, []byte(x)); err != nil {
			t.Fatal(err)
		}
	}
	return s, m
}

// TestShardedInto checks that ClientInto and ServerInto emit what a single
// Machine emits, including a client probe answered on another shard (two
// outputs from two shards into one Outputs), and that reusing an Outputs
// gives the same bytes.
func TestShardedInto(t *testing.T) {
	s, m := intoPair(t)
	now := t0.Add(time.Hour)
	juliet := stanza.MustParse("juliet@montague.com/chamber")
	cases := []struct {
		name   string
		client bool
		raw    string
	}{
		{"server probe", false, `<presence from='juliet@montague.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>`},
		{"server probe to the domain", false, `<presence from='juliet@montague.com/chamber' to='montague.com' type='probe'/>`},
		{"client probe to a local user", true, `<presence to='romeo@montague.com' type='probe' id='c1'/>`},
		{"client broadcast", true, `<presence><show>away</show></presence>`},
	}
	var o core.Outputs
	for round := 0; round < 2; round++ { // the second round reuses o's buffers
		for _, c := range cases {
			var want []core.Output
			var err, errInto error
			if c.client {
				want, err = m.Client(now, juliet, []byte(c.raw))
				errInto = s.ClientInto(&o, now, juliet, []byte(c.raw))
			} else {
				want, err = m.Server(now, []byte(c.raw))
				errInto = s.ServerInto(&o, now, []byte(c.raw))
			}
			if err != nil || errInto != nil {
				t.Fatalf("%s: Machine %v, Sharded %v", c.name, err, errInto)
			}
			if diff := cmp.Diff(texts(want), texts(o.List)); diff != "" {
				t.Errorf("round %d, %s: Sharded into Outputs differs from Machine (-want +got):\n%s", round, c.name, diff)
			}
		}
	}
}

// TestShardedIntoRefused checks that refused input leaves Outputs empty,
// even when it held an earlier call's outputs.
func TestShardedIntoRefused(t *testing.T) {
	s, _ := intoPair(t)
	var o core.Outputs
	probe := []byte(`<presence from='juliet@montague.com/chamber' to='romeo@montague.com' type='probe'/>`)
	if err := s.ServerInto(&o, t0, probe); err != nil || len(o.List) != 1 {
		t.Fatalf("got %d outputs, %v; want 1", len(o.List), err)
	}
	if err := s.ServerInto(&o, t0, []byte(`<presence`)); !errors.Is(err, core.ErrBadInput) || len(o.List) != 0 {
		t.Errorf("malformed server stanza: %v, %d outputs; want ErrBadInput and none", err, len(o.List))
	}
	if err := s.ServerInto(&o, t0, probe); err != nil || len(o.List) != 1 {
		t.Fatalf("got %d outputs, %v; want 1", len(o.List), err)
	}
	if err := s.ClientInto(&o, t0, stanza.MustParse("juliet@montague.com/chamber"), []byte(`<message/>`)); !errors.Is(err, core.ErrBadInput) || len(o.List) != 0 {
		t.Errorf("client message: %v, %d outputs; want ErrBadInput and none", err, len(o.List))
	}
}

// TestShardedIntoAllocs checks the point of the Into calls: with a warm
// Outputs a probe answer allocates nothing.
func TestShardedIntoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items on purpose under -race")
	}
	s, _ := intoPair(t)
	var o core.Outputs
	probe := []byte(`<presence from='juliet@montague.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>`)
	session := stanza.MustParse("romeo@montague.com/balcony")
	update := []byte(`<presence><status>back</status></presence>`)
	if n := testing.AllocsPerRun(200, func() {
		if err := s.ServerInto(&o, t0, probe); err != nil || len(o.List) != 1 {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ServerInto: %v allocs per probe, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() {
		if err := s.ClientInto(&o, t0, session, update); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ClientInto: %v allocs per update, want 0", n)
	}
}
