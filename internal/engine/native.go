// Package engine adapts each way of running lastseen (the native Go core,
// the WASM module under wazero, the WASM module under Node.js) to the
// scenario runner's Engine interface, so that one corpus runs on all.
package engine

import (
	"bytes"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Native returns a scenario.Factory that runs scripts on the Go core.
func Native() scenario.Factory {
	return NativeWith(func(served []string) core.Config { return core.Config{Served: served} })
}

// NativeWith is Native with the Config that cfg returns for a script's
// served domains, for tests that run the corpus on a machine set up
// differently (another Authorizer, say).
func NativeWith(cfg func(served []string) core.Config) scenario.Factory {
	return func(served []string) (scenario.Engine, error) {
		m, err := core.New(cfg(served))
		if err != nil {
			return nil, err
		}
		return &hosted{m: m}, nil
	}
}

// Sharded returns a scenario.Factory that runs scripts on the Go core's
// goroutine-safe wrapper with n shards, so that the corpus also checks that
// sharding changes nothing a host can see.
func Sharded(n int) scenario.Factory {
	return func(served []string) (scenario.Engine, error) {
		m, err := core.NewSharded(core.Config{Served: served}, n)
		if err != nil {
			return nil, err
		}
		return &hosted{m: m}, nil
	}
}

// machine is what *core.Machine and *core.Sharded have in common.
type machine interface {
	Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error)
	Server(now clock.Time, raw []byte) ([]core.Output, error)
	Close(now clock.Time, session stanza.JID) ([]core.Output, error)
	Up(now clock.Time, jid stanza.JID) ([]core.Output, error)
	Down(now clock.Time, jid stanza.JID) ([]core.Output, error)
	SetRoster(owner, contact stanza.JID, sub core.Subscription) error
	SetBlock(owner, jid stanza.JID, blocked bool) error
	SetHidden(owner stanza.JID, hidden bool) error
	SetProbeLimit(now clock.Time, l core.RateLimit) error
	AppendState(dst []byte) []byte
	Snapshot(dst []byte) []byte
	Restore(snapshot []byte) error
	Restarted() int
}

// Durable is what every engine offers besides scenario.Engine: the durable
// snapshot, in one format all engines read and write.
type Durable interface {
	Snapshot() ([]byte, error)
	Restore(snapshot []byte) error
	Restarted() (int, error)
}

// hosted adapts any machine (the Go core, its sharded wrapper, or the WASM
// module under wazero, whose API is the core's) to scenario.Engine. JIDs are
// parsed on the host, as a Go server would; the outputs of the last input are
// kept with their kinds and addresses for the differential tests.
type hosted struct {
	m       machine
	last    []core.Output
	release func() error // nil when there is nothing to free
}

func (n *hosted) record(out []core.Output, err error) ([][]byte, error) {
	n.last = nil
	if err != nil {
		return nil, err
	}
	res := make([][]byte, len(out))
	for i, o := range out {
		// A Machine's outputs alias its buffer until its next call.
		o.To, o.Stanza = bytes.Clone(o.To), bytes.Clone(o.Stanza)
		n.last = append(n.last, o)
		res[i] = o.Stanza
	}
	return res, nil
}

func (n *hosted) lastOutputs() []core.Output { return n.last }

func (n *hosted) Roster(owner, contact, sub string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	c, err := stanza.Parse(contact)
	if err != nil {
		return err
	}
	s, ok := core.ParseSubscription(sub)
	if !ok {
		return &core.InputError{Event: "roster", Err: core.ErrConfig}
	}
	return n.m.SetRoster(o, c, s)
}

func (n *hosted) Block(owner, jid string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	j, err := stanza.Parse(jid)
	if err != nil {
		return err
	}
	return n.m.SetBlock(o, j, true)
}

func (n *hosted) Hide(owner string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	return n.m.SetHidden(o, true)
}

func (n *hosted) Limit(now clock.Time, burst int, per time.Duration) error {
	return n.m.SetProbeLimit(now, core.RateLimit{Burst: burst, Per: per})
}

// withJID parses an input line's JID, reporting one that does not parse the
// way the machine reports bad input, then makes the call.
func (n *hosted) withJID(event, s string, call func(stanza.JID) ([]core.Output, error)) ([][]byte, error) {
	j, err := stanza.Parse(s)
	if err != nil {
		return n.record(nil, &core.InputError{Event: event, Err: err})
	}
	return n.record(call(j))
}

func (n *hosted) Client(now clock.Time, s string, xml []byte) ([][]byte, error) {
	return n.withJID("client", s, func(j stanza.JID) ([]core.Output, error) { return n.m.Client(now, j, xml) })
}

func (n *hosted) Server(now clock.Time, xml []byte) ([][]byte, error) {
	return n.record(n.m.Server(now, xml))
}

func (n *hosted) Close(now clock.Time, s string) ([][]byte, error) {
	return n.withJID("close", s, func(j stanza.JID) ([]core.Output, error) { return n.m.Close(now, j) })
}

func (n *hosted) Up(now clock.Time, s string) ([][]byte, error) {
	return n.withJID("up", s, func(j stanza.JID) ([]core.Output, error) { return n.m.Up(now, j) })
}

func (n *hosted) Down(now clock.Time, s string) ([][]byte, error) {
	return n.withJID("down", s, func(j stanza.JID) ([]core.Output, error) { return n.m.Down(now, j) })
}

// State returns the machine's state encoding; a machine that can fail to
// answer (the WASM engine) says why.
func (n *hosted) State() ([]byte, error) {
	if e, ok := n.m.(interface{ State() ([]byte, error) }); ok {
		return e.State()
	}
	return n.m.AppendState(nil), nil
}

// Snapshot implements Durable.
func (n *hosted) Snapshot() ([]byte, error) {
	if e, ok := n.m.(interface{ SnapshotErr() ([]byte, error) }); ok {
		return e.SnapshotErr()
	}
	return n.m.Snapshot(nil), nil
}

// Restore implements Durable.
func (n *hosted) Restore(snapshot []byte) error { return n.m.Restore(snapshot) }

// Restarted implements Durable.
func (n *hosted) Restarted() (int, error) {
	c := n.m.Restarted()
	if c < 0 { // the WASM engine could not answer
		_, err := n.Snapshot()
		return 0, err
	}
	return c, nil
}

func (n *hosted) Release() error {
	if n.release == nil {
		return nil
	}
	return n.release()
}
