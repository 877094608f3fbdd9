package stanza

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// nestedDecls returns a stanza of depth elements, each declaring perElem
// prefixes, with refs prefixed elements inside the innermost one.
func nestedDecls(depth, perElem, refs int) []byte {
	var b strings.Builder
	for d := 0; d < depth; d++ {
		b.WriteString("<e")
		for i := 0; i < perElem; i++ {
			fmt.Fprintf(&b, " xmlns:p%d_%d='urn:%d'", d, i, i)
		}
		b.WriteString(">")
	}
	b.WriteString(strings.Repeat("<p0_0:a/>", refs))
	b.WriteString(strings.Repeat("</e>", depth))
	return []byte(b.String())
}

// TestNamespaceDeclarationsInScope: every prefix lookup scans the
// declarations in scope, so their number is bounded (by MaxAttrs).
// Without the bound, 30 nested elements of 64 declarations followed by
// thousands of prefixed elements cost about a thousand times a plain
// stanza of the same size to parse.
func TestNamespaceDeclarationsInScope(t *testing.T) {
	p := Parser{Limits: Limits{MaxAttrs: 4}}
	if _, err := p.Parse(nestedDecls(2, 2, 3)); err != nil {
		t.Errorf("4 declarations in scope: %v", err)
	}
	if _, err := p.Parse(nestedDecls(3, 2, 3)); !errors.Is(err, ErrTooComplex) {
		t.Errorf("6 declarations in scope: err = %v, want ErrTooComplex", err)
	}
	// Declarations that went out of scope do not count.
	sibling := []byte("<e><a xmlns:x='u' xmlns:y='u'/><b xmlns:x='u' xmlns:y='u'/><c xmlns:x='u' xmlns:y='u' xmlns:z='u' xmlns='d'/></e>")
	if _, err := p.Parse(sibling); err != nil {
		t.Errorf("siblings: %v", err)
	}
	// The default limit refuses the costly shape.
	var d Parser
	if _, err := d.Parse(nestedDecls(30, 64, 2000)); !errors.Is(err, ErrTooComplex) {
		t.Errorf("worst case at the default limits: err = %v, want ErrTooComplex", err)
	}
	if _, err := d.Parse(nestedDecls(1, 64, 2000)); err != nil {
		t.Errorf("64 declarations at the default limits: %v", err)
	}
}

func BenchmarkParseDeclarationsInScope(b *testing.B) {
	in := nestedDecls(1, 64, 6500) // the most the default limits allow
	var p Parser
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := p.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}
