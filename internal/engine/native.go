// Package engine adapts each way of running lastseen (the native Go core,
// the WASM module under wazero, the WASM module under Node.js) to the
// scenario runner's Engine interface, so that one corpus runs on all.
package engine

import (
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Native returns a scenario.Factory that runs scripts on the Go core.
func Native() scenario.Factory {
	return func(served []string) (scenario.Engine, error) {
		m, err := core.New(core.Config{Served: served})
		if err != nil {
			return nil, err
		}
		return &native{m: m}, nil
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
		return &native{m: m}, nil
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
	SetProbeLimit(l core.RateLimit) error
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

type native struct{ m machine }

func outputs(out []core.Output, err error) ([][]byte, error) {
	if err != nil {
		return nil, err
	}
	res := make([][]byte, len(out))
	for i, o := range out {
		res[i] = append([]byte(nil), o.Stanza...)
	}
	return res, nil
}

func (n *native) Roster(owner, contact, sub string) error {
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

func (n *native) Block(owner, jid string) error {
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

func (n *native) Hide(owner string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	return n.m.SetHidden(o, true)
}

func (n *native) Limit(burst int, per time.Duration) error {
	return n.m.SetProbeLimit(core.RateLimit{Burst: burst, Per: per})
}

// session parses a session JID; a JID that does not parse is reported the
// way the machine reports bad input.
func session(event, s string) (stanza.JID, error) {
	j, err := stanza.Parse(s)
	if err != nil {
		return j, &core.InputError{Event: event, Err: err}
	}
	return j, nil
}

func (n *native) Client(now clock.Time, s string, xml []byte) ([][]byte, error) {
	j, err := session("client", s)
	if err != nil {
		return nil, err
	}
	return outputs(n.m.Client(now, j, xml))
}

func (n *native) Server(now clock.Time, xml []byte) ([][]byte, error) {
	return outputs(n.m.Server(now, xml))
}

func (n *native) Close(now clock.Time, s string) ([][]byte, error) {
	j, err := session("close", s)
	if err != nil {
		return nil, err
	}
	return outputs(n.m.Close(now, j))
}

func (n *native) Up(now clock.Time, s string) ([][]byte, error) {
	j, err := session("up", s)
	if err != nil {
		return nil, err
	}
	return outputs(n.m.Up(now, j))
}

func (n *native) Down(now clock.Time, s string) ([][]byte, error) {
	j, err := session("down", s)
	if err != nil {
		return nil, err
	}
	return outputs(n.m.Down(now, j))
}

func (n *native) State() ([]byte, error) { return n.m.AppendState(nil), nil }

// Snapshot implements Durable.
func (n *native) Snapshot() ([]byte, error) { return n.m.Snapshot(nil), nil }

// Restore implements Durable.
func (n *native) Restore(snapshot []byte) error { return n.m.Restore(snapshot) }

// Restarted implements Durable.
func (n *native) Restarted() (int, error) { return n.m.Restarted(), nil }

func (n *native) Release() error { return nil }
