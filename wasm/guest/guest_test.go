package main

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

type enc struct{ b []byte }

func (e *enc) u8(v byte)    { e.b = append(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) i64(v int64)  { e.b = binary.LittleEndian.AppendUint64(e.b, uint64(v)) }
func (e *enc) str(s string) { e.u32(uint32(len(s))); e.b = append(e.b, s...) }

// batch is one event of each op after a config; ends[i] is where event i
// ends.
func batch() (b []byte, ends []int) {
	var e enc
	mark := func() { ends = append(ends, len(e.b)) }
	e.u8(opConfig)
	e.u32(1)
	e.str("montague.com")
	e.u32(2)
	e.i64(3)
	e.i64(60e9)
	mark()
	e.u8(opRoster)
	e.str("romeo@montague.com")
	e.str("juliet@capulet.com")
	e.u8(3)
	mark()
	e.u8(opBlock)
	e.str("romeo@montague.com")
	e.str("tybalt@capulet.com")
	e.u8(1)
	mark()
	e.u8(opHide)
	e.str("benvolio@montague.com")
	e.u8(1)
	mark()
	e.u8(opLimit)
	e.i64(1)
	e.i64(5)
	e.i64(1e9)
	mark()
	e.u8(opClient)
	e.i64(1)
	e.str("romeo@montague.com/balcony")
	e.str("<presence><status>hi</status></presence>")
	mark()
	e.u8(opServer)
	e.i64(2)
	e.str("<presence from='juliet@capulet.com/c' to='romeo@montague.com' type='probe'/>")
	mark()
	e.u8(opClose)
	e.i64(3)
	e.str("romeo@montague.com/balcony")
	mark()
	e.u8(opUp)
	e.i64(4)
	e.str("chat.montague.com")
	mark()
	e.u8(opDown)
	e.i64(5)
	e.str("chat.montague.com")
	mark()
	e.u8(opState)
	mark()
	return e.b, ends
}

func newTestGuest() *guest {
	return newGuest(make([]byte, defaultInCap), make([]byte, 0, 64))
}

// TestTruncatedBatches cuts a batch at every length: the complete events
// before the cut run, the cut one is reported as undecodable, and nothing
// panics.
func TestTruncatedBatches(t *testing.T) {
	full, ends := batch()
	for n := 0; n <= len(full); n++ {
		g := newTestGuest()
		copy(g.in, full[:n])
		status := g.step(n)
		complete := 0
		for _, e := range ends {
			if e <= n {
				complete++
			}
		}
		prev := 0 // where the last complete event ends
		if complete > 0 {
			prev = ends[complete-1]
		}
		want := int32(statusOK)
		if n > prev {
			want = statusDecode
		}
		if status != want || g.nResults != complete {
			t.Fatalf("cut at %d: status %d with %d results, want %d with %d", n, status, g.nResults, want, complete)
		}
	}
}

// TestWholeBatch checks the results of the full batch: all succeed, the
// probe gets its reply and the state comes last.
func TestWholeBatch(t *testing.T) {
	full, ends := batch()
	g := newTestGuest()
	copy(g.in, full)
	if s := g.step(len(full)); s != statusOK || g.nResults != len(ends) {
		t.Fatalf("status %d, %d results", s, g.nResults)
	}
	if !bytes.Contains(g.out, []byte("<status>hi</status>")) || !bytes.Contains(g.out, []byte("LSST")) {
		t.Fatalf("results lack the reply or the state: %q", g.out)
	}
	if cap(g.out) <= 64 {
		t.Fatal("the 64-byte output buffer should have grown")
	}
	// The next step starts again on the default (small) buffer.
	copy(g.in, full[:ends[0]])
	g.step(ends[0])
	if cap(g.out) != 64 {
		t.Fatalf("output buffer cap %d after a small step, want the default 64", cap(g.out))
	}
}

func TestLengthAndReserve(t *testing.T) {
	g := newTestGuest()
	if g.step(-1) != statusLength || g.step(defaultInCap+1) != statusLength {
		t.Fatal("out-of-range lengths must give statusLength")
	}
	if g.reserve(-1) != statusLength || g.reserve(maxInCap+1) != statusLength {
		t.Fatal("out-of-range reserves must give statusLength")
	}
	if g.reserve(defaultInCap*3) != statusOK || len(g.in) < defaultInCap*3 {
		t.Fatal("reserve did not grow the input buffer")
	}
	g.step(0)
	if len(g.in) != defaultInCap {
		t.Fatal("a reserved buffer must serve one step only")
	}
}

// FuzzStep feeds arbitrary bytes after a valid config: the guest must
// never panic and must account for every result it writes.
func FuzzStep(f *testing.F) {
	full, _ := batch()
	f.Add(full)
	f.Add(full[:len(full)/2])
	f.Add([]byte{opClient, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{opApply, 4, 0, 0, 0, 1, 2, 'a', 'b'})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > defaultInCap {
			return
		}
		g := newTestGuest()
		copy(g.in, full)
		g.step(len(full))
		copy(g.in, in)
		status := g.step(len(in))
		if status == statusPanic {
			t.Fatalf("the guest panicked on %q: %q", in, g.out)
		}
		if status != statusOK && status != statusDecode {
			t.Fatalf("status %d", status)
		}
	})
}

// configEvent encodes a config event serving served with options opts.
func configEvent(served []string, opts ...int64) []byte {
	var e enc
	e.u8(opConfig)
	e.u32(uint32(len(served)))
	for _, d := range served {
		e.str(d)
	}
	e.u32(uint32(len(opts)))
	for _, o := range opts {
		e.i64(o)
	}
	return e.b
}

// runOK steps g through the events b, which must all decode, and returns
// a copy of the results.
func runOK(t *testing.T, g *guest, b []byte) []byte {
	t.Helper()
	copy(g.in, b)
	if s := g.step(len(b)); s != statusOK {
		t.Fatalf("status %d: %q", s, g.out)
	}
	return append([]byte(nil), g.out...)
}

// TestJournal runs events on a guest that journals and feeds the records
// its results carry to a second guest through apply: both end in the same
// state, and the records are the native machine's, byte for byte.
func TestJournal(t *testing.T) {
	config := func(journal int64) []byte { return configEvent([]string{"montague.com"}, 0, 0, 0, 0, 0, 0, 0, journal) }
	run := func(g *guest, b []byte) []byte { t.Helper(); return runOK(t, g, b) }
	src, dst := newTestGuest(), newTestGuest()
	run(src, config(1))
	run(dst, config(0))

	var e enc
	e.u8(opClient)
	e.i64(1)
	e.str("romeo@montague.com/balcony")
	e.str("<presence><status>hi</status></presence>")
	out := run(src, e.b)
	// ok, no outputs, then data: u32 n, n × str record.
	if out[0] != codeOK || binary.LittleEndian.Uint32(out[1:]) != 0 {
		t.Fatalf("client result %q", out)
	}
	data := out[9:]
	n := binary.LittleEndian.Uint32(data)
	if n != 1 {
		t.Fatalf("%d records, want 1: %q", n, data)
	}
	rec := data[8 : 8+binary.LittleEndian.Uint32(data[4:])]
	if !bytes.Equal(rec, src.m.Records()[0]) {
		t.Fatalf("record %q, native %q", rec, src.m.Records()[0])
	}

	e = enc{}
	e.u8(opApply)
	e.str(string(rec))
	if out := run(dst, e.b); out[0] != codeOK {
		t.Fatalf("apply refused: %q", out)
	}
	if !bytes.Equal(src.m.AppendState(nil), dst.m.AppendState(nil)) {
		t.Fatal("applying the records did not give the same state")
	}

	// A damaged record is refused whole with CORRUPT; a probe records
	// nothing (empty data).
	e = enc{}
	e.u8(opApply)
	e.str(string(rec[:len(rec)-1]))
	if out := run(dst, e.b); out[0] != codeCorrupt {
		t.Fatalf("damaged record: result %q, want code %d", out, codeCorrupt)
	}
	if !bytes.Equal(src.m.AppendState(nil), dst.m.AppendState(nil)) {
		t.Fatal("a refused record changed the state")
	}
	e = enc{}
	e.u8(opServer)
	e.i64(2)
	e.str("<presence from='juliet@capulet.com/c' to='romeo@montague.com' type='probe'/>")
	out = run(src, e.b)
	if !bytes.HasSuffix(out, []byte{0, 0, 0, 0}) {
		t.Fatalf("a probe must carry no records: %q", out)
	}
}

// fakeHost answers the imports from a core.MemoryAuth, listing subscribers
// in reverse order and twice each, so that the guest's sort and dedup are
// exercised. fail makes every answer a failure; calls counts them.
type fakeHost struct {
	auth  *core.MemoryAuth
	fail  bool
	calls int
}

func (h *fakeHost) answer(ok bool, v int32) int32 {
	h.calls++
	if h.fail {
		return hostFailed
	}
	if ok {
		return v
	}
	return 0
}

func (h *fakeHost) probeFacts(owner, prober string) int32 {
	b, s, hd := h.auth.ProbeFacts(stanza.MustParse(owner), stanza.MustParse(prober))
	v := int32(s) << 1
	if b {
		v |= 1
	}
	if hd {
		v |= 8
	}
	return h.answer(true, v)
}

func (h *fakeHost) blocks(owner, jid string) int32 {
	return h.answer(h.auth.Blocks(stanza.MustParse(owner), stanza.MustParse(jid)), 1)
}

func (h *fakeHost) subscribers(owner string, buf []byte) int32 {
	var list []byte
	h.auth.Subscribers(stanza.MustParse(owner), func(c stanza.JID) bool {
		for range 2 {
			list = binary.LittleEndian.AppendUint32(list, uint32(len(c.String())))
			list = append(list, c.String()...)
		}
		return true
	})
	var rev []byte // the records in reverse order
	for len(list) > 0 {
		n := 4 + int(binary.LittleEndian.Uint32(list))
		rev = append(append([]byte(nil), list[:n]...), rev...)
		list = list[n:]
	}
	if len(rev) <= len(buf) {
		copy(buf, rev)
	}
	return h.answer(true, int32(len(rev)))
}

// TestFactsFromHost runs the same events on a guest that gets its facts as
// events and on one that asks a host holding the same facts: every result
// is the same bytes, facts events excepted (refused: NO_FACT_STORE). A
// failing host refuses the events that need it (HOST), emits nothing and
// leaves the state as it was.
func TestFactsFromHost(t *testing.T) {
	config := func(fromHost int64) []byte {
		return configEvent([]string{"montague.com", "chat.montague.com"}, 0, 0, 0, 0, 0, 0, 0, 0, fromHost)
	}
	run := func(g *guest, b []byte) []byte { t.Helper(); return runOK(t, g, b) }
	h := &fakeHost{auth: core.NewMemoryAuth()}
	facts := func(owner, contact string, sub core.Subscription) {
		h.auth.SetSubscription(stanza.MustParse(owner), stanza.MustParse(contact), sub)
	}
	facts("romeo@montague.com", "juliet@capulet.com", core.SubBoth)
	facts("chat.montague.com", "nurse@capulet.com", core.SubFrom)
	facts("chat.montague.com", "juliet@capulet.com", core.SubBoth)
	facts("chat.montague.com", "tybalt@capulet.com", core.SubBoth)
	facts("chat.montague.com", "paris@verona.lit", core.SubTo)
	h.auth.SetBlocked(stanza.MustParse("chat.montague.com"), stanza.MustParse("tybalt@capulet.com"), true)
	h.auth.SetBlocked(stanza.MustParse("romeo@montague.com"), stanza.MustParse("tybalt@capulet.com/x"), true)
	h.auth.SetHidden(stanza.MustParse("benvolio@montague.com"), true)

	byEvents, byHost := newTestGuest(), newTestGuest()
	byHost.host = h
	run(byHost, config(1))
	var e enc
	e.b = config(0)
	for _, f := range []struct {
		o, c string
		s    byte
	}{
		{"romeo@montague.com", "juliet@capulet.com", 3},
		{"chat.montague.com", "nurse@capulet.com", 2},
		{"chat.montague.com", "juliet@capulet.com", 3},
		{"chat.montague.com", "tybalt@capulet.com", 3},
		{"chat.montague.com", "paris@verona.lit", 1},
	} {
		e.u8(opRoster)
		e.str(f.o)
		e.str(f.c)
		e.u8(f.s)
	}
	for _, b := range [][2]string{{"chat.montague.com", "tybalt@capulet.com"}, {"romeo@montague.com", "tybalt@capulet.com/x"}} {
		e.u8(opBlock)
		e.str(b[0])
		e.str(b[1])
		e.u8(1)
	}
	e.u8(opHide)
	e.str("benvolio@montague.com")
	e.u8(1)
	run(byEvents, e.b)

	events := []func(e *enc){
		func(e *enc) {
			e.u8(opClient)
			e.i64(1)
			e.str("romeo@montague.com/balcony")
			e.str("<presence><status>hi</status></presence>")
		},
		func(e *enc) {
			e.u8(opClient)
			e.i64(2)
			e.str("benvolio@montague.com/b")
			e.str("<presence/>")
		},
		func(e *enc) {
			e.u8(opClose)
			e.i64(3)
			e.str("benvolio@montague.com/b")
		},
	}
	for _, prober := range []string{"juliet@capulet.com/c", "tybalt@capulet.com/x", "tybalt@capulet.com/y", "nurse@capulet.com/n"} {
		for _, owner := range []string{"romeo@montague.com", "benvolio@montague.com"} {
			events = append(events, func(e *enc) {
				e.u8(opServer)
				e.i64(4)
				e.str("<presence from='" + prober + "' to='" + owner + "' type='probe' id='p'/>")
			}, func(e *enc) {
				e.u8(opServer)
				e.i64(5)
				e.str("<iq from='" + prober + "' to='" + owner + "' type='get' id='q'><query xmlns='jabber:iq:last'/></iq>")
			})
		}
	}
	events = append(events,
		func(e *enc) {
			e.u8(opClient)
			e.i64(6)
			e.str("romeo@montague.com/balcony")
			e.str("<presence type='probe' to='juliet@capulet.com'/>")
		},
		func(e *enc) { e.u8(opUp); e.i64(7); e.str("chat.montague.com") },
		func(e *enc) { e.u8(opDown); e.i64(8); e.str("chat.montague.com") },
		func(e *enc) { e.u8(opUp); e.i64(9); e.str("romeo@montague.com") },
		func(e *enc) { e.u8(opState) },
	)
	for i, ev := range events {
		var e enc
		ev(&e)
		want, got := run(byEvents, e.b), run(byHost, e.b)
		if !bytes.Equal(want, got) {
			t.Errorf("event %d (op %d): facts from the host gave\n%q\nfacts as events gave\n%q", i, e.b[0], got, want)
		}
	}
	if h.calls == 0 {
		t.Fatal("the host was never asked")
	}
	if !bytes.Contains(run(byHost, func() []byte { var e enc; events[len(events)-4](&e); return e.b }()), []byte("nurse@capulet.com")) {
		t.Error("up did not announce to the host's subscriber")
	}

	// Facts events are refused: the machine keeps none.
	e = enc{}
	e.u8(opHide)
	e.str("romeo@montague.com")
	e.u8(1)
	if out := run(byHost, e.b); out[0] != codeNoFactStore {
		t.Errorf("hide with facts from the host: result %q, want code %d", out, codeNoFactStore)
	}

	// A failing host: HOST, nothing emitted, the state unchanged.
	before := byHost.m.AppendState(nil)
	h.fail = true
	for _, ev := range []func(e *enc){events[3], events[4], events[len(events)-4], events[len(events)-3]} {
		e = enc{}
		ev(&e)
		out := run(byHost, e.b)
		if out[0] != codeHost || out[1] != 2 {
			t.Errorf("op %d with a failing host: result %q, want code %d with flag 2 (the host failed)", e.b[0], out, codeHost)
		}
	}
	if after := byHost.m.AppendState(nil); !bytes.Equal(before, after) {
		t.Error("events refused for the host's failure changed the state")
	}
	// And with no lister, up is refused as the native library refuses it.
	h.fail = false
	nl := &unlisted{h}
	byHost.host = nl
	e = enc{}
	events[len(events)-4](&e)
	if out := run(byHost, e.b); out[0] != codeBadInput || !bytes.Contains(out, []byte(core.ErrNoSubscriberLister.Error())) {
		t.Errorf("up with no lister: %q", out)
	}
	// An answer the guest cannot use is the host's fault too, but the host
	// did not say it failed: flag 0, the guest's message is the reason.
	byHost.host = &truncated{h}
	if out := run(byHost, e.b); out[0] != codeHost || out[1] != 0 || !bytes.Contains(out, []byte("truncated")) {
		t.Errorf("up with a truncated subscriber list: %q", out)
	}
}

// truncated lists one subscriber whose length runs past the list's end.
type truncated struct{ *fakeHost }

func (truncated) subscribers(_ string, buf []byte) int32 {
	binary.LittleEndian.PutUint32(buf, 99)
	return 6
}

type unlisted struct{ *fakeHost }

func (unlisted) subscribers(string, []byte) int32 { return noLister }
