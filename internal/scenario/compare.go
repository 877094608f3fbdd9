package scenario

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-cmp/cmp"

	"github.com/lastseen-xmpp/lastseen/clock"
)

// Namespaces the comparison treats specially.
const (
	nsClient = "jabber:client"
	nsServer = "jabber:server"
	nsXML    = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS  = "http://www.w3.org/2000/xmlns/"
	nsDelay  = "urn:xmpp:delay"
)

// node is the normalised form of one stanza, or of one piece of it, built so
// that two stanzas spec/SCENARIOS.md calls equal give equal trees (cmp.Equal) and
// cmp.Diff explains the difference between unequal ones.
//
// An element has a Name and a Text of ""; a text node has an empty Name. An
// element name is written "{namespace}local", or just "local" when the
// element has no namespace or is in the content namespace (jabber:client,
// jabber:server or none, which compare as one). Attribute keys follow the
// same convention; an unprefixed attribute has no namespace.
type node struct {
	Name     string
	Attr     map[string]string
	Children []node
	Text     string
}

// Equal reports whether the stanza actual, emitted by an engine, matches the
// stanza expected, written in a scenario, under the rules of spec/SCENARIOS.md
// ("How two stanzas are compared"):
//
//   - element names compare by namespace and local name, whatever prefixes
//     were used; the stanza element, and its descendants reached through
//     elements in the content namespace, compare equal whether their
//     namespace is jabber:client, jabber:server or none;
//   - attributes compare as a set, by namespace and local name (xml:lang is
//     in the XML namespace); namespace declarations are not attributes;
//   - an id attribute on the stanza element of actual is ignored when
//     expected has none;
//   - the stamp attribute of a urn:xmpp:delay delay element compares as an
//     XEP-0082 instant, so 2012-09-10T23:41:07Z equals
//     2012-09-10T23:41:07.000Z and 2012-09-11T01:41:07+02:00;
//   - children compare in order, and text compares exactly, except that
//     white-space-only text in an element that also has child elements is
//     ignored.
//
// Each side must be exactly one well-formed, namespace-well-formed XML
// element, optionally surrounded by white space; comments, processing
// instructions (including an XML declaration) and DTDs are refused, as
// RFC 6120 refuses them in streams.
//
// When the stanzas differ, or one of them cannot be parsed, Equal returns
// false and a human-readable explanation: for parsed stanzas a cmp.Diff of
// the normalised trees, with "-" lines from expected and "+" lines from
// actual. When they are equal the explanation is empty.
func Equal(expected, actual []byte) (bool, string) {
	want, err := normalize(expected)
	if err != nil {
		return false, "expected stanza: " + err.Error()
	}
	got, err := normalize(actual)
	if err != nil {
		return false, "actual stanza: " + err.Error()
	}
	return equalNodes(want, got)
}

// equalNodes compares two normalised stanzas, applying the rule that the
// stanza element's id is ignored when the expectation has none. got is not
// modified.
func equalNodes(want, got *node) (bool, string) {
	if _, ok := want.Attr["id"]; !ok {
		if _, ok := got.Attr["id"]; ok {
			c := *got
			c.Attr = make(map[string]string, len(got.Attr))
			for k, v := range got.Attr {
				if k != "id" {
					c.Attr[k] = v
				}
			}
			if len(c.Attr) == 0 {
				c.Attr = nil
			}
			got = &c
		}
	}
	if reflect.DeepEqual(want, got) {
		return true, ""
	}
	// cmp.Diff explains nested slices well but takes time exponential in
	// the depth at which deep trees differ; past a few levels the trees
	// are compared as indented lines instead, which stays linear.
	if want.depth() <= diffDepth && got.depth() <= diffDepth {
		return false, cmp.Diff(want, got)
	}
	return false, cmp.Diff(want.lines(nil, ""), got.lines(nil, ""))
}

// diffDepth is the deepest tree whose difference cmp.Diff explains.
const diffDepth = 8

func (n *node) depth() int {
	d := 0
	for i := range n.Children {
		d = max(d, n.Children[i].depth())
	}
	return d + 1
}

// lines renders n one element, attribute or text per line, indented by
// depth, for a line diff.
func (n *node) lines(dst []string, indent string) []string {
	if n.Name == "" {
		return append(dst, indent+"text "+strconv.Quote(n.Text))
	}
	dst = append(dst, indent+"<"+n.Name+">")
	keys := make([]string, 0, len(n.Attr))
	for k := range n.Attr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dst = append(dst, indent+"  @"+k+"="+strconv.Quote(n.Attr[k]))
	}
	for i := range n.Children {
		dst = n.Children[i].lines(dst, indent+"  ")
	}
	return dst
}

// errNotStanza is wrapped by every error normalize returns.
var errNotStanza = errors.New("not a well-formed XML stanza")

// normalize parses one stanza into its normalised tree. Errors wrap
// errNotStanza and say what is wrong.
func normalize(src []byte) (*node, error) {
	src, err := normalizeAttrSpace(src)
	if err == nil {
		p := parser{d: xml.NewDecoder(bytes.NewReader(src))}
		var n *node
		if n, err = p.parse(); err == nil {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w: %v", errNotStanza, err)
}

// normalizeAttrSpace returns src with the attribute-value normalisation of
// XML 1.0 §3.3.3 applied to the literal white space in attribute values: a
// tab, a line feed, a carriage return or a CR LF pair becomes one space.
// encoding/xml does not do it and decodes character references before the
// caller sees a value, after which a literal tab and a &#9; (which stays a
// tab) cannot be told apart; so the raw start tags, which the decoder
// locates, are rewritten before the real parse. Errors are the decoder's.
func normalizeAttrSpace(src []byte) ([]byte, error) {
	if bytes.IndexAny(src, "\t\n\r") < 0 {
		return src, nil
	}
	d := xml.NewDecoder(bytes.NewReader(src))
	var out []byte
	done, start := 0, int64(0)
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		end := d.InputOffset()
		if _, ok := tok.(xml.StartElement); ok {
			out = append(out, src[done:start]...)
			out = appendTagSpaced(out, src[start:end])
			done = int(end)
		}
		start = end
	}
	return append(out, src[done:]...), nil
}

// appendTagSpaced appends one raw start tag to dst with the white space
// inside its quoted attribute values turned into spaces. Quotes delimit
// values only: a name cannot hold one.
func appendTagSpaced(dst, tag []byte) []byte {
	var quote byte
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		switch {
		case quote == 0:
			if c == '\'' || c == '"' {
				quote = c
			}
		case c == quote:
			quote = 0
		case c == '\r' && i+1 < len(tag) && tag[i+1] == '\n':
			i++
			c = ' '
		case c == '\t' || c == '\n' || c == '\r':
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// frame is one open element while parsing.
type frame struct {
	raw     xml.Name          // the name as written, to match the end tag
	ns      map[string]string // prefix bindings declared on this element
	node    *node
	content bool // the element is in the content namespace
	text    strings.Builder
	hasText bool // text has been seen since the last child element
	hasElem bool // the element has child elements
}

// parser turns the raw tokens of encoding/xml into a normalised tree,
// resolving namespace prefixes itself so that unbound prefixes and other
// namespace errors are reported rather than passed through.
type parser struct {
	d     *xml.Decoder
	stack []*frame
	root  *node
}

func (p *parser) parse() (*node, error) {
	for {
		tok, err := p.d.RawToken()
		if err == io.EOF {
			if p.root == nil {
				return nil, errors.New("no element")
			}
			if len(p.stack) > 0 {
				return nil, fmt.Errorf("element <%s> is not closed", qname(p.stack[len(p.stack)-1].raw))
			}
			return p.root, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if p.root != nil && len(p.stack) == 0 {
				return nil, errors.New("more than one element (one stanza expected)")
			}
			if err := p.start(t); err != nil {
				return nil, err
			}
		case xml.EndElement:
			if err := p.end(t); err != nil {
				return nil, err
			}
		case xml.CharData:
			if len(p.stack) == 0 {
				if len(bytes.TrimLeft(t, " \t\r\n")) != 0 {
					return nil, errors.New("text outside the stanza element")
				}
				continue
			}
			if len(t) == 0 {
				// An empty CDATA section: no character data, so <a><![CDATA[]]></a>
				// is <a/>, as an XML infoset has it.
				continue
			}
			f := p.stack[len(p.stack)-1]
			f.text.Write(t)
			f.hasText = true
		case xml.Comment:
			return nil, errors.New("comments are not allowed in a stanza")
		case xml.ProcInst:
			return nil, errors.New("processing instructions (and XML declarations) are not allowed in a stanza")
		case xml.Directive:
			return nil, errors.New("DTDs and other directives are not allowed in a stanza")
		default:
			return nil, fmt.Errorf("unexpected XML token %T", tok)
		}
	}
}

// lookup resolves a prefix through the open elements, innermost first. The
// empty prefix resolves to the default namespace ("" when none is declared).
func (p *parser) lookup(prefix string) (string, bool) {
	if prefix == "xml" {
		return nsXML, true
	}
	for i := len(p.stack) - 1; i >= 0; i-- {
		if uri, ok := p.stack[i].ns[prefix]; ok {
			return uri, true
		}
	}
	if prefix == "" {
		return "", true
	}
	return "", false
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// key writes a namespace and local name the way node does.
func key(ns, local string) string {
	if ns == "" {
		return local
	}
	return "{" + ns + "}" + local
}

func checkLocal(n xml.Name) error {
	if n.Local == "" || strings.Contains(n.Local, ":") {
		return fmt.Errorf("name %q is not namespace-well-formed", qname(n))
	}
	return nil
}

func (p *parser) start(t xml.StartElement) error {
	if err := checkLocal(t.Name); err != nil {
		return err
	}
	f := &frame{raw: t.Name}
	// Namespace declarations first: they apply to the element's own name
	// and attributes.
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			if f.ns == nil {
				f.ns = map[string]string{}
			}
			if _, dup := f.ns[""]; dup {
				return errors.New("default namespace declared twice on one element")
			}
			if a.Value == nsXML || a.Value == nsXMLNS {
				return fmt.Errorf("namespace %q cannot be the default namespace", a.Value)
			}
			f.ns[""] = a.Value
		case a.Name.Space == "xmlns":
			if err := checkLocal(xml.Name{Local: a.Name.Local}); err != nil {
				return err
			}
			prefix := a.Name.Local
			switch {
			case prefix == "xmlns":
				return errors.New("the prefix xmlns cannot be declared")
			case prefix == "xml" && a.Value != nsXML, prefix != "xml" && a.Value == nsXML:
				return errors.New("the prefix xml is bound to the XML namespace only, and only it is")
			case a.Value == nsXMLNS:
				return errors.New("no prefix may be bound to the xmlns namespace")
			case a.Value == "":
				return fmt.Errorf("prefix %q cannot be undeclared", prefix)
			}
			if f.ns == nil {
				f.ns = map[string]string{}
			}
			if _, dup := f.ns[prefix]; dup {
				return fmt.Errorf("prefix %q declared twice on one element", prefix)
			}
			f.ns[prefix] = a.Value
		}
	}
	p.stack = append(p.stack, f) // so lookup sees this element's declarations
	if t.Name.Space == "xmlns" {
		return fmt.Errorf("element <%s> uses the reserved prefix xmlns", qname(t.Name))
	}
	ns, ok := p.lookup(t.Name.Space)
	if !ok {
		return fmt.Errorf("element <%s> uses the undeclared prefix %q", qname(t.Name), t.Name.Space)
	}
	parentContent := len(p.stack) == 1 || p.stack[len(p.stack)-2].content
	if parentContent && (ns == "" || ns == nsClient || ns == nsServer) {
		f.content = true
		ns = ""
	}
	n := &node{Name: key(ns, t.Name.Local)}
	f.node = n
	for _, a := range t.Attr {
		if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
			continue
		}
		if err := checkLocal(a.Name); err != nil {
			return err
		}
		ans := ""
		if a.Name.Space != "" {
			if ans, ok = p.lookup(a.Name.Space); !ok {
				return fmt.Errorf("attribute %s uses the undeclared prefix %q", qname(a.Name), a.Name.Space)
			}
		}
		k := key(ans, a.Name.Local)
		if n.Attr == nil {
			n.Attr = map[string]string{}
		}
		if _, dup := n.Attr[k]; dup {
			return fmt.Errorf("attribute %s appears twice on <%s>", k, qname(t.Name))
		}
		v := a.Value
		if ns == nsDelay && t.Name.Local == "delay" && k == "stamp" {
			if ts, err := clock.Parse(v); err == nil {
				v = ts.String()
			}
		}
		n.Attr[k] = v
	}
	if len(p.stack) > 1 {
		parent := p.stack[len(p.stack)-2]
		parent.flushText()
		parent.hasElem = true
	}
	return nil
}

// flushText appends the text gathered since the last child element, if any,
// as a text node.
func (f *frame) flushText() {
	if !f.hasText {
		return
	}
	f.node.Children = append(f.node.Children, node{Text: f.text.String()})
	f.text.Reset()
	f.hasText = false
}

func (p *parser) end(t xml.EndElement) error {
	if len(p.stack) == 0 {
		return fmt.Errorf("end tag </%s> without a start tag", qname(t.Name))
	}
	f := p.stack[len(p.stack)-1]
	if t.Name != f.raw {
		return fmt.Errorf("element <%s> closed by </%s>", qname(f.raw), qname(t.Name))
	}
	f.flushText()
	n := f.node
	if f.hasElem {
		// White space between elements is layout, not content.
		kept := n.Children[:0]
		for _, c := range n.Children {
			if c.Name == "" && strings.Trim(c.Text, " \t\r\n") == "" {
				continue
			}
			kept = append(kept, c)
		}
		n.Children = kept
	}
	if len(n.Children) == 0 {
		n.Children = nil
	}
	p.stack = p.stack[:len(p.stack)-1]
	if len(p.stack) == 0 {
		p.root = n
		return nil
	}
	parent := p.stack[len(p.stack)-1].node
	parent.Children = append(parent.Children, *n)
	return nil
}
