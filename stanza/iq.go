package stanza

import "strconv"

// NSLast is the namespace of XEP-0012 Last Activity queries.
const NSLast = "jabber:iq:last"

// IQType is an iq stanza's type (RFC 6120 §8.2.3).
type IQType uint8

// The iq types of RFC 6120. An iq must have one: the zero value means the
// attribute is absent, which the view refuses.
const (
	IQGet IQType = iota + 1
	IQSet
	IQResult
	IQError
)

var iqTypeNames = [...]string{"", "get", "set", "result", "error"}

// String returns the type attribute value.
func (t IQType) String() string {
	if t > 0 && int(t) < len(iqTypeNames) {
		return iqTypeNames[t]
	}
	return "invalid"
}

// IQ is a parsed iq stanza: the root element view plus its decoded
// addressing. Like Presence, it aliases the input and the Parser's buffers
// and is valid until the Parser parses again.
type IQ struct {
	*Element
	Type IQType
	From *Attr // nil when absent
	To   *Attr // nil when absent
	ID   *Attr // nil when absent
}

// ParseIQ parses raw as one iq stanza. Besides the XML checks of Parse, it
// refuses any other stanza (ErrNotPresence, whose text names what lastseen
// takes), an iq without a type (ErrNotPresence) and a type RFC 6120 does not
// define (ErrUnknownType). JIDs are not checked here.
func (p *Parser) ParseIQ(raw []byte, out *IQ) error {
	el, err := p.Parse(raw)
	if err != nil {
		return err
	}
	if !isRoot(el, "iq") {
		return notTaken(el)
	}
	return iqView(el, out)
}

// ParseStanza parses raw as one stanza that lastseen takes, a presence or
// an iq, filling pres or iq: isIQ says which. The other view is left as it
// was. Other stanzas are refused with ErrNotPresence.
func (p *Parser) ParseStanza(raw []byte, pres *Presence, iq *IQ) (isIQ bool, err error) {
	el, err := p.Parse(raw)
	if err != nil {
		return false, err
	}
	switch {
	case isRoot(el, "presence"):
		return false, presenceView(el, pres)
	case isRoot(el, "iq"):
		return true, iqView(el, iq)
	}
	return false, notTaken(el)
}

// isRoot reports whether el is the stanza element local in a content
// namespace.
func isRoot(el *Element, local string) bool {
	return string(el.Local) == local && ContentNamespace(el.Space)
}

func notTaken(el *Element) error {
	return &SyntaxError{Offset: 1, Msg: "<" + string(el.Local) + "/> is neither <presence/> nor <iq/>: lastseen only takes presence stanzas and Last Activity queries", Err: ErrNotPresence}
}

// stanzaAttrs finds the root's from, to, id and type attributes.
func stanzaAttrs(el *Element) (from, to, id, typ *Attr) {
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

// attrValue returns a's value, decoding references into scratch only when
// it has any (type values never need them in practice).
func attrValue(a *Attr) []byte {
	if a.HasRefs() {
		return a.AppendValue(nil)
	}
	return a.Raw
}

func iqView(el *Element, out *IQ) error {
	*out = IQ{Element: el}
	var typ *Attr
	out.From, out.To, out.ID, typ = stanzaAttrs(el)
	if typ == nil {
		return &SyntaxError{Offset: 1, Msg: "iq without a type (RFC 6120 §8.2.3 requires one)", Err: ErrNotPresence}
	}
	v := attrValue(typ)
	for i := 1; i < len(iqTypeNames); i++ {
		if string(v) == iqTypeNames[i] {
			out.Type = IQType(i)
			return nil
		}
	}
	return &SyntaxError{Offset: typ.Start, Msg: "iq type " + strconv.Quote(string(v)) + " is not one of RFC 6120's", Err: ErrUnknownType}
}

// CheckLastActivity reports, with nil, that q is a XEP-0012 Last Activity
// query as lastseen takes it: type get, an id, and exactly one child
// element, <query xmlns='jabber:iq:last'/>, with nothing but white space
// beside it. The query's own attributes and content are not read: a query
// carries no payload (XEP-0012 §3). Otherwise it returns a *SyntaxError
// wrapping ErrNotPresence that says what is wrong. It allocates nothing for
// a query it accepts.
func (q *IQ) CheckLastActivity() error {
	if q.Type != IQGet {
		return &SyntaxError{Offset: 1, Msg: "iq of type " + q.Type.String() + " is not a Last Activity query (only get is)", Err: ErrNotPresence}
	}
	if q.ID == nil {
		return &SyntaxError{Offset: 1, Msg: "iq without an id (RFC 6120 §8.1.3 requires one)", Err: ErrNotPresence}
	}
	var query *Node
	for i := range q.Children {
		n := &q.Children[i]
		if n.Blank {
			continue
		}
		if n.Text || query != nil {
			return &SyntaxError{Offset: n.Start, Msg: "a Last Activity query has exactly one child element, <query xmlns='jabber:iq:last'/>, and no text", Err: ErrNotPresence}
		}
		query = n
	}
	if query == nil || string(query.Local) != "query" || string(query.Space) != NSLast {
		off := q.ContentStart
		if query != nil {
			off = query.Start
		}
		return &SyntaxError{Offset: off, Msg: "iq get without <query xmlns='jabber:iq:last'/>: lastseen answers only Last Activity queries", Err: ErrNotPresence}
	}
	return nil
}

// AppendIDAttr appends ` id='…'` as written in the input, or nothing when
// the stanza has no id.
func (q *IQ) AppendIDAttr(dst []byte) []byte { return appendIDAttr(dst, q.Element, q.ID) }

func appendIDAttr(dst []byte, el *Element, id *Attr) []byte {
	if id == nil {
		return dst
	}
	dst = append(dst, ' ')
	return append(dst, el.Raw[id.Start:id.End]...)
}
