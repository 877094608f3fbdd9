package core_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/internal/scenario"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// FuzzMachine feeds the machine event sequences written as scenario scripts
// (FORMAT.md; expect lines are ignored), so that the seed corpus is the
// scenario corpus itself and every directive, roster, block, hide and limit
// included, is in reach of the mutator. After every input it checks:
//
//   - no panic;
//   - a refused input matches ErrBadInput, emitted nothing, wrote no
//     journal record and left AppendState unchanged;
//   - every output is one well-formed presence stanza for both
//     stanza.Parser and encoding/xml, its to is Output.To, its from and to
//     are normalised JIDs, and its type fits its Kind;
//   - privacy (RULES P2, F1; RFC 6121 §4.3.2): a probe from a JID that no
//     roster, block list or script line mentions gets exactly one
//     <presence type='unsubscribed'/> from the bare JID, for every user
//     and session the script touched, bare or full;
//   - consistency (RULES T1, T3, F1, P4): by a model of which sessions are
//     available, a self-probe to each full JID says available or
//     unavailable as the model does, and a self-probe to the bare JID lists
//     exactly the model's available resources; so no resource is both
//     available and unavailable;
//   - opt-out (P5): a self-probe of a user who ran hide never carries a
//     top-level delay stamp;
//   - probes change nothing (P6): AppendState is the same after them;
//   - Last Activity (RULES L1–L3): a stranger's query to every user gets
//     exactly one auth/forbidden error, so no query reveals what P2 would
//     refuse; for the user themself, every roster contact and every
//     blocked JID, a query answers as the probe from the same requester at
//     the same instant does (silence: service-unavailable; unsubscribed:
//     forbidden; available: 0 seconds; unavailable with a stamp T: the
//     seconds since T and the status text; opted out: service-unavailable;
//     nothing known: item-not-found); a query to each served domain and
//     hosted component agrees with the probe to it; and neither queries
//     nor a session's queries to itself change the state or use a token;
//   - announcements (S3): an accepted up or down of D emits one Reply to
//     each contact that D's roster holds, by the script's own roster lines,
//     with from or both and that D's Authorizer does not block, in
//     ascending order, each exactly what a probe from that contact gets
//     then (without its id);
//   - a Sharded machine fed the same inputs emits the same bytes and ends in
//     the same state as a single Machine (with no entity cap, which Sharded
//     counts per shard);
//
// and at the end that the snapshot restores to itself, and that replaying
// the journal on an empty machine gives the same snapshot.
func FuzzMachine(f *testing.F) {
	for _, s := range machineFuzzSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		// The probers below must be strangers to the script.
		if len(src) > 16<<10 || bytes.Contains(src, []byte("unauth")) || bytes.Contains(src, []byte("zzprobe")) {
			return
		}
		script, err := scenario.Parse("fuzz", src)
		if err != nil {
			return
		}
		runFuzzScript(t, script)
	})
}

const (
	stranger = "mallory@unauth.invalid/zzprobe"
	selfRes  = "zzprobe"
)

type fuzzRun struct {
	t       *testing.T
	m       *core.Machine // with caps, journaled: the machine under test
	plain   *core.Machine // no entity cap, for the Sharded comparison
	sh      *core.Sharded
	journal [][]byte
	avail   map[string]bool                         // normalised session → available, by the model
	users   map[string]bool                         // normalised bare JIDs at served domains
	hidden  map[string]bool                         // normalised bare JIDs that opted out (P5)
	rosters map[string]map[string]core.Subscription // owner → contact → subscription, by the script
	peers   map[string]bool                         // JIDs the roster and block lines name: requesters for the Last Activity checks
	hosts   map[string]bool                         // served domains and up or down JIDs
	parser  stanza.Parser
	out     stanza.Parser
}

func runFuzzScript(t *testing.T, script *scenario.Script) {
	var served []string
	for _, l := range script.Lines {
		if l.Directive == "serve" {
			served = append(served, l.Args...)
		}
	}
	if len(served) == 0 {
		served = []string{"montague.com"}
	}
	cfg := core.Config{Served: served, MaxResources: 3, MaxEntities: 8, Journal: true}
	m, err := core.New(cfg)
	if err != nil {
		return // a served domain the machine refuses
	}
	cfg.MaxEntities = 0
	cfg.Journal = false
	plain, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := core.NewSharded(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := &fuzzRun{t: t, m: m, plain: plain, sh: sh, avail: map[string]bool{}, users: map[string]bool{}, hidden: map[string]bool{},
		rosters: map[string]map[string]core.Subscription{}, peers: map[string]bool{}, hosts: map[string]bool{}}
	for _, d := range served {
		if j, err := stanza.Parse(d); err == nil {
			r.hosts[j.String()] = true
		}
	}
	r.out.Limits.MaxBytes = 1 << 20
	// A reply adds from, to and type to the kept root attributes, and
	// CHOICES 9 moves a prefixed root's foreign default declaration onto
	// each kept child: an input at the attribute limit gives a reply up to
	// 3 over it on the root, 1 on a child (CHOICES 39).
	r.out.Limits.MaxAttrs = stanza.DefaultMaxAttrs + 3
	now := clock.Epoch2000
	for i := range script.Lines {
		l := &script.Lines[i]
		switch l.Directive {
		case "at":
			now = l.Time
		case "roster", "block", "hide", "limit":
			r.fact(now, l)
		case "client", "server", "close", "up", "down":
			r.input(now, l)
			r.check(now, l)
		}
	}
	r.durable()
}

// fact applies a roster, block, hide or limit line to every machine. The
// scenario format checks JIDs loosely; a line naming one that RFC 7622
// refuses is skipped, as the host would never get that far.
func (r *fuzzRun) fact(now clock.Time, l *scenario.Line) {
	var j [2]stanza.JID
	for i := 0; i < 2 && i < len(l.Args) && l.Directive != "limit"; i++ {
		var err error
		if j[i], err = stanza.Parse(l.Args[i]); err != nil {
			return
		}
	}
	if l.Directive == "roster" {
		o := j[0].Bare().String()
		if r.rosters[o] == nil {
			r.rosters[o] = map[string]core.Subscription{}
		}
		r.rosters[o][j[1].Bare().String()], _ = core.ParseSubscription(l.Args[2])
	}
	for _, m := range []interface {
		SetRoster(owner, contact stanza.JID, sub core.Subscription) error
		SetBlock(owner, jid stanza.JID, blocked bool) error
		SetHidden(owner stanza.JID, hidden bool) error
		SetProbeLimit(now clock.Time, l core.RateLimit) error
	}{r.m, r.plain, r.sh} {
		switch l.Directive {
		case "roster":
			r.peers[j[1].String()] = true
			sub, _ := core.ParseSubscription(l.Args[2])
			m.SetRoster(j[0], j[1], sub)
		case "block":
			r.peers[j[1].String()] = true
			m.SetBlock(j[0], j[1], true)
		case "hide":
			m.SetHidden(j[0], true)
			r.hidden[j[0].Bare().String()] = true
		case "limit":
			m.SetProbeLimit(now, core.RateLimit{Burst: l.N, Per: l.Per})
		}
	}
}

func call(m stepper, now clock.Time, l *scenario.Line) ([]core.Output, error) {
	var j stanza.JID
	if len(l.Args) > 0 {
		var err error
		if j, err = stanza.Parse(l.Args[0]); err != nil {
			// Scenario files may name invalid JIDs; the machine never
			// sees them, the host's JID parsing does.
			return nil, err
		}
	}
	switch l.Directive {
	case "client":
		return m.Client(now, j, l.XML)
	case "server":
		return m.Server(now, l.XML)
	case "close":
		return m.Close(now, j)
	case "up":
		return m.Up(now, j)
	default:
		return m.Down(now, j)
	}
}

func (r *fuzzRun) input(now clock.Time, l *scenario.Line) {
	t := r.t
	before := r.m.AppendState(nil)
	out, err := call(r.m, now, l)
	if errors.Is(err, stanza.ErrInvalidJID) && !errors.Is(err, core.ErrBadInput) {
		return // the session or domain of the line itself is not a JID
	}
	if err != nil {
		if !errors.Is(err, core.ErrBadInput) {
			t.Fatalf("%s: error %v does not match ErrBadInput", l.Text, err)
		}
		if len(out) != 0 {
			t.Fatalf("%s: refused (%v) but emitted %d stanzas", l.Text, err, len(out))
		}
		if r.m.Records() != nil {
			t.Fatalf("%s: refused (%v) but wrote journal records", l.Text, err)
		}
		if !bytes.Equal(before, r.m.AppendState(nil)) {
			t.Fatalf("%s: refused (%v) but changed the state", l.Text, err)
		}
	} else {
		for _, rec := range r.m.Records() {
			r.journal = append(r.journal, bytes.Clone(rec))
		}
		r.checkOutputs(l.Text, out)
		r.model(l)
		if l.Directive == "up" || l.Directive == "down" {
			r.announced(now, l, out)
		}
	}

	// Sharded against a single Machine, neither capped on entities.
	pOut, pErr := call(r.plain, now, l)
	sOut, sErr := call(r.sh, now, l)
	if (pErr == nil) != (sErr == nil) || pErr != nil && pErr.Error() != sErr.Error() {
		t.Fatalf("%s: Machine err %v, Sharded err %v", l.Text, pErr, sErr)
	}
	if got, want := outputsText(sOut), outputsText(pOut); got != want {
		t.Fatalf("%s: Sharded emitted\n%s\nMachine emitted\n%s", l.Text, got, want)
	}
	if !bytes.Equal(r.plain.AppendState(nil), r.sh.AppendState(nil)) {
		t.Fatalf("%s: Sharded state differs from Machine's", l.Text)
	}
}

// announced checks the outputs of an accepted up or down (RULES S3)
// against the script's rosters: one Reply per subscriber that the
// Authorizer's Blocks lets through, in ascending order, each what a probe
// from it gets now, without the probe's id.
func (r *fuzzRun) announced(now clock.Time, l *scenario.Line, out []core.Output) {
	d := stanza.MustParse(l.Args[0])
	var want []string
	for c, sub := range r.rosters[d.String()] {
		if sub.Visible() && !r.m.Auth().Blocks(d, stanza.MustParse(c)) {
			want = append(want, c)
		}
	}
	sort.Strings(want)
	// The outputs alias the machine's buffers, which the probes below
	// reuse: keep copies.
	var got, stanzas []string
	for _, o := range out {
		if o.Kind != core.Reply {
			r.t.Fatalf("%s: announced %v %s, want a reply", l.Text, o.Kind, o.Stanza)
		}
		got = append(got, string(o.To))
		stanzas = append(stanzas, string(o.Stanza))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		r.t.Fatalf("%s: announced to %q, want %q", l.Text, got, want)
	}
	for i, o := range stanzas {
		x := string(stanza.AppendAttr(stanza.AppendAttr([]byte("<presence type='probe' id='s3'"), "from", want[i]), "to", d.String())) + "/>"
		p, err := r.m.Server(now, []byte(x))
		if err != nil || len(p) != 1 {
			r.t.Fatalf("%s: probe %s: %v %v", l.Text, x, p, err)
		}
		if strings.Replace(string(p[0].Stanza), " id='s3'", "", 1) != o {
			r.t.Fatalf("%s: announced %s; a probe from %s gets %s", l.Text, o, want[i], p[0].Stanza)
		}
	}
}

func outputsText(out []core.Output) string {
	var b strings.Builder
	for _, o := range out {
		fmt.Fprintf(&b, "%v %s %s\n", o.Kind, o.To, o.Stanza)
	}
	return b.String()
}

// model tracks which sessions an accepted input makes available.
func (r *fuzzRun) model(l *scenario.Line) {
	switch l.Directive {
	case "up", "down":
		r.hosts[stanza.MustParse(l.Args[0]).String()] = true
	case "close":
		s := stanza.MustParse(l.Args[0])
		r.users[s.Bare().String()] = true
		r.avail[s.String()] = false
	case "client":
		s := stanza.MustParse(l.Args[0])
		r.users[s.Bare().String()] = true
		var p stanza.Presence
		var iq stanza.IQ
		isIQ, err := r.parser.ParseStanza(l.XML, &p, &iq)
		if err != nil {
			r.t.Fatalf("%s: the machine accepted what the parser refuses: %v", l.Text, err)
		}
		if isIQ || p.To != nil {
			return
		}
		switch p.Type {
		case stanza.Available:
			r.avail[s.String()] = true
		case stanza.Unavailable:
			r.avail[s.String()] = false
		}
	}
}

// checkOutputs checks that each output is a well-formed presence or iq
// stanza addressed as it says, of a type that fits its kind.
func (r *fuzzRun) checkOutputs(what string, out []core.Output) {
	t := r.t
	for _, o := range out {
		var p stanza.Presence
		var iq stanza.IQ
		isIQ, err := r.out.ParseStanza(o.Stanza, &p, &iq)
		if err != nil {
			t.Fatalf("%s: output %s does not parse: %v", what, o.Stanza, err)
		}
		if err := wellFormed(o.Stanza); err != nil {
			t.Fatalf("%s: encoding/xml refuses output %s: %v", what, o.Stanza, err)
		}
		from, to := p.From, p.To
		if isIQ {
			from, to = iq.From, iq.To
		}
		if from == nil || to == nil {
			t.Fatalf("%s: output %s lacks from or to", what, o.Stanza)
		}
		for _, a := range []*stanza.Attr{from, to} {
			v := a.AppendValue(nil)
			j, err := stanza.ParseBytes(v)
			if err != nil || j.String() != string(v) {
				t.Fatalf("%s: output %s: %s=%q is not a normalised JID (%v)", what, o.Stanza, a.Local, v, err)
			}
		}
		if to := to.AppendValue(nil); !bytes.Equal(to, o.To) {
			t.Fatalf("%s: output %s goes to %s but Output.To is %s", what, o.Stanza, to, o.To)
		}
		if isIQ {
			want := map[core.Kind][]stanza.IQType{
				core.IQReply:     {stanza.IQResult, stanza.IQError},
				core.RoutedQuery: {stanza.IQGet},
			}[o.Kind]
			if !slices.Contains(want, iq.Type) || iq.ID == nil {
				t.Fatalf("%s: output %s of kind %v has type %v", what, o.Stanza, o.Kind, iq.Type)
			}
			if iq.Type == stanza.IQGet {
				if err := iq.CheckLastActivity(); err != nil {
					t.Fatalf("%s: routed query %s: %v", what, o.Stanza, err)
				}
			}
			continue
		}
		want := map[core.Kind][]stanza.Type{
			core.Reply:       {stanza.Available, stanza.Unavailable, stanza.Unsubscribed},
			core.RoutedProbe: {stanza.Probe},
			core.ErrorReply:  {stanza.Error},
		}[o.Kind]
		if !slices.Contains(want, p.Type) {
			t.Fatalf("%s: output %s of kind %v has type %v", what, o.Stanza, o.Kind, p.Type)
		}
	}
}

// wellFormed reads b with encoding/xml: one root element, nothing else.
func wellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 {
				return errors.New("text outside the root")
			}
		default:
			return fmt.Errorf("unexpected %T", tok)
		}
	}
	if roots != 1 {
		return fmt.Errorf("%d root elements", roots)
	}
	return nil
}

// reply is what the consistency checks read of a probe reply.
type reply struct {
	from  string
	typ   stanza.Type
	raw   string
	delay bool // a top-level delay stamp
}

// probe sends a server probe and returns its outputs.
func (r *fuzzRun) probe(now clock.Time, from, to, id string) []reply {
	x := string(stanza.AppendAttr(stanza.AppendAttr([]byte("<presence type='probe' id='"+id+"'"), "from", from), "to", to)) + "/>"
	out, err := r.m.Server(now, []byte(x))
	if err != nil {
		r.t.Fatalf("probe %s: %v", x, err)
	}
	r.checkOutputs(x, out)
	var res []reply
	for _, o := range out {
		var p stanza.Presence
		if err := r.out.ParsePresence(o.Stanza, &p); err != nil {
			r.t.Fatal(err)
		}
		rep := reply{from: string(p.From.AppendValue(nil)), typ: p.Type, raw: string(o.Stanza)}
		for i := range p.Children {
			rep.delay = rep.delay || p.Children[i].IsDelay()
		}
		res = append(res, rep)
	}
	return res
}

// check runs the privacy and consistency probes after an input.
func (r *fuzzRun) check(now clock.Time, l *scenario.Line) {
	t := r.t
	before := r.m.AppendState(nil)
	sessions := sortedTrue(r.avail, true)
	for _, u := range sortedTrue(r.users, true) {
		// Privacy: a stranger learns nothing, bare or full.
		targets := []string{u}
		for _, s := range sessions {
			if strings.HasPrefix(s, u+"/") {
				targets = append(targets, s)
			}
		}
		for _, to := range targets {
			got := r.probe(now, stranger, to, "q")
			want := "<presence from='" + u + "' to='" + stranger + "' type='unsubscribed' id='q'/>"
			if len(got) != 1 || got[0].raw != want {
				t.Fatalf("after %s: a stranger's probe to %s got %v, want only %s", l.Text, to, got, want)
			}
		}
		// Consistency: self-probes agree with the model.
		self := u + "/" + selfRes
		got := r.probe(now, self, u, "b")
		if len(got) == 0 {
			continue // the user blocked themself (P1)
		}
		for _, g := range got {
			if r.hidden[u] && g.delay {
				t.Fatalf("after %s: %s opted out (hide) but a probe got a stamp: %s", l.Text, u, g.raw)
			}
		}
		var modelAvail, listed []string
		for _, s := range targets[1:] {
			f := r.probe(now, self, s, "f")
			if len(f) != 1 || f[0].from != s || (f[0].typ == stanza.Available) != r.avail[s] {
				t.Fatalf("after %s: probe to %s got %v; the model says available=%v", l.Text, s, f, r.avail[s])
			}
			if r.avail[s] {
				modelAvail = append(modelAvail, s)
			}
		}
		if len(modelAvail) == 0 {
			if len(got) != 1 || got[0].typ != stanza.Unavailable || got[0].from != u {
				t.Fatalf("after %s: probe to %s got %v, want one unavailable from the bare JID", l.Text, u, got)
			}
			continue
		}
		for _, g := range got {
			if g.typ != stanza.Available {
				t.Fatalf("after %s: probe to %s got %v, mixing available and unavailable", l.Text, u, got)
			}
			listed = append(listed, g.from)
		}
		sort.Strings(listed)
		if strings.Join(listed, " ") != strings.Join(modelAvail, " ") {
			t.Fatalf("after %s: probe to %s lists %q, the model %q", l.Text, u, listed, modelAvail)
		}
	}
	r.checkLastActivity(now, l, sessions)
	if !bytes.Equal(before, r.m.AppendState(nil)) {
		t.Fatalf("after %s: answering probes and queries changed the state", l.Text)
	}
}

// lastAnswer is what the checks read of a Last Activity answer.
type lastAnswer struct {
	raw     string
	result  bool
	seconds string
	text    string
	errType string
	cond    string
}

// query sends a server Last Activity query and reads its one answer.
func (r *fuzzRun) query(now clock.Time, from, to string) lastAnswer {
	x := string(stanza.AppendAttr(stanza.AppendAttr([]byte("<iq type='get' id='la'"), "from", from), "to", to)) + "><query xmlns='jabber:iq:last'/></iq>"
	out, err := r.m.Server(now, []byte(x))
	if err != nil {
		r.t.Fatalf("query %s: %v", x, err)
	}
	r.checkOutputs(x, out)
	if len(out) != 1 || out[0].Kind != core.IQReply {
		r.t.Fatalf("query %s: got %s, want one iq reply", x, outputsText(out))
	}
	return readAnswer(r.t, string(out[0].Stanza))
}

func readAnswer(t *testing.T, raw string) lastAnswer {
	var v struct {
		Type  string `xml:"type,attr"`
		Query *struct {
			Seconds string `xml:"seconds,attr"`
			Text    string `xml:",chardata"`
		} `xml:"jabber:iq:last query"`
		Error *struct {
			Type string `xml:"type,attr"`
			Cond []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"error"`
	}
	if err := xml.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	a := lastAnswer{raw: raw, result: v.Type == "result"}
	switch {
	case a.result && v.Query != nil && v.Error == nil:
		a.seconds, a.text = v.Query.Seconds, v.Query.Text
	case v.Type == "error" && v.Error != nil && len(v.Error.Cond) > 0 && v.Query == nil:
		a.errType = v.Error.Type
		for _, c := range v.Error.Cond {
			a.cond += c.XMLName.Local + " "
		}
		a.cond = strings.TrimSpace(a.cond)
	default:
		t.Fatalf("answer %s is neither a Last Activity result nor an error", raw)
	}
	return a
}

// statusOf returns the character data of the first top-level <status/> of
// a probe reply, as encoding/xml reads it.
func statusOf(t *testing.T, raw string) string {
	d := xml.NewDecoder(strings.NewReader(raw))
	depth, in := 0, false
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			t.Fatalf("reply %s: %v", raw, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			ns := tok.Name.Space
			if depth == 2 && tok.Name.Local == "status" && (ns == "" || ns == "jabber:client" || ns == "jabber:server") {
				in = true
			}
		case xml.EndElement:
			depth--
			if in && depth == 1 {
				return text.String()
			}
		case xml.CharData:
			if in && depth == 2 {
				text.Write(tok)
			}
		}
	}
}

// seconds is the whole seconds from the stamp of a reply's delay to now.
func seconds(t *testing.T, now clock.Time, raw string) string {
	i := strings.LastIndex(raw, "stamp='")
	if i < 0 {
		t.Fatalf("reply %s has no stamp", raw)
	}
	stamp := raw[i+len("stamp='"):]
	at, err := clock.Parse(stamp[:strings.IndexByte(stamp, '\'')])
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(max(0, int64(now-at))/1e9, 10)
}

// checkLastActivity checks the Last Activity invariants (see FuzzMachine).
func (r *fuzzRun) checkLastActivity(now clock.Time, l *scenario.Line, sessions []string) {
	t := r.t
	for _, u := range sortedTrue(r.users, true) {
		if a := r.query(now, stranger, u); a.errType != "auth" || a.cond != "forbidden" {
			t.Fatalf("after %s: a stranger's query to %s got %s, want forbidden", l.Text, u, a.raw)
		}
		requesters := []string{u + "/" + selfRes}
		for _, p := range sortedTrue(r.peers, true) {
			requesters = append(requesters, p)
			if !strings.Contains(p, "/") {
				requesters = append(requesters, p+"/"+selfRes)
			}
		}
		for _, from := range requesters {
			probe := r.probe(now, from, u, "c")
			a := r.query(now, from, u)
			var want string
			switch {
			case len(probe) == 0:
				want = "error cancel service-unavailable"
			case probe[0].typ == stanza.Unsubscribed:
				want = "error auth forbidden"
			case r.hidden[u]:
				want = "error cancel service-unavailable"
			case probe[0].typ == stanza.Available:
				want = "result 0 "
			case probe[0].delay:
				want = "result " + seconds(t, now, probe[0].raw) + " " + statusOf(t, probe[0].raw)
			default:
				want = "error cancel item-not-found"
			}
			got := "error " + a.errType + " " + a.cond
			if a.result {
				got = "result " + a.seconds + " " + a.text
			}
			if got != want {
				t.Fatalf("after %s: query from %s to %s got %s (%q) but the probe got %v (%q wanted)", l.Text, from, u, a.raw, got, probe, want)
			}
		}
	}
	for _, d := range sortedTrue(r.hosts, true) {
		probe := r.probe(now, stranger, d, "d")
		a := r.query(now, stranger, d)
		want := "error cancel service-unavailable"
		if len(probe) == 1 && probe[0].typ == stanza.Available {
			want = "result " + seconds(t, now, probe[0].raw) + " "
		}
		got := "error " + a.errType + " " + a.cond
		if a.result {
			got = "result " + a.seconds + " " + a.text
		}
		if got != want {
			t.Fatalf("after %s: query to %s got %s but the probe got %v", l.Text, d, a.raw, probe)
		}
	}
	// A session's query to itself is answered from its own shard of state
	// and uses no token: the caller checks that the state did not change.
	for _, s := range sessions {
		out, err := r.m.Client(now, stanza.MustParse(s), []byte("<iq type='get' id='own'><query xmlns='jabber:iq:last'/></iq>"))
		if err != nil || len(out) != 1 || out[0].Kind != core.IQReply || string(out[0].To) != s {
			t.Fatalf("after %s: %s querying itself got %s, %v", l.Text, s, outputsText(out), err)
		}
		r.checkOutputs("own query", out)
	}
}

func sortedTrue(m map[string]bool, all bool) []string {
	var keys []string
	for k, v := range m {
		if v || all {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// durable checks the snapshot and the journal at the end of a run.
func (r *fuzzRun) durable() {
	t := r.t
	snap := r.m.Snapshot(nil)
	fresh := func() *core.Machine {
		m, err := core.New(core.Config{Served: []string{"montague.com"}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a := fresh()
	if err := a.Restore(snap); err != nil {
		t.Fatalf("restoring the machine's own snapshot: %v", err)
	}
	if !bytes.Equal(snap, a.Snapshot(nil)) {
		t.Fatal("snapshot does not restore to itself")
	}
	if !bytes.Equal(r.plain.Snapshot(nil), r.sh.Snapshot(nil)) {
		t.Fatal("Sharded snapshot differs from Machine's")
	}
	if err := r.sh.Restore(snap); err != nil || !bytes.Equal(snap, r.sh.Snapshot(nil)) {
		t.Fatalf("Sharded does not restore the Machine's snapshot to itself: %v", err)
	}
	b := fresh()
	for i, rec := range r.journal {
		if err := b.ApplyRecord(rec); err != nil {
			t.Fatalf("journal record %d: %v", i, err)
		}
	}
	if !bytes.Equal(snap, b.Snapshot(nil)) {
		t.Fatal("replaying the journal does not give the machine's snapshot")
	}
}

// machineFuzzSeeds returns the scenario files without their expect lines,
// and a few random event sequences written as scripts.
func machineFuzzSeeds(tb testing.TB) []string {
	var seeds []string
	for _, dir := range []string{"testdata/scenarios", "testdata/conformance", "../../shared/conformance/cases"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				tb.Fatal(err)
			}
			seeds = append(seeds, scenario.Inputs(src))
		}
	}
	for seed := uint64(1); seed <= 8; seed++ {
		seeds = append(seeds, eventsScript(randomEvents(seed, 40)))
	}
	return seeds
}

// eventsScript writes events as a scenario script.
func eventsScript(evs []event) string {
	var b strings.Builder
	b.WriteString("serve montague.com\nroster romeo@montague.com juliet@capulet.com both\n")
	// Buddies of the domains that randomEvents brings up and down (S3).
	b.WriteString("roster montague.com capulet.com both\nroster montague.com verona.lit to\n" +
		"roster chat.montague.com juliet@capulet.com from\nroster chat.montague.com Nurse@montague.com both\n" +
		"roster chat.montague.com tybalt@capulet.com from\nblock chat.montague.com tybalt@capulet.com\n")
	now := clock.Epoch2000
	for _, e := range evs {
		if e.now != now {
			now = e.now
			fmt.Fprintf(&b, "at %s\n", now)
		}
		switch e.kind {
		case "client":
			fmt.Fprintf(&b, "client %s %s\n", e.session, e.xml)
		case "server":
			fmt.Fprintf(&b, "server %s\n", e.xml)
		default:
			fmt.Fprintf(&b, "%s %s\n", e.kind, e.session)
		}
	}
	return b.String()
}
