package lsjackal

import (
	"bytes"
	"context"

	"github.com/go-kit/log/level"
	"github.com/jackal-xmpp/stravaganza"
	"github.com/jackal-xmpp/stravaganza/jid"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"github.com/ortuman/jackal/pkg/hook"
)

// NamespaceLast is XEP-0012 Last Activity's namespace.
const NamespaceLast = "jabber:iq:last"

// MatchesNamespace claims XEP-0012 Last Activity queries, to a domain or to
// a user's bare JID: jackal only hands a module the iqs addressed to one of
// its hosts or to a bare JID on one, and routes a query to a full JID to
// that resource itself (RFC 6121 §8.5.3), as core/doc.go # Usage step 9
// asks.
func (m *Module) MatchesNamespace(namespace string, _ bool) bool {
	return namespace == NamespaceLast
}

// ProcessIQ answers a Last Activity query from the machine's state, so that
// a probe reply and a query result never disagree. A query from a session
// of a served domain goes to Client with the session's full JID (jackal
// has set from to it); anything else came from another server, whose from
// jackal's s2s layer has verified, and goes to Server. A query the machine
// refuses (a set, a malformed query) gets a bad-request error.
func (m *Module) ProcessIQ(ctx context.Context, iq *stravaganza.IQ) error {
	var b bytes.Buffer
	_ = iq.ToXML(&b, true) // a bytes.Buffer does not fail
	now := m.clock()
	var (
		outs    []core.Output
		err     error
		session stanza.JID
	)
	from := iq.FromJID()
	local := from != nil && from.Node() != "" && from.Resource() != "" && m.serves(from.Domain())
	if local {
		session, err = stanza.Parse(from.String())
	}
	if err == nil {
		if local {
			outs, err = m.eng.Client(now, session, b.Bytes())
		} else {
			outs, err = m.eng.Server(now, b.Bytes())
		}
	}
	if err != nil {
		level.Debug(m.logger).Log("msg", "lastseen refused a Last Activity query", "from", iq.Attribute(stravaganza.From), "err", err)
		m.refuse(ctx, iq)
		return nil
	}
	m.route(ctx, outs)
	return nil
}

// remoteQuery passes a client's Last Activity query to a JID at another
// server through Client, routes what the machine emits and stops jackal
// from routing the query itself. jackal hands a module only the iqs to one
// of its hosts or to a bare JID on one (ProcessIQ); it routes any other
// iq directly, which would skip RULES L4's blocked-target check: if the
// session's user blocked the target, the machine routes nothing and
// answers with an error instead. Queries to a full JID at a served domain
// stay jackal's to route to that resource (L6), as does every other iq.
func (m *Module) remoteQuery(ctx context.Context, session *jid.JID, iq *stravaganza.IQ) error {
	to := iq.ToJID()
	if !iq.IsGet() || to == nil || m.serves(to.Domain()) || iq.ChildNamespace("query", NamespaceLast) == nil {
		return nil
	}
	sess, err := stanza.Parse(session.String())
	if err != nil {
		return nil // jackal bound a JID our parser refuses: jackal routes it
	}
	var b bytes.Buffer
	_ = iq.ToXML(&b, true) // a bytes.Buffer does not fail
	outs, err := m.eng.Client(m.clock(), sess, b.Bytes())
	if err != nil {
		level.Debug(m.logger).Log("msg", "lastseen refused a Last Activity query", "to", to.String(), "err", err)
		m.refuse(ctx, iq)
		return hook.ErrStopped
	}
	m.route(ctx, outs)
	return hook.ErrStopped
}

// serves reports whether domain is one of the module's domains.
func (m *Module) serves(domain string) bool {
	for _, d := range m.domains {
		if d == domain {
			return true
		}
	}
	return false
}
