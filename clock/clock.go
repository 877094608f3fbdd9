// Package clock holds the time type the lastseen core works with, XEP-0082
// date-time formatting and parsing, and a fake clock for tests.
//
// The core never reads the wall clock: every event carries the time at which
// the host saw it. That keeps the machine deterministic (a scenario replays
// the same way on every engine) and lets the WASM engines take time as a
// plain integer argument instead of importing a guest clock.
package clock

import (
	"errors"
	"strconv"
	"time"
)

// Time is an instant, in nanoseconds since 1970-01-01T00:00:00Z (UTC),
// ignoring leap seconds as Unix time does. The zero Time is the Unix epoch.
//
// An int64 rather than a time.Time keeps stored records small, compares with
// ==, and crosses the WASM boundary as one i64.
type Time int64

// FromStd converts a time.Time to a Time.
func FromStd(t time.Time) Time { return Time(t.UnixNano()) }

// Std converts t to a time.Time in UTC.
func (t Time) Std() time.Time { return time.Unix(0, int64(t)).UTC() }

// Add returns t+d.
func (t Time) Add(d time.Duration) Time { return t + Time(d) }

// Sub returns the duration t-u.
func (t Time) Sub(u Time) time.Duration { return time.Duration(t - u) }

// Before reports whether t is before u.
func (t Time) Before(u Time) bool { return t < u }

// String formats t as an XEP-0082 DateTime.
func (t Time) String() string { return string(t.AppendFormat(nil)) }

// AppendFormat appends t to dst as an XEP-0082 DateTime in UTC, with a `Z`
// zone and with fractional seconds only when t has them (trailing zeros
// trimmed), for example 2012-09-10T23:41:07Z or 2012-09-10T23:41:07.25Z.
// It does not allocate when dst has room.
//
// Every Time lies between 1677-09-21 and 2262-04-11 (the range of an int64
// of nanoseconds), so the year always has four digits and no sign.
func (t Time) AppendFormat(dst []byte) []byte {
	secs := int64(t) / 1e9
	nanos := int64(t) % 1e9
	if nanos < 0 {
		secs--
		nanos += 1e9
	}
	// Shift the epoch back to 0000-03-01 minus civilCycles 400-year cycles
	// so that the day count is positive and the calendar arithmetic can be
	// unsigned; secs is within ±9.3e9, far from overflowing.
	s := uint64(secs + civilShift*86400)
	days, rem := uint32(s/86400), uint32(s%86400)
	y, m, d := civil(days)
	h, mi, sec := rem/3600, rem/60%60, rem%60

	// Write into a fixed buffer, then append once: one bounds check per
	// element instead of a length check and possible growth per byte.
	var b [30]byte
	put2(&b, 0, y/100)
	put2(&b, 2, y%100)
	b[4] = '-'
	put2(&b, 5, m)
	b[7] = '-'
	put2(&b, 8, d)
	b[10] = 'T'
	put2(&b, 11, h)
	b[13] = ':'
	put2(&b, 14, mi)
	b[16] = ':'
	put2(&b, 17, sec)
	n := 19
	if nanos != 0 {
		// Nine digits, then drop the trailing zeros.
		f := uint32(nanos)
		b[19] = '.'
		b[20] = byte('0' + f/1e8)
		f %= 1e8
		put2(&b, 21, f/1e6)
		put2(&b, 23, f/1e4%100)
		put2(&b, 25, f/100%100)
		put2(&b, 27, f%100)
		n = 29
		for b[n-1] == '0' {
			n--
		}
	}
	b[n] = 'Z'
	return append(dst, b[:n+1]...)
}

// put2 writes v (below 100) as two digits at b[i:i+2].
func put2(b *[30]byte, i int, v uint32) {
	p := digitPairs[v&127] // the mask only spares a bounds check
	b[i], b[i+1] = p[0], p[1]
}

// digitPairs holds "00" to "99", so that two digits cost one lookup; it
// has 128 rows so that indexing it with a 7-bit mask needs no check.
var digitPairs = func() (t [128][2]byte) {
	for v := range 100 {
		t[v] = [2]byte{byte('0' + v/10), byte('0' + v%10)}
	}
	return t
}()

// civilCycles is how many 400-year Gregorian cycles (146097 days each) the
// day count given to civil is shifted by, enough to make every Time's day
// count positive; civilShift is that day count for 1970-01-01.
const (
	civilCycles = 82
	civilShift  = 719468 + 146097*civilCycles
)

// civil converts n, the days since 0000-03-01 shifted by civilCycles
// 400-year cycles (1970-01-01 is civilShift), to a proleptic Gregorian date
// with the year in 0..9999. It is Neri and Schneider's algorithm
// ("Euclidean affine functions and their application to calendar
// algorithms", 2022): multiplications and shifts in 32 and 64 bits instead
// of signed divisions.
func civil(n uint32) (year, month, day uint32) {
	// Century and day of the century.
	n1 := 4*n + 3
	c := n1 / 146097
	nc := n1 % 146097 / 4
	// Year of the century and day of the year, counted from March 1.
	n2 := 4*nc + 3
	p2 := uint64(2939745) * uint64(n2)
	z := uint32(p2 >> 32)
	ny := uint32(p2) / 2939745 / 4
	// Month (March is 3) and day of the month.
	n3 := 2141*ny + 197913
	m := n3 >> 16
	d := (n3 & 0xffff) / 2141
	y := 100*c + z
	if ny >= 306 { // January or February: the next civil year
		y++
		m -= 12
	}
	return y - 400*civilCycles, m, d + 1
}

// ErrBadDateTime is returned (wrapped) by Parse for text that is not an
// XEP-0082 DateTime.
var ErrBadDateTime = errors.New("clock: not an XEP-0082 DateTime")

// Parse reads an XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD, where TZD
// is `Z` or an offset such as `+02:00`. The result is the same instant in
// UTC.
func Parse(s string) (Time, error) {
	// time.RFC3339Nano accepts exactly the XEP-0082 DateTime profile
	// (mandatory zone, optional fraction).
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || len(s) < 20 || s[10] != 'T' {
		return 0, &ParseError{Text: s}
	}
	return FromStd(t), nil
}

// ParseError describes text that Parse rejected. It matches ErrBadDateTime
// with errors.Is.
type ParseError struct {
	Text string // the rejected text
}

func (e *ParseError) Error() string {
	return "clock: " + strconv.Quote(e.Text) + " is not an XEP-0082 DateTime (want e.g. 2012-09-10T23:41:07Z)"
}

// Is makes errors.Is(err, ErrBadDateTime) true.
func (e *ParseError) Is(target error) bool { return target == ErrBadDateTime }

// Fake is a manually driven clock for tests and scenario replay. Its zero
// value reads 2000-01-01T00:00:00Z, the start time spec/SCENARIOS.md gives
// scenarios without an `at` line.
type Fake struct {
	now Time
	set bool
}

// Epoch2000 is 2000-01-01T00:00:00Z, the start of every scenario.
const Epoch2000 Time = 946684800 * 1e9

// Now returns the fake clock's current time.
func (f *Fake) Now() Time {
	if !f.set {
		return Epoch2000
	}
	return f.now
}

// ErrTimeBackwards is returned by Fake.Set when asked to go back in time.
var ErrTimeBackwards = errors.New("clock: time never goes back")

// Set moves the clock to t. It refuses to go backwards, as scenarios
// require.
func (f *Fake) Set(t Time) error {
	if t < f.Now() {
		return ErrTimeBackwards
	}
	f.now, f.set = t, true
	return nil
}

// Advance moves the clock forward by d (negative d is ignored).
func (f *Fake) Advance(d time.Duration) {
	if d > 0 {
		f.now, f.set = f.Now().Add(d), true
	}
}
