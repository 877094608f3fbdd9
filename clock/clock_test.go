package clock

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestAppendFormat(t *testing.T) {
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2012, 9, 10, 23, 41, 7, 0, time.UTC), "2012-09-10T23:41:07Z"},
		{time.Date(2012, 9, 10, 23, 41, 7, 250e6, time.UTC), "2012-09-10T23:41:07.25Z"},
		{time.Date(2000, 2, 29, 0, 0, 0, 1, time.UTC), "2000-02-29T00:00:00.000000001Z"},
		{time.Date(1969, 12, 31, 23, 59, 59, 500e6, time.UTC), "1969-12-31T23:59:59.5Z"},
		{time.Date(1900, 3, 1, 12, 0, 0, 0, time.UTC), "1900-03-01T12:00:00Z"},
		{time.Date(2200, 12, 31, 23, 59, 59, 0, time.UTC), "2200-12-31T23:59:59Z"},
		{time.Date(2012, 9, 11, 1, 41, 7, 0, time.FixedZone("", 2*3600)), "2012-09-10T23:41:07Z"},
	} {
		if got := FromStd(tt.t).String(); got != tt.want {
			t.Errorf("%v formats as %s, want %s", tt.t, got, tt.want)
		}
	}
}

// TestFormatMatchesTime checks the hand-written calendar arithmetic against
// the standard library over random instants from 1678 to 2262 (the range of
// an int64 of nanoseconds).
func TestFormatMatchesTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		v := Time(r.Int64() - r.Int64()/2)
		want := v.Std().Format(time.RFC3339Nano)
		if got := v.String(); got != want {
			t.Fatalf("%d formats as %s, time.Time says %s", int64(v), got, want)
		}
		back, err := Parse(want)
		if err != nil || back != v {
			t.Fatalf("Parse(%s) = %d, %v; want %d", want, back, err, v)
		}
	}
}

func TestAppendFormatDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 64)
	v := FromStd(time.Date(2012, 9, 10, 23, 41, 7, 123e6, time.UTC))
	if n := testing.AllocsPerRun(100, func() { buf = v.AppendFormat(buf[:0]) }); n != 0 {
		t.Errorf("AppendFormat allocates %v times", n)
	}
}

func TestParse(t *testing.T) {
	ok := map[string]string{
		"2012-09-10T23:41:07Z":        "2012-09-10T23:41:07Z",
		"2012-09-10T23:41:07.000Z":    "2012-09-10T23:41:07Z",
		"2012-09-11T01:41:07+02:00":   "2012-09-10T23:41:07Z",
		"2012-09-10T23:41:07.5-00:30": "2012-09-11T00:11:07.5Z",
	}
	for in, want := range ok {
		v, err := Parse(in)
		if err != nil || v.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	for _, in := range []string{"", "2012-09-10", "2012-09-10T23:41:07", "2012-09-10 23:41:07Z", "2012-13-10T23:41:07Z", "yesterday"} {
		_, err := Parse(in)
		var pe *ParseError
		if !errors.Is(err, ErrBadDateTime) || !errors.As(err, &pe) || pe.Text != in {
			t.Errorf("Parse(%q) err = %v, want a *ParseError matching ErrBadDateTime", in, err)
		}
	}
}

func TestFake(t *testing.T) {
	var f Fake
	if f.Now() != Epoch2000 || f.Now().String() != "2000-01-01T00:00:00Z" {
		t.Fatalf("zero Fake reads %v, want 2000-01-01T00:00:00Z", f.Now())
	}
	f.Advance(90 * time.Second)
	if got := f.Now().Sub(Epoch2000); got != 90*time.Second {
		t.Errorf("after Advance(90s): %v", got)
	}
	f.Advance(-time.Hour)
	if got := f.Now().Sub(Epoch2000); got != 90*time.Second {
		t.Errorf("a negative Advance moved the clock to %v", got)
	}
	if err := f.Set(Epoch2000); !errors.Is(err, ErrTimeBackwards) {
		t.Errorf("Set into the past: err = %v, want ErrTimeBackwards", err)
	}
	later := Epoch2000.Add(time.Hour)
	if err := f.Set(later); err != nil || f.Now() != later {
		t.Errorf("Set(%v) = %v; now %v", later, err, f.Now())
	}
}

// TestFormatEveryDay checks every day an int64 of nanoseconds can reach,
// at a time of day that varies from day to day, and the extreme instants,
// against the standard library.
func TestFormatEveryDay(t *testing.T) {
	check := func(v Time) {
		t.Helper()
		if got, want := v.String(), v.Std().Format(time.RFC3339Nano); got != want {
			t.Fatalf("%d formats as %s, time.Time says %s", int64(v), got, want)
		}
	}
	const day = int64(86400e9)
	lo, hi := int64(math.MinInt64)/day, int64(math.MaxInt64)/day
	for d := lo + 1; d < hi; d++ { // lo and hi are partly out of range
		check(Time(d*day + ((d*7919e9+d)%day+day)%day))
	}
	for _, v := range []int64{math.MinInt64, math.MinInt64 + 1, -1e9 - 1, -1e9, -1, 0, 1, 1e9, math.MaxInt64 - 1, math.MaxInt64} {
		check(Time(v))
	}
}

func BenchmarkAppendFormat(b *testing.B) {
	buf := make([]byte, 0, 64)
	for _, c := range []struct {
		name string
		t    Time
	}{
		{"seconds", Epoch2000 + 36*3600e9},
		{"fraction", Epoch2000 + 1234567890},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				buf = c.t.AppendFormat(buf[:0])
			}
		})
	}
}
