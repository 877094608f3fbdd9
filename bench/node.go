package main

// The Node.js engine runs in a node process: node_bench.mjs loads
// bindings/node, replays each workload's setup (recorded from the Go
// Workload.Setup by recorder), and times the operations itself with its
// batch call, so that the figures are the cost inside Node, not the cost
// of talking to it. The Lua engine (bindings/lua, lastseen.wasm on
// wasmtime) runs the same way in a lua5.4 process, with lua_bench.lua.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lastseen-xmpp/lastseen/clock"
)

// nodeMissing says why the Node engine cannot run here, or "".
func nodeMissing() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node not installed"
	}
	if _, err := os.Stat(filepath.Join(moduleRoot(), "bindings", "node", "index.js")); err != nil {
		return "not built yet"
	}
	if _, err := os.Stat(filepath.Join(moduleRoot(), "wasm", "lastseen.wasm")); err != nil {
		return "lastseen.wasm not built"
	}
	return ""
}

// luaMissing says why the Lua engine cannot run here, or "".
func luaMissing() string {
	if _, err := exec.LookPath("lua5.4"); err != nil {
		return "lua5.4 not installed"
	}
	if _, err := os.Stat(filepath.Join(moduleRoot(), "bindings", "lua", "lastseen_core.so")); err != nil {
		return "not built yet: bash bindings/lua/build.sh"
	}
	return ""
}

// externalCommands are the processes that measure the external engines,
// each reading a nodeRequest on stdin and writing []nodeResult.
var externalCommands = map[string]func() *exec.Cmd{
	"node": func() *exec.Cmd {
		return exec.Command("node", "--expose-gc", filepath.Join(benchDir(), "node_bench.mjs"))
	},
	"lua": func() *exec.Cmd { return exec.Command("lua5.4", filepath.Join(benchDir(), "lua_bench.lua")) },
}

// setupStep is one recorded setup call, in the form node_bench.mjs replays.
type setupStep struct {
	Op      string `json:"op"` // roster, limit, up, session, client, server
	A       string `json:"a,omitempty"`
	B       string `json:"b,omitempty"`
	Now     string `json:"now,omitempty"` // ns since the epoch, as text (a BigInt in JS)
	N       int    `json:"n,omitempty"`
	PerNs   string `json:"per_ns,omitempty"`
	Session int    `json:"session,omitempty"`
}

// recorder is an Impl that only records the calls made on it.
type recorder struct {
	steps    []setupStep
	sessions int
}

func ns(t clock.Time) string { return strconv.FormatInt(int64(t), 10) }

func (r *recorder) Roster(owner, contact string) error {
	r.steps = append(r.steps, setupStep{Op: "roster", A: owner, B: contact})
	return nil
}

func (r *recorder) Limit(now clock.Time, burst int, per time.Duration) error {
	r.steps = append(r.steps, setupStep{Op: "limit", Now: ns(now), N: burst, PerNs: strconv.FormatInt(int64(per), 10)})
	return nil
}

func (r *recorder) Up(now clock.Time, domain string) error {
	r.steps = append(r.steps, setupStep{Op: "up", A: domain, Now: ns(now)})
	return nil
}

func (r *recorder) Session(full string) (int, error) {
	r.steps = append(r.steps, setupStep{Op: "session", A: full})
	r.sessions++
	return r.sessions - 1, nil
}

func (r *recorder) Client(now clock.Time, s int, raw []byte) (int, error) {
	r.steps = append(r.steps, setupStep{Op: "client", Session: s, A: string(raw), Now: ns(now)})
	return 0, nil
}

func (r *recorder) Server(now clock.Time, raw []byte) (int, error) {
	r.steps = append(r.steps, setupStep{Op: "server", A: string(raw), Now: ns(now)})
	return 0, nil
}

func (r *recorder) Output(int) []byte { return nil }
func (r *recorder) Release() error    { return nil }

type nodeWorkload struct {
	Name    string      `json:"name"`
	Setup   []setupStep `json:"setup"`
	Session string      `json:"session,omitempty"`
	In      [2]string   `json:"in"`
	Want    int         `json:"want"`
	Start   string      `json:"start_ns"`
	StepNs  string      `json:"step_ns"`
}

type nodeRequest struct {
	Workloads []nodeWorkload `json:"workloads"`
	Samples   int            `json:"samples"`
	SampleMs  float64        `json:"sample_ms"`
	Batch     int            `json:"batch"`
	Check     bool           `json:"check,omitempty"` // run the equality check instead of timing
}

type nodeResult struct {
	Name     string    `json:"name"`
	NsOp     float64   `json:"ns_per_op"` // process CPU time
	Samples  []float64 `json:"samples"`
	WallNsOp float64   `json:"wall_ns_per_op"`
	Wall     []float64 `json:"wall"`
	// With Check: the stanzas of four single operations, then of a probe
	// for the workload's user (see step in peers_test.go).
	Ops   [][]string `json:"ops"`
	Probe []string   `json:"probe"`
	Error string     `json:"error,omitempty"`
}

// nodeRequestFor records every workload's setup.
func nodeRequestFor(ws []Workload, cfg runConfig) (nodeRequest, error) {
	req := nodeRequest{Samples: cfg.samples, SampleMs: float64(cfg.sample) / float64(time.Millisecond), Batch: batchSize}
	for _, w := range ws {
		var r recorder
		if err := w.Setup(&r); err != nil {
			return req, err
		}
		req.Workloads = append(req.Workloads, nodeWorkload{
			Name: w.Name, Setup: r.steps, Session: w.Session, In: w.In, Want: w.Want,
			Start: ns(t0.Add(3 * time.Hour)), StepNs: strconv.FormatInt(int64(w.Step), 10),
		})
	}
	return req, nil
}

// runExternal runs the external engine's measuring process (node_bench.mjs,
// lua_bench.lua) on the workloads and returns its results by workload name.
func runExternal(engine string, ws []Workload, cfg runConfig, check bool) (map[string]nodeResult, error) {
	req, err := nodeRequestFor(ws, cfg)
	if err != nil {
		return nil, err
	}
	req.Check = check
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	command, ok := externalCommands[engine]
	if !ok {
		return nil, fmt.Errorf("no external engine %q", engine)
	}
	cmd := command()
	cmd.Dir = moduleRoot()
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", cmd.Args[len(cmd.Args)-1], err, stderr.String())
	}
	var res []nodeResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("%s output: %v", cmd.Args[len(cmd.Args)-1], err)
	}
	byName := map[string]nodeResult{}
	for _, r := range res {
		if r.Error != "" {
			return nil, fmt.Errorf("%s, %s: %s", engine, r.Name, r.Error)
		}
		byName[r.Name] = r
	}
	return byName, nil
}
