package stanza

// A frozen copy of the parser and presence view as they were before they
// were made faster (commit d0e91f3), kept as the oracle of the
// differential tests in xml_ref_test.go: the fast parser must accept and
// refuse exactly the same inputs, with the same error, offset and message,
// and fill in the same view. Generated mechanically from that version;
// identifiers carry a ref prefix.

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

type refNsDecl struct {
	prefix []byte // nil for the default namespace
	uri    []byte // nil undeclares the default namespace
}

type refOpenElem struct {
	name   []byte // qualified name as written, to match the end tag
	ns     int    // len(p.ns) before this element's declarations
	prefix []byte
	local  []byte
}

// refParser parses stanzas: the restricted XML of RFC 6120 §11, one root
// element. A refParser reuses its buffers, so parsing allocates nothing once
// warm; it is not safe for concurrent use.
type refParser struct {
	Limits Limits

	el      Element
	ns      []refNsDecl
	stack   []refOpenElem
	scratch []Attr // attributes of the element being read
	dec     [][]byte
}

// Parse checks that raw is one well-formed stanza within the limits and
// returns a view of its root. The view and everything in it alias raw and
// the refParser's buffers: they stay valid until the next call to Parse.
func (p *refParser) Parse(raw []byte) (*Element, error) {
	lim := p.Limits.norm()
	if len(raw) > lim.MaxBytes {
		return nil, &SyntaxError{Offset: lim.MaxBytes, Msg: "longer than " + strconv.Itoa(lim.MaxBytes) + " bytes", Err: ErrTooLarge}
	}
	if err := refCheckChars(raw); err != nil {
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
	s := refScanner{p: p, b: raw, lim: lim}
	if err := s.document(); err != nil {
		return nil, err
	}
	return &p.el, nil
}

type refScanner struct {
	p     *refParser
	b     []byte
	i     int
	lim   Limits
	colon bool // the last name read holds a ':'
}

func (s *refScanner) fail(err error, msg string) error {
	return &SyntaxError{Offset: s.i, Msg: msg, Err: err}
}

func refIsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *refScanner) skipSpace() {
	b, i := s.b, s.i
	for i < len(b) && refIsSpace(b[i]) {
		i++
	}
	s.i = i
}

// refCheckChars rejects bytes that are not XML 1.0 Chars: invalid UTF-8,
// C0 controls other than tab, LF and CR, and U+FFFE/U+FFFF. Doing it once
// up front keeps the per-token loops simple.
func refCheckChars(b []byte) error {
	for i := 0; i < len(b); {
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

func (s *refScanner) document() error {
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
func (s *refScanner) special() error {
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
func (s *refScanner) markup(depth int) error {
	if err := s.special(); err != nil {
		return err
	}
	if s.i+1 < len(s.b) && s.b[s.i+1] == '!' {
		return s.fail(ErrMalformed, "unexpected <!")
	}
	return s.startTag(depth)
}

// content reads everything inside the root until its end tag.
func (s *refScanner) content() error {
	p := s.p
	textStart, blank := s.i, true
	flushText := func(end int) {
		if end > textStart && len(p.stack) == 1 {
			p.el.Children = append(p.el.Children, Node{Start: textStart, End: end, Text: true, Blank: blank})
		}
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch c {
		case '<':
			if s.i+1 < len(s.b) && s.b[s.i+1] == '/' {
				flushText(s.i)
				if err := s.endTag(); err != nil {
					return err
				}
				if len(p.stack) == 0 {
					return nil
				}
				textStart, blank = s.i, true
				continue
			}
			if bytes.HasPrefix(s.b[s.i:], []byte("<![CDATA[")) {
				end := bytes.Index(s.b[s.i+9:], []byte("]]>"))
				if end < 0 {
					return s.fail(ErrMalformed, "unterminated CDATA section")
				}
				for _, d := range s.b[s.i+9 : s.i+9+end] {
					if !refIsSpace(d) {
						blank = false
						break
					}
				}
				s.i += 9 + end + 3
				continue
			}
			flushText(s.i)
			if err := s.markup(len(p.stack)); err != nil {
				return err
			}
			textStart, blank = s.i, true
		case '&':
			if err := s.reference(); err != nil {
				return err
			}
			blank = false
		case '>':
			if s.i >= 2 && s.b[s.i-1] == ']' && s.b[s.i-2] == ']' {
				return s.fail(ErrMalformed, "']]>' is not allowed in text")
			}
			blank = false
			s.i++
		default:
			// A run of text up to the next '<', '&' or '>'.
			j := s.i + 1
			for j < len(s.b) && !refTextStop[s.b[j]] {
				j++
			}
			if blank {
				for _, d := range s.b[s.i:j] {
					if !refIsSpace(d) {
						blank = false
						break
					}
				}
			}
			s.i = j
		}
	}
	return s.fail(ErrMalformed, "unexpected end of input: <"+string(p.stack[len(p.stack)-1].name)+"> is not closed")
}

// reference checks one reference starting at '&' and moves past it.
func (s *refScanner) reference() error {
	n, err := refRefLen(s.b[s.i:])
	if err != nil {
		return s.fail(err, refRefMsg(err, s.b[s.i:]))
	}
	s.i += n
	return nil
}

func refRefMsg(err error, b []byte) string {
	if err == ErrRestricted {
		end := bytes.IndexByte(b, ';')
		return "entity reference " + strconv.Quote(string(b[:end+1])) + " is not allowed: only &lt; &gt; &amp; &apos; &quot; and character references"
	}
	return "'&' must start a reference such as &amp;"
}

// refRefLen returns the length of the reference at the start of b.
func refRefLen(b []byte) (int, error) {
	end := bytes.IndexByte(b, ';')
	if end < 2 {
		return 0, ErrMalformed
	}
	body := b[1:end]
	if body[0] == '#' {
		if _, ok := refCharRef(body[1:]); !ok {
			return 0, ErrMalformed
		}
		return end + 1, nil
	}
	switch string(body) {
	case "lt", "gt", "amp", "apos", "quot":
		return end + 1, nil
	}
	if refValidName(body, false) {
		return 0, ErrRestricted
	}
	return 0, ErrMalformed
}

func refCharRef(d []byte) (rune, bool) {
	base := 10
	if len(d) > 0 && d[0] == 'x' {
		base, d = 16, d[1:]
	}
	if len(d) == 0 {
		return 0, false
	}
	// Any number of digits (XML 1.0 §4.1): leading zeros carry no value,
	// and what remains is too large beyond 7 significant digits.
	for len(d) > 1 && d[0] == '0' {
		d = d[1:]
	}
	if len(d) > 7 {
		return 0, false
	}
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
		v = v*rune(base) + x
	}
	return v, refIsXMLChar(v)
}

func refIsXMLChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// name reads an XML Name at s.i.
func (s *refScanner) name() ([]byte, error) {
	start := s.i
	ascii := true
	s.colon = false
	// The ASCII run in locals, so that the index stays in a register.
	b, i := s.b, s.i
	for i < len(b) && b[i] < 0x80 && refNameChar[b[i]] {
		if b[i] == ':' {
			s.colon = true
		}
		i++
	}
	s.i = i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c < 0x80 {
			if !refNameChar[c] {
				break
			}
			if c == ':' {
				s.colon = true
			}
			s.i++
			continue
		}
		r, n := utf8.DecodeRune(s.b[s.i:])
		if !refIsNameChar(r) {
			break
		}
		ascii = false
		s.i += n
	}
	nm := s.b[start:s.i]
	// Every byte of an ASCII name is a NameChar already: only its first
	// must also start a name.
	if len(nm) == 0 || ascii && !refIsNameStartChar(rune(nm[0])) || !ascii && !refValidName(nm, true) {
		s.i = start
		return nil, s.fail(ErrMalformed, "expected a name")
	}
	return nm, nil
}

// refSplitQName splits a qualified name; ok is false when the colons do not
// make a QName (Namespaces in XML 1.0 §4).
func refSplitQName(nm []byte) (prefix, local []byte, ok bool) {
	c := bytes.IndexByte(nm, ':')
	if c < 0 {
		return nil, nm, true
	}
	if c == 0 || c == len(nm)-1 || bytes.IndexByte(nm[c+1:], ':') >= 0 {
		return nil, nil, false
	}
	if !refValidName(nm[c+1:], false) {
		return nil, nil, false
	}
	return nm[:c], nm[c+1:], true
}

func (s *refScanner) startTag(depth int) error {
	p := s.p
	if depth+1 > s.lim.MaxDepth {
		return s.fail(ErrTooComplex, "nesting deeper than "+strconv.Itoa(s.lim.MaxDepth)+" elements")
	}
	elemStart := s.i
	s.i++ // '<'
	nm, err := s.name()
	if err != nil {
		return err
	}
	prefix, local, ok := []byte(nil), nm, true
	if s.colon {
		prefix, local, ok = refSplitQName(nm)
	}
	if !ok {
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
		sawSpace := s.i < len(s.b) && refIsSpace(s.b[s.i])
		s.skipSpace()
		if s.i >= len(s.b) {
			return s.fail(ErrMalformed, "unexpected end of input in a start tag")
		}
		c := s.b[s.i]
		if c == '>' {
			s.i++
			break
		}
		if c == '/' {
			if s.i+1 < len(s.b) && s.b[s.i+1] == '>' {
				s.i += 2
				selfClosing = true
				break
			}
			return s.fail(ErrMalformed, "expected '/>'")
		}
		if !sawSpace {
			return s.fail(ErrMalformed, "attributes must be separated by white space")
		}
		if len(attrs) >= s.lim.MaxAttrs {
			return s.fail(ErrTooComplex, "more than "+strconv.Itoa(s.lim.MaxAttrs)+" attributes on one element")
		}
		attrs = append(attrs, Attr{})
		a := &attrs[len(attrs)-1]
		*a = Attr{} // the slot may hold an attribute of an earlier parse
		if err := s.attr(a); err != nil {
			return err
		}
		for j := range attrs[:len(attrs)-1] {
			if bytes.Equal(refAttrName(s.b, &attrs[j]), refAttrName(s.b, a)) {
				return s.fail(ErrMalformed, "duplicate attribute "+strconv.Quote(string(refAttrName(s.b, a))))
			}
		}
		if a.Decl {
			if err := s.declare(a); err != nil {
				return err
			}
		}
	}
	if depth == 0 {
		p.el.Attrs = attrs
	} else {
		p.scratch = attrs
	}
	space, err := s.resolve(prefix, true)
	if err != nil {
		return err
	}
	// Resolve attribute prefixes now that every declaration on this element
	// is in scope, and catch {namespace}local duplicates.
	for j := range attrs {
		a := &attrs[j]
		if a.Decl || a.Prefix == nil {
			continue
		}
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
		p.el.Children = append(p.el.Children, Node{})
		n := &p.el.Children[len(p.el.Children)-1]
		n.Start, n.Local, n.Space = elemStart, local, space
	}
	if selfClosing {
		p.ns = p.ns[:nsMark]
		if depth == 1 {
			p.el.Children[len(p.el.Children)-1].End = s.i
		}
		return nil
	}
	p.stack = append(p.stack, refOpenElem{})
	o := &p.stack[len(p.stack)-1]
	o.name, o.ns, o.prefix, o.local = nm, nsMark, prefix, local
	return nil
}

func refAttrName(b []byte, a *Attr) []byte {
	end := a.Start + len(a.Local)
	if a.Prefix != nil {
		end += len(a.Prefix) + 1
	}
	return b[a.Start:end]
}

// attr reads one attribute into a.
func (s *refScanner) attr(a *Attr) error {
	start := s.i
	nm, err := s.name()
	if err != nil {
		return err
	}
	prefix, local, ok := []byte(nil), nm, true
	if s.colon {
		prefix, local, ok = refSplitQName(nm)
	}
	if !ok {
		return s.fail(ErrMalformed, "attribute name "+strconv.Quote(string(nm))+" is not a qualified name")
	}
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '=' {
		return s.fail(ErrMalformed, "expected '=' after attribute name")
	}
	s.i++
	s.skipSpace()
	if s.i >= len(s.b) || (s.b[s.i] != '\'' && s.b[s.i] != '"') {
		return s.fail(ErrMalformed, "attribute value must be quoted")
	}
	q := s.b[s.i]
	s.i++
	vStart := s.i
	// Usually the value holds neither '<' nor a reference: if the first
	// of q, '<' and '&' is q, the value ends there. Otherwise the loop
	// below walks it and reports the first problem where it is.
	if end := refValueEnd(s.b, s.i, q); end < len(s.b) && s.b[end] == q {
		s.i = end
	}
	for {
		if s.i >= len(s.b) {
			return s.fail(ErrMalformed, "unterminated attribute value")
		}
		c := s.b[s.i]
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
	// Field by field: a is zero, and a composite literal would be built
	// and then copied with write barriers.
	a.Start, a.Prefix, a.Local, a.Raw, a.Quote = start, prefix, local, s.b[vStart:s.i], q
	s.i++
	a.End = s.i
	a.Decl = prefix == nil && string(local) == "xmlns" || string(prefix) == "xmlns"
	return nil
}

// refValueEnd returns the index of the first q, '<' or '&' in b at or after
// i, or len(b). It tests eight bytes at a time: a word has none of the
// three when no byte of it XORed with any of them is zero (the exact
// "has a zero byte" bit trick).
func refValueEnd(b []byte, i int, q byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	qq := ones * uint64(q)
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		x, y, z := w^qq, w^(ones*'<'), w^(ones*'&')
		if ((x-ones)&^x|(y-ones)&^y|(z-ones)&^z)&highs != 0 {
			break
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
func (s *refScanner) declare(a *Attr) error {
	// Every prefix lookup scans the declarations in scope; bounding them
	// keeps a stanza of nested declarations from costing a thousand times
	// a plain one.
	if len(s.p.ns) >= s.lim.MaxAttrs {
		return s.fail(ErrTooComplex, "more than "+strconv.Itoa(s.lim.MaxAttrs)+" namespace declarations in scope")
	}
	uri := a.Raw
	if bytes.IndexByte(a.Raw, '&') >= 0 {
		uri = refAppendDecoded(nil, a.Raw)
		s.p.dec = append(s.p.dec, uri)
	}
	if a.Prefix == nil { // default namespace
		if string(uri) == nsXML || string(uri) == nsXMLNS {
			return s.fail(ErrMalformed, "the xml and xmlns namespaces cannot be the default namespace")
		}
		if len(uri) == 0 {
			uri = nil
		}
		s.p.ns = append(s.p.ns, refNsDecl{uri: uri})
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
	s.p.ns = append(s.p.ns, refNsDecl{prefix: a.Local, uri: uri})
	return nil
}

var refXmlNS = []byte(nsXML)

func (s *refScanner) resolve(prefix []byte, elem bool) ([]byte, error) {
	if string(prefix) == "xml" {
		return refXmlNS, nil
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

func (s *refScanner) endTag() error {
	p := s.p
	endStart := s.i
	s.i += 2
	top := p.stack[len(p.stack)-1]
	// The usual case: the end tag names the open element and is followed
	// by a byte that cannot continue a name.
	if rest := s.b[s.i:]; bytes.HasPrefix(rest, top.name) &&
		(len(rest) == len(top.name) || rest[len(top.name)] < 0x80 && !refNameChar[rest[len(top.name)]]) {
		s.i += len(top.name)
	} else if nm, err := s.name(); err != nil {
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

// refAppendDecoded appends raw with its (already validated) references
// replaced by the characters they stand for.
func refAppendDecoded(dst, raw []byte) []byte {
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
			r, _ := refCharRef(body[1:])
			dst = utf8.AppendRune(dst, r)
		}
		raw = raw[end+1:]
	}
}

// refNameChar marks the ASCII bytes that refAsciiNameChar accepts; refTextStop the
// bytes that end a run of plain text in content.
var refNameChar, refTextStop = func() (n, t [256]bool) {
	for c := 0; c < 0x80; c++ {
		n[c] = refAsciiNameChar(byte(c))
	}
	t['<'], t['&'], t['>'] = true, true, true
	return
}()

func refAsciiNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == ':' || c == '-' || c == '.'
}

// refValidName reports whether nm is an XML Name (allowColon) or an NCName.
func refValidName(nm []byte, allowColon bool) bool {
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
		if i == 0 && !refIsNameStartChar(r) || !refIsNameChar(r) {
			return false
		}
		i += n
	}
	return true
}

func refIsNameStartChar(r rune) bool {
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

func refIsNameChar(r rune) bool {
	if r < 0x80 {
		return refAsciiNameChar(byte(r))
	}
	return refIsNameStartChar(r) || r == 0xB7 || r >= 0x300 && r <= 0x36F || r >= 0x203F && r <= 0x2040
}

// ParseType maps a type attribute value to a Type. "available" is not a
// value RFC 6121 allows (absence means available) and is refused.
func refParseType(v []byte) (Type, bool) {
	for i := 1; i < len(typeNames); i++ {
		if string(v) == typeNames[i] {
			return Type(i), true
		}
	}
	return 0, false
}

// ParsePresence parses raw as one presence stanza. Besides the XML checks of
// Parse, it refuses any other stanza (ErrNotPresence) and unknown types
// (ErrUnknownType). JIDs are not checked here: see ParseBytes.
func (p *refParser) ParsePresence(raw []byte, out *Presence) error {
	el, err := p.Parse(raw)
	if err != nil {
		return err
	}
	*out = Presence{Element: el}
	if string(el.Local) != "presence" || !ContentNamespace(el.Space) {
		return refNotTaken(el)
	}
	out.From, out.To, out.ID, out.typ = refAddressing(el)
	if out.typ != nil {
		v := out.typ.Raw
		if bytes.IndexByte(out.typ.Raw, '&') >= 0 {
			v = refAppendDecoded(nil, out.typ.Raw)
		}
		t, ok := refParseType(v)
		if !ok {
			return &SyntaxError{Offset: out.typ.Start, Msg: "presence type " + strconv.Quote(string(v)) + " is not one of RFC 6121's (available presence has no type)", Err: ErrUnknownType}
		}
		out.Type = t
	}
	return nil
}

func refNotTaken(el *Element) error {
	return &SyntaxError{Offset: 1, Msg: "<" + string(el.Local) + "/> is neither <presence/> nor <iq/>: lastseen only takes presence stanzas and Last Activity queries", Err: ErrNotPresence}
}

// ParseStanza is the reference for Parser.ParseStanza: a presence goes
// through the reference presence view, an iq through a plain reading of
// RFC 6120 §8.2.3.
func (p *refParser) ParseStanza(raw []byte, pres *Presence, iq *IQ) (bool, error) {
	el, err := p.Parse(raw)
	if err != nil {
		return false, err
	}
	inContent := len(el.Space) == 0 || string(el.Space) == NSClient || string(el.Space) == NSServer
	if string(el.Local) == "presence" && inContent {
		return false, p.ParsePresence(raw, pres)
	}
	if string(el.Local) != "iq" || !inContent {
		return false, refNotTaken(el)
	}
	*iq = IQ{Element: el}
	var typ *Attr
	iq.From, iq.To, iq.ID, typ = refAddressing(el)
	if typ == nil {
		return true, &SyntaxError{Offset: 1, Msg: "iq without a type (RFC 6120 §8.2.3 requires one)", Err: ErrNotPresence}
	}
	v := refAppendDecoded(nil, typ.Raw)
	switch string(v) {
	case "get":
		iq.Type = IQGet
	case "set":
		iq.Type = IQSet
	case "result":
		iq.Type = IQResult
	case "error":
		iq.Type = IQError
	default:
		return true, &SyntaxError{Offset: typ.Start, Msg: "iq type " + strconv.Quote(string(v)) + " is not one of RFC 6120's", Err: ErrUnknownType}
	}
	return true, nil
}

// refCheckLastActivity is the reference for IQ.CheckLastActivity.
func refCheckLastActivity(q *IQ) error {
	if q.Type != IQGet {
		return &SyntaxError{Offset: 1, Msg: "iq of type " + q.Type.String() + " is not a Last Activity query (only get is)", Err: ErrNotPresence}
	}
	if q.ID == nil {
		return &SyntaxError{Offset: 1, Msg: "iq without an id (RFC 6120 §8.1.3 requires one)", Err: ErrNotPresence}
	}
	var elems []Node
	for _, n := range q.Children {
		if n.Text && !n.Blank {
			return &SyntaxError{Offset: n.Start, Msg: "a Last Activity query has exactly one child element, <query xmlns='jabber:iq:last'/>, and no text", Err: ErrNotPresence}
		}
		if !n.Text {
			elems = append(elems, n)
			if len(elems) == 2 {
				return &SyntaxError{Offset: n.Start, Msg: "a Last Activity query has exactly one child element, <query xmlns='jabber:iq:last'/>, and no text", Err: ErrNotPresence}
			}
		}
	}
	if len(elems) == 0 {
		return &SyntaxError{Offset: q.ContentStart, Msg: "iq get without <query xmlns='jabber:iq:last'/>: lastseen answers only Last Activity queries", Err: ErrNotPresence}
	}
	if string(elems[0].Local) != "query" || string(elems[0].Space) != "jabber:iq:last" {
		return &SyntaxError{Offset: elems[0].Start, Msg: "iq get without <query xmlns='jabber:iq:last'/>: lastseen answers only Last Activity queries", Err: ErrNotPresence}
	}
	return nil
}

// refAddressing finds the unprefixed from, to, id and type attributes of a
// stanza element (a repeated attribute never gets this far: the parser
// refuses it).
func refAddressing(el *Element) (from, to, id, typ *Attr) {
	for i := range el.Attrs {
		a := &el.Attrs[i]
		if a.Decl || a.Prefix != nil {
			continue
		}
		switch string(a.Local) {
		case "from":
			from = a
		case "to":
			to = a
		case "id":
			id = a
		case "type":
			typ = a
		}
	}
	return from, to, id, typ
}
