// Package e2e drives jackal with the lastseen module through a real XMPP
// client library (mellium.im/xmpp): it builds cmd/jackal-lastseen and
// jackalctl, starts the server on 127.0.0.1 with its own configuration and
// data directory, creates users, and checks XEP-0318's use cases as a
// client sees them. Run it with
//
//	go test -v -count=1 ./e2e
//
// from integrations/jackal. The last line is "N passed, N failed" (with
// ", N skipped" when a case was skipped). Outside
// CI (CI unset) a missing prerequisite (the build fails, say without
// network for the module download) skips the suite with a message; with
// CI=true it fails.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	domain   = "localhost"
	password = "e2e-secret"
	nsDelay  = "urn:xmpp:delay"
	nsStanza = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

func prerequisites(t *testing.T) bins {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: builds and runs a jackal server; not run with -short")
	}
	b, err := buildBins(t.TempDir())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("e2e prerequisite missing: %v", err)
		}
		t.Skipf("e2e SKIPPED (set CI=true to make this a failure): cannot build the server: %v", err)
	}
	return b
}

// stamp returns the XEP-0203 delay of n, failing if it has none.
func stamp(t *testing.T, n node) time.Time {
	t.Helper()
	d, ok := n.child("delay", nsDelay)
	if !ok {
		t.Fatalf("no <delay xmlns='%s'/> in %s", nsDelay, n)
	}
	ts, err := time.Parse(time.RFC3339Nano, d.attr("stamp"))
	if err != nil {
		t.Fatalf("delay stamp of %s: %v", n, err)
	}
	return ts
}

// within fails unless ts lies in [from-1s, to+1s]: stamps have second
// precision at least, and the server's clock is this machine's.
func within(t *testing.T, what string, ts, from, to time.Time) {
	t.Helper()
	if ts.Before(from.Add(-time.Second)) || ts.After(to.Add(time.Second)) {
		t.Errorf("%s: stamp %s not between %s and %s", what, ts.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
}

// subscribe makes from a subscriber of to's presence: from asks, to
// approves, and to's roster is read back until it shows the subscription.
func subscribe(t *testing.T, from, to *client, fromBare, toBare string) {
	t.Helper()
	from.send(fmt.Sprintf("<presence to='%s' type='subscribe'/>", toBare))
	to.waitFor("subscribe from "+fromBare, func(n node) bool {
		return n.XMLName.Local == "presence" && n.attr("type") == "subscribe"
	})
	to.send(fmt.Sprintf("<presence to='%s' type='subscribed'/>", fromBare))
	for i := range 50 {
		r := to.iq(fmt.Sprintf("roster-%d", i), "get", "<query xmlns='jabber:iq:roster'/>")
		if q, ok := r.child("query", ""); ok {
			for _, it := range q.Nodes {
				if it.attr("jid") == fromBare && (it.attr("subscription") == "from" || it.attr("subscription") == "both") {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never got %s as a subscriber", toBare, fromBare)
}

// lastQuery checks that n is a Last Activity result from from and returns
// its query element.
func lastQuery(t *testing.T, n node, from string) node {
	t.Helper()
	q, ok := n.child("query", "jabber:iq:last")
	if n.attr("type") != "result" || n.attr("from") != from || !ok {
		t.Fatalf("want a Last Activity result from %s, got %s", from, n)
	}
	return q
}

// probeUntil probes to from a fresh session of user (each has its own
// probe allowance) until done accepts the replies or tries sessions have
// tried, 200 ms apart, and returns the last replies. It is for state that
// another stream changed: the server processes each stream on its own.
func probeUntil(t *testing.T, srv *server, user, to, id string, tries int, done func([]node) bool) []node {
	t.Helper()
	var got []node
	for i := range tries {
		c := dial(t, srv, user, fmt.Sprintf("%s-%d", id, i))
		got = c.probe(to, id, srv.domain)
		c.close()
		if done(got) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return got
}

// engines are the lastseen engines the suite runs on, each on a server of
// its own.
var engines = flag.String("engines", "native,wasm", "comma-separated lastseen engines to run the suite on (native, wasm)")

func TestJackal(t *testing.T) {
	b := prerequisites(t)
	passed, failed, skipped := 0, 0, 0
	run := func(t *testing.T, name string, f func(t *testing.T)) {
		// t.Run reports a skipped case as a success: count it apart, so
		// that a skip (a taken s2s port, -skip) never reads as a pass.
		skip := true // stays true when -run or -skip leaves the case out
		ok := t.Run(name, func(t *testing.T) {
			defer func() { skip = t.Skipped() }()
			f(t)
		})
		switch {
		case skip:
			skipped++
		case ok:
			passed++
		default:
			failed++
		}
	}
	for _, engine := range strings.Split(*engines, ",") {
		t.Run(engine, func(t *testing.T) {
			suite(t, b, engine, func(name string, f func(t *testing.T)) { run(t, name, f) })
			run(t, "s2s: a client of one server probes a contact of another", func(t *testing.T) { s2sCase(t, b, engine) })
		})
	}
	if skipped > 0 {
		fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	} else {
		fmt.Printf("%d passed, %d failed\n", passed, failed)
	}
}

// suite runs every case on a fresh server with engine; run runs and
// counts one case.
func suite(t *testing.T, b bins, engine string, run func(name string, f func(t *testing.T))) {
	started := time.Now()
	srv := newServer(t, b, domain, engine)
	srv.start()
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		srv.addUser(u, password)
	}
	bob := "bob@" + domain
	alice := "alice@" + domain

	// Set-up: bob online on resource a; alice and dave subscribe to bob;
	// bob blocks dave.
	bobA := online(t, srv, "bob", "a", "here")
	aliceSetup := dial(t, srv, "alice", "setup")
	subscribe(t, aliceSetup, bobA, alice, bob)
	daveC := dial(t, srv, "dave", "d")
	subscribe(t, daveC, bobA, "dave@"+domain, bob)
	bobA.iq("block", "set", "<block xmlns='urn:xmpp:blocking'><item jid='dave@"+domain+"'/></block>")

	var bobBOnline time.Time
	run("online contact: one reply per resource, with delay", func(t *testing.T) {
		bobB := dial(t, srv, "bob", "b")
		bobBOnline = time.Now()
		bobB.send("<presence><status>also</status></presence>")
		// The second resource's presence is processed on its own stream:
		// probe until both resources answer, at most 5 times.
		got := probeUntil(t, srv, "alice", bob, "online", 5, func(got []node) bool { return len(got) >= 2 })
		froms := map[string]bool{}
		for _, n := range got {
			if n.attr("type") != "" {
				t.Errorf("reply of type %q: %s", n.attr("type"), n)
			}
			stamp(t, n)
			froms[n.attr("from")] = true
		}
		if len(got) != 2 || !froms[bob+"/a"] || !froms[bob+"/b"] {
			t.Fatalf("want one reply from %s/a and one from %s/b, got %v", bob, bob, got)
		}
		t.Cleanup(bobB.kill)
	})

	run("Last Activity of an online contact: 0 seconds", func(t *testing.T) {
		c := dial(t, srv, "alice", "la-online")
		q := lastQuery(t, c.lastActivity(bob, "la-online"), bob)
		if q.attr("seconds") != "0" || q.Text != "" {
			t.Fatalf("want seconds='0' and no text (RULES L1), got %s", q)
		}
	})

	run("full-JID probe: that resource only, without children", func(t *testing.T) {
		c := dial(t, srv, "alice", "full")
		got := c.probe(bob+"/a", "full", domain)
		if len(got) != 1 || got[0].attr("from") != bob+"/a" || got[0].attr("type") != "" || len(got[0].Nodes) != 0 {
			t.Fatalf("want one bare available presence from %s/a (RULES F1), got %v", bob, got)
		}
		got = c.probe(bob+"/nowhere", "full-gone", domain)
		if len(got) != 1 || got[0].attr("from") != bob+"/nowhere" || got[0].attr("type") != "unavailable" {
			t.Fatalf("want one unavailable presence from %s/nowhere, got %v", bob, got)
		}
	})

	run("offline contact: last unavailable presence with status and delay", func(t *testing.T) {
		// bob/b is gone without a word (killed above); bob/a says goodbye.
		// jackal adds to='bob@localhost' to this broadcast: the module must
		// still see it as broadcast presence.
		before := time.Now()
		bobA.send("<presence type='unavailable'><status>gone fishing</status></presence>")
		// The killed session's end reaches the server asynchronously.
		got := probeUntil(t, srv, "alice", bob, "offline", 20, func(got []node) bool {
			return len(got) == 1 && got[0].attr("type") == "unavailable"
		})
		if len(got) != 1 || got[0].attr("type") != "unavailable" || got[0].attr("from") != bob {
			t.Fatalf("want one unavailable presence from %s, got %v", bob, got)
		}
		st, ok := got[0].child("status", "")
		if !ok || st.Text != "gone fishing" {
			t.Errorf("want status 'gone fishing', got %s", got[0])
		}
		within(t, "offline stamp", stamp(t, got[0]), before, time.Now())
		d, _ := got[0].child("delay", nsDelay)
		if d.attr("from") != bob+"/a" {
			t.Errorf("delay from %q, want the resource that went offline, %q", d.attr("from"), bob+"/a")
		}
	})

	run("Last Activity of an offline contact: seconds and status", func(t *testing.T) {
		c := dial(t, srv, "alice", "la-offline")
		q := lastQuery(t, c.lastActivity(bob, "la-offline"), bob)
		secs, err := strconv.Atoi(q.attr("seconds"))
		if err != nil || secs < 0 || secs > int(time.Since(bobBOnline).Seconds())+1 {
			t.Errorf("seconds=%q: want whole seconds since bob went offline", q.attr("seconds"))
		}
		if q.Text != "gone fishing" {
			t.Errorf("want the unavailable presence's status 'gone fishing' as text, got %q", q.Text)
		}
	})

	run("Last Activity of the domain: uptime, and disco lists jabber:iq:last", func(t *testing.T) {
		c := dial(t, srv, "alice", "la-domain")
		q := lastQuery(t, c.lastActivity(domain, "la-domain"), domain)
		secs, err := strconv.Atoi(q.attr("seconds"))
		if err != nil || secs < 0 || secs > int(time.Since(started).Seconds())+1 {
			t.Errorf("seconds=%q: want the whole seconds since the server started, at most %v", q.attr("seconds"), time.Since(started))
		}
		for i, to := range []string{domain, bob} {
			id := fmt.Sprintf("disco-%d", i)
			c.send("<iq type='get' to='" + to + "' id='" + id + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
			info := c.waitFor("disco#info of "+to, func(n node) bool { return n.XMLName.Local == "iq" && n.attr("id") == id })
			q, _ := info.child("query", "")
			found := false
			for _, f := range q.Nodes {
				found = found || (f.XMLName.Local == "feature" && f.attr("var") == "jabber:iq:last")
			}
			if !found {
				t.Errorf("disco#info of %s lacks jabber:iq:last: %s", to, info)
			}
		}
	})

	run("Last Activity unauthorised: forbidden", func(t *testing.T) {
		c := dial(t, srv, "carol", "la-unauth")
		n := c.lastActivity(bob, "la-unauth")
		e, _ := n.child("error", "")
		if _, ok := e.child("forbidden", nsStanza); n.attr("type") != "error" || n.attr("from") != bob || !ok {
			t.Fatalf("want a forbidden error from %s (RULES L2), got %s", bob, n)
		}
	})

	run("domain probe: the server's uptime", func(t *testing.T) {
		c := dial(t, srv, "alice", "domain")
		c.send("<presence to='" + domain + "' type='probe' id='dom'/>")
		n := c.waitFor("reply to the domain probe", func(n node) bool {
			return n.XMLName.Local == "presence" && n.attr("id") == "dom"
		})
		t.Logf("%s got %s", c.jid, n)
		if n.attr("from") != domain || n.attr("type") != "" {
			t.Fatalf("want available presence from %s, got %s", domain, n)
		}
		within(t, "uptime stamp", stamp(t, n), started, bobBOnline)
	})

	run("unauthorised prober gets unsubscribed", func(t *testing.T) {
		c := dial(t, srv, "carol", "c")
		got := c.probe(bob, "unauth", domain)
		if len(got) != 1 || got[0].attr("type") != "unsubscribed" || got[0].attr("from") != bob {
			t.Fatalf("want one unsubscribed from %s, got %v", bob, got)
		}
	})

	run("blocked prober gets nothing", func(t *testing.T) {
		got := daveC.probe(bob, "blocked", domain)
		if len(got) != 0 {
			t.Fatalf("want no reply, got %v", got)
		}
	})

	run("client probe flood gets policy-violation", func(t *testing.T) {
		c := dial(t, srv, "alice", "flood")
		const n = 15
		for i := range n {
			c.send(fmt.Sprintf("<presence to='%s' type='probe' id='f%d'/>", bob, i))
		}
		answered, violations := map[string]bool{}, 0
		timeout := time.After(stanzaWait)
		for len(answered) < n {
			select {
			case p := <-c.in:
				id := p.attr("id")
				if p.XMLName.Local != "presence" || len(id) < 2 || id[0] != 'f' || answered[id] {
					continue
				}
				answered[id] = true
				if p.attr("type") == "error" && violations == 0 {
					t.Logf("%s got %s", c.jid, p)
				}
				if p.attr("type") == "error" {
					e, _ := p.child("error", "")
					if _, ok := e.child("policy-violation", nsStanza); ok {
						violations++
					}
				}
			case <-timeout:
				t.Fatalf("only %d of %d probes answered", len(answered), n)
			}
		}
		if violations == 0 || violations == n {
			t.Fatalf("want some probes answered and the rest refused with policy-violation; %d of %d refused", violations, n)
		}
	})

	run("restart: the same probes get the same answers", func(t *testing.T) {
		// erin, whom alice follows, goes offline with a status for good;
		// bob is online on c when the server stops.
		erin := "erin@" + domain
		erinC := online(t, srv, "erin", "e", "in")
		aliceC := dial(t, srv, "alice", "restart-setup")
		subscribe(t, aliceC, erinC, alice, erin)
		erinC.send("<presence type='unavailable'><status>moved to the moon</status></presence>")
		erinC.close()
		bobC := dial(t, srv, "bob", "c")
		bobC.send("<presence><status>back</status></presence>")
		offline := func(got []node) bool { return len(got) == 1 && got[0].attr("type") == "unavailable" }
		erinBefore := probeUntil(t, srv, "alice", erin, "erin-before", 20, offline)
		bobBefore := probeUntil(t, srv, "alice", bob, "bob-before", 20, func(got []node) bool {
			return len(got) == 1 && got[0].attr("from") == bob+"/c"
		})
		if !offline(erinBefore) || len(bobBefore) != 1 || bobBefore[0].attr("from") != bob+"/c" {
			t.Fatalf("before the restart: want erin offline and bob online on c only, got %v and %v", erinBefore, bobBefore)
		}
		bobOn := stamp(t, bobBefore[0])

		srv.stop()
		stopped := time.Now()
		srv.start()

		erinAfter := probeUntil(t, srv, "alice", erin, "erin-after", 1, offline)
		if diff := cmp.Diff(erinBefore[0].withoutID(), erinAfter[0].withoutID()); len(erinAfter) != 1 || diff != "" {
			t.Errorf("erin's last presence across the restart (-before +after):\n%s", diff)
		}
		bobAfter := probeUntil(t, srv, "alice", bob, "bob-after", 1, offline)
		if !offline(bobAfter) || bobAfter[0].attr("from") != bob {
			t.Fatalf("want bob, online when the server stopped, unavailable now; got %v", bobAfter)
		}
		// The restart rule: no status, stamped with the last change the
		// machine knew of (jackal's shutdown closes the sessions before
		// the store, so that is at the latest the stop).
		if _, ok := bobAfter[0].child("status", ""); ok {
			t.Errorf("bob's presence after the restart has a status: %s", bobAfter[0])
		}
		within(t, "bob's stamp after the restart", stamp(t, bobAfter[0]), bobOn, stopped)
		c := dial(t, srv, "alice", "la-restart")
		q := lastQuery(t, c.lastActivity(erin, "la-restart"), erin)
		if q.Text != "moved to the moon" {
			t.Errorf("Last Activity of erin after the restart: want status 'moved to the moon', got %s", q)
		}
	})

	run("crash: an acknowledged change survives SIGKILL", func(t *testing.T) {
		// erin (followed by alice since the restart case) comes back and
		// leaves again with a new status; once a probe has answered with
		// it, the server dies without a shutdown.
		erin := "erin@" + domain
		erinC := online(t, srv, "erin", "k", "briefly")
		erinC.send("<presence type='unavailable'><status>crashed out</status></presence>")
		erinC.close()
		crashed := func(got []node) bool {
			if len(got) != 1 || got[0].attr("type") != "unavailable" {
				return false
			}
			st, ok := got[0].child("status", "")
			return ok && st.Text == "crashed out"
		}
		before := probeUntil(t, srv, "alice", erin, "crash-before", 20, crashed)
		if !crashed(before) {
			t.Fatalf("before the crash: want erin unavailable with status 'crashed out', got %v", before)
		}
		srv.crash()
		srv.start()
		after := probeUntil(t, srv, "alice", erin, "crash-after", 1, crashed)
		if diff := cmp.Diff(before[0].withoutID(), after[0].withoutID()); len(after) != 1 || diff != "" {
			t.Errorf("erin's last presence across the crash (-before +after):\n%s", diff)
		}
	})
}
