package core_test

import (
	"fmt"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// A contact probes a user who went offline: the reply is the user's last
// unavailable presence with an XEP-0203 delay saying when (XEP-0318 §3.1).
func Example() {
	m, _ := core.New(core.Config{Served: []string{"montague.com"}})
	romeo := stanza.MustParse("romeo@montague.com/balcony")
	_ = m.SetRoster(romeo.Bare(), stanza.MustParse("juliet@capulet.com"), core.SubBoth)

	t, _ := clock.Parse("2012-09-10T23:41:07Z")
	m.Client(t, romeo, []byte(`<presence type='unavailable'><status>Out of battery.</status></presence>`))

	out, _ := m.Server(t.Add(36000e9), []byte(`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='p1'/>`))
	for _, o := range out {
		fmt.Printf("%s to %s:\n%s\n", o.Kind, o.To, o.Stanza)
	}
	// Output:
	// reply to juliet@capulet.com/balcony:
	// <presence from='romeo@montague.com' to='juliet@capulet.com/balcony' type='unavailable' id='p1'><status>Out of battery.</status><delay xmlns='urn:xmpp:delay' from='romeo@montague.com/balcony' stamp='2012-09-10T23:41:07Z'/></presence>
}

// A client probe to a JID the machine does not host is stamped with the
// session's full JID and handed back for routing (RULES C1).
func ExampleMachine_Client_routedProbe() {
	m, _ := core.New(core.Config{Served: []string{"capulet.com"}})
	session := stanza.MustParse("juliet@capulet.com/balcony")
	out, _ := m.Client(clock.Epoch2000, session, []byte(`<presence from='spoofed@capulet.com/x' to='Romeo@Montague.com' type='probe' id='c1'/>`))
	fmt.Printf("%s to %s:\n%s\n", out[0].Kind, out[0].To, out[0].Stanza)
	// Output:
	// probe to romeo@montague.com:
	// <presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='c1'/>
}

// A server domain that comes up announces itself to its buddies
// (XEP-0318 §3.2, XEP-0267; RULES S3), and probes to it answer with the
// time it came online.
func ExampleMachine_Up() {
	m, _ := core.New(core.Config{Served: []string{"montague.com"}})
	m.SetRoster(stanza.MustParse("montague.com"), stanza.MustParse("capulet.com"), core.SubBoth)
	start, _ := clock.Parse("2012-09-10T20:00:00Z")
	out, _ := m.Up(start, stanza.MustParse("montague.com"))
	for _, o := range out { // route like probe replies
		fmt.Println(o.Kind, string(o.To), string(o.Stanza))
	}
	out, _ = m.Server(start.Add(3600e9), []byte(`<presence from='juliet@capulet.com/balcony' to='montague.com' type='probe'/>`))
	fmt.Println(string(out[0].Stanza))
	// Output:
	// reply capulet.com <presence from='montague.com' to='capulet.com'><delay xmlns='urn:xmpp:delay' from='montague.com' stamp='2012-09-10T20:00:00Z'/></presence>
	// <presence from='montague.com' to='juliet@capulet.com/balcony'><delay xmlns='urn:xmpp:delay' from='montague.com' stamp='2012-09-10T20:00:00Z'/></presence>
}

// Refused input is reported with a typed error, emits nothing and changes
// nothing.
func ExampleInputError() {
	m, _ := core.New(core.Config{Served: []string{"montague.com"}})
	_, err := m.Client(clock.Epoch2000, stanza.MustParse("romeo@montague.com/balcony"), []byte(`<presence><!-- hi --></presence>`))
	fmt.Println(err)
	// Output:
	// lastseen: bad client input: XML feature forbidden by RFC 6120 §11 at byte 10: comments are not allowed
}

// Sharded serves many connections at once; its outputs are the caller's
// to keep.
func ExampleSharded() {
	s, _ := core.NewSharded(core.Config{Served: []string{"montague.com"}}, 0)
	nurse := stanza.MustParse("nurse@montague.com/kitchen")
	s.Client(clock.Epoch2000, nurse, []byte(`<presence><show>chat</show></presence>`))
	out, _ := s.Client(clock.Epoch2000.Add(60e9), nurse, []byte(`<presence type='probe'/>`))
	fmt.Println(string(out[0].Stanza))
	// Output:
	// <presence from='nurse@montague.com/kitchen' to='nurse@montague.com/kitchen'><show>chat</show><delay xmlns='urn:xmpp:delay' from='nurse@montague.com/kitchen' stamp='2000-01-01T00:00:00Z'/></presence>
}

// A connection goroutine keeps one Outputs and passes it to every call, so
// that answering allocates nothing once its buffers have grown.
func ExampleSharded_ServerInto() {
	s, _ := core.NewSharded(core.Config{Served: []string{"montague.com"}}, 0)
	s.SetRoster(stanza.MustParse("romeo@montague.com"), stanza.MustParse("juliet@capulet.com"), core.SubBoth)
	var out core.Outputs // one per connection goroutine
	for _, probe := range []string{
		`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='p1'/>`,
		`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='p2'/>`,
	} {
		if err := s.ServerInto(&out, clock.Epoch2000, []byte(probe)); err != nil {
			fmt.Println(err)
			continue
		}
		for _, o := range out.List { // valid until out is used again
			fmt.Println(o.Kind, string(o.To), string(o.Stanza))
		}
	}
	// Output:
	// reply juliet@capulet.com/balcony <presence from='romeo@montague.com' to='juliet@capulet.com/balcony' type='unavailable' id='p1'/>
	// reply juliet@capulet.com/balcony <presence from='romeo@montague.com' to='juliet@capulet.com/balcony' type='unavailable' id='p2'/>
}

// A Machine's outputs are overwritten by its next call. A host that queues
// them to send later (after a batch, or from another goroutine) keeps
// copies made by CloneOutputs.
func ExampleCloneOutputs() {
	m, _ := core.New(core.Config{Served: []string{"montague.com"}})
	m.SetRoster(stanza.MustParse("romeo@montague.com"), stanza.MustParse("juliet@capulet.com"), core.SubBoth)
	var queue []core.Output
	for _, probe := range []string{
		`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='p1'/>`,
		`<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='p2'/>`,
	} {
		out, err := m.Server(clock.Epoch2000, []byte(probe))
		if err != nil {
			fmt.Println(err)
			continue
		}
		queue = append(queue, core.CloneOutputs(out)...) // not out: the next call reuses it
	}
	for _, o := range queue {
		fmt.Println(o.Kind, string(o.To), string(o.Stanza))
	}
	// Output:
	// reply juliet@capulet.com/balcony <presence from='romeo@montague.com' to='juliet@capulet.com/balcony' type='unavailable' id='p1'/>
	// reply juliet@capulet.com/balcony <presence from='romeo@montague.com' to='juliet@capulet.com/balcony' type='unavailable' id='p2'/>
}
