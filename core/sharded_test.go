package core_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// TestShardedConcurrent drives Sharded from many goroutines (run with
// -race) and checks the result equals a single Machine fed the same events
// user by user: users are independent, so any interleaving must agree.
func TestShardedConcurrent(t *testing.T) {
	cfg := core.Config{Served: []string{"montague.com"}}
	s, err := core.NewSharded(cfg, 8)
	if err != nil {
		t.Fatal(err)
	}
	m, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const users, rounds = 16, 50
	script := func(u int, emit func(now clock.Time, session string, x string)) {
		session := fmt.Sprintf("user%d@montague.com/r", u)
		for r := 0; r < rounds; r++ {
			now := t0 + clock.Time(r)*1e9
			emit(now, session, fmt.Sprintf(`<presence><status>%d</status></presence>`, r%3))
			// A probe to another user lands on another shard.
			emit(now, session, fmt.Sprintf(`<presence to='user%d@montague.com' type='probe'/>`, (u+1)%users))
			if r%7 == 0 {
				emit(now, session, `<presence type='unavailable'/>`)
			}
		}
	}
	var wg sync.WaitGroup
	for u := 0; u < users; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			script(u, func(now clock.Time, session, x string) {
				if _, err := s.Client(now, stanza.MustParse(session), []byte(x)); err != nil {
					t.Error(err)
				}
			})
		}()
	}
	wg.Wait()
	for u := 0; u < users; u++ {
		script(u, func(now clock.Time, session, x string) {
			if _, err := m.Client(now, stanza.MustParse(session), []byte(x)); err != nil {
				t.Fatal(err)
			}
		})
	}
	if !bytes.Equal(s.AppendState(nil), m.AppendState(nil)) {
		t.Error("Sharded state after concurrent use differs from a single Machine's")
	}
}

// TestShardedAccessors checks that Sharded answers Serves, Auth and
// ProbeLimit as a Machine with the same Config does.
func TestShardedAccessors(t *testing.T) {
	auth := core.NewMemoryAuth()
	cfg := core.Config{Served: []string{"Montague.com", "capulet.com"}, Auth: auth}
	s, err := core.NewSharded(cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	m, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"montague.com", "capulet.com", "verona.lit", ""} {
		if got, want := s.Serves(d), m.Serves(d); got != want {
			t.Errorf("Serves(%q) = %v, Machine says %v", d, got, want)
		}
	}
	if s.Auth() != core.Authorizer(auth) {
		t.Errorf("Auth() = %v, want the Config's", s.Auth())
	}
	if s2, _ := core.NewSharded(core.Config{Served: []string{"a.example"}}, 2); s2.Auth() == nil {
		t.Error("Auth() is nil for a Config without one; want the MemoryAuth NewSharded made")
	}
	if got, want := s.ProbeLimit(), m.ProbeLimit(); got != want {
		t.Errorf("default ProbeLimit() = %+v, Machine says %+v", got, want)
	}
	l := core.RateLimit{Burst: 3, Per: 7e9}
	if err := s.SetProbeLimit(0, l); err != nil {
		t.Fatal(err)
	}
	if got := s.ProbeLimit(); got != l {
		t.Errorf("ProbeLimit() after SetProbeLimit = %+v, want %+v", got, l)
	}
}
