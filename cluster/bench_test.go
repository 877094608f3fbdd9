package cluster

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Benchmarks on a three-member cluster in this process, on loopback: the
// nodes share the machine's cores with etcd, as a real node shares its
// host with its member.

// BenchmarkAck measures acknowledged changes per second (committed in etcd
// and applied on the writer) with 1 writer and with 64 concurrent writers,
// whose changes the group commit batches.
func BenchmarkAck(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			c := startCluster(b, func(i int, cfg *Config) { cfg.NoCompact = true; cfg.SnapshotEvery = 1 << 30 })
			n := c.nodes[0]
			var wg sync.WaitGroup
			next := make(chan int, writers)
			before := n.Stats()
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := stanza.MustParse(fmt.Sprintf("w%d@montague.com/r", w))
					for k := range next {
						if _, err := n.Client(clock.Epoch2000.Add(time.Duration(k)), s, broadcast("chat")); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			for k := range b.N {
				next <- k
			}
			close(next)
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			st := n.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "changes/s")
			if batches := st.Batches - before.Batches; batches > 0 {
				b.ReportMetric(float64(st.Entries-before.Entries)/float64(batches), "changes/batch")
			}
		})
	}
}

// BenchmarkVisible measures the time from a change's call on one node to
// the change being answered by a probe on another node (p50 and p99 over
// b.N changes, one at a time).
func BenchmarkVisible(b *testing.B) {
	c := startCluster(b, func(i int, cfg *Config) { cfg.NoCompact = true; cfg.SnapshotEvery = 1 << 30 })
	a, other := c.nodes[0], c.nodes[1]
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	for _, n := range c.nodes {
		if err := n.SetRoster(romeo.Bare(), stanza.MustParse("juliet@capulet.com"), core.SubBoth); err != nil {
			b.Fatal(err)
		}
	}
	probe := []byte(`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe'/>`)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for k := range b.N {
		show := fmt.Sprintf("k%d", k)
		want := []byte("<show>" + show + "</show>")
		other.mu.Lock()
		ch := other.notify
		other.mu.Unlock()
		start := time.Now()
		errc := make(chan error, 1)
		go func() {
			_, err := a.Client(clock.Epoch2000.Add(time.Duration(k)), romeo, broadcast(show))
			errc <- err
		}()
		deadline := time.After(10 * time.Second)
		for {
			out, err := other.Server(clock.Epoch2000, probe)
			if err != nil {
				b.Fatal(err)
			}
			if len(out) == 1 && bytes.Contains(out[0].Stanza, want) {
				break
			}
			select {
			case <-ch:
				other.mu.Lock()
				ch = other.notify
				other.mu.Unlock()
			case <-deadline:
				b.Fatalf("change %d not visible on the other node after 10 s", k)
			}
		}
		lat = append(lat, time.Since(start))
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkProbe compares a probe answered by a follower node (one that
// did not write the change) with the same probe on a plain core.Sharded
// holding the same state.
func BenchmarkProbe(b *testing.B) {
	c := startCluster(b, func(i int, cfg *Config) { cfg.NoCompact = true })
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	plain, err := core.NewSharded(core.Config{Served: served}, 4)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.nodes[0].Client(clock.Epoch2000, romeo, broadcast("away")); err != nil {
		b.Fatal(err)
	}
	if _, err := plain.Client(clock.Epoch2000, romeo, broadcast("away")); err != nil {
		b.Fatal(err)
	}
	c.settle(c.nodes...)
	follower := c.nodes[2]
	for _, s := range []interface {
		SetRoster(owner, contact stanza.JID, sub core.Subscription) error
	}{follower, plain} {
		if err := s.SetRoster(romeo.Bare(), stanza.MustParse("juliet@capulet.com"), core.SubBoth); err != nil {
			b.Fatal(err)
		}
	}
	probe := []byte(`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe'/>`)
	for _, tc := range []struct {
		name   string
		server func(clock.Time, []byte) ([]core.Output, error)
	}{{"follower", follower.Server}, {"sharded", plain.Server}} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				if out, err := tc.server(clock.Epoch2000, probe); err != nil || len(out) != 1 {
					b.Fatal(out, err)
				}
			}
		})
	}
}
