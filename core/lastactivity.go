package core

import (
	"bytes"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// XEP-0012 Last Activity, answered from the state the presence rules keep
// (RULES L1–L6), so that a probe reply and a query result never disagree.

// queryIn is a Last Activity query that passed the checks that need no
// machine state.
type queryIn struct {
	from stanza.JID // the requester: the session, or the server stanza's from
	to   stanza.JID // the queried JID, normalised
	id   []byte     // `id='…'` as written in the input
}

// idOf returns the query's id attribute as written, quotes included.
func idOf(iq *stanza.IQ) []byte { return iq.Raw[iq.ID.Start:iq.ID.End] }

// serverQuery reads and checks a server query's addresses (RULES L5): both
// are required. Like serverJIDs it reads no machine state.
func (r *jidReader) serverQuery(iq *stanza.IQ) (q queryIn, err error) {
	if err := iq.CheckLastActivity(); err != nil {
		return q, bad("server", err)
	}
	if iq.From == nil {
		return q, bad("server", ErrNoFrom)
	}
	if iq.To == nil {
		return q, bad("server", ErrNoTo)
	}
	if q.from, err = r.jid(iq.From); err != nil {
		return q, bad("server", err)
	}
	if q.to, err = r.jid(iq.To); err != nil {
		return q, bad("server", err)
	}
	q.id = idOf(iq)
	return q, nil
}

// clientQuery reads and checks a client query's addresses (RULES L4): the
// session is the requester whatever from says, and no to queries the
// session's own bare JID. The session itself is checked by the caller.
func (r *jidReader) clientQuery(session stanza.JID, iq *stanza.IQ) (q queryIn, err error) {
	if err := iq.CheckLastActivity(); err != nil {
		return q, bad("client", err)
	}
	if iq.From != nil {
		// Overwritten, but malformed input all the same (CHOICES 2).
		if _, err := r.jid(iq.From); err != nil {
			return q, bad("client", err)
		}
	}
	q.from, q.to = session, session.Bare()
	if iq.To != nil {
		if q.to, err = r.jid(iq.To); err != nil {
			return q, bad("client", err)
		}
	}
	q.id = idOf(iq)
	return q, nil
}

func (m *Machine) checkClientQuery(session stanza.JID, iq *stanza.IQ) (queryIn, error) {
	if err := m.checkSession("client", session); err != nil {
		return queryIn{}, err
	}
	q, err := m.jids.clientQuery(session, iq)
	if err != nil {
		return q, err
	}
	return q, m.checkQueryTarget("client", q.to)
}

// checkQueryTarget refuses a query to a JID with a resource that the
// machine would answer for (RULES L6: the host routes it to that resource;
// CHOICES 32 for a domain or component with a resource) and, from a server,
// a query to a JID the machine does not host (L5).
func (m *Machine) checkQueryTarget(event string, to stanza.JID) error {
	if !m.local(to) {
		if event == "server" {
			return bad(event, withDetail(ErrNotLocal, to.String()+" is neither at a served domain nor a hosted component"))
		}
		return nil
	}
	if !to.IsBare() {
		return bad(event, withDetail(ErrNotLocal, "a Last Activity query to the full JID "+to.String()+" is the host's to route to that resource (RFC 6121 §8.5.3)"))
	}
	return nil
}

// clientQuery answers or routes a checked client query (RULES L4). Like
// every query it changes nothing and uses no probe token (L3).
func (m *Machine) clientQuery(now clock.Time, q *queryIn) {
	m.idbuf = append(append(m.idbuf[:0], ' '), q.id...)
	if m.auth.Blocks(q.from.Bare(), q.to) { // C4's error, as an iq
		m.iqError(q.to, q.from, m.idbuf, "cancel", "not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><blocked xmlns='urn:xmpp:blocking:errors'")
		return
	}
	if !m.local(q.to) {
		m.begin(RoutedQuery, q.to.String())
		m.iqHead(q.from, q.to, "get", m.idbuf)
		m.buf = append(m.buf, "><query xmlns='jabber:iq:last'/></iq>"...)
		m.end()
		return
	}
	m.lastActivity(now, q.from, q.to, m.idbuf)
}

// iqHead appends `<iq from='…' to='…' type='…' id='…'`.
func (m *Machine) iqHead(from, to stanza.JID, typ string, id []byte) {
	m.buf = append(m.buf, "<iq from='"...)
	m.buf = appendJIDEscaped(m.buf, from)
	m.buf = append(m.buf, "' to='"...)
	m.buf = appendJIDEscaped(m.buf, to)
	m.buf = append(m.buf, "' type='"...)
	m.buf = append(m.buf, typ...)
	m.buf = append(m.buf, '\'')
	m.buf = append(m.buf, id...)
}

// iqError emits an iq error from q to r; cond is the inside of the
// condition element (its name, namespace and any further element, without
// the final "/>").
func (m *Machine) iqError(q, r stanza.JID, id []byte, typ, cond string) {
	m.begin(IQReply, r.String())
	m.iqHead(q, r, "error", id)
	m.buf = append(m.buf, "><error type='"...)
	m.buf = append(m.buf, typ...)
	m.buf = append(m.buf, "'><"...)
	m.buf = append(m.buf, cond...)
	m.buf = append(m.buf, "/></error></iq>"...)
	m.end()
}

// The stanza errors of L1 and L2.
const (
	condUnavailable = "service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'"
	condForbidden   = "forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'"
	condNotFound    = "item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'"
)

// iqResult emits a Last Activity result from q to r: seconds since since
// (whole seconds rounded down, never negative) and text, escaped.
func (m *Machine) iqResult(q, r stanza.JID, id []byte, now, since clock.Time, text []byte) {
	m.begin(IQReply, r.String())
	m.iqHead(q, r, "result", id)
	m.buf = append(m.buf, "><query xmlns='jabber:iq:last' seconds='"...)
	m.buf = appendSeconds(m.buf, now, since)
	if len(text) == 0 {
		m.buf = append(m.buf, "'/></iq>"...)
	} else {
		m.buf = append(m.buf, "'>"...)
		m.buf = appendText(m.buf, text)
		m.buf = append(m.buf, "</query></iq>"...)
	}
	m.end()
}

// appendSeconds appends the whole seconds from since to now, rounded down;
// 0 when now is not after since.
func appendSeconds(dst []byte, now, since clock.Time) []byte {
	var n uint64
	if now > since {
		n = uint64(now.Sub(since) / 1e9)
	}
	var digits [20]byte
	i := len(digits)
	for {
		i--
		digits[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, digits[i:]...)
}

// appendText appends character data escaped for element content; a
// carriage return, which a reader would turn into a line feed, is written
// as a reference so that it survives.
func appendText(dst, text []byte) []byte {
	for {
		i := bytes.IndexByte(text, '\r')
		if i < 0 {
			return stanza.AppendEscaped(dst, text)
		}
		dst = stanza.AppendEscaped(dst, text[:i])
		dst = append(dst, "&#13;"...)
		text = text[i+1:]
	}
}

// lastActivity answers a Last Activity query from r to the local bare JID
// x (RULES L1, L2). id is ` id='…'`. It never changes state (L3).
func (m *Machine) lastActivity(now clock.Time, r, x stanza.JID, id []byte) {
	if !x.HasLocal() { // L2: a served domain or a hosted component
		if h := m.hosted[x.Domain()]; h != nil && h.up {
			m.iqResult(x, r, id, now, h.since, nil)
		} else {
			m.iqError(x, r, id, "cancel", condUnavailable)
		}
		return
	}
	us := x.String()
	self, blocked, sub, hidden := m.userFacts(x, us, r)
	if m.probeAuth == nil && !blocked && (self || sub.Visible()) {
		hidden = m.auth.Hidden(x)
	}
	u := m.users[us]
	switch {
	case blocked:
		m.iqError(x, r, id, "cancel", condUnavailable)
	case !self && !sub.Visible(): // whether or not U was ever seen
		m.iqError(x, r, id, "auth", condForbidden)
	case hidden:
		m.iqError(x, r, id, "cancel", condUnavailable)
	case u != nil && len(u.avail) > 0:
		m.iqResult(x, r, id, now, now, nil)
	case u != nil && u.last.name != "":
		m.text = m.statusText(m.text[:0], &u.last.rec)
		m.iqResult(x, r, id, now, u.last.rec.at, m.text)
	default:
		m.iqError(x, r, id, "cancel", condNotFound)
	}
}

// statusText appends the character data of the first <status/> child of
// the kept presence rec (CHOICES 33), references decoded. The kept bytes
// passed the parser when they came in; they are read again with a parser of
// their own, rebuilt as a presence with the kept namespace declarations,
// so that a prefixed status resolves as it did then.
func (m *Machine) statusText(dst []byte, rec *record) []byte {
	content := rec.content()
	if bytes.Index(content, []byte("status")) < 0 {
		return dst // no status: no need to read anything
	}
	s := append(m.scratch[:0], "<presence"...)
	s = append(s, rec.attrs()...)
	s = append(s, '>')
	s = append(s, content...)
	s = append(s, "</presence>"...)
	m.scratch = s
	m.status.Limits = m.parser.Limits
	m.status.Limits.MaxBytes = max(m.status.Limits.MaxBytes, stanza.DefaultMaxBytes, len(s))
	el, err := m.status.Parse(s)
	if err != nil {
		return dst // kept under other limits (a restored snapshot): no text
	}
	for i := range el.Children {
		n := &el.Children[i]
		if !n.Text && string(n.Local) == "status" && stanza.ContentNamespace(n.Space) {
			return stanza.AppendCharData(dst, el.Raw[n.Start:n.End])
		}
	}
	return dst
}
