// Package bindings holds no code: the hosts for wasm/lastseen.wasm are in
// its subdirectories (go: wazero; node: Node.js; lua: Lua 5.4 on wasmtime).
// Its test runs the three examples of README.md exactly as written.
package bindings
