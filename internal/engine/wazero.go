package engine

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
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
		return &hosted{m: e, release: func() error { return e.Release(context.Background()) }}, nil
	}
}

// WazeroHostFacts is Wazero with the facts from the host (ABI version 3):
// the engine's Config.Auth is a core.MemoryAuth that the script's roster,
// block and hide lines fill, and the guest asks it through the lastseen
// imports whenever the machine needs a fact. It must give the bytes of
// every other engine, which get the same facts as events.
func WazeroHostFacts() scenario.Factory {
	return func(served []string) (scenario.Engine, error) {
		rt, err := wazeroRuntime()
		if err != nil {
			return nil, err
		}
		auth := core.NewMemoryAuth()
		// A machine over the same MemoryAuth takes the script's facts, so
		// that a fact line is checked and refused as the native engine
		// refuses it; the engine only reads them.
		facts, err := core.New(core.Config{Served: served, Auth: auth})
		if err != nil {
			return nil, err
		}
		e, err := rt.New(context.Background(), core.Config{Served: served, Auth: auth})
		if err != nil {
			return nil, err
		}
		return &hosted{m: factsBy{e, facts}, release: func() error { return e.Release(context.Background()) }}, nil
	}
}

// factsBy is an Engine whose facts another machine takes.
type factsBy struct {
	*wazerohost.Engine
	facts *core.Machine
}

func (f factsBy) SetRoster(owner, contact stanza.JID, sub core.Subscription) error {
	return f.facts.SetRoster(owner, contact, sub)
}

func (f factsBy) SetBlock(owner, jid stanza.JID, blocked bool) error {
	return f.facts.SetBlock(owner, jid, blocked)
}

func (f factsBy) SetHidden(owner stanza.JID, hidden bool) error {
	return f.facts.SetHidden(owner, hidden)
}
