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
func (t Time) AppendFormat(dst []byte) []byte {
	secs := int64(t) / 1e9
	nanos := int64(t) % 1e9
	if nanos < 0 {
		secs--
		nanos += 1e9
	}
	days := secs / 86400
	rem := secs % 86400
	if rem < 0 {
		rem += 86400
		days--
	}
	y, m, d := civil(days)
	if y >= 0 && y <= 9999 {
		// The common case, written without a digit loop.
		h, mi, sec := rem/3600, rem/60%60, rem%60
		dst = append(dst,
			byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
			byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
			byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
			byte('0'+sec/10), byte('0'+sec%10))
	} else {
		dst = appendInt(dst, y, 4)
		dst = append(dst, '-')
		dst = appendInt(dst, int64(m), 2)
		dst = append(dst, '-')
		dst = appendInt(dst, int64(d), 2)
		dst = append(dst, 'T')
		dst = appendInt(dst, rem/3600, 2)
		dst = append(dst, ':')
		dst = appendInt(dst, rem/60%60, 2)
		dst = append(dst, ':')
		dst = appendInt(dst, rem%60, 2)
	}
	if nanos != 0 {
		digits := 9
		for nanos%10 == 0 {
			nanos /= 10
			digits--
		}
		dst = append(dst, '.')
		dst = appendInt(dst, nanos, digits)
	}
	return append(dst, 'Z')
}

// appendInt appends v zero-padded to width digits; v must be non-negative
// for padding to apply (years before 0000 are written with a sign).
func appendInt(dst []byte, v int64, width int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	var buf [20]byte
	i := len(buf)
	for v >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	buf[i] = byte('0' + v)
	return append(dst, buf[i:]...)
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse), avoiding time.Time on the hot
// path.
func civil(z int64) (year int64, month, day int) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, int(m), int(d)
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
// value reads 2000-01-01T00:00:00Z, the start time FORMAT.md gives
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
