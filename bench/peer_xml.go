package main

// Peer baseline 2: encoding/xml with structs, the standard library way.
// Unmarshal each stanza into a Presence struct, store the struct, and
// answer a probe by copying it, setting the addresses and a Delay field,
// and marshalling it.

import (
	"encoding/xml"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
)

type xmlDelay struct {
	XMLName xml.Name `xml:"urn:xmpp:delay delay"`
	From    string   `xml:"from,attr,omitempty"`
	Stamp   string   `xml:"stamp,attr"`
}

// xmlAny keeps a child the struct has no field for (caps, nick, …).
type xmlAny struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   string     `xml:",innerxml"`
}

type xmlPresence struct {
	XMLName  xml.Name  `xml:"presence"`
	From     string    `xml:"from,attr,omitempty"`
	To       string    `xml:"to,attr,omitempty"`
	Type     string    `xml:"type,attr,omitempty"`
	ID       string    `xml:"id,attr,omitempty"`
	Lang     string    `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Show     string    `xml:"show,omitempty"`
	Status   string    `xml:"status,omitempty"`
	Priority string    `xml:"priority,omitempty"`
	Any      []xmlAny  `xml:",any"`
	Delay    *xmlDelay `xml:"urn:xmpp:delay delay"`
}

type xmlRes struct {
	name string
	p    xmlPresence
	at   time.Time
}

type xmlUser struct {
	avail []*xmlRes
	last  *xmlRes
}

type xmlPeer struct {
	peerBase
	users map[string]*xmlUser
}

func newXMLPeer(served []string) (Impl, error) {
	return &xmlPeer{peerBase: newPeerBase(served), users: map[string]*xmlUser{}}, nil
}

func (p *xmlPeer) parse(raw []byte) (*xmlPresence, error) {
	var pr xmlPresence
	if err := xml.Unmarshal(raw, &pr); err != nil {
		return nil, err
	}
	// encoding/xml hands namespace declarations to ",any,attr" and would
	// then write xmlns twice; drop them, the element name carries the
	// namespace.
	for i := range pr.Any {
		a := pr.Any[i].Attrs[:0]
		for _, at := range pr.Any[i].Attrs {
			if at.Name.Local != "xmlns" && at.Name.Space != "xmlns" {
				a = append(a, at)
			}
		}
		pr.Any[i].Attrs = a
	}
	return &pr, nil
}

func (p *xmlPeer) emit(pr *xmlPresence) {
	b, err := xml.Marshal(pr)
	if err != nil {
		panic(err)
	}
	p.out = append(p.out, b)
}

func (p *xmlPeer) Client(now clock.Time, s int, raw []byte) (int, error) {
	p.out = p.out[:0]
	pr, err := p.parse(raw)
	if err != nil {
		return 0, err
	}
	sess := p.sessions[s]
	switch {
	case pr.Type == "probe":
		target := sess.bare
		if pr.To != "" {
			target, _ = normJID(pr.To)
		}
		if !p.take(now.Std(), sess.full) {
			return 0, fmt.Errorf("rate limited")
		}
		if p.local(target) {
			p.answer(sess.full, target, pr.ID)
			break
		}
		p.emit(&xmlPresence{From: sess.full, To: target, Type: "probe", ID: pr.ID})
	case pr.To != "":
	case pr.Type == "":
		p.track(now.Std(), sess, pr)
	case pr.Type == "unavailable":
		p.untrack(now.Std(), sess, pr)
	}
	return len(p.out), nil
}

func (p *xmlPeer) user(bare string) *xmlUser {
	u := p.users[bare]
	if u == nil {
		u = &xmlUser{}
		p.users[bare] = u
	}
	return u
}

func samePresence(a, b *xmlPresence) bool {
	x, y := *a, *b
	x.ID, y.ID = "", ""
	return reflect.DeepEqual(x, y)
}

func (p *xmlPeer) track(now time.Time, sess peerSession, pr *xmlPresence) {
	pr.From, pr.To, pr.Delay = "", "", nil
	u := p.user(sess.bare)
	for _, r := range u.avail {
		if r.name == sess.res {
			if !samePresence(&r.p, pr) {
				r.at = now
			}
			r.p = *pr
			return
		}
	}
	u.avail = append(u.avail, &xmlRes{name: sess.res, p: *pr, at: now})
}

func (p *xmlPeer) untrack(now time.Time, sess peerSession, pr *xmlPresence) {
	pr.From, pr.To, pr.ID, pr.Delay = "", "", "", nil
	u := p.user(sess.bare)
	for i, r := range u.avail {
		if r.name == sess.res {
			u.avail = append(u.avail[:i], u.avail[i+1:]...)
			break
		}
	}
	u.last = &xmlRes{name: sess.res, p: *pr, at: now}
}

func (p *xmlPeer) Server(now clock.Time, raw []byte) (int, error) {
	p.out = p.out[:0]
	pr, err := p.parse(raw)
	if err != nil {
		return 0, err
	}
	if pr.Type != "probe" {
		return 0, nil
	}
	from, _ := normJID(pr.From)
	to, _ := normJID(pr.To)
	if !p.local(to) {
		return 0, fmt.Errorf("probe to %s: not local", to)
	}
	p.answer(from, to, pr.ID)
	return len(p.out), nil
}

func (p *xmlPeer) answer(r, x, id string) {
	_, rb := normJID(r)
	if !strings.Contains(x, "@") {
		out := xmlPresence{From: x, To: r, ID: id}
		h := p.hosts[x]
		if h == nil || !h.up {
			out.Type = "unavailable"
		}
		if h != nil {
			out.Delay = &xmlDelay{From: x, Stamp: stamp(h.since)}
		}
		p.emit(&out)
		return
	}
	if !p.visible(x, rb) {
		p.emit(&xmlPresence{From: x, To: r, Type: "unsubscribed", ID: id})
		return
	}
	u := p.users[x]
	if u != nil && len(u.avail) > 0 {
		for _, res := range u.avail {
			out := res.p
			out.From, out.To = x+"/"+res.name, r
			out.Delay = &xmlDelay{From: out.From, Stamp: stamp(res.at)}
			p.emit(&out)
		}
		return
	}
	var out xmlPresence
	if u != nil && u.last != nil {
		out = u.last.p
		out.Delay = &xmlDelay{From: x + "/" + u.last.name, Stamp: stamp(u.last.at)}
	}
	out.From, out.To, out.Type, out.ID = x, r, "unavailable", id
	p.emit(&out)
}
