package core

import (
	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Durable state for Sharded: the same snapshot, journal records and restart
// rule as a single Machine (durable.go), spread over the shards. A snapshot
// written by a Sharded loads in a Machine and the other way round, whatever
// the number of shards.

// SetJournal makes every call that changes durable state hand its journal
// records to fn before the call returns its outputs, as Machine.Records
// does for a single Machine; nil stops it. Call it before the Sharded is
// shared.
//
// fn runs under the lock of the shard that made the records, so calls about
// one user reach fn in the order they changed the state; calls about
// different users may reach it concurrently, and fn must be safe for
// concurrent use. Records of different users touch different state, so any
// interleaving of them replays to the same state. The records alias the
// shard's buffers until fn returns: persist or copy them. When fn returns
// an error, the call returns it and no outputs; the state in memory has
// changed, so the host should treat its journal as broken (see package
// store).
func (s *Sharded) SetJournal(fn func(records [][]byte) error) {
	s.lockAll()
	defer s.unlockAll()
	s.journalFn = fn
	for i := range s.shards {
		s.shards[i].m.journal = fn != nil
	}
}

// journaled hands m's records of the call that just ran to the journal
// function; the caller holds m's shard lock.
func (s *Sharded) journaled(m *Machine) error {
	if s.journalFn == nil {
		return nil
	}
	recs := m.Records()
	if len(recs) == 0 {
		return nil
	}
	return s.journalFn(recs)
}

func (s *Sharded) lockAll() {
	for i := range s.shards {
		s.lock(&s.shards[i])
	}
}

func (s *Sharded) unlockAll() {
	for i := range s.shards {
		s.shards[i].mu.Unlock()
	}
}

// maxShardTime is the latest change any shard knows of (hosted domains
// are on every shard, each user on one): what a single Machine would hold.
// The caller holds every lock.
func maxShardTime(s *Sharded) clock.Time {
	var last clock.Time
	for i := range s.shards {
		last = maxTime(last, s.shards[i].m.lastChange)
	}
	return last
}

// Snapshot is Machine.Snapshot over all shards: it encodes exactly what one
// Machine fed the same inputs would. It holds every shard's lock while it
// runs.
func (s *Sharded) Snapshot(dst []byte) []byte { return s.SnapshotCut(dst, nil) }

// Restore is Machine.Restore for a Sharded: the snapshot (from a Machine or
// a Sharded with any number of shards) is checked whole, then each user
// goes to its shard and every shard learns the hosted domains. On error
// nothing changed.
func (s *Sharded) Restore(snapshot []byte) error {
	parts, hosted, last, err := decodeSnapshotParts(snapshot, len(s.shards), s.shardIndex)
	if err != nil {
		return err
	}
	s.lockAll()
	defer s.unlockAll()
	for i := range s.shards {
		m := s.shards[i].m
		h := make(map[string]*host, len(hosted))
		for k, v := range hosted {
			c := *v
			h[k] = &c
		}
		m.users, m.hosted, m.lastChange = parts[i], h, last
		m.buckets = make(map[string]*bucket)
	}
	return nil
}

// ApplyRecord is Machine.ApplyRecord for a Sharded: a user's record goes to
// that user's shard, a hosted domain's to every shard. A damaged record is
// refused with ErrCorrupt and nothing changes.
func (s *Sharded) ApplyRecord(rec []byte) error {
	if len(rec) > 0 && (rec[0] == opAvailable || rec[0] == opUnavailable) {
		d := decoder{b: rec[1:]}
		bare := d.string()
		if d.err != nil {
			return d.err
		}
		sh := s.shardOf(bare)
		s.lock(sh)
		defer sh.mu.Unlock()
		return sh.m.ApplyRecord(rec)
	}
	// Host records, and anything damaged: every shard checks the record
	// the same way, so it fails on the first or on none.
	for i := range s.shards {
		sh := &s.shards[i]
		s.lock(sh)
		err := sh.m.ApplyRecord(rec)
		sh.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Restarted is Machine.Restarted for a Sharded: every available resource
// goes offline, stamped with the latest change any shard knows of.
func (s *Sharded) Restarted() int {
	s.lockAll()
	defer s.unlockAll()
	last := maxShardTime(s)
	n := 0
	for i := range s.shards {
		m := s.shards[i].m
		m.lastChange = last
		n += m.Restarted()
	}
	return n
}

// hostAll applies Up or Down to every shard, all or nothing. Shards hold
// the same hosted domains, but MaxEntities counts each shard's own users:
// a new domain is refused before any shard changes if one shard is full.
// The records go to the journal once, from the first shard, and so do the
// announcements (RULES S3).
func (s *Sharded) hostAll(event string, now clock.Time, jid stanza.JID, up bool) ([]Output, error) {
	s.lockAll()
	defer s.unlockAll()
	m0 := s.shards[0].m
	l, err := m0.checkHost(event, jid)
	if err != nil {
		return nil, err
	}
	d := jid.String()
	for i := range s.shards {
		m := s.shards[i].m
		if _, ok := m.hosted[d]; !ok && m.atCap() {
			return nil, bad(event, ErrTooManyEntities)
		}
	}
	for i := range s.shards {
		m := s.shards[i].m
		m.reset()
		m.setHost(now, d, up)
	}
	// Every shard made the same records; shard 0 still holds its own.
	if err := s.journaled(m0); err != nil {
		return nil, err
	}
	m0.announce(l, jid)
	var o Outputs
	o.add(m0.finish())
	if len(o.List) == 0 {
		return nil, nil
	}
	return o.List, nil
}
