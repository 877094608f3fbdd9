package stanza

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// keptNames lists, in document order, every element and attribute name
// (namespace and local name, as encoding/xml resolves them) inside the
// top-level children of the stanza src, skipping the children that
// skip(depth-2 name) reports. The content namespaces read as one, "".
func keptNames(src []byte, skip func(xml.Name) bool) ([]string, error) {
	d := xml.NewDecoder(bytes.NewReader(src))
	var names []string
	depth, skipping := 0, false
	space := func(s string) string {
		if ContentNamespace([]byte(s)) {
			return ""
		}
		return s
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				skipping = skip(t.Name)
			}
			if depth < 2 || skipping {
				continue
			}
			names = append(names, fmt.Sprintf("%d <{%s}%s>", depth, space(t.Name.Space), t.Name.Local))
			for _, a := range t.Attr {
				if a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") {
					names = append(names, fmt.Sprintf("%d @{%s}%s", depth, a.Name.Space, a.Name.Local))
				}
			}
		case xml.EndElement:
			depth--
		}
	}
}

// TestKeptChildrenKeepNamespaces checks T1/P4 for every accepted presence
// among the parser's seeds and a set of namespace layouts: a reply root in
// a stream namespace, carrying the kept attributes and content, gives every
// element and attribute inside the kept children the namespace it had in
// the original stanza, as encoding/xml reads both.
func TestKeptChildrenKeepNamespaces(t *testing.T) {
	inputs := append(xmlFuzzSeeds(t),
		`<c:presence xmlns:c='jabber:client' xmlns='urn:example:d'><status>x</status></c:presence>`,
		`<c:presence xmlns:c='jabber:client' xmlns="urn:example:d"><c:status>a</c:status><x xmlns='urn:x'><y/></x><p:e xmlns:p='urn:p'><f/></p:e><g/><delay xmlns='urn:xmpp:delay' stamp='2000-01-01T00:00:00Z'/></c:presence>`,
		`<c:presence xmlns:c='jabber:client' xmlns='urn:example:d'><status a='1' xmlns:q='urn:q' q:b='2'/><e xmlns=''/>text<f	xmlns = 'urn:f'/></c:presence>`,
		`<c:presence xmlns:c='jabber:server' xmlns='urn:&#100;'><status/></c:presence>`,
		`<c:presence xmlns:c='jabber:client' xmlns='jabber:server'><status/></c:presence>`,
		`<c:presence xmlns='' xmlns:c='jabber:client'><status/></c:presence>`,
		`<c:presence xmlns:c='jabber:client' xmlns='urn:example:d' xml:lang='en' xmlns:p='urn:p'><p:x/><y p:a='1'/></c:presence>`,
		`<presence xmlns='jabber:client' xmlns:p='urn:p'><p:x><y/></p:x><status/></presence>`,
	)
	var p Parser
	var pr Presence
	checked, moved := 0, 0
	for _, in := range inputs {
		if p.ParsePresence([]byte(in), &pr) != nil {
			continue
		}
		kept, attrLen := pr.AppendKept(nil)
		for _, stream := range []string{NSClient, NSServer} {
			reply := "<presence xmlns='" + stream + "'" + string(kept[:attrLen]) + ">" + string(kept[attrLen:]) + "</presence>"
			want, err := keptNames([]byte(in), func(n xml.Name) bool {
				return n.Local == "delay" && n.Space == NSDelay || n.Local == "x" && n.Space == NSLegacyDelay
			})
			if err != nil {
				t.Fatalf("encoding/xml refuses %q, which the parser accepts: %v", in, err)
			}
			got, err := keptNames([]byte(reply), func(xml.Name) bool { return false })
			if err != nil {
				t.Errorf("reply %q of %q is not XML: %v", reply, in, err)
				continue
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("kept children of %q change namespace in reply %q (-original +reply):\n%s", in, reply, diff)
			}
		}
		checked++
		if !bytes.Contains([]byte(in[:pr.ContentStart]), []byte(" xmlns=")) || pr.Prefix == nil {
			continue
		}
		moved++
	}
	if checked < 100 || moved < 4 {
		t.Errorf("checked %d stanzas, %d with a prefixed root declaring a default namespace; want at least 100 and 4", checked, moved)
	}
}
