package core

import (
	"math/rand/v2"
	"testing"

	"github.com/lastseen-xmpp/lastseen/stanza"
)

// TestJIDReaderCache reads addresses in a random order, with repeats,
// through one jidReader (so through its recent slots, its map and its
// resets) and checks every answer against a fresh normalisation of the
// decoded value.
func TestJIDReaderCache(t *testing.T) {
	raws := []string{
		"juliet@capulet.com/balcony", "romeo@montague.com", "Juliet@Capulet.com/balcony",
		"juliet@capulet.com/&amp;", "juliet@capulet.com/&amp;amp;", "juliet@capulet.com/&#x26;",
		"montague.com", "", "@", "juliet@capulet.com/", "a@b/&lt;x&gt;", "ＲＯＭＥＯ@montague.com",
		"juliet@capulet.com/balcony ", "x@[::1]", "x@[0:0::1]",
	}
	for i := range 400 { // more than jidCacheSize distinct addresses, so the map resets
		raws = append(raws, "user"+string(rune('a'+i%26))+string(rune('a'+i/26))+"@example.com/r")
	}
	var r jidReader
	var p stanza.Parser
	var pres stanza.Presence
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 20000; n++ {
		raw := raws[rng.IntN(len(raws))]
		if rng.IntN(3) == 0 { // a burst of one address
			raw = raws[n%3]
		}
		if err := p.ParsePresence([]byte("<presence to='"+raw+"'/>"), &pres); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		got, gotErr := r.jid(pres.To)
		want, wantErr := stanza.ParseBytes(pres.To.AppendValue(nil))
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q read as %q, %v; want %q, %v", raw, got, gotErr, want, wantErr)
		}
	}
}
