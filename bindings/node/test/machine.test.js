import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine, LastseenError, Kind, ABI_VERSION, wasmPath } from '../index.js';

const T0 = 946684800000000000n; // 2000-01-01T00:00:00Z in ns
const sec = (s) => T0 + BigInt(s) * 1000000000n;
const probe = (id = 'p1') => `<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe' id='${id}'/>`;

function romeoOnline() {
  const m = new Machine({ served: ['montague.com'] });
  m.setRoster('romeo@montague.com', 'juliet@capulet.com', 'both');
  assert.deepEqual(m.client(T0, 'romeo@montague.com/balcony', '<presence><status>On the balcony</status></presence>'), []);
  return m;
}

test('answers a probe with the tracked presence and a delay stamp', () => {
  const m = romeoOnline();
  const out = m.server(sec(60), probe());
  assert.equal(out.length, 1);
  assert.equal(out[0].kind, Kind.REPLY);
  assert.equal(out[0].to, 'juliet@capulet.com/chamber');
  assert.equal(out[0].stanza,
    "<presence from='romeo@montague.com/balcony' to='juliet@capulet.com/chamber'><status>On the balcony</status>" +
    "<delay xmlns='urn:xmpp:delay' from='romeo@montague.com/balcony' stamp='2000-01-01T00:00:00Z'/></presence>");
  assert.deepEqual(out[0].bytes, new TextEncoder().encode(out[0].stanza));
  assert.deepEqual(Object.keys(out[0]), ['kind', 'to', 'stanza']);
});

test('takes time as bigint ns, number ms or Date', () => {
  const stamps = [];
  for (const now of [sec(5), 946684805000, new Date('2000-01-01T00:00:05Z'), 946684805000.25]) {
    const m = new Machine({ served: ['montague.com'] });
    m.client(now, 'romeo@montague.com/balcony', '<presence/>');
    const [out] = m.server(sec(9), "<presence from='romeo@montague.com/x' to='romeo@montague.com' type='probe'/>");
    stamps.push(/stamp='([^']*)'/.exec(out.stanza)[1]);
  }
  assert.deepEqual(stamps, ['2000-01-01T00:00:05Z', '2000-01-01T00:00:05Z', '2000-01-01T00:00:05Z', '2000-01-01T00:00:05.00025Z']);
  assert.throws(() => new Machine({ served: ['montague.com'] }).client('now', 'romeo@montague.com/x', '<presence/>'), TypeError);
});

test('refused input throws LastseenError with the code, event and detail', () => {
  const m = romeoOnline();
  const before = m.state();
  const cases = [
    [() => m.server(sec(1), '<presence'), 'MALFORMED', 'server'],
    [() => m.server(sec(1), '<presence><!-- no --></presence>'), 'RESTRICTED', 'server'],
    [() => m.client(sec(1), 'romeo@montague.com/balcony', '<message/>'), 'NOT_PRESENCE', 'client'],
    [() => m.client(sec(1), 'romeo@montague.com/balcony', "<presence type='sideways'/>"), 'UNKNOWN_TYPE', 'client'],
    [() => m.client(sec(1), 'romeo@montague.com', '<presence/>'), 'SESSION', 'client'],
    [() => m.client(sec(1), 'romeo@@montague.com/x', '<presence/>'), 'INVALID_JID', 'client'],
    [() => m.server(sec(1), "<presence to='romeo@montague.com' type='probe'/>"), 'NO_FROM', 'server'],
    [() => m.server(sec(1), "<presence from='juliet@capulet.com' type='probe'/>"), 'NO_TO', 'server'],
    [() => m.server(sec(1), "<presence from='juliet@capulet.com' to='nurse@capulet.com' type='probe'/>"), 'NOT_LOCAL', 'server'],
    [() => m.up(sec(1), 'romeo@montague.com'), 'NOT_DOMAIN', 'up'],
    [() => m.close(sec(1), ''), 'SESSION', 'close'],
    [() => m.setProbeLimit(T0, { burst: 0, per: 1000 }), 'CONFIG', 'limit'],
  ];
  for (const [call, code, event] of cases) {
    assert.throws(call, (e) => {
      assert.ok(e instanceof LastseenError, String(e));
      assert.equal(e.code, code, e.message);
      assert.equal(e.event, event);
      assert.equal(e.badInput, true);
      assert.equal(e.message, `lastseen: bad ${event} input: ${e.reason}`);
      return true;
    });
    assert.deepEqual(m.state(), before, `${code} changed the state`);
  }
  const syntax = (() => { try { m.server(sec(1), '<presence'); } catch (e) { return e; } })();
  assert.deepEqual(syntax.detail, { offset: 9, msg: 'unexpected end of input in a start tag' });
  const jid = (() => { try { m.client(sec(1), 'ro"meo@montague.com/x', '<presence/>'); } catch (e) { return e; } })();
  assert.equal(jid.detail.input, 'ro"meo@montague.com/x');
  assert.equal(jid.detail.part, 'localpart');
});

test('a bad config is refused', () => {
  assert.throws(() => new Machine({ served: [] }), { name: 'LastseenError', code: 'CONFIG' });
  assert.throws(() => new Machine({ served: ['romeo@montague.com'] }), { code: 'CONFIG' });
  assert.throws(() => new Machine({}), TypeError);
});

test('client probes: routed, rate limited, blocked', () => {
  const m = new Machine({ served: ['montague.com'], probeLimit: { burst: 1, per: 60000 } });
  const routed = m.client(T0, 'romeo@montague.com/balcony', "<presence type='probe' to='juliet@capulet.com' id='c1'/>");
  assert.deepEqual(routed.map((o) => [o.kind, o.to]), [[Kind.PROBE, 'juliet@capulet.com']]);
  const limited = m.client(T0, 'romeo@montague.com/balcony', "<presence type='probe' to='juliet@capulet.com' id='c2'/>");
  assert.equal(limited[0].kind, Kind.ERROR);
  assert.match(limited[0].stanza, /policy-violation/);
  m.setBlock('romeo@montague.com', 'capulet.com');
  const blocked = m.client(sec(120), 'romeo@montague.com/balcony', "<presence type='probe' to='juliet@capulet.com'/>");
  assert.match(blocked[0].stanza, /<blocked xmlns='urn:xmpp:blocking:errors'\/>/);
  m.setBlock('romeo@montague.com', 'capulet.com', false);
  assert.equal(m.client(sec(240), 'romeo@montague.com/balcony', "<presence type='probe' to='juliet@capulet.com'/>")[0].kind, Kind.PROBE);
});

test('hide, close, up and down', () => {
  const m = romeoOnline();
  m.setHidden('romeo@montague.com');
  assert.doesNotMatch(m.server(sec(1), probe())[0].stanza, /delay/);
  m.setHidden('romeo@montague.com', false);
  assert.deepEqual(m.close(sec(2), 'romeo@montague.com/balcony'), []);
  assert.match(m.server(sec(3), probe())[0].stanza, /type='unavailable'/);
  assert.deepEqual(m.up(sec(4), 'chat.montague.com'), []); // no subscribers yet
  // RULES S3: from now on up and down announce to from/both, unblocked items.
  m.setRoster('chat.montague.com', 'verona.lit', 'both');
  m.setRoster('chat.montague.com', 'Capulet.com', 'from');
  m.setRoster('chat.montague.com', 'mantua.lit', 'to');
  m.setRoster('chat.montague.com', 'padua.lit', 'from');
  m.setBlock('chat.montague.com', 'padua.lit');
  const again = m.up(sec(5), 'chat.montague.com'); // already up: keeps 00:00:04 (CHOICES 30)
  assert.deepEqual(again.map((o) => [o.kind, o.to, o.stanza]), ['capulet.com', 'verona.lit'].map((b) => [Kind.REPLY, b,
    `<presence from='chat.montague.com' to='${b}'><delay xmlns='urn:xmpp:delay' from='chat.montague.com' stamp='2000-01-01T00:00:04Z'/></presence>`]));
  const gone = m.down(sec(5), 'chat.montague.com');
  assert.deepEqual(gone.map((o) => o.to), ['capulet.com', 'verona.lit']);
  assert.match(gone[0].stanza, /type='unavailable'.*stamp='2000-01-01T00:00:05Z'/);
  const [comp] = m.server(sec(6), "<presence from='capulet.com' to='chat.montague.com' type='probe'/>");
  assert.match(comp.stanza, /type='unavailable'.*stamp='2000-01-01T00:00:05Z'/);
});

test('batch gives what single calls give, across many buffer-fulls', () => {
  const events = [{ type: 'roster', owner: 'romeo@montague.com', contact: 'juliet@capulet.com', sub: 'from' }];
  const pad = 'x'.repeat(1000);
  for (let i = 0; i < 400; i++) {
    events.push({ type: 'client', now: sec(i), session: `romeo@montague.com/r${i % 5}`, stanza: `<presence><status>${i} ${pad}</status></presence>` });
    events.push({ type: 'server', now: sec(i), stanza: probe(`p${i}`) });
    events.push({ type: 'server', now: sec(i), stanza: '<presence' });
    if (i % 100 === 0) events.push({ type: 'state' }, { type: 'limit', now: sec(i), burst: 2, per: 1000 });
  }
  const batched = new Machine({ served: ['montague.com'] });
  const single = new Machine({ served: ['montague.com'] });
  const results = batched.batch(events);
  assert.equal(results.length, events.length);
  events.forEach((ev, i) => {
    let want;
    try {
      switch (ev.type) {
        case 'roster': single.setRoster(ev.owner, ev.contact, ev.sub); want = { outputs: [] }; break;
        case 'client': want = { outputs: single.client(ev.now, ev.session, ev.stanza) }; break;
        case 'server': want = { outputs: single.server(ev.now, ev.stanza) }; break;
        case 'state': want = { state: single.state() }; break;
        case 'limit': single.setProbeLimit(ev.now, ev); want = { outputs: [] }; break;
      }
    } catch (e) {
      want = { error: e };
    }
    const got = results[i];
    if (want.error) assert.equal(got.error?.message, want.error.message, `event ${i}`);
    else if (want.state) assert.deepEqual(got.state, want.state, `event ${i}`);
    else assert.deepEqual(got.outputs.map((o) => o.stanza), want.outputs.map((o) => o.stanza), `event ${i}`);
  });
  assert.deepEqual(batched.state(), single.state());
});

test('stanzas bigger than the guest buffers', () => {
  const m = new Machine({ served: ['montague.com'], maxBytes: 1 << 20 });
  const big = `<presence><status>${'long '.repeat(40000)}</status></presence>`;
  for (let r = 0; r < 3; r++) m.client(T0, `romeo@montague.com/r${r}`, big);
  const out = m.server(T0, "<presence from='romeo@montague.com/x' to='romeo@montague.com' type='probe'/>");
  assert.equal(out.length, 3);
  assert.ok(out.every((o) => o.stanza.length > big.length));
  assert.deepEqual(m.client(T0, 'romeo@montague.com/small', '<presence/>'), []);
  assert.throws(() => new Machine({ served: ['montague.com'] }).client(T0, 'romeo@montague.com/r', big), { code: 'TOO_LARGE' });
});

test('JIDs and stanzas can be bytes; non-UTF-8 is refused as malformed', () => {
  const m = new Machine({ served: ['montague.com'] });
  const enc = new TextEncoder();
  assert.deepEqual(m.client(T0, enc.encode('romeo@montague.com/b'), enc.encode('<presence/>')), []);
  assert.throws(() => m.client(T0, 'romeo@montague.com/b', new Uint8Array([0x3c, 0x70, 0xff])), { code: 'MALFORMED' });
});

test('state is deterministic and reset empties the machine', () => {
  const a = romeoOnline();
  const b = romeoOnline();
  assert.deepEqual(a.state(), b.state());
  assert.equal(new TextDecoder().decode(a.state().subarray(0, 4)), 'LSST');
  const empty = new Machine({ served: ['montague.com'] }).state();
  a.reset();
  assert.deepEqual(a.state(), empty);
  a.reset({ served: ['verona.lit'], probeLimit: { burst: 3, per: 1000n * 1000000n } });
  assert.throws(() => a.client(T0, 'romeo@montague.com/b', '<presence/>'), { code: 'SESSION' });
  assert.deepEqual(a.client(T0, 'romeo@verona.lit/b', '<presence/>'), []);
  assert.throws(() => a.reset({ served: [] }), { code: 'CONFIG' });
  assert.deepEqual(a.client(T0, 'mercutio@verona.lit/b', '<presence/>'), [], 'a refused reset keeps the machine');
});

test('dispose, the ABI version and the module path', () => {
  const m = new Machine({ served: ['montague.com'] });
  m.dispose();
  assert.throws(() => m.state(), { code: 'RELEASED' });
  assert.equal(ABI_VERSION, 3);
  assert.match(wasmPath(), /lastseen\.wasm$/);
});

test('a snapshot restores in another machine; the restart rule takes sessions offline', () => {
  const a = romeoOnline();
  const snap = a.snapshot();
  assert.equal(new TextDecoder().decode(snap.subarray(0, 4)), 'LSSN');
  const b = new Machine({ served: ['montague.com'] });
  b.restore(snap);
  assert.deepEqual(b.snapshot(), snap);
  assert.equal(b.restarted(), 1);
  b.setRoster('romeo@montague.com', 'juliet@capulet.com', 'both');
  const out = b.server(sec(3600), probe());
  assert.equal(out.length, 1);
  assert.match(out[0].stanza, /type='unavailable'.*<delay xmlns='urn:xmpp:delay' from='romeo@montague.com\/balcony' stamp='2000-01-01T00:00:00Z'\/>/);
});

test('a damaged snapshot throws CORRUPT and changes nothing', () => {
  const a = romeoOnline();
  const before = a.state();
  const snap = a.snapshot();
  snap[snap.length - 1] ^= 1;
  assert.throws(() => a.restore(snap), (e) => e instanceof LastseenError && e.code === 'CORRUPT');
  assert.deepEqual(a.state(), before);
});

test('each output of a batch has its own exact bytes', () => {
  const m = new Machine({ served: ['montague.com'] });
  m.setRoster('romeo@montague.com', 'juliet@capulet.com', 'both');
  for (const r of ['a', 'b', 'c']) m.client(sec(0), `romeo@montague.com/${r}`, `<presence><status>${r}</status></presence>`);
  const rs = m.batch([
    { type: 'server', now: sec(1), stanza: probe('x') },
    { type: 'server', now: sec(2), stanza: probe('y') },
  ]);
  const outs = rs.flatMap((r) => r.outputs);
  assert.equal(outs.length, 6);
  const enc = new TextEncoder();
  for (const o of outs) {
    assert.deepEqual(o.bytes.slice(), enc.encode(o.stanza));
    assert.deepEqual(Object.keys(o), ['kind', 'to', 'stanza']);
  }
  outs[0].bytes.fill(0); // a caller may scribble on its own view
  assert.deepEqual(outs[1].bytes.slice(), enc.encode(outs[1].stanza));
});

test('answers and routes Last Activity queries (XEP-0012) with the iq kinds', () => {
  const m = romeoOnline();
  m.client(sec(10), 'romeo@montague.com/balcony', "<presence type='unavailable'><status>Fish &amp; chips</status></presence>");
  const query = (attrs) => `<iq ${attrs} type='get' id='l1'><query xmlns='jabber:iq:last'/></iq>`;
  const [res] = m.server(sec(75) + 500000000n, query("from='juliet@capulet.com/chamber' to='romeo@montague.com'"));
  assert.equal(res.kind, Kind.IQ_REPLY);
  assert.equal(res.to, 'juliet@capulet.com/chamber');
  assert.equal(res.stanza, "<iq from='romeo@montague.com' to='juliet@capulet.com/chamber' type='result' id='l1'>" +
    "<query xmlns='jabber:iq:last' seconds='65'>Fish &amp; chips</query></iq>");
  const [routed] = m.client(sec(80), 'romeo@montague.com/balcony', query("to='juliet@capulet.com'"));
  assert.equal(routed.kind, Kind.QUERY);
  assert.equal(routed.stanza, "<iq from='romeo@montague.com/balcony' to='juliet@capulet.com' type='get' id='l1'><query xmlns='jabber:iq:last'/></iq>");
  assert.throws(() => m.server(sec(80), query("from='juliet@capulet.com/chamber' to='romeo@montague.com/balcony'")),
    (e) => e instanceof LastseenError && e.code === 'NOT_LOCAL' && e.badInput);
  assert.equal(ABI_VERSION, 3);
});
