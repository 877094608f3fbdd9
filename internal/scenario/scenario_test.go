package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lastseen-xmpp/lastseen/clock"
)

// reply is what the fake engine does for one input.
type reply struct {
	out    []string // stanzas to emit
	err    error    // error to return
	mutate bool     // change the state even so
	panic  bool     // panic instead
}

// fakeEngine is a scripted Engine: each input is looked up in replies, by
// its XML for client and server lines and by its JID for the others, and
// unknown inputs emit nothing. It records every call.
type fakeEngine struct {
	served   []string
	replies  map[string]reply
	facts    []string
	calls    []string
	state    []byte
	released bool
	factErr  error
}

func (e *fakeEngine) fact(s string) error {
	e.facts = append(e.facts, s)
	e.state = append(e.state, s...)
	return e.factErr
}

func (e *fakeEngine) Roster(owner, contact, sub string) error {
	return e.fact("roster " + owner + " " + contact + " " + sub)
}
func (e *fakeEngine) Block(owner, jid string) error { return e.fact("block " + owner + " " + jid) }
func (e *fakeEngine) Hide(owner string) error       { return e.fact("hide " + owner) }
func (e *fakeEngine) Limit(now clock.Time, n int, per time.Duration) error {
	return e.fact(fmt.Sprintf("%s limit %d %s", now, n, per))
}

func (e *fakeEngine) input(now clock.Time, kind, arg, key string) ([][]byte, error) {
	e.calls = append(e.calls, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", now, kind, arg, key)))
	r, ok := e.replies[key]
	if !ok {
		e.state = append(e.state, '.')
		return nil, nil
	}
	if r.panic {
		panic("boom")
	}
	if r.err == nil || r.mutate {
		e.state = append(e.state, '+')
	}
	var out [][]byte
	for _, s := range r.out {
		out = append(out, []byte(s))
	}
	return out, r.err
}

func (e *fakeEngine) Client(now clock.Time, session string, xml []byte) ([][]byte, error) {
	return e.input(now, "client", session, string(xml))
}
func (e *fakeEngine) Server(now clock.Time, xml []byte) ([][]byte, error) {
	return e.input(now, "server", "", string(xml))
}
func (e *fakeEngine) Close(now clock.Time, session string) ([][]byte, error) {
	return e.input(now, "close", "", session)
}
func (e *fakeEngine) Up(now clock.Time, jid string) ([][]byte, error) {
	return e.input(now, "up", "", jid)
}
func (e *fakeEngine) Down(now clock.Time, jid string) ([][]byte, error) {
	return e.input(now, "down", "", jid)
}
func (e *fakeEngine) State() ([]byte, error) { return slices.Clone(e.state), nil }
func (e *fakeEngine) Release() error         { e.released = true; return nil }

// fake returns a factory of fake engines with the given replies, and a
// pointer through which the test sees the engine made.
func fake(replies map[string]reply) (Factory, **fakeEngine) {
	var made *fakeEngine
	return func(served []string) (Engine, error) {
		made = &fakeEngine{served: served, replies: replies}
		return made, nil
	}, &made
}

func run(t *testing.T, src string, replies map[string]reply) (*Result, *fakeEngine) {
	t.Helper()
	s, err := Parse("test.txt", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	f, e := fake(replies)
	return s.Run(f), *e
}

func mustPass(t *testing.T, r *Result) {
	t.Helper()
	if !r.Passed() {
		t.Fatalf("want pass, got:\n%s", r)
	}
}

// mustFail checks that r failed on exactly the given input lines.
func mustFail(t *testing.T, r *Result, lines ...int) {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("unexpected error: %v", r.Err)
	}
	var got []int
	for _, f := range r.Failures {
		got = append(got, f.Line)
	}
	if !slices.Equal(got, lines) {
		t.Fatalf("failed on lines %v, want %v:\n%s", got, lines, r)
	}
}

func TestPass(t *testing.T) {
	src := `# A scenario using every directive.
serve a.example b.example
serve c.example

at 2012-09-10T23:00:00Z
roster r@a.example j@c.example both
block r@a.example x@y.example/z
hide r@a.example
limit 2 1m
client r@a.example/x <presence/>
expect <presence from='r@a.example/x' to='j@c.example'/>
at 2012-09-10T23:41:07Z
server <presence type='probe' from='j@c.example/b' to='r@a.example'/>
expect <b/>
expect <a/>
close r@a.example/x
expect nothing
up a.example
down c.example
`
	r, e := run(t, src, map[string]reply{
		"<presence/>": {out: []string{"<presence from='r@a.example/x' to='j@c.example'/>"}},
		"<presence type='probe' from='j@c.example/b' to='r@a.example'/>": {out: []string{"<a/>", "<b/>"}},
	})
	mustPass(t, r)
	if r.String() != "PASS test.txt\n" {
		t.Errorf("String() = %q", r.String())
	}
	if want := []string{"a.example", "b.example", "c.example"}; !slices.Equal(e.served, want) {
		t.Errorf("served %v, want %v", e.served, want)
	}
	wantFacts := []string{
		"roster r@a.example j@c.example both",
		"block r@a.example x@y.example/z",
		"hide r@a.example",
		"2012-09-10T23:00:00Z limit 2 1m0s", // the scenario clock at the limit line
	}
	if d := cmp.Diff(wantFacts, e.facts); d != "" {
		t.Errorf("facts (-want +got):\n%s", d)
	}
	wantCalls := []string{
		"2012-09-10T23:00:00Z client r@a.example/x <presence/>",
		"2012-09-10T23:41:07Z server  <presence type='probe' from='j@c.example/b' to='r@a.example'/>",
		"2012-09-10T23:41:07Z close  r@a.example/x",
		"2012-09-10T23:41:07Z up  a.example",
		"2012-09-10T23:41:07Z down  c.example",
	}
	if d := cmp.Diff(wantCalls, e.calls); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	if !e.released {
		t.Error("engine not released")
	}
}

func TestStartTime(t *testing.T) {
	r, e := run(t, "serve a.example\nup a.example\n", nil)
	mustPass(t, r)
	if want := clock.Epoch2000.String() + " up  a.example"; len(e.calls) != 1 || e.calls[0] != want {
		t.Errorf("calls %q, want [%q]", e.calls, want)
	}
}

func TestFactoryLazy(t *testing.T) {
	// Parse refuses a script without input lines, so build one by hand.
	s := &Script{Name: "t", Lines: []Line{{Num: 2, Text: "serve a.example", Directive: "serve", Args: []string{"a.example"}}}}
	called := false
	r := s.Run(func([]string) (Engine, error) { called = true; return &fakeEngine{}, nil })
	mustPass(t, r)
	if called {
		t.Error("factory called for a script with only serve lines")
	}
}

func TestFactoryError(t *testing.T) {
	s, err := Parse("t", []byte("serve a.example\nup a.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := s.Run(func([]string) (Engine, error) { return nil, errors.New("no luck") })
	if r.Passed() || r.Err == nil || !strings.Contains(r.Err.Error(), "no luck") {
		t.Fatalf("want error, got %v", r)
	}
}

func TestFailedExpectation(t *testing.T) {
	src := "serve a.example\nup a.example\nexpect <presence from='a.example'/>\n"
	r, _ := run(t, src, map[string]reply{"a.example": {out: []string{"<presence from='b.example'/>"}}})
	mustFail(t, r, 2)
	f := r.Failures[0]
	if !slices.Equal(f.Expected, []string{"<presence from='a.example'/>"}) || !slices.Equal(f.ExpectLines, []int{3}) {
		t.Errorf("Expected %q lines %v", f.Expected, f.ExpectLines)
	}
	if !slices.Equal(f.Actual, []string{"<presence from='b.example'/>"}) {
		t.Errorf("Actual %q", f.Actual)
	}
	if !strings.Contains(f.Diff, "a.example") || !strings.Contains(f.Diff, "b.example") {
		t.Errorf("Diff does not show the difference:\n%s", f.Diff)
	}
	out := r.String()
	for _, want := range []string{"FAIL test.txt", "test.txt:2: up a.example", "line 3: <presence from='a.example'/>", "<presence from='b.example'/>"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestExtraOutput(t *testing.T) {
	src := "serve a.example\nup a.example\nexpect <a/>\n"
	r, _ := run(t, src, map[string]reply{"a.example": {out: []string{"<a/>", "<b/>"}}})
	mustFail(t, r, 2)
	f := r.Failures[0]
	if len(f.Expected) != 0 || !slices.Equal(f.Actual, []string{"<b/>"}) {
		t.Errorf("Expected %q, Actual %q", f.Expected, f.Actual)
	}
}

func TestOutputWithoutExpect(t *testing.T) {
	for _, src := range []string{
		"serve a.example\nup a.example\n",
		"serve a.example\nup a.example\nexpect nothing\n",
	} {
		r, _ := run(t, src, map[string]reply{"a.example": {out: []string{"<a/>"}}})
		mustFail(t, r, 2)
		if !slices.Equal(r.Failures[0].Actual, []string{"<a/>"}) {
			t.Errorf("Actual %q", r.Failures[0].Actual)
		}
	}
}

func TestMissingOutput(t *testing.T) {
	src := "serve a.example\nup a.example\nexpect <a/>\nexpect <b/>\n"
	r, _ := run(t, src, map[string]reply{"a.example": {out: []string{"<b/>"}}})
	mustFail(t, r, 2)
	f := r.Failures[0]
	if !slices.Equal(f.Expected, []string{"<a/>"}) || !slices.Equal(f.ExpectLines, []int{3}) || len(f.Actual) != 0 {
		t.Errorf("Expected %q (%v), Actual %q", f.Expected, f.ExpectLines, f.Actual)
	}
}

func TestMultisetOrder(t *testing.T) {
	src := "serve a.example\nup a.example\nexpect <c/>\nexpect <a/>\nexpect <b/>\nexpect <a/>\n"
	r, _ := run(t, src, map[string]reply{"a.example": {out: []string{"<a/>", "<b/>", "<a/>", "<c/>"}}})
	mustPass(t, r)
	// Multiplicity counts: two <a/> expected, one emitted.
	r, _ = run(t, src, map[string]reply{"a.example": {out: []string{"<a/>", "<b/>", "<c/>"}}})
	mustFail(t, r, 2)
}

func TestMatchingIsNotGreedy(t *testing.T) {
	// The first expectation (no id) matches both outputs, the second only
	// the first output: only the pairing 1-2, 2-1 is complete.
	src := "serve a.example\nup a.example\nexpect <presence/>\nexpect <presence id='x'/>\n"
	r, _ := run(t, src, map[string]reply{"a.example": {out: []string{"<presence id='x'/>", "<presence id='y'/>"}}})
	mustPass(t, r)
}

func TestExpectError(t *testing.T) {
	src := "serve a.example\nclient u@a.example/r <bad\nexpect error\nup a.example\n"
	bad := errors.New("bad input")

	r, _ := run(t, src, map[string]reply{"<bad": {err: bad}})
	mustPass(t, r)

	// State changed although the input was refused.
	r, _ = run(t, src, map[string]reply{"<bad": {err: bad, mutate: true}})
	mustFail(t, r, 2)
	if !strings.Contains(r.Failures[0].Msg, "state") {
		t.Errorf("Msg does not mention the state: %s", r.Failures[0].Msg)
	}

	// No error at all.
	r, _ = run(t, src, map[string]reply{"<bad": {}})
	mustFail(t, r, 2)

	// Error, but with output.
	r, _ = run(t, src, map[string]reply{"<bad": {err: bad, out: []string{"<a/>"}}})
	mustFail(t, r, 2)
	if !slices.Equal(r.Failures[0].Actual, []string{"<a/>"}) {
		t.Errorf("Actual %q", r.Failures[0].Actual)
	}
}

func TestUnexpectedError(t *testing.T) {
	src := "serve a.example\nup a.example\nexpect <a/>\ndown b.example\n"
	r, _ := run(t, src, map[string]reply{"a.example": {err: errors.New("kaput"), out: []string{"<a/>"}}})
	mustFail(t, r, 2)
	if !strings.Contains(r.Failures[0].Msg, "kaput") {
		t.Errorf("Msg does not carry the error: %s", r.Failures[0].Msg)
	}
}

func TestUnparseableOutput(t *testing.T) {
	src := "serve a.example\nup a.example\nexpect <a/>\nup b.example\n"
	r, _ := run(t, src, map[string]reply{
		"a.example": {out: []string{"<a>"}},
		"b.example": {out: []string{"<a/><b/>"}},
	})
	mustFail(t, r, 2, 4)
	if !strings.Contains(r.Failures[0].Msg, "cannot be parsed") {
		t.Errorf("Msg: %s", r.Failures[0].Msg)
	}
}

func TestPanic(t *testing.T) {
	src := "serve a.example\nup a.example\nup b.example\n"
	r, e := run(t, src, map[string]reply{"a.example": {panic: true}})
	mustFail(t, r, 2)
	if len(e.calls) != 1 || !e.released {
		t.Errorf("run went on after a panic (calls %q) or did not release", e.calls)
	}
}

func TestFactError(t *testing.T) {
	s, err := Parse("t", []byte("serve a.example\nhide u@a.example\nup a.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := &fakeEngine{factErr: errors.New("no")}
	r := s.Run(func([]string) (Engine, error) { return e, nil })
	mustFail(t, r, 2)
	if len(e.calls) != 0 {
		t.Errorf("run went on after a refused fact: %q", e.calls)
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		name     string
		exp, act string
		equal    bool
	}{
		{"identical", `<presence/>`, `<presence/>`, true},
		{"quotes", `<presence to='a'/>`, `<presence to="a"></presence>`, true},
		{"attribute order", `<presence from='a' to='b'/>`, `<presence to='b' from='a'/>`, true},
		{"attribute value", `<presence to='a'/>`, `<presence to='b'/>`, false},
		{"missing attribute", `<presence to='a' type='probe'/>`, `<presence to='a'/>`, false},
		{"extra attribute", `<presence to='a'/>`, `<presence to='a' type='probe'/>`, false},
		{"name", `<presence/>`, `<message/>`, false},

		{"stamp fraction", `<delay xmlns='urn:xmpp:delay' stamp='2012-09-10T23:41:07Z'/>`, `<delay xmlns='urn:xmpp:delay' stamp='2012-09-10T23:41:07.000Z'/>`, true},
		{"stamp offset", `<delay xmlns='urn:xmpp:delay' stamp='2012-09-10T23:41:07Z'/>`, `<delay xmlns='urn:xmpp:delay' stamp='2012-09-11T01:41:07+02:00'/>`, true},
		{"stamp nested", `<presence><delay xmlns='urn:xmpp:delay' stamp='2012-09-11T01:41:07+02:00'/></presence>`, `<presence><delay xmlns='urn:xmpp:delay' stamp='2012-09-10T23:41:07.000Z'/></presence>`, true},
		{"stamp differs", `<delay xmlns='urn:xmpp:delay' stamp='2012-09-10T23:41:07Z'/>`, `<delay xmlns='urn:xmpp:delay' stamp='2012-09-10T23:41:08Z'/>`, false},
		{"stamp milliseconds", `<delay xmlns='urn:xmpp:delay' stamp='2012-09-10T23:41:07Z'/>`, `<delay xmlns='urn:xmpp:delay' stamp='2012-09-10T23:41:07.001Z'/>`, false},
		{"stamp elsewhere is text", `<x xmlns='urn:other' stamp='2012-09-10T23:41:07Z'/>`, `<x xmlns='urn:other' stamp='2012-09-10T23:41:07.000Z'/>`, false},

		{"client vs none", `<presence xmlns='jabber:client'><status>x</status></presence>`, `<presence><status>x</status></presence>`, true},
		{"server vs none", `<presence><status>x</status></presence>`, `<presence xmlns='jabber:server'><status>x</status></presence>`, true},
		{"client vs server", `<presence xmlns='jabber:client'/>`, `<presence xmlns='jabber:server'/>`, true},
		{"client child", `<presence><status xmlns='jabber:client'>x</status></presence>`, `<presence xmlns='jabber:server'><status>x</status></presence>`, true},
		{"prefixed content", `<c:presence xmlns:c='jabber:client'/>`, `<presence/>`, true},
		{"other namespace", `<presence xmlns='urn:other'/>`, `<presence/>`, false},
		{"extension child", `<presence><delay xmlns='urn:xmpp:delay'/></presence>`, `<presence><delay/></presence>`, false},
		{"inside extension not content", `<presence><x xmlns='urn:x'><y xmlns='jabber:client'/></x></presence>`, `<presence><x xmlns='urn:x'><y xmlns=''/></x></presence>`, false},

		{"iq like presence: server vs none", `<iq type='result' id='l1'><query xmlns='jabber:iq:last' seconds='5'/></iq>`, `<iq xmlns='jabber:server' type='result' id='l1'><query xmlns='jabber:iq:last' seconds='5'/></iq>`, true},
		{"iq id ignored", `<iq type='result'><query xmlns='jabber:iq:last' seconds='5'/></iq>`, `<iq type='result' id='l1'><query xmlns='jabber:iq:last' seconds='5'/></iq>`, true},
		{"iq id differs", `<iq type='result' id='l1'/>`, `<iq type='result' id='l2'/>`, false},
		{"iq seconds differ", `<iq type='result'><query xmlns='jabber:iq:last' seconds='5'/></iq>`, `<iq type='result'><query xmlns='jabber:iq:last' seconds='6'/></iq>`, false},
		{"iq query text", `<iq type='result'><query xmlns='jabber:iq:last' seconds='5'>a &amp; b</query></iq>`, `<iq type='result'><query xmlns='jabber:iq:last' seconds='5'><![CDATA[a & b]]></query></iq>`, true},
		{"iq is not presence", `<iq type='result'/>`, `<presence type='result'/>`, false},
		{"iq error condition", `<iq type='error'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, `<iq type='error'><error type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, false},

		{"id ignored", `<presence to='a'/>`, `<presence to='a' id='p1'/>`, true},
		{"id matches", `<presence id='p1'/>`, `<presence id='p1'/>`, true},
		{"id differs", `<presence id='p1'/>`, `<presence id='p2'/>`, false},
		{"id missing", `<presence id='p1'/>`, `<presence/>`, false},
		{"child id not ignored", `<presence><x xmlns='urn:x'/></presence>`, `<presence><x xmlns='urn:x' id='1'/></presence>`, false},

		{"whitespace between elements", `<presence><show>away</show><status>x</status></presence>`, "<presence>\n  <show>away</show>\n\t<status>x</status>\n</presence>", true},
		{"whitespace in text", `<presence><status>x</status></presence>`, `<presence><status> x</status></presence>`, false},
		{"whitespace-only text", `<presence><status></status></presence>`, `<presence><status> </status></presence>`, false},
		{"empty element forms", `<presence><status/></presence>`, `<presence><status></status></presence>`, true},
		{"text exact", `<presence><status>Hi</status></presence>`, `<presence><status>hi</status></presence>`, false},
		{"entities", `<presence><status>a &amp; b</status></presence>`, `<presence><status><![CDATA[a & b]]></status></presence>`, true},
		{"surrounding whitespace", `<presence/>`, " <presence/>\n", true},
		{"child order", `<presence><show>away</show><status>x</status></presence>`, `<presence><status>x</status><show>away</show></presence>`, false},
		{"missing child", `<presence><show>away</show></presence>`, `<presence/>`, false},

		{"prefix equivalence", `<a:x xmlns:a='u'/>`, `<x xmlns='u'/>`, true},
		{"prefix names differ", `<a:x xmlns:a='u'/>`, `<b:x xmlns:b='u'/>`, true},
		{"prefix different namespace", `<a:x xmlns:a='u'/>`, `<x xmlns='v'/>`, false},
		{"unused declaration", `<x xmlns='u'/>`, `<x xmlns='u' xmlns:z='w'/>`, true},
		{"attribute namespace", `<x xmlns='u' xmlns:p='v' p:a='1'/>`, `<q:x xmlns:q='u' xmlns:r='v' r:a='1'/>`, true},
		{"attribute namespace differs", `<x xmlns='u' xmlns:p='v' p:a='1'/>`, `<x xmlns='u' a='1'/>`, false},
		{"xml:lang", `<presence xml:lang='en'/>`, `<presence xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/>`, true},
		{"xml:lang vs lang", `<presence xml:lang='en'/>`, `<presence lang='en'/>`, false},

		// XML 1.0 §3.3.3: literal white space in an attribute value is a
		// space; a character reference keeps the character it names.
		{"attribute tab", "<presence id='a\tb'/>", `<presence id='a b'/>`, true},
		{"attribute newline", "<presence id='a\nb'/>", `<presence id='a b'/>`, true},
		{"attribute CR LF", "<presence id='a\r\nb'/>", `<presence id='a b'/>`, true},
		{"attribute CR", "<presence id=\"a\rb\"/>", `<presence id='a b'/>`, true},
		{"attribute tab in child", "<presence><x xmlns='urn:x' a='\t'/></presence>", `<presence><x xmlns='urn:x' a=' '/></presence>`, true},
		{"attribute tab reference", `<presence id='a&#9;b'/>`, `<presence id='a b'/>`, false},
		{"attribute tab reference kept", `<presence id='a&#9;b'/>`, "<presence id='a&#x9;b'/>", true},
		{"attribute two spaces", "<presence id='a\t\tb'/>", `<presence id='a b'/>`, false},
		{"text tab not normalised", "<presence><status>a\tb</status></presence>", `<presence><status>a b</status></presence>`, false},
		{"tab outside values", "<presence\tid='a'\n/>", `<presence id='a'/>`, true},
		{"quote in text", "<presence><status>it's\t</status></presence>", "<presence><status>it's\t</status></presence>", true},
		{"empty CDATA", `<presence><status><![CDATA[]]></status></presence>`, `<presence><status/></presence>`, true},
		{"empty CDATA twice", `<presence><status><![CDATA[]]><![CDATA[]]></status></presence>`, `<presence><status/></presence>`, true},
		{"empty CDATA in text", `<presence><status>a<![CDATA[]]>b</status></presence>`, `<presence><status>ab</status></presence>`, true},
		{"CDATA space not empty", `<presence><status><![CDATA[ ]]></status></presence>`, `<presence><status/></presence>`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, diff := Equal([]byte(tt.exp), []byte(tt.act))
			if got != tt.equal {
				t.Errorf("Equal(%s, %s) = %v, want %v; diff:\n%s", tt.exp, tt.act, got, tt.equal, diff)
			}
			if got != (diff == "") {
				t.Errorf("Equal returned %v with diff %q", got, diff)
			}
		})
	}
}

func TestEqualBadXML(t *testing.T) {
	for _, bad := range []string{
		``, `   `, `<a>`, `<a></b>`, `</a>`, `<a/><b/>`, `text`, `<a/>text`,
		`<p:a/>`, `<a p:x='1'/>`, `<a x='1' x='2'/>`, `<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>`,
		`<!-- c --><a/>`, `<?xml version='1.0'?><a/>`, `<a>&nbsp;</a>`, `<a xmlns:p=''/>`,
	} {
		if ok, msg := Equal([]byte(bad), []byte(`<a/>`)); ok || !strings.Contains(msg, "expected stanza") {
			t.Errorf("Equal(%q, <a/>) = %v, %q; want a parse error", bad, ok, msg)
		}
		if ok, msg := Equal([]byte(`<a/>`), []byte(bad)); ok || !strings.Contains(msg, "actual stanza") {
			t.Errorf("Equal(<a/>, %q) = %v, %q; want a parse error", bad, ok, msg)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"serve a.example\nfrobnicate x\n", `f.txt:2: unknown directive "frobnicate"`},
		{"Serve a.example\n", `f.txt:1: unknown directive "Serve"`},
		{"serve a.example\nup a.example\nserve b.example\n", "f.txt:3: serve must come before"},
		{"serve\n", "f.txt:1: serve: missing arguments"},
		{"serve a.example  b.example\n", "f.txt:1: serve: words are separated by single spaces"},
		{"at yesterday\n", "f.txt:1: at:"},
		{"at 2012-09-10T23:41:07Z\nat 2012-09-10T23:41:06Z\n", "f.txt:2: at: time never goes back"},
		{"at 1999-12-31T23:59:59Z\n", "f.txt:1: at: time never goes back"},
		{"roster a@b.example c@d.example friends\n", "f.txt:1: roster: subscription"},
		{"roster a@b.example c@d.example\n", "f.txt:1: roster: want roster OWNER CONTACT SUB"},
		{"roster a@b.example/r c@d.example both\n", "not a bare JID"},
		{"limit x 1m\n", "f.txt:1: limit:"},
		{"limit 2 forever\n", "f.txt:1: limit: bad duration"},
		{"limit 2 0s\n", "f.txt:1: limit: duration 0s is not positive"},
		{"hide\n", "f.txt:1: hide: missing arguments"},
		{"client a@b.example/r\n", "f.txt:1: client: want client FULLJID XML"},
		{"server\n", "f.txt:1: server: want server XML"},
		{"expect <a/>\n", "f.txt:1: expect: expect must follow an input line"},
		{"up a.example\nexpect\n", "f.txt:2: expect: want expect XML"},
		{"up a.example\nexpect <a>\n", "f.txt:2: expect: expected stanza"},
		{"up a.example\nexpect maybe\n", "f.txt:2: expect: expected stanza"},
		{"up a.example\nexpect <a/>\nexpect error\n", "f.txt:3: expect error must be the only"},
		{"up a.example\nexpect error\nexpect error\nup b.example\n", "f.txt:2: expect error must be the only"},
		{"up a.example\nexpect nothing\nexpect <a/>\n", "f.txt:2: expect nothing cannot be mixed"},
		{" up a.example\n", `unknown directive ""`},
		{"", "f.txt:1: no input line"},
		{"# only a comment\n\n", "f.txt:3: no input line"},
		{"serve a.example\nroster a@a.example b@b.example both\nat 2012-09-10T23:41:07Z\n", "f.txt:4: no input line"},
	}
	for _, tt := range tests {
		_, err := Parse("f.txt", []byte(tt.src))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError", tt.src, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", tt.src, err, tt.want)
		}
	}
}

func TestParseLines(t *testing.T) {
	src := "# c\r\nserve a.example\r\n\r\nat 2012-09-10T23:41:07Z\nlimit 3 90s\nclient u@a.example/r <presence> <status>a b</status></presence>\nexpect error"
	s, err := Parse("f", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Line{
		{Num: 2, Text: "serve a.example", Directive: "serve", Args: []string{"a.example"}},
		{Num: 4, Text: "at 2012-09-10T23:41:07Z", Directive: "at", Args: []string{"2012-09-10T23:41:07Z"}, Time: 1347320467 * 1e9},
		{Num: 5, Text: "limit 3 90s", Directive: "limit", Args: []string{"3", "90s"}, N: 3, Per: 90 * time.Second},
		{Num: 6, Text: "client u@a.example/r <presence> <status>a b</status></presence>", Directive: "client", Args: []string{"u@a.example/r"}, XML: []byte("<presence> <status>a b</status></presence>")},
		{Num: 7, Text: "expect error", Directive: "expect", Args: []string{"error"}},
	}
	if d := cmp.Diff(want, s.Lines); d != "" {
		t.Errorf("Lines (-want +got):\n%s", d)
	}
	if !s.Lines[3].IsInput() || s.Lines[2].IsInput() || !s.Lines[4].ExpectsError() || s.Lines[4].ExpectsNothing() {
		t.Error("IsInput, ExpectsError or ExpectsNothing wrong")
	}
}

// TestConformanceCasesParse checks that every conformance case, the copies
// in core/testdata/conformance and the shared ones when present, is a valid
// script.
func TestConformanceCasesParse(t *testing.T) {
	own, err := filepath.Glob(filepath.Join("..", "..", "core", "testdata", "conformance", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(own) == 0 {
		t.Fatal("no conformance cases in core/testdata/conformance")
	}
	shared, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "conformance", "cases", "*.txt"))
	for _, p := range append(own, shared...) {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(p, src)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(s.Lines) == 0 {
			t.Errorf("%s: no directives", p)
		}
	}
}

// TestConformanceCopiesMatchShared checks that the cases copied into
// core/testdata/conformance are byte for byte the shared ones, when
// ../shared is present: the copy must not drift from its source.
func TestConformanceCopiesMatchShared(t *testing.T) {
	sharedDir := filepath.Join("..", "..", "..", "shared", "conformance", "cases")
	if _, err := os.Stat(sharedDir); err != nil {
		t.Skip("../shared/conformance/cases not present beside the module")
	}
	own, _ := filepath.Glob(filepath.Join("..", "..", "core", "testdata", "conformance", "*.txt"))
	for _, p := range own {
		mine, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := os.ReadFile(filepath.Join(sharedDir, filepath.Base(p)))
		if err != nil {
			t.Errorf("%s has no shared original: %v", filepath.Base(p), err)
			continue
		}
		if !bytes.Equal(mine, theirs) {
			t.Errorf("%s differs from the shared case", filepath.Base(p))
		}
	}
}

func TestRunFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.txt", "serve a.example\nup a.example\nexpect <presence from='a.example'/>\n")
	bad := write("bad.txt", "serve a.example\nup a.example\nexpect <presence from='b.example'/>\n")
	broken := write("broken.txt", "serve a.example\nnonsense\n")
	missing := filepath.Join(dir, "missing.txt")
	f, _ := fake(map[string]reply{"a.example": {out: []string{`<presence xmlns="jabber:server" from="a.example" id="x"/>`}}})

	var buf bytes.Buffer
	passed, failed := RunFiles(&buf, f, good, bad, broken, missing)
	if passed != 1 || failed != 3 {
		t.Errorf("RunFiles = %d, %d; want 1, 3", passed, failed)
	}
	out := buf.String()
	if !strings.HasSuffix(out, "\n1 passed, 3 failed\n") {
		t.Errorf("report does not end with the counts:\n%s", out)
	}
	for _, want := range []string{
		"PASS " + good + "\n",
		"FAIL " + bad + "\n",
		bad + ":2: up a.example",
		"line 3: <presence from='b.example'/>",
		`<presence xmlns="jabber:server" from="a.example" id="x"/>`,
		"FAIL " + broken + "\n",
		broken + `:2: unknown directive "nonsense"`,
		"FAIL " + missing + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if testing.Verbose() {
		t.Logf("report:\n%s", out)
	}
}

func TestInputs(t *testing.T) {
	src := "# a comment\nserve a.example\n\nup a.example\nexpect nothing\nserver <presence/>\nexpect <presence/>\n"
	if got, want := Inputs([]byte(src)), "serve a.example\nup a.example\nserver <presence/>\n"; got != want {
		t.Errorf("Inputs = %q, want %q", got, want)
	}
}

// TestEqualDeepTreesDiffer checks that explaining a difference deep in a
// tree stays fast: cmp.Diff of nested slices takes time exponential in the
// depth, and a 33-deep stanza (one past the parser's limit) once hung the
// runner.
func TestEqualDeepTreesDiffer(t *testing.T) {
	deep := func(depth int, leaf string) string {
		return "<presence>" + strings.Repeat("<a>", depth-2) + leaf + strings.Repeat("</a>", depth-2) + "</presence>"
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ok, diff := Equal([]byte(deep(40, "<b/>")), []byte(deep(40, "<c/>")))
		if ok || !strings.Contains(diff, "b") || !strings.Contains(diff, "c") {
			t.Errorf("Equal of trees differing at depth 40 = %v, %q; want false and a diff naming both", ok, diff)
		}
		if ok, diff := Equal([]byte(deep(40, "<b/>")), []byte(deep(40, "<b/>"))); !ok {
			t.Errorf("equal deep trees differ: %s", diff)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Equal of two 40-deep trees took more than 20 s")
	}
}
