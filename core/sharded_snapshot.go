package core

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"runtime"
	"slices"
	"time"
)

// Snapshots of a Sharded without stopping the world.
//
// A snapshot stands for one instant, the cut: SnapshotCut locks every shard
// only long enough to mark each one as waiting for a copy (and to read the
// hosted domains and the time of the last change), then releases them all.
// Each shard's users are then copied (encoded, in key order) under that
// shard's lock alone, by whoever gets to it first: SnapshotCut walking the
// shards, or a call about to change it (a call that only reads, a probe or
// a query, leaves the copy to them: it reads the state at the cut either
// way). A shard is copied exactly once and before anything after the cut
// changes it, so the copies add up to the state at the cut, and a call
// waits for at most the copy of the shard it locks (a few milliseconds for
// a few thousand users), never for the whole. The copies are merged into the global key order with no lock
// held. Calls that lock every shard (Up, Down, Restore, Restarted) copy
// every shard still waiting first.

// shardPart is one shard's users, encoded for a snapshot.
type shardPart struct {
	size    int     // expected length of buf, from the last snapshot
	buf     []byte  // the users' entries, one after the other
	entries []entry // in map order, then (sort) in key order
	spare   []byte  // buf's entries in key order, then swapped with buf
	tmp     []entry // the radix sort's other half
	users   []kv    // the shard's map, read once before encoding
	sink    byte    // keeps fill's look-ahead loads from being dropped
}

// kv is one user of a shard's map.
type kv struct {
	k string
	u *user
}

// entry is where one user's entry lies in shardPart.buf, and its key
// within it: keys are compared in the copy, which the sort reads from the
// processor's cache, rather than in the map, a cache miss per comparison.
// pfx holds the key's first 8 bytes, big-endian and zero-padded, so that
// most comparisons never read buf at all.
type entry struct {
	pfx                     [2]uint64
	start, key, keyEnd, end int32
}

func (p *shardPart) key(e *entry) []byte { return p.buf[e.key:e.keyEnd] }

// cmpEntries orders entries by key. Equal prefixes (including a short key
// padded with zeros against a longer one) fall back to the whole keys.
func (p *shardPart) cmp(a, b *entry) int {
	if c := cmpPrefix(a, b); c != 0 {
		return c
	}
	return bytes.Compare(p.key(a), p.key(b))
}

func cmpPrefix(a, b *entry) int {
	switch {
	case a.pfx[0] < b.pfx[0]:
		return -1
	case a.pfx[0] > b.pfx[0]:
		return 1
	case a.pfx[1] < b.pfx[1]:
		return -1
	case a.pfx[1] > b.pfx[1]:
		return 1
	}
	return 0
}

// keyPrefix is k's first 16 bytes as two big-endian numbers, zero-padded.
func keyPrefix(k string) [2]uint64 {
	var b [16]byte
	copy(b[:], k)
	return [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

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
		p.users = make([]kv, 0, cap(p.entries))
	}
	if cap(p.buf) < p.size {
		p.buf = make([]byte, 0, p.size)
	}
	p.entries, p.buf, p.users = p.entries[:0], p.buf[:0], p.users[:0]
	for k, u := range m.users {
		p.users = append(p.users, kv{k, u})
	}
	// Each user is three or four cache misses (its key, its struct, its
	// resource name and presence), each one waiting for the one before
	// when read in turn, and encoding a user is too many instructions for
	// the processor to look past it to the next. So users go in groups:
	// two tight loops touch a group's structs and keys, then their names
	// and presences, with all of a loop's misses in flight at once, and
	// the encoding then reads from the cache.
	const group = 32
	sink := p.sink
	for g := 0; g < len(p.users); g += group {
		us := p.users[g:min(g+group, len(p.users))]
		for i := range us {
			sink += us[i].k[0] + byte(len(us[i].u.avail))
		}
		for i := range us {
			sink += touch(us[i].u)
		}
		for i := range us {
			v := &us[i]
			start := len(p.buf)
			p.buf = appendUser(p.buf, v.k, v.u)
			key := start + uvarintLen(uint64(len(v.k))) // appendUser begins with appendString(k)
			p.entries = append(p.entries, entry{keyPrefix(v.k), int32(start), int32(key), int32(key + len(v.k)), int32(len(p.buf))})
		}
	}
	clear(p.users) // the snapshot keeps no user alive
	p.sink = sink
}

// touch reads a byte of every cache line of u's separately allocated
// parts that appendUser copies.
func touch(u *user) byte {
	b := touchBytes(u.last.name) + touchBytes(u.last.rec.blob)
	for i := range u.avail {
		b += touchBytes(u.avail[i].name) + touchBytes(u.avail[i].rec.blob)
	}
	return b
}

func touchBytes[T string | []byte](s T) byte {
	var b byte
	for i := 0; i < len(s); i += 64 {
		b += s[i]
	}
	return b
}

// sort puts the entries, and their bytes in buf, in key order. The merge
// then reads each part front to back: read in key order from a buf in map
// order, a million users are a million cache misses, while reordering one
// part at a time stays within the processor's cache.
func (p *shardPart) sort() {
	p.radixSort()
	if cap(p.spare) < len(p.buf) {
		p.spare = make([]byte, 0, cap(p.buf))
	}
	sorted := p.spare[:0]
	for i := range p.entries {
		e := &p.entries[i]
		moved := int32(len(sorted)) - e.start
		sorted = append(sorted, p.buf[e.start:e.end]...)
		e.start, e.key, e.keyEnd, e.end = e.start+moved, e.key+moved, e.keyEnd+moved, e.end+moved
	}
	p.buf, p.spare = sorted, p.buf
}

// radixSort sorts the entries by key: a least-significant-digit radix
// sort on the keys' first 8 bytes (a pass per byte, skipped when every key
// has the same byte there, as a common prefix does), then a comparison
// sort of each run of keys whose first 8 bytes are equal. A comparison
// sort of a shard's few thousand entries was a fifth of a snapshot.
func (p *shardPart) radixSort() {
	es := p.entries
	if len(es) < 2 {
		return
	}
	if cap(p.tmp) < len(es) {
		p.tmp = make([]entry, len(es), cap(es))
	}
	tmp := p.tmp[:len(es)]
	for shift := uint(0); shift < 64; shift += 8 {
		var count [257]int
		for i := range es {
			count[byte(es[i].pfx[0]>>shift)+1]++
		}
		if count[byte(es[0].pfx[0]>>shift)+1] == len(es) {
			continue // every key has this byte: the pass would not move anything
		}
		for d := 1; d < len(count); d++ {
			count[d] += count[d-1]
		}
		for i := range es {
			d := byte(es[i].pfx[0] >> shift)
			tmp[count[d]] = es[i]
			count[d]++
		}
		es, tmp = tmp, es
	}
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].pfx[0] == es[i].pfx[0] {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(es[i:j], func(a, b entry) int { return p.cmp(&a, &b) })
		}
		i = j
	}
	// The entries end where the last pass left them: keep that slice as
	// entries and the other as the spare.
	p.entries, p.tmp = es, tmp[:0]
}

// lock takes sh's lock, first copying its users for a snapshot that waits
// for them, so that nothing after the snapshot's cut reaches them first.
func (s *Sharded) lock(sh *shard) {
	sh.mu.Lock()
	sh.copyPending()
}

// copyPending copies sh's users for the snapshot that waits for them, if
// one does; sh is locked.
func (sh *shard) copyPending() {
	if sh.snap != nil {
		sh.snap.fill(sh.m)
		sh.snap = nil
	}
}

// lockRead takes sh's lock for a call that changes nothing a snapshot
// holds (a probe, whose token no snapshot keeps, or a query). It leaves a
// pending copy to the snapshot or the next call that changes the shard:
// the state it reads is the state at the cut either way, and a reader that
// copied would wait for the copy (milliseconds) for nothing.
func (s *Sharded) lockRead(sh *shard) { sh.mu.Lock() }

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
	// Copy what no call has copied first. A shard that is locked is
	// skipped and tried again later rather than waited for: a wait of
	// over a millisecond (a caller copying it) puts a sync.Mutex in its
	// starvation mode, where the next unlock hands the lock over by giving
	// up the unlocker's processor, and that caller then waits for one.
	copied := make([]bool, len(s.shards))
	for left, round := len(s.shards), 0; left > 0; round++ {
		for i := range s.shards {
			sh := &s.shards[i]
			if copied[i] {
				continue
			}
			if round < 64 {
				if !sh.mu.TryLock() {
					continue
				}
			} else {
				sh.mu.Lock() // a shard that stays busy: wait after all
			}
			if holds != nil {
				t0 = time.Now()
			}
			sh.copyPending()
			if holds != nil {
				holds.copies = append(holds.copies, time.Since(t0))
			}
			sh.mu.Unlock()
			copied[i] = true
			left--
			// The part is filled, and the shard's unlock makes it
			// visible here. Sorted now, its bytes are still in the cache.
			parts[i].sort()
			// Yield the processor after each shard (a few milliseconds
			// of work): with as many busy callers as processors, the
			// scheduler otherwise lets the snapshot run its whole 10 ms
			// time slice while a caller waits for a processor.
			runtime.Gosched()
		}
		if left > 0 {
			runtime.Gosched() // the rest are busy: let their holders run
		}
	}
	size, users := 64+16*len(hosted), 0
	for i := range parts {
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
	return sealYielding(dst, start)
}

// sealYielding is sealSnapshot with the checksum computed a megabyte at a
// time, yielding the processor in between, as the rest of a Sharded
// snapshot does (tens of milliseconds at a million users).
func sealYielding(dst []byte, start int) []byte {
	var sum uint32
	for b := dst[start:]; len(b) > 0; {
		n := min(len(b), 1<<20)
		sum = crc32.Update(sum, castagnoli, b[:n])
		b = b[n:]
		runtime.Gosched()
	}
	return binary.BigEndian.AppendUint32(dst, sum)
}

// mergeParts appends the parts' entries in the global key order: a k-way
// merge over a tree of losers, which replays one path of log2(k) matches
// per entry where a heap compares about twice as often.
func mergeParts(dst []byte, parts []shardPart) []byte {
	pos := make([]int, len(parts))
	// before reports whether part a's next entry sorts before part b's; a
	// part with none left, or the padding -1, sorts after everything.
	before := func(a, b int) bool {
		if a < 0 || pos[a] == len(parts[a].entries) {
			return false
		}
		if b < 0 || pos[b] == len(parts[b].entries) {
			return true
		}
		ea, eb := &parts[a].entries[pos[a]], &parts[b].entries[pos[b]]
		if c := cmpPrefix(ea, eb); c != 0 {
			return c < 0
		}
		return bytes.Compare(parts[a].key(ea), parts[b].key(eb)) < 0
	}
	n := 1
	for n < len(parts) {
		n <<= 1
	}
	// Node i of the tree (1 ≤ i < n) holds the loser of its match; leaf
	// n+j is part j. win is the winner of every match below a node.
	loser := make([]int, n)
	win := make([]int, 2*n)
	for j := range n {
		win[n+j] = -1
		if j < len(parts) {
			win[n+j] = j
		}
	}
	for i := n - 1; i >= 1; i-- {
		a, b := win[2*i], win[2*i+1]
		if before(b, a) {
			a, b = b, a
		}
		win[i], loser[i] = a, b
	}
	for k, w := 0, win[1]; w >= 0 && pos[w] < len(parts[w].entries); k++ {
		if k%4096 == 4095 {
			runtime.Gosched() // about every millisecond; see snapshotCut
		}
		e := &parts[w].entries[pos[w]]
		dst = append(dst, parts[w].buf[e.start:e.end]...)
		pos[w]++
		for i := (n + w) / 2; i >= 1; i /= 2 {
			if before(loser[i], w) {
				loser[i], w = w, loser[i]
			}
		}
	}
	return dst
}

// uvarintLen is the length of x encoded by binary.AppendUvarint.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }
