// Package floor holds the kernels that bench runs both natively and
// compiled to WebAssembly (GOOS=wasip1), each timing itself, so that the
// cost of Go's wasm code generation is measured with no ABI, host or
// batching in between: what is left is the floor under any WASM engine
// built with the gc toolchain.
package floor

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// Kernel is one piece of work measured on every engine.
type Kernel struct {
	Name string
	Desc string
	// New prepares the kernel and returns one operation.
	New func() (func() error, error)
}

// The probe is the bench's offline-probe workload input.
const probe = `<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='probe-1'/>`

// Kernels returns the kernels in the order they are reported.
func Kernels() []Kernel {
	return []Kernel{
		{
			Name: "byte-loop",
			Desc: "count '<' and '&' in 4 KiB: a loop with no calls, the least any code generator can do",
			New: func() (func() error, error) {
				buf := make([]byte, 4096)
				for i := range buf {
					buf[i] = byte(i * 7)
				}
				want := -1
				return func() error {
					n := 0
					for _, c := range buf {
						if c == '<' || c == '&' {
							n++
						}
					}
					if want >= 0 && n != want {
						return fmt.Errorf("byte-loop counted %d, then %d", want, n)
					}
					want = n
					return nil
				}, nil
			},
		},
		{
			Name: "parse-probe",
			Desc: "stanza.Parser.ParsePresence on the 95-byte probe",
			New: func() (func() error, error) {
				var p stanza.Parser
				var pr stanza.Presence
				in := []byte(probe)
				return func() error { return p.ParsePresence(in, &pr) }, nil
			},
		},
		{
			Name: "core-probe-offline",
			Desc: "core.Machine.Server answering the probe-offline workload (parse, JIDs, authorisation, reply)",
			New:  newProbeOffline,
		},
	}
}

func newProbeOffline() (func() error, error) {
	jid := func(s string) stanza.JID {
		j, err := stanza.Parse(s)
		if err != nil {
			panic(err) // constants above
		}
		return j
	}
	m, err := core.New(core.Config{Served: []string{"montague.com"}})
	if err != nil {
		return nil, err
	}
	t0 := clock.Epoch2000
	if _, err := m.Up(t0, jid("montague.com")); err != nil {
		return nil, err
	}
	if err := m.SetRoster(jid("romeo@montague.com"), jid("juliet@capulet.com"), core.SubBoth); err != nil {
		return nil, err
	}
	session := jid("romeo@montague.com/balcony")
	if _, err := m.Client(t0.Add(time.Hour), session, []byte(`<presence><status>here</status></presence>`)); err != nil {
		return nil, err
	}
	if _, err := m.Client(t0.Add(2*time.Hour), session, []byte(`<presence type='unavailable'><status>Going offline. Out of battery.</status></presence>`)); err != nil {
		return nil, err
	}
	in, now := []byte(probe), t0.Add(3*time.Hour)
	return func() error {
		out, err := m.Server(now, in)
		if err == nil && len(out) != 1 {
			err = fmt.Errorf("core-probe-offline emitted %d stanzas, want 1", len(out))
		}
		return err
	}, nil
}

// Measure runs op for about d after a warm-up of the same length (so that
// a tiering engine such as V8 has compiled it fully) and returns the
// wall-clock nanoseconds per operation.
func Measure(op func() error, d time.Duration) (float64, error) {
	n := 1
	for {
		start := time.Now()
		for range n {
			if err := op(); err != nil {
				return 0, err
			}
		}
		el := time.Since(start)
		if el >= d {
			return float64(el.Nanoseconds()) / float64(n), nil
		}
		if el < d/100 {
			n *= 10
		} else {
			n = int(float64(n)*float64(d)/float64(max(el, time.Microsecond))) + 1
		}
	}
}

// Main is what the wasm command and native runs share: it measures every
// kernel rounds times for about d each and writes one line per sample,
// "kernel ns/op". Arguments: rounds, then d in milliseconds.
func Main(args []string, w io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: floor ROUNDS MILLISECONDS")
	}
	rounds, err1 := strconv.Atoi(args[0])
	ms, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil || rounds < 1 || ms < 1 {
		return fmt.Errorf("floor: bad arguments %q", args)
	}
	d := time.Duration(ms) * time.Millisecond
	ks := Kernels()
	ops := make([]func() error, len(ks))
	for i, k := range ks {
		op, err := k.New()
		if err != nil {
			return fmt.Errorf("%s: %w", k.Name, err)
		}
		if _, err := Measure(op, d); err != nil { // warm-up
			return fmt.Errorf("%s: %w", k.Name, err)
		}
		ops[i] = op
	}
	for range rounds {
		for i, k := range ks {
			ns, err := Measure(ops[i], d)
			if err != nil {
				return fmt.Errorf("%s: %w", k.Name, err)
			}
			fmt.Fprintf(w, "%s %.2f\n", k.Name, ns)
		}
	}
	return nil
}

// Parse reads Main's output and returns the median ns/op of each kernel.
func Parse(out string) (map[string]float64, error) {
	samples := map[string][]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("floor: bad line %q", line)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("floor: bad line %q", line)
		}
		samples[name] = append(samples[name], x)
	}
	med := map[string]float64{}
	for name, xs := range samples {
		slices.Sort(xs)
		med[name] = xs[len(xs)/2]
		if len(xs)%2 == 0 {
			med[name] = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
		}
	}
	for _, k := range Kernels() {
		if _, ok := med[k.Name]; !ok {
			return nil, fmt.Errorf("floor: no samples of %s", k.Name)
		}
	}
	return med, nil
}
