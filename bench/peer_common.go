package main

// What the three peer baselines share: the bookkeeping that is not XML
// (roster, hosted domains, the probe rate limit), written the way a Go
// server author would, with maps keyed by strings, time.Time and a float
// token bucket. Only the XML handling differs between peers, and that is
// what the comparison is about.
//
// The peers implement the rules the workloads exercise (T1–T3, P2–P4, S1,
// C1, C3), not the whole of RULES.md: no blocking, no hiding, no full-JID
// probes. They are therefore lighter than lastseen, never heavier, which
// can only make the ratios understate lastseen's lead.

import (
	"strings"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
)

const nsDelay = "urn:xmpp:delay"

type peerSession struct{ full, bare, res string }

type peerHost struct {
	up    bool
	since time.Time
}

type peerBucket struct {
	tokens float64
	at     time.Time
}

type peerBase struct {
	served   map[string]bool
	roster   map[[2]string]bool // {owner, contact} → contact may see owner
	hosts    map[string]*peerHost
	buckets  map[string]*peerBucket
	burst    float64
	per      time.Duration
	sessions []peerSession
	out      [][]byte
}

func newPeerBase(served []string) peerBase {
	p := peerBase{
		served:  map[string]bool{},
		roster:  map[[2]string]bool{},
		hosts:   map[string]*peerHost{},
		buckets: map[string]*peerBucket{},
		burst:   10,
		per:     time.Minute,
	}
	for _, d := range served {
		p.served[strings.ToLower(d)] = true
	}
	return p
}

// normJID is the address handling of the etree and encoding/xml peers:
// lower-case the bare part, keep the resource. It is cheaper than RFC 7622
// (no PRECIS, no IDNA, no validation), which favours those peers.
func normJID(s string) (full, bare string) {
	res := ""
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s, res = s[:i], s[i:]
	}
	bare = strings.ToLower(s)
	if res == "" {
		return bare, bare
	}
	return bare + res, bare
}

func domainOf(bare string) string {
	if i := strings.IndexByte(bare, '@'); i >= 0 {
		return bare[i+1:]
	}
	return bare
}

func (p *peerBase) Roster(owner, contact string) error {
	_, o := normJID(owner)
	_, c := normJID(contact)
	p.roster[[2]string{o, c}] = true
	return nil
}

func (p *peerBase) Limit(_ clock.Time, burst int, per time.Duration) error {
	p.burst, p.per = float64(burst), per
	return nil
}

func (p *peerBase) Up(now clock.Time, domain string) error {
	_, d := normJID(domain)
	h := p.hosts[d]
	if h == nil {
		h = &peerHost{}
		p.hosts[d] = h
	}
	if !h.up {
		h.up, h.since = true, now.Std()
	}
	return nil
}

func (p *peerBase) Session(full string) (int, error) {
	f, b := normJID(full)
	p.sessions = append(p.sessions, peerSession{full: f, bare: b, res: f[len(b)+1:]})
	return len(p.sessions) - 1, nil
}

func (p *peerBase) Output(i int) []byte { return p.out[i] }
func (p *peerBase) Release() error      { return nil }

// take spends a probe token of the session full.
func (p *peerBase) take(now time.Time, full string) bool {
	b := p.buckets[full]
	if b == nil {
		b = &peerBucket{tokens: p.burst, at: now}
		p.buckets[full] = b
	}
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(p.burst, b.tokens+el.Seconds()/p.per.Seconds()*p.burst)
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// local reports whether probes to the bare JID j are answered here.
func (p *peerBase) local(j string) bool {
	if p.served[domainOf(j)] {
		return true
	}
	return !strings.Contains(j, "@") && p.hosts[j] != nil
}

// visible reports whether prober (bare) may see owner's presence (P2).
func (p *peerBase) visible(owner, prober string) bool {
	return owner == prober || p.roster[[2]string{owner, prober}]
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
