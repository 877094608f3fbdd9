package wazerohost_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"github.com/lastseen-xmpp/lastseen/store"
)

// failingAuth is a MemoryAuth that panics with errStorage whenever it is
// asked about fail, as a host whose storage is down would.
type failingAuth struct {
	*core.MemoryAuth
	fail string
}

var errStorage = errors.New("roster storage unreachable")

func (a failingAuth) check(owner stanza.JID) {
	if owner.String() == a.fail {
		panic(errStorage)
	}
}

func (a failingAuth) ProbeFacts(owner, prober stanza.JID) (bool, core.Subscription, bool) {
	a.check(owner)
	return a.MemoryAuth.ProbeFacts(owner, prober)
}

func (a failingAuth) Blocks(owner, jid stanza.JID) bool {
	a.check(owner)
	return a.MemoryAuth.Blocks(owner, jid)
}

func (a failingAuth) Subscribers(owner stanza.JID, yield func(stanza.JID) bool) {
	a.check(owner)
	a.MemoryAuth.Subscribers(owner, yield)
}

// plainAuth hides every method but Authorizer's: no ProbeFacts, no
// Subscribers.
type plainAuth struct{ core.Authorizer }

func authFacts() *core.MemoryAuth {
	a := core.NewMemoryAuth()
	chat := stanza.MustParse("chat.montague.com")
	a.SetSubscription(romeoB, juliet, core.SubBoth)
	a.SetSubscription(chat, stanza.MustParse("nurse@capulet.com"), core.SubFrom)
	a.SetSubscription(chat, juliet, core.SubBoth)
	a.SetSubscription(chat, stanza.MustParse("tybalt@capulet.com"), core.SubBoth)
	a.SetBlocked(chat, stanza.MustParse("capulet.com/x"), true)
	a.SetBlocked(chat, stanza.MustParse("tybalt@capulet.com"), true)
	a.SetBlocked(romeoB, stanza.MustParse("tybalt@capulet.com"), true)
	a.SetHidden(stanza.MustParse("benvolio@montague.com"), true)
	return a
}

type authCall struct {
	name string
	run  func(m machine) ([]core.Output, error)
}

func hostFactsCalls() []authCall {
	probe := func(from, to string) func(m machine) ([]core.Output, error) {
		return func(m machine) ([]core.Output, error) {
			return m.Server(t0+3, fmt.Appendf(nil, "<presence from='%s' to='%s' type='probe' id='p'/>", from, to))
		}
	}
	return []authCall{
		{"romeo online", func(m machine) ([]core.Output, error) { return m.Client(t0, romeo, onlineS) }},
		{"benvolio online", func(m machine) ([]core.Output, error) {
			return m.Client(t0+1, stanza.MustParse("benvolio@montague.com/b"), []byte("<presence/>"))
		}},
		{"benvolio gone", func(m machine) ([]core.Output, error) {
			return m.Close(t0+2, stanza.MustParse("benvolio@montague.com/b"))
		}},
		{"juliet probes romeo", probe("juliet@capulet.com/c", "romeo@montague.com")},
		{"tybalt probes romeo", probe("tybalt@capulet.com/t", "romeo@montague.com")},
		{"nurse probes romeo", probe("nurse@capulet.com/n", "romeo@montague.com")},
		{"juliet probes benvolio", probe("juliet@capulet.com/c", "benvolio@montague.com")},
		{"juliet asks romeo's last activity", func(m machine) ([]core.Output, error) {
			return m.Server(t0+4, []byte("<iq from='juliet@capulet.com/c' to='romeo@montague.com' type='get' id='q'><query xmlns='jabber:iq:last'/></iq>"))
		}},
		{"romeo probes tybalt", func(m machine) ([]core.Output, error) {
			return m.Client(t0+5, romeo, []byte("<presence type='probe' to='tybalt@capulet.com'/>"))
		}},
		{"chat up", func(m machine) ([]core.Output, error) { return m.Up(t0+6, stanza.MustParse("chat.montague.com")) }},
		{"chat down", func(m machine) ([]core.Output, error) { return m.Down(t0+7, stanza.MustParse("chat.montague.com")) }},
	}
}

// TestAuthorizerAnswers runs the same calls on core.Machine and on an
// Engine whose facts come from the host (ABI version 3) through the same
// Authorizer: the outputs, errors and state are the same bytes.
func TestAuthorizerAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth core.Authorizer
	}{
		{"MemoryAuth", authFacts()},
		{"plain Authorizer", plainAuth{authFacts()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := core.Config{Served: []string{"montague.com", "chat.montague.com"}, Auth: tc.auth}
			native, err := core.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			wasm := newEngine(t, cfg)
			announced := 0
			for _, c := range hostFactsCalls() {
				nOut, nErr := c.run(native)
				nOut = cloneOutputs(nOut)
				wOut, wErr := c.run(wasm)
				if errText(nErr) != errText(wErr) {
					t.Fatalf("%s: error: core %v, wasm %v", c.name, nErr, wErr)
				}
				if d := cmp.Diff(outputStrings(nOut), outputStrings(wOut)); d != "" {
					t.Fatalf("%s: outputs (-core +wasm):\n%s", c.name, d)
				}
				if c.name == "chat up" {
					announced = len(wOut)
				}
				if ns, ws := native.AppendState(nil), wasm.AppendState(nil); !bytes.Equal(ns, ws) {
					t.Fatalf("%s: state differs", c.name)
				}
			}
			// A plain Authorizer cannot list subscribers: both refuse up.
			if _, ok := tc.auth.(core.SubscriberLister); ok && announced != 2 {
				t.Errorf("chat up announced to %d subscribers, want 2 (nurse and juliet)", announced)
			}
			// The facts are the host's: the engine keeps none.
			if err := wasm.SetRoster(romeoB, juliet, core.SubNone); !errors.Is(err, core.ErrNoFactStore) {
				t.Errorf("SetRoster with facts from the host: %v, want core.ErrNoFactStore", err)
			}
		})
	}
}

// TestAuthorizerPanics checks that a panicking Authorizer refuses the call
// that needed it with an error wrapping the panic, emits nothing, leaves
// the state alone, and that the engine goes on.
func TestAuthorizerPanics(t *testing.T) {
	auth := failingAuth{MemoryAuth: authFacts(), fail: "romeo@montague.com"}
	wasm := newEngine(t, core.Config{Served: []string{"montague.com", "chat.montague.com"}, Auth: auth})
	if _, err := wasm.Client(t0, romeo, onlineS); err != nil {
		t.Fatal(err)
	}
	before := wasm.AppendState(nil)
	for _, c := range hostFactsCalls() {
		if c.name != "juliet probes romeo" && c.name != "juliet asks romeo's last activity" && c.name != "romeo probes tybalt" {
			continue
		}
		out, err := c.run(wasm)
		if !errors.Is(err, wazerohost.ErrAuthorizer) || !errors.Is(err, errStorage) {
			t.Errorf("%s: error %v, want ErrAuthorizer wrapping %v", c.name, err, errStorage)
		}
		if len(out) != 0 {
			t.Errorf("%s: %d outputs after a failure", c.name, len(out))
		}
	}
	if !bytes.Equal(before, wasm.AppendState(nil)) {
		t.Error("refused calls changed the state")
	}
	auth.fail = "chat.montague.com"
	wasm2 := newEngine(t, core.Config{Served: []string{"montague.com", "chat.montague.com"}, Auth: auth})
	before = wasm2.AppendState(nil)
	if out, err := wasm2.Up(t0, stanza.MustParse("chat.montague.com")); !errors.Is(err, errStorage) || len(out) != 0 {
		t.Errorf("up with a failing lister: %d outputs, error %v", len(out), err)
	}
	if !bytes.Equal(before, wasm2.AppendState(nil)) {
		t.Error("a refused up changed the state")
	}
	// The machine went on: a probe that needs no failing owner works.
	if _, err := wasm.Server(t0+10, []byte("<presence from='juliet@capulet.com/c' to='benvolio@montague.com' type='probe'/>")); err != nil {
		t.Errorf("probe after the failures: %v", err)
	}
}

func cloneOutputs(outs []core.Output) []core.Output {
	c := make([]core.Output, len(outs))
	for i, o := range outs {
		c[i] = core.Output{Kind: o.Kind, To: bytes.Clone(o.To), Stanza: bytes.Clone(o.Stanza)}
	}
	return c
}

func outputStrings(outs []core.Output) []string {
	var s []string
	for _, o := range outs {
		s = append(s, fmt.Sprintf("%v %s %s", o.Kind, o.To, o.Stanza))
	}
	return s
}

// The cost of a probe's facts (ABI version 3, wasm/ABI.md "Why this
// shape"): Juliet probes Romeo, who went offline with a status, so the
// answer is the stored unavailable presence with a delay. bench/hostfacts.sh
// runs these with the Node.js and Lua equivalents and tabulates them.
var (
	offlineProbe = []byte(`<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>`)
	offlineS     = []byte(`<presence type='unavailable'><status>gone fishing</status></presence>`)
	tybalt       = stanza.MustParse("tybalt@capulet.com")
)

// offlineRomeo sets m up for the probe, Romeo came online and left, and
// checks that the probe gets his status: the facts reached the machine.
func offlineRomeo(b *testing.B, m machine, probe func() []core.Output) {
	b.Helper()
	if _, err := m.Client(t0, romeo, onlineS); err != nil {
		b.Fatal(err)
	}
	if _, err := m.Client(t0+1, romeo, offlineS); err != nil {
		b.Fatal(err)
	}
	if out := probe(); len(out) != 1 || !bytes.Contains(out[0].Stanza, []byte("gone fishing")) {
		b.Fatalf("the probe's answer: %v", outputStrings(out))
	}
}

// probeFactsEvents is the batch a host that feeds facts as events sends
// for one probe, as mod_lastseen did before version 3: the roster item,
// block and opt-out facts it read for the probe, the probe, and the
// roster item cleared after (the block and opt-out it set are "off").
func probeFactsEvents() []wazerohost.Event {
	return []wazerohost.Event{
		{Kind: wazerohost.EventRoster, JID: romeoB, Other: juliet, Sub: core.SubBoth},
		{Kind: wazerohost.EventBlock, JID: romeoB, Other: tybalt, On: false},
		{Kind: wazerohost.EventHide, JID: romeoB, On: false},
		{Kind: wazerohost.EventServer, Now: t0 + 2, Stanza: offlineProbe},
		{Kind: wazerohost.EventRoster, JID: romeoB, Other: juliet, Sub: core.SubNone},
	}
}

// serverProbe returns a call of the offline probe on m that fails b unless
// it is answered.
func serverProbe(b *testing.B, m machine) func() []core.Output {
	return func() []core.Output {
		out, err := m.Server(t0+2, offlineProbe)
		if err != nil || len(out) != 1 {
			b.Fatal(out, err)
		}
		return out
	}
}

// loopProbes takes romeo offline on m and then runs probe b.N times.
func loopProbes(b *testing.B, m machine, probe func() []core.Output) {
	offlineRomeo(b, m, probe)
	for b.Loop() {
		probe()
	}
}

func BenchmarkProbeOffline(b *testing.B) {
	auth := core.NewMemoryAuth()
	auth.SetSubscription(romeoB, juliet, core.SubBoth)
	b.Run("native", func(b *testing.B) {
		m, err := core.New(core.Config{Served: served, Auth: auth})
		if err != nil {
			b.Fatal(err)
		}
		loopProbes(b, m, serverProbe(b, m))
	})
	// The version 2 floor: facts fed once and kept in the guest, which a
	// host with few facts can do; a server like Prosody cannot.
	b.Run("wazero-kept", func(b *testing.B) {
		e := newEngine(b, core.Config{Served: served})
		if err := e.SetRoster(romeoB, juliet, core.SubBoth); err != nil {
			b.Fatal(err)
		}
		loopProbes(b, e, serverProbe(b, e))
	})
	b.Run("wazero-events", func(b *testing.B) {
		e := newEngine(b, core.Config{Served: served})
		events := probeFactsEvents()
		probe := func() []core.Output {
			rs, err := e.Batch(events)
			if err != nil || len(rs[3].Outputs) != 1 {
				b.Fatal(rs, err)
			}
			return rs[3].Outputs
		}
		loopProbes(b, e, probe)
	})
	b.Run("wazero-host", func(b *testing.B) {
		e := newEngine(b, core.Config{Served: served, Auth: auth})
		loopProbes(b, e, serverProbe(b, e))
	})
}

// TestAuthorizerDurable keeps the state of an engine whose facts come from
// Config.Auth in a store directory: the facts are not the store's, so a
// reopened store asks Config.Auth again and answers as before the close.
func TestAuthorizerDurable(t *testing.T) {
	dir := t.TempDir()
	auth := authFacts()
	cfg := core.Config{Served: []string{"montague.com", "chat.montague.com"}, Auth: auth}
	d, err := wazerohost.OpenDurable(ctx, dir, cfg, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client(t0, romeo, onlineS); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client(t0+1, romeo, offlineS); err != nil {
		t.Fatal(err)
	}
	before, err := d.Server(t0+2, offlineProbe)
	if err != nil || len(before) != 1 || !bytes.Contains(before[0].Stanza, []byte("gone fishing")) {
		t.Fatalf("probe before the close: %v, %v", outputStrings(before), err)
	}
	before = cloneOutputs(before)
	if err := d.Shutdown(); err != nil {
		t.Fatal(err)
	}
	d, err = wazerohost.OpenDurable(ctx, dir, cfg, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown()
	after, err := d.Server(t0+2, offlineProbe)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(outputStrings(before), outputStrings(after)); diff != "" {
		t.Errorf("probe after reopening (-before +after):\n%s", diff)
	}
	// A roster change in the host's storage applies at once: no event.
	auth.SetSubscription(romeoB, juliet, core.SubNone)
	out, err := d.Server(t0+3, offlineProbe)
	if err != nil || len(out) != 1 || !bytes.Contains(out[0].Stanza, []byte("type='unsubscribed'")) {
		t.Errorf("probe after the host removed the roster item: %v, %v", outputStrings(out), err)
	}
}
