package core

import (
	"encoding/binary"
	"slices"
	"strings"
)

// Compact facts for MemoryAuth. Most users have a few contacts and no
// block list, and what a Go map costs per entry is its slot (key and value)
// divided by its load, plus whatever the value points to. The load of a
// large Go map swings between 7/16 and 7/8 (its tables split when full),
// and all stripes swing together, as their owners arrive evenly: at 1 M
// users every table had just split and a 40-byte slot cost 91 bytes. So a
// stripe maps an owner to a string: its roster packed (packed below), one
// allocation however many contacts up to packedMax, with a 32-byte slot;
// longer rosters, where binary search pays, are a sorted slice in a map of
// their own, and the rare facts (block list, opt-out) another, both empty
// in most stripes. Measured with BenchmarkMemoryAuthBytes (one 22-byte
// contact per user, owner key and contact string included): 363 B per
// entry with a map per roster, 155 B with a sorted list, 139-160 B (with
// the map's load) with the rare facts behind a pointer in a per-owner
// struct, and now about 100-125 B.

// packedMax is the most items a packed roster holds; a roster that grows
// past it moves to the stripe's map of long rosters, and one that shrinks
// below half of it moves back.
const packedMax = 32

// A packed roster is its items in contact order, each the contact's length
// (uvarint), the contact's bare JID and the subscription (one byte). It is
// read front to back: for a few dozen items that is as fast as a search.

// packedGet returns contact's subscription in packed roster p.
func packedGet(p, contact string) Subscription {
	for i := 0; i < len(p); {
		c, sub, next := packedItem(p, i)
		if c == contact {
			return sub
		}
		i = next
	}
	return SubNone
}

// packedItem reads the item of p at i: its contact, its subscription and
// where the next item starts.
func packedItem(p string, i int) (contact string, sub Subscription, next int) {
	n, w := 0, 0
	for shift := 0; ; shift += 7 {
		b := p[i+w]
		w++
		n |= int(b&0x7f) << shift
		if b < 0x80 {
			break
		}
	}
	start := i + w
	return p[start : start+n], Subscription(p[start+n]), start + n + 1
}

// packedSet returns packed roster p with contact's subscription set
// (SubNone removes it), built in one allocation, and its number of items.
func packedSet(p, contact string, sub Subscription) (string, int) {
	// Where contact's item is (or goes), and where the items after it start.
	at, after, n := len(p), len(p), 0
	for i := 0; i < len(p); n++ {
		c, _, next := packedItem(p, i)
		if at == len(p) && c >= contact {
			at, after = i, i
			if c == contact {
				after = next
				n--
			}
		}
		i = next
	}
	if sub != SubNone {
		n++
	}
	if n == 0 {
		return "", 0
	}
	size := at + len(p) - after
	if sub != SubNone {
		size += uvarintLen(uint64(len(contact))) + len(contact) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, p[:at]...)
	if sub != SubNone {
		b = binary.AppendUvarint(b, uint64(len(contact)))
		b = append(b, contact...)
		b = append(b, byte(sub))
	}
	b = append(b, p[after:]...)
	return string(b), n
}

// unpack returns p's items as a roster, sharing p's memory.
func unpack(p string) roster {
	var r roster
	for i := 0; i < len(p); {
		c, _, next := packedItem(p, i)
		r = append(r, p[next-len(c)-1:next])
		i = next
	}
	return r
}

// pack returns r's items packed.
func pack(r roster) string {
	size := 0
	for _, it := range r {
		size += uvarintLen(uint64(len(it)-1)) + len(it)
	}
	b := make([]byte, 0, size)
	for _, it := range r {
		b = binary.AppendUvarint(b, uint64(len(it)-1))
		b = append(b, it...)
	}
	return string(b)
}

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
