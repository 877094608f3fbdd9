// Command lastseen replays scenario files through the lastseen presence
// machine and demonstrates XEP-0318.
//
// Usage:
//
//	lastseen replay [-engine=native|sharded|wazero|node|lua[-hostfacts]] FILE...   run scenario files; exit 1 if any fails
//	lastseen demo                                          play XEP-0318's use cases, stanza by stanza
//	lastseen help                                          print this help
//
// Scenario files are written in the language of spec/SCENARIOS.md and check
// the rules of spec/BEHAVIOUR.md, both at the repository root.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/lastseen-xmpp/lastseen/internal/engine"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// commands is the usage text, one command a line, the descriptions in one
// column.
var commands = [][2]string{
	{"lastseen replay [-engine=native|sharded|wazero|node|lua[-hostfacts]] FILE...", "run scenario files (spec/SCENARIOS.md); exit 1 if any fails"},
	{"lastseen demo", "play XEP-0318's use cases, stanza by stanza"},
	{"lastseen help", "print this help"},
}

func usage(w io.Writer) {
	width := 0
	for _, c := range commands {
		width = max(width, len(c[0]))
	}
	fmt.Fprintln(w, "usage:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s   %s\n", width, c[0], c[1])
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "replay":
		fs := flag.NewFlagSet("replay", flag.ContinueOnError)
		fs.SetOutput(stderr)
		eng := fs.String("engine", "native", "engine to run on: native (the Go core), sharded (the Go core behind core.Sharded), wazero (lastseen.wasm on wazero), node (lastseen.wasm on Node.js) or lua (lastseen.wasm on wasmtime under Lua 5.4; bash bindings/lua/build.sh first); wazero-hostfacts, node-hostfacts and lua-hostfacts answer the machine's authorisation questions from the host (ABI version 3)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			fmt.Fprintln(stderr, "lastseen replay: name at least one scenario file")
			return 2
		}
		f, err := factory(*eng)
		if err != nil {
			fmt.Fprintln(stderr, "lastseen replay:", err)
			return 2
		}
		_, failed := scenario.RunFiles(stdout, f, fs.Args()...)
		if failed > 0 {
			return 1
		}
		return 0
	case "demo":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "lastseen demo: takes no arguments, got %q\n", args[1:])
			usage(stderr)
			return 2
		}
		if err := demo(stdout); err != nil {
			fmt.Fprintln(stderr, "lastseen demo:", err)
			return 1
		}
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "lastseen: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func factory(name string) (scenario.Factory, error) {
	switch name {
	case "native":
		return engine.Native(), nil
	case "sharded":
		// Several shards, so that users and hosted domains spread over
		// them as on a busy server.
		return engine.Sharded(8), nil
	case "wazero":
		return engine.Wazero(), nil
	case "node":
		return engine.Node(), nil
	case "lua":
		return engine.Lua(), nil
	case "wazero-hostfacts":
		return engine.WazeroHostFacts(), nil
	case "node-hostfacts":
		return engine.NodeHostFacts(), nil
	case "lua-hostfacts":
		return engine.LuaHostFacts(), nil
	}
	return nil, fmt.Errorf("unknown engine %q (want native, sharded, wazero, node or lua, the last three also with -hostfacts)", name)
}
