// Command deps links only what RFC 7622 needs from the chosen dependencies
// (PRECIS profiles from golang.org/x/text and IDNA from golang.org/x/net):
// bench builds it for GOOS=wasip1 with lastseen.wasm's flags to show the
// size floor of any module that normalises JIDs with them.
package main

import (
	"os"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

func main() {
	// Reachable from main, so the linker keeps the profiles and their
	// tables, as lastseen's stanza package does.
	for _, a := range os.Args {
		_, _ = precis.UsernameCaseMapped.String(a)
		_, _ = precis.OpaqueString.String(a)
		_, _ = idna.Lookup.ToASCII(a)
		_, _ = idna.Lookup.ToUnicode(a)
	}
}
