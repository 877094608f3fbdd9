package lsjackal

import (
	"context"
	"errors"
	"testing"

	"github.com/go-kit/log"
	"github.com/google/go-cmp/cmp"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	blocklistmodel "github.com/ortuman/jackal/pkg/model/blocklist"
	rostermodel "github.com/ortuman/jackal/pkg/model/roster"
)

// fakeStorage holds rosters and block lists by username, as jackal's
// repository would, and can fail every look-up.
type fakeStorage struct {
	roster map[string][]*rostermodel.Item
	blocks map[string][]*blocklistmodel.Item
	err    error
}

func (f *fakeStorage) FetchRosterItem(_ context.Context, username, jid string) (*rostermodel.Item, error) {
	for _, ri := range f.roster[username] {
		if ri.Jid == jid {
			return ri, f.err
		}
	}
	return nil, f.err
}

func (f *fakeStorage) FetchRosterItems(_ context.Context, username string) ([]*rostermodel.Item, error) {
	return f.roster[username], f.err
}

func (f *fakeStorage) FetchBlockListItems(_ context.Context, username string) ([]*blocklistmodel.Item, error) {
	return f.blocks[username], f.err
}

func newFake() *fakeStorage {
	return &fakeStorage{
		roster: map[string][]*rostermodel.Item{
			"juliet": {
				{Username: "juliet", Jid: "romeo@montague.lit", Subscription: "from"},
				{Username: "juliet", Jid: "nurse@capulet.lit", Subscription: "both"},
				{Username: "juliet", Jid: "tybalt@capulet.lit", Subscription: "to"},
				{Username: "juliet", Jid: "paris@verona.lit", Subscription: "both"},
				{Username: "juliet", Jid: "friar@verona.lit", Subscription: "bogus"},
			},
		},
		blocks: map[string][]*blocklistmodel.Item{
			"juliet": {
				{Username: "juliet", Jid: "paris@verona.lit"},
				{Username: "juliet", Jid: "montague.lit/spy"},
				{Username: "juliet", Jid: "mercutio@verona.lit/street"},
				{Username: "juliet", Jid: "rosaline.lit"},
				{Username: "juliet", Jid: "not a jid@@"},
			},
		},
	}
}

func TestAuthorizerProbeFacts(t *testing.T) {
	juliet := stanza.MustParse("juliet@capulet.lit")
	type facts struct {
		Blocked bool
		Sub     core.Subscription
	}
	for _, tc := range []struct {
		prober string
		want   facts
	}{
		{"romeo@montague.lit/balcony", facts{Sub: core.SubFrom}},
		{"Romeo@Montague.lit", facts{Sub: core.SubFrom}},
		{"nurse@capulet.lit/kitchen", facts{Sub: core.SubBoth}},
		{"tybalt@capulet.lit", facts{Sub: core.SubTo}},
		{"friar@verona.lit", facts{Sub: core.SubNone}},
		{"benvolio@montague.lit", facts{Sub: core.SubNone}},
		// bare item: the bare JID and every resource
		{"paris@verona.lit/church", facts{Blocked: true}},
		// domain/resource item: that JID only
		{"montague.lit/spy", facts{Blocked: true}},
		{"romeo@montague.lit/spy", facts{Sub: core.SubFrom}},
		// full item: that full JID only
		{"mercutio@verona.lit/street", facts{Blocked: true}},
		{"mercutio@verona.lit/home", facts{}},
		// domain item: everyone there
		{"anyone@rosaline.lit/x", facts{Blocked: true}},
		{"rosaline.lit", facts{Blocked: true}},
	} {
		t.Run(tc.prober, func(t *testing.T) {
			a := NewAuthorizer(newFake(), log.NewNopLogger())
			b, sub, hidden := a.ProbeFacts(juliet, stanza.MustParse(tc.prober))
			if hidden {
				t.Error("hidden: jackal has no opt-out")
			}
			if diff := cmp.Diff(tc.want, facts{b, sub}); diff != "" {
				t.Errorf("ProbeFacts(%s) (-want +got):\n%s", tc.prober, diff)
			}
		})
	}
}

func TestAuthorizerFailsClosed(t *testing.T) {
	f := newFake()
	f.err = errors.New("disk on fire")
	a := NewAuthorizer(f, log.NewNopLogger())
	juliet, romeo := stanza.MustParse("juliet@capulet.lit"), stanza.MustParse("romeo@montague.lit")
	if b, sub, _ := a.ProbeFacts(juliet, romeo); !b || sub != core.SubNone {
		t.Errorf("on a storage error: blocked %v, subscription %v; want blocked, none", b, sub)
	}
	var n int
	a.Subscribers(juliet, func(stanza.JID) bool { n++; return true })
	if n != 0 {
		t.Errorf("on a storage error Subscribers yielded %d contacts", n)
	}
}

func TestAuthorizerSubscribers(t *testing.T) {
	a := NewAuthorizer(newFake(), log.NewNopLogger())
	var got []string
	a.Subscribers(stanza.MustParse("juliet@capulet.lit"), func(c stanza.JID) bool {
		got = append(got, c.String())
		return true
	})
	// from and both, minus paris (blocked); storage order kept.
	want := []string{"romeo@montague.lit", "nurse@capulet.lit"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Subscribers (-want +got):\n%s", diff)
	}
	got = nil
	a.Subscribers(stanza.MustParse("capulet.lit"), func(c stanza.JID) bool {
		got = append(got, c.String())
		return true
	})
	if len(got) != 0 {
		t.Errorf("a domain has no roster in jackal, got subscribers %v", got)
	}
}
