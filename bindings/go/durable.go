package wazerohost

import (
	"context"

	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/store"
)

// OpenDurable is store.Open on the WebAssembly engine: it opens (creating
// it if needed) the store in dir and returns a store.Durable whose machine
// is an Engine made with cfg on the default Runtime (cfg.Journal is set for
// you). The directory's format is package store's, so a store written by
// the native machine opens here and the other way round; Durable.Engine
// returns the *Engine.
//
// If the instance traps (ErrTrap), the engine restarts empty while the
// directory still holds everything acknowledged: shut the Durable down and
// open it again to get the state back.
func OpenDurable(ctx context.Context, dir string, cfg core.Config, opts store.Options) (*store.Durable, error) {
	cfg.Journal = true
	e, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return openDurable(ctx, e, dir, opts)
}

// OpenDurable is the package's OpenDurable on this Runtime.
func (rt *Runtime) OpenDurable(ctx context.Context, dir string, cfg core.Config, opts store.Options) (*store.Durable, error) {
	cfg.Journal = true
	e, err := rt.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return openDurable(ctx, e, dir, opts)
}

func openDurable(ctx context.Context, e *Engine, dir string, opts store.Options) (*store.Durable, error) {
	d, err := store.OpenEngine(dir, e, opts)
	if err != nil {
		e.Release(ctx)
		return nil, err
	}
	return d, nil
}
