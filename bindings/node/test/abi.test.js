// Runs lastseen.wasm with nothing but wasm/ABI.md: the minimal WASI shim is
// taken from the page itself, and events and results are encoded here from
// its tables, independently of index.js. The answers must equal the
// binding's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Machine, wasmPath } from '../index.js';

const abiMd = readFileSync(new URL('../../../wasm/ABI.md', import.meta.url), 'utf8');

function shimFromAbiMd() {
  const m = /<!-- minimal-shim:start -->\n```js\n([\s\S]*?)```\n<!-- minimal-shim:end -->/.exec(abiMd);
  assert.ok(m, 'ABI.md has a minimal-shim block');
  return new Function(`${m[1]}\nreturn minimalWasi;`)();
}

class Bytes {
  constructor() { this.a = []; }
  u8(v) { this.a.push(v); return this; }
  u32(v) { for (let i = 0; i < 4; i++) this.a.push((v >>> (8 * i)) & 255); return this; }
  i64(v) { const b = new Uint8Array(8); new DataView(b.buffer).setBigInt64(0, BigInt(v), true); this.a.push(...b); return this; }
  str(s) { const b = new TextEncoder().encode(s); this.u32(b.length); for (const c of b) this.a.push(c); return this; }
}

function instantiate() {
  const minimalWasi = shimFromAbiMd();
  let instance;
  // With option 9 off the guest never asks the host (ABI.md §5, "Facts
  // from the host"), but a version 3 module needs the imports defined.
  const never = () => { throw new Error('a lastseen import was called with option 9 off'); };
  const imports = {
    wasi_snapshot_preview1: minimalWasi(() => instance.exports.memory),
    lastseen: { probe_facts: never, blocks: never, subscribers: never },
  };
  instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(wasmPath())), imports);
  const x = instance.exports;
  x._initialize();
  assert.equal(x.lastseen_abi_version(), 3);
  const ctrl = x.lastseen_ctrl();
  const word = (i) => new DataView(x.memory.buffer).getUint32(ctrl + 4 * i, true);
  assert.equal(word(0), 3, 'control word 0 is the version');
  const step = (bytes) => {
    const b = Uint8Array.from(bytes.a);
    if (b.length > word(2)) assert.equal(x.lastseen_reserve(b.length), 0);
    new Uint8Array(x.memory.buffer, word(1), b.length).set(b);
    const status = x.lastseen_step(b.length);
    return { status, n: word(6), out: new Uint8Array(x.memory.buffer, word(3), word(5)).slice() };
  };
  return { x, step, word };
}

function readResults(out, n) {
  const v = new DataView(out.buffer);
  let i = 0;
  const u8 = () => out[i++];
  const u32 = () => { const r = v.getUint32(i, true); i += 4; return r; };
  const raw = () => { const k = u32(); const s = out.slice(i, i + k); i += k; return s; };
  const str = () => new TextDecoder().decode(raw());
  const results = [];
  for (let r = 0; r < n; r++) {
    const code = u8();
    if (code === 0) {
      const outputs = [];
      for (let k = u32(); k > 0; k--) outputs.push({ kind: u8(), to: str(), stanza: str() });
      results.push({ code, outputs, data: raw() });
    } else {
      const flags = u8(), event = str(), message = str(), detail = u8();
      if (detail === 1) { i += 8; str(); } else if (detail === 2) { str(); str(); str(); }
      results.push({ code, flags, event, message, detail });
    }
  }
  assert.equal(i, out.length, 'the results fill out_len exactly');
  return results;
}

const T0 = 946684800000000000n;

test('the minimal shim of ABI.md runs the module, and the ABI gives what the binding gives', () => {
  const { step } = instantiate();
  const probe = "<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>";
  const batch = new Bytes()
    .u8(1).u32(1).str('montague.com').u32(2).i64(3).i64(60000000000n)       // config: burst 3 per minute
    .u8(7).str('romeo@montague.com').str('juliet@capulet.com').u8(3)          // roster both
    .u8(2).i64(T0).str('romeo@montague.com/balcony').str('<presence><status>On the balcony</status></presence>')
    .u8(3).i64(T0 + 5n).str(probe)                                            // server probe
    .u8(3).i64(T0 + 5n).str('<presence')                                      // malformed
    .u8(5).i64(T0).str('romeo@montague.com')                                  // up of a user: NOT_DOMAIN
    .u8(11);                                                                  // state
  const { status, n, out } = step(batch);
  assert.equal(status, 0);
  assert.equal(n, 7);
  const r = readResults(out, n);
  assert.deepEqual(r.slice(0, 3).map((x) => x.code), [0, 0, 0]);

  const m = new Machine({ served: ['montague.com'], probeLimit: { burst: 3, per: 60000 } });
  m.setRoster('romeo@montague.com', 'juliet@capulet.com', 'both');
  m.client(T0, 'romeo@montague.com/balcony', '<presence><status>On the balcony</status></presence>');
  const want = m.server(T0 + 5n, probe);
  assert.deepEqual(r[3].outputs, want.map((o) => ({ kind: 1, to: o.to, stanza: o.stanza })));
  assert.equal(r[4].code, 2); // MALFORMED
  assert.equal(r[4].flags & 1, 1);
  assert.equal(r[4].event, 'server');
  assert.equal(r[4].detail, 1);
  assert.equal(r[5].code, 13); // NOT_DOMAIN
  assert.equal(r[5].event, 'up');
  assert.deepEqual(r[6].data, m.state());
});

test('statuses: NO_MACHINE before config, DECODE, LENGTH', () => {
  const { step, x, word } = instantiate();
  let r = step(new Bytes().u8(11));
  assert.equal(r.status, 0);
  assert.equal(readResults(r.out, r.n)[0].code, 32); // NO_MACHINE
  r = step(new Bytes().u8(1).u32(1).str('montague.com').u32(0).u8(99));
  assert.equal(r.status, 1); // DECODE: the config ran, op 99 did not
  assert.equal(r.n, 1);
  assert.equal(readResults(r.out, r.n)[0].code, 0);
  r = step(new Bytes().u8(4).i64(T0)); // truncated close
  assert.equal(r.status, 1);
  assert.equal(r.n, 0);
  assert.equal(x.lastseen_step(word(2) + 1), 3); // LENGTH
  assert.equal(x.lastseen_step(-1), 3);
  assert.equal(x.lastseen_reserve(-1), 3);
  assert.equal(x.lastseen_reserve((1 << 30) + 1), 3);
});

test('a reserved input buffer serves one step, then the default one returns', () => {
  const { step, word } = instantiate();
  const defaultPtr = word(1), defaultCap = word(2);
  const big = `<presence><status>${'x'.repeat(defaultCap)}</status></presence>`;
  const r = step(new Bytes().u8(1).u32(1).str('montague.com').u32(5).i64(0).i64(0).i64(0).i64(0).i64(1 << 20)
    .u8(2).i64(T0).str('romeo@montague.com/b').str(big));
  assert.equal(r.status, 0);
  assert.deepEqual(readResults(r.out, r.n).map((x) => x.code), [0, 0]);
  assert.equal(word(1), defaultPtr);
  assert.equal(word(2), defaultCap);
});

// ABI.md §7 shows a whole exchange as a hex dump; run its input and
// compare the results byte for byte.
function dump(lines) {
  const bytes = [];
  for (const line of lines) {
    const data = line.trim().split(/ {2,}/)[0];
    for (const tok of data.match(/"[^"]*"|\S+/g) ?? []) {
      if (tok.startsWith('"')) bytes.push(...new TextEncoder().encode(tok.slice(1, -1)));
      else if (/^([0-9a-f]{2})+$/.test(tok)) for (let i = 0; i < tok.length; i += 2) bytes.push(parseInt(tok.slice(i, i + 2), 16));
      else break;
    }
  }
  return bytes;
}

test('the exchange of ABI.md §7 is what the module does', () => {
  const section = abiMd.slice(abiMd.indexOf('## 7. A whole exchange'), abiMd.indexOf('## 8.'));
  const lines = section.split('\n').filter((l) => l.startsWith('    '));
  const inStart = lines.findIndex((l) => /^ {4}input, \d+ bytes:/.test(l));
  const stepLine = lines.findIndex((l) => l.includes('lastseen_step('));
  const resStart = lines.findIndex((l) => /^ {4}results:/.test(l));
  const input = dump(lines.slice(inStart + 1, stepLine));
  const expected = dump(lines.slice(resStart + 1));
  assert.equal(input.length, Number(/input, (\d+) bytes/.exec(lines[inStart])[1]), 'the stated input length');
  assert.match(lines[stepLine], new RegExp(`lastseen_step\\(${input.length}\\) returns 0; the control block says n_results 5`));
  const { step } = instantiate();
  const b = new Bytes();
  b.a = input;
  const { status, n, out } = step(b);
  assert.equal(status, 0);
  assert.equal(n, 5);
  assert.deepEqual([...out], expected);
});
