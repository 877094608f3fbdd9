package engine

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

var (
	wazeroOnce sync.Once
	wazeroRT   *wazerohost.Runtime
	wazeroErr  error
)

// wazeroRuntime is the process's runtime for scenario engines. Compiled
// code is cached under the user's cache directory, so only the first
// process on a machine pays for compiling the module.
func wazeroRuntime() (*wazerohost.Runtime, error) {
	wazeroOnce.Do(func() {
		var rc wazerohost.RuntimeConfig
		if dir, err := os.UserCacheDir(); err == nil {
			rc.CacheDir = filepath.Join(dir, "lastseen", "wazero")
		}
		wazeroRT, wazeroErr = wazerohost.NewRuntime(context.Background(), rc)
		if wazeroErr != nil && rc.CacheDir != "" {
			// An unwritable cache must not stop the engine.
			wazeroRT, wazeroErr = wazerohost.NewRuntime(context.Background(), wazerohost.RuntimeConfig{})
		}
	})
	return wazeroRT, wazeroErr
}

// Wazero returns a scenario.Factory that runs scripts on the WebAssembly
// module (wasm/lastseen.wasm) under wazero, through bindings/go: each script
// gets its own instance.
func Wazero() scenario.Factory {
	return func(served []string) (scenario.Engine, error) {
		rt, err := wazeroRuntime()
		if err != nil {
			return nil, err
		}
		e, err := rt.New(context.Background(), core.Config{Served: served})
		if err != nil {
			return nil, err
		}
		return &wazeroEngine{e: e}, nil
	}
}

// wazeroEngine parses JIDs on the host, as the native engine does, and
// hands them to the wazero Engine, whose API is core.Machine's.
type wazeroEngine struct {
	e    *wazerohost.Engine
	last []core.Output // the outputs of the last input, for the differential tests
}

func (w *wazeroEngine) record(out []core.Output, err error) ([][]byte, error) {
	w.last = out
	if err != nil {
		w.last = nil
		return nil, err
	}
	res := make([][]byte, len(out))
	for i, o := range out {
		res[i] = o.Stanza // the Engine's outputs are ours to keep
	}
	return res, nil
}

func (w *wazeroEngine) lastOutputs() []core.Output { return w.last }

func (w *wazeroEngine) Roster(owner, contact, sub string) error {
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
	return w.e.SetRoster(o, c, s)
}

func (w *wazeroEngine) Block(owner, jid string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	j, err := stanza.Parse(jid)
	if err != nil {
		return err
	}
	return w.e.SetBlock(o, j, true)
}

func (w *wazeroEngine) Hide(owner string) error {
	o, err := stanza.Parse(owner)
	if err != nil {
		return err
	}
	return w.e.SetHidden(o, true)
}

func (w *wazeroEngine) Limit(burst int, per time.Duration) error {
	return w.e.SetProbeLimit(core.RateLimit{Burst: burst, Per: per})
}

// parseInput parses an input line's JID; one that does not parse is
// reported the way the machine reports bad input.
func parseInput(event, s string) (stanza.JID, error) {
	j, err := stanza.Parse(s)
	if err != nil {
		return j, &core.InputError{Event: event, Err: err}
	}
	return j, nil
}

func (w *wazeroEngine) Client(now clock.Time, s string, xml []byte) ([][]byte, error) {
	j, err := parseInput("client", s)
	if err != nil {
		return w.record(nil, err)
	}
	return w.record(w.e.Client(now, j, xml))
}

func (w *wazeroEngine) Server(now clock.Time, xml []byte) ([][]byte, error) {
	return w.record(w.e.Server(now, xml))
}

func (w *wazeroEngine) Close(now clock.Time, s string) ([][]byte, error) {
	j, err := parseInput("close", s)
	if err != nil {
		return w.record(nil, err)
	}
	return w.record(w.e.Close(now, j))
}

func (w *wazeroEngine) Up(now clock.Time, s string) ([][]byte, error) {
	j, err := parseInput("up", s)
	if err != nil {
		return w.record(nil, err)
	}
	return w.record(w.e.Up(now, j))
}

func (w *wazeroEngine) Down(now clock.Time, s string) ([][]byte, error) {
	j, err := parseInput("down", s)
	if err != nil {
		return w.record(nil, err)
	}
	return w.record(w.e.Down(now, j))
}

func (w *wazeroEngine) State() ([]byte, error) { return w.e.State() }

// Snapshot implements Durable.
func (w *wazeroEngine) Snapshot() ([]byte, error) { return w.e.SnapshotErr() }

// Restore implements Durable.
func (w *wazeroEngine) Restore(snapshot []byte) error { return w.e.Restore(snapshot) }

// Restarted implements Durable.
func (w *wazeroEngine) Restarted() (int, error) {
	n := w.e.Restarted()
	if n < 0 {
		_, err := w.e.SnapshotErr()
		return 0, err
	}
	return n, nil
}

func (w *wazeroEngine) Release() error { return w.e.Release(context.Background()) }
