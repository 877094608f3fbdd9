// The cost of a probe's facts on Node.js (ABI version 3): the probe of an
// offline contact with its facts sent as events in the same batch (as
// mod_lastseen did before version 3), answered by the host's authorizer,
// and kept in the guest (version 2's floor). Run by bench/hostfacts.sh;
// prints one JSON line: per mode, the ns per probe of each of ROUNDS
// rounds (the modes interleaved, so that a drift of the machine hits all).
import { Machine, FactTable } from '../bindings/node/index.js';

const N = Number(process.env.PROBES ?? 20000), ROUNDS = Number(process.env.ROUNDS ?? 5);
const T0 = 946684800000000000n;
const served = ['montague.com'];
const probe = "<presence from='juliet@capulet.com/chamber' to='romeo@montague.com' type='probe' id='p1'/>";

function offline(m, ask) {
  m.client(T0, 'romeo@montague.com/balcony', '<presence><status>On the balcony</status></presence>');
  m.client(T0 + 1n, 'romeo@montague.com/balcony', "<presence type='unavailable'><status>gone fishing</status></presence>");
  const out = ask();
  if (out.length !== 1 || !out[0].stanza.includes('gone fishing')) throw new Error(`probe answer: ${JSON.stringify(out)}`);
}

const modes = {
  kept() {
    const m = new Machine({ served });
    m.setRoster('romeo@montague.com', 'juliet@capulet.com', 'both');
    const ask = () => m.server(T0 + 2n, probe);
    offline(m, ask);
    return ask;
  },
  events() {
    const m = new Machine({ served });
    const batch = [
      { type: 'roster', owner: 'romeo@montague.com', contact: 'juliet@capulet.com', sub: 'both' },
      { type: 'block', owner: 'romeo@montague.com', jid: 'tybalt@capulet.com', blocked: false },
      { type: 'hide', owner: 'romeo@montague.com', hidden: false },
      { type: 'server', now: T0 + 2n, stanza: probe },
      { type: 'roster', owner: 'romeo@montague.com', contact: 'juliet@capulet.com', sub: 'none' },
    ];
    const ask = () => m.batch(batch)[3].outputs;
    offline(m, ask);
    return ask;
  },
  host() {
    const facts = new FactTable();
    facts.setRoster('romeo@montague.com', 'juliet@capulet.com', 'both');
    const m = new Machine({ served, authorizer: facts });
    const ask = () => m.server(T0 + 2n, probe);
    offline(m, ask);
    return ask;
  },
};

const asks = Object.fromEntries(Object.entries(modes).map(([k, f]) => [k, f()]));
const times = Object.fromEntries(Object.keys(modes).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, ask] of Object.entries(asks)) {
    for (let i = 0; i < N / 10; i++) ask(); // warm
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) ask();
    times[k].push(Number(process.hrtime.bigint() - t) / N);
  }
}
console.log(JSON.stringify(Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.map(Math.round)]))));
