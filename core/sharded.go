package core

import (
	"runtime"
	"sync"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Sharded is a Machine for servers with many connections: it is safe for
// concurrent use. Users are spread over shards by bare JID, each shard a
// Machine behind its own mutex, so calls about different users run in
// parallel; stanzas are parsed before any lock is taken.
//
// Sharded behaves like one Machine with the same Config, with two
// differences a host may notice: its outputs are copies the caller owns,
// and Config.MaxEntities caps each shard rather than the whole.
// The Authorizer is shared by all shards and must be safe for concurrent
// use (MemoryAuth is).
type Sharded struct {
	shards    []shard
	auth      Authorizer
	parsers   sync.Pool
	limits    stanza.Limits
	journalFn func(records [][]byte) error // see SetJournal
	snapMu    sync.Mutex                   // one SnapshotCut at a time
	snapUser  int                          // bytes per user of the last snapshot; under snapMu
	snapParts []shardPart                  // each shard's copy buffers, kept for the next snapshot; under snapMu
}

// shardsPerProc is how many shards NewSharded makes per GOMAXPROCS
// when asked for none in particular. A call holds its shard's lock for
// part of its time, and a core that finds the lock taken waits (spins,
// then parks its goroutine): the fewer the shards, the more often. Measured
// on 2 cores (a presence update and a probe per user, 200 ms pairs, median
// of 8): with 8 shards, the earlier default of 4 per GOMAXPROCS, Sharded
// reached 1.61× one core with 4,096 users and 1.18× with 100,000, where
// independent Machines reached 1.94× and 1.85×; with 128 shards it reached
// 1.73× and 1.78×. An empty shard costs about 1.4 KB, so 64 per
// GOMAXPROCS is 180 KB on 2 cores and 5.6 MB on 64.
const shardsPerProc = 64

type shard struct {
	mu sync.Mutex
	m  *Machine
	// snap, while not nil, waits for a copy of the shard's users (see
	// SnapshotCut): whoever locks the shard next makes it.
	snap *shardPart
	// Pads the shard to a 64-byte cache line (mutex 8 bytes, pointers 8
	// each), so that two cores locking neighbouring shards do not contend
	// for one line.
	_ [64 - 24]byte
}

// NewSharded returns a Sharded with n shards; n <= 0 means 64 shards per
// GOMAXPROCS, which measured close to independent Machines on 2 cores while
// an empty shard costs about 1.4 KB. Config.MaxEntities caps each shard, so a
// host that wants to cap the whole passes an explicit n and MaxEntities
// divided by it (with some headroom: users do not spread exactly evenly).
func NewSharded(cfg Config, n int) (*Sharded, error) {
	if n <= 0 {
		n = shardsPerProc * runtime.GOMAXPROCS(0)
	}
	if cfg.Auth == nil {
		cfg.Auth = NewMemoryAuth()
	}
	s := &Sharded{shards: make([]shard, n), auth: cfg.Auth, limits: cfg.Limits}
	for i := range s.shards {
		m, err := New(cfg)
		if err != nil {
			return nil, err
		}
		s.shards[i].m = m
	}
	s.parsers.New = func() any { return &parsed{p: stanza.Parser{Limits: s.limits}} }
	return s, nil
}

type parsed struct {
	p    stanza.Parser
	pres stanza.Presence
	iq   stanza.IQ
	jids jidReader
}

// shardOf picks the shard of a bare JID with strhash: cheap, and stable
// across runs so that tests are reproducible.
func (s *Sharded) shardOf(bare string) *shard {
	return &s.shards[strhash(bare)%uint64(len(s.shards))]
}

// Outputs receives what a Sharded call emits, in memory the caller owns
// and reuses: a connection's goroutine keeps one Outputs and passes it to
// ClientInto and ServerInto on every call, so that steady traffic
// allocates nothing once the buffers have grown. List's slices stay valid
// until the Outputs is passed to another call. The zero value is ready to
// use; an Outputs must not be shared by concurrent calls.
type Outputs struct {
	// List is what the last call emitted, in order; empty when it emitted
	// nothing or refused its input.
	List []Output
	buf  []byte
}

func (o *Outputs) reset() {
	o.List = o.List[:0]
	o.buf = o.buf[:0]
}

// add copies out, which aliases a Machine's buffers, into o. The buffer
// grows before any copy, so earlier Outputs in List never move.
func (o *Outputs) add(out []Output) {
	n := 0
	for _, x := range out {
		n += len(x.To) + len(x.Stanza)
	}
	if len(o.buf)+n > cap(o.buf) {
		// Outputs already in List keep the old array alive; new ones go
		// to a fresh one big enough for this call.
		o.buf = make([]byte, 0, max(2*cap(o.buf), n))
	}
	for _, x := range out {
		start := len(o.buf)
		o.buf = append(o.buf, x.To...)
		mid := len(o.buf)
		o.buf = append(o.buf, x.Stanza...)
		o.List = append(o.List, Output{Kind: x.Kind, To: o.buf[start:mid:mid], Stanza: o.buf[mid:len(o.buf):len(o.buf)]})
	}
}

// Client is Machine.Client, safe for concurrent use. A client probe to a
// local user on another shard is admitted (C3, C4) on the session's shard
// and answered on the target's. The outputs are copies the caller owns;
// ClientInto avoids allocating them.
func (s *Sharded) Client(now clock.Time, session stanza.JID, raw []byte) ([]Output, error) {
	var o Outputs
	if err := s.ClientInto(&o, now, session, raw); err != nil || len(o.List) == 0 {
		return nil, err
	}
	return o.List, nil
}

// ClientInto is Client writing its outputs into o, which it resets first.
// On error o.List is empty.
func (s *Sharded) ClientInto(o *Outputs, now clock.Time, session stanza.JID, raw []byte) error {
	o.reset()
	ps := s.parsers.Get().(*parsed)
	defer s.parsers.Put(ps)
	isIQ, err := ps.p.ParseStanza(raw, &ps.pres, &ps.iq)
	if err != nil {
		return bad("client", err)
	}
	if isIQ {
		return s.clientQuery(o, now, session, ps)
	}
	sh := s.shardOf(session.Bare().String())
	if ps.pres.Type == stanza.Probe {
		s.lockRead(sh) // a probe spends a token, which no snapshot holds
	} else {
		s.lock(sh)
	}
	m := sh.m
	m.reset()
	c, err := m.checkClient(session, &ps.pres)
	if err == nil {
		err = m.client(now, &c, false)
	}
	if err == nil {
		err = s.journaled(m)
	}
	if err != nil {
		sh.mu.Unlock()
		return err
	}
	o.add(m.finish())
	sh.mu.Unlock()
	if !c.pending.set {
		return nil
	}
	p := &c.pending
	th := s.shardOf(p.target.Bare().String())
	s.lockRead(th)
	defer th.mu.Unlock()
	th.m.reset()
	th.m.answer(p.from, p.target, p.id)
	o.add(th.m.finish())
	return nil
}

// Server is Machine.Server, safe for concurrent use. The outputs are
// copies the caller owns; ServerInto avoids allocating them.
func (s *Sharded) Server(now clock.Time, raw []byte) ([]Output, error) {
	var o Outputs
	if err := s.ServerInto(&o, now, raw); err != nil || len(o.List) == 0 {
		return nil, err
	}
	return o.List, nil
}

// ServerInto is Server writing its outputs into o, which it resets first.
// On error o.List is empty.
func (s *Sharded) ServerInto(o *Outputs, now clock.Time, raw []byte) error {
	o.reset()
	ps := s.parsers.Get().(*parsed)
	defer s.parsers.Put(ps)
	isIQ, err := ps.p.ParseStanza(raw, &ps.pres, &ps.iq)
	if err != nil {
		return bad("server", err)
	}
	if isIQ {
		return s.serverQuery(o, now, ps)
	}
	// Address checks read no state: they run before any lock, with the
	// parser's own jidReader.
	from, to, err := ps.jids.serverJIDs(&ps.pres)
	if err != nil {
		return err
	}
	sh := s.shardOf(to.Bare().String())
	s.lockRead(sh) // presence from a server changes nothing a snapshot holds
	defer sh.mu.Unlock()
	m := sh.m
	m.reset()
	if err := m.checkServerTarget(&ps.pres, to); err != nil {
		return err
	}
	if ps.pres.Type == stanza.Probe {
		m.idbuf = ps.pres.AppendIDAttr(m.idbuf[:0])
		m.answer(from, to, m.idbuf)
	}
	o.add(m.finish())
	return nil
}

// clientQuery answers or routes a client's Last Activity query on the
// queried JID's shard: a query reads the target's state and no session
// state (it uses no probe token, RULES L3), so one lock is enough.
func (s *Sharded) clientQuery(o *Outputs, now clock.Time, session stanza.JID, ps *parsed) error {
	// Served domains are the same on every shard and never change.
	if err := s.shards[0].m.checkSession("client", session); err != nil {
		return err
	}
	q, err := ps.jids.clientQuery(session, &ps.iq)
	if err != nil {
		return err
	}
	return s.onTargetShard(o, "client", q.to, func(m *Machine) { m.clientQuery(now, &q) })
}

// onTargetShard checks a query's target and answers it with answer on the
// target's shard, under its lock.
func (s *Sharded) onTargetShard(o *Outputs, event string, to stanza.JID, answer func(m *Machine)) error {
	sh := s.shardOf(to.Bare().String())
	s.lockRead(sh) // a query changes nothing (RULES L3)
	defer sh.mu.Unlock()
	m := sh.m
	m.reset()
	if err := m.checkQueryTarget(event, to); err != nil {
		return err
	}
	answer(m)
	o.add(m.finish())
	return nil
}

// serverQuery answers a Last Activity query from another server on the
// queried JID's shard.
func (s *Sharded) serverQuery(o *Outputs, now clock.Time, ps *parsed) error {
	q, err := ps.jids.serverQuery(&ps.iq)
	if err != nil {
		return err
	}
	return s.onTargetShard(o, "server", q.to, func(m *Machine) {
		m.idbuf = append(append(m.idbuf[:0], ' '), q.id...)
		m.lastActivity(now, q.from, q.to, m.idbuf)
	})
}

// Close is Machine.Close, safe for concurrent use.
func (s *Sharded) Close(now clock.Time, session stanza.JID) ([]Output, error) {
	sh := s.shardOf(session.Bare().String())
	s.lock(sh)
	defer sh.mu.Unlock()
	out, err := sh.m.Close(now, session)
	if err == nil {
		err = s.journaled(sh.m)
	}
	return out, err
}

// Up is Machine.Up, safe for concurrent use. Every shard answers probes to
// hosted domains, so each learns of it; the announcements (RULES S3) are
// emitted once, as copies the caller owns.
func (s *Sharded) Up(now clock.Time, jid stanza.JID) ([]Output, error) {
	return s.hostAll("up", now, jid, true)
}

// Down is Machine.Down, safe for concurrent use.
func (s *Sharded) Down(now clock.Time, jid stanza.JID) ([]Output, error) {
	return s.hostAll("down", now, jid, false)
}

// all applies f to every shard in turn. Shards hold the same hosted
// domains, so f fails on the first shard or on none.
func (s *Sharded) all(f func(*Machine) ([]Output, error)) ([]Output, error) {
	for i := range s.shards {
		sh := &s.shards[i]
		s.lock(sh)
		_, err := f(sh.m)
		sh.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// SetRoster is Machine.SetRoster, safe for concurrent use.
func (s *Sharded) SetRoster(owner, contact stanza.JID, sub Subscription) error {
	return s.shards[0].m.SetRoster(owner, contact, sub) // the shared Authorizer locks itself
}

// SetBlock is Machine.SetBlock, safe for concurrent use.
func (s *Sharded) SetBlock(owner, jid stanza.JID, blocked bool) error {
	return s.shards[0].m.SetBlock(owner, jid, blocked)
}

// SetHidden is Machine.SetHidden, safe for concurrent use.
func (s *Sharded) SetHidden(owner stanza.JID, hidden bool) error {
	return s.shards[0].m.SetHidden(owner, hidden)
}

// SetProbeLimit is Machine.SetProbeLimit, safe for concurrent use.
func (s *Sharded) SetProbeLimit(now clock.Time, l RateLimit) error {
	if err := l.check(); err != nil {
		return bad("limit", err)
	}
	_, err := s.all(func(m *Machine) ([]Output, error) { return nil, m.SetProbeLimit(now, l) })
	return err
}

// Auth returns the Authorizer that every shard asks (the Config's, or the
// MemoryAuth that NewSharded made when the Config had none).
func (s *Sharded) Auth() Authorizer { return s.auth }

// Serves reports whether domain is one of the served domains; every shard
// serves the same ones.
func (s *Sharded) Serves(domain string) bool {
	// served is fixed at New, so reading it needs no lock.
	return s.shards[0].m.Serves(domain)
}

// ProbeLimit returns the current client-probe rate limit, which
// SetProbeLimit sets on every shard at once.
func (s *Sharded) ProbeLimit() RateLimit {
	sh := &s.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m.ProbeLimit()
}

// AppendState is Machine.AppendState over all shards: it encodes exactly
// what one Machine fed the same inputs would. It holds every shard's lock
// while it runs.
func (s *Sharded) AppendState(dst []byte) []byte {
	for i := range s.shards {
		s.shards[i].mu.Lock()
		defer s.shards[i].mu.Unlock()
	}
	users := make(map[string]*user)
	buckets := make(map[string]*bucket)
	for i := range s.shards {
		m := s.shards[i].m
		for k, v := range m.users {
			users[k] = v
		}
		for k, v := range m.buckets {
			buckets[k] = v
		}
	}
	m0 := s.shards[0].m
	return appendState(dst, m0.limit, users, m0.hosted, buckets)
}
