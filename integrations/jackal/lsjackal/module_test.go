package lsjackal

import (
	"bytes"
	"testing"

	"github.com/jackal-xmpp/stravaganza"
	"github.com/jackal-xmpp/stravaganza/jid"
	xmlparser "github.com/jackal-xmpp/stravaganza/parser"
)

// TestClientStanza pins how the glue reads jackal's client presence: the
// to='own bare JID' jackal adds to broadcasts goes, anything else stays.
// (jackal's stanzas always have a to: stravaganza refuses to build one
// without.)
func TestClientStanza(t *testing.T) {
	session, err := jid.NewWithString("juliet@capulet.lit/balcony", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		to, typ string
		wantTo  bool
	}{
		{"available broadcast", "juliet@capulet.lit", "", false},
		{"unavailable broadcast", "juliet@capulet.lit", "unavailable", false},
		{"directed to a contact", "romeo@montague.lit", "", true},
		{"directed to own full JID", "juliet@capulet.lit/chamber", "", true},
		{"probe of own bare JID", "juliet@capulet.lit", "probe", true},
		{"subscribe", "juliet@capulet.lit", "subscribe", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := stravaganza.NewPresenceBuilder().WithAttribute(stravaganza.From, session.String())
			if tc.to != "" {
				b.WithAttribute(stravaganza.To, tc.to)
			}
			if tc.typ != "" {
				b.WithAttribute(stravaganza.Type, tc.typ)
			}
			b.WithChild(stravaganza.NewBuilder("status").WithText("hi").Build())
			pr, err := b.BuildPresence()
			if err != nil {
				t.Fatal(err)
			}
			el, err := xmlparser.New(bytes.NewReader(clientStanza(pr, session)), xmlparser.DefaultMode, 0).Parse()
			if err != nil {
				t.Fatalf("the serialised presence does not parse back: %v", err)
			}
			gotTo := el.Attribute(stravaganza.To) != ""
			if gotTo != tc.wantTo {
				t.Errorf("to kept: %v, want %v (%s)", gotTo, tc.wantTo, clientStanza(pr, session))
			}
			if el.Child("status") == nil || el.Attribute(stravaganza.Type) != tc.typ {
				t.Errorf("children or type lost: %s", clientStanza(pr, session))
			}
		})
	}
}
