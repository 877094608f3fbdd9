package core

import (
	"strconv"
	"testing"
)

// TestStrhashSpreads checks that the bare JIDs of a server's users, which
// differ only in a few bytes, spread evenly over stripes and shards.
func TestStrhashSpreads(t *testing.T) {
	const keys = 64 * 200
	for _, shape := range []func(i int) string{
		func(i int) string { return "user" + strconv.Itoa(i) + "@montague.com" },
		func(i int) string { return strconv.Itoa(i) + "@a.example" },
		func(i int) string { return "romeo@" + strconv.Itoa(i) + ".example.org" },
	} {
		for _, buckets := range []uint64{4, 8, 64} {
			counts := make([]int, buckets)
			for i := range keys {
				counts[strhash(shape(i))%buckets]++
			}
			mean := keys / int(buckets)
			for b, n := range counts {
				if n < mean*3/4 || n > mean*5/4 {
					t.Errorf("%q…: bucket %d of %d holds %d keys, mean %d", shape(0), b, buckets, n, mean)
				}
			}
		}
	}
}

func BenchmarkStrhash(b *testing.B) {
	s := "user12345@montague.com"
	var h uint64
	for b.Loop() {
		h += strhash(s)
	}
	_ = h
}
