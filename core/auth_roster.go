package core

import (
	"slices"
	"strings"
)

// Compact facts for MemoryAuth. Most users have a few contacts and no
// block list, and what a Go map costs per entry is its slot (key and value)
// divided by its load, plus whatever the value points to. So a stripe maps
// an owner to its roster by value, a sorted slice of strings, each the
// contact's bare JID followed by one byte of subscription (one allocation
// per contact, none for a separate item), and the rare facts (block list,
// opt-out) live in a second map that most stripes leave empty. Measured
// with BenchmarkMemoryAuthBytes (one 22-byte contact per user, owner key
// and contact string included): 363 B per entry with a map per roster, 155 B
// with a list, 139-160 B (with the map's load) with the rare facts behind a
// pointer in a per-owner struct, about 125 B now.

// roster is an owner's roster: contact bare JID + subscription byte, sorted
// by contact, never SubNone. nil when empty.
type roster []string

func itemContact(it string) string                     { return it[:len(it)-1] }
func itemSub(it string) Subscription                   { return Subscription(it[len(it)-1]) }
func makeItem(contact string, sub Subscription) string { return contact + string(rune(sub)) }

func (r roster) find(contact string) (int, bool) {
	return slices.BinarySearchFunc(r, contact, func(it, c string) int { return strings.Compare(itemContact(it), c) })
}

func (r roster) get(contact string) Subscription {
	if i, ok := r.find(contact); ok {
		return itemSub(r[i])
	}
	return SubNone
}

// set returns r with contact's subscription set; SubNone removes it.
func (r roster) set(contact string, sub Subscription) roster {
	i, ok := r.find(contact)
	switch {
	case ok && sub != SubNone:
		r[i] = makeItem(contact, sub)
	case ok:
		r = slices.Delete(r, i, i+1)
		if len(r) == 0 {
			r = nil
		}
	case sub == SubNone:
	case r == nil:
		// Exactly one: the common roster of one contact wastes nothing.
		r = roster{makeItem(contact, sub)}
	default:
		r = slices.Insert(r, i, makeItem(contact, sub))
	}
	return r
}

// rareFacts are the facts few owners have.
type rareFacts struct {
	blocks map[string]struct{} // block list items as normalised JIDs
	hidden bool
}

func (f *rareFacts) empty() bool { return len(f.blocks) == 0 && !f.hidden }

func (f *rareFacts) isHidden() bool { return f != nil && f.hidden }
