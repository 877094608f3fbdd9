package core_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// TestOutputAliasingContract shows the documented contract of Machine
// outputs: the next call overwrites the outputs a host kept, and
// CloneOutputs copies survive it. Two probes with replies of different
// lengths, so that the first reply, kept as is, reads as a cut of the
// second.
func TestOutputAliasingContract(t *testing.T) {
	m, err := core.New(core.Config{Served: []string{"montague.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetRoster(stanza.MustParse("romeo@montague.com"), stanza.MustParse("juliet@capulet.com"), core.SubBoth); err != nil {
		t.Fatal(err)
	}
	probe := func(id string) []core.Output {
		out, err := m.Server(clock.Epoch2000, []byte(`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='`+id+`'/>`))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kept := probe("first")
	want := texts(kept)
	cloned := core.CloneOutputs(kept)
	second := texts(probe("a-much-longer-second-id"))

	if d := cmp.Diff(want, texts(cloned)); d != "" {
		t.Errorf("the clone changed with the next call (-before +after):\n%s", d)
	}
	if cmp.Equal(want, texts(kept)) {
		t.Errorf("the kept outputs survived the next call; the documentation of Output says they do not (update it and the README)")
	}
	if !cmp.Equal(second[0].Stanza[:len(kept[0].Stanza)], string(kept[0].Stanza)) {
		t.Errorf("the kept stanza %q is not the start of the second reply %q", kept[0].Stanza, second[0].Stanza)
	}
}

func TestCloneOutputs(t *testing.T) {
	in := []core.Output{
		{Kind: core.Reply, To: []byte("a@b/c"), Stanza: []byte("<presence/>")},
		{Kind: core.ErrorReply, To: []byte("d@e/f"), Stanza: []byte("<presence type='error'/>")},
	}
	cp := core.CloneOutputs(in)
	if d := cmp.Diff(texts(in), texts(cp)); d != "" {
		t.Fatalf("clone differs (-in +clone):\n%s", d)
	}
	// Appending to one copy must not write into the next one.
	_ = append(cp[0].Stanza, "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"...)
	_ = append(cp[0].To, "YYYYYYYYYYYYYYYYYYYYY"...)
	for i := range in {
		in[i].To[0], in[i].Stanza[0] = '!', '!'
	}
	want := []outText{{core.Reply, "a@b/c", "<presence/>"}, {core.ErrorReply, "d@e/f", "<presence type='error'/>"}}
	if d := cmp.Diff(want, texts(cp)); d != "" {
		t.Errorf("clone shares bytes (-want +got):\n%s", d)
	}
	if allocs := testing.AllocsPerRun(100, func() { core.CloneOutputs(in) }); allocs != 2 {
		t.Errorf("CloneOutputs makes %v allocations, its documentation says 2", allocs)
	}
	if got := core.CloneOutputs(nil); got != nil {
		t.Errorf("CloneOutputs(nil) = %v, want nil", got)
	}
}
