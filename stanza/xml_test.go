package stanza

import (
	"encoding/xml"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAccepts(t *testing.T) {
	for _, in := range []string{
		`<presence/>`,
		" \n<presence/>\n ",
		`<presence xmlns='jabber:client' id="a'b"><show>away</show></presence>`,
		`<c:presence xmlns:c='jabber:client'><c:show>dnd</c:show></c:presence>`,
		`<presence><status>a &lt; b &amp; c &#233; &#x1F600;</status></presence>`,
		`<presence><status><![CDATA[<not markup> & ]]></status></presence>`,
		`<presence xml:lang='en'><x xmlns='urn:a' xmlns:b='urn:b' b:attr='1'><b:y/></x></presence>`,
		`<presence><status>caf` + "\u00e9" + ` ` + "\u2603" + `</status></presence>`,
		`<presence ></presence >`,
		`<presence a = '1'	b="2"/>`,
	} {
		var p Parser
		if _, err := p.Parse([]byte(in)); err != nil {
			t.Errorf("Parse(%q) = %v, want success", in, err)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want error
	}{
		{``, ErrMalformed},
		{`   `, ErrMalformed},
		{`text`, ErrMalformed},
		{`<presence>`, ErrMalformed},
		{`<presence></status>`, ErrMalformed},
		{`<presence/>trailing`, ErrMalformed},
		{`<presence/><presence/>`, ErrMalformed},
		{`<presence a='1' a='2'/>`, ErrMalformed},
		{`<presence xmlns:x='u' xmlns:y='u' x:a='1' y:a='2'/>`, ErrMalformed},
		{`<presence a='1'b='2'/>`, ErrMalformed},
		{`<presence a=1/>`, ErrMalformed},
		{`<presence a='<'/>`, ErrMalformed},
		{`<presence><x:y/></presence>`, ErrMalformed},
		{`<presence xmlns:x=''/>`, ErrMalformed},
		{`<presence xmlns:xmlns='u'/>`, ErrMalformed},
		{`<presence xmlns:xml='u'/>`, ErrMalformed},
		{`<presence><status>]]></status></presence>`, ErrMalformed},
		{`<presence><status>&#0;</status></presence>`, ErrMalformed},
		{`<presence><status>&#xD800;</status></presence>`, ErrMalformed},
		{`<presence><status>& </status></presence>`, ErrMalformed},
		{"<presence><status>\x01</status></presence>", ErrMalformed},
		{"<presence><status>\xc3</status></presence>", ErrMalformed},
		{"<presence><status>\uFFFE</status></presence>", ErrMalformed},
		{`<1presence/>`, ErrMalformed},
		{`<:presence/>`, ErrMalformed},
		{`<a:b:c xmlns:a='u'/>`, ErrMalformed},
		{`<presence><![CDATA[x</presence>`, ErrMalformed},
		{`<!DOCTYPE presence [<!ENTITY x 'y'>]><presence>&x;</presence>`, ErrRestricted},
		{`<presence>&x;</presence>`, ErrRestricted},
		{`<presence a='&nbsp;'/>`, ErrRestricted},
		{`<?xml version='1.0'?><presence/>`, ErrRestricted},
		{`<presence><?pi x?></presence>`, ErrRestricted},
		{`<presence><!-- c --></presence>`, ErrRestricted},
		{`<presence/><!-- c -->`, ErrRestricted},
	} {
		var p Parser
		_, err := p.Parse([]byte(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) = %v, want %v", tt.in, err, tt.want)
		}
		var se *SyntaxError
		if err != nil && !errors.As(err, &se) {
			t.Errorf("Parse(%q) error %T is not a *SyntaxError", tt.in, err)
		}
	}
}

func TestLimits(t *testing.T) {
	p := Parser{Limits: Limits{MaxBytes: 21, MaxDepth: 2, MaxAttrs: 2}}
	if _, err := p.Parse([]byte(`<presence><s>xy</s></presence>`)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("size: %v", err)
	}
	if _, err := p.Parse([]byte(`<p><a><b/></a></p>`)); !errors.Is(err, ErrTooComplex) {
		t.Errorf("depth: %v", err)
	}
	if _, err := p.Parse([]byte(`<p a='' b='' c=''/>`)); !errors.Is(err, ErrTooComplex) {
		t.Errorf("attrs: %v", err)
	}
	atLimit := `<p a='' b=''><a/></p>` // 21 bytes, depth 2, 2 attributes
	if _, err := p.Parse([]byte(atLimit)); err != nil {
		t.Errorf("at the limits: %v", err)
	}
}

// TestViewMatchesEncodingXML checks the view (root name, namespace,
// attributes and top-level children) against encoding/xml's reading of the
// same accepted input.
func TestViewMatchesEncodingXML(t *testing.T) {
	in := `<c:presence xmlns:c='jabber:client' xml:lang='en' id='x&amp;y' c:extra='1'>` +
		`<c:show>away</c:show> <delay xmlns='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'/>` +
		`<x xmlns='jabber:x:delay'/><status>a &lt; b</status></c:presence>`
	var p Parser
	el, err := p.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	type attr struct{ Space, Local, Value string }
	var got, want []attr
	for i := range el.Attrs {
		a := &el.Attrs[i]
		if a.Decl {
			continue
		}
		got = append(got, attr{string(a.Space), string(a.Local), string(a.AppendValue(nil))})
	}
	var gotKids, wantKids []string
	for _, n := range el.Children {
		if !n.Text {
			gotKids = append(gotKids, string(n.Space)+" "+string(n.Local))
		}
	}
	d := xml.NewDecoder(strings.NewReader(in))
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				if tok.Name.Space != string(el.Space) || tok.Name.Local != string(el.Local) {
					t.Errorf("root = {%s}%s, encoding/xml says {%s}%s", el.Space, el.Local, tok.Name.Space, tok.Name.Local)
				}
				for _, a := range tok.Attr {
					if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
						continue
					}
					want = append(want, attr{a.Name.Space, a.Name.Local, a.Value})
				}
			}
			if depth == 2 {
				wantKids = append(wantKids, tok.Name.Space+" "+tok.Name.Local)
			}
		case xml.EndElement:
			depth--
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attributes (-encoding/xml +ours):\n%s", diff)
	}
	if diff := cmp.Diff(wantKids, gotKids); diff != "" {
		t.Errorf("children (-encoding/xml +ours):\n%s", diff)
	}
}

func TestPresenceView(t *testing.T) {
	var p Parser
	var pr Presence
	in := `<presence xmlns='jabber:client' xmlns:e='urn:e' xml:lang='en' from='a@b/c' to='d@e' id='i1' type='unavailable'>` +
		` <status>bye</status> <delay xmlns='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'/><e:x/></presence>`
	if err := p.ParsePresence([]byte(in), &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Type != Unavailable || string(pr.From.Raw) != "a@b/c" || string(pr.To.Raw) != "d@e" {
		t.Errorf("view: type %v from %q to %q", pr.Type, pr.From.Raw, pr.To.Raw)
	}
	kept, attrLen := pr.AppendKept(nil)
	if got, want := string(kept[:attrLen]), ` xmlns:e='urn:e' xml:lang='en'`; got != want {
		t.Errorf("kept attributes = %q, want %q", got, want)
	}
	if got, want := string(kept[attrLen:]), `<status>bye</status><e:x/>`; got != want {
		t.Errorf("kept content = %q, want %q", got, want)
	}
	if got := string(pr.AppendIDAttr(nil)); got != ` id='i1'` {
		t.Errorf("id attr = %q", got)
	}
	d, ok, err := ParseDelay(pr.Element)
	if !ok || err != nil || d.Stamp.String() != "2002-09-10T23:08:25Z" {
		t.Errorf("ParseDelay = %v %v %v", d, ok, err)
	}
	for _, bad := range []string{`<message/>`, `<presence xmlns='urn:x'/>`, `<presence type='available'/>`} {
		if err := p.ParsePresence([]byte(bad), &pr); err == nil {
			t.Errorf("ParsePresence(%q) succeeded", bad)
		}
	}
}

func TestParseDoesNotAllocateWhenWarm(t *testing.T) {
	var p Parser
	var pr Presence
	in := []byte(`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='p1'><status>x</status></presence>`)
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.ParsePresence(in, &pr); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParsePresence allocates %v times per call when warm", allocs)
	}
}

func TestLastActivityQueryDoesNotAllocateWhenWarm(t *testing.T) {
	var p Parser
	var pr Presence
	var iq IQ
	in := []byte(`<iq from='juliet@capulet.com/balcony' to='romeo@montague.com' type='get' id='l1'><query xmlns='jabber:iq:last'/></iq>`)
	allocs := testing.AllocsPerRun(100, func() {
		isIQ, err := p.ParseStanza(in, &pr, &iq)
		if err != nil || !isIQ {
			t.Fatal(isIQ, err)
		}
		if err := iq.CheckLastActivity(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseStanza and CheckLastActivity allocate %v times per call when warm", allocs)
	}
}

// TestCharRefDigitCounts checks that a character reference is judged by its
// value, whatever its number of digits (XML 1.0 §4.1 puts no bound on it):
// leading zeros are accepted at every count, and values past U+10FFFF are
// refused at every count, so that a bound on digits cannot come back. The
// expected value comes from math/big, which has no bound of its own.
func TestCharRefDigitCounts(t *testing.T) {
	var bodies []string
	for zeros := 0; zeros <= 40; zeros++ {
		pad := strings.Repeat("0", zeros)
		bodies = append(bodies, pad+"65", "x"+pad+"41", "X"+pad+"41", pad+"1114111", "x"+pad+"10FFFF",
			pad+"1114112", "x"+pad+"110000", pad+"0", pad+"55296", "x"+pad+"fffe", "1"+pad+"65", "x1"+pad+"41")
	}
	for digits := 1; digits <= 40; digits++ {
		bodies = append(bodies, strings.Repeat("9", digits), "x"+strings.Repeat("f", digits), "x"+strings.Repeat("1", digits))
	}
	for _, body := range bodies {
		want, ok := bigCharRef(body)
		for _, in := range []string{
			"<presence><status>&#" + body + ";</status></presence>",
			"<presence id='&#" + body + ";'/>",
		} {
			var p Parser
			el, err := p.Parse([]byte(in))
			if !ok {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("Parse(%q) = %v, want ErrMalformed", in, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("Parse(%q) = %v, want success", in, err)
				continue
			}
			if a := el.Attr("id"); a != nil {
				if got := string(a.AppendValue(nil)); got != string(want) {
					t.Errorf("Parse(%q): id = %q, want %q", in, got, string(want))
				}
			}
		}
	}
}

// bigCharRef decodes the body of a character reference ("65", "x41") with
// math/big and reports whether it names an XML 1.0 Char.
func bigCharRef(body string) (rune, bool) {
	base := 10
	if strings.HasPrefix(body, "x") {
		base, body = 16, body[1:]
	}
	if body == "" || strings.ContainsAny(body, "+-_xX") {
		return 0, false
	}
	v, ok := new(big.Int).SetString(body, base)
	if !ok || !v.IsInt64() || v.Int64() > 0x10FFFF {
		return 0, false
	}
	r := rune(v.Int64())
	return r, r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000
}
