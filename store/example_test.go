package store_test

import (
	"fmt"
	"log"
	"os"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"github.com/lastseen-xmpp/lastseen/store"
)

// A host opens the store at start-up, feeds it events as it would a
// core.Machine, and sends each call's outputs only after the call
// returned: by then the change behind them is on disk.
func Example() {
	dir, err := os.MkdirTemp("", "lastseen")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := core.Config{Served: []string{"montague.com"}}

	d, err := store.Open(dir, cfg, store.Options{})
	if err != nil {
		log.Fatal(err) // a damaged store is refused, never half-loaded
	}
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	at, _ := clock.Parse("2012-09-10T23:41:07Z")
	if _, err := d.Client(at, romeo, []byte(`<presence type='unavailable'><status>Out of battery</status></presence>`)); err != nil {
		log.Fatal(err)
	}
	d.Shutdown() // or a crash: what was acknowledged is kept either way

	d, err = store.Open(dir, cfg, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Shutdown()
	// Roster facts are the host's: feed them again after a restart.
	d.SetRoster(stanza.MustParse("romeo@montague.com"), stanza.MustParse("juliet@capulet.com"), core.SubBoth)
	out, err := d.Server(at+3600e9, []byte(`<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe'/>`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", out[0].Stanza)
	// Output:
	// <presence from='romeo@montague.com' to='juliet@capulet.com/chamber' type='unavailable'><status>Out of battery</status><delay xmlns='urn:xmpp:delay' from='romeo@montague.com/balcony' stamp='2012-09-10T23:41:07Z'/></presence>
}
