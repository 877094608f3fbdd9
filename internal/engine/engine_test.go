package engine

// Cross-engine tests: the whole scenario corpus (the project's and the
// shared conformance cases) on every engine, and differential tests that
// drive the native core, the WebAssembly module under wazero and the same
// module under Node.js in lockstep and demand identical bytes: every
// output's kind, address and stanza, every error's text, and the state
// encoding after every line.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/prereq"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
)

// moduleRoot is the directory of the lastseen go.mod above the test.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = up
	}
}

// projectScenarios lists the project's own corpus: the scenarios of
// core/testdata/scenarios and the public conformance cases copied into
// core/testdata/conformance, so that a clone runs both.
func projectScenarios(t testing.TB) []string {
	t.Helper()
	var all []string
	for _, dir := range []string{"scenarios", "conformance"} {
		own, err := filepath.Glob(filepath.Join(moduleRoot(t), "core", "testdata", dir, "*.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if len(own) == 0 {
			t.Fatalf("no scenarios in core/testdata/%s", dir)
		}
		all = append(all, own...)
	}
	return all
}

// sharedCases lists ../shared/conformance/cases/*.txt beside the module
// root, or nil when the shared directory is absent (a user's clone).
func sharedCases(t testing.TB) []string {
	t.Helper()
	dir := filepath.Join(moduleRoot(t), "..", "shared", "conformance", "cases")
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	cases, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// The driver processes: each starts on first use and serves every test of
// the binary; it ends with the test binary (its stdin closes).
var (
	nodeHost = sync.OnceValues(StartNode)
	luaHost  = sync.OnceValues(StartLua)
)

// sharedHost returns the factory of one of host's kinds of engine.
func sharedHost(host func() (*NodeHost, error), factory func(*NodeHost) scenario.Factory) func() (scenario.Factory, error) {
	return func() (scenario.Factory, error) {
		h, err := host()
		if err != nil {
			return nil, err
		}
		return factory(h), nil
	}
}

type namedFactory struct {
	name string
	f    func(testing.TB) scenario.Factory
}

// engineList returns the engines this machine can run: the native core,
// wazero, Node.js when node is installed, and Lua when lua5.4 is installed
// and bindings/lua is built. A missing engine is reported once, by
// TestEnginesAvailable (a failure in CI), rather than as a skip in every
// test that would have used it.
func engineList(t testing.TB) []namedFactory {
	t.Helper()
	list := []namedFactory{
		{"native", func(testing.TB) scenario.Factory { return Native() }},
		{"wazero", func(testing.TB) scenario.Factory { return Wazero() }},
		{"wazero-hostfacts", func(testing.TB) scenario.Factory { return WazeroHostFacts() }},
	}
	for _, h := range hostEngines {
		f, err := h.start()
		if errors.Is(err, h.missing) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, namedFactory{h.name, func(testing.TB) scenario.Factory { return f }})
		hf, err := h.hostFacts()
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, namedFactory{h.name + "-hostfacts", func(testing.TB) scenario.Factory { return hf }})
	}
	return list
}

// engineNames lists the engines engineList runs, for logs.
func engineNames(t testing.TB) string {
	var names []string
	for _, e := range engineList(t) {
		names = append(names, e.name)
	}
	return strings.Join(names, ", ")
}

// hostEngines are the engines that run in a driver process, and what their
// absence is reported as.
var hostEngines = []struct {
	name      string
	what      string
	start     func() (scenario.Factory, error)
	hostFacts func() (scenario.Factory, error) // the same process, facts from the host (ABI version 3)
	missing   error
}{
	{"node", "the node engine (every scenario and differential test on Node.js)", sharedHost(nodeHost, (*NodeHost).Factory), sharedHost(nodeHost, (*NodeHost).HostFactsFactory), ErrNoNode},
	{"lua", "the lua engine (every scenario and differential test on the Lua binding; bash bindings/lua/build.sh)", sharedHost(luaHost, (*NodeHost).Factory), sharedHost(luaHost, (*NodeHost).HostFactsFactory), ErrNoLua},
}

// TestEnginesAvailable checks that every engine can run here: in CI
// (CI=true) a missing Node.js or Lua binding fails the run; elsewhere this
// is the one test that says which engine was not run.
func TestEnginesAvailable(t *testing.T) {
	for _, h := range hostEngines {
		t.Run(h.name, func(t *testing.T) {
			if _, err := h.start(); err != nil {
				if errors.Is(err, h.missing) {
					prereq.Missing(t, h.what, err)
				}
				t.Fatal(err)
			}
		})
	}
}

// runCorpus runs paths on every engine; set is "project" or "shared".
func runCorpus(t *testing.T, set string, paths []string) {
	for _, eng := range engineList(t) {
		t.Run(eng.name, func(t *testing.T) {
			f := eng.f(t)
			start := time.Now()
			var out bytes.Buffer
			passed, failed := scenario.RunFiles(&out, f, paths...)
			t.Logf("%s corpus on %s: %d passed, %d failed in %v", set, eng.name, passed, failed, time.Since(start).Round(time.Millisecond))
			if failed > 0 || passed != len(paths) {
				t.Errorf("%s corpus on %s:\n%s", set, eng.name, out.String())
			}
		})
	}
}

// TestCorpusEveryEngine runs core/testdata/scenarios and
// core/testdata/conformance on the native core, wazero and Node.js.
func TestCorpusEveryEngine(t *testing.T) {
	runCorpus(t, "project", projectScenarios(t))
}

// TestSharedCasesEveryEngine runs ../shared/conformance/cases on the
// native core, wazero and Node.js.
func TestSharedCasesEveryEngine(t *testing.T) {
	cases := sharedCases(t)
	if len(cases) == 0 {
		t.Skip("../shared/conformance/cases not present beside the module")
	}
	runCorpus(t, "shared", cases)
}

// detailed is an engine that can say what it emitted beyond the stanza:
// each output's kind and address.
type detailed interface {
	scenario.Engine
	lastOutputs() []core.Output
}

// lockstep drives the engines (native, wazero and, when installed, Node.js) with the same calls and fails on the
// first difference.
type lockstep struct {
	t     testing.TB
	names []string
	engs  []detailed
}

func newLockstep(t testing.TB, served []string) *lockstep {
	t.Helper()
	l := &lockstep{t: t}
	for _, nf := range engineList(t) {
		e, err := nf.f(t)(served)
		if err != nil {
			t.Fatalf("%s: %v", nf.name, err)
		}
		t.Cleanup(func() {
			if err := e.Release(); err != nil {
				t.Errorf("%s: release: %v", nf.name, err)
			}
		})
		l.names = append(l.names, nf.name)
		l.engs = append(l.engs, e.(detailed))
	}
	return l
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// fact applies a roster, block, hide or limit call; the engines must agree
// on whether it was refused.
func (l *lockstep) fact(what string, call func(scenario.Engine) error) {
	l.t.Helper()
	var first error
	for i, e := range l.engs {
		err := call(e)
		if i == 0 {
			first = err
		} else if (err == nil) != (first == nil) {
			l.t.Fatalf("%s: native says %v, %s says %v", what, first, l.names[i], err)
		}
	}
}

// input applies an input call and compares errors, outputs and state.
func (l *lockstep) input(what string, call func(scenario.Engine) ([][]byte, error)) (outputs int, refused bool) {
	l.t.Helper()
	var (
		wantErr   string
		wantOuts  []core.Output
		wantState []byte
	)
	for i, e := range l.engs {
		_, err := call(e)
		outs := e.lastOutputs()
		state, serr := e.State()
		if serr != nil {
			l.t.Fatalf("%s: %s: State: %v", what, l.names[i], serr)
		}
		if err != nil && !errors.Is(err, core.ErrBadInput) {
			l.t.Errorf("%s: %s: error %q does not match core.ErrBadInput", what, l.names[i], err)
		}
		if i == 0 {
			wantErr, wantOuts, wantState = errText(err), outs, state
			continue
		}
		if got := errText(err); got != wantErr {
			l.t.Fatalf("%s: errors differ:\n  native: %s\n  %s: %s", what, wantErr, l.names[i], got)
		}
		if d := diffOutputs(wantOuts, outs); d != "" {
			l.t.Fatalf("%s: outputs differ, native vs %s:\n%s", what, l.names[i], d)
		}
		if !bytes.Equal(state, wantState) {
			l.t.Fatalf("%s: state differs, native vs %s:\n  %x\n  %x", what, l.names[i], wantState, state)
		}
	}
	return len(wantOuts), wantErr != "<nil>"
}

func diffOutputs(want, got []core.Output) string {
	var b strings.Builder
	if len(want) != len(got) {
		fmt.Fprintf(&b, "  %d outputs vs %d\n", len(want), len(got))
	}
	for i := range min(len(want), len(got)) {
		w, g := want[i], got[i]
		if w.Kind != g.Kind || !bytes.Equal(w.To, g.To) || !bytes.Equal(w.Stanza, g.Stanza) {
			fmt.Fprintf(&b, "  output %d:\n    %v %s %s\n    %v %s %s\n", i, w.Kind, w.To, w.Stanza, g.Kind, g.To, g.Stanza)
		}
	}
	return b.String()
}

// TestEnginesAgreeOnCorpus replays every scenario of both corpora on the
// three engines in lockstep, comparing after every line.
func TestEnginesAgreeOnCorpus(t *testing.T) {
	paths := append(projectScenarios(t), sharedCases(t)...)
	lines := 0
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := scenario.Parse(path, src)
			if err != nil {
				t.Fatal(err)
			}
			var (
				served []string
				l      *lockstep
				fake   clock.Fake
			)
			for _, ln := range s.Lines {
				if ln.Directive == "serve" {
					served = append(served, ln.Args...)
					continue
				}
				if l == nil {
					l = newLockstep(t, served)
				}
				what := fmt.Sprintf("%s:%d: %s", filepath.Base(path), ln.Num, ln.Text)
				switch ln.Directive {
				case "at":
					if err := fake.Set(ln.Time); err != nil {
						t.Fatal(err)
					}
				case "roster":
					l.fact(what, func(e scenario.Engine) error { return e.Roster(ln.Args[0], ln.Args[1], ln.Args[2]) })
				case "block":
					l.fact(what, func(e scenario.Engine) error { return e.Block(ln.Args[0], ln.Args[1]) })
				case "hide":
					l.fact(what, func(e scenario.Engine) error { return e.Hide(ln.Args[0]) })
				case "limit":
					l.fact(what, func(e scenario.Engine) error { return e.Limit(fake.Now(), ln.N, ln.Per) })
				case "expect":
				default:
					now := fake.Now()
					lines++
					l.input(what, func(e scenario.Engine) ([][]byte, error) {
						switch ln.Directive {
						case "client":
							return e.Client(now, ln.Args[0], ln.XML)
						case "server":
							return e.Server(now, ln.XML)
						case "close":
							return e.Close(now, ln.Args[0])
						case "up":
							return e.Up(now, ln.Args[0])
						}
						return e.Down(now, ln.Args[0])
					})
				}
			}
		})
	}
	t.Logf("%d scenarios, %d input lines compared on %s", len(paths), lines, engineNames(t))
}

// TestEnginesAgreeOnRandomEvents drives the three engines with a long,
// seeded random mix of good and bad input over a small population, so that
// users, resources, buckets and facts interact far more than in any
// hand-written scenario.
func TestEnginesAgreeOnRandomEvents(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 500
	}
	l := newLockstep(t, []string{"montague.com", "verona.lit"})
	rng := rand.New(rand.NewPCG(318, 2026))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	users := []string{"romeo@montague.com", "benvolio@montague.com", "mercutio@verona.lit", "juliet@capulet.com", "nurse@capulet.com"}
	resources := []string{"balcony", "orchard", "Street", "ÉTÉ"}
	domains := []string{"montague.com", "verona.lit", "capulet.com", "chat.montague.com", "montague.com/x"}
	subs := []string{"none", "to", "from", "both"}
	bodies := []string{
		`<presence/>`,
		`<presence id='a1'><show>away</show><status>At the feast</status><priority>5</priority></presence>`,
		`<presence xml:lang='en'><status>Wherefore &amp; why</status><delay xmlns='urn:xmpp:delay' stamp='2000-01-01T00:00:00Z'/></presence>`,
		`<presence type='unavailable'><status>Parting is such sweet sorrow</status></presence>`,
		`<presence type='unavailable'/>`,
		`<presence type='subscribe' to='juliet@capulet.com'/>`,
		`<presence to='juliet@capulet.com'><status>directed</status></presence>`,
		`<presence type='error'/>`,
		`<presence type='sideways'/>`,
		`<presence><status>unclosed</presence>`,
		`<message><body>hi</body></message>`,
		`<presence><!-- comment --></presence>`,
		"<presence><status>bad utf-8 \xff</status></presence>",
	}
	full := func() string {
		j := pick(users)
		if rng.IntN(8) > 0 {
			j += "/" + pick(resources)
		}
		return j
	}
	now := clock.Epoch2000
	var inputs, outputs, refused int
	for i := range n {
		now = now.Add(time.Duration(rng.IntN(20)) * time.Second / 3)
		what := fmt.Sprintf("event %d", i)
		switch r := rng.IntN(100); {
		case r < 5:
			o, c, s := pick(users), pick(users), pick(subs)
			l.fact(what+": roster", func(e scenario.Engine) error { return e.Roster(o, c, s) })
		case r < 7:
			o, j := pick(users), pick(append(users, domains...))
			l.fact(what+": block", func(e scenario.Engine) error { return e.Block(o, j) })
		case r < 8:
			o := pick(users)
			l.fact(what+": hide", func(e scenario.Engine) error { return e.Hide(o) })
		case r < 9:
			burst, per := 1+rng.IntN(5), time.Duration(1+rng.IntN(90))*time.Second
			at := now
			l.fact(what+": limit", func(e scenario.Engine) error { return e.Limit(at, burst, per) })
		default:
			inputs++
			var call func(scenario.Engine) ([][]byte, error)
			switch k := rng.IntN(100); {
			case k < 40:
				s, body := full(), pick(bodies)
				what += ": client " + s + " " + body
				call = func(e scenario.Engine) ([][]byte, error) { return e.Client(now, s, []byte(body)) }
			case k < 55:
				s, to := full(), pick(append(users, domains...))
				body := fmt.Sprintf(`<presence type='probe' to='%s' id='c%d'/>`, to, i)
				what += ": client probe " + s + " " + body
				call = func(e scenario.Engine) ([][]byte, error) { return e.Client(now, s, []byte(body)) }
			case k < 80:
				body := fmt.Sprintf(`<presence from='%s' to='%s' type='probe' id='s%d'/>`, full(), pick(append(users, domains...)), i)
				what += ": server " + body
				call = func(e scenario.Engine) ([][]byte, error) { return e.Server(now, []byte(body)) }
			case k < 88:
				s := full()
				what += ": close " + s
				call = func(e scenario.Engine) ([][]byte, error) { return e.Close(now, s) }
			case k < 94:
				d := pick(domains)
				what += ": up " + d
				call = func(e scenario.Engine) ([][]byte, error) { return e.Up(now, d) }
			default:
				d := pick(domains)
				what += ": down " + d
				call = func(e scenario.Engine) ([][]byte, error) { return e.Down(now, d) }
			}
			o, bad := l.input(what, call)
			outputs += o
			if bad {
				refused++
			}
		}
	}
	t.Logf("%d events: %d inputs (%d refused), %d outputs, identical on %s", n, inputs, refused, outputs, engineNames(t))
	if refused == 0 || outputs == 0 {
		t.Errorf("the mix is too tame: %d refused, %d outputs", refused, outputs)
	}
}
