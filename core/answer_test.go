package core_test

// Tests of the probe-answer fast paths: the one-call ProbeAuthorizer and
// its fallback, which must answer alike.

import (
	"path/filepath"
	"testing"

	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/engine"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// threeCalls hides MemoryAuth's ProbeFacts, so that the machine falls back
// to Blocks, Subscription and Hidden, and counts those calls.
type threeCalls struct {
	a                    *core.MemoryAuth
	blocks, subs, hidden int
}

func (c *threeCalls) Subscription(owner, contact stanza.JID) core.Subscription {
	c.subs++
	return c.a.Subscription(owner, contact)
}

func (c *threeCalls) Blocks(owner, jid stanza.JID) bool {
	c.blocks++
	return c.a.Blocks(owner, jid)
}

func (c *threeCalls) Hidden(owner stanza.JID) bool {
	c.hidden++
	return c.a.Hidden(owner)
}

func (c *threeCalls) SetSubscription(owner, contact stanza.JID, sub core.Subscription) {
	c.a.SetSubscription(owner, contact, sub)
}
func (c *threeCalls) SetBlocked(owner, jid stanza.JID, blocked bool) {
	c.a.SetBlocked(owner, jid, blocked)
}
func (c *threeCalls) SetHidden(owner stanza.JID, hidden bool) { c.a.SetHidden(owner, hidden) }

// Subscribers lets up and down announce (RULES S3); it asks nothing the
// counters track.
func (c *threeCalls) Subscribers(owner stanza.JID, yield func(stanza.JID) bool) {
	c.a.Subscribers(owner, yield)
}

var _ core.ProbeAuthorizer = (*core.MemoryAuth)(nil)

// TestProbeFactsMatchesThreeCalls checks MemoryAuth.ProbeFacts against
// Blocks, Subscription and Hidden over every combination of facts the
// probe rules depend on.
func TestProbeFactsMatchesThreeCalls(t *testing.T) {
	j := func(s string) stanza.JID {
		t.Helper()
		v, err := stanza.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	owner := j("romeo@montague.com")
	probers := []stanza.JID{
		j("juliet@capulet.com/balcony"), j("juliet@capulet.com"), j("capulet.com"),
		j("capulet.com/gate"), j("nurse@capulet.com/kitchen"), j("romeo@montague.com/other"),
	}
	items := []stanza.JID{{}, j("juliet@capulet.com/balcony"), j("juliet@capulet.com"), j("capulet.com"), j("capulet.com/gate")}
	for _, item := range items {
		for sub := core.SubNone; sub <= core.SubBoth; sub++ {
			for _, hide := range []bool{false, true} {
				a := core.NewMemoryAuth()
				if !item.IsZero() {
					a.SetBlocked(owner, item, true)
				}
				a.SetSubscription(owner, j("juliet@capulet.com"), sub)
				a.SetSubscription(owner, j("capulet.com"), sub)
				a.SetHidden(owner, hide)
				for _, p := range probers {
					blocked, gotSub, hidden := a.ProbeFacts(owner, p)
					if blocked != a.Blocks(owner, p) || hidden != a.Hidden(owner) ||
						(p.Bare() != owner && gotSub != a.Subscription(owner, p.Bare())) {
						t.Errorf("item %q, sub %v, hidden %v, prober %q: ProbeFacts = %v, %v, %v; want %v, %v, %v",
							item, sub, hide, p, blocked, gotSub, hidden, a.Blocks(owner, p), a.Subscription(owner, p.Bare()), a.Hidden(owner))
					}
				}
			}
		}
	}
}

// TestThreeCallFallbackCorpus runs the scenario corpus on a machine whose
// Authorizer lacks ProbeFacts, so that the fallback path meets every
// expectation too.
func TestThreeCallFallbackCorpus(t *testing.T) {
	paths, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatal("no scenarios", err)
	}
	var calls *threeCalls
	factory := engine.NativeWith(func(served []string) core.Config {
		calls = &threeCalls{a: core.NewMemoryAuth()}
		return core.Config{Served: served, Auth: calls}
	})
	var total threeCalls
	for _, p := range paths {
		r := scenario.RunFile(factory, p)
		if !r.Passed() {
			t.Error(r.String())
		}
		if calls != nil {
			total.blocks += calls.blocks
			total.subs += calls.subs
			total.hidden += calls.hidden
		}
	}
	if total.blocks == 0 || total.subs == 0 || total.hidden == 0 {
		t.Errorf("the corpus made %d Blocks, %d Subscription and %d Hidden calls; want some of each", total.blocks, total.subs, total.hidden)
	}
}
