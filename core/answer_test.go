package core_test

// Tests of the probe-answer fast paths: the one-call ProbeAuthorizer and
// its fallback, which must answer alike.

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
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
	factory := func(served []string) (scenario.Engine, error) {
		calls = &threeCalls{a: core.NewMemoryAuth()}
		m, err := core.New(core.Config{Served: served, Auth: calls})
		if err != nil {
			return nil, err
		}
		return &plainEngine{m: m}, nil
	}
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

// plainEngine adapts a Machine to scenario.Engine, as internal/engine does.
type plainEngine struct{ m *core.Machine }

func (e *plainEngine) Roster(owner, contact, sub string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	c, err := stanza.Parse(contact)
	if err != nil {
		return err
	}
	s, ok := core.ParseSubscription(sub)
	if !ok {
		return &core.InputError{Event: "roster", Err: core.ErrConfig}
	}
	return e.m.SetRoster(o, c, s)
}

func (e *plainEngine) Block(owner, jid string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	j, err := stanza.Parse(jid)
	if err != nil {
		return err
	}
	return e.m.SetBlock(o, j, true)
}

func (e *plainEngine) Hide(owner string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	return e.m.SetHidden(o, true)
}

func (e *plainEngine) Limit(burst int, per time.Duration) error {
	return e.m.SetProbeLimit(core.RateLimit{Burst: burst, Per: per})
}

func copies(out []core.Output, err error) ([][]byte, error) {
	if err != nil {
		return nil, err
	}
	res := make([][]byte, len(out))
	for i, o := range out {
		res[i] = bytes.Clone(o.Stanza)
	}
	return res, nil
}

func (e *plainEngine) withJID(event, s string, call func(stanza.JID) ([]core.Output, error)) ([][]byte, error) {
	j, err := stanza.Parse(s)
	if err != nil {
		return nil, &core.InputError{Event: event, Err: err}
	}
	return copies(call(j))
}

func (e *plainEngine) Client(now clock.Time, s string, xml []byte) ([][]byte, error) {
	return e.withJID("client", s, func(j stanza.JID) ([]core.Output, error) { return e.m.Client(now, j, xml) })
}

func (e *plainEngine) Server(now clock.Time, xml []byte) ([][]byte, error) {
	return copies(e.m.Server(now, xml))
}

func (e *plainEngine) Close(now clock.Time, s string) ([][]byte, error) {
	return e.withJID("close", s, func(j stanza.JID) ([]core.Output, error) { return e.m.Close(now, j) })
}

func (e *plainEngine) Up(now clock.Time, s string) ([][]byte, error) {
	return e.withJID("up", s, func(j stanza.JID) ([]core.Output, error) { return e.m.Up(now, j) })
}

func (e *plainEngine) Down(now clock.Time, s string) ([][]byte, error) {
	return e.withJID("down", s, func(j stanza.JID) ([]core.Output, error) { return e.m.Down(now, j) })
}

func (e *plainEngine) State() ([]byte, error) { return e.m.AppendState(nil), nil }
func (e *plainEngine) Release() error         { return nil }
