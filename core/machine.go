package core

import (
	"bytes"
	"slices"
	"strings"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Config sets up a Machine.
type Config struct {
	// Served lists the domains whose users this machine tracks and answers
	// for. At least one is required.
	Served []string
	// Auth answers roster, blocking and opt-out questions. Nil means a new
	// MemoryAuth. Up and Down need it to be a SubscriberLister too.
	Auth Authorizer
	// ProbeLimit limits client-initiated probes per session (RULES C3).
	// The zero value means DefaultRateLimit.
	ProbeLimit RateLimit
	// Limits bounds each stanza (size, depth, attributes); zero fields take
	// the stanza package defaults (64 KiB, depth 32, 64 attributes).
	Limits stanza.Limits
	// MaxEntities caps the users and hosted domains tracked in all. When the
	// cap is reached, input that would add one is refused with
	// ErrTooManyEntities; nothing is ever evicted. Zero means no cap.
	MaxEntities int
	// MaxResources caps a user's available resources; a further one is
	// refused with ErrTooManyResources. Zero means DefaultMaxResources.
	MaxResources int
	// Journal makes every call record its durable changes, for hosts that
	// persist incrementally: see Records.
	Journal bool
}

// DefaultMaxResources is the default cap on one user's available resources.
const DefaultMaxResources = 64

// Kind says what an Output is, so the host knows how to route it. Every
// Output goes to its To address, written into the stream toward it; the
// kind says which stanza it is and on whose behalf it travels:
//
//	kind         stanza      from             host's job
//	Reply        presence    the local JID    deliver to To (local session or remote server)
//	RoutedProbe  presence    the session      route to To like any outbound stanza
//	ErrorReply   presence    the probed JID   deliver to the local session To
//	IQReply      iq          the queried JID  deliver to To (local session or remote server)
//	RoutedQuery  iq          the session      route to To like any outbound iq
//
// Kinds 1–3 carry <presence/>, kinds 4 and 5 <iq/>; their numbers are part
// of the WASM ABI and do not change.
type Kind uint8

const (
	// Reply answers a probe, or announces a server or component that
	// came up or went down (RULES S3): deliver it to To (local session or
	// remote server).
	Reply Kind = iota + 1
	// RoutedProbe is a client's probe to a JID this machine does not host,
	// with from set to the session's full JID (RULES C1): route it like any
	// outbound stanza.
	RoutedProbe
	// ErrorReply is a presence error for the session that sent a client
	// probe (RULES C3, C4).
	ErrorReply
	// IQReply answers a XEP-0012 Last Activity query with an iq result or
	// error (RULES L1, L2, L4): deliver it to To, a local session or a
	// remote server, as any iq response.
	IQReply
	// RoutedQuery is a client's Last Activity query to a JID this machine
	// does not host, with from set to the session's full JID (RULES L4):
	// route it like any outbound iq; its response comes back addressed to
	// the session.
	RoutedQuery
)

// String names k.
func (k Kind) String() string {
	switch k {
	case Reply:
		return "reply"
	case RoutedProbe:
		return "probe"
	case ErrorReply:
		return "error"
	case IQReply:
		return "iq-reply"
	case RoutedQuery:
		return "query"
	}
	return "invalid"
}

// Output is one stanza the machine emits. The slices of a Machine's
// outputs point into the machine's own buffer and stay valid only until the
// next call on the Machine, which overwrites them: a host that queues
// outputs, or sends them after calling again, keeps CloneOutputs of them.
// Sharded, Outputs aside, and the WASM hosts return copies the caller owns.
type Output struct {
	Kind   Kind
	To     []byte // the normalised JID the stanza is addressed to
	Stanza []byte // the complete stanza, without a namespace declaration
}

// CloneOutputs returns a copy of outs that the caller owns: its To and
// Stanza slices no longer alias the machine's buffer, so it stays valid
// across later calls. It makes two allocations whatever the number of
// outputs, and returns nil for no outputs.
func CloneOutputs(outs []Output) []Output {
	if len(outs) == 0 {
		return nil
	}
	n := 0
	for _, o := range outs {
		n += len(o.To) + len(o.Stanza)
	}
	buf := make([]byte, 0, n)
	cp := make([]Output, len(outs))
	for i, o := range outs {
		// Full slice expressions, so that appending to one copy cannot
		// write into the next.
		at := len(buf)
		buf = append(buf, o.To...)
		cp[i].To = buf[at:len(buf):len(buf)]
		at = len(buf)
		buf = append(buf, o.Stanza...)
		cp[i].Stanza = buf[at:len(buf):len(buf)]
		cp[i].Kind = o.Kind
	}
	return cp
}

// Machine is the lastseen presence state machine: events in, stanzas out.
// It reads no clock, starts no goroutine and does no I/O; every method takes
// the current time. It is not safe for concurrent use: see Sharded.
//
// On refused input a method returns an error matching ErrBadInput, emits
// nothing and leaves the state exactly as it was.
type Machine struct {
	served       map[string]struct{}
	auth         Authorizer
	probeAuth    ProbeAuthorizer // auth, when it implements ProbeAuthorizer
	limit        RateLimit
	maxEntities  int
	maxResources int

	users   map[string]*user   // bare JID → what is tracked
	hosted  map[string]*host   // domain JID → uptime (RULES S1–S3)
	buckets map[string]*bucket // session full JID → probe token bucket
	parser  stanza.Parser
	pres    stanza.Presence
	buf     []byte   // backing store of the outputs of the current call
	recs    []outRec // outputs of the current call, as offsets into buf
	outs    []Output
	jids    jidReader
	scratch []byte // kept-stanza staging
	idbuf   []byte // the probe's id attribute while answering
	full    []byte // a full JID being written into a reply

	// Last Activity (lastactivity.go).
	iq     stanza.IQ
	status stanza.Parser // re-reads a kept presence for its status (L1)
	text   []byte        // the status text being written

	journal    bool
	lastChange clock.Time // time of the last durable change
	recBuf     []byte     // journal records of the current call
	recOffs    []int      // end of each record in recBuf
	records    [][]byte
}

type user struct {
	avail []resource // available resources, in the order they came online
	last  resource   // last unavailable presence; last.name == "" when none
}

type resource struct {
	name string // resourcepart
	rec  record
}

// record is a kept presence: blob holds the id attribute (idLen bytes), the
// kept root attributes (attrLen bytes), then the content, as one slice to
// keep per-user overhead low.
type record struct {
	at      clock.Time
	blob    []byte
	idLen   int32
	attrLen int32
}

func (r *record) id() []byte      { return r.blob[:r.idLen] }
func (r *record) attrs() []byte   { return r.blob[r.idLen : r.idLen+r.attrLen] }
func (r *record) content() []byte { return r.blob[r.idLen+r.attrLen:] }

type host struct {
	up    bool
	since clock.Time
}

type outRec struct {
	kind           Kind
	to, start, end int
}

// New returns a Machine for cfg.
func New(cfg Config) (*Machine, error) {
	if len(cfg.Served) == 0 {
		return nil, withDetail(ErrConfig, "Config.Served needs at least one domain")
	}
	m := &Machine{
		served:       make(map[string]struct{}, len(cfg.Served)),
		auth:         cfg.Auth,
		limit:        cfg.ProbeLimit,
		maxEntities:  cfg.MaxEntities,
		maxResources: cfg.MaxResources,
		journal:      cfg.Journal,
		users:        make(map[string]*user),
		hosted:       make(map[string]*host),
		buckets:      make(map[string]*bucket),
	}
	m.parser.Limits = cfg.Limits
	for _, d := range cfg.Served {
		j, err := stanza.Parse(d)
		if err != nil || j.HasLocal() || !j.IsBare() {
			return nil, withDetail(ErrConfig, "served domain "+d+" is not a domain JID")
		}
		m.served[j.String()] = struct{}{}
	}
	if m.auth == nil {
		m.auth = NewMemoryAuth()
	}
	m.probeAuth, _ = m.auth.(ProbeAuthorizer)
	if m.limit == (RateLimit{}) {
		m.limit = DefaultRateLimit
	}
	if err := m.limit.check(); err != nil {
		return nil, err
	}
	if m.maxResources <= 0 {
		m.maxResources = DefaultMaxResources
	}
	if m.maxEntities < 0 {
		return nil, withDetail(ErrConfig, "MaxEntities must not be negative")
	}
	return m, nil
}

// Auth returns the machine's Authorizer.
func (m *Machine) Auth() Authorizer { return m.auth }

// Serves reports whether domain is one of the machine's served domains.
func (m *Machine) Serves(domain string) bool { _, ok := m.served[domain]; return ok }

func (m *Machine) reset() {
	m.buf = m.buf[:0]
	m.recs = m.recs[:0]
	m.recBuf = m.recBuf[:0]
	m.recOffs = m.recOffs[:0]
}

// finish turns the recorded offsets into Outputs once buf has stopped
// growing.
func (m *Machine) finish() []Output {
	if len(m.recs) == 0 {
		return nil
	}
	m.outs = m.outs[:0]
	for _, r := range m.recs {
		m.outs = append(m.outs, Output{Kind: r.kind, To: m.buf[r.to:r.start:r.start], Stanza: m.buf[r.start:r.end:r.end]})
	}
	return m.outs
}

func (m *Machine) begin(kind Kind, to string) {
	r := outRec{kind: kind, to: len(m.buf)}
	m.buf = append(m.buf, to...)
	r.start = len(m.buf)
	m.recs = append(m.recs, r)
}

func (m *Machine) end() { m.recs[len(m.recs)-1].end = len(m.buf) }

// head appends `<presence from='…' to='…'[ type='…']`.
func (m *Machine) head(from, to, typ string) {
	m.buf = append(m.buf, "<presence from='"...)
	m.buf = stanza.AppendEscaped(m.buf, from)
	m.buf = append(m.buf, "' to='"...)
	m.buf = stanza.AppendEscaped(m.buf, to)
	m.buf = append(m.buf, '\'')
	if typ != "" { // one of the RFC 6121 type names: nothing to escape
		m.buf = append(m.buf, " type='"...)
		m.buf = append(m.buf, typ...)
		m.buf = append(m.buf, '\'')
	}
}

// jid reads a JID attribute.
func (m *Machine) jid(a *stanza.Attr) (stanza.JID, error) { return m.jids.jid(a) }

// Client handles a stanza sent by the local, authenticated session whose
// full JID is session. Its from attribute is not trusted: the machine uses
// session. It tracks broadcasts (RULES T1–T3), answers or routes probes
// (C1–C4) and XEP-0012 Last Activity queries (L1–L6), and ignores other
// presence (T4, T5).
func (m *Machine) Client(now clock.Time, session stanza.JID, raw []byte) ([]Output, error) {
	m.reset()
	isIQ, err := m.parser.ParseStanza(raw, &m.pres, &m.iq)
	if err != nil {
		return nil, bad("client", err)
	}
	if isIQ {
		q, err := m.checkClientQuery(session, &m.iq)
		if err != nil {
			return nil, err
		}
		m.clientQuery(now, &q)
		return m.finish(), nil
	}
	c, err := m.checkClient(session, &m.pres)
	if err != nil {
		return nil, err
	}
	if err := m.client(now, &c, true); err != nil {
		return nil, err
	}
	return m.finish(), nil
}

// clientIn is a client stanza that passed every check.
type clientIn struct {
	session stanza.JID
	p       *stanza.Presence
	to      stanza.JID // zero when absent
	pending pendingProbe
}

// pendingProbe is a client probe that passed C4 and C3 and is to be
// answered locally.
type pendingProbe struct {
	set    bool
	from   stanza.JID
	target stanza.JID
	id     []byte // ` id='…'` or empty
}

func (m *Machine) checkSession(event string, session stanza.JID) error {
	if session.IsZero() || session.IsBare() || !session.HasLocal() || !m.Serves(session.Domain()) {
		return bad(event, withDetail(ErrSession, "got "+strings.TrimSpace(session.String())))
	}
	return nil
}

func (m *Machine) checkClient(session stanza.JID, p *stanza.Presence) (clientIn, error) {
	c := clientIn{session: session, p: p}
	if err := m.checkSession("client", session); err != nil {
		return c, err
	}
	if p.From != nil {
		// The machine overwrites it, but a malformed address is still
		// malformed input (CHOICES 2).
		if _, err := m.jid(p.From); err != nil {
			return c, bad("client", err)
		}
	}
	if p.To != nil {
		to, err := m.jid(p.To)
		if err != nil {
			return c, bad("client", err)
		}
		c.to = to
	}
	if p.To == nil && p.Type == stanza.Available {
		if err := m.checkTrack(session); err != nil {
			return c, bad("client", err)
		}
	}
	return c, nil
}

// checkTrack refuses an available broadcast that would pass a cap.
func (m *Machine) checkTrack(session stanza.JID) error {
	u := m.users[session.Bare().String()]
	if u == nil {
		if m.atCap() {
			return ErrTooManyEntities
		}
		return nil
	}
	if len(u.avail) >= m.maxResources && u.find(session.Resource()) < 0 {
		return ErrTooManyResources
	}
	return nil
}

// client applies a checked client stanza. With answerLocal false, a probe
// to a local JID is left in c.pending for the caller (Sharded answers it on
// the target's shard).
func (m *Machine) client(now clock.Time, c *clientIn, answerLocal bool) error {
	p := c.p
	switch {
	case p.Type == stanza.Probe:
		return m.clientProbe(now, c, answerLocal)
	case p.To != nil:
		return nil // directed presence: T4
	case p.Type == stanza.Available:
		m.track(now, c.session, p)
	case p.Type == stanza.Unavailable:
		if m.users[c.session.Bare().String()] == nil && m.atCap() {
			return bad("client", ErrTooManyEntities)
		}
		m.untrack(now, c.session, p)
	}
	return nil
}

func (u *user) find(res string) int {
	for i := range u.avail {
		if u.avail[i].name == res {
			return i
		}
	}
	return -1
}

// track applies an available broadcast (RULES T1, T2).
func (m *Machine) track(now clock.Time, session stanza.JID, p *stanza.Presence) {
	bare := session.Bare().String()
	u := m.users[bare]
	if u == nil {
		u = &user{}
		m.users[strings.Clone(bare)] = u
	}
	s := p.AppendIDAttr(m.scratch[:0])
	idLen := len(s)
	s, attrLen := p.AppendKept(s)
	m.scratch = s
	i := u.find(session.Resource())
	if i < 0 {
		u.avail = append(u.avail, resource{name: strings.Clone(session.Resource())})
		i = len(u.avail) - 1
		u.avail[i].rec.at = now
	} else if r := &u.avail[i].rec; !bytes.Equal(r.blob[r.idLen:], s[idLen:]) {
		r.at = now
	}
	r := &u.avail[i].rec
	r.blob = append(r.blob[:0], s...)
	r.idLen, r.attrLen = int32(idLen), int32(attrLen)
	m.journalResource(opAvailable, bare, &u.avail[i])
}

// untrack applies an unavailable broadcast (RULES T3).
func (m *Machine) untrack(now clock.Time, session stanza.JID, p *stanza.Presence) {
	bare := session.Bare().String()
	u := m.users[bare]
	if u == nil {
		u = &user{}
		m.users[strings.Clone(bare)] = u
	}
	var blob []byte
	var attrLen int
	if p != nil {
		// Stage the kept stanza, then store it in the previous record's
		// memory when that fits it snugly, else in a block of its size.
		m.scratch, attrLen = p.AppendKept(m.scratch[:0])
		if old := u.last.rec.blob; cap(old) >= len(m.scratch) && cap(old) <= 2*len(m.scratch) {
			blob = append(old[:0], m.scratch...)
		} else if len(m.scratch) > 0 {
			blob = bytes.Clone(m.scratch)
		}
	}
	res := session.Resource()
	name := u.last.name
	if name != res {
		name = ""
	}
	if i := u.find(res); i >= 0 {
		name = u.avail[i].name
		// slices.Delete zeroes the vacated slot, so the array no longer
		// holds the old kept stanza; an offline user keeps no array at all.
		u.avail = slices.Delete(u.avail, i, i+1)
		if len(u.avail) == 0 {
			u.avail = nil
		}
	}
	if name == "" {
		name = strings.Clone(res)
	}
	u.last = resource{name: name, rec: record{at: now, blob: blob, attrLen: int32(attrLen)}}
	m.journalResource(opUnavailable, bare, &u.last)
}

// Close tells the machine that session ended without unavailable presence
// (RULES T3): if it was available, it becomes unavailable now. Its probe
// rate-limit bucket is dropped.
func (m *Machine) Close(now clock.Time, session stanza.JID) ([]Output, error) {
	m.reset()
	if err := m.checkSession("close", session); err != nil {
		return nil, err
	}
	m.close(now, session)
	return nil, nil
}

func (m *Machine) close(now clock.Time, session stanza.JID) {
	delete(m.buckets, session.String())
	if u := m.users[session.Bare().String()]; u != nil && u.find(session.Resource()) >= 0 {
		m.untrack(now, session, nil)
	}
}

func (m *Machine) clientProbe(now clock.Time, c *clientIn, answerLocal bool) error {
	target := c.to
	if c.p.To == nil {
		target = c.session.Bare()
	}
	user := c.session.Bare()
	// C4 before C3, and neither uses a token.
	if m.auth.Blocks(user, target) {
		m.errorReply(c, target, "<error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><blocked xmlns='urn:xmpp:blocking:errors'/></error>")
		return nil
	}
	if !m.take(now, c.session) {
		m.errorReply(c, target, "<error type='wait'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>")
		return nil
	}
	if !m.local(target) {
		m.begin(RoutedProbe, target.String())
		m.head(c.session.String(), target.String(), "probe")
		m.buf = c.p.AppendIDAttr(m.buf)
		m.buf = append(m.buf, "/>"...)
		m.end()
		return nil
	}
	if !answerLocal {
		c.pending = pendingProbe{set: true, from: c.session, target: target, id: c.p.AppendIDAttr(nil)}
		return nil
	}
	m.idbuf = c.p.AppendIDAttr(m.idbuf[:0])
	m.answer(c.session, target, m.idbuf)
	return nil
}

// errorReply answers a refused client probe with a presence error from the
// probed JID (RULES C3, C4).
func (m *Machine) errorReply(c *clientIn, target stanza.JID, errElem string) {
	m.begin(ErrorReply, c.session.String())
	m.head(target.String(), c.session.String(), "error")
	m.buf = c.p.AppendIDAttr(m.buf)
	m.buf = append(m.buf, '>')
	m.buf = append(m.buf, errElem...)
	m.buf = append(m.buf, "</presence>"...)
	m.end()
}

// take spends one probe token of session, reporting false when none is
// left.
func (m *Machine) take(now clock.Time, session stanza.JID) bool {
	b := m.buckets[session.String()]
	if b == nil {
		b = &bucket{level: m.limit.capacity(), at: now}
		m.buckets[session.String()] = b
	}
	m.limit.refill(b, now)
	if b.level < uint64(m.limit.Per) {
		return false
	}
	b.level -= uint64(m.limit.Per)
	return true
}

// local reports whether the machine answers probes to j itself: a JID at a
// served domain, or a hosted component (with or without a resource).
func (m *Machine) local(j stanza.JID) bool {
	if m.Serves(j.Domain()) {
		return true
	}
	if j.HasLocal() {
		return false
	}
	_, ok := m.hosted[j.Domain()]
	return ok
}

// Server handles a stanza from another server or a local component, whose
// from the host has verified. Probes and XEP-0012 Last Activity queries to
// local JIDs are answered (RULES P1–P6, F1, S1, S2, L1–L6); other presence
// is ignored (T5).
func (m *Machine) Server(now clock.Time, raw []byte) ([]Output, error) {
	m.reset()
	isIQ, err := m.parser.ParseStanza(raw, &m.pres, &m.iq)
	if err != nil {
		return nil, bad("server", err)
	}
	if isIQ {
		q, err := m.jids.serverQuery(&m.iq)
		if err == nil {
			err = m.checkQueryTarget("server", q.to)
		}
		if err != nil {
			return nil, err
		}
		m.idbuf = append(append(m.idbuf[:0], ' '), q.id...)
		m.lastActivity(now, q.from, q.to, m.idbuf)
		return m.finish(), nil
	}
	from, to, err := m.checkServer(&m.pres)
	if err != nil {
		return nil, err
	}
	if m.pres.Type == stanza.Probe {
		m.idbuf = m.pres.AppendIDAttr(m.idbuf[:0])
		m.answer(from, to, m.idbuf)
	}
	return m.finish(), nil
}

func (m *Machine) checkServer(p *stanza.Presence) (from, to stanza.JID, err error) {
	if from, to, err = m.serverJIDs(p); err != nil {
		return from, to, err
	}
	return from, to, m.checkServerTarget(p, to)
}

// serverJIDs reads and checks a server stanza's addresses.
func (m *Machine) serverJIDs(p *stanza.Presence) (from, to stanza.JID, err error) {
	return m.jids.serverJIDs(p)
}

// checkServerTarget refuses a server probe to a JID the machine does not
// host.
func (m *Machine) checkServerTarget(p *stanza.Presence, to stanza.JID) error {
	if p.Type == stanza.Probe && !m.local(to) {
		return bad("server", withDetail(ErrNotLocal, to.String()+" is neither at a served domain nor a hosted component"))
	}
	return nil
}

// answer replies to a probe from r to the local JID x (RULES P1–P6, F1, S1,
// S2). id is the probe's ` id='…'`, or empty. It never changes state (P6).
func (m *Machine) answer(r, x stanza.JID, id []byte) {
	if !x.HasLocal() {
		m.answerHost(r, x, id)
		return
	}
	owner := x.Bare()
	us := owner.String()
	self, blocked, sub, hidden := m.userFacts(owner, us, r)
	if blocked { // P1
		return
	}
	rs := r.String()
	if !self && !sub.Visible() { // P2
		m.begin(Reply, rs)
		m.buf = append(m.buf, "<presence from='"...)
		m.buf = append(m.buf, us...)
		m.buf = append(m.buf, "' to='"...)
		m.buf = appendJIDEscaped(m.buf, r)
		m.buf = append(m.buf, "' type='unsubscribed'"...)
		m.buf = append(m.buf, id...)
		m.buf = append(m.buf, "/>"...)
		m.end()
		return
	}
	u := m.users[us]
	if !x.IsBare() { // F1
		m.begin(Reply, rs)
		m.buf = append(m.buf, "<presence from='"...)
		m.buf = appendJIDEscaped(m.buf, x)
		m.buf = append(m.buf, "' to='"...)
		m.buf = appendJIDEscaped(m.buf, r)
		if u != nil && u.find(x.Resource()) >= 0 {
			m.buf = append(m.buf, '\'')
		} else {
			m.buf = append(m.buf, "' type='unavailable'"...)
		}
		m.buf = append(m.buf, id...)
		m.buf = append(m.buf, "/>"...)
		m.end()
		return
	}
	if m.probeAuth == nil {
		hidden = m.auth.Hidden(owner)
	}
	if u != nil && len(u.avail) > 0 { // P4
		for i := range u.avail {
			res := &u.avail[i]
			m.begin(Reply, rs)
			m.buf = append(m.buf, "<presence from='"...)
			m.buf = appendFull(m.buf, us, res.name)
			m.buf = append(m.buf, "' to='"...)
			m.buf = appendJIDEscaped(m.buf, r)
			m.buf = append(m.buf, '\'')
			m.buf = append(m.buf, res.rec.id()...)
			m.buf = append(m.buf, res.rec.attrs()...)
			m.body(res.rec.content(), us, res.name, res.rec.at, !hidden)
			m.end()
		}
		return
	}
	// P3, P5.
	m.begin(Reply, rs)
	m.buf = append(m.buf, "<presence from='"...)
	m.buf = append(m.buf, us...)
	m.buf = append(m.buf, "' to='"...)
	m.buf = appendJIDEscaped(m.buf, r)
	m.buf = append(m.buf, "' type='unavailable'"...)
	m.buf = append(m.buf, id...)
	if u == nil || u.last.name == "" || hidden {
		m.buf = append(m.buf, "/>"...)
		m.end()
		return
	}
	m.buf = append(m.buf, u.last.rec.attrs()...)
	m.body(u.last.rec.content(), us, u.last.name, u.last.rec.at, true)
	m.end()
}

// userFacts answers what a probe or query from r to the local user owner
// (bare, written us) must know first: whether r is owner, blocked by owner,
// and r's subscription in owner's roster. hidden is set only when the
// Authorizer is a ProbeAuthorizer; otherwise the caller asks Hidden itself,
// and only when its reply depends on it.
func (m *Machine) userFacts(owner stanza.JID, us string, r stanza.JID) (self, blocked bool, sub Subscription, hidden bool) {
	self = r.Bare().String() == us
	if m.probeAuth != nil {
		blocked, sub, hidden = m.probeAuth.ProbeFacts(owner, r)
		return self, blocked, sub, hidden
	}
	blocked = m.auth.Blocks(owner, r)
	if !blocked && !self {
		sub = m.auth.Subscription(owner, r.Bare())
	}
	return self, blocked, sub, false
}

// body closes the start tag and writes content, optionally a delay from the
// full JID bare/res, and the end tag.
func (m *Machine) body(content []byte, bare, res string, at clock.Time, delay bool) {
	if len(content) == 0 && !delay {
		m.buf = append(m.buf, "/>"...)
		return
	}
	m.buf = append(m.buf, '>')
	m.buf = append(m.buf, content...)
	if delay {
		m.buf = append(m.buf, delayHead...)
		m.buf = appendFull(m.buf, bare, res)
		m.buf = append(m.buf, delayStamp...)
		m.buf = at.AppendFormat(m.buf)
		m.buf = append(m.buf, delayTail...)
	}
	m.buf = append(m.buf, "</presence>"...)
}

// The parts of the XEP-0203 delay element, written as stanza.AppendDelay
// writes it (a test checks that they agree) but with the JID copied
// rather than escaped where it needs no escaping.
const (
	delayHead  = "<delay xmlns='urn:xmpp:delay' from='"
	delayStamp = "' stamp='"
	delayTail  = "'/>"
)

// appendJIDEscaped appends the normalised JID j escaped for an attribute
// value. Only a resourcepart can hold a character that needs escaping:
// RFC 7622 bans "&'/:<>@ from localparts (stanza refuses them after
// mapping), and a domainpart is LDH labels, IDNA U-labels (non-ASCII bytes
// only besides LDH and dots, STD3 rules) or a bracketed IPv6 literal. So the
// bare part is copied and the resourcepart is checked.
func appendJIDEscaped(dst []byte, j stanza.JID) []byte {
	s := j.String()
	res := j.Resource()
	if !needsEscape(res) {
		return append(dst, s...)
	}
	dst = append(dst, s[:len(s)-len(res)]...)
	return stanza.AppendEscaped(dst, res)
}

// appendFull appends the full JID bare/res escaped for an attribute value,
// bare being a normalised bare JID (see appendJIDEscaped).
func appendFull(dst []byte, bare, res string) []byte {
	dst = append(dst, bare...)
	dst = append(dst, '/')
	if !needsEscape(res) {
		return append(dst, res...)
	}
	return stanza.AppendEscaped(dst, res)
}

// escapeSet has bit c set for each byte c that stanza.AppendEscaped
// replaces; they are all below 64.
const escapeSet = 1<<'&' | 1<<'\'' | 1<<'"' | 1<<'<' | 1<<'>'

// needsEscape reports whether s holds a byte that stanza.AppendEscaped
// would replace.
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 64 && escapeSet>>c&1 != 0 {
			return true
		}
	}
	return false
}

// answerHost replies to a probe from r to a served domain or hosted
// component x (RULES S1, S2).
func (m *Machine) answerHost(r, x stanza.JID, id []byte) {
	var h *host
	if x.IsBare() {
		h = m.hosted[x.Domain()]
	}
	m.hostPresence(r, x, h, id)
}

// hostPresence writes the presence of the served domain or hosted
// component x, whose uptime is h (nil when it never came up or x has a
// resource), for r (RULES S1, S2). id is the probe's ` id='…'`, or empty.
func (m *Machine) hostPresence(r, x stanza.JID, h *host, id []byte) {
	m.begin(Reply, r.String())
	m.hostHead(r, x)
	m.buf = appendHostTail(m.buf, x, h, id)
	m.end()
}

// hostHead appends `<presence from='x' to='r'`.
func (m *Machine) hostHead(r, x stanza.JID) {
	m.buf = append(m.buf, "<presence from='"...)
	m.buf = appendJIDEscaped(m.buf, x)
	m.buf = append(m.buf, "' to='"...)
	m.buf = appendJIDEscaped(m.buf, r)
}

// appendHostTail appends the rest of hostPresence's stanza after its to
// attribute's value: the type, id and delay, which do not depend on the
// recipient.
func appendHostTail(dst []byte, x stanza.JID, h *host, id []byte) []byte {
	if h == nil { // CHOICES 13; S2's never-up domain
		dst = append(dst, "' type='unavailable'"...)
		dst = append(dst, id...)
		return append(dst, "/>"...)
	}
	if h.up {
		dst = append(dst, '\'')
	} else {
		dst = append(dst, "' type='unavailable'"...)
	}
	dst = append(dst, id...)
	dst = append(dst, '>')
	dst = append(dst, delayHead...)
	dst = append(dst, x.String()...) // bare: a domain, nothing to escape
	dst = append(dst, delayStamp...)
	dst = h.since.AppendFormat(dst)
	dst = append(dst, delayTail...)
	return append(dst, "</presence>"...)
}

// Up tells the machine that the server domain or component jid came online
// now (RULES S1), and returns its presence for each of its subscribers
// (S3): one Reply per contact that the Authorizer's Subscribers lists for
// jid, in that order, to deliver like a probe reply. A second Up while up
// keeps the first time and announces it again (CHOICES 14, 30). The
// Authorizer must be a SubscriberLister; otherwise Up refuses the call
// with ErrNoSubscriberLister and changes nothing.
func (m *Machine) Up(now clock.Time, jid stanza.JID) ([]Output, error) {
	return m.upDown("up", now, jid, true)
}

// Down tells the machine that the component jid went offline now (RULES
// S2), and returns its unavailable presence for each of its subscribers
// (S3), as Up does.
func (m *Machine) Down(now clock.Time, jid stanza.JID) ([]Output, error) {
	return m.upDown("down", now, jid, false)
}

func (m *Machine) upDown(event string, now clock.Time, jid stanza.JID, up bool) ([]Output, error) {
	m.reset()
	l, err := m.checkHost(event, jid)
	if err != nil {
		return nil, err
	}
	if _, ok := m.hosted[jid.String()]; !ok && m.atCap() {
		return nil, bad(event, ErrTooManyEntities)
	}
	m.setHost(now, jid.String(), up)
	m.announce(l, jid)
	return m.finish(), nil
}

// checkHost checks the JID of up or down and that the machine can list
// its subscribers (RULES S3), before anything changes.
func (m *Machine) checkHost(event string, jid stanza.JID) (SubscriberLister, error) {
	if jid.IsZero() || jid.HasLocal() || !jid.IsBare() {
		return nil, bad(event, withDetail(ErrNotDomain, jid.String()))
	}
	l, ok := m.auth.(SubscriberLister)
	if !ok {
		return nil, bad(event, ErrNoSubscriberLister)
	}
	return l, nil
}

// atCap reports whether MaxEntities leaves no room for another user or
// hosted domain.
func (m *Machine) atCap() bool {
	return m.maxEntities > 0 && len(m.users)+len(m.hosted) >= m.maxEntities
}

// setHost records that domain d came up (or went down) now; an up while
// up keeps its time (CHOICES 14) and records nothing.
func (m *Machine) setHost(now clock.Time, d string, up bool) {
	h := m.hosted[d]
	if h == nil {
		h = &host{}
		m.hosted[strings.Clone(d)] = h
	} else if h.up == up {
		// A repeated up or down keeps the first time: the stamp says since
		// when the JID has been up, or down (CHOICES 14).
		return
	}
	h.up, h.since = up, now
	m.journalHost(d, h)
}

// announce emits d's presence to each of its subscribers, as a probe from
// each would be answered (RULES S3); the lister leaves out contacts that d
// blocks or that may not see it.
func (m *Machine) announce(l SubscriberLister, d stanza.JID) {
	// Everything after the recipient is the same for all: write it once.
	m.scratch = appendHostTail(m.scratch[:0], d, m.hosted[d.String()], nil)
	l.Subscribers(d, func(c stanza.JID) bool {
		if c = c.Bare(); !c.IsZero() {
			m.begin(Reply, c.String())
			m.hostHead(c, d)
			m.buf = append(m.buf, m.scratch...)
			m.end()
		}
		return true
	})
}

// facts returns the FactStore behind the machine's Authorizer.
func (m *Machine) facts(event string) (FactStore, error) {
	fs, ok := m.auth.(FactStore)
	if !ok {
		return nil, bad(event, ErrNoFactStore)
	}
	return fs, nil
}

// SetRoster records that owner's roster holds contact with subscription
// sub. It needs an Authorizer that is a FactStore (the default is).
func (m *Machine) SetRoster(owner, contact stanza.JID, sub Subscription) error {
	fs, err := m.facts("roster")
	if err != nil {
		return err
	}
	if owner.IsZero() || contact.IsZero() || sub > SubBoth {
		return bad("roster", withDetail(ErrConfig, "roster needs an owner, a contact and a subscription"))
	}
	fs.SetSubscription(owner.Bare(), contact.Bare(), sub)
	return nil
}

// SetBlock records that owner blocks (or no longer blocks) jid.
func (m *Machine) SetBlock(owner, jid stanza.JID, blocked bool) error {
	fs, err := m.facts("block")
	if err != nil {
		return err
	}
	if owner.IsZero() || jid.IsZero() {
		return bad("block", withDetail(ErrConfig, "block needs an owner and a JID"))
	}
	fs.SetBlocked(owner.Bare(), jid, blocked)
	return nil
}

// SetHidden records that owner opted out of (or back into) last-seen.
func (m *Machine) SetHidden(owner stanza.JID, hidden bool) error {
	fs, err := m.facts("hide")
	if err != nil {
		return err
	}
	if owner.IsZero() {
		return bad("hide", withDetail(ErrConfig, "hide needs an owner"))
	}
	fs.SetHidden(owner.Bare(), hidden)
	return nil
}

// SetProbeLimit changes the client-probe rate limit for every session at
// time now (CHOICES 20): each existing bucket is first refilled at the old
// rate up to now, so the old limit governs the time before the change, then
// keeps the tokens it holds, capped at the new capacity. From now on it
// refills at the new rate. A now earlier than a bucket's last probe counts
// as no time passed, as everywhere else.
func (m *Machine) SetProbeLimit(now clock.Time, l RateLimit) error {
	if err := l.check(); err != nil {
		return bad("limit", err)
	}
	// A limit change is rare, so settling every live bucket here, O(live
	// sessions), keeps the per-probe path free of any epoch bookkeeping.
	for _, b := range m.buckets {
		m.limit.refill(b, now)
		b.level = m.limit.rescale(b.level, l)
	}
	m.limit = l
	return nil
}

// ProbeLimit returns the current client-probe rate limit.
func (m *Machine) ProbeLimit() RateLimit { return m.limit }
