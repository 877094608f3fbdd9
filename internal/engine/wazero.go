package engine

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
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
