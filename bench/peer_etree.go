package main

// Peer baseline 1: github.com/beevik/etree, the DOM-style way. Parse each
// stanza into a tree, store the tree, and answer a probe by copying the
// stored tree, setting the addresses and appending a <delay/>.

import (
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/lastseen-xmpp/lastseen/clock"
)

type etreeRes struct {
	name string
	el   *etree.Element
	key  string // the stanza serialised without its id, for T2
	at   time.Time
}

type etreeUser struct {
	avail []*etreeRes
	last  *etreeRes
}

type etreePeer struct {
	peerBase
	users map[string]*etreeUser
}

func newEtreePeer(served []string) (Impl, error) {
	return &etreePeer{peerBase: newPeerBase(served), users: map[string]*etreeUser{}}, nil
}

func (p *etreePeer) parse(raw []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, err
	}
	el := doc.Root()
	if el == nil || el.Tag != "presence" {
		return nil, errNotPresence
	}
	return el, nil
}

func (p *etreePeer) emit(el *etree.Element) {
	doc := etree.NewDocument()
	doc.WriteSettings.AttrSingleQuote = true
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		panic(err)
	}
	p.out = append(p.out, b)
}

func setOrRemove(el *etree.Element, key, val string) {
	if val == "" {
		el.RemoveAttr(key)
		return
	}
	el.CreateAttr(key, val)
}

func addDelay(el *etree.Element, from string, at time.Time) {
	d := el.CreateElement("delay")
	d.CreateAttr("xmlns", nsDelay)
	d.CreateAttr("from", from)
	d.CreateAttr("stamp", stamp(at))
}

func (p *etreePeer) Client(now clock.Time, s int, raw []byte) (int, error) {
	p.out = p.out[:0]
	el, err := p.parse(raw)
	if err != nil {
		return 0, err
	}
	sess := p.sessions[s]
	typ := el.SelectAttrValue("type", "")
	to := el.SelectAttrValue("to", "")
	switch {
	case typ == "probe":
		target := sess.bare
		if to != "" {
			target, _ = normJID(to)
		}
		id := el.SelectAttrValue("id", "")
		if !p.take(now.Std(), sess.full) {
			return 0, fmt.Errorf("rate limited")
		}
		if p.local(target) {
			p.answer(sess.full, target, id)
			break
		}
		out := etree.NewElement("presence")
		out.CreateAttr("from", sess.full)
		out.CreateAttr("to", target)
		out.CreateAttr("type", "probe")
		setOrRemove(out, "id", id)
		p.emit(out)
	case to != "":
	case typ == "":
		p.track(now.Std(), sess, el)
	case typ == "unavailable":
		p.untrack(now.Std(), sess, el)
	}
	return len(p.out), nil
}

// keep strips what a kept stanza must not carry: addresses, type and any
// delay the client put in.
func keep(el *etree.Element) {
	el.RemoveAttr("from")
	el.RemoveAttr("to")
	el.RemoveAttr("type")
	for _, c := range el.ChildElements() {
		if c.Tag == "delay" && c.NamespaceURI() == nsDelay {
			el.RemoveChild(c)
		}
	}
}

func serialiseWithoutID(el *etree.Element) string {
	c := el.Copy()
	c.RemoveAttr("id")
	doc := etree.NewDocumentWithRoot(c)
	s, _ := doc.WriteToString()
	return s
}

func (p *etreePeer) user(bare string) *etreeUser {
	u := p.users[bare]
	if u == nil {
		u = &etreeUser{}
		p.users[bare] = u
	}
	return u
}

func (p *etreePeer) track(now time.Time, sess peerSession, el *etree.Element) {
	keep(el)
	u := p.user(sess.bare)
	key := serialiseWithoutID(el)
	for _, r := range u.avail {
		if r.name == sess.res {
			if r.key != key {
				r.at = now
			}
			r.el, r.key = el, key
			return
		}
	}
	u.avail = append(u.avail, &etreeRes{name: sess.res, el: el, key: key, at: now})
}

func (p *etreePeer) untrack(now time.Time, sess peerSession, el *etree.Element) {
	keep(el)
	el.RemoveAttr("id")
	u := p.user(sess.bare)
	for i, r := range u.avail {
		if r.name == sess.res {
			u.avail = append(u.avail[:i], u.avail[i+1:]...)
			break
		}
	}
	u.last = &etreeRes{name: sess.res, el: el, at: now}
}

func (p *etreePeer) Server(now clock.Time, raw []byte) (int, error) {
	p.out = p.out[:0]
	el, err := p.parse(raw)
	if err != nil {
		return 0, err
	}
	if el.SelectAttrValue("type", "") != "probe" {
		return 0, nil
	}
	from, _ := normJID(el.SelectAttrValue("from", ""))
	to, _ := normJID(el.SelectAttrValue("to", ""))
	if !p.local(to) {
		return 0, fmt.Errorf("probe to %s: not local", to)
	}
	p.answer(from, to, el.SelectAttrValue("id", ""))
	return len(p.out), nil
}

// answer replies to a probe from r to the bare JID x.
func (p *etreePeer) answer(r, x, id string) {
	_, rb := normJID(r)
	if !strings.Contains(x, "@") {
		h := p.hosts[x]
		out := etree.NewElement("presence")
		out.CreateAttr("from", x)
		out.CreateAttr("to", r)
		if h == nil || !h.up {
			out.CreateAttr("type", "unavailable")
		}
		setOrRemove(out, "id", id)
		if h != nil {
			addDelay(out, x, h.since)
		}
		p.emit(out)
		return
	}
	if !p.visible(x, rb) {
		out := etree.NewElement("presence")
		out.CreateAttr("from", x)
		out.CreateAttr("to", r)
		out.CreateAttr("type", "unsubscribed")
		setOrRemove(out, "id", id)
		p.emit(out)
		return
	}
	u := p.users[x]
	if u != nil && len(u.avail) > 0 {
		for _, res := range u.avail {
			out := res.el.Copy()
			full := x + "/" + res.name
			out.CreateAttr("from", full)
			out.CreateAttr("to", r)
			addDelay(out, full, res.at)
			p.emit(out)
		}
		return
	}
	var out *etree.Element
	if u != nil && u.last != nil {
		out = u.last.el.Copy()
	} else {
		out = etree.NewElement("presence")
	}
	out.CreateAttr("from", x)
	out.CreateAttr("to", r)
	out.CreateAttr("type", "unavailable")
	setOrRemove(out, "id", id)
	if u != nil && u.last != nil {
		addDelay(out, x+"/"+u.last.name, u.last.at)
	}
	p.emit(out)
}
