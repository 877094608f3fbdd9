package main

import (
	"errors"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Impl is one way of doing what lastseen does for the workloads measured
// here: an engine of lastseen (native, sharded, wazero, Node) or a peer
// baseline written the way a Go server author would. Every Impl gets the
// same inputs and must emit the same stanzas (peers_test.go checks it).
//
// Sessions are set up once, as a server does at login, and then named by
// the handle Session returned, so that per-stanza cost does not include
// parsing the session's JID.
type Impl interface {
	// Roster lets contact (bare) see owner's presence (subscription both).
	Roster(owner, contact string) error
	// Limit sets the client-probe rate limit at now: burst probes,
	// refilled at burst per per.
	Limit(now clock.Time, burst int, per time.Duration) error
	// Up records that a served domain came online.
	Up(now clock.Time, domain string) error
	// Session opens a session for a full JID and returns its handle.
	Session(full string) (int, error)
	// Client handles a stanza from session s and returns how many stanzas
	// it emitted; Output reads them until the next call.
	Client(now clock.Time, s int, raw []byte) (int, error)
	// Server handles a stanza from another server.
	Server(now clock.Time, raw []byte) (int, error)
	// Output returns the i-th stanza the last call emitted.
	Output(i int) []byte
	// Release frees what the Impl holds (a WASM instance, a process).
	Release() error
}

// Batcher is an Impl that can take many stanzas in one call, as the WASM
// engines do to amortise crossing into the guest. The bench uses it when
// present and reports the cost per stanza.
type Batcher interface {
	ClientBatch(now clock.Time, s int, raws [][]byte) (int, error)
	ServerBatch(now clock.Time, raws [][]byte) (int, error)
}

// Contender names an Impl and how to make one. Missing, when set, says why
// it cannot run in this build; its rows then read "n/a (Missing)".
type Contender struct {
	Name    string
	Peer    bool // a baseline rather than a lastseen engine
	New     func(served []string) (Impl, error)
	Missing string
	// External contenders run in another process and measure themselves
	// (Node: see node.go); measureWorkload leaves their cells alone.
	External bool
}

// contenders lists every engine and peer in table order. Engines that are
// not built yet stay listed so that the table shows the gap instead of
// hiding it.
func contenders() []Contender {
	cs := []Contender{
		{Name: "native", New: newNative},
		{Name: "native-sharded", New: newSharded},
	}
	cs = append(cs, wasmContenders()...)
	cs = append(cs,
		Contender{Name: "etree", Peer: true, New: newEtreePeer},
		Contender{Name: "encoding/xml", Peer: true, New: newXMLPeer},
		Contender{Name: "mellium", Peer: true, New: newMelliumPeer},
	)
	return cs
}

// goMachine is the method set that core.Machine, core.Sharded and the
// wazero engine (whose API is core's) share, as far as the bench uses it.
type goMachine interface {
	SetRoster(owner, contact stanza.JID, sub core.Subscription) error
	SetProbeLimit(now clock.Time, l core.RateLimit) error
	Up(now clock.Time, jid stanza.JID) ([]core.Output, error)
	Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error)
	Server(now clock.Time, raw []byte) ([]core.Output, error)
}

// goHost drives a goMachine directly, as a Go host would: core.Machine
// (native), core.Sharded from one goroutine (its cost over native is the
// locking, the pooled parser and copying outputs into a reused
// core.Outputs), or the wazero engine.
type goHost struct {
	m        goMachine
	sessions []stanza.JID
	out      []core.Output
	release  func() error // nil when there is nothing to free
}

func newNative(served []string) (Impl, error) {
	m, err := core.New(core.Config{Served: served})
	if err != nil {
		return nil, err
	}
	return &goHost{m: m}, nil
}

func newSharded(served []string) (Impl, error) {
	m, err := core.NewSharded(core.Config{Served: served}, 0)
	if err != nil {
		return nil, err
	}
	return &goHost{m: &shardedInto{Sharded: m}}, nil
}

// shardedInto calls core.Sharded the way a Go server's connection
// goroutine would for the lowest cost: with an Outputs it reuses.
type shardedInto struct {
	*core.Sharded
	o core.Outputs
}

func (s *shardedInto) Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error) {
	err := s.ClientInto(&s.o, now, session, raw)
	return s.o.List, err
}

func (s *shardedInto) Server(now clock.Time, raw []byte) ([]core.Output, error) {
	err := s.ServerInto(&s.o, now, raw)
	return s.o.List, err
}

func (n *goHost) Roster(owner, contact string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	c, err := stanza.Parse(contact)
	if err != nil {
		return err
	}
	return n.m.SetRoster(o, c, core.SubBoth)
}

func (n *goHost) Limit(now clock.Time, burst int, per time.Duration) error {
	return n.m.SetProbeLimit(now, core.RateLimit{Burst: burst, Per: per})
}

func (n *goHost) Up(now clock.Time, domain string) error {
	d, err := stanza.Parse(domain)
	if err != nil {
		return err
	}
	_, err = n.m.Up(now, d)
	return err
}

func (n *goHost) Session(full string) (int, error) {
	j, err := stanza.Parse(full)
	if err != nil {
		return 0, err
	}
	n.sessions = append(n.sessions, j)
	return len(n.sessions) - 1, nil
}

func (n *goHost) Client(now clock.Time, s int, raw []byte) (int, error) {
	out, err := n.m.Client(now, n.sessions[s], raw)
	n.out = out
	return len(out), err
}

func (n *goHost) Server(now clock.Time, raw []byte) (int, error) {
	out, err := n.m.Server(now, raw)
	n.out = out
	return len(out), err
}

func (n *goHost) Output(i int) []byte { return n.out[i].Stanza }

func (n *goHost) Release() error {
	if n.release == nil {
		return nil
	}
	return n.release()
}

var errNotPresence = errors.New("not a presence stanza")
