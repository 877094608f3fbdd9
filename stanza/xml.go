package stanza

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// Namespaces the parser and the reply builder need by name.
const (
	NSClient      = "jabber:client"
	NSServer      = "jabber:server"
	NSDelay       = "urn:xmpp:delay"
	NSLegacyDelay = "jabber:x:delay"
	NSStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSBlockErr    = "urn:xmpp:blocking:errors"
	nsXML         = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS       = "http://www.w3.org/2000/xmlns/"
)

// Errors a parse can end with. Every parse error wraps exactly one of them,
// so callers can sort bad input with errors.Is.
var (
	// ErrMalformed means the input is not well-formed, namespace-well-formed
	// XML or not valid UTF-8.
	ErrMalformed = errors.New("malformed XML")
	// ErrRestricted means the input uses XML that RFC 6120 §11.1 forbids in
	// XMPP: a DTD, a comment, a processing instruction (including an XML
	// declaration), or an entity reference other than the five predefined
	// ones and character references.
	ErrRestricted = errors.New("XML feature forbidden by RFC 6120 §11")
	// ErrTooLarge means the input is longer than Limits.MaxBytes.
	ErrTooLarge = errors.New("stanza too large")
	// ErrTooComplex means the input nests deeper than Limits.MaxDepth, has
	// an element with more attributes than Limits.MaxAttrs, or has more
	// than Limits.MaxAttrs namespace declarations in scope at once.
	ErrTooComplex = errors.New("stanza too complex")
)

// SyntaxError reports where and why the parser refused its input. It wraps
// one of ErrMalformed, ErrRestricted, ErrTooLarge or ErrTooComplex.
type SyntaxError struct {
	Offset int    // byte offset in the input where the problem was found
	Msg    string // what was wrong, for people
	Err    error  // the class of problem
}

func (e *SyntaxError) Error() string {
	return e.Err.Error() + " at byte " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Unwrap returns the class of problem.
func (e *SyntaxError) Unwrap() error { return e.Err }

// Limits bounds the input the parser accepts, so that hostile input costs
// bounded time and memory.
type Limits struct {
	MaxBytes int // longest stanza in bytes; 0 means DefaultMaxBytes
	MaxDepth int // deepest element nesting, the root being depth 1; 0 means DefaultMaxDepth
	MaxAttrs int // most attributes (namespace declarations included) on one element, and most namespace declarations in scope at once; 0 means DefaultMaxAttrs
}

// Defaults for Limits fields left zero.
const (
	DefaultMaxBytes = 64 << 10
	DefaultMaxDepth = 32
	DefaultMaxAttrs = 64
)

func (l Limits) norm() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = DefaultMaxAttrs
	}
	return l
}

// Attr is one attribute of a stanza's root element, as a view into the
// input.
type Attr struct {
	Start, End int    // span of `name='value'` in the input
	Prefix     []byte // name prefix, nil if none
	Local      []byte // local name
	Space      []byte // resolved namespace; nil for unprefixed attributes
	Raw        []byte // the value as written, between the quotes
	Quote      byte   // ' or "
	Decl       bool   // a namespace declaration: xmlns (Prefix nil) or xmlns:Local
}

// HasRefs reports whether the raw value holds entity or character
// references, that is whether Value must decode.
func (a *Attr) HasRefs() bool { return bytes.IndexByte(a.Raw, '&') >= 0 }

// AppendValue appends the attribute's value, references decoded, to dst.
func (a *Attr) AppendValue(dst []byte) []byte { return appendDecoded(dst, a.Raw) }

// Node is one top-level piece of a stanza's content: a child element or a
// run of character data (text or CDATA) between children.
type Node struct {
	Start, End int    // span in the input
	Text       bool   // character data rather than an element
	Blank      bool   // character data made only of XML white space
	Local      []byte // element local name
	Space      []byte // element namespace, resolved
}

// Element is the parsed root of a stanza: a view into the input, valid until
// the Parser that produced it parses again.
type Element struct {
	Raw          []byte // the whole input
	Prefix       []byte // root name prefix, nil if none
	Local        []byte // root local name
	Space        []byte // root namespace, resolved (nil when none is in scope)
	Attrs        []Attr // the root's attributes in document order
	Children     []Node // the root's content in document order
	ContentStart int    // offset just after the root start tag
	ContentEnd   int    // offset of the root end tag (== ContentStart for <x/>)
}

// Attr returns the root attribute with no namespace and the given local name.
func (e *Element) Attr(local string) *Attr {
	for i := range e.Attrs {
		a := &e.Attrs[i]
		if a.Space == nil && !a.Decl && string(a.Local) == local {
			return a
		}
	}
	return nil
}

type nsDecl struct {
	prefix []byte // nil for the default namespace
	uri    []byte // nil undeclares the default namespace
}

type openElem struct {
	name []byte // qualified name as written, to match the end tag
	ns   int    // len(p.ns) before this element's declarations
}

// Parser parses stanzas: the restricted XML of RFC 6120 §11, one root
// element. A Parser reuses its buffers, so parsing allocates nothing once
// warm; it is not safe for concurrent use.
type Parser struct {
	Limits Limits

	el      Element
	ns      []nsDecl
	stack   []openElem
	scratch []Attr // attributes of the element being read
	dec     [][]byte
}

// Parse checks that raw is one well-formed stanza within the limits and
// returns a view of its root. The view and everything in it alias raw and
// the Parser's buffers: they stay valid until the next call to Parse.
func (p *Parser) Parse(raw []byte) (*Element, error) {
	lim := p.Limits.norm()
	if len(raw) > lim.MaxBytes {
		return nil, &SyntaxError{Offset: lim.MaxBytes, Msg: "longer than " + strconv.Itoa(lim.MaxBytes) + " bytes", Err: ErrTooLarge}
	}
	if err := checkChars(raw); err != nil {
		return nil, err
	}
	// Field by field: cheaper than copying a 160-byte literal.
	el := &p.el
	el.Raw, el.Prefix, el.Local, el.Space = raw, nil, nil, nil
	el.Attrs, el.Children = el.Attrs[:0], el.Children[:0]
	el.ContentStart, el.ContentEnd = 0, 0
	p.ns = p.ns[:0]
	p.stack = p.stack[:0]
	p.dec = p.dec[:0]
	// Field by field too: the compiler builds a literal in a temporary
	// and copies it sixteen bytes at a time, which cannot forward from
	// the eight-byte stores that built it and stalls.
	var s scanner
	s.p, s.b, s.lim = p, raw, lim
	if err := s.document(); err != nil {
		return nil, err
	}
	return &p.el, nil
}

type scanner struct {
	p   *Parser
	b   []byte
	i   int
	lim Limits
}

func (s *scanner) fail(err error, msg string) error {
	return &SyntaxError{Offset: s.i, Msg: msg, Err: err}
}

func (s *scanner) failAt(i int, err error, msg string) error {
	s.i = i
	return s.fail(err, msg)
}

func isSpace(c byte) bool { return charClass[c]&cSpace != 0 }

func (s *scanner) skipSpace() {
	b, i := s.b, s.i
	for i < len(b) && charClass[b[i]]&cSpace != 0 {
		i++
	}
	s.i = i
}

// checkChars rejects bytes that are not XML 1.0 Chars: invalid UTF-8,
// C0 controls other than tab, LF and CR, and U+FFFE/U+FFFF. Doing it once
// up front keeps the per-token loops simple.
func checkChars(b []byte) error {
	// Most stanzas are printable ASCII throughout: a word is when no byte
	// has its high bit set and none is below 0x20 (the "has less than"
	// bit trick, exact whenever the answer is no). 32 bytes a turn, then
	// 16, then 8, then the last eight bytes of b, which may overlap bytes already
	// passed: the test holds for each byte alone.
	const lows, highs = 0x2020202020202020, 0x8080808080808080
	i := 0
	for ; i+32 <= len(b); i += 32 {
		w, v := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
		x, y := binary.LittleEndian.Uint64(b[i+16:]), binary.LittleEndian.Uint64(b[i+24:])
		if ((w-lows)&^w|w|(v-lows)&^v|v|(x-lows)&^x|x|(y-lows)&^y|y)&highs != 0 {
			return checkCharsFrom(b, i)
		}
	}
	for ; i+16 <= len(b); i += 16 {
		w, v := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
		if ((w-lows)&^w|w|(v-lows)&^v|v)&highs != 0 {
			return checkCharsFrom(b, i)
		}
	}
	if len(b) >= 8 {
		if i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			if ((w-lows)&^w|w)&highs != 0 {
				return checkCharsFrom(b, i)
			}
		}
		w := binary.LittleEndian.Uint64(b[len(b)-8:])
		if ((w-lows)&^w|w)&highs == 0 {
			return nil
		}
	}
	return checkCharsFrom(b, i)
}

// checkCharsFrom is checkChars from b[i] on, for input that is not all
// printable ASCII.
func checkCharsFrom(b []byte, i int) error {
	for i < len(b) {
		// Eight bytes at a time while they are all printable ASCII: no
		// byte has its high bit set, and none is below 0x20 (the
		// "has less than" bit trick; exact whenever the answer is no).
		if i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			if ((w-0x2020202020202020)&^w|w)&0x8080808080808080 == 0 {
				i += 8
				continue
			}
		}
		c := b[i]
		if c < 0x80 {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return &SyntaxError{Offset: i, Msg: "control character " + strconv.Itoa(int(c)) + " is not allowed in XML", Err: ErrMalformed}
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return &SyntaxError{Offset: i, Msg: "invalid UTF-8", Err: ErrMalformed}
		}
		if r == 0xFFFE || r == 0xFFFF {
			return &SyntaxError{Offset: i, Msg: "U+FFFE and U+FFFF are not XML characters", Err: ErrMalformed}
		}
		i += n
	}
	return nil
}

func (s *scanner) document() error {
	s.skipSpace()
	if s.i >= len(s.b) {
		return s.fail(ErrMalformed, "no element")
	}
	if s.b[s.i] != '<' {
		return s.fail(ErrMalformed, "text before the root element")
	}
	if err := s.markup(0); err != nil {
		return err
	}
	if len(s.p.stack) > 0 {
		if err := s.content(); err != nil {
			return err
		}
	}
	s.skipSpace()
	if s.i < len(s.b) {
		if s.b[s.i] == '<' {
			if err := s.special(); err != nil {
				return err
			}
			return s.fail(ErrMalformed, "more than one root element")
		}
		return s.fail(ErrMalformed, "text after the root element")
	}
	return nil
}

// special refuses markup that XMPP forbids, with the reason; it returns nil
// for anything else.
func (s *scanner) special() error {
	rest := s.b[s.i:]
	if len(rest) < 2 || rest[1] != '!' && rest[1] != '?' {
		return nil // an element: the usual case
	}
	switch {
	case bytes.HasPrefix(rest, []byte("<!--")):
		return s.fail(ErrRestricted, "comments are not allowed")
	case bytes.HasPrefix(rest, []byte("<?")):
		return s.fail(ErrRestricted, "processing instructions (and XML declarations) are not allowed in a stanza")
	case bytes.HasPrefix(rest, []byte("<!DOCTYPE")):
		return s.fail(ErrRestricted, "a DTD is not allowed")
	}
	return nil
}

// markup reads one construct starting at '<' at the given depth (the number
// of open elements).
func (s *scanner) markup(depth int) error {
	if err := s.special(); err != nil {
		return err
	}
	if s.i+1 < len(s.b) && s.b[s.i+1] == '!' {
		return s.fail(ErrMalformed, "unexpected <!")
	}
	return s.startTag(depth)
}

// content reads everything inside the root until its end tag.
func (s *scanner) content() error {
	p, b := s.p, s.b
	// The index stays in a local, as in startTag, and goes back to s.i
	// around every call that reads on from it.
	i := s.i
	textStart, blank := i, true
	flushText := func(end int) {
		if end > textStart && len(p.stack) == 1 {
			p.el.Children = append(p.el.Children, Node{Start: textStart, End: end, Text: true, Blank: blank})
		}
	}
	for i < len(b) {
		c := b[i]
		switch c {
		case '<':
			var next byte
			if i+1 < len(b) {
				next = b[i+1]
			}
			if next == '/' {
				flushText(i)
				// The usual end tag, </name> with the open element's
				// name and no white space, is taken here; endTag reads
				// any other.
				top := &p.stack[len(p.stack)-1]
				if k := i + 2 + len(top.name); k < len(b) && b[k] == '>' && string(b[i+2:k]) == string(top.name) {
					p.ns = p.ns[:top.ns]
					p.stack = p.stack[:len(p.stack)-1]
					switch len(p.stack) {
					case 0:
						p.el.ContentEnd = i
					case 1:
						p.el.Children[len(p.el.Children)-1].End = k + 1
					}
					i = k + 1
				} else {
					s.i = i
					if err := s.endTag(); err != nil {
						return err
					}
					i = s.i
				}
				if len(p.stack) == 0 {
					s.i = i
					return nil
				}
				textStart, blank = i, true
				continue
			}
			if next == '!' && bytes.HasPrefix(b[i:], []byte("<![CDATA[")) {
				end := bytes.Index(b[i+9:], []byte("]]>"))
				if end < 0 {
					s.i = i
					return s.fail(ErrMalformed, "unterminated CDATA section")
				}
				for _, d := range b[i+9 : i+9+end] {
					if !isSpace(d) {
						blank = false
						break
					}
				}
				i += 9 + end + 3
				continue
			}
			flushText(i)
			s.i = i
			// A name start after '<' can only be a start tag: markup
			// would find nothing special and read it as one.
			var err error
			if charClass[next]&cNameStart != 0 {
				err = s.startTag(len(p.stack))
			} else {
				err = s.markup(len(p.stack))
			}
			if err != nil {
				return err
			}
			i = s.i
			textStart, blank = i, true
		case '&':
			s.i = i
			if err := s.reference(); err != nil {
				return err
			}
			i = s.i
			blank = false
		case '>':
			if i >= 2 && b[i-1] == ']' && b[i-2] == ']' {
				s.i = i
				return s.fail(ErrMalformed, "']]>' is not allowed in text")
			}
			blank = false
			i++
		default:
			// A run of text up to the next '<', '&' or '>'.
			j := valueEnd(b, i+1, '>')
			if blank {
				for _, d := range b[i:j] {
					if !isSpace(d) {
						blank = false
						break
					}
				}
			}
			i = j
		}
	}
	s.i = i
	return s.fail(ErrMalformed, "unexpected end of input: <"+string(p.stack[len(p.stack)-1].name)+"> is not closed")
}

// reference checks one reference starting at '&' and moves past it.
func (s *scanner) reference() error {
	n, err := refLen(s.b[s.i:])
	if err != nil {
		return s.fail(err, refMsg(err, s.b[s.i:]))
	}
	s.i += n
	return nil
}

func refMsg(err error, b []byte) string {
	if err == ErrRestricted {
		end := bytes.IndexByte(b, ';')
		return "entity reference " + strconv.Quote(string(b[:end+1])) + " is not allowed: only &lt; &gt; &amp; &apos; &quot; and character references"
	}
	return "'&' must start a reference such as &amp;"
}

// refLen returns the length of the reference at the start of b.
func refLen(b []byte) (int, error) {
	end := bytes.IndexByte(b, ';')
	if end < 2 {
		return 0, ErrMalformed
	}
	body := b[1:end]
	if body[0] == '#' {
		if _, ok := charRef(body[1:]); !ok {
			return 0, ErrMalformed
		}
		return end + 1, nil
	}
	switch string(body) {
	case "lt", "gt", "amp", "apos", "quot":
		return end + 1, nil
	}
	if validName(body, false) {
		return 0, ErrRestricted
	}
	return 0, ErrMalformed
}

func charRef(d []byte) (rune, bool) {
	base := 10
	if len(d) > 0 && d[0] == 'x' {
		base, d = 16, d[1:]
	}
	if len(d) == 0 {
		return 0, false
	}
	// XML 1.0 §4.1 allows any number of digits, so leading zeros are fine;
	// the value is what is bounded: once it passes the last Unicode code
	// point it can only grow, so it stays pinned there and the reference is
	// refused after the digits are checked. The loop is linear in the input
	// and cannot overflow.
	var v rune
	for _, c := range d {
		var x rune
		switch {
		case c >= '0' && c <= '9':
			x = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			x = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			x = rune(c-'A') + 10
		default:
			return 0, false
		}
		if v <= utf8.MaxRune {
			v = v*rune(base) + x
		}
	}
	return v, isXMLChar(v)
}

func isXMLChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// asciiNameEnd returns the end of the run of ASCII name bytes at b[i:] and
// the union of their classes. One table load per byte: the class says both
// whether the byte goes on with the name and whether it is a colon, so the
// loop has a single branch. Bytes from 0x80 have no class and stop it. It
// is small enough to inline, so callers keep their index in a register.
func asciiNameEnd(b []byte, i int) (int, uint8) {
	seen := uint8(0)
	for i < len(b) {
		k := charClass[b[i]]
		if k&cName == 0 {
			break
		}
		seen |= k
		i++
	}
	return i, seen
}

// name reads an XML Name at s.i and reports whether it holds a ':'.
func (s *scanner) name() ([]byte, bool, error) {
	b, start := s.b, s.i
	i, seen := asciiNameEnd(b, start)
	if i < len(b) && b[i] >= 0x80 {
		return s.nonASCIIName(start, i, seen&cColon != 0)
	}
	// Every byte of an ASCII name is a NameChar already: only its first
	// must also start a name.
	if i == start || charClass[b[start]]&cNameStart == 0 {
		return nil, false, s.failAt(start, ErrMalformed, "expected a name")
	}
	s.i = i
	return b[start:i], seen&cColon != 0, nil
}

// nonASCIIName goes on with a name that has an ASCII run b[start:i] and
// continues with a byte from 0x80.
func (s *scanner) nonASCIIName(start, i int, colon bool) ([]byte, bool, error) {
	b := s.b
	ascii := true
	for i < len(b) {
		c := b[i]
		if c < 0x80 {
			if charClass[c]&cName == 0 {
				break
			}
			if c == ':' {
				colon = true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if !isNameChar(r) {
			break
		}
		ascii = false
		i += n
	}
	nm := b[start:i]
	if len(nm) == 0 || ascii && !isNameStartChar(rune(nm[0])) || !ascii && !validName(nm, true) {
		return nil, false, s.failAt(start, ErrMalformed, "expected a name")
	}
	s.i = i
	return nm, colon, nil
}

// splitQName splits a qualified name; ok is false when the colons do not
// make a QName (Namespaces in XML 1.0 §4).
func splitQName(nm []byte) (prefix, local []byte, ok bool) {
	c := bytes.IndexByte(nm, ':')
	if c < 0 {
		return nil, nm, true
	}
	if c == 0 || c == len(nm)-1 || bytes.IndexByte(nm[c+1:], ':') >= 0 {
		return nil, nil, false
	}
	if !validName(nm[c+1:], false) {
		return nil, nil, false
	}
	return nm[:c], nm[c+1:], true
}

func (s *scanner) startTag(depth int) error {
	p := s.p
	if depth+1 > s.lim.MaxDepth {
		return s.fail(ErrTooComplex, "nesting deeper than "+strconv.Itoa(s.lim.MaxDepth)+" elements")
	}
	b := s.b
	elemStart := s.i
	// The index stays in a local through the tag, and goes back to s.i
	// wherever a slower reader or an error message needs it.
	i := elemStart + 1 // past '<'
	// An ASCII name is read here, as name would; anything else, error
	// included, by name.
	j, seen := asciiNameEnd(b, i)
	var nm []byte
	colon := seen&cColon != 0
	if j > i && charClass[b[i]]&cNameStart != 0 && (j == len(b) || b[j] < 0x80) {
		nm = b[i:j]
		i = j
	} else {
		s.i = i
		var err error
		if nm, colon, err = s.name(); err != nil {
			return err
		}
		i = s.i
	}
	prefix, local, ok := []byte(nil), nm, true
	if colon {
		prefix, local, ok = splitQName(nm)
	}
	if !ok {
		s.i = i
		return s.fail(ErrMalformed, "element name "+strconv.Quote(string(nm))+" is not a qualified name")
	}
	nsMark := len(p.ns)
	// Attributes are parsed in place (an Attr is 120 bytes): the root's
	// straight into el.Attrs, the others into scratch.
	attrs := p.scratch[:0]
	if depth == 0 {
		attrs = p.el.Attrs[:0]
	}
	selfClosing := false
	for {
		ws := i
		for i < len(b) && charClass[b[i]]&cSpace != 0 {
			i++
		}
		s.i = i
		if i >= len(b) {
			return s.fail(ErrMalformed, "unexpected end of input in a start tag")
		}
		c := b[i]
		if c == '>' {
			i++
			break
		}
		if c == '/' {
			if i+1 < len(b) && b[i+1] == '>' {
				i += 2
				selfClosing = true
				break
			}
			return s.fail(ErrMalformed, "expected '/>'")
		}
		if i == ws {
			return s.fail(ErrMalformed, "attributes must be separated by white space")
		}
		if len(attrs) >= s.lim.MaxAttrs {
			return s.fail(ErrTooComplex, "more than "+strconv.Itoa(s.lim.MaxAttrs)+" attributes on one element")
		}
		// Reslice rather than append a zero Attr: attr sets every field,
		// so zeroing the slot first would be wasted work.
		n := len(attrs)
		if n < cap(attrs) {
			attrs = attrs[:n+1]
		} else {
			attrs = append(attrs, Attr{})
		}
		a := &attrs[n]
		// The usual attribute, an unprefixed ASCII name='value' with no
		// reference in the value, is read here; anything else, error
		// included, is read again from its start by attr.
		j, seen := asciiNameEnd(b, i)
		var end int
		refs := false
		if charClass[c]&cNameStart != 0 && seen&cColon == 0 && j+1 < len(b) && b[j] == '=' && (b[j+1] == '\'' || b[j+1] == '"') {
			end = valueEnd(b, j+2, b[j+1])
		}
		if end > 0 && end < len(b) && b[end] == b[j+1] {
			local := b[i:j]
			a.Start, a.End = i, end+1
			a.Prefix, a.Local, a.Space, a.Raw = nil, local, nil, b[j+2:end]
			a.Quote = b[j+1]
			a.Decl = string(local) == "xmlns"
			i = end + 1
		} else {
			if err := s.attr(a); err != nil {
				return err
			}
			i = s.i
			refs = a.HasRefs()
		}
		// Equal names have equal local parts, so most pairs differ in
		// their local part's length or first byte and need no full
		// comparison.
		for j := range attrs[:n] {
			o := &attrs[j]
			if len(o.Local) == len(a.Local) && o.Local[0] == a.Local[0] && bytes.Equal(attrName(b, o), attrName(b, a)) {
				s.i = i
				return s.fail(ErrMalformed, "duplicate attribute "+strconv.Quote(string(attrName(b, a))))
			}
		}
		if a.Decl {
			s.i = i
			if err := s.declare(a, refs); err != nil {
				return err
			}
		}
	}
	s.i = i
	if depth == 0 {
		p.el.Attrs = attrs
	} else {
		p.scratch = attrs
	}
	// An unprefixed element takes the innermost default namespace, as
	// resolve would find it, without the call.
	var space []byte
	if prefix == nil {
		for j := len(p.ns) - 1; j >= 0; j-- {
			if p.ns[j].prefix == nil {
				space = p.ns[j].uri
				break
			}
		}
	} else {
		var err error
		if space, err = s.resolve(prefix, true); err != nil {
			return err
		}
	}
	// Resolve attribute prefixes now that every declaration on this element
	// is in scope, and catch {namespace}local duplicates.
	for j := range attrs {
		a := &attrs[j]
		if a.Decl || a.Prefix == nil {
			continue
		}
		var err error
		if a.Space, err = s.resolve(a.Prefix, false); err != nil {
			return err
		}
		for k := 0; k < j; k++ {
			b := &attrs[k]
			if !b.Decl && b.Prefix != nil && bytes.Equal(b.Space, a.Space) && bytes.Equal(b.Local, a.Local) {
				return s.fail(ErrMalformed, "two attributes with the same namespace and local name")
			}
		}
	}
	if depth == 0 {
		p.el.Prefix, p.el.Local, p.el.Space = prefix, local, space
		p.el.ContentStart = s.i
		p.el.ContentEnd = s.i
	} else if depth == 1 {
		// Field by field, as for attributes: cheaper than copying a
		// composite literal with pointers in.
		if n := len(p.el.Children); n < cap(p.el.Children) {
			p.el.Children = p.el.Children[:n+1]
		} else {
			p.el.Children = append(p.el.Children, Node{})
		}
		n := &p.el.Children[len(p.el.Children)-1]
		n.Start, n.End, n.Text, n.Blank = elemStart, 0, false, false
		n.Local, n.Space = local, space
	}
	if selfClosing {
		p.ns = p.ns[:nsMark]
		if depth == 1 {
			p.el.Children[len(p.el.Children)-1].End = s.i
		}
		return nil
	}
	// Reslice rather than append a zero value, and set every field.
	if n := len(p.stack); n < cap(p.stack) {
		p.stack = p.stack[:n+1]
	} else {
		p.stack = append(p.stack, openElem{})
	}
	o := &p.stack[len(p.stack)-1]
	o.name, o.ns = nm, nsMark
	return nil
}

func attrName(b []byte, a *Attr) []byte {
	end := a.Start + len(a.Local)
	if a.Prefix != nil {
		end += len(a.Prefix) + 1
	}
	return b[a.Start:end]
}

// attr reads one attribute into a, setting every field: the slot may hold
// an attribute of an earlier parse.
func (s *scanner) attr(a *Attr) error {
	start := s.i
	nm, colon, err := s.name()
	if err != nil {
		return err
	}
	prefix, local, ok := []byte(nil), nm, true
	if colon {
		prefix, local, ok = splitQName(nm)
	}
	if !ok {
		return s.fail(ErrMalformed, "attribute name "+strconv.Quote(string(nm))+" is not a qualified name")
	}
	b, i := s.b, s.i
	// Nearly always written name='value', with no white space around '='.
	if i+1 < len(b) && b[i] == '=' && (b[i+1] == '\'' || b[i+1] == '"') {
		i++
	} else {
		s.skipSpace()
		if s.i >= len(b) || b[s.i] != '=' {
			return s.fail(ErrMalformed, "expected '=' after attribute name")
		}
		s.i++
		s.skipSpace()
		if s.i >= len(b) || (b[s.i] != '\'' && b[s.i] != '"') {
			return s.fail(ErrMalformed, "attribute value must be quoted")
		}
		i = s.i
	}
	q := b[i]
	vStart := i + 1
	// Usually the value holds neither '<' nor a reference: if the first
	// of q, '<' and '&' is q, the value ends there. Otherwise the loop
	// walks on from that first stop and reports the first problem where
	// it is.
	end := valueEnd(b, vStart, q)
	if end >= len(b) || b[end] != q {
		s.i = end
		for {
			if s.i >= len(b) {
				return s.fail(ErrMalformed, "unterminated attribute value")
			}
			c := b[s.i]
			if c == q {
				break
			}
			switch c {
			case '<':
				return s.fail(ErrMalformed, "'<' is not allowed in an attribute value")
			case '&':
				if err := s.reference(); err != nil {
					return err
				}
			default:
				s.i++
			}
		}
		end = s.i
	}
	s.i = end + 1
	a.Start, a.End = start, end+1
	a.Prefix, a.Local, a.Space, a.Raw = prefix, local, nil, b[vStart:end]
	a.Quote = q
	a.Decl = prefix == nil && string(local) == "xmlns" || string(prefix) == "xmlns"
	return nil
}

// valueEnd returns the index of the first q, '<' or '&' in b at or after
// i, or len(b). It tests eight bytes at a time: a byte of a word is one of
// the three when it XORed with that one is zero, and the "has a zero byte"
// bit trick flags the lowest such byte exactly (it can only be wrong above
// a zero byte, whose borrow it takes for another), so the first stop is
// the lowest flag.
func valueEnd(b []byte, i int, q byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	qq := ones * uint64(q)
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		x, y, z := w^qq, w^(ones*'<'), w^(ones*'&')
		if m := ((x-ones)&^x | (y-ones)&^y | (z-ones)&^z) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == q || c == '<' || c == '&' {
			return i
		}
	}
	return i
}

// declare records a namespace declaration, enforcing Namespaces in XML 1.0
// §3 constraints.
// refs tells whether a's value holds references, as a.HasRefs would.
func (s *scanner) declare(a *Attr, refs bool) error {
	// Every prefix lookup scans the declarations in scope; bounding them
	// keeps a stanza of nested declarations from costing a thousand times
	// a plain one.
	if len(s.p.ns) >= s.lim.MaxAttrs {
		return s.fail(ErrTooComplex, "more than "+strconv.Itoa(s.lim.MaxAttrs)+" namespace declarations in scope")
	}
	uri := a.Raw
	if refs {
		uri = appendDecoded(nil, a.Raw)
		s.p.dec = append(s.p.dec, uri)
	}
	if a.Prefix == nil { // default namespace
		if string(uri) == nsXML || string(uri) == nsXMLNS {
			return s.fail(ErrMalformed, "the xml and xmlns namespaces cannot be the default namespace")
		}
		if len(uri) == 0 {
			uri = nil
		}
		s.pushNS(nil, uri)
		return nil
	}
	switch {
	case string(a.Local) == "xmlns":
		return s.fail(ErrMalformed, "the xmlns prefix cannot be declared")
	case string(a.Local) == "xml" && string(uri) != nsXML:
		return s.fail(ErrMalformed, "the xml prefix can only be bound to its own namespace")
	case string(a.Local) != "xml" && (string(uri) == nsXML || string(uri) == nsXMLNS):
		return s.fail(ErrMalformed, "only the xml prefix may be bound to the XML namespace")
	case len(uri) == 0:
		return s.fail(ErrMalformed, "a prefix cannot be undeclared in XML 1.0")
	}
	s.pushNS(a.Local, uri)
	return nil
}

// pushNS reslices rather than appends a composite literal, which would be
// built on the stack and copied in.
func (s *scanner) pushNS(prefix, uri []byte) {
	ns := s.p.ns
	if n := len(ns); n < cap(ns) {
		ns = ns[:n+1]
	} else {
		ns = append(ns, nsDecl{})
	}
	d := &ns[len(ns)-1]
	d.prefix, d.uri = prefix, uri
	s.p.ns = ns
}

var xmlNS = []byte(nsXML)

func (s *scanner) resolve(prefix []byte, elem bool) ([]byte, error) {
	if string(prefix) == "xml" {
		return xmlNS, nil
	}
	if prefix == nil && !elem {
		return nil, nil
	}
	if string(prefix) == "xmlns" {
		return nil, s.fail(ErrMalformed, "the xmlns prefix cannot be used on an element")
	}
	for j := len(s.p.ns) - 1; j >= 0; j-- {
		d := s.p.ns[j]
		if prefix == nil && d.prefix == nil {
			return d.uri, nil
		}
		if prefix != nil && bytes.Equal(d.prefix, prefix) {
			return d.uri, nil
		}
	}
	if prefix == nil {
		return nil, nil
	}
	return nil, s.fail(ErrMalformed, "prefix "+strconv.Quote(string(prefix))+" is not declared")
}

func (s *scanner) endTag() error {
	p := s.p
	endStart := s.i
	s.i += 2
	top := &p.stack[len(p.stack)-1]
	// The usual case: the end tag names the open element and is followed
	// by a byte that cannot continue a name.
	if rest := s.b[s.i:]; bytes.HasPrefix(rest, top.name) &&
		(len(rest) == len(top.name) || rest[len(top.name)] < 0x80 && charClass[rest[len(top.name)]]&cName == 0) {
		s.i += len(top.name)
	} else if nm, _, err := s.name(); err != nil {
		return err
	} else if !bytes.Equal(nm, top.name) {
		return s.fail(ErrMalformed, "</"+string(nm)+"> does not close <"+string(top.name)+">")
	}
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '>' {
		return s.fail(ErrMalformed, "expected '>' to end the end tag")
	}
	s.i++
	p.ns = p.ns[:top.ns]
	p.stack = p.stack[:len(p.stack)-1]
	switch len(p.stack) {
	case 0:
		p.el.ContentEnd = endStart
	case 1:
		p.el.Children[len(p.el.Children)-1].End = s.i
	}
	return nil
}

// appendDecoded appends raw with its (already validated) references
// replaced by the characters they stand for.
func appendDecoded(dst, raw []byte) []byte {
	for {
		amp := bytes.IndexByte(raw, '&')
		if amp < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:amp]...)
		end := bytes.IndexByte(raw[amp:], ';') + amp
		body := raw[amp+1 : end]
		switch string(body) {
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "amp":
			dst = append(dst, '&')
		case "apos":
			dst = append(dst, '\'')
		case "quot":
			dst = append(dst, '"')
		default:
			r, _ := charRef(body[1:])
			dst = utf8.AppendRune(dst, r)
		}
		raw = raw[end+1:]
	}
}

// Byte classes, as bits of charClass.
const (
	cName      = 1 << iota // an ASCII NameChar (':' included)
	cNameStart             // an ASCII NameStartChar (':' included)
	cColon                 // ':'
	cSpace                 // XML white space
	cTextStop              // ends a run of plain text in content: '<', '&', '>'
)

// charClass holds the classes of each byte. Bytes from 0x80 are in none:
// the code that reads names and text takes them aside.
var charClass = func() (k [256]uint8) {
	for c := 0; c < 0x80; c++ {
		if asciiNameChar(byte(c)) {
			k[c] |= cName
		}
		if isNameStartChar(rune(c)) {
			k[c] |= cNameStart
		}
	}
	k[':'] |= cColon
	k[' '], k['\t'], k['\n'], k['\r'] = cSpace, cSpace, cSpace, cSpace
	k['<'], k['&'], k['>'] = cTextStop, cTextStop, cTextStop
	return
}()

func asciiNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == ':' || c == '-' || c == '.'
}

// validName reports whether nm is an XML Name (allowColon) or an NCName.
func validName(nm []byte, allowColon bool) bool {
	if len(nm) == 0 {
		return false
	}
	for i := 0; i < len(nm); {
		r, n := rune(nm[i]), 1
		if r >= 0x80 {
			r, n = utf8.DecodeRune(nm[i:])
		}
		if r == ':' && !allowColon {
			return false
		}
		if i == 0 && !isNameStartChar(r) || !isNameChar(r) {
			return false
		}
		i += n
	}
	return true
}

func isNameStartChar(r rune) bool {
	switch {
	case r == ':' || r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z':
		return true
	case r < 0xC0:
		return false
	}
	return r <= 0xD6 || r >= 0xD8 && r <= 0xF6 || r >= 0xF8 && r <= 0x2FF ||
		r >= 0x370 && r <= 0x37D || r >= 0x37F && r <= 0x1FFF || r >= 0x200C && r <= 0x200D ||
		r >= 0x2070 && r <= 0x218F || r >= 0x2C00 && r <= 0x2FEF || r >= 0x3001 && r <= 0xD7FF ||
		r >= 0xF900 && r <= 0xFDCF || r >= 0xFDF0 && r <= 0xFFFD || r >= 0x10000 && r <= 0xEFFFF
}

func isNameChar(r rune) bool {
	if r < 0x80 {
		return asciiNameChar(byte(r))
	}
	return isNameStartChar(r) || r == 0xB7 || r >= 0x300 && r <= 0x36F || r >= 0x203F && r <= 0x2040
}
