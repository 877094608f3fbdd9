// The Node.js side of `go run ./bench`: reads the workloads (setup steps
// recorded from bench/workload.go) as JSON on stdin, runs each on a
// bindings/node Machine with its batch call, and prints per-stanza medians
// as JSON. Run by bench/node.go; not meant to be run by hand.

import { readFileSync } from 'node:fs';
import { Machine } from '../bindings/node/index.js';

const req = JSON.parse(readFileSync(0, 'utf8'));
const enc = new TextEncoder();
const results = [];
const PROBE = "<presence from='juliet@capulet.com/balcony' to='romeo@montague.com' type='probe' id='probe-1'/>";

function setup(w) {
  const m = new Machine({ served: ['montague.com'] });
  const sessions = [];
  for (const s of w.setup) {
    switch (s.op) {
      case 'roster': m.setRoster(s.a, s.b, 'both'); break;
      case 'limit': m.setProbeLimit(BigInt(s.now), { burst: s.n, per: BigInt(s.per_ns) }); break;
      case 'up': m.up(BigInt(s.now), s.a); break;
      case 'session': sessions.push(s.a); break;
      case 'client': m.client(BigInt(s.now), sessions[s.session ?? 0], s.a); break;
      case 'server': m.server(BigInt(s.now), s.a); break;
      default: throw new Error('unknown setup step ' + s.op);
    }
  }
  return m;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
}

for (const w of req.workloads) {
  try {
    const m = setup(w);
    const ins = [enc.encode(w.in[0]), enc.encode(w.in[1])];
    let now = BigInt(w.start_ns);
    const step = BigInt(w.step_ns);
    let i = 0;
    const one = (x) => (w.session ? m.client(now, w.session, x) : m.server(now, x));
    if (req.check) {
      // For the equality test: four operations, single calls, then a probe
      // for the workload's user, as bench/peers_test.go does on every engine.
      const ops = [];
      for (let k = 0; k < 4; k++) { now += step; ops.push(one(ins[i++ & 1]).map((o) => o.stanza)); }
      const probe = m.server(now + 1000000000n, PROBE).map((o) => o.stanza);
      results.push({ name: w.name, ops, probe });
      m.dispose();
      continue;
    }
    const events = [];
    const run = (n) => {
      while (n > 0) {
        const k = Math.min(n, req.batch);
        now += step;
        events.length = 0;
        for (let j = 0; j < k; j++) {
          const x = ins[i++ & 1];
          events.push(w.session ? { type: 'client', now, session: w.session, stanza: x } : { type: 'server', now, stanza: x });
        }
        const rs = m.batch(events);
        for (const r of rs) {
          if (r.error) throw r.error;
          if (r.outputs.length !== w.want) throw new Error(`emitted ${r.outputs.length} stanzas, want ${w.want}`);
        }
        n -= k;
      }
    };
    // Wall time, and the process CPU time (user + system, in ns) that
    // bench/measure.go reports as ns/op.
    const timed = (n) => {
      const c = process.cpuUsage();
      const t = process.hrtime.bigint();
      run(n);
      const wall = Number(process.hrtime.bigint() - t);
      const d = process.cpuUsage(c);
      timed.cpu = (d.user + d.system) * 1000;
      return wall;
    };
    // Warm up for a while first: V8 runs new WebAssembly code in its
    // baseline tier and optimises hot functions later, and the first calls
    // on a fresh instance pay one-time costs (the guest growing its heap).
    // Then calibrate to about sample_ms per sample.
    const warmUntil = process.hrtime.bigint() + BigInt(Math.round(Math.max(50, 3 * req.sample_ms) * 1e6));
    while (process.hrtime.bigint() < warmUntil) run(req.batch);
    let n = req.batch;
    for (;;) {
      const el = timed(n);
      if (el >= req.sample_ms * 1e6 / 4 || n >= 1 << 24) {
        n = Math.max(req.batch, Math.round(n * req.sample_ms * 1e6 / Math.max(el, 1000)));
        break;
      }
      n *= el < req.sample_ms * 1e4 ? 10 : 3;
    }
    const samples = [], wall = [];
    for (let s = 0; s < req.samples; s++) {
      if (globalThis.gc) globalThis.gc();
      wall.push(timed(n) / n);
      samples.push(timed.cpu / n);
    }
    results.push({ name: w.name, ns_per_op: median(samples), samples, wall_ns_per_op: median(wall), wall });
    m.dispose();
  } catch (e) {
    results.push({ name: w.name, error: String(e && e.stack || e) });
  }
}
process.stdout.write(JSON.stringify(results));
