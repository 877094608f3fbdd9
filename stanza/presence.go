package stanza

import (
	"errors"
	"strconv"
)

// Type is a presence stanza's type (RFC 6121 §4.7.1).
type Type uint8

// The presence types of RFC 6121. Available is the absent type attribute.
const (
	Available Type = iota
	Unavailable
	Subscribe
	Subscribed
	Unsubscribe
	Unsubscribed
	Probe
	Error
)

var typeNames = [...]string{"", "unavailable", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "error"}

// String returns the type attribute value, "" for Available.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// Subscription reports whether t is one of the four subscription types.
func (t Type) Subscription() bool { return t >= Subscribe && t <= Unsubscribed }

// ParseType maps a type attribute value to a Type. "available" is not a
// value RFC 6121 allows (absence means available) and is refused.
func ParseType(v []byte) (Type, bool) {
	for i := 1; i < len(typeNames); i++ {
		if string(v) == typeNames[i] {
			return Type(i), true
		}
	}
	return 0, false
}

// Errors a presence view reports besides those of the XML parser.
var (
	// ErrNotPresence means the stanza is not one lastseen takes: its root
	// is neither <presence/> nor <iq/> in the jabber:client or
	// jabber:server namespace (or none), or it is an iq but not a XEP-0012
	// Last Activity query (see IQ.CheckLastActivity).
	ErrNotPresence = errors.New("not a presence stanza")
	// ErrUnknownType means the presence type attribute is not one of RFC
	// 6121's.
	ErrUnknownType = errors.New("unknown presence type")
)

// Presence is a parsed presence stanza: the root element view plus its
// decoded addressing. It aliases the input and the Parser's buffers and is
// valid until the Parser parses again.
type Presence struct {
	*Element
	Type Type
	From *Attr // nil when absent
	To   *Attr // nil when absent
	ID   *Attr // nil when absent
	typ  *Attr
}

// ContentNamespace reports whether ns is a namespace in which a stanza's
// top-level elements live: jabber:client, jabber:server, or none (a host
// may strip the stream's default namespace).
func ContentNamespace(ns []byte) bool {
	return len(ns) == 0 || string(ns) == NSClient || string(ns) == NSServer
}

// ParsePresence parses raw as one presence stanza. Besides the XML checks of
// Parse, it refuses any other stanza (ErrNotPresence) and unknown types
// (ErrUnknownType). JIDs are not checked here: see ParseBytes.
func (p *Parser) ParsePresence(raw []byte, out *Presence) error {
	el, err := p.Parse(raw)
	if err != nil {
		return err
	}
	if !isRoot(el, "presence") {
		*out = Presence{Element: el}
		return notTaken(el)
	}
	return presenceView(el, out)
}

func presenceView(el *Element, out *Presence) error {
	*out = Presence{Element: el}
	out.From, out.To, out.ID, out.typ = stanzaAttrs(el)
	if out.typ != nil {
		v := attrValue(out.typ)
		t, ok := ParseType(v)
		if !ok {
			return &SyntaxError{Offset: out.typ.Start, Msg: "presence type " + strconv.Quote(string(v)) + " is not one of RFC 6121's (available presence has no type)", Err: ErrUnknownType}
		}
		out.Type = t
	}
	return nil
}

// Kept reports whether root attribute a travels with a kept stanza: every
// attribute but from, to, id, type and a default namespace declaration
// (replies are written into whichever stream the host sends them on).
func Kept(a *Attr) bool {
	if a.Decl {
		return a.Prefix != nil
	}
	if a.Prefix != nil {
		return true
	}
	switch string(a.Local) {
	case "from", "to", "id", "type":
		return false
	}
	return true
}

// IsDelay reports whether a top-level child is a delay stamp: XEP-0203's
// <delay xmlns='urn:xmpp:delay'/> or the legacy XEP-0091
// <x xmlns='jabber:x:delay'/>.
func (n *Node) IsDelay() bool {
	if n.Text {
		return false
	}
	return string(n.Local) == "delay" && string(n.Space) == NSDelay ||
		string(n.Local) == "x" && string(n.Space) == NSLegacyDelay
}

// AppendKept appends what a presence keeps when it is stored: the kept root
// attributes (see Kept), each with a leading space, then a separator
// position, then the content with delay children and white-space-only text
// between children dropped. It returns the new slice and the length of the
// attribute part, so that dst[start:start+attrLen] are attributes and the
// rest is content.
//
// The root's default namespace declaration is not kept (the reply's root
// lives in the host's stream namespace), so when a prefixed root declares a
// default namespace other than a content namespace (<c:presence
// xmlns:c='jabber:client' xmlns='urn:d'>), the unprefixed children would
// change namespace in a reply. Each kept child element that does not declare
// its own default namespace then gets the root's declaration, as written,
// right after its name: the children stay in their namespace, and the
// common case, which has no such declaration, is copied as before.
func (p *Presence) AppendKept(dst []byte) ([]byte, int) {
	start := len(dst)
	var dflt []byte // the root's foreign default namespace declaration
	for i := range p.Attrs {
		a := &p.Attrs[i]
		if Kept(a) {
			dst = append(dst, ' ')
			dst = append(dst, p.Raw[a.Start:a.End]...)
		} else if a.Decl && a.Prefix == nil && (a.HasRefs() || !ContentNamespace(a.Raw)) {
			// A value with references is taken as foreign: declaring it
			// on the children is correct whatever it decodes to.
			dflt = p.Raw[a.Start:a.End]
		}
	}
	attrLen := len(dst) - start
	for i := range p.Children {
		n := &p.Children[i]
		if n.Blank || n.IsDelay() {
			continue
		}
		raw := p.Raw[n.Start:n.End]
		if dflt != nil && !n.Text {
			if name, own := startTagDefault(raw); !own {
				dst = append(dst, raw[:name]...)
				dst = append(dst, ' ')
				dst = append(dst, dflt...)
				raw = raw[name:]
			}
		}
		dst = append(dst, raw...)
	}
	return dst, attrLen
}

// startTagDefault reads the start tag at the beginning of el, an element the
// parser accepted, and returns where its name ends and whether it declares
// a default namespace (an attribute named exactly xmlns).
func startTagDefault(el []byte) (nameEnd int, declares bool) {
	i := 1
	for i < len(el) && !isSpace(el[i]) && el[i] != '/' && el[i] != '>' {
		i++
	}
	nameEnd = i
	for i < len(el) {
		for i < len(el) && isSpace(el[i]) {
			i++
		}
		if i >= len(el) || el[i] == '/' || el[i] == '>' {
			return nameEnd, false
		}
		n := i
		for i < len(el) && el[i] != '=' && !isSpace(el[i]) {
			i++
		}
		if string(el[n:i]) == "xmlns" {
			return nameEnd, true
		}
		for i < len(el) && el[i] != '\'' && el[i] != '"' {
			i++
		}
		if i >= len(el) {
			break
		}
		q := el[i]
		i++
		for i < len(el) && el[i] != q {
			i++
		}
		i++
	}
	return nameEnd, false
}

// AppendIDAttr appends ` id='…'` as written in the input (same quoting and
// escaping), or nothing when the stanza has no id.
func (p *Presence) AppendIDAttr(dst []byte) []byte { return appendIDAttr(dst, p.Element, p.ID) }

// AppendAttr appends ` name='value'`, escaping value for a single-quoted
// attribute.
func AppendAttr[S ~string | ~[]byte](dst []byte, name string, value S) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '\'')
	dst = AppendEscaped(dst, value)
	return append(dst, '\'')
}

// AppendEscaped appends s escaped for use in text or in a single- or
// double-quoted attribute value.
func AppendEscaped[S ~string | ~[]byte](dst []byte, s S) []byte {
	for {
		// Copy the run up to the next character to escape in one append:
		// JIDs and ids rarely hold any.
		i := 0
		for i < len(s) && escapes[s[i]] == "" {
			i++
		}
		dst = append(dst, s[:i]...)
		if i == len(s) {
			return dst
		}
		dst = append(dst, escapes[s[i]]...)
		s = s[i+1:]
	}
}

// escapes maps each byte that AppendEscaped replaces to its reference.
var escapes = [256]string{'<': "&lt;", '>': "&gt;", '&': "&amp;", '\'': "&apos;", '"': "&quot;"}
