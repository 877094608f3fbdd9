package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestReport renders a synthetic run in every format, so that the report
// code is covered without running the (slow) measurements.
func TestReport(t *testing.T) {
	r := &Results{Date: "2026-01-01 00:00 UTC", GoVersion: "go1.26", OS: "linux", Arch: "amd64", CPU: "cpu", Cores: 2, Samples: 3, SampleMs: 10, BatchSize: batchSize}
	for _, w := range workloads() {
		r.Workloads = append(r.Workloads, WorkloadInfo{Name: w.Name, Desc: w.Desc})
		for i, c := range contenders() {
			cell := Cell{Workload: w.Name, Impl: c.Name, Peer: c.Peer, NsOp: float64(300 * (i + 1)), Missing: c.Missing}
			if c.Name == "node" {
				cell.Missing = "not built yet"
			}
			r.Cells = append(r.Cells, cell)
		}
	}
	r.Memory = []MemResult{{Impl: "native", Users: 1000, HeapBytes: 320000, PerUser: 320, BeyondStored: 120}}
	r.Parallel = ParResult{Cores: 2, OneCore: 1e6, AllCores: 1.8e6, Speedup: 1.8}
	r.Wasm = WasmInfo{Missing: "not built yet"}
	r.Scale = ScaleResult{Users: goalUsers, Seconds: 2, Mixed: []MixRun{{Goroutines: 1, Calls: 10}, {Goroutines: 2, Calls: 20}},
		Stall: MixRun{Goroutines: 2, Max: 12e6}, Stall1: MixRun{Goroutines: 1, Max: 2e6}, Idle: MixRun{Goroutines: 2, Max: 3e6}, Busy: MixRun{Goroutines: 2, Max: 11e6}, EncodeSeconds: 0.4, RestoreSeconds: 0.6, AuthBytes: 140}
	r.Targets = targets(r)
	var text, md bytes.Buffer
	r.WriteText(&text)
	r.WriteMarkdown(&md, notes, "chart.svg")
	svg := r.chartSVG()
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"text": text.String(), "markdown": md.String(), "svg": svg, "json": string(js)} {
		if !strings.Contains(s, "probe-offline") {
			t.Errorf("%s report does not mention probe-offline", name)
		}
	}
	if !strings.Contains(text.String(), "n/a (not built yet)") {
		t.Error("a missing engine must read n/a, not a figure")
	}
	for _, row := range []string{
		"| max call latency while a snapshot runs, 2 goroutines | ≤ 10 ms | 12.00 ms (1 goroutine: 2.00 ms; same load with no snapshot: 3.00 ms, beside a goroutine computing: 11.00 ms) | missed |",
		"| Restore of 1 M users | ≤ 0.5 s | 0.600 s | missed |",
		"| Snapshot of 1 M users | ≤ 0.5 s | 0.400 s | met |",
		"## Scale: one Sharded with many users",
	} {
		if !strings.Contains(md.String(), row) {
			t.Errorf("markdown lacks %q", row)
		}
	}
	if !strings.Contains(md.String(), "| probe answer, offline user, native | ≤ 400 ns | 300 ns | met |") {
		t.Errorf("targets table:\n%s", md.String())
	}
}
