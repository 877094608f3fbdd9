package core_test

// Tests of RULES S3 beyond the scenarios: the SubscriberLister contract,
// the order of the announcements, Sharded emitting them once, and the
// typed refusal when the Authorizer cannot list subscribers.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

var _ core.SubscriberLister = (*core.MemoryAuth)(nil)

// subscribers collects what a lister yields for owner.
func subscribers(l core.SubscriberLister, owner stanza.JID) []string {
	var got []string
	l.Subscribers(owner, func(c stanza.JID) bool {
		got = append(got, c.String())
		return true
	})
	return got
}

// TestSubscribersMatchesFacts checks MemoryAuth.Subscribers against its
// definition, Subscription visible and Blocks false, for every block item
// form (XEP-0191 §3.4) and subscription, and that it yields in ascending
// order.
func TestSubscribersMatchesFacts(t *testing.T) {
	owner := stanza.MustParse("montague.com")
	contacts := []stanza.JID{
		stanza.MustParse("juliet@capulet.com"), stanza.MustParse("capulet.com"),
		stanza.MustParse("nurse@capulet.com"), stanza.MustParse("verona.lit"),
		stanza.MustParse("école.example"),
	}
	items := []stanza.JID{{}, stanza.MustParse("juliet@capulet.com/balcony"), stanza.MustParse("juliet@capulet.com"),
		stanza.MustParse("capulet.com"), stanza.MustParse("capulet.com/gate"), stanza.MustParse("verona.lit")}
	for _, item := range items {
		for sub := core.SubNone; sub <= core.SubBoth; sub++ {
			a := core.NewMemoryAuth()
			if !item.IsZero() {
				a.SetBlocked(owner, item, true)
			}
			// Every contact but one with sub, that one with from, so
			// that each list mixes visible and invisible items.
			for i, c := range contacts {
				if i == int(sub)%len(contacts) {
					a.SetSubscription(owner, c, core.SubFrom)
				} else {
					a.SetSubscription(owner, c, sub)
				}
			}
			var want []string
			for _, c := range contacts {
				if a.Subscription(owner, c).Visible() && !a.Blocks(owner, c) {
					want = append(want, c.String())
				}
			}
			slices.Sort(want)
			if diff := cmp.Diff(want, subscribers(a, owner)); diff != "" {
				t.Errorf("item %q, sub %v: Subscribers (-want +got):\n%s", item, sub, diff)
			}
		}
	}
}

// TestSubscribersStops checks that Subscribers stops when yield returns
// false, and that an owner with no facts has no subscribers.
func TestSubscribersStops(t *testing.T) {
	a := core.NewMemoryAuth()
	owner := stanza.MustParse("montague.com")
	for i := range 5 {
		a.SetSubscription(owner, stanza.MustParse(fmt.Sprintf("s%d.example", i)), core.SubBoth)
	}
	n := 0
	a.Subscribers(owner, func(stanza.JID) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("yield ran %d times after returning false at 2", n)
	}
	if got := subscribers(a, stanza.MustParse("verona.lit")); got != nil {
		t.Errorf("owner without facts: %q, want none", got)
	}
}

// TestAnnouncementOrder checks that Up emits one Reply per subscriber in
// the lister's order, on Machine and Sharded alike, and that Sharded, which
// tells every shard, emits each once.
func TestAnnouncementOrder(t *testing.T) {
	cfg := core.Config{Served: []string{"montague.com"}}
	d := stanza.MustParse("montague.com")
	var want []string
	for name, m := range machines(t, cfg, true) {
		t.Run(name, func(t *testing.T) {
			want = want[:0]
			// Inserted in reverse, so that insertion order and sorted
			// order differ.
			for i := 40; i > 0; i-- {
				c := fmt.Sprintf("u%02d@buddies.example", i)
				if err := m.SetRoster(d, stanza.MustParse(c), core.SubFrom); err != nil {
					t.Fatal(err)
				}
				want = append(want, c)
			}
			slices.Sort(want)
			out, err := m.Up(t0, d)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range out {
				if o.Kind != core.Reply {
					t.Errorf("kind %v, want reply", o.Kind)
				}
				wantStanza := "<presence from='montague.com' to='" + string(o.To) + "'><delay xmlns='urn:xmpp:delay' from='montague.com' stamp='2000-01-01T00:00:00Z'/></presence>"
				if string(o.Stanza) != wantStanza {
					t.Errorf("stanza %s, want %s", o.Stanza, wantStanza)
				}
				got = append(got, string(o.To))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("announcements (-want +got):\n%s", diff)
			}
		})
	}
}

// listed is an Authorizer whose Subscribers yields a fixed list, in the
// host's own order.
type listed struct {
	*core.MemoryAuth
	list []stanza.JID
}

func (l listed) Subscribers(_ stanza.JID, yield func(stanza.JID) bool) {
	for _, c := range l.list {
		if !yield(c) {
			return
		}
	}
}

// TestHostListerOrder checks that the machine keeps a host lister's order
// rather than imposing its own, and addresses a full JID a careless host
// yields to its bare JID.
func TestHostListerOrder(t *testing.T) {
	auth := listed{core.NewMemoryAuth(), []stanza.JID{
		stanza.MustParse("verona.lit"), stanza.MustParse("capulet.com"), stanza.MustParse("juliet@capulet.com/balcony"),
	}}
	m, err := core.New(core.Config{Served: []string{"montague.com"}, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Down(t0, stanza.MustParse("chat.montague.com"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range out {
		got = append(got, string(o.To))
	}
	if diff := cmp.Diff([]string{"verona.lit", "capulet.com", "juliet@capulet.com"}, got); diff != "" {
		t.Errorf("announcements (-want +got):\n%s", diff)
	}
}

// probeOnly is an Authorizer that cannot list subscribers.
type probeOnly struct{ *core.MemoryAuth }

func (probeOnly) Subscribers() {} // not SubscriberLister's method: hides MemoryAuth's

// TestUpNeedsSubscriberLister checks the typed refusal: Up and Down on a
// machine whose Authorizer cannot list subscribers return an error
// matching ErrNoSubscriberLister and ErrBadInput, emit nothing and change
// nothing, on Machine and Sharded, for a new domain and a known one.
func TestUpNeedsSubscriberLister(t *testing.T) {
	cfg := core.Config{Served: []string{"montague.com"}, Auth: probeOnly{core.NewMemoryAuth()}}
	if _, ok := cfg.Auth.(core.SubscriberLister); ok {
		t.Fatal("probeOnly lists subscribers; the test would prove nothing")
	}
	for name, m := range machines(t, cfg, true) {
		t.Run(name, func(t *testing.T) {
			// A domain known from a snapshot taken elsewhere: the
			// restored machine has it up.
			src, err := core.New(core.Config{Served: []string{"montague.com"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := src.Down(t0, stanza.MustParse("chat.montague.com")); err != nil {
				t.Fatal(err)
			}
			if err := m.(interface{ Restore([]byte) error }).Restore(src.Snapshot(nil)); err != nil {
				t.Fatal(err)
			}
			for _, s := range []step{{"up", "montague.com", ""}, {"down", "montague.com", ""}, {"up", "chat.montague.com", ""}, {"down", "chat.montague.com", ""}} {
				before := m.AppendState(nil)
				out, err := s.run(m, t0+60e9)
				if !errors.Is(err, core.ErrNoSubscriberLister) || !errors.Is(err, core.ErrBadInput) || out != nil {
					t.Errorf("%s %s: %v, %v; want ErrNoSubscriberLister and no output", s.event, s.arg, out, err)
				}
				if !bytes.Equal(before, m.AppendState(nil)) {
					t.Errorf("%s %s: a refused call changed the state", s.event, s.arg)
				}
			}
			// Probes need no list, and still work.
			if _, err := m.Server(t0, []byte(`<presence from='capulet.com' to='montague.com' type='probe'/>`)); err != nil {
				t.Errorf("probe: %v", err)
			}
		})
	}
}
