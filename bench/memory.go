package main

import (
	"fmt"
	"runtime"
	"strconv"
	"time"
)

// presenceSize is the size of each user's stored presence in the memory
// test, as issue 4 sets it.
const presenceSize = 200

// MemResult is the heap cost of tracking many offline users.
type MemResult struct {
	Impl         string  `json:"impl"`
	Users        int     `json:"users"`
	Missing      string  `json:"missing,omitempty"`
	HeapBytes    uint64  `json:"heap_inuse_bytes"` // after GC, above the empty Impl
	PerUser      float64 `json:"bytes_per_user"`
	BeyondStored float64 `json:"bytes_per_user_beyond_presence"` // PerUser − presenceSize
	FeedSeconds  float64 `json:"feed_seconds"`
}

// sessionDropper forgets the session handles a harness opened, so that
// they do not count as tracked state: a real server drops a session when
// the user goes offline.
type sessionDropper interface{ dropSessions() }

func (n *goHost) dropSessions()      { n.sessions = nil }
func (p *peerBase) dropSessions()    { p.sessions = nil }
func (p *melliumPeer) dropSessions() { p.jids = nil; p.sessions = nil }

// pad builds a stanza of exactly presenceSize bytes from head and tail,
// filling the status text.
func pad(dst []byte, head, tail string) []byte {
	dst = append(dst[:0], head...)
	for len(dst)+len(tail) < presenceSize {
		dst = append(dst, 'z')
	}
	return append(dst, tail...)
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// measureMemory makes users distinct users come online with a 200-byte
// presence and go offline with a 200-byte unavailable presence, the life
// of a user the machine must remember, then reports the heap in use after
// GC, divided by users.
func measureMemory(c Contender, users int) (MemResult, error) {
	r := MemResult{Impl: c.Name, Users: users, Missing: c.Missing}
	if c.Missing != "" {
		return r, nil
	}
	before := heapInuse()
	im, err := c.New([]string{domain})
	if err != nil {
		return r, err
	}
	defer im.Release()
	var av, un []byte
	start := time.Now()
	now := t0
	for i := range users {
		n := strconv.Itoa(i)
		s, err := im.Session("user" + n + "@" + domain + "/phone")
		if err != nil {
			return r, err
		}
		av = pad(av, "<presence><show>away</show><status>"+n+" ", "</status></presence>")
		un = pad(un, "<presence type='unavailable'><status>"+n+" ", "</status></presence>")
		now += 1000
		if _, err := im.Client(now, s, av); err != nil {
			return r, fmt.Errorf("memory %s: %w", c.Name, err)
		}
		if _, err := im.Client(now+500, s, un); err != nil {
			return r, fmt.Errorf("memory %s: %w", c.Name, err)
		}
	}
	r.FeedSeconds = time.Since(start).Seconds()
	if d, ok := im.(sessionDropper); ok {
		d.dropSessions()
	}
	after := heapInuse()
	runtime.KeepAlive(im)
	if after > before {
		r.HeapBytes = after - before
	}
	r.PerUser = float64(r.HeapBytes) / float64(users)
	r.BeyondStored = r.PerUser - presenceSize
	return r, nil
}
