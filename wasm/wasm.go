// Package wasm holds lastseen's WebAssembly module: core.Machine compiled
// for GOOS=wasip1 GOARCH=wasm as a reactor, behind the binary ABI that
// ABI.md in this directory specifies for hosts in any language.
//
// The module is built from ./guest by build.sh with pinned flags, so the
// same sources give the same bytes on every machine; .ci/run rebuilds it
// and fails when the committed lastseen.wasm differs. After changing core,
// stanza, clock or the guest, regenerate it:
//
//	go generate ./wasm
//
// The Go host on wazero is in ../bindings/go, the Node.js host in
// ../bindings/node.
package wasm

import _ "embed" // for Module

//go:generate bash build.sh

// Module is lastseen.wasm, the reactor module that ABI.md describes.
//
//go:embed lastseen.wasm
var Module []byte

// ABIVersion is the ABI version this package's Module implements: what its
// lastseen_abi_version export returns.
const ABIVersion = 3
