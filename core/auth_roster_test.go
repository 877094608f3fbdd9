package core_test

import (
	"runtime"
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
