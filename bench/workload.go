package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
)

// The inputs. They match core/bench_test.go, so `go test -bench` in core/
// and this program measure the same stanzas.
const (
	domain = "montague.com"
	user   = "romeo@montague.com"
	prober = "juliet@capulet.com"

	// A typical client broadcast: show, status, priority and entity
	// capabilities (XEP-0115), as most clients send it.
	availA = `<presence id='av1'><show>away</show><status>On the balcony</status><priority>5</priority>` +
		`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>`
	availB = `<presence id='av2'><show>xa</show><status>Asleep under the sycamore</status><priority>5</priority>` +
		`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>`
	unavail = `<presence type='unavailable'><status>Going offline. Out of battery.</status></presence>`

	probeUser   = `<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='probe-1'/>`
	probeDomain = `<presence from='juliet@capulet.com/balcony' to='montague.com' type='probe' id='probe-2'/>`
	clientProbe = `<presence to='juliet@capulet.com' type='probe' id='cp-1'/>`

	queryUser   = `<iq from='juliet@capulet.com/balcony' to='romeo@montague.com' type='get' id='last-1'><query xmlns='jabber:iq:last'/></iq>`
	queryDomain = `<iq from='juliet@capulet.com/balcony' to='montague.com' type='get' id='last-2'><query xmlns='jabber:iq:last'/></iq>`
)

var t0 = clock.Epoch2000

// Workload is one measured operation: a setup that builds the state, then
// one input stanza per operation (alternating between In[0] and In[1]),
// each emitting Want stanzas.
type Workload struct {
	Name  string
	Desc  string
	Setup func(im Impl) error
	// Session is the full JID of the client session that sends In; empty
	// means In comes from another server.
	Session string
	In      [2]string
	Want    int
	// Step is how far the clock moves before each operation.
	Step time.Duration
	// NoPeers, when set, says why the peer baselines do not run this
	// workload (they implement only the presence rules).
	NoPeers string
}

// noXEP0012 is why the peers sit out the Last Activity workloads.
const noXEP0012 = "peers implement no XEP-0012"

// offlineUser is the state of probe-offline: a user whose last resource
// went offline with a status.
func offlineUser(im Impl) error {
	if err := roster(im); err != nil {
		return err
	}
	if err := clientAt(im, t0.Add(time.Hour), user+"/balcony", availA); err != nil {
		return err
	}
	return clientAt(im, t0.Add(2*time.Hour), user+"/balcony", unavail)
}

func roster(im Impl) error {
	if err := im.Up(t0, domain); err != nil {
		return err
	}
	if err := im.Roster(user, prober); err != nil {
		return err
	}
	// A generous probe limit so that a batch of client probes at one
	// instant is never refused; the bucket is still checked and refilled.
	return im.Limit(t0, 1_000_000, time.Second)
}

// clientAt sends raw from full at now, expecting no output.
func clientAt(im Impl, now clock.Time, full, raw string) error {
	s, err := im.Session(full)
	if err != nil {
		return err
	}
	n, err := im.Client(now, s, []byte(raw))
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("%s from %s emitted %d stanzas, want none", raw, full, n)
	}
	return nil
}

func withResources(n int) func(Impl) error {
	return func(im Impl) error {
		if err := roster(im); err != nil {
			return err
		}
		for i := range n {
			if err := clientAt(im, t0.Add(time.Duration(i+1)*time.Minute), user+"/res"+strconv.Itoa(i), availA); err != nil {
				return err
			}
		}
		return nil
	}
}

func workloads() []Workload {
	return []Workload{
		{
			Name:  "probe-offline",
			Desc:  "server probe for a user whose last resource went offline with a status (P3): 1 reply with status and delay",
			Setup: offlineUser,
			In:    [2]string{probeUser, probeUser},
			Want:  1,
		},
		{
			Name:    "last-activity-offline",
			Desc:    "XEP-0012 Last Activity query for the same offline user (L1): 1 iq result with the seconds and the status",
			Setup:   offlineUser,
			In:      [2]string{queryUser, queryUser},
			Want:    1,
			NoPeers: noXEP0012,
		},
		{
			Name:  "probe-1-resource",
			Desc:  "server probe for a user with 1 available resource (P4): 1 reply, kept stanza plus delay",
			Setup: withResources(1),
			In:    [2]string{probeUser, probeUser},
			Want:  1,
		},
		{
			Name:  "probe-5-resources",
			Desc:  "server probe for a user with 5 available resources (P4): 5 replies",
			Setup: withResources(5),
			In:    [2]string{probeUser, probeUser},
			Want:  5,
		},
		{
			Name:  "probe-server",
			Desc:  "server probe to the served domain (S1): 1 reply with the uptime delay",
			Setup: roster,
			In:    [2]string{probeDomain, probeDomain},
			Want:  1,
		},
		{
			Name:    "last-activity-server",
			Desc:    "XEP-0012 Last Activity query to the served domain (L2): 1 iq result with the uptime",
			Setup:   roster,
			In:      [2]string{queryDomain, queryDomain},
			Want:    1,
			NoPeers: noXEP0012,
		},
		{
			Name: "update-available",
			Desc: "client available broadcast that changes the presence (T1): tracked, nothing emitted",
			Setup: func(im Impl) error {
				if err := roster(im); err != nil {
					return err
				}
				return clientAt(im, t0.Add(time.Hour), user+"/balcony", availB)
			},
			Session: user + "/balcony",
			In:      [2]string{availA, availB},
			Step:    time.Millisecond,
		},
		{
			Name: "update-unavailable",
			Desc: "client unavailable broadcast (T3): tracked, nothing emitted",
			Setup: func(im Impl) error {
				if err := roster(im); err != nil {
					return err
				}
				return clientAt(im, t0.Add(time.Hour), user+"/balcony", availA)
			},
			Session: user + "/balcony",
			In:      [2]string{unavail, unavail},
			Step:    time.Millisecond,
		},
		{
			Name:    "client-probe-routed",
			Desc:    "client probe to a remote JID (C1, C3): from rewritten, rate limit checked, 1 probe emitted for routing",
			Setup:   roster,
			Session: user + "/balcony",
			In:      [2]string{clientProbe, clientProbe},
			Want:    1,
			Step:    time.Millisecond,
		},
	}
}

// instance is a workload set up on one Impl, ready to run operations.
type instance struct {
	name    string // the contender's
	w       *Workload
	im      Impl
	batch   Batcher // nil when the Impl has no batch call
	session int
	in      [2][]byte
	now     clock.Time
	i       int
	raws    [][]byte // batch scratch
	last    int      // outputs of the last call, for tests
}

// batchSize is how many stanzas a batched engine gets per call.
const batchSize = 64

func (w *Workload) start(c Contender) (*instance, error) {
	im, err := c.New([]string{domain})
	if err != nil {
		return nil, err
	}
	if err := w.Setup(im); err != nil {
		im.Release()
		return nil, fmt.Errorf("%s setup: %w", w.Name, err)
	}
	in := &instance{name: c.Name, w: w, im: im, in: [2][]byte{[]byte(w.In[0]), []byte(w.In[1])}, now: t0.Add(3 * time.Hour)}
	if w.Session != "" {
		if in.session, err = im.Session(w.Session); err != nil {
			im.Release()
			return nil, err
		}
	}
	in.batch, _ = im.(Batcher)
	return in, nil
}

// one runs a single operation and checks how many stanzas it emitted.
func (in *instance) one() error {
	in.now = in.now.Add(in.w.Step)
	raw := in.in[in.i&1]
	in.i++
	var n int
	var err error
	if in.w.Session != "" {
		n, err = in.im.Client(in.now, in.session, raw)
	} else {
		n, err = in.im.Server(in.now, raw)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", in.w.Name, err)
	}
	if n != in.w.Want {
		return fmt.Errorf("%s: emitted %d stanzas, want %d", in.w.Name, n, in.w.Want)
	}
	return nil
}

// run performs n operations, batched when the Impl can.
func (in *instance) run(n int) error {
	if in.batch == nil {
		for range n {
			if err := in.one(); err != nil {
				return err
			}
		}
		return nil
	}
	for n > 0 {
		k := min(n, batchSize)
		in.raws = in.raws[:0]
		for range k {
			in.raws = append(in.raws, in.in[in.i&1])
			in.i++
		}
		in.now = in.now.Add(in.w.Step)
		var got int
		var err error
		if in.w.Session != "" {
			got, err = in.batch.ClientBatch(in.now, in.session, in.raws)
		} else {
			got, err = in.batch.ServerBatch(in.now, in.raws)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", in.w.Name, err)
		}
		if got != k*in.w.Want {
			return fmt.Errorf("%s: batch of %d emitted %d stanzas, want %d", in.w.Name, k, got, k*in.w.Want)
		}
		n -= k
	}
	return nil
}
