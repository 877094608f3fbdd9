package core_test

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// refBucket is a reference token bucket in exact rationals, written from
// RULES C3 and CHOICES 19–20 rather than from limit.go: tokens refill
// continuously at Burst per Per up to Burst; a limit change at time t first
// refills at the old rate up to t, then caps the tokens at the new Burst.
type refBucket struct {
	tokens *big.Rat
	at     clock.Time
}

func (b *refBucket) settle(now clock.Time, l core.RateLimit) {
	if now <= b.at {
		return
	}
	add := new(big.Rat).SetFrac64(int64(now-b.at), int64(l.Per))
	add.Mul(add, new(big.Rat).SetInt64(int64(l.Burst)))
	b.tokens.Add(b.tokens, add)
	if c := new(big.Rat).SetInt64(int64(l.Burst)); b.tokens.Cmp(c) > 0 {
		b.tokens = c
	}
	b.at = now
}

// TestLimitChangeMatchesReference drives random probes and limit changes
// through every Go engine and checks each probe's fate (routed or refused)
// against refBucket, so that a limit applied backwards in time, or
// forwards, or a level lost in the rescaling, shows.
func TestLimitChangeMatchesReference(t *testing.T) {
	limits := []core.RateLimit{
		{Burst: 1, Per: time.Second}, {Burst: 1, Per: time.Hour}, {Burst: 3, Per: time.Minute},
		{Burst: 5, Per: 7 * time.Second}, {Burst: 2, Per: 3 * time.Millisecond}, {Burst: 10, Per: time.Minute},
	}
	steps := []time.Duration{0, 0, time.Millisecond, 700 * time.Millisecond, time.Second, 2 * time.Second, 13 * time.Second, time.Minute, time.Hour}
	sessions := []stanza.JID{stanza.MustParse("romeo@montague.com/balcony"), stanza.MustParse("romeo@montague.com/garden")}
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 17))
		first := limits[rng.IntN(len(limits))]
		cfg := core.Config{Served: []string{"montague.com"}, ProbeLimit: first}
		for name, m := range machines(t, cfg, true) {
			t.Run(fmt.Sprintf("seed %d/%s", seed, name), func(t *testing.T) {
				lm := m.(interface {
					SetProbeLimit(now clock.Time, l core.RateLimit) error
				})
				rng := rand.New(rand.NewPCG(seed, 17))
				rng.IntN(len(limits)) // the first limit, drawn above
				cur := first
				ref := map[string]*refBucket{}
				now := t0
				var routed, refused, changes int
				for i := range 300 {
					now = now.Add(steps[rng.IntN(len(steps))])
					if rng.IntN(8) == 0 {
						next := limits[rng.IntN(len(limits))]
						if err := lm.SetProbeLimit(now, next); err != nil {
							t.Fatal(err)
						}
						for _, b := range ref {
							b.settle(now, cur)
							if c := new(big.Rat).SetInt64(int64(next.Burst)); b.tokens.Cmp(c) > 0 {
								b.tokens = c
							}
						}
						cur = next
						changes++
						continue
					}
					s := sessions[rng.IntN(len(sessions))]
					b := ref[s.String()]
					if b == nil {
						b = &refBucket{tokens: new(big.Rat).SetInt64(int64(cur.Burst)), at: now}
						ref[s.String()] = b
					}
					b.settle(now, cur)
					want := core.RoutedProbe
					if b.tokens.Cmp(big.NewRat(1, 1)) >= 0 {
						b.tokens.Sub(b.tokens, big.NewRat(1, 1))
						routed++
					} else {
						want = core.ErrorReply
						refused++
					}
					out, err := m.Client(now, s, []byte(`<presence type='probe' to='juliet@capulet.com'/>`))
					if err != nil {
						t.Fatal(err)
					}
					if len(out) != 1 || out[0].Kind != want {
						t.Fatalf("step %d at %s, limit %+v, %s: got %s, reference says %v (%s tokens)", i, now, cur, s, out, want, b.tokens.FloatString(6))
					}
				}
				if routed == 0 || refused == 0 || changes == 0 {
					t.Errorf("a run with %d routed, %d refused and %d limit changes does not test much", routed, refused, changes)
				}
			})
		}
	}
}
