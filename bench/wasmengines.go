package main

// The WASM engines (issue 3): lastseen.wasm on wazero through bindings/go,
// measured in this process with its batch call, and under Node.js through
// bindings/node, measured by node_bench.mjs in a node process, and under
// Lua 5.4 through bindings/lua (wasmtime), measured by lua_bench.lua (see
// node.go). An engine that cannot run here shows as "n/a (why)"; the bench
// never fakes a figure.

import (
	"context"
	"fmt"

	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
)

func wasmContenders() []Contender {
	return []Contender{
		{Name: "wazero", New: newWazero},
		// Node runs out of process: measureNode fills its cells.
		{Name: "node", Missing: nodeMissing(), External: true},
		// So does Lua (bindings/lua on wasmtime), with lua_bench.lua.
		{Name: "lua", Missing: luaMissing(), External: true},
	}
}

// wazeroImpl drives a wazerohost.Engine: single calls for Client and
// Server through goHost, the batch call (Batcher) when the bench measures.
type wazeroImpl struct {
	goHost
	e      *wazerohost.Engine
	events []wazerohost.Event
}

func newWazero(served []string) (Impl, error) {
	e, err := wazerohost.New(context.Background(), core.Config{Served: served})
	if err != nil {
		return nil, err
	}
	release := func() error { return e.Release(context.Background()) }
	return &wazeroImpl{goHost: goHost{m: e, release: release}, e: e}, nil
}

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
