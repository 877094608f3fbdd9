package core

// strhash is a cheap, deterministic hash of s for spreading keys over
// stripes and shards. It reads eight bytes at a time: bare JIDs are 15–40
// bytes, and hashing byte by byte cost as much as a map lookup. It is not
// meant to resist chosen keys; a stripe or shard that many keys share is
// only slower, never wrong.
func strhash(s string) uint64 {
	const k = 0x9e3779b97f4a7c15 // 2^64 / golden ratio, odd
	h := uint64(len(s)) * k
	for ; len(s) >= 8; s = s[8:] {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = (h ^ w) * k
		h ^= h >> 29
	}
	if len(s) > 0 {
		var w uint64
		for i := 0; i < len(s); i++ {
			w |= uint64(s[i]) << (8 * i)
		}
		h = (h ^ w) * k
	}
	h ^= h >> 32
	return h
}
