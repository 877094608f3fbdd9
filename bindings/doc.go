// Package bindings holds no code: the hosts for wasm/lastseen.wasm are in
// its subdirectories (go: wazero; node: Node.js). Its test runs the two
// examples of README.md exactly as written.
package bindings
