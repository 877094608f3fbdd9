package core_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// event is one random input for a machine.
type event struct {
	kind    string // client, server, close, up, down
	session string
	xml     string
	now     clock.Time
}

// randomEvents makes a reproducible sequence of mostly valid, sometimes
// invalid events over a few users, resources and components.
func randomEvents(seed uint64, n int) []event {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	users := []string{"romeo", "juliet", "nurse", "Tybalt"}
	resources := []string{"balcony", "phone", "Laptop"}
	bodies := []string{
		`<presence/>`,
		`<presence id='x1'><show>away</show></presence>`,
		`<presence xml:lang='en'><status>Hi &amp; bye</status><delay xmlns='urn:xmpp:delay' stamp='2001-01-01T00:00:00Z'/></presence>`,
		`<presence type='unavailable'><status>gone</status></presence>`,
		`<presence type='unavailable'/>`,
		`<presence to='juliet@capulet.com'/>`,
		`<presence type='probe' id='p'/>`,
		`<presence to='romeo@montague.com' type='probe'/>`,
		`<presence to='juliet@capulet.com' type='probe'/>`,
		`<presence to='montague.com' type='probe'/>`,
		`<presence type='subscribe' to='nurse@montague.com'/>`,
		`<presence><bad></presence>`,
		`<presence type='bogus'/>`,
		`<iq type='get' id='q1'><query xmlns='jabber:iq:last'/></iq>`,
		`<iq to='romeo@montague.com' type='get' id='q2'><query xmlns='jabber:iq:last'/></iq>`,
		`<iq to='juliet@capulet.com' type='get' id='q3'><query xmlns='jabber:iq:last'/></iq>`,
		`<iq to='montague.com' type='get' id='q4'><query xmlns='jabber:iq:last'/></iq>`,
		`<iq to='nurse@montague.com/phone' type='get' id='q5'><query xmlns='jabber:iq:last'/></iq>`,
		`<iq type='set' id='q6'><query xmlns='jabber:iq:last'/></iq>`,
	}
	now := clock.Epoch2000
	evs := make([]event, 0, n)
	for i := 0; i < n; i++ {
		now += clock.Time(r.IntN(120)) * 1e9
		u := users[r.IntN(len(users))]
		res := resources[r.IntN(len(resources))]
		session := fmt.Sprintf("%s@montague.com/%s", u, res)
		switch k := r.IntN(20); {
		case k < 14:
			evs = append(evs, event{kind: "client", session: session, xml: bodies[r.IntN(len(bodies))], now: now})
		case k < 16:
			evs = append(evs, event{kind: "close", session: session, now: now})
		case k < 18:
			to := users[r.IntN(len(users))] + "@montague.com"
			if r.IntN(3) == 0 {
				to += "/" + res
			}
			x := fmt.Sprintf(`<presence from='juliet@capulet.com/x' to='%s' type='probe' id='s%d'/>`, to, i)
			if r.IntN(3) == 0 { // a Last Activity query instead (refused when to is a full JID)
				x = fmt.Sprintf(`<iq from='juliet@capulet.com/x' to='%s' type='get' id='s%d'><query xmlns='jabber:iq:last'/></iq>`, to, i)
			}
			evs = append(evs, event{kind: "server", xml: x, now: now})
		case k < 19:
			evs = append(evs, event{kind: "up", session: []string{"montague.com", "chat.montague.com"}[r.IntN(2)], now: now})
		default:
			evs = append(evs, event{kind: "down", session: "chat.montague.com", now: now})
		}
	}
	return evs
}

type stepper interface {
	Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error)
	Server(now clock.Time, raw []byte) ([]core.Output, error)
	Close(now clock.Time, session stanza.JID) ([]core.Output, error)
	Up(now clock.Time, jid stanza.JID) ([]core.Output, error)
	Down(now clock.Time, jid stanza.JID) ([]core.Output, error)
}

func apply(m stepper, e event) ([]core.Output, error) {
	var j stanza.JID
	if e.session != "" {
		j = stanza.MustParse(e.session)
	}
	switch e.kind {
	case "client":
		return m.Client(e.now, j, []byte(e.xml))
	case "server":
		return m.Server(e.now, []byte(e.xml))
	case "close":
		return m.Close(e.now, j)
	case "up":
		return m.Up(e.now, j)
	default:
		return m.Down(e.now, j)
	}
}

func newMachine(t testing.TB, journal bool) *core.Machine {
	t.Helper()
	m, err := core.New(core.Config{Served: []string{"montague.com"}, Journal: journal})
	if err != nil {
		t.Fatal(err)
	}
	m.SetRoster(stanza.MustParse("romeo@montague.com"), stanza.MustParse("juliet@capulet.com"), core.SubBoth)
	return m
}

// TestSnapshotPlusJournal replays random sequences: a snapshot taken at a
// random point plus the journal records written after it must give the
// same durable state as the machine that ran everything.
func TestSnapshotPlusJournal(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		evs := randomEvents(seed, 300)
		m := newMachine(t, true)
		cut := int(seed*7) % len(evs)
		var snap []byte
		var journal [][]byte
		for i, e := range evs {
			if i == cut {
				snap = m.Snapshot(nil)
			}
			if _, err := apply(m, e); err != nil {
				if m.Records() != nil {
					t.Fatalf("seed %d event %d: refused input wrote journal records", seed, i)
				}
				continue
			}
			if i >= cut {
				for _, rec := range m.Records() {
					journal = append(journal, append([]byte(nil), rec...))
				}
			}
		}
		r := newMachine(t, false)
		if err := r.Restore(snap); err != nil {
			t.Fatalf("seed %d: restore: %v", seed, err)
		}
		for i, rec := range journal {
			if err := r.ApplyRecord(rec); err != nil {
				t.Fatalf("seed %d record %d: %v", seed, i, err)
			}
		}
		if want, got := m.Snapshot(nil), r.Snapshot(nil); !bytes.Equal(want, got) {
			t.Fatalf("seed %d: snapshot+journal differs from the machine that ran everything", seed)
		}
	}
}

// TestRestoreRefusesDamage flips and truncates a snapshot: every damaged
// copy is refused with ErrCorrupt and the machine keeps its state.
func TestRestoreRefusesDamage(t *testing.T) {
	src := newMachine(t, false)
	for _, e := range randomEvents(3, 200) {
		apply(src, e)
	}
	snap := src.Snapshot(nil)
	dst := newMachine(t, false)
	for _, e := range randomEvents(4, 50) {
		apply(dst, e)
	}
	before := dst.AppendState(nil)
	damaged := [][]byte{nil, snap[:3], snap[:len(snap)/2], snap[:len(snap)-1], append([]byte("XXXX"), snap[4:]...)}
	for i := 0; i < len(snap); i += 1 + len(snap)/97 {
		c := append([]byte(nil), snap...)
		c[i] ^= 0x20
		damaged = append(damaged, c)
	}
	for i, d := range damaged {
		if err := dst.Restore(d); !errors.Is(err, core.ErrCorrupt) {
			t.Errorf("damaged copy %d: err = %v, want ErrCorrupt", i, err)
		}
		if !bytes.Equal(before, dst.AppendState(nil)) {
			t.Fatalf("damaged copy %d: state changed", i)
		}
	}
	if err := dst.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, dst.Snapshot(nil)) {
		t.Error("restored machine does not snapshot to the same bytes")
	}
}

// TestRestartedNoGhosts checks the restart rule: after Restarted nobody is
// available, and each formerly available user is stamped with the time of
// the last change.
func TestRestartedNoGhosts(t *testing.T) {
	m := newMachine(t, false)
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	t1, _ := clock.Parse("2012-09-10T20:00:00Z")
	t2, _ := clock.Parse("2012-09-10T21:00:00Z")
	m.Client(t1, romeo, []byte(`<presence><status>Here</status></presence>`))
	m.Client(t2, stanza.MustParse("nurse@montague.com/kitchen"), []byte(`<presence type='unavailable'/>`))
	r := newMachine(t, false)
	if err := r.Restore(m.Snapshot(nil)); err != nil {
		t.Fatal(err)
	}
	if n := r.Restarted(); n != 1 {
		t.Errorf("Restarted took %d resources offline, want 1", n)
	}
	out, err := r.Server(t2+3600e9, []byte(`<presence from='juliet@capulet.com/x' to='romeo@montague.com' type='probe'/>`))
	if err != nil {
		t.Fatal(err)
	}
	want := `<presence from='romeo@montague.com' to='juliet@capulet.com/x' type='unavailable'><delay xmlns='urn:xmpp:delay' from='romeo@montague.com/balcony' stamp='2012-09-10T21:00:00Z'/></presence>`
	if len(out) != 1 || string(out[0].Stanza) != want {
		t.Errorf("after restart got %q, want %s", out, want)
	}
}

func TestApplyRecordRefusesDamage(t *testing.T) {
	m := newMachine(t, true)
	if _, err := m.Client(clock.Epoch2000, stanza.MustParse("romeo@montague.com/balcony"), []byte(`<presence><show>away</show></presence>`)); err != nil {
		t.Fatal(err)
	}
	rec := append([]byte(nil), m.Records()[0]...)
	r := newMachine(t, false)
	before := r.AppendState(nil)
	for _, bad := range [][]byte{nil, {9}, rec[:len(rec)-1], append(append([]byte(nil), rec...), 0)} {
		if err := r.ApplyRecord(bad); !errors.Is(err, core.ErrCorrupt) {
			t.Errorf("ApplyRecord(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
	if !bytes.Equal(before, r.AppendState(nil)) {
		t.Error("state changed")
	}
	if err := r.ApplyRecord(rec); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefusesKeyOrder: a snapshot lists its users in strictly
// increasing key order, and Restore relies on it to find duplicates. One
// that repeats or misorders a user, with a valid checksum, is refused with
// ErrCorrupt by a Machine and by a Sharded, and neither changes; the same
// users in order load.
func TestRestoreRefusesKeyOrder(t *testing.T) {
	src := newMachine(t, false)
	for _, e := range randomEvents(7, 300) {
		apply(src, e)
	}
	snap := src.Snapshot(nil)
	tests := []struct {
		name    string
		reorder func([]string) []string
		wantErr error
	}{
		{"in order", func(k []string) []string { return k }, nil},
		{"first two swapped", func(k []string) []string {
			k[0], k[1] = k[1], k[0]
			return k
		}, core.ErrCorrupt},
		{"last two swapped", func(k []string) []string {
			k[len(k)-2], k[len(k)-1] = k[len(k)-1], k[len(k)-2]
			return k
		}, core.ErrCorrupt},
		{"reversed", func(k []string) []string { slices.Reverse(k); return k }, core.ErrCorrupt},
		{"one listed twice", func(k []string) []string { return slices.Insert(k, 3, k[3]) }, core.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := core.ReorderSnapshotUsers(snap, tt.reorder)
			m := newMachine(t, false)
			s := newSharded(t, 4)
			for _, e := range randomEvents(8, 50) {
				apply(m, e)
				apply(s, e)
			}
			for _, r := range []interface {
				Restore([]byte) error
				AppendState([]byte) []byte
			}{m, s} {
				before := r.AppendState(nil)
				err := r.Restore(bad)
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Fatalf("%T: Restore = %v, want %v", r, err, tt.wantErr)
				}
				if tt.wantErr != nil && !bytes.Equal(before, r.AppendState(nil)) {
					t.Fatalf("%T: a refused Restore changed the state", r)
				}
			}
			if tt.wantErr == nil && !bytes.Equal(m.Snapshot(nil), snap) {
				t.Error("the users in order did not restore to the same snapshot")
			}
		})
	}
}
