package core_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

var t0 = clock.Epoch2000

// busyMachine returns a machine with some of everything tracked, so that a
// refused input has state it could wrongly change.
func busyMachine(t *testing.T) *core.Machine {
	t.Helper()
	m, err := core.New(core.Config{Served: []string{"montague.com"}})
	if err != nil {
		t.Fatal(err)
	}
	romeo := stanza.MustParse("romeo@montague.com")
	if err := m.SetRoster(romeo, stanza.MustParse("juliet@capulet.com"), core.SubBoth); err != nil {
		t.Fatal(err)
	}
	steps := []func() ([]core.Output, error){
		func() ([]core.Output, error) { return m.Up(t0, stanza.MustParse("montague.com")) },
		func() ([]core.Output, error) {
			return m.Client(t0, stanza.MustParse("romeo@montague.com/balcony"), []byte(`<presence><show>away</show></presence>`))
		},
		func() ([]core.Output, error) {
			return m.Client(t0+1e9, stanza.MustParse("benvolio@montague.com/street"), []byte(`<presence type='unavailable'><status>bye</status></presence>`))
		},
		func() ([]core.Output, error) {
			return m.Client(t0+2e9, stanza.MustParse("romeo@montague.com/balcony"), []byte(`<presence to='juliet@capulet.com' type='probe'/>`))
		},
	}
	for i, step := range steps {
		if _, err := step(); err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	return m
}

// TestBadInput feeds every kind of input RULES B1 refuses and checks the
// three promises: a typed error, no output, unchanged state.
func TestBadInput(t *testing.T) {
	long := "<presence><status>" + strings.Repeat("x", stanza.DefaultMaxBytes) + "</status></presence>"
	deep := "<presence>" + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + "</presence>"
	session := "romeo@montague.com/balcony"
	tests := []struct {
		name    string
		event   string // client, server, close, up, down
		session string
		xml     string
		want    error // the specific reason, besides ErrBadInput
	}{
		{"malformed", "client", session, `<presence><status>Hi</status>`, stanza.ErrMalformed},
		{"mismatched end tag", "client", session, `<presence></presenc>`, stanza.ErrMalformed},
		{"bad utf-8", "client", session, "<presence><status>\xff</status></presence>", stanza.ErrMalformed},
		{"undeclared prefix", "client", session, `<presence><x:y/></presence>`, stanza.ErrMalformed},
		{"duplicate attribute", "client", session, `<presence id='a' id='b'/>`, stanza.ErrMalformed},
		{"dtd", "client", session, `<!DOCTYPE presence><presence/>`, stanza.ErrRestricted},
		{"entity", "client", session, `<presence><status>&nbsp;</status></presence>`, stanza.ErrRestricted},
		{"processing instruction", "client", session, `<presence><?php x?></presence>`, stanza.ErrRestricted},
		{"xml declaration", "client", session, `<?xml version='1.0'?><presence/>`, stanza.ErrRestricted},
		{"comment", "client", session, `<presence><!-- hi --></presence>`, stanza.ErrRestricted},
		{"two roots", "client", session, `<presence/><presence/>`, stanza.ErrMalformed},
		{"message", "client", session, `<message><body>hi</body></message>`, stanza.ErrNotPresence},
		{"foreign namespace", "client", session, `<presence xmlns='urn:other'/>`, stanza.ErrNotPresence},
		{"unknown type", "client", session, `<presence type='sideways'/>`, stanza.ErrUnknownType},
		{"available is not a type", "client", session, `<presence type='available'/>`, stanza.ErrUnknownType},
		{"bad to", "client", session, `<presence to='juliet@@capulet.com' type='probe'/>`, stanza.ErrInvalidJID},
		{"bad from", "client", session, `<presence from='"r"@montague.com'/>`, stanza.ErrInvalidJID},
		{"too large", "client", session, long, stanza.ErrTooLarge},
		{"too deep", "client", session, deep, stanza.ErrTooComplex},
		{"bare session", "client", "romeo@montague.com", `<presence/>`, core.ErrSession},
		{"foreign session", "client", "juliet@capulet.com/balcony", `<presence/>`, core.ErrSession},
		{"server without from", "server", "", `<presence to='romeo@montague.com' type='probe'/>`, core.ErrNoFrom},
		{"server probe without to", "server", "", `<presence from='juliet@capulet.com' type='probe'/>`, core.ErrNoTo},
		{"server probe elsewhere", "server", "", `<presence from='juliet@capulet.com/balcony' to='juliet@capulet.com' type='probe'/>`, core.ErrNotLocal},
		{"server probe to foreign component user", "server", "", `<presence from='juliet@capulet.com' to='room@chat.capulet.com' type='probe'/>`, core.ErrNotLocal},
		{"close of a bare JID", "close", "romeo@montague.com", "", core.ErrSession},
		{"up of a user", "up", "romeo@montague.com", "", core.ErrNotDomain},
		{"down of a full JID", "down", "montague.com/x", "", core.ErrNotDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := busyMachine(t)
			before := m.AppendState(nil)
			var j stanza.JID
			if tt.session != "" {
				j = stanza.MustParse(tt.session)
			}
			var out []core.Output
			var err error
			switch tt.event {
			case "client":
				out, err = m.Client(t0+5e9, j, []byte(tt.xml))
			case "server":
				out, err = m.Server(t0+5e9, []byte(tt.xml))
			case "close":
				out, err = m.Close(t0+5e9, j)
			case "up":
				out, err = m.Up(t0+5e9, j)
			case "down":
				out, err = m.Down(t0+5e9, j)
			}
			if !errors.Is(err, core.ErrBadInput) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want ErrBadInput and %v", err, tt.want)
			}
			var ie *core.InputError
			if !errors.As(err, &ie) || ie.Event != tt.event {
				t.Errorf("errors.As(*InputError) = %v, event %q; want event %q", ie, ie.Event, tt.event)
			}
			if len(out) != 0 {
				t.Errorf("emitted %d stanzas on refused input", len(out))
			}
			if after := m.AppendState(nil); !bytes.Equal(before, after) {
				t.Errorf("state changed on refused input")
			}
		})
	}
}

// TestSyntaxErrorDetails checks that the parser's errors say where and can
// be reached with errors.As.
func TestSyntaxErrorDetails(t *testing.T) {
	m := busyMachine(t)
	_, err := m.Client(t0, stanza.MustParse("romeo@montague.com/balcony"), []byte(`<presence><!-- x --></presence>`))
	var se *stanza.SyntaxError
	if !errors.As(err, &se) || se.Offset != 10 {
		t.Fatalf("err = %v; want a *stanza.SyntaxError at offset 10", err)
	}
	_, err = m.Client(t0, stanza.MustParse("romeo@montague.com/balcony"), []byte(`<presence to='a@b@c' type='probe'/>`))
	var je *stanza.JIDError
	if !errors.As(err, &je) {
		t.Fatalf("err = %v; want a *stanza.JIDError", err)
	}
}

// TestLimitsRefuseCleanly checks the entity and resource caps: refused,
// typed, nothing evicted.
func TestLimitsRefuseCleanly(t *testing.T) {
	m, err := core.New(core.Config{Served: []string{"montague.com"}, MaxEntities: 2, MaxResources: 2})
	if err != nil {
		t.Fatal(err)
	}
	avail := []byte(`<presence/>`)
	for _, s := range []string{"a@montague.com/1", "a@montague.com/2", "b@montague.com/1"} {
		if _, err := m.Client(t0, stanza.MustParse(s), avail); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	before := m.AppendState(nil)
	if _, err := m.Client(t0, stanza.MustParse("a@montague.com/3"), avail); !errors.Is(err, core.ErrTooManyResources) {
		t.Errorf("third resource: err = %v, want ErrTooManyResources", err)
	}
	if _, err := m.Client(t0, stanza.MustParse("c@montague.com/1"), avail); !errors.Is(err, core.ErrTooManyEntities) {
		t.Errorf("third user: err = %v, want ErrTooManyEntities", err)
	}
	if _, err := m.Up(t0, stanza.MustParse("chat.montague.com")); !errors.Is(err, core.ErrTooManyEntities) {
		t.Errorf("component: err = %v, want ErrTooManyEntities", err)
	}
	if !bytes.Equal(before, m.AppendState(nil)) {
		t.Error("state changed")
	}
	// A known user's resource coming back is not a new entity.
	if _, err := m.Client(t0, stanza.MustParse("a@montague.com/1"), []byte(`<presence><show>dnd</show></presence>`)); err != nil {
		t.Errorf("update of a tracked resource: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []core.Config{
		{},
		{Served: []string{"user@montague.com"}},
		{Served: []string{"montague.com"}, ProbeLimit: core.RateLimit{Burst: 0, Per: 1}},
		{Served: []string{"montague.com"}, ProbeLimit: core.RateLimit{Burst: 1 << 40, Per: 1 << 40}},
	} {
		if _, err := core.New(cfg); !errors.Is(err, core.ErrConfig) {
			t.Errorf("New(%+v) err = %v, want ErrConfig", cfg, err)
		}
	}
}
