package lsjackal

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/google/go-cmp/cmp"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// TestWASMEngineFacts runs the same presence, probes and queries on the
// native engine and on the WASM engine, both over one Authorizer, and
// wants the same outputs: the facts each probe carries into the guest
// must give the answers the native engine reads from storage, and must
// not linger after it (the second round, after the storage changed).
func TestWASMEngineFacts(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the WebAssembly module")
	}
	dir := t.TempDir()
	fake, auth, native, w := twoEngines(t, dir)
	now, _ := clock.Parse("2012-09-11T10:00:00Z")
	juliet := stanza.MustParse("juliet@capulet.lit/balcony")
	nurse := stanza.MustParse("nurse@capulet.lit/kitchen")
	type call struct {
		session *stanza.JID // nil: Server
		raw     string
	}
	round := []call{
		{&nurse, `<presence to='juliet@capulet.lit' type='probe' id='n1'/>`},
		{nil, `<presence from='romeo@montague.lit/orchard' to='juliet@capulet.lit' type='probe' id='r1'/>`},
		{nil, `<presence from='montague.lit/spy' to='juliet@capulet.lit' type='probe' id='s1'/>`},
		{nil, `<presence from='tybalt@capulet.lit/street' to='juliet@capulet.lit' type='probe' id='t1'/>`},
		{&nurse, `<iq type='get' to='juliet@capulet.lit' id='q1'><query xmlns='jabber:iq:last'/></iq>`},
		{nil, `<iq type='get' from='paris@verona.lit/x' to='juliet@capulet.lit' id='q2'><query xmlns='jabber:iq:last'/></iq>`},
		{&juliet, `<presence to='paris@verona.lit' type='probe' id='j1'/>`},
		{&juliet, `<iq type='get' to='paris@verona.lit' id='j2'><query xmlns='jabber:iq:last'/></iq>`},
	}
	both := func(f func(e Engine) ([]core.Output, error)) {
		t.Helper()
		nOut, nErr := f(native)
		wOut, wErr := f(w)
		if diff := cmp.Diff(nOut, wOut); diff != "" || (nErr == nil) != (wErr == nil) {
			t.Errorf("native %v, wasm %v; outputs (-native +wasm):\n%s", nErr, wErr, diff)
		}
	}
	for r := range 2 {
		both(func(e Engine) ([]core.Output, error) {
			return e.Client(now, juliet, []byte(`<presence><status>on the balcony</status></presence>`))
		})
		now = now.Add(time.Minute)
		for _, c := range round {
			both(func(e Engine) ([]core.Output, error) {
				if c.session != nil {
					return e.Client(now, *c.session, []byte(c.raw))
				}
				return e.Server(now, []byte(c.raw))
			})
		}
		// Between the rounds juliet unblocks everyone and drops romeo.
		if r == 0 {
			fake.blocks["juliet"] = nil
			fake.roster["juliet"] = fake.roster["juliet"][1:]
		}
	}
	if err := w.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// The store reopens, and the restart rule takes juliet offline,
	// stamped with the last change: her first presence (the second one
	// repeated it and changed nothing).
	w2, err := OpenWASM(context.Background(), core.Config{Served: []string{"capulet.lit"}}, auth, dir, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Shutdown()
	out, err := w2.Client(now, nurse, []byte(`<presence to='juliet@capulet.lit' type='probe' id='after'/>`))
	want := []core.Output{{Kind: core.Reply, To: []byte("nurse@capulet.lit/kitchen"), Stanza: []byte(`<presence from='juliet@capulet.lit' to='nurse@capulet.lit/kitchen' type='unavailable' id='after'><delay xmlns='urn:xmpp:delay' from='juliet@capulet.lit/balcony' stamp='2012-09-11T10:00:00Z'/></presence>`)}}
	if diff := cmp.Diff(want, out); err != nil || diff != "" {
		t.Errorf("probe after restore: err %v (-want +got):\n%s", err, diff)
	}
}

// TestWASMEngineRefusedClearsFacts checks that the facts set for an event
// the machine refuses are cleared all the same: after a malformed query
// from paris, whom juliet has in her roster and blocks, and a storage
// change that drops both, paris's probe must get what the native engine
// answers from storage (unsubscribed), not what stale facts would give.
func TestWASMEngineRefusedClearsFacts(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the WebAssembly module")
	}
	fake, _, native, w := twoEngines(t, t.TempDir())
	defer w.Shutdown()
	now, _ := clock.Parse("2012-09-11T10:00:00Z")
	bad := []byte(`<iq type='get' from='paris@verona.lit/x' to='juliet@capulet.lit' id='bad'><query xmlns='jabber:iq:last'/><extra/></iq>`)
	if _, err := w.Server(now, bad); err == nil {
		t.Fatal("the machine accepted a query with two children")
	}
	fake.blocks["juliet"] = nil
	fake.roster["juliet"] = nil
	probe := []byte(`<presence from='paris@verona.lit/x' to='juliet@capulet.lit' type='probe' id='p'/>`)
	want, err := native.Server(now, probe)
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.Server(now, probe)
	if diff := cmp.Diff(want, got); err != nil || diff != "" {
		t.Errorf("probe after a refused query: err %v (-native +wasm):\n%s", err, diff)
	}
	if len(want) != 1 || !bytes.Contains(want[0].Stanza, []byte("unsubscribed")) {
		t.Errorf("native engine: want one unsubscribed, got %v", want)
	}
}

// twoEngines makes the native engine and a WASM engine (its store in dir)
// over one Authorizer backed by a fresh fake storage, serving capulet.lit.
func twoEngines(t *testing.T, dir string) (*fakeStorage, *Authorizer, *core.Sharded, *WASMEngine) {
	t.Helper()
	fake := newFake()
	auth := NewAuthorizer(fake, log.NewNopLogger())
	domains := []string{"capulet.lit"}
	native, err := core.NewSharded(core.Config{Served: domains, Auth: auth}, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := OpenWASM(context.Background(), core.Config{Served: domains}, auth, dir, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return fake, auth, native, w
}
