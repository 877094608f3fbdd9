package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
)

// Engine is one presence machine under test, as seen by the runner. The
// native Go core, the WASM module under wazero and the WASM module under
// Node.js each provide one, so that the same scenarios run on all three.
//
// The input methods (Client, Server, Close, Up and Down) take the time at
// which the host saw the event and return the stanzas the machine emitted in
// answer, each one complete XML stanza, in any order. An error from an input
// method means the machine rejected the input; the runner then expects it to
// have emitted nothing and changed nothing.
type Engine interface {
	// Roster records that owner's roster holds contact (both bare JIDs)
	// with subscription sub: none, to, from or both. A later call for the
	// same pair replaces the earlier one.
	Roster(owner, contact, sub string) error
	// Block records that owner blocks jid (XEP-0191).
	Block(owner, jid string) error
	// Hide records that owner opts out of last-seen.
	Hide(owner string) error
	// Limit sets the client probe allowance at time now: n probes per
	// session, refilled at n per period per from then on.
	Limit(now clock.Time, n int, per time.Duration) error
	// Client handles a stanza sent by the local, authenticated session
	// (a full JID).
	Client(now clock.Time, session string, xml []byte) ([][]byte, error)
	// Server handles a stanza that arrived from another server or a local
	// component, its from address verified by the host.
	Server(now clock.Time, xml []byte) ([][]byte, error)
	// Close handles the end of session (a full JID) without unavailable
	// presence.
	Close(now clock.Time, session string) ([][]byte, error)
	// Up handles a hosted server domain or component jid coming online.
	Up(now clock.Time, jid string) ([][]byte, error)
	// Down handles a hosted component jid going offline.
	Down(now clock.Time, jid string) ([][]byte, error)
	// State returns an opaque, deterministic encoding of everything the
	// machine tracks. The runner compares it before and after an input
	// the script expects to be rejected, to check that nothing changed.
	State() ([]byte, error)
	// Release frees the engine's resources. The runner calls it once, when
	// the script ends.
	Release() error
}

// Factory makes a fresh engine serving the given domains. Run calls it once
// per script, lazily, at the first directive that is not serve; served
// holds the domains of every serve line, in order.
type Factory func(served []string) (Engine, error)

// Result is the outcome of running one script.
type Result struct {
	// Name is the script's name, usually the file's path.
	Name string
	// Failures lists, in line order, what the engine did wrong.
	Failures []Failure
	// Err is set when the script could not be run to the end for a reason
	// that is not an engine misbehaviour on a line: the file could not be
	// read or parsed, or the factory failed.
	Err error
}

// Passed reports whether the script ran to the end and the engine met every
// expectation.
func (r *Result) Passed() bool { return r.Err == nil && len(r.Failures) == 0 }

// String renders the result as RunFiles prints it: a PASS or FAIL line
// naming the script, followed for a failure by one indented paragraph per
// failure (and the error, if any).
func (r *Result) String() string {
	var b strings.Builder
	if r.Passed() {
		fmt.Fprintf(&b, "PASS %s\n", r.Name)
		return b.String()
	}
	fmt.Fprintf(&b, "FAIL %s\n", r.Name)
	if r.Err != nil {
		fmt.Fprintf(&b, "    error: %v\n", r.Err)
	}
	for _, f := range r.Failures {
		b.WriteString(indent(f.format(r.Name), "    "))
	}
	return b.String()
}

// Failure is one line on which the engine did not do what the script
// expected.
type Failure struct {
	// Line is the 1-based number of the line that failed: an input line, or
	// a roster, block, hide or limit line the engine refused. It is 0 for a
	// failure tied to no line, such as an error from Release.
	Line int
	// Input is the text of that line.
	Input string
	// Msg says what went wrong, in one or more sentences.
	Msg string
	// Expected holds the expected stanzas (as written in the expect lines)
	// that no output matched.
	Expected []string
	// ExpectLines holds the line numbers of Expected, index for index.
	ExpectLines []int
	// Actual holds the stanzas the engine emitted that no expectation
	// matched, as emitted.
	Actual []string
	// Diff explains, for each unmatched expectation, how the closest
	// unmatched output differs from it (a cmp.Diff of the normalised trees,
	// "-" for expected and "+" for actual). It is empty when there is no
	// pair to compare.
	Diff string
}

// String renders the failure as RunFiles prints it.
func (f Failure) String() string { return f.format("") }

func (f Failure) format(name string) string {
	var b strings.Builder
	switch {
	case f.Line > 0 && name != "":
		fmt.Fprintf(&b, "%s:%d: %s\n", name, f.Line, f.Input)
	case f.Line > 0:
		fmt.Fprintf(&b, "line %d: %s\n", f.Line, f.Input)
	}
	if f.Msg != "" {
		b.WriteString(indent(f.Msg+"\n", "    "))
	}
	if len(f.Expected) > 0 {
		b.WriteString("    expected, not emitted:\n")
		for i, e := range f.Expected {
			fmt.Fprintf(&b, "        line %d: %s\n", f.ExpectLines[i], e)
		}
	}
	if len(f.Actual) > 0 {
		b.WriteString("    emitted, not expected:\n")
		for _, a := range f.Actual {
			fmt.Fprintf(&b, "        %s\n", a)
		}
	}
	if f.Diff != "" {
		b.WriteString("    difference (-expected +actual):\n")
		b.WriteString(indent(f.Diff, "        "))
	}
	return b.String()
}

// indent prefixes every non-empty line of s with prefix, ending s with a
// newline.
func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// errPanic marks an engine call that panicked.
var errPanic = errors.New("engine panicked")

// guard runs one engine call, turning a panic into an error wrapping
// errPanic so that a crashing engine fails the script instead of the
// process.
func guard[T any](call func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", errPanic, p, debug.Stack())
		}
	}()
	return call()
}

// Run runs the script on a fresh engine made by f and reports the outcome.
// It goes on after a failed line, so that one run reports every failure,
// but stops when the engine refuses a roster, block, hide or limit fact or
// panics, since what follows would be meaningless. The engine is released
// at the end.
func (s *Script) Run(f Factory) *Result {
	r := &Result{Name: s.Name}
	var (
		served []string
		eng    Engine
		fake   clock.Fake
	)
	defer func() {
		if eng == nil {
			return
		}
		if _, err := guard(func() (struct{}, error) { return struct{}{}, eng.Release() }); err != nil {
			r.Failures = append(r.Failures, Failure{Msg: "releasing the engine: " + err.Error()})
		}
	}()
	for i := range s.Lines {
		l := &s.Lines[i]
		if l.Directive == "serve" {
			if eng != nil {
				r.Err = &SyntaxError{Name: s.Name, Line: l.Num, Msg: "serve must come before every other directive"}
				return r
			}
			served = append(served, l.Args...)
			continue
		}
		if eng == nil {
			e, err := guard(func() (Engine, error) { return f(served) })
			if err == nil && e == nil {
				err = errors.New("factory returned no engine")
			}
			if err != nil {
				r.Err = fmt.Errorf("%s:%d: making the engine: %w", s.Name, l.Num, err)
				return r
			}
			eng = e
		}
		var err error
		switch l.Directive {
		case "at":
			if err := fake.Set(l.Time); err != nil {
				r.Err = &SyntaxError{Name: s.Name, Line: l.Num, Msg: fmt.Sprintf("time never goes back: %s is before %s", l.Args[0], fake.Now())}
				return r
			}
			continue
		case "roster":
			err = fact(func() error { return eng.Roster(l.Args[0], l.Args[1], l.Args[2]) })
		case "block":
			err = fact(func() error { return eng.Block(l.Args[0], l.Args[1]) })
		case "hide":
			err = fact(func() error { return eng.Hide(l.Args[0]) })
		case "limit":
			err = fact(func() error { return eng.Limit(fake.Now(), l.N, l.Per) })
		case "expect":
			continue // handled with its input line
		default:
			if !l.IsInput() {
				r.Err = &SyntaxError{Name: s.Name, Line: l.Num, Msg: fmt.Sprintf("unknown directive %q", l.Directive)}
				return r
			}
			fail, stop := s.input(eng, fake.Now(), i)
			if fail != nil {
				r.Failures = append(r.Failures, *fail)
			}
			if stop {
				return r
			}
			continue
		}
		if err != nil {
			r.Failures = append(r.Failures, Failure{
				Line: l.Num, Input: l.Text,
				Msg: fmt.Sprintf("The engine refused the %s fact: %v. The rest of the script was not run.", l.Directive, err),
			})
			return r
		}
	}
	return r
}

func fact(call func() error) error {
	_, err := guard(func() (struct{}, error) { return struct{}{}, call() })
	return err
}

// input runs the input line s.Lines[i] at time now and checks its outputs
// against the expect lines that follow it. It returns the failure, if any,
// and whether the run must stop.
func (s *Script) input(eng Engine, now clock.Time, i int) (fail *Failure, stop bool) {
	l := &s.Lines[i]
	var expects []*Line
	wantErr := false
	for j := i + 1; j < len(s.Lines) && !s.Lines[j].IsInput(); j++ {
		e := &s.Lines[j]
		switch {
		case e.Directive != "expect", e.ExpectsNothing():
		case e.ExpectsError():
			wantErr = true
		default:
			expects = append(expects, e)
		}
	}
	f := &Failure{Line: l.Num, Input: l.Text}
	var msgs []string
	failed := func(format string, args ...any) { msgs = append(msgs, fmt.Sprintf(format, args...)) }
	finish := func() (*Failure, bool) {
		if len(msgs) == 0 && len(f.Expected) == 0 && len(f.Actual) == 0 {
			return nil, stop
		}
		f.Msg = strings.Join(msgs, "\n")
		return f, stop
	}

	var before []byte
	if wantErr {
		var err error
		if before, err = guard(eng.State); err != nil {
			failed("State failed before the input: %v", err)
			stop = errors.Is(err, errPanic)
			return finish()
		}
	}

	call := func() ([][]byte, error) {
		switch l.Directive {
		case "client":
			return eng.Client(now, l.Args[0], l.XML)
		case "server":
			return eng.Server(now, l.XML)
		case "close":
			return eng.Close(now, l.Args[0])
		case "up":
			return eng.Up(now, l.Args[0])
		default:
			return eng.Down(now, l.Args[0])
		}
	}
	out, err := guard(call)
	if errors.Is(err, errPanic) {
		failed("%v\nThe rest of the script was not run.", err)
		stop = true
		return finish()
	}

	if wantErr {
		if err == nil {
			failed("The engine accepted the input; the script expects an error.")
		}
		for _, o := range out {
			f.Actual = append(f.Actual, quote(o))
		}
		if len(out) > 0 && err != nil {
			failed("The engine reported an error (%v) but emitted %d stanza(s); a rejected input emits nothing.", err, len(out))
		}
		after, serr := guard(eng.State)
		switch {
		case serr != nil:
			failed("State failed after the input: %v", serr)
			stop = errors.Is(serr, errPanic)
		case !bytes.Equal(before, after):
			failed("The input changed the engine's state; a rejected input changes nothing. %s", stateDiff(before, after))
		}
		return finish()
	}

	if err != nil {
		failed("The engine reported an error: %v", err)
	}
	s.match(f, expects, out, failed)
	return finish()
}

// match pairs the outputs with the expectations as a multiset, recording in
// f the expectations and outputs left unmatched. Because an expectation
// without an id matches outputs with any id, equality is not an equivalence
// and a greedy pairing could miss a complete one; match finds a maximum
// bipartite matching instead.
func (s *Script) match(f *Failure, expects []*Line, out [][]byte, failed func(string, ...any)) {
	want := make([]*node, len(expects))
	for k, e := range expects {
		n, err := normalize(e.XML)
		if err != nil { // Parse already checked; keep going regardless
			failed("line %d: expected stanza: %v", e.Num, err)
		}
		want[k] = n
	}
	got := make([]*node, len(out))
	for k, o := range out {
		n, err := normalize(o)
		if err != nil {
			failed("Output %d cannot be parsed: %v", k+1, err)
		}
		got[k] = n
	}
	ok := make([][]bool, len(want))
	for a := range want {
		ok[a] = make([]bool, len(got))
		for b := range got {
			if want[a] != nil && got[b] != nil {
				ok[a][b], _ = equalNodes(want[a], got[b])
			}
		}
	}
	// Kuhn's augmenting paths: owner[b] is the expectation output b is
	// matched to, or -1.
	owner := make([]int, len(got))
	for b := range owner {
		owner[b] = -1
	}
	var augment func(a int, seen []bool) bool
	augment = func(a int, seen []bool) bool {
		for b := range got {
			if ok[a][b] && !seen[b] {
				seen[b] = true
				if owner[b] < 0 || augment(owner[b], seen) {
					owner[b] = a
					return true
				}
			}
		}
		return false
	}
	matched := make([]bool, len(want))
	for a := range want {
		matched[a] = augment(a, make([]bool, len(got)))
	}
	var spare []int // unmatched, parseable outputs
	for b := range got {
		if owner[b] < 0 {
			f.Actual = append(f.Actual, quote(out[b]))
			if got[b] != nil {
				spare = append(spare, b)
			}
		}
	}
	var diffs strings.Builder
	for a, e := range expects {
		if matched[a] {
			continue
		}
		f.Expected = append(f.Expected, string(e.XML))
		f.ExpectLines = append(f.ExpectLines, e.Num)
		if want[a] == nil || len(spare) == 0 {
			continue
		}
		best, bestDiff := -1, ""
		for _, b := range spare {
			_, d := equalNodes(want[a], got[b])
			if best < 0 || len(d) < len(bestDiff) {
				best, bestDiff = b, d
			}
		}
		fmt.Fprintf(&diffs, "line %d vs output %d:\n%s", e.Num, best+1, bestDiff)
		if !strings.HasSuffix(bestDiff, "\n") {
			diffs.WriteByte('\n')
		}
	}
	f.Diff = diffs.String()
	switch {
	case len(f.Expected) > 0 && len(f.Actual) > 0:
		failed("%d expected stanza(s) not emitted and %d emitted stanza(s) not expected.", len(f.Expected), len(f.Actual))
	case len(f.Expected) > 0:
		failed("%d expected stanza(s) not emitted.", len(f.Expected))
	case len(f.Actual) > 0 && len(expects) == 0:
		failed("The script expects nothing, but the engine emitted %d stanza(s).", len(f.Actual))
	case len(f.Actual) > 0:
		failed("%d emitted stanza(s) not expected.", len(f.Actual))
	}
}

// stateDiff describes where two state encodings first differ.
func stateDiff(before, after []byte) string {
	n := 0
	for n < len(before) && n < len(after) && before[n] == after[n] {
		n++
	}
	excerpt := func(b []byte) string {
		lo, hi := max(0, n-16), min(len(b), n+48)
		return fmt.Sprintf("%q", b[lo:hi])
	}
	return fmt.Sprintf("State was %d bytes, is %d bytes; first difference at byte %d: before …%s…, after …%s…",
		len(before), len(after), n, excerpt(before), excerpt(after))
}

// RunFile reads, parses and runs the scenario file at path on an engine made
// by f. A file that cannot be read or parsed gives a Result with Err set.
func RunFile(f Factory, path string) *Result {
	src, err := os.ReadFile(path)
	if err != nil {
		return &Result{Name: path, Err: err}
	}
	s, err := Parse(path, src)
	if err != nil {
		return &Result{Name: path, Err: err}
	}
	return s.Run(f)
}

// RunFiles runs each scenario file on a fresh engine made by f and writes a
// report to w: for each file, in the order given, "PASS path" or "FAIL path"
// followed by what failed (the line, the expected and the actual stanzas and
// their difference), and finally the line "N passed, N failed" with one
// count per file. It returns the two counts.
func RunFiles(w io.Writer, f Factory, paths ...string) (passed, failed int) {
	for _, p := range paths {
		r := RunFile(f, p)
		if r.Passed() {
			passed++
		} else {
			failed++
		}
		io.WriteString(w, r.String())
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return passed, failed
}
