package core_test

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// BenchmarkMemoryAuthBytes measures the heap a MemoryAuth holds per roster
// entry for the common case of issue 11: many users, each with one contact
// whose bare JID is 22 bytes. An op adds one user with one contact.
func BenchmarkMemoryAuthBytes(b *testing.B) {
	for _, contacts := range []int{1, 4, 20} {
		b.Run("contacts="+strconv.Itoa(contacts), func(b *testing.B) {
			n := max(b.N, 1000)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			a := core.NewMemoryAuth()
			b.ResetTimer()
			// Every JID is parsed afresh, as a host reading rosters
			// does, so that the strings the MemoryAuth keeps count.
			for i := 0; i < n; i++ {
				owner := stanza.MustParse("user" + strconv.Itoa(i) + "@montague.com")
				for c := 0; c < contacts; c++ {
					a.SetSubscription(owner, stanza.MustParse("juliet"+strconv.Itoa(1000+c)+"@capulet.com"), core.SubBoth) // 22 bytes
				}
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			last := stanza.MustParse("user" + strconv.Itoa(n-1) + "@montague.com")
			if a.Subscription(last, stanza.MustParse("juliet1000@capulet.com")) != core.SubBoth {
				b.Fatal("roster entry lost")
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n*contacts), "B/entry")
			runtime.KeepAlive(a)
		})
	}
}

// TestMemoryAuthRosterMatchesMap drives one owner's roster (packed, or a
// sorted list once long, inside MemoryAuth) and its block list and opt-out
// (kept apart) with random changes, and checks every answer, and the
// subscriber list, against plain maps. The changes come in phases that
// mostly add or mostly remove, so the roster grows past packedMax and
// shrinks back, several times.
func TestMemoryAuthRosterMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 1))
	a := core.NewMemoryAuth()
	owner := stanza.MustParse("romeo@montague.com")
	subs := []core.Subscription{core.SubFrom, core.SubTo, core.SubBoth}
	var contacts []stanza.JID
	for i := 0; i < 100; i++ {
		contacts = append(contacts, stanza.MustParse("c"+strconv.Itoa(i)+"@capulet.com"))
	}
	want := map[string]core.Subscription{}
	blocked := map[string]bool{}
	hidden := false
	crossings, wasLong := 0, false
	for step := 0; step < 6000; step++ {
		c := contacts[r.IntN(len(contacts))]
		switch r.IntN(8) {
		case 0:
			a.SetBlocked(owner, c, !blocked[c.String()])
			blocked[c.String()] = !blocked[c.String()]
		case 1:
			hidden = !hidden
			a.SetHidden(owner, hidden)
		default:
			s := subs[r.IntN(len(subs))]
			if adding := step/600%2 == 0; adding && r.IntN(5) == 0 || !adding && r.IntN(5) != 0 {
				s = core.SubNone
			}
			a.SetSubscription(owner, c, s)
			if s == core.SubNone {
				delete(want, c.String())
			} else {
				want[c.String()] = s
			}
		}
		if long := len(want) > 32; long != wasLong {
			crossings++
			wasLong = long
		}
		var subscribers []string
		for _, c := range contacts {
			if got := a.Subscription(owner, c); got != want[c.String()] {
				t.Fatalf("step %d: Subscription(%s) = %v, want %v", step, c, got, want[c.String()])
			}
			if got := a.Blocks(owner, c); got != blocked[c.String()] {
				t.Fatalf("step %d: Blocks(%s) = %v, want %v", step, c, got, blocked[c.String()])
			}
			if want[c.String()].Visible() && !blocked[c.String()] {
				subscribers = append(subscribers, c.String())
			}
		}
		if a.Hidden(owner) != hidden {
			t.Fatalf("step %d: Hidden = %v, want %v", step, a.Hidden(owner), hidden)
		}
		slices.Sort(subscribers)
		var got []string
		a.Subscribers(owner, func(c stanza.JID) bool { got = append(got, c.String()); return true })
		if !slices.Equal(got, subscribers) {
			t.Fatalf("step %d: Subscribers = %v, want %v", step, got, subscribers)
		}
	}
	if crossings < 4 {
		t.Errorf("the roster crossed 32 contacts %d times, want at least 4", crossings)
	}
}
