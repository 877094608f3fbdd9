// A trap must not escape as a RuntimeError: the binding restarts the
// instance with the same options and throws LastseenError TRAP. lastseen.wasm
// itself only traps when its memory runs out, so this test uses a tiny
// hand-assembled module that speaks the ABI and traps on any step longer
// than 100 bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine, LastseenError } from '../index.js';

function leb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}
const section = (id, body) => [id, ...leb(body.length), ...body];
const name = (s) => [...leb(s.length), ...new TextEncoder().encode(s)];
const vec = (items) => [...leb(items.length), ...items.flat()];

function trappingModule() {
  const types = vec([[0x60, 0, 0], [0x60, 0, 1, 0x7f], [0x60, 1, 0x7f, 1, 0x7f]]);
  const funcs = vec([[0], [1], [1], [2], [2]]);
  const memory = vec([[0x00, 1]]);
  const exports = vec([
    [...name('memory'), 2, 0],
    [...name('_initialize'), 0, 0],
    [...name('lastseen_abi_version'), 0, 1],
    [...name('lastseen_ctrl'), 0, 2],
    [...name('lastseen_reserve'), 0, 3],
    [...name('lastseen_step'), 0, 4],
  ]);
  const body = (code) => [...leb(code.length + 1), 0, ...code]; // no locals
  const code = vec([
    body([0x0b]),                         // _initialize: nothing
    body([0x41, 3, 0x0b]),                // abi version 3
    body([0x41, 0, 0x0b]),                // control block at 0
    body([0x41, 0, 0x0b]),                // reserve: OK
    // step: if n > 100, unreachable; else status 0
    body([0x20, 0, 0x41, 0xe4, 0x00, 0x4a, 0x04, 0x40, 0x00, 0x0b, 0x41, 0, 0x0b]),
  ]);
  // Control block: version 3, in 64/1024, out 2048/1024, out_len 9,
  // n_results 1. The result at 2048 is nine zero bytes: OK, no outputs,
  // no data.
  const ctrl = new Uint8Array(new Uint32Array([3, 64, 1024, 2048, 1024, 9, 1, 0]).buffer);
  const data = vec([[0x00, 0x41, 0, 0x0b, ...leb(ctrl.length), ...ctrl]]);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, types), ...section(3, funcs), ...section(5, memory),
    ...section(7, exports), ...section(10, code), ...section(11, data),
  ]);
}

test('a trap restarts the instance and throws TRAP', () => {
  const RealInstance = WebAssembly.Instance;
  let instances = 0;
  WebAssembly.Instance = function Instance(...args) {
    instances++;
    return new RealInstance(...args);
  };
  try {
    const m = new Machine({ served: ['montague.com'], wasm: trappingModule() });
    assert.equal(instances, 1);
    assert.deepEqual(m.client(0n, 'romeo@montague.com/b', '<presence/>'), []);
    assert.throws(() => m.client(0n, 'romeo@montague.com/b', `<presence><status>${'x'.repeat(200)}</status></presence>`), (e) => {
      assert.ok(e instanceof LastseenError);
      assert.equal(e.code, 'TRAP');
      assert.ok(e.cause instanceof WebAssembly.RuntimeError, String(e.cause));
      return true;
    });
    assert.equal(instances, 2, 'a fresh instance replaced the trapped one');
    assert.deepEqual(m.client(0n, 'romeo@montague.com/b', '<presence/>'), []);
  } finally {
    WebAssembly.Instance = RealInstance;
  }
});
