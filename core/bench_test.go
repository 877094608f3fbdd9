package core_test

// Benchmarks of the hot paths (issue 4). Inputs are fixed and the clock is
// driven by the benchmark, so every run does the same work. The figures
// that bench/RESULTS.md reports come from `go run ./bench`, which runs the
// same inputs against the peer implementations; these are for
// `go test -bench`, pprof and benchstat.
//
// CI runs them once: go test -run '^$' -bench . -benchtime=1x ./...

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

const (
	benchDomain = "montague.com"
	benchUser   = "romeo@montague.com"
	benchProber = "juliet@capulet.com"

	// A typical client broadcast: show, status, priority and entity
	// capabilities (XEP-0115), as most clients send it.
	benchAvailA = `<presence id='av1'><show>away</show><status>On the balcony</status><priority>5</priority>` +
		`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>`
	benchAvailB = `<presence id='av2'><show>xa</show><status>Asleep under the sycamore</status><priority>5</priority>` +
		`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>`
	benchUnavail = `<presence type='unavailable'><status>Going offline. Out of battery.</status></presence>`

	benchProbeUser   = `<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='probe-1'/>`
	benchProbeDomain = `<presence from='juliet@capulet.com/balcony' to='montague.com' type='probe' id='probe-2'/>`
	benchClientProbe = `<presence to='juliet@capulet.com' type='probe' id='cp-1'/>`

	benchQueryUser   = `<iq from='juliet@capulet.com/balcony' to='romeo@montague.com' type='get' id='last-1'><query xmlns='jabber:iq:last'/></iq>`
	benchQueryDomain = `<iq from='juliet@capulet.com/balcony' to='montague.com' type='get' id='last-2'><query xmlns='jabber:iq:last'/></iq>`
)

var benchT0 = clock.Epoch2000

func benchJID(b *testing.B, s string) stanza.JID {
	b.Helper()
	j, err := stanza.Parse(s)
	if err != nil {
		b.Fatal(err)
	}
	return j
}

// benchMachine returns a machine serving montague.com, up since benchT0,
// where juliet may see romeo.
func benchMachine(b *testing.B) *core.Machine {
	b.Helper()
	m, err := core.New(core.Config{Served: []string{benchDomain}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Up(benchT0, benchJID(b, benchDomain)); err != nil {
		b.Fatal(err)
	}
	if err := m.SetRoster(benchJID(b, benchUser), benchJID(b, benchProber), core.SubBoth); err != nil {
		b.Fatal(err)
	}
	return m
}

func benchClient(b *testing.B, m *core.Machine, now clock.Time, session stanza.JID, raw string) {
	b.Helper()
	if _, err := m.Client(now, session, []byte(raw)); err != nil {
		b.Fatal(err)
	}
}

// benchServer checks that raw yields want outputs, then measures it.
func benchServer(b *testing.B, m *core.Machine, raw string, want int) {
	in := []byte(raw)
	now := benchT0.Add(10 * time.Hour)
	out, err := m.Server(now, in)
	if err != nil || len(out) != want {
		b.Fatalf("got %d outputs, %v; want %d", len(out), err, want)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := m.Server(now, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProbeOffline answers a server probe for a user whose last
// resource went offline with a status (RULES P3): one reply carrying the
// status and a delay.
func BenchmarkProbeOffline(b *testing.B) {
	m := benchMachine(b)
	s := benchJID(b, benchUser+"/balcony")
	benchClient(b, m, benchT0.Add(time.Hour), s, benchAvailA)
	benchClient(b, m, benchT0.Add(2*time.Hour), s, benchUnavail)
	benchServer(b, m, benchProbeUser, 1)
}

// BenchmarkLastActivityOffline answers a XEP-0012 Last Activity query
// for the same offline user as BenchmarkProbeOffline (RULES L1): seconds
// since the unavailable presence, and its status as text.
func BenchmarkLastActivityOffline(b *testing.B) {
	m := benchMachine(b)
	s := benchJID(b, benchUser+"/balcony")
	benchClient(b, m, benchT0.Add(time.Hour), s, benchAvailA)
	benchClient(b, m, benchT0.Add(2*time.Hour), s, benchUnavail)
	benchServer(b, m, benchQueryUser, 1)
}

// BenchmarkLastActivityServer answers a Last Activity query to the served
// domain (RULES L2): its uptime.
func BenchmarkLastActivityServer(b *testing.B) {
	benchServer(b, benchMachine(b), benchQueryDomain, 1)
}

// BenchmarkProbeParse parses BenchmarkProbeOffline's probe and does
// nothing else: the parser's share of it, so that the answering part is
// the difference of the two.
func BenchmarkProbeParse(b *testing.B) {
	in := []byte(benchProbeUser)
	var p stanza.Parser
	var pres stanza.Presence
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if err := p.ParsePresence(in, &pres); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProbeOfflineDistinct is BenchmarkProbeOffline over 4096
// offline users probed by 4096 different contacts, one after another, so
// that no address repeats within the machine's JID cache: the cost when
// every from and to must be normalised afresh.
func BenchmarkProbeOfflineDistinct(b *testing.B) {
	const n = 4096
	m := benchMachine(b)
	probes := make([][]byte, n)
	for i := range n {
		u := "user" + strconv.Itoa(i) + "@" + benchDomain
		c := "contact" + strconv.Itoa(i) + "@capulet.com"
		if err := m.SetRoster(benchJID(b, u), benchJID(b, c), core.SubBoth); err != nil {
			b.Fatal(err)
		}
		s := benchJID(b, u+"/balcony")
		benchClient(b, m, benchT0.Add(time.Hour), s, benchAvailA)
		benchClient(b, m, benchT0.Add(2*time.Hour), s, benchUnavail)
		probes[i] = []byte("<presence from='" + c + "/balcony' to='" + u + "' type='probe' id='probe-1'/>")
	}
	now := benchT0.Add(10 * time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		out, err := m.Server(now, probes[i%n])
		if err != nil || len(out) != 1 {
			b.Fatal(len(out), err)
		}
		i++
	}
}

// BenchmarkProbeAvailable answers a server probe for a user with 1 and with
// 5 available resources (RULES P4): one reply per resource.
func BenchmarkProbeAvailable(b *testing.B) {
	for _, n := range []int{1, 5} {
		b.Run("resources="+strconv.Itoa(n), func(b *testing.B) {
			m := benchMachine(b)
			for i := range n {
				s := benchJID(b, benchUser+"/res"+strconv.Itoa(i))
				benchClient(b, m, benchT0.Add(time.Duration(i+1)*time.Minute), s, benchAvailA)
			}
			benchServer(b, m, benchProbeUser, n)
		})
	}
}

// BenchmarkProbeServer answers a probe to the served domain (RULES S1).
func BenchmarkProbeServer(b *testing.B) {
	benchServer(b, benchMachine(b), benchProbeDomain, 1)
}

// BenchmarkPresenceUpdate tracks a client broadcast (RULES T1–T3).
// available alternates two different stanzas, so every one is a change
// that moves the stamp; available-same repeats one (T2); unavailable
// repeats an unavailable broadcast.
func BenchmarkPresenceUpdate(b *testing.B) {
	cases := []struct {
		name string
		in   [2]string
	}{
		{"available", [2]string{benchAvailA, benchAvailB}},
		{"available-same", [2]string{benchAvailA, benchAvailA}},
		{"unavailable", [2]string{benchUnavail, benchUnavail}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m := benchMachine(b)
			s := benchJID(b, benchUser+"/balcony")
			in := [2][]byte{[]byte(c.in[0]), []byte(c.in[1])}
			now := benchT0.Add(time.Hour)
			benchClient(b, m, now, s, c.in[0])
			b.ReportAllocs()
			b.SetBytes(int64(len(in[0])))
			i := 0
			for b.Loop() {
				now += clock.Time(time.Millisecond)
				out, err := m.Client(now, s, in[i&1])
				if err != nil || len(out) != 0 {
					b.Fatal(len(out), err)
				}
				i++
			}
		})
	}
}

// BenchmarkClientProbeRouted handles a client's probe to a remote JID
// (RULES C1, C3): from rewritten, rate limit checked, probe emitted for
// routing. The clock moves a minute per probe so the bucket never runs dry.
func BenchmarkClientProbeRouted(b *testing.B) {
	m := benchMachine(b)
	s := benchJID(b, benchUser+"/balcony")
	in := []byte(benchClientProbe)
	now := benchT0
	out, err := m.Client(now, s, in)
	if err != nil || len(out) != 1 || out[0].Kind != core.RoutedProbe {
		b.Fatal(out, err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		now += clock.Time(time.Minute)
		out, err := m.Client(now, s, in)
		if err != nil || len(out) != 1 {
			b.Fatal(len(out), err)
		}
	}
}

// BenchmarkShardedParallel runs the goroutine-safe wrapper from every P at
// once, each goroutine walking users of its own: a presence update then a
// server probe per user, as the parallel section of `go run ./bench` does.
// Compare -cpu=1 with -cpu=2 (or more): ns/op is wall time per stanza over
// all goroutines, so the ratio of the two is the speedup. There are more
// users than a JID cache holds, so each probe's to is normalised afresh,
// as in BenchmarkProbeOfflineDistinct (1 alloc).
func BenchmarkShardedParallel(b *testing.B) {
	const users = 4096
	s, err := core.NewSharded(core.Config{Served: []string{benchDomain}}, 0)
	if err != nil {
		b.Fatal(err)
	}
	type user struct {
		session stanza.JID
		avail   [2][]byte
		probe   []byte
	}
	us := make([]user, users)
	prober := benchJID(b, benchProber)
	for i := range us {
		n := strconv.Itoa(i)
		bare := benchJID(b, "user"+n+"@"+benchDomain)
		u := &us[i]
		u.session = benchJID(b, bare.String()+"/phone")
		u.avail = [2][]byte{[]byte(benchAvailA), []byte(benchAvailB)}
		u.probe = []byte("<presence from='juliet@capulet.com/balcony' to='" + bare.String() + "' type='probe' id='p" + n + "'/>")
		if err := s.SetRoster(bare, prober, core.SubBoth); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Client(benchT0, u.session, u.avail[1]); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine takes a distinct stride of users, so no two walk
		// the same user and every update is a change.
		first := int(next.Add(1)-1) % users
		var o core.Outputs
		now := benchT0.Add(time.Hour)
		for i := 0; pb.Next(); i++ {
			u := &us[(first+i*7919)%users]
			now += clock.Time(time.Millisecond)
			if err := s.ClientInto(&o, now, u.session, u.avail[(i/users)&1]); err != nil {
				b.Fatal(err)
			}
			if err := s.ServerInto(&o, now, u.probe); err != nil || len(o.List) != 1 {
				b.Fatal(len(o.List), err)
			}
		}
	})
}

// benchSubscribers is how many buddies BenchmarkUp's domain has.
const benchSubscribers = 10_000

// BenchmarkUp announces a domain with 10,000 subscribers (RULES S3): a
// repeated up, which changes no state, so that every iteration does the
// whole announcement (listing, sorting, one reply each). It reports the
// time and allocations per subscriber besides the totals per Up; a tenth
// of the roster is "to" and another tenth blocked, so listing also skips
// (12,500 items in all).
func BenchmarkUp(b *testing.B) {
	m, err := core.New(core.Config{Served: []string{benchDomain}})
	if err != nil {
		b.Fatal(err)
	}
	d := benchJID(b, benchDomain)
	want := 0
	for i := range benchSubscribers * 5 / 4 {
		c := benchJID(b, "server"+strconv.Itoa(i)+".example")
		if i%2 == 1 {
			c = benchJID(b, "buddy"+strconv.Itoa(i)+"@buddies.example")
		}
		sub := core.SubBoth
		switch {
		case i%10 == 3:
			sub = core.SubTo
		case i%10 == 7:
			if err := m.SetBlock(d, c, true); err != nil {
				b.Fatal(err)
			}
		default:
			want++
		}
		if err := m.SetRoster(d, c, sub); err != nil {
			b.Fatal(err)
		}
	}
	out, err := m.Up(benchT0, d)
	if err != nil || len(out) != want || want != benchSubscribers {
		b.Fatalf("got %d outputs, %v; want %d, and %d subscribers", len(out), err, want, benchSubscribers)
	}
	now := benchT0.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Up(now, d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchSubscribers, "ns/subscriber")
	allocs := testing.AllocsPerRun(3, func() { m.Up(now, d) })
	b.ReportMetric(allocs/benchSubscribers, "allocs/subscriber")
}
