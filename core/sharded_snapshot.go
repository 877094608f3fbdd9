package core

// SnapshotCut is Snapshot that also calls cut, if not nil, at the point the
// snapshot stands for: every journal record handed to the SetJournal
// function before cut returned is in the snapshot, and none handed after.
// A durable store uses it to start a new journal exactly where a snapshot
// ends. cut runs while every shard is locked: it must not call the Sharded,
// and it must be quick.
func (s *Sharded) SnapshotCut(dst []byte, cut func()) []byte {
	s.lockAll()
	defer s.unlockAll()
	n := 0
	for i := range s.shards {
		n += len(s.shards[i].m.users)
	}
	// Presized: growing a map of a million users rehashes it about twenty
	// times, all under every lock.
	users := make(map[string]*user, n)
	for i := range s.shards {
		for k, v := range s.shards[i].m.users {
			users[k] = v
		}
	}
	if cut != nil {
		cut()
	}
	m0 := s.shards[0].m
	return appendSnapshot(dst, maxShardTime(s), users, m0.hosted)
}
