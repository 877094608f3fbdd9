package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFigures measures what a client sees of an online-contact probe on
// each engine and on jackal without lastseen ("none", jackal's roster
// module answering): the round trip of one probe (send → reply received,
// the median of figuresN, one at a time) and the rate of a burst of
// figuresN probes sent at once (first send → last reply). It runs only
// with E2E_FIGURES=1 and prints a table for README.md; the probe limit is
// raised so that no probe of the burst is refused.
func TestFigures(t *testing.T) {
	if os.Getenv("E2E_FIGURES") != "1" {
		t.Skip("figures: set E2E_FIGURES=1")
	}
	b := prerequisites(t)
	const figuresN = 200
	var rows []string
	for _, engine := range []string{"none", "native", "wasm"} {
		srv := newServer(t, b, domain, engine)
		cfgPath := filepath.Join(srv.dir, "config.yaml")
		cfg, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg = append(cfg, "  probe_burst: 1000000\n  probe_per: 1s\n"...)
		if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		srv.start()
		srv.addUser("alice", password)
		srv.addUser("bob", password)
		bob := "bob@" + domain
		bobA := online(t, srv, "bob", "a", "here")
		setup := dial(t, srv, "alice", "setup")
		subscribe(t, setup, bobA, "alice@"+domain, bob)
		c := dial(t, srv, "alice", "fig")
		reply := func(n node) bool {
			return n.XMLName.Local == "presence" && n.attr("from") == bob+"/a" && n.attr("type") == ""
		}
		for len(c.in) > 0 {
			<-c.in
		}
		rtts := make([]time.Duration, 0, figuresN)
		for i := range figuresN + 20 { // the first 20 warm up
			start := time.Now()
			c.send(fmt.Sprintf("<presence to='%s' type='probe' id='r%d'/>", bob, i))
			c.waitFor("reply to a probe", reply)
			if i >= 20 {
				rtts = append(rtts, time.Since(start))
			}
		}
		slices.Sort(rtts)
		start := time.Now()
		for i := range figuresN {
			c.send(fmt.Sprintf("<presence to='%s' type='probe' id='b%d'/>", bob, i))
		}
		for range figuresN {
			c.waitFor("reply in the burst", reply)
		}
		burst := time.Since(start)
		rows = append(rows, fmt.Sprintf("| %s | %.0f µs | %.0f µs | %.0f probes/s |", engine,
			float64(rtts[len(rtts)/2].Microseconds()), float64(rtts[len(rtts)*9/10].Microseconds()),
			figuresN/burst.Seconds()))
		srv.stop()
	}
	fmt.Printf("| engine | round trip, median | 90th percentile | burst of %d |\n| --- | --- | --- | --- |\n%s\n", figuresN, strings.Join(rows, "\n"))
}
