// lastseen for JavaScript: the lastseen presence machine (XEP-0318
// last-seen presence probes) as a WebAssembly module, for Node.js and
// browsers alike.
//
// This file implements the host side of wasm/ABI.md (version 3) and nothing
// else: every byte it writes and reads is described there. The WASI imports
// are the page's minimal shim, so no node:wasi (experimental, and absent
// from browsers) is needed.

// Node's file system loads lastseen.wasm by path. Browsers have none: there
// the host passes the module as options.wasm (bytes, or a module from
// compileModule(url)), and nothing below touches Node's APIs.
const inNode = globalThis.process?.versions?.node !== undefined;
const fs = inNode ? await import('node:fs') : null;
const { fileURLToPath } = inNode ? await import('node:url') : {};

/** The ABI version this binding speaks (ABI.md §9). */
export const ABI_VERSION = 3;

// ABI.md §5: op codes.
const OP = {
  config: 1, client: 2, server: 3, close: 4, up: 5, down: 6,
  roster: 7, block: 8, hide: 9, limit: 10, state: 11,
  snapshot: 12, restore: 13, restarted: 14, apply: 15,
};

// ABI.md §4: statuses.
const STATUS_OK = 0, STATUS_DECODE = 1, STATUS_PANIC = 2, STATUS_LENGTH = 3;

// ABI.md §4: control block word offsets.
const CTRL = { version: 0, inPtr: 4, inCap: 8, outPtr: 12, outCap: 16, outLen: 20, nResults: 24 };

// ABI.md §6: result codes.
const CODES = {
  1: 'BAD_INPUT', 2: 'MALFORMED', 3: 'RESTRICTED', 4: 'TOO_LARGE', 5: 'TOO_COMPLEX',
  6: 'NOT_PRESENCE', 7: 'UNKNOWN_TYPE', 8: 'INVALID_JID', 9: 'NO_FROM', 10: 'NO_TO',
  11: 'NOT_LOCAL', 12: 'SESSION', 13: 'NOT_DOMAIN', 14: 'NO_FACT_STORE', 15: 'CONFIG',
  16: 'TOO_MANY_ENTITIES', 17: 'TOO_MANY_RESOURCES', 18: 'CORRUPT', 19: 'HOST',
  32: 'NO_MACHINE', 33: 'PANIC', 34: 'OTHER',
};

/**
 * Output kinds (ABI.md §6). Send every output to its `to`: reply, error and
 * iq-reply are answers to deliver (a presence, a presence error, an iq result
 * or error); probe and query are a session's probe or Last Activity query to
 * route onwards like any outbound stanza.
 */
export const Kind = Object.freeze({ REPLY: 'reply', PROBE: 'probe', ERROR: 'error', IQ_REPLY: 'iq-reply', QUERY: 'query' });
const KINDS = { 1: Kind.REPLY, 2: Kind.PROBE, 3: Kind.ERROR, 4: Kind.IQ_REPLY, 5: Kind.QUERY };

const SUBSCRIPTIONS = { none: 0, to: 1, from: 2, both: 3 };

// ABI.md §5, "Facts from the host": answers that mean "no answer".
const HOST_FAILED = -1, NO_LISTER = -2;

/**
 * The lastseen imports of ABI version 3 for one machine. `state` is the
 * machine's {memory(), authorizer(), inStep, errors}; they answer from its
 * current authorizer (MachineOptions.authorizer, which reset may change).
 * A callback that throws, returns a wrong value or re-enters the machine
 * makes the import fail, and its error is queued in state.errors for the
 * event that asked.
 */
function hostImports(state) {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const str = (ptr, len) => decoder.decode(new Uint8Array(state.memory().buffer, ptr, len));
  let authorizer;
  const ask = (name, answer) => {
    authorizer = state.authorizer();
    if (!authorizer) return HOST_FAILED; // option 9 is off: never called
    try {
      return answer();
    } catch (e) {
      state.errors.push(new LastseenError('HOST', `lastseen: the authorizer failed in ${name}: ${e?.message ?? e}`, { cause: e }));
      return HOST_FAILED;
    }
  };
  return {
    probe_facts: (op, ol, pp, pl) => ask('probeFacts', () => {
      const f = authorizer.probeFacts(str(op, ol), str(pp, pl));
      const sub = SUBSCRIPTIONS[f?.sub ?? 'none'];
      if (sub === undefined) throw new TypeError(`probeFacts returned sub ${JSON.stringify(f.sub)}`);
      return (f.blocked ? 1 : 0) | (sub << 1) | (f.hidden ? 8 : 0);
    }),
    blocks: (op, ol, jp, jl) => ask('blocks', () => (authorizer.blocks(str(op, ol), str(jp, jl)) ? 1 : 0)),
    subscribers: (op, ol, buf, cap) => ask('subscribers', () => {
      if (typeof authorizer.subscribers !== 'function') return NO_LISTER;
      const list = [];
      let total = 0;
      for (const c of authorizer.subscribers(str(op, ol)) ?? []) {
        const b = encoder.encode(String(c));
        list.push(b);
        total += 4 + b.length;
      }
      if (total <= cap) {
        const mem = state.memory().buffer;
        const v = new DataView(mem);
        let at = buf;
        for (const b of list) {
          v.setUint32(at, b.length, true);
          new Uint8Array(mem, at + 4, b.length).set(b);
          at += 4 + b.length;
        }
      }
      return total;
    }),
  };
}

/**
 * The error every Machine method throws. For refused input, `badInput` is
 * true and `code` names the reason (ABI.md §6), and the machine emitted
 * nothing and changed nothing. `TRAP` and `PANIC` mean the WebAssembly
 * instance failed: the machine restarted empty (ABI.md §8).
 */
export class LastseenError extends Error {
  constructor(code, message, { event = '', badInput = false, reason = message, detail = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'LastseenError';
    this.code = code;
    this.event = event;
    this.badInput = badInput;
    this.reason = reason;
    this.detail = detail;
  }
}

const utf8 = new TextEncoder();
const text = new TextDecoder('utf-8');

let defaultModule;

/** The URLs of the lastseen.wasm this package loads by default, in order. */
const defaultURLs = () => ['./lastseen.wasm', '../../wasm/lastseen.wasm'].map((rel) => new URL(rel, import.meta.url));

/**
 * The path of the lastseen.wasm this package loads by default in Node.js:
 * the copy shipped in the npm package, or wasm/lastseen.wasm in a clone of
 * the repository.
 */
export function wasmPath() {
  if (fs === null) throw new Error('lastseen: wasmPath needs Node.js; in a browser use compileModule(url)');
  for (const url of defaultURLs()) {
    if (fs.existsSync(url)) return fileURLToPath(url);
  }
  throw new Error('lastseen.wasm not found next to index.js nor in ../../wasm');
}

/**
 * Compiles lastseen.wasm without blocking, for `options.wasm`: from a URL
 * (fetched; in Node.js a file: URL or a path is read), a fetch Response,
 * or the module's bytes. With no source it compiles the package's own
 * lastseen.wasm, beside index.js, which is what a browser needs when it
 * serves the package as it is.
 */
export async function compileModule(source) {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return WebAssembly.compile(source);
  if (source === undefined && fs !== null) return compile(undefined);
  if (source === undefined) source = defaultURLs()[0];
  if (fs !== null && (typeof source === 'string' || (source instanceof URL && source.protocol === 'file:'))) {
    return WebAssembly.compile(await fs.promises.readFile(source));
  }
  const response = source instanceof Response ? source : await fetch(source);
  if (!response.ok) throw new Error(`lastseen: fetching ${response.url}: HTTP ${response.status}`);
  return WebAssembly.compile(await response.arrayBuffer());
}

// In a browser the package's own lastseen.wasm, beside index.js, is fetched
// and compiled while the module loads, so that `new Machine(options)` works
// there unchanged without a wasm option. A failure is kept and reported by
// the first Machine that needs the default module.
const browserDefault = inNode ? null : await compileModule().catch((e) => e);

/** Compiles (once) and returns the WebAssembly.Module. */
function compile(wasm) {
  if (wasm instanceof WebAssembly.Module) return wasm;
  if (wasm instanceof Uint8Array || wasm instanceof ArrayBuffer) return new WebAssembly.Module(wasm);
  if (fs === null) {
    if (wasm === undefined && browserDefault instanceof WebAssembly.Module) return browserDefault;
    if (wasm === undefined) throw new Error(`lastseen: could not load the package's lastseen.wasm (${browserDefault?.message ?? browserDefault}); pass options.wasm`);
    throw new TypeError('lastseen: in a browser pass options.wasm as bytes or as a WebAssembly.Module (see compileModule)');
  }
  if (typeof wasm === 'string' || wasm instanceof URL) return new WebAssembly.Module(fs.readFileSync(wasm));
  defaultModule ??= new WebAssembly.Module(fs.readFileSync(wasmPath()));
  return defaultModule;
}

// The WASI imports: wasm/ABI.md §2's minimal shim, verbatim (test/shim.test.js
// checks that the copies agree).
// minimal-shim:start
// memory() returns the instance's exported memory once it exists. The shim
// uses only what browsers, Node.js, Deno and Bun all have (Date,
// performance, crypto, TextDecoder, console), so one copy serves them all.
function minimalWasi(memory) {
  const EBADF = 8;
  const view = () => new DataView(memory().buffer);
  const zeroPair = (a, b) => { view().setUint32(a, 0, true); view().setUint32(b, 0, true); return 0; };
  const decoder = new TextDecoder();
  return {
    args_sizes_get: zeroPair,
    environ_sizes_get: zeroPair,
    args_get: () => 0,
    environ_get: () => 0,
    clock_time_get(id, precision, out) {
      // Clock 0 is the wall clock; the others are monotonic, which
      // performance.now() is (it never goes back).
      const ns = id === 0 ? BigInt(Date.now()) * 1000000n : BigInt(Math.round(performance.now() * 1e6));
      view().setBigUint64(out, ns, true);
      return 0;
    },
    random_get(ptr, len) {
      for (let i = 0; i < len; i += 65536) {
        globalThis.crypto.getRandomValues(new Uint8Array(memory().buffer, ptr + i, Math.min(65536, len - i)));
      }
      return 0;
    },
    fd_write(fd, iovs, iovsLen, nwritten) {
      const v = view();
      let total = 0, text = '';
      for (let i = 0; i < iovsLen; i++) {
        const ptr = v.getUint32(iovs + 8 * i, true), len = v.getUint32(iovs + 8 * i + 4, true);
        text += decoder.decode(new Uint8Array(memory().buffer, ptr, len), { stream: true });
        total += len;
      }
      if (text !== '') console.error(text.replace(/\n$/, ''));
      v.setUint32(nwritten, total, true);
      return 0;
    },
    proc_exit(code) { throw new Error(`lastseen guest exited with code ${code}`); },
    sched_yield: () => 0,
    poll_oneoff(inPtr, outPtr, n, neventsPtr) { view().setUint32(neventsPtr, 0, true); return 0; },
    fd_close: () => EBADF,
    fd_fdstat_get: () => EBADF,
    fd_fdstat_set_flags: () => EBADF,
    fd_prestat_get: () => EBADF,
    fd_prestat_dir_name: () => EBADF,
  };
}
// minimal-shim:end

/** Time as i64 ns since the Unix epoch (ABI.md §3). */
function nanos(now) {
  if (typeof now === 'bigint') return now;
  if (now instanceof Date) now = now.getTime();
  if (typeof now === 'number' && Number.isFinite(now)) {
    const ms = Math.floor(now);
    return BigInt(ms) * 1000000n + BigInt(Math.round((now - ms) * 1e6));
  }
  throw new TypeError('time must be a bigint (ns), a number (ms since the epoch) or a Date');
}

/** A duration as ns: a bigint is ns, a number is ms. */
function duration(d) {
  if (typeof d === 'bigint') return d;
  if (typeof d === 'number' && Number.isFinite(d)) return BigInt(Math.round(d * 1e6));
  throw new TypeError('a duration must be a bigint (ns) or a number (ms)');
}

/** A growable byte buffer that writes ABI.md's encodings. */
class Encoder {
  constructor() { this.buf = new Uint8Array(4096); this.view = new DataView(this.buf.buffer); this.n = 0; }
  room(k) {
    if (this.n + k <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }
  u8(v) { this.room(1); this.buf[this.n++] = v; }
  u32(v) { this.room(4); this.view.setUint32(this.n, v, true); this.n += 4; }
  i64(v) { this.room(8); this.view.setBigInt64(this.n, BigInt.asIntN(64, v), true); this.n += 8; }
  /** A str: a string (as UTF-8) or raw bytes. */
  str(s) {
    if (s === undefined || s === null) s = '';
    if (typeof s === 'string') {
      this.room(4 + s.length * 3);
      const { written } = utf8.encodeInto(s, this.buf.subarray(this.n + 4));
      this.view.setUint32(this.n, written, true);
      this.n += 4 + written;
      return;
    }
    if (!(s instanceof Uint8Array)) throw new TypeError('expected a string or a Uint8Array');
    this.u32(s.length);
    this.room(s.length);
    this.buf.set(s, this.n);
    this.n += s.length;
  }
}

/** Appends one event (see Machine#batch for its shape). */
function encodeEvent(w, ev) {
  const op = OP[ev.type];
  if (op === undefined || op === OP.config) throw new TypeError(`unknown event type ${JSON.stringify(ev.type)}`);
  w.u8(op);
  switch (ev.type) {
    case 'client': w.i64(nanos(ev.now)); w.str(ev.session); w.str(ev.stanza); break;
    case 'server': w.i64(nanos(ev.now)); w.str(ev.stanza); break;
    case 'close': w.i64(nanos(ev.now)); w.str(ev.session); break;
    case 'up': case 'down': w.i64(nanos(ev.now)); w.str(ev.jid); break;
    case 'roster': {
      const sub = typeof ev.sub === 'number' ? ev.sub : SUBSCRIPTIONS[ev.sub];
      if (sub === undefined) throw new TypeError(`subscription must be none, to, from or both, not ${JSON.stringify(ev.sub)}`);
      w.str(ev.owner); w.str(ev.contact); w.u8(sub); break;
    }
    case 'block': w.str(ev.owner); w.str(ev.jid); w.u8(ev.blocked === false ? 0 : 1); break;
    case 'hide': w.str(ev.owner); w.u8(ev.hidden === false ? 0 : 1); break;
    case 'limit': w.i64(nanos(ev.now)); w.i64(BigInt(ev.burst)); w.i64(duration(ev.per)); break;
    case 'state': case 'snapshot': case 'restarted': break;
    case 'restore': w.str(ev.snapshot); break;
    case 'apply': w.str(ev.record); break;
  }
}

function encodeConfig(w, o) {
  w.u8(OP.config);
  const served = o.served ?? [];
  w.u32(served.length);
  for (const d of served) w.str(d);
  const lim = o.probeLimit ?? {};
  const opts = [
    BigInt(lim.burst ?? 0), lim.per === undefined ? 0n : duration(lim.per),
    BigInt(o.maxEntities ?? 0), BigInt(o.maxResources ?? 0),
    BigInt(o.maxBytes ?? 0), BigInt(o.maxDepth ?? 0), BigInt(o.maxAttrs ?? 0),
    o.journal ? 1n : 0n,
    o.authorizer ? 1n : 0n, // facts from the host (version 3)
  ];
  w.u32(opts.length);
  for (const v of opts) w.i64(v);
}

/** Event types whose batch result is {state} (their data) rather than {outputs}. */
const DATA_EVENTS = new Set(['state', 'snapshot', 'restarted']);

/** Event types whose data carries journal records when the machine journals (ABI.md §5, Journal). */
const JOURNAL_EVENTS = new Set(['client', 'server', 'close', 'up', 'down']);

/** Splits a result's data into its journal records (u32 n, n × str): views into data. */
function splitRecords(data) {
  if (data.length === 0) return [];
  const r = new Reader(data);
  const records = [];
  for (let n = r.u32(); n > 0; n--) records.push(r.bytes());
  if (r.i !== data.length) throw new LastseenError('ABI', 'lastseen: malformed journal records');
  return records;
}

/**
 * One stanza to send. `bytes` is a getter over a private field, so that
 * JSON, Object.keys and spreads see only kind, to and stanza.
 */
class Output {
  #bytes;
  constructor(kind, to, stanza, bytes) {
    this.kind = kind;
    this.to = to;
    this.stanza = stanza;
    this.#bytes = bytes;
  }

  /**
   * The stanza's exact bytes: a view into the copy of the call's results,
   * so its buffer holds more than this stanza (use the view, or slice it).
   */
  get bytes() { return this.#bytes; }
}

/**
 * Reads result records (ABI.md §6) out of a copy of the guest's output
 * region: one copy per call, which the outputs' bytes and a result's data
 * are views into. A copy per output cost a fifth of a probe's time in
 * Node (an ArrayBuffer each).
 */
class Reader {
  constructor(bytes) { this.b = bytes; this.v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength); this.i = 0; }
  u8() { return this.b[this.i++]; }
  u32() { const x = this.v.getUint32(this.i, true); this.i += 4; return x; }
  i64() { const x = this.v.getBigInt64(this.i, true); this.i += 8; return x; }
  bytes() { const n = this.u32(); const s = this.b.subarray(this.i, this.i + n); this.i += n; return s; }
  str() { const n = this.u32(); const s = text.decode(this.b.subarray(this.i, this.i + n)); this.i += n; return s; }
  result() {
    const code = this.u8();
    if (code === 0) {
      const outputs = [];
      for (let n = this.u32(); n > 0; n--) {
        const kind = KINDS[this.u8()] ?? 'unknown';
        const to = this.str();
        const bytes = this.bytes();
        outputs.push(new Output(kind, to, text.decode(bytes), bytes));
      }
      const data = this.bytes();
      return { outputs, data };
    }
    const flags = this.u8();
    const event = this.str();
    const reason = this.str();
    let detail = null;
    const dk = this.u8();
    if (dk === 1) detail = { offset: Number(this.i64()), msg: this.str() };
    else if (dk === 2) detail = { input: this.str(), part: this.str(), reason: this.str() };
    const badInput = (flags & 1) !== 0;
    const message = badInput ? `lastseen: bad ${event} input: ${reason}` : reason;
    // Flag bit 1: an import answered "failed" and the host holds the reason.
    return { error: new LastseenError(CODES[code] ?? `CODE_${code}`, message, { event, badInput, reason, detail }), hostFailed: (flags & 2) !== 0 };
  }
}

/**
 * An in-memory authorizer (MachineOptions.authorizer): the facts of
 * core.MemoryAuth in a few Maps, for tests and small hosts. Give it
 * normalised JIDs (RFC 7622), as the machine passes them to the callbacks;
 * a host with its own roster storage answers from that instead.
 */
export class FactTable {
  #roster = new Map(); // owner -> Map(contact -> 'to' | 'from' | 'both')
  #blocks = new Map(); // owner -> Set(item)
  #hidden = new Set();

  /** owner's roster holds contact (both bare) with sub; 'none' removes it. */
  setRoster(owner, contact, sub) {
    if (SUBSCRIPTIONS[sub] === undefined) throw new TypeError(`unknown subscription ${JSON.stringify(sub)}`);
    const r = this.#roster.get(owner) ?? new Map();
    if (sub === 'none') r.delete(contact); else r.set(contact, sub);
    if (r.size > 0) this.#roster.set(owner, r); else this.#roster.delete(owner);
  }

  /** owner (bare) blocks the XEP-0191 item jid, or no longer does. */
  setBlock(owner, jid, blocked = true) {
    const b = this.#blocks.get(owner) ?? new Set();
    if (blocked) b.add(jid); else b.delete(jid);
    if (b.size > 0) this.#blocks.set(owner, b); else this.#blocks.delete(owner);
  }

  /** owner opts out of last-seen, or back in. */
  setHidden(owner, hidden = true) {
    if (hidden) this.#hidden.add(owner); else this.#hidden.delete(owner);
  }

  /** XEP-0191 §3.4: an item matches the full JID, its bare JID or its domain. */
  blocks(owner, jid) {
    const b = this.#blocks.get(owner);
    if (b === undefined) return false;
    const slash = jid.indexOf('/');
    const bare = slash < 0 ? jid : jid.slice(0, slash);
    return b.has(jid) || b.has(bare) || b.has(bare.slice(bare.indexOf('@') + 1));
  }

  probeFacts(owner, prober) {
    const slash = prober.indexOf('/');
    const bare = slash < 0 ? prober : prober.slice(0, slash);
    return {
      blocked: this.blocks(owner, prober),
      sub: this.#roster.get(owner)?.get(bare) ?? 'none',
      hidden: this.#hidden.has(owner),
    };
  }

  /** The contacts of owner's roster with subscription from or both; the machine drops the blocked ones and sorts. */
  * subscribers(owner) {
    for (const [contact, sub] of this.#roster.get(owner) ?? []) {
      if (sub === 'from' || sub === 'both') yield contact;
    }
  }
}

/**
 * One lastseen presence machine in its own WebAssembly instance. Methods
 * mirror the Go library's core.Machine. Times are a bigint (ns since the
 * Unix epoch), a number (ms, as Date.now() gives) or a Date; JIDs and
 * stanzas are strings (or UTF-8 bytes). Input methods return the stanzas to
 * send, as `{kind, to, stanza, bytes}` objects.
 */
export class Machine {
  #options;
  #module;
  #exports = null;
  #memory = null;
  #ctrl = 0;
  #enc = new Encoder();
  #records = [];
  // What the lastseen imports share with the machine (ABI version 3).
  #host = { memory: () => this.#memory, authorizer: () => this.#options.authorizer, inStep: false, errors: [] };

  /**
   * @param {object} options `served` (domains, at least one), and optional
   *   `probeLimit: {burst, per}` (per in ms, or ns as a bigint),
   *   `maxEntities`, `maxResources`, `maxBytes`, `maxDepth`, `maxAttrs`,
   *   `journal` (true: every change returns its journal records, see
   *   records()), `authorizer` (facts from the host, ABI version 3:
   *   `{probeFacts(owner, prober), blocks(owner, jid), subscribers(owner)}`,
   *   see index.d.ts; without it the facts come from setRoster, setBlock
   *   and setHidden), and
   *   `wasm` (bytes or a WebAssembly.Module, which compileModule makes from
   *   a URL; in Node.js also a path; default there: the package's
   *   lastseen.wasm).
   */
  constructor(options = {}) {
    if (!Array.isArray(options.served)) throw new TypeError('options.served must be an array of domains');
    this.#options = { ...options, served: [...options.served] };
    this.#module = compile(options.wasm);
    this.#start();
  }

  #start() {
    let instance = null;
    const wasi = minimalWasi(() => instance.exports.memory);
    instance = new WebAssembly.Instance(this.#module, {
      wasi_snapshot_preview1: wasi,
      lastseen: hostImports(this.#host),
    });
    const x = instance.exports;
    x._initialize(); // ABI.md §1
    const version = x.lastseen_abi_version();
    if (version !== ABI_VERSION) {
      throw new LastseenError('ABI', `lastseen.wasm speaks ABI version ${version}, this binding ${ABI_VERSION}`);
    }
    this.#exports = x;
    this.#memory = x.memory;
    this.#ctrl = x.lastseen_ctrl();
    this.#enc.n = 0;
    encodeConfig(this.#enc, this.#options);
    let results;
    try {
      results = this.#send();
    } catch (e) {
      this.#exports = null;
      throw e;
    }
    if (results[0].error) {
      this.#exports = null;
      throw results[0].error;
    }
  }

  #word(off) { return new DataView(this.#memory.buffer).getUint32(this.#ctrl + off, true); }

  /** Sends the encoded events and returns their results (ABI.md §4–6). */
  #send() {
    const x = this.#exports;
    const host = this.#host;
    if (host.inStep) {
      // Called from an authorizer callback: the guest is mid-step and its
      // buffers are in use (ABI.md §5, "Facts from the host").
      throw new LastseenError('REENTRY', 'lastseen: an authorizer callback called into its machine');
    }
    if (x === null) throw new LastseenError('RELEASED', 'lastseen: the machine was disposed or could not restart');
    const n = this.#enc.n;
    let results;
    let status;
    try {
      host.inStep = true;
      host.errors = [];
      if (n > this.#word(CTRL.inCap)) {
        status = x.lastseen_reserve(n);
        if (status !== STATUS_OK) throw new LastseenError('ABI', `lastseen_reserve(${n}) returned status ${status}`);
      }
      new Uint8Array(this.#memory.buffer, this.#word(CTRL.inPtr), n).set(this.#enc.buf.subarray(0, n));
      status = x.lastseen_step(n);
      const out = new Uint8Array(this.#memory.buffer, this.#word(CTRL.outPtr), this.#word(CTRL.outLen)).slice();
      const r = new Reader(out);
      results = [];
      for (let k = this.#word(CTRL.nResults); k > 0; k--) {
        const res = r.result();
        // The guest names the import; the callback's error is the reason.
        if (res.hostFailed && host.errors.length > 0) {
          const e = host.errors.shift();
          e.event = res.error.event;
          res.error = e;
        }
        results.push(res);
      }
    } catch (e) {
      host.inStep = false; // a restart calls into the fresh instance
      if (e instanceof LastseenError) throw e;
      this.#restart();
      throw new LastseenError('TRAP', `lastseen: the WebAssembly instance trapped (${e?.message ?? e}); the machine restarted empty`, { cause: e });
    } finally {
      host.inStep = false;
    }
    if (status === STATUS_PANIC) {
      const last = results.at(-1);
      this.#restart();
      throw new LastseenError('PANIC', `lastseen: the guest panicked (${last?.error?.reason ?? 'no detail'}); the machine restarted empty`);
    }
    if (status === STATUS_DECODE) throw new LastseenError('ABI', `lastseen: the guest could not decode event ${results.length}`);
    if (status === STATUS_LENGTH) throw new LastseenError('ABI', 'lastseen: input length out of range');
    return results;
  }

  /** After a trap: a fresh instance with the same options (ABI.md §8). */
  #restart() {
    this.#exports = null;
    try { this.#start(); } catch { this.#exports = null; }
  }

  #one(ev) {
    const journals = JOURNAL_EVENTS.has(ev.type);
    if (journals) this.#records = [];
    this.#enc.n = 0;
    encodeEvent(this.#enc, ev);
    const [r] = this.#send();
    if (r.error) throw r.error;
    if (journals) this.#records = splitRecords(r.data);
    return r;
  }

  /** A stanza from the local, authenticated session (a full JID). */
  client(now, session, stanza) { return this.#one({ type: 'client', now, session, stanza }).outputs; }
  /** A stanza from another server or a local component, its from verified. */
  server(now, stanza) { return this.#one({ type: 'server', now, stanza }).outputs; }
  /** The session ended without unavailable presence. */
  close(now, session) { return this.#one({ type: 'close', now, session }).outputs; }
  /**
   * A served domain or hosted component came online. Returns its presence
   * for each of its subscribers (roster from/both, not blocked; RULES S3),
   * kind 'reply' records to deliver like probe replies (ABI version 2).
   */
  up(now, jid) { return this.#one({ type: 'up', now, jid }).outputs; }
  /** A hosted component went offline. Returns its unavailable presence for each subscriber, as up does. */
  down(now, jid) { return this.#one({ type: 'down', now, jid }).outputs; }
  /** owner's roster holds contact with subscription sub: 'none', 'to', 'from' or 'both'. */
  setRoster(owner, contact, sub) { this.#one({ type: 'roster', owner, contact, sub }); }
  /** owner blocks (or, with blocked false, unblocks) jid. */
  setBlock(owner, jid, blocked = true) { this.#one({ type: 'block', owner, jid, blocked }); }
  /** owner opts out of (or, with hidden false, back into) last-seen. */
  setHidden(owner, hidden = true) { this.#one({ type: 'hide', owner, hidden }); }
  /**
   * Client probes from `now` on: burst per session, refilled at burst per
   * `per` (ms, or ns as a bigint). Buckets refill at the old rate up to now.
   */
  setProbeLimit(now, { burst, per }) { this.#one({ type: 'limit', now, burst, per }); }
  /**
   * The journal records of the last client, server, close, up or down call
   * (ABI.md §5, Journal), when the machine was made with `journal: true`:
   * Uint8Arrays, the native library's bytes, to write (and fsync) in order
   * before sending the call's outputs. Empty when it changed nothing
   * durable, or was refused.
   */
  records() { return this.#records; }
  /** Replays one journal record written by any engine; a damaged one throws code CORRUPT and changes nothing. */
  applyRecord(record) { this.#one({ type: 'apply', record }); }
  /** The deterministic encoding of everything the machine tracks. */
  state() { return this.#one({ type: 'state' }).data; }
  /**
   * The durable state (ABI.md §5, snapshot): versioned, checksummed bytes
   * that any engine, native Go, wazero or Node, can restore.
   */
  snapshot() { return this.#one({ type: 'snapshot' }).data; }
  /** Loads a snapshot; a damaged one throws code CORRUPT and changes nothing. */
  restore(snapshot) { this.#one({ type: 'restore', snapshot }); }
  /**
   * The restart rule, after restore: resources that were available become
   * unavailable at the last change time. Returns how many.
   */
  restarted() {
    const d = this.#one({ type: 'restarted' }).data;
    return new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0, true);
  }

  /**
   * Runs many events in one call per buffer-full. Each event is
   * `{type, ...}` with the arguments of the method of that name (`roster`,
   * `block` and `hide` for the set* methods, `limit` with burst and per,
   * `state`, `apply` with record). Returns one `{outputs}`, `{state}` or
   * `{error}` per event (with `journal`, client, server, close, up and down
   * give `{outputs, records}`); a refused event does not stop the batch.
   */
  batch(events) {
    const results = [];
    let i = 0;
    while (i < events.length) {
      const cap = this.#exports ? this.#word(CTRL.inCap) : 0;
      this.#enc.n = 0;
      let j = i;
      for (; j < events.length; j++) {
        const mark = this.#enc.n;
        encodeEvent(this.#enc, events[j]);
        if (this.#enc.n > cap && j > i) { this.#enc.n = mark; break; }
      }
      for (const r of this.#send()) {
        const type = events[results.length].type;
        if (r.error) results.push({ error: r.error });
        else if (DATA_EVENTS.has(type)) results.push({ state: r.data });
        else if (this.#options.journal && JOURNAL_EVENTS.has(type)) results.push({ outputs: r.outputs, records: splitRecords(r.data) });
        else results.push({ outputs: r.outputs });
      }
      i = j;
    }
    return results;
  }

  /**
   * Replaces the machine with a fresh, empty one (ABI.md §5, config),
   * keeping the WebAssembly instance: cheaper than a new Machine. With
   * options, the new machine uses them (and so does a restart after a trap);
   * if they are refused, the current machine stays.
   */
  reset(options) {
    const next = options === undefined ? this.#options : { ...options, served: [...(options.served ?? [])] };
    if (options !== undefined && options.wasm !== undefined) throw new TypeError('reset cannot change the module');
    this.#enc.n = 0;
    encodeConfig(this.#enc, next);
    const [r] = this.#send();
    if (r.error) throw r.error;
    this.#options = { ...next, wasm: this.#options.wasm };
  }

  /** Drops the instance; later calls throw. */
  dispose() { this.#exports = null; this.#memory = null; }
}
