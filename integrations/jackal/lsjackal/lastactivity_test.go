package lsjackal

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackal-xmpp/stravaganza"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// TestProcessIQ hands the module Last Activity queries as jackal's module
// hub does (c2s and s2s alike) and checks what it routes: a local
// session's query goes to Client, a remote server's to Server, and a query
// the machine refuses gets bad-request.
func TestProcessIQ(t *testing.T) {
	r := newHookRig(t)
	if err := r.eng.SetRoster(stanza.MustParse("juliet@capulet.lit"), stanza.MustParse("romeo@montague.lit"), core.SubFrom); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.SetRoster(stanza.MustParse("juliet@capulet.lit"), stanza.MustParse("nurse@capulet.lit"), core.SubFrom); err != nil {
		t.Fatal(err)
	}
	r.client("juliet@capulet.lit/balcony", presence(t, map[string]string{"from": "juliet@capulet.lit/balcony", "to": "juliet@capulet.lit"}))
	r.client("juliet@capulet.lit/balcony", presence(t, map[string]string{"from": "juliet@capulet.lit/balcony", "to": "juliet@capulet.lit", "type": "unavailable"}, status("asleep")))
	r.now = r.now.Add(90 * time.Second)
	_ = r.rt.take()

	tests := []struct {
		name  string
		attrs [][2]string // in order: jackal's error keeps the attribute order
		typ   string
		want  []string
	}{{
		name:  "local subscriber",
		attrs: [][2]string{{"from", "nurse@capulet.lit/kitchen"}, {"to", "juliet@capulet.lit"}, {"id", "l1"}},
		typ:   "get",
		want:  []string{`<iq from='juliet@capulet.lit' to='nurse@capulet.lit/kitchen' type='result' id='l1'><query xmlns='jabber:iq:last' seconds='90'>asleep</query></iq>`},
	}, {
		name:  "remote subscriber, through s2s",
		attrs: [][2]string{{"from", "romeo@montague.lit/orchard"}, {"to", "juliet@capulet.lit"}, {"id", "r1"}},
		typ:   "get",
		want:  []string{`<iq from='juliet@capulet.lit' to='romeo@montague.lit/orchard' type='result' id='r1'><query xmlns='jabber:iq:last' seconds='90'>asleep</query></iq>`},
	}, {
		name:  "local stranger",
		attrs: [][2]string{{"from", "tybalt@capulet.lit/street"}, {"to", "juliet@capulet.lit"}, {"id", "s1"}},
		typ:   "get",
		want:  []string{`<iq from='juliet@capulet.lit' to='tybalt@capulet.lit/street' type='error' id='s1'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
	}, {
		name:  "the domain",
		attrs: [][2]string{{"from", "romeo@montague.lit/orchard"}, {"to", "capulet.lit"}, {"id", "d1"}},
		typ:   "get",
		want:  []string{`<iq from='capulet.lit' to='romeo@montague.lit/orchard' type='result' id='d1'><query xmlns='jabber:iq:last' seconds='90'/></iq>`},
	}, {
		name:  "a set is refused with bad-request",
		attrs: [][2]string{{"from", "nurse@capulet.lit/kitchen"}, {"to", "juliet@capulet.lit"}, {"id", "b1"}},
		typ:   "set",
		want:  []string{`<iq type='error' from='juliet@capulet.lit' to='nurse@capulet.lit/kitchen' id='b1'><query xmlns='jabber:iq:last'/><error code='400' type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := stravaganza.NewIQBuilder().WithAttribute("type", tt.typ).
				WithChild(stravaganza.NewBuilder("query").WithAttribute("xmlns", NamespaceLast).Build())
			for _, a := range tt.attrs {
				b.WithAttribute(a[0], a[1])
			}
			iq, err := b.BuildIQ()
			if err != nil {
				t.Fatal(err)
			}
			if !r.mod.MatchesNamespace(NamespaceLast, false) {
				t.Fatal("the module does not claim jabber:iq:last")
			}
			if err := r.mod.ProcessIQ(context.Background(), iq); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, r.rt.take()); diff != "" {
				t.Errorf("routed (-want +got):\n%s", diff)
			}
		})
	}
}
