package core

import (
	"sync"
	"unsafe"

	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Subscription is a roster item's subscription state (RFC 6121 §2.1.2.5).
type Subscription uint8

// Subscription states. From and Both let the contact see the owner's
// presence.
const (
	SubNone Subscription = iota
	SubTo
	SubFrom
	SubBoth
)

// ParseSubscription maps "none", "to", "from" and "both" to a Subscription.
func ParseSubscription(s string) (Subscription, bool) {
	switch s {
	case "none":
		return SubNone, true
	case "to":
		return SubTo, true
	case "from":
		return SubFrom, true
	case "both":
		return SubBoth, true
	}
	return 0, false
}

// String returns the RFC 6121 name of s.
func (s Subscription) String() string {
	switch s {
	case SubTo:
		return "to"
	case SubFrom:
		return "from"
	case SubBoth:
		return "both"
	}
	return "none"
}

// Visible reports whether a contact with subscription s may see the
// owner's presence.
func (s Subscription) Visible() bool { return s == SubFrom || s == SubBoth }

// Authorizer answers the questions the machine must ask the host before it
// reveals anything: roster subscriptions, blocking and last-seen opt-out.
// The host owns these facts (its roster and privacy storage); lastseen
// never keeps a copy unless the host uses MemoryAuth.
//
// All JIDs are normalised. Implementations used with Sharded must be safe
// for concurrent use.
type Authorizer interface {
	// Subscription returns the subscription that owner's roster holds for
	// contact (both bare JIDs); SubNone when there is no item.
	Subscription(owner, contact stanza.JID) Subscription
	// Blocks reports whether owner (bare) blocks jid per XEP-0191: an item
	// user@domain/resource or domain/resource matches only that JID, an item
	// user@domain matches it with any resource, and an item domain matches
	// the domain and every JID at it (XEP-0191 §3.4, XEP-0016 §2.1).
	Blocks(owner, jid stanza.JID) bool
	// Hidden reports whether owner (bare) opted out of last-seen: replies
	// about owner then carry no delay and no offline status.
	Hidden(owner stanza.JID) bool
}

// ProbeAuthorizer is an Authorizer that can answer, in one call, the three
// questions a probe to a user raises. The machine uses ProbeFacts when its
// Authorizer implements this interface, and otherwise asks Blocks,
// Subscription and Hidden in turn; an implementation must give the same
// answers either way. It exists because one call can take one lock and
// look the owner up once (MemoryAuth does), where three calls cannot.
// Implementing it is optional, and an Authorizer without it works as
// before.
type ProbeAuthorizer interface {
	Authorizer
	// ProbeFacts answers for a probe from prober (any normalised JID) to
	// owner (bare): blocked is what Blocks(owner, prober) reports, sub
	// what Subscription(owner, prober's bare JID) returns, and hidden what
	// Hidden(owner) reports. The machine calls it once per probe to a user,
	// also when the first answer makes the others moot. When prober's bare
	// JID is owner, the machine does not use sub, which may then be
	// anything.
	ProbeFacts(owner, prober stanza.JID) (blocked bool, sub Subscription, hidden bool)
}

// FactStore is an Authorizer that also takes facts, so that a host without
// its own roster storage (or a WASM host) can feed them as events. The
// machine's SetRoster, SetBlock and SetHidden call it.
type FactStore interface {
	Authorizer
	SetSubscription(owner, contact stanza.JID, sub Subscription)
	SetBlocked(owner, jid stanza.JID, blocked bool)
	SetHidden(owner stanza.JID, hidden bool)
}

// MemoryAuth is an in-memory FactStore, safe for concurrent use. Its zero
// value is empty and ready.
//
// Owners are spread over stripes, each with its own lock on its own cache
// line. A read lock writes its lock's line, so one lock read-locked for
// every probe on every core makes that line travel between the cores on
// each call, which grows with the core count (golang/go#17973). On 2
// cores the difference is within the noise (bench/notes.md, "Parallel
// wrapper"); the stripes cost nothing measurable on one.
type MemoryAuth struct {
	stripes [authStripes]authStripe
}

// authStripes is how many stripes a MemoryAuth has: a power of two, with
// enough of them that two cores rarely read-lock the same one (4 KiB).
const authStripes = 64

type authStripe struct {
	mu     sync.RWMutex
	owners map[string]*ownerFacts // bare JID → its facts; never an empty one
	_      [64 - unsafe.Sizeof(sync.RWMutex{}) - 8]byte
}

// stripe returns owner's stripe.
func (a *MemoryAuth) stripe(owner string) *authStripe {
	return &a.stripes[strhash(owner)&(authStripes-1)]
}

// ownerFacts is what MemoryAuth knows about one owner, kept together so
// that a probe looks the owner up once.
type ownerFacts struct {
	roster roster     // see auth_roster.go
	rare   *rareFacts // block list and opt-out
}

func (f *ownerFacts) empty() bool { return f.roster.len() == 0 && f.rare == nil }

// NewMemoryAuth returns an empty MemoryAuth.
func NewMemoryAuth() *MemoryAuth { return &MemoryAuth{} }

// Subscription implements Authorizer.
func (a *MemoryAuth) Subscription(owner, contact stanza.JID) Subscription {
	o := owner.String()
	st := a.stripe(o)
	st.mu.RLock()
	defer st.mu.RUnlock()
	if f := st.owners[o]; f != nil {
		return f.roster.get(contact.Bare().String())
	}
	return SubNone
}

// Blocks implements Authorizer, matching the block list items that XEP-0191
// §3.4 allows against jid: its full JID, its bare JID and its domain.
func (a *MemoryAuth) Blocks(owner, jid stanza.JID) bool {
	o := owner.String()
	st := a.stripe(o)
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.owners[o].blocksJID(jid)
}

// blocksJID reports whether one of f's block list items matches jid; f may
// be nil.
func (f *ownerFacts) blocksJID(jid stanza.JID) bool {
	blocks := f.blocks()
	if len(blocks) == 0 {
		return false
	}
	has := func(item string) bool { _, ok := blocks[item]; return ok }
	// A domain/resource item is matched by the full-JID lookup alone: XEP-0016
	// §2.1 says only that resource of the domain itself matches, not
	// user@domain/resource.
	return has(jid.String()) || has(jid.Bare().String()) || has(jid.Domain())
}

// Hidden implements Authorizer.
func (a *MemoryAuth) Hidden(owner stanza.JID) bool {
	o := owner.String()
	st := a.stripe(o)
	st.mu.RLock()
	defer st.mu.RUnlock()
	f := st.owners[o]
	return f.hidden()
}

// ProbeFacts implements ProbeAuthorizer under one read lock and with one
// lookup of owner. It skips the roster lookup when prober's bare JID is
// owner, whose sub the machine ignores.
func (a *MemoryAuth) ProbeFacts(owner, prober stanza.JID) (blocked bool, sub Subscription, hidden bool) {
	o := owner.String()
	st := a.stripe(o)
	st.mu.RLock()
	if f := st.owners[o]; f != nil {
		blocked = f.blocksJID(prober)
		if c := prober.Bare().String(); c != o {
			sub = f.roster.get(c)
		}
		hidden = f.hidden()
	}
	st.mu.RUnlock()
	return blocked, sub, hidden
}

// update applies change to owner's facts under the write lock, creating
// them when needed and dropping them when change leaves them empty.
func (a *MemoryAuth) update(owner string, change func(f *ownerFacts)) {
	st := a.stripe(owner)
	st.mu.Lock()
	defer st.mu.Unlock()
	f := st.owners[owner]
	if f == nil {
		f = &ownerFacts{}
	}
	change(f)
	switch {
	case f.empty():
		delete(st.owners, owner)
	case st.owners == nil:
		st.owners = map[string]*ownerFacts{owner: f}
	default:
		st.owners[owner] = f
	}
}

// SetSubscription implements FactStore; SubNone removes the item.
func (a *MemoryAuth) SetSubscription(owner, contact stanza.JID, sub Subscription) {
	k := contact.Bare().String()
	a.update(owner.Bare().String(), func(f *ownerFacts) { f.roster.set(k, sub) })
}

// SetBlocked implements FactStore.
func (a *MemoryAuth) SetBlocked(owner, jid stanza.JID, blocked bool) {
	k := jid.String()
	a.update(owner.Bare().String(), func(f *ownerFacts) {
		f.setRare(func(r *rareFacts) {
			if !blocked {
				delete(r.blocks, k)
				return
			}
			if r.blocks == nil {
				r.blocks = make(map[string]struct{})
			}
			r.blocks[k] = struct{}{}
		})
	})
}

// SetHidden implements FactStore.
func (a *MemoryAuth) SetHidden(owner stanza.JID, hidden bool) {
	a.update(owner.Bare().String(), func(f *ownerFacts) { f.setRare(func(r *rareFacts) { r.hidden = hidden }) })
}
