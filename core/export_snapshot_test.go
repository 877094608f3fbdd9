package core

import (
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
