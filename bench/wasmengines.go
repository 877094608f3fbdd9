package main

// The WASM engines (issue 3): lastseen.wasm on wazero through bindings/go,
// measured in this process with its batch call, and under Node.js through
// bindings/node, measured by node_bench.mjs in a node process (see
// node.go). An engine that cannot run here shows as "n/a (why)"; the bench
// never fakes a figure.

import (
	"context"
	"fmt"
	"time"

	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

func wasmContenders() []Contender {
	return []Contender{
		{Name: "wazero", New: newWazero},
		// Node runs out of process: measureNode fills its cells.
		{Name: "node", Missing: nodeMissing(), External: true},
	}
}

// wazeroImpl drives a wazerohost.Engine: single calls for Client and
// Server, the batch call (Batcher) when the bench measures.
type wazeroImpl struct {
	e        *wazerohost.Engine
	sessions []stanza.JID
	out      []core.Output
	events   []wazerohost.Event
}

func newWazero(served []string) (Impl, error) {
	e, err := wazerohost.New(context.Background(), core.Config{Served: served})
	if err != nil {
		return nil, err
	}
	return &wazeroImpl{e: e}, nil
}

func (w *wazeroImpl) Roster(owner, contact string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	c, err := stanza.Parse(contact)
	if err != nil {
		return err
	}
	return w.e.SetRoster(o, c, core.SubBoth)
}

func (w *wazeroImpl) Limit(burst int, per time.Duration) error {
	return w.e.SetProbeLimit(core.RateLimit{Burst: burst, Per: per})
}

func (w *wazeroImpl) Up(now clock.Time, domain string) error {
	d, err := stanza.Parse(domain)
	if err != nil {
		return err
	}
	_, err = w.e.Up(now, d)
	return err
}

func (w *wazeroImpl) Session(full string) (int, error) {
	j, err := stanza.Parse(full)
	if err != nil {
		return 0, err
	}
	w.sessions = append(w.sessions, j)
	return len(w.sessions) - 1, nil
}

func (w *wazeroImpl) Client(now clock.Time, s int, raw []byte) (int, error) {
	out, err := w.e.Client(now, w.sessions[s], raw)
	w.out = out
	return len(out), err
}

func (w *wazeroImpl) Server(now clock.Time, raw []byte) (int, error) {
	out, err := w.e.Server(now, raw)
	w.out = out
	return len(out), err
}

func (w *wazeroImpl) Output(i int) []byte { return w.out[i].Stanza }
func (w *wazeroImpl) Release() error      { return w.e.Release(context.Background()) }
func (w *wazeroImpl) dropSessions()       { w.sessions = nil }

func (w *wazeroImpl) batch(kind wazerohost.EventKind, now clock.Time, s int, raws [][]byte) (int, error) {
	w.events = w.events[:0]
	for _, raw := range raws {
		ev := wazerohost.Event{Kind: kind, Now: now, Stanza: raw}
		if kind == wazerohost.EventClient {
			ev.JID = w.sessions[s]
		}
		w.events = append(w.events, ev)
	}
	rs, err := w.e.Batch(w.events)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range rs {
		if rs[i].Err != nil {
			return n, fmt.Errorf("batch event %d: %w", i, rs[i].Err)
		}
		n += len(rs[i].Outputs)
	}
	return n, nil
}

func (w *wazeroImpl) ClientBatch(now clock.Time, s int, raws [][]byte) (int, error) {
	return w.batch(wazerohost.EventClient, now, s, raws)
}

func (w *wazeroImpl) ServerBatch(now clock.Time, raws [][]byte) (int, error) {
	return w.batch(wazerohost.EventServer, now, 0, raws)
}
