package core

import (
	"math"
	"math/bits"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
)

// RateLimit is a token bucket for client-initiated probes (RULES C3): each
// session may send Burst probes at once, refilled continuously at Burst per
// Per.
type RateLimit struct {
	Burst int           // bucket capacity, at least 1
	Per   time.Duration // time to refill a whole bucket, at least 1ns
}

// DefaultRateLimit is the limit a Config without one gets: a burst of 10,
// refilled at 10 per minute.
var DefaultRateLimit = RateLimit{Burst: 10, Per: time.Minute}

func (l RateLimit) check() error {
	if l.Burst < 1 || l.Per < 1 {
		return withDetail(ErrConfig, "a rate limit needs a burst of at least 1 and a positive period")
	}
	// The bucket counts in units of 1/Per of a token per ns of refill, so
	// that continuous refill stays exact in integers; its capacity,
	// Burst*Per, must fit in 62 bits.
	if hi, lo := bits.Mul64(uint64(l.Burst), uint64(l.Per)); hi != 0 || lo > math.MaxInt64/2 {
		return withDetail(ErrConfig, "rate limit burst × period is too large")
	}
	return nil
}

// bucket is one session's token bucket. level is in units where a token is
// Per units and refill adds Burst units per nanosecond; integer arithmetic
// keeps every engine's answer identical.
type bucket struct {
	level uint64
	at    clock.Time
}

func (l RateLimit) capacity() uint64 { return uint64(l.Burst) * uint64(l.Per) }

// refill brings b up to now.
func (l RateLimit) refill(b *bucket, now clock.Time) {
	if now <= b.at {
		return
	}
	elapsed := uint64(now - b.at)
	b.at = now
	if elapsed >= uint64(l.Per) {
		b.level = l.capacity()
		return
	}
	b.level += elapsed * uint64(l.Burst)
	if c := l.capacity(); b.level > c {
		b.level = c
	}
}

// rescale converts a level from limit l to limit n, keeping the fraction of
// a token it holds and capping at n's capacity.
func (l RateLimit) rescale(level uint64, n RateLimit) uint64 {
	// tokens = level / l.Per; new level = tokens * n.Per.
	hi, lo := bits.Mul64(level, uint64(n.Per))
	if hi >= uint64(l.Per) {
		return n.capacity()
	}
	q, _ := bits.Div64(hi, lo, uint64(l.Per))
	if c := n.capacity(); q > c {
		return c
	}
	return q
}
