package main

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// host is what the guest asks the host when config option 9 is on (ABI.md
// section 5, "Facts from the host"). On wasip1 it is the `lastseen`
// imports (exports.go); native tests give a fake. Every method returns the
// host's answer, or a negative number when the host could not answer.
type host interface {
	// probeFacts answers a probe from prober to owner: bit 0 blocked,
	// bits 1-2 the subscription, bit 3 hidden.
	probeFacts(owner, prober string) int32
	// blocks reports (1 or 0) whether owner blocks jid.
	blocks(owner, jid string) int32
	// subscribers writes owner's contacts with subscription from or both
	// into buf as back-to-back str records and returns the bytes they
	// take; when that is more than len(buf) it wrote nothing. It returns
	// noLister when the host cannot list subscribers.
	subscribers(owner string, buf []byte) int32
}

// Answers of an import that mean "no answer".
const (
	hostFailed = -1 // the host's callback failed; see the host's error
	noLister   = -2 // subscribers: the host has no way to list them
)

// maxSubscriberTries bounds the retries of subscribers with a bigger
// buffer, for a host whose list keeps growing between two calls.
const maxSubscriberTries = 4

// errHost is the error of an event during which the host failed to answer
// an import: the event emits nothing (code 19 HOST). When the host said so
// (failed: a negative answer, flag bit 1 of the result) the host holds the
// reason; otherwise its answer was unusable. The text names the import.
type errHost struct {
	fn     string
	failed bool
}

func (e *errHost) Error() string { return "the host failed to answer " + e.fn }

// hostAuth is the core.Authorizer of a machine whose facts come from the
// host. After a failed import it answers as if everything were hidden and
// blocked, without asking again, so that the rest of the event reveals
// nothing; the guest then replaces the event's result with the error.
type hostAuth struct{ g *guest }

var _ core.SubscriberLister = hostAuth{}
var _ core.ProbeAuthorizer = hostAuth{}

// ProbeFacts implements core.ProbeAuthorizer with one import call.
func (a hostAuth) ProbeFacts(owner, prober stanza.JID) (blocked bool, sub core.Subscription, hidden bool) {
	g := a.g
	if g.hostErr != nil {
		return true, core.SubNone, true
	}
	r := g.host.probeFacts(owner.String(), prober.String())
	if r < 0 {
		g.hostErr = &errHost{"probe_facts", true}
		return true, core.SubNone, true
	}
	return r&1 != 0, core.Subscription(r >> 1 & 3), r&8 != 0
}

// Blocks implements core.Authorizer.
func (a hostAuth) Blocks(owner, jid stanza.JID) bool {
	g := a.g
	if g.hostErr != nil {
		return true
	}
	r := g.host.blocks(owner.String(), jid.String())
	if r < 0 {
		g.hostErr = &errHost{"blocks", true}
		return true
	}
	return r != 0
}

// Subscription implements core.Authorizer. The machine does not call it
// when its Authorizer is a ProbeAuthorizer; it is here for completeness.
func (a hostAuth) Subscription(owner, contact stanza.JID) core.Subscription {
	_, sub, _ := a.ProbeFacts(owner, contact)
	return sub
}

// Hidden implements core.Authorizer, like Subscription.
func (a hostAuth) Hidden(owner stanza.JID) bool {
	_, _, hidden := a.ProbeFacts(owner, owner)
	return hidden
}

// Subscribers implements core.SubscriberLister from the list that
// fetchSubscribers got before the machine's Up or Down ran.
func (a hostAuth) Subscribers(owner stanza.JID, yield func(contact stanza.JID) bool) {
	for _, c := range a.g.subs {
		if !yield(c) {
			return
		}
	}
}

// fetchSubscribers asks the host for d's subscribers before an up or down
// changes anything, so that a failure refuses the event with the machine
// unchanged. The list is normalised to bare JIDs, without duplicates,
// sorted as core.MemoryAuth sorts it, and without the contacts that d
// blocks (asked with blocks): the host lists its roster, the guest applies
// the rules, so every host gets the native library's order and filter.
func (g *guest) fetchSubscribers(event string, d stanza.JID) error {
	g.subs = g.subs[:0]
	if d.IsZero() || d.HasLocal() || !d.IsBare() {
		return nil // the machine refuses it (NOT_DOMAIN) before it lists anyone
	}
	if len(g.subBuf) == 0 {
		g.subBuf = make([]byte, 4096) // most rosters fit: one call
	}
	n := int32(len(g.subBuf))
	for try := 0; ; try++ {
		if try == maxSubscriberTries {
			return &errHost{"subscribers (the list kept growing)", false}
		}
		if int(n) > len(g.subBuf) {
			g.subBuf = make([]byte, n)
		}
		n = g.host.subscribers(d.String(), g.subBuf)
		switch {
		case n == noLister:
			return &core.InputError{Event: event, Err: core.ErrNoSubscriberLister}
		case n < 0:
			return &errHost{"subscribers", true}
		}
		if int(n) <= len(g.subBuf) {
			break
		}
	}
	b := g.subBuf[:n]
	for len(b) > 0 {
		if len(b) < 4 {
			return &errHost{"subscribers (a truncated list)", false}
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return &errHost{"subscribers (a truncated list)", false}
		}
		// Parse copies what it keeps: the buffer is reused.
		if j, err := stanza.Parse(string(b[4 : 4+l])); err == nil && !j.IsZero() {
			g.subs = append(g.subs, j.Bare())
		}
		b = b[4+l:]
	}
	slices.SortFunc(g.subs, func(x, y stanza.JID) int { return strings.Compare(x.String(), y.String()) })
	g.subs = slices.CompactFunc(g.subs, func(x, y stanza.JID) bool { return x.String() == y.String() })
	kept := g.subs[:0]
	for _, c := range g.subs {
		r := g.host.blocks(d.String(), c.String())
		if r < 0 {
			g.subs = g.subs[:0]
			return &errHost{"blocks", true}
		}
		if r == 0 {
			kept = append(kept, c)
		}
	}
	g.subs = kept
	return nil
}
