//go:build unix

package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
)

// shardedChildEnv switches the test binary into the child of
// TestShardedKillMidStream: its value is the store directory.
const shardedChildEnv = "LASTSEEN_STORE_SHARDED_KILL_CHILD"

// killWriters is how many goroutines write concurrently in the child.
const killWriters = 4

// shardedEvent is one line to the child: writer G's next event.
type shardedEvent struct {
	G int
	E event
}

// shardedChild hosts a ShardedDurable with one goroutine per writer, each
// applying its own events in order and writing "ack G N" after each call
// returns (so after the fsync that covers it). It compacts often, so that
// the kill also lands during compactions.
func shardedChild(dir string) int {
	d, err := OpenSharded(dir, testConfig, testShards, Options{CompactEvery: 13})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	var outMu sync.Mutex
	fmt.Fprintln(os.Stdout, "ready")
	var wg sync.WaitGroup
	var chans [killWriters]chan event
	fail := make(chan struct{}, killWriters)
	for g := range chans {
		chans[g] = make(chan event, 16)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for e := range chans[g] {
				if _, err := apply(d, e); err != nil && !errors.Is(err, core.ErrBadInput) {
					fmt.Fprintln(os.Stderr, "child:", err)
					fail <- struct{}{}
					return
				}
				n++
				outMu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d\n", g, n)
				outMu.Unlock()
			}
		}()
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 1<<20)
	for in.Scan() {
		var se shardedEvent
		if err := json.Unmarshal(in.Bytes(), &se); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		select {
		case chans[se.G] <- se.E:
		case <-fail:
			return 1
		}
	}
	for _, c := range chans {
		close(c)
	}
	wg.Wait()
	d.Shutdown()
	return 0
}

// TestShardedKillMidStream is TestKillMidStream for a ShardedDurable with
// concurrent writers: the child runs killWriters goroutines, each with its
// own users, and is SIGKILLed while every one of them has events in
// flight. After each kill the reopened store must hold every acknowledged
// change of every writer: its state must be the restarted state of a
// Machine fed each writer's acknowledged events plus, per writer, at most
// the one call it had running (persisted but not yet acknowledged).
func TestShardedKillMidStream(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(29, 11))
	base := newRef(t)
	now := clock.Epoch2000
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	for round := 0; round < rounds; round++ {
		var groups [killWriters][]event
		end := now
		for g := range groups {
			groups[g] = groupEvents(r, now, 150, g)
			end = max(end, groups[g][len(groups[g])-1].Now)
		}
		now = end
		killAt := 60 + r.IntN(300)

		cmd, stdin, lines := startChild(t, round, exe, shardedChildEnv, dir)
		// Interleave the writers' events and send them without waiting.
		sent := make(chan [killWriters]int, 1)
		go func() {
			var n [killWriters]int
			defer func() { sent <- n }()
			w := bufio.NewWriter(stdin)
			for i := 0; ; i++ {
				more := false
				for g := range groups {
					if i >= len(groups[g]) {
						continue
					}
					more = true
					b, _ := json.Marshal(shardedEvent{g, groups[g][i]})
					w.Write(append(b, '\n'))
					if w.Flush() != nil {
						return
					}
					n[g]++
				}
				if !more {
					return
				}
			}
		}()
		var acked [killWriters]int
		total := 0
		readAck := func() bool {
			if !lines.Scan() {
				return false
			}
			var g, n int
			if _, err := fmt.Sscanf(lines.Text(), "ack %d %d", &g, &n); err != nil || g < 0 || g >= killWriters || n != acked[g]+1 {
				t.Fatalf("round %d: child said %q after acks %v", round, lines.Text(), acked)
			}
			acked[g]++
			total++
			return true
		}
		for total < killAt && readAck() {
		}
		if total < killAt {
			t.Fatalf("round %d: child stopped after %d acks", round, total)
		}
		// Acks the child wrote before it died count too: each writer
		// then has at most the one call it was running unacknowledged.
		killChild(t, round, cmd, stdin, func() {
			for readAck() {
			}
		})
		n := <-sent

		d, err := OpenSharded(dir, testConfig, testShards, Options{})
		if err != nil {
			t.Fatalf("round %d: reopening after the kill: %v", round, err)
		}
		got := d.Sharded().Snapshot(nil)
		// Each writer may have had one call persisted but not
		// acknowledged: try every combination.
		var ref *core.Machine
		matched := -1
		for combo := 0; combo < 1<<killWriters && matched < 0; combo++ {
			ref = copyMachine(t, base)
			ok := true
			for g := range groups {
				k := acked[g] + combo>>g&1
				if k > n[g] {
					ok = false
					break
				}
				for _, e := range groups[g][:k] {
					apply(ref, e)
				}
			}
			if !ok {
				continue
			}
			ref.Restarted()
			if bytes.Equal(got, ref.Snapshot(nil)) {
				matched = combo
			}
		}
		if matched < 0 {
			d.Shutdown()
			t.Fatalf("round %d: after the kill at acks %v (sent %v) the store matches no run holding every acknowledged change", round, acked, n)
		}
		t.Logf("round %d: killed after acks %v (sent %v), unacknowledged but persisted: %04b; recovery %+v", round, acked, n, matched, d.Recovery())
		base = copyMachine(t, ref)
		if err := d.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
}
