package core

import (
	"encoding/binary"
	"slices"
	"time"
)

// SnapshotLockHolds is Sharded.Snapshot that also says how long it held
// every shard lock (the cut) and one shard's lock to copy it: the median
// and the longest of those copies.
func SnapshotLockHolds(s *Sharded, dst []byte) (snap []byte, cut, medianCopy, maxCopy time.Duration) {
	var h lockHolds
	snap = s.snapshotCut(dst, nil, &h)
	slices.Sort(h.copies)
	return snap, h.cut, h.copies[len(h.copies)/2], h.copies[len(h.copies)-1]
}

// ReorderSnapshotUsers re-encodes a valid snapshot with its users listed in
// the order reorder makes of its sorted keys (it may repeat, drop or swap
// them), sealed with a valid checksum: a snapshot that only its key order
// can make corrupt.
func ReorderSnapshotUsers(snap []byte, reorder func(keys []string) []string) []byte {
	users, hosted, last, err := decodeSnapshot(snap)
	if err != nil {
		panic(err)
	}
	keys := reorder(sortedKeys(users))
	dst := appendSnapshotHead(nil, last)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = appendUser(dst, k, users[k])
	}
	dst = appendHosts(dst, hosted)
	return sealSnapshot(dst, 0)
}
