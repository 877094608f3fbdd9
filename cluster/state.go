package cluster

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
)

// replicated is what every node derives from the log besides the machine's
// own state: the same on every node at the same revision.
type replicated struct {
	rev     int64             // the last revision applied
	clock   clock.Time        // the latest stamp applied: time never goes back
	members map[string]int64  // live member keys → the revision that created them
	owners  map[string]string // available sessions → the member key of their node
}

func newReplicated() replicated {
	return replicated{members: make(map[string]int64), owners: make(map[string]string)}
}

// oldest is the live member that joined first; it publishes snapshots. All
// nodes agree on it at a given revision.
func (r *replicated) oldest() string {
	best, bestRev := "", int64(0)
	for k, rev := range r.members {
		if best == "" || rev < bestRev {
			best, bestRev = k, rev
		}
	}
	return best
}

// sessionsOf lists the sessions owned by member, in order, so that every
// node closes them in the same order (two resources of one user do not
// commute: the last to close is the user's last unavailable presence).
func (r *replicated) sessionsOf(member string) []string {
	var s []string
	for sess, m := range r.owners {
		if m == member {
			s = append(s, sess)
		}
	}
	slices.Sort(s)
	return s
}

const (
	snapMagic   = "LSCS"
	snapVersion = 1
)

// appendSnapshot encodes the replicated state, the probe limit and the
// machine's snapshot (core's own encoding), with a CRC-32C at the end.
func appendSnapshot(dst []byte, r *replicated, limit core.RateLimit, machine []byte) []byte {
	start := len(dst)
	dst = append(dst, snapMagic...)
	dst = binary.AppendUvarint(dst, snapVersion)
	dst = binary.AppendVarint(dst, r.rev)
	dst = binary.AppendVarint(dst, int64(r.clock))
	dst = binary.AppendUvarint(dst, uint64(limit.Burst))
	dst = binary.AppendVarint(dst, int64(limit.Per))
	keys := slices.Sorted(mapKeys(r.members))
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = appendString(dst, k)
		dst = binary.AppendVarint(dst, r.members[k])
	}
	keys = slices.Sorted(mapKeys(r.owners))
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = appendString(dst, k)
		dst = appendString(dst, r.owners[k])
	}
	dst = binary.AppendUvarint(dst, uint64(len(machine)))
	dst = append(dst, machine...)
	return binary.BigEndian.AppendUint32(dst, crc32Sum(dst[start:]))
}

func mapKeys[V any](m map[string]V) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// decodeSnapshot checks and decodes a snapshot; machine aliases b.
func decodeSnapshot(b []byte) (r replicated, limit core.RateLimit, machine []byte, err error) {
	body, err := checked(b)
	if err != nil {
		return r, limit, nil, err
	}
	if len(body) < len(snapMagic) || string(body[:len(snapMagic)]) != snapMagic {
		return r, limit, nil, fmt.Errorf("%w: not a cluster snapshot", ErrCorrupt)
	}
	d := decoder{b: body[len(snapMagic):]}
	if v := d.uvarint(); v != snapVersion && d.err == nil {
		return r, limit, nil, fmt.Errorf("%w: snapshot version %d", ErrCorrupt, v)
	}
	r = newReplicated()
	r.rev = d.varint()
	r.clock = clock.Time(d.varint())
	limit = core.RateLimit{Burst: int(d.uvarint()), Per: time.Duration(d.varint())}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		k := d.string()
		r.members[k] = d.varint()
	}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		k := d.string()
		r.owners[k] = d.string()
	}
	machine = d.bytes()
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return replicated{}, limit, nil, d.err
	}
	return r, limit, machine, nil
}
