// Command bench measures lastseen against peer implementations of the same
// XEP-0318 behaviour, in one process on the same inputs, and writes
// bench/RESULTS.md and bench/chart.svg.
//
// Usage:
//
//	go run ./bench            full run (under 2 minutes), writes RESULTS.md and chart.svg
//	go run ./bench -quick     scaled-down run (under 30 s), prints only
//	go run ./bench -json      print the figures as JSON instead of tables
//	go run ./bench -scale     the full run with the scale section at 1 M users
//	go run ./bench -scale -scale-only
//	                          only the scale section, printed (no files)
//	go run ./bench -scale-users N -scale-shards S
//	                          the scale section's size and shard count
//	go run ./bench -cpuprofile FILE
//	                          also write a CPU profile of the run
//	go run ./bench -scale-trace FILE
//	                          also trace the scale section's snapshot runs
//
// The scale section (issue 11) builds many users on one core.Sharded and
// measures, in the same run: a mixed load with 1 and 2 goroutines and its
// call latencies, the longest call while a snapshot runs, Snapshot and
// Restore, durable changes through store.OpenSharded, and memory per user.
// The default run holds it at 200 k users, -quick at 20 k.
//
// Engines (native, native-sharded, wazero, Node, Lua) and peers (etree,
// encoding/xml, mellium) implement Impl; see impl.go. Peer replies are
// checked against lastseen's by peers_test.go.
package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

//go:embed notes.md
var notes string

type runConfig struct {
	quick        bool
	samples      int
	sample       time.Duration
	memUsers     int
	peerMemUsers int
	parUsers     int
	parDur       time.Duration
	parRuns      int
	floorRounds  int
	floorMs      int
	scaleUsers   int
	scaleDur     time.Duration
	scaleShards  int
	scaleTrace   string
}

func defaultConfig(quick bool) runConfig {
	if quick {
		return runConfig{quick: true, samples: 3, sample: 8 * time.Millisecond, memUsers: 100_000, peerMemUsers: 10_000,
			parUsers: 1024, parDur: 150 * time.Millisecond, parRuns: 2, floorRounds: 3, floorMs: 10,
			scaleUsers: 20_000, scaleDur: 300 * time.Millisecond}
	}
	return runConfig{samples: 7, sample: 40 * time.Millisecond, memUsers: 1_000_000, peerMemUsers: 50_000,
		parUsers: 4096, parDur: 600 * time.Millisecond, parRuns: 5, floorRounds: 5, floorMs: 40,
		scaleUsers: 200_000, scaleDur: time.Second}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "scaled-down run (under 30 s); writes no files unless -out is given")
	asJSON := fs.Bool("json", false, "print the figures as JSON instead of tables")
	out := fs.String("out", "", "where to write RESULTS.md (default bench/RESULTS.md on a full run; - for nowhere)")
	chart := fs.String("chart", "", "where to write the SVG chart (default chart.svg beside RESULTS.md)")
	scale := fs.Bool("scale", false, "run the scale section at 1 M users (issue 11's size)")
	scaleUsers := fs.Int("scale-users", 0, "users in the scale section (default 1 M with -scale, 200 k, or 20 k with -quick)")
	scaleShards := fs.Int("scale-shards", 0, "shards of the scale section's Sharded (default: NewSharded's, 64 per GOMAXPROCS)")
	scaleOnly := fs.Bool("scale-only", false, "run only the scale section and print it; writes no files")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (for go tool pprof)")
	scaleTrace := fs.String("scale-trace", "", "write an execution trace of the scale section's snapshot runs to this file (for go tool trace)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	cfg := defaultConfig(*quick)
	if *scale {
		cfg.scaleUsers, cfg.scaleDur = goalUsers, 2*time.Second
	}
	if *scaleUsers != 0 {
		cfg.scaleUsers = *scaleUsers
	}
	cfg.scaleShards, cfg.scaleTrace = *scaleShards, *scaleTrace
	if cfg.scaleUsers < 2 {
		fmt.Fprintln(stderr, "bench: -scale-users needs at least 2 users")
		return 2
	}
	if *scaleOnly {
		if *out != "" && *out != "-" || *chart != "" {
			fmt.Fprintln(stderr, "bench: -scale-only writes no files; run without it to write RESULTS.md")
			return 2
		}
		return runScaleOnly(cfg, *asJSON, stdout, stderr)
	}
	res, err := measureAll(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	} else {
		res.WriteText(stdout)
	}
	path := *out
	if path == "" && !*quick {
		path = filepath.Join(benchDir(), "RESULTS.md")
	}
	if path == "" || path == "-" {
		return 0
	}
	chartPath := *chart
	if chartPath == "" {
		chartPath = filepath.Join(filepath.Dir(path), "chart.svg")
	}
	for _, p := range []string{path, chartPath} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	if err := os.WriteFile(chartPath, []byte(res.chartSVG()), 0o644); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	rel, err := filepath.Rel(filepath.Dir(path), chartPath)
	if err != nil {
		rel = chartPath
	}
	var md bytes.Buffer
	res.WriteMarkdown(&md, notes, filepath.ToSlash(rel))
	if err := os.WriteFile(path, md.Bytes(), 0o644); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	fmt.Fprintf(stderr, "bench: wrote %s and %s\n", path, chartPath)
	return 0
}

// moduleRoot finds the lastseen module root above the working directory,
// so that `go run ./bench` from anywhere in the repository writes to the
// same place.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/lastseen-xmpp/lastseen\n")) {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func benchDir() string { return filepath.Join(moduleRoot(), "bench") }

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// wasmInfo finds the built module, wherever issue 3 puts it.
func wasmInfo() WasmInfo {
	root := moduleRoot()
	for _, p := range []string{"wasm/lastseen.wasm", "bindings/go/lastseen.wasm", "bindings/node/lastseen.wasm"} {
		if st, err := os.Stat(filepath.Join(root, p)); err == nil {
			return WasmInfo{Path: p, Bytes: st.Size()}
		}
	}
	return WasmInfo{Missing: "not built yet"}
}

func measureAll(cfg runConfig, log io.Writer) (*Results, error) {
	start := time.Now()
	res := &Results{
		Date:       time.Now().UTC().Format("2006-01-02 15:04 MST"),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		Quick:      cfg.quick,
		Samples:    cfg.samples,
		SampleMs:   float64(cfg.sample) / float64(time.Millisecond),
		BatchSize:  batchSize,
		Wasm:       wasmInfo(),
		LoadBefore: loadavg(),
	}
	cs := contenders()
	var err error
	for _, w := range workloads() {
		fmt.Fprintf(log, "bench: %s\n", w.Name)
		cells, err := measureWorkload(&w, cs, cfg)
		if err != nil {
			return nil, err
		}
		res.Workloads = append(res.Workloads, WorkloadInfo{Name: w.Name, Desc: w.Desc})
		res.Cells = append(res.Cells, cells...)
	}
	for _, c := range cs {
		if !c.External || c.Missing != "" {
			continue
		}
		fmt.Fprintf(log, "bench: %s\n", c.Name)
		res.Cells, err = withExternal(res.Cells, c.Name, cfg)
		if err != nil {
			return nil, err
		}
	}
	for _, c := range cs {
		if c.Name == "native-sharded" || c.External {
			continue // the same Machines as native, behind locks; or not in this process
		}
		users := cfg.peerMemUsers // peers and wazero: 10× fewer users, to keep the run short
		if c.Name == "native" {
			users = cfg.memUsers
		}
		fmt.Fprintf(log, "bench: memory, %s, %d users\n", c.Name, users)
		m, err := measureMemory(c, users)
		if err != nil {
			return nil, err
		}
		res.Memory = append(res.Memory, m)
	}
	fmt.Fprintln(log, "bench: parallel")
	par, err := measureParallel(cfg.parUsers, cfg.parDur, cfg.parRuns)
	if err != nil {
		return nil, err
	}
	res.Parallel = par
	fmt.Fprintln(log, "bench: floor (wasm code generation and module size)")
	res.Floor = measureFloor(cfg.floorRounds, cfg.floorMs)
	fmt.Fprintf(log, "bench: scale, %d users\n", cfg.scaleUsers)
	if res.Scale, err = measureScale(cfg.scaleUsers, cfg.scaleShards, cfg.scaleDur, cfg.scaleTrace, log); err != nil {
		return nil, err
	}
	res.RunSeconds = time.Since(start).Seconds()
	res.LoadAfter = loadavg()
	res.Targets = targets(res)
	return res, nil
}

func status(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func targets(r *Results) []Target {
	var ts []Target
	na := func(name, goal, why string) {
		ts = append(ts, Target{Name: name, Goal: goal, Measured: "n/a (" + why + ")", Status: "n/a"})
	}
	if c := r.cell("probe-offline", "native"); c != nil && c.Missing == "" {
		ts = append(ts, Target{"probe answer, offline user, native", "≤ 400 ns", fmtNs(c.NsOp), status(c.NsOp <= 400)})
		ts = append(ts, Target{"probe answer, offline user, native allocs", "≤ 2 allocs/op", fmt.Sprintf("%.1f", c.AllocsOp), status(c.AllocsOp <= 2)})
		if e := r.cell("probe-offline", "etree"); e != nil && e.Missing == "" {
			x := e.NsOp / c.NsOp
			ts = append(ts, Target{"probe answer, offline user, vs etree", "≥ 30× faster", fmtRatio(x), status(x >= 30)})
		}
	}
	for _, w := range []string{"update-available", "update-unavailable"} {
		if c := r.cell(w, "native"); c != nil && c.Missing == "" {
			ts = append(ts, Target{"presence update (" + strings.TrimPrefix(w, "update-") + "), native", "≤ 500 ns", fmtNs(c.NsOp), status(c.NsOp <= 500)})
		}
	}
	engineRatio := func(engine string, limit float64) {
		goal := fmt.Sprintf("≤ %.0f× native per stanza", limit)
		name := engine + " engine, batched"
		if engine == "node" {
			name = "Node engine"
		}
		worst, ok, why := 0.0, true, ""
		for _, w := range r.Workloads {
			c, n := r.cell(w.Name, engine), r.cell(w.Name, "native")
			if c == nil || c.Missing != "" {
				ok, why = false, "not built yet"
				if c != nil {
					why = c.Missing
				}
				break
			}
			worst = max(worst, c.NsOp/n.NsOp)
		}
		if !ok {
			na(name, goal, why)
			return
		}
		ts = append(ts, Target{name, goal, "worst workload " + fmtRatio(worst), status(worst <= limit)})
	}
	engineRatio("wazero", 2)
	engineRatio("node", 3)
	for _, m := range r.Memory {
		if m.Impl == "native" && m.Missing == "" {
			ts = append(ts, Target{"memory per tracked offline user", "≤ 350 B beyond the presence", fmt.Sprintf("%.0f B (%.0f B/user in all, %d users, %.0f MiB)", m.BeyondStored, m.PerUser, m.Users, float64(m.HeapBytes)/(1<<20)), status(m.BeyondStored <= 350)})
		}
	}
	if p := r.Parallel; p.Missing == "" {
		ts = append(ts, Target{fmt.Sprintf("parallel wrapper, %d cores vs 1", p.Cores), "≥ 1.7×", fmt.Sprintf("%.2f× (independent Machines: %.2f×, a register-only loop: %.2f×)", p.Speedup, p.IndepSpeedup, p.SpinSpeedup), status(p.Speedup >= 1.7)})
	} else {
		na("parallel wrapper", "≥ 1.7×", p.Missing)
	}
	if r.Wasm.Missing == "" {
		ts = append(ts, Target{".wasm size", "≤ 3 MiB", fmt.Sprintf("%.2f MiB", float64(r.Wasm.Bytes)/(1<<20)), status(r.Wasm.Bytes <= 3<<20)})
	} else {
		na(".wasm size", "≤ 3 MiB", r.Wasm.Missing)
	}
	return append(ts, r.Scale.targets()...)
}

// runScaleOnly runs and prints the scale section alone.
func runScaleOnly(cfg runConfig, asJSON bool, stdout, stderr io.Writer) int {
	res := &Results{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), GoVersion: runtime.Version(), OS: runtime.GOOS,
		Arch: runtime.GOARCH, CPU: cpuModel(), Cores: runtime.NumCPU(), Quick: cfg.quick, LoadBefore: loadavg()}
	start := time.Now()
	var err error
	if res.Scale, err = measureScale(cfg.scaleUsers, cfg.scaleShards, cfg.scaleDur, cfg.scaleTrace, stderr); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	res.RunSeconds, res.LoadAfter = time.Since(start).Seconds(), loadavg()
	res.Targets = res.Scale.targets()
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "lastseen bench, scale section only — %s\n", res.machineLine())
	fmt.Fprintf(stdout, "load average before %s, after %s\n\n", res.LoadBefore, res.LoadAfter)
	res.Scale.writeText(stdout)
	fmt.Fprintln(stdout)
	writeAligned(stdout, res.targetRows(), "  ")
	fmt.Fprintf(stdout, "\nrun took %.1f s\n", res.RunSeconds)
	return 0
}

func contender(cs []Contender, name string) Contender {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return Contender{Name: name, Missing: "unknown"}
}

// withExternal runs the workloads on an external engine (node, lua) and
// fills its cells.
func withExternal(cells []Cell, engine string, cfg runConfig) ([]Cell, error) {
	res, err := runExternal(engine, workloads(), cfg, false)
	if err != nil {
		return nil, err
	}
	for i := range cells {
		c := &cells[i]
		if c.Impl != engine {
			continue
		}
		r, ok := res[c.Workload]
		if !ok {
			return nil, fmt.Errorf("%s: no result for %s", engine, c.Workload)
		}
		c.NsOp, c.Samples, c.WallNsOp, c.Wall, c.Batched = r.NsOp, r.Samples, r.WallNsOp, r.Wall, true
	}
	return cells, nil
}

// loadavg returns the 1, 5 and 15 minute load averages, or "unknown".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
