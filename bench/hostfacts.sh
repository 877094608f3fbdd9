#!/usr/bin/env bash
# The cost per probe of the facts a probe needs (wasm/ABI.md version 3,
# "Facts from the host"): an offline contact's probe on the native core,
# and on the module under wazero, Node.js and Lua with the facts kept in
# the guest (version 2's floor), sent as events in the probe's batch (as
# mod_lastseen did), or answered by the host's authorizer. Prints a
# markdown table of per-probe medians (ns) over COUNT runs, each host's
# figure also as a ratio to the native core's median of the same run.
#
#   bash bench/hostfacts.sh             COUNT=5 runs of 20000 probes
#
# Needs node and lua5.4 with bindings/lua built (bash bindings/lua/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
probes=${PROBES:-20000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go test ./bindings/go -run '^$' -bench '^BenchmarkProbeOffline$' -benchtime "${probes}x" -count "$count" >"$tmp/go"
# One process each, COUNT rounds of every mode interleaved; the first
# round also warms Node's JIT, and the median leaves it out.
PROBES=$probes ROUNDS=$count node bench/hostfacts_bench.mjs >"$tmp/node"
PROBES=$probes ROUNDS=$count lua5.4 bench/hostfacts_bench.lua >"$tmp/lua"
uptime >"$tmp/load"

python3 - "$tmp" "$count" <<'PY'
import json, statistics, sys, re
tmp, count = sys.argv[1], int(sys.argv[2])
runs = {}
for line in open(f"{tmp}/go"):
    m = re.match(r"BenchmarkProbeOffline/(\S+?)-\d+\s+\d+\s+([\d.]+) ns/op", line)
    if m:
        runs.setdefault(("go", m.group(1)), []).append(float(m.group(2)))
for host in ("node", "lua"):
    for line in open(f"{tmp}/{host}"):
        for k, v in json.loads(line).items():
            runs.setdefault((host, k), []).extend(map(float, v))
med = {k: statistics.median(v) for k, v in runs.items()}
native = med[("go", "native")]
print(f"Per-probe medians of {count} runs (ns); in brackets, times the native core's {native:.0f} ns. Load after the run: {open(tmp + '/load').read().split('load average:')[1].strip()}.\n")
print("| host | facts kept in the guest (v2 floor) | facts as events in the batch (5 events) | facts from the host (v3, 1 event + 1 import call) | events / host |")
print("|---|---|---|---|---|")
for host, name in (("go", "wazero"), ("node", "Node.js"), ("lua", "Lua (wasmtime)")):
    pre = "wazero-" if host == "go" else ""
    k, e, h = med[(host, pre + "kept")], med[(host, pre + "events")], med[(host, pre + "host")]
    print(f"| {name} | {k:.0f} ({k/native:.0f}×) | {e:.0f} ({e/native:.0f}×) | {h:.0f} ({h/native:.0f}×) | {e/h:.2f} |")
print(f"| native core | {native:.0f} (1×) | | | |")
PY
