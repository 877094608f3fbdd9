package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Results is everything one run measured; -json prints it as is.
type Results struct {
	Date       string         `json:"date"`
	GoVersion  string         `json:"go_version"`
	OS         string         `json:"os"`
	Arch       string         `json:"arch"`
	CPU        string         `json:"cpu"`
	Cores      int            `json:"cores"`
	LoadBefore string         `json:"loadavg_before"` // /proc/loadavg: how busy the machine was
	LoadAfter  string         `json:"loadavg_after"`
	Quick      bool           `json:"quick"`
	Samples    int            `json:"samples"`
	SampleMs   float64        `json:"sample_ms"`
	BatchSize  int            `json:"batch_size"`
	Workloads  []WorkloadInfo `json:"workloads"`
	Cells      []Cell         `json:"cells"`
	Memory     []MemResult    `json:"memory"`
	Parallel   ParResult      `json:"parallel"`
	Wasm       WasmInfo       `json:"wasm"`
	Floor      FloorInfo      `json:"floor"`
	Scale      ScaleResult    `json:"scale"`
	Targets    []Target       `json:"targets"`
	RunSeconds float64        `json:"run_seconds"`
}

// WorkloadInfo names and describes a workload.
type WorkloadInfo struct {
	Name string `json:"name"`
	Desc string `json:"desc"`
}

// WasmInfo is the size of the built WASM module.
type WasmInfo struct {
	Path    string `json:"path,omitempty"`
	Bytes   int64  `json:"bytes"`
	Missing string `json:"missing,omitempty"`
}

// Target is one of issue 4's figures and whether this run meets it.
type Target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // met, missed, n/a
}

func (r *Results) cell(workload, impl string) *Cell {
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Workload == workload && c.Impl == impl {
			return c
		}
	}
	return nil
}

func (r *Results) implNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, c := range r.Cells {
		if !seen[c.Impl] {
			seen[c.Impl] = true
			names = append(names, c.Impl)
		}
	}
	return names
}

func (r *Results) peerNames() []string {
	var names []string
	for _, n := range r.implNames() {
		if c := r.cell(r.Workloads[0].Name, n); c != nil && c.Peer {
			names = append(names, n)
		}
	}
	return names
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e4:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2f M", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1f k", r/1e3)
	default:
		return fmt.Sprintf("%.0f", r)
	}
}

func fmtRatio(x float64) string {
	if x >= 10 {
		return fmt.Sprintf("%.0f×", x)
	}
	return fmt.Sprintf("%.2f×", x)
}

// rows returns the table of one workload: a header and one row per impl.
func (r *Results) rows(w string) [][]string {
	peers := r.peerNames()
	head := []string{"impl", "ns/op (CPU)", "ns/op (wall)", "allocs/op", "B/op", "stanzas/s", "× native"}
	for _, p := range peers {
		head = append(head, "faster than "+p)
	}
	out := [][]string{head}
	nat := r.cell(w, "native")
	for _, name := range r.implNames() {
		c := r.cell(w, name)
		row := []string{name}
		if c.Missing != "" {
			row = append(row, "n/a ("+c.Missing+")")
			for len(row) < len(head) {
				row = append(row, "")
			}
			out = append(out, row)
			continue
		}
		nsStr := fmtNs(c.NsOp)
		if c.Batched {
			nsStr += " (batched)"
		}
		allocs, bytes := fmt.Sprintf("%.1f", c.AllocsOp), fmt.Sprintf("%.0f", c.BytesOp)
		if c.External {
			allocs, bytes = "–", "–"
		}
		row = append(row, nsStr, fmtNs(c.WallNsOp), allocs, bytes, fmtRate(c.StanzasPerSec()))
		if nat != nil && nat.Missing == "" && nat.NsOp > 0 {
			row = append(row, fmtRatio(c.NsOp/nat.NsOp))
		} else {
			row = append(row, "")
		}
		for _, p := range peers {
			pc := r.cell(w, p)
			if pc == nil || pc.Missing != "" || c.NsOp <= 0 {
				row = append(row, "")
				continue
			}
			row = append(row, fmtRatio(pc.NsOp/c.NsOp))
		}
		out = append(out, row)
	}
	return out
}

func writeAligned(w io.Writer, rows [][]string, indent string) {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, s := range row {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		b.WriteString(indent)
		for i, s := range row {
			pad := width[i] - len([]rune(s))
			if i == 0 {
				b.WriteString(s + strings.Repeat(" ", pad))
			} else {
				b.WriteString("  " + strings.Repeat(" ", pad) + s)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func writeMarkdownTable(w io.Writer, rows [][]string) {
	fmt.Fprintln(w, "| "+strings.Join(rows[0], " | ")+" |")
	seps := make([]string, len(rows[0]))
	for i := range seps {
		seps[i] = "---:"
	}
	seps[0] = "---"
	fmt.Fprintln(w, "|"+strings.Join(seps, "|")+"|")
	for _, row := range rows[1:] {
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
	}
}

func (r *Results) memRows() [][]string {
	rows := [][]string{{"impl", "users", "heap in use", "bytes/user", "beyond the 200-byte presence", "feed time"}}
	for _, m := range r.Memory {
		if m.Missing != "" {
			rows = append(rows, []string{m.Impl, "", "n/a (" + m.Missing + ")", "", "", ""})
			continue
		}
		rows = append(rows, []string{m.Impl, fmt.Sprint(m.Users), fmt.Sprintf("%.1f MiB", float64(m.HeapBytes)/(1<<20)),
			fmt.Sprintf("%.0f", m.PerUser), fmt.Sprintf("%.0f", m.BeyondStored), fmt.Sprintf("%.2f s", m.FeedSeconds)})
	}
	return rows
}

func (r *Results) parRows() [][]string {
	p := r.Parallel
	if p.Missing != "" {
		return [][]string{{"core.Sharded"}, {"n/a (" + p.Missing + ")"}}
	}
	return [][]string{
		{"run", "goroutines", "stanzas/s (median)", "runs"},
		{"Sharded, GOMAXPROCS=1", "1", fmtRate(p.OneCore), joinRates(p.OneRuns)},
		{fmt.Sprintf("Sharded, GOMAXPROCS=%d", p.Cores), fmt.Sprint(p.Cores), fmtRate(p.AllCores), joinRates(p.AllRuns)},
		{"speedup (median of paired runs)", "", fmt.Sprintf("%.2f×", p.Speedup), ""},
		{"bare Machine, GOMAXPROCS=1", "1", fmtRate(p.Machine), ""},
		{"diagnostic: Sharded with a lock-free Authorizer, 1 core", "1", fmtRate(p.OpenOne), ""},
		{fmt.Sprintf("diagnostic: the same, %d cores", p.Cores), fmt.Sprint(p.Cores), fmtRate(p.OpenAll), fmt.Sprintf("speedup %.2f×", p.OpenSpeedup)},
		{fmt.Sprintf("ceiling: independent Machines, one per goroutine (no lock, no shared memory), %d cores vs 1", p.Cores), "", fmt.Sprintf("%.2f×", p.IndepSpeedup), joinRatios(p.IndepRuns)},
		{fmt.Sprintf("ceiling: a register-only loop, %d cores vs 1 (no program scales better here)", p.Cores), "", fmt.Sprintf("%.2f×", p.SpinSpeedup), joinRatios(p.SpinRuns)},
	}
}

// floorRows is the codegen table: each kernel natively and inside each
// WASM runtime, with the ratios.
func (r *Results) floorRows() [][]string {
	rows := [][]string{{"kernel", "native", "wazero", "node", "wazero × native", "node × native"}}
	ratio := func(x, n float64) string {
		if x == 0 || n == 0 {
			return "n/a"
		}
		return fmtRatio(x / n)
	}
	ns := func(x float64) string {
		if x == 0 {
			return "n/a"
		}
		return fmtNs(x)
	}
	for _, k := range r.Floor.Kernels {
		rows = append(rows, []string{k.Name, ns(k.Native), ns(k.Wazero), ns(k.Node), ratio(k.Wazero, k.Native), ratio(k.Node, k.Native)})
	}
	return rows
}

func mib(b int64) string { return fmt.Sprintf("%d bytes (%.2f MiB)", b, float64(b)/(1<<20)) }

// sizeRows compares lastseen.wasm with the smallest modules the toolchain
// and the chosen dependencies allow.
func (r *Results) sizeRows() [][]string {
	rows := [][]string{{"module", "size"}}
	if r.Floor.Missing == "" {
		rows = append(rows,
			[]string{"empty reactor (`func main() {}`, the Go runtime alone)", mib(r.Floor.EmptyBytes)},
			[]string{"reactor linking only x/text PRECIS and x/net IDNA (RFC 7622)", mib(r.Floor.DepsBytes)})
	}
	if r.Wasm.Missing == "" {
		rows = append(rows, []string{"`" + r.Wasm.Path + "` (lastseen)", mib(r.Wasm.Bytes)})
	}
	return rows
}

func joinRatios(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.2f×", x)
	}
	return strings.Join(s, ", ")
}

func joinRates(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmtRate(x)
	}
	return strings.Join(s, ", ")
}

func (r *Results) targetRows() [][]string {
	rows := [][]string{{"target", "goal", "measured", "status"}}
	for _, t := range r.Targets {
		rows = append(rows, []string{t.Name, t.Goal, t.Measured, t.Status})
	}
	return rows
}

func (r *Results) machineLine() string {
	return fmt.Sprintf("%s, %d cores, %s/%s, %s, %s", r.CPU, r.Cores, r.OS, r.Arch, r.GoVersion, r.Date)
}

// WriteText prints the tables for a terminal.
func (r *Results) WriteText(w io.Writer) {
	fmt.Fprintf(w, "lastseen bench — %s\n", r.machineLine())
	fmt.Fprintf(w, "load average before %s, after %s\n", r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "medians of %d interleaved samples of ~%.0f ms each; ns/op (CPU) is process CPU time per input stanza, which ratios, stanzas/s and targets use; stanzas/s counts input stanzas\n\n", r.Samples, r.SampleMs)
	for _, wl := range r.Workloads {
		fmt.Fprintf(w, "%s: %s\n", wl.Name, wl.Desc)
		writeAligned(w, r.rows(wl.Name), "  ")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "memory per tracked offline user (heap in use after GC, divided)")
	writeAligned(w, r.memRows(), "  ")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "parallel throughput of core.Sharded (update + probe mix over many users)")
	writeAligned(w, r.parRows(), "  ")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "what bounds the WASM targets: the same Go code natively and compiled to wasip1, timed inside the runtime (wall ns/op)")
	if r.Floor.Missing != "" {
		fmt.Fprintf(w, "  n/a (%s)\n", r.Floor.Missing)
	} else {
		writeAligned(w, r.floorRows(), "  ")
		fmt.Fprintln(w)
		writeAligned(w, r.sizeRows(), "  ")
	}
	fmt.Fprintln(w)
	if r.Scale.Users != 0 {
		r.Scale.writeText(w)
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "targets (issues 4 and 11)")
	writeAligned(w, r.targetRows(), "  ")
	fmt.Fprintf(w, "\nrun took %.1f s\n", r.RunSeconds)
}

// WriteMarkdown writes RESULTS.md: the figures, then notes.
func (r *Results) WriteMarkdown(w io.Writer, notes, chart string) {
	fmt.Fprintln(w, "# lastseen benchmark results")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Generated by `go run ./bench` — do not edit by hand; the analysis at the end comes from `bench/notes.md`.")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- Machine: %s, %d cores (%s/%s)\n", r.CPU, r.Cores, r.OS, r.Arch)
	fmt.Fprintf(w, "- Go: %s\n", r.GoVersion)
	fmt.Fprintf(w, "- Date: %s\n", r.Date)
	fmt.Fprintf(w, "- Load average (1, 5, 15 min) before the run: %s; after: %s. This is a shared machine: a load above its core count means other work competed for the CPU, which inflates ns/op and caps the parallel speedup.\n", r.LoadBefore, r.LoadAfter)
	mode := "default"
	if r.Quick {
		mode = "-quick"
	}
	fmt.Fprintf(w, "- Mode: %s; medians of %d interleaved samples of ~%.0f ms per cell; WASM batches of %d; the whole run took %.1f s\n", mode, r.Samples, r.SampleMs, r.BatchSize, r.RunSeconds)
	fmt.Fprintln(w, "- Reproduce: `go run ./bench` (or `-quick`, `-json`, `-scale` for the scale section at 1 M users); per-path profiles: `go test -run '^$' -bench . -count=6 ./core ./stanza`")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Targets")
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.targetRows())
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Per-stanza cost")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ns/op (CPU) is the median process CPU time (user + system, every thread, GC included) spent handling one input stanza; ns/op (wall) is the wall-clock median of the same samples. On an idle machine they agree; on a shared one wall time also counts the time other work held the CPU, so the CPU figure is the one that ratios, stanzas/s and the targets use. \"× native\" is the cost relative to the native engine; \"faster than P\" is P's cost divided by this row's.")
	if chart != "" {
		fmt.Fprintf(w, "\n![per-stanza cost](%s)\n", chart)
	}
	for _, wl := range r.Workloads {
		fmt.Fprintf(w, "\n### %s\n\n%s.\n\n", wl.Name, wl.Desc)
		writeMarkdownTable(w, r.rows(wl.Name))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Memory per tracked user")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Each user comes online with a %d-byte presence and goes offline with a %d-byte unavailable presence, which is what must be remembered. Heap in use after GC, minus the heap before, divided by the users.\n\n", presenceSize, presenceSize)
	writeMarkdownTable(w, r.memRows())
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Parallel throughput")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "core.Sharded with its default shard count (64 per GOMAXPROCS); %d users, each goroutine walking its own share: a presence update then a server probe per user. %.1f s per run.\n\n", r.Parallel.Users, r.Parallel.Seconds)
	writeMarkdownTable(w, r.parRows())
	fmt.Fprintln(w)
	if r.Scale.Users != 0 {
		r.Scale.writeMarkdown(w)
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "## WASM module size")
	fmt.Fprintln(w)
	if r.Wasm.Missing != "" {
		fmt.Fprintf(w, "n/a (%s)\n", r.Wasm.Missing)
	} else {
		fmt.Fprintf(w, "`%s`: %d bytes (%.2f MiB)\n", r.Wasm.Path, r.Wasm.Bytes, float64(r.Wasm.Bytes)/(1<<20))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## What bounds the WASM targets (measured in this run)")
	fmt.Fprintln(w)
	if r.Floor.Missing != "" {
		fmt.Fprintf(w, "n/a (%s)\n", r.Floor.Missing)
	} else {
		fmt.Fprintln(w, "The kernels of `bench/internal/floor`, timed natively and then compiled to GOOS=wasip1 by the same toolchain and timed inside wazero (the compiler the wazero engine uses) and Node, each module timing itself with the host's monotonic clock: no ABI, batching or host code in between. Wall-clock medians after a warm-up. A row's ratio is the least any WASM engine built from this Go code can reach for that work.")
		fmt.Fprintln(w)
		for _, k := range r.Floor.Kernels {
			fmt.Fprintf(w, "- `%s`: %s\n", k.Name, k.Desc)
			if k.Missing != "" {
				fmt.Fprintf(w, "  (%s)\n", k.Missing)
			}
		}
		fmt.Fprintln(w)
		writeMarkdownTable(w, r.floorRows())
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Module sizes, each built with `wasm/build.sh`'s flags (`-trimpath -ldflags='-s -w'`, reactor):")
		fmt.Fprintln(w)
		writeMarkdownTable(w, r.sizeRows())
	}
	if notes != "" {
		fmt.Fprintln(w)
		fmt.Fprint(w, notes)
	}
}

// chartSVG draws per-stanza cost (log scale) for each workload and impl.
func (r *Results) chartSVG() string {
	impls := r.implNames()
	colours := []string{"#1b7837", "#5aae61", "#2166ac", "#67a9cf", "#b2182b", "#ef8a62", "#762a83", "#999999"}
	const (
		left, right, top = 170, 40, 50
		barH, gap        = 12, 14
		plotW            = 560
	)
	lo, hi := math.Inf(1), 0.0
	for _, c := range r.Cells {
		if c.Missing == "" && c.NsOp > 0 {
			lo, hi = math.Min(lo, c.NsOp), math.Max(hi, c.NsOp)
		}
	}
	if hi == 0 {
		return ""
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	x := func(ns float64) float64 {
		return left + plotW*(math.Log10(ns)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	groupH := len(impls)*barH + gap
	height := top + len(r.Workloads)*groupH + 40 + 20*((len(impls)+3)/4)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", left+plotW+right, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">lastseen: cost per input stanza (ns, log scale; shorter is faster)</text>`+"\n", left)
	fmt.Fprintf(&b, `<text x="%d" y="36" fill="#555">%s</text>`+"\n", left, xmlEscape(r.machineLine()))
	plotBottom := top + len(r.Workloads)*groupH
	for d := lo; d <= hi*1.0001; d *= 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(d), top-4, x(d), plotBottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x(d), plotBottom+14, fmtNs(d))
	}
	for wi, wl := range r.Workloads {
		y0 := top + wi*groupH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-weight="bold">%s</text>`+"\n", left-8, y0+len(impls)*barH/2+4, xmlEscape(wl.Name))
		for ii, name := range impls {
			c := r.cell(wl.Name, name)
			y := y0 + ii*barH
			col := colours[ii%len(colours)]
			if c == nil || c.Missing != "" || c.NsOp <= 0 {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#999" font-size="9">%s: n/a</text>`+"\n", left+4, y+barH-3, xmlEscape(name))
				continue
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
				left, y, x(c.NsOp)-left, barH-2, col, xmlEscape(wl.Name), xmlEscape(name), fmtNs(c.NsOp))
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="9">%s</text>`+"\n", x(c.NsOp)+3, y+barH-3, fmtNs(c.NsOp))
		}
	}
	ly := plotBottom + 32
	for ii, name := range impls {
		lx := left + (ii%4)*140
		yy := ly + (ii/4)*20
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, yy-10, colours[ii%len(colours)], lx+16, yy, xmlEscape(name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
