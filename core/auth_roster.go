package core

import (
	"slices"
	"strings"
)

// Compact per-owner facts for MemoryAuth. Most users have a few contacts
// and no block list, and a Go map costs about 250 bytes before its first
// entry: a roster is a sorted list (binary search; inserting moves at most
// a few kilobytes even for thousands of contacts), and the rare facts
// (block list, opt-out) sit behind one pointer, so that an owner's facts
// fit in 32 bytes. Measured with BenchmarkMemoryAuthBytes (one 22-byte
// contact per user, owner key and contact string included): 363 B per
// entry with a map per roster, 155 B with a list, 139 B with the rare
// facts moved out.

// roster maps a contact's bare JID to a subscription, never SubNone.
type roster struct {
	list []rosterItem // sorted by contact
}

type rosterItem struct {
	contact string
	sub     Subscription
}

// rareFacts are the facts few owners have; nil when none.
type rareFacts struct {
	blocks map[string]struct{} // block list items as normalised JIDs
	hidden bool
}

func (r *roster) len() int { return len(r.list) }

func (r *roster) find(contact string) (int, bool) {
	return slices.BinarySearchFunc(r.list, contact, func(it rosterItem, c string) int { return strings.Compare(it.contact, c) })
}

func (r *roster) get(contact string) Subscription {
	if i, ok := r.find(contact); ok {
		return r.list[i].sub
	}
	return SubNone
}

// set sets contact's subscription; SubNone removes it.
func (r *roster) set(contact string, sub Subscription) {
	i, ok := r.find(contact)
	switch {
	case ok && sub != SubNone:
		r.list[i].sub = sub
	case ok:
		r.list = slices.Delete(r.list, i, i+1)
		if len(r.list) == 0 {
			r.list = nil
		}
	case sub == SubNone:
	case r.list == nil:
		// Exactly one: the common roster of one contact wastes nothing.
		r.list = []rosterItem{{contact, sub}}
	default:
		r.list = slices.Insert(r.list, i, rosterItem{contact, sub})
	}
}

func (f *ownerFacts) blocks() map[string]struct{} {
	if f == nil || f.rare == nil {
		return nil
	}
	return f.rare.blocks
}

func (f *ownerFacts) hidden() bool { return f != nil && f.rare != nil && f.rare.hidden }

// setRare changes f's rare facts, dropping them when change leaves none.
func (f *ownerFacts) setRare(change func(r *rareFacts)) {
	if f.rare == nil {
		f.rare = &rareFacts{}
	}
	change(f.rare)
	if len(f.rare.blocks) == 0 && !f.rare.hidden {
		f.rare = nil
	}
}
