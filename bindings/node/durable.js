// A lastseen machine whose durable state lives in a directory, for Node.js
// (it needs the file system: browsers import index.js alone).
//
// The directory has the format of the Go library's package store, so a
// directory written by either opens in the other:
//
//   snapshot        "LSSTORE\x01", the journal generation (u64, big endian),
//                   a machine snapshot (ABI.md §5, snapshot), and a CRC-32C
//                   of everything before it (u32, big endian). Written to
//                   snapshot.tmp, fsynced, renamed, directory fsynced.
//   journal-GEN     GEN in 16 hex digits: the journal records (ABI.md §5,
//                   Journal) written since the snapshot of that generation,
//                   each framed as [length u32][CRC-32C u32][record], big
//                   endian. Only ever appended to; fsynced before a call
//                   returns its outputs.
//   LOCK            the holder's "node PID" (or "go PID"): one process at a
//                   time.
//
// Opening loads the snapshot, applies the intact frames of its journal,
// drops a torn tail (a last frame cut short or failing its checksum: what a
// crash during an append leaves), applies the restart rule and compacts, so
// the restart rule is itself on disk. Damage a crash cannot cause (a bad
// snapshot, a bad frame followed by more frames, a record the machine
// refuses) throws a LastseenError with code CORRUPT, naming the file and
// offset; nothing is loaded.

import fs from 'node:fs';
import path from 'node:path';
import { Machine, LastseenError } from './index.js';

const SNAPSHOT = 'snapshot';
const TMP = 'snapshot.tmp';
const LOCK = 'LOCK';
const JOURNAL = 'journal-';
const MAGIC = new TextEncoder().encode('LSSTORE\x01');
const HEADER = MAGIC.length + 8;
const FRAME = 8;

// Events a durable batch may hold: the journaled ones, the facts and reads.
const BATCHABLE = new Set(['client', 'server', 'close', 'up', 'down', 'roster', 'block', 'hide', 'limit', 'state', 'snapshot']);

/** Journal records between two compactions, by default (as the Go store). */
export const DEFAULT_COMPACT_EVERY = 10000;
/** Journal bytes past which the store compacts, by default (as the Go store). */
export const DEFAULT_COMPACT_BYTES = 64 << 20;

// CRC-32C (Castagnoli), reflected, as Go's hash/crc32 computes it.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** The CRC-32C of b. */
export function crc32c(b) {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const journalName = (gen) => JOURNAL + gen.toString(16).padStart(16, '0');

const corrupt = (where, msg) => new LastseenError('CORRUPT', `lastseen store: ${where}: corrupt or unsupported durable state: ${msg}`);

function writeAll(fd, b) {
  for (let off = 0; off < b.length;) off += fs.writeSync(fd, b, off, b.length - off);
}

function syncDir(dir) {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** Whether a process with this pid exists (EPERM: it does, not ours). */
function alive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

/**
 * Takes the directory's lock: LOCK holds "node PID". Node.js has no flock,
 * so a lock left by a process that died (SIGKILL leaves it) is recognised
 * by its pid no longer running, and taken over. A Go process writes "go
 * PID" under its flock, and checks for a live "node PID" itself.
 */
function lock(dir) {
  const p = path.join(dir, LOCK);
  const mine = `node ${process.pid}\n`;
  // The pid is written to a file of our own first and linked into place:
  // link fails if LOCK exists, and a LOCK that exists always holds its pid,
  // so no opener ever mistakes a lock being taken for an empty, stale one.
  const tmp = path.join(dir, `LOCK.${process.pid}`);
  fs.writeFileSync(tmp, mine, { mode: 0o600 });
  try {
    return takeLock(dir, p, tmp);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function takeLock(dir, p, tmp) {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.linkSync(tmp, p);
      return p;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    let holder = '';
    try { holder = fs.readFileSync(p, 'utf8'); } catch (e) { if (e.code !== 'ENOENT') throw e; }
    const pid = Number(/^(?:node|go) (\d+)/.exec(holder)?.[1] ?? 0);
    if (pid > 0 && (pid === process.pid || alive(pid))) {
      throw new LastseenError('LOCKED', `lastseen store: ${dir} is in use by ${holder.trim()}`);
    }
    // Stale: its process is gone, or the file is empty (a Go store empties
    // it when it shuts down). Remove it and try once more.
    try { fs.unlinkSync(p); } catch (e) { if (e.code !== 'ENOENT') throw e; }
  }
  throw new LastseenError('LOCKED', `lastseen store: ${dir}: could not take the lock`);
}

/**
 * Opens (creating it if needed) the store in dir and returns a
 * DurableMachine holding the state it kept. options are the Machine's
 * (journal is set for you), plus `compactEvery` and `compactBytes`.
 */
export function openDurable(dir, options = {}) {
  return new DurableMachine(dir, options);
}

/**
 * A Machine whose durable changes are journaled and fsynced before each
 * call returns its outputs. Methods mirror Machine's; `shutdown()` closes
 * the store (`close` is the session-ended event, as on Machine).
 */
export class DurableMachine {
  #dir;
  #machine;
  #lockPath;
  #fd = null;
  #gen = 0n;
  #records = 0;
  #size = 0;
  #compactEvery;
  #compactBytes;
  #failed = null;
  #recovery = { generation: 0, records: 0, tornBytes: 0, tookOffline: 0 };

  constructor(dir, options = {}) {
    const { compactEvery, compactBytes, ...machineOptions } = options;
    this.#compactEvery = compactEvery > 0 ? compactEvery : DEFAULT_COMPACT_EVERY;
    this.#compactBytes = compactBytes > 0 ? compactBytes : DEFAULT_COMPACT_BYTES;
    this.#dir = dir;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.#lockPath = lock(dir);
    try {
      this.#machine = new Machine({ ...machineOptions, journal: true });
      this.#load();
    } catch (e) {
      this.#machine?.dispose();
      fs.rmSync(this.#lockPath, { force: true });
      throw e;
    }
  }

  #load() {
    fs.rmSync(path.join(this.#dir, TMP), { force: true });
    const journals = fs.readdirSync(this.#dir).filter((n) => n.startsWith(JOURNAL));
    const snapPath = path.join(this.#dir, SNAPSHOT);
    let b = null;
    try { b = fs.readFileSync(snapPath); } catch (e) { if (e.code !== 'ENOENT') throw e; }
    if (b === null) {
      if (journals.length > 0) throw corrupt(this.#dir, 'journal files without a snapshot');
    } else {
      this.#gen = this.#readSnapshot(snapPath, b);
      this.#recovery.generation = Number(this.#gen);
      // The snapshot's journal, then those of the generations after it
      // while they exist: the Go ShardedDurable starts the next journal at
      // a compaction's cut, before its snapshot is installed, so a crash in
      // between leaves the old snapshot with two journals. Only the last
      // may end torn: the older one's frames are fsynced before any of the
      // newer one's are written.
      for (let gen = this.#gen; ; gen++) {
        const torn = this.#recovery.tornBytes;
        this.#replay(path.join(this.#dir, journalName(gen)));
        const next = journalName(gen + 1n);
        if (!journals.includes(next)) break;
        if (this.#recovery.tornBytes !== torn && fs.statSync(path.join(this.#dir, next)).size > 0) {
          throw corrupt(this.#dir, `${journalName(gen)} ends torn but the journal after it holds records`);
        }
      }
    }
    this.#recovery.tookOffline = this.#machine.restarted();
    this.#compact();
    // Journals of other generations are left over from a compaction that a
    // crash interrupted; the snapshot holds their records.
    for (const name of journals) {
      if (name !== journalName(this.#gen)) fs.rmSync(path.join(this.#dir, name), { force: true });
    }
  }

  #readSnapshot(where, b) {
    if (b.length < HEADER + 4) throw corrupt(where, `snapshot file is truncated (${b.length} bytes)`);
    if (!MAGIC.every((c, i) => b[i] === c)) throw corrupt(where, 'not a lastseen store snapshot, or an unsupported version');
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (crc32c(b.subarray(0, b.length - 4)) !== v.getUint32(b.length - 4)) {
      throw corrupt(where, 'snapshot file checksum mismatch (truncated or damaged)');
    }
    const gen = v.getBigUint64(MAGIC.length);
    this.#machine.restore(b.subarray(HEADER, b.length - 4));
    return gen;
  }

  #replay(where) {
    let b;
    try { b = fs.readFileSync(where); } catch (e) {
      if (e.code === 'ENOENT') return; // a crash between the snapshot's rename and the journal's creation
      throw e;
    }
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let off = 0; off < b.length;) {
      const rest = b.length - off;
      const torn = () => { this.#recovery.tornBytes = rest; };
      if (rest < FRAME) return torn();
      const n = v.getUint32(off);
      if (n > rest - FRAME) return torn();
      const rec = b.subarray(off + FRAME, off + FRAME + n);
      const last = FRAME + n === rest;
      if (n === 0 || crc32c(rec) !== v.getUint32(off + 4)) {
        // A crash can cut the last append short or leave it unwritten; it
        // cannot damage a frame that an fsync covered and more follow.
        if (last || b.subarray(off).every((c) => c === 0)) return torn();
        throw corrupt(`${where} at byte ${off}`, 'journal frame fails its checksum and is not the last one');
      }
      try {
        this.#machine.applyRecord(rec);
      } catch (e) {
        if (e instanceof LastseenError && e.code === 'CORRUPT') throw corrupt(`${where} at byte ${off}`, e.reason);
        throw e;
      }
      this.#recovery.records++;
      off += FRAME + n;
    }
  }

  /** What opening found on disk: {generation, records, tornBytes, tookOffline}. */
  get recovery() { return { ...this.#recovery }; }

  /**
   * The machine, for reading and for the roster, blocking, opt-out and
   * limit facts the store does not keep. Its input methods bypass the
   * journal: call this object's.
   */
  get machine() { return this.#machine; }

  #check() {
    if (this.#failed) throw this.#failed;
  }

  #persist(outputs, recs = this.#machine.records()) {
    if (recs.length === 0) return outputs;
    let len = 0;
    for (const r of recs) len += FRAME + r.length;
    const buf = new Uint8Array(len);
    const v = new DataView(buf.buffer);
    let off = 0;
    for (const r of recs) {
      v.setUint32(off, r.length);
      v.setUint32(off + 4, crc32c(r));
      buf.set(r, off + FRAME);
      off += FRAME + r.length;
    }
    this.#records += recs.length;
    this.#size += len;
    try {
      if (this.#records >= this.#compactEvery || this.#size >= this.#compactBytes) {
        this.#compact(); // the new snapshot holds these records too
      } else {
        writeAll(this.#fd, buf);
        fs.fsyncSync(this.#fd);
      }
    } catch (e) {
      this.#failed = new LastseenError('FAILED', `lastseen store: an earlier write failed (${e.message}); reopen the store`, { cause: e });
      throw e;
    }
    return outputs;
  }

  /**
   * Runs one input method of the machine and journals its changes. A
   * refused input throws and writes nothing; a trap or panic restarted the
   * machine empty, so the store refuses every further call: reopen it to
   * get the state back from disk.
   */
  #input(method, ...args) {
    return this.#persist(this.#run(method, ...args));
  }

  #run(method, ...args) {
    this.#check();
    try {
      return this.#machine[method](...args);
    } catch (e) {
      if (e instanceof LastseenError && (e.code === 'TRAP' || e.code === 'PANIC')) {
        this.#failed = new LastseenError('FAILED', `lastseen store: the machine restarted empty (${e.message}); reopen the store`, { cause: e });
      }
      throw e;
    }
  }

  /**
   * Machine#batch, journaled with one write and one fsync for the whole
   * batch (group commit): send none of the outputs before it returns.
   * Events that would bypass the journal (restore, apply, restarted) are
   * refused with a TypeError before anything runs.
   */
  batch(events) {
    for (const ev of events) {
      if (!BATCHABLE.has(ev.type)) throw new TypeError(`a durable batch cannot run ${JSON.stringify(ev.type)} events`);
    }
    const results = this.#run('batch', events);
    const recs = results.flatMap((r) => r.records ?? []);
    this.#persist(null, recs);
    return results.map(({ records, ...r }) => r);
  }

  /** Machine#client, journaled. */
  client(now, session, stanza) { return this.#input('client', now, session, stanza); }
  /** Machine#server, journaled (it changes nothing today; it goes the same way in case it does). */
  server(now, stanza) { return this.#input('server', now, stanza); }
  /** Machine#close (the session ended), journaled. To close the store, see shutdown. */
  close(now, session) { return this.#input('close', now, session); }
  /** Machine#up, journaled. */
  up(now, jid) { return this.#input('up', now, jid); }
  /** Machine#down, journaled. */
  down(now, jid) { return this.#input('down', now, jid); }
  /** Machine#setRoster (a fact: not stored). */
  setRoster(owner, contact, sub) { this.#machine.setRoster(owner, contact, sub); }
  /** Machine#setBlock (a fact: not stored). */
  setBlock(owner, jid, blocked = true) { this.#machine.setBlock(owner, jid, blocked); }
  /** Machine#setHidden (a fact: not stored). */
  setHidden(owner, hidden = true) { this.#machine.setHidden(owner, hidden); }
  /** Machine#setProbeLimit (not stored). */
  setProbeLimit(now, limit) { this.#machine.setProbeLimit(now, limit); }
  /** Machine#state. */
  state() { return this.#machine.state(); }

  /** Writes a snapshot of the whole state and starts a new, empty journal. */
  compact() {
    this.#check();
    try {
      this.#compact();
    } catch (e) {
      this.#failed = new LastseenError('FAILED', `lastseen store: compaction failed (${e.message}); reopen the store`, { cause: e });
      throw e;
    }
  }

  #compact() {
    const snap = this.#machine.snapshot();
    const gen = this.#gen + 1n;
    const b = new Uint8Array(HEADER + snap.length + 4);
    const v = new DataView(b.buffer);
    b.set(MAGIC, 0);
    v.setBigUint64(MAGIC.length, gen);
    b.set(snap, HEADER);
    v.setUint32(HEADER + snap.length, crc32c(b.subarray(0, HEADER + snap.length)));
    const tmp = path.join(this.#dir, TMP);
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      writeAll(fd, b);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path.join(this.#dir, SNAPSHOT));
    syncDir(this.#dir);
    // From here the new snapshot is what opening loads; its journal may be
    // missing until created, which opening takes as empty.
    const { O_WRONLY, O_CREAT, O_TRUNC, O_APPEND } = fs.constants;
    const j = fs.openSync(path.join(this.#dir, journalName(gen)), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o600);
    syncDir(this.#dir);
    if (this.#fd !== null) {
      fs.closeSync(this.#fd);
      fs.rmSync(path.join(this.#dir, journalName(this.#gen)), { force: true });
    }
    this.#fd = j;
    this.#gen = gen;
    this.#records = 0;
    this.#size = 0;
  }

  /** Closes the store's files and releases the lock; later calls throw. */
  shutdown() {
    if (this.#machine === null) return;
    if (this.#fd !== null) fs.closeSync(this.#fd);
    this.#fd = null;
    this.#machine.dispose();
    this.#machine = null;
    fs.rmSync(this.#lockPath, { force: true });
    this.#failed ??= new LastseenError('RELEASED', 'lastseen store: shut down');
  }
}
