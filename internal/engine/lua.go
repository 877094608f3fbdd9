package engine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/lastseen-xmpp/lastseen/internal/scenario"
)

// ErrNoLua means the lua engine cannot run: no `lua5.4` on PATH, no
// bindings/lua/driver.lua, or its C module not built (bash
// bindings/lua/build.sh).
var ErrNoLua = errors.New("lua engine unavailable")

// LuaDriverEnv names the environment variable that overrides where
// bindings/lua/driver.lua is; lastseen_core.so must be beside it.
const LuaDriverEnv = "LASTSEEN_LUA_DRIVER"

// LuaDriver finds bindings/lua/driver.lua: $LASTSEEN_LUA_DRIVER, or in the
// lastseen module that contains the working directory. It also checks
// that the C module it loads has been built.
func LuaDriver() (string, error) {
	p, err := moduleFile(LuaDriverEnv, ErrNoLua, "bindings", "lua", "driver.lua")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), "lastseen_core.so")); err != nil {
		return "", fmt.Errorf("%w: the C module is not built (bash bindings/lua/build.sh): %v", ErrNoLua, err)
	}
	return p, nil
}

// StartLua starts a Lua 5.4 process with the scenario driver of the Lua
// binding (bindings/lua/driver.lua: lastseen.wasm on wasmtime). It speaks
// the Node.js driver's protocol, so the host is a NodeHost.
func StartLua() (*NodeHost, error) {
	lua, err := exec.LookPath("lua5.4")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoLua, err)
	}
	driver, err := LuaDriver()
	if err != nil {
		return nil, err
	}
	return startDriver("lua", exec.Command(lua, driver))
}

// Lua returns a scenario.Factory that runs scripts on the WebAssembly
// module under the Lua binding (bindings/lua, wasmtime). One lua5.4
// process starts at the first script and serves every later one; it exits
// when this process does (its stdin closes).
func Lua() scenario.Factory { return lazyHost(StartLua, (*NodeHost).Factory) }

// LuaHostFacts is Lua with the facts from the host (ABI version 3; see
// NodeHost.HostFactsFactory).
func LuaHostFacts() scenario.Factory { return lazyHost(StartLua, (*NodeHost).HostFactsFactory) }
