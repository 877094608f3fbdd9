package core

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"time"
)

// Snapshots of a Sharded without stopping the world.
//
// A snapshot stands for one instant, the cut: SnapshotCut locks every shard
// only long enough to mark each one as waiting for a copy (and to read the
// hosted domains and the time of the last change), then releases them all.
// Each shard's users are then copied (encoded, in key order) under that
// shard's lock alone, by whoever locks it first: SnapshotCut walking the
// shards, or a call about to read or change it. A shard is copied exactly
// once and before anything after the cut touches it, so the copies add up
// to the state at the cut, and a call waits for at most the copy of the
// shard it locks (a few milliseconds for a few thousand users), never for
// the whole. The copies are merged into the global key order with no lock
// held. Calls that lock every shard (Up, Down, Restore, Restarted) copy
// every shard still waiting first.

// shardPart is one shard's users, encoded for a snapshot.
type shardPart struct {
	size    int     // expected length of buf, from the last snapshot
	buf     []byte  // the users' entries, one after the other
	entries []entry // in map order, then (sort) in key order
	spare   []byte  // buf's entries in key order, then swapped with buf
}

// entry is where one user's entry lies in shardPart.buf, and its key
// within it: keys are compared in the copy, which the sort reads from the
// processor's cache, rather than in the map, a cache miss per comparison.
type entry struct {
	start, key, keyEnd, end int
}

func (p *shardPart) key(e *entry) []byte { return p.buf[e.key:e.keyEnd] }

// fill copies m's users in map order: sorting them waits until the lock
// is released.
//
// The buffers of the last snapshot are reused when they are large enough:
// copying into memory already touched is several times faster than into
// fresh pages, and a snapshot that allocates nothing big starts no garbage
// collection, whose mark assists would stall the callers.
func (p *shardPart) fill(m *Machine) {
	if cap(p.entries) < len(m.users) {
		p.entries = make([]entry, 0, len(m.users)+len(m.users)/8)
	}
	if cap(p.buf) < p.size {
		p.buf = make([]byte, 0, p.size)
	}
	p.entries, p.buf = p.entries[:0], p.buf[:0]
	for k, u := range m.users {
		start := len(p.buf)
		p.buf = appendUser(p.buf, k, u)
		key := start + uvarintLen(uint64(len(k))) // appendUser begins with appendString(k)
		p.entries = append(p.entries, entry{start, key, key + len(k), len(p.buf)})
	}
}

// sort puts the entries, and their bytes in buf, in key order. The merge
// then reads each part front to back: read in key order from a buf in map
// order, a million users are a million cache misses, while reordering one
// part at a time stays within the processor's cache.
func (p *shardPart) sort() {
	slices.SortFunc(p.entries, func(a, b entry) int { return bytes.Compare(p.key(&a), p.key(&b)) })
	if cap(p.spare) < len(p.buf) {
		p.spare = make([]byte, 0, cap(p.buf))
	}
	sorted := p.spare[:0]
	for i := range p.entries {
		e := &p.entries[i]
		moved := len(sorted) - e.start
		sorted = append(sorted, p.buf[e.start:e.end]...)
		*e = entry{e.start + moved, e.key + moved, e.keyEnd + moved, e.end + moved}
	}
	p.buf, p.spare = sorted, p.buf
}

// lock takes sh's lock, first copying its users for a snapshot that waits
// for them, so that nothing after the snapshot's cut reaches them first.
func (s *Sharded) lock(sh *shard) {
	sh.mu.Lock()
	if sh.snap != nil {
		sh.snap.fill(sh.m)
		sh.snap = nil
	}
}

func (s *Sharded) shardIndex(bare string) int {
	return int(strhash(bare) % uint64(len(s.shards)))
}

// SnapshotCut is Snapshot that also calls cut, if not nil, at the instant
// the snapshot stands for: every journal record handed to the SetJournal
// function before cut returned is in the snapshot, and none handed after.
// A durable store uses it to start a new journal exactly where a snapshot
// ends. cut runs while every shard is locked: it must not call the Sharded,
// and it must be quick.
//
// Calls made while the snapshot is taken wait for at most one shard's copy
// (see the comment at the top of this file); snapshots are taken one at a
// time.
func (s *Sharded) SnapshotCut(dst []byte, cut func()) []byte {
	return s.snapshotCut(dst, cut, nil)
}

// lockHolds is how long a snapshot held shard locks: every lock, for the
// cut, and one lock at a time, for the longest copy of a shard.
type lockHolds struct {
	cut    time.Duration
	copies []time.Duration
}

// snapshotCut is SnapshotCut; with holds, it also measures its lock holds
// (the benchmarks report them: they bound what a call can wait).
func (s *Sharded) snapshotCut(dst []byte, cut func(), holds *lockHolds) []byte {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if len(s.snapParts) != len(s.shards) {
		s.snapParts = make([]shardPart, len(s.shards))
	}
	parts := s.snapParts
	var t0 time.Time
	if holds != nil {
		t0 = time.Now()
	}
	s.lockAll()
	for i := range s.shards {
		// Presized from the last snapshot, with some headroom: growing
		// buf by doubling copies it twice over, under the lock.
		parts[i].size = s.snapUser * len(s.shards[i].m.users) * 9 / 8
		s.shards[i].snap = &parts[i]
	}
	if cut != nil {
		cut()
	}
	last := maxShardTime(s)
	hosted := make(map[string]*host, len(s.shards[0].m.hosted))
	for k, h := range s.shards[0].m.hosted {
		c := *h
		hosted[k] = &c
	}
	s.unlockAll()
	if holds != nil {
		holds.cut = time.Since(t0)
	}
	for i := range s.shards {
		sh := &s.shards[i]
		if holds != nil {
			t0 = time.Now()
		}
		s.lock(sh)
		sh.mu.Unlock()
		if holds != nil {
			holds.copies = append(holds.copies, time.Since(t0))
		}
	}
	// Every part is filled, and its shard's unlock makes it visible here.
	size, users := 64+16*len(hosted), 0
	for i := range parts {
		parts[i].sort()
		size += len(parts[i].buf)
		users += len(parts[i].entries)
	}
	if users > 0 {
		s.snapUser = (size + users - 1) / users
	}
	dst = slices.Grow(dst, size)
	start := len(dst)
	dst = appendSnapshotHead(dst, last)
	dst = binary.AppendUvarint(dst, uint64(users))
	dst = mergeParts(dst, parts)
	dst = appendHosts(dst, hosted)
	return sealSnapshot(dst, start)
}

// mergeParts appends the parts' entries in the global key order: a k-way
// merge over a heap of the parts' next keys.
func mergeParts(dst []byte, parts []shardPart) []byte {
	pos := make([]int, len(parts))
	h := make([]int, 0, len(parts))
	for i := range parts {
		if len(parts[i].entries) > 0 {
			h = append(h, i)
		}
	}
	less := func(a, b int) bool {
		return bytes.Compare(parts[a].key(&parts[a].entries[pos[a]]), parts[b].key(&parts[b].entries[pos[b]])) < 0
	}
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			if r := l + 1; r < len(h) && less(h[r], h[l]) {
				l = r
			}
			if !less(h[l], h[i]) {
				return
			}
			h[i], h[l] = h[l], h[i]
			i = l
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(h) > 0 {
		i := h[0]
		e := &parts[i].entries[pos[i]]
		dst = append(dst, parts[i].buf[e.start:e.end]...)
		if pos[i]++; pos[i] == len(parts[i].entries) {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
	return dst
}

// uvarintLen is the length of x encoded by binary.AppendUvarint.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }
