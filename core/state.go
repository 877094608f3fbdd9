package core

import (
	"encoding/binary"
	"hash/crc32"
	"sort"

	"github.com/lastseen-xmpp/lastseen/clock"
)

// stateMagic and stateVersion open every encoded state, so that a reader
// can refuse what it does not understand.
const (
	stateMagic   = "LSST"
	stateVersion = 1
)

// AppendState appends a deterministic encoding of everything the machine
// tracks to dst: users' available resources and last unavailable presence,
// hosted domains, probe buckets and the probe limit. Two machines that
// tracked the same inputs encode byte for byte the same, on every engine.
//
// The encoding is versioned and ends with a CRC-32C of what precedes it.
func (m *Machine) AppendState(dst []byte) []byte {
	return appendState(dst, m.limit, m.users, m.hosted, m.buckets)
}

// appendState encodes one machine's worth of state; Sharded passes the
// union of its shards so that its encoding equals a single Machine's.
func appendState(dst []byte, limit RateLimit, users map[string]*user, hosted map[string]*host, buckets map[string]*bucket) []byte {
	start := len(dst)
	dst = append(dst, stateMagic...)
	dst = binary.AppendUvarint(dst, stateVersion)
	dst = binary.AppendUvarint(dst, uint64(limit.Burst))
	dst = binary.AppendUvarint(dst, uint64(limit.Per))

	dst = appendTracked(dst, users, hosted)
	dst = binary.AppendUvarint(dst, uint64(len(buckets)))
	for _, k := range sortedKeys(buckets) {
		b := buckets[k]
		dst = appendString(dst, k)
		dst = binary.AppendUvarint(dst, b.level)
		dst = appendTime(dst, b.at)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// appendTracked encodes users and hosted domains in key order: the part the
// state encoding and the snapshot share.
func appendTracked(dst []byte, users map[string]*user, hosted map[string]*host) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(users)))
	for _, k := range sortedKeys(users) {
		dst = appendUser(dst, k, users[k])
	}
	return appendHosts(dst, hosted)
}

func appendUser(dst []byte, k string, u *user) []byte {
	dst = appendString(dst, k)
	dst = binary.AppendUvarint(dst, uint64(len(u.avail)))
	for i := range u.avail {
		dst = appendResource(dst, &u.avail[i])
	}
	return appendResource(dst, &u.last)
}

func appendHosts(dst []byte, hosted map[string]*host) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(hosted)))
	for _, k := range sortedKeys(hosted) {
		dst = appendHost(dst, k, hosted[k])
	}
	return dst
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t clock.Time) []byte {
	return binary.AppendVarint(dst, int64(t))
}

func appendResource(dst []byte, r *resource) []byte {
	dst = appendString(dst, r.name)
	if r.name == "" {
		return dst
	}
	dst = appendTime(dst, r.rec.at)
	dst = binary.AppendUvarint(dst, uint64(r.rec.idLen))
	dst = binary.AppendUvarint(dst, uint64(r.rec.attrLen))
	dst = binary.AppendUvarint(dst, uint64(len(r.rec.blob)))
	return append(dst, r.rec.blob...)
}
