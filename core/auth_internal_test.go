package core

import (
	"testing"

	"github.com/lastseen-xmpp/lastseen/stanza"
)

// TestMemoryAuthForgets checks that taking back every fact about an owner
// leaves MemoryAuth holding nothing for it, and that facts about one owner
// never answer for another.
func TestMemoryAuthForgets(t *testing.T) {
	j := func(s string) stanza.JID {
		v, err := stanza.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	romeo, juliet, nurse := j("romeo@montague.com"), j("juliet@capulet.com/balcony"), j("nurse@capulet.com")
	a := NewMemoryAuth()
	a.SetSubscription(romeo, juliet, SubBoth)
	a.SetBlocked(romeo, j("capulet.com"), true)
	a.SetHidden(romeo, true)
	a.SetHidden(nurse, true)
	if a.Subscription(romeo, juliet.Bare()) != SubBoth || !a.Blocks(romeo, juliet) || !a.Hidden(romeo) {
		t.Fatal("facts about romeo were not kept")
	}
	if a.Subscription(nurse, juliet.Bare()) != SubNone || a.Blocks(nurse, juliet) || a.Hidden(juliet.Bare()) {
		t.Fatal("facts about romeo answer for someone else")
	}
	a.SetSubscription(romeo, juliet, SubNone)
	a.SetBlocked(romeo, j("capulet.com"), false)
	if a.ownerCount() != 2 {
		t.Fatalf("%d owners, want 2 (romeo hidden, the nurse hidden)", a.ownerCount())
	}
	a.SetHidden(romeo, false)
	a.SetHidden(nurse, false)
	if a.ownerCount() != 0 {
		t.Fatalf("MemoryAuth holds %d owners after every fact was taken back", a.ownerCount())
	}
}

// ownerCount is how many owners a holds facts for (a roster, rare facts
// or both), over all stripes.
func (a *MemoryAuth) ownerCount() int {
	owners := map[string]bool{}
	for i := range a.stripes {
		for o := range a.stripes[i].owners {
			owners[o] = true
		}
		for o := range a.stripes[i].long {
			owners[o] = true
		}
		for o := range a.stripes[i].rare {
			owners[o] = true
		}
	}
	return len(owners)
}
