// Command wasmcmd runs the floor kernels and prints their cost; bench builds
// it for GOOS=wasip1 and runs it on wazero and Node (see bench/floor.go).
package main

import (
	"fmt"
	"os"

	"github.com/lastseen-xmpp/lastseen/bench/internal/floor"
)

func main() {
	if err := floor.Main(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
