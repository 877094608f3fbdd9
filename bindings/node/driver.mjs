// The scenario driver: lets the Go test suite and `lastseen replay
// -engine=node` run scenarios on this binding. It is not part of the
// package's API.
//
// Protocol: one JSON object per line on stdin, one answer per line on
// stdout, in order. Byte strings (JIDs, stanzas, state) travel as base64 so
// that invalid UTF-8 reaches the machine unchanged; times and durations are
// decimal strings of nanoseconds.
//
//   {"op":"new","served":["d"]}               -> {"ok":true,"id":1}
//   {"op":"new","served":["d"],"hostFacts":true}: facts from the host (ABI
//       version 3): roster, block and hide fill a FactTable that the
//       machine asks; the caller sends them normalised.
//   {"op":"roster","id":1,"owner":b64,"contact":b64,"sub":"both"}
//   {"op":"block","id":1,"owner":b64,"jid":b64}
//   {"op":"hide","id":1,"owner":b64}
//   {"op":"limit","id":1,"now":"…","burst":2,"per":"60000000000"}
//   {"op":"client","id":1,"now":"…","session":b64,"stanza":b64}
//   {"op":"server","id":1,"now":"…","stanza":b64}
//   {"op":"close"|"up"|"down","id":1,"now":"…","jid":b64}
//   {"op":"state","id":1}                     -> {"ok":true,"state":b64}
//   {"op":"snapshot","id":1}                  -> {"ok":true,"state":b64}
//   {"op":"restore","id":1,"snapshot":b64}    -> {"ok":true}
//   {"op":"restarted","id":1}                 -> {"ok":true,"n":N}
//   {"op":"release","id":1}
// Input answers: {"ok":true,"out":[{"kind":"reply","to":"…","stanza":b64}]}.
// Errors: {"ok":false,"error":{"code":"…","message":"…","badInput":true}}.

import { createInterface } from 'node:readline';
import { Machine, FactTable } from './index.js';

const machines = new Map();
const tables = new Map(); // id -> the FactTable of a hostFacts machine
const idle = []; // released machines, reused with reset: instantiating costs more
let next = 1;

const bytes = (s) => Buffer.from(s ?? '', 'base64');
const b64 = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
const outputs = (outs) => outs.map((o) => ({ kind: o.kind, to: o.to, stanza: b64(o.bytes) }));

function handle(req) {
  if (req.op === 'new') {
    const id = next++;
    const options = { served: req.served };
    if (req.hostFacts) {
      options.authorizer = new FactTable();
      tables.set(id, options.authorizer);
    }
    const reused = idle.pop();
    if (reused) {
      try {
        reused.reset(options);
      } catch (e) {
        idle.push(reused);
        throw e;
      }
      machines.set(id, reused);
    } else {
      machines.set(id, new Machine(options));
    }
    return { id };
  }
  const m = machines.get(req.id);
  if (!m) throw new Error(`no machine ${req.id}`);
  const now = req.now === undefined ? 0n : BigInt(req.now);
  const table = tables.get(req.id);
  const text = (s) => bytes(s).toString('utf8');
  if (table) {
    switch (req.op) {
      case 'roster': table.setRoster(text(req.owner), text(req.contact), req.sub); return {};
      case 'block': table.setBlock(text(req.owner), text(req.jid)); return {};
      case 'hide': table.setHidden(text(req.owner)); return {};
    }
  }
  switch (req.op) {
    case 'roster': m.setRoster(bytes(req.owner), bytes(req.contact), req.sub); return {};
    case 'block': m.setBlock(bytes(req.owner), bytes(req.jid)); return {};
    case 'hide': m.setHidden(bytes(req.owner)); return {};
    case 'limit': m.setProbeLimit(now, { burst: req.burst, per: BigInt(req.per) }); return {};
    case 'client': return { out: outputs(m.client(now, bytes(req.session), bytes(req.stanza))) };
    case 'server': return { out: outputs(m.server(now, bytes(req.stanza))) };
    case 'close': return { out: outputs(m.close(now, bytes(req.jid))) };
    case 'up': return { out: outputs(m.up(now, bytes(req.jid))) };
    case 'down': return { out: outputs(m.down(now, bytes(req.jid))) };
    case 'state': return { state: b64(m.state()) };
    case 'snapshot': return { state: b64(m.snapshot()) };
    case 'restore': m.restore(bytes(req.snapshot)); return {};
    case 'restarted': return { n: m.restarted() };
    case 'release': machines.delete(req.id); tables.delete(req.id); idle.push(m); return {};
  }
  throw new Error(`unknown op ${JSON.stringify(req.op)}`);
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (line === '') continue;
  let answer;
  try {
    answer = { ok: true, ...handle(JSON.parse(line)) };
  } catch (e) {
    answer = {
      ok: false,
      error: { code: e.code ?? 'DRIVER', message: e.message, badInput: e.badInput ?? false, event: e.event ?? '' },
    };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
