// Facts from the host (ABI version 3): the machine asks options.authorizer
// when it needs a fact, and gives the bytes a machine fed the same facts as
// events gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine, FactTable, LastseenError } from '../index.js';

const T0 = 946684800000000000n;
const sec = (s) => T0 + BigInt(s) * 1000000000n;
const served = ['montague.com', 'chat.montague.com'];

const FACTS = [
  ['roster', 'romeo@montague.com', 'juliet@capulet.com', 'both'],
  ['roster', 'chat.montague.com', 'nurse@capulet.com', 'from'],
  ['roster', 'chat.montague.com', 'juliet@capulet.com', 'both'],
  ['roster', 'chat.montague.com', 'tybalt@capulet.com', 'both'],
  ['roster', 'chat.montague.com', 'paris@verona.lit', 'to'],
  ['block', 'chat.montague.com', 'tybalt@capulet.com'],
  ['block', 'romeo@montague.com', 'tybalt@capulet.com'],
  ['hide', 'benvolio@montague.com'],
];

function fed(target) {
  for (const [op, a, b, c] of FACTS) {
    if (op === 'roster') target.setRoster(a, b, c);
    else if (op === 'block') target.setBlock(a, b);
    else target.setHidden(a);
  }
  return target;
}

const probe = (from, to, t) => ['server', sec(t), `<presence from='${from}' to='${to}' type='probe' id='p'/>`];
const CALLS = [
  ['client', sec(0), 'romeo@montague.com/balcony', '<presence><status>hi</status></presence>'],
  ['client', sec(1), 'benvolio@montague.com/b', '<presence/>'],
  ['close', sec(2), 'benvolio@montague.com/b'],
  probe('juliet@capulet.com/c', 'romeo@montague.com', 3),
  probe('tybalt@capulet.com/t', 'romeo@montague.com', 3),
  probe('nurse@capulet.com/n', 'romeo@montague.com', 3),
  probe('juliet@capulet.com/c', 'benvolio@montague.com', 3),
  ['server', sec(4), "<iq from='juliet@capulet.com/c' to='romeo@montague.com' type='get' id='q'><query xmlns='jabber:iq:last'/></iq>"],
  ['client', sec(5), 'romeo@montague.com/balcony', "<presence type='probe' to='tybalt@capulet.com'/>"],
  ['up', sec(6), 'chat.montague.com'],
  ['down', sec(7), 'chat.montague.com'],
];

function run(m, [op, ...args]) {
  try {
    return { out: m[op](...args).map((o) => [o.kind, o.to, o.stanza]) };
  } catch (e) {
    return { error: e.message };
  }
}

test('facts from the host give the bytes of facts as events', () => {
  const byEvents = fed(new Machine({ served }));
  const byHost = new Machine({ served, authorizer: fed(new FactTable()) });
  for (const call of CALLS) {
    assert.deepEqual(run(byHost, call), run(byEvents, call), call.join(' '));
    assert.deepEqual(byHost.state(), byEvents.state());
  }
  // up announced to the host's subscribers, sorted, tybalt (blocked) and paris (to) left out.
  assert.deepEqual(run(byHost, ['up', sec(8), 'chat.montague.com']).out.map((o) => o[1]), ['juliet@capulet.com', 'nurse@capulet.com']);
  // The machine keeps no facts.
  assert.throws(() => byHost.setHidden('romeo@montague.com'), (e) => e.code === 'NO_FACT_STORE');
});

test('an authorizer that throws refuses the call, emits nothing and the machine goes on', () => {
  const table = fed(new FactTable());
  let failing = 'romeo@montague.com';
  const boom = new Error('roster storage unreachable');
  const check = (owner) => { if (owner === failing) throw boom; };
  const authorizer = {
    probeFacts: (o, p) => { check(o); return table.probeFacts(o, p); },
    blocks: (o, j) => { check(o); return table.blocks(o, j); },
    subscribers: (o) => { check(o); return table.subscribers(o); },
  };
  const m = new Machine({ served, authorizer });
  m.client(sec(0), 'romeo@montague.com/balcony', '<presence/>');
  const before = m.state();
  for (const call of [CALLS[3], CALLS[7], CALLS[8]]) {
    assert.throws(() => run(m, call) && m[call[0]](...call.slice(1)), (e) => {
      assert.ok(e instanceof LastseenError);
      assert.equal(e.code, 'HOST');
      assert.equal(e.cause, boom);
      assert.match(e.message, /roster storage unreachable/);
      return true;
    });
  }
  assert.deepEqual(m.state(), before);
  failing = 'chat.montague.com';
  assert.throws(() => m.up(sec(6), 'chat.montague.com'), (e) => e.code === 'HOST' && e.event === 'up');
  assert.deepEqual(m.state(), before, 'a refused up changed nothing');
  failing = '';
  assert.equal(m.up(sec(7), 'chat.montague.com').length, 2, 'up after the failure');
  assert.equal(m.server(sec(8), CALLS[3][2]).length, 1, 'a probe after the failures');
  // In a batch the error lands on the event that needed the host.
  failing = 'romeo@montague.com';
  const rs = m.batch([{ type: 'server', now: sec(9), stanza: CALLS[6][2] }, { type: 'server', now: sec(9), stanza: CALLS[3][2] }]);
  assert.ok(rs[0].outputs);
  assert.equal(rs[1].error.code, 'HOST');
  assert.equal(rs[1].error.cause, boom);
});

test('a callback that calls into its machine fails that call cleanly', () => {
  let m;
  const table = fed(new FactTable());
  m = new Machine({
    served,
    authorizer: {
      probeFacts: (o, p) => { m.state(); return table.probeFacts(o, p); },
      blocks: (o, j) => table.blocks(o, j),
    },
  });
  m.client(sec(0), 'romeo@montague.com/balcony', '<presence/>');
  assert.throws(() => m.server(sec(1), CALLS[3][2]), (e) => e.code === 'HOST' && e.cause?.code === 'REENTRY');
  // Without subscribers() the machine cannot list them: up is refused as the native library refuses it.
  assert.throws(() => m.up(sec(2), 'chat.montague.com'), (e) => e.code === 'BAD_INPUT' && /cannot list subscribers/.test(e.message));
  assert.equal(m.client(sec(3), 'romeo@montague.com/balcony', '<presence/>').length, 0, 'the machine still works');
});

test('reset can change the authorizer, and turn facts from the host off', () => {
  const m = new Machine({ served });
  m.client(sec(0), 'romeo@montague.com/balcony', '<presence/>');
  assert.equal(m.server(sec(1), CALLS[3][2])[0].stanza.includes("type='unsubscribed'"), true, 'no facts yet');
  m.reset({ served, authorizer: fed(new FactTable()) });
  m.client(sec(2), 'romeo@montague.com/balcony', '<presence/>');
  assert.equal(m.server(sec(3), CALLS[3][2])[0].stanza.includes('<delay'), true, 'the new authorizer answers');
  m.reset({ served });
  assert.doesNotThrow(() => m.setRoster('romeo@montague.com', 'juliet@capulet.com', 'both'));
});
