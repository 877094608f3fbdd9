package lsjackal

import (
	"context"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
	blocklistmodel "github.com/ortuman/jackal/pkg/model/blocklist"
	rostermodel "github.com/ortuman/jackal/pkg/model/roster"
)

// Storage is the part of jackal's repository (repository.Repository) the
// Authorizer reads: roster items and block lists.
type Storage interface {
	FetchRosterItem(ctx context.Context, username, jid string) (*rostermodel.Item, error)
	FetchRosterItems(ctx context.Context, username string) ([]*rostermodel.Item, error)
	FetchBlockListItems(ctx context.Context, username string) ([]*blocklistmodel.Item, error)
}

// storageTimeout bounds one storage look-up; the machine's questions have
// no context of their own.
const storageTimeout = 5 * time.Second

// Authorizer answers the machine's roster and blocking questions from
// jackal's own storage at the moment they are asked, so nothing is mirrored
// at start-up and roster or block list changes take effect on the next
// probe without any event. jackal has no presence opt-out, so no one is
// hidden. A storage error fails closed: the prober is treated as blocked
// and unsubscribed, and the error is logged.
//
// It implements core.Authorizer, core.ProbeAuthorizer and
// core.SubscriberLister. Only users of the served domains own rosters in
// jackal; a domain owner has none, so Up announces to nobody.
type Authorizer struct {
	store  Storage
	logger log.Logger
}

// NewAuthorizer returns an Authorizer reading store.
func NewAuthorizer(store Storage, logger log.Logger) *Authorizer {
	return &Authorizer{store: store, logger: logger}
}

var (
	_ core.ProbeAuthorizer  = (*Authorizer)(nil)
	_ core.SubscriberLister = (*Authorizer)(nil)
)

func (a *Authorizer) fail(op string, owner stanza.JID, err error) {
	level.Error(a.logger).Log("msg", "lastseen: storage look-up failed; answering as blocked", "op", op, "owner", owner.String(), "err", err)
}

// Subscription reports contact's subscription in owner's roster.
func (a *Authorizer) Subscription(owner, contact stanza.JID) core.Subscription {
	if !owner.HasLocal() {
		return core.SubNone
	}
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	ri, err := a.store.FetchRosterItem(ctx, owner.Local(), contact.Bare().String())
	if err != nil {
		a.fail("roster", owner, err)
		return core.SubNone
	}
	return subscriptionOf(ri)
}

func subscriptionOf(ri *rostermodel.Item) core.Subscription {
	if ri == nil {
		return core.SubNone
	}
	sub, ok := core.ParseSubscription(ri.Subscription)
	if !ok {
		return core.SubNone
	}
	return sub
}

// Blocks reports whether owner's XEP-0191 block list matches jid.
func (a *Authorizer) Blocks(owner, jid stanza.JID) bool {
	if !owner.HasLocal() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	items, err := a.store.FetchBlockListItems(ctx, owner.Local())
	if err != nil {
		a.fail("blocklist", owner, err)
		return true
	}
	return blocked(items, jid)
}

// Hidden reports false: jackal has no presence opt-out.
func (a *Authorizer) Hidden(owner stanza.JID) bool { return false }

// ProbeFacts answers a probe's questions, skipping the roster look-up when
// the block list already silences the prober.
func (a *Authorizer) ProbeFacts(owner, prober stanza.JID) (isBlocked bool, sub core.Subscription, hidden bool) {
	if a.Blocks(owner, prober) {
		return true, core.SubNone, false
	}
	return false, a.Subscription(owner, prober), false
}

// Subscribers yields the contacts of owner's roster with subscription from
// or both that owner does not block.
func (a *Authorizer) Subscribers(owner stanza.JID, yield func(contact stanza.JID) bool) {
	if !owner.HasLocal() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	ris, err := a.store.FetchRosterItems(ctx, owner.Local())
	if err != nil {
		a.fail("roster items", owner, err)
		return
	}
	blocks, err := a.store.FetchBlockListItems(ctx, owner.Local())
	if err != nil {
		a.fail("blocklist", owner, err)
		return
	}
	for _, ri := range ris {
		contact, err := stanza.Parse(ri.Jid)
		if err != nil || !subscriptionOf(ri).Visible() || blocked(blocks, contact) {
			continue
		}
		if !yield(contact) {
			return
		}
	}
}

// blocked matches jid against block list items as XEP-0191 §3.4 (by way of
// XEP-0016's order) says: a full JID item matches that full JID, a bare
// JID item the bare JID and all its resources, a domain item every JID at
// the domain, and a domain/resource item only that JID (the core's
// MemoryAuth matches the same way, CHOICES 17). Items that do not parse
// match nothing.
func blocked(items []*blocklistmodel.Item, jid stanza.JID) bool {
	for _, it := range items {
		item, err := stanza.Parse(it.Jid)
		if err != nil {
			continue
		}
		switch {
		case item.HasLocal() && item.IsBare():
			if jid.Bare().String() == item.String() {
				return true
			}
		case !item.HasLocal() && item.IsBare():
			if jid.Domain() == item.Domain() {
				return true
			}
		default:
			if jid.String() == item.String() {
				return true
			}
		}
	}
	return false
}
