package main

// Peer baseline 3: mellium.im/xmpp, the Go XMPP library, used the way its
// documentation shows: an xml.Decoder over the stanza, stanza.NewPresence
// for the header (which parses to and from with mellium's RFC 7622 jid
// package), the payload kept as a token slice, and replies written as
// stanza.Presence.Wrap(payload + delay.Delay) through an xml.Encoder.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/delay"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/lastseen-xmpp/lastseen/clock"
)

type melliumRes struct {
	full    jid.JID
	payload []xml.Token
	at      time.Time
	id      string
}

type melliumUser struct {
	avail []*melliumRes
	last  *melliumRes
}

type melliumPeer struct {
	peerBase
	jids  []jid.JID // sessions, parsed with jid.Parse
	users map[string]*melliumUser
}

func newMelliumPeer(served []string) (Impl, error) {
	return &melliumPeer{peerBase: newPeerBase(served), users: map[string]*melliumUser{}}, nil
}

func (p *melliumPeer) Session(full string) (int, error) {
	j, err := jid.Parse(full)
	if err != nil {
		return 0, err
	}
	p.jids = append(p.jids, j)
	return len(p.jids) - 1, nil
}

// read decodes the presence header and its payload, without the delays a
// client may have put in and without namespace declarations (encoding/xml
// would write them twice on the way out).
func (p *melliumPeer) read(raw []byte) (stanza.Presence, []xml.Token, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	tok, err := d.Token()
	if err != nil {
		return stanza.Presence{}, nil, err
	}
	start, ok := tok.(xml.StartElement)
	if !ok || start.Name.Local != "presence" {
		return stanza.Presence{}, nil, errNotPresence
	}
	pr, err := stanza.NewPresence(start)
	if err != nil {
		return pr, nil, err
	}
	r := xmlstream.RemoveElement(func(s xml.StartElement) bool {
		return s.Name.Local == "delay" && s.Name.Space == delay.NS
	})(xmlstream.Inner(d))
	r = xmlstream.RemoveAttr(func(_ xml.StartElement, a xml.Attr) bool {
		return a.Name.Local == "xmlns" || a.Name.Space == "xmlns"
	})(r)
	payload, err := xmlstream.ReadAll(r)
	return pr, payload, err
}

func (p *melliumPeer) emit(r xml.TokenReader) {
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(e, r); err != nil {
		panic(err)
	}
	if err := e.Flush(); err != nil {
		panic(err)
	}
	p.out = append(p.out, buf.Bytes())
}

// tokens replays a stored payload.
func tokens(toks []xml.Token) xml.TokenReader {
	i := 0
	return xmlstream.ReaderFunc(func() (xml.Token, error) {
		if i >= len(toks) {
			return nil, io.EOF
		}
		i++
		return toks[i-1], nil
	})
}

func (p *melliumPeer) Client(now clock.Time, s int, raw []byte) (int, error) {
	p.out = p.out[:0]
	pr, payload, err := p.read(raw)
	if err != nil {
		return 0, err
	}
	sess := p.jids[s]
	switch {
	case pr.Type == stanza.ProbePresence:
		target := sess.Bare()
		if !pr.To.Equal(jid.JID{}) {
			target = pr.To
		}
		if !p.take(now.Std(), sess.String()) {
			return 0, fmt.Errorf("rate limited")
		}
		if p.local(target.String()) {
			p.answer(sess, target, pr.ID)
			break
		}
		p.emit(stanza.Presence{From: sess, To: target, Type: stanza.ProbePresence, ID: pr.ID}.Wrap(nil))
	case !pr.To.Equal(jid.JID{}):
	case pr.Type == stanza.AvailablePresence:
		p.track(now.Std(), sess, pr.ID, payload)
	case pr.Type == stanza.UnavailablePresence:
		p.untrack(now.Std(), sess, payload)
	}
	return len(p.out), nil
}

func (p *melliumPeer) user(bare string) *melliumUser {
	u := p.users[bare]
	if u == nil {
		u = &melliumUser{}
		p.users[bare] = u
	}
	return u
}

func samePayload(a, b []xml.Token) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !tokenEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func tokenEqual(a, b xml.Token) bool {
	switch x := a.(type) {
	case xml.StartElement:
		y, ok := b.(xml.StartElement)
		if !ok || x.Name != y.Name || len(x.Attr) != len(y.Attr) {
			return false
		}
		for i := range x.Attr {
			if x.Attr[i] != y.Attr[i] {
				return false
			}
		}
		return true
	case xml.EndElement:
		y, ok := b.(xml.EndElement)
		return ok && x == y
	case xml.CharData:
		y, ok := b.(xml.CharData)
		return ok && bytes.Equal(x, y)
	}
	return false
}

func (p *melliumPeer) track(now time.Time, sess jid.JID, id string, payload []xml.Token) {
	u := p.user(sess.Bare().String())
	for _, r := range u.avail {
		if r.full.Equal(sess) {
			if !samePayload(r.payload, payload) {
				r.at = now
			}
			r.payload, r.id = payload, id
			return
		}
	}
	u.avail = append(u.avail, &melliumRes{full: sess, payload: payload, at: now, id: id})
}

func (p *melliumPeer) untrack(now time.Time, sess jid.JID, payload []xml.Token) {
	u := p.user(sess.Bare().String())
	for i, r := range u.avail {
		if r.full.Equal(sess) {
			u.avail = append(u.avail[:i], u.avail[i+1:]...)
			break
		}
	}
	u.last = &melliumRes{full: sess, payload: payload, at: now}
}

func (p *melliumPeer) Server(now clock.Time, raw []byte) (int, error) {
	p.out = p.out[:0]
	pr, _, err := p.read(raw)
	if err != nil {
		return 0, err
	}
	if pr.Type != stanza.ProbePresence {
		return 0, nil
	}
	if !p.local(pr.To.String()) {
		return 0, fmt.Errorf("probe to %s: not local", pr.To)
	}
	p.answer(pr.From, pr.To, pr.ID)
	return len(p.out), nil
}

func (p *melliumPeer) answer(r, x jid.JID, id string) {
	xs := x.String()
	if x.Localpart() == "" {
		h := p.hosts[xs]
		out := stanza.Presence{From: x, To: r, ID: id}
		var payload xml.TokenReader
		if h == nil || !h.up {
			out.Type = stanza.UnavailablePresence
		}
		if h != nil {
			payload = delay.Delay{From: x, Time: h.since}.TokenReader()
		}
		p.emit(out.Wrap(payload))
		return
	}
	if !p.visible(xs, r.Bare().String()) {
		p.emit(stanza.Presence{From: x, To: r, Type: stanza.UnsubscribedPresence, ID: id}.Wrap(nil))
		return
	}
	u := p.users[xs]
	if u != nil && len(u.avail) > 0 {
		for _, res := range u.avail {
			payload := xmlstream.MultiReader(tokens(res.payload), delay.Delay{From: res.full, Time: res.at}.TokenReader())
			p.emit(stanza.Presence{From: res.full, To: r, ID: res.id}.Wrap(payload))
		}
		return
	}
	out := stanza.Presence{From: x, To: r, Type: stanza.UnavailablePresence, ID: id}
	if u == nil || u.last == nil {
		p.emit(out.Wrap(nil))
		return
	}
	p.emit(out.Wrap(xmlstream.MultiReader(tokens(u.last.payload), delay.Delay{From: u.last.full, Time: u.last.at}.TokenReader())))
}
