package lsjackal

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/google/go-cmp/cmp"
	"github.com/jackal-xmpp/stravaganza"
	"github.com/jackal-xmpp/stravaganza/jid"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"github.com/ortuman/jackal/pkg/hook"
	"github.com/ortuman/jackal/pkg/router"
)

// recordingRouter is a router.Router that keeps what it is asked to route.
type recordingRouter struct {
	mu     sync.Mutex
	routed []string
}

func (r *recordingRouter) Route(_ context.Context, stz stravaganza.Stanza) ([]jid.JID, error) {
	var b bytes.Buffer
	_ = stz.ToXML(&b, true)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routed = append(r.routed, b.String())
	return nil, nil
}

func (r *recordingRouter) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.routed
	r.routed = nil
	return out
}

func (r *recordingRouter) C2S() router.C2SRouter       { return nil }
func (r *recordingRouter) S2S() router.S2SRouter       { return nil }
func (r *recordingRouter) Start(context.Context) error { return nil }
func (r *recordingRouter) Stop(context.Context) error  { return nil }

// hookRig is the module on a real jackal hook set, with a fake clock, a
// core.Sharded over MemoryAuth, and a router that records.
type hookRig struct {
	t   *testing.T
	hk  *hook.Hooks
	rt  *recordingRouter
	now clock.Time
	eng *core.Sharded
	mod *Module
}

func newHookRig(t *testing.T) *hookRig {
	t.Helper()
	eng, err := core.NewSharded(core.Config{Served: []string{"capulet.lit"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &hookRig{t: t, hk: hook.NewHooks(), rt: &recordingRouter{}, eng: eng}
	r.now, _ = clock.Parse("2012-09-11T10:00:00Z")
	m := New(eng, []string{"capulet.lit"}, r.rt, r.hk, func() clock.Time { return r.now }, log.NewNopLogger())
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	r.mod = m
	return r
}

func presence(t *testing.T, attrs map[string]string, children ...stravaganza.Element) *stravaganza.Presence {
	t.Helper()
	b := stravaganza.NewPresenceBuilder()
	for k, v := range attrs {
		b.WithAttribute(k, v)
	}
	b.WithChildren(children...)
	pr, err := b.BuildPresence()
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// client runs the hooks jackal runs for a client's presence, and returns
// whether a hook stopped the ones below it.
func (r *hookRig) client(session string, pr *stravaganza.Presence) (halted bool) {
	r.t.Helper()
	j, err := jid.NewWithString(session, false)
	if err != nil {
		r.t.Fatal(err)
	}
	halted, err = r.hk.Run(hook.C2SStreamPresenceReceived, &hook.ExecutionContext{
		Info: &hook.C2SStreamInfo{JID: j, Element: pr}, Context: context.Background(),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return halted
}

func (r *hookRig) sessionEnd(event, session string) {
	r.t.Helper()
	j, err := jid.NewWithString(session, false)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.hk.Run(event, &hook.ExecutionContext{Info: &hook.C2SStreamInfo{JID: j}, Context: context.Background()}); err != nil {
		r.t.Fatal(err)
	}
}

func status(text string) stravaganza.Element {
	return stravaganza.NewBuilder("status").WithText(text).Build()
}

// TestHooks drives the module through jackal's hooks as jackal would call
// them, and checks what it routes and whether it stops jackal's own
// handlers.
func TestHooks(t *testing.T) {
	r := newHookRig(t)
	if err := r.eng.SetRoster(stanza.MustParse("juliet@capulet.lit"), stanza.MustParse("romeo@montague.lit"), core.SubFrom); err != nil {
		t.Fatal(err)
	}
	if got := r.rt.take(); len(got) != 0 {
		t.Fatalf("Up of a domain without subscribers routed %v", got)
	}

	// A broadcast with jackal's to='own bare JID' is tracked, not taken for
	// directed presence, and jackal's handlers go on.
	if r.client("juliet@capulet.lit/balcony", presence(t, map[string]string{
		"from": "juliet@capulet.lit/balcony", "to": "juliet@capulet.lit",
	}, status("on the balcony"))) {
		t.Error("a broadcast stopped jackal's handlers")
	}
	r.now = r.now.Add(time.Hour)

	// A remote server's probe, through the s2s hook: answered and stopped.
	halted, err := r.hk.Run(hook.S2SInStreamPresenceReceived, &hook.ExecutionContext{
		Info: &hook.S2SStreamInfo{Sender: "montague.lit", Target: "capulet.lit", Element: presence(t, map[string]string{
			"from": "romeo@montague.lit/orchard", "to": "juliet@capulet.lit", "type": "probe", "id": "s2s",
		})},
		Context: context.Background(),
	})
	if err != nil || !halted {
		t.Fatalf("server probe: halted %v, err %v; want halted", halted, err)
	}
	want := []string{`<presence from='juliet@capulet.lit/balcony' to='romeo@montague.lit/orchard'><status>on the balcony</status><delay xmlns='urn:xmpp:delay' from='juliet@capulet.lit/balcony' stamp='2012-09-11T10:00:00Z'/></presence>`}
	if diff := cmp.Diff(want, r.rt.take()); diff != "" {
		t.Errorf("reply to a server probe (-want +got):\n%s", diff)
	}

	// The session is lost (C2SStreamDisconnected): the next probe finds
	// juliet offline since then.
	r.sessionEnd(hook.C2SStreamDisconnected, "juliet@capulet.lit/balcony")
	r.now = r.now.Add(time.Minute)

	// A local client's probe to a remote contact: routed on, stopped.
	if !r.client("nurse@capulet.lit/kitchen", presence(t, map[string]string{
		"from": "nurse@capulet.lit/kitchen", "to": "romeo@montague.lit", "type": "probe", "id": "c1",
	})) {
		t.Error("a client probe did not stop jackal's roster module")
	}
	// A local client's probe of juliet, unauthorised: unsubscribed.
	r.client("nurse@capulet.lit/kitchen", presence(t, map[string]string{
		"from": "nurse@capulet.lit/kitchen", "to": "juliet@capulet.lit", "type": "probe", "id": "c2",
	}))
	want = []string{
		`<presence from='nurse@capulet.lit/kitchen' to='romeo@montague.lit' type='probe' id='c1'/>`,
		`<presence from='juliet@capulet.lit' to='nurse@capulet.lit/kitchen' type='unsubscribed' id='c2'/>`,
	}
	if diff := cmp.Diff(want, r.rt.take()); diff != "" {
		t.Errorf("client probes (-want +got):\n%s", diff)
	}

	_, _ = r.hk.Run(hook.S2SInStreamPresenceReceived, &hook.ExecutionContext{
		Info: &hook.S2SStreamInfo{Element: presence(t, map[string]string{
			"from": "romeo@montague.lit/orchard", "to": "juliet@capulet.lit", "type": "probe", "id": "s2s-2",
		})},
		Context: context.Background(),
	})
	want = []string{`<presence from='juliet@capulet.lit' to='romeo@montague.lit/orchard' type='unavailable' id='s2s-2'><delay xmlns='urn:xmpp:delay' from='juliet@capulet.lit/balcony' stamp='2012-09-11T11:00:00Z'/></presence>`}
	if diff := cmp.Diff(want, r.rt.take()); diff != "" {
		t.Errorf("probe after the session was lost (-want +got):\n%s", diff)
	}

	// A probe on its way to a full JID is not delivered to the session.
	halted, _ = r.hk.Run(hook.C2SStreamWillRouteElement, &hook.ExecutionContext{
		Info: &hook.C2SStreamInfo{Element: presence(t, map[string]string{
			"from": "nurse@capulet.lit/kitchen", "to": "juliet@capulet.lit/balcony", "type": "probe",
		})},
	})
	if !halted {
		t.Error("a probe to a full JID would be delivered to the contact's session")
	}
	halted, _ = r.hk.Run(hook.C2SStreamWillRouteElement, &hook.ExecutionContext{
		Info: &hook.C2SStreamInfo{Element: presence(t, map[string]string{
			"from": "nurse@capulet.lit/kitchen", "to": "juliet@capulet.lit/balcony",
		})},
	})
	if halted {
		t.Error("directed presence to a full JID was stopped")
	}
}

// TestHooksTerminated checks that a stream terminated without a
// disconnection first (jackal's path for a stream that was already
// disconnected elsewhere) still ends the session for the machine.
func TestHooksTerminated(t *testing.T) {
	r := newHookRig(t)
	if err := r.eng.SetRoster(stanza.MustParse("juliet@capulet.lit"), stanza.MustParse("romeo@montague.lit"), core.SubFrom); err != nil {
		t.Fatal(err)
	}
	r.client("juliet@capulet.lit/balcony", presence(t, map[string]string{"from": "juliet@capulet.lit/balcony", "to": "juliet@capulet.lit"}))
	r.now = r.now.Add(time.Minute)
	r.sessionEnd(hook.C2SStreamTerminated, "juliet@capulet.lit/balcony")
	if got := r.rt.take(); len(got) != 0 {
		t.Fatalf("a broadcast and a session end routed %v", got)
	}
	_, _ = r.hk.Run(hook.S2SInStreamPresenceReceived, &hook.ExecutionContext{
		Info: &hook.S2SStreamInfo{Element: presence(t, map[string]string{
			"from": "romeo@montague.lit/orchard", "to": "juliet@capulet.lit", "type": "probe", "id": "t",
		})},
		Context: context.Background(),
	})
	want := []string{`<presence from='juliet@capulet.lit' to='romeo@montague.lit/orchard' type='unavailable' id='t'><delay xmlns='urn:xmpp:delay' from='juliet@capulet.lit/balcony' stamp='2012-09-11T10:01:00Z'/></presence>`}
	if diff := cmp.Diff(want, r.rt.take()); diff != "" {
		t.Errorf("probe after the stream was terminated (-want +got):\n%s", diff)
	}
}

// queryIQ builds an iq of type typ with id 'q' carrying an empty query in
// namespace ns.
func queryIQ(t *testing.T, typ, from, to, ns string) *stravaganza.IQ {
	t.Helper()
	q, err := stravaganza.NewIQBuilder().WithAttribute("type", typ).WithAttribute("id", "q").
		WithAttribute("from", from).WithAttribute("to", to).
		WithChild(stravaganza.NewBuilder("query").WithAttribute("xmlns", ns).Build()).BuildIQ()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestHooksServerIQ checks that an iq result or error another server sends
// to a local user is delivered (jackal drops it otherwise) and that other
// iqs are left to jackal.
func TestHooksServerIQ(t *testing.T) {
	r := newHookRig(t)
	iq := func(typ, to string) *stravaganza.IQ { return queryIQ(t, typ, "romeo@montague.lit", to, NamespaceLast) }
	tests := []struct {
		name   string
		iq     *stravaganza.IQ
		halted bool
		routed int
	}{
		{"result to a local user", iq("result", "juliet@capulet.lit/balcony"), true, 1},
		{"error to a local user", iq("error", "juliet@capulet.lit/balcony"), true, 1},
		{"get to a local user: jackal's", iq("get", "juliet@capulet.lit"), false, 0},
		{"result to another domain: not ours", iq("result", "tybalt@verona.lit/x"), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			halted, err := r.hk.Run(hook.S2SInStreamIQReceived, &hook.ExecutionContext{
				Info: &hook.S2SStreamInfo{Element: tt.iq}, Context: context.Background(),
			})
			if err != nil || halted != tt.halted {
				t.Errorf("halted %v, err %v; want halted %v", halted, err, tt.halted)
			}
			if got := r.rt.take(); len(got) != tt.routed {
				t.Errorf("routed %v, want %d stanzas", got, tt.routed)
			}
		})
	}
}

// TestHooksRemoteQuery drives a client's Last Activity query through
// jackal's will-route hook: one to another server goes through the machine,
// which routes it unless the session's user blocked the target (RULES L4:
// then the session gets the error and nothing is routed), and jackal is
// stopped either way; other iqs are left to jackal.
func TestHooksRemoteQuery(t *testing.T) {
	r := newHookRig(t)
	if err := r.eng.SetBlock(stanza.MustParse("juliet@capulet.lit"), stanza.MustParse("tybalt@verona.lit"), true); err != nil {
		t.Fatal(err)
	}
	iq := func(typ, to, ns string) *stravaganza.IQ { return queryIQ(t, typ, "juliet@capulet.lit/balcony", to, ns) }
	tests := []struct {
		name   string
		iq     *stravaganza.IQ
		halted bool
		want   []string
	}{
		{"remote, not blocked: routed by the machine", iq("get", "romeo@montague.lit", NamespaceLast), true, []string{
			`<iq from='juliet@capulet.lit/balcony' to='romeo@montague.lit' type='get' id='q'><query xmlns='jabber:iq:last'/></iq>`,
		}},
		{"remote full JID, not blocked: routed by the machine", iq("get", "romeo@montague.lit/orchard", NamespaceLast), true, []string{
			`<iq from='juliet@capulet.lit/balcony' to='romeo@montague.lit/orchard' type='get' id='q'><query xmlns='jabber:iq:last'/></iq>`,
		}},
		{"remote, blocked: the C4 error, nothing routed to it", iq("get", "tybalt@verona.lit", NamespaceLast), true, []string{
			`<iq from='tybalt@verona.lit' to='juliet@capulet.lit/balcony' type='error' id='q'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><blocked xmlns='urn:xmpp:blocking:errors'/></error></iq>`,
		}},
		{"local full JID: jackal's (L6)", iq("get", "nurse@capulet.lit/kitchen", NamespaceLast), false, nil},
		{"remote set: jackal's", iq("set", "romeo@montague.lit", NamespaceLast), false, nil},
		{"remote, another namespace: jackal's", iq("get", "romeo@montague.lit", "jabber:iq:version"), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, _ := jid.NewWithString("juliet@capulet.lit/balcony", false)
			halted, err := r.hk.Run(hook.C2SStreamWillRouteElement, &hook.ExecutionContext{
				Info: &hook.C2SStreamInfo{JID: j, Element: tt.iq}, Context: context.Background(),
			})
			if err != nil || halted != tt.halted {
				t.Errorf("halted %v, err %v; want halted %v", halted, err, tt.halted)
			}
			if diff := cmp.Diff(tt.want, r.rt.take()); diff != "" {
				t.Errorf("routed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHooksStop checks that stopping the module takes every served domain
// down and routes the announcement to the domain's subscribers (XEP-0318
// §3.2, RULES S3), after which a probe to the domain gets the downtime
// (S2).
func TestHooksStop(t *testing.T) {
	r := newHookRig(t)
	dom := stanza.MustParse("capulet.lit")
	if err := r.eng.SetRoster(dom, stanza.MustParse("romeo@montague.lit"), core.SubFrom); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.SetRoster(dom, stanza.MustParse("tybalt@verona.lit"), core.SubTo); err != nil {
		t.Fatal(err)
	}
	r.now = r.now.Add(time.Hour)
	if err := r.mod.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{`<presence from='capulet.lit' to='romeo@montague.lit' type='unavailable'><delay xmlns='urn:xmpp:delay' from='capulet.lit' stamp='2012-09-11T11:00:00Z'/></presence>`}
	if diff := cmp.Diff(want, r.rt.take()); diff != "" {
		t.Errorf("announcements at stop (-want +got):\n%s", diff)
	}
	out, err := r.eng.Server(r.now, []byte(`<presence from='romeo@montague.lit/orchard' to='capulet.lit' type='probe' id='p'/>`))
	wantOut := []core.Output{{Kind: core.Reply, To: []byte("romeo@montague.lit/orchard"), Stanza: []byte(`<presence from='capulet.lit' to='romeo@montague.lit/orchard' type='unavailable' id='p'><delay xmlns='urn:xmpp:delay' from='capulet.lit' stamp='2012-09-11T11:00:00Z'/></presence>`)}}
	if diff := cmp.Diff(wantOut, out); err != nil || diff != "" {
		t.Errorf("probe to the domain after stop: err %v (-want +got):\n%s", err, diff)
	}
}
