// The durable store: journal, snapshots, torn tails, the lock, and a kill
// test. Run with LASTSEEN_DURABLE_CHILD set, this file is the child process
// of the kill test instead (node --test runs every file under test/, so the
// child cannot live in a file of its own there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Machine, LastseenError } from '../index.js';
import { openDurable, crc32c } from '../durable.js';

const T0 = 946684800000000000n; // 2000-01-01T00:00:00Z in ns
const sec = (s) => T0 + BigInt(s) * 1000000000n;
const SERVED = ['montague.com'];

// Change i of the kill test's stream: user i's session says goodbye with
// status s<i>. Each user's last presence is kept whole (the restart rule
// keeps unavailable presences as they are), so every acknowledged change
// has exactly one probe reply that shows it.
const user = (i) => `u${i}@montague.com`;
const change = (d, i) => d.client(sec(i), `${user(i)}/r`, `<presence type='unavailable'><status>s${i}</status></presence>`);
const probe = (i) => `<presence from='juliet@capulet.com/c' to='${user(i)}' type='probe' id='p${i}'/>`;

if (process.env.LASTSEEN_DURABLE_CHILD) {
  // The child: applies changes from START on, as fast as it can, and
  // acknowledges each on stdout once its call returned (journaled and
  // fsynced), until it is killed. Small compactions make the kill land in
  // a compaction now and then too.
  const d = openDurable(process.env.LASTSEEN_DURABLE_CHILD, { served: SERVED, compactEvery: 40 });
  const start = Number(process.env.LASTSEEN_DURABLE_START);
  process.stdout.write(`open ${JSON.stringify(d.recovery)}\n`);
  for (let i = start; ; i++) {
    // Every other user also comes online first: the restart rule then has
    // sessions to take offline, and the journal records of both kinds.
    if (i % 2 === 0) d.client(sec(i), `${user(i)}/r`, '<presence/>');
    change(d, i);
    fs.writeSync(1, `ack ${i}\n`);
  }
} else {
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lastseen-durable-'));

  const statusOf = (d, i) => {
    d.setRoster(user(i), 'juliet@capulet.com', 'both');
    const out = d.machine.server(sec(1e6), probe(i));
    assert.equal(out.length, 1, `user ${i}: ${JSON.stringify(out)}`);
    return /<status>([^<]*)<\/status>/.exec(out[0].stanza)?.[1];
  };

  test('crc32c is the Castagnoli checksum Go uses', () => {
    assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
    assert.equal(crc32c(new Uint8Array()), 0);
  });

  test('records over the ABI replay on another machine', () => {
    const m = new Machine({ served: SERVED, journal: true });
    const copy = new Machine({ served: SERVED });
    m.client(sec(1), 'romeo@montague.com/balcony', '<presence/>');
    assert.equal(m.records().length, 1);
    for (const r of m.records()) copy.applyRecord(r);
    m.server(sec(2), probe(1));
    assert.deepEqual(m.records(), [], 'a probe changes nothing durable');
    const [res] = m.batch([{ type: 'close', now: sec(3), session: 'romeo@montague.com/balcony' }]);
    assert.equal(res.records.length, 1);
    copy.batch([{ type: 'apply', record: res.records[0] }]);
    assert.deepEqual(copy.snapshot(), m.snapshot());
    assert.throws(() => copy.applyRecord(res.records[0].subarray(1)), (e) => e instanceof LastseenError && e.code === 'CORRUPT');
    assert.deepEqual(copy.snapshot(), m.snapshot(), 'a refused record changes nothing');
    const plain = new Machine({ served: SERVED });
    plain.client(sec(1), 'romeo@montague.com/balcony', '<presence/>');
    assert.deepEqual(plain.records(), [], 'no records without journal');
  });

  test('reopening replays the journal and applies the restart rule', () => {
    const dir = tmp();
    let d = openDurable(dir, { served: SERVED });
    for (let i = 0; i < 10; i++) change(d, i);
    d.client(sec(20), 'romeo@montague.com/balcony', '<presence><status>online</status></presence>');
    d.shutdown();
    d = openDurable(dir, { served: SERVED });
    assert.deepEqual(d.recovery, { generation: 1, records: 11, tornBytes: 0, tookOffline: 1 });
    for (let i = 0; i < 10; i++) assert.equal(statusOf(d, i), `s${i}`);
    d.shutdown();
    // The reopen compacted: the journal is empty, the snapshot holds all.
    d = openDurable(dir, { served: SERVED });
    assert.deepEqual(d.recovery, { generation: 2, records: 0, tornBytes: 0, tookOffline: 0 });
    assert.equal(statusOf(d, 9), 's9');
    d.shutdown();
  });

  test('a torn tail is dropped, damage in the middle is refused', () => {
    const dir = tmp();
    let d = openDurable(dir, { served: SERVED });
    for (let i = 0; i < 3; i++) change(d, i);
    d.shutdown();
    const j = path.join(dir, fs.readdirSync(dir).find((n) => n.startsWith('journal-')));
    const full = fs.readFileSync(j);
    fs.writeFileSync(j, full.subarray(0, full.length - 5));
    d = openDurable(dir, { served: SERVED });
    assert.equal(d.recovery.records, 2);
    assert.ok(d.recovery.tornBytes > 0);
    assert.equal(statusOf(d, 1), 's1');
    d.shutdown();

    const dir2 = tmp();
    d = openDurable(dir2, { served: SERVED });
    for (let i = 0; i < 3; i++) change(d, i);
    d.shutdown();
    const j2 = path.join(dir2, fs.readdirSync(dir2).find((n) => n.startsWith('journal-')));
    const b = fs.readFileSync(j2);
    b[10] ^= 0xff; // inside the first frame's record
    fs.writeFileSync(j2, b);
    assert.throws(() => openDurable(dir2, { served: SERVED }), (e) => e.code === 'CORRUPT' && /at byte 0/.test(e.message));
    const snap = path.join(dir2, 'snapshot');
    b[10] ^= 0xff;
    fs.writeFileSync(j2, b);
    const s = fs.readFileSync(snap);
    s[s.length - 1] ^= 1;
    fs.writeFileSync(snap, s);
    assert.throws(() => openDurable(dir2, { served: SERVED }), (e) => e.code === 'CORRUPT' && /checksum/.test(e.message));
  });

  test('the lock keeps a second opener out, and a dead holder does not', () => {
    const dir = tmp();
    const d = openDurable(dir, { served: SERVED });
    assert.throws(() => openDurable(dir, { served: SERVED }), (e) => e.code === 'LOCKED');
    d.shutdown();
    // A lock left by a process that no longer runs is taken over.
    fs.writeFileSync(path.join(dir, 'LOCK'), 'node 2147483646\n');
    openDurable(dir, { served: SERVED }).shutdown();
  });

  test('compaction starts a new generation and keeps every change', () => {
    const dir = tmp();
    let d = openDurable(dir, { served: SERVED, compactEvery: 4 });
    for (let i = 0; i < 10; i++) change(d, i);
    const journals = fs.readdirSync(dir).filter((n) => n.startsWith('journal-'));
    assert.deepEqual(journals, ['journal-0000000000000003'], 'open compacts once, then every 4 records');
    d.shutdown();
    d = openDurable(dir, { served: SERVED });
    assert.equal(d.recovery.records, 2);
    for (let i = 0; i < 10; i++) assert.equal(statusOf(d, i), `s${i}`);
    d.shutdown();
  });

  test('a crash in a background compaction: the old snapshot and both journals replay', () => {
    // What Go's ShardedDurable leaves when it dies between a compaction's
    // cut (the next journal started) and installing its snapshot.
    const dir = tmp();
    let d = openDurable(dir, { served: SERVED });
    for (let i = 0; i < 5; i++) change(d, i);
    const before = Object.fromEntries(fs.readdirSync(dir).filter((n) => n !== 'LOCK').map((n) => [n, fs.readFileSync(path.join(dir, n))]));
    d.compact();
    for (let i = 5; i < 9; i++) change(d, i);
    const after = fs.readdirSync(dir).find((n) => n.startsWith('journal-'));
    const newer = fs.readFileSync(path.join(dir, after));
    d.shutdown();
    const crashed = tmp();
    for (const [n, b] of Object.entries(before)) fs.writeFileSync(path.join(crashed, n), b);
    fs.writeFileSync(path.join(crashed, after), newer);
    d = openDurable(crashed, { served: SERVED });
    assert.deepEqual(d.recovery, { generation: 1, records: 9, tornBytes: 0, tookOffline: 0 });
    for (let i = 0; i < 9; i++) assert.equal(statusOf(d, i), `s${i}`);
    assert.deepEqual(fs.readdirSync(crashed).filter((n) => n.startsWith('journal-')), ['journal-0000000000000002'], 'opening compacts the chain away');
    d.shutdown();
    // A torn older journal followed by a newer one with records is damage.
    const torn = tmp();
    for (const [n, b] of Object.entries(before)) fs.writeFileSync(path.join(torn, n), n.startsWith('journal-') ? b.subarray(0, b.length - 3) : b);
    fs.writeFileSync(path.join(torn, after), newer);
    assert.throws(() => openDurable(torn, { served: SERVED }), (e) => e.code === 'CORRUPT' && /ends torn/.test(e.message));
  });

  test('a batch is journaled whole with one write, and refuses what bypasses the journal', () => {
    const dir = tmp();
    let d = openDurable(dir, { served: SERVED });
    const events = [];
    for (let i = 0; i < 50; i++) {
      events.push({ type: 'client', now: sec(i), session: `${user(i)}/r`, stanza: `<presence type='unavailable'><status>s${i}</status></presence>` });
    }
    events.push({ type: 'client', now: sec(60), session: 'bad', stanza: '<presence/>' });
    const results = d.batch(events);
    assert.equal(results.length, 51);
    assert.ok(results.slice(0, 50).every((r) => r.outputs !== undefined && r.records === undefined));
    assert.equal(results[50].error.code, 'SESSION');
    assert.throws(() => d.batch([{ type: 'apply', record: new Uint8Array(1) }]), TypeError);
    d.shutdown();
    d = openDurable(dir, { served: SERVED });
    assert.equal(d.recovery.records, 50);
    for (let i = 0; i < 50; i++) assert.equal(statusOf(d, i), `s${i}`);
    d.shutdown();
  });

  test('SIGKILLed four times mid-stream, every acknowledged change is answered', { timeout: 120000 }, async (t) => {
    const dir = tmp();
    let next = 0; // the first change not yet acknowledged
    const recoveries = [];
    for (let run = 0; run < 4; run++) {
      const child = spawn(process.execPath, [new URL(import.meta.url).pathname], {
        env: { ...process.env, LASTSEEN_DURABLE_CHILD: dir, LASTSEEN_DURABLE_START: String(next) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
      // Kill after a varying number of acknowledgements, while the child
      // is still writing: it never stops on its own.
      const killAt = 30 + 37 * run;
      let acks = 0;
      for await (const line of createInterface({ input: child.stdout })) {
        if (line.startsWith('open ')) {
          recoveries.push(JSON.parse(line.slice(5)));
          continue;
        }
        const i = Number(/^ack (\d+)$/.exec(line)[1]);
        assert.equal(i, next, 'acknowledgements come in order');
        next = i + 1;
        if (++acks === killAt) child.kill('SIGKILL');
      }
      assert.equal(await exited, 'SIGKILL');
    }
    const d = openDurable(dir, { served: SERVED });
    try {
      for (let i = 0; i < next; i++) assert.equal(statusOf(d, i), `s${i}`, `acknowledged change ${i}`);
      // Each reopen found the previous run's changes and the sessions it
      // left online.
      assert.equal(recoveries.length, 4);
      for (const r of recoveries.slice(1)) assert.ok(r.generation > 0 && r.tookOffline >= 0, JSON.stringify(recoveries));
      t.diagnostic(`${next} changes acknowledged; reopens found ${JSON.stringify(recoveries.slice(1))}`);
    } finally {
      d.shutdown();
    }
  });
}
