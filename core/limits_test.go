package core_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// limited is what Machine and Sharded share for these tests.
type limited interface {
	stepper
	AppendState(dst []byte) []byte
	Snapshot(dst []byte) []byte
	SetRoster(owner, contact stanza.JID, sub core.Subscription) error
}

// step is one input: event client, server, close, up or down.
type step struct{ event, arg, xml string }

func (s step) run(m limited, now clock.Time) ([]core.Output, error) {
	var j stanza.JID
	if s.arg != "" {
		j = stanza.MustParse(s.arg)
	}
	switch s.event {
	case "client":
		return m.Client(now, j, []byte(s.xml))
	case "server":
		return m.Server(now, []byte(s.xml))
	case "close":
		return m.Close(now, j)
	case "up":
		return m.Up(now, j)
	default:
		return m.Down(now, j)
	}
}

// machines returns a Machine and Sharded machines (one and four shards)
// made with cfg; entity caps count per shard, so capped tests that expect
// the exact behaviour of one Machine use shards=false.
func machines(t *testing.T, cfg core.Config, shards bool) map[string]limited {
	t.Helper()
	m, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]limited{"Machine": m}
	ns := []int{1}
	if shards {
		ns = append(ns, 4)
	}
	for _, n := range ns {
		s, err := core.NewSharded(cfg, n)
		if err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("Sharded(%d)", n)] = s
	}
	return out
}

// padded returns a client available presence of exactly n bytes.
func padded(n int) string {
	const head, tail = `<presence><status>`, `</status></presence>`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func nested(depth int) string {
	return "<presence>" + strings.Repeat("<a>", depth-1) + strings.Repeat("</a>", depth-1) + "</presence>"
}

func withAttrs(n int, onChild bool) string {
	var a strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&a, " a%d='%d'", i, i)
	}
	if onChild {
		return "<presence><c xmlns='urn:x'" + a.String() + "/></presence>"
	}
	return "<presence" + a.String() + "/>"
}

// serverProbe returns a server probe of exactly n bytes.
func serverProbe(n int) string {
	const head, tail = `<presence from='juliet@capulet.com/`, `' to='romeo@montague.com' type='probe'/>`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// TestLimits checks each limit on every engine: the input at the limit is
// accepted, the one past it refused with ErrBadInput and the limit's own
// error, with no output and no change of state.
func TestLimits(t *testing.T) {
	const romeo = "romeo@montague.com/balcony"
	serve := []string{"montague.com"}
	tests := []struct {
		name   string
		cfg    core.Config
		shards bool
		setup  []step // accepted, in order
		ok     *step  // accepted at the limit (run after setup, before refused)
		bad    step   // refused
		want   error
	}{
		{
			name: "size, client", cfg: core.Config{Served: serve, Limits: stanza.Limits{MaxBytes: 100}}, shards: true,
			ok:  &step{"client", romeo, padded(100)},
			bad: step{"client", romeo, padded(101)}, want: stanza.ErrTooLarge,
		},
		{
			name: "size, server", cfg: core.Config{Served: serve, Limits: stanza.Limits{MaxBytes: 80}}, shards: true,
			ok:  &step{"server", "", serverProbe(80)},
			bad: step{"server", "", serverProbe(81)}, want: stanza.ErrTooLarge,
		},
		{
			name: "size, default 64 KiB", cfg: core.Config{Served: serve}, shards: true,
			ok:  &step{"client", romeo, padded(64 << 10)},
			bad: step{"client", romeo, padded(64<<10 + 1)}, want: stanza.ErrTooLarge,
		},
		{
			name: "depth", cfg: core.Config{Served: serve, Limits: stanza.Limits{MaxDepth: 3}}, shards: true,
			ok:  &step{"client", romeo, nested(3)},
			bad: step{"client", romeo, nested(4)}, want: stanza.ErrTooComplex,
		},
		{
			name: "depth, default 32", cfg: core.Config{Served: serve}, shards: true,
			ok:  &step{"client", romeo, nested(32)},
			bad: step{"client", romeo, nested(33)}, want: stanza.ErrTooComplex,
		},
		{
			name: "attributes on the root", cfg: core.Config{Served: serve, Limits: stanza.Limits{MaxAttrs: 3}}, shards: true,
			ok:  &step{"client", romeo, withAttrs(3, false)},
			bad: step{"client", romeo, withAttrs(4, false)}, want: stanza.ErrTooComplex,
		},
		{
			name: "attributes on a child (declarations count)", cfg: core.Config{Served: serve, Limits: stanza.Limits{MaxAttrs: 3}}, shards: true,
			ok:  &step{"client", romeo, withAttrs(2, true)},
			bad: step{"client", romeo, withAttrs(3, true)}, want: stanza.ErrTooComplex,
		},
		{
			name: "namespace declarations in scope", cfg: core.Config{Served: serve, Limits: stanza.Limits{MaxAttrs: 3}}, shards: true,
			ok:  &step{"client", romeo, `<presence xmlns:a='urn:a' xmlns:b='urn:b'><c xmlns='urn:x'/><d xmlns='urn:y'/></presence>`},
			bad: step{"client", romeo, `<presence xmlns:a='urn:a' xmlns:b='urn:b'><c xmlns='urn:x'><d xmlns='urn:y'/></c></presence>`}, want: stanza.ErrTooComplex,
		},
		{
			name: "attributes, default 64", cfg: core.Config{Served: serve}, shards: true,
			ok:  &step{"client", romeo, withAttrs(64, false)},
			bad: step{"client", romeo, withAttrs(65, false)}, want: stanza.ErrTooComplex,
		},
		{
			name: "resources per user", cfg: core.Config{Served: serve, MaxResources: 2}, shards: true,
			setup: []step{{"client", "romeo@montague.com/1", `<presence/>`}},
			ok:    &step{"client", "romeo@montague.com/2", `<presence/>`},
			bad:   step{"client", "romeo@montague.com/3", `<presence/>`}, want: core.ErrTooManyResources,
		},
		{
			name: "resources per user, an update is not a new one", cfg: core.Config{Served: serve, MaxResources: 2}, shards: true,
			setup: []step{{"client", "romeo@montague.com/1", `<presence/>`}, {"client", "romeo@montague.com/2", `<presence/>`}},
			ok:    &step{"client", "romeo@montague.com/2", `<presence><show>dnd</show></presence>`},
			bad:   step{"client", "romeo@montague.com/3", `<presence><show>dnd</show></presence>`}, want: core.ErrTooManyResources,
		},
		{
			name: "resources per user, default 64", cfg: core.Config{Served: serve}, shards: true,
			setup: func() []step {
				var s []step
				for i := 1; i < 64; i++ {
					s = append(s, step{"client", fmt.Sprintf("romeo@montague.com/%d", i), `<presence/>`})
				}
				return s
			}(),
			ok:  &step{"client", "romeo@montague.com/64", `<presence/>`},
			bad: step{"client", "romeo@montague.com/65", `<presence/>`}, want: core.ErrTooManyResources,
		},
		{
			name: "entities, a new user online", cfg: core.Config{Served: serve, MaxEntities: 2},
			setup: []step{{"client", "a@montague.com/1", `<presence/>`}},
			ok:    &step{"client", "b@montague.com/1", `<presence/>`},
			bad:   step{"client", "c@montague.com/1", `<presence/>`}, want: core.ErrTooManyEntities,
		},
		{
			name: "entities, a new user offline", cfg: core.Config{Served: serve, MaxEntities: 2},
			setup: []step{{"client", "a@montague.com/1", `<presence/>`}},
			ok:    &step{"client", "b@montague.com/1", `<presence type='unavailable'/>`},
			bad:   step{"client", "c@montague.com/1", `<presence type='unavailable'><status>bye</status></presence>`}, want: core.ErrTooManyEntities,
		},
		{
			name: "entities, a known user is not a new one", cfg: core.Config{Served: serve, MaxEntities: 2},
			setup: []step{{"client", "a@montague.com/1", `<presence/>`}, {"up", "montague.com", ""}},
			ok:    &step{"client", "a@montague.com/2", `<presence/>`},
			bad:   step{"client", "b@montague.com/1", `<presence/>`}, want: core.ErrTooManyEntities,
		},
		{
			name: "entities, up of a new component", cfg: core.Config{Served: serve, MaxEntities: 2},
			setup: []step{{"client", "a@montague.com/1", `<presence/>`}, {"up", "montague.com", ""}},
			ok:    &step{"down", "montague.com", ""},
			bad:   step{"up", "chat.montague.com", ""}, want: core.ErrTooManyEntities,
		},
		{
			name: "entities, down of a new component", cfg: core.Config{Served: serve, MaxEntities: 1},
			setup: []step{{"up", "montague.com", ""}},
			ok:    &step{"up", "montague.com", ""},
			bad:   step{"down", "chat.montague.com", ""}, want: core.ErrTooManyEntities,
		},
	}
	for _, tt := range tests {
		for name, m := range machines(t, tt.cfg, tt.shards) {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				now := t0
				for i, s := range tt.setup {
					if _, err := s.run(m, now); err != nil {
						t.Fatalf("setup step %d: %v", i, err)
					}
				}
				if tt.ok != nil {
					if _, err := tt.ok.run(m, now); err != nil {
						t.Fatalf("at the limit: %v", err)
					}
				}
				before := m.AppendState(nil)
				snap := m.Snapshot(nil)
				out, err := tt.bad.run(m, now+1e9)
				if !errors.Is(err, core.ErrBadInput) || !errors.Is(err, tt.want) {
					t.Fatalf("past the limit: err = %v, want ErrBadInput and %v", err, tt.want)
				}
				if len(out) != 0 {
					t.Errorf("past the limit: emitted %d stanzas", len(out))
				}
				if !bytes.Equal(before, m.AppendState(nil)) || !bytes.Equal(snap, m.Snapshot(nil)) {
					t.Error("past the limit: state changed")
				}
			})
		}
	}
}

// TestEntityCapNeverEvicts fills a machine to its entity cap and checks
// that everything tracked before stays answerable: the policy is to refuse
// the newcomer, never to evict.
func TestEntityCapNeverEvicts(t *testing.T) {
	for name, m := range machines(t, core.Config{Served: []string{"montague.com"}, MaxEntities: 5}, false) {
		t.Run(name, func(t *testing.T) {
			refused := 0
			for i := 0; i < 20; i++ {
				u := fmt.Sprintf("user%d@montague.com", i)
				m.SetRoster(stanza.MustParse(u), stanza.MustParse("juliet@capulet.com"), core.SubBoth)
				_, err := m.Client(t0+clock.Time(i)*1e9, stanza.MustParse(u+"/r"), []byte(`<presence type='unavailable'><status>here</status></presence>`))
				if i < 5 && err != nil {
					t.Fatalf("user %d: %v", i, err)
				}
				if i >= 5 {
					if !errors.Is(err, core.ErrTooManyEntities) {
						t.Fatalf("user %d: err = %v, want ErrTooManyEntities", i, err)
					}
					refused++
				}
			}
			for i := 0; i < 5; i++ {
				out, err := m.Server(t0+1e12, []byte(fmt.Sprintf(`<presence from='juliet@capulet.com/x' to='user%d@montague.com' type='probe'/>`, i)))
				if err != nil || len(out) != 1 || !bytes.Contains(out[0].Stanza, []byte("<status>here</status>")) {
					t.Errorf("user %d after %d refusals: %s %v; evicted?", i, refused, out, err)
				}
			}
		})
	}
}

// TestShardedEntityCapAllOrNothing: with four shards the cap counts per
// shard; once the last shard is full, a new component (which every shard
// must learn) is refused without the shards before it learning it.
func TestShardedEntityCapAllOrNothing(t *testing.T) {
	s, err := core.NewSharded(core.Config{Served: []string{"montague.com"}, MaxEntities: 2}, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Fill shard 3 only.
	filled := 0
	for i := 0; filled < 2; i++ {
		u := fmt.Sprintf("u%d@montague.com", i)
		if core.ShardOf(u, 4) != 3 {
			continue
		}
		if _, err := s.Client(t0, stanza.MustParse(u+"/r"), []byte(`<presence/>`)); err != nil {
			t.Fatal(err)
		}
		filled++
	}
	before := s.AppendState(nil)
	snap := s.Snapshot(nil)
	out, err := s.Up(t0, stanza.MustParse("chat.montague.com"))
	if !errors.Is(err, core.ErrTooManyEntities) || len(out) != 0 {
		t.Fatalf("up with a full shard: %v %v, want ErrTooManyEntities", out, err)
	}
	if !bytes.Equal(before, s.AppendState(nil)) || !bytes.Equal(snap, s.Snapshot(nil)) {
		t.Fatal("a refused up changed some shards")
	}
}

// TestProbeRateLimit checks RULES C3 on every engine: within the limit
// probes are answered; past it the session gets a policy-violation error
// (the limit's answer is a stanza, not a refused input), nothing is
// answered or routed, no token is spent and no durable state changes; the
// bucket refills with time. The default is 10 per minute.
func TestProbeRateLimit(t *testing.T) {
	for _, tc := range []struct {
		limit core.RateLimit
		burst int
		per   time.Duration
	}{
		{core.RateLimit{Burst: 2, Per: time.Minute}, 2, time.Minute},
		{core.RateLimit{}, 10, time.Minute}, // the default
	} {
		cfg := core.Config{Served: []string{"montague.com"}, ProbeLimit: tc.limit}
		for name, m := range machines(t, cfg, true) {
			t.Run(fmt.Sprintf("%d per %v/%s", tc.burst, tc.per, name), func(t *testing.T) {
				session := stanza.MustParse("romeo@montague.com/balcony")
				probe := func(now clock.Time, to string) []core.Output {
					out, err := m.Client(now, session, []byte(`<presence type='probe' id='q' to='`+to+`'/>`))
					if err != nil {
						t.Fatal(err)
					}
					return out
				}
				for i := 0; i < tc.burst; i++ {
					if out := probe(t0, "juliet@capulet.com"); len(out) != 1 || out[0].Kind != core.RoutedProbe {
						t.Fatalf("probe %d within the limit: %s", i, out)
					}
				}
				snap := m.Snapshot(nil)
				out := probe(t0, "juliet@capulet.com")
				want := `<presence from='juliet@capulet.com' to='romeo@montague.com/balcony' type='error' id='q'><error type='wait'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`
				if len(out) != 1 || out[0].Kind != core.ErrorReply || string(out[0].Stanza) != want {
					t.Fatalf("probe past the limit: %s, want only %s", out, want)
				}
				if out := probe(t0, "nurse@montague.com"); len(out) != 1 || out[0].Kind != core.ErrorReply {
					t.Fatalf("a local probe past the limit must not be answered: %s", out)
				}
				if !bytes.Equal(snap, m.Snapshot(nil)) {
					t.Error("a refused probe changed durable state")
				}
				// One token comes back after Per/Burst.
				later := t0 + clock.Time(tc.per)/clock.Time(tc.burst)
				if out := probe(later, "juliet@capulet.com"); len(out) != 1 || out[0].Kind != core.RoutedProbe {
					t.Fatalf("after a refill: %s", out)
				}
				if out := probe(later, "juliet@capulet.com"); len(out) != 1 || out[0].Kind != core.ErrorReply {
					t.Fatalf("the refill gave more than one token: %s", out)
				}
			})
		}
	}
}
