package wazerohost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	wazerohost "github.com/lastseen-xmpp/lastseen/bindings/go"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

var (
	t0      = clock.Epoch2000
	romeo   = stanza.MustParse("romeo@montague.com/balcony")
	romeoB  = stanza.MustParse("romeo@montague.com")
	juliet  = stanza.MustParse("juliet@capulet.com")
	served  = []string{"montague.com"}
	ctx     = context.Background()
	onlineS = []byte(`<presence xml:lang='en'><show>away</show><status>On the balcony</status></presence>`)
)

func newEngine(t testing.TB, cfg core.Config) *wazerohost.Engine {
	t.Helper()
	e, err := wazerohost.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Release(ctx) })
	return e
}

// machine is the API the Engine shares with core.Machine.
type machine interface {
	inputs
	SetRoster(owner, contact stanza.JID, sub core.Subscription) error
	SetBlock(owner, jid stanza.JID, blocked bool) error
	SetHidden(owner stanza.JID, hidden bool) error
	SetProbeLimit(now clock.Time, l core.RateLimit) error
	ProbeLimit() core.RateLimit
	Serves(domain string) bool
	AppendState(dst []byte) []byte
}

var (
	_ machine = (*core.Machine)(nil)
	_ machine = (*wazerohost.Engine)(nil)
)

func copyOuts(out []core.Output) []core.Output {
	c := make([]core.Output, len(out))
	for i, o := range out {
		c[i] = core.Output{Kind: o.Kind, To: bytes.Clone(o.To), Stanza: bytes.Clone(o.Stanza)}
	}
	return c
}

// TestSameAsCore drives a core.Machine and an Engine through the same
// calls, including refused ones, and compares outputs, error text, the
// sentinels errors.Is and errors.As find, and the state.
func TestSameAsCore(t *testing.T) {
	cfg := core.Config{Served: []string{"montague.com", "verona.lit"}, ProbeLimit: core.RateLimit{Burst: 2, Per: time.Minute}, MaxResources: 2}
	native, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wasm := newEngine(t, cfg)
	sentinels := []error{
		core.ErrBadInput, stanza.ErrMalformed, stanza.ErrRestricted, stanza.ErrTooLarge, stanza.ErrTooComplex,
		stanza.ErrNotPresence, stanza.ErrUnknownType, stanza.ErrInvalidJID, core.ErrNoFrom, core.ErrNoTo,
		core.ErrNotLocal, core.ErrSession, core.ErrNotDomain, core.ErrConfig, core.ErrTooManyEntities,
		core.ErrTooManyResources,
	}
	type step struct {
		name string
		call func(m machine) ([]core.Output, error)
	}
	fact := func(f func(m machine) error) func(m machine) ([]core.Output, error) {
		return func(m machine) ([]core.Output, error) { return nil, f(m) }
	}
	at := func(d time.Duration) clock.Time { return t0.Add(d) }
	huge := "<presence><status>" + strings.Repeat("x", 70<<10) + "</status></presence>"
	deep := "<presence>" + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + "</presence>"
	steps := []step{
		{"roster", fact(func(m machine) error { return m.SetRoster(romeoB, juliet, core.SubBoth) })},
		{"roster bad sub", fact(func(m machine) error { return m.SetRoster(romeoB, juliet, 9) })},
		{"roster zero", fact(func(m machine) error { return m.SetRoster(stanza.JID{}, juliet, core.SubBoth) })},
		{"online", func(m machine) ([]core.Output, error) { return m.Client(at(0), romeo, onlineS) }},
		{"second resource", func(m machine) ([]core.Output, error) {
			return m.Client(at(time.Second), stanza.MustParse("romeo@montague.com/orchard"), []byte(`<presence/>`))
		}},
		{"third resource", func(m machine) ([]core.Output, error) {
			return m.Client(at(time.Second), stanza.MustParse("romeo@montague.com/street"), []byte(`<presence/>`))
		}},
		{"probe", func(m machine) ([]core.Output, error) {
			return m.Server(at(time.Hour), []byte(`<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>`))
		}},
		{"client probe routed", func(m machine) ([]core.Output, error) {
			return m.Client(at(time.Hour), romeo, []byte(`<presence type='probe' to='juliet@capulet.com' id='c1'/>`))
		}},
		{"client probe local", func(m machine) ([]core.Output, error) {
			return m.Client(at(time.Hour), romeo, []byte(`<presence type='probe' id='c2'/>`))
		}},
		{"client probe limited", func(m machine) ([]core.Output, error) {
			return m.Client(at(time.Hour), romeo, []byte(`<presence type='probe' to='juliet@capulet.com' id='c3'/>`))
		}},
		{"block", fact(func(m machine) error { return m.SetBlock(romeoB, stanza.MustParse("capulet.com"), true) })},
		{"blocked probe", func(m machine) ([]core.Output, error) {
			return m.Client(at(2*time.Hour), romeo, []byte(`<presence type='probe' to='juliet@capulet.com'/>`))
		}},
		{"unblock", fact(func(m machine) error { return m.SetBlock(romeoB, stanza.MustParse("capulet.com"), false) })},
		{"hide", fact(func(m machine) error { return m.SetHidden(romeoB, true) })},
		{"offline", func(m machine) ([]core.Output, error) {
			return m.Client(at(3*time.Hour), romeo, []byte(`<presence type='unavailable'><status>bye</status></presence>`))
		}},
		{"close", func(m machine) ([]core.Output, error) {
			return m.Close(at(3*time.Hour), stanza.MustParse("romeo@montague.com/orchard"))
		}},
		{"close street", func(m machine) ([]core.Output, error) {
			return m.Close(at(3*time.Hour), stanza.MustParse("romeo@montague.com/street"))
		}},
		{"probe hidden", func(m machine) ([]core.Output, error) {
			return m.Server(at(4*time.Hour), []byte(`<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe'/>`))
		}},
		{"query hidden", func(m machine) ([]core.Output, error) {
			return m.Server(at(4*time.Hour), []byte(`<iq from='juliet@capulet.com/chamber' to='romeo@montague.com' type='get' id='q1'><query xmlns='jabber:iq:last'/></iq>`))
		}},
		{"unhide", fact(func(m machine) error { return m.SetHidden(romeoB, false) })},
		{"query shown", func(m machine) ([]core.Output, error) {
			return m.Server(at(4*time.Hour+1500*time.Millisecond), []byte(`<iq from='juliet@capulet.com/chamber' to='romeo@montague.com' type='get' id='q2'><query xmlns='jabber:iq:last'/></iq>`))
		}},
		{"client query routed", func(m machine) ([]core.Output, error) {
			return m.Client(at(4*time.Hour), romeo, []byte(`<iq to='juliet@capulet.com' type='get' id='q3'><query xmlns='jabber:iq:last'/></iq>`))
		}},
		{"query to a full JID", func(m machine) ([]core.Output, error) {
			return m.Server(at(4*time.Hour), []byte(`<iq from='juliet@capulet.com/chamber' to='romeo@montague.com/balcony' type='get' id='q4'><query xmlns='jabber:iq:last'/></iq>`))
		}},
		{"iq set", func(m machine) ([]core.Output, error) {
			return m.Server(at(4*time.Hour), []byte(`<iq from='juliet@capulet.com/chamber' to='romeo@montague.com' type='set' id='q5'><query xmlns='jabber:iq:last'/></iq>`))
		}},
		{"probe shown", func(m machine) ([]core.Output, error) {
			return m.Server(at(4*time.Hour), []byte(`<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe'/>`))
		}},
		// RULES S3: up and down announce to these (one blocked, one "to").
		{"component buddies", fact(func(m machine) error {
			chat := stanza.MustParse("chat.montague.com")
			for _, f := range []error{
				m.SetRoster(chat, stanza.MustParse("verona.lit"), core.SubBoth),
				m.SetRoster(chat, stanza.MustParse("juliet@capulet.com"), core.SubFrom),
				m.SetRoster(chat, stanza.MustParse("mantua.lit"), core.SubTo),
				m.SetRoster(chat, stanza.MustParse("padua.lit"), core.SubFrom),
				m.SetBlock(chat, stanza.MustParse("padua.lit"), true),
			} {
				if f != nil {
					return f
				}
			}
			return nil
		})},
		{"up", func(m machine) ([]core.Output, error) {
			return m.Up(at(5*time.Hour), stanza.MustParse("chat.montague.com"))
		}},
		{"down", func(m machine) ([]core.Output, error) {
			return m.Down(at(6*time.Hour), stanza.MustParse("chat.montague.com"))
		}},
		{"probe component", func(m machine) ([]core.Output, error) {
			return m.Server(at(7*time.Hour), []byte(`<presence from='capulet.com' to='chat.montague.com' type='probe'/>`))
		}},
		{"limit", fact(func(m machine) error {
			return m.SetProbeLimit(at(7*time.Hour), core.RateLimit{Burst: 5, Per: time.Second})
		})},
		{"limit bad", fact(func(m machine) error {
			return m.SetProbeLimit(at(7*time.Hour), core.RateLimit{Burst: 0, Per: time.Second})
		})},
		// Refused input, one per reason.
		{"malformed", func(m machine) ([]core.Output, error) { return m.Server(at(8*time.Hour), []byte(`<presence`)) }},
		{"restricted", func(m machine) ([]core.Output, error) {
			return m.Server(at(8*time.Hour), []byte(`<presence><!-- x --></presence>`))
		}},
		{"too large", func(m machine) ([]core.Output, error) { return m.Client(at(8*time.Hour), romeo, []byte(huge)) }},
		{"too complex", func(m machine) ([]core.Output, error) { return m.Client(at(8*time.Hour), romeo, []byte(deep)) }},
		{"not presence", func(m machine) ([]core.Output, error) { return m.Client(at(8*time.Hour), romeo, []byte(`<message/>`)) }},
		{"unknown type", func(m machine) ([]core.Output, error) {
			return m.Client(at(8*time.Hour), romeo, []byte(`<presence type='available'/>`))
		}},
		{"invalid jid", func(m machine) ([]core.Output, error) {
			return m.Server(at(8*time.Hour), []byte(`<presence from='a@b@c' to='romeo@montague.com' type='probe'/>`))
		}},
		{"no from", func(m machine) ([]core.Output, error) {
			return m.Server(at(8*time.Hour), []byte(`<presence type='probe'/>`))
		}},
		{"no to", func(m machine) ([]core.Output, error) {
			return m.Server(at(8*time.Hour), []byte(`<presence from='juliet@capulet.com' type='probe'/>`))
		}},
		{"not local", func(m machine) ([]core.Output, error) {
			return m.Server(at(8*time.Hour), []byte(`<presence from='juliet@capulet.com' to='nurse@capulet.com' type='probe'/>`))
		}},
		{"session bare", func(m machine) ([]core.Output, error) {
			return m.Client(at(8*time.Hour), romeoB, []byte(`<presence/>`))
		}},
		{"session zero", func(m machine) ([]core.Output, error) { return m.Close(at(8*time.Hour), stanza.JID{}) }},
		{"not domain", func(m machine) ([]core.Output, error) { return m.Up(at(8*time.Hour), romeoB) }},
		{"too many resources", func(m machine) ([]core.Output, error) {
			m.Client(at(8*time.Hour), stanza.MustParse("romeo@montague.com/a"), []byte(`<presence/>`))
			m.Client(at(8*time.Hour), stanza.MustParse("romeo@montague.com/b"), []byte(`<presence/>`))
			return m.Client(at(8*time.Hour), stanza.MustParse("romeo@montague.com/c"), []byte(`<presence/>`))
		}},
	}
	refused := 0
	for _, s := range steps {
		nOut, nErr := s.call(native)
		nOut = copyOuts(nOut)
		wOut, wErr := s.call(wasm)
		if (nErr == nil) != (wErr == nil) || (nErr != nil && nErr.Error() != wErr.Error()) {
			t.Fatalf("%s: errors differ:\n  core: %v\n  wasm: %v", s.name, nErr, wErr)
		}
		if nErr != nil {
			refused++
			for _, sen := range sentinels {
				if errors.Is(nErr, sen) != errors.Is(wErr, sen) {
					t.Errorf("%s: errors.Is(err, %q): core %v, wasm %v", s.name, sen, errors.Is(nErr, sen), errors.Is(wErr, sen))
				}
			}
			var nie, wie *core.InputError
			if errors.As(nErr, &nie) != errors.As(wErr, &wie) || (nie != nil && nie.Event != wie.Event) {
				t.Errorf("%s: InputError: core %#v, wasm %#v", s.name, nie, wie)
			}
			var nse, wse *stanza.SyntaxError
			if errors.As(nErr, &nse) != errors.As(wErr, &wse) || (nse != nil && *nse != *wse) {
				t.Errorf("%s: SyntaxError: core %#v, wasm %#v", s.name, nse, wse)
			}
			var nje, wje *stanza.JIDError
			if errors.As(nErr, &nje) != errors.As(wErr, &wje) || (nje != nil && *nje != *wje) {
				t.Errorf("%s: JIDError: core %#v, wasm %#v", s.name, nje, wje)
			}
		}
		if len(nOut) != len(wOut) {
			t.Fatalf("%s: %d outputs from core, %d from wasm", s.name, len(nOut), len(wOut))
		}
		for i := range nOut {
			if nOut[i].Kind != wOut[i].Kind || !bytes.Equal(nOut[i].To, wOut[i].To) || !bytes.Equal(nOut[i].Stanza, wOut[i].Stanza) {
				t.Errorf("%s: output %d:\n  core: %v %s %s\n  wasm: %v %s %s", s.name, i,
					nOut[i].Kind, nOut[i].To, nOut[i].Stanza, wOut[i].Kind, wOut[i].To, wOut[i].Stanza)
			}
		}
		if (s.name == "up" || s.name == "down") && len(nOut) != 2 {
			t.Errorf("%s: %d announcements, want 2 (verona.lit, juliet@capulet.com)", s.name, len(nOut))
		}
		if ns, ws := native.AppendState(nil), wasm.AppendState(nil); !bytes.Equal(ns, ws) {
			t.Fatalf("%s: state differs:\n  core: %x\n  wasm: %x", s.name, ns, ws)
		}
		if native.ProbeLimit() != wasm.ProbeLimit() {
			t.Errorf("%s: ProbeLimit: core %v, wasm %v", s.name, native.ProbeLimit(), wasm.ProbeLimit())
		}
	}
	if refused < 19 {
		t.Errorf("only %d steps were refused", refused)
	}
	if !wasm.Serves("montague.com") || wasm.Serves("capulet.com") {
		t.Error("Serves is wrong")
	}
}

// TestNewRefusesWhatCoreRefuses checks Config errors.
func TestNewRefusesWhatCoreRefuses(t *testing.T) {
	for _, cfg := range []core.Config{
		{},
		{Served: []string{"romeo@montague.com"}},
		{Served: []string{"montague.com"}, ProbeLimit: core.RateLimit{Burst: -1, Per: time.Second}},
		{Served: []string{"montague.com"}, MaxEntities: -1},
		{Served: []string{"montague.com"}, MaxEntities: -1, Auth: core.NewMemoryAuth()},
	} {
		_, nErr := core.New(cfg)
		_, wErr := wazerohost.New(ctx, cfg)
		if nErr == nil {
			t.Fatalf("%+v: core accepted it", cfg)
		}
		if !errors.Is(wErr, core.ErrConfig) {
			t.Errorf("%+v: wasm error %v does not match core.ErrConfig", cfg, wErr)
		}
		if nErr.Error() != wErr.Error() {
			t.Errorf("%+v: error text:\n  core: %v\n  wasm: %v", cfg, nErr, wErr)
		}
	}
}

// TestBatch runs a batch larger than the guest's input buffer and checks
// every result against single calls.
func TestBatch(t *testing.T) {
	single := newEngine(t, core.Config{Served: served})
	batched := newEngine(t, core.Config{Served: served})
	var events []wazerohost.Event
	events = append(events, wazerohost.Event{Kind: wazerohost.EventRoster, JID: romeoB, Other: juliet, Sub: core.SubFrom})
	status := strings.Repeat("s", 900)
	for i := range 600 {
		now := t0.Add(time.Duration(i) * time.Second)
		s := stanza.MustParse(fmt.Sprintf("romeo@montague.com/r%d", i%7))
		events = append(events,
			wazerohost.Event{Kind: wazerohost.EventClient, Now: now, JID: s, Stanza: []byte(fmt.Sprintf(`<presence><status>%d %s</status></presence>`, i, status))},
			wazerohost.Event{Kind: wazerohost.EventServer, Now: now, Stanza: []byte(`<presence from='juliet@capulet.com/c' to='romeo@montague.com' type='probe'/>`)},
			wazerohost.Event{Kind: wazerohost.EventServer, Now: now, Stanza: []byte(`<presence`)},
		)
		if i%100 == 0 {
			events = append(events, wazerohost.Event{Kind: wazerohost.EventState}, wazerohost.Event{Kind: wazerohost.EventLimit, Now: now, Limit: core.RateLimit{Burst: 1 + i/100, Per: time.Second}})
		}
	}
	rs, err := batched.Batch(events)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(events) {
		t.Fatalf("%d results for %d events", len(rs), len(events))
	}
	outputs := 0
	for i, ev := range events {
		var want wazerohost.Result
		switch ev.Kind {
		case wazerohost.EventRoster:
			want.Err = single.SetRoster(ev.JID, ev.Other, ev.Sub)
		case wazerohost.EventClient:
			want.Outputs, want.Err = single.Client(ev.Now, ev.JID, ev.Stanza)
		case wazerohost.EventServer:
			want.Outputs, want.Err = single.Server(ev.Now, ev.Stanza)
		case wazerohost.EventState:
			want.State, want.Err = single.State()
		case wazerohost.EventLimit:
			want.Err = single.SetProbeLimit(ev.Now, ev.Limit)
		}
		got := rs[i]
		if errText(want.Err) != errText(got.Err) || !bytes.Equal(want.State, got.State) || len(want.Outputs) != len(got.Outputs) {
			t.Fatalf("event %d: want %+v, got %+v", i, want, got)
		}
		for k := range want.Outputs {
			if !bytes.Equal(want.Outputs[k].Stanza, got.Outputs[k].Stanza) {
				t.Fatalf("event %d output %d: want %s, got %s", i, k, want.Outputs[k].Stanza, got.Outputs[k].Stanza)
			}
		}
		outputs += len(got.Outputs)
	}
	if outputs < 600*6 {
		t.Errorf("only %d outputs", outputs)
	}
	if single.ProbeLimit() != batched.ProbeLimit() {
		t.Errorf("ProbeLimit: %v after single calls, %v after the batch", single.ProbeLimit(), batched.ProbeLimit())
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestBigInputAndOutput sends a stanza larger than the guest's default
// input buffer and collects outputs larger than its default output buffer.
func TestBigInputAndOutput(t *testing.T) {
	e := newEngine(t, core.Config{Served: served, Limits: stanza.Limits{MaxBytes: 1 << 20}})
	big := []byte("<presence><status>" + strings.Repeat("long ", 180<<10/5) + "</status></presence>")
	for r := range 3 {
		if _, err := e.Client(t0, stanza.MustParse(fmt.Sprintf("romeo@montague.com/r%d", r)), big); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.Server(t0, []byte(`<presence from='romeo@montague.com/x' to='romeo@montague.com' type='probe'/>`))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || len(out[0].Stanza) < len(big) {
		t.Fatalf("got %d outputs", len(out))
	}
	// And back to small calls on the default buffers.
	if _, err := e.Client(t0, romeo, onlineS); err != nil {
		t.Fatal(err)
	}
}

// TestOutputsAreTheCallers checks that outputs survive later calls, which
// concurrent callers rely on.
func TestOutputsAreTheCallers(t *testing.T) {
	e := newEngine(t, core.Config{Served: served})
	e.Client(t0, romeo, onlineS)
	first, _ := e.Server(t0, []byte(`<presence from='romeo@montague.com/x' to='romeo@montague.com' type='probe' id='one'/>`))
	keep := string(first[0].Stanza)
	for range 10 {
		e.Server(t0, []byte(`<presence from='romeo@montague.com/y' to='romeo@montague.com' type='probe' id='two'/>`))
	}
	if string(first[0].Stanza) != keep {
		t.Fatalf("output changed: %s", first[0].Stanza)
	}
}

// TestConcurrentUse shares one Engine between goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	e := newEngine(t, core.Config{Served: served})
	const workers, calls = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stanza.MustParse(fmt.Sprintf("user%d@montague.com/phone", w))
			for i := range calls {
				status := fmt.Sprintf("w%d i%d", w, i)
				if _, err := e.Client(t0, s, []byte("<presence><status>"+status+"</status></presence>")); err != nil {
					errs <- err
					return
				}
				probe := fmt.Sprintf(`<presence from='%s' to='%s' type='probe'/>`, s, s.Bare())
				out, err := e.Server(t0, []byte(probe))
				if err != nil {
					errs <- err
					return
				}
				if len(out) != 1 || !bytes.Contains(out[0].Stanza, []byte(status)) {
					errs <- fmt.Errorf("worker %d call %d: %d outputs, %q", w, i, len(out), out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestMemoryStaysFlat checks that 200,000 calls leave the guest's linear
// memory and the host's heap where they were. The guest's Go heap first
// settles (about 10 MiB for this population, within a few hundred thousand
// events), so a batched warm-up comes first; after it, growth would mean a
// leak or a collector that cannot keep up.
func TestMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("500k events")
	}
	e := newEngine(t, core.Config{Served: served})
	sessions := make([]stanza.JID, 5000)
	for i := range sessions {
		sessions[i] = stanza.MustParse(fmt.Sprintf("user%d@montague.com/res", i))
	}
	event := func(i int) wazerohost.Event {
		s := sessions[i%len(sessions)]
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if i%2 == 0 {
			return wazerohost.Event{Kind: wazerohost.EventClient, Now: now, JID: s, Stanza: []byte("<presence><status>hello there, " + s.Local() + "</status></presence>")}
		}
		return wazerohost.Event{Kind: wazerohost.EventServer, Now: now, Stanza: []byte("<presence from='juliet@capulet.com/x' to='" + s.Bare().String() + "' type='probe'/>")}
	}
	const warmup, calls = 300_000, 200_000
	start := time.Now()
	batch := make([]wazerohost.Event, 0, 100)
	for i := 0; i < warmup; i++ {
		batch = append(batch, event(i))
		if len(batch) == cap(batch) {
			if _, err := e.Batch(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	warm := time.Since(start)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	guestBefore := wazerohost.GuestMemory(e)
	var samples []uint32 // guest memory in KiB every 50k calls
	start = time.Now()
	for i := warmup; i < warmup+calls; i++ {
		ev := event(i)
		var err error
		if ev.Kind == wazerohost.EventClient {
			_, err = e.Client(ev.Now, ev.JID, ev.Stanza)
		} else {
			_, err = e.Server(ev.Now, ev.Stanza)
		}
		if err != nil {
			t.Fatal(err)
		}
		if (i-warmup)%50_000 == 0 {
			samples = append(samples, wazerohost.GuestMemory(e)>>10)
		}
	}
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	guestAfter := wazerohost.GuestMemory(e)
	t.Logf("warm-up: %d batched events in %v (%v each); then %d calls in %v (%v each)",
		warmup, warm.Round(time.Millisecond), warm/warmup, calls, took.Round(time.Millisecond), took/calls)
	t.Logf("guest memory %d KiB, every 50k calls %v KiB, at the end %d KiB; host heap %d KiB, then %d KiB",
		guestBefore>>10, samples, guestAfter>>10, before.HeapAlloc>>10, after.HeapAlloc>>10)
	if guestAfter > guestBefore+1<<20 {
		t.Errorf("guest memory grew from %d to %d KiB over %d calls", guestBefore>>10, guestAfter>>10, calls)
	}
	if after.HeapAlloc > before.HeapAlloc+4<<20 {
		t.Errorf("host heap grew from %d to %d KiB over %d calls", before.HeapAlloc>>10, after.HeapAlloc>>10, calls)
	}
}

// TestTrapRestarts gives the guest less memory than a huge stanza needs:
// the instance dies, the engine reports ErrTrap, and the next call runs on
// a fresh machine with the same Config.
func TestTrapRestarts(t *testing.T) {
	rt, err := wazerohost.NewRuntime(ctx, wazerohost.RuntimeConfig{MemoryLimitPages: 256}) // 16 MiB
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	e, err := rt.New(ctx, core.Config{Served: served, ProbeLimit: core.RateLimit{Burst: 3, Per: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client(t0, romeo, onlineS); err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, 32<<20)
	_, err = e.Client(t0, romeo, huge)
	if !errors.Is(err, wazerohost.ErrTrap) {
		t.Fatalf("got %v, want ErrTrap", err)
	}
	t.Logf("trap reported as: %v", err)
	// The machine restarted empty, with the same Config.
	if e.ProbeLimit() != (core.RateLimit{Burst: 3, Per: time.Second}) {
		t.Errorf("ProbeLimit after restart: %v", e.ProbeLimit())
	}
	out, err := e.Server(t0, []byte(`<presence from='romeo@montague.com/x' to='romeo@montague.com' type='probe'/>`))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || !bytes.Contains(out[0].Stanza, []byte("type='unavailable'")) {
		t.Fatalf("after the restart: %s", out[0].Stanza)
	}
	fresh, _ := core.New(core.Config{Served: served, ProbeLimit: core.RateLimit{Burst: 3, Per: time.Second}})
	if !bytes.Equal(e.AppendState(nil), fresh.AppendState(nil)) {
		t.Error("the restarted machine is not empty")
	}
}

// TestRelease checks that a released engine refuses calls.
func TestRelease(t *testing.T) {
	e, err := wazerohost.New(ctx, core.Config{Served: served})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client(t0, romeo, onlineS); !errors.Is(err, wazerohost.ErrReleased) {
		t.Fatalf("got %v", err)
	}
	if err := e.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkClient(b *testing.B) {
	e := newEngine(b, core.Config{Served: served})
	for i := 0; b.Loop(); i++ {
		if _, err := e.Client(t0.Add(time.Duration(i)), romeo, onlineS); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProbe(b *testing.B) {
	e := newEngine(b, core.Config{Served: served})
	e.SetRoster(romeoB, juliet, core.SubBoth)
	e.Client(t0, romeo, onlineS)
	probe := []byte(`<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>`)
	for b.Loop() {
		if _, err := e.Server(t0, probe); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBatch100(b *testing.B) {
	e := newEngine(b, core.Config{Served: served})
	e.SetRoster(romeoB, juliet, core.SubBoth)
	events := make([]wazerohost.Event, 100)
	for i := range events {
		events[i] = wazerohost.Event{Kind: wazerohost.EventServer, Stanza: []byte(`<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>`)}
	}
	e.Client(t0, romeo, onlineS)
	for b.Loop() {
		if _, err := e.Batch(events); err != nil {
			b.Fatal(err)
		}
	}
}
