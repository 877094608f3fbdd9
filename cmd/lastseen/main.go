// Command lastseen replays scenario files through the lastseen presence
// machine and demonstrates XEP-0318.
//
// Usage:
//
//	lastseen replay [-engine=native|sharded|wazero|node] FILE...   run scenarios; exit 1 if any fails
//	lastseen demo                              play XEP-0318's use cases
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

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  lastseen replay [-engine=native|sharded|wazero|node] FILE...   run scenario files (FORMAT.md); exit 1 if any fails
  lastseen demo                              play XEP-0318's use cases, stanza by stanza`)
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
		eng := fs.String("engine", "native", "engine to run on: native (the Go core), sharded (its goroutine-safe Sharded), wazero (lastseen.wasm on wazero) or node (lastseen.wasm on Node.js)")
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
		if err := demo(stdout); err != nil {
			fmt.Fprintln(stderr, "lastseen demo:", err)
			return 1
		}
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	usage(stderr)
	return 2
}

func factory(name string) (scenario.Factory, error) {
	switch name {
	case "native":
		return engine.Native(), nil
	case "sharded":
		return engine.Sharded(0), nil
	case "wazero":
		return engine.Wazero(), nil
	case "node":
		return engine.Node(), nil
	}
	return nil, fmt.Errorf("unknown engine %q (want native, sharded, wazero or node)", name)
}
