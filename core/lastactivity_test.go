package core_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

const lastQuery = `<iq from='juliet@capulet.com/x' to='romeo@montague.com' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`

// TestLastActivityAfterRestart pins CHOICES 36: after Restarted, a user
// who was online answers from the restart rule's stamp, with no text, and
// the query agrees with the probe.
func TestLastActivityAfterRestart(t *testing.T) {
	m := newMachine(t, false)
	t1, _ := clock.Parse("2012-09-10T20:00:00Z")
	t2, _ := clock.Parse("2012-09-10T21:00:00Z")
	m.Client(t1, stanza.MustParse("romeo@montague.com/balcony"), []byte(`<presence><status>Here</status></presence>`))
	m.Client(t2, stanza.MustParse("nurse@montague.com/kitchen"), []byte(`<presence type='unavailable'/>`))
	r := newMachine(t, false)
	if err := r.Restore(m.Snapshot(nil)); err != nil {
		t.Fatal(err)
	}
	now := t2 + 90e9 + 5e8
	before, err := r.Server(now, []byte(lastQuery))
	if err != nil {
		t.Fatal(err)
	}
	wantOnline := `<iq from='romeo@montague.com' to='juliet@capulet.com/x' type='result' id='l'><query xmlns='jabber:iq:last' seconds='0'/></iq>`
	if len(before) != 1 || string(before[0].Stanza) != wantOnline {
		t.Errorf("restored, before the restart rule: got %q, want %s", before, wantOnline)
	}
	r.Restarted()
	out, err := r.Server(now, []byte(lastQuery))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`<iq from='romeo@montague.com' to='juliet@capulet.com/x' type='result' id='l'><query xmlns='jabber:iq:last' seconds='90'/></iq>`}
	if diff := cmp.Diff(want, stanzas(out)); diff != "" {
		t.Errorf("after the restart rule (-want +got):\n%s", diff)
	}
}

func stanzas(out []core.Output) []string {
	var s []string
	for _, o := range out {
		s = append(s, string(o.Stanza))
	}
	return s
}

// TestLastActivityKinds checks the kind of each Last Activity output, on a
// Machine and on a Sharded, and that String names them.
func TestLastActivityKinds(t *testing.T) {
	session := stanza.MustParse("romeo@montague.com/balcony")
	tests := []struct {
		name   string
		client bool
		in     string
		want   core.Kind
	}{
		{"server result", false, lastQuery, core.IQReply},
		{"server error", false, `<iq from='tybalt@capulet.com/x' to='romeo@montague.com' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, core.IQReply},
		{"client local", true, `<iq type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, core.IQReply},
		{"client routed", true, `<iq to='juliet@capulet.com' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, core.RoutedQuery},
	}
	for _, tc := range tests {
		m := newMachine(t, false)
		s, err := core.NewSharded(core.Config{Served: []string{"montague.com"}}, 4)
		if err != nil {
			t.Fatal(err)
		}
		s.SetRoster(stanza.MustParse("romeo@montague.com"), stanza.MustParse("juliet@capulet.com"), core.SubBoth)
		for _, e := range []interface {
			Client(clock.Time, stanza.JID, []byte) ([]core.Output, error)
			Server(clock.Time, []byte) ([]core.Output, error)
		}{m, s} {
			e.Client(clock.Epoch2000, session, []byte(`<presence/>`))
			var out []core.Output
			if tc.client {
				out, err = e.Client(clock.Epoch2000, session, []byte(tc.in))
			} else {
				out, err = e.Server(clock.Epoch2000, []byte(tc.in))
			}
			if err != nil || len(out) != 1 || out[0].Kind != tc.want {
				t.Errorf("%s on %T: got %v, %v; want one %v", tc.name, e, out, err, tc.want)
			}
		}
	}
	if core.IQReply != 4 || core.RoutedQuery != 5 || core.IQReply.String() != "iq-reply" || core.RoutedQuery.String() != "query" {
		t.Errorf("kinds %d %q, %d %q; the ABI says 4 iq-reply, 5 query", core.IQReply, core.IQReply, core.RoutedQuery, core.RoutedQuery)
	}
}

// TestLastActivityRefusals checks the error classes of refused queries
// (CHOICES 35) and that they emit nothing.
func TestLastActivityRefusals(t *testing.T) {
	session := stanza.MustParse("romeo@montague.com/balcony")
	tests := []struct {
		name   string
		client bool
		in     string
		want   error
	}{
		{"set", false, `<iq from='a@b' to='romeo@montague.com' type='set' id='l'><query xmlns='jabber:iq:last'/></iq>`, stanza.ErrNotPresence},
		{"no id", false, `<iq from='a@b' to='romeo@montague.com' type='get'><query xmlns='jabber:iq:last'/></iq>`, stanza.ErrNotPresence},
		{"other child", false, `<iq from='a@b' to='romeo@montague.com' type='get' id='l'><query xmlns='jabber:iq:roster'/></iq>`, stanza.ErrNotPresence},
		{"unknown type", false, `<iq from='a@b' to='romeo@montague.com' type='fetch' id='l'><query xmlns='jabber:iq:last'/></iq>`, stanza.ErrUnknownType},
		{"no from", false, `<iq to='romeo@montague.com' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, core.ErrNoFrom},
		{"no to", false, `<iq from='a@b' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, core.ErrNoTo},
		{"foreign to", false, `<iq from='a@b' to='c@d' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, core.ErrNotLocal},
		{"full JID", false, `<iq from='a@b' to='romeo@montague.com/balcony' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, core.ErrNotLocal},
		{"bad from", false, `<iq from='a@@b' to='romeo@montague.com' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, stanza.ErrInvalidJID},
		{"client full JID", true, `<iq to='juliet@montague.com/x' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, core.ErrNotLocal},
		{"client bad from", true, `<iq from='@' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`, stanza.ErrInvalidJID},
	}
	for _, tc := range tests {
		m := newMachine(t, false)
		var out []core.Output
		var err error
		if tc.client {
			out, err = m.Client(clock.Epoch2000, session, []byte(tc.in))
		} else {
			out, err = m.Server(clock.Epoch2000, []byte(tc.in))
		}
		if !errors.Is(err, core.ErrBadInput) || !errors.Is(err, tc.want) || out != nil {
			t.Errorf("%s: got %v, %v; want nothing and an error matching ErrBadInput and %v", tc.name, out, err, tc.want)
		}
	}
}

// TestLastActivityDoesNotAllocate: a warm query to an offline user (with
// a status to read back) or to a domain allocates nothing.
func TestLastActivityDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m := newMachine(t, false)
	m.Up(clock.Epoch2000, stanza.MustParse("montague.com"))
	s := stanza.MustParse("romeo@montague.com/balcony")
	m.Client(clock.Epoch2000, s, []byte(`<presence type='unavailable'><status>Out &amp; about</status></presence>`))
	for _, in := range []string{lastQuery, `<iq from='juliet@capulet.com/x' to='montague.com' type='get' id='l'><query xmlns='jabber:iq:last'/></iq>`} {
		raw := []byte(in)
		m.Server(clock.Epoch2000+5e9, raw)
		if n := testing.AllocsPerRun(100, func() { m.Server(clock.Epoch2000+5e9, raw) }); n != 0 {
			t.Errorf("%s: %v allocations per query", in, n)
		}
	}
	// Sharded with a reused Outputs, from a server and from a session.
	sh, err := core.NewSharded(core.Config{Served: []string{"montague.com"}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	sh.SetRoster(stanza.MustParse("romeo@montague.com"), stanza.MustParse("juliet@capulet.com"), core.SubBoth)
	sh.Client(clock.Epoch2000, s, []byte(`<presence type='unavailable'><status>Out</status></presence>`))
	var o core.Outputs
	raw := []byte(lastQuery)
	own := []byte(`<iq type='get' id='own'><query xmlns='jabber:iq:last'/></iq>`)
	sh.ServerInto(&o, clock.Epoch2000+5e9, raw)
	sh.ClientInto(&o, clock.Epoch2000+5e9, s, own)
	if n := testing.AllocsPerRun(100, func() {
		sh.ServerInto(&o, clock.Epoch2000+5e9, raw)
		sh.ClientInto(&o, clock.Epoch2000+5e9, s, own)
	}); n != 0 {
		t.Errorf("Sharded: %v allocations per server and client query", n)
	}
}

// TestLastActivityClockBack pins CHOICES 37: a clock that went back gives
// 0 seconds, never a negative number; the scenario format cannot move time
// back, so this is a Go test.
func TestLastActivityClockBack(t *testing.T) {
	m := newMachine(t, false)
	t1, _ := clock.Parse("2012-09-10T20:00:00Z")
	m.Client(t1, stanza.MustParse("romeo@montague.com/balcony"), []byte(`<presence type='unavailable'/>`))
	out, err := m.Server(t1-5e9, []byte(lastQuery))
	want := []string{`<iq from='romeo@montague.com' to='juliet@capulet.com/x' type='result' id='l'><query xmlns='jabber:iq:last' seconds='0'/></iq>`}
	if diff := cmp.Diff(want, stanzas(out)); err != nil || diff != "" {
		t.Errorf("query 5 s before the unavailable presence: %v (-want +got):\n%s", err, diff)
	}
}
