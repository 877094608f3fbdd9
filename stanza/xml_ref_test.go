package stanza

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// The fast parser is checked against the frozen copy in xml_refimpl_test.go
// rather than only against encoding/xml: FuzzParse tells whether the
// verdict is right, these tell whether anything at all changed, down to
// error offsets and messages (the wasm guest hands both to hosts) and
// whether a view field is nil or empty.

// refLimits are the limits the differential tests run under: the fuzzer's
// small ones reach every limit path, the defaults are what production
// uses, and the tiny ones make every limit trip on the first construct.
var refLimits = []Limits{fuzzLimits, {}, {MaxBytes: 64, MaxDepth: 2, MaxAttrs: 2}}

// warmStanza is parsed before the input under test, so that stale slots in
// the reused buffers (attributes, children, declarations) would show.
const warmStanza = `<p:presence xmlns:p='jabber:client' xmlns='urn:d' xml:lang='en' from='a@b/c' to='d@e' id='i&amp;1' type='probe' q:x='1' xmlns:q='urn:q'>` +
	`<show>away</show> <x xmlns='jabber:x:delay' stamp='s'/><![CDATA[ ]]>text</p:presence>`

// span describes a view slice: nil or not, where it lies in the input (-1
// when it lies elsewhere, as a decoded namespace does), and what it holds.
type span struct {
	Nil bool
	Off int
	S   string
}

func spanOf(raw, b []byte) span {
	if b == nil {
		return span{Nil: true}
	}
	off := -1
	if len(raw) > 0 {
		d := uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
		if d <= uintptr(len(raw)) && int(d)+len(b) <= len(raw) {
			off = int(d)
		}
	}
	return span{Off: off, S: string(b)}
}

type attrDesc struct {
	Start, End                int
	Prefix, Local, Space, Raw span
	Quote                     byte
	Decl                      bool
}

type nodeDesc struct {
	Start, End   int
	Text, Blank  bool
	Local, Space span
}

type elemDesc struct {
	Err                        string // class, offset and message
	Raw, Prefix, Local, Space  span
	Attrs                      []attrDesc
	AttrsNil                   bool
	Children                   []nodeDesc
	ContentStart, ContentEnd   int
	Type                       Type
	From, To, ID, Typ          int // index into Attrs, -1 when absent
	PresenceErr, PresenceElNil string
	IsIQ                       bool
	IQType                     IQType
	LastErr                    string // CheckLastActivity's verdict on an iq
}

func errDesc(err error) string {
	if err == nil {
		return ""
	}
	var se *SyntaxError
	if !errors.As(err, &se) {
		return fmt.Sprintf("%T %v", err, err)
	}
	return fmt.Sprintf("%v@%d: %s", se.Err, se.Offset, se.Msg)
}

func describe(raw []byte, el *Element, err error) elemDesc {
	d := elemDesc{Err: errDesc(err)}
	if el == nil {
		return d
	}
	d.Raw, d.Prefix, d.Local, d.Space = spanOf(raw, el.Raw), spanOf(raw, el.Prefix), spanOf(raw, el.Local), spanOf(raw, el.Space)
	d.AttrsNil = el.Attrs == nil
	for i := range el.Attrs {
		a := &el.Attrs[i]
		d.Attrs = append(d.Attrs, attrDesc{a.Start, a.End, spanOf(raw, a.Prefix), spanOf(raw, a.Local), spanOf(raw, a.Space), spanOf(raw, a.Raw), a.Quote, a.Decl})
	}
	for _, n := range el.Children {
		d.Children = append(d.Children, nodeDesc{n.Start, n.End, n.Text, n.Blank, spanOf(raw, n.Local), spanOf(raw, n.Space)})
	}
	d.ContentStart, d.ContentEnd = el.ContentStart, el.ContentEnd
	return d
}

func attrIndex(el *Element, a *Attr) int {
	if a == nil {
		return -1
	}
	for i := range el.Attrs {
		if &el.Attrs[i] == a {
			return i
		}
	}
	return -2 // points outside the view
}

func describePresence(raw []byte, pr *Presence, err error) elemDesc {
	d := describe(raw, pr.Element, nil)
	d.PresenceErr = errDesc(err)
	if pr.Element == nil {
		d.PresenceElNil = "nil"
		return d
	}
	d.Type = pr.Type
	d.From, d.To, d.ID, d.Typ = attrIndex(pr.Element, pr.From), attrIndex(pr.Element, pr.To), attrIndex(pr.Element, pr.ID), attrIndex(pr.Element, pr.typ)
	return d
}

// describeStanza describes what ParseStanza filled: the presence view, or
// the iq view with its Last Activity verdict.
func describeStanza(raw []byte, isIQ bool, pr *Presence, iq *IQ, err error, check func(*IQ) error) elemDesc {
	if !isIQ {
		d := describePresence(raw, pr, err)
		return d
	}
	d := describe(raw, iq.Element, nil)
	d.IsIQ = true
	d.PresenceErr = errDesc(err)
	d.IQType = iq.Type
	d.From, d.To, d.ID, d.Typ = attrIndex(iq.Element, iq.From), attrIndex(iq.Element, iq.To), attrIndex(iq.Element, iq.ID), -1
	if err == nil {
		d.LastErr = errDesc(check(iq))
	}
	return d
}

// checkSameAsRef parses in with both parsers, fresh and warm, under the
// given limits, and fails on any difference.
func checkSameAsRef(t *testing.T, in []byte, limits ...Limits) {
	t.Helper()
	for _, lim := range limits {
		for _, warm := range []bool{false, true} {
			p, r := Parser{Limits: lim}, refParser{Limits: lim}
			if warm {
				p.Parse([]byte(warmStanza))
				r.Parse([]byte(warmStanza))
			}
			el, err := p.Parse(in)
			got := describe(in, el, err)
			rel, rerr := r.Parse(in)
			want := describe(in, rel, rerr)
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("Parse(%q) with %+v (warm %v) differs from the reference (-ref +fast):\n%s", in, lim, warm, cmp.Diff(want, got))
			}
			var pr, rpr Presence
			err, rerr = p.ParsePresence(in, &pr), r.ParsePresence(in, &rpr)
			got, want = describePresence(in, &pr, err), describePresence(in, &rpr, rerr)
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("ParsePresence(%q) with %+v (warm %v) differs from the reference (-ref +fast):\n%s", in, lim, warm, cmp.Diff(want, got))
			}
			var iq, riq IQ
			pr, rpr = Presence{}, Presence{}
			isIQ, err := p.ParseStanza(in, &pr, &iq)
			risIQ, rerr := r.ParseStanza(in, &rpr, &riq)
			got = describeStanza(in, isIQ, &pr, &iq, err, (*IQ).CheckLastActivity)
			want = describeStanza(in, risIQ, &rpr, &riq, rerr, refCheckLastActivity)
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("ParseStanza(%q) with %+v (warm %v) differs from the reference (-ref +fast):\n%s", in, lim, warm, cmp.Diff(want, got))
			}
		}
	}
}

// refEdgeCases aim at the fast paths: names and values whose ends fall at
// every position of an eight-byte word, colons at every place in a name,
// non-ASCII names and values, and every way a start tag can end early.
func refEdgeCases() []string {
	var cs []string
	for n := 1; n <= 20; n++ {
		nm := strings.Repeat("a", n)
		cs = append(cs,
			"<"+nm+"/>", "<"+nm+">", "<"+nm+"></"+nm+">", "<"+nm+" />", "<"+nm,
			"<p "+nm+"='"+nm+"'/>", "<p "+nm+`="`+nm+`"/>`, "<p "+nm+"='"+nm+"'", "<p "+nm+"='"+nm,
			"<p "+nm+"="+nm+"/>", "<p "+nm+" = '"+nm+"' />", "<p "+nm+"=''/>",
			"<p a='"+nm+"&amp;'/>", "<p a='"+nm+"<'/>", "<p a='"+nm+"\"'/>", `<p a="`+nm+`'"/>`,
			"<p a='"+nm+"&'/>", "<p a='"+nm+"&x;'/>", "<p a='"+nm+"\x01'/>", "<p a='"+nm+"\xc3'/>",
			"<p a='"+nm+"é'/>", "<p a='é"+nm+"'/>", "<p a='"+nm+"\uFFFE'/>", "<p a='"+nm+"\t\n\r'/>",
			"<p><"+nm+"/></p>", "<p><"+nm+"></"+nm+"></p>", "<p><"+nm+"></"+nm+"x></p>", "<p><"+nm+"></"+nm+" ></p>",
			"<p>"+nm+"</p>", "<p> "+nm+" </p>", "<p>"+nm+"&lt;</p>", "<p>"+nm+"]]></p>",
			"<"+nm+"é/>", "<é"+nm+"/>", "<p "+nm+"é='1'/>", "<p "+nm+"\u00b7='1'/>", "<"+nm+"\u0300/>",
		)
		for c := 0; c <= n; c++ {
			q := nm[:c] + ":" + nm[c:]
			cs = append(cs,
				"<"+q+" xmlns:"+nm[:c]+"='u'/>", "<"+q+"/>", "<p xmlns:"+nm[:c]+"='u' "+q+"='1'/>",
				"<p "+q+"='1'/>", "<p><"+q+"/></p>", "<"+q+" xmlns:"+nm[:c]+"='u'></"+q+">",
				"<p xmlns:a='u' xmlns:b='u' "+q+"='1' b"+q[1:]+"='2'/>",
				"<p xmlns:"+nm[:c]+"='u' "+q+"='1' "+q+"='2'/>",
			)
		}
	}
	for _, ws := range []string{"", " ", "\t", "\n", "\r", "  \t\r\n  "} {
		cs = append(cs,
			"<p"+ws+"a='1'"+ws+"/>", "<p"+ws+"a"+ws+"="+ws+"'1'"+ws+">"+ws+"</p"+ws+">",
			"<p a='1'"+ws+"b='2'/>", "<p a='1'"+ws+"a='2'/>", "<p"+ws+"/"+ws+">", "<p"+ws+"a='1'"+ws,
			ws+"<p/>"+ws, ws+"x<p/>", "<p/>"+ws+"<q/>", "<p/>"+ws+"<!-- c -->", "<p/>"+ws+"<?pi?>",
		)
	}
	cs = append(cs,
		"<p ab='1' ba='2' a='3' b='4' abc='5' ab='6'/>", "<p xmlns='' xmlns:x='u' x:y='1' y='2'/>",
		"<p xmlns='u' xmlns='v'/>", "<p xmlns:x='u' xmlns:x='v'/>", "<p xmlns='&#104;ttp://www.w3.org/XML/1998/namespace'/>",
		"<p xmlns:x='u&amp;v'><x:y/></p>", "<xml:p/>", "<p xml:lang='en' xml:lang='fr'/>", "<xmlns:p/>", "<p xmlns:xml='"+nsXML+"'/>",
		"<presence type='probe'/>", "<presence type='&#112;robe'/>", "<presence type='bogus'/>", "<presence type=''/>",
		"<presence xmlns='jabber:server' from='a' from='b'/>", "<presence p:from='a' xmlns:p='u'/>", "<presence xmlns:from='u'/>",
		"<message/>", "<c:presence xmlns:c='jabber:client'/>", "<presence xmlns='urn:x'/>",
		"<iq type='get' id='1'><query xmlns='jabber:iq:last'/></iq>", "<iq type='get'><query xmlns='jabber:iq:last'/></iq>",
		"<iq type='set' id='1'><query xmlns='jabber:iq:last'/></iq>", "<iq id='1'><query xmlns='jabber:iq:last'/></iq>",
		"<iq type='&#103;et' id='1'> <query xmlns='jabber:iq:last'/> </iq>", "<iq type='get' id='1'><query xmlns='jabber:iq:last'/>x</iq>",
		"<iq type='get' id='1'><query xmlns='jabber:iq:last'/><x/></iq>", "<iq type='get' id='1'><query xmlns='jabber:iq:version'/></iq>",
		"<iq type='get' id='1'/>", "<iq type='bogus' id='1'/>", "<iq xmlns='urn:x' type='get' id='1'/>", "<c:iq xmlns:c='jabber:server' type='result' id=''/>",
		"<iq type='get' id='1'><l:query xmlns:l='jabber:iq:last'><x/></l:query></iq>", "<iq type='get' id='1'><![CDATA[ ]]><query xmlns='jabber:iq:last'/></iq>",
		"<p><![CDATA[ ]]></p>", "<p><![CDATA[x]]> </p>", "<p>&#x20;</p>", "<p><!x></p>", "<p><!DOCTYPE></p>", "<p>&#;</p>",
	)
	return cs
}

func TestParseSameAsReference(t *testing.T) {
	for _, s := range xmlFuzzSeeds(t) {
		checkSameAsRef(t, []byte(s), refLimits...)
	}
	for _, s := range refEdgeCases() {
		checkSameAsRef(t, []byte(s), refLimits...)
		// Every prefix too: inputs that end at each position.
		for i := 0; i < len(s); i++ {
			checkSameAsRef(t, []byte(s[:i]), Limits{})
		}
	}
}

// FuzzParseSameAsReference compares the fast parser with the frozen
// reference on arbitrary input.
func FuzzParseSameAsReference(f *testing.F) {
	for _, s := range xmlFuzzSeeds(f) {
		f.Add([]byte(s))
	}
	for _, s := range refEdgeCases() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkSameAsRef(t, in, refLimits...)
	})
}

// TestCheckCharsEveryPosition puts each kind of bad (and good but not
// printable ASCII) character at every position of inputs of every length
// around the word sizes the fast path reads, alone and after another.
func TestCheckCharsEveryPosition(t *testing.T) {
	odd := []string{"\x00", "\x01", "\x1f", "\t", "\n", "\r", "\x7f", "\x80", "\xc3", "é", "\uFFFE", "\uFFFF", "\uFFFD", "\U0001F600", "\xed\xa0\x80", "\xf4\x90\x80\x80"}
	for n := 0; n <= 40; n++ {
		for pos := 0; pos <= n; pos++ {
			for _, o := range odd {
				for _, o2 := range []string{"", "\x01", "é"} {
					in := []byte(strings.Repeat("a", pos) + o + strings.Repeat("b", n-pos) + o2)
					got, want := errDesc(checkChars(in)), errDesc(refCheckChars(in))
					if got != want {
						t.Fatalf("checkChars(%q) = %s; the reference says %s", in, got, want)
					}
				}
			}
		}
	}
}
