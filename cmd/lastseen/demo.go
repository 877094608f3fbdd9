package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// step is one moment of the demo: what happens, in words, and the event
// that makes it happen.
type step struct {
	at    string // XEP-0082 time
	say   string
	label string // how the input is shown
	in    string // stanza, or "" for non-stanza events
	run   func(m *core.Machine, now clock.Time) ([]core.Output, error)
}

// demo plays the use cases of XEP-0318 §3 (listings 1–4), a XEP-0012 Last
// Activity query beside the probe of the same contact, and a client probe
// routed onwards, on a machine that hosts montague.com, printing every
// stanza in and out.
func demo(w io.Writer) error {
	m, err := core.New(core.Config{Served: []string{"montague.com"}})
	if err != nil {
		return err
	}
	romeo := stanza.MustParse("romeo@montague.com")
	juliet := stanza.MustParse("juliet@capulet.com")
	if err := m.SetRoster(romeo, juliet, core.SubBoth); err != nil {
		return err
	}
	// Server buddies (XEP-0267): montague.com and capulet.com see each
	// other's presence, so montague.com announces itself when it starts.
	if err := m.SetRoster(stanza.MustParse("montague.com"), stanza.MustParse("capulet.com"), core.SubBoth); err != nil {
		return err
	}
	client := func(session, x string) func(*core.Machine, clock.Time) ([]core.Output, error) {
		return func(m *core.Machine, now clock.Time) ([]core.Output, error) {
			return m.Client(now, stanza.MustParse(session), []byte(x))
		}
	}
	server := func(x string) func(*core.Machine, clock.Time) ([]core.Output, error) {
		return func(m *core.Machine, now clock.Time) ([]core.Output, error) { return m.Server(now, []byte(x)) }
	}
	const (
		online  = `<presence><show>away</show><status>On the balcony</status></presence>`
		offline = `<presence type='unavailable'><status>Going offline. Out of battery.</status></presence>`
		probeR  = `<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='probe1'/>`
		probeS  = `<presence from='juliet@capulet.com/balcony' to='montague.com' type='probe' id='probe2'/>`
		probeC  = `<presence to='juliet@capulet.com' type='probe' id='probe3'/>`
		lastR   = `<iq from='juliet@capulet.com/balcony' to='romeo@montague.com' type='get' id='last1'><query xmlns='jabber:iq:last'/></iq>`
	)
	steps := []step{
		{at: "2012-09-10T20:00:00Z", say: "The server for montague.com starts. Its host tells lastseen, so that probes to the server itself can say since when it is up. A server that starts sets its presence to online (XEP-0318 §3.2): lastseen returns that presence for its buddy capulet.com, stamped with the start, and the server sends it.",
			label: "up montague.com", run: func(m *core.Machine, now clock.Time) ([]core.Output, error) {
				return m.Up(now, stanza.MustParse("montague.com"))
			}},
		{at: "2012-09-10T20:05:00Z", say: "Romeo logs in from his phone and sends his presence. lastseen remembers it and when it changed; routing it to his contacts stays the server's job, so nothing comes out.",
			label: "from romeo@montague.com/balcony", in: online, run: client("romeo@montague.com/balcony", online)},
		{at: "2012-09-10T23:41:07Z", say: "The battery runs out. Romeo's client manages to say goodbye.",
			label: "from romeo@montague.com/balcony", in: offline, run: client("romeo@montague.com/balcony", offline)},
		{at: "2012-09-11T09:15:00Z", say: "Next morning Juliet's client wants to know when Romeo was last seen. It sends a probe (XEP-0318 listing 1); her server routes it to montague.com. Romeo has no session, so the reply is his last unavailable presence, stamped with when it was sent (listing 2).",
			label: "from capulet.com", in: probeR, run: server(probeR)},
		{at: "2012-09-11T09:15:00Z", say: "At the same instant her client asks the older way, a Last Activity query (XEP-0012). lastseen answers from the same state, so the two agree: 34433 seconds since that unavailable presence, and its status.",
			label: "from capulet.com", in: lastR, run: server(lastR)},
		{at: "2012-09-11T09:16:00Z", say: "Juliet probes the server itself (listing 3): the reply says it has been up since 20:00 yesterday (listing 4).",
			label: "from capulet.com", in: probeS, run: server(probeS)},
		{at: "2012-09-11T09:20:00Z", say: "Romeo is back and probes Juliet from his own client. Juliet lives on another server, so lastseen stamps the probe with his full JID and hands it to the server to route.",
			label: "from romeo@montague.com/balcony", in: probeC, run: client("romeo@montague.com/balcony", probeC)},
	}
	fmt.Fprintf(w, "lastseen demo: XEP-0318 (Best Practices for Client Initiated Presence Probes) in %d steps: listings 1-4 with a XEP-0012 Last Activity query beside the probe, then a client's own probe\n", len(steps))
	fmt.Fprintln(w, "The machine serves montague.com. Juliet (juliet@capulet.com) and Romeo share a subscription in both directions,")
	fmt.Fprintln(w, "and so do the servers montague.com and capulet.com (server buddies, XEP-0267).")
	for i, s := range steps {
		now, err := clock.Parse(s.at)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%d. %s\n   %s\n", i+1, s.at, wrap(s.say, "   "))
		fmt.Fprintf(w, "   in  (%s)", s.label)
		if s.in != "" {
			fmt.Fprintf(w, ":\n       %s", s.in)
		}
		fmt.Fprintln(w)
		out, err := s.run(m, now)
		if err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
		if len(out) == 0 {
			fmt.Fprintln(w, "   out: nothing")
		}
		for _, o := range out {
			fmt.Fprintf(w, "   out (%s to %s):\n       %s\n", o.Kind, o.To, o.Stanza)
		}
	}
	return nil
}

// wrap folds text at about 72 columns, indenting continuation lines.
func wrap(text, indent string) string {
	var b strings.Builder
	col := len(indent)
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if col+1+len(word) > 72 {
				b.WriteString("\n" + indent)
				col = len(indent)
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}
