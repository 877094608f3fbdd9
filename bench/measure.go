package main

import (
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// Cell is the measurement of one workload on one contender.
type Cell struct {
	Workload string `json:"workload"`
	Impl     string `json:"impl"`
	Peer     bool   `json:"peer"`
	Missing  string `json:"missing,omitempty"` // why it did not run
	Batched  bool   `json:"batched,omitempty"`
	External bool   `json:"external,omitempty"` // measured in another process: no allocation figures
	// NsOp is the median over samples of the process CPU time per
	// operation (user + system, all threads: GC workers included). Unlike
	// wall time it does not count time spent waiting for a CPU that other
	// work on a shared machine holds. WallNsOp is the wall-clock median.
	NsOp     float64   `json:"ns_per_op"`
	Samples  []float64 `json:"samples_ns_per_op,omitempty"`
	WallNsOp float64   `json:"wall_ns_per_op"`
	Wall     []float64 `json:"wall_samples_ns_per_op,omitempty"`
	AllocsOp float64   `json:"allocs_per_op"`
	BytesOp  float64   `json:"bytes_per_op"`
	OutPerOp int       `json:"stanzas_out_per_op"`
}

// StanzasPerSec is input stanzas handled per second at the median cost.
func (c *Cell) StanzasPerSec() float64 {
	if c.NsOp <= 0 {
		return 0
	}
	return 1e9 / c.NsOp
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// timed runs n operations and returns the elapsed time.
func timed(in *instance, n int) (time.Duration, error) {
	wall, _, err := timedCPU(in, n)
	return wall, err
}

// timedCPU runs n operations and returns the elapsed wall and process CPU
// time.
func timedCPU(in *instance, n int) (wall, cpu time.Duration, err error) {
	c0 := cpuTime()
	start := time.Now()
	err = in.run(n)
	wall = time.Since(start)
	return wall, cpuTime() - c0, err
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// warmupOps is how many operations run before calibrating: enough for four
// full batches. The first calls on a fresh instance pay one-time costs (a
// WASM guest growing its heap, first-use paths in a runtime); timing them
// made calibrate settle on one operation per sample, so that whole cells
// measured a batch of one plus its fixed cost.
const warmupOps = 4 * batchSize

// calibrate finds how many operations fill about d, after a warm-up.
func calibrate(in *instance, d time.Duration) (int, error) {
	if err := in.run(warmupOps); err != nil {
		return 0, err
	}
	n := 1
	for {
		el, err := timed(in, n)
		if err != nil {
			return 0, err
		}
		if el >= d/4 || n >= 1<<26 {
			k := int(float64(n) * float64(d) / float64(max(el, time.Microsecond)))
			return max(k, 1), nil
		}
		if el < d/100 {
			n *= 10
		} else {
			n *= 3
		}
	}
}

// allocs measures allocations per operation over n operations.
func allocs(in *instance, n int) (allocsOp, bytesOp float64, err error) {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	if err := in.run(n); err != nil {
		return 0, 0, err
	}
	runtime.ReadMemStats(&b)
	return float64(b.Mallocs-a.Mallocs) / float64(n), float64(b.TotalAlloc-a.TotalAlloc) / float64(n), nil
}

// measureWorkload runs w on every contender. Samples are interleaved
// (each round runs every contender once, in a rotating order) so that
// noise from a shared machine spreads over all of them and the ratios of
// one run stay honest. Each sample starts after a GC, so every contender
// pays for its own garbage.
func measureWorkload(w *Workload, cs []Contender, cfg runConfig) ([]Cell, error) {
	cells := make([]Cell, len(cs))
	ins := make([]*instance, len(cs))
	ns := make([]int, len(cs))
	defer func() {
		for _, in := range ins {
			if in != nil {
				in.im.Release()
			}
		}
	}()
	for i, c := range cs {
		cells[i] = Cell{Workload: w.Name, Impl: c.Name, Peer: c.Peer, Missing: c.Missing, OutPerOp: w.Want, External: c.External}
		if c.Peer && w.NoPeers != "" {
			cells[i].Missing = w.NoPeers
		}
		if cells[i].Missing != "" || c.External {
			continue
		}
		in, err := w.start(c)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", w.Name, c.Name, err)
		}
		ins[i] = in
		cells[i].Batched = in.batch != nil
		if ns[i], err = calibrate(in, cfg.sample); err != nil {
			return nil, fmt.Errorf("%s on %s: %w", w.Name, c.Name, err)
		}
		if cells[i].AllocsOp, cells[i].BytesOp, err = allocs(in, ns[i]); err != nil {
			return nil, fmt.Errorf("%s on %s: %w", w.Name, c.Name, err)
		}
	}
	for s := range cfg.samples {
		for k := range cs {
			i := (k + s) % len(cs)
			in := ins[i]
			if in == nil {
				continue
			}
			runtime.GC()
			wall, cpu, err := timedCPU(in, ns[i])
			if err != nil {
				return nil, fmt.Errorf("%s on %s: %w", w.Name, cs[i].Name, err)
			}
			cells[i].Samples = append(cells[i].Samples, float64(cpu.Nanoseconds())/float64(ns[i]))
			cells[i].Wall = append(cells[i].Wall, float64(wall.Nanoseconds())/float64(ns[i]))
		}
	}
	for i := range cells {
		cells[i].NsOp = median(cells[i].Samples)
		cells[i].WallNsOp = median(cells[i].Wall)
	}
	return cells, nil
}
