package main

import (
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
	"github.com/lastseen-xmpp/lastseen/core"
	"github.com/lastseen-xmpp/lastseen/stanza"
)

// ParResult is the throughput of the goroutine-safe wrapper (core.Sharded)
// on one core and on all of them.
type ParResult struct {
	Missing  string    `json:"missing,omitempty"`
	Cores    int       `json:"cores"`
	Users    int       `json:"users"`
	Seconds  float64   `json:"seconds_per_run"`
	OneCore  float64   `json:"ops_per_sec_one_core"` // median of runs
	AllCores float64   `json:"ops_per_sec_all_cores"`
	Speedup  float64   `json:"speedup"`
	OneRuns  []float64 `json:"one_core_runs"`
	AllRuns  []float64 `json:"all_cores_runs"`
	// Machine is a bare core.Machine on one core running the same mix,
	// to show what the wrapper costs.
	Machine float64 `json:"machine_one_core_ops_per_sec"`
	// OpenOne, OpenAll and OpenSpeedup repeat the runs with an Authorizer
	// that takes no lock (everyone may see everyone, which changes no reply
	// here): a diagnostic of what the shared MemoryAuth costs in scaling.
	OpenOne     float64 `json:"open_auth_one_core"`
	OpenAll     float64 `json:"open_auth_all_cores"`
	OpenSpeedup float64 `json:"open_auth_speedup"`
	// Indep, IndepAll and IndepSpeedup repeat the runs on independent
	// Machines, one per goroutine, each holding only the users its
	// goroutine walks: no lock and no shared memory, so no wrapper can
	// scale better than this on the same mix. The one-core run walks all
	// the users over all the Machines, as Sharded's does.
	IndepOne     float64   `json:"independent_one_core"`
	IndepAll     float64   `json:"independent_all_cores"`
	IndepSpeedup float64   `json:"independent_speedup"`
	IndepRuns    []float64 `json:"independent_speedup_runs"`
	// SpinSpeedup is the machine's own ceiling, measured right after each
	// pair of runs: a register-only arithmetic loop (no memory traffic, no
	// locks, no allocation) on all cores against one. On a virtual machine
	// whose host does not give every vCPU a full core it falls below the
	// core count, and no program can scale better than it.
	SpinSpeedup float64   `json:"spin_speedup"`
	SpinRuns    []float64 `json:"spin_speedup_runs"`
}

// spinSink keeps the spin loop's result alive.
var spinSink atomic.Uint64

// runSpin runs g goroutines of a register-only loop for d and returns
// iterations per second.
func runSpin(g int, d time.Duration) float64 {
	var total atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x, n := uint64(88172645463325252), int64(0)
			for !stop.Load() {
				for range 4096 { // xorshift: a few cycles, all in registers
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
				}
				n += 4096
			}
			spinSink.Add(x)
			total.Add(n)
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// openAuth lets everyone see everyone and takes no lock.
type openAuth struct{}

func (openAuth) Subscription(owner, contact stanza.JID) core.Subscription { return core.SubBoth }
func (openAuth) Blocks(owner, jid stanza.JID) bool                        { return false }
func (openAuth) Hidden(owner stanza.JID) bool                             { return false }

// parUser is one user's inputs, built before the clock starts.
type parUser struct {
	session stanza.JID
	avail   [2][]byte
	probe   []byte
	share   int // the goroutine that walks it on all cores
}

// parHost is what runUsers drives. o is the calling goroutine's own
// Outputs, as a connection goroutine of a Go server would keep one.
type parHost interface {
	client(o *core.Outputs, now clock.Time, u *parUser, raw []byte) error
	server(o *core.Outputs, now clock.Time, u *parUser) error
}

type shardedHost struct{ s *core.Sharded }

func (h shardedHost) client(o *core.Outputs, now clock.Time, u *parUser, raw []byte) error {
	return h.s.ClientInto(o, now, u.session, raw)
}

func (h shardedHost) server(o *core.Outputs, now clock.Time, u *parUser) error {
	err := h.s.ServerInto(o, now, u.probe)
	if err == nil && len(o.List) != 1 {
		err = errors.New("probe did not get exactly one reply")
	}
	return err
}

// machinesHost sends each user's stanzas to the Machine of its share, or
// to its only Machine.
type machinesHost []*core.Machine

func (h machinesHost) of(u *parUser) *core.Machine {
	if len(h) == 1 {
		return h[0]
	}
	return h[u.share]
}

func (h machinesHost) client(_ *core.Outputs, now clock.Time, u *parUser, raw []byte) error {
	_, err := h.of(u).Client(now, u.session, raw)
	return err
}

func (h machinesHost) server(_ *core.Outputs, now clock.Time, u *parUser) error {
	out, err := h.of(u).Server(now, u.probe)
	if err == nil && len(out) != 1 {
		err = errors.New("probe did not get exactly one reply")
	}
	return err
}

// runUsers runs g goroutines for d, each walking its own slice of users:
// for each user a presence update (alternating two stanzas, so every one
// is a change) and a server probe answered from that user's state. It
// returns operations (stanzas handled) per second.
func runUsers(us []parUser, g int, d time.Duration, h parHost) (float64, error) {
	var ops atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failed atomic.Value
	per := len(us) / g
	start := time.Now()
	for k := range g {
		wg.Add(1)
		go func(mine []parUser) {
			defer wg.Done()
			now := t0.Add(time.Hour)
			n := int64(0)
			var o core.Outputs
			for i := 0; !stop.Load(); i++ {
				u := &mine[i%len(mine)]
				now += 1000
				if err := h.client(&o, now, u, u.avail[(i/len(mine))&1]); err != nil {
					failed.Store(err)
					break
				}
				if err := h.server(&o, now, u); err != nil {
					failed.Store(err)
					break
				}
				n += 2
			}
			ops.Add(n)
		}(us[k*per : (k+1)*per])
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, err
	}
	return float64(ops.Load()) / time.Since(start).Seconds(), nil
}

// measureParallel compares core.Sharded with GOMAXPROCS=1 and one
// goroutine against GOMAXPROCS=NumCPU and NumCPU goroutines, back to back,
// runs times; the speedup is the median of the paired ratios.
func measureParallel(users int, d time.Duration, runs int) (ParResult, error) {
	cores := runtime.NumCPU()
	r := ParResult{Cores: cores, Users: users, Seconds: d.Seconds()}
	s, err := core.NewSharded(core.Config{Served: []string{domain}}, 0)
	if err != nil {
		return r, err
	}
	so, err := core.NewSharded(core.Config{Served: []string{domain}, Auth: openAuth{}}, 0)
	if err != nil {
		return r, err
	}
	// One Machine with every user for the bare-Machine row, and one per
	// core for the independent ceiling.
	m, err := core.New(core.Config{Served: []string{domain}})
	if err != nil {
		return r, err
	}
	indep := make(machinesHost, cores)
	for k := range indep {
		if indep[k], err = core.New(core.Config{Served: []string{domain}}); err != nil {
			return r, err
		}
	}
	per := users / cores
	us := make([]parUser, per*cores)
	pr := stanza.MustParse(prober)
	for i := range us {
		n := strconv.Itoa(i)
		bare := stanza.MustParse("user" + n + "@" + domain)
		u := &us[i]
		u.share = i / per
		if u.session, err = bare.WithResource("phone"); err != nil {
			return r, err
		}
		u.avail = [2][]byte{
			[]byte("<presence><show>away</show><status>" + n + " on the balcony</status></presence>"),
			[]byte("<presence><show>xa</show><status>" + n + " asleep</status></presence>"),
		}
		u.probe = []byte("<presence from='juliet@capulet.com/balcony' to='" + bare.String() + "' type='probe' id='p" + n + "'/>")
		if err := s.SetRoster(bare, pr, core.SubBoth); err != nil {
			return r, err
		}
		for _, mm := range []*core.Machine{m, indep[u.share]} {
			if err := mm.SetRoster(bare, pr, core.SubBoth); err != nil {
				return r, err
			}
			if _, err := mm.Client(t0, u.session, u.avail[1]); err != nil {
				return r, err
			}
		}
		if _, err := s.Client(t0, u.session, u.avail[1]); err != nil {
			return r, err
		}
		if _, err := so.Client(t0, u.session, u.avail[1]); err != nil {
			return r, err
		}
	}
	prev := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prev)
	var openOne, openAll, indepOne, indepAll []float64
	for range runs {
		for _, c := range []struct {
			h        parHost
			one, all *[]float64
		}{{shardedHost{s}, &r.OneRuns, &r.AllRuns}, {indep, &indepOne, &indepAll}, {shardedHost{so}, &openOne, &openAll}} {
			runtime.GOMAXPROCS(1)
			runtime.GC()
			one, err := runUsers(us, 1, d, c.h)
			if err != nil {
				return r, err
			}
			runtime.GOMAXPROCS(cores)
			runtime.GC()
			all, err := runUsers(us, cores, d, c.h)
			if err != nil {
				return r, err
			}
			*c.one, *c.all = append(*c.one, one), append(*c.all, all)
		}
		spinD := d / 4
		runtime.GOMAXPROCS(1)
		one := runSpin(1, spinD)
		runtime.GOMAXPROCS(cores)
		all := runSpin(cores, spinD)
		r.SpinRuns = append(r.SpinRuns, all/one)
	}
	r.SpinSpeedup = median(r.SpinRuns)
	r.OpenOne, r.OpenAll = median(openOne), median(openAll)
	r.OpenSpeedup = pairedSpeedup(openOne, openAll)
	r.IndepOne, r.IndepAll = median(indepOne), median(indepAll)
	r.IndepSpeedup = pairedSpeedup(indepOne, indepAll)
	for i := range indepOne {
		r.IndepRuns = append(r.IndepRuns, indepAll[i]/indepOne[i])
	}
	runtime.GOMAXPROCS(1)
	runtime.GC()
	if r.Machine, err = runUsers(us, 1, d, machinesHost{m}); err != nil {
		return r, err
	}
	r.OneCore, r.AllCores = median(r.OneRuns), median(r.AllRuns)
	r.Speedup = pairedSpeedup(r.OneRuns, r.AllRuns)
	return r, nil
}

// pairedSpeedup is the median of the all-cores/one-core ratios of runs
// made back to back, which drift on a shared machine affects less than the
// ratio of the two medians.
func pairedSpeedup(one, all []float64) float64 {
	var rs []float64
	for i := range min(len(one), len(all)) {
		if one[i] > 0 {
			rs = append(rs, all[i]/one[i])
		}
	}
	return median(rs)
}
