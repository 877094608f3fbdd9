package core

// ShardOf is the index of the shard of bare among n, for tests that fill
// one shard on purpose.
func ShardOf(bare string, n int) int { return int(strhash(bare) % uint64(n)) }
