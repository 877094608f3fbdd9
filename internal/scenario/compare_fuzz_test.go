package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/lastseen-xmpp/lastseen/clock"
)

// The comparison is checked against a second reading of FORMAT.md built on
// etree: each side becomes a canonical string (names by namespace, sorted
// attributes, merged text), and two stanzas are equal when the strings are.
// It shares encoding/xml's tokenizer with Equal, so it is not a check of
// well-formedness: pairs that Equal cannot parse are left out, and only the
// equal/unequal verdicts must agree.

// etreeEqual reports whether expected and actual are equal as trees by the
// etree reading. An error means etree could not read a side.
func etreeEqual(expected, actual string) (bool, error) {
	want, wantID, err := etreeCanon(expected)
	if err != nil {
		return false, fmt.Errorf("expected: %w", err)
	}
	got, gotID, err := etreeCanon(actual)
	if err != nil {
		return false, fmt.Errorf("actual: %w", err)
	}
	if wantID == nil {
		gotID = nil
	}
	return want == got && (wantID == nil) == (gotID == nil) && (wantID == nil || *wantID == *gotID), nil
}

// etreeCanon returns the canonical form of one stanza without the root's id,
// and that id (nil when absent).
func etreeCanon(src string) (string, *string, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.PreserveDuplicateAttrs = true
	if err := doc.ReadFromString(spaceAttrValues(src)); err != nil {
		return "", nil, err
	}
	var root *etree.Element
	for _, tok := range doc.Child {
		switch tok := tok.(type) {
		case *etree.Element:
			if root != nil {
				return "", nil, errors.New("two roots")
			}
			root = tok
		case *etree.CharData:
			if strings.Trim(tok.Data, " \t\r\n") != "" {
				return "", nil, errors.New("text outside the root")
			}
		default:
			return "", nil, fmt.Errorf("%T outside the root", tok)
		}
	}
	if root == nil {
		return "", nil, errors.New("no root")
	}
	var id *string
	for _, a := range root.Attr {
		if a.Space == "" && a.Key == "id" {
			v := a.Value
			id = &v
		}
	}
	var b strings.Builder
	if err := canonElement(&b, root, true, true); err != nil {
		return "", nil, err
	}
	return b.String(), id, nil
}

// resolve finds the namespace bound to prefix at e, walking up the tree;
// "" is the default namespace.
func resolve(e *etree.Element, prefix string) (string, bool) {
	if prefix == "xml" {
		return nsXML, true
	}
	for ; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if prefix == "" && a.Space == "" && a.Key == "xmlns" || prefix != "" && a.Space == "xmlns" && a.Key == prefix {
				return a.Value, true
			}
		}
	}
	return "", prefix == ""
}

func canonElement(b *strings.Builder, e *etree.Element, parentContent, root bool) error {
	ns, ok := resolve(e, e.Space)
	if !ok || e.Tag == "" {
		return fmt.Errorf("element %q: unbound prefix", e.FullTag())
	}
	content := parentContent && (ns == "" || ns == nsClient || ns == nsServer)
	if content {
		ns = ""
	}
	b.WriteString("<" + strconv.Quote(ns) + " " + e.Tag)
	var attrs []string
	seen := map[string]bool{}
	for _, a := range e.Attr {
		if a.Space == "" && a.Key == "xmlns" || a.Space == "xmlns" {
			continue
		}
		if root && a.Space == "" && a.Key == "id" {
			continue
		}
		ans := ""
		if a.Space != "" {
			if ans, ok = resolve(e, a.Space); !ok {
				return fmt.Errorf("attribute %q: unbound prefix", a.FullKey())
			}
		}
		k := strconv.Quote(ans) + " " + a.Key
		if seen[k] {
			return fmt.Errorf("attribute %s twice", k)
		}
		seen[k] = true
		v := a.Value
		if ns == nsDelay && e.Tag == "delay" && ans == "" && a.Key == "stamp" {
			if t, err := clock.Parse(v); err == nil {
				v = t.String()
			}
		}
		attrs = append(attrs, k+"="+strconv.Quote(v))
	}
	sort.Strings(attrs)
	b.WriteString(" [" + strings.Join(attrs, " ") + "]")

	// Merge runs of character data (text and CDATA alike); drop the empty
	// ones, and the white-space-only ones when there are child elements.
	var parts []any
	hasElem := false
	for _, tok := range e.Child {
		switch tok := tok.(type) {
		case *etree.CharData:
			if n := len(parts); n > 0 {
				if s, ok := parts[n-1].(string); ok {
					parts[n-1] = s + tok.Data
					continue
				}
			}
			parts = append(parts, tok.Data)
		case *etree.Element:
			hasElem = true
			parts = append(parts, tok)
		default:
			return fmt.Errorf("%T in an element", tok)
		}
	}
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			if p == "" || hasElem && strings.Trim(p, " \t\r\n") == "" {
				continue
			}
			b.WriteString(" text " + strconv.Quote(p))
		case *etree.Element:
			b.WriteString(" ")
			if err := canonElement(b, p, content, false); err != nil {
				return err
			}
		}
	}
	b.WriteString(">")
	return nil
}

// spaceAttrValues applies XML 1.0 §3.3.3 to the literal white space of
// attribute values with a lexer of its own: a tab, line feed, carriage
// return or CR LF inside a quoted value of a tag becomes a space. Text,
// CDATA sections, comments and processing instructions pass unchanged.
func spaceAttrValues(s string) string {
	var b strings.Builder
	const (
		text = iota
		tag
		value
	)
	state, quote := text, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case text:
			if n := opaqueLen(s[i:]); n > 0 {
				b.WriteString(s[i : i+n])
				i += n - 1
				continue
			}
			if c == '<' {
				state = tag
			}
		case tag:
			switch c {
			case '\'', '"':
				state, quote = value, c
			case '>':
				state = text
			}
		case value:
			switch {
			case c == quote:
				state = tag
			case c == '\r' && i+1 < len(s) && s[i+1] == '\n':
				i++
				c = ' '
			case c == '\t' || c == '\n' || c == '\r':
				c = ' '
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// opaqueLen returns the length of the CDATA section, comment or processing
// instruction at the start of s (to its end when unclosed), or 0.
func opaqueLen(s string) int {
	for _, skip := range [][2]string{{"<![CDATA[", "]]>"}, {"<!--", "-->"}, {"<?", "?>"}} {
		if strings.HasPrefix(s, skip[0]) {
			end := strings.Index(s[len(skip[0]):], skip[1])
			if end < 0 {
				return len(s)
			}
			return len(skip[0]) + end + len(skip[1])
		}
	}
	return 0
}

// compareSeeds returns stanza pairs for the fuzzer: each scenario line's
// stanza from the corpus and the public cases, paired with itself and with
// its neighbours, and hand-written pairs around the known traps.
func compareSeeds(tb testing.TB) [][2]string {
	pairs := [][2]string{
		{"<presence id='a\tb'/>", "<presence id='a b'/>"},
		{"<presence id='a\r\nb'/>", "<presence id='a&#10;b'/>"},
		{"<presence id='a&#9;b'/>", "<presence id='a\tb'/>"},
		{`<presence><status><![CDATA[]]></status></presence>`, `<presence><status/></presence>`},
		{`<presence><status>a<![CDATA[]]>b</status></presence>`, `<presence><status>a<![CDATA[b]]></status></presence>`},
		{"<presence>\n <status>x</status>\n</presence>", `<presence><status>x</status></presence>`},
		{`<c:presence xmlns:c='jabber:client' xmlns='urn:d'><status>x</status></c:presence>`, `<presence><status>x</status></presence>`},
		{`<presence xmlns='jabber:server'><x xmlns='urn:x'><y xmlns='jabber:client'/></x></presence>`, `<presence><x xmlns='urn:x'><y/></x></presence>`},
		{`<presence xml:lang='en' id='1'/>`, `<presence xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/>`},
		{`<presence><delay xmlns='urn:xmpp:delay' stamp='2012-09-10T23:41:07Z'/></presence>`, `<presence><delay xmlns='urn:xmpp:delay' stamp='2012-09-11T01:41:07.000+02:00'/></presence>`},
		{`<a xmlns:p='u' p:x='1'/>`, `<a xmlns:q='u' q:x='1'/>`},
		{`<presence id='&gt;'>&gt;</presence>`, `<presence id='>'>></presence>`},
	}
	var stanzas []string
	for _, dir := range []string{"../../core/testdata/scenarios", "../../../shared/conformance/cases"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				tb.Fatal(err)
			}
			script, err := Parse(file, src)
			if err != nil {
				continue // a case for directives this runner does not know yet
			}
			for _, l := range script.Lines {
				if l.XML != nil {
					stanzas = append(stanzas, string(l.XML))
				}
			}
		}
	}
	for i, s := range stanzas {
		pairs = append(pairs, [2]string{s, s})
		if i > 0 {
			pairs = append(pairs, [2]string{stanzas[i-1], s})
		}
	}
	return pairs
}

// FuzzEqual checks that Equal and the etree reading agree on every pair of
// stanzas that Equal can parse, in both orders. Run it with
// go test -run x -fuzz FuzzEqual ./internal/scenario/.
func FuzzEqual(f *testing.F) {
	for _, p := range compareSeeds(f) {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, expected, actual string) {
		if _, err := normalize([]byte(expected)); err != nil {
			t.Skip()
		}
		if _, err := normalize([]byte(actual)); err != nil {
			t.Skip()
		}
		got, diff := Equal([]byte(expected), []byte(actual))
		want, err := etreeEqual(expected, actual)
		if err != nil {
			t.Fatalf("Equal parses both sides, etree does not: %v\nexpected %q\nactual   %q", err, expected, actual)
		}
		if got != want {
			t.Fatalf("Equal = %v, etree reading = %v\nexpected %q\nactual   %q\ndiff:\n%s", got, want, expected, actual, diff)
		}
	})
}

// TestEqualAgreesWithEtree runs the fuzz seeds as a test, and checks that
// the seeds hold both verdicts, so the agreement is not vacuous.
func TestEqualAgreesWithEtree(t *testing.T) {
	counts := map[bool]int{}
	for _, p := range compareSeeds(t) {
		if _, err := normalize([]byte(p[0])); err != nil {
			continue
		}
		if _, err := normalize([]byte(p[1])); err != nil {
			continue
		}
		got, _ := Equal([]byte(p[0]), []byte(p[1]))
		want, err := etreeEqual(p[0], p[1])
		if err != nil {
			t.Errorf("etree cannot read %q / %q: %v", p[0], p[1], err)
			continue
		}
		if got != want {
			t.Errorf("Equal(%q, %q) = %v, etree reading says %v", p[0], p[1], got, want)
		}
		counts[got]++
	}
	if counts[true] < 10 || counts[false] < 10 {
		t.Errorf("seeds give %d equal and %d unequal pairs; want at least 10 of each", counts[true], counts[false])
	}
}
