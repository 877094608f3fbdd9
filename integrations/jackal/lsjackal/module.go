// Package lsjackal runs lastseen inside the jackal XMPP server: a jackal
// module that feeds the machine from jackal's hooks, routes what it emits
// through jackal's router, and answers authorisation questions from
// jackal's roster and block list storage.
//
// The wiring follows core/doc.go # Usage step by step:
//
//   - step 1: the Engine is built by the caller (cmd/jackal-lastseen builds
//     a core.Sharded) with an Authorizer over jackal's storage;
//   - step 2: Start calls Up for every served domain and routes the result,
//     and Stop calls Down for each the same way;
//   - step 3: C2SStreamPresenceReceived feeds every client presence to
//     Client, after removing the to='own bare JID' jackal adds to
//     broadcasts (see clientStanza);
//   - step 4: S2SInStreamPresenceReceived feeds probes from other servers
//     to Server (jackal's s2s layer has verified the sender by then);
//   - step 5: C2SStreamDisconnected and C2SStreamTerminated call Close;
//   - step 6: every Output is parsed back into a jackal stanza and routed;
//   - step 7: a client probe the machine refuses gets a bad-request error;
//   - step 9: the module is jackal's IQ processor for jabber:iq:last
//     (ProcessIQ), passes a client's query to another server through
//     Client before jackal routes it (remoteQuery), and delivers iq
//     results and errors from other servers, which jackal itself drops
//     (onServerIQ).
//
// Probes are the machine's alone: its hooks run above jackal's roster
// module and stop it for every probe, and a probe to a full JID is kept
// from being delivered to the contact's session.
package lsjackal

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/jackal-xmpp/stravaganza"
	stanzaerror "github.com/jackal-xmpp/stravaganza/errors/stanza"
	"github.com/jackal-xmpp/stravaganza/jid"
	xmlparser "github.com/jackal-xmpp/stravaganza/parser"
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	"github.com/ortuman/jackal/pkg/hook"
	"github.com/ortuman/jackal/pkg/router"
)

// ModuleName is the name jackal's configuration uses for this module.
const ModuleName = "lastseen"

// Engine is what the module needs from a presence machine. *core.Sharded
// implements it; a durable machine (package store) or a WASM engine
// (bindings/go) can be put in its place by wrapping it in these five
// methods, each of which must be safe for concurrent use: jackal calls
// hooks from every connection's goroutine.
type Engine interface {
	Client(now clock.Time, session stanza.JID, raw []byte) ([]core.Output, error)
	Server(now clock.Time, raw []byte) ([]core.Output, error)
	Close(now clock.Time, session stanza.JID) ([]core.Output, error)
	Up(now clock.Time, domain stanza.JID) ([]core.Output, error)
	Down(now clock.Time, domain stanza.JID) ([]core.Output, error)
}

var _ Engine = (*core.Sharded)(nil)

// hookPriority puts the module's presence hooks above jackal's roster
// module (hook.DefaultPriority), so that returning hook.ErrStopped keeps
// the roster module from answering probes itself.
const hookPriority = hook.HighPriority

// Module is the jackal module. Create it with New and hand it to
// module.NewModules with jackal's other modules.
type Module struct {
	eng     Engine
	domains []string
	router  router.Router
	hk      *hook.Hooks
	logger  log.Logger
	clock   Clock
}

// Clock gives the machine's time: one reading that never goes backwards,
// mapped to UTC (core/doc.go # Usage step 8).
type Clock func() clock.Time

// MonotonicClock returns a Clock that reads the wall clock once and then
// advances with Go's monotonic clock, so a wall clock step never moves the
// machine's time backwards.
func MonotonicClock() Clock {
	start := time.Now()
	base := clock.FromStd(start)
	return func() clock.Time { return base.Add(time.Since(start)) }
}

// New returns a module that drives eng for the served domains, routing
// through rt and listening on hk. A nil clk means MonotonicClock.
func New(eng Engine, domains []string, rt router.Router, hk *hook.Hooks, clk Clock, logger log.Logger) *Module {
	if clk == nil {
		clk = MonotonicClock()
	}
	return &Module{eng: eng, domains: domains, router: rt, hk: hk, logger: logger, clock: clk}
}

// Name returns ModuleName.
func (m *Module) Name() string { return ModuleName }

// StreamFeature returns no stream feature.
func (m *Module) StreamFeature(context.Context, string) (stravaganza.Element, error) {
	return nil, nil
}

// ServerFeatures returns jabber:iq:last, which jackal's disco module
// lists for the served domains (XEP-0012 §6; XEP-0318 defines no feature).
func (m *Module) ServerFeatures(context.Context) ([]string, error) {
	return []string{NamespaceLast}, nil
}

// AccountFeatures returns jabber:iq:last, which jackal's disco module lists
// for every account's bare JID.
func (m *Module) AccountFeatures(context.Context) ([]string, error) {
	return []string{NamespaceLast}, nil
}

// Start registers the hooks and announces every served domain (Up).
func (m *Module) Start(ctx context.Context) error {
	m.hk.AddHook(hook.C2SStreamPresenceReceived, m.onClientPresence, hookPriority)
	m.hk.AddHook(hook.C2SStreamWillRouteElement, m.onWillRoute, hookPriority)
	m.hk.AddHook(hook.S2SInStreamPresenceReceived, m.onServerPresence, hookPriority)
	m.hk.AddHook(hook.S2SInStreamWillRouteElement, m.onWillRoute, hookPriority)
	m.hk.AddHook(hook.C2SStreamDisconnected, m.onSessionEnd, hookPriority)
	m.hk.AddHook(hook.C2SStreamTerminated, m.onSessionEnd, hookPriority)
	m.hk.AddHook(hook.S2SInStreamIQReceived, m.onServerIQ, hookPriority)
	if err := m.announce(ctx, m.eng.Up); err != nil {
		return err
	}
	level.Info(m.logger).Log("msg", "started lastseen module", "domains", len(m.domains))
	return nil
}

// Stop removes the hooks and takes every served domain down (Down),
// routing the announcements (XEP-0318 §3.2: a server going offline, by
// symmetry with Up at start). jackal stops its modules before its router
// and the engine after the modules (cmd/jackal-lastseen), so both are
// still usable here; the client listeners are already closed, so the
// announcements reach remote subscribers only.
func (m *Module) Stop(ctx context.Context) error {
	m.hk.RemoveHook(hook.C2SStreamPresenceReceived, m.onClientPresence)
	m.hk.RemoveHook(hook.C2SStreamWillRouteElement, m.onWillRoute)
	m.hk.RemoveHook(hook.S2SInStreamPresenceReceived, m.onServerPresence)
	m.hk.RemoveHook(hook.S2SInStreamWillRouteElement, m.onWillRoute)
	m.hk.RemoveHook(hook.C2SStreamDisconnected, m.onSessionEnd)
	m.hk.RemoveHook(hook.C2SStreamTerminated, m.onSessionEnd)
	m.hk.RemoveHook(hook.S2SInStreamIQReceived, m.onServerIQ)
	return m.announce(ctx, m.eng.Down)
}

// announce calls up or down (the engine's Up or Down) for every served
// domain and routes what each returns.
func (m *Module) announce(ctx context.Context, call func(clock.Time, stanza.JID) ([]core.Output, error)) error {
	for _, d := range m.domains {
		dj, err := stanza.Parse(d)
		if err != nil {
			return err
		}
		outs, err := call(m.clock(), dj)
		if err != nil {
			return err
		}
		m.route(ctx, outs)
	}
	return nil
}

func isProbe(el stravaganza.Element) bool {
	pr, ok := el.(*stravaganza.Presence)
	return ok && pr.Type() == stravaganza.ProbeType
}

func (m *Module) onClientPresence(ec *hook.ExecutionContext) error {
	inf, ok := ec.Info.(*hook.C2SStreamInfo)
	if !ok || inf.JID == nil {
		return nil
	}
	pr, ok := inf.Element.(*stravaganza.Presence)
	if !ok {
		return nil
	}
	session, err := stanza.Parse(inf.JID.String())
	if err != nil {
		return nil // jackal bound a JID our parser refuses: nothing to track
	}
	outs, err := m.eng.Client(m.clock(), session, clientStanza(pr, inf.JID))
	if err != nil {
		level.Debug(m.logger).Log("msg", "lastseen refused a client presence", "jid", inf.JID.String(), "err", err)
		if pr.Type() == stravaganza.ProbeType {
			m.refuse(ec.Context, pr)
			return hook.ErrStopped
		}
		return nil
	}
	m.route(ec.Context, outs)
	if pr.Type() == stravaganza.ProbeType {
		return hook.ErrStopped
	}
	return nil
}

// clientStanza serialises a client's presence for the machine. jackal
// fills in to='the sender's own bare JID' on a broadcast before hooks see
// it, so the machine would take the broadcast for directed presence. RFC
// 6121 §4.2.2 and §4.4.2 define broadcast presence as presence without a
// to, and §4.6 directed presence as presence to another entity: available
// or unavailable presence to one's own bare JID is a broadcast, so the glue
// removes that to and the core keeps the RFC's rule unchanged. Probes and
// subscription requests keep their to.
func clientStanza(pr *stravaganza.Presence, session *jid.JID) []byte {
	var el stravaganza.Element = pr
	to := pr.ToJID()
	if to != nil && (pr.IsAvailable() || pr.IsUnavailable()) && to.String() == session.ToBareJID().String() {
		el = stravaganza.NewBuilderFromElement(pr).WithoutAttribute(stravaganza.To).Build()
	}
	var b bytes.Buffer
	_ = el.ToXML(&b, true) // a bytes.Buffer does not fail
	return b.Bytes()
}

// onWillRoute keeps jackal from delivering a probe to a full JID to the
// contact's session once the machine has answered it, and passes a
// client's Last Activity query to another server through the machine
// (remoteQuery).
func (m *Module) onWillRoute(ec *hook.ExecutionContext) error {
	var el stravaganza.Element
	switch inf := ec.Info.(type) {
	case *hook.C2SStreamInfo:
		el = inf.Element
		if iq, ok := el.(*stravaganza.IQ); ok && inf.JID != nil {
			return m.remoteQuery(ec.Context, inf.JID, iq)
		}
	case *hook.S2SStreamInfo:
		el = inf.Element
	}
	if isProbe(el) {
		return hook.ErrStopped
	}
	return nil
}

func (m *Module) onServerPresence(ec *hook.ExecutionContext) error {
	inf, ok := ec.Info.(*hook.S2SStreamInfo)
	if !ok || !isProbe(inf.Element) {
		return nil
	}
	var b bytes.Buffer
	_ = inf.Element.ToXML(&b, true)
	outs, err := m.eng.Server(m.clock(), b.Bytes())
	if err != nil {
		// RFC 6121 §4.3.2: a server ignores a probe it cannot answer.
		level.Debug(m.logger).Log("msg", "lastseen refused a server probe", "sender", inf.Sender, "err", err)
		return hook.ErrStopped
	}
	m.route(ec.Context, outs)
	return hook.ErrStopped
}

// onServerIQ delivers an iq result or error that another server sends to
// a local user. jackal v0.64.0 drops every such iq ("silently ignore" in
// its s2s stream), so without this the answer to a Last Activity query a
// local client sent to a remote contact (RULES L4's RoutedQuery) would
// never arrive. RFC 6120 §10.5.3 wants it delivered to the resource like
// any stanza to a full JID.
func (m *Module) onServerIQ(ec *hook.ExecutionContext) error {
	inf, ok := ec.Info.(*hook.S2SStreamInfo)
	if !ok {
		return nil
	}
	iq, ok := inf.Element.(*stravaganza.IQ)
	if !ok || !(iq.IsResult() || iq.IsError()) || iq.ToJID() == nil || !m.serves(iq.ToJID().Domain()) {
		return nil
	}
	if _, err := m.router.Route(ec.Context, iq); err != nil && !errors.Is(err, router.ErrUserNotAvailable) {
		level.Debug(m.logger).Log("msg", "lastseen could not deliver an iq from a server", "to", iq.ToJID().String(), "err", err)
	}
	return hook.ErrStopped
}

func (m *Module) onSessionEnd(ec *hook.ExecutionContext) error {
	inf, ok := ec.Info.(*hook.C2SStreamInfo)
	if !ok || inf.JID == nil || inf.JID.Resource() == "" {
		return nil // the stream ended before a resource was bound
	}
	session, err := stanza.Parse(inf.JID.String())
	if err != nil {
		return nil
	}
	outs, err := m.eng.Close(m.clock(), session)
	if err != nil {
		level.Debug(m.logger).Log("msg", "lastseen refused a session end", "jid", inf.JID.String(), "err", err)
		return nil
	}
	m.route(ec.Context, outs)
	return nil
}

// refuse answers a client probe or a query the machine refused with
// bad-request (core/doc.go # Usage step 7).
func (m *Module) refuse(ctx context.Context, st stravaganza.Stanza) {
	resp, err := stanzaerror.E(stanzaerror.BadRequest, st).Stanza(false)
	if err != nil {
		return
	}
	if _, err := m.router.Route(ctx, resp); err != nil {
		level.Debug(m.logger).Log("msg", "lastseen could not route an error", "err", err)
	}
}

// route sends every output through jackal's router. Outputs carry no
// xmlns; jackal writes the namespace of whatever stream it delivers on.
func (m *Module) route(ctx context.Context, outs []core.Output) {
	if ctx == nil {
		ctx = context.Background()
	}
	for _, o := range outs {
		stz, err := parseStanza(o.Stanza)
		if err != nil {
			level.Error(m.logger).Log("msg", "lastseen emitted a stanza jackal cannot parse", "kind", o.Kind.String(), "err", err)
			continue
		}
		if _, err := m.router.Route(ctx, stz); err != nil && !errors.Is(err, router.ErrUserNotAvailable) {
			level.Debug(m.logger).Log("msg", "lastseen output not routed", "kind", o.Kind.String(), "to", string(o.To), "err", err)
		}
	}
}

func parseStanza(raw []byte) (stravaganza.Stanza, error) {
	el, err := xmlparser.New(bytes.NewReader(raw), xmlparser.DefaultMode, 0).Parse()
	if err != nil {
		return nil, err
	}
	return stravaganza.NewBuilderFromElement(el).BuildStanza()
}
