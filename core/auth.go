package core

import (
	"strings"
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
// look the owner up at most twice (MemoryAuth does), where three calls
// cannot.
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

// SubscriberLister is an Authorizer that can list who may see an owner's
// presence, so that Up and Down can announce a server or component to its
// subscribers (RULES S3: its buddies, XEP-0267, or a component's
// subscribers). Up and Down need it: with an Authorizer that does not
// implement it they refuse the call with ErrNoSubscriberLister, before
// anything changes. MemoryAuth implements it.
type SubscriberLister interface {
	Authorizer
	// Subscribers calls yield once for every contact that owner's roster
	// holds with subscription from or both and that owner does not block
	// (Blocks(owner, contact) is false), each a normalised bare JID, and
	// stops early when yield returns false. owner is a bare JID (for Up
	// and Down, a domain). The machine emits one stanza per contact, in
	// the order they come, so the order must depend only on the facts (for
	// example sorted, or the roster's own order) for the outputs to be
	// reproducible. It is a callback rather than a slice so that a host
	// with a large roster can stream it; Subscribers must not call into the
	// machine, and yield does not call back into the Authorizer.
	Subscribers(owner stanza.JID, yield func(contact stanza.JID) bool)
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
// Use it when the host has no roster or privacy storage of its own to ask
// (a test, a small server, a WASM host that feeds facts as events): the
// host then copies every roster change, block and last-seen opt-out into
// it with SetRoster, SetBlock and SetHidden on the Machine or Sharded, and
// must do so before the probes that depend on them. A host that already
// stores these facts implements Authorizer over its own storage instead, so
// that there is one copy. MemoryAuth keeps everything in memory: the facts
// are lost on restart unless the host feeds them again or journals them
// with the machine (package store does).
//
// It is spread over lock stripes so that probes on many cores do not all
// read-lock one lock (golang/go#17973; bench/notes.md, "Parallel wrapper").
type MemoryAuth struct {
	stripes [authStripes]authStripe
}

// authStripes is how many stripes a MemoryAuth has: a power of two, with
// enough of them that two cores rarely read-lock the same one (4 KiB).
const authStripes = 64

type authStripe struct {
	mu     sync.RWMutex
	owners map[string]string     // bare JID → its roster, packed; never an empty one
	long   map[string]roster     // bare JID → its roster, when longer than packedMax
	rare   map[string]*rareFacts // bare JID → its block list and opt-out; never empty ones
	_      [64 - unsafe.Sizeof(sync.RWMutex{}) - 24]byte
}

// stripe returns owner's stripe.
func (a *MemoryAuth) stripe(owner string) *authStripe {
	return &a.stripes[strhash(owner)&(authStripes-1)]
}

// sub returns the subscription owner's roster holds for contact; st is
// read-locked.
func (st *authStripe) sub(owner, contact string) Subscription {
	if p, ok := st.owners[owner]; ok {
		return packedGet(p, contact)
	}
	if len(st.long) == 0 {
		return SubNone
	}
	return st.long[owner].get(contact)
}

// rosterOf returns owner's roster, sharing the packed string's memory;
// st is read-locked.
func (st *authStripe) rosterOf(owner string) roster {
	if p, ok := st.owners[owner]; ok {
		return unpack(p)
	}
	return st.long[owner]
}

// rareOf returns owner's rare facts, or nil; st is read-locked. Most
// stripes have none, and a lookup in an empty map costs nothing.
func (st *authStripe) rareOf(owner string) *rareFacts {
	if len(st.rare) == 0 {
		return nil
	}
	return st.rare[owner]
}

// NewMemoryAuth returns an empty MemoryAuth.
func NewMemoryAuth() *MemoryAuth { return &MemoryAuth{} }

// Subscription implements Authorizer.
func (a *MemoryAuth) Subscription(owner, contact stanza.JID) Subscription {
	o := owner.String()
	st := a.stripe(o)
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.sub(o, contact.Bare().String())
}

// Blocks implements Authorizer, matching the block list items that XEP-0191
// §3.4 allows against jid: its full JID, its bare JID and its domain.
func (a *MemoryAuth) Blocks(owner, jid stanza.JID) bool {
	o := owner.String()
	st := a.stripe(o)
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.rareOf(o).blocksJID(jid)
}

// blocksJID reports whether one of f's block list items matches jid; f may
// be nil.
func (f *rareFacts) blocksJID(jid stanza.JID) bool {
	if f == nil || len(f.blocks) == 0 {
		return false
	}
	blocks := f.blocks
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
	return st.rareOf(o).isHidden()
}

// ProbeFacts implements ProbeAuthorizer under one read lock and with one
// lookup of owner. It skips the roster lookup when prober's bare JID is
// owner, whose sub the machine ignores.
func (a *MemoryAuth) ProbeFacts(owner, prober stanza.JID) (blocked bool, sub Subscription, hidden bool) {
	o := owner.String()
	st := a.stripe(o)
	st.mu.RLock()
	if f := st.rareOf(o); f != nil {
		blocked, hidden = f.blocksJID(prober), f.hidden
	}
	if c := prober.Bare().String(); c != o {
		sub = st.sub(o, c)
	}
	st.mu.RUnlock()
	return blocked, sub, hidden
}

// Subscribers implements SubscriberLister from owner's own facts: the
// contacts with subscription from or both, minus those that a bare-JID or
// domain item of owner's block list matches (the item forms that can match
// a bare JID, XEP-0191 §3.4), in ascending byte order of their normalised
// form. It holds owner's read lock only while it collects them, not while
// yield runs.
func (a *MemoryAuth) Subscribers(owner stanza.JID, yield func(contact stanza.JID) bool) {
	o := owner.Bare().String()
	st := a.stripe(o)
	st.mu.RLock()
	var list []string
	if r := st.rosterOf(o); r != nil {
		// The roster is sorted by contact already (auth_roster.go), which
		// makes the order the same on every engine.
		f := st.rareOf(o)
		list = make([]string, 0, len(r))
		for _, it := range r {
			if c := itemContact(it); itemSub(it).Visible() && !f.blocksBare(c) {
				list = append(list, c)
			}
		}
	}
	st.mu.RUnlock()
	for _, c := range list {
		// The keys were normalised when stored, so Parse takes its fast
		// path and shares c's memory.
		j, err := stanza.Parse(c)
		if err != nil {
			continue
		}
		if !yield(j) {
			return
		}
	}
}

// blocksBare is blocksJID for a normalised bare JID given as text.
func (f *rareFacts) blocksBare(bare string) bool {
	if f == nil || len(f.blocks) == 0 {
		return false
	}
	blocks := f.blocks
	if _, ok := blocks[bare]; ok {
		return true
	}
	// A localpart holds no '@' (RFC 7622 §3.3.1), so what follows the
	// first one is the domain.
	_, ok := blocks[bare[strings.IndexByte(bare, '@')+1:]]
	return ok
}

// SetSubscription implements FactStore; SubNone removes the item.
func (a *MemoryAuth) SetSubscription(owner, contact stanza.JID, sub Subscription) {
	o, k := owner.Bare().String(), contact.Bare().String()
	st := a.stripe(o)
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, long := st.long[o]; !long {
		// Packed, or no roster yet: build the new packed string in one
		// allocation, leaving no garbage between the strings kept (half
		// empty size classes are memory too).
		if np, n := packedSet(st.owners[o], k, sub); n <= packedMax {
			switch {
			case n == 0:
				delete(st.owners, o)
			case st.owners == nil:
				st.owners = map[string]string{o: np}
			default:
				st.owners[o] = np
			}
			return
		}
	}
	r := st.rosterOf(o).set(k, sub)
	_, long := st.long[o]
	switch {
	case len(r) == 0:
		delete(st.owners, o)
		delete(st.long, o)
	case len(r) > packedMax || long && len(r) >= packedMax/2:
		if !long {
			// The items share the packed string's memory: copy them,
			// so that it can go.
			for i := range r {
				r[i] = strings.Clone(r[i])
			}
			delete(st.owners, o)
			if st.long == nil {
				st.long = make(map[string]roster)
			}
		}
		st.long[o] = r
	default:
		delete(st.long, o)
		if st.owners == nil {
			st.owners = make(map[string]string)
		}
		st.owners[o] = pack(r)
	}
}

// updateRare applies change to owner's rare facts under the write lock,
// creating them when needed and dropping them when change leaves none.
func (a *MemoryAuth) updateRare(owner string, change func(f *rareFacts)) {
	st := a.stripe(owner)
	st.mu.Lock()
	defer st.mu.Unlock()
	f := st.rare[owner]
	if f == nil {
		f = &rareFacts{}
	}
	change(f)
	switch {
	case f.empty():
		delete(st.rare, owner)
	case st.rare == nil:
		st.rare = map[string]*rareFacts{owner: f}
	default:
		st.rare[owner] = f
	}
}

// SetBlocked implements FactStore.
func (a *MemoryAuth) SetBlocked(owner, jid stanza.JID, blocked bool) {
	k := jid.String()
	a.updateRare(owner.Bare().String(), func(f *rareFacts) {
		if !blocked {
			delete(f.blocks, k)
			return
		}
		if f.blocks == nil {
			f.blocks = make(map[string]struct{})
		}
		f.blocks[k] = struct{}{}
	})
}

// SetHidden implements FactStore.
func (a *MemoryAuth) SetHidden(owner stanza.JID, hidden bool) {
	a.updateRare(owner.Bare().String(), func(f *rareFacts) { f.hidden = hidden })
}
