package e2e

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// node is a received stanza, decoded generically so the tests can look at
// any attribute or child.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// child returns the first child named local in namespace space ("" for
// any namespace).
func (n node) child(local, space string) (node, bool) {
	for _, c := range n.Nodes {
		if c.XMLName.Local == local && (space == "" || c.XMLName.Space == space) {
			return c, true
		}
	}
	return node{}, false
}

// withoutID returns n without its id and to attributes, which differ
// between two probes of the same state.
func (n node) withoutID() node {
	var attrs []xml.Attr
	for _, a := range n.Attrs {
		if a.Name.Local != "id" && a.Name.Local != "to" {
			attrs = append(attrs, a)
		}
	}
	n.Attrs = attrs
	return n
}

// String is n as XML, for messages.
func (n node) String() string {
	b, _ := xml.Marshal(n.withoutXMLNS())
	return string(b)
}

// withoutXMLNS drops the xmlns attributes decoding kept beside XMLName, so
// that marshalling does not declare each namespace twice.
func (n node) withoutXMLNS() node {
	out := node{XMLName: n.XMLName, Text: n.Text}
	for _, a := range n.Attrs {
		if a.Name.Local != "xmlns" || a.Name.Space != "" {
			out.Attrs = append(out.Attrs, a)
		}
	}
	for _, c := range n.Nodes {
		out.Nodes = append(out.Nodes, c.withoutXMLNS())
	}
	return out
}

// client is one XMPP session of mellium.im/xmpp against the server under
// test. Every stanza it receives goes to in.
type client struct {
	t    *testing.T
	jid  string
	conn net.Conn
	s    *xmpp.Session
	in   chan node
}

const stanzaWait = 10 * time.Second

// dial logs user in with resource res: STARTTLS (jackal's self-signed
// certificate, so no verification), SCRAM-SHA-1 (jackal's -PLUS fails
// under TLS 1.3), resource binding.
func dial(t *testing.T, srv *server, user, res string) *client {
	t.Helper()
	addr := jid.MustParse(user + "@" + srv.domain + "/" + res)
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", srv.c2s), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := xmpp.NewClientSession(ctx, addr, conn,
		xmpp.StartTLS(&tls.Config{ServerName: srv.domain, InsecureSkipVerify: true}),
		xmpp.SASL("", password, sasl.ScramSha1),
		bindAs(addr),
	)
	if err != nil {
		conn.Close()
		t.Fatalf("log in as %s: %v", addr, err)
	}
	c := &client{t: t, jid: addr.String(), conn: conn, s: s, in: make(chan node, 1024)}
	go func() {
		_ = s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var n node
			// The decoder must see the start element itself to accept the
			// matching end element.
			d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r))
			if err := d.Decode(&n); err != nil {
				return err
			}
			select {
			case c.in <- n:
			default: // a test that stopped reading: drop rather than block the stream
			}
			return nil
		}))
	}()
	t.Cleanup(c.close)
	if got := s.LocalAddr().String(); got != addr.String() {
		t.Fatalf("bound %q, want %q", got, addr)
	}
	return c
}

// bindAs is client-side resource binding (RFC 6120 §7) asking for addr's
// resource. mellium v0.22.0's BindResource writes the JID, empty at that
// point, where the requested resource belongs, and jackal v0.64.0 binds an
// empty resource when asked for one, so every session of a user would share
// the bare JID.
func bindAs(addr jid.JID) xmpp.StreamFeature {
	const nsBind = "urn:ietf:params:xml:ns:xmpp-bind"
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsBind, Local: "bind"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		Parse: func(_ context.Context, d *xml.Decoder, start *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(_ context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			w := s.TokenWriter()
			defer w.Close()
			req := fmt.Sprintf("<iq xmlns='jabber:client' type='set' id='bind-1'><bind xmlns='%s'><resource>%s</resource></bind></iq>", nsBind, addr.Resourcepart())
			if _, err := xmlstream.Copy(w, xml.NewDecoder(strings.NewReader(req))); err != nil {
				return 0, nil, err
			}
			if err := w.Flush(); err != nil {
				return 0, nil, err
			}
			r := s.TokenReader()
			defer r.Close()
			var resp struct {
				Type string `xml:"type,attr"`
				JID  string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
			}
			if err := xml.NewTokenDecoder(r).Decode(&resp); err != nil {
				return 0, nil, err
			}
			if resp.Type != "result" {
				return 0, nil, fmt.Errorf("bind %s: iq of type %q", addr, resp.Type)
			}
			bound, err := jid.Parse(resp.JID)
			if err != nil {
				return 0, nil, err
			}
			s.UpdateAddr(bound)
			return xmpp.Ready, nil, nil
		},
	}
}

// close ends the session politely (the server sees a stream close).
func (c *client) close() {
	_ = c.s.Close()
	_ = c.conn.Close()
}

// kill drops the TCP connection without unavailable presence or stream
// close, as a lost network would.
func (c *client) kill() {
	if tc, ok := c.conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.conn.Close()
}

// send writes raw XML (a stanza without xmlns; the session puts it in
// jabber:client).
func (c *client) send(raw string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.s.Send(ctx, xml.NewDecoder(strings.NewReader(raw))); err != nil {
		c.t.Fatalf("%s sends %s: %v", c.jid, raw, err)
	}
}

// waitFor returns the first received stanza that match accepts, dropping
// the others, or fails after stanzaWait.
func (c *client) waitFor(what string, match func(node) bool) node {
	c.t.Helper()
	timeout := time.After(stanzaWait)
	for {
		select {
		case n := <-c.in:
			if match(n) {
				return n
			}
		case <-timeout:
			c.t.Fatalf("%s: no %s within %v", c.jid, what, stanzaWait)
			return node{}
		}
	}
}

// iq sends an iq of type typ with payload and waits for its result.
func (c *client) iq(id, typ, payload string) node {
	c.t.Helper()
	c.send(fmt.Sprintf("<iq type='%s' id='%s'>%s</iq>", typ, id, payload))
	n := c.waitFor("iq "+id, func(n node) bool { return n.XMLName.Local == "iq" && n.attr("id") == id })
	if n.attr("type") != "result" {
		c.t.Fatalf("%s: iq %s failed: %s", c.jid, id, n)
	}
	return n
}

// online logs user in on res, asks for the roster (RFC 6121 §3.1.3:
// subscription requests go to resources that did) and sends available
// presence with status.
func online(t *testing.T, srv *server, user, res, status string) *client {
	t.Helper()
	c := dial(t, srv, user, res)
	c.iq("roster", "get", "<query xmlns='jabber:iq:roster'/>")
	c.send("<presence><status>" + status + "</status></presence>")
	return c
}

// lastActivity sends a XEP-0012 Last Activity query to to and returns the
// reply, a result or an error.
func (c *client) lastActivity(to, id string) node {
	c.t.Helper()
	c.send(fmt.Sprintf("<iq type='get' to='%s' id='%s'><query xmlns='jabber:iq:last'/></iq>", to, id))
	n := c.waitFor("Last Activity reply "+id, func(n node) bool { return n.XMLName.Local == "iq" && n.attr("id") == id })
	c.t.Logf("%s got %s", c.jid, n)
	return n
}

// probe sends a presence probe to to with id, then a probe to the server
// domain as a marker, and returns every presence that came before the
// marker's answer and is addressed to this session's full JID: the server
// answers one session's stanzas in order, so nothing later belongs to the
// first probe, and replies go to the prober's full JID while jackal sends
// roster broadcasts to the bare JID. (Replies about an online contact carry
// the id of the contact's own presence, not the probe's: RULES P4.)
func (c *client) probe(to, id, domain string) []node {
	c.t.Helper()
	marker := id + "-marker"
	for len(c.in) > 0 {
		<-c.in // what came before the probe is not about it
	}
	c.send(fmt.Sprintf("<presence to='%s' type='probe' id='%s'/>", to, id))
	c.send(fmt.Sprintf("<presence to='%s' type='probe' id='%s'/>", domain, marker))
	var got []node
	timeout := time.After(stanzaWait)
	for {
		select {
		case n := <-c.in:
			if n.XMLName.Local != "presence" {
				continue
			}
			if n.attr("id") == marker {
				for _, g := range got {
					c.t.Logf("%s got %s", c.jid, g)
				}
				return got
			}
			if n.attr("to") == c.jid {
				got = append(got, n)
			}
		case <-timeout:
			c.t.Fatalf("%s: no answer to the marker probe %s within %v (got %v)", c.jid, marker, stanzaWait, got)
			return nil
		}
	}
}
